"""`dlm plan --jobs N` and its executors on a 4-run tiny-gpt2 plan with one `from:` dependency."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_support import ROOT

PLAN = """name: four
defaults:
  model: tiny-gpt2
  tasks: dlm_tfns
  limit: 10
  bootstrap_iters: 0
  max_steps: {steps}
  batch_size: 4
  gradient_accumulation_steps: 1
  max_length: 64
  save_steps: 1000
runs:
  - {{name: zero-shot, approach: zero-shot}}
  - {{name: sft, approach: sft, data: zeroshot/twitter-financial-news-sentiment}}
  - {{name: pretrain, approach: pretrain, data: gbharti/finance-alpaca}}
  - {{name: pretrain-then-sft, from: pretrain, approach: sft, data: zeroshot/twitter-financial-news-sentiment}}
"""


def plan_file(tmp_path: Path, steps: int = 8) -> Path:
    path = tmp_path / "four.yaml"
    path.write_text(PLAN.format(steps=steps))
    return path


def records_by_key(results: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for path in results.glob("*.json"):
        record = json.loads(path.read_text())
        if record.get("plan_key") and record.get("status") == "ok":
            out.setdefault(record["plan"]["run"], []).append(record)
    return out


def dlm_plan(args: list[str], cwd: Path, **kw) -> subprocess.Popen:
    command = [sys.executable, "-c", "from dlm import cli; cli.main()", "plan", *args]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def test_jobs_2_runs_every_run_once_after_its_parent(tmp_path, tiny_model_dir):
    from dlm.plan.executors import LocalExecutor
    from dlm.plan.file import load_plan
    from dlm.plan.jobs import run_parallel

    file = plan_file(tmp_path)
    results = tmp_path / "runs"
    plan = load_plan(str(file), results_dir=str(results), checkpoints_dir=str(tmp_path / "ckpt"))
    jobs = {
        j.run.name: j
        for j in run_parallel(plan, str(file), 2, LocalExecutor(), str(results), None, str(tmp_path / "ckpt"))
    }
    assert {name: j.state for name, j in jobs.items()} == dict.fromkeys(jobs, "done")
    assert jobs["pretrain-then-sft"].started >= jobs["pretrain"].ended
    assert {name: len(r) for name, r in records_by_key(results).items()} == dict.fromkeys(jobs, 1)
    assert all((results / "logs" / f"{name}.log").stat().st_size > 0 for name in jobs)
    dependent = records_by_key(results)["pretrain-then-sft"][0]
    assert dependent["approach"] == "sequential"


def test_kill_9_of_a_parallel_plan_then_rerun_finishes_without_duplicates(tmp_path, tiny_model_dir):
    file = plan_file(tmp_path, steps=30)
    results = tmp_path / "runs"
    args = [str(file), "--jobs", "2", "--results-dir", str(results)]
    plan = dlm_plan(args, tmp_path, start_new_session=True)
    deadline = time.time() + 240
    while not list(results.glob("*.json")) and time.time() < deadline:
        time.sleep(0.2)
    os.killpg(plan.pid, signal.SIGKILL)  # the plan and every child it started
    plan.wait()
    assert len(records_by_key(results)) < 4
    rerun = dlm_plan(args, tmp_path)
    output, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, output[-3000:]
    assert {name: len(r) for name, r in records_by_key(results).items()} == {
        "zero-shot": 1,
        "sft": 1,
        "pretrain": 1,
        "pretrain-then-sft": 1,
    }


def test_two_plan_processes_on_one_results_dir_write_each_run_once(tmp_path, tiny_model_dir):
    file = plan_file(tmp_path)
    results = tmp_path / "runs"
    args = [str(file), "--jobs", "2", "--results-dir", str(results)]
    first, second = dlm_plan(args, tmp_path), dlm_plan(args, tmp_path)
    for process in (first, second):
        process.communicate(timeout=600)
    assert {name: len(r) for name, r in records_by_key(results).items()} == {
        "zero-shot": 1,
        "sft": 1,
        "pretrain": 1,
        "pretrain-then-sft": 1,
    }


def test_a_failed_run_does_not_stop_the_others_and_the_plan_exits_1(tmp_path, tiny_model_dir):
    file = tmp_path / "bad.yaml"
    # longer than tiny-gpt2's 1,024 positions: refused when the model is loaded, inside the run's own process
    file.write_text(
        PLAN.format(steps=8).replace(
            "{name: pretrain, approach: pretrain,", "{name: pretrain, approach: pretrain, max_length: 4096,"
        )
    )
    results = tmp_path / "runs"
    plan = dlm_plan([str(file), "--jobs", "2", "--results-dir", str(results)], tmp_path)
    output, _ = plan.communicate(timeout=600)
    assert plan.returncode == 1 and "failed: pretrain" in output and "skipped" in output
    assert set(records_by_key(results)) == {"zero-shot", "sft"}


@pytest.mark.slow  # a minute under load in CI; run with `pytest -m slow`
def test_submitit_runs_the_same_plan_and_writes_sbatch_parameters(tmp_path, tiny_model_dir):
    from dlm.plan.executors import SlurmExecutor
    from dlm.plan.file import load_plan
    from dlm.plan.jobs import run_parallel

    file = plan_file(tmp_path)
    results = tmp_path / "runs"
    plan = load_plan(str(file), results_dir=str(results))
    executor = SlurmExecutor(
        tmp_path / "slurm", {"partition": "gpu", "time_min": 90, "account": "lab"}, cluster="local"
    )
    jobs = run_parallel(plan, str(file), 2, executor, str(results), None, None)
    assert [j.state for j in jobs] == ["done"] * 4
    assert {name: len(r) for name, r in records_by_key(results).items()} == dict.fromkeys(
        ["zero-shot", "sft", "pretrain", "pretrain-then-sft"], 1
    )
    from dlm.plan.executors import sbatch_preview

    text = sbatch_preview({"partition": "gpu", "time_min": 90, "account": "lab"}, 1, "sft", after_job="4242")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --time=90",
        "#SBATCH --account=lab",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --job-name=dlm-sft",
        "#SBATCH --dependency=afterok:4242",
    ):
        assert line in text, text


@pytest.mark.slow  # a minute under load in CI; run with `pytest -m slow`
def test_ray_runs_the_same_plan_on_a_local_instance(tmp_path, tiny_model_dir):
    pytest.importorskip("ray")
    import ray

    from dlm.plan.executors import RayExecutor
    from dlm.plan.file import load_plan
    from dlm.plan.jobs import run_parallel

    file = plan_file(tmp_path)
    results = tmp_path / "runs"
    plan = load_plan(str(file), results_dir=str(results))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        jobs = run_parallel(plan, str(file), 2, RayExecutor(), str(results), None, None)
    finally:
        ray.shutdown()
    assert [j.state for j in jobs] == ["done"] * 4
    assert {name: len(r) for name, r in records_by_key(results).items()} == dict.fromkeys(
        ["zero-shot", "sft", "pretrain", "pretrain-then-sft"], 1
    )
