"""SIGTERM and SIGHUP behave like Ctrl-C (exit 143 / 129, one line, checkpoints kept, resumable); stopping
`dlm plan --jobs N` stops its children; a second Ctrl-C is no traceback; a run stopped after its last checkpoint
finishes on --resume. The subject is processes and signals, so these run real processes and send real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_support import ROOT, TWEETS, config, one_thread, records  # noqa: F401 (one_thread: autouse fixture)

from dlm import signals
from dlm.trainers.checkpoints import newest_checkpoint

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _train_command(out: Path, runs: Path, max_steps: int = 400) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dlm",
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        TWEETS,
        "--max_steps",
        str(max_steps),
        "--save_steps",
        "10",
        "--max_length",
        "32",
        "--batch_size",
        "2",
        "--gradient_accumulation_steps",
        "1",
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
    ]


def _wait_for(condition, process, seconds: float = 180) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert condition(), "the condition was never reached"


def _default_dispositions() -> None:
    """The child starts as from a fresh shell: whatever the test process ignores (a launcher's `nohup`, an
    in-process test's exit path) is not handed down; dlm keeps an ignored signal ignored on purpose."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def _started(command: list[str], cwd: Path = ROOT):
    """The command as a process in its own session; it and its children are killed at the end if a failed
    assertion left them running (signals in the tests go to the process alone, as `kill PID` sends them)."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=True,
        preexec_fn=_default_dispositions,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_training_like_ctrl_c_and_the_run_resumes(signum, code, tmp_path, tiny_model_dir):
    out, runs = tmp_path / "out", tmp_path / "runs"
    with _started(_train_command(out, runs)) as process:
        _wait_for(lambda: newest_checkpoint(out) is not None, process)  # a complete checkpoint exists
        process.send_signal(signum)
        _, err = process.communicate(timeout=120)

    assert process.returncode == code, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: interrupted by {signal.Signals(signum).name}: ") and "kept" in last
    assert not list(runs.glob("*.json"))  # nothing claims the run finished
    kept = newest_checkpoint(out)
    assert kept is not None, "the checkpoint written before the signal is kept"

    if signum != signal.SIGTERM:
        return  # resuming is the same code after either signal: once is enough
    step = int(kept.name.split("-")[1])
    resumed = subprocess.run(
        [*_train_command(out, runs, max_steps=step + 4), "--resume"], cwd=ROOT, capture_output=True, text=True, env=ENV
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resuming from {kept.name}" in resumed.stderr
    (record,) = records(runs)
    assert record["status"] == "ok" and record["train"]["global_step"] == step + 4


def test_a_second_ctrl_c_while_stopping_prints_no_traceback(tmp_path, tiny_model_dir):
    out, runs = tmp_path / "out", tmp_path / "runs"
    with _started(_train_command(out, runs, max_steps=2000)) as process:
        _wait_for(lambda: (out / "dlm_time.json").exists(), process)  # training has taken its first step
        process.send_signal(signal.SIGINT)
        for _ in range(5):  # an impatient user: more Ctrl-C while dlm is on its way out
            time.sleep(0.05)
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)

    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Exception ignored" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("error: interrupted: ")


def _children(pid: int) -> list[int]:
    """Pids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process parents from /proc")
def test_stopping_a_parallel_plan_stops_its_children(tmp_path, tiny_model_dir):
    plan = tmp_path / "plan.yaml"
    checkpoints = tmp_path / "checkpoints"
    plan.write_text(
        "checkpoints_dir: checkpoints\n"  # below the folder the plan runs in (tmp_path)
        "defaults: {model: tiny-gpt2, max_steps: 5000, save_steps: 1000, max_length: 32, batch_size: 2,\n"
        "           gradient_accumulation_steps: 1, limit: 4}\n"
        "runs:\n"
        "  - {name: a, approach: pretrain, data: zeroshot/twitter-financial-news-sentiment}\n"
        "  - {name: b, approach: pretrain, data: zeroshot/twitter-financial-news-topic}\n"
    )
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "dlm", "plan", str(plan), "--jobs", "2", "--results-dir", str(runs)]
    with _started([*command, "--data-dir", str(ROOT / "samples")], cwd=tmp_path) as process:
        _wait_for(lambda: len(list(checkpoints.glob("*/dlm_time.json"))) == 2, process, 300)  # both are training
        children = _children(process.pid)
        assert len(children) >= 2, children
        process.send_signal(signal.SIGTERM)  # the parent only, as `kill PID` or a scheduler does
        out, err = process.communicate(timeout=120)

    assert process.returncode == 143, err[-2000:]
    assert "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM: ")
    assert "stopping 2 running run(s)" in out
    deadline = time.time() + 10
    while any(_alive(pid) for pid in children) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if _alive(pid)], "a training child outlived its plan"
    for log in (runs / "logs").glob("*.log"):  # each child stopped as on Ctrl-C: its own one line
        assert "interrupted (SIGTERM)" in log.read_text(), log.read_text()[-2000:]


def test_a_run_stopped_after_its_last_checkpoint_finishes_on_resume(tmp_path, monkeypatch, capsys):
    """Ctrl-C (or SIGTERM, or a full disk) between the last checkpoint and the final model: --resume used to say
    "already finished" with no final model and no record."""
    from dlm.trainers import train as train_module

    cfg = config(tmp_path, "out", max_steps=4, save_steps=2)
    real_save = train_module._save_final

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_save_final", stopped)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(cfg)
    out = Path(cfg.output_dir)
    assert newest_checkpoint(out).name == "checkpoint-4"
    assert not (out / "model.safetensors").exists() and not records(tmp_path / "runs")

    monkeypatch.setattr(train_module, "_save_final", real_save)
    result = train_module.train(config(tmp_path, "out", max_steps=4, save_steps=2, resume=True))

    (record,) = records(tmp_path / "runs")
    assert record["status"] == "ok" and record["train"]["global_step"] == 4
    assert result.record["run_id"] == record["run_id"]
    final, last = load_file(out / "model.safetensors"), load_file(out / "checkpoint-4" / "model.safetensors")
    assert final.keys() == last.keys() and all(torch.equal(final[k], last[k]) for k in final)  # no step trained


def test_a_stop_signal_dropped_inside_a_finalizer_still_stops_at_the_next_step(monkeypatch):
    """Python drops an exception raised in a `__del__` (it only reports it); a SIGTERM handled there must not be
    lost: the next training step raises it (the progress callback calls raise_if_stopped)."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))

    class SignalledWhileFinalized:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000):  # bytecode for the interpreter to run the handler in, here
                pass

    saved = signals.handlers()
    try:
        signals.stop_like_ctrl_c()
        finalized = SignalledWhileFinalized()
        del finalized  # the handler raised Stopped inside __del__ and Python dropped it
        assert dropped == [signals.Stopped]
        with pytest.raises(signals.Stopped) as stopped:
            signals.raise_if_stopped()
        assert signals.exit_code(stopped.value) == 143
    finally:
        signals.restore(saved)
