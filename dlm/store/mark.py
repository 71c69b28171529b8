"""The output-dir mark (`.dlm-output.json`): its schema and its one strict loader.

dlm writes the mark into every folder it trains into (trainers/checkpoints.py keeps it up to date, and
trainers/ownership.py decides from it what dlm may rotate, replace or remove). A mark is read from a folder anyone
can write to, so it is loaded like a record (store/schema.py): a wrong type, a negative size, a name that is not
one plain path component, an unknown version are refused with the file and the field named, before anything is
removed. Version 1 is the names-only mark of an earlier dlm (`entries`, `foreign`); it still loads, and
trainers/checkpoints.py reads its names as that dlm's fixed names (`legacy`).

The code that updates the mark works on its plain-dict form (`mark_dict`): every dict it writes goes back through
`check_mark`, so what reaches the file is always a valid mark of this version.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlm.errors import UserError
from dlm.store.schema import SchemaError, check, load

MARK_FILE = ".dlm-output.json"
MARK_VERSION = 2  # 2: content hashes of what dlm wrote (`written`); 1: names only (`entries`)
MAX_MARK_BYTES = 16 * 2**20  # a mark lists a few dozen entries; far larger is not one dlm wrote


@dataclass(frozen=True)
class FileDigest:
    sha256: str
    size: int = field(metadata=check(minimum=0))
    mtime_ns: int = field(metadata=check(minimum=0))


@dataclass(frozen=True)
class Digest:
    """A written entry: a file's digest, or a folder's files by relative path."""

    sha256: str | None = None
    size: int | None = field(default=None, metadata=check(minimum=0))
    mtime_ns: int | None = field(default=None, metadata=check(minimum=0))
    files: dict[str, FileDigest] | None = None


@dataclass(frozen=True)
class RunIdentity:
    """What a run trains; `--resume` must ask for the same."""

    model: str
    mode: str
    data: str
    lora: bool


@dataclass(frozen=True)
class OutputMark:
    owner: str = field(default="dlm", metadata=check(choices=("dlm",)))
    version: int = field(default=1, metadata=check(minimum=1))
    run_key: str | None = None
    run_id: str | None = None
    run: RunIdentity | None = None
    written: dict[str, Digest] | None = None
    pending: list[str] = field(default_factory=list)
    legacy: list[str] = field(default_factory=list)
    complete: bool = False
    entries: list[str] | None = None  # version 1
    foreign: list[str] | None = None  # version 1


def _plain_name(name: str) -> bool:
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\0" not in name


def _relative_path(name: str) -> bool:
    parts = name.split("/")
    return not name.startswith("/") and "\0" not in name and all(p not in ("", ".", "..") for p in parts)


def _validate(mark: OutputMark, where: str) -> OutputMark:
    """What the field types cannot say: the version, names that are one path component, digests' shapes."""
    if mark.version > MARK_VERSION:
        raise SchemaError(f"{where}.version", f"{mark.version} is newer than this dlm reads ({MARK_VERSION})")
    for key in ("pending", "legacy", "entries", "foreign"):
        for i, name in enumerate(getattr(mark, key) or []):
            if not _plain_name(name):
                raise SchemaError(f"{where}.{key}[{i}]", f"'{name}' is not one plain path component")
    for name, entry in (mark.written or {}).items():
        if not _plain_name(name):
            raise SchemaError(f"{where}.written", f"'{name}' is not one plain path component")
        is_file = entry.sha256 is not None and entry.size is not None and entry.mtime_ns is not None
        if is_file == (entry.files is not None):
            raise SchemaError(f"{where}.written.{name}", "a file's sha256, size and mtime_ns, or a folder's files")
        for relative in entry.files or {}:
            if not _relative_path(relative):
                raise SchemaError(f"{where}.written.{name}.files", f"'{relative}' is not a path inside the folder")
    return mark


def parse_mark(data, where: str = MARK_FILE) -> OutputMark:
    """The mark in `data` (a JSON value), or SchemaError naming the field."""
    return _validate(load(OutputMark, data, where), where)


def mark_dict(mark: OutputMark) -> dict:
    """The plain form trainers/checkpoints.py updates: None fields left out, digests as plain dicts."""

    def plain(value):
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if v is not None}
        return value

    return {k: plain(v) for k, v in asdict(mark).items() if v is not None}


def check_mark(data: dict) -> dict:
    """`data` as a mark of this version about to be written: unknown fields and bad values raise (a bug in dlm)."""
    mark = _validate(load(OutputMark, {**data, "version": MARK_VERSION}, MARK_FILE, strict_keys=True), MARK_FILE)
    return mark_dict(mark)


def read_mark(directory: str | Path) -> dict | None:
    """The mark of `directory` in its plain form; None when there is none. A mark that is not a file (a link, a
    folder), too large, not JSON or not a valid mark is refused in one line naming the file and the field: nothing
    in that folder is treated as dlm's until it is moved aside."""
    path = Path(directory) / MARK_FILE
    if not os.path.lexists(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise UserError(f"{path} is not a file dlm wrote (a link or a folder): move it out of the way")
    if path.stat().st_size > MAX_MARK_BYTES:
        raise UserError(f"{path} is over {MAX_MARK_BYTES // 2**20} MiB: not a mark dlm wrote; move it out of the way")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mark = parse_mark(data, str(path))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path} is not JSON ({err}): not a mark dlm wrote; move it out of the way") from None
    except SchemaError as err:
        raise UserError(f"{err}: not a mark dlm wrote; move {path} out of the way") from None
    except RecursionError:
        raise UserError(f"{path} is nested too deep: not a mark dlm wrote; move it out of the way") from None
    return mark_dict(mark)
