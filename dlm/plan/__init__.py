"""Plans: a YAML matrix of runs, expanded into keyed runs and run resumably, sequentially or in parallel.

The interface the rest of dlm uses:

    load_plan(file, ...) -> Plan          read and check a plan file (file.py), `--set` items parsed by overrides.py
    run_plan(file, ...) -> [records]      run its unfinished runs (runner.py), in order or with --jobs N (jobs.py)
    finished_runs(results_dir)            {plan key: run id} of the runs whose record exists (run.py)

Inside: run.py runs one plan run under its lease (shared by the sequential runner and child.py, the process
`--jobs N` starts per run); executors.py says where a run's process runs (local, Ray, Slurm).
"""

from dlm.plan.file import Plan, PlanRun, load_plan
from dlm.plan.run import finished_runs
from dlm.plan.runner import run_plan

__all__ = ["Plan", "PlanRun", "finished_runs", "load_plan", "run_plan"]
