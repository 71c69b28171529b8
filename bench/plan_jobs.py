"""`dlm plan --jobs 2` vs `--jobs 1` on a 4-run tiny-gpt2 plan with one `from:` dependency (whole `dlm plan`
processes, alternated), and the per-run overhead of the Ray and submitit executors vs local processes.

    python bench/plan_jobs.py [--tiny] [--json bench/plan_jobs.json]
"""
from __future__ import annotations

import subprocess
import sys
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
    subprocess.run([*common.dlm_command(), "plan", str(file), "--jobs", str(jobs), "--results-dir", str(results)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=file.parent)
    return time.perf_counter() - started


def executor_seconds(kind: str, file: Path, results: Path) -> float:
    from study.plan_executors import LocalExecutor, RayExecutor, SlurmExecutor
    from study.plan_file import load_plan
    from study.plan_jobs import run_parallel

    plan = load_plan(str(file), results_dir=str(results), checkpoints_dir=str(results / "ckpt"))  # its own dir
    executor = {"local": LocalExecutor, "ray": RayExecutor,
                "submitit": lambda: SlurmExecutor(results / "slurm", cluster="local")}[kind]()
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
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for kind in ("local", "ray", "submitit"):
            per_run[kind] = executor_seconds(kind, file, work / f"exec-{kind}") / 4
    finally:
        ray.shutdown()
    print("seconds per run at --jobs 2: " + ", ".join(f"{k} {v:.1f}" for k, v in per_run.items()))
    for kind in ("ray", "submitit"):
        results.append(common.result_line(f"{kind}_overhead_per_run_s", per_run[kind] - per_run["local"], float("nan"),
                                          True, f"{kind} minus local, seconds per run"))
    payload = {"bench": "plan_jobs", "results": results, "times": times, "per_run_s": per_run}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
