"""`dlm eval --output_path DIR --log_samples` writes lm-eval's own results and samples files: the same keys and
scores as `lm_eval --output_path DIR --log_samples` on the same task and documents, plus dlm's key; read back the
way lm-eval reads its files (datasets' json loader, as its Hub result datasets are read)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from dlm.errors import UserError
from dlm.harness_tasks.catalog import TASKS_DIR

TASKS = "fin_sentiment"  # a group: groups and group_subtasks are compared too
LEAVES = ("dlm_fpb", "dlm_tfns", "dlm_fiqa_sa")
# differ between two runs of the same evaluation: when it ran, how long it took
RUN_TIME_KEYS = {"date", "total_evaluation_time_seconds"}


@pytest.fixture(scope="module")
def both(tmp_path_factory, tiny_model_dir, samples_dir):
    """(lm_eval's results, dlm's results, lm_eval's dir, dlm's dir, dlm's record) for fin_sentiment, 4 documents."""
    from dlm import cli

    tmp = tmp_path_factory.mktemp("lm-eval-files")
    command = [
        str(Path(sys.executable).with_name("lm_eval")),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir},dtype=float32",
        "--tasks",
        TASKS,
        "--include_path",
        str(TASKS_DIR),
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--limit",
        "4",
        "--output_path",
        str(tmp / "lm"),
        "--log_samples",
    ]
    env = {**os.environ, "DLM_DATA_DIR": str(samples_dir)}
    done = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = tmp / "runs"
    cli.main(
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--tasks",
            TASKS,
            "--limit",
            "4",
            "--data-dir",
            str(samples_dir),
            "--results-dir",
            str(runs),
            "--output_path",
            str(tmp / "dlm"),
            "--log_samples",
        ]
    )
    (theirs,) = (tmp / "lm").rglob("results_*.json")
    (ours,) = (tmp / "dlm").rglob("results_*.json")
    (record,) = runs.glob("*.json")
    return (
        json.loads(theirs.read_text()),
        json.loads(ours.read_text()),
        theirs.parent,
        ours.parent,
        json.loads(record.read_text()),
    )


def test_results_file_has_every_lm_eval_key_with_equal_scores(both):
    theirs, ours, their_dir, our_dir, record = both
    assert set(theirs) <= set(ours) and set(ours) - set(theirs) == {"dlm"}
    assert set(theirs) <= set(typing.get_type_hints(__import__("lm_eval.result_schema").result_schema.EvalResults))
    for key in ("results", "groups", "group_subtasks", "versions", "n-shot", "higher_is_better", "n-samples"):
        assert ours[key] == theirs[key], key  # scores, stderrs, counts: equal, not close
    # the same documents and prompts: lm-eval's per-task hash of every document, prompt and target
    assert ours["task_hashes"] == theirs["task_hashes"] and set(ours["task_hashes"]) == set(LEAVES)
    for key in ("model_source", "model_name", "model_name_sanitized", "chat_template", "chat_template_sha"):
        assert ours[key] == theirs[key], key
    assert (ours["system_instruction_sha"], ours["lm_eval_version"]) == (None, theirs["lm_eval_version"])
    assert ours["config"]["model"] == "hf" and ours["config"]["model_args"] == theirs["config"]["model_args"]
    assert ours["config"]["batch_size"] == theirs["config"]["batch_size"] == "8"
    assert set(theirs["configs"]) == set(ours["configs"]) == set(LEAVES)
    assert our_dir.name == their_dir.name  # lm-eval's layout: DIR/<sanitized model name>/
    # dlm's additions: the record they came from, its protocol and provenance
    dlm = ours["dlm"]
    assert dlm["run_id"] == record["run_id"] and dlm["record"] == f"{record['run_id']}.json"
    assert dlm["scores"] == record["eval"]["scores"] and dlm["provenance"] == record["provenance"]
    assert dlm["protocol"]["limit"] == 4 and dlm["protocol"]["fewshot_seed"] == 1234
    assert all("stderr_method" in s and s["protocol"]["scoring"] == "loglikelihood" for s in dlm["scores"])


def test_samples_files_match_lm_eval_and_load_with_datasets(both):
    import datasets

    theirs, ours, their_dir, our_dir, _ = both
    for task in LEAVES:
        (their_file,) = their_dir.glob(f"samples_{task}_*.jsonl")
        (our_file,) = our_dir.glob(f"samples_{task}_*.jsonl")
        their_rows = [json.loads(line) for line in their_file.read_text().splitlines()]
        our_rows = [json.loads(line) for line in our_file.read_text().splitlines()]
        assert len(our_rows) == 4 and [set(r) for r in our_rows] == [set(r) for r in their_rows]
        for mine, other in zip(our_rows, their_rows):
            for key in ("doc_id", "doc", "target", "arguments", "doc_hash", "prompt_hash", "target_hash", "acc"):
                assert mine[key] == other[key], (task, key)
        # lm-eval sanitises samples so that `datasets` loads them; it reads its results files the same way
        assert datasets.load_dataset("json", data_files=str(our_file), split="train").num_rows == 4
    (results_file,) = our_dir.glob("results_*.json")
    loaded = datasets.load_dataset("json", data_files=str(results_file), split="train")
    assert loaded["results"][0]["dlm_tfns"]["acc,none"] == ours["results"]["dlm_tfns"]["acc,none"]
    assert not list(our_dir.parent.glob(".partial-*"))  # the staging folder is gone


def test_writer_scrubs_secrets_and_refuses_log_samples_without_output_path(tmp_path, monkeypatch):
    from dlm.harness_tasks.lm_eval_files import HarnessOutput, new_tracker, write_files
    from dlm.settings import eval_config
    from dlm.store.records import as_record

    secret = "s3cr3t-value-0123456789"
    monkeypatch.setenv("DLM_TEST_API_KEY", secret)
    with pytest.raises(UserError, match="--output_path"):
        eval_config({"model": "tiny-gpt2", "tasks": "dlm_tfns", "log_samples": True, "results_dir": str(tmp_path)})
    cfg = eval_config(
        {"model": "tiny-gpt2", "tasks": "dlm_tfns", "results_dir": str(tmp_path), "output_path": str(tmp_path / "o")}
    )
    results = {"results": {"dlm_tfns": {"acc,none": 0.5, "note": f"token {secret} and hf_{'a' * 34}"}}, "configs": {}}
    record = as_record({"run_id": "r1", "kind": "eval", "model": {"name": "tiny-gpt2", "resolved": "tiny-gpt2"}})
    (written,) = write_files(cfg, HarnessOutput(results, {}, new_tracker()), record)
    text = written.read_text()
    assert secret not in text and "hf_aaaa" not in text and json.loads(text)["dlm"]["run_id"] == "r1"
    assert written.parent == tmp_path / "o" / "tiny-gpt2"
    # FILE.json names the results file, as in lm-eval
    cfg = eval_config(
        {
            "model": "tiny-gpt2",
            "tasks": "dlm_tfns",
            "results_dir": str(tmp_path),
            "output_path": str(tmp_path / "r.json"),
        }
    )
    (written,) = write_files(cfg, HarnessOutput(results, {}, new_tracker()), record)
    assert written.parent == tmp_path and written.name.startswith("r_") and written.suffix == ".json"
