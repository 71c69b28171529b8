"""Zero-shot scores are computed once: what makes two zero-shot evaluations the same (`zero_shot_key`: model
identity, shots, limit, data source and snapshot, dtype, prompt format), and finding stored scores to reuse.
"""
from __future__ import annotations

import os
from pathlib import Path

from dlm_data.errors import UserError


def model_identity(name: str) -> str:
    """What makes two zero-shot evaluations of a model the same: hub id / alias, or the dir plus its weights' mtime."""
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) + [path / "config.json"]
        stamp = max((f.stat().st_mtime_ns for f in files if f.exists()), default=0)
        return f"{path.resolve()}@{stamp}"
    try:
        from trainers.models import resolve_model

        resolved = str(resolve_model(name))
    except (ImportError, UserError):
        return name
    return name if Path(resolved).is_dir() else resolved  # aliases built locally (tiny-gpt2) keep their name


def data_source(data_dir: str | None) -> str:
    chosen = data_dir or os.environ.get("DLM_DATA_DIR")
    return str(Path(chosen).expanduser().resolve()) if chosen else "hub"


def snapshot_stamp(data_dir: str | None) -> str | None:
    """The stamp of a local snapshot dir's files (dlm_data.data.snapshot_stamp): an edited snapshot is another source."""
    from dlm_data.data import snapshot_stamp as stamp

    chosen = data_dir or os.environ.get("DLM_DATA_DIR")
    if not chosen or not Path(chosen).expanduser().is_dir():
        return None
    return stamp(Path(chosen).expanduser())


def zero_shot_key(cycle) -> dict:
    from harness_tasks.evaluate import EVAL_DTYPE

    from trainers.chat import text_hash

    key = {"model": model_identity(cycle.model), "num_fewshot": cycle.num_fewshot,
           "limit": None if cycle.limit is None else float(cycle.limit), "data": data_source(cycle.data_dir),
           "snapshot": snapshot_stamp(cycle.data_dir), "dtype": EVAL_DTYPE}
    if cycle.chat_template or cycle.system_instruction:  # another prompt: never reuse plain-prompt scores
        key.update(chat_template=cycle.chat_template, system_instruction=text_hash(cycle.system_instruction),
                   fewshot_as_multiturn=cycle.fewshot_as_multiturn)
    return key


def _current_versions(task: str) -> dict[str, str | None] | None:
    """{leaf task: version} of one of our tasks or groups now; None for lm-eval's built-in tasks."""
    from harness_tasks.catalog import catalog, leaf_tasks

    ours = catalog()
    if task not in ours:
        return None
    return {leaf: ours[leaf].version for leaf in leaf_tasks(task) if leaf in ours}


def stored_zero_shot(key: dict, tasks: list[str], results_dir: str | Path) -> dict[str, dict]:
    """{task: newest stored record that scored it} for the tasks a finished zero-shot run with `key` covers."""
    from dlm_data.records import load_records

    records, _ = load_records(results_dir)
    found: dict[str, dict] = {}
    for record in reversed(records):  # newest first
        if record.get("zero_shot_key") != key or record.get("status") in ("failed", "error"):
            continue
        scored = set(((record.get("eval") or {}).get("config") or {}).get("tasks") or [])
        scored |= {s.get("task") for s in (record.get("eval") or {}).get("scores") or []}
        stored_versions = {sc.get("task"): sc.get("version") for sc in (record.get("eval") or {}).get("scores") or []}
        for task in tasks:
            if task not in scored or task in found:
                continue
            current = _current_versions(task)
            if current and any(stored_versions.get(leaf) != version for leaf, version in current.items()):
                continue  # scored with another prompt or metric version: score it again
            found[task] = record
    return found


def merge_reused(record: dict | None, reused: dict[str, dict]) -> dict:
    """A view for printing: the new record (or the newest reused one) with the reused records' scores added."""
    sources = list({r["run_id"]: r for r in reused.values()}.values())
    view = dict(record or sources[-1])
    view_eval = dict(view.get("eval") or {})
    scores = list(view_eval.get("scores") or [])
    seen = {(s.get("task"), s.get("metric"), s.get("filter")) for s in scores}
    for source in sources:
        for s in (source.get("eval") or {}).get("scores") or []:
            if (s.get("task"), s.get("metric"), s.get("filter")) not in seen:
                seen.add((s.get("task"), s.get("metric"), s.get("filter")))
                scores.append(s)
    view["eval"] = {**view_eval, "scores": scores}
    view["reused_from"] = [r["run_id"] for r in sources]
    return view
