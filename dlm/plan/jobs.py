"""`dlm plan FILE --jobs N [--executor local|ray|slurm]`: a plan's runs dispatched in parallel.

Every run is one child process, `python -m dlm.plan.child FILE RUN ...`, which does exactly what the
sequential `dlm plan` does for that run (its lease, its resume, its record): so records and the report are the
same whichever executor ran them, and re-running the plan runs only what is not finished. This driver keeps at
most N children going, starts a run only once the run it starts `from:` has finished, gives each child its own
GPUs (`CUDA_VISIBLE_DEVICES`, `--gpus-per-run`) or its share of the CPU threads, writes one log per run
(`<results_dir>/logs/<run>.log`), and redraws a table of the runs whenever one changes state.

Executors (study/plan_executors.py): local processes; Ray tasks (`num_gpus` per run); Slurm jobs through submitit
(`afterok` on the parent's job, requeue on preemption; the child resumes from its checkpoint).
"""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from dlm import signals
from dlm.errors import UserError
from dlm.plan.child import CHILD_BUSY
from dlm.plan.run import finished_runs
from dlm.secrets import protect_process, treat_as_secret
from dlm.trainers.progress import format_duration

POLL_S = 0.5
STOP_GRACE_S = 30.0  # a stopped child's time to finish the step or save it is in before it is killed


@dataclass
class Job:
    run: object
    state: str = "queued"  # queued | running | done | failed | busy | skipped
    started: float | None = None
    ended: float | None = None
    handle: object = None
    gpus: list = field(default_factory=list)
    log: Path | None = None


def child_command(
    file: str,
    run_name: str,
    results_dir: str,
    data_dir: str | None,
    checkpoints_dir: str | None,
    overrides: list[str] = (),
) -> list[str]:
    command = [sys.executable, "-m", "dlm.plan.child", str(file), run_name, "--results-dir", str(results_dir)]
    if data_dir:
        command += ["--data-dir", str(data_dir)]
    if checkpoints_dir:
        command += ["--checkpoints-dir", str(checkpoints_dir)]
    for item in overrides:  # the child expands the same overridden plan: the same run names and keys
        command += ["--set", item]
    return command


def _gpus() -> list[int]:
    try:
        return list(range(torch.cuda.device_count()))
    except ImportError:
        return []


def _eta(log: Path | None) -> str:
    """The last ETA the child's progress line printed."""
    try:
        tail = log.read_bytes()[-4000:].decode("utf-8", "replace") if log else ""
    except OSError:
        return ""
    found = re.findall(r"ETA (\S+)", tail)
    return found[-1] if found else ""


def _table(jobs: list[Job]) -> None:

    table = Table(title="plan runs", header_style="bold")
    for name in ("run", "state", "elapsed", "ETA"):
        table.add_column(name)
    now = time.time()
    colours = {"done": "green", "failed": "red", "running": "cyan", "busy": "yellow", "skipped": "yellow"}
    for job in jobs:
        elapsed = "" if job.started is None else format_duration((job.ended or now) - job.started)
        colour = colours.get(job.state, "white")
        table.add_row(
            job.run.name, f"[{colour}]{job.state}[/{colour}]", elapsed, _eta(job.log) if job.state == "running" else ""
        )
    Console().print(table)


