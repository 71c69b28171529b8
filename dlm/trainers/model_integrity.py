"""Checks that a model, its tokenizer and an adapter are what they claim to be, before anything is scored or trained.

Nothing read from disk is trusted: a checkpoint may be cut short, miss tensors, hold NaN, carry a config.json that
does not fit its weights, or name an architecture this transformers does not know; a tokenizer may be corrupt or
lack the end-of-text token dlm needs; an adapter may target modules the base model does not have, or hold weights
for other modules than its config names. transformers and peft load all of these with a warning at most (missing
tensors are initialised at random, unexpected ones dropped), so a broken checkpoint would be scored as if it were
the model. Each problem is one UserError naming the fix, raised before any scoring or training.

File checks (`check_local_model`, `check_adapter_files`, `check_adapter_fits`) read headers only; loaded-model
checks (`check_loading`, `check_finite`, `check_tokenizer`, `check_adapter_weights`) run right after loading.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from dlm.errors import UserError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
SHOWN = 3  # tensor names quoted in a message


def has_tokenizer(directory: str | Path) -> bool:
    return any(Path(directory, f).is_file() for f in TOKENIZER_FILES)


def safetensors_header(path: Path) -> dict | None:
    """The JSON header of a safetensors file, or None when the file is cut short, empty or not safetensors."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length + 8 > size:
                return None
            header = json.loads(f.read(length))
    except (OSError, struct.error, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    ends = [
        v["data_offsets"][1]
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
    ]
    return header if 8 + length + max(ends, default=0) <= size else None


def remote_code_refused(name: str) -> UserError:
    return UserError(
        f"model '{name}' ships its own code, which runs on your machine if loaded; re-run with "
        "--trust-remote-code only if you trust its source"
    )


def _names(keys) -> str:
    keys = sorted(k.removeprefix("base_model.model.") for k in keys)  # peft's prefix of every adapter tensor
    return ", ".join(keys[:SHOWN]) + (f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else "")


# --- files (nothing loaded) ---------------------------------------------------------------------------------------
def check_local_model(name: str, directory: Path, allow_pickle: bool, trust_remote_code: bool = False) -> None:
    """A local model dir is refused before anything runs when its weights are pickled (unless --allow_pickle), cut
    short or missing, its config.json is not a config of a known architecture, or its tokenizer is missing or not
    valid JSON (training would go on with an empty one)."""
    weights = sorted(p.name for p in directory.iterdir() if p.suffix in (".safetensors", ".bin", ".pt", ".pth"))
    pickled = [w for w in weights if not w.endswith(".safetensors") and w != "training_args.bin"]
    if not pickled and not any(w.endswith(".safetensors") for w in weights):
        raise UserError(
            f"'{name}' has no weights (no *.safetensors); pass a finished output dir or one of its checkpoint-N folders"
        )
    if pickled and not any(w.endswith(".safetensors") for w in weights) and not allow_pickle:
        raise UserError(
            f"'{name}' has pickled weights only ({', '.join(pickled)}), which can run code when "
            "loaded; convert them to safetensors, or pass --allow_pickle if you trust their source"
        )
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UserError(
            f"'{name}': config.json is unreadable ({type(err).__name__}); copy it again from the model it came from"
        ) from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise UserError(
            f"'{name}': config.json is not a model config (a JSON object with model_type); copy it "
            "again from the model it came from"
        )
    own_code = isinstance(config.get("auto_map"), dict)  # the repo's own modeling code defines its type
    if own_code and not trust_remote_code and config["model_type"] not in CONFIG_MAPPING:
        raise remote_code_refused(name)
    if not own_code and config["model_type"] not in CONFIG_MAPPING:
        raise UserError(
            f"'{name}': config.json names model_type '{config['model_type']}', which transformers "
            f"{transformers.__version__} does not know; correct model_type (the base model's config.json has "
            "it, e.g. gpt2 or qwen2) or upgrade transformers"
        )
    for weight in (directory / w for w in weights if w.endswith(".safetensors")):
        if safetensors_header(weight) is None:
            raise UserError(
                f"'{name}': {weight.name} is truncated or empty; the save did not finish - use an "
                "earlier checkpoint-N or train again"
            )
    if not has_tokenizer(directory):
        raise UserError(
            f"'{name}' has no tokenizer (no tokenizer.json / tokenizer_config.json / vocab.json); copy "
            "the tokenizer files of its base model into it"
        )
    check_tokenizer_files(name, directory)


def check_tokenizer_files(name: str, directory: Path) -> None:
    """tokenizer.json and tokenizer_config.json, when present, are JSON objects (a cut copy is refused here with
    the file named, not as a JSONDecodeError from inside transformers)."""
    for file in ("tokenizer.json", "tokenizer_config.json"):
        path = directory / file
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            where = f" at line {err.lineno}" if isinstance(err, json.JSONDecodeError) else ""
            raise UserError(
                f"the tokenizer of '{name}' is corrupt ({file} is not valid JSON{where}); copy the tokenizer "
                "files of its base model into it again"
            ) from None
        if not isinstance(data, dict):
            raise UserError(f"the tokenizer of '{name}' is corrupt ({file} is not a JSON object); copy it again")


def check_adapter_files(adapter_dir: str | Path) -> None:
    """An adapter's weights are there and whole (its config is checked by models.adapter_config)."""
    directory = Path(adapter_dir)
    weights = directory / "adapter_model.safetensors"
    if not weights.is_file():
        if (directory / "adapter_model.bin").is_file():
            return  # pickled adapter weights: refused or allowed where pickles are
        raise UserError(
            f"adapter '{adapter_dir}' has no weights (no adapter_model.safetensors); pass a complete LoRA "
            "output_dir of `dlm train --lora`"
        )
    if safetensors_header(weights) is None:
        raise UserError(
            f"adapter '{adapter_dir}': adapter_model.safetensors is truncated or empty; the save did not finish - "
            "use an earlier checkpoint-N of that run or train it again"
        )


def check_adapter_fits(adapter_dir: str, resolved: str, name: str, trust_remote_code: bool) -> None:
    """Before any weights load: the input widths of the adapter's LoRA A matrices (read from the safetensors
    header) must be widths the base model has (hidden or intermediate size); else it was trained on another base."""
    header = safetensors_header(Path(adapter_dir, "adapter_model.safetensors"))
    try:
        config = AutoConfig.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return  # an unreadable config fails with its own message when the model loads
    if header is None:
        return
    hidden = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    inner = (
        getattr(config, "intermediate_size", None)
        or getattr(config, "n_inner", None)
        or (4 * hidden if hidden else None)
    )
    widths = {
        v["shape"][1]
        for k, v in header.items()
        if "lora_A" in k and isinstance(v, dict) and len(v.get("shape") or []) == 2
    }
    if hidden and widths - {hidden, inner}:
        raise UserError(
            f"adapter '{adapter_dir}' was trained on a base of another size than '{name}' (its LoRA "
            f"inputs are {sorted(widths)} wide, the model's {hidden}/{inner}); pass the base model it "
            "was trained on"
        )


# --- loaded ----------------------------------------------------------------------------------------------------
def check_loading(name: str, info: dict, local: bool = True) -> None:
    """transformers' loading report (from_pretrained(output_loading_info=True)): every tensor the architecture
    needs came from the checkpoint with the shape its config gives, and a local checkpoint holds nothing else. (Its
    own exceptions, tied weights and buffers, are already filtered out of these lists.) A hub model's extra tensors
    are left alone: the hub's files are the published model, and some carry buffers of older library versions."""
    mismatched = sorted(info.get("mismatched_keys") or [])
    if mismatched:
        key, stored, needed = mismatched[0]
        more = f" and {len(mismatched) - 1} more" if len(mismatched) > 1 else ""
        raise UserError(
            f"'{name}': its config.json does not fit its weights ({key}{more}: {tuple(stored)} in the checkpoint, "
            f"{tuple(needed)} by the config); restore the config.json saved with these weights"
        )
    missing = info.get("missing_keys") or []
    if missing:
        raise UserError(
            f"'{name}': {len(missing)} weight tensor(s) that its config.json needs are missing from the checkpoint "
            f"({_names(missing)}) and would be random; use a complete checkpoint-N or the model it came from"
        )
    unexpected = info.get("unexpected_keys") or []
    if unexpected and local:
        raise UserError(
            f"'{name}': the checkpoint holds {len(unexpected)} tensor(s) its config.json has no place for "
            f"({_names(unexpected)}); its config.json belongs to another model - restore the one saved with "
            "these weights"
        )


def check_finite(name: str, model) -> None:
    """No NaN or infinite weight: such a model scores garbage (or one class for every document) with status ok."""
    for param_name, parameter in model.named_parameters():
        finite = torch.isfinite(parameter.detach())
        if not bool(finite.all()):
            bad = int((~finite).sum())
            raise UserError(
                f"'{name}': weight {param_name} holds {bad:,} NaN or infinite value(s) of {finite.numel():,}; the "
                "checkpoint is broken (a diverged run?) - use an earlier checkpoint-N"
            )


def check_tokenizer(name: str, tokenizer) -> None:
    """dlm separates documents (packing), ends SFT answers and pads batches with the end-of-text token, and
    lm-eval scores unconditional continuations from it: a tokenizer without one cannot be used."""
    if tokenizer.eos_token is None or tokenizer.eos_token_id is None:
        raise UserError(
            f"the tokenizer of '{name}' has no end-of-text token (eos_token); set \"eos_token\" in its "
            'tokenizer_config.json (GPT-2: "<|endoftext|>") or use the base model\'s tokenizer files'
        )


def check_adapter_weights(adapter_dir: str, model) -> None:
    """Every LoRA matrix the adapter's config puts into the model came from its weights file, and the file holds no
    LoRA matrix without a place (peft drops those silently and leaves the missing ones at their initial value: B = 0,
    the base model unchanged)."""
    header = safetensors_header(Path(adapter_dir, "adapter_model.safetensors"))
    if header is None:
        return  # pickled adapter weights: nothing to compare against without unpickling
    stored = {k for k in header if "lora_" in k}
    expected = {
        _without_adapter_name(n, getattr(model, "active_adapter", "default"))
        for n, _ in model.named_parameters()
        if "lora_" in n
    }
    missing, unexpected = expected - stored, stored - expected
    if missing or unexpected:
        detail = "; ".join(
            part
            for part in (
                f"{len(missing)} missing ({_names(missing)})" if missing else "",
                f"{len(unexpected)} without a place in the model ({_names(unexpected)})" if unexpected else "",
            )
            if part
        )
        raise UserError(
            f"adapter '{adapter_dir}': its weights do not match its adapter_config.json ({detail}); re-save the "
            "adapter or pass the base model it was trained on"
        )


def _without_adapter_name(parameter: str, adapter: str) -> str:
    # in the model: ...c_attn.lora_A.default.weight; in the file peft writes: ...c_attn.lora_A.weight
    return parameter.replace(f".{adapter}.", ".")
