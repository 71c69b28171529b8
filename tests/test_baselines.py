"""Published per-task comparators in results/baselines.yaml: AdaptLLM's Table 4 rows, and the FinGPT GPT-4 rows'
own scoring rule, flagged as a protocol difference."""

from __future__ import annotations

import pytest

from dlm.results.baselines import load, match, protocol_differs
from dlm.store.records import Score

# arXiv 2309.09530v4, Table 4, finance: ConvFinQA, FPB, FiQA SA, Headline, NER
TABLE_4 = {
    "bloomberggpt-50b": (43.4, 51.1, 75.1, 82.2, 60.8),
    "llama-7b": (29.2, 55.9, 69.2, 77.7, 61.1),
    "dapt-7b": (29.6, 55.3, 64.9, 77.5, 60.6),
    "adaptllm-7b": (41.5, 62.5, 72.1, 81.4, 59.3),
}
TASKS = ("dlm_adapt_convfinqa", "dlm_adapt_fpb", "dlm_adapt_fiqa_sa", "dlm_adapt_headline", "dlm_adapt_ner")
METRICS = ("exact_match", "f1_weighted", "f1_weighted", "headline_f1", "entity_f1")


@pytest.mark.parametrize("model", sorted(TABLE_4))
def test_adaptllm_table_4_rows_are_filed_per_task_with_source_protocol_and_size(model):
    table = load()
    assert model in table.models
    for task, metric, value in zip(TASKS, METRICS, TABLE_4[model]):
        (row,) = [b for b in table.entries if b.model == model and b.task == task]
        assert row.metric == metric and row.value == pytest.approx(value / 100)
        assert "2309.09530" in row.source and row.protocol
        assert row.scoring == ("generative" if task in ("dlm_adapt_convfinqa", "dlm_adapt_ner") else "loglikelihood")
        sizes = {"dlm_adapt_fpb": 970, "dlm_adapt_fiqa_sa": 235, "dlm_adapt_ner": 98}
        assert row.n == (None if model == "bloomberggpt-50b" else sizes.get(task))  # None: size not confirmed
        assert (row.variant is not None) == row.second_hand == (model == "bloomberggpt-50b")
    average = sum(TABLE_4[model]) / 5
    assert (
        round(average, 1) == {"bloomberggpt-50b": 62.5, "llama-7b": 58.6, "dapt-7b": 57.6, "adaptllm-7b": 63.4}[model]
    )


def test_adaptllm_is_a_like_for_like_comparator_of_the_dlm_adapt_tasks():
    ours = Score(task="dlm_adapt_fpb", metric="f1_weighted", value=0.5, stderr=None, n=970, num_fewshot=0)
    row = match("dlm_adapt_fpb", "f1_weighted", "adaptllm-7b", shots=0, scoring="loglikelihood")
    assert row.value == pytest.approx(0.625) and protocol_differs(ours, row) == []
    bloomberg = match("dlm_adapt_fpb", "f1_weighted", "bloomberggpt-50b", shots=0)
    assert any("dataset variant" in r for r in protocol_differs(ours, bloomberg))


@pytest.mark.parametrize("task, value, n", [("dlm_tfns", 0.808, 2388), ("dlm_fpb", 0.833, 1212)])
def test_fingpt_gpt4_rows_record_their_else_neutral_rule_and_the_report_flags_it(task, value, n):
    (row,) = [b for b in load().entries if b.model == "gpt-4" and b.task == task and b.value == value]
    assert "neutral" in row.scoring_rule and "change_target" in row.scoring_rule and row.n == n
    twin = Score(task=f"{task}_gen", metric="f1_weighted", value=0.5, stderr=None, n=n, num_fewshot=None)
    assert any(r.startswith("baseline scoring rule: FinGPT") for r in protocol_differs(twin, row))
