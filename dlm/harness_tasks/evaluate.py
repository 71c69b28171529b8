"""`dlm eval`: score a model on the task plugins with lm-eval, in-process, and write one run record.

Order matters for the user: every check that can fail on their input (task names, code-execution opt-in, model
path, few-shot pool size, gated data) runs before the model is loaded and before anything is written.

Why in-process with our own HFLM: lm-eval ignores `batch_size` when handed a model object unless HFLM gets it
(its issue #3207), a model fresh from training should not be reloaded from disk, and
`TaskManager(include_defaults=False)` skips indexing ~15k built-in task files (about 6 s) when only our tasks are
asked for. No `use_cache`: lm-eval's response cache is keyed by request text, not by weights, so a later checkpoint
would get an earlier one's answers.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import datasets
import lm_eval
import torch
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager

from dlm.config import EVAL_DTYPE, EvalConfig, EvalProtocol, is_api_model
from dlm.data import hub
from dlm.data.fingerprint import data_source
from dlm.errors import UserError
from dlm.harness_tasks.api_models import (
    ApiIncomplete,
    check_generative,
    check_key,
    parse,
    run_api,
)
from dlm.harness_tasks.card_scores import add_scores
from dlm.harness_tasks.catalog import TASKS_DIR, catalog, leaf_tasks, resolve_tasks
from dlm.harness_tasks.checkpoint_curve import evaluate_checkpoints
from dlm.harness_tasks.lm_eval_files import HarnessOutput, new_tracker, write_files
from dlm.harness_tasks.outcomes import bootstrap_stderr, from_samples
from dlm.harness_tasks.protocol import protocols, run_fields
from dlm.quiet import quiet_lm_eval, with_own_progress
from dlm.secrets import forget_secrets
from dlm.store.lineage import Evaluated, describe_model
from dlm.store.outcomes import write_results
from dlm.store.provenance import new_run_id, provenance, timestamp
from dlm.store.records import read_record, scores_from_lm_eval, write_record
from dlm.trainers.chat import applied_to, resolve
from dlm.trainers.chat import check as check_chat_template
from dlm.trainers.model_check import check_model
from dlm.trainers.models import (
    adapter_base,
    hub_revision,
    is_adapter_dir,
    load_model,
    resolve_model,
)
from dlm.trainers.tiny import cache_root


def evaluate(cfg: EvalConfig, model=None, tokenizer=None, extra: dict | None = None, write: bool = True) -> dict:
    """Score cfg.protocol on the model and return the eval record (also written to cfg.results_dir, with its
    per-document outcomes beside it, unless write=False).

    `model`/`tokenizer`: an already loaded model (e.g. straight from training); its train/eval mode is restored.
    `extra`: top-level record fields to add (approach, domain, train, ...); the caller's values win.
    """
    cfg.validate()
    if cfg.checkpoints:  # one curve over the saved checkpoints of a training run
        return evaluate_checkpoints(cfg, evaluate)
    record, outcomes, harness = score(cfg, model, tokenizer, extra)
    if write and "dry_run" not in record:
        path = write_results(cfg.results_dir, record, outcomes)
        _progress(f"record written: {path}")
        typed = read_record(path)  # exactly what was written (checked, scrubbed) is what leaves dlm
        if cfg.output_path and harness is not None:  # lm-eval's own files, once the record they name exists
            for written in write_files(cfg, harness, typed):
                _progress(f"lm-eval file written: {written}")
        card = add_scores(cfg, typed)  # the scored directory's model card, where dlm trained it
        if card is not None:
            _progress(f"scores added to the model card {card}")
    return record


def score(
    cfg: EvalConfig, model=None, tokenizer=None, extra: dict | None = None
) -> tuple[dict, dict, HarnessOutput | None]:
    """(the eval record, its per-document outcomes {task: {filter: block}}, what lm-eval returned (for its own
    files; None for a dry run)), nothing written."""
    started = time.time()
    names = resolve_tasks(cfg.protocol.tasks)
    _check_opt_ins(names, cfg)
    api = None
    if is_api_model(cfg.model):
        api = parse(cfg.model, cfg.base_url, cfg.api_key_env)
        check_key(api, needed=not cfg.dry_run)  # a dry run sends nothing: costs can be planned without a key
    elif model is None:
        check_model(cfg.model, cfg.peft, cfg.trust_remote_code, cfg.allow_pickle)  # before any data is loaded
        check_chat_template(
            cfg.model, cfg.protocol.chat_template, cfg.peft, cfg.trust_remote_code, cfg.protocol.system_instruction
        )
    _prepare_environment()
    tracker = new_tracker()
    harness = partial(run_harness, tracker=tracker)

    with quiet_lm_eval():
        _progress(f"loading {len(names)} task(s): {', '.join(names)}")
        task_manager = task_manager_for(names, cfg.data_dir)
        loaded = load_tasks(task_manager, names)
        check_fewshot(loaded["tasks"], cfg.protocol.num_fewshot)
        check_limit(loaded["tasks"], cfg.protocol.limit)
        top_level = [loaded["groups"].get(name) or loaded["tasks"][name] for name in names]
        if api is not None:
            check_generative(loaded["tasks"])
            run = _run_api_or_record_why_not(api, cfg, top_level, task_manager, harness)
            if run.get("dry_run"):
                return {"dry_run": run["estimate"], "model": {"name": cfg.model, "api": api.to_dict()}}, {}, None
            results, template, model_info, dtype = run["results"], run["template"], run["model_info"], None
        else:
            results, template, model_info, dtype = _run_local(cfg, model, tokenizer, top_level, task_manager, harness)

    samples = results.pop("samples", None) or {}
    outcomes = from_samples(samples, results.get("versions") or {})

    protocol = protocols(
        loaded["tasks"],
        results.get("group_subtasks") or {},
        {
            **run_fields(template, cfg.protocol.system_instruction, cfg.protocol.fewshot_as_multiturn),
            "data_source": data_source(cfg.data_dir),
        },
    )
    for task, documents in scored_documents(outcomes, results.get("group_subtasks") or {}).items():
        if task in protocol:
            protocol[task] = {**protocol[task], "documents": documents}
    record = build_record(cfg, results, model_info, time.time() - started, extra, outcomes, protocol)
    record["eval"]["dtype"] = dtype
    if api is not None:
        record["api"] = run["api"]
    return record, outcomes, HarnessOutput(results, samples, tracker)


def _run_api_or_record_why_not(api, cfg: EvalConfig, top_level, task_manager, harness) -> dict:
    """An API run whose requests did not all get answers leaves an "incomplete" record (no scores) and exits."""

    try:
        return run_api(api, cfg, top_level, task_manager, harness)
    except ApiIncomplete as err:
        write_record(
            cfg.results_dir,
            {
                "run_id": new_run_id(f"eval-{api.name}"),
                "kind": "eval",
                "status": "incomplete",
                "created_at": timestamp(),
                "command": list(sys.argv),
                "model": {"name": cfg.model, "api": api.to_dict()},
                "approach": "api",
                "error": str(err),
                "api": getattr(err, "api", None),
                "eval": {"config": cfg.to_dict(), "tasks": list(cfg.protocol.tasks), "scores": []},
            },
        )
        raise


def _run_local(cfg: EvalConfig, model, tokenizer, top_level: list, task_manager, harness=None):
    """(lm-eval results, chat template, record.model, dtype) of a model evaluated in this process; `harness`:
    run_harness with its tracker bound."""
    model_info = {"name": cfg.model, "resolved": None, "revision": None, "peft": cfg.peft, "base_model": None}
    if model is None:
        _progress(f"loading model {cfg.model}" + (f" + adapter {cfg.peft}" if cfg.peft else ""))
        model, tokenizer, model_info = load_for_eval(cfg)
    elif tokenizer is None:
        raise UserError("evaluate() got a model object without its tokenizer; pass tokenizer= as well")
    if cfg.allow_code_execution:  # the generated programs run as children of this process
        forgotten = forget_secrets()
        if forgotten:
            _progress(
                f"{len(forgotten)} secret variable(s) removed from this process before running "
                f"model-generated code: {', '.join(forgotten)}"
            )

    template = resolve(tokenizer, cfg.protocol.chat_template, cfg.model, cfg.protocol.system_instruction)
    was_training = bool(getattr(model, "training", False))
    try:
        with applied_to(tokenizer, template):
            results = (harness or run_harness)(
                model, tokenizer, top_level, task_manager, cfg, log_samples=True, chat=template is not None
            )
    finally:
        if was_training:
            model.train()  # HFLM switched it to eval mode; the caller may go on training
    return results, template, model_info, _dtype_of(model)


def curve_evaluator(protocol: EvalProtocol, per_task: float | None, data_dir: str | None = None):
    """`(model, tokenizer) -> (score dicts, outcomes)` for learning-curve points (trainers/curve.py): the run's own
    protocol (shots, chat template, few-shot seed, ...) on the in-memory model, as `dlm eval` would score it, on a
    fixed subset of `per_task` documents of every task (`curve_subset`), the same at every point; nothing written.
    Task names are checked, and the subset drawn, now, before training starts. A group is scored task by task, each
    with its own line and time, so a point over 11 tasks says what it is doing (groups' aggregates are not curve
    points)."""
    ours = catalog()
    names = resolve_tasks(protocol.tasks)
    tasks = list(dict.fromkeys(leaf for name in names for leaf in (leaf_tasks(name) if name in ours else [name])))
    subsets = dict(curve_subset(tasks, per_task, protocol.fewshot_seed, data_dir)) if per_task else {}
    configs = [
        EvalConfig(
            model="(model in training)",
            data_dir=data_dir,
            protocol=replace(
                protocol,
                tasks=(task,),
                limit=None,
                documents=((task, subsets[task]),) if task in subsets else None,
            ),
        ).validate()
        for task in tasks
    ]

    def score_point(model, tokenizer) -> tuple[list[dict], dict]:
        scores, outcomes = [], {}
        for k, cfg in enumerate(configs, 1):
            started = time.time()
            record, found, _ = score(cfg, model=model, tokenizer=tokenizer)
            scores += record["eval"]["scores"]
            outcomes.update(found)
            shown = ", ".join(
                f"{s['metric']} {s['value']:.3f}" for s in record["eval"]["scores"][:2] if s.get("value") is not None
            )
            _progress(
                f"curve task {k}/{len(configs)}: {cfg.protocol.tasks[0]} {shown} in {time.time() - started:.1f} s"
            )
        return scores, outcomes

    return score_point


def curve_subset(
    names: list[str], per_task: float, seed: int, data_dir: str | None = None
) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """A fixed subset of each task's scored documents for learning-curve points: `per_task` documents (a share when
    < 1), stratified by gold answer (each label keeps its share of the split, largest remainders first), drawn at
    random within each label with `seed`. Never the first N rows: real splits come ordered (TFNS validation is in
    label blocks, so its first 50 tweets hold no neutral one). The documents' hashes are in each point's outcomes."""
    with quiet_lm_eval():
        loaded = load_tasks(task_manager_for(names, data_dir), names)
    rng = random.Random(seed)
    out = []
    for task_name, task in sorted(loaded["tasks"].items()):
        docs = list(task.eval_docs)
        size = len(docs)
        wanted = min(size, max(1, round(per_task * size) if per_task < 1 else int(per_task)))
        by_label: dict[str, list[int]] = {}
        for index, doc in enumerate(docs):
            by_label.setdefault(repr(task.doc_to_target(doc)), []).append(index)
        if len(by_label) > max(20, size // 2):  # free-form answers (QA, numbers): a plain random draw
            chosen = rng.sample(range(size), wanted)
        else:
            quotas = {label: wanted * len(members) / size for label, members in by_label.items()}
            counts = {label: int(q) for label, q in quotas.items()}
            for label in sorted(quotas, key=lambda k: quotas[k] - counts[k], reverse=True)[
                : wanted - sum(counts.values())
            ]:
                counts[label] += 1
            chosen = [i for label, members in sorted(by_label.items()) for i in rng.sample(members, counts[label])]
        out.append((task_name, tuple(sorted(chosen))))
    return tuple(out)


def _dtype_of(model) -> str | None:
    for parameter in model.parameters():
        return str(parameter.dtype).replace("torch.", "")
    return None


# --- checks that need no model ------------------------------------------------------------------------------------
def _check_opt_ins(names: list[str], cfg: EvalConfig) -> None:
    ours = catalog()
    unsafe = [leaf for name in names if name in ours for leaf in leaf_tasks(name) if ours[leaf].unsafe_code]
    if unsafe and not cfg.allow_code_execution:
        raise UserError(
            f"{', '.join(unsafe)} runs model-generated code on this machine (no sandbox); "
            "add --allow-code-execution to accept that"
        )


def check_fewshot(tasks: dict, num_fewshot: int | None) -> None:
    """k larger than a task's few-shot pool is a UserError (lm-eval would crash mid-run with a bare ValueError).

    The pool is the task's fewshot_split; when that is also the scored split, the scored document is excluded,
    so one fewer is available.
    """
    for name, task in tasks.items():
        default = task.get_config("num_fewshot")
        k = default if num_fewshot is None or default == 0 else num_fewshot  # lm-eval never overrides an explicit 0
        if not k:
            continue
        docs = task.fewshot_docs()
        pool = len(docs) if docs is not None else 0
        if task.get_config("fewshot_split") is not None and task.get_config("fewshot_split") == task.get_config(
            "test_split"
        ):
            pool -= 1
        if k > pool:
            split = task.get_config("fewshot_split") or "its fallback split"
            raise UserError(
                f"--num_fewshot {k} is more than the {max(pool, 0)} examples {name} can draw from "
                f"({split}); use --num_fewshot {max(pool, 0)} or less"
            )


def check_limit(tasks: dict, limit: float | None) -> None:
    """A share (--limit < 1) that is less than one document of a task: lm-eval rounds it up to one document and
    the score of that one document would be recorded as the task's."""
    if limit is None or limit >= 1:
        return
    for name, task in tasks.items():
        n = len(task.eval_docs)
        if n and limit * n < 1:
            raise UserError(
                f"--limit {limit:g} of the {n} documents of {name} is less than one document; give a share of at "
                f"least {1 / n:.3g}, a count (--limit 50), or leave --limit out for the whole test set"
            )


