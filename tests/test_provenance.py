"""What each evaluation record says it scored: lineage beside the weights, roles, and the report's controls."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlm import cli
from dlm.store.lineage import LINEAGE_FILE, Stage, approach_of, describe_model

TWEETS = "zeroshot/twitter-financial-news-sentiment"
COMMON = ["--max_length", "64", "--batch_size", "4", "--gradient_accumulation_steps", "1", "--save_steps", "100"]


def _records(results: Path) -> dict[str, dict]:
    return {r["run_id"]: r for r in (json.loads(p.read_text()) for p in results.glob("*.json"))}


def _newest(results: Path, **match) -> dict:
    found = [r for r in _records(results).values() if all(r.get(k) == v for k, v in match.items())]
    return max(found, key=lambda r: r["created_at"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model_dir):
    """Through the real CLI: pretrain, then LoRA SFT from it (two stages), and a plain LoRA SFT."""
    out = tmp_path_factory.mktemp("provenance")
    results = out / "runs"
    base = ["--results-dir", str(results), *COMMON, "--dataset", TWEETS]
    cli.main(
        [
            "train",
            "--model",
            "tiny-gpt2",
            "--mode",
            "pretrain",
            "--max_steps",
            "2",
            "--output_dir",
            str(out / "pre"),
            *base,
        ]
    )
    cli.main(
        [
            "train",
            "--model",
            str(out / "pre"),
            "--mode",
            "sft",
            "--lora",
            "--max_steps",
            "2",
            "--output_dir",
            str(out / "pre-sft"),
            *base,
        ]
    )
    cli.main(
        [
            "train",
            "--model",
            "tiny-gpt2",
            "--mode",
            "sft",
            "--lora",
            "--max_steps",
            "2",
            "--output_dir",
            str(out / "sft"),
            *base,
        ]
    )
    return out


def _eval(trained, *model_args) -> dict:
    results = trained / "runs"
    before = set(_records(results))
    cli.main(["eval", *model_args, "--tasks", "dlm_tfns", "--bootstrap_iters", "0", "--results-dir", str(results)])
    (new,) = set(_records(results)) - before
    return _records(results)[new]


def test_checkpoints_carry_their_lineage_through_every_stage(trained):
    two = json.loads((trained / "pre-sft" / LINEAGE_FILE).read_text())
    assert [s["mode"] for s in two["stages"]] == ["pretrain", "sft"]
    assert two["approach"] == "sequential" and two["base_model"] == "tiny-gpt2" and two["adapter"] is True
    assert two["domain"] == "finance" and two["stages"][-1]["lora"] is True and two["stages"][-1]["steps"] == 2
    one = json.loads((trained / "pre" / LINEAGE_FILE).read_text())
    assert one["approach"] == "pretrain" and len(one["stages"]) == 1


def test_an_adapter_evaluation_is_not_zero_shot(trained):
    adapter = _eval(trained, "--model", "tiny-gpt2", "--peft", str(trained / "sft"))
    assert adapter["approach"] == "sft" and adapter["evaluated"]["role"] == "dlm-adapter"
    assert adapter["domain"] == "finance"
    sequential = _eval(trained, "--model", str(trained / "pre-sft"))
    assert sequential["approach"] == "sequential" and sequential["evaluated"]["role"] == "dlm-adapter"
    checkpoint = _eval(trained, "--model", str(trained / "pre"))
    assert checkpoint["approach"] == "pretrain" and checkpoint["evaluated"]["role"] == "dlm-checkpoint"
    published = _eval(trained, "--model", "tiny-gpt2")
    assert published["approach"] == "zero-shot" and published["evaluated"]["role"] == "base"


def test_a_foreign_checkpoint_is_unknown_and_never_a_control(trained, tmp_path, capsys):
    foreign = tmp_path / "someone-elses-model"
    shutil.copytree(trained / "pre", foreign, ignore=shutil.ignore_patterns("dlm_*", "checkpoint-*"))
    record = _eval(trained, "--model", str(foreign))
    assert record["approach"] == "unknown" and record["evaluated"]["role"] == "unknown"
    _eval(trained, "--model", "tiny-gpt2", "--peft", str(trained / "sft"))  # the newest tiny-gpt2 scores: an adapter's
    capsys.readouterr()
    cli.main(["report", "--results-dir", str(trained / "runs"), "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    h1 = next(v for v in report["hypotheses"] if v["name"] == "H1")
    assert h1["evidence"], h1["detail"]  # the pretrained checkpoint paired with the published model's scores
    records = _records(trained / "runs")
    for verdict in report["hypotheses"]:
        for pair in verdict["evidence"]:
            control = records[pair["control_run"]]
            assert control["approach"] in ("zero-shot", "sft"), pair
            if verdict["name"] in ("H1", "H3"):  # never the adapter, the foreign dir or a trained checkpoint
                assert control["evaluated"]["role"] == "base", pair


def test_the_approach_of_a_lineage():
    assert approach_of([]) == "zero-shot"
    assert approach_of([Stage(mode="pretrain", data=["a"])]) == "pretrain"
    assert approach_of([Stage(mode="sft", data=["a", "b"])]) == "multitask"
    assert approach_of([Stage(mode="pretrain"), Stage(mode="sft", data=["a", "b"])]) == "sequential"
    assert approach_of([Stage(mode="sft"), Stage(mode="sft", data=["a"])]) == "sft"
    assert describe_model("gpt2").role == "base"
