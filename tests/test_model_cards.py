"""Model cards: every directory dlm trains has a README.md whose model-index lists the scores recorded for it
(task, metric, value, stderr, shots, protocol, dataset id and split), with base model, datasets and lineage in its
metadata, readable by huggingface_hub offline; only evaluations of that very directory reach it; dlm never writes a
README.md that is not its own, and never through a link.

One real cycle (tiny-gpt2 LoRA SFT, 4 steps, 4 documents) and one evaluation of its checkpoint; the rest runs on
directories made here with dlm's own mark and lineage, in milliseconds."""

from __future__ import annotations

import json
import math

import pytest
from huggingface_hub import ModelCard, metadata_load
from train_support import TWEETS, one_thread  # noqa: F401 (one torch thread for this module)

from dlm import cli
from dlm.store.lineage import LINEAGE_FILE, Lineage, Stage, write_lineage
from dlm.trainers.cards import CARD, may_write, write_card
from dlm.trainers.checkpoints import claim, read_owner, record_written

FAST = ["--limit", "4", "--bootstrap_iters", "0", "--eval_batch_size", "16"]


@pytest.fixture(scope="module")
def cycle(tmp_path_factory):
    """A `dlm run` cycle with its lm-eval files, then `dlm eval` of its checkpoint-2: (tmp, cycle record, eval record)."""
    tmp = tmp_path_factory.mktemp("cards")
    runs, out = tmp / "runs", tmp / "out"
    common = ["--results-dir", str(runs), "--tasks", "dlm_tfns", *FAST]
    cli.main(
        [
            "run",
            "--model",
            "tiny-gpt2",
            "--dataset",
            TWEETS,
            "--mode",
            "sft",
            "--lora",
            "--max_steps",
            "4",
            "--save_steps",
            "2",
            "--batch_size",
            "2",
            "--gradient_accumulation_steps",
            "1",
            "--max_length",
            "64",
            "--output_dir",
            str(out),
            "--output_path",
            str(tmp / "lm-eval"),
            *common,
        ]
    )
    (cycle_record,) = [json.loads(p.read_text()) for p in runs.glob("*.json")]
    cli.main(["eval", "--model", str(out / "checkpoint-2"), *common])
    (eval_record,) = [json.loads(p.read_text()) for p in runs.glob("*.json") if p.stem != cycle_record["run_id"]]
    return tmp, cycle_record, eval_record


def finite_scores(record: dict) -> list[dict]:
    return [s for s in record["eval"]["scores"] if math.isfinite(s["value"])]


def test_the_cycle_writes_its_scores_into_the_card_of_the_checkpoint_it_trained(cycle):
    tmp, record, _ = cycle
    path = tmp / "out" / CARD
    metadata = metadata_load(path)  # huggingface_hub's own parser, offline
    assert metadata["base_model"] == "tiny-gpt2" and metadata["datasets"] == [TWEETS]
    assert metadata["library_name"] == "peft" and "dlm" in metadata["tags"] and "sft" in metadata["tags"]
    lineage = metadata["dlm"]["lineage"]
    assert lineage["stages"][-1]["run_id"] == record["run_id"] and lineage["stages"][-1]["data"] == [TWEETS]
    (index,) = metadata["model-index"]
    assert index["name"] == record["run_id"]
    results = ModelCard.load(path).data.eval_results
    scores = {(s["task"], s["metric"]): s for s in finite_scores(record)}
    assert len(results) == len(scores) > 0
    for result in results:
        score = scores[(result.dataset_name, result.metric_type)]
        assert result.task_name == f"{score['task']} ({score['num_fewshot']}-shot)"
        args = result.metric_args
        assert result.metric_value == score["value"] and args.get("stderr") == score["stderr"]
        assert args["n"] == 4 and args["shots"] == score["num_fewshot"] == result.dataset_args["num_few_shot"]
        assert args["protocol"]["scoring"] == "loglikelihood" and args["limit"] == 4
        assert (result.dataset_type, result.dataset_split) == (TWEETS, "validation")
        assert args["run_id"] == record["run_id"]  # nothing from another run
        # the samples' tweets repeat across splits: the run's overlap check flagged dlm_tfns, and the card says so
        assert "occur in the training data" in args["contamination"]
    assert metadata["dlm"]["evaluations"] == [record["run_id"]]
    text = path.read_text()
    assert "## Scores" in text and "tiny-gpt2 demonstrates the pipeline only" in text
    assert text.count("⚠ dlm_tfns:") == 1
    assert CARD in read_owner(tmp / "out")["written"]  # dlm's own file of the output dir, with its hash
    # `dlm run --output_path`: the cycle's evaluation writes lm-eval's files too
    (results_file,) = (tmp / "lm-eval").rglob("results_*.json")
    assert json.loads(results_file.read_text())["dlm"]["run_id"] == record["run_id"]