# --- lm-eval --------------------------------------------------------------------------------------------------------
def task_manager_for(names: list[str], data_dir: str | None = None):
    """Our tasks only, unless a built-in lm-eval task was asked for; `data_dir` reaches harness_tasks/loader.py
    through the task metadata."""

    builtin = any(name not in catalog() for name in names)
    if builtin:
        hub.online()  # lm-eval's own tasks read the Hub: asked once, and offline at once when it does not answer
    metadata = {"data_dir": str(data_dir)} if data_dir else None
    return TaskManager(include_path=str(TASKS_DIR), include_defaults=builtin, metadata=metadata)


def load_tasks(task_manager, names: list[str]) -> dict:
    """Build the tasks (this reads their data). Our loader raises UserError itself; lm-eval's built-in tasks read
    the Hub directly, so an unreachable Hub becomes a one-line error here too."""

    try:
        return task_manager.load(names)
    except (ConnectionError, datasets.exceptions.DatasetNotFoundError) as err:
        reason = str(err).splitlines()[0] if str(err) else err.__class__.__name__
        raise UserError(
            f"cannot load the data of {', '.join(names)}: {reason}; go online (unset HF_HUB_OFFLINE / "
            f"HF_DATASETS_OFFLINE) or use the dlm_ tasks with --data-dir"
        ) from None


