"""The output directory contract: refuse to mix runs, never delete or write through what dlm did not write, resume
from the newest complete checkpoint of this run.

- A non-empty output_dir is refused unless --resume (continue it) or --overwrite (replace it) is given.
- dlm marks every output dir it trains into with `.dlm-output.json`: the run key and id, what the run trains
  (base model, mode, data, LoRA: `--resume` with anything else is refused, naming the difference), and what dlm
  wrote there, name by name with content hashes (trainers/ownership.py). --overwrite removes those entries only,
  while their content is what dlm wrote: files a user put there or changed, run records and outcomes are kept,
  and a directory without the mark is refused. A dir marked by another run key is refused too, so two runs of a
  plan never share one.
- Before training writes anything, every name it is about to write (the final model's files, the checkpoint
  folders still to come) must be free or dlm's: a symlink or a user's file there is refused with one line.
- A run killed while saving leaves a half-written `checkpoint-N` (trainer_state.json is written last), so
  "newest" means the newest checkpoint of this run whose trainer_state.json parses.
"""

from __future__ import annotations

import errno
import json
import os
import re
import zipfile
from pathlib import Path

from dlm.errors import UserError
from dlm.files import atomic_write
from dlm.store.mark import MARK_FILE, check_mark, read_mark
from dlm.trainers.model_integrity import safetensors_header
from dlm.trainers.ownership import digest, names_in, owns, remove, safe_name

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, `ulimit -f`
TORCH_WRITE_FAILURES = ("PytorchStreamWriter failed", "unexpected pos")  # torch.save's short writes
OWNER_FILE = MARK_FILE
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
# what the end of a run writes at the top of its output dir: each must be free or dlm's before training starts
FINAL_ENTRIES = (
    *(n for n in LEGACY_ENTRIES if n != "training_args.bin"),  # no pickle is kept (trainers/scrubbing.py)
    "training_args.json",
    "model.safetensors.index.json",
    "dlm_curve.json",
    "dlm_curve",
)
FINAL_PATTERN = re.compile(r"^model-\d+-of-\d+\.safetensors$")
# rewritten in place while a run trains (every step, every curve point): dlm's by the name it claimed while free
LEDGERS = ("dlm_time.json", "dlm_curve.json", "dlm_curve", "runs")


def checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint, oldest first."""
    found = []
    directory = Path(output_dir)
    if not directory.is_dir():
        return found
    for child in directory.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir() and not child.is_symlink() and _complete(child):
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


def newest_checkpoint(output_dir: str | Path, this_run_only: bool = False) -> Path | None:
    """The newest complete checkpoint; `this_run_only`: in a dir dlm marked, the newest one dlm wrote there (a
    checkpoint copied in by hand is never resumed from; a folder of checkpoints that dlm never marked, e.g. one
    copied out of a run, resumes from its newest)."""
    found = checkpoints(output_dir)
    directory = Path(output_dir)
    if not this_run_only or not is_dlm_dir(directory):  # a folder of checkpoints dlm never marked: any of them
        return found[-1][1] if found else None
    mark = ownership_view(directory)
    for _, path in reversed(found):  # newest first: only the one resumed from is hashed
        if owns(directory, path.name, mark):
            return path
    return None


def read_owner(directory: str | Path) -> dict | None:
    """The output dir's mark (store/mark.py: strictly loaded; a hostile or broken one is refused in one line)."""
    return read_mark(directory)


def write_owner(directory: str | Path, owner: dict) -> None:
    atomic_write(Path(directory) / OWNER_FILE, json.dumps(check_mark(owner), indent=1))


def _hashed(mark: dict) -> bool:
    """A mark of this dlm (content hashes); older marks listed bare names (`entries`)."""
    return isinstance(mark.get("written"), dict)


def _names(mark: dict) -> set[str]:
    written = mark.get("written") if isinstance(mark.get("written"), dict) else {}
    return {n for n in written if safe_name(n)} | set(names_in(mark.get("pending"))) | set(names_in(mark.get("legacy")))


def ownership_view(directory: Path, mark: dict | None = None) -> dict:
    """The mark as trainers/ownership.py reads it; a dir of an older dlm gets its `legacy` names."""
    mark = read_owner(directory) if mark is None else mark
    if mark is not None and _hashed(mark):
        return mark
    if mark is not None:  # an older mark: the names it listed that dlm writes
        listed = names_in(mark.get("entries"))
        return {"legacy": [n for n in listed if n in LEGACY_ENTRIES or CHECKPOINT_RE.match(n)]}
    if (directory / "dlm_train.json").is_file():  # older still: no mark, the fixed names of a dlm dir
        found = [c.name for c in directory.iterdir() if CHECKPOINT_RE.match(c.name)] if directory.is_dir() else []
        return {"legacy": [*LEGACY_ENTRIES, *found]}
    return {}