def test_an_evaluation_of_a_checkpoint_goes_into_that_checkpoint_s_card_only(cycle):
    tmp, record, evaluation = cycle
    checkpoint = ModelCard.load(tmp / "out" / "checkpoint-2" / CARD)
    results = checkpoint.data.eval_results
    assert {r.metric_args["run_id"] for r in results} == {evaluation["run_id"]}
    assert len(results) == len(finite_scores(evaluation))
    assert checkpoint.data.to_dict()["dlm"]["lineage"]["stages"][-1]["run_id"] == record["run_id"]
    assert checkpoint.data.to_dict()["dlm"]["directory"] == "checkpoint-2"
    # the final model's card kept only the cycle's scores; the other checkpoint has a card without scores
    final = ModelCard.load(tmp / "out" / CARD).data.eval_results
    assert {r.metric_args["run_id"] for r in final} == {record["run_id"]}
    last = metadata_load(tmp / "out" / "checkpoint-4" / CARD)
    assert "model-index" not in last and last["dlm"]["evaluations"] == []


# --- directories made here --------------------------------------------------------------------------------------
def dlm_dir(path, run_id="20250101-000000-aaaaaaaa-sft", foreign: tuple = ()):
    """A directory as dlm's training leaves it: the mark (listing `foreign` files found there) and the lineage."""
    path.mkdir(parents=True)
    for name in foreign:
        (path / name).write_text("a person's file")
    claim(path, None, run_id)
    write_lineage(
        path,
        Lineage(
            base_model="gpt2",
            approach="sft",
            domain="finance",
            adapter=False,
            stages=[Stage(run_id=run_id, mode="sft", data=[TWEETS], steps=4, lora=False, seed=1)],
        ),
    )
    record_written(path, [LINEAGE_FILE])  # what training records once it has written the lineage
    return path


def entry(run_id="eval-1", value=0.5, shots=0, metric="acc", task="dlm_tfns"):
    return {
        "task": task,
        "metric": metric,
        "filter": "none",
        "value": value,
        "stderr": 0.1,
        "n": 10,
        "shots": shots,
        "limit": None,
        "protocol": {"scoring": "loglikelihood", "shots": shots},
        "run_id": run_id,
        "dataset": {"id": TWEETS, "config": None, "split": "validation"},
    }


def test_a_newer_evaluation_replaces_the_same_measurement_and_keeps_the_others(tmp_path):
    directory = dlm_dir(tmp_path / "out")
    write_card(directory, fresh=True)
    write_card(directory, [entry("eval-1", 0.5), entry("eval-1", 0.6, shots=5)])
    write_card(directory, [entry("eval-2", 0.7), entry("eval-2", 0.3, metric="f1_macro")])
    results = {
        (r.metric_type, r.dataset_args["num_few_shot"]): r for r in ModelCard.load(directory / CARD).data.eval_results
    }
    assert results[("acc", 0)].metric_value == 0.7 and results[("acc", 0)].metric_args["run_id"] == "eval-2"
    assert results[("acc", 5)].metric_value == 0.6 and results[("f1_macro", 0)].metric_value == 0.3
    assert metadata_load(directory / CARD)["dlm"]["evaluations"] == ["eval-1", "eval-2"]
    write_card(directory, fresh=True)  # new weights (a resumed training): the old scores are not theirs
    assert "model-index" not in metadata_load(directory / CARD)


def test_never_a_readme_that_is_not_dlm_s(tmp_path):
    found = dlm_dir(tmp_path / "kept", foreign=(CARD,))  # a person's README.md kept by --overwrite
    assert not may_write(found) and write_card(found, fresh=True) is None
    assert (found / CARD).read_text() == "a person's file"
    unmarked = tmp_path / "theirs"
    unmarked.mkdir()
    (unmarked / CARD).write_text("theirs")
    assert write_card(unmarked, [entry()]) is None and (unmarked / CARD).read_text() == "theirs"
    replaced = dlm_dir(tmp_path / "edited")
    write_card(replaced, fresh=True)
    (replaced / CARD).write_text("# my own card now\n")  # written over dlm's card after training
    assert write_card(replaced, [entry()]) is None and (replaced / CARD).read_text() == "# my own card now\n"


def test_a_link_at_readme_is_never_written_through_nor_replaced(tmp_path):
    other = dlm_dir(tmp_path / "other", run_id="20250101-000000-bbbbbbbb-sft")
    write_card(other, [entry("eval-of-other")])
    victim = other / CARD
    before = victim.read_text()
    directory = dlm_dir(tmp_path / "out")
    (directory / CARD).symlink_to(victim)
    assert write_card(directory, [entry()]) is None  # after training: a link is not dlm's card
    assert write_card(directory, fresh=True) is None  # nor at training's end: the link is not dlm's to replace
    assert victim.read_text() == before and (directory / CARD).is_symlink()


def test_cards_hold_no_secret(tmp_path, monkeypatch):
    secret = "hunter2-but-longer-0123"
    monkeypatch.setenv("DLM_TEST_SECRET", secret)
    directory = dlm_dir(tmp_path / "out")
    write_card(directory, [entry(task=f"dlm_{secret}"), entry(task=f"hf_{'x' * 34}")], provenance={"python": secret})
    text = (directory / CARD).read_text()
    assert secret not in text and "hf_xxxx" not in text and "***" in text
