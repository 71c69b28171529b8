"""Which model a name means, how to load it for training or scoring, and the per-model training defaults.

A model name is one of: an alias (`gpt2`, `gpt2-medium`, `qwen2-0.5b`, `tiny-gpt2`), a local directory written by
`dlm train` (a full checkpoint, or a LoRA adapter whose base is loaded and the adapter applied), or a hub id.
Loading for training always gives float32 weights: mixed precision comes from autocast, never from the checkpoint's
storage dtype (Qwen2 ships bf16 weights, and bf16 master weights make small updates vanish).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils.error import NoMatchingPeftModuleError
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.activations import ACT2FN, NewGELUActivation
from transformers.utils import cached_file

from dlm.config import LOCAL_MODEL_ALIASES, MODEL_ALIASES
from dlm.data.hub import close_aliases, not_cached
from dlm.errors import UserError
from dlm.quiet import without_load_report
from dlm.trainers.families import shrunk_gpt2_path, shrunk_qwen2_path
from dlm.trainers.model_integrity import (
    check_adapter_files,
    check_adapter_fits,
    check_adapter_weights,
    check_finite,
    check_loading,
    check_local_model,
    check_tokenizer,
    has_tokenizer,
    remote_code_refused,
)
from dlm.trainers.tiny import tiny_gpt2_path

_has_tokenizer = has_tokenizer  # the name trainers/chat.py imports

ALIASES = MODEL_ALIASES
# built locally on first use (trainers/tiny.py, trainers/families.py): offline stand-ins, their scores mean nothing
LOCAL_BUILDS = {"tiny-gpt2": tiny_gpt2_path, "shrunk-gpt2": shrunk_gpt2_path, "shrunk-qwen2": shrunk_qwen2_path}
LOCAL_ALIASES = LOCAL_MODEL_ALIASES

# LoRA targets per architecture (config.model_type). peft's own defaults are narrower (gpt2: c_attn only,
# qwen2: q_proj/v_proj); adapting every projection is the common recipe for domain adaptation.
LORA_TARGETS = {
    "gpt2": ["c_attn", "c_proj", "c_fc"],  # Conv1D layers: need fan_in_fan_out=True
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
CONV1D_MODEL_TYPES = ("gpt2",)


def resolve_model(name: str) -> str:
    """Alias -> hub id or local path; an existing local path -> its absolute path; anything else is a hub id."""
    if name in ALIASES:
        return ALIASES[name]
    if name in LOCAL_BUILDS:
        return str(LOCAL_BUILDS[name]())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise UserError(f"model '{name}' is a file; pass the checkpoint directory that holds config.json")
        return str(path.resolve())
    # 'owner/name' may be a hub id; anything else that looks like a path is a missing checkpoint.
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name:
        raise UserError(
            f"model checkpoint '{name}' not found; check the path (a `dlm train` output_dir "
            f"or one of its checkpoint-N folders) or use an alias: {', '.join(list(ALIASES) + list(LOCAL_ALIASES))}"
        )
    return name


def is_adapter_dir(path: str | Path) -> bool:
    return Path(path, "adapter_config.json").is_file()


def adapter_config(adapter_dir: str | Path) -> dict:
    """adapter_config.json, checked: JSON, a mapping, a LoRA adapter (the only kind dlm writes and loads)."""
    path = Path(adapter_dir, "adapter_config.json")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(
            f"adapter '{adapter_dir}': adapter_config.json is unreadable ({type(err).__name__}); "
            "re-save the adapter (`dlm train --lora` writes a valid one)"
        ) from None
    if not isinstance(config, dict):
        raise UserError(f"adapter '{adapter_dir}': adapter_config.json is not a JSON object; re-save the adapter")
    if str(config.get("peft_type", "LORA")).upper() != "LORA":
        raise UserError(
            f"adapter '{adapter_dir}' is a {config.get('peft_type')} adapter; dlm loads LoRA adapters "
            "only (peft_type LORA)"
        )
    return config


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model an adapter was trained on (peft writes it into adapter_config.json)."""
    config = adapter_config(adapter_dir)
    base = config.get("base_model_name_or_path")
    if not base:
        raise UserError(
            f"adapter '{adapter_dir}' does not name its base model; pass the base with --model "
            f"and the adapter with --peft"
        )
    return base


def hub_revision(resolved: str) -> str | None:
    """The commit of a hub model's cached snapshot (None for local directories or when unknown)."""
    if Path(resolved).exists():
        return None
    try:
        path = cached_file(resolved, "config.json", _raise_exceptions_for_missing_entries=False)
    except Exception:  # revision is provenance, never a reason to fail
        return None
    match = re.search(r"snapshots[/\\]([0-9a-f]{40})[/\\]", str(path or ""))
    return match.group(1) if match else None