def run_identity(model: str, mode: str, data: str, lora: bool) -> dict:
    """What a run trains, as its mark records it (a --resume must ask for the same)."""
    return {"model": str(model), "mode": mode, "data": data, "lora": bool(lora)}


def claim(directory: str | Path, run_key: str | None, run_id: str, identity: dict | None = None) -> None:
    """Mark `directory` as this run's (called once it is empty or ours): what dlm wrote there before is kept (a
    resumed run), the time and curve ledgers are claimed while their names are free."""
    directory = Path(directory)
    previous = read_owner(directory) or {}
    mark = {
        "owner": "dlm",
        "run_key": run_key or previous.get("run_key"),
        "run_id": run_id,
        "run": identity or previous.get("run"),
        "written": {},
        "pending": [],
        "complete": False,
    }
    view = ownership_view(directory, previous or None)
    written = view.get("written") if isinstance(view.get("written"), dict) else {}
    mark["written"] = {n: d for n, d in written.items() if safe_name(n) and os.path.lexists(directory / n)}
    for key in ("pending", "legacy"):
        mark[key] = [n for n in names_in(view.get(key)) if os.path.lexists(directory / n)]
    for name in LEDGERS:
        if not os.path.lexists(directory / name) or owns(directory, name, {**mark, "pending": [name]}):
            mark["pending"].append(name)
    write_owner(directory, mark)


def claim_pending(directory: str | Path, name: str) -> None:
    """`name` is about to be written by dlm: refused if something that is not dlm's is there (a symlink, a user's
    folder), else recorded as dlm's before the first byte is written."""
    directory = Path(directory)
    mark = read_owner(directory) or {}
    if os.path.lexists(directory / name) and not owns(directory, name, mark):
        raise UserError(
            f"'{directory / name}' is in the way and was not written by this run (a link, or a copy added by "
            "hand); move it out of --output_dir and --resume"
        )
    if name not in names_in(mark.get("pending")):
        mark["pending"] = [*names_in(mark.get("pending")), name]
        write_owner(directory, mark)


def record_written(directory: str | Path, names: list[str], complete: bool | None = None) -> None:
    """`names` are written: their content hashes go into the mark (what --overwrite will check)."""

    directory = Path(directory)
    mark = read_owner(directory)
    if mark is None:
        return
    written = dict(mark["written"]) if isinstance(mark.get("written"), dict) else {}
    pending = [n for n in names_in(mark.get("pending")) if n not in names or n in LEDGERS]
    for name in names:
        if name in LEDGERS:  # rewritten as the run goes on: dlm's by the claim, not by one content
            continue
        found = digest(directory / name)
        if found is not None:
            written[name] = found
    mark["written"] = {n: d for n, d in written.items() if (directory / n).exists()}
    mark["pending"] = [n for n in pending if n in LEDGERS or os.path.lexists(directory / n)]
    if complete is not None:
        mark["complete"] = complete
    write_owner(directory, mark)


def forget_entry(directory: str | Path, name: str) -> None:
    """`name` was removed by dlm (a rotated-out checkpoint): it leaves the mark."""
    mark = read_owner(directory)
    if mark is not None:
        written = mark.get("written") if isinstance(mark.get("written"), dict) else {}
        mark["written"] = {n: d for n, d in written.items() if n != name}
        mark["pending"] = [n for n in names_in(mark.get("pending")) if n != name]
        write_owner(directory, mark)


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
    """What dlm wrote in `directory` and is still as dlm wrote it (the mark; for a dir of an older dlm, the fixed
    names such a dir holds). Never a symlink, never a path outside `directory`, never a run record."""
    mark = ownership_view(directory)
    hashed = set(mark["written"]) if isinstance(mark.get("written"), dict) else set()  # dlm_train.json too
    return [
        directory / n
        for n in sorted(_names(mark))
        if n != OWNER_FILE and owns(directory, n, mark) and (n in hashed or not _is_record(directory / n))
    ]


def is_dlm_dir(directory: Path) -> bool:
    return read_owner(directory) is not None or (directory / "dlm_train.json").is_file()


