"""Running a plan: every unfinished run of a plan file, in order, each one train -> evaluate cycle.

    dlm plan plans/phase3_finetune.yaml --dry-run     # the equivalent `dlm run ...` commands, runnable anywhere
    dlm plan plans/phase3_finetune.yaml               # run what is not finished yet
    dlm plan plans/phase3_finetune.yaml --set model=tiny-gpt2 --set max_steps=20   # every run, overridden

A run is finished when a record carrying its plan key exists in the results dir; an interrupted training run
resumes from its newest checkpoint. Reading and checking the file is study/plan_file.py.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from dlm.config import is_api_model
from dlm.errors import UserError
from dlm.files import check_data_dir, check_writable
from dlm.harness_tasks.catalog import comparison_tasks
from dlm.harness_tasks.evaluate import evaluate
from dlm.plan.executors import make_executor
from dlm.plan.file import load_plan
from dlm.plan.jobs import run_parallel
from dlm.plan.overrides import parse_overrides
from dlm.plan.run import finished_runs, run_one, with_resume
from dlm.results.baselines import load as load_baselines
from dlm.results.power import describe, power_table
from dlm.results.report import next_step, render_report
from dlm.results.verdicts import H1_GAIN, H3_GAIN
from dlm.settings import DEFAULTS, command_line, run_config, train_config
from dlm.store.leases import try_lease
from dlm.store.records import load_records
from dlm.study.cycle import check_tasks, choose_tasks, data_domains, say
from dlm.trainers import estimate, memory
from dlm.trainers.model_check import check_model
from dlm.trainers.progress import format_duration
from dlm.words import plural

MAX_JOBS = 256  # runs at once (each a process): more is a typo, and a fork bomb on one machine


def run_plan(
    file: str,
    dry_run: bool = False,
    data_dir: str | None = None,
    results_dir: str = DEFAULTS["results_dir"],
    checkpoints_dir: str | None = None,
    report: bool = True,
    device: str | None = None,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    gpus_per_run: int = 1,
    overrides: list[str] | None = None,
) -> list[dict]:
    """Run every unfinished run of a plan file in order; return the records written. --dry-run: print commands.
    `overrides`: `--set KEY=VALUE` items (study/plan_overrides.py; plan_file.overridden: which runs each reaches)."""

    if not (1 <= jobs <= MAX_JOBS):
        raise UserError(f"--jobs must be a number of runs at once from 1 to {MAX_JOBS} (got {jobs})")
    if not (1 <= gpus_per_run <= MAX_JOBS):
        raise UserError(f"--gpus-per-run must be from 1 to {MAX_JOBS} (got {gpus_per_run})")
    check_data_dir(data_dir or os.environ.get("DLM_DATA_DIR"))
    plan = load_plan(
        file,
        data_dir=data_dir,
        results_dir=results_dir,
        checkpoints_dir=checkpoints_dir,
        overrides=parse_overrides(overrides or []),
    )
    again = shlex.join(["dlm", "plan", str(file), *(w for item in overrides or [] for w in ("--set", item))])
    if not dry_run:
        check_writable(results_dir, "--results-dir")
    done = finished_runs(results_dir)
    todo = [r for r in plan.runs if r.key not in done]
    if dry_run:
        print(
            f"# plan {plan.name}: {plural(len(plan.runs), 'run')}, {len(plan.runs) - len(todo)} finished in {results_dir}"
        )
        for run in plan.runs:
            mark = f"# done ({done[run.key]}): " if run.key in done else ""
            print(f"{mark}{shlex.join(runnable_command(run, data_dir))}")
        _print_training_times([r for r in todo if r.trains], plan.runs, device)
        _print_api_costs([r for r in todo if is_api_model(r.settings.get("model"))])
        _print_power(plan)
        return []
    check_models([r for r in todo if r.after is None])  # before the first plan line, not at the run's turn
    say(
        f"plan {plan.name}: {plural(len(plan.runs), 'run')}, {len(plan.runs) - len(todo)} finished already, "
        f"{len(todo)} to run"
    )
    if jobs > 1 or executor != "local":
        return _run_parallel(
            plan,
            file,
            jobs,
            executor,
            address,
            gpus_per_run,
            data_dir,
            results_dir,
            checkpoints_dir,
            report,
            overrides or [],
            again,
        )
    written, failed, busy = [], {}, []
    for i, run in enumerate(plan.runs, 1):
        step = f"[{i}/{len(plan.runs)}] {run.name}"
        if run.key in done:
            say(f"{step}: finished already (run {done[run.key]}), skipped")
            continue
        if run.after in failed:
            failed[run.name] = f"starts from '{run.after}', which failed"
            say(f"[red]{step}: skipped, {failed[run.name]}[/]")
            continue
        lease = try_lease(results_dir, run.key)
        if isinstance(lease, str):  # another `dlm plan` on this results dir is running it now
            busy.append(run.name)
            say(f"[yellow]{step}: running in {lease}, skipped here[/]")
            continue
        with lease:
            if run.key in finished_runs(results_dir):  # finished by another process since this plan started
                say(f"{step}: finished by another process meanwhile, skipped")
                continue
            record = run_one(run, plan, file, step, failed)
        if record is not None:
            written.append(record)
    if report and (written or done):
        render_report(runs_dir=results_dir, against="gpt-4", fmt="table")
    if report and (written or done):  # the demo prints its own next steps
        say(next_step(results_dir))
    if busy:
        say(
            f"{len(busy)} run(s) were running in another process: {', '.join(busy)}; re-run `{again}` "
            "when it is done to pick up what it did not finish"
        )
    if failed:
        raise UserError(
            f"{len(failed)} of {len(plan.runs)} runs failed ({', '.join(failed)}); fix the cause and "
            f"re-run `{again}`: finished runs are skipped"
        )
    return written


def check_models(runs: list) -> None:
    """Every base model the plan's runs start from, once each (a `from:` run starts from a checkpoint that does not
    exist yet): a missing checkpoint or an unreachable Hub fails now, in one line."""
    seen = set()
    for run in runs:
        settings = {**DEFAULTS, **run.settings}
        model = settings["model"]
        if model in seen:
            continue
        seen.add(model)
        try:
            check_model(model, trust_remote_code=settings["trust_remote_code"], allow_pickle=settings["allow_pickle"])
        except UserError as err:
            raise UserError(f"run '{run.name}': {err}") from None


def _run_parallel(
    plan, file, jobs, executor, address, gpus_per_run, data_dir, results_dir, checkpoints_dir, report, overrides, again
) -> list[dict]:
    """--jobs N / --executor: every run in its own process (study/plan_jobs.py); exit code 1 when any failed."""

    runner = make_executor(executor, results_dir, address, plan.slurm)
    finished = run_parallel(plan, file, jobs, runner, results_dir, data_dir, checkpoints_dir, gpus_per_run, overrides)
    states = {
        state: [j.run.name for j in finished if j.state == state] for state in ("done", "failed", "busy", "skipped")
    }
    say(f"plan {plan.name}: " + ", ".join(f"{len(names)} {state}" for state, names in states.items()))
    if report and states["done"]:
        render_report(runs_dir=results_dir, against="gpt-4", fmt="table")
    if report and states["done"]:
        say(next_step(results_dir))
    if states["busy"]:
        say(f"running in another process: {', '.join(states['busy'])}; re-run `{again}` when it is done")
    if states["failed"] or states["skipped"]:
        logs = Path(results_dir) / "logs"
        say(
            f"[red]failed: {', '.join(states['failed']) or '-'}; skipped (their `from:` run did not finish): "
            f"{', '.join(states['skipped']) or '-'}; logs in {logs}; re-run the same command to finish them[/]"
        )
        raise SystemExit(1)

    keys = {j.run.key for j in finished}
    return [r for r in load_records(results_dir)[0] if r.plan_key in keys]


def runnable_command(run, data_dir: str | None = None) -> list[str]:
    """The `dlm run` argv that does this plan run when pasted into a shell in any directory: paths absolute (data,
    results, checkpoints, a `from:` run's checkpoint as its model), the data dir written out even when it came from
    DLM_DATA_DIR, resuming where the plan would resume. (The record it writes carries no plan key: `dlm plan`
    runs it again unless it is run by the plan.)"""

    settings = with_resume(run)
    chosen = settings.get("data_dir") or data_dir or os.environ.get("DLM_DATA_DIR")
    if chosen:
        settings["data_dir"] = chosen
    for name in ("data_dir", "results_dir", "output_dir", "model", "chat_template"):
        value = settings.get(name)
        local = name in ("data_dir", "results_dir", "output_dir") or (name == "model" and run.after)
        if value and (local or Path(value).expanduser().exists()):  # `tiny-gpt2`, `gpt2` stay names
            settings[name] = os.path.abspath(Path(value).expanduser())
    beside = Path(sys.executable).parent / "dlm"  # the venv's entry point, also when the venv is not activated
    if shutil.which("dlm"):
        program = ("dlm", "run")
    elif beside.exists():
        program = (str(beside), "run")
    else:  # not installed: the study plan's script, by its full path
        program = (sys.executable, str(Path(__file__).resolve().parents[2] / "main.py"))
    return command_line(settings, program)


def _print_power(plan) -> None:
    """--dry-run: for every task the plan scores, the smallest difference its comparisons can see (80% power, the
    plan's seeds, base rate 0.5: the widest case), and the hypothesis thresholds too small for it, before any run."""
    table = load_baselines()
    tasks = set()
    for run in plan.runs:
        config = run_config(run.settings)
        domains = data_domains(config.data) if config.data is not None else []
        tasks |= set(comparison_tasks(choose_tasks(config, domains)))
    sizes = {t: (table.tasks.get(t, {}).get("n"), table.primary_metric(t) or "acc", 0.5) for t in sorted(tasks)}
    rows = power_table(sizes, plan.seeds, {"H1": H1_GAIN, "H3": H3_GAIN})
    print(f"# power: minimum detectable differences at 80% power with {plan.seeds} seed(s) a side, base rate 0.5:")
    for row in rows:
        if row["mdd"] is not None:
            print(f"#   {describe(row)}")
    unknown = [row["task"] for row in rows if row["mdd"] is None]
    if unknown:
        print(f"#   test-set size unknown (no estimate): {', '.join(unknown)}")


def _print_training_times(runs: list, every_run: list, device: str | None) -> None:
    """--dry-run: each training run's estimated time on `device` (trainers/estimate.py), flagged over 2 h, and its
    estimated peak memory there (trainers/memory.py), flagged when it does not fit."""
    if not runs:
        return

    by_name = {r.name: r for r in every_run}
    _, basis = estimate.throughput(device)
    sized_on = memory.known_device(device) if device else memory.local_device()
    total, over, unknown, too_big, params_of = 0.0, [], [], [], {}
    print(f"# training time estimates ({basis}; 6 x params FLOPs per token, tokens an upper bound):")
    where = memory.device_label(sized_on, memory.device_capacity(sized_on))
    extra = "" if sized_on == "cpu" else f" + {memory.CUDA_CONTEXT_GIB} GiB CUDA context + {memory.HEADROOM:.0%}"
    print(f"# peak memory estimates on {where} (trainers/memory.py, from each model's config{extra}):")
    for run in runs:
        origin = run
        while origin.after in by_name:  # a run that starts from another's checkpoint has that run's base model
            origin = by_name[origin.after]
        base = origin.settings.get("model")
        cfg = train_config({**run.settings, "model": "tiny-gpt2"}, command="run")  # steps and shapes only
        shape = memory.run_shape(cfg, model=base)
        peak = memory.estimate_run(cfg, shape, sized_on) if shape else None
        if base not in params_of:  # built on the meta device from its config: once per model, not per run
            params_of[base] = estimate.model_params(base)
        params = params_of[base] or (shape.total_params if shape else None)
        if params is None:
            unknown.append(run.name)
            print(f"#   {run.name}: size of {base} unknown (its config is not at hand)")
            continue
        seconds, _ = estimate.predict_seconds(estimate.tokens_to_process(cfg), params, device)
        total += seconds
        flag = "  OVER 2 h" if seconds > estimate.BUDGET_S else ""
        over += [run.name] if flag else []
        fit = "; memory unknown (config not at hand)"
        if peak is not None:
            fit = f"; memory ~{memory.gib(peak.needed)} GiB" + ("" if peak.fits is not False else f" {peak.verdict}")
            too_big += [f"{run.name} ({peak.verdict.lower()})"] if peak.fits is False else []
        print(f"#   {run.name}: {format_duration(seconds)} ({seconds / 3600:.2f} h){flag}{fit}")
    print(
        f"# training total: {format_duration(total)} over {len(runs) - len(unknown)} run(s)"
        + (f"; {len(over)} over 2 h: {', '.join(over)}" if over else "")
    )
    if too_big:
        print(
            f"# {len(too_big)} run(s) do not fit {sized_on.upper()}: {', '.join(too_big)} (--set "
            "gradient_checkpointing=true, a smaller batch_size or max_length, or lora=true bring memory down)"
        )


def _print_api_costs(runs: list) -> None:
    """--dry-run of a plan with API runs: each run's requests, tokens and estimated cost, and the total (nothing is
    sent: the tasks are built and their prompts counted, as `dlm eval --dry-run` does)."""
    if not runs:
        return
    total, unknown, requests, failed = 0.0, [], 0, []
    for run in runs:
        try:
            estimate = dry_run_estimate(run.settings)
        except UserError as err:  # e.g. a few-shot pool too small for this data: say so, estimate the rest
            print(f"# {run.name}: no estimate: {err}")
            failed.append(run.name)
            continue
        print(
            f"# {run.name}: {estimate['requests']:,} requests, "
            + (f"~${estimate['cost_usd']:.2f}" if estimate["cost_usd"] is not None else "cost unknown")
        )
        requests += estimate["requests"]
        if estimate["cost_usd"] is None:
            unknown.append(run.name)
        else:
            total += estimate["cost_usd"]
    priced = f"~${total:.2f} at the list prices of harness_tasks/api_prices.yml (output at its maximum)"
    print(
        f"# API runs: {len(runs)}, {requests:,} requests, {priced}"
        + (f"; no price for {', '.join(unknown)}" if unknown else "")
        + (f"; not estimated: {', '.join(failed)}" if failed else "")
    )


def dry_run_estimate(settings: dict) -> dict:
    """What an API model's evaluation-only run would send (harness_tasks/api_budget.py), sending nothing."""

    config = run_config(settings)
    tasks = check_tasks(choose_tasks(config, []), config.evaluation.allow_code_execution)
    evaluation = replace(config.evaluation, protocol=config.protocol.with_tasks(tasks), max_cost=None, dry_run=True)
    return evaluate(evaluation.validate(), write=False)["dry_run"]
