"""The study's own architectures on every training and evaluation path: `shrunk-gpt2` (GPT-2's config and real
50,257-token tokenizer, 2 layers) and `shrunk-qwen2` (Qwen2-0.5B's config with GQA, rotary, tied embeddings, 2
layers; a Qwen2 tokenizer with its special tokens and ChatML template), built by trainers/families.py.

Packed documents are isolated inside the real training step, SFT's completion-only loss and its `logits_to_keep`
shortcut hold, LoRA finds each family's own projections, the generative twins run with and without a chat
template, adapters score the same through --peft and merged, and a resumed run ends with the weights of a
straight one."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
from train_support import TWEETS, config, one_thread, torch_allclose, weights  # noqa: F401 (one_thread: autouse fixture)

from dlm.config import EvalProtocol
from dlm.errors import UserError
from dlm.store.outcomes import OutcomeBlock

FAMILIES = ("shrunk-gpt2", "shrunk-qwen2")
TEXTS = [
    "Bullish: $JPM operating profit rose to EUR 759 mn",
    "Bearish: $TSLA misses estimates, shares fall 4%",
    "Notice: $BA publishes its report in July",
    "Upgrade: $AAPL won a new order worth EUR 287 mn",
    "Stocks edge higher as investors weigh earnings",
] * 4
PAIRS = [
    ("Tweet: $JPM operating profit rose\nSentiment:", " bullish"),
    ("Tweet: $TSLA misses estimates\nSentiment:", " bearish"),
    ("Tweet: $BA publishes its report in July\nSentiment:", " neutral"),
] * 4
# a template of the usual shape for a model that has none (GPT-2): --chat-template FILE
PLAIN_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def trainer_args(out: Path, batch: int = 2, steps: int = 1) -> dict:
    return dict(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=1e-3,
        report_to="none",
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        save_strategy="no",
        disable_tqdm=True,
        logging_steps=1,
    )


def without_dropout(model):
    """Dropout off (GPT-2's config has 0.1 everywhere): a training step's logits become deterministic."""
    import torch

    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return model


def frozen_copy(model):
    """The model as it is now, in eval mode, with the fused GELU the trainers swap in. Copied before a trainer is
    built: TRL's SFTTrainer replaces `model.forward` on the instance, and a deep copy taken afterwards would still
    call the original (training) model."""
    from dlm.trainers.models import fuse_activations

    reference = copy.deepcopy(model).eval()
    fuse_activations(reference)
    return reference


def segments(position_ids: list[int]) -> list[tuple[int, int]]:
    starts = [i for i, p in enumerate(position_ids) if p == 0] + [len(position_ids)]
    return list(zip(starts, starts[1:]))


@pytest.fixture(scope="module")
def family_dirs() -> dict[str, Path]:
    from dlm.trainers.models import resolve_model

    return {name: Path(resolve_model(name)) for name in FAMILIES}


def load(family: str):
    from dlm.trainers.models import load_model

    return load_model(family, for_training=True)


# --- the fixtures are the families ----------------------------------------------------------------------------------
def test_shrunk_gpt2_has_gpt2s_config_and_real_tokenizer(family_dirs):
    from dlm.trainers.families import GPT2_124M, GPT2_TOKENIZER_DIR
    from dlm.trainers.models import fuse_activations

    model, tok = load("shrunk-gpt2")
    config = model.config
    assert config.model_type == "gpt2" and config.n_layer == 2 and config.n_embd == 64
    assert config.vocab_size == len(tok) == 50257 and config.n_positions == 1024
    assert config.activation_function == "gelu_new" and config.attn_pdrop == 0.1
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "tied embeddings"
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 50256 and tok.chat_template is None
    raw = type(tok).from_pretrained(GPT2_TOKENIZER_DIR)
    vendored = json.loads((GPT2_TOKENIZER_DIR / "config.json").read_text())
    assert {k: vendored[k] for k in GPT2_124M} == GPT2_124M, "the shipped config is the vendored one"
    assert raw.pad_token is None, "GPT-2 ships no pad token; load_model sets eos"
    assert tok.pad_token_id == tok.eos_token_id
    assert len(tok(" positive")["input_ids"]) == 1 and len(tok(" bearish")["input_ids"]) == 2
    assert fuse_activations(model) == 2, "one gelu_new per MLP swapped for the fused kernel"


def test_shrunk_qwen2_has_qwen2s_architecture_specials_and_chatml():
    import torch

    from dlm.trainers.families import QWEN2_05B
    from dlm.trainers.models import fuse_activations

    model, tok = load("shrunk-qwen2")
    config = model.config
    assert config.model_type == "qwen2" and config.num_hidden_layers == 2 and config.hidden_size == 64
    assert config.num_key_value_heads < config.num_attention_heads, "grouped-query attention kept"
    assert config.tie_word_embeddings and model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert config.rope_parameters["rope_theta"] == QWEN2_05B["rope_theta"] and hasattr(model.model, "rotary_emb")
    assert config.hidden_act == "silu" and fuse_activations(model) == 0
    assert config.vocab_size > len(tok) and config.vocab_size % 128 == 0, "embedding padded past the tokenizer"
    assert model.model.layers[0].self_attn.k_proj.out_features == 2 * 16
    assert model.model.layers[0].self_attn.q_proj.bias is not None, "q/k/v biases"
    assert tok.bos_token is None and tok.eos_token == tok.pad_token == "<|endoftext|>"
    specials = tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    assert specials == [len(tok) - 3, len(tok) - 2, len(tok) - 1], "Qwen2's specials follow the vocabulary"
    assert tok("1234")["input_ids"] == [tok.convert_tokens_to_ids(d) for d in "1234"], "digits split one by one"
    rendered = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert tok("<|im_end|>")["input_ids"] == [specials[2]], "special tokens are single tokens"
    with torch.no_grad():
        assert model(torch.tensor([[1, 2, 3]])).logits.shape[-1] == config.vocab_size


# --- packed pretraining: document isolation in the real training step ----------------------------------------------
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("family", FAMILIES)
def test_packed_documents_see_only_themselves_in_a_training_step(family, attention, tmp_path):
    """The logits the Trainer computes for a packed block equal, per document, that document's logits alone -
    also when the model's config asks for a KV cache (every loaded model's does), which would otherwise make the
    mask plain causal (shown on the same block at the end)."""
    import datasets
    import torch

    from dlm.trainers.pretrain import build_pretrain_trainer

    model, tok = load(family)
    model.set_attn_implementation(attention)
    without_dropout(model)
    reference = frozen_copy(model)
    data = datasets.Dataset.from_list([{"text": t} for t in TEXTS])
    trainer, _ = build_pretrain_trainer(model, tok, data, trainer_args(tmp_path, batch=2), max_length=96)
    model.config.use_cache = True  # what from_pretrained gives; the Trainer had turned it off
    seen = []

    def keep(module, args, kwargs, output):
        seen.append((kwargs["input_ids"].clone(), kwargs["position_ids"].clone(), output.logits.detach().clone()))

    hook = model.register_forward_hook(keep, with_kwargs=True)
    trainer.train()
    hook.remove()
    ids, positions, logits = seen[0]
    errors, documents = [], 0
    with torch.no_grad():
        for row in range(ids.shape[0]):
            for start, end in segments(positions[row].tolist()):
                alone = reference(input_ids=ids[row : row + 1, start:end], use_cache=False).logits[0]
                errors.append(float((logits[row, start:end] - alone).abs().max()))
                documents += 1
        leaky = reference(input_ids=ids[:1], position_ids=positions[:1], use_cache=True).logits[0]
    assert documents >= 6 and max(errors) < 1e-5, (family, attention, max(errors))
    start, end = segments(positions[0].tolist())[1]
    with torch.no_grad():
        alone = reference(input_ids=ids[:1, start:end], use_cache=False).logits[0]
    assert float((leaky[start:end] - alone).abs().max()) > 1e-2, "with a cache the documents do see each other"


@pytest.mark.parametrize("family", FAMILIES)
def test_packed_sft_loss_is_the_examples_loss_alone(family, tmp_path):
    """The SFT step's loss (rows of packed examples, LM head at supervised positions only) equals the summed
    completion NLL of each example computed alone, over the supervised token count."""
    import datasets
    import torch
    import torch.nn.functional as F

    from dlm.trainers.sft import build_sft_trainer

    model, tok = load(family)
    without_dropout(model)
    reference = frozen_copy(model)
    data = datasets.Dataset.from_list([{"prompt": p, "completion": c} for p, c in PAIRS])
    trainer = build_sft_trainer(model, tok, data, trainer_args(tmp_path, batch=2), max_length=64)
    losses, batches = [], []
    compute_loss = trainer.compute_loss

    def recording(model, inputs, *args, **kwargs):
        batches.append({k: v.clone() for k, v in inputs.items() if hasattr(v, "clone")})
        loss = compute_loss(model, inputs, *args, **kwargs)
        losses.append(float(loss.detach()))
        return loss

    trainer.compute_loss = recording
    trainer.train()
    batch = batches[0]
    total, count = 0.0, 0
    with torch.no_grad():
        for row in range(batch["input_ids"].shape[0]):
            for start, end in segments(batch["position_ids"][row].tolist()):
                labels = batch["labels"][row, start:end]
                if (labels != -100).sum() == 0:
                    continue
                logits = reference(input_ids=batch["input_ids"][row : row + 1, start:end], use_cache=False).logits[0]
                total += float(F.cross_entropy(logits[:-1], labels[1:], ignore_index=-100, reduction="sum"))
                count += int((labels[1:] != -100).sum())
    assert losses[0] == pytest.approx(total / count, rel=1e-4)


# --- SFT labels and LoRA targets ------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_sft_supervises_exactly_the_completion_and_eos(family, tmp_path):
    import datasets

    from dlm.trainers.sft import build_sft_trainer

    model, tok = load(family)
    data = datasets.Dataset.from_list([{"prompt": p, "completion": c} for p, c in PAIRS])
    trainer = build_sft_trainer(model, tok, data, trainer_args(tmp_path), max_length=64)
    rows = list(trainer.train_dataset)
    batch = trainer.data_collator(rows)
    completions = {c for _, c in PAIRS}
    supervised_lengths = {}
    for labels, positions in zip(batch["labels"].tolist(), batch["position_ids"].tolist()):
        for start, end in segments(positions):
            supervised = [t for t in labels[start:end] if t != -100]
            if not supervised:
                continue
            text = tok.decode(supervised[:-1])
            assert text in completions and supervised[-1] == tok.eos_token_id, (text, supervised)
            supervised_lengths[text] = len(supervised) - 1
    assert set(supervised_lengths) == completions
    if family == "shrunk-gpt2":  # GPT-2's real vocabulary: " bearish" is two tokens, both trained
        assert supervised_lengths == {" bullish": 1, " bearish": 2, " neutral": 1}


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_adapts_the_familys_own_projections(family):
    from dlm.trainers.models import LORA_TARGETS, apply_lora

    model, _ = load(family)
    wrapped = apply_lora(model, r=2, alpha=4, dropout=0.0)
    lora = wrapped.peft_config["default"]
    model_type = model.config.model_type
    adapted = {name.rsplit(".", 1)[-1] for name, module in wrapped.named_modules() if hasattr(module, "lora_A")}
    assert adapted == set(LORA_TARGETS[model_type]) == set(lora.target_modules)
    assert lora.fan_in_fan_out is (model_type == "gpt2"), "GPT-2's Conv1D stores weights transposed"
    layers = model.config.num_hidden_layers
    assert sum(1 for _, m in wrapped.named_modules() if hasattr(m, "lora_A")) == layers * len(adapted) + (
        layers if model_type == "gpt2" else 0  # GPT-2's c_proj names both the attention and the MLP output
    )
    assert not any(
        "wte" in n or "embed_tokens" in n or "lm_head" in n for n, p in wrapped.named_parameters() if p.requires_grad
    )


# --- train, score, adapters, resume through dlm's entry points ------------------------------------------------------
def family_config(tmp: Path, name: str, family: str, **overrides):
    values = dict(model=family, mode="sft", max_steps=2, max_length=96, save_steps=100, batch_size=4)
    return config(tmp, name, **{**values, **overrides})


def tfns_outcomes(model: str, peft: str | None = None, **protocol) -> tuple[dict, OutcomeBlock]:
    from dlm.harness_tasks.evaluate import score
    from dlm.settings import eval_config

    values = dict(model=model, tasks=["dlm_tfns"], limit=6, bootstrap_iters=0, **protocol)
    if peft:
        values["peft"] = peft
    record, outcomes, _ = score(eval_config(values))
    return {s["metric"]: s for s in record["eval"]["scores"]}, outcomes["dlm_tfns"]["none"]


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_adapter_scores_the_same_through_peft_and_merged(family, tmp_path):
    from dlm.trainers.train import train

    result = train(family_config(tmp_path, "lora", family, lora=True, lora_r=4, merge_lora=True, learning_rate=1e-2))
    out = Path(result.output_dir)
    assert (out / "adapter_model.safetensors").is_file() and (out / "merged" / "model.safetensors").is_file()
    _, base = tfns_outcomes(family)
    peft_scores, with_peft = tfns_outcomes(family, peft=str(out))
    merged_scores, merged = tfns_outcomes(str(out / "merged"))
    assert peft_scores["acc"]["n"] == merged_scores["acc"]["n"] == 6
    for a, b in zip(with_peft.pred, merged.pred):
        assert a == pytest.approx(b, abs=2e-4), "adapter and its merged model give the same log-likelihoods"
    assert with_peft.pred != base.pred, "the adapter changed the model"


@pytest.mark.parametrize("family", FAMILIES)
def test_full_sft_checkpoint_is_scored_from_its_directory(family, tmp_path):
    from dlm.trainers.train import train

    result = train(family_config(tmp_path, "full", family))
    assert result.record["train"]["trainable_params"] == result.record["train"]["total_params"]
    scores, _ = tfns_outcomes(result.output_dir)
    assert scores["acc"]["n"] == 6 and 0 <= scores["acc"]["value"] <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_generative_twin_with_and_without_a_chat_template(family, tmp_path):
    from dlm.harness_tasks.evaluate import load_tasks, run_harness, task_manager_for
    from dlm.settings import eval_config
    from dlm.trainers.chat import applied_to, resolve
    from dlm.trainers.models import load_model

    template_file = tmp_path / "chat.jinja"
    template_file.write_text(PLAIN_TEMPLATE)
    chat = "default" if family == "shrunk-qwen2" else str(template_file)  # GPT-2 has no template of its own
    model, tok = load_model(family)
    manager = task_manager_for(["dlm_tfns_gen"])
    prompts = {}
    for spec in (None, chat):
        cfg = eval_config(dict(model=family, tasks=["dlm_tfns_gen"], limit=2, bootstrap_iters=0, chat_template=spec))
        task = load_tasks(manager, ["dlm_tfns_gen"])["tasks"]["dlm_tfns_gen"]
        with applied_to(tok, resolve(tok, spec, family)):
            results = run_harness(model, tok, [task], manager, cfg, log_samples=True, chat=spec is not None)
        samples = results["samples"]["dlm_tfns_gen"]
        assert len(samples) == 2 and "missing,none" in results["results"]["dlm_tfns_gen"]
        assert all(isinstance(s["filtered_resps"][0], str) for s in samples)
        prompts[spec] = samples[0]["arguments"][0][0]
    assert prompts[None].startswith("Analyze the sentiment") and "<|" not in prompts[None]
    if family == "shrunk-qwen2":
        assert prompts[chat].startswith(
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        )
        assert prompts[chat].endswith("<|im_end|>\n<|im_start|>assistant\n")
    else:
        assert prompts[chat].startswith("<|user|>\nAnalyze the sentiment") and prompts[chat].endswith("<|assistant|>\n")
        with pytest.raises(UserError, match="has no chat template"):
            resolve(tok, "default", family)


def test_chatml_sft_trains_the_answer_and_the_end_of_turn(tmp_path):
    """SFT of shrunk-qwen2 in its own ChatML template: the prompt is what lm-eval sends, the supervised tokens are
    the label, `<|im_end|>`, the newline after it and eos."""
    from dlm.trainers.train import train

    protocol = EvalProtocol(chat_template="default")
    result = train(family_config(tmp_path, "chat", "shrunk-qwen2", protocol=protocol))
    tok = result.tokenizer
    assert result.record["train"]["config"]["protocol"]["chat_template"] == "default"
    assert "<|im_start|>" in (Path(result.output_dir) / "chat_template.jinja").read_text()
    import datasets

    from dlm.trainers.chat import as_chat_pairs
    from dlm.trainers.sft import build_sft_trainer

    data = as_chat_pairs(datasets.Dataset.from_list([{"prompt": p, "completion": c} for p, c in PAIRS[:3]]), tok)
    assert data[0]["prompt"].endswith("<|im_start|>assistant\n") and data[0]["completion"] == "bullish<|im_end|>\n"
    model, _ = load(str(result.output_dir))
    trainer = build_sft_trainer(model, tok, data, trainer_args(tmp_path / "t"), max_length=96)
    batch = trainer.data_collator(list(trainer.train_dataset))
    answers = set()
    for labels, positions in zip(batch["labels"].tolist(), batch["position_ids"].tolist()):
        for start, end in segments(positions):
            supervised = [t for t in labels[start:end] if t != -100]
            if supervised:
                answers.add(tok.decode(supervised))
    assert answers == {f"{label}<|im_end|>\n<|endoftext|>" for label in ("bullish", "bearish", "neutral")}


@pytest.mark.parametrize("family, mode", [("shrunk-gpt2", "pretrain"), ("shrunk-qwen2", "sft-lora")])
def test_resume_ends_with_the_weights_of_a_straight_run(family, mode, tmp_path):
    """Full pretraining on one family, LoRA SFT on the other (optimizer, scheduler, data order and adapter state)."""
    from dlm.trainers.train import train

    common = dict(mode=mode.split("-")[0], lora=mode.endswith("lora"), max_steps=4, save_steps=2, batch_size=2)
    if common["lora"]:
        common.update(lora_r=4, learning_rate=1e-2)
    straight = train(family_config(tmp_path, "straight", family, **common))
    interrupted = tmp_path / "interrupted"
    shutil.copytree(Path(straight.output_dir) / "checkpoint-2", interrupted / "checkpoint-2")
    resumed = train(family_config(tmp_path, "interrupted", family, resume=True, **common))
    a, b = weights(resumed.model), weights(straight.model)
    assert a.keys() == b.keys() and all(torch_allclose(a[n], b[n]) for n in a)
    assert resumed.record["train"]["global_step"] == 4
    assert resumed.record["train"]["tokens_seen"] == straight.record["train"]["tokens_seen"]
