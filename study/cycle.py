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

import sys
from dataclasses import dataclass, field
from pathlib import Path

from trainers.config import EvalConfig, MixtureSpec, TrainConfig
from dlm_data.errors import UserError
from study.zero_shot import merge_reused, stored_zero_shot, zero_shot_key

MIXED = "mixed"  # the domain of a mixture whose datasets come from several domains


@dataclass
class Cycle:
    """One train -> evaluate cycle. `train` None means evaluate the model as it is (zero-shot baseline)."""

    model: str
    data: MixtureSpec | None = None
    train: TrainConfig | None = None
    tasks: str | None = None  # comma-separated tasks/groups; None: chosen from the data's domain
    transfer: bool = False  # also score the other domains' groups
    num_fewshot: int | None = None
    limit: float | None = None
    eval_batch_size: int = 8
    allow_code_execution: bool = False
    data_dir: str | None = None
    results_dir: str = "results/runs"
    trust_remote_code: bool = False
    allow_pickle: bool = False
    bootstrap_iters: int = 1000
    chat_template: str | None = None
    system_instruction: str | None = None
    fewshot_as_multiturn: bool = False
    api: dict = field(default_factory=dict)  # base_url, api_key_env, concurrency, max_wait, max_cost, no_cache
    command: list[str] | None = None  # recorded as the run's command; default sys.argv
    tags: dict = field(default_factory=dict)  # merged into the record (plans put their run key here)


def say(message: str) -> None:
    """Progress lines, on stdout with the tables: stderr carries only the one-line error of a failed command."""
    from rich.console import Console

    Console(highlight=False, soft_wrap=True).print(f"[bold cyan]dlm[/] {message}")


# --- what a run is: approach, domain, default tasks ---------------------------------------------------------
def data_domains(data: MixtureSpec | None) -> list[str]:
    """Domains of the mixture's datasets, in order, without repeats (from the dataset table)."""
    if data is None:
        return []
    from dlm_data.data import lookup

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


def classify_approach(train: TrainConfig | None, origin: dict | None) -> str:
    """origin: the record of the run that produced the starting checkpoint (None for a base model)."""
    if train is None:
        return (origin or {}).get("approach") or "zero-shot"
    if origin is not None and origin_mode(origin) == "pretrain":
        return "sequential"
    if len(train.data.parts) > 1:
        return "multitask"
    return train.mode


def origin_mode(record: dict) -> str | None:
    train = record.get("train") or {}
    return train.get("mode") or (train.get("config") or {}).get("mode")


def default_tasks(domains: list[str], transfer: bool) -> list[str]:
    """The training data's domain groups; all domain groups with --transfer or when none applies."""
    from harness_tasks.catalog import DOMAIN_GROUPS

    own = [DOMAIN_GROUPS[d] for d in domains if d in DOMAIN_GROUPS]
    if transfer or not own:
        return list(dict.fromkeys(own + list(DOMAIN_GROUPS.values())))
    return own


def choose_tasks(cycle: Cycle, domains: list[str]) -> list[str]:
    if cycle.tasks:
        if cycle.transfer:
            say("[yellow]--tasks given, so --transfer adds nothing[/]")
        return [t.strip() for t in cycle.tasks.split(",") if t.strip()]
    return default_tasks(domains, cycle.transfer)


def check_tasks(tasks: list[str], allow_code_execution: bool) -> list[str]:
    """Canonical task names, checked before any training (a typo found after hours of training costs hours)."""
    from harness_tasks.catalog import catalog, leaf_tasks, resolve_tasks

    names = resolve_tasks(tasks)
    ours = catalog()
    unsafe = [leaf for name in names if name in ours for leaf in leaf_tasks(name) if ours[leaf].unsafe_code]
    if unsafe and not allow_code_execution:
        raise UserError(f"{', '.join(unsafe)} runs model-generated code on this machine (no sandbox); "
                        "add --allow-code-execution to accept that")
    return names


def contamination(data: MixtureSpec, tasks: list[str], data_dir: str | None) -> list[dict]:
    """Overlap of the training data with every task to be scored (stored as train.contamination), checked before
    training so a leak is announced before hours are spent; it warns, it never stops the run."""
    from harness_tasks.overlap import contamination_for_run

    reports = contamination_for_run(data, tasks, data_dir)
    for r in reports:
        if r.get("above_threshold"):
            say(f"[yellow]contamination: {r['duplicated']} of {r['eval_docs']} {r['eval']} documents occur in the "
                f"training data; scores on {r['eval']} are suspect (dlm data overlap shows them)[/]")
    return reports


