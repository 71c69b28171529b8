"""The output directory contract: refuse to mix runs, resume from the newest complete checkpoint.

- A non-empty output_dir is refused unless --resume (continue it) or --overwrite (replace it) is given.
- A run killed while saving leaves a half-written `checkpoint-N` (trainer_state.json is written last), so
  "newest" means the newest checkpoint whose trainer_state.json parses.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from dlm_data.errors import UserError

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# Files that mark a directory as written by a training run (ours or any HF Trainer): only those are deleted by
# --overwrite, so a typo like `--output_dir ~` cannot wipe a home directory.
RUN_MARKERS = ("config.json", "adapter_config.json", "trainer_state.json", "training_args.bin", "dlm_train.json")


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first."""
    found = []
    directory = Path(output_dir)
    if not directory.is_dir():
        return found
    for child in directory.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and _complete(child):
            found.append((int(match.group(1)), child))
    return sorted(found)


def _complete(checkpoint: Path) -> bool:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state


def newest_checkpoint(output_dir: str | Path) -> Path | None:
    found = checkpoints(output_dir)
    return found[-1][1] if found else None


def is_run_dir(directory: Path) -> bool:
    return any((directory / m).exists() for m in RUN_MARKERS) or any(
        CHECKPOINT_RE.match(c.name) for c in directory.iterdir() if c.is_dir())


def prepare_output_dir(output_dir: str | Path, resume: bool, overwrite: bool) -> Path | None:
    """Check the output directory before anything is written; returns the checkpoint to resume from, if any.

    Raises UserError (and changes nothing) for a non-empty directory without --resume/--overwrite. Deletion for
    --overwrite is done by the caller on the main process only (see `clear_output_dir`).
    """
    directory = Path(output_dir)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"--output_dir '{output_dir}' is a file; pass a directory")
    non_empty = directory.is_dir() and any(directory.iterdir())
    if resume:
        checkpoint = newest_checkpoint(directory)
        if checkpoint is None and non_empty:
            raise UserError(f"--resume: '{output_dir}' has no complete checkpoint-N to resume from; "
                            "use --overwrite to start again or pick another --output_dir")
        return checkpoint  # None on an empty/missing directory: nothing to resume, start from scratch
    if non_empty and not overwrite:
        raise UserError(f"--output_dir '{output_dir}' is not empty; add --resume to continue that run, "
                        "--overwrite to replace it, or choose another --output_dir")
    if non_empty and overwrite and not is_run_dir(directory):
        raise UserError(f"--overwrite refused: '{output_dir}' does not look like a training output directory "
                        "(no checkpoint or model files); choose another --output_dir")
    return None


def clear_output_dir(output_dir: str | Path) -> None:
    directory = Path(output_dir)
    if directory.is_dir():
        shutil.rmtree(directory)
