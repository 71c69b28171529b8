"""Learning curves: `--eval_steps` points during training, `dlm eval --checkpoints`, resume, plots, and the
steps-budget table."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import pytest
from train_support import config, records

from dlm.cli import parse_settings
from dlm.harness_tasks.evaluate import curve_subset, evaluate
from dlm.settings import eval_config
from dlm.store.outcomes import read_outcomes
from dlm.trainers.curve import point_outcomes_path


def run_cli(argv):
    from dlm import cli

    try:
        cli.main(argv)
    except SystemExit as done:
        return done.code
    return 0


def curve_of(record, metric="acc", task="dlm_tfns"):
    return {p["step"]: p["value"] for p in record["train"]["curve"] if p["metric"] == metric and p["task"] == task}


def test_eval_steps_records_points_and_the_last_equals_a_separate_eval(tmp_path, tiny_model_dir):
    from dlm.study.cycle import curve_evaluator_for
    from dlm.trainers.train import train

    cfg = config(
        tmp_path,
        "curve",
        mode="sft",
        max_steps=20,
        batch_size=8,
        max_length=128,
        save_steps=10,
        learning_rate=3e-3,
        eval_steps=5,
        eval_tasks="dlm_tfns",
        eval_limit=30,
    )
    result = train(cfg, evaluator=curve_evaluator_for(cfg))
    record = result.record
    points = curve_of(record)
    assert sorted(points) == [0, 5, 10, 15, 20]
    tokens = {p["step"]: p["tokens"] for p in record["train"]["curve"]}
    assert tokens[0] == 0 and tokens[5] < tokens[10] < tokens[20]
    assert record["train"]["curve_eval_s"] > 0
    assert record["train"]["train_time_s"] < record["train"]["wall_time_s"] - record["train"]["curve_eval_s"] + 1
    saved = json.loads((tmp_path / "curve" / "dlm_curve.json").read_text())
    assert len(saved) == len(record["train"]["curve"])
    # every point scores one fixed subset of 30 documents, stratified by label, not the first 30 rows
    subset = read_outcomes(point_outcomes_path(tmp_path / "curve", 20)).block("dlm_tfns", "none")
    assert (
        len(subset.docs) == 30
        and read_outcomes(point_outcomes_path(tmp_path / "curve", 0)).block("dlm_tfns", "none").docs == subset.docs
    )
    assert record["train"]["curve_documents"]["dlm_tfns"]
    # the last point is what `dlm eval` gives for the saved model on the same documents
    results = tmp_path / "eval"
    assert (
        run_cli(["eval", "--model", str(tmp_path / "curve"), "--tasks", "dlm_tfns", "--results-dir", str(results)]) == 0
    )
    (separate,) = records(results)
    full = read_outcomes(results / separate["eval"]["outcomes"]).block("dlm_tfns", "none")
    first = full.docs[:30]
    assert set(subset.docs) <= set(full.docs) and sorted(subset.docs) != sorted(first)
    shares = lambda block, docs: Counter(block.gold[block.docs.index(d)] for d in docs)  # noqa: E731
    everything, drawn = shares(full, full.docs), shares(full, subset.docs)
    for label, count in everything.items():  # each label keeps its share of the split (within one document)
        assert abs(drawn[label] - 30 * count / len(full.docs)) <= 1
    assert on_subset(full, subset.docs, "acc") == pytest.approx(points[20])
    assert on_subset(full, subset.docs, "f1_weighted") == pytest.approx(curve_of(record, "f1_weighted")[20])
    # --checkpoints: one point per saved checkpoint (10, 20), scored with its own protocol (here the first 30)
    assert (
        run_cli(
            [
                "eval",
                "--model",
                str(tmp_path / "curve"),
                "--checkpoints",
                "--tasks",
                "dlm_tfns",
                "--limit",
                "30",
                "--results-dir",
                str(results),
            ]
        )
        == 0
    )
    curve = [r for r in records(results) if (r["eval"] or {}).get("curve")][-1]["eval"]["curve"]
    by_step = {p["step"]: p["value"] for p in curve if p["metric"] == "acc"}
    assert sorted(by_step) == [10, 20] and by_step[20] == pytest.approx(on_subset(full, first, "acc"))


def on_subset(block, docs, metric: str) -> float:
    """A metric recomputed from a full evaluation's per-document items on a subset of its documents."""
    from dlm.harness_tasks.outcomes import aggregate

    return aggregate(block, metric, [block.docs.index(d) for d in docs])


