"""Which entries of an output dir are dlm's: proven by what dlm recorded in the dir's mark when it wrote them, never
by a name alone and never by what happens to be there.

The mark (`.dlm-output.json`, trainers/checkpoints.py) holds
- `written`: {name: digest} of every top-level entry dlm finished writing (a checkpoint once saved, the final
  model's files, the records beside them): a file's SHA-256 (with its size and mtime), or for a folder that of each
  file in it. An entry is dlm's while its content still matches (`matches`): a file a user edited or a folder they
  added to is theirs again.
- `pending`: names dlm claimed while they were free, for what it is writing now (the checkpoint being saved,
  the time ledger rewritten every step, a staging folder). A run killed mid-write leaves them dlm's.
- `legacy`: in a dir an older dlm wrote (its mark listed bare names, or it has no mark), the names such a dir
  holds (trainers/checkpoints.py LEGACY_ENTRIES, checkpoint-N): dlm's by name, as they were then.
A name is never dlm's if it is a symlink (dlm never makes one), holds '/', is '..' or '.', or is absolute; so
--overwrite can remove nothing outside the dir, and a file or folder a user adds while a run trains (notes, an eval
folder, a copied checkpoint-77) is neither claimed nor removed.

`publish` moves what dlm wrote into a staging folder inside the dir into place: an entry replaces only what is
absent or dlm's, by rename (a symlink at the target is replaced, never written through).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path


def safe_name(name) -> bool:
    """One plain path component: what a mark may name."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
        and not os.path.isabs(name)
    )


def file_sha256(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _file_digest(path: Path, info: os.stat_result) -> dict:
    return {"sha256": file_sha256(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}


def digest(path: Path) -> dict | None:
    """{"sha256", "size", "mtime_ns"} of a regular file, {"files": {relative path: that}} of a folder of regular
    files, else None (a symlink, a device, a folder that holds one: nothing dlm writes)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISREG(info.st_mode):
        return _file_digest(path, info)
    if not stat.S_ISDIR(info.st_mode):
        return None
    files = {}
    for root, dirs, names in os.walk(path, followlinks=False):
        for name in dirs:
            if os.path.islink(os.path.join(root, name)):
                return None
        for name in names:
            full = os.path.join(root, name)
            found = os.lstat(full)
            if not stat.S_ISREG(found.st_mode):
                return None
            files[os.path.relpath(full, path)] = _file_digest(Path(full), found)
    return {"files": dict(sorted(files.items()))}


def matches(path: Path, recorded) -> bool:
    """Whether `path` still holds what `recorded` (a `digest`) says dlm wrote. A file whose size and modification
    time are those recorded is unchanged since (any write changes its mtime); otherwise its SHA-256 decides, so a
    file touched but not changed stays dlm's. Checkpoints are large: this keeps rotation and --resume from reading
    gigabytes again."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if not isinstance(recorded, dict):
        return False
    if stat.S_ISREG(info.st_mode) and isinstance(recorded.get("sha256"), str):
        return _file_matches(path, info, recorded)
    files = recorded.get("files")
    if not stat.S_ISDIR(info.st_mode) or not isinstance(files, dict):
        return False
    found = {}
    for root, dirs, names in os.walk(path, followlinks=False):
        if any(os.path.islink(os.path.join(root, d)) for d in dirs):
            return False
        for name in names:
            full = os.path.join(root, name)
            found[os.path.relpath(full, path)] = full
    if set(found) != set(files):
        return False
    for rel, full in found.items():
        entry = files[rel]
        file_info = os.lstat(full)
        if (
            not stat.S_ISREG(file_info.st_mode)
            or not isinstance(entry, dict)
            or not isinstance(entry.get("sha256"), str)
        ):
            return False
        if not _file_matches(Path(full), file_info, entry):
            return False
    return True


def _file_matches(path: Path, info: os.stat_result, recorded: dict) -> bool:
    if recorded.get("size") == info.st_size and recorded.get("mtime_ns") == info.st_mtime_ns:
        return True
    return file_sha256(path) == recorded["sha256"]


def _is_plain(path: Path) -> bool:
    """A real file or folder, not a symlink (to anywhere) nor a device."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)


def owns(directory: Path, name: str, mark: dict) -> bool:
    """Whether the entry `name` of `directory` is dlm's by `mark` (see the module docstring)."""
    if not safe_name(name) or not _is_plain(directory / name):
        return False
    written = mark.get("written")
    if isinstance(written, dict) and name in written:
        return matches(directory / name, written[name])
    return name in names_in(mark.get("pending")) or name in names_in(mark.get("legacy"))


def names_in(value) -> list[str]:
    """The plain names of a mark's list (a mark comes from anyone: anything else in it is ignored)."""
    return [n for n in value if safe_name(n)] if isinstance(value, list) else []


def remove(path: Path) -> None:
    """Remove an entry dlm owns (a folder's own symlinks are unlinked, never followed)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def publish(staging: Path, directory: Path, mark: dict) -> list[str]:
    """Move every entry of `staging` into `directory` where the name is free or dlm's; record each in
    mark["written"] (the caller writes the mark). Returns the names kept out because something of someone else's
    is there; `staging` is removed."""
    written = dict(mark.get("written") or {}) if isinstance(mark.get("written"), dict) else {}
    pending = names_in(mark.get("pending"))
    kept_out = []
    for entry in sorted(staging.iterdir()):
        target = directory / entry.name
        if os.path.lexists(target) and not owns(directory, entry.name, mark):
            kept_out.append(entry.name)
            continue
        recorded = digest(entry)
        if entry.is_dir() and os.path.lexists(target):
            remove(target)  # a folder cannot be renamed over another: dlm's old one goes first
        os.replace(entry, target)  # a file replaces dlm's old file (or a symlink) in one step
        written[entry.name] = recorded
        if entry.name in pending:
            pending.remove(entry.name)
    shutil.rmtree(staging, ignore_errors=True)
    mark["written"], mark["pending"] = written, pending
    return kept_out
