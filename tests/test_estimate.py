"""Training-time estimates (trainers/estimate.py): printed before training, calibrated on the first steps,
recorded beside the actual time; `dlm plan --dry-run --device t4` lists every training run and flags > 2 h."""

from __future__ import annotations

import pytest
from train_support import config


def test_a_tiny_run_records_its_estimate_before_and_after_calibration(tmp_path, tiny_model_dir, capsys):
    from dlm.trainers.train import train

    result = train(
        config(
            tmp_path, "timed", mode="sft", max_steps=40, batch_size=8, max_length=128, save_steps=1000, logging_steps=10
        )
    )
    err = capsys.readouterr().err
    assert "time estimate before training:" in err and "time estimate after 5 step(s):" in err
    estimate = result.record["train"]["time_estimate"]
    assert estimate["predicted_s"] > 0 and "tokens x 6 x" in estimate["basis"]
    assert estimate["calibrated_at_step"] == 5
    # how close the estimates come is a timing, measured on a quiet machine in bench/time_estimate.py (row 13);
    # two test workers sharing two cores made the first 5 steps 3.7x slower than the rest here
    assert estimate["calibrated_s"] > 0 and estimate["actual_train_s"] > 0, estimate


def test_the_device_table_and_the_budget_warning(capsys):
    from dlm.trainers import estimate

    assert estimate.device_key("Tesla T4") == "t4" and estimate.device_key("NVIDIA A100-SXM4-80GB") == "a100"
    assert estimate.device_key("NVIDIA A10G") is None  # not in the table: timed instead
    # GPT-2 124M, 1,000 steps of 16 x 256 tokens on a T4: 4.1M tokens -> 4.1M x 6 x 124M / (65e12 x 0.3) s
    seconds, basis = estimate.predict_seconds(4_096_000, 124_439_808, "t4")
    assert seconds == pytest.approx(4_096_000 * 6 * 124_439_808 / (65e12 * 0.30)) and "T4" in basis
    assert not estimate.warn_if_over_budget(3600, "x")
    assert estimate.warn_if_over_budget(3 * 3600, "this run") and "over the study plan's 2 h" in capsys.readouterr().err
    assert estimate.model_params("gpt2") == 124_439_808
    assert estimate.model_params("tiny-gpt2") > 0  # counted from its local config on the meta device


def test_plan_dry_run_lists_every_training_run_with_hours_and_flags_those_over_2h(tmp_path, capsys):
    from dlm import cli

    cli.main(
        ["plan", "plans/phase3_finetune.yaml", "--dry-run", "--device", "t4", "--results-dir", str(tmp_path / "runs")]
    )
    out = capsys.readouterr().out
    from dlm.plan.file import load_plan

    trains = [r for r in load_plan("plans/phase3_finetune.yaml").runs if r.trains]
    estimates = out.split("# training time estimates")[1].split("# training total:")[0]
    lines = [line for line in estimates.splitlines() if line.startswith("#   ")]
    assert len(lines) == len(trains) and all(" h)" in line for line in lines)
    assert "T4 peak 65 TFLOP/s" in out and "# training total:" in out
    long = tmp_path / "long.yaml"
    long.write_text(
        "name: long\nruns:\n  - name: big\n    approach: pretrain\n    model: qwen2-0.5b\n"
        "    data: gbharti/finance-alpaca\n    max_steps: 20000\n    max_length: 1024\n"
    )
    cli.main(["plan", str(long), "--dry-run", "--device", "t4", "--results-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert "big:" in out and "OVER 2 h" in out and "1 over 2 h: big" in out