def test_checkpoints_rerun_keeps_points_and_resume_keeps_the_curve(tmp_path, tiny_model_dir, capsys):
    from dlm.study.cycle import curve_evaluator_for
    from dlm.trainers.train import train

    first = config(
        tmp_path,
        "resumed",
        mode="sft",
        max_steps=10,
        batch_size=8,
        max_length=128,
        save_steps=5,
        eval_steps=5,
        eval_tasks="dlm_tfns",
        eval_limit=10,
    )
    before = curve_of(train(first, evaluator=curve_evaluator_for(first)).record)
    longer = config(
        tmp_path,
        "resumed",
        mode="sft",
        max_steps=15,
        batch_size=8,
        max_length=128,
        save_steps=5,
        eval_steps=5,
        eval_tasks="dlm_tfns",
        eval_limit=10,
        resume=True,
    )
    after = curve_of(train(longer, evaluator=curve_evaluator_for(longer)).record)
    assert sorted(after) == [0, 5, 10, 15] and all(after[s] == before[s] for s in before)
    results = tmp_path / "eval"
    argv = [
        "eval",
        "--model",
        str(tmp_path / "resumed"),
        "--checkpoints",
        "--tasks",
        "dlm_tfns",
        "--limit",
        "10",
        "--results-dir",
        str(results),
    ]
    assert run_cli(argv) == 0
    capsys.readouterr()
    assert run_cli(argv) == 0
    out = capsys.readouterr().out
    assert "scoring" not in out and out.count("kept from run") >= 2


def test_curves_are_plotted_and_the_steps_budget_is_tabled(tmp_path):
    from dlm.results.report import build_report, render_report
    from dlm.store.records import write_record

    def run(run_id, approach, steps, value, starts_from=None, curve=None, created="2025-01-01"):
        rec = {
            "schema_version": 1,  # the flat config shape of schema 1, migrated when written
            "run_id": run_id,
            "kind": "cycle",
            "status": "ok",
            "created_at": created,
            "approach": approach,
            "domain": "finance",
            "model": {"name": f"checkpoints/{run_id}"},
            "train": {
                "config": {
                    "model": "gpt2",
                    "mode": "sft" if approach != "pretrain" else "pretrain",
                    "max_steps": steps,
                    "data": {"parts": [{"dataset": "tfns", "config": None}]},
                },
                "wall_time_s": 60.0,
                "total_params": 124_000_000,
                "curve": curve or [],
            },
            "eval": {
                "config": {"limit": None},
                "scores": [
                    {
                        "task": "dlm_tfns",
                        "metric": "f1_weighted",
                        "value": value,
                        "stderr": 0.02,
                        "n": 90,
                        "num_fewshot": 0,
                        "filter": "none",
                        "version": "1.0",
                        "is_group": False,
                    }
                ]
                if value
                else [],
            },
        }
        if starts_from:
            rec["starts_from"] = {"run_id": starts_from}
        return rec

    curve = [
        {
            "step": s,
            "tokens": 100 * s,
            "task": "dlm_tfns",
            "metric": "f1_weighted",
            "value": v,
            "stderr": 0.03,
            "is_group": False,
        }
        for s, v in [(0, 0.2), (500, 0.5), (1000, 0.6)]
    ]
    runs = tmp_path / "runs"
    for rec in [
        run("a-sft", "sft", 1000, 0.60, curve=curve),
        run("b-pre", "pretrain", 250, None),
        run("c-seq", "sequential", 750, 0.65, starts_from="b-pre", created="2025-01-02"),
    ]:
        write_record(runs, rec)
    report = build_report(runs, against="gpt-4")
    assert report["curves"]["dlm_tfns"]["a-sft"] == [[0, 0.2, 0.03], [50000, 0.5, 0.03], [100000, 0.6, 0.03]]
    budget = {(r["pretrain_steps"], r["sft_steps"]): r["value"] for r in report["steps_budget"]}
    assert budget == {(0, 1000): 0.60, (250, 750): 0.65}
    plot = tmp_path / "report.png"
    text = render_report(runs, against="gpt-4", fmt="markdown", plot=str(plot))
    assert "## Steps budget" in text and plot.stat().st_size > 10_000


