"""The per-document outcomes file beside a run record: `<results_dir>/<run_id>.outcomes.json.gz`.

    {"schema": 1, "run_id": ..., "tasks": {task: {filter: {"version", "docs", "gold", "pred",
                                                           "metrics": {metric: {"aggregation", "values"}}}}}}

What the blocks mean and the bootstraps they allow: harness_tasks/outcomes.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from dlm.files import atomic_write
from dlm.store.records import record_file, write_record
from dlm.store.rescue import rescued

SUFFIX = ".outcomes.json.gz"


def outcomes_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{SUFFIX}"


def outcomes_bytes(run_id: str, outcomes: dict) -> bytes:
    payload = json.dumps({"schema": 1, "run_id": run_id, "tasks": outcomes}, separators=(",", ":"))
    return gzip.compress(payload.encode("utf-8"), 6)


def write_outcomes_file(path: str | Path, run_id: str, outcomes: dict) -> Path:
    return atomic_write(path, outcomes_bytes(run_id, outcomes))


def write_outcomes(results_dir: str | Path, run_id: str, outcomes: dict) -> Path:
    return write_outcomes_file(outcomes_path(results_dir, run_id), run_id, outcomes)


def write_results(results_dir: str | Path, record: dict, outcomes: dict | None) -> Path:
    """An evaluation's record and its outcomes file (named in record.eval.outcomes). The outcomes go first, so a
    record never names a file that is not there; when either write fails (disk full), both are rescued, the record
    first (store/rescue.py), and the error says where they are."""
    run_id = record["run_id"]
    if outcomes:
        path = outcomes_path(results_dir, run_id)
        record["eval"]["outcomes"] = path.name
        data = outcomes_bytes(run_id, outcomes)
        try:
            atomic_write(path, data)
        except OSError as err:
            raise rescued([record_file(record), (path.name, data)], results_dir, err, "the outcomes") from None
    return write_record(results_dir, record)


def read_outcomes(path: str | Path) -> dict | None:
    """{task: {filter: block}}, or None when the file is missing or unreadable (old records have none)."""
    try:
        data = json.loads(gzip.decompress(Path(path).read_bytes()))
    except (OSError, ValueError, EOFError):
        return None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    return tasks if isinstance(tasks, dict) else None
