"""One run of a plan: run it under its plan key (resuming its output dir), and which runs are finished.

Shared by the sequential `dlm plan` (study/plan_runner.py) and the child process of `dlm plan --jobs N`
(study/plan_child.py).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from dlm.errors import UserError
from dlm.quiet import is_verbose
from dlm.settings import command_line, run_config
from dlm.store.records import load_records
from dlm.study.cycle import run_cycle, say
from dlm.trainers.checkpoints import read_owner


def run_one(run, plan, file: str, step: str, failed: dict) -> dict | None:
    """One plan run, under its lease; None when it failed (the reason goes into `failed`)."""

    settings = with_resume(run)

    command = command_line(settings, ("python", "main.py"))
    # the whole command is in the record and in `dlm plan --dry-run`; one short line here unless --verbose
    say(f"{step}: {shlex.join(command)}" if is_verbose() else f"{step}: starting (plan key {run.key})")
    started = time.time()
    try:
        config = run_config(
            settings,
            command=command,
            tags={"plan": {"name": plan.name, "file": str(file), "run": run.name}, "plan_key": run.key},
        )
        if config.train is not None:
            config.train.run_key = run.key  # its output dir is refused to every other run
        record = run_cycle(config)
    except UserError as err:
        failed[run.name] = str(err)
        say(f"[red]{step} failed: {err}[/]")
        return None
    say(f"{step}: done in {time.time() - started:.0f} s")
    return record


def finished_runs(results_dir: str | Path) -> dict[str, str]:
    """{plan key: run id} of the runs whose record exists (records are written only when a cycle completes)."""

    records, _ = load_records(results_dir)
    return {r.plan_key: r.run_id for r in records if r.plan_key and r.status == "ok"}


def with_resume(run) -> dict:
    """A plan run continues in its own output dir: from the newest checkpoint, or from step 0 when it was stopped
    before its first one. A plan never adds --overwrite: a dir that holds anything else is refused by training,
    and what is in it stays."""

    settings = dict(run.settings)
    out = Path(settings.get("output_dir") or "")
    if run.trains and settings.get("output_dir") and out.is_dir():
        owner = read_owner(out) or {}
        if any(out.glob("checkpoint-*")) or owner.get("run_key") == run.key:
            settings["resume"] = True
    return settings
