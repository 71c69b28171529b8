"""Where a plain `dlm report` looks: the results dir of the last dlm command run in the same working directory.

One small note per working directory, kept in dlm's cache (`$DLM_CACHE/last-results/<hash of the directory>.json`,
default ~/.cache/dlm), never in the working directory itself. Two dlm processes started from different
directories (a plan in one project, a demo in another) keep different notes, so a report never reads, nor writes
its html page into, another process's results. The note names its directory; a note of another directory (a hash
collision, a copied cache) is not used. Losing a note loses nothing: --results-dir still works.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from dlm.files import atomic_write, cache_root

POINTER_DIR = "last-results"


def here() -> Path:
    """The working directory the note belongs to (resolved, so `cd ./x` and `cd x` share one note)."""
    return Path.cwd().resolve()


def pointer_file(directory: Path | None = None) -> Path:
    key = hashlib.sha256(str(directory or here()).encode("utf-8", "surrogateescape")).hexdigest()[:20]
    return cache_root() / POINTER_DIR / f"{key}.json"


def remember_results_dir(results_dir: str | Path) -> None:
    """Note that the newest record of a command run from this working directory went to `results_dir`."""
    note = {
        "results_dir": str(Path(results_dir).resolve()),
        "working_dir": str(here()),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "pid": os.getpid(),
    }
    try:
        atomic_write(pointer_file(), json.dumps(note))
    except OSError:  # a read-only cache: the record itself is written, the convenience is not
        pass


def last_results_dir() -> str | None:
    """The results dir of the newest record written by a command run from this working directory (None when
    unknown, gone, or the note belongs to another directory)."""
    try:
        note = json.loads(pointer_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("working_dir") != str(here()):
        return None
    found = note.get("results_dir")
    return found if isinstance(found, str) and found and Path(found).is_dir() else None
