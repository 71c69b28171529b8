"""The report across protocols: generative twins set only against generated-answer numbers, the like-for-like
protocol counted, pairing refused across chat templates, and API runs measured here used as baselines first."""

from __future__ import annotations

import pytest
from test_report import GPT4_FPB_F1, record, score, verdict, write_all

from dlm.results.baselines import match, protocol_differs
from dlm.results.report import build_report, render_report
from dlm.store.records import Score, ScoreProtocol

# --- generative twins: protocols compared like with like ---------------------------------------------------------
GENERATIVE = {
    "scoring": "generative",
    "chat_template": None,
    "system_instruction": None,
    "fewshot_as_multiturn": False,
    "generation": {"max_gen_toks": 16},
    "extraction": "dlm-labels-v1",
}
LIKELIHOOD = {
    "scoring": "loglikelihood",
    "chat_template": None,
    "system_instruction": None,
    "fewshot_as_multiturn": False,
    "generation": None,
    "extraction": None,
}


def protocol_score(task, value, protocol, **kw):
    return {**score(task, value, **kw), "protocol": {**protocol, "shots": kw.get("shots", 0)}}


def test_a_twin_is_set_only_against_generative_numbers():
    twin = Score(
        task="dlm_fpb_gen",
        metric="f1_weighted",
        value=0.5,
        stderr=None,
        n=50,
        num_fewshot=0,
        protocol=ScoreProtocol(**GENERATIVE),
    )
    published = match("dlm_fpb_gen", "f1_weighted", "gpt-4", shots=0, scoring="generative")
    assert published.task == "dlm_fpb" and published.scoring == "generative" and published.value == GPT4_FPB_F1
    assert protocol_differs(twin, published) == []  # the like-for-like comparison the twin exists for
    # gpt2's only MMLU number is log-likelihood: the MMLU twin has nothing to be set against, the MC task has
    assert match("dlm_mmlu", "acc", "gpt2", shots=0).scoring == "loglikelihood"
    assert match("dlm_mmlu_gen", "acc", "gpt2", shots=0, scoring="generative") is None


def test_the_report_counts_the_like_for_like_protocol_and_shows_the_other_beside_it(results_dir):
    scores = [
        protocol_score("dlm_fpb", 0.70, LIKELIHOOD),
        protocol_score("dlm_fpb_gen", 0.55, GENERATIVE),
        protocol_score("dlm_fpb", 0.60, LIKELIHOOD, metric="acc"),
        protocol_score("dlm_fpb_gen", 0.50, GENERATIVE, metric="acc"),
    ]
    write_all(results_dir, [record("a-zs", "zero-shot", scores)])
    report = build_report(results_dir, against="gpt-4")
    rows = {(r["task"], r["metric"]): r for r in report["rows"]}
    twin, mc = rows[("dlm_fpb_gen", "f1_weighted")], rows[("dlm_fpb", "f1_weighted")]
    assert twin["scoring"] == "generative" and twin["protocol_differs"] == []
    assert twin["ratio"] == pytest.approx(0.55 / GPT4_FPB_F1)
    assert twin["other_protocol"] == {
        "task": "dlm_fpb",
        "scoring": "loglikelihood",
        "value": 0.70,
        "stderr": 0.01,
        "n": 100,
    }
    assert mc["protocol_differs"] == ["ours log-likelihood multiple choice, theirs generative"]
    assert mc["other_protocol"]["task"] == "dlm_fpb_gen"
    # the matrix counts FPB once, through the twin (like-for-like), not the MC score
    cell = report["matrix"]["gpt2"]["zero-shot"]["finance"]
    assert cell["n"] == 1 and cell["mean_ratio"] == pytest.approx(0.55 / GPT4_FPB_F1)
    text = render_report(results_dir, against="gpt-4", fmt="markdown")
    assert "| dlm_fpb_gen | f1_weighted |" in text and "0.7000 ± 0.0100 (LL)" in text


def test_scores_under_different_chat_templates_are_not_paired(results_dir):
    chat = {**LIKELIHOOD, "chat_template": {"name": "default", "sha256": "ab"}}
    zs = record("a-zs", "zero-shot", [protocol_score("dlm_fpb", 0.40, LIKELIHOOD)])
    pre = record("b-pre", "pretrain", [protocol_score("dlm_fpb", 0.70, chat)], domain="finance", created="2025-01-02")
    write_all(results_dir, [zs, pre])
    h1 = verdict(build_report(results_dir), "H1")
    assert h1["verdict"] == "not enough runs" and "chat template default vs none" in h1["detail"]


def test_api_runs_measured_here_are_the_baselines_first(results_dir):
    api = record(
        "z-api",
        "zero-shot",
        [
            protocol_score("dlm_fpb_gen", 0.70, GENERATIVE, stderr=0.05, n=90),
            protocol_score("dlm_tfns_gen", 0.60, GENERATIVE, stderr=0.05, n=90, shots=5),
        ],
    )
    api.update(
        approach="api", model={"name": "openai:gpt-4o-2024-08-06"}, api={"models_returned": ["gpt-4o-2024-08-06"]}
    )
    small = record(
        "a-zs",
        "zero-shot",
        [protocol_score("dlm_fpb_gen", 0.35, GENERATIVE), protocol_score("dlm_tfns_gen", 0.30, GENERATIVE)],
    )
    write_all(results_dir, [api, small])
    report = build_report(results_dir, against="gpt-4o")
    assert [r["run_id"] for r in report["runs"]] == ["a-zs"]  # the API run is a baseline, not a small-model run
    rows = {(r["task"], r["metric"]): r for r in report["rows"]}
    fpb = rows[("dlm_fpb_gen", "f1_weighted")]
    assert fpb["baseline_measured"] and fpb["baseline_value"] == 0.70 and fpb["baseline_n"] == 90
    assert fpb["ratio"] == pytest.approx(0.5) and fpb["protocol_differs"] == []
    # TFNS was measured 5-shot only: the 0-shot published number is closer in protocol than a 5-shot measurement
    tfns = rows[("dlm_tfns_gen", "f1_weighted")]
    assert not tfns["baseline_measured"] and tfns["baseline_shots"] == 0
    text = render_report(results_dir, against="gpt-4o", fmt="markdown")
    assert "0.7000 ± 0.0500 (gpt-4o, 0-shot, measured here, n=90)" in text
