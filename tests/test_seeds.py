"""Seeds: plans replicate every training run per seed; the report aggregates runs that differ only by seed."""

from __future__ import annotations

import statistics

from dlm.plan.file import load_plan
from dlm.results.report import build_report
from dlm.store.records import write_record

PLAN = """
seeds: [1, 2]
defaults: {model: tiny-gpt2, max_steps: 2}
runs:
  - {name: zs, approach: zero-shot, tasks: dlm_fpb}
  - {name: pre, approach: pretrain, data: "zeroshot/twitter-financial-news-sentiment"}
  - {name: sft, from: pre, approach: sft, data: "zeroshot/twitter-financial-news-sentiment"}
"""


def test_a_plan_runs_every_training_run_once_per_seed(tmp_path):
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN)
    plan = load_plan(str(plan_file), results_dir=str(tmp_path / "runs"))
    by_name = {r.name: r for r in plan.runs}
    assert sorted(by_name) == ["pre-seed1", "pre-seed2", "sft-seed1", "sft-seed2", "zs"]
    assert [by_name[f"pre-seed{s}"].settings["seed"] for s in (1, 2)] == [1, 2]
    for seed in (1, 2):  # each SFT replica starts from the pretraining replica of its own seed
        assert by_name[f"sft-seed{seed}"].settings["model"] == by_name[f"pre-seed{seed}"].settings["output_dir"]
    assert len({r.key for r in plan.runs}) == 5


def test_bad_seeds_are_refused_with_line_and_column(tmp_path):
    import pytest

    from dlm.errors import UserError

    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN.replace("[1, 2]", "[1, -3]"))
    with pytest.raises(UserError, match=r"line 2, column 8: `seeds` is a list of integers"):
        load_plan(str(plan_file))


def _run(run_id, seed, value, steps=100, created="2025-01-01"):
    return {
        "schema_version": 1,  # the flat config shape of schema 1, migrated when written
        "run_id": run_id,
        "kind": "cycle",
        "status": "ok",
        "created_at": created,
        "approach": "sft",
        "domain": "finance",
        "model": {"name": f"checkpoints/{run_id}"},
        "train": {
            "config": {
                "model": "gpt2",
                "mode": "sft",
                "seed": seed,
                "max_steps": steps,
                "output_dir": f"checkpoints/{run_id}",
                "data": {"parts": ["x"]},
            },
            "wall_time_s": 60.0,
        },
        "eval": {
            "config": {"limit": None},
            "scores": [
                {
                    "task": "dlm_fpb",
                    "metric": "f1_weighted",
                    "value": value,
                    "stderr": 0.02,
                    "n": 100,
                    "num_fewshot": 0,
                    "filter": "none",
                    "version": "1",
                    "is_group": False,
                    "higher_is_better": True,
                }
            ],
        },
    }


def test_the_report_aggregates_runs_that_differ_only_by_seed(results_dir):
    for i, (seed, value) in enumerate([(1, 0.60), (2, 0.64), (3, 0.68)]):
        write_record(results_dir, _run(f"s{seed}", seed, value, created=f"2025-01-0{i + 1}"))
    write_record(results_dir, _run("other", 1, 0.10, steps=500, created="2025-01-05"))  # another setup
    (group,) = build_report(results_dir)["seeds"]
    assert group["seeds"] == 3 and sorted(group["runs"]) == ["s1", "s2", "s3"]
    assert group["mean"] == statistics.fmean([0.60, 0.64, 0.68])
    assert group["sd"] == statistics.stdev([0.60, 0.64, 0.68])
