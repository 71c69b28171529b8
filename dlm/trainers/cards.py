"""Model cards: the README.md of every model directory dlm writes, with the scores recorded for that directory.

A card is Hugging Face's model card: YAML metadata (base_model, datasets, library_name, tags, `model-index` with
one result per score: task, metric, value, dataset id, config and split, shots; stderr, n, protocol and the run it
came from in the result's `args`) and a markdown body that says the same for people. dlm's own metadata is under
`dlm`: the lineage (every training stage), the directory's role, the provenance of the last write, and the
record id of every evaluation whose scores the card lists. `huggingface_hub.ModelCard.load` and `metadata_load`
read it offline.

When cards are written:
- at the end of `dlm train` (and of a cycle's training): a fresh card in the output dir (and merged/), since its
  weights were just written; a card in each checkpoint-N that has none of dlm's (a checkpoint's weights never
  change, so scores already there stay);
- after an evaluation of such a directory (`dlm run`'s cycle, `dlm eval --model DIR` or `--peft DIR`): its scores
  are added, one result per (task, metric, filter, shots, protocol); a newer evaluation of the same replaces it.

Only dlm's: a card is written in a directory dlm trained into (its `.dlm-output.json` mark, trainers/
checkpoints.py) or in a checkpoint-N / merged dir the mark proves dlm's (trainers/ownership.py), and only where
README.md is absent or dlm's by the mark: a person's README.md, or a symlink there, is left alone (never written
through, never replaced). After training, only a README.md that is dlm's card (its `dlm` metadata) is updated: a
card a person wrote over it is left alone. Every card is scrubbed (dlm/secrets.py), written with
files.atomic_write, and its new content recorded in the mark (what --overwrite and --resume check).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index
from huggingface_hub.utils import yaml_dump

from dlm.files import atomic_write
from dlm.secrets import scrub
from dlm.store.lineage import Lineage, Stage, read_lineage
from dlm.trainers.checkpoints import CHECKPOINT_RE, ownership_view, read_owner, record_written
from dlm.trainers.models import ALIASES
from dlm.trainers.ownership import owns

CARD = "README.md"
MARK = "dlm"  # the metadata key that makes a card dlm's
SCHEMA = 1
TINY = "tiny-gpt2"


def may_write(directory: str | Path) -> bool:
    """dlm wrote `directory` (an output dir with dlm's mark, or a checkpoint-N / merged dir that the mark of its output
    dir proves dlm's), and its README.md is absent or dlm's by the mark (not a person's file, not a link)."""
    directory = Path(directory).expanduser()
    if not directory.is_dir() or directory.is_symlink():
        return False
    if read_owner(directory) is not None:
        card = directory / CARD
        return not os.path.lexists(card) or owns(directory, CARD, ownership_view(directory))
    parent = directory.parent
    if read_owner(parent) is None or not (CHECKPOINT_RE.match(directory.name) or directory.name == "merged"):
        return False
    return owns(parent, directory.name, ownership_view(parent)) and not (directory / CARD).is_symlink()


def _recorded(directory: Path) -> None:
    """The card is dlm's new content: its hash (or its folder's) goes into the mark."""
    if read_owner(directory) is not None:
        record_written(directory, [CARD])
    else:
        record_written(directory.parent, [directory.name])


def read_card(directory: str | Path) -> ModelCard | None:
    """dlm's card in `directory`, or None (no README.md, one that is not dlm's, or a link: dlm writes its cards as
    files, and the card a link leads to is another directory's)."""
    path = Path(directory) / CARD
    if path.is_symlink() or not path.is_file():
        return None
    try:
        card = ModelCard.load(path)
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return card if isinstance(card.data.to_dict().get(MARK), dict) else None


def card_name(directory: Path, lineage: Lineage) -> str:
    """The model-index name: the training run's id, with the checkpoint or merged copy it is."""
    run_id = (lineage.stages[-1].run_id if lineage.stages else None) or directory.name
    if CHECKPOINT_RE.match(directory.name) or directory.name == "merged":
        return f"{run_id}/{directory.name}"
    return str(run_id)


def _datasets(lineage: Lineage) -> list[str]:
    names = [str(d).split(":", 1)[0] for stage in lineage.stages for d in stage.data]
    return list(dict.fromkeys(names))


def _result(entry: dict) -> EvalResult:
    """One score as a model-index result (huggingface_hub's EvalResult)."""
    metric = entry["metric"] + ("" if entry["filter"] in (None, "none") else f" ({entry['filter']})")
    dataset = entry.get("dataset") or {}
    return EvalResult(
        task_type="text-generation",
        # the shots in the task's name, as the Open LLM Leaderboard writes "IFEval (0-Shot)": huggingface_hub
        # groups results by task and dataset, so two shot counts of one task would otherwise share one group
        task_name=f"{entry['task']} ({entry['shots']}-shot)",
        dataset_type=dataset.get("id") or entry["task"],
        dataset_name=entry["task"],
        dataset_config=dataset.get("config"),
        dataset_split=dataset.get("split"),
        dataset_args={"num_few_shot": entry["shots"]},
        metric_type=entry["metric"],
        metric_value=entry["value"],
        metric_name=metric,
        metric_config=entry["filter"],
        metric_args={
            "stderr": entry.get("stderr"),
            "stderr_method": entry.get("stderr_method"),
            "n": entry.get("n"),
            "shots": entry["shots"],
            "limit": entry.get("limit"),
            "protocol": entry.get("protocol"),
            "run_id": entry["run_id"],
            "task": entry["task"],
            "filter": entry["filter"],
            "is_group": entry.get("is_group", False),
            "contamination": entry.get("contamination"),
        },
    )


def model_index(name: str, results: list[EvalResult]) -> list[dict]:
    """huggingface_hub's `eval_results_to_model_index`, one result group per task and shot count. It groups by task
    type and dataset alone, which files two tasks of one dataset (dlm_fpb and its generative twin) or two shot
    counts under the first one's task name; its parser reads each group apart, so separate groups read back right."""
    groups: dict[tuple, list[EvalResult]] = {}
    for result in results:
        groups.setdefault((result.task_name, result.unique_identifier), []).append(result)
    return [{"name": name, "results": [eval_results_to_model_index(name, g)[0]["results"][0] for g in groups.values()]}]


def _entry(result: EvalResult) -> dict | None:
    """A model-index result of dlm's card back as an entry (None for one dlm did not write)."""
    args = result.metric_args or {}
    if "run_id" not in args or "task" not in args:
        return None
    return {
        "task": args["task"],
        "metric": result.metric_type,
        "filter": args.get("filter"),
        "value": result.metric_value,
        "stderr": args.get("stderr"),
        "stderr_method": args.get("stderr_method"),
        "n": args.get("n"),
        "shots": args.get("shots"),
        "limit": args.get("limit"),
        "protocol": args.get("protocol"),
        "run_id": args["run_id"],
        "is_group": args.get("is_group", False),
        "contamination": args.get("contamination"),
        "dataset": {"id": result.dataset_type, "config": result.dataset_config, "split": result.dataset_split},
    }


def _key(entry: dict) -> str:
    """What makes two scores the same measurement of this directory (a newer one replaces an older one)."""
    protocol = {k: v for k, v in (entry.get("protocol") or {}).items() if k != "shots"}
    return json.dumps(
        [entry["task"], entry["metric"], entry["filter"], entry["shots"], entry.get("limit"), protocol],
        sort_keys=True,
        default=str,
    )


def _fmt(value, digits: int = 4) -> str:
    return "–" if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def _body(name: str, lineage: Lineage, directory: Path, entries: list[dict], provenance: dict | None) -> str:
    stages = lineage.stages
    last = stages[-1] if stages else Stage()
    tiny = lineage.base_model == TINY
    lines = [
        f"# {name}",
        "",
        f"{lineage.approach or 'trained'} model from `{lineage.base_model}` "
        f"(domain: {lineage.domain or 'unknown'}), trained by "
        f"dlm run `{last.run_id}`"
        + (
            f"; this is its {directory.name}"
            if CHECKPOINT_RE.match(directory.name) or directory.name == "merged"
            else ""
        )
        + ("; a LoRA adapter" if lineage.adapter and directory.name != "merged" else "")
        + ".",
        "",
    ]
    if tiny:
        lines += [
            "> tiny-gpt2 demonstrates the pipeline only: a 2-layer toy model on miniature sample data says nothing "
            "about the research question.",
            "",
        ]
    lines += ["## Lineage", "", "| stage | run | mode | data | steps | LoRA | seed |", "|---|---|---|---|---|---|---|"]
    for i, stage in enumerate(stages, 1):
        shown = ("–" if v is None else v for v in (stage.steps, stage.lora, stage.seed))
        lines.append(
            f"| {i} | `{stage.run_id}` | {stage.mode} | {', '.join(stage.data)} | " + " | ".join(map(str, shown)) + " |"
        )
    lines += ["", "## Scores", ""]
    if not entries:
        lines += [
            "No evaluation of this directory is recorded yet: `dlm eval --model <this directory> --tasks ...` adds its "
            "scores here.",
        ]
    else:
        lines += [
            "Every score below was measured by dlm on this directory's weights, in the evaluation run named beside it "
            "(its run record holds the per-document outcomes). Interval = value ± 1.96 stderr.",
            "",
            "| task | metric | value | stderr | n | shots | scoring | dataset (split) | evaluation run |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for e in sorted(entries, key=lambda e: (e["task"], e["metric"], str(e["filter"]))):
            metric = e["metric"] + ("" if e["filter"] in (None, "none") else f" ({e['filter']})")
            dataset = e.get("dataset") or {}
            where = f"{dataset.get('id') or '–'} ({dataset.get('split') or '–'})"
            scoring = (e.get("protocol") or {}).get("scoring") or "–"
            subset = "" if e.get("limit") is None else f" (first {e['limit']:g})"
            lines.append(
                f"| {e['task']} | {metric} | {_fmt(e['value'])} | {_fmt(e.get('stderr'))} | "
                f"{e.get('n', '–')}{subset} | {e['shots']} | {scoring} | {where} | `{e['run_id']}` |"
            )
        lines += [
            f"\n⚠ {e['task']}: {e['contamination']} (dlm's overlap check of the training data); its scores are suspect."
            for e in entries
            if e.get("contamination") and e["metric"] == min(x["metric"] for x in entries if x["task"] == e["task"])
        ]
    if provenance:
        libraries = ", ".join(f"{k} {v}" for k, v in (provenance.get("libraries") or {}).items() if v)
        lines += [
            "",
            "## Provenance",
            "",
            f"dlm {provenance.get('dlm_version')} (git {provenance.get('git_sha')}); {libraries}; "
            f"Python {provenance.get('python')}; {provenance.get('device')}.",
        ]
    return "\n".join(lines) + "\n"


def write_card(
    directory: str | Path,
    entries: list[dict] | None = None,
    provenance: dict | None = None,
    fresh: bool = False,
) -> Path | None:
    """Write dlm's card in `directory` with `entries` (score dicts, see `_result`) added to those already on it
    (none when `fresh`: the weights were just written). Returns the path, or None where the card is not dlm's to
    write (see the module docstring) or the directory has no lineage."""
    directory = Path(directory).expanduser()
    lineage = read_lineage(directory)
    if lineage is None or not may_write(directory):
        return None
    existing = None if fresh else read_card(directory)
    if not fresh and existing is None and (directory / CARD).exists():
        return None  # a README.md that is not dlm's card (a person's), after training: left alone
    kept: dict[str, dict] = {}
    evaluations: list[str] = []
    if existing is not None:
        for result in existing.data.eval_results or []:
            entry = _entry(result)
            if entry is not None:
                kept[_key(entry)] = entry
        evaluations = list((existing.data.to_dict().get(MARK) or {}).get("evaluations") or [])
    for entry in entries or []:
        kept[_key(entry)] = entry
        if entry["run_id"] not in evaluations:
            evaluations.append(entry["run_id"])
    name = card_name(directory, lineage)
    results = [_result(e) for e in kept.values()]
    adapter = bool(lineage.adapter) and directory.name != "merged"
    base = lineage.base_model
    data = ModelCardData(
        base_model=ALIASES.get(base, base),
        datasets=_datasets(lineage) or None,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=[t for t in ("dlm", lineage.approach, lineage.domain) if t],
    )
    data.dlm = {
        "card": SCHEMA,
        "directory": "merged" if directory.name == "merged" else lineage.intermediate or "final",
        "lineage": {k: v for k, v in lineage.to_dict().items() if k != "intermediate"},
        "evaluations": evaluations,
        "provenance": provenance,
    }
    metadata = json.loads(json.dumps(data.to_dict(), default=str))
    if results:
        metadata["model-index"] = json.loads(json.dumps(model_index(name, results), default=str))
    text = (
        "---\n"
        + yaml_dump(metadata, sort_keys=False)
        + "---\n\n"
        + _body(name, lineage, directory, list(kept.values()), provenance)
    )
    written = atomic_write(directory / CARD, scrub(text))
    _recorded(directory)
    return written


def cards_after_training(output_dir: str | Path, provenance: dict | None) -> list[Path]:
    """Cards of a training run's output: fresh in the output dir and merged/ (new weights), and in every
    checkpoint-N that has no card of dlm's yet."""
    output_dir = Path(output_dir)
    written = [write_card(output_dir, provenance=provenance, fresh=True)]
    if (output_dir / "merged").is_dir():
        written.append(write_card(output_dir / "merged", provenance=provenance, fresh=True))
    for child in sorted(output_dir.iterdir()):
        if CHECKPOINT_RE.match(child.name) and child.is_dir() and read_card(child) is None:
            written.append(write_card(child, provenance=provenance, fresh=True))
    return [p for p in written if p is not None]
