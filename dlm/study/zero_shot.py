"""Zero-shot scores are computed once: what makes two zero-shot evaluations the same (`zero_shot_key`: model
identity, shots, limit, data (its content, not its path), dtype, prompt format), and finding stored scores to reuse.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from dlm.config import EvalConfig
from dlm.data.loading import TABLE, data_root
from dlm.errors import UserError
from dlm.harness_tasks.catalog import catalog, leaf_tasks
from dlm.store.records import eval_settings, load_records
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


def data_source(data_dir: str | None) -> str:
    """What data a run reads, not where it lies: "hub", or "local:<fingerprint>" of the snapshots in the data dir
    (`--data-dir`, else DLM_DATA_DIR). The same snapshots named by a relative path, an absolute one or the env var,
    or in a fresh clone, are one source; an edited snapshot is another. A dir holding none of the table's datasets
    is the Hub (every dataset is read from there). Nothing pins a Hub revision (dlm_data/data.py reads `main`), so
    the Hub is one source."""

    root = data_root(data_dir)
    fingerprint = snapshot_fingerprint(root) if root is not None and root.is_dir() else None
    return f"local:{fingerprint}" if fingerprint else "hub"


_FILE_HASHES: dict[tuple, str] = {}  # (path, size, mtime, inode) -> sha256 of its content, for this process


def snapshot_fingerprint(root: Path) -> str | None:
    """A hash of the content of the dataset snapshots under `root` (`<root>/<hub_id>/` of the dataset table; other
    files there are never read as data), by relative path and file content. Content, not modification times: a
    git clone or a copy gives every file a new mtime. Each file is hashed once per process (about 1 GB/s), and not
    at all when `hf download --local-dir` recorded its sha256 and the file is unchanged since. None: no snapshot."""

    digest, found = hashlib.sha256(), False
    for hub_id in sorted({entry.hub_id for entry in TABLE}):
        snapshot = root / hub_id
        if not snapshot.is_dir():
            continue
        found = True
        files = (p for p in snapshot.rglob("*") if p.is_file() and not _not_data(p.relative_to(snapshot)))
        for path in sorted(files):
            rel = path.relative_to(snapshot).as_posix()
            digest.update(f"{hub_id}/{rel}\0{_content_hash(snapshot, rel, path)}\n".encode())
    return digest.hexdigest()[:16] if found else None


def _not_data(rel: Path) -> bool:
    # .cache: hf's download metadata and locks; __pycache__ and dot files (.gitattributes) are never loaded as rows
    return any(part.startswith(".") or part == "__pycache__" for part in rel.parts)


def _content_hash(snapshot: Path, rel: str, path: Path) -> str:

    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if memo not in _FILE_HASHES:
        recorded = _downloaded_sha256(snapshot, rel, stat.st_mtime)
        if recorded is None:
            with path.open("rb") as f:
                recorded = hashlib.file_digest(f, "sha256").hexdigest()
        _FILE_HASHES[memo] = recorded
    return _FILE_HASHES[memo]


def _downloaded_sha256(snapshot: Path, rel: str, mtime: float) -> str | None:
    """The sha256 `hf download --local-dir` stored for an LFS file (its etag: commit, etag, timestamp lines), if the
    file has not been modified since (huggingface_hub's own test: mtime - 1 s <= timestamp). Small files' etags are
    git blob ids, not sha256: those are hashed here, so a copy without .cache/ has the same fingerprint."""

    meta = snapshot / ".cache" / "huggingface" / "download" / f"{rel}.metadata"
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
        etag, stamp = lines[1].strip(), float(lines[2])
    except (OSError, UnicodeDecodeError, IndexError, ValueError):  # absent or not hf's format: hash the file
        return None
    return etag if re.fullmatch(r"[0-9a-f]{64}", etag) and mtime - 1 <= stamp else None


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


def stored_zero_shot(key: dict, tasks: list[str], results_dir: str | Path) -> dict[str, dict]:
    """{task: newest stored record that scored it} for the tasks a finished zero-shot run with `key` covers."""

    records, _ = load_records(results_dir)
    found: dict[str, dict] = {}
    for record in reversed(records):  # newest first
        if record.get("zero_shot_key") != key or record.get("status") in ("failed", "error"):
            continue
        scored = set(eval_settings(record).get("tasks") or [])
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
