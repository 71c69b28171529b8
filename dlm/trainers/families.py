"""The study's own model families, shrunk: `shrunk-gpt2` and `shrunk-qwen2`, built locally in seconds.

tiny-gpt2 (trainers/tiny.py) exercises the pipeline, but it is not the architecture nor the tokenizer a researcher
loads. These two are, at a size a CPU test can train:

- `shrunk-gpt2`: openai-community/gpt2's config (learned positions, Conv1D projections, `gelu_new`, dropout 0.1,
  tied embeddings) with 2 layers of 64 dims, and GPT-2's real 50,257-token tokenizer (no pad token, no chat
  template; " positive" is one token, " bearish" two). The tokenizer files are vendored in
  tests/assets/gpt2-tokenizer/ (MIT-licensed data, see the README there).
- `shrunk-qwen2`: Qwen/Qwen2-0.5B's config (rotary positions, grouped-query attention, SiLU-gated MLP, RMSNorm,
  q/k/v biases, tied embeddings, an embedding padded past the tokenizer) with 2 layers of 64 dims and 4 query
  heads sharing 2 key-value heads, and a Qwen2 tokenizer (Qwen2's pre-tokenizer and NFC normalizer) whose BPE is
  trained on the text of `samples/`, with Qwen2's special tokens after the vocabulary (`<|endoftext|>` as eos and
  pad, no bos, `<|im_start|>`/`<|im_end|>`) and its ChatML chat template.

Their scores mean nothing; what they prove is that every path (packing, LoRA targets, label tokens, templates,
adapters, resume, memory estimates) holds on these architectures. Built on first use and cached beside tiny-gpt2.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM, Qwen2Tokenizer

from dlm.errors import UserError
from dlm.trainers.tiny import built_once, sample_texts

BUILD_VERSION = "1"  # bump when a recipe changes, so caches rebuild
GPT2_TOKENIZER_DIR = Path(__file__).resolve().parents[2] / "tests" / "assets" / "gpt2-tokenizer"
SHRUNK = dict(layers=2, hidden=64)

# openai-community/gpt2's config.json (the fields that shape the model; tests check them against the vendored file)
GPT2_124M = dict(
    n_layer=12,
    n_embd=768,
    n_head=12,
    n_inner=None,
    n_positions=1024,
    vocab_size=50257,
    activation_function="gelu_new",
    attn_pdrop=0.1,
    embd_pdrop=0.1,
    resid_pdrop=0.1,
    layer_norm_epsilon=1e-5,
    initializer_range=0.02,
    bos_token_id=50256,
    eos_token_id=50256,
)
# Qwen/Qwen2-0.5B's config.json (the fields that shape the model); `shrunk_qwen2_config` keeps all but the sizes
QWEN2_05B = dict(
    hidden_size=896,
    intermediate_size=4864,
    num_hidden_layers=24,
    num_attention_heads=14,
    num_key_value_heads=2,
    hidden_act="silu",
    vocab_size=151936,
    max_position_embeddings=131072,
    rope_theta=1_000_000.0,
    rms_norm_eps=1e-6,
    tie_word_embeddings=True,
    attention_dropout=0.0,
    use_sliding_window=False,
    bos_token_id=151643,
    eos_token_id=151643,
)
QWEN2_EOS = "<|endoftext|>"
QWEN2_SPECIALS = (QWEN2_EOS, "<|im_start|>", "<|im_end|>")  # ids 151643-151645 in Qwen2; after the BPE here too
# Qwen2's own template (tokenizer_config.json of Qwen/Qwen2-0.5B): ChatML with a default system turn
QWEN2_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
QWEN2_PRETOKENIZE = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def shrunk_gpt2_path() -> Path:
    return built_once(f"shrunk-gpt2-v{BUILD_VERSION}", build_shrunk_gpt2)


def shrunk_qwen2_path() -> Path:
    return built_once(f"shrunk-qwen2-v{BUILD_VERSION}", build_shrunk_qwen2)


def gpt2_tokenizer():
    """GPT-2's real tokenizer, from the vendored files (as the hub's openai-community/gpt2 loads: no pad token)."""
    if not (GPT2_TOKENIZER_DIR / "vocab.json").is_file():
        raise UserError(
            f"GPT-2's tokenizer files are not in {GPT2_TOKENIZER_DIR} (they come with a clone of the repository, "
            "not with an installed package); use a clone for shrunk-gpt2"
        )
    return AutoTokenizer.from_pretrained(GPT2_TOKENIZER_DIR)


def gpt2_config(**changes) -> GPT2Config:
    """openai-community/gpt2's config, with `changes` (e.g. n_layer=2)."""
    return GPT2Config(**{**GPT2_124M, **changes})


def shrunk_gpt2_config() -> GPT2Config:
    return gpt2_config(n_layer=SHRUNK["layers"], n_embd=SHRUNK["hidden"], n_head=4)


def build_shrunk_gpt2(out_dir: Path, seed: int = 0) -> Path:
    tokenizer = gpt2_tokenizer()
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(shrunk_gpt2_config())
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def qwen2_config(**changes) -> Qwen2Config:
    return Qwen2Config(**{**QWEN2_05B, **changes})


def shrunk_qwen2_config(vocab_size: int, eos_id: int) -> Qwen2Config:
    """Qwen2-0.5B's config at 2 layers x 64 dims: 4 query heads of 16 dims over 2 key-value heads (GQA), the MLP
    widened by Qwen2-0.5B's own ratio (4864 / 896)."""
    hidden = SHRUNK["hidden"]
    return qwen2_config(
        hidden_size=hidden,
        intermediate_size=round(hidden * QWEN2_05B["intermediate_size"] / QWEN2_05B["hidden_size"]),
        num_hidden_layers=SHRUNK["layers"],
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        pad_token_id=eos_id,
    )


def qwen2_bpe(texts: list[str], vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocab, merges) of a byte-level BPE trained on `texts` with Qwen2's normalizer and pre-tokenizer."""
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    bpe = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, bpe)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def build_shrunk_qwen2(out_dir: Path, vocab_size: int = 4096, seed: int = 0) -> Path:
    texts = sample_texts() or ["The quick brown fox jumps over the lazy dog."]
    vocab, merges = qwen2_bpe(texts, vocab_size)
    vocab = {**vocab, **{token: len(vocab) + i for i, token in enumerate(QWEN2_SPECIALS)}}
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token=QWEN2_EOS,
        pad_token=QWEN2_EOS,
        additional_special_tokens=list(QWEN2_SPECIALS[1:]),
        errors="replace",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
        split_special_tokens=False,
    )
    tokenizer.chat_template = QWEN2_CHAT_TEMPLATE
    eos_id = tokenizer.convert_tokens_to_ids(QWEN2_EOS)
    padded = -(-len(tokenizer) // 128) * 128  # Qwen2 pads its embedding past the tokenizer (151,936 > 151,646)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(shrunk_qwen2_config(padded, eos_id))
    model.generation_config.pad_token_id = eos_id
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir
