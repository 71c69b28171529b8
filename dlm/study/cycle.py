"""Train -> evaluate -> record cycles: one cycle, one run record (kind "cycle").

    dlm run --model gpt2 --dataset zeroshot/twitter-financial-news-sentiment --mode sft --max_steps 500
    python main.py --model gpt2 --dataset openai/gsm8k --dataset_config main --mode sft --max_steps 800
    dlm run --model gpt2 --dataset takala/financial_phrasebank --max_steps 0      # zero-shot baseline

A cycle trains (trainers.train.train), hands the trained model object straight to the evaluator
(harness_tasks.evaluate.evaluate; no reload from disk) and writes ONE record holding both parts, plus
`approach` (zero-shot | pretrain | sft | sequential | multitask) and `domain` (of the training data).
Plans (study/plan_file.py reads them, study/plan_runner.py runs them) run many cycles, resumably.

Choices a researcher should know:
- sequential = training that starts from a local checkpoint written by an earlier *pretrain* run (found through
  the run records in --results-dir); it wins over multitask, because the base it starts from is the
  difference the study measures (a pretrain -> multi-dataset SFT run is "sequential").
- multitask = a mixture of more than one dataset, in either mode.
- Evaluating a checkpoint that an earlier run trained (no training now) inherits that run's approach and domain.
- Default tasks: the domain group of the training data (harness_tasks.catalog.DOMAIN_GROUPS); every domain group
  with --transfer, or when the data's domain has no group (pretraining corpora, code); --tasks overrides both.
- Zero-shot scores of a base model are computed once per (model, task, shots, limit, data source) and reused.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from dlm.config import MixtureSpec, RunConfig, TrainConfig, is_api_model
from dlm.data.table import lookup
from dlm.errors import UserError
from dlm.harness_tasks.catalog import DOMAIN_GROUPS, catalog, leaf_tasks, resolve_tasks
from dlm.harness_tasks.evaluate import curve_evaluator, evaluate
from dlm.harness_tasks.overlap import contamination_for_run
from dlm.secrets import scrub
from dlm.settings import with_model
from dlm.store.leases import try_lease
from dlm.store.lineage import describe_model
from dlm.store.records import RunRecord, TrainPart, load_records, read_record
from dlm.store.schema import SchemaError
from dlm.study.zero_shot import merge_reused, stored_zero_shot, zero_shot_key
from dlm.trainers.chat import check as check_chat_template
from dlm.trainers.checkpoints import read_owner
from dlm.trainers.model_check import check_model
from dlm.trainers.train import RECORD_IN_OUTPUT, train

MIXED = "mixed"  # the domain of a mixture whose datasets come from several domains


def say(message: str) -> None:
    """Progress lines, on stdout with the tables: stderr carries only the one-line error of a failed command."""

    Console(highlight=False, soft_wrap=True).print(f"[bold cyan]dlm[/] {scrub(message)}")


# --- what a run is: approach, domain, default tasks ---------------------------------------------------------
def data_domains(data: MixtureSpec | None) -> list[str]:
    """Domains of the mixture's datasets, in order, without repeats (from the dataset table)."""
    if data is None:
        return []

    domains: list[str] = []
    for part in data.parts:
        domain = lookup(part.dataset).domain
        if domain not in domains:
            domains.append(domain)
    return domains


def domain_label(domains: list[str]) -> str | None:
    if not domains:
        return None
    return domains[0] if len(domains) == 1 else MIXED


def classify_approach(train: TrainConfig | None, origin: RunRecord | None) -> str:
    """origin: the record of the run that produced the starting checkpoint (None for a base model)."""
    if train is None:
        return (origin.approach if origin is not None else None) or "zero-shot"
    if origin is not None and origin_mode(origin) == "pretrain":
        return "sequential"
    if len(train.data.parts) > 1:
        return "multitask"
    return train.mode


def origin_mode(record: RunRecord) -> str | None:
    if record.train is None:
        return None
    return record.train.mode or (record.train.config.mode if record.train.config else None)


def default_tasks(domains: list[str], transfer: bool) -> list[str]:
    """The training data's domain groups; all domain groups with --transfer or when none applies."""

    own = [DOMAIN_GROUPS[d] for d in domains if d in DOMAIN_GROUPS]
    if transfer or not own:
        return list(dict.fromkeys(own + list(DOMAIN_GROUPS.values())))
    return own


def choose_tasks(run: RunConfig, domains: list[str]) -> list[str]:
    if run.protocol.tasks:
        if run.transfer:
            say("[yellow]--tasks given, so --transfer adds nothing[/]")
        return list(run.protocol.tasks)
    return default_tasks(domains, run.transfer)


