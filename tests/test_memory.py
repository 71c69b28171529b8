"""Memory before running (trainers/memory.py): configs read without weights, the estimate checked against measured
CPU peaks of the shrunk models, and `dlm train --dry-run` / `dlm plan --dry-run --device t4` saying what fits.

The full table of measured vs estimated peaks is bench/memory_estimate.py; here two cases, one per family."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dlm import cli

BENCH = Path(__file__).resolve().parent.parent / "bench"


def bench_module():
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    import memory_estimate

    return memory_estimate


def test_study_models_are_sized_from_their_configs_without_weights():
    from dlm.trainers.estimate import MODEL_PARAMS
    from dlm.trainers.memory import model_config, shape_of

    shapes = {}
    for alias in ("gpt2", "gpt2-medium", "qwen2-0.5b"):
        shapes[alias] = shape_of(model_config(alias))  # offline: the shipped config of the hub repo
        assert shapes[alias].total_params == shapes[alias].trainable_params == MODEL_PARAMS[alias], alias
    for alias, hub_id in (("gpt2", "openai-community/gpt2"), ("qwen2-0.5b", "Qwen/Qwen2-0.5B")):
        assert model_config(hub_id).to_dict() == model_config(alias).to_dict()
    qwen = shapes["qwen2-0.5b"]
    assert (qwen.family, qwen.layers, qwen.hidden, qwen.heads, qwen.kv_heads) == ("llama", 24, 896, 14, 2)
    assert model_config("someone/not-in-the-cache") is None
    assert model_config("Qwen/Qwen2-0.5B-Instruct").to_dict() == model_config("qwen2-0.5b").to_dict()
    lora = shape_of(model_config("qwen2-0.5b"), {"r": 16, "alpha": 32, "dropout": 0.05})
    # r x (in + out) for q, k, v, o, gate, up, down in 24 layers
    per_layer = 16 * ((896 + 896) + (896 + 128) * 2 + (896 + 896) + (896 + 4864) * 2 + (4864 + 896))
    assert lora.trainable_params == 24 * per_layer and lora.total_params == MODEL_PARAMS["qwen2-0.5b"] + 24 * per_layer


def test_local_checkpoint_and_adapter_dirs_are_read_from_disk(tmp_path):
    from dlm.trainers.memory import model_config
    from dlm.trainers.models import resolve_model

    shrunk = resolve_model("shrunk-qwen2")
    assert model_config(shrunk).num_key_value_heads == 2
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(f'{{"peft_type": "LORA", "base_model_name_or_path": "{shrunk}"}}')
    assert model_config(str(adapter)).model_type == "qwen2", "an adapter is sized on its base"


@pytest.mark.parametrize(
    "case",
    [("shrunk-gpt2", "pretrain", False, 2, 64, False), ("shrunk-qwen2", "sft", True, 4, 128, False)],
    ids=lambda case: f"{case[0]}-{case[1]}{'-lora' if case[2] else ''}",
)
def test_estimate_is_within_25_percent_of_the_measured_cpu_peak(case):
    result = bench_module().run_case(case)
    ratio = result["estimate"]["peak_bytes"] / result["measured_bytes"]
    assert 0.75 <= ratio <= 1.25, (case, ratio)


def test_train_dry_run_sizes_the_run_and_writes_nothing(tmp_path, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    common = ["--dataset", "zeroshot/twitter-financial-news-sentiment", "--output_dir", str(out)]
    cli.main(["train", "--model", "shrunk-qwen2", *common, "--results-dir", str(runs), "--dry-run"])
    printed = capsys.readouterr().out
    assert "nothing is loaded, trained or written" in printed and "0.4M parameters" in printed
    assert "time estimate:" in printed and "memory estimate: peak ~" in printed and "fits CPU" in printed
    assert not out.exists() and not runs.exists()

    argv = ["train", "--model", "qwen2-0.5b", *common, "--mode", "sft", "--batch_size", "8", "--max_length", "512"]
    cli.main([*argv, "--dry-run", "--target-device", "t4"])
    printed = capsys.readouterr().out
    assert "494.0M parameters" in printed and "fp16" in printed and "T4 (16 GB)" in printed
    assert "DOES NOT FIT" in printed or "TIGHT" in printed
    cli.main([*argv, "--gradient_checkpointing", "--dry-run", "--target-device", "t4"])
    assert "; fits T4" in capsys.readouterr().out
    cli.main([*argv, "--dry-run", "--target-device", "a100"])
    assert "bf16" in capsys.readouterr().out
    for extra, message in (
        (["--target-device", "t4"], "add --dry-run"),
        (["--dry-run", "--target-device", "tpu"], "t4"),
    ):
        with pytest.raises(SystemExit) as exit_:
            cli.main([*argv, *extra])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_dry_run_stays_a_setting_of_eval_too():
    assert cli.parse_settings("eval", ["--model", "openai:gpt-4o", "--tasks", "dlm_fpb", "--dry-run"])["dry_run"]
    assert cli.parse_settings("train", ["--model", "gpt2", "--dataset", "glue", "--dry-run"])["dry_run"]
    with pytest.raises(Exception, match="dry-run"):
        cli.parse_settings("run", ["--model", "gpt2", "--dataset", "glue", "--dry-run"])


def test_plan_dry_run_flags_the_runs_that_do_not_fit_a_t4(tmp_path, capsys):
    plan = tmp_path / "qwen.yaml"
    plan.write_text(
        "name: qwen-t4\n"
        "defaults: {model: qwen2-0.5b, batch_size: 8, max_length: 512, max_steps: 100}\n"
        "runs:\n"
        "  - {name: pretrain, approach: pretrain, data: gbharti/finance-alpaca}\n"
        "  - {name: lora, approach: sft, data: zeroshot/twitter-financial-news-sentiment, lora: true}\n"
        "  - {name: then-sft, from: pretrain, data: zeroshot/twitter-financial-news-sentiment}\n"
    )
    cli.main(["plan", str(plan), "--dry-run", "--device", "t4", "--results-dir", str(tmp_path / "runs")])
    printed = capsys.readouterr().out
    lines = {line[4:].split(":")[0]: line for line in printed.splitlines() if line.startswith("#   ")}
    assert "# peak memory estimates on T4 (16 GB)" in printed
    assert "DOES NOT FIT" in lines["pretrain"] and "memory ~" in lines["lora"] and "FIT" not in lines["lora"]
    assert "memory ~" in lines["then-sft"], "a `from:` run is sized on its origin's model"
    assert "do not fit T4: pretrain (does not fit)" in printed
