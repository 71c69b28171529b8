"""Files that the bad-input cases of test_bad_input.py need, built before the before/after snapshot is taken."""

from __future__ import annotations

import json
from pathlib import Path

TINY = "tiny-gpt2"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def non_empty_output(tmp: Path) -> None:
    _write(tmp / "out" / "notes.txt", "my own file")


def half_checkpoint(tmp: Path) -> None:  # killed while saving: no trainer_state.json
    _write(tmp / "out" / "checkpoint-5" / "config.json", "{}")


def empty_dir(tmp: Path) -> None:
    (tmp / "empty").mkdir()


def config_without_weights(tmp: Path) -> None:
    from dlm.trainers.tiny import tiny_gpt2_path

    _write(tmp / "ckpt" / "config.json", (tiny_gpt2_path() / "config.json").read_text())


def _tiny_copy(tmp: Path, skip: tuple[str, ...]) -> Path:
    import shutil

    from dlm.trainers.tiny import tiny_gpt2_path

    target = tmp / "ckpt"
    shutil.copytree(tiny_gpt2_path(), target, ignore=shutil.ignore_patterns(*skip))
    return target


def checkpoint_without_tokenizer(tmp: Path) -> None:
    _tiny_copy(tmp, ("tokenizer*", "vocab.json", "merges.txt", "special_tokens_map.json"))


def pickled_checkpoint(tmp: Path) -> None:
    target = _tiny_copy(tmp, ("*.safetensors",))
    (target / "pytorch_model.bin").write_bytes(b"not loaded: refused before unpickling")


def a_file(tmp: Path) -> None:
    _write(tmp / "afile", "not a directory")


def plan_not_utf8(tmp: Path) -> None:
    (tmp / "plan.yaml").write_bytes(b"defaults: {model: tiny-gpt2}\nname: caf\xe9\n")


def plan_sharing_output_dir(tmp: Path) -> None:
    _write(
        tmp / "plan.yaml",
        "defaults: {model: tiny-gpt2}\nruns:\n"
        "  - {name: a, approach: sft, data: glue:sst2, output_dir: same}\n"
        "  - {name: b, approach: sft, data: glue:cola, output_dir: same}\n",
    )


def plan_bad_seeds(tmp: Path) -> None:
    _write(
        tmp / "plan.yaml",
        "seeds: [1, two]\ndefaults: {model: tiny-gpt2}\nmatrix: {approach: [sft], data: [glue:sst2]}\n",
    )


def plan_from_unknown(tmp: Path) -> None:
    _write(
        tmp / "plan.yaml",
        "defaults: {model: tiny-gpt2}\nruns:\n  - {name: b, from: nowhere, approach: sft, data: glue:sst2}\n",
    )


def plan_not_mapping(tmp: Path) -> None:
    _write(tmp / "plan.yaml", "- just\n- a list\n")


def config_is_a_list(tmp: Path) -> None:
    target = _tiny_copy(tmp, ())
    (target / "config.json").write_text("[1, 2]")


def truncated_weights(tmp: Path) -> None:
    target = _tiny_copy(tmp, ())
    data = (target / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])


def empty_weights(tmp: Path) -> None:
    target = _tiny_copy(tmp, ())
    (target / "model.safetensors").write_bytes(b"")


def adapter_invalid_json(tmp: Path) -> None:
    _write(tmp / "adapter" / "adapter_config.json", "{not json")


def adapter_unknown_type(tmp: Path) -> None:
    _write(
        tmp / "adapter" / "adapter_config.json",
        json.dumps({"peft_type": "PROMPT_TUNING", "base_model_name_or_path": "tiny-gpt2"}),
    )


def adapter_for_another_base_size(tmp: Path) -> None:
    """A LoRA adapter of tiny-gpt2 (64 dims) next to a base of the same family with 32 dims."""
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    from dlm.trainers.models import load_model

    base, _ = load_model(TINY)
    get_peft_model(base, LoraConfig(r=4, target_modules=["c_attn"])).save_pretrained(str(tmp / "adapter"))
    other = _tiny_copy(tmp, ("*.safetensors", "config.json"))
    config = GPT2Config(
        vocab_size=base.config.vocab_size, n_positions=base.config.n_positions, n_embd=32, n_layer=2, n_head=2
    )
    GPT2LMHeadModel(config).save_pretrained(str(other))


def record_with_wrong_types(tmp: Path) -> None:
    _write(tmp / "runs" / "bad.json", json.dumps({"run_id": 5, "eval": "x"}))


def adapter_without_base(tmp: Path) -> None:
    _write(tmp / "adapter" / "adapter_config.json", json.dumps({"peft_type": "LORA", "r": 8}))


def adapter_with_missing_base(tmp: Path) -> None:
    _write(
        tmp / "adapter" / "adapter_config.json",
        json.dumps({"peft_type": "LORA", "r": 8, "base_model_name_or_path": str(tmp / "gone-base")}),
    )


def corrupt_record(tmp: Path) -> None:
    _write(tmp / "runs" / "20260101-000000-abcdef-eval.json", '{"run_id": "x", "eval": {"scores": [')


def malformed_plan(tmp: Path) -> None:
    _write(tmp / "plan.yaml", "runs:\n  - model: tiny-gpt2\n    dataset: [stanfordnlp/imdb\n    mode: sft\n")


def plan_with_typo(tmp: Path) -> None:
    _write(tmp / "plan.yaml", "runs:\n  - model: tiny-gpt2\n    dataset: stanfordnlp/imdb\n    max_step: 5\n")


def plan_with_bad_rates(tmp: Path) -> None:
    _write(
        tmp / "plan.yaml",
        "runs:\n  - model: tiny-gpt2\n    datasets: [stanfordnlp/imdb, nyu-mll/glue]\n"
        "    dataset_configs: [None, sst2]\n    mixture_rates: [0.5]\n",
    )


def model_without_chat_template(tmp: Path) -> None:
    """A checkpoint whose tokenizer has no chat template (GPT-2 and most base models)."""
    target = _tiny_copy(tmp, ("chat_template.jinja",))
    config = json.loads((target / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (target / "tokenizer_config.json").write_text(json.dumps(config))
