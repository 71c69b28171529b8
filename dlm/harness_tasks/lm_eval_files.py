"""lm-eval's own output files, written by `dlm eval` / `dlm run` with `--output_path DIR [--log_samples]`.

    dlm eval --model gpt2 --tasks dlm_finance --output_path out --log_samples
    -> out/gpt2/results_<time>.json, out/gpt2/samples_<task>_<time>.jsonl  (as `lm_eval ... -o out -s` writes them)

The files are made by lm-eval's own EvaluationTracker, from the results `simple_evaluate` returned in this run
(`results`, `groups`, `group_subtasks`, `configs`, `versions`, `n-shot`, `higher_is_better`, `n-samples`, `config`,
`git_hash`, `date`, environment and tokenizer fields, `task_hashes`, the model, chat template and system
instruction with their hashes, the evaluation time), so every reader of lm-eval's files (its Hub result datasets,
the Zeno viewer, leaderboards' parsers) reads them as it reads lm_eval's. dlm adds one key, `dlm`: the run record's
id, the approach and domain, what was scored (lineage), the protocol, dlm's scores with their stderr and method,
and the provenance. Two things are put right for a model handed over as an object, as dlm does: the model
(lm-eval would log "CUSTOM" and a random name) and the batch size.

Why not the tracker's own writes: it writes in place (a kill leaves half a file; a symlink at the target would
be written through), appends to a samples file, and turns a failed write into a log line. So it writes into a
private staging folder beside the target, and each file is then scrubbed and moved into place with
files.atomic_write.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lm_eval.loggers import EvaluationTracker
from lm_eval.loggers.evaluation_tracker import GeneralConfigTracker
from lm_eval.utils import sanitize_model_name

from dlm.config import EVAL_DTYPE, EvalConfig
from dlm.errors import UserError
from dlm.files import PARTIAL_PREFIX, atomic_write
from dlm.harness_tasks.api_models import PROVIDERS
from dlm.secrets import scrub
from dlm.store.records import RunRecord

DLM_KEY = "dlm"


@dataclass
class HarnessOutput:
    """What lm-eval returned for one evaluation, kept for its files: its results (without samples), the
    per-document samples and the tracker `simple_evaluate` logged the run's model and prompt format into."""

    results: dict
    samples: dict
    tracker: EvaluationTracker


def new_tracker() -> EvaluationTracker:
    """lm-eval's tracker, handed to simple_evaluate (it logs the chat template and system instruction into it)."""
    return EvaluationTracker()


def lm_eval_model(cfg: EvalConfig, record: RunRecord) -> tuple[str, dict]:
    """(lm-eval model type, model_args) that `lm_eval --model TYPE --model_args ARGS` would take for this model."""
    model = record.model
    api = model.api if isinstance(model.api, dict) else None
    if api:
        return PROVIDERS[api["provider"]][0], {"model": api["model"], "base_url": api["url"]}
    args = {"pretrained": str(model.resolved or model.base_model or cfg.model), "dtype": EVAL_DTYPE}
    if model.peft and model.base_model:
        args = {"pretrained": str(model.base_model), "peft": str(model.peft), "dtype": EVAL_DTYPE}
    if cfg.trust_remote_code:
        args["trust_remote_code"] = True
    return "hf", args


def additions(cfg: EvalConfig, record: RunRecord) -> dict:
    """dlm's key in the results file: what the report knows about these scores."""
    stored = record.to_dict()
    return {
        "run_id": record.run_id,
        "record": f"{record.run_id}.json",
        "kind": record.kind,
        "approach": record.approach,
        "domain": record.domain,
        "evaluated": stored["evaluated"],
        "model": stored["model"],
        "protocol": {
            "tasks": list(cfg.protocol.tasks),
            **cfg.protocol.measurement(),
            "eval_batch_size": cfg.protocol.eval_batch_size,
            "bootstrap_iters": cfg.protocol.bootstrap_iters,
        },
        "scores": stored["eval"]["scores"] if stored["eval"] else [],
        "provenance": stored["provenance"],
        "api": record.api,
        "train": _train_summary(stored["train"]),
    }


def _train_summary(train: dict | None) -> dict | None:
    if not train:
        return None
    keys = ("mode", "lora", "data", "global_step", "tokens_seen", "output_dir", "final_loss", "contamination")
    return {key: train[key] for key in keys}


def write_files(cfg: EvalConfig, output: HarnessOutput, record: RunRecord) -> list[Path]:
    """lm-eval's results file (and, with cfg.log_samples, one samples file per task) under cfg.output_path, as
    `lm_eval --output_path ... [--log_samples]` lays them out; returns the paths written."""
    target = Path(cfg.output_path).expanduser()
    as_file = target.suffix == ".json"  # lm-eval: a .json output path names the results file itself
    folder = target.parent if as_file else target
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=folder))
    try:
        tracker = EvaluationTracker(output_path=str(staging / target.name if as_file else staging))
        source, model_args = lm_eval_model(cfg, record)
        general = output.tracker.general_config_tracker
        general.model_source = source
        general.model_name = GeneralConfigTracker._get_model_name(model_args)
        general.model_name_sanitized = sanitize_model_name(general.model_name)
        tracker.general_config_tracker = general
        results = dict(output.results)
        results["config"] = {
            **(results.get("config") or {}),
            "model": source,
            "model_args": model_args,  # as lm_eval records --model_args: parsed into a dict
            "batch_size": str(cfg.protocol.eval_batch_size),
        }
        samples = output.samples if cfg.log_samples else None
        tracker.save_results_aggregated(results=results, samples=samples)
        if samples:
            for task in results.get("configs") or {}:
                if task in samples:  # the tracker rewrites each row's fields: copies, the outcomes keep theirs
                    tracker.save_results_samples(task_name=task, samples=[dict(row) for row in samples[task]])
        made = sorted(p for p in staging.rglob("*") if p.is_file())
        if not any(p.name.endswith(".json") for p in made):
            raise UserError(
                f"lm-eval could not write its results file under --output_path {cfg.output_path} (a full disk or "
                "a read-only folder?); the run record has the scores; --verbose shows lm-eval's reason"
            )
        written = []
        for path in made:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".json":
                data = json.loads(text)
                data[DLM_KEY] = additions(cfg, record)
                text = json.dumps(data, indent=2, default=str, ensure_ascii=False)
            written.append(atomic_write(folder / path.relative_to(staging), scrub(text)))
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
