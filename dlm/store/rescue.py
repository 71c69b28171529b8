"""When a results dir cannot take a write (disk full, quota, file-size limit, read-only mount), the scores are not
lost with the error: the record and its outcomes file are written to a rescue folder instead, the record first (it
is small and holds the scores; the outcomes only refine their stderr), and the error says where they are and how to
put them back. Everything here is bytes already made: nothing is recomputed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from dlm.errors import UserError
from dlm.files import atomic_write

RESCUE_FOLDER = "dlm-rescued-records"


def rescue_dir() -> Path:
    """In the temp dir: usually another file system than a results dir on a data disk, and always writable."""
    return Path(tempfile.gettempdir()) / RESCUE_FOLDER


def rescued(files: list[tuple[str, str | bytes]], results_dir: str | Path, err: OSError, what: str) -> UserError:
    """Write `files` ((name, data), most valuable first) to the rescue folder; the error to raise for `what` (the
    write that failed), naming what was saved where."""
    saved, lost = [], []
    for name, data in files:
        try:
            atomic_write(rescue_dir() / name, data)
            saved.append(name)
        except OSError:
            lost.append(name)
    reason = err.strerror or str(err)
    if not saved:
        return UserError(
            f"cannot write {what} in {results_dir} ({reason}), nor a copy in {rescue_dir()}; free some space and re-run"
        )
    return UserError(
        f"cannot write {what} in {results_dir} ({reason}); saved to {', '.join(str(rescue_dir() / n) for n in saved)}"
        + (f" (not saved: {', '.join(lost)})" if lost else "")
        + f" - move {'it' if len(saved) == 1 else 'them'} into {results_dir} once there is room"
    )