def prepare_output_dir(
    output_dir: str | Path,
    resume: bool,
    overwrite: bool,
    run_key: str | None = None,
    identity: dict | None = None,
    max_steps: int | None = None,
    save_steps: int | None = None,
) -> Path | None:
    """Check the output directory before anything is written; returns the checkpoint to resume from, if any.

    Raises UserError (and changes nothing) for a non-empty directory without --resume/--overwrite, for one that
    another run key owns, for a --resume of a dir that trained something else, for --overwrite of a directory dlm
    did not write, and for a name training will write that holds something not dlm's. Deletion for --overwrite
    (and for a run's own half-written dir without a checkpoint) is done by the caller on the main process only.
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
        if non_empty and identity is not None:
            check_same_run(directory, owner, identity)
        checkpoint = newest_checkpoint(directory, this_run_only=True)
        own_restart = owner is not None and owner.get("run_key") == run_key  # dlm's, never checkpointed
        if checkpoint is None and non_empty and not own_restart:
            raise UserError(
                f"--resume: '{output_dir}' has no complete checkpoint-N to resume from; "
                "use --overwrite to start again or pick another --output_dir"
            )
        if non_empty:
            check_in_the_way(directory, ownership_view(directory, owner), checkpoint, max_steps, save_steps)
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
    if non_empty:
        owned = {p.name for p in owned_entries(directory)}  # what --overwrite will remove
        check_in_the_way(directory, {"pending": sorted(owned)}, None, max_steps, save_steps)
    return None


def check_same_run(directory: Path, owner: dict | None, identity: dict) -> None:
    """--resume continues the run a dir holds, never another one (other data, mode, base model or LoRA)."""
    recorded = (owner or {}).get("run")
    if not isinstance(recorded, dict):
        recorded = _identity_from_lineage(directory)
    if not recorded:
        return
    differences = [
        f"{field} {recorded.get(field)!r} there, {identity[field]!r} now"
        for field in ("model", "mode", "data", "lora")
        if field in recorded and recorded.get(field) != identity.get(field)
    ]
    if differences:
        raise UserError(
            f"--resume refused: '{directory}' trained another run ({'; '.join(differences)}); resume it with "
            "the same settings, or give this run its own --output_dir"
        )


def _identity_from_lineage(directory: Path) -> dict | None:
    """What a finished dir of an older dlm trained, from the lineage and record beside its weights."""
    try:
        lineage = json.loads((directory / "dlm_lineage.json").read_text(encoding="utf-8"))
        stage = lineage["stages"][-1]
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None
    out = {}
    if isinstance(stage, dict):
        if isinstance(stage.get("mode"), str):
            out["mode"] = stage["mode"]
        if isinstance(stage.get("lora"), bool):
            out["lora"] = stage["lora"]
    return out or None


def check_in_the_way(
    directory: Path, mark: dict, resume_from: Path | None, max_steps: int | None, save_steps: int | None
) -> None:
    """Every name the run is about to write must be free or dlm's: a symlink there (to anywhere) or a user's file is
    refused now, with one line, not written through or over hours later."""
    first = int(CHECKPOINT_RE.match(resume_from.name).group(1)) if resume_from is not None else 0
    for child in sorted(directory.iterdir()):
        name = child.name
        match = CHECKPOINT_RE.match(name)
        will_write = (
            name in FINAL_ENTRIES
            or FINAL_PATTERN.match(name)
            or (
                match is not None
                and int(match.group(1)) > first
                and (max_steps is None or int(match.group(1)) <= max_steps)
                and (not save_steps or int(match.group(1)) % save_steps == 0 or int(match.group(1)) == max_steps)
            )
        )
        if will_write and not owns(directory, name, mark):
            what = "a symlink" if child.is_symlink() else "not written by this run"
            raise UserError(
                f"'{child}' is {what}, and training would write there; move it out of --output_dir (dlm never "
                "writes through a link or over what it did not write)"
            )


def clear_output_dir(output_dir: str | Path) -> list[str]:
    """Remove what dlm wrote in `output_dir` (never a foreign file, a run record or an outcomes file); the names
    of the entries kept are returned."""
    directory = Path(output_dir)
    if not directory.is_dir():
        return []
    for path in owned_entries(directory):
        remove(path)
    (directory / OWNER_FILE).unlink(missing_ok=True)
    return sorted(c.name for c in directory.iterdir())


def failed_write(err: BaseException) -> bool:
    """A write that the disk did not take: ENOSPC, EDQUOT or EFBIG from Python, or torch.save's zip writer, which
    reports a short write as a RuntimeError without an errno ("unexpected pos ...")."""
    if isinstance(err, OSError):
        return err.errno in DISK_FULL
    return isinstance(err, RuntimeError) and any(m in str(err) for m in TORCH_WRITE_FAILURES)


def out_of_room(err: BaseException, output_dir: Path, partial: Path | None) -> BaseException:
    """The error to raise for a failed write while training wrote into `output_dir`: a full disk (or quota, or
    `ulimit -f`) is one line naming what --resume will continue from; `partial`, the folder this process was
    writing (a checkpoint-N, the final model's staging folder), half-written, is removed first (it is dlm's own,
    and nothing could resume from it). Any other error is returned as it is."""
    if not failed_write(err):
        return err
    removed = ""
    if partial is not None and partial.is_dir() and not partial.is_symlink() and not _complete(partial):
        try:  # dlm's own: its name was checked free or dlm's before training wrote anything (check_in_the_way)
            remove(partial)
            removed = f"; the half-written {partial.name} was removed"
        except OSError:
            removed = f"; the half-written {partial.name} is left and will not be resumed from"
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