def check_tasks(tasks: list[str], allow_code_execution: bool) -> list[str]:
    """Canonical task names, checked before any training (a typo found after hours of training costs hours)."""

    names = resolve_tasks(tasks)
    ours = catalog()
    unsafe = [leaf for name in names if name in ours for leaf in leaf_tasks(name) if ours[leaf].unsafe_code]
    if unsafe and not allow_code_execution:
        raise UserError(
            f"{', '.join(unsafe)} runs model-generated code on this machine (no sandbox); "
            "add --allow-code-execution to accept that"
        )
    return names


def contamination(data: MixtureSpec, tasks: list[str], data_dir: str | None) -> list[dict]:
    """Overlap of the training data with every task to be scored (stored as train.contamination), checked before
    training so a leak is announced before hours are spent; it warns, it never stops the run."""

    reports = contamination_for_run(data, tasks, data_dir)
    for r in reports:
        if r.get("above_threshold"):
            say(
                f"[yellow]contamination: {r['duplicated']} of {r['eval_docs']} {r['eval']} documents occur in the "
                f"training data; scores on {r['eval']} are suspect (dlm data overlap shows them)[/]"
            )
    return reports


def find_origin(model: str, results_dir: str | Path) -> RunRecord | None:
    """The newest record whose training wrote the checkpoint directory `model`, if any."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return None
    target = path.resolve()
    records, _ = load_records(results_dir)
    for record in reversed(records):
        output_dir = record.train.output_dir if record.train else None
        if output_dir and Path(output_dir).expanduser().resolve() == target:
            return record
    return record_in_checkpoint(path)


def record_in_checkpoint(path: Path) -> RunRecord | None:
    """Checkpoints carry a copy of their training record (dlm_train.json), for records kept elsewhere; None when
    there is none or it does not read as a record."""
    try:
        record = read_record(path / RECORD_IN_OUTPUT)
    except (OSError, ValueError, SchemaError):
        return None
    if not record.approach and record.train is not None:  # written before the cycle classified it
        config = record.train.config
        mixture = config is not None and config.has_data() and len(config.data.parts) > 1
        record = replace(record, approach="multitask" if mixture else origin_mode(record))
    return record


# --- zero-shot reuse -----------------------------------------------------------------------------------------
def curve_evaluator_for(train_cfg: TrainConfig, tasks: list[str] | None = None):
    """The scorer of `--eval_steps` curve points: the run's evaluation protocol (shots, chat template, few-shot
    seed, ...) on `--eval_tasks`, else the run's tasks (`dlm train`: the domain group of its data), on a fixed
    stratified subset of `--eval_limit` documents per task; None without --eval_steps."""
    if not train_cfg.eval_steps:
        return None

    names = (
        [t.strip() for t in train_cfg.eval_tasks.split(",") if t.strip()]
        if train_cfg.eval_tasks
        else tasks or default_tasks(data_domains(train_cfg.data), False)
    )
    return curve_evaluator(train_cfg.protocol.with_tasks(names), train_cfg.eval_limit, train_cfg.data_dir)


def trained_not_evaluated(train_cfg) -> RunRecord | None:
    """The training record of a cycle whose training finished but whose evaluation never did (same output dir,
    complete mark, record status "incomplete"), when it is resumed."""
    if not (train_cfg.resume and train_cfg.output_dir):
        return None
    out = Path(train_cfg.output_dir).expanduser()
    if not (read_owner(out) or {}).get("complete"):
        return None
    record = record_in_checkpoint(out)
    if record is None or record.status != "incomplete" or record.train is None or record.train.config is None:
        return None
    if record.train.config.max_steps != train_cfg.max_steps:
        return None
    named = record.train.output_dir
    if not isinstance(named, str) or Path(named).expanduser().resolve() != out.resolve():
        return None  # a record copied from another dir names that dir: what is evaluated is this one, or nothing
    return record


# --- the cycle ---------------------------------------------------------------------------------------------
def run_cycle(run: RunConfig) -> dict:
    """Train (unless run.train is None), evaluate the trained model object, write one record; return it."""
    if run.train is not None:
        run.train.validate()
    data = run.train.data if run.train is not None else run.data
    origin = find_origin(run.model, run.evaluation.results_dir)
    approach = classify_approach(run.train, origin)
    if is_api_model(run.model):  # a large model behind an API: a measured baseline, not a small-model run
        approach, origin = "api", None
    elif run.train is None and origin is None:  # zero-shot only for a published model; a foreign dir is "unknown"
        evaluated = describe_model(run.model)
        approach = evaluated.approach
        if evaluated.lineage and evaluated.lineage.stages:  # a dlm checkpoint whose record is elsewhere
            last = evaluated.lineage.stages[-1]
            origin = RunRecord(
                run_id=last.run_id or "unknown",
                kind="train",
                approach=approach,
                domain=evaluated.domain,
                train=TrainPart(mode=last.mode),
            )
    domains = data_domains(data)
    domain = domain_label(domains) or (origin.domain if origin is not None and run.train is None else None)
    if not domains and origin is not None and run.train is None:
        domains = [domain] if domain and domain != MIXED else []
    tasks = check_tasks(choose_tasks(run, domains), run.evaluation.allow_code_execution)
    evaluation = replace(run.evaluation, protocol=run.protocol.with_tasks(tasks))
    evaluation.validate()  # fail before hours of training, not after
    for part in data.parts if data is not None else ():  # the config too, not only the id (data_domains)
        lookup(part.dataset, part.config)
    # the model, before any data is loaded (contamination check, training) or any step line printed
    check_model(run.model, trust_remote_code=run.evaluation.trust_remote_code, allow_pickle=run.evaluation.allow_pickle)
    if is_api_model(run.model):
        if run.train is not None:
            raise UserError(
                f"{run.model} is served by an API and cannot be trained here; evaluate it with "
                "--evaluation_only (or max_steps: 0 in a plan)"
            )
    else:
        check_chat_template(
            run.model,
            run.protocol.chat_template,
            trust_remote_code=run.evaluation.trust_remote_code,
            system_instruction=run.protocol.system_instruction,
        )

    extra = {
        "kind": "cycle",
        "approach": approach,
        "domain": domain,
        "command": list(run.command) if run.command else list(sys.argv),
        **run.tags,
    }
    if origin is not None:
        extra["starts_from"] = {
            "run_id": origin.run_id,
            "approach": origin.approach,
            "domain": origin.domain,
            "mode": origin_mode(origin),
        }

    reused: dict[str, RunRecord] = {}
    if run.train is None and approach == "zero-shot":
        key = zero_shot_key(evaluation)
        extra["zero_shot_key"] = key
        reused = stored_zero_shot(key, tasks, evaluation.results_dir)
        for run_id in dict.fromkeys(r.run_id for r in reused.values()):
            names = ", ".join(t for t, r in reused.items() if r.run_id == run_id)
            say(f"reusing stored zero-shot scores of {run.model} for {names} (run {run_id}); not recomputed")
        tasks = [t for t in tasks if t not in reused]
        if not tasks:
            return merge_reused(None, reused)
        evaluation = replace(evaluation, protocol=evaluation.protocol.with_tasks(tasks))

    model_obj = tokenizer = None
    eval_model = run.model
    pending = trained_not_evaluated(run.train) if run.train is not None else None
    if pending is not None:  # interrupted while evaluating: the training is done, only its scores are missing
        say(f"[1/2] {approach}: training finished before an interruption (run {pending.run_id}); not repeated")
        kept = pending.to_dict()
        extra.update(
            run_id=pending.run_id,
            train=kept["train"],
            model={**kept["model"], "checkpoint": str(run.train.output_dir)},
        )
        eval_model = str(run.train.output_dir)  # the dir being resumed (trained_not_evaluated: the record's own)
        say(f"[2/2] evaluating the trained model on {', '.join(tasks)}")
    elif run.train is not None:
        overlap = contamination(run.train.data, tasks, run.train.data_dir)
        say(
            f"[1/2] {approach}: training {run.model} on {run.train.data.label()} "
            f"({run.train.mode}, {run.train.max_steps} steps)"
        )
        # "incomplete" until the evaluation is done: the cycle record takes over the training record's run id,
        # written atomically over the same file, so one run is one record, and a kill while evaluating leaves a
        # record that the report and plans know is unfinished (a re-run evaluates it, without training again)
        result = train(run.train, status="incomplete", evaluator=curve_evaluator_for(run.train, tasks))
        train_block = {**(result.record.get("train") or {}), "contamination": overlap}
        extra.update(
            run_id=result.record["run_id"],
            train=train_block,
            model={**(result.record.get("model") or {}), "checkpoint": str(result.output_dir)},
        )
        model_obj, tokenizer, eval_model = result.model, result.tokenizer, str(result.output_dir)
        say(f"[2/2] evaluating the trained model on {', '.join(tasks)}")
    else:
        say(f"{approach}: evaluating {run.model} as it is on {', '.join(tasks)}")

    with _evaluation_lease(run, extra.get("run_id")):
        record = evaluate(with_model(evaluation, eval_model), model=model_obj, tokenizer=tokenizer, extra=extra)
    return merge_reused(record, reused) if reused else record


def _evaluation_lease(run: RunConfig, run_id: str | None):
    """While a trained run outside a plan is evaluated, its "incomplete" record is leased by run id, so that
    `dlm report` shows it as running, not interrupted (a plan run already holds its plan key's lease)."""
    if run_id is None or run.tags.get("plan_key"):
        return contextlib.nullcontext()
    lease = try_lease(run.evaluation.results_dir, run_id)
    return contextlib.nullcontext() if isinstance(lease, str) else lease
