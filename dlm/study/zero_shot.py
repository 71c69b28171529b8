"""Zero-shot scores are computed once: what makes two zero-shot evaluations the same (`zero_shot_key`: model
identity, shots, limit, data (its content, not its path), dtype, prompt format), and finding stored scores to reuse.
"""

from __future__ import annotations

from pathlib import Path

from dlm.config import EvalConfig
from dlm.data.fingerprint import data_source
from dlm.errors import UserError
from dlm.harness_tasks.catalog import catalog, leaf_tasks
from dlm.store.records import RunRecord, load_records
from dlm.trainers.chat import text_hash
from dlm.trainers.models import resolve_model


def model_identity(name: str) -> str:
    """What makes two zero-shot evaluations of a model the same: hub id / alias, or the dir plus its weights' mtime."""
    path = Path(name).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")) + [path / "config.json"]
        stamp = max((f.stat().st_mtime_ns for f in files if f.exists()), default=0)
        return f"{path.resolve()}@{stamp}"
    try:
        resolved = str(resolve_model(name))
    except (ImportError, UserError):
        return name
    return name if Path(resolved).is_dir() else resolved  # aliases built locally (tiny-gpt2) keep their name


def zero_shot_key(evaluation: EvalConfig) -> dict:
    """What makes two zero-shot evaluations the same: the model's identity, the data's content and the whole
    measurement of the protocol (shots, few-shot seed, prompt format, limit or subset, dtype)."""
    key = {
        "model": model_identity(evaluation.model),
        "data": data_source(evaluation.data_dir),
        **evaluation.protocol.measurement(),
    }
    if evaluation.protocol.system_instruction:
        key["system_instruction"] = text_hash(evaluation.protocol.system_instruction)
    return key


def _current_versions(task: str) -> dict[str, str | None] | None:
    """{leaf task: version} of one of our tasks or groups now; None for lm-eval's built-in tasks."""

    ours = catalog()
    if task not in ours:
        return None
    return {leaf: ours[leaf].version for leaf in leaf_tasks(task) if leaf in ours}


def stored_zero_shot(key: dict, tasks: list[str], results_dir: str | Path) -> dict[str, RunRecord]:
    """{task: newest stored record that scored it} for the tasks a finished zero-shot run with `key` covers."""
    records, _ = load_records(results_dir)
    found: dict[str, RunRecord] = {}
    for record in reversed(records):  # newest first
        if record.zero_shot_key != key or record.status != "ok":
            continue
        scored = set(record.protocol.tasks if record.protocol else ()) | {s.task for s in record.scores}
        stored_versions = {s.task: s.version for s in record.scores}
        for task in tasks:
            if task not in scored or task in found:
                continue
            current = _current_versions(task)
            if current and any(stored_versions.get(leaf) != version for leaf, version in current.items()):
                continue  # scored with another prompt or metric version: score it again
            found[task] = record
    return found


def merge_reused(record: dict | None, reused: dict[str, RunRecord]) -> dict:
    """A view for printing: the new record (or the newest reused one) with the reused records' scores added."""
    sources = list({r.run_id: r for r in reused.values()}.values())
    view = dict(record) if record is not None else sources[-1].to_dict()
    view_eval = dict(view.get("eval") or {})
    scores = list(view_eval.get("scores") or [])
    seen = {(s["task"], s["metric"], s["filter"]) for s in scores}
    for source in sources:
        for s in source.scores:
            if (s.task, s.metric, s.filter) not in seen:
                seen.add((s.task, s.metric, s.filter))
                scores.append(s.to_dict())
    view["eval"] = {**view_eval, "scores": scores}
    view["reused_from"] = [r.run_id for r in sources]
    return view
