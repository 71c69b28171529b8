"""Bad input, as a table: every mistake a user can make ends in exit code 2, ONE line on stderr naming the fix,
no traceback, and nothing created on disk.

Each case runs `cli.main([...])` (or main.py's `main`) in-process with the working directory set to a fresh
tmp dir, so default output paths (results/runs, checkpoints/...) land where the before/after snapshot sees them.
`{tmp}` in an argument is that directory; `setup` builds files the case needs before the snapshot is taken.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

import cli
import main as seed_main

TINY = "tiny-gpt2"
IMDB = "stanfordnlp/imdb"
TRAIN_OK = ["--model", TINY, "--dataset", IMDB, "--max_steps", "1"]  # a valid training command to vary


@dataclass
class Case:
    id: str
    argv: list[str]
    fix: str  # regex the one stderr line must match (case-insensitive): the hint that names the fix
    setup: Callable[[Path], None] | None = None
    entry: str = "dlm"  # "dlm" = cli.main, "main.py" = main.main


# --- setups: files a case needs, created before the snapshot -------------------------------------------------
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
    from trainers.tiny import tiny_gpt2_path

    _write(tmp / "ckpt" / "config.json", (tiny_gpt2_path() / "config.json").read_text())


def _tiny_copy(tmp: Path, skip: tuple[str, ...]) -> Path:
    import shutil

    from trainers.tiny import tiny_gpt2_path

    target = tmp / "ckpt"
    shutil.copytree(tiny_gpt2_path(), target, ignore=shutil.ignore_patterns(*skip))
    return target


def checkpoint_without_tokenizer(tmp: Path) -> None:
    _tiny_copy(tmp, ("tokenizer*", "vocab.json", "merges.txt", "special_tokens_map.json"))


def pickled_checkpoint(tmp: Path) -> None:
    target = _tiny_copy(tmp, ("*.safetensors",))
    (target / "pytorch_model.bin").write_bytes(b"not loaded: refused before unpickling")


def adapter_without_base(tmp: Path) -> None:
    _write(tmp / "adapter" / "adapter_config.json", json.dumps({"peft_type": "LORA", "r": 8}))


def adapter_with_missing_base(tmp: Path) -> None:
    _write(tmp / "adapter" / "adapter_config.json",
           json.dumps({"peft_type": "LORA", "r": 8, "base_model_name_or_path": str(tmp / "gone-base")}))


def corrupt_record(tmp: Path) -> None:
    _write(tmp / "runs" / "20260101-000000-abcdef-eval.json", '{"run_id": "x", "eval": {"scores": [')


def malformed_plan(tmp: Path) -> None:
    _write(tmp / "plan.yaml", "runs:\n  - model: tiny-gpt2\n    dataset: [stanfordnlp/imdb\n    mode: sft\n")


def plan_with_typo(tmp: Path) -> None:
    _write(tmp / "plan.yaml", "runs:\n  - model: tiny-gpt2\n    dataset: stanfordnlp/imdb\n    max_step: 5\n")


def plan_with_bad_rates(tmp: Path) -> None:
    _write(tmp / "plan.yaml", "runs:\n  - model: tiny-gpt2\n    datasets: [stanfordnlp/imdb, nyu-mll/glue]\n"
                              "    dataset_configs: [None, sst2]\n    mixture_rates: [0.5]\n")


CASES = [
    # --- train: data ---
    Case("train-unknown-dataset", ["train", "--model", TINY, "--dataset", "imbd"], r"did you mean.*stanfordnlp/imdb"),
    Case("train-unknown-dataset-checked-before-the-model-loads",
         ["train", "--model", "./checkpoints/none", "--dataset", "imbd"], r"did you mean.*stanfordnlp/imdb"),
    Case("train-unknown-config", ["train", "--model", TINY, "--dataset", "nyu-mll/glue", "--dataset_config", "colaa"],
         r"cola"),
    Case("train-configs-mismatch", ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue",
                                    "--dataset_configs", "None"], r"one config per dataset"),
    Case("train-rates-mismatch", ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue",
                                  "--dataset_configs", "None", "sst2", "--mixture_rates", "0.5"], r"one rate per dataset"),
    Case("train-rate-negative", ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs",
                                 "None", "sst2", "--mixture_rates", "0.7", "-0.3"], r"positive"),
    Case("train-rate-zero", ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs",
                             "None", "sst2", "--mixture_rates", "0", "1"], r"positive"),
    Case("train-rate-nan", ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs",
                            "None", "sst2", "--mixture_rates", "nan", "1"], r"positive"),
    Case("train-rate-not-number", ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs",
                                   "None", "sst2", "--mixture_rates", "lots", "1"], r"not a number"),
    Case("train-no-data", ["train", "--model", TINY, "--max_steps", "1"], r"--dataset"),
    Case("train-offline-no-snapshot", [*["train", *TRAIN_OK], "--data-dir", "{tmp}/empty"], r"offline|snapshot",
         empty_dir),
    Case("train-fraction-zero", ["train", *TRAIN_OK, "--data_fraction", "0"], r"\(0, 1\]"),
    Case("train-fraction-above-one", ["train", *TRAIN_OK, "--data_fraction", "1.5"], r"\(0, 1\]"),
    # --- train: numbers ---
    Case("train-steps-zero", ["train", "--model", TINY, "--dataset", IMDB, "--max_steps", "0"], r"max_steps"),
    Case("train-batch-zero", ["train", *TRAIN_OK, "--batch_size", "0"], r"batch_size"),
    Case("train-length-negative", ["train", *TRAIN_OK, "--max_length", "-8"], r"max_length"),
    Case("train-length-beyond-positions", ["train", *TRAIN_OK, "--max_length", "4096"], r"max_length.*1024|1024.*max_length"),
    Case("train-lr-negative", ["train", *TRAIN_OK, "--learning_rate", "-0.1"], r"learning_rate"),
    Case("train-steps-not-int", ["train", "--model", TINY, "--dataset", IMDB, "--max_steps", "ten"], r"max.steps"),
    Case("train-unknown-option", ["train", *TRAIN_OK, "--max_stepz", "3"], r"no such option.*max_stepz"),
    Case("train-unknown-mode", ["train", *TRAIN_OK, "--mode", "finetune"], r"--mode (pretrain|sft)"),
    # --- train: model and output dir ---
    Case("train-misspelled-alias", ["train", "--model", "tiny-gtp2", "--dataset", IMDB, "--max_steps", "1"],
         r"did you mean.*tiny-gpt2"),
    Case("train-missing-checkpoint", ["train", "--model", "./checkpoints/none", "--dataset", IMDB, "--max_steps", "1"],
         r"not found"),
    Case("train-checkpoint-without-weights", ["train", "--model", "{tmp}/ckpt", "--dataset", IMDB, "--max_steps", "1"],
         r"weights|safetensors", config_without_weights),
    Case("train-output-not-empty", ["train", *TRAIN_OK, "--output_dir", "{tmp}/out"], r"--resume.*--overwrite",
         non_empty_output),
    Case("train-resume-half-checkpoint", ["train", *TRAIN_OK, "--output_dir", "{tmp}/out", "--resume"],
         r"no complete checkpoint", half_checkpoint),
    Case("train-adapter-without-base", ["train", "--model", "{tmp}/adapter", "--dataset", IMDB, "--max_steps", "1"],
         r"base", adapter_without_base),
    # --- eval ---
    Case("eval-misspelled-task", ["eval", "--model", TINY, "--tasks", "dlm_fbp"], r"did you mean.*dlm_fpb"),
    Case("eval-no-tasks", ["eval", "--model", TINY], r"--tasks"),
    Case("eval-misspelled-alias", ["eval", "--model", "gtp2", "--tasks", "dlm_fpb"], r"did you mean.*'gpt2'"),
    Case("eval-missing-checkpoint", ["eval", "--model", "{tmp}/ckpt-gone", "--tasks", "dlm_fpb"], r"not found"),
    Case("eval-adapter-missing", ["eval", "--model", TINY, "--peft", "{tmp}/no-adapter", "--tasks", "dlm_fpb"],
         r"adapter.*not found"),
    Case("eval-adapter-base-missing", ["eval", "--model", "{tmp}/adapter", "--tasks", "dlm_fpb"], r"not found",
         adapter_with_missing_base),
    Case("eval-negative-shots", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--num_fewshot", "-1"], r"num_fewshot"),
    Case("eval-limit-zero", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--limit", "0"], r"--limit"),
    Case("eval-code-without-opt-in", ["eval", "--model", TINY, "--tasks", "dlm_bigcodebench"],
         r"--allow-code-execution"),
    # --- run ---
    Case("run-misspelled-task-before-training", ["run", *TRAIN_OK, "--tasks", "dlm_imbd"], r"did you mean.*dlm_imdb"),
    Case("run-rates-mismatch", ["run", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs",
                                "None", "sst2", "--mixture_rates", "1", "2", "3"], r"one rate per dataset"),
    Case("run-negative-steps", ["run", "--model", TINY, "--dataset", IMDB, "--max_steps", "-5"], r"max_steps"),
    Case("run-code-without-opt-in", ["run", "--model", TINY, "--max_steps", "0", "--tasks", "dlm_bigcodebench"],
         r"--allow-code-execution"),
    # --- report ---
    Case("report-unknown-format", ["report", "--runs", "{tmp}/runs", "--format", "xml"], r"table.*markdown|format",
         corrupt_record),
    Case("report-unknown-model", ["report", "--runs", "{tmp}/runs", "--against", "gpt-5"], r"did you mean|gpt-4",
         corrupt_record),
    Case("report-only-corrupt-record", ["report", "--runs", "{tmp}/runs"], r"JSON|corrupt|no .*record",
         corrupt_record),
    Case("report-missing-runs-dir", ["report", "--runs", "{tmp}/no-runs"], r"no-runs"),
    # --- plan ---
    Case("plan-missing-file", ["plan", "{tmp}/nope.yaml"], r"nope\.yaml"),
    Case("plan-malformed-yaml", ["plan", "{tmp}/plan.yaml"], r"line \d+.*column \d+", malformed_plan),
    Case("plan-misspelled-setting", ["plan", "{tmp}/plan.yaml"], r"did you mean.*max_steps", plan_with_typo),
    Case("plan-rates-mismatch", ["plan", "{tmp}/plan.yaml", "--dry-run"], r"one rate per dataset", plan_with_bad_rates),
    # --- data ---
    Case("data-show-misspelled-id", ["data", "show", "imbd"], r"did you mean.*stanfordnlp/imdb"),
    Case("data-show-misspelled-split", ["data", "show", IMDB, "--split", "tset"], r"did you mean.*test"),
    Case("data-show-misspelled-config", ["data", "show", "nyu-mll/glue", "--config", "sst"], r"sst2"),
    Case("data-show-unknown-format", ["data", "show", IMDB, "--as", "chat"], r"raw.*pretrain.*sft|--as"),
    Case("data-show-gated-without-token", ["data", "show", "yale-nlp/FinanceMath", "--data-dir", "{tmp}/empty"],
         r"HF_TOKEN|token", empty_dir),
    Case("data-show-offline-no-snapshot", ["data", "show", IMDB, "--data-dir", "{tmp}/empty"], r"offline|snapshot",
         empty_dir),
    Case("data-overlap-misspelled-task", ["data", "overlap", "FinGPT/fingpt-sentiment-train", "dlm_fbp"],
         r"did you mean.*dlm_fpb"),
    Case("data-overlap-misspelled-train", ["data", "overlap", "FinGPT/fingpt-sentimnt-train", "dlm_fpb"],
         r"did you mean.*FinGPT/fingpt-sentiment-train"),
    Case("data-overlap-eval-only-as-train", ["data", "overlap", "AdaptLLM/finance-tasks:FPB", "dlm_fpb"],
         r"evaluation-only.*second argument"),
    # --- main.py (the seed plan's flags) ---
    Case("main-misspelled-dataset", ["--model", TINY, "--dataset", "imbd", "--max_steps", "1"],
         r"did you mean.*stanfordnlp/imdb", entry="main.py"),
    Case("main-rates-mismatch", ["--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs", "None",
                                 "sst2", "--mixture_rates", "0.5"], r"one rate per dataset", entry="main.py"),
    Case("main-rate-not-number", ["--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--mixture_rates", "a", "b"],
         r"mixture_rates", entry="main.py"),
    Case("main-negative-steps", ["--model", TINY, "--dataset", IMDB, "--max_steps", "-1"], r"max_steps",
         entry="main.py"),
    Case("main-fraction-above-one", ["--model", TINY, "--dataset", IMDB, "--data_fraction", "2"], r"\(0, 1\]",
         entry="main.py"),
    Case("train-max-length-one", ["train", *TRAIN_OK, "--max_length", "1"], r"--max_length"),
    Case("run-max-length-one", ["run", *TRAIN_OK, "--max_length", "1"], r"--max_length"),
    Case("train-checkpoint-without-tokenizer", ["train", "--model", "{tmp}/ckpt", "--dataset", IMDB,
                                                "--max_steps", "1"], r"tokenizer", checkpoint_without_tokenizer),
    Case("eval-checkpoint-without-tokenizer", ["eval", "--model", "{tmp}/ckpt", "--tasks", "dlm_fpb"], r"tokenizer",
         checkpoint_without_tokenizer),
    Case("train-pickled-weights", ["train", "--model", "{tmp}/ckpt", "--dataset", IMDB, "--max_steps", "1"],
         r"--allow_pickle", pickled_checkpoint),
    Case("eval-pickled-weights", ["eval", "--model", "{tmp}/ckpt", "--tasks", "dlm_fpb"], r"--allow_pickle",
         pickled_checkpoint),
    Case("train-output-is-results-dir", ["train", *TRAIN_OK, "--output_dir", "{tmp}/empty",
                                         "--results-dir", "{tmp}/empty"], r"separate directories", empty_dir),
    Case("main-unknown-flag", ["--model", TINY, "--dataset", IMDB, "--max_stepz", "3"], r"max_stepz",
         entry="main.py"),
]


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_entry(entry: str, argv: list[str]) -> int:
    try:
        (cli.main if entry == "dlm" else seed_main.main)(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(case: Case, tmp_path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    if case.setup:
        case.setup(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    before = snapshot(tmp_path)
    capfd.readouterr()

    code = run_entry(case.entry, argv)

    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert "Traceback" not in err + out, err[-2000:]
    assert code == 2, f"exit {code}; stderr: {err[-2000:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error:' line, got: {lines}"
    assert re.search(case.fix, lines[0], re.I), f"the message does not name the fix ({case.fix}): {lines[0]}"
    assert snapshot(tmp_path) == before, f"created: {sorted(snapshot(tmp_path) - before)}"


def test_table_is_big_enough():
    commands = {c.argv[0] if c.entry == "dlm" else "main.py" for c in CASES}
    assert len(CASES) >= 30 and commands >= {"train", "eval", "run", "report", "plan", "data", "main.py"}
