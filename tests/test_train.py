"""`dlm train` end to end on the tiny GPT-2 and samples/: pretrain, SFT (full, LoRA), sequential runs, mixtures,
data fractions and the output-directory contract (interruption, resume, torchrun: test_train_resume.py)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from train_support import TWEETS, config, one_thread, records, weights  # noqa: F401 (one_thread: autouse fixture)

from dlm.errors import UserError


def tiny_weights(tiny_model_dir) -> dict:
    from dlm.trainers.models import load_model

    return weights(load_model(str(tiny_model_dir), for_training=True)[0])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train")


@pytest.fixture(scope="module")
def pretrain_run(workdir, tiny_model_dir):
    from dlm.trainers.train import train

    return train(config(workdir, "pretrain", max_steps=6))


@pytest.fixture(scope="module")
def lora_run(workdir, tiny_model_dir):
    from dlm.trainers.train import train

    return train(
        config(
            workdir,
            "lora",
            mode="sft",
            max_steps=4,
            learning_rate=1e-2,
            lora=True,
            lora_r=4,
            lora_alpha=8,
            lora_dropout=0.0,
        )
    )


# --- pretraining --------------------------------------------------------------------------------------------
def test_pretrain_trains_every_parameter_and_records_the_run(pretrain_run, tiny_model_dir, workdir):
    record, out = pretrain_run.record, Path(pretrain_run.output_dir)
    train = record["train"]
    assert record["kind"] == "train" and train["mode"] == "pretrain" and train["lora"] is False
    losses = [loss for _, loss in train["loss_curve"]]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses) and math.isfinite(train["final_loss"])
    before, after = tiny_weights(tiny_model_dir), weights(pretrain_run.model)
    unchanged = [n for n in before if torch_equal(before[n], after[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    # 6 steps x 4 blocks x 64 positions, nearly all real tokens
    assert 0.9 * 6 * 4 * 64 <= train["tokens_seen"] <= 6 * 4 * 64
    assert train["packing_efficiency"] >= 0.95 and train["padded_efficiency"] < 0.6
    assert train["trainable_params"] == train["total_params"] > 0
    for key in ("wall_time_s", "tokens_per_s", "peak_memory_mb", "command", "config"):
        assert (train.get(key) or record.get(key)) is not None, key
    assert record["command"] == sys.argv
    assert train["data"]["parts"] == [TWEETS] and train["data"]["realised_proportions"] == [1.0]
    stored = records(workdir / "runs")
    assert any(r["run_id"] == record["run_id"] for r in stored), "record written to results_dir"
    # final model + tokenizer at the root, loadable as a model name
    from dlm.trainers.models import load_model

    reloaded, tokenizer = load_model(str(out))
    assert torch_equal(weights(reloaded)["transformer.wte.weight"], after["transformer.wte.weight"])
    assert tokenizer.eos_token_id is not None and (out / "dlm_train.json").is_file()


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)


def test_save_total_limit_keeps_the_newest_checkpoints(pretrain_run):
    out = Path(pretrain_run.output_dir)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]


def test_non_empty_output_dir_is_refused_and_left_alone(workdir, pretrain_run):
    from dlm.trainers.train import train

    out = Path(pretrain_run.output_dir)
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(UserError, match="--resume.*--overwrite"):
        train(config(workdir, "pretrain"))
    assert sorted(p.name for p in out.iterdir()) == before
    stray = workdir / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="was not written by dlm"):
        train(config(workdir, "stray", overwrite=True))
    assert (stray / "notes.txt").read_text() == "mine"


def test_data_fraction_trains_on_a_quarter(workdir, pretrain_run):
    from dlm.trainers.train import train

    result = train(config(workdir, "quarter", max_steps=1, data_fraction=0.25, save_steps=10))
    data, full = result.record["train"]["data"], pretrain_run.record["train"]["data"]
    assert data["rows"] == full["rows"] // 4 and data["data_fraction"] == 0.25
    assert result.record["train"]["documents"] == data["rows"], "only the quarter was packed"


def test_mixture_records_realised_proportions(workdir):
    from dlm.trainers.train import train

    result = train(
        config(
            workdir,
            "mixture",
            datasets=(TWEETS, "takala/financial_phrasebank"),
            dataset_configs=("None", "sentences_allagree"),
            mixture_rates=(3.0, 1.0),
            max_steps=1,
            save_steps=10,
        )
    )
    data = result.record["train"]["data"]
    assert len(data["parts"]) == 2 and data["rates"] == pytest.approx([0.75, 0.25])
    assert data["realised_proportions"] == pytest.approx([0.75, 0.25], abs=0.02)


# --- SFT ----------------------------------------------------------------------------------------------------
def label_accuracy(model, tokenizer, pairs, choices) -> float:
    """Share of examples whose gold completion is the most likely of `choices` (lm-eval multiple_choice style)."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for prompt, gold in pairs:
            context = tokenizer(prompt)["input_ids"]
            scores = []
            for choice in choices:
                continuation = tokenizer(prompt + choice)["input_ids"][len(context) :]
                logits = model(torch.tensor([context + continuation]), use_cache=False).logits[0]
                logprobs = logits[len(context) - 1 : -1].log_softmax(-1)
                scores.append(sum(logprobs[i, t].item() for i, t in enumerate(continuation)))
            correct += choices[max(range(len(choices)), key=scores.__getitem__)] == gold
    model.train()
    return correct / len(pairs)


