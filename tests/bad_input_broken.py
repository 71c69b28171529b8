"""Broken files for the bad-input table (test_bad_input.py): checkpoints, tokenizers, adapters and chat templates
that load with a warning at most, and dataset snapshots with bad rows. Each builds under `tmp` before the
before/after snapshot is taken: a model at tmp/ckpt, an adapter at tmp/adapter, a data dir at tmp/data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWEETS = "zeroshot/twitter-financial-news-sentiment"


def _tiny_copy(tmp: Path) -> Path:
    from dlm.trainers.tiny import tiny_gpt2_path

    target = tmp / "ckpt"
    shutil.copytree(tiny_gpt2_path(), target)
    return target


def _edit_weights(tmp: Path, edit) -> None:
    from safetensors.torch import load_file, save_file

    target = _tiny_copy(tmp)
    tensors = load_file(target / "model.safetensors")
    edit(tensors)
    save_file(tensors, target / "model.safetensors", metadata={"format": "pt"})


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# --- checkpoints ----------------------------------------------------------------------------------------------
def two_weight_matrices_missing(tmp: Path) -> None:
    """Loaded today with both matrices initialised at random, and scored."""
    _edit_weights(
        tmp, lambda t: [t.pop(k) for k in ("transformer.h.0.attn.c_attn.weight", "transformer.h.1.mlp.c_fc.weight")]
    )


def unexpected_weight(tmp: Path) -> None:
    import torch

    _edit_weights(tmp, lambda t: t.update({"transformer.h.7.mlp.c_fc.weight": torch.zeros(2, 2)}))


def nan_weights(tmp: Path) -> None:
    import torch

    _edit_weights(tmp, lambda t: t.update({k: torch.full_like(v, float("nan")) for k, v in t.items()}))


def one_infinite_weight(tmp: Path) -> None:
    def edit(tensors):
        weight = tensors["transformer.h.1.mlp.c_proj.weight"].clone()
        weight[3, 5] = float("inf")
        tensors["transformer.h.1.mlp.c_proj.weight"] = weight

    _edit_weights(tmp, edit)


def config_narrower_than_weights(tmp: Path) -> None:
    _edit_json(_tiny_copy(tmp) / "config.json", lambda c: c.update(n_embd=32))


def config_with_more_layers(tmp: Path) -> None:
    _edit_json(_tiny_copy(tmp) / "config.json", lambda c: c.update(n_layer=3))


def config_with_other_vocabulary(tmp: Path) -> None:
    _edit_json(_tiny_copy(tmp) / "config.json", lambda c: c.update(vocab_size=5000))


def unknown_model_type(tmp: Path) -> None:
    _edit_json(_tiny_copy(tmp) / "config.json", lambda c: c.update(model_type="gpt9"))


def tokenizer_without_eos(tmp: Path) -> None:
    target = _tiny_copy(tmp)
    _edit_json(target / "tokenizer_config.json", lambda c: [c.pop(k, None) for k in ("eos_token", "pad_token")])
    _edit_json(target / "config.json", lambda c: c.update(eos_token_id=None, pad_token_id=None))


def tokenizer_json_cut(tmp: Path) -> None:
    target = _tiny_copy(tmp)
    text = (target / "tokenizer.json").read_text()
    (target / "tokenizer.json").write_text(text[: len(text) // 3])


def tokenizer_json_of_another_shape(tmp: Path) -> None:
    (_tiny_copy(tmp) / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": 5}))


def chat_template_syntax_error(tmp: Path) -> None:
    (_tiny_copy(tmp) / "chat_template.jinja").write_text("{% for m in messages %}{{ m['content'] }")


def chat_template_that_raises(tmp: Path) -> None:
    (_tiny_copy(tmp) / "chat_template.jinja").write_text("{{ raise_exception('this template takes no user turn') }}")


# --- adapters -------------------------------------------------------------------------------------------------
def _adapter(tmp: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from dlm.trainers.tiny import tiny_gpt2_path

    base = AutoModelForCausalLM.from_pretrained(tiny_gpt2_path())
    target = tmp / "adapter"
    get_peft_model(base, LoraConfig(r=4, target_modules=["c_attn"], fan_in_fan_out=True)).save_pretrained(target)
    return target


def adapter_for_absent_modules(tmp: Path) -> None:
    """An adapter of a Llama-style model (q_proj, v_proj) put on GPT-2, which has no such modules."""
    _edit_json(_adapter(tmp) / "adapter_config.json", lambda c: c.update(target_modules=["q_proj", "v_proj"]))


def adapter_weights_cut(tmp: Path) -> None:
    path = _adapter(tmp) / "adapter_model.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def adapter_weights_for_other_modules(tmp: Path) -> None:
    """The config says c_attn, the weights are for q_proj: peft drops them and the base model is scored."""
    from safetensors.torch import load_file, save_file

    path = _adapter(tmp) / "adapter_model.safetensors"
    tensors = load_file(path)
    save_file({k.replace("c_attn", "q_proj"): v for k, v in tensors.items()}, path)


# --- dataset snapshots ----------------------------------------------------------------------------------------
def _tweets_with_row(tmp: Path, row: str) -> None:
    """The tweets snapshot with one row added as the 3rd data row of both splits."""
    target = tmp / "data" / TWEETS
    shutil.copytree(ROOT / "samples" / TWEETS, target)
    for name in ("sent_train.csv", "sent_valid.csv"):
        lines = (target / name).read_text().splitlines()
        lines.insert(3, row)
        (target / name).write_text("\n".join(lines) + "\n")


def label_out_of_range(tmp: Path) -> None:
    _tweets_with_row(tmp, "Shares of $XYZ are flat,7")


def label_negative(tmp: Path) -> None:
    """-3 indexed the class names from the end and trained without a word."""
    _tweets_with_row(tmp, "Shares of $XYZ are flat,-3")


def label_a_word(tmp: Path) -> None:
    _tweets_with_row(tmp, "Shares of $XYZ are flat,positive")


def label_blank(tmp: Path) -> None:
    _tweets_with_row(tmp, "Shares of $XYZ are flat,")


def label_fraction(tmp: Path) -> None:
    _tweets_with_row(tmp, "Shares of $XYZ are flat,1.5")


def text_blank(tmp: Path) -> None:
    """A CSV cell left empty: read as null, and formatted as the word "None" into the prompt."""
    _tweets_with_row(tmp, ",1")


def parquet_text_null(tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    target = tmp / "data" / "stanfordnlp" / "imdb"
    shutil.copytree(ROOT / "samples" / "stanfordnlp" / "imdb", target)
    for path in (target / "plain_text").glob("*.parquet"):
        table = pq.read_table(path)
        texts = table.column("text").to_pylist()
        texts[2] = None
        pq.write_table(table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts)), path)


def jsonl_not_utf8(tmp: Path) -> None:
    """LLukas22/fiqa as JSON Lines with one Latin-1 byte: Arrow reads it; it failed only when the row was read."""
    target = tmp / "data" / "LLukas22" / "fiqa"
    shutil.copytree(ROOT / "samples" / "LLukas22" / "fiqa", target)
    for split in ("train", "test"):
        rows = json.loads((target / f"{split}.json").read_text())
        (target / f"{split}.json").unlink()
        text = "\n".join(json.dumps(r) for r in rows).encode()
        (target / f"{split}.jsonl").write_bytes(text.replace(b"Roth", b"R\xf6th", 1).replace(b"What", b"Wh\xe4t", 1))


# --- plans ----------------------------------------------------------------------------------------------------
def _plan(tmp: Path, text: str) -> None:
    (tmp / "plan.yaml").write_text(text)


def plan_with_20000_seeds(tmp: Path) -> None:
    seeds = ", ".join(str(i) for i in range(20_000))
    _plan(tmp, f"seeds: [{seeds}]\ndefaults: {{model: tiny-gpt2}}\nmatrix: {{approach: [sft], data: [glue:sst2]}}\n")


def plan_of_20000_runs(tmp: Path) -> None:
    fractions = ", ".join(f"{(i + 1) / 20_001:.6f}" for i in range(20_000))
    _plan(
        tmp,
        f"defaults: {{model: tiny-gpt2}}\nmatrix: {{approach: [sft], data: [glue:sst2], data_fraction: [{fractions}]}}\n",
    )


def plan_with_misspelt_config(tmp: Path) -> None:
    _plan(tmp, "defaults: {model: tiny-gpt2}\nruns:\n  - {name: a, approach: sft, data: 'nyu-mll/glue:colaa'}\n")


def plan_with_two_runs_of_one_name(tmp: Path) -> None:
    _plan(
        tmp,
        "defaults: {model: tiny-gpt2}\nruns:\n  - {name: a, approach: sft, data: 'glue:cola'}\n"
        "  - {name: a, approach: sft, data: 'glue:sst2'}\n",
    )


def plan_with_a_list_as_key(tmp: Path) -> None:
    _plan(tmp, "defaults: {model: tiny-gpt2}\nruns:\n  - ? [approach, data]\n    : sft\n")


def plan_with_bad_slurm_time(tmp: Path) -> None:
    _plan(
        tmp,
        "slurm: {partition: gpu, time_min: two hours}\ndefaults: {model: tiny-gpt2}\n"
        "runs:\n  - {name: a, approach: sft, data: 'glue:cola'}\n",
    )


def results_dir_as_html(tmp: Path) -> None:
    (tmp / "page.html").mkdir()
    (tmp / "runs").mkdir()
