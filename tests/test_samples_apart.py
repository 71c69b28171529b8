"""samples/ keeps training rows and scored rows apart by construction (samples/disjoint.py), as dlm's own
contamination check measures it: each dataset's training split against its own evaluation split, and every
training run of the demo and of the tiny phase-3 plan against the tasks it scores. The one overlap left is the
known real leak samples/ reproduces on purpose: FinGPT's sentiment data holds Financial PhraseBank sentences, and
AdaptLLM's FPB test is made of them (samples/repos_finance.py), so a run trained on either is warned about there."""

from __future__ import annotations

import pytest
from train_support import ROOT

from dlm.data.table import TABLE
from dlm.harness_tasks.overlap import contamination_for_run, overlap_report
from dlm.plan.file import load_plan
from dlm.plan.overrides import parse_overrides
from dlm.settings import run_config
from dlm.study.cycle import check_tasks, choose_tasks, data_domains

TINY = ["model=tiny-gpt2", "max_steps=20", "limit=30"]  # the tiny plans the demo and the README print
KNOWN_REAL_LEAKS = {("fin-multitask", "dlm_adapt_fpb"), ("fin-mix3", "dlm_fpb"), ("fin-mix3", "dlm_adapt_fpb")}


def warned(plan_file: str, overrides: list[str], tmp_path) -> set[tuple[str, str]]:
    """(run, task) of every contamination warning the plan's training runs would print (the cycle's own check)."""
    samples = str(ROOT / "samples")
    plan = load_plan(
        str(ROOT / "plans" / plan_file),
        data_dir=samples,
        results_dir=str(tmp_path),
        overrides=parse_overrides(overrides),
    )
    found = set()
    for run in plan.runs:
        if not run.trains:
            continue
        config = run_config(run.settings)
        tasks = check_tasks(choose_tasks(config, data_domains(config.train.data)), False)
        found |= {
            (run.name, r["eval"])
            for r in contamination_for_run(config.train.data, tasks, samples)
            if r.get("above_threshold")
        }
    return found


def test_the_demo_plan_warns_about_nothing(tmp_path):
    assert warned("demo.yaml", [], tmp_path) == set()


def test_the_tiny_phase3_plan_warns_only_about_the_known_real_leaks(tmp_path):
    assert warned("phase3_finetune.yaml", TINY, tmp_path) == KNOWN_REAL_LEAKS


@pytest.mark.slow  # about two minutes: every training run of three plans against every domain's tasks
@pytest.mark.parametrize("plan_file", ["phase2_pretrain.yaml", "phase4_transfer.yaml", "phase5_ablations.yaml"])
def test_the_other_tiny_plans_warn_about_nothing(plan_file, tmp_path):
    assert warned(plan_file, TINY, tmp_path) == set()


def _own_pairs():
    """(training spec, evaluation spec) of every dataset config with a training and a separate evaluation split."""
    for entry in TABLE:
        for config in entry.configs or (None,):
            e = entry.for_config(config)
            if e.train_split and e.eval_split and e.train_split != e.eval_split and not e.holdout:
                spec = entry.id + (f":{config}" if config else "")
                yield spec, f"{entry.id}:{config or ''}:{e.eval_split}"


@pytest.mark.parametrize("train, evaluation", list(_own_pairs()), ids=lambda spec: spec)
def test_no_training_split_overlaps_its_evaluation_split(train, evaluation):
    report = overlap_report(train, evaluation)  # what `dlm data overlap TRAIN EVAL` prints
    assert report["eval_docs"] > 0 and report["duplicated"] == 0, report["examples"]