def find_origin(model: str, results_dir: str | Path) -> dict | None:
    """The newest record whose training wrote the checkpoint directory `model`, if any."""
    path = Path(model).expanduser()
    if not path.is_dir():
        return None
    from dlm_data.records import load_records

    target = path.resolve()
    records, _ = load_records(results_dir)
    for record in reversed(records):
        output_dir = (record.get("train") or {}).get("output_dir")
        if output_dir and Path(output_dir).expanduser().resolve() == target:
            return record
    return _record_in_checkpoint(path)


def _record_in_checkpoint(path: Path) -> dict | None:
    """Checkpoints carry a copy of their training record (dlm_train.json), for records kept elsewhere."""
    import json

    from trainers.train import RECORD_IN_OUTPUT

    try:
        record = json.loads((path / RECORD_IN_OUTPUT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and not record.get("approach"):  # written before the cycle classified it
        record["approach"] = "multitask" if len(((record.get("train") or {}).get("data") or {}).get("parts")
                                                 or []) > 1 else origin_mode(record)
    return record if isinstance(record, dict) else None


# --- zero-shot reuse -----------------------------------------------------------------------------------------
def curve_evaluator_for(train_cfg, tasks: list[str] | None = None):
    """The scorer of `--eval_steps` curve points: `--eval_tasks`, else the run's tasks (`dlm train`: the domain
    group of its data); None without --eval_steps."""
    if not train_cfg.eval_steps:
        return None
    from harness_tasks.evaluate import curve_evaluator

    names = ([t.strip() for t in train_cfg.eval_tasks.split(",") if t.strip()] if train_cfg.eval_tasks
             else tasks or default_tasks(data_domains(train_cfg.data), False))
    return curve_evaluator(names, train_cfg.eval_limit, train_cfg.data_dir, seed=train_cfg.seed)


def trained_not_evaluated(train_cfg) -> dict | None:
    """The training record of a cycle whose training finished but whose evaluation never did (same output dir,
    complete mark, record status "incomplete"), when it is resumed."""
    import json

    from trainers.checkpoints import read_owner
    from trainers.train import RECORD_IN_OUTPUT

    if not (train_cfg.resume and train_cfg.output_dir):
        return None
    out = Path(train_cfg.output_dir).expanduser()
    if not (read_owner(out) or {}).get("complete"):
        return None
    try:
        record = json.loads((out / RECORD_IN_OUTPUT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("status") != "incomplete":
        return None
    if ((record.get("train") or {}).get("config") or {}).get("max_steps") != train_cfg.max_steps:
        return None
    return record


# --- the cycle ---------------------------------------------------------------------------------------------
def run_cycle(cycle: Cycle) -> dict:
    """Train (unless cycle.train is None), evaluate the trained model object, write one record; return it."""
    if cycle.train is not None:
        cycle.train.validate()
    data = cycle.train.data if cycle.train is not None else cycle.data
    origin = find_origin(cycle.model, cycle.results_dir)
    approach = classify_approach(cycle.train, origin)
    evaluated = None
    from trainers.config import is_api_model

    if is_api_model(cycle.model):  # a large model behind an API: a measured baseline, not a small-model run
        approach, origin = "api", None
    elif cycle.train is None and origin is None:  # zero-shot only for a published model; a foreign dir is "unknown"
        from dlm_data.lineage import describe_model

        evaluated = describe_model(cycle.model)
        approach = evaluated["approach"]
        if evaluated["lineage"]:
            last = evaluated["lineage"]["stages"][-1]
            origin = {"run_id": last.get("run_id"), "approach": approach, "domain": evaluated["domain"],
                      "train": {"mode": last.get("mode")}}
    domains = data_domains(data)
    domain = domain_label(domains) or ((origin or {}).get("domain") if cycle.train is None else None)
    if not domains and origin is not None and cycle.train is None:
        domains = [domain] if domain and domain != MIXED else []
    tasks = check_tasks(choose_tasks(cycle, domains), cycle.allow_code_execution)
    EvalConfig(model=cycle.model, tasks=tasks, num_fewshot=cycle.num_fewshot, limit=cycle.limit,
               batch_size=cycle.eval_batch_size, chat_template=cycle.chat_template,
               fewshot_as_multiturn=cycle.fewshot_as_multiturn,
               **cycle.api).validate()  # fail before hours of training, not after
    from trainers.config import is_api_model

    if is_api_model(cycle.model):
        if cycle.train is not None:
            raise UserError(f"{cycle.model} is served by an API and cannot be trained here; evaluate it with "
                            "--evaluation_only (or max_steps: 0 in a plan)")
    else:
        from trainers.chat import check as check_chat_template

        check_chat_template(cycle.model, cycle.chat_template, trust_remote_code=cycle.trust_remote_code)

    extra = {"kind": "cycle", "approach": approach, "domain": domain, "command": cycle.command or list(sys.argv),
             **cycle.tags}
    if origin is not None:
        extra["starts_from"] = {"run_id": origin.get("run_id"), "approach": origin.get("approach"),
                                "domain": origin.get("domain"), "mode": origin_mode(origin)}

    reused: dict[str, dict] = {}
    if cycle.train is None and approach == "zero-shot":
        key = zero_shot_key(cycle)
        extra["zero_shot_key"] = key
        reused = stored_zero_shot(key, tasks, cycle.results_dir)
        for run_id in dict.fromkeys(r["run_id"] for r in reused.values()):
            names = ", ".join(t for t, r in reused.items() if r["run_id"] == run_id)
            say(f"reusing stored zero-shot scores of {cycle.model} for {names} (run {run_id}); not recomputed")
        tasks = [t for t in tasks if t not in reused]
        if not tasks:
            return merge_reused(None, reused)

    model_obj = tokenizer = None
    eval_model = cycle.model
    pending = trained_not_evaluated(cycle.train) if cycle.train is not None else None
    if pending is not None:  # interrupted while evaluating: the training is done, only its scores are missing
        say(f"[1/2] {approach}: training finished before an interruption (run {pending['run_id']}); not repeated")
        extra.update(run_id=pending["run_id"], train=pending.get("train"),
                     model={**(pending.get("model") or {}), "checkpoint": pending["train"]["output_dir"]})
        eval_model = pending["train"]["output_dir"]
        say(f"[2/2] evaluating the trained model on {', '.join(tasks)}")
    elif cycle.train is not None:
        from trainers.train import train

        overlap = contamination(cycle.train.data, tasks, cycle.data_dir)
        say(f"[1/2] {approach}: training {cycle.model} on {cycle.train.data.label()} "
            f"({cycle.train.mode}, {cycle.train.max_steps} steps)")
        # "incomplete" until the evaluation is done: the cycle record takes over the training record's run id,
        # written atomically over the same file, so one run is one record, and a kill while evaluating leaves a
        # record that the report and plans know is unfinished (a re-run evaluates it, without training again)
        result = train(cycle.train, status="incomplete", evaluator=curve_evaluator_for(cycle.train, tasks))
        train_block = {**(result.record.get("train") or {}), "contamination": overlap}
        extra.update(run_id=result.record["run_id"], train=train_block,
                     model={**(result.record.get("model") or {}), "checkpoint": str(result.output_dir)})
        model_obj, tokenizer, eval_model = result.model, result.tokenizer, str(result.output_dir)
        say(f"[2/2] evaluating the trained model on {', '.join(tasks)}")
    else:
        say(f"{approach}: evaluating {cycle.model} as it is on {', '.join(tasks)}")

    from harness_tasks.evaluate import evaluate

    cfg = EvalConfig(model=eval_model, tasks=tasks, num_fewshot=cycle.num_fewshot, limit=cycle.limit,
                     batch_size=cycle.eval_batch_size, allow_code_execution=cycle.allow_code_execution,
                     data_dir=cycle.data_dir, results_dir=cycle.results_dir,
                     trust_remote_code=cycle.trust_remote_code, bootstrap_iters=cycle.bootstrap_iters,
                     allow_pickle=cycle.allow_pickle, chat_template=cycle.chat_template,
                     system_instruction=cycle.system_instruction,
                     fewshot_as_multiturn=cycle.fewshot_as_multiturn, **cycle.api).validate()
    record = evaluate(cfg, model=model_obj, tokenizer=tokenizer, extra=extra)
    return merge_reused(record, reused) if reused else record