def run_harness(
    model,
    tokenizer,
    tasks: list,
    task_manager,
    cfg: EvalConfig,
    log_samples: bool = False,
    chat: bool = False,
    lm=None,
    tracker=None,
) -> dict:
    """lm-eval's simple_evaluate on an in-memory model with the batch size actually applied. `chat`: render the
    prompts in the tokenizer's chat template (trainers.chat.applied_to has set the one asked for). `lm`: an lm-eval
    model object to use instead (an API model: harness_tasks/api_models.py). `tracker`: lm-eval's
    EvaluationTracker, which simple_evaluate tells the chat template and system instruction (its files need them)."""

    protocol = cfg.protocol
    lm = lm or with_own_progress(HFLM(pretrained=model, tokenizer=tokenizer, batch_size=protocol.eval_batch_size))
    limit = protocol.limit
    if limit is not None and float(limit).is_integer():
        limit = int(limit)  # lm-eval: an int is "first N documents", a float < 1 a fraction
    seed = protocol.fewshot_seed
    return lm_eval.simple_evaluate(
        model=lm,
        tasks=tasks,
        task_manager=task_manager,
        num_fewshot=protocol.num_fewshot,
        limit=limit,
        samples=protocol.subset(),
        bootstrap_iters=protocol.bootstrap_iters,
        log_samples=log_samples,
        use_cache=None,
        cache_requests=False,
        confirm_run_unsafe_code=cfg.allow_code_execution,
        apply_chat_template=chat,
        system_instruction=protocol.system_instruction,
        fewshot_as_multiturn=chat and protocol.fewshot_as_multiturn,
        numpy_random_seed=seed,
        torch_random_seed=seed,
        fewshot_random_seed=seed,
        evaluation_tracker=tracker,
    )


