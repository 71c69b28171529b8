"""What the libraries write into an output dir, made safe: nothing that needs unpickling, nothing written through a
link or over what dlm did not write, no secret.

- `SafeSaves` (a base of every trainer dlm builds): the training arguments are saved as `training_args.json`
  (scrubbed), never left as Trainer's pickled `training_args.bin` (dlm never unpickles anything, so it has no use
  for one; a planted one is never read). TRL's model card (README.md at the top of the output dir, rewritten at
  every checkpoint) is made in a staging folder and published (trainers/ownership.py): a README.md that is a
  symlink or a user's own file is left as it is.
- `scrub_files`: model cards and JSON that libraries write (README.md names the output dir, and with it any secret
  a path holds) get the same scrubbing as records, rewritten atomically (a rename: never through a link).
- `OwnedOutput` (a Trainer callback): before each checkpoint save the checkpoint's name is claimed in the mark
  (refused if something not dlm's is there); after it, its files are scrubbed and hashed into the mark, and the
  oldest of dlm's own checkpoints beyond --save_total_limit are removed (Trainer's own rotation would remove any
  checkpoint-* it finds, one copied in by hand included, so it is switched off).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from transformers import TrainerCallback

from dlm.files import atomic_write
from dlm.secrets import scrub
from dlm.trainers.checkpoints import (
    CHECKPOINT_RE,
    claim_pending,
    forget_entry,
    ownership_view,
    read_owner,
    record_written,
    write_owner,
)
from dlm.trainers.ownership import names_in, owns, publish, remove

TRAINING_ARGS_PICKLE = "training_args.bin"  # transformers' TRAINING_ARGS_NAME
TRAINING_ARGS_JSON = "training_args.json"
CARD_STAGING = ".dlm-staging-card"


def scrub_files(directory: Path) -> None:
    """Scrub the model cards and JSON files directly in `directory` (a folder dlm has just written)."""
    for path in [*directory.glob("*.md"), *directory.glob("*.json")]:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        clean = scrub(text)
        if clean != text:
            atomic_write(path, clean)


def publish_into(staging: Path, output_dir: Path) -> list[str]:
    """Scrub `staging` (and its subfolders), move it into `output_dir` (trainers/ownership.py publish), record what
    moved; returns the names left out because something not dlm's is there (said on stderr)."""
    for folder in [staging, *(p for p in staging.rglob("*") if p.is_dir() and not p.is_symlink())]:
        scrub_files(folder)
    mark = ownership_view(output_dir)
    full = read_owner(output_dir) or {}
    kept_out = publish(staging, output_dir, mark)
    write_owner(output_dir, {**full, "written": mark["written"], "pending": mark["pending"]})
    return kept_out


class SafeSaves:
    """Mixed into the trainer classes dlm builds (see the module docstring)."""

    def _save(self, output_dir: str | None = None, state_dict=None):
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            folder = Path(output_dir or self.args.output_dir)
            (folder / TRAINING_ARGS_PICKLE).unlink(missing_ok=True)  # torch.save(self.args) has just written it
            arguments = scrub(json.loads(json.dumps(self.args.to_dict(), default=str)))
            atomic_write(folder / TRAINING_ARGS_JSON, json.dumps(arguments, indent=1, sort_keys=True))

    def create_model_card(self, *args, **kwargs):
        if not self.is_world_process_zero():
            return
        root = Path(self.args.output_dir)
        staging = root / CARD_STAGING
        claim_pending(root, CARD_STAGING)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.args.output_dir = str(staging)  # TRL writes the card to <args.output_dir>/README.md
        try:
            super().create_model_card(*args, **kwargs)
        finally:
            self.args.output_dir = str(root)
        kept_out = publish_into(staging, root)  # a README.md that is not dlm's stays, and the card is not written
        if kept_out and not getattr(self, "dlm_card_kept_out", False):
            self.dlm_card_kept_out = True  # said once per run, not at every checkpoint
            print(
                f"kept README.md in {root} as it is (not written by dlm): TRL's model card is not written there",
                file=sys.stderr,
                flush=True,
            )


class OwnedOutput(TrainerCallback):
    """Checkpoints claimed before they are written, recorded after, rotated among dlm's own (module docstring)."""

    def __init__(self, output_dir: Path, save_total_limit: int | None):
        self.output_dir, self.limit = Path(output_dir), save_total_limit

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save and state.is_world_process_zero:
            claim_pending(self.output_dir, f"checkpoint-{state.global_step}")

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        name = f"checkpoint-{state.global_step}"
        scrub_files(self.output_dir / name)
        record_written(self.output_dir, [name])
        self.rotate()

    def rotate(self) -> None:
        if not self.limit or self.limit <= 0:
            return
        mark = ownership_view(self.output_dir)
        names = {*(mark.get("written") or {}), *names_in(mark.get("pending"))}
        ours = sorted((int(m.group(1)), n) for n in names if (m := CHECKPOINT_RE.match(n)))
        for _, name in ours[: max(0, len(ours) - self.limit)]:
            if owns(self.output_dir, name, mark):
                remove(self.output_dir / name)
                forget_entry(self.output_dir, name)