def test_curve_points_score_with_the_run_protocol_document_by_document(tmp_path, tiny_model_dir):
    """`--num_fewshot 3 --chat-template default` reach the curve scorer: the last point of `dlm train --eval_steps`
    equals a separate evaluation of the saved weights with the same flags (parsed as `dlm eval` parses them) on
    the curve's fixed subset, on every document. The same subset, not the whole split: lm-eval draws each
    document's few-shot examples from one random stream in scoring order, so a document's context depends on
    which documents were scored before it."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    protocol = ["--num_fewshot", "3", "--chat-template", "default"]
    assert (
        run_cli(
            [
                "train",
                "--model",
                "tiny-gpt2",
                "--dataset",
                "zeroshot/twitter-financial-news-sentiment",
                "--mode",
                "sft",
                "--max_steps",
                "4",
                "--batch_size",
                "4",
                "--gradient_accumulation_steps",
                "1",
                "--max_length",
                "128",
                "--learning_rate",
                "3e-3",
                "--eval_steps",
                "2",
                "--eval_tasks",
                "dlm_tfns",
                "--eval_limit",
                "12",
                "--output_dir",
                str(out),
                "--results-dir",
                str(runs),
                *protocol,
            ]
        )
        == 0
    )
    (trained,) = records(runs)
    last = {p["metric"]: p["value"] for p in trained["train"]["curve"] if p["step"] == 4 and p["task"] == "dlm_tfns"}
    separate_runs = tmp_path / "eval"
    cfg = eval_config(
        parse_settings(
            "eval", ["--model", str(out), "--tasks", "dlm_tfns", *protocol, "--results-dir", str(separate_runs)]
        )
    )
    subset = curve_subset(["dlm_tfns"], 12, cfg.protocol.fewshot_seed)
    evaluate(replace(cfg, protocol=replace(cfg.protocol, documents=subset)))
    (separate,) = records(separate_runs)
    assert separate["eval"]["scores"][0]["protocol"]["shots"] == 3
    assert separate["eval"]["scores"][0]["protocol"]["chat_template"] is not None
    curve = read_outcomes(point_outcomes_path(out, 4)).block("dlm_tfns", "none")
    evaluated = read_outcomes(separate_runs / separate["eval"]["outcomes"]).block("dlm_tfns", "none")
    assert len(curve.docs) == 12 and sorted(curve.docs) == sorted(evaluated.docs)
    for doc, gold, pred in zip(curve.docs, curve.gold, curve.pred):  # every document: gold and each choice's LL
        where = evaluated.docs.index(doc)
        assert gold == evaluated.gold[where] and pred == pytest.approx(evaluated.pred[where], abs=2e-3)
    assert on_subset(evaluated, curve.docs, "acc") == pytest.approx(last["acc"])
    assert on_subset(evaluated, curve.docs, "f1_weighted") == pytest.approx(last["f1_weighted"])
    # without the flags the same weights score other numbers: the protocol is what made them equal
    plain_runs = tmp_path / "plain"
    assert run_cli(["eval", "--model", str(out), "--tasks", "dlm_tfns", "--results-dir", str(plain_runs)]) == 0
    (plain,) = records(plain_runs)
    plain_block = read_outcomes(plain_runs / plain["eval"]["outcomes"]).block("dlm_tfns", "none")
    assert any(
        pred != pytest.approx(plain_block.pred[plain_block.docs.index(doc)], abs=2e-3)
        for doc, pred in zip(curve.docs, curve.pred)
    )
