"""The `tiny-gpt2` alias: a 2-layer, 64-dim GPT-2 with its own byte-level BPE tokenizer, built locally.

Trained on the text of `samples/`, so every sample dataset tokenises into real sub-words. It exists so that the
whole pipeline (train, evaluate, report) runs on any machine without a download; its scores mean nothing.
Built on first use and cached (`DLM_CACHE`, default ~/.cache/dlm); no weights are committed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import torch
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from dlm.data.loading import iter_strings
from dlm.files import cache_root, shipped
from dlm.quiet import quiet_libraries

BUILD_VERSION = "2"  # bump when the recipe changes, so caches rebuild (2: the chat template)
EOS = "<|endoftext|>"
# A small chat template of the usual shape (role markers, an end-of-turn marker, a generation prompt), so the
# chat-template path (--chat-template, lm_eval --apply_chat_template, chat SFT) runs offline on the tiny model.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def tiny_gpt2_path() -> Path:
    """Directory of the cached tiny model, building it first if needed."""
    return built_once(f"tiny-gpt2-v{BUILD_VERSION}", build_tiny_gpt2)


def built_once(name: str, build) -> Path:
    """`cache_root()/name`, made by `build(directory)` on first use (atomic: a crash leaves no half model)."""
    target = cache_root() / name
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        with quiet_libraries():  # no "Writing model shards" bar on a first run
            build(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def sample_texts(root: Path | None = None) -> list[str]:
    """Every string value in the sample snapshots (parquet, csv, json, jsonl), in a stable order."""
    root = root or shipped("samples")

    texts: list[str] = []

    def collect(value):
        texts.extend(text for text in iter_strings(value) if text.strip())

    for path in sorted(root.rglob("*")):
        if path.suffix == ".parquet":
            collect(pq.read_table(path).to_pylist())
        elif path.suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as f:
                collect(list(csv.DictReader(f)))
        elif path.suffix == ".jsonl":
            collect([json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()])
        elif path.suffix == ".json":
            collect(json.loads(path.read_text(encoding="utf-8")))
    return texts


def build_tiny_gpt2(out_dir: Path, vocab_size: int = 4096, n_positions: int = 1024, seed: int = 0) -> Path:

    texts = sample_texts() or ["The quick brown fox jumps over the lazy dog."]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    bpe = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, bpe)
    # GPT-2 convention: one special token serves as bos, eos, unk and pad.
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS, model_max_length=n_positions
    )
    hf_tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = GPT2Config(
        n_layer=2,
        n_head=2,
        n_embd=64,
        n_positions=n_positions,
        vocab_size=len(hf_tok),
        bos_token_id=hf_tok.bos_token_id,
        eos_token_id=hf_tok.eos_token_id,
        pad_token_id=hf_tok.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    hf_tok.save_pretrained(out_dir)
    return out_dir
