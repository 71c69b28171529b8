"""The one-screen report: short run labels, the research questions, where records are found, width. Constructed
records only (no model runs)."""

from __future__ import annotations

import pytest
from test_report import record, score, write_all

from dlm.results.labels import dataset_label
from dlm.results.paired import Outcomes
from dlm.results.questions import rq5
from dlm.results.report import build_report, find_results_dir, render_report
from dlm.store.records import write_record


def _sft(run_id, seed=42, steps=100, model="gpt2", dataset="zeroshot/twitter-financial-news-sentiment", value=0.6):
    rec = record(run_id, "sft", [score("dlm_fpb", value)], model=model, domain="finance")
    rec["train"]["config"].update(seed=seed, max_steps=steps, data={"parts": [{"dataset": dataset, "config": None}]})
    return rec


def _labels(directory):
    return {r["run_id"]: r["label"] for r in build_report(directory)["runs"]}


def test_dataset_labels_are_short_and_keep_short_names_whole():
    assert dataset_label("zeroshot/twitter-financial-news-sentiment") == "tfns"
    assert dataset_label("glue", "sst2") == "sst2"
    assert dataset_label("openai/gsm8k", "main") == "gsm8k"
    assert dataset_label("gbharti/finance-alpaca") == "finance-alpaca"


def test_labels_name_only_the_settings_that_tell_runs_apart(results_dir):
    write_all(
        results_dir, [_sft("a", seed=1), _sft("b", seed=2), _sft("c", seed=2), _sft("e", seed=2, steps=500), _sft("d")]
    )
    labels = _labels(results_dir)
    assert labels["a"] == "sft·tfns·s1" and labels["d"] == "sft·tfns·s42"  # the seed alone tells them apart
    assert labels["e"] == "sft·tfns·s2·500st"
    assert {labels["b"], labels["c"]} == {"sft·tfns·s2·100st", "sft·tfns·s2·100st#2"}  # equal settings: #2
    assert len(set(labels.values())) == 5


def test_labels_carry_the_model_only_when_the_report_holds_several(results_dir):
    write_all(results_dir, [_sft("a"), _sft("b", model="Qwen/Qwen2-0.5B")])
    assert set(_labels(results_dir).values()) == {"gpt2·sft·tfns", "qwen2-0.5b·sft·tfns"}


def _study(results_dir, *, second_size=False):
    zs = record("zs", "zero-shot", [score("dlm_fpb", 0.40)])
    pre = record("pre", "pretrain", [score("dlm_fpb", 0.70)], domain="finance")
    sft = record("sft", "sft", [score("dlm_fpb", 0.60)], domain="finance")
    runs = [zs, pre, sft]
    if second_size:
        big_zs = record("big-zs", "zero-shot", [score("dlm_fpb", 0.45)], model="gpt2-medium")
        big = record("big-sft", "sft", [score("dlm_fpb", 0.85)], model="gpt2-medium", domain="finance")
        big["train"]["total_params"] = 355_000_000
        runs += [big_zs, big]
    return write_all(results_dir, runs)


def _question(report, name):
    return next(q for q in report["questions"] if q["name"] == name)


def test_research_questions_are_answered_from_paired_scores_or_name_what_is_missing(results_dir):
    report = build_report(_study(results_dir))
    rq1 = _question(report, "RQ1")  # pretrain 0.70 vs SFT 0.60 on the same task, stderr 0.01 each
    assert rq1["verdict"] == "answered" and "pretraining alone is better" in rq1["answer"]
    assert "+0.100" in rq1["answer"] and set(rq1["runs"]) == {"pre", "sft"}
    assert _question(report, "RQ2")["verdict"] == "not enough runs"  # finance only
    assert "math" in _question(report, "RQ2")["answer"]
    rq3 = _question(report, "RQ3")
    assert rq3["verdict"] == "not enough runs" and "second model size" in rq3["answer"]
    assert _question(report, "RQ5")["verdict"] == "not enough runs"


def test_rq3_compares_the_gain_across_model_sizes(results_dir):
    rq3 = _question(build_report(_study(results_dir, second_size=True)), "RQ3")
    # gpt2 (124M): best gain 0.70 - 0.40 = +0.30; gpt2-medium (355M): 0.85 - 0.45 = +0.40, both ± ~0.028
    assert rq3["verdict"] == "answered" and "grows" in rq3["answer"]
    assert rq3["answer"].index("gpt2 (124.0M)") < rq3["answer"].index("gpt2-medium (355.0M)")


@pytest.mark.parametrize("columns", ["60", "100"])
def test_columns_is_honoured_when_piped(results_dir, monkeypatch, capsys, columns):
    monkeypatch.setenv("COLUMNS", columns)
    text = render_report(_study(results_dir), fmt="table")
    assert max(len(line) for line in text.splitlines()) <= int(columns)
    assert "…" not in text


def test_plain_report_reads_where_the_last_record_went(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLM_CACHE", str(tmp_path / "cache"))  # no note of a last writer yet
    assert find_results_dir(None) == "runs"
    assert "the default" in capsys.readouterr().err
    elsewhere = tmp_path / "elsewhere"
    write_record(elsewhere, record("r", "zero-shot", [score("dlm_fpb", 0.4)]))
    assert find_results_dir(None) == str(elsewhere.resolve())
    assert find_results_dir("mine") == "mine"  # --results-dir always wins


def test_rq5_names_three_budget_cells_and_tallies_the_best_split_over_all_of_them():
    """A 1,000-run study has dozens of (model, task) budget cells: the answer names three and counts the rest by
    their best k, instead of a line per cell."""
    budget = []
    for i, task in enumerate(["dlm_fpb", "dlm_tfns", "dlm_fiqa_sa", "dlm_gsm8k", "dlm_glue_rte"]):
        best_k = 0 if i == 4 else 500
        for k in (0, 500, 1000):
            budget.append(
                {
                    "model": "gpt2",
                    "sft_data": "tfns",
                    "total_steps": 1000,
                    "pretrain_steps": k,
                    "sft_steps": 1000 - k,
                    "task": task,
                    "metric": "acc",
                    "value": 0.7 if k == best_k else 0.6,
                    "stderr": 0.02,
                    "run_id": f"seq-{task}-{k}",
                }
            )
    answer, _ = rq5([], budget, Outcomes(None))
    assert answer.answer.count("best k =") == 3 and "and 2 more cells" in answer.answer, answer.answer
    assert answer.answer.endswith("over all 5 (model, task, budget) cells: k = 500 of 1000 in 4, k = 0 of 1000 in 1")
    assert len(answer.runs) == 15
