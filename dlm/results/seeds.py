"""Runs that differ only by seed, aggregated: mean ± sd over seeds per task (plan files: `seeds: [1, 2, 3]`)."""

from __future__ import annotations

import hashlib
import json
import statistics
from dataclasses import asdict

from dlm.results.matrix import Row, Run

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
    config = run.record.train.config if run.record.train else None
    if not run.trained or config is None:
        return None
    setup = {k: v for k, v in asdict(config).items() if k not in NOT_SETUP}
    protocol = run.record.protocol
    setup.update(
        base=run.base_model,
        approach=run.approach,
        origin=_origin_setup(run),
        measurement=protocol.measurement() if protocol else None,
    )
    return hashlib.sha1(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _origin_setup(run: Run) -> str | None:
    # a sequential run's seed replicas start from their own pretraining replicas: compare those without seeds too
    lineage = run.record.evaluated.lineage if run.record.evaluated else None
    stages = lineage.stages if lineage else []
    return json.dumps([{k: v for k, v in asdict(s).items() if k not in ("seed", "run_id")} for s in stages[:-1]])


def seed_groups(units: list[Row]) -> list[dict]:
    """One entry per (setup, task, metric) scored by two or more seeds."""
    groups: dict[tuple, list[Row]] = {}
    for row in units:
        key = setup_key(row.run)
        if key is not None:
            groups.setdefault((key, row.score.task, row.score.metric, row.score.filter), []).append(row)
    out = []
    for (key, task, metric, filt), rows in groups.items():
        seeds = {r.run.record.train.config.seed for r in rows}
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
