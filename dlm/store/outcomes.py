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
from dlm.secrets import scrub

SUFFIX = ".outcomes.json.gz"


def outcomes_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{SUFFIX}"


def write_outcomes_file(path: str | Path, run_id: str, outcomes: dict) -> Path:
    # predictions are model output (an API model's too): scrubbed like records before they are stored
    payload = json.dumps(scrub({"schema": 1, "run_id": run_id, "tasks": outcomes}), separators=(",", ":"))
    return atomic_write(path, gzip.compress(payload.encode("utf-8"), 6))


def write_outcomes(results_dir: str | Path, run_id: str, outcomes: dict) -> Path:
    return write_outcomes_file(outcomes_path(results_dir, run_id), run_id, outcomes)


def read_outcomes(path: str | Path) -> dict | None:
    """{task: {filter: block}}, or None when the file is missing or unreadable (old records have none)."""
    try:
        data = json.loads(gzip.decompress(Path(path).read_bytes()))
    except (OSError, ValueError, EOFError):
        return None
    tasks = data.get("tasks") if isinstance(data, dict) else None
    return tasks if isinstance(tasks, dict) else None
