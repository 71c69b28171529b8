"""What data a run reads, not where it lies: a content fingerprint of the local dataset snapshots, or "hub".

Recorded on every score (its protocol's `data_source`), in zero-shot reuse keys and in plan run keys, so scores
read from samples/ are never taken for Hub scores and an edited snapshot is another source: "hub",
"local:<fingerprint>" (snapshots downloaded from the Hub), or "synthetic:<fingerprint>" (a folder that says its rows
are made up, as samples/ does with its SYNTHETIC file: never set against a published number as like-for-like).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from dlm.data.root import data_root
from dlm.data.table import TABLE


def data_source(data_dir: str | None) -> str:
    """What data a run reads, not where it lies: "hub", or "local:<fingerprint>" of the snapshots in the data dir
    (`--data-dir`, else DLM_DATA_DIR). The same snapshots named by a relative path, an absolute one or the env var,
    or in a fresh clone, are one source; an edited snapshot is another. A dir holding none of the table's datasets
    is the Hub (every dataset is read from there). Nothing pins a Hub revision (dlm_data/data.py reads `main`), so
    the Hub is one source."""

    root = data_root(data_dir)
    fingerprint = snapshot_fingerprint(root) if root is not None and root.is_dir() else None
    if not fingerprint:
        return "hub"
    return f"{SYNTHETIC if (root / SYNTHETIC_MARK).is_file() else 'local'}:{fingerprint}"


SYNTHETIC = "synthetic"  # data_source prefix of snapshots that are not the published data (samples/)
SYNTHETIC_MARK = "SYNTHETIC"  # a file at the snapshot root that says so (samples/SYNTHETIC)
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