def _torch_dtype(dtype, for_training: bool):

    if dtype is None:
        return torch.float32 if for_training else "auto"
    if isinstance(dtype, str) and dtype != "auto":
        try:
            return getattr(torch, dtype)
        except AttributeError:
            raise UserError(f"unknown dtype '{dtype}'; use float32, bfloat16, float16 or auto") from None
    return dtype


def load_model(
    name: str,
    peft: str | None = None,
    dtype=None,
    trust_remote_code: bool = False,
    for_training: bool = False,
    allow_pickle: bool = False,
):
    """(model, tokenizer) for an alias, hub id, checkpoint directory or adapter directory.

    An adapter directory (or `peft=`) loads its base and applies the adapter; for training the adapter is merged so
    the result is a plain model that can be fully fine-tuned or given a fresh adapter. For scoring it stays a
    PeftModel (identical log-likelihoods). Weights are float32 for training unless `dtype` says otherwise.
    """
    resolved = resolve_model(name)
    torch_dtype = _torch_dtype(dtype, for_training)
    if Path(resolved).is_dir() and is_adapter_dir(resolved):
        if peft:
            raise UserError(
                f"'{name}' is already a LoRA adapter; pass its base as --model and the adapter as --peft, "
                "or drop --peft"
            )
        return load_model(
            adapter_base(resolved),
            peft=resolved,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            for_training=for_training,
            allow_pickle=allow_pickle,
        )
    if Path(resolved).is_dir() and not Path(resolved, "config.json").is_file():
        raise UserError(
            f"'{name}' holds no model (no config.json or adapter_config.json); pass one of its "
            "checkpoint-N folders, or finish the run with `dlm train ... --resume`"
        )

    if Path(resolved).is_dir():
        check_local_model(name, Path(resolved), allow_pickle, trust_remote_code)

    if peft:
        check_adapter_files(peft)
        check_adapter_fits(peft, resolved, name, trust_remote_code)
    # the tokenizer first: a broken one is refused before gigabytes of weights are read
    tokenizer = load_tokenizer(peft if peft and has_tokenizer(peft) else resolved, name, trust_remote_code)
    try:
        with without_load_report():
            model, loading = AutoModelForCausalLM.from_pretrained(
                resolved,
                dtype=torch_dtype,
                trust_remote_code=trust_remote_code,
                use_safetensors=None if allow_pickle else True,
                output_loading_info=True,
                ignore_mismatched_sizes=True,  # reported in `loading` and refused below, with the tensor named
            )
    except OSError as err:
        raise UserError(_load_error(name, resolved, err)) from None
    except ValueError as err:
        raise UserError(_config_error(name, err)) from None
    check_loading(name, loading, local=Path(resolved).is_dir())
    check_finite(name, model)
    if peft:
        model = _apply_adapter(model, peft, for_training)
    return model, tokenizer


def load_tokenizer(source: str, name: str, trust_remote_code: bool = False):
    """The tokenizer in `source` (a local dir or hub id), checked: it loads, and it has the end-of-text token dlm
    needs (also its padding token when it has none, as GPT-2)."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except OSError as err:
        raise UserError(_load_error(name, source, err)) from None
    except Exception as err:
        if "trust_remote_code" in str(err):
            raise UserError(_config_error(name, err)) from None
        # Files on disk are not trusted: a corrupt tokenizer.json fails inside `tokenizers` with a KeyError, a
        # plain Exception or a ValueError depending on what is broken. For a local dir every one of those is the
        # file's fault, not a bug of dlm; a hub id keeps its traceback.
        if not Path(source).is_dir():
            raise
        reason = (str(err).splitlines() or [""])[0][:120]
        raise UserError(
            f"the tokenizer of '{name}' cannot be loaded ({type(err).__name__}: {reason}); copy the tokenizer "
            "files (tokenizer.json, tokenizer_config.json) of its base model into it again"
        ) from None
    check_tokenizer(name, tokenizer)
    if tokenizer.pad_token is None:  # GPT-2 has none; padding positions are masked out of the loss anyway
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _config_error(name: str, err: ValueError) -> str:
    """transformers' ValueErrors about a config: remote code not allowed, or an architecture it does not know."""
    text = str(err)
    if "trust_remote_code" in text:  # transformers refuses a repo's own modeling code unless trust_remote_code
        return str(remote_code_refused(name))
    if "does not recognize this architecture" in text or "Unrecognized model" in text:
        return (
            f"model '{name}' has an architecture (model_type) that transformers {transformers.__version__} does "
            "not know; check its config.json's model_type or upgrade transformers"
        )
    raise err


