"""Writing files safely, and checking before any work that the folders a command will write into can take it.

`atomic_write` is the one way dlm writes a file: a temp file in the same directory, fsync, rename. A kill leaves the
old file or the new one, never half of one, and a symlink at the target is replaced, never written through (a link
someone planted in an output dir cannot make dlm overwrite the file it points to).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from dlm.errors import UserError

NAME_MAX, PATH_MAX = 255, 4096  # Linux's limits on one name and on a whole path, in bytes
PARTIAL_PREFIX = ".partial-"  # temp files; never "*.json", so one orphaned by kill -9 is never read as a record


def shipped(name: str) -> Path:
    """dlm's own `samples` or `plans` folder: beside the package in a checkout (or an editable install), inside it
    (dlm/_shipped/, setup.py) in an installed wheel."""
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / name).is_dir():
        return checkout / name
    if (package / "_shipped" / name).is_dir():
        return package / "_shipped" / name
    raise UserError(
        f"this installation of dlm has no {name}/ folder; reinstall it from the repository or a wheel "
        "(pip install git+URL), or run from a checkout"
    )


def cache_root() -> Path:
    """dlm's own cache: the tiny model, API responses, lm-eval's request cache, the report's per-directory notes
    (`DLM_CACHE`, default ~/.cache/dlm)."""
    return Path(os.environ.get("DLM_CACHE") or Path.home() / ".cache" / "dlm")


def atomic_write(path: str | Path, data: str | bytes, mode: int | None = None, durable: bool = True) -> Path:
    """Write `data` to `path` atomically (temp file, fsync, rename); `mode`: its permission bits (default: the
    temp file's 0600 widened by the umask, as a plain open would give). `durable=False` skips the fsync, for a note
    rewritten every training step whose loss on power failure costs nothing (the rename is still atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=PARTIAL_PREFIX, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
        os.replace(tmp, path)  # rename replaces a symlink at `path` itself; the file it pointed to is untouched
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def check_writable(path: str | Path, flag: str) -> None:
    """A directory dlm will write into is usable, or creatable, before any work starts (not after hours)."""
    if not str(path).strip():
        raise UserError(f"{flag} is empty; give a folder")
    check_name_lengths(path, flag)
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise UserError(f"{flag} '{path}' is a file; pass a directory")
    existing = target
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} '{path}' cannot be created: '{existing}' is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{flag} '{path}' is not writable ('{existing}' is read-only); choose another directory")


def check_name_lengths(path: str | Path, flag: str) -> None:
    """A name over 255 bytes (or a path over 4096) fails every file call with ENAMETOOLONG, `exists()` included."""
    text = str(Path(path).expanduser())
    too_long = next((part for part in Path(text).parts if len(part.encode()) > NAME_MAX), None)
    if too_long is not None:
        raise UserError(
            f"{flag} '{_short(path)}' has a name longer than {NAME_MAX} bytes ('{too_long[:40]}...'); shorten it"
        )
    if len(text.encode()) >= PATH_MAX:
        raise UserError(f"{flag} '{_short(path)}' is longer than {PATH_MAX} bytes; shorten it")


def _short(path) -> str:
    text = str(path)
    return text if len(text) <= 80 else f"{text[:60]}...{text[-15:]}"


def check_output_file(path: str | None, suffix: str, flag: str) -> None:
    """`--plot FILE.png`, `--output FILE.html`: checked before the work whose output it is."""
    if not path:
        return
    if not str(path).lower().endswith(suffix):
        raise UserError(f"{flag} takes a {suffix} file name (got '{path}')")
    check_name_lengths(path, flag)
    if Path(path).expanduser().is_dir():
        raise UserError(f"{flag} '{path}' is a directory; give a file name ending in {suffix}")
    check_writable(Path(path).expanduser().parent, f"{flag}'s folder")


def check_data_dir(data_dir: str | None) -> None:
    """A --data-dir that is not a folder would quietly mean "the hub": refused before any work."""
    if data_dir is not None and not str(data_dir).strip():
        raise UserError("--data-dir is empty; give the folder that holds the snapshots, or leave it out")
    if data_dir:
        check_name_lengths(data_dir, "--data-dir")
    if data_dir and not Path(data_dir).expanduser().is_dir():
        raise UserError(
            f"--data-dir {data_dir} is not a folder; give the folder that holds the snapshots "
            "(<owner>/<name>/ inside, e.g. samples/), or leave it out to read the Hub"
        )


def file_inside(folder: str | Path, name) -> Path | None:
    """`folder/name` when `name` (read from a record, a marker, a plan) is one plain component naming a regular
    file right there: no '..', no absolute path, no '/', not a symlink (to anywhere) nor a device; else None."""
    if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name or "\0" in name:
        return None
    path = Path(folder) / name
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return path if stat.S_ISREG(info.st_mode) else None