def run_parallel(
    plan,
    file: str,
    jobs_at_once: int,
    executor,
    results_dir: str,
    data_dir: str | None,
    checkpoints_dir: str | None,
    gpus_per_run: int = 1,
    overrides: list[str] = (),
) -> list[Job]:
    """Run every unfinished run of `plan`, up to `jobs_at_once` at a time; returns the jobs with their states."""

    for run in plan.runs:  # what the children print goes through this process's scrub (plan/logs.py)
        treat_as_secret(run.settings.get("api_key_env"))
    if any(run.settings.get("allow_code_execution") for run in plan.runs):
        protect_process()  # model-generated code in a child cannot read this process's environment either
    done = finished_runs(results_dir)
    jobs = [Job(run, state="done" if run.key in done else "queued") for run in plan.runs]
    by_name = {job.run.name: job for job in jobs}
    free_gpus = _gpus()
    if free_gpus and gpus_per_run > len(free_gpus):  # no run could ever start: the loop below would wait forever
        raise UserError(
            f"--gpus-per-run {gpus_per_run} is more than the {len(free_gpus)} GPU(s) here; "
            f"use --gpus-per-run {len(free_gpus)} or less"
        )
    logs = Path(results_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs_at_once))
    # runs that others start `from:` go first: the chain pretrain -> SFT is the plan's critical path
    parents = {job.run.after for job in jobs if job.run.after}
    order = sorted(jobs, key=lambda job: job.run.name not in parents)
    try:  # Ctrl-C, SIGTERM (dlm/signals.py) or a bug: no run goes on without its driver
        changed = True
        while True:
            for job in order:  # start what is ready
                if job.state != "queued" or sum(j.state == "running" for j in jobs) >= jobs_at_once:
                    continue
                parent = by_name.get(job.run.after) if job.run.after else None
                if parent is not None and parent.state in ("failed", "skipped", "busy"):
                    job.state, changed = "skipped", True
                    continue
                if parent is not None and parent.state != "done" and not executor.submits_with_dependencies:
                    continue
                if free_gpus and len(free_gpus) < gpus_per_run:
                    continue
                job.gpus, free_gpus = free_gpus[:gpus_per_run], free_gpus[gpus_per_run:]
                env = dict(os.environ, OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
                if job.gpus:
                    env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, job.gpus))
                job.log = logs / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', job.run.name)}.log"
                command = child_command(file, job.run.name, results_dir, data_dir, checkpoints_dir, overrides)
                after = parent.handle if parent is not None and parent.state == "running" else None
                job.handle = executor.start(
                    job.run.name, command, env, job.log, gpus=gpus_per_run if job.gpus else 0, after=after
                )
                job.state, job.started, changed = "running", time.time(), True
            for job in jobs:  # collect what finished
                if job.state != "running":
                    continue
                code = executor.poll(job.handle)
                if code is None:
                    continue
                job.ended = time.time()
                free_gpus += job.gpus
                finished = job.run.key in finished_runs(results_dir)
                job.state = "done" if code == 0 and finished else "busy" if code == CHILD_BUSY else "failed"
                changed = True
            if changed:
                _table(jobs)
                changed = False
            if not any(job.state in ("queued", "running") for job in jobs):
                break
            if not any(job.state == "running" for job in jobs) and not _startable(jobs, by_name, executor):
                for job in jobs:  # waiting on a parent that will never finish here
                    if job.state == "queued":
                        job.state = "skipped"
                _table(jobs)
                break
            time.sleep(POLL_S)
    except BaseException:
        stop_running(jobs, executor)
        raise
    executor.close()
    return jobs


def stop_running(jobs: list[Job], executor) -> None:
    """Ask every running child to stop (SIGTERM: it stops as on Ctrl-C, keeping its complete checkpoints), wait
    for them, and kill those still running after STOP_GRACE_S."""
    running = [job for job in jobs if job.state == "running"]
    if not running:
        return
    print(f"stopping {len(running)} running run(s): {', '.join(j.run.name for j in running)}", flush=True)
    saved = signals.handlers()
    signals.ignore_stops()  # a second Ctrl-C must not leave the children behind
    try:
        for job in running:
            executor.stop(job.handle)
        deadline = time.time() + STOP_GRACE_S
        for job in running:
            if not executor.wait(job.handle, max(0.0, deadline - time.time())):
                executor.kill(job.handle)
            job.state, job.ended = "stopped", time.time()
    finally:
        signals.restore(saved)


def _startable(jobs: list[Job], by_name: dict, executor) -> bool:
    for job in jobs:
        if job.state != "queued":
            continue
        parent = by_name.get(job.run.after) if job.run.after else None
        if parent is None or parent.state == "done" or parent.state in ("failed", "skipped", "busy"):
            return True
    return False
