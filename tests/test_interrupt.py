"""Ctrl-C: every command exits 130 with one line saying what was kept (typer's own handling returned 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlm import cli

ROOT = Path(__file__).resolve().parent.parent


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    "argv,target",
    [
        (["eval", "--model", "tiny-gpt2", "--tasks", "dlm_fpb"], "dlm.harness_tasks.evaluate.evaluate"),
        (["plan", "plans/demo.yaml"], "dlm.plan.run_plan"),
        (["report"], "dlm.results.report.render_report"),
        (["demo"], "dlm.demo.demo"),
    ],
)
def test_an_interrupted_command_exits_130_with_one_line(argv, target, monkeypatch, capsys):
    monkeypatch.setattr(target, _interrupt)
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    err = capsys.readouterr().err
    err = "".join(line for line in err.splitlines(True) if not line.startswith("dlm report: reading "))
    assert exit_.value.code == 130
    assert err.count("\n") == 1 and err.startswith("error: interrupted: ") and "kept" in err


def _ctrl_c_not_ignored() -> None:
    """A background job starts with SIGINT ignored and Python then never raises KeyboardInterrupt: the child
    starts as from a terminal, where Ctrl-C reaches it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_training_exits_130_and_keeps_no_record(tmp_path, tiny_model_dir):
    out, runs = tmp_path / "out", tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "dlm",
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        "glue",
        "--dataset_config",
        "sst2",
        "--max_steps",
        "2000",
        "--max_length",
        "32",
        "--save_steps",
        "1000",
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        preexec_fn=_ctrl_c_not_ignored,
    )
    deadline = time.time() + 120
    while not (out / "dlm_time.json").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)  # training has taken its first step
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith("error: interrupted: ")
    assert not list(runs.glob("*.json"))  # an unfinished run leaves no record