def load_for_eval(cfg: EvalConfig):
    """(model, tokenizer, record.model) via trainers.models, on cfg.device (default: cuda if available)."""

    # float32 like a model handed over from training: a bf16 checkpoint scored in bf16 would not compare
    model, tokenizer = load_model(
        cfg.model,
        peft=cfg.peft,
        dtype=EVAL_DTYPE,
        trust_remote_code=cfg.trust_remote_code,
        allow_pickle=cfg.allow_pickle,
    )
    device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device)
    resolved = resolve_model(cfg.model)
    if cfg.peft:  # base + --peft ADAPTER
        adapter, base = cfg.peft, resolved
    elif is_adapter_dir(resolved):  # an adapter dir given as the model: its base comes from adapter_config.json
        adapter, base = resolved, adapter_base(resolved)
    else:
        adapter, base = None, None
    info = {
        "name": cfg.model,
        "resolved": resolved,
        "revision": hub_revision(base or resolved),
        "peft": adapter,
        "base_model": base,
    }
    return model, tokenizer, info


# --- the record -----------------------------------------------------------------------------------------------------
def build_record(
    cfg: EvalConfig,
    results: dict,
    model_info: dict,
    wall_time_s: float,
    extra: dict | None,
    outcomes: dict | None = None,
    protocol: dict | None = None,
) -> dict:

    # what was scored: from the lineage beside the weights; an API model is a large-model baseline, not a run
    evaluated = (
        Evaluated(role="api", approach="api") if is_api_model(cfg.model) else describe_model(cfg.model, cfg.peft)
    )
    raw = {key: value for key, value in results.items() if key != "samples"}
    record = {
        "run_id": new_run_id(f"eval-{Path(str(cfg.model)).name}"),
        "kind": "eval",
        "status": "ok",
        "created_at": timestamp(),
        "command": list(sys.argv),
        "provenance": provenance(),
        "model": model_info,
        "approach": evaluated.approach,
        "domain": evaluated.domain,
        "evaluated": asdict(evaluated),
        "eval": {
            "config": cfg.to_dict(),
            "tasks": list(cfg.protocol.tasks),
            "scores": [
                s.to_dict()
                for s in with_protocol(
                    with_bootstrap_stderr(
                        scores_from_lm_eval(results), outcomes, cfg.protocol.bootstrap_iters, cfg.protocol.fewshot_seed
                    ),
                    protocol or {},
                )
            ],
            "wall_time_s": round(wall_time_s, 3),
            "raw": raw,
        },
    }
    record.update(extra or {})
    return record