def test_sft_learns_financial_sentiment(workdir, tiny_model_dir):
    from dlm.data.loading import load_split, lookup, to_sft_pair
    from dlm.trainers.models import load_model
    from dlm.trainers.train import train

    entry = lookup(TWEETS)
    pairs = [to_sft_pair(entry, row) for row in load_split(TWEETS, split="validation")]
    choices = sorted({completion for _, completion in pairs})
    assert len(choices) == 3
    base, tokenizer = load_model(str(tiny_model_dir))
    before = label_accuracy(base, tokenizer, pairs, choices)
    # ~150 updates: the tiny model first learns the label prior (loss ~ln3/2), then to read the tweet
    result = train(
        config(
            workdir,
            "sft",
            mode="sft",
            max_steps=150,
            batch_size=8,
            max_length=128,
            learning_rate=3e-3,
            warmup_steps=5,
            save_steps=1000,
            logging_steps=10,
        )
    )
    after = label_accuracy(result.model, result.tokenizer, pairs, choices)
    assert before < 0.6 <= 0.8 <= after, (before, after)
    train_record = result.record["train"]
    assert train_record["mode"] == "sft" and math.isfinite(train_record["final_loss"])
    assert train_record["packing_efficiency"] > 0.8 and train_record["bin_fill"] > 0.8
    assert train_record["padded_efficiency"] < 0.5, "padding each example to max_length would waste most compute"
    base_weights = weights(base)
    unchanged = [n for n, p in weights(result.model).items() if torch_equal(p, base_weights[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"


def test_lora_trains_only_the_adapter_and_saves_a_loadable_one(lora_run, tiny_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = Path(lora_run.output_dir)
    train_record = lora_run.record["train"]
    assert train_record["lora"] is True and 0 < train_record["trainable_params"] < train_record["total_params"]
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert not (out / "model.safetensors").exists()
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert set(adapter_config["target_modules"]) == {"c_attn", "c_proj", "c_fc"} and adapter_config["fan_in_fan_out"]

    model = lora_run.model  # a PeftModel
    original = tiny_weights(tiny_model_dir)
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        base_name = name.replace("base_model.model.", "").replace(".base_layer", "")
        assert torch_equal(param, original[base_name]), f"base weight {base_name} changed"
    assert any(float(p.detach().abs().sum()) > 0 for n, p in model.named_parameters() if "lora_B" in n)

    base = AutoModelForCausalLM.from_pretrained(str(tiny_model_dir), dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(out)).eval()
    ids = torch.tensor([lora_run.tokenizer("Bullish: $JPM profit rose")["input_ids"]])
    model.eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, model(ids).logits, atol=1e-5)
    model.train()


def test_merge_lora_saves_a_standalone_model(workdir):
    from dlm.trainers.models import load_model
    from dlm.trainers.train import train

    result = train(config(workdir, "lora-merged", mode="sft", max_steps=1, lora=True, lora_r=4, merge_lora=True))
    merged_dir = Path(result.output_dir) / "merged"
    assert (merged_dir / "model.safetensors").is_file() and result.record["train"]["merged_dir"] == str(merged_dir)
    reloaded, _ = load_model(str(merged_dir))
    assert type(reloaded).__name__ == "GPT2LMHeadModel"


# --- sequential runs ----------------------------------------------------------------------------------------
def test_sft_continues_from_a_pretrain_checkpoint(workdir, pretrain_run):
    from dlm.trainers.train import train

    result = train(config(workdir, "seq-full", mode="sft", model=pretrain_run.output_dir, max_steps=1))
    assert result.record["model"]["previous_run"]["mode"] == "pretrain"
    assert result.record["model"]["resolved"] == str(Path(pretrain_run.output_dir).resolve())


def test_adapter_dir_as_model_is_merged_before_training(workdir, lora_run, tiny_model_dir):
    import torch

    from dlm.trainers.models import load_model
    from dlm.trainers.train import train

    merged, _ = load_model(lora_run.output_dir, for_training=True)
    assert type(merged).__name__ == "GPT2LMHeadModel", "a plain model, not a PeftModel"
    expected = lora_run.model.merge_and_unload() if hasattr(lora_run.model, "merge_and_unload") else lora_run.model
    for name, param in expected.named_parameters():
        assert torch.allclose(param, dict(merged.named_parameters())[name], atol=1e-6), name
    result = train(config(workdir, "seq-lora", mode="sft", model=lora_run.output_dir, max_steps=1, lora=True, lora_r=4))
    # an adapter over base+adapter cannot be re-applied to the base alone: the merged model is saved too
    assert (Path(result.output_dir) / "merged" / "model.safetensors").is_file()
    assert result.record["model"]["previous_run"]["mode"] == "sft"


# --- small contracts ----------------------------------------------------------------------------------------
def test_model_names_resolve_or_fail_with_the_fix(tmp_path, tiny_model_dir):
    from dlm.trainers.models import default_lr, load_model, resolve_model

    assert resolve_model("gpt2") == "openai-community/gpt2" and resolve_model("qwen2-0.5b") == "Qwen/Qwen2-0.5B"
    tiny = Path(resolve_model("tiny-gpt2"))
    assert tiny.name.startswith("tiny-gpt2") and (tiny / "model.safetensors").is_file()
    with pytest.raises(UserError, match="not found"):
        resolve_model("./checkpoints/never-trained")
    (tmp_path / "interrupted" / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(UserError, match="checkpoint-N"):
        load_model(str(tmp_path / "interrupted"))
    with pytest.raises(UserError, match="offline|unreachable|cannot load"):
        load_model("someone/model-that-is-not-cached")
    assert default_lr("sft", lora=True, total_params=124_000_000) > default_lr("sft", False, 124_000_000)
    assert default_lr("pretrain", False, 124_000_000) == 1e-4


def test_missing_tracker_is_a_user_error_before_anything_is_written(tmp_path, monkeypatch):
    import importlib.util

    from dlm.trainers.train import train

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in ("wandb",) else real_find_spec(name, *a)
    )
    with pytest.raises(UserError, match="pip install wandb"):
        train(config(tmp_path, "tracked", report_to="wandb"))
    assert not (tmp_path / "tracked").exists() and not (tmp_path / "runs").exists()


def test_lora_targets_per_architecture_and_override():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from dlm.trainers.models import apply_lora

    qwen = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    wrapped = apply_lora(qwen, r=2, alpha=4, dropout=0.0)
    config = wrapped.peft_config["default"]
    assert (
        set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
        and not config.fan_in_fan_out
    )
    adapted = {n.split(".")[-1] for n, m in wrapped.named_modules() if hasattr(m, "lora_A")}
    assert adapted == set(config.target_modules)
    other = Qwen2ForCausalLM(
        Qwen2Config(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    assert set(apply_lora(other, 2, 4, 0.0, ["q_proj,v_proj"]).peft_config["default"].target_modules) == {
        "q_proj",
        "v_proj",
    }
    with pytest.raises(UserError, match="lora_target_modules"):
        apply_lora(Qwen2ForCausalLM(other.config), 2, 4, 0.0, ["c_attn"])
