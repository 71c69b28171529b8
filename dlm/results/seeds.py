"""Runs that differ only by seed, aggregated: mean ± sd over seeds per task (plan files: `seeds: [1, 2, 3]`)."""

from __future__ import annotations

import hashlib
import json
import statistics

from dlm.results.matrix import Row, Run
from dlm.store.records import eval_settings

# settings that say where or how a run was done, or its seed: runs equal in everything else are one setup
NOT_SETUP = (
    "seed",
    "run_key",
    "output_dir",
    "results_dir",
    "resume",
    "overwrite",
    "report_to",
    "data_dir",
    "logging_steps",
)


def setup_key(run: Run) -> str | None:
    """The identity of a trained run's setup without its seed; None for runs that did not train."""
    train = run.record.get("train") or {}
    config = train.get("config")
    if not run.trained or not isinstance(config, dict):
        return None
    setup = {k: v for k, v in config.items() if k not in NOT_SETUP}
    eval_config = eval_settings(run.record)
    setup.update(
        base=run.base_model,
        approach=run.approach,
        origin=_origin_setup(run),
        limit=eval_config.get("limit"),
        num_fewshot=eval_config.get("num_fewshot"),
    )
    return hashlib.sha1(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _origin_setup(run: Run) -> str | None:
    # a sequential run's seed replicas start from their own pretraining replicas: compare those without seeds too
    lineage = (run.record.get("evaluated") or {}).get("lineage") or {}
    stages = lineage.get("stages") or []
    return json.dumps([{k: v for k, v in s.items() if k not in ("seed", "run_id")} for s in stages[:-1]]) or None


def seed_groups(units: list[Row]) -> list[dict]:
    """One entry per (setup, task, metric) scored by two or more seeds."""
    groups: dict[tuple, list[Row]] = {}
    for row in units:
        key = setup_key(row.run)
        if key is not None:
            groups.setdefault((key, row.score.task, row.score.metric, row.score.filter), []).append(row)
    out = []
    for (key, task, metric, filt), rows in groups.items():
        seeds = {((r.run.record.get("train") or {}).get("config") or {}).get("seed") for r in rows}
        if len(seeds) < 2:
            continue
        values = [r.score.value for r in rows]
        first = rows[0].run
        out.append(
            {
                "setup": key,
                "model": first.base_model,
                "approach": first.approach,
                "task": task,
                "metric": metric,
                "filter": filt,
                "seeds": len(seeds),
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values),
                "runs": [r.run.run_id for r in rows],
            }
        )
    return sorted(out, key=lambda e: (e["model"], e["approach"], e["task"]))