def _apply_adapter(model, adapter_dir: str, merge: bool):
    if not Path(adapter_dir, "adapter_config.json").is_file():
        raise UserError(
            f"adapter '{adapter_dir}' not found (no adapter_config.json); pass a LoRA output_dir of `dlm train --lora`"
        )

    config = adapter_config(adapter_dir)
    try:
        model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    except NoMatchingPeftModuleError:
        targets = config.get("target_modules")
        named = ", ".join(targets) if isinstance(targets, list) else str(targets)
        raise UserError(
            f"adapter '{adapter_dir}' adapts modules ({named}) that "
            f"{getattr(model, 'name_or_path', 'this model')} does not have: it was trained on another "
            "architecture; pass the base model it was trained on"
        ) from None
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise UserError(
            f"adapter '{adapter_dir}' was trained on a base of another size than "
            f"{getattr(model, 'name_or_path', 'this model')} ({str(err).splitlines()[1].strip()[:120]}"
            "...); pass the base model it was trained on"
        ) from None
    check_adapter_weights(adapter_dir, model)
    check_finite(adapter_dir, model)
    return model.merge_and_unload() if merge else model


def _load_error(name: str, resolved: str, err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else err.__class__.__name__
    if Path(resolved).is_dir():  # a local checkpoint: the hub is not involved, the directory is incomplete
        return (
            f"checkpoint '{name}' is incomplete ({text[:160]}); pass a complete checkpoint-N folder "
            "(model.safetensors + config.json + tokenizer), or finish the run with `dlm train ... --resume`"
        )
    if os.environ.get("HF_HUB_OFFLINE") == "1" or "connect" in text.lower():
        return not_cached(name, resolved, "the Hugging Face Hub is unreachable or offline")
    if "gated" in text.lower() or "401" in text or "403" in text:
        return f"model '{resolved}' is gated; accept its licence on the Hub and set HF_TOKEN"
    return f"cannot load model '{name}' ({resolved}): {text}" + "".join(
        f"; did you mean '{c}'?" for c in close_aliases(name)
    )


def check_max_length(model, max_length: int, name: str) -> None:
    """A sequence longer than the model's position table fails deep inside the forward pass (IndexError)."""
    config = model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    if positions and max_length > positions:
        raise UserError(
            f"--max_length {max_length} is more than {name} can take ({positions} positions); "
            f"use --max_length {positions} or less"
        )


def lora_targets(model) -> tuple[list[str] | str, bool]:
    """(target module names, fan_in_fan_out) for this architecture; 'all-linear' when the family is unknown."""
    model_type = getattr(model.config, "model_type", "")
    return LORA_TARGETS.get(model_type, "all-linear"), model_type in CONV1D_MODEL_TYPES


def default_lr(mode: str, lora: bool, total_params: int) -> float:
    """The learning rate used when --learning_rate is not given.

    Full fine-tuning of a pretrained model wants small steps (continued pretraining 1e-4, SFT 5e-5); LoRA adapters
    start at zero and need ~10x more. Toy models (<10M parameters, e.g. tiny-gpt2) learn nothing useful at those
    rates in a demo-length run, so they get 1e-3/3e-3.
    """
    if total_params < 10_000_000:
        return 3e-3 if lora else 1e-3
    if lora:
        return 2e-4
    return 1e-4 if mode == "pretrain" else 5e-5


def count_params(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; tied weights are counted once."""
    seen, trainable, total = set(), 0, 0
    for param in model.parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return trainable, total


def apply_lora(model, r: int, alpha: int, dropout: float, targets: list[str] | None = None):
    """Wrap `model` in fresh LoRA adapters (targets per architecture unless given; Conv1D needs fan_in_fan_out)."""

    default_targets, fan_in_fan_out = lora_targets(model)
    if targets:  # accept both `--lora_target_modules a b` and `--lora_target_modules a,b`
        targets = [t.strip() for item in targets for t in item.split(",") if t.strip()]
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets or default_targets,
        fan_in_fan_out=fan_in_fan_out,
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as err:
        if "not found" in str(err) or "target modules" in str(err).lower():
            names = sorted({n.rsplit(".", 1)[-1] for n, _ in model.named_modules() if n})
            raise UserError(
                f"--lora_target_modules {','.join(targets or [])}: not in this model; "
                f"module names include {', '.join(names[:20])}"
            ) from None
        raise


def fuse_activations(model) -> int:
    """Swap transformers' composite tanh-GELU (`gelu_new`: GPT-2, GPT-Neo, GPT-J...) for torch's fused kernel of
    the same formula, in place; returns how many modules were swapped.

    The composite version is five element-wise ops whose intermediates autograd keeps for the backward: on a
    GPT-2-124M step of 4 x 256 tokens that is ~1.7 GB of peak memory and ~5% of the step time. The fused kernel
    keeps only its input. Outputs differ by float rounding (<= 5e-7 on N(0, 16) inputs; same loss to 7 digits).
    The config is untouched, so checkpoints still say `gelu_new` and load anywhere as before.
    """

    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is NewGELUActivation:
                setattr(parent, name, ACT2FN["gelu_pytorch_tanh"])
                swapped += 1
    return swapped
