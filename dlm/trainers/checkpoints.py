"""The output directory contract: refuse to mix runs, never delete what dlm did not write, resume from the newest
complete checkpoint.

- A non-empty output_dir is refused unless --resume (continue it) or --overwrite (replace it) is given.
- dlm marks every output dir it trains into with `.dlm-output.json` (the run key and id, and the top-level entries
  dlm wrote there, updated at every save). --overwrite removes those entries only: files a user put there, run
  records and outcomes are kept, and a directory without the mark is refused. A dir marked by another run key is
  refused too, so two runs of a plan never share one.
- A run killed while saving leaves a half-written `checkpoint-N` (trainer_state.json is written last), so
  "newest" means the newest checkpoint whose trainer_state.json parses.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import zipfile
from pathlib import Path

from dlm.errors import UserError
from dlm.files import atomic_write
from dlm.trainers.model_checks import safetensors_header

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, `ulimit -f`
TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "unexpected pos")  # torch.save's short writes
OWNER_FILE = ".dlm-output.json"
# what a dlm output dir written before the mark existed holds (recognised by dlm_train.json)
LEGACY_ENTRIES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "adapter_config.json",
    "adapter_model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "training_args.bin",
    "README.md",
    "dlm_train.json",
    "dlm_lineage.json",
    "dlm_time.json",
    "merged",
    "runs",
)


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
    """Whole, not only begun: trainer_state.json (the Trainer writes it last) parses, and no file in the checkpoint
    is cut short. A save that ran out of disk, or was killed, can leave a file truncated and, if the failure came
    late, the state beside it; --resume must never load such a checkpoint."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not (isinstance(state, dict) and "global_step" in state):
        return False
    return all(_whole(path) for path in checkpoint.iterdir() if path.is_file())


def _whole(path: Path) -> bool:
    """A file as its writer left it after a complete write: safetensors to their last tensor, torch.save's zip
    archives (optimizer.pt, scheduler.pt, rng_state.pth, training_args.bin) to their end record, JSON parsing."""
    if path.suffix == ".safetensors":
        return safetensors_header(path) is not None
    if path.suffix in (".pt", ".pth", ".bin"):
        return zipfile.is_zipfile(path)
    if path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
    return True


def newest_checkpoint(output_dir: str | Path) -> Path | None:
    found = checkpoints(output_dir)
    return found[-1][1] if found else None