def scored_documents(outcomes: dict, group_subtasks: dict) -> dict[str, str]:
    """{task or group: sha256 over the hashes of the documents it scored}: two scores of one task compare only
    when they were made on the same documents (a --limit, a subset or another snapshot make another set)."""
    hashes = {
        task: sorted({doc for block in filters.values() for doc in block.docs}) for task, filters in outcomes.items()
    }

    def of(name: str, depth: int = 0) -> list[str]:
        if name in hashes or depth > 20:
            return hashes.get(name, [])
        return sorted({doc for child in group_subtasks.get(name, []) for doc in of(child, depth + 1)})

    names = set(hashes) | set(group_subtasks)
    return {name: hashlib.sha256("\n".join(of(name)).encode()).hexdigest()[:16] for name in names if of(name)}


def with_protocol(scores: list, protocol: dict[str, dict]) -> list:
    """Each score's protocol (harness_tasks/protocol.py): its task's, with the shots it was scored with."""
    for score in scores:
        if score.task in protocol:
            score.protocol = {**protocol[score.task], "shots": score.num_fewshot}
    return scores


def with_bootstrap_stderr(scores: list, outcomes: dict | None, iters: int, seed: int) -> list:
    """lm-eval bootstraps only its own aggregations: F1, MCC, headline F1, BLEU... come back without a stderr.
    Those get one from `iters` resamples of the per-document outcomes; lm-eval's own stay (stderr_method says which)."""

    for score in scores:
        if score.stderr is not None:
            score.stderr_method = "lm-eval"
            continue
        block = ((outcomes or {}).get(score.task) or {}).get(score.filter)
        if block is not None and iters > 0:
            score.stderr = bootstrap_stderr(block, score.metric, iters, seed)
            score.stderr_method = "bootstrap" if score.stderr is not None else None
    return scores


# --- process setup ---------------------------------------------------------------------------------------------------
def _prepare_environment() -> None:

    # lm-eval's request cache lives inside the installed package unless told otherwise (a shared venv!).
    os.environ.setdefault("LM_HARNESS_CACHE_PATH", str(cache_root() / "lm-eval-cache"))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _progress(message: str) -> None:
    # stdout, like the pipeline's progress: stderr carries only the one-line error of a failed command
    sys.stdout.write(f"[dlm eval] {message}\n")
    sys.stdout.flush()
