"""`dlm plan --jobs 2` vs `--jobs 1` on a 4-run tiny-gpt2 plan with one `from:` dependency (whole `dlm plan`
processes, alternated), and the per-run overhead of the Ray and submitit executors vs local processes.

    python bench/plan_jobs.py [--tiny] [--json bench/plan_jobs.json]
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import benchlib as common

PLAN = """name: four
defaults: {{model: tiny-gpt2, tasks: dlm_tfns, limit: 30, bootstrap_iters: 0, max_steps: {steps}, batch_size: 8,
           gradient_accumulation_steps: 1, max_length: 128, save_steps: 10000}}
runs:
  - {{name: zero-shot, approach: zero-shot}}
  - {{name: sft, approach: sft, data: zeroshot/twitter-financial-news-sentiment}}
  - {{name: pretrain, approach: pretrain, data: gbharti/finance-alpaca}}
  - {{name: pretrain-then-sft, from: pretrain, approach: sft, data: zeroshot/twitter-financial-news-sentiment}}
"""


def whole_plan(template: Path, jobs: int, results: Path) -> float:
    """One fresh copy of the plan per measurement: checkpoints go to `checkpoints/` beside it, and a second run of
    the same plan there would resume finished runs instead of training them."""
    results.parent.mkdir(parents=True)
    file = results.parent / template.name
    file.write_text(template.read_text())
    started = time.perf_counter()
    subprocess.run(
        [*common.dlm_command(), "plan", str(file), "--jobs", str(jobs), "--results-dir", str(results)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=file.parent,
    )
    return time.perf_counter() - started


def training_seconds(threads: int, work: Path) -> float:
    """One 300-step tiny-gpt2 pretraining run (the plan's `pretrain`) with `threads` CPU threads: how much a run
    gains from the cores a second job would take from it."""
    import os

    out = work / f"threads-{threads}-{time.perf_counter_ns()}"
    command = [
        *common.dlm_command(),
        "train",
        "--model",
        "tiny-gpt2",
        "--mode",
        "pretrain",
        "--dataset",
        "gbharti/finance-alpaca",
        "--max_steps",
        "300",
        "--batch_size",
        "8",
        "--gradient_accumulation_steps",
        "1",
        "--max_length",
        "128",
        "--save_steps",
        "10000",
        "--output_dir",
        str(out / "ckpt"),
        "--results-dir",
        str(out / "runs"),
    ]
    started = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)},
    )
    return time.perf_counter() - started


def executor_seconds(kind: str, file: Path, results: Path) -> float:
    from dlm.plan.executors import LocalExecutor, RayExecutor, SlurmExecutor
    from dlm.plan.file import load_plan
    from dlm.plan.jobs import run_parallel

    plan = load_plan(str(file), results_dir=str(results), checkpoints_dir=str(results / "ckpt"))  # its own dir
    executor = {
        "local": LocalExecutor,
        "ray": RayExecutor,
        "submitit": lambda: SlurmExecutor(results / "slurm", cluster="local"),
    }[kind]()
    started = time.perf_counter()
    run_parallel(plan, str(file), 2, executor, str(results), None, str(results / "ckpt"))
    return time.perf_counter() - started


def main(argv=None) -> dict:
    args = common.parse(common.parser(__doc__), argv)
    work = Path(tempfile.mkdtemp(prefix="dlm-bench-plan-"))
    file = work / "four.yaml"
    file.write_text(PLAN.format(steps=4 if args.tiny else 300))
    rounds = 1 if args.tiny else 2
    times: dict[str, list[float]] = {"jobs1": [], "jobs2": []}
    for r in range(rounds):
        times["jobs1"].append(whole_plan(file, 1, work / f"j1-{r}" / "runs"))
        times["jobs2"].append(whole_plan(file, 2, work / f"j2-{r}" / "runs"))
    ratio = common.median(times["jobs2"]) / common.median(times["jobs1"])
    print(f"4-run plan: --jobs 1 {common.median(times['jobs1']):.1f} s, --jobs 2 {common.median(times['jobs2']):.1f} s")
    results = [common.result_line("jobs2_vs_jobs1_wall_time", ratio, 0.7, True, "4 tiny runs, one dependency")]
    per_run = {}
    if args.tiny:  # the executors' comparison starts Ray: not for a check that the script runs
        payload = {"bench": "plan_jobs", "results": results, "times": times}
        common.write_json(args.json_out, payload)
        return payload
    one = [training_seconds(1, work) for _ in range(2)]
    two = [training_seconds(2, work) for _ in range(2)]
    scaling = common.median(one) / common.median(two)
    print(f"one pretraining run: 1 thread {common.median(one):.1f} s, 2 threads {common.median(two):.1f} s")
    # two 1-thread runs side by side do 2 runs per 1-thread-run time; one 2-thread run does `scaling` in that time
    results.append(
        common.result_line(
            "best_possible_jobs2_ratio",
            scaling / 2,
            0.7,
            True,
            f"independent runs on {os.cpu_count()} cores: 2-thread speed-up {scaling:.2f}x / 2",
        )
    )
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for kind in ("local", "ray", "submitit"):
            per_run[kind] = executor_seconds(kind, file, work / f"exec-{kind}") / 4
    finally:
        ray.shutdown()
    print("seconds per run at --jobs 2: " + ", ".join(f"{k} {v:.1f}" for k, v in per_run.items()))
    for kind in ("ray", "submitit"):
        results.append(
            common.result_line(
                f"{kind}_overhead_per_run_s",
                per_run[kind] - per_run["local"],
                float("nan"),
                True,
                f"{kind} minus local, seconds per run",
            )
        )
    payload = {
        "bench": "plan_jobs",
        "results": results,
        "times": times,
        "per_run_s": per_run,
        "one_run_s": {"1_thread": one, "2_threads": two},
    }
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
