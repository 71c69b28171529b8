"""The record/report side: records round-trip, corrupt files are named, the report's numbers are the records'
numbers, ratio and verdict arithmetic, protocol marks, every format, the plot, the baselines file.

All records are constructed dicts (no model runs), so the whole file takes seconds.
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from dlm.errors import UserError
from dlm.results.baselines import Baseline, load, match, protocol_differs
from dlm.results.report import build_report, render_report
from dlm.store.records import RunRecord, Score, as_record, load_records, write_record

GPT4_FPB_F1 = 0.78  # results/baselines.yaml: GPT-4, dlm_fpb, f1_weighted, 0-shot (FinBen)
GPT4_GSM8K = 0.92  # GPT-4, dlm_gsm8k, exact_match, 5-shot CoT
GPT4_MMLU = 0.864  # GPT-4, dlm_mmlu, acc, 5-shot


def score(task, value, metric="f1_weighted", stderr=0.01, n=100, shots=0, filt="none", group=False):
    """A score as dlm records it; a generative twin (`_gen`) carries its protocol, the one like-for-like with the
    large models' published numbers (FinBen's FPB: generated answers, 0-shot)."""
    twin = task.endswith("_gen")
    return {
        "protocol": {"scoring": "generative", "shots": shots, "data_source": "hub"} if twin else None,
        "task": task,
        "metric": metric,
        "value": value,
        "stderr": stderr,
        "n": n,
        "num_fewshot": shots,
        "filter": filt,
        "version": "1",
        "is_group": group,
        "higher_is_better": True,
    }


def record(run_id, approach, scores, model="gpt2", domain=None, train=None, starts_from=None, created="2025-01-01"):
    rec = {
        "schema_version": 1,  # the flat config shape of schema 1, migrated when written
        "run_id": run_id,
        "kind": "cycle",
        "status": "ok",
        "created_at": created,
        "approach": approach,
        "domain": domain,
        "model": {"name": model if approach == "zero-shot" else f"checkpoints/{run_id}"},
        "eval": {"config": {"limit": None}, "scores": scores},
    }
    if approach != "zero-shot":
        rec["train"] = {
            "config": {
                "model": model,
                "mode": "pretrain" if approach == "pretrain" else "sft",
                "data_fraction": 1.0,
                "data": {"parts": [{"dataset": "x", "config": None}]},
            },
            "wall_time_s": 600.0,
            "peak_memory_mb": 2048.0,
            "trainable_params": 124_000_000,
            "total_params": 124_000_000,
            **(train or {}),
        }
    if starts_from:
        rec["starts_from"] = {"run_id": starts_from, "approach": "pretrain", "mode": "pretrain"}
    return rec


def write_all(directory, records):
    for rec in records:
        write_record(directory, rec)
    return directory


def verdict(report, name):
    return next(v for v in report["criteria"] + report["hypotheses"] if v["name"] == name)


@pytest.fixture()
def study(results_dir):
    """A zero-shot gpt2, a finance pretrain run (also scored on math and general), direct SFT and sequential."""
    zs = record(
        "a-zs",
        "zero-shot",
        [
            score("dlm_fpb", 0.40),
            score("dlm_gsm8k", 0.02, "exact_match", shots=5, filt="strict-match"),
            score("dlm_mmlu", 0.25, "acc", shots=5, group=True),
        ],
        created="2025-01-01",
    )
    pre = record(
        "b-pre",
        "pretrain",
        [
            score("dlm_fpb", 0.70),
            score("dlm_fpb_gen", 0.70),  # like-for-like with GPT-4's FinBen number: decides domain matching
            score("dlm_gsm8k", 0.023, "exact_match", shots=5, filt="strict-match"),
            score("dlm_mmlu", 0.30, "acc", shots=5, group=True),
        ],
        domain="finance",
        created="2025-01-02",
    )
    sft = record("c-sft", "sft", [score("dlm_fpb", 0.60, stderr=0.01)], domain="finance", created="2025-01-03")
    seq = record(
        "d-seq",
        "sequential",
        [score("dlm_fpb", 0.66, stderr=0.01)],
        domain="finance",
        starts_from="b-pre",
        created="2025-01-04",
    )
    return write_all(results_dir, [zs, pre, sft, seq])


def test_records_round_trip_through_the_store(results_dir):
    rec = record("r1", "pretrain", [score("dlm_fpb", 0.5)], domain="finance")
    write_record(results_dir, rec)
    loaded, skipped = load_records(results_dir)
    assert skipped == []
    for stored, written in zip(loaded[0].scores, rec["eval"]["scores"], strict=True):
        assert {k: getattr(stored, k) for k in written} == written
    assert loaded[0].train.total_params == 124_000_000


def test_records_written_within_one_second_load_in_the_order_they_were_written(results_dir):
    written = [write_record(results_dir, {"kind": "eval", "status": "ok"}) for _ in range(30)]
    loaded, _ = load_records(results_dir)
    assert [r.run_id for r in loaded] == [path.stem for path in written]


def test_corrupt_file_is_skipped_and_named(results_dir, capsys):
    write_all(results_dir, [record("ok", "zero-shot", [score("dlm_fpb", 0.5)])])
    (results_dir / "broken.json").write_text('{"run_id": "half', encoding="utf-8")
    text = render_report(results_dir, fmt="markdown")
    out = capsys.readouterr()
    assert "broken.json" in text and "broken.json" in out.err
    assert [r["run_id"] for r in build_report(results_dir)["runs"]] == ["ok"]


def test_no_records_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no run records"):
        build_report(tmp_path / "empty")


def test_report_numbers_are_the_records_numbers(study):
    report = build_report(study)
    loaded, _ = load_records(study)
    stored = {(r.run_id, s.task, s.metric): (s.value, s.stderr, s.n) for r in loaded for s in r.scores}
    shown = {(r["run_id"], r["task"], r["metric"]): (r["value"], r["stderr"], r["n"]) for r in report["rows"]}
    assert shown == stored


def test_ratio_against_the_published_number(study):
    rows = {(r["run_id"], r["task"]): r for r in build_report(study)["rows"]}
    fpb = rows[("b-pre", "dlm_fpb")]
    assert fpb["baseline_value"] == GPT4_FPB_F1 and fpb["baseline_model"] == "gpt-4"
    assert fpb["ratio"] == pytest.approx(0.70 / GPT4_FPB_F1)
    assert rows[("a-zs", "dlm_mmlu")]["ratio"] == pytest.approx(0.25 / GPT4_MMLU)


def test_matrix_cells_average_ratios_in_domain_and_cross_domain(study):
    matrix = build_report(study)["matrix"]["gpt2"]
    assert matrix["pretrain"]["finance"]["mean_ratio"] == pytest.approx(0.70 / GPT4_FPB_F1)
    cross = matrix["pretrain"]["cross"]
    assert cross["n"] == 2  # gsm8k (math) and mmlu (general) for a finance-trained run
    assert cross["mean_ratio"] == pytest.approx((0.023 / GPT4_GSM8K + 0.30 / GPT4_MMLU) / 2)
    assert matrix["zero-shot"]["math"]["mean_ratio"] == pytest.approx(0.02 / GPT4_GSM8K)
    assert "cross" not in matrix["zero-shot"]  # zero-shot has no training domain


def test_success_criteria_verdicts(study):
    report = build_report(study)
    finance = verdict(report, "Domain matching (finance)")
    # best finance run: pretrain at 0.70/0.78 = 89.7% >= 80%
    assert finance["verdict"] == "met" and "b-pre" in finance["detail"] and "89.7%" in finance["detail"]
    assert finance["correction"]["method"] == "Holm" and finance["correction"]["value"] < 0.025
    math_check = verdict(report, "Domain matching (math)")
    assert math_check["verdict"] == "not enough runs" and "dlm_gsm8k" in math_check["detail"]
    # cross-domain: GSM8K's GPT-4 number used chain-of-thought and MMLU's is generative: neither is like-for-like
    transfer = verdict(report, "Transfer")
    assert transfer["verdict"] == "not enough runs" and "chain-of-thought" in transfer["detail"]
    assert verdict(report, "Efficiency")["verdict"] == "met"


def test_training_over_two_hours_fails_efficiency(results_dir):
    slow = record("slow", "sft", [score("dlm_fpb", 0.5)], domain="finance", train={"wall_time_s": 8000.0})
    report = build_report(write_all(results_dir, [slow]))
    eff = verdict(report, "Efficiency")
    assert eff["verdict"] == "not met" and "slow" in eff["detail"]


def test_a_sequential_run_counts_both_stages_against_two_hours(results_dir):
    pre = record("pre", "pretrain", [score("dlm_fpb", 0.5)], domain="finance", train={"wall_time_s": 4000.0})
    seq = record(
        "seq",
        "sequential",
        [score("dlm_fpb", 0.6)],
        domain="finance",
        train={"wall_time_s": 4000.0},
        starts_from="pre",
        created="2025-01-02",
    )
    eff = verdict(build_report(write_all(results_dir, [pre, seq])), "Efficiency")
    assert eff["verdict"] == "not met" and "seq" in eff["detail"].split("over 2 h:")[1]  # 8000 s in all


def test_h1_pairs_pretrain_with_zero_shot_of_the_same_base_model(study):
    h1 = verdict(build_report(study), "H1")
    # finance task only (in-domain): 0.70 vs 0.40 -> +75%
    assert h1["verdict"] == "supported" and "75.0%" in h1["detail"]
    assert [(e["task"], e["treated"], e["control"]) for e in h1["evidence"]] == [("dlm_fpb", 0.70, 0.40)]


def test_h1_below_threshold_is_not_supported(results_dir, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # the verdict line whole, whatever terminal the tests run in
    zs = record("zs", "zero-shot", [score("dlm_fpb", 0.50)])
    pre = record("pre", "pretrain", [score("dlm_fpb", 0.55)], domain="finance")  # +10% < 20%
    runs = write_all(results_dir, [zs, pre])
    h1 = verdict(build_report(runs), "H1")
    assert h1["verdict"] == "not supported"
    # the screen shows the p of the side the verdict took (P(gain >= 20%)), not the p of "supported" (about 1)
    not_p = h1["correction"]["value_not"]
    assert not_p < 0.05 < h1["correction"]["value"]
    line = next(x for x in render_report(runs, fmt="table").splitlines() if "H1" in x)
    assert "p(Holm, not)" in line


def test_h2_compares_sequential_with_direct_sft(study):
    h2 = verdict(build_report(study), "H2")
    # 0.66 vs 0.60, stderr of the difference sqrt(0.01^2 + 0.01^2) = 0.0141 < 0.06
    assert h2["verdict"] == "supported" and "+0.0600" in h2["detail"]


def test_h2_within_noise_is_inconclusive(results_dir):
    sft = record("sft", "sft", [score("dlm_fpb", 0.60, stderr=0.05)], domain="finance")
    seq = record("seq", "sequential", [score("dlm_fpb", 0.61, stderr=0.05)], domain="finance")
    assert verdict(build_report(write_all(results_dir, [sft, seq])), "H2")["verdict"] == "inconclusive"


def test_h3_uses_out_of_domain_tasks(study):
    h3 = verdict(build_report(study), "H3")
    # gsm8k 0.023 vs 0.02 and mmlu 0.30 vs 0.25: pooled (0.1615 - 0.135) / 0.135 = +19.6%, but with stderrs of 0.01
    # on a control of 0.135 (resampled too) the relative interval reaches below 10%: not decidable
    assert sorted(e["task"] for e in h3["evidence"]) == ["dlm_gsm8k", "dlm_mmlu"]
    assert h3["difference"]["relative"] == pytest.approx(0.0265 / 0.135, rel=1e-3)
    low, high = h3["difference"]["relative_ci95"]
    assert low < 0.10 < high and h3["verdict"] == "inconclusive"


def test_not_enough_runs_names_what_is_missing(results_dir):
    pre = record(
        "pre",
        "pretrain",
        [score("dlm_fpb", 0.7), score("dlm_mmlu", 0.3, "acc", shots=5)],
        model="qwen2-0.5b",
        domain="finance",
    )
    report = build_report(write_all(results_dir, [pre]))
    h1, h2, h3 = (verdict(report, n) for n in ("H1", "H2", "H3"))
    assert h1["verdict"] == "not enough runs" and "zero-shot run of qwen2-0.5b on dlm_fpb" in h1["detail"]
    assert h3["verdict"] == "not enough runs" and "qwen2-0.5b on dlm_mmlu" in h3["detail"]
    assert h2["verdict"] == "not enough runs" and "sequential" in h2["detail"]


def test_protocol_differences_are_listed():
    s = Score(task="dlm_gsm8k", metric="exact_match", value=0.1, stderr=None, n=50, num_fewshot=0)
    b = match("dlm_gsm8k", "exact_match", "gpt-4", shots=0)
    reasons = protocol_differs(s, b, limit=50)
    assert "shots differ (ours 0, theirs 5)" in reasons
    assert "baseline used chain-of-thought" in reasons
    assert any("--limit" in r for r in reasons)
    mc = Score(task="dlm_fpb", metric="f1_weighted", value=0.5, stderr=None, n=50, num_fewshot=0)
    assert protocol_differs(mc, match("dlm_fpb", "f1_weighted", "gpt-4", shots=0)) == [
        "ours log-likelihood multiple choice, theirs generative"
    ]
    same = Baseline(
        model="x",
        task="dlm_fpb",
        metric="f1_weighted",
        shots=0,
        cot=False,
        value=0.5,
        scoring="loglikelihood",
        protocol="",
        source="s",
    )
    assert protocol_differs(mc, same) == []


def test_match_prefers_the_closest_protocol_and_falls_back_in_order():
    assert match("dlm_mmlu", "acc", "claude-3.5-sonnet", shots=0).cot is False  # 5-shot direct beats 0-shot CoT
    assert match("dlm_fpb", "f1_weighted", "gpt-4", shots=0).shots == 0  # FinBen 0-shot before FinGPT (unstated)
    assert match("dlm_financemath", "exact_match", "gpt-4") is None
    assert match("dlm_financemath", "exact_match", "gpt-4,gpt-4o").model == "gpt-4o"
    assert match("dlm_glue_cola", "acc", "gpt-3.5") is None  # MCC is not comparable to accuracy


def test_protocol_marks_and_contamination_in_the_table(results_dir):
    rec = record(
        "r",
        "sft",
        [score("dlm_fpb", 0.5)],
        domain="finance",
        train={"contamination": {"eval": "dlm_fpb", "above_threshold": True, "duplicated_fraction": 0.3}},
    )
    text = render_report(write_all(results_dir, [rec]), fmt="markdown")
    assert "≠1" in text and "ours log-likelihood multiple choice, theirs generative" in text
    assert "⚠ overlap 0.3000" in text
    other = record(
        "o",
        "sft",
        [score("dlm_fpb", 0.5)],
        domain="finance",
        train={
            "contamination": [
                {"eval": "AdaptLLM/finance-tasks:FPB", "above_threshold": True, "duplicated_fraction": 0.9},
                {"eval": "dlm_tfns", "above_threshold": False, "duplicated_fraction": 0.0},
            ]
        },
    )
    write_record(results_dir, other)
    notes = build_report(results_dir)["notes"]
    assert any("o: training data overlaps AdaptLLM/finance-tasks:FPB" in n for n in notes)
    assert not any("dlm_tfns" in n for n in notes)  # below threshold: no warning


@pytest.mark.parametrize("fmt", ["table", "markdown", "csv", "json"])
def test_every_format_renders(study, fmt, capsys):
    text = render_report(study, fmt=fmt)
    assert text and "dlm_fpb" in text
    if fmt == "json":
        assert json.loads(text)["against"] == ["gpt-4"]
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        assert {r["run_id"] for r in rows} == {"a-zs", "b-pre", "c-sft", "d-seq"}
    if fmt in ("table", "markdown"):
        assert "Continued pretraining" in text and "H2" in text


def test_undefined_metric_is_shown_as_missing_and_json_stays_strict(results_dir, capsys):
    # lm-eval reports NaN for a metric it cannot define; dlm records it as undefined (null), never as NaN
    write_all(results_dir, [record("nan", "zero-shot", [score("dlm_fpb", None)])])
    text = render_report(results_dir, fmt="json")
    row = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))["rows"][0]
    assert row["value"] is None and row["ratio"] is None


def test_tiny_model_note(results_dir):
    tiny = record("t", "zero-shot", [score("dlm_fpb", 0.3)], model="tiny-gpt2")
    assert "tiny-gpt2 runs demonstrate the pipeline only" in render_report(write_all(results_dir, [tiny]), fmt="table")


def test_plot_writes_a_png(study, tmp_path):
    # two data fractions of the same run make an ablation curve
    extra = record(
        "e-pre",
        "pretrain",
        [score("dlm_fpb", 0.6)],
        domain="finance",
        train={
            "config": {
                "model": "gpt2",
                "mode": "pretrain",
                "data_fraction": 0.25,
                "data": {"parts": [{"dataset": "x"}]},
            }
        },
    )
    write_record(study, extra)
    assert build_report(study)["ablations"]["data_fraction"]
    out = tmp_path / "plots" / "report.png"
    render_report(study, fmt="json", plot=str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_format_and_unknown_baseline_model_are_user_errors(study):
    with pytest.raises(UserError, match="format"):
        render_report(study, fmt="xml")
    with pytest.raises(UserError, match="gpt-4"):
        render_report(study, against="gpt4")


def test_baselines_file_entries_are_complete():
    table = load()
    assert len(table.entries) > 50
    for b in table.entries:
        assert b.source and b.metric and b.protocol, b
        assert b.shots is None or isinstance(b.shots, int), b
        assert 0.0 <= b.value <= 1.0, b
        assert b.scoring in ("generative", "loglikelihood", "unstated"), b
    import yaml

    from dlm.results.baselines import BASELINES_FILE

    raw = yaml.safe_load(BASELINES_FILE.read_text())["baselines"]
    assert all("shots" in e for e in raw)
    assert all(e["shots"] is not None or "shots as published" in e.get("note", "") for e in raw)
    for model in ("gpt-4", "gpt-4o", "claude-3.5-sonnet", "qwen2-0.5b", "gpt2"):
        assert any(b.model == model for b in table.entries), model
    assert table.task_domain("dlm_dm_algebra__linear_1d") == "math"
    # the "no large-model number" list agrees with the entries, and covers every task without one
    large = {"gpt-4", "gpt-4o", "gpt-4-turbo", "claude-3.5-sonnet", "gpt-3.5"}
    with_number = {b.task for b in table.entries if b.model in large}
    assert not set(table.no_number) & with_number
    assert {t for t in table.tasks if t not in with_number} == set(table.no_number)


def test_train_only_and_failed_records(results_dir):
    bare = record("bare", "pretrain", [], domain="finance")
    del bare["approach"]  # `dlm train` records carry only the training mode
    failed = {**record("bad-run", "sft", [score("dlm_fpb", 0.9)], domain="finance"), "status": "failed"}
    report = build_report(write_all(results_dir, [bare, failed]))
    assert [(r["run_id"], r["approach"]) for r in report["runs"]] == [("bare", "pretrain")]
    assert any("bad-run" in note for note in report["notes"])
    assert report["efficiency"][0]["run_id"] == "bare"


def test_dlm_report_command(study, capsys):
    from dlm.cli import main

    main(["report", "--runs", str(study), "--format", "json", "--against", "gpt-4,gpt-4o"])
    assert json.loads(capsys.readouterr().out)["against"] == ["gpt-4", "gpt-4o"]
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--runs", str(study), "--against", "gpt5"])
    assert exit_info.value.code == 2
    assert "unknown baseline model 'gpt5'" in capsys.readouterr().err


def test_eval_of_a_checkpoint_inherits_the_training_run(results_dir):
    zs = record("zs", "zero-shot", [score("dlm_fpb", 0.40)])
    trained = record("tr", "pretrain", [], domain="finance", train={"output_dir": "checkpoints/tr"})
    trained["approach"] = None  # a bare `dlm train` record
    evaluated = record("ev", "zero-shot", [score("dlm_fpb", 0.70)])
    evaluated.update(approach=None, model={"name": "checkpoints/tr"})  # `dlm eval --model checkpoints/tr`
    report = build_report(write_all(results_dir, [zs, trained, evaluated]))
    run = next(r for r in report["runs"] if r["run_id"] == "ev")
    assert (run["approach"], run["model"]) == ("pretrain", "gpt2")
    assert verdict(report, "H1")["evidence"][0]["treated_run"] == "ev"


def test_console_printers_tolerate_missing_fields(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    from dlm.results.console import print_eval, print_overlap, print_rows, print_task_table, print_train_summary

    print_train_summary(RunRecord(run_id="t", kind="train"))
    print_eval(
        as_record(
            {
                "schema_version": 1,  # the flat config shape of schema 1, migrated when read
                "run_id": "r",
                "kind": "eval",
                "model": {"name": "tiny-gpt2"},
                "eval": {
                    "scores": [
                        score("fin_sentiment", 0.5, group=True),
                        score("dlm_gsm8k", 0.1, "exact_match", stderr=None, n=None, filt="strict-match"),
                    ]
                },
            }
        )
    )
    print_task_table([{"name": "dlm_fpb"}])
    print_rows([{"prompt": "Q", "completion": " A"}], title="t")
    print_overlap(
        {
            "eval": "dlm_fpb",
            "above_threshold": True,
            "duplicated_fraction": 0.2,
            "examples": [{"kind": "exact", "eval": "x y", "train": "x y z"}],
        }
    )
    out = capsys.readouterr().out
    assert "fin_sentiment (group)" in out and "0.1000 " in out and "exact_match (strict-match)" in out
    assert "tiny-gpt2 numbers demonstrate the pipeline only" in out
    assert "' A'" in out  # the completion's leading space stays visible
    assert "overlap above threshold" in out and "–" in out


def test_domain_matching_is_decided_on_full_sets_with_same_shot_comparators_and_shows_every_run(results_dir):
    subset = record("sub", "sft", [score("dlm_fpb_gen", 0.75)], domain="finance")
    subset["eval"]["config"]["limit"] = 30.0
    report = build_report(write_all(results_dir, [subset]))
    finance = verdict(report, "Domain matching (finance)")
    assert finance["verdict"] == "not enough runs" and "subset" in finance["detail"]

    a = record("run-a", "sft", [score("dlm_fpb_gen", 0.70)], domain="finance", created="2025-01-02")
    b = record("run-b", "sft", [score("dlm_fpb_gen", 0.50)], domain="finance", created="2025-01-03")
    b["train"]["config"]["data_fraction"] = 0.5  # another setup, not a second seed of run-a's
    math_zero = record(
        "m0",
        "sft",
        [score("dlm_gsm8k", 0.90, "exact_match", shots=0, filt="strict-match")],
        domain="math",
        created="2025-01-04",
    )
    report = build_report(write_all(results_dir, [a, b, math_zero]))
    finance = verdict(report, "Domain matching (finance)")
    assert finance["verdict"] == "met" and "run-a" in finance["detail"] and "run-b" in finance["detail"]
    assert [e["run_id"] for e in finance["evidence"]] == ["run-a", "run-b"]  # all qualifying runs, best first
    math_check = verdict(report, "Domain matching (math)")  # GPT-4's GSM8K number is 5-shot: not a 0-shot comparator
    assert math_check["verdict"] == "not enough runs" and "shots differ" in math_check["detail"]


def test_a_ratio_whose_interval_straddles_the_threshold_is_inconclusive(results_dir):
    near = record("near", "sft", [score("dlm_fpb_gen", 0.63, stderr=0.05)], domain="finance")  # 80.8% +- 12.6%
    finance = verdict(build_report(write_all(results_dir, [near])), "Domain matching (finance)")
    assert finance["verdict"] == "inconclusive"


@pytest.mark.parametrize(
    "bad",
    [
        {"run_id": 7, "kind": "eval"},
        {"run_id": "x", "eval": "scores"},
        {"run_id": "x", "eval": {"scores": [{"task": "dlm_fpb", "metric": "acc", "value": "high"}]}},
        {"run_id": "x", "eval": {"scores": [{"task": "dlm_fpb", "metric": "acc", "value": 0.5, "n": "all"}]}},
        {"run_id": "x", "train": {"wall_time_s": "long"}},
        {"run_id": "x", "created_at": 20250101},
        {"run_id": "x", "zero_shot_key": ["gpt2"]},
    ],
)
def test_a_malformed_record_is_skipped_and_named_by_report_plan_and_reuse(results_dir, bad, capsys):
    from dlm.plan.runner import finished_runs
    from dlm.study.zero_shot import stored_zero_shot

    write_all(results_dir, [record("good", "zero-shot", [score("dlm_fpb", 0.5)])])
    (results_dir / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    report = build_report(results_dir)
    assert [r["run_id"] for r in report["runs"]] == ["good"]
    assert report["skipped"][0]["file"].endswith("bad.json") and report["skipped"][0]["reason"]
    assert finished_runs(results_dir) == {}
    assert stored_zero_shot({"model": "gpt2"}, ["dlm_fpb"], results_dir) == {}


def test_the_report_says_which_differences_each_task_can_show(results_dir):
    """Power from the study itself: the zero-shot score as base rate, the test-set size the runs scored, the seeds'
    spread where there are seeds; a task too small for H1's 20% says so."""
    zs = record("zs", "zero-shot", [score("dlm_fpb", 0.40, n=100)])
    pre = record("pre", "pretrain", [score("dlm_fpb", 0.50, n=100)], domain="finance")
    report = build_report(write_all(results_dir, [zs, pre]))
    (row,) = [r for r in report["power"] if r["task"] == "dlm_fpb"]
    expected = (1.959964 + 0.841621) * math.sqrt(2 * 0.40 * 0.60 / 100)  # two-sided 5%, 80% power, two sides
    assert row["n"] == 100 and row["base_rate"] == pytest.approx(0.40)
    assert row["mdd"] == pytest.approx(expected, rel=1e-3) and row["seed_sd"] is None
    assert row["cannot_see"] and row["cannot_see"][0].startswith("H1 (needs 0.080)")
    assert "Power: the smallest difference" in render_report(results_dir, fmt="markdown")
