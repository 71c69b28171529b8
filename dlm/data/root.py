"""Where local dataset snapshots live: `--data-dir`, else $DLM_DATA_DIR; neither means the Hugging Face Hub.
A module of its own so that code which only needs the folder (the report's data fingerprints) does not load
`datasets`."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "DLM_DATA_DIR"


def data_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    root = data_dir or os.environ.get(DATA_DIR_ENV)
    return Path(root).expanduser() if root else None
