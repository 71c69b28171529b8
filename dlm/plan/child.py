"""One run of a plan, in its own process: what `dlm plan --jobs N` starts for every run (study/plan_jobs.py).

    python -m dlm.plan.child PLAN_FILE RUN_NAME --results-dir DIR [--data-dir DIR] [--checkpoints-dir DIR]
        [--set KEY=VALUE ...]

Exit codes: 0 the run's record is written (now or before), 1 it failed, 3 another live process holds its lease,
2 bad input (the plan file, the run name).
"""

from __future__ import annotations

import argparse
import sys

from dlm import signals
from dlm.errors import UserError
from dlm.plan.file import load_plan
from dlm.plan.overrides import parse_overrides
from dlm.plan.run import finished_runs, run_one
from dlm.secrets import scrub
from dlm.store.leases import try_lease

CHILD_BUSY = 3  # the run key is leased by another live process (study/plan_jobs.py waits for no one)


def main(argv=None) -> int:

    parser = argparse.ArgumentParser(prog="python -m dlm.plan.child")
    parser.add_argument("file")
    parser.add_argument("run")
    parser.add_argument("--results-dir", required=True)
    parser.add_argument("--data-dir")
    parser.add_argument("--checkpoints-dir")
    parser.add_argument("--set", action="append", default=[], dest="overrides")  # `dlm plan --set`, passed on
    args = parser.parse_args(argv)
    signals.stop_like_ctrl_c()  # `dlm plan --jobs N` stops its children with SIGTERM (so does Slurm)
    try:
        return _child(args)
    except KeyboardInterrupt as err:
        signals.ignore_stops()
        print(
            f"error: {args.run}: interrupted ({signals.signal_name(err)}); its complete checkpoints are kept",
            file=sys.stderr,
        )
        return signals.exit_code(err)


def _child(args) -> int:
    try:
        plan = load_plan(
            args.file,
            data_dir=args.data_dir,
            results_dir=args.results_dir,
            checkpoints_dir=args.checkpoints_dir,
            overrides=parse_overrides(args.overrides),
        )
        (run,) = [r for r in plan.runs if r.name == args.run] or [None]
        if run is None:
            raise UserError(f"plan {plan.name} has no run named '{args.run}'")
    except UserError as err:
        print(f"error: {scrub(str(err))}", file=sys.stderr)
        return 2
    lease = try_lease(args.results_dir, run.key)
    if isinstance(lease, str):
        print(f"{run.name}: running in {lease}", file=sys.stderr)
        return CHILD_BUSY
    with lease:
        if run.key in finished_runs(args.results_dir):
            return 0
        failed: dict = {}
        record = run_one(run, plan, args.file, run.name, failed)
    return 0 if record is not None else 1


if __name__ == "__main__":
    sys.exit(main())
