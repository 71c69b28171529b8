"""Bad input, as a table: every mistake a user can make ends in exit code 2, ONE line on stderr naming the fix,
no traceback, and nothing created on disk.

Each case runs `cli.main([...])` (or main.py's `main`) in-process with the working directory set to a fresh
tmp dir, so default output paths (runs/, checkpoints/...) land where the before/after snapshot sees them.
`{tmp}` in an argument is that directory; `setup` builds files the case needs before the snapshot is taken.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from bad_input_setups import (
    a_file,
    adapter_for_another_base_size,
    adapter_invalid_json,
    adapter_unknown_type,
    adapter_with_missing_base,
    adapter_without_base,
    checkpoint_without_tokenizer,
    config_is_a_list,
    config_without_weights,
    corrupt_record,
    empty_dir,
    empty_weights,
    half_checkpoint,
    malformed_plan,
    model_without_chat_template,
    non_empty_output,
    pickled_checkpoint,
    plan_bad_seeds,
    plan_from_unknown,
    plan_not_mapping,
    plan_not_utf8,
    plan_sharing_output_dir,
    plan_with_bad_rates,
    plan_with_typo,
    record_with_wrong_types,
    truncated_weights,
)

import main as seed_main
from dlm import cli

DEMO_PLAN = str(Path(__file__).resolve().parent.parent / "plans" / "demo.yaml")
TINY = "tiny-gpt2"
IMDB = "stanfordnlp/imdb"
TRAIN_OK = ["--model", TINY, "--dataset", IMDB, "--max_steps", "1"]  # a valid training command to vary
TRAIN_CKPT = ["train", "--model", "{tmp}/ckpt", "--dataset", IMDB, "--max_steps", "1"]  # a setup's checkpoint
EVAL_CKPT = ["eval", "--model", "{tmp}/ckpt", "--tasks", "dlm_fpb"]


@dataclass
class Case:
    id: str
    argv: list[str]
    fix: str  # regex the one stderr line must match (case-insensitive): the hint that names the fix
    setup: Callable[[Path], None] | None = None
    entry: str = "dlm"  # "dlm" = cli.main, "main.py" = main.main


CASES = [
    # --- train: data ---
    Case("train-unknown-dataset", ["train", "--model", TINY, "--dataset", "imbd"], r"did you mean.*stanfordnlp/imdb"),
    Case(
        "train-unknown-dataset-checked-before-the-model-loads",
        ["train", "--model", "./checkpoints/none", "--dataset", "imbd"],
        r"did you mean.*stanfordnlp/imdb",
    ),
    Case(
        "train-unknown-config",
        ["train", "--model", TINY, "--dataset", "nyu-mll/glue", "--dataset_config", "colaa"],
        r"cola",
    ),
    Case(
        "train-configs-mismatch",
        ["train", "--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--dataset_configs", "None"],
        r"one config per dataset",
    ),
    Case(
        "train-rates-mismatch",
        [
            "train",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "0.5",
        ],
        r"one rate per dataset",
    ),
    Case(
        "train-rate-negative",
        [
            "train",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "0.7",
            "-0.3",
        ],
        r"positive",
    ),
    Case(
        "train-rate-zero",
        [
            "train",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "0",
            "1",
        ],
        r"positive",
    ),
    Case(
        "train-rate-nan",
        [
            "train",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "nan",
            "1",
        ],
        r"positive",
    ),
    Case(
        "train-rate-not-number",
        [
            "train",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "lots",
            "1",
        ],
        r"not a number",
    ),
    Case("train-no-data", ["train", "--model", TINY, "--max_steps", "1"], r"--dataset"),
    Case(
        "train-offline-no-snapshot",
        [*["train", *TRAIN_OK], "--data-dir", "{tmp}/empty"],
        r"offline|snapshot",
        empty_dir,
    ),
    Case("train-fraction-zero", ["train", *TRAIN_OK, "--data_fraction", "0"], r"\(0, 1\]"),
    Case("train-fraction-above-one", ["train", *TRAIN_OK, "--data_fraction", "1.5"], r"\(0, 1\]"),
    # --- train: numbers ---
    Case("train-steps-zero", ["train", "--model", TINY, "--dataset", IMDB, "--max_steps", "0"], r"max_steps"),
    Case("train-batch-zero", ["train", *TRAIN_OK, "--batch_size", "0"], r"batch_size"),
    Case("train-length-negative", ["train", *TRAIN_OK, "--max_length", "-8"], r"max_length"),
    Case(
        "train-length-beyond-positions",
        ["train", *TRAIN_OK, "--max_length", "4096"],
        r"max_length.*1024|1024.*max_length",
    ),
    Case("train-lr-negative", ["train", *TRAIN_OK, "--learning_rate", "-0.1"], r"learning_rate"),
    Case("train-steps-not-int", ["train", "--model", TINY, "--dataset", IMDB, "--max_steps", "ten"], r"max.steps"),
    Case("train-unknown-option", ["train", *TRAIN_OK, "--max_stepz", "3"], r"no such option.*max_stepz"),
    Case("train-unknown-mode", ["train", *TRAIN_OK, "--mode", "finetune"], r"--mode (pretrain|sft)"),
    # --- train: model and output dir ---
    Case(
        "train-misspelled-alias",
        ["train", "--model", "tiny-gtp2", "--dataset", IMDB, "--max_steps", "1"],
        r"did you mean.*tiny-gpt2",
    ),
    Case(
        "train-missing-checkpoint",
        ["train", "--model", "./checkpoints/none", "--dataset", IMDB, "--max_steps", "1"],
        r"not found",
    ),
    Case("train-checkpoint-without-weights", TRAIN_CKPT, r"weights|safetensors", config_without_weights),
    Case(
        "train-output-not-empty",
        ["train", *TRAIN_OK, "--output_dir", "{tmp}/out"],
        r"--resume.*--overwrite",
        non_empty_output,
    ),
    Case(
        "train-resume-half-checkpoint",
        ["train", *TRAIN_OK, "--output_dir", "{tmp}/out", "--resume"],
        r"no complete checkpoint",
        half_checkpoint,
    ),
    Case(
        "train-adapter-without-base",
        ["train", "--model", "{tmp}/adapter", "--dataset", IMDB, "--max_steps", "1"],
        r"base",
        adapter_without_base,
    ),
    # --- eval ---
    # --- chat templates ---
    Case(
        "eval-chat-template-model-has-none",
        ["eval", "--model", "{tmp}/ckpt", "--tasks", "dlm_fpb_gen", "--chat-template", "default"],
        r"no chat template.*FILE\.jinja",
        model_without_chat_template,
    ),
    Case(
        "eval-chat-template-unknown-name",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb_gen", "--chat-template", "tool_use"],
        r"no chat template named 'tool_use'.*default",
    ),
    Case(
        "eval-chat-template-file-missing",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb_gen", "--chat-template", "{tmp}/chat.jinja"],
        r"not found",
    ),
    Case(
        "eval-multiturn-without-template",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb_gen", "--fewshot-as-multiturn"],
        r"needs --chat-template",
    ),
    Case(
        "train-chat-template-model-has-none",
        [
            "train",
            "--model",
            "{tmp}/ckpt",
            "--dataset",
            IMDB,
            "--mode",
            "sft",
            "--max_steps",
            "1",
            "--chat-template",
            "default",
        ],
        r"no chat template",
        model_without_chat_template,
    ),
    Case("train-chat-template-pretrain", ["train", *TRAIN_OK, "--chat-template", "default"], r"--mode sft"),
    Case(
        "run-chat-template-model-has-none",
        ["run", "--model", "{tmp}/ckpt", "--dataset", IMDB, "--max_steps", "1", "--chat-template", "default"],
        r"no chat template",
        model_without_chat_template,
    ),
    # --- API models ---
    Case(
        "eval-api-key-missing",
        ["eval", "--model", "openai:gpt-4o-2024-08-06", "--tasks", "dlm_fpb_gen"],
        r"\$OPENAI_API_KEY",
    ),
    Case(
        "eval-api-key-env-missing",
        [
            "eval",
            "--model",
            "openai-compatible:m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--api-key-env",
            "DLM_TEST_NO_SUCH_KEY",
            "--tasks",
            "dlm_fpb_gen",
        ],
        r"\$DLM_TEST_NO_SUCH_KEY",
    ),
    Case(
        "eval-api-loglikelihood-task",
        ["eval", "--model", "openai-compatible:m", "--base-url", "http://127.0.0.1:9/v1", "--tasks", "dlm_fpb"],
        r"twin dlm_fpb_gen",
    ),
    Case("eval-api-no-base-url", ["eval", "--model", "openai-compatible:m", "--tasks", "dlm_fpb_gen"], r"--base-url"),
    Case(
        "eval-base-url-without-api-model",
        ["eval", "--model", TINY, "--base-url", "http://127.0.0.1:9/v1", "--tasks", "dlm_fpb_gen"],
        r"API model",
    ),
    Case(
        "eval-api-chat-template",
        [
            "eval",
            "--model",
            "openai-compatible:m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--chat-template",
            "default",
            "--tasks",
            "dlm_fpb_gen",
        ],
        r"drop --chat-template",
    ),
    Case(
        "eval-concurrency-zero",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb_gen", "--concurrency", "0"],
        r"--concurrency",
    ),
    Case(
        "run-api-model-training",
        [
            "run",
            "--model",
            "openai-compatible:m",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--dataset",
            IMDB,
            "--max_steps",
            "1",
            "--tasks",
            "dlm_imdb_gen",
        ],
        r"cannot be trained.*--evaluation_only",
    ),
    Case("eval-misspelled-task", ["eval", "--model", TINY, "--tasks", "dlm_fbp"], r"did you mean.*dlm_fpb"),
    Case("eval-no-tasks", ["eval", "--model", TINY], r"--tasks"),
    Case("eval-misspelled-alias", ["eval", "--model", "gtp2", "--tasks", "dlm_fpb"], r"did you mean.*'gpt2'"),
    Case("eval-missing-checkpoint", ["eval", "--model", "{tmp}/ckpt-gone", "--tasks", "dlm_fpb"], r"not found"),
    Case(
        "eval-adapter-missing",
        ["eval", "--model", TINY, "--peft", "{tmp}/no-adapter", "--tasks", "dlm_fpb"],
        r"adapter.*not found",
    ),
    Case(
        "eval-adapter-base-missing",
        ["eval", "--model", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"not found",
        adapter_with_missing_base,
    ),
    Case("eval-negative-shots", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--num_fewshot", "-1"], r"num_fewshot"),
    Case("eval-limit-zero", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--limit", "0"], r"--limit"),
    Case(
        "eval-code-without-opt-in", ["eval", "--model", TINY, "--tasks", "dlm_bigcodebench"], r"--allow-code-execution"
    ),
    # --- run ---
    Case("run-misspelled-task-before-training", ["run", *TRAIN_OK, "--tasks", "dlm_imbd"], r"did you mean.*dlm_imdb"),
    Case(
        "run-rates-mismatch",
        [
            "run",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "1",
            "2",
            "3",
        ],
        r"one rate per dataset",
    ),
    Case("run-negative-steps", ["run", "--model", TINY, "--dataset", IMDB, "--max_steps", "-5"], r"max_steps"),
    Case(
        "run-code-without-opt-in",
        ["run", "--model", TINY, "--max_steps", "0", "--tasks", "dlm_bigcodebench"],
        r"--allow-code-execution",
    ),
    # --- report ---
    Case(
        "report-unknown-format",
        ["report", "--runs", "{tmp}/runs", "--format", "xml"],
        r"table.*markdown|format",
        corrupt_record,
    ),
    Case(
        "report-unknown-model",
        ["report", "--runs", "{tmp}/runs", "--against", "gpt-5"],
        r"did you mean|gpt-4",
        corrupt_record,
    ),
    Case("report-only-corrupt-record", ["report", "--runs", "{tmp}/runs"], r"JSON|corrupt|no .*record", corrupt_record),
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
    Case(
        "data-show-gated-without-token",
        ["data", "show", "yale-nlp/FinanceMath", "--data-dir", "{tmp}/empty"],
        r"HF_TOKEN|token",
        empty_dir,
    ),
    Case(
        "data-show-offline-no-snapshot",
        ["data", "show", IMDB, "--data-dir", "{tmp}/empty"],
        r"offline|snapshot",
        empty_dir,
    ),
    Case(
        "data-overlap-misspelled-task",
        ["data", "overlap", "FinGPT/fingpt-sentiment-train", "dlm_fbp"],
        r"did you mean.*dlm_fpb",
    ),
    Case(
        "data-overlap-misspelled-train",
        ["data", "overlap", "FinGPT/fingpt-sentimnt-train", "dlm_fpb"],
        r"did you mean.*FinGPT/fingpt-sentiment-train",
    ),
    Case(
        "data-overlap-eval-only-as-train",
        ["data", "overlap", "AdaptLLM/finance-tasks:FPB", "dlm_fpb"],
        r"evaluation-only.*second argument",
    ),
    # --- main.py (the seed plan's flags) ---
    Case(
        "main-misspelled-dataset",
        ["--model", TINY, "--dataset", "imbd", "--max_steps", "1"],
        r"did you mean.*stanfordnlp/imdb",
        entry="main.py",
    ),
    Case(
        "main-rates-mismatch",
        [
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "nyu-mll/glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "0.5",
        ],
        r"one rate per dataset",
        entry="main.py",
    ),
    Case(
        "main-rate-not-number",
        ["--model", TINY, "--datasets", IMDB, "nyu-mll/glue", "--mixture_rates", "a", "b"],
        r"mixture_rates",
        entry="main.py",
    ),
    Case(
        "main-negative-steps", ["--model", TINY, "--dataset", IMDB, "--max_steps", "-1"], r"max_steps", entry="main.py"
    ),
    Case(
        "main-fraction-above-one",
        ["--model", TINY, "--dataset", IMDB, "--data_fraction", "2"],
        r"\(0, 1\]",
        entry="main.py",
    ),
    Case("train-max-length-one", ["train", *TRAIN_OK, "--max_length", "1"], r"--max_length"),
    Case("run-max-length-one", ["run", *TRAIN_OK, "--max_length", "1"], r"--max_length"),
    Case("train-checkpoint-without-tokenizer", TRAIN_CKPT, r"tokenizer", checkpoint_without_tokenizer),
    Case("eval-checkpoint-without-tokenizer", EVAL_CKPT, r"tokenizer", checkpoint_without_tokenizer),
    Case("train-pickled-weights", TRAIN_CKPT, r"--allow_pickle", pickled_checkpoint),
    Case("eval-pickled-weights", EVAL_CKPT, r"--allow_pickle", pickled_checkpoint),
    Case(
        "train-output-is-results-dir",
        ["train", *TRAIN_OK, "--output_dir", "{tmp}/empty", "--results-dir", "{tmp}/empty"],
        r"separate directories",
        empty_dir,
    ),
    # numbers out of range
    Case("train-seed-negative", ["train", *TRAIN_OK, "--seed", "-1"], r"--seed.*2\^32"),
    Case("train-seed-too-large", ["train", *TRAIN_OK, "--seed", "4294967296"], r"--seed.*2\^32"),
    Case("eval-seed-negative", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--seed", "-3"], r"--seed"),
    Case("main-seed-negative", ["--model", TINY, "--dataset", IMDB, "--seed", "-1"], r"--seed", entry="main.py"),
    Case("eval-limit-inf", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--limit", "inf"], r"finite"),
    Case("eval-limit-nan", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--limit", "nan"], r"--limit"),
    Case(
        "eval-limit-fractional-count",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--limit", "2.5"],
        r"whole number",
    ),
    Case("run-limit-inf", ["run", *TRAIN_OK, "--limit", "inf"], r"finite"),
    Case(
        "run-eval-only-limit-inf",
        ["run", "--model", TINY, "--max_steps", "0", "--tasks", "dlm_fpb", "--limit", "inf"],
        r"finite",
    ),
    Case(
        "train-rate-huge",
        [
            "train",
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "1e308",
            "1",
        ],
        r"rates are relative",
    ),
    Case(
        "main-rate-huge",
        [
            "--model",
            TINY,
            "--datasets",
            IMDB,
            "glue",
            "--dataset_configs",
            "None",
            "sst2",
            "--mixture_rates",
            "1e308",
            "1",
        ],
        r"rates are relative",
        entry="main.py",
    ),
    Case("train-batch-huge", ["train", *TRAIN_OK, "--batch_size", "100000000"], r"beyond any real run"),
    Case(
        "train-accumulation-huge",
        ["train", *TRAIN_OK, "--gradient_accumulation_steps", "999999999"],
        r"beyond any real run",
    ),
    Case("train-steps-huge", ["train", *TRAIN_OK[:-1], "1000000000"], r"beyond any real run"),
    Case(
        "eval-batch-huge",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--eval_batch_size", "100000000"],
        r"beyond any real run",
    ),
    Case("eval-batch-zero", ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--eval_batch_size", "0"], r"positive"),
    Case("train-lora-rank-huge", ["train", *TRAIN_OK, "--lora", "--lora_r", "1000000"], r"--lora_r"),
    Case("train-lora-rank-zero", ["train", *TRAIN_OK, "--lora", "--lora_r", "0"], r"--lora_r"),
    Case("train-lora-dropout-one", ["train", *TRAIN_OK, "--lora", "--lora_dropout", "1.5"], r"--lora_dropout"),
    Case("train-warmup-negative", ["train", *TRAIN_OK, "--warmup_steps", "-2"], r"--warmup_steps"),
    Case("train-lr-inf", ["train", *TRAIN_OK, "--learning_rate", "inf"], r"--learning_rate"),
    Case("train-resume-and-overwrite", ["train", *TRAIN_OK, "--resume", "--overwrite"], r"pick one"),
    Case(
        "eval-bootstrap-negative",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--bootstrap_iters", "-1"],
        r"bootstrap",
    ),
    # directories and paths
    Case("train-results-dir-is-file", ["train", *TRAIN_OK, "--results-dir", "{tmp}/afile"], r"is a file", a_file),
    Case("train-output-dir-is-file", ["train", *TRAIN_OK, "--output_dir", "{tmp}/afile"], r"is a file", a_file),
    Case(
        "train-results-dir-under-a-file",
        ["train", *TRAIN_OK, "--results-dir", "{tmp}/afile/runs"],
        r"cannot be created",
        a_file,
    ),
    Case(
        "eval-results-dir-is-file",
        ["eval", "--model", TINY, "--tasks", "dlm_fpb", "--results-dir", "{tmp}/afile"],
        r"is a file",
        a_file,
    ),
    Case("run-results-dir-is-file", ["run", *TRAIN_OK, "--results-dir", "{tmp}/afile"], r"is a file", a_file),
    Case(
        "plan-results-dir-is-file",
        ["plan", str(Path(__file__).resolve().parent.parent / "plans" / "demo.yaml"), "--results-dir", "{tmp}/afile"],
        r"is a file",
        a_file,
    ),
    Case(
        "train-peft-style-adapter-invalid-json",
        ["train", "--model", "{tmp}/adapter", "--dataset", IMDB, "--max_steps", "1"],
        r"unreadable",
        adapter_invalid_json,
    ),
    Case("demo-results-dir-is-file", ["demo", "--results-dir", "{tmp}/afile"], r"is a file", a_file),
    Case("demo-plot-not-png", ["demo", "--plot", "{tmp}/x.jpg", "--results-dir", "{tmp}/demo"], r"\.png"),
    Case(
        "demo-plot-under-a-file",
        ["demo", "--plot", "{tmp}/afile/x.png", "--results-dir", "{tmp}/demo"],
        r"is a file",
        a_file,
    ),
    Case("report-plot-not-png", ["report", "--plot", "{tmp}/x.jpg"], r"\.png"),
    Case("report-plot-under-a-file", ["report", "--plot", "{tmp}/afile/x.png"], r"is a file", a_file),
    Case("report-output-without-html", ["report", "--output", "{tmp}/x.html"], r"--format html"),
    Case("report-output-not-html", ["report", "--format", "html", "--output", "{tmp}/x.txt"], r"\.html"),
    Case("plan-set-empty-model", ["plan", DEMO_PLAN, "--dry-run", "--set", "model="], r"--set model=.*needs a value"),
    Case("plan-data-dir-missing", ["plan", DEMO_PLAN, "--dry-run", "--data-dir", "{tmp}/nowhere"], r"not a folder"),
    Case(
        "eval-data-dir-missing",
        ["eval", "--model", TINY, "--tasks", "dlm_tfns", "--data-dir", "{tmp}/nowhere"],
        r"not a folder",
    ),
    Case(
        "main-results-dir-is-file",
        ["--model", TINY, "--dataset", IMDB, "--results_dir", "{tmp}/afile"],
        r"is a file",
        a_file,
        entry="main.py",
    ),
    # plan files
    Case("plan-not-utf8", ["plan", "{tmp}/plan.yaml", "--dry-run"], r"UTF-8|utf-8|encoding", plan_not_utf8),
    Case(
        "plan-shared-output-dir",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"both write output_dir",
        plan_sharing_output_dir,
    ),
    Case("plan-bad-seeds", ["plan", "{tmp}/plan.yaml", "--dry-run"], r"seeds", plan_bad_seeds),
    Case("plan-from-unknown-run", ["plan", "{tmp}/plan.yaml", "--dry-run"], r"from: nowhere", plan_from_unknown),
    Case("plan-not-a-mapping", ["plan", "{tmp}/plan.yaml", "--dry-run"], r"mapping", plan_not_mapping),
    # broken model and adapter dirs
    Case("train-config-is-a-list", TRAIN_CKPT, r"config\.json", config_is_a_list),
    Case("eval-config-is-a-list", EVAL_CKPT, r"config\.json", config_is_a_list),
    Case("train-truncated-weights", TRAIN_CKPT, r"truncated", truncated_weights),
    Case("eval-truncated-weights", EVAL_CKPT, r"truncated", truncated_weights),
    Case("eval-empty-weights", EVAL_CKPT, r"truncated|empty", empty_weights),
    Case(
        "eval-adapter-invalid-json",
        ["eval", "--model", TINY, "--peft", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"unreadable",
        adapter_invalid_json,
    ),
    Case(
        "eval-adapter-unknown-type",
        ["eval", "--model", TINY, "--peft", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"LoRA adapters only",
        adapter_unknown_type,
    ),
    Case(
        "train-adapter-unknown-type",
        ["train", "--model", "{tmp}/adapter", "--dataset", IMDB, "--max_steps", "1"],
        r"LoRA adapters only",
        adapter_unknown_type,
    ),
    Case(
        "eval-adapter-for-another-base-size",
        ["eval", "--model", "{tmp}/ckpt", "--peft", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"another size",
        adapter_for_another_base_size,
    ),
    Case(
        "report-only-malformed-record", ["report", "--results-dir", "{tmp}/runs"], r"bad\.json", record_with_wrong_types
    ),
    Case("main-unknown-flag", ["--model", TINY, "--dataset", IMDB, "--max_stepz", "3"], r"max_stepz", entry="main.py"),
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
    assert len(CASES) >= 120 and commands >= {"train", "eval", "run", "report", "plan", "data", "main.py"}
