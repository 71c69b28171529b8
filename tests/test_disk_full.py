"""A full disk at any write: no half-written checkpoint that --resume would trust, and the scores are kept (the record
and its outcomes both rescued, the record first).

The checkpoint case is a real full disk for one process: `ulimit -f` (RLIMIT_FSIZE) makes the kernel refuse every
write past a size, as a full disk refuses it. A results dir cannot be filled that way without filling the rescue
folder too, so the rescue case refuses writes into the results dir alone, at the one function that writes there.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from train_support import ROOT, TWEETS, config, one_thread, records  # noqa: F401 (one_thread: autouse fixture)

from dlm.errors import UserError
from dlm.trainers.checkpoints import checkpoints, newest_checkpoint

FILE_LIMIT = 2_500_000  # bytes: tiny-gpt2's model.safetensors (1.7 MB) fits, its optimizer state (3.4 MB) does not


def _train(out: Path, runs: Path, *extra: str, limit: int | None = None) -> subprocess.CompletedProcess:
    def full_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-m", "dlm", "train", "--model", "tiny-gpt2", "--dataset", TWEETS, "--max_steps", "6"]
    command += ["--save_steps", "3", "--max_length", "32", "--batch_size", "2", "--gradient_accumulation_steps", "1"]
    command += ["--output_dir", str(out), "--results-dir", str(runs), *extra]
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=full_disk if limit else None,
    )


def test_a_full_disk_while_saving_a_checkpoint_leaves_none_half_written_and_resume_finishes(tmp_path, tiny_model_dir):
    out, runs = tmp_path / "out", tmp_path / "runs"
    failed = _train(out, runs, limit=FILE_LIMIT)

    assert failed.returncode == 2, failed.stderr[-2000:]
    assert "Traceback" not in failed.stderr, failed.stderr[-3000:]
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith("error: no room to write in ") and "--resume" in line, line
    assert "half-written checkpoint-3 was removed" in line
    assert not list(out.glob("checkpoint-*")), "a half-written checkpoint is left"
    assert not list(runs.glob("*.json"))

    resumed = _train(out, runs, "--resume")  # space freed: the same command with --resume
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    (record,) = records(runs)
    assert record["status"] == "ok" and record["train"]["global_step"] == 6


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth"])
def test_a_checkpoint_with_a_file_cut_short_is_never_resumed_from(name, tmp_path):
    """A save that failed late (or a copy cut short) can leave trainer_state.json beside a truncated file."""
    from dlm.trainers.train import train

    train(config(tmp_path, "out", max_steps=4, save_steps=2, save_total_limit=2))
    out = tmp_path / "out"
    assert [step for step, _ in checkpoints(out)] == [2, 4]
    damaged = out / "checkpoint-4" / name
    data = damaged.read_bytes()
    damaged.write_bytes(data[: len(data) - 100])

    assert newest_checkpoint(out).name == "checkpoint-2"  # the whole one before it


def test_a_full_results_dir_rescues_the_record_then_the_outcomes(tmp_path, monkeypatch):
    """The outcomes file used to be written first and its error ended the command: the record, which holds the
    scores, was never written nor rescued."""
    from dlm.harness_tasks.evaluate import evaluate
    from dlm.settings import eval_config
    from dlm.store import outcomes as outcomes_store
    from dlm.store import rescue
    from dlm.store.outcomes import read_outcomes

    results = tmp_path / "runs"
    rescued_in_order = []
    real = rescue.atomic_write

    def full(path, data, mode=None):
        if Path(path).parent == results:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        rescued_in_order.append(Path(path).name)
        return real(path, data, mode)

    monkeypatch.setattr(outcomes_store, "atomic_write", full)
    monkeypatch.setattr(rescue, "atomic_write", full)
    monkeypatch.setattr(rescue.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    cfg = eval_config({"model": "tiny-gpt2", "tasks": "dlm_fpb", "limit": 8, "results_dir": str(results)})

    with pytest.raises(UserError, match=r"No space left on device.*saved to .*\.json, .*\.outcomes\.json\.gz") as err:
        evaluate(cfg)

    folder = tmp_path / "tmp" / rescue.RESCUE_FOLDER
    record_name, outcomes_name = rescued_in_order
    assert record_name.endswith(".json") and outcomes_name.endswith(".outcomes.json.gz")  # the record first
    record = json.loads((folder / record_name).read_text())
    assert record["eval"]["outcomes"] == outcomes_name and record["eval"]["scores"]
    assert set(read_outcomes(folder / outcomes_name).tasks) == {"dlm_fpb"}
    assert str(results) in str(err.value)  # where to move them back
    assert not results.exists() or not list(results.iterdir())