def read_owner(directory: str | Path) -> dict | None:
    try:
        owner = json.loads((Path(directory) / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def write_owner(directory: str | Path, owner: dict) -> None:

    atomic_write(Path(directory) / OWNER_FILE, json.dumps(owner, indent=2))


def claim(directory: str | Path, run_key: str | None, run_id: str) -> None:
    """Mark `directory` as this run's (called once it is empty or ours); `entries` grows with `note_entries`."""
    previous = read_owner(directory) or {}
    entries = set(previous.get("entries") or [])
    # what is there already and not dlm's (a user's file kept by --overwrite) is never claimed later
    foreign = {c.name for c in Path(directory).iterdir() if c.name != OWNER_FILE and c.name not in entries}
    write_owner(
        directory,
        {
            "owner": "dlm",
            "run_key": run_key or previous.get("run_key"),
            "run_id": run_id,
            "entries": sorted(entries),
            "foreign": sorted(foreign),
            "complete": False,
        },
    )


def note_entries(directory: str | Path, complete: bool | None = None) -> None:
    """Add every top-level entry now in `directory` to the mark: dlm is the only writer of a dir it trains in."""
    directory = Path(directory)
    owner = read_owner(directory)
    if owner is None:
        return
    foreign = set(owner.get("foreign") or [])
    names = {
        c.name for c in directory.iterdir() if c.name not in foreign and c.name != OWNER_FILE and not _is_record(c)
    }
    owner["entries"] = sorted(set(owner.get("entries") or []) | names)
    if complete is not None:
        owner["complete"] = complete
    write_owner(directory, owner)


def _is_record(path: Path) -> bool:
    """Run records and outcomes are never an output dir's: they belong to whoever reads the results dir."""
    if path.name.endswith(".outcomes.json.gz"):
        return True
    if path.suffix != ".json" or not path.is_file():
        return False
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "run_id" in data and "kind" in data


def owned_entries(directory: Path) -> list[Path]:
    """What dlm wrote in `directory` (from the mark, or the fixed names of an older dlm dir)."""
    owner = read_owner(directory)
    names = (
        set(owner.get("entries") or [])
        if owner
        else (set(LEGACY_ENTRIES) if (directory / "dlm_train.json").is_file() else set())
    )
    found = [directory / n for n in sorted(names) if (directory / n).exists() and not _is_record(directory / n)]
    found += [
        c
        for c in directory.iterdir()
        if CHECKPOINT_RE.match(c.name)
        and c.is_dir()
        and c not in found
        and (owner is not None or (directory / "dlm_train.json").is_file())
    ]
    return found


def is_dlm_dir(directory: Path) -> bool:
    return read_owner(directory) is not None or (directory / "dlm_train.json").is_file()


def prepare_output_dir(
    output_dir: str | Path, resume: bool, overwrite: bool, run_key: str | None = None
) -> Path | None:
    """Check the output directory before anything is written; returns the checkpoint to resume from, if any.

    Raises UserError (and changes nothing) for a non-empty directory without --resume/--overwrite, for one that
    another run key owns, and for --overwrite of a directory dlm did not write. Deletion for --overwrite (and for
    a run's own half-written dir without a checkpoint) is done by the caller on the main process only.
    """
    directory = Path(output_dir)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"--output_dir '{output_dir}' is a file; pass a directory")
    non_empty = directory.is_dir() and any(directory.iterdir())
    owner = read_owner(directory) if non_empty else None
    if owner and run_key and owner.get("run_key") and owner["run_key"] != run_key:
        raise UserError(
            f"--output_dir '{output_dir}' holds another run (run key {owner['run_key']}, run "
            f"{owner.get('run_id')}); give this run its own --output_dir"
        )
    if resume:
        checkpoint = newest_checkpoint(directory)
        own_restart = owner is not None and owner.get("run_key") == run_key  # dlm's, never checkpointed
        if checkpoint is None and non_empty and not own_restart:
            raise UserError(
                f"--resume: '{output_dir}' has no complete checkpoint-N to resume from; "
                "use --overwrite to start again or pick another --output_dir"
            )
        return checkpoint  # None on an empty/missing directory (or our own, never checkpointed): start from 0
    if non_empty and not overwrite:
        raise UserError(
            f"--output_dir '{output_dir}' is not empty; add --resume to continue that run, "
            "--overwrite to replace it, or choose another --output_dir"
        )
    if non_empty and overwrite and not is_dlm_dir(directory):
        raise UserError(
            f"--overwrite refused: '{output_dir}' was not written by dlm (no {OWNER_FILE}); "
            "dlm only replaces its own output: choose another --output_dir"
        )
    return None


def clear_output_dir(output_dir: str | Path) -> list[str]:
    """Remove what dlm wrote in `output_dir` (never a foreign file, a run record or an outcomes file); the names
    of the entries kept are returned."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return []
    for path in owned_entries(directory):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    (directory / OWNER_FILE).unlink(missing_ok=True)
    return sorted(c.name for c in directory.iterdir())


def failed_write(err: BaseException) -> bool:
    """A write that the disk did not take: ENOSPC, EDQUOT or EFBIG from Python, or torch.save's zip writer, which
    reports a short write as a RuntimeError without an errno ("unexpected pos ...")."""
    if isinstance(err, OSError):
        return err.errno in DISK_FULL
    return isinstance(err, RuntimeError) and any(m in str(err) for m in TORCH_WRITE_FAILURES)


def out_of_room(err: BaseException, output_dir: Path, step: int | None) -> BaseException:
    """The error to raise for a failed write while training wrote into `output_dir`: a full disk (or quota, or
    `ulimit -f`) is one line naming what --resume will continue from; the checkpoint this process was writing at
    `step`, half-written, is removed first (it is dlm's own, and nothing could resume from it). Any other error is
    returned as it is."""
    if not failed_write(err):
        return err
    partial = output_dir / f"checkpoint-{step}" if step is not None else None
    removed = ""
    if partial is not None and partial.is_dir() and not _complete(partial):
        shutil.rmtree(partial, ignore_errors=True)
        removed = f"; the half-written {partial.name} was removed"
    newest = newest_checkpoint(output_dir)
    resume = f"it continues from {newest.name}" if newest is not None else "it starts again from step 0"
    what = (
        f"{err.strerror}: {Path(str(err.filename or '?')).name}"
        if isinstance(err, OSError)
        else f"torch could not finish a file: {str(err).splitlines()[0][:80]}"
    )
    return UserError(
        f"no room to write in {output_dir} ({what}){removed}; free some space (or raise the quota or `ulimit -f`) "
        f"and run the same command with --resume: {resume}"
    )


def resumed_step(checkpoint: Path | None) -> int:
    """The optimizer step a resumed run starts from (0 for a fresh run)."""
    if checkpoint is None:
        return 0
    try:
        return int(json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("global_step", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def finished(directory: Path) -> bool:
    """The run in `directory` saved its final model and wrote its record (the mark says complete; an output dir of
    a dlm before the mark: its dlm_train.json)."""
    owner = read_owner(directory)
    return bool(owner.get("complete")) if owner is not None else (directory / "dlm_train.json").is_file()


def check_unfinished(checkpoint: Path, max_steps: int, finishing: bool = False) -> None:
    """Resuming a run that already reached --max_steps would train past it: say so and do nothing. A run stopped
    after its last checkpoint but before its final model and record (`finishing`: Ctrl-C, SIGTERM or a full disk
    in between; a plan run's own dir) resumes there: 0 steps, then it saves and records as usual."""
    try:
        step = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8")).get("global_step")
    except (OSError, ValueError, AttributeError):
        return
    if isinstance(step, int) and step == max_steps and (finishing or not finished(checkpoint.parent)):
        return
    if isinstance(step, int) and step >= max_steps:
        raise UserError(
            f"--resume: this run already finished ({checkpoint.name}, --max_steps {max_steps}); "
            "nothing to do. Raise --max_steps to train further, or use another --output_dir"
        )
