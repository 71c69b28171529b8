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

import bad_input_broken as broken
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
EVAL_TINY = ["eval", "--model", TINY, "--tasks", "dlm_fpb"]
TWEETS = "zeroshot/twitter-financial-news-sentiment"
TRAIN_TWEETS = [
    "train",
    "--model",
    TINY,
    "--dataset",
    TWEETS,
    "--mode",
    "sft",
    "--max_steps",
    "1",
    "--data-dir",
    "{tmp}/data",
]
EVAL_TWEETS = ["eval", "--model", TINY, "--tasks", "dlm_tfns", "--data-dir", "{tmp}/data"]
LONG = "n" * 300


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

# --- issue 27: models that load with a warning at most, checked before any scoring or training ---
ROBUST_CASES = [
    Case(
        "eval-two-weight-matrices-missing",
        EVAL_CKPT,
        r"2 weight tensor.*missing.*random",
        broken.two_weight_matrices_missing,
    ),
    Case("train-two-weight-matrices-missing", TRAIN_CKPT, r"missing.*random", broken.two_weight_matrices_missing),
    Case("eval-unexpected-weight", EVAL_CKPT, r"h\.7\.mlp.*no place|no place.*h\.7", broken.unexpected_weight),
    Case("eval-nan-weights", EVAL_CKPT, r"NaN.*earlier checkpoint", broken.nan_weights),
    Case("train-one-infinite-weight", TRAIN_CKPT, r"c_proj.*1 NaN or infinite", broken.one_infinite_weight),
    Case(
        "eval-config-narrower-than-weights", EVAL_CKPT, r"does not fit its weights", broken.config_narrower_than_weights
    ),
    Case(
        "train-config-with-more-layers", TRAIN_CKPT, r"h\.2\..*missing|missing.*h\.2\.", broken.config_with_more_layers
    ),
    Case(
        "eval-config-with-other-vocabulary",
        EVAL_CKPT,
        r"wte.*\(4096, 64\).*\(5000, 64\)",
        broken.config_with_other_vocabulary,
    ),
    Case("eval-unknown-model-type", EVAL_CKPT, r"model_type 'gpt9'", broken.unknown_model_type),
    Case("train-unknown-model-type", TRAIN_CKPT, r"model_type 'gpt9'", broken.unknown_model_type),
    Case("eval-tokenizer-without-eos", EVAL_CKPT, r"eos_token", broken.tokenizer_without_eos),
    Case("train-tokenizer-without-eos", TRAIN_CKPT, r"eos_token", broken.tokenizer_without_eos),
    Case("eval-tokenizer-json-cut", EVAL_CKPT, r"tokenizer.*corrupt.*tokenizer\.json", broken.tokenizer_json_cut),
    Case(
        "train-tokenizer-json-of-another-shape",
        TRAIN_CKPT,
        r"tokenizer.*cannot be loaded",
        broken.tokenizer_json_of_another_shape,
    ),
    Case(
        "eval-chat-template-syntax-error",
        [*EVAL_CKPT[:-1], "dlm_fpb_gen", "--chat-template", "default"],
        r"syntax error at line 1",
        broken.chat_template_syntax_error,
    ),
    Case(
        "eval-chat-template-that-raises",
        [*EVAL_CKPT[:-1], "dlm_fpb_gen", "--chat-template", "default"],
        r"fails on a plain conversation.*no user turn",
        broken.chat_template_that_raises,
    ),
    Case(
        "train-chat-template-that-raises",
        [*TRAIN_CKPT, "--mode", "sft", "--chat-template", "default"],
        r"fails on a plain conversation",
        broken.chat_template_that_raises,
    ),
    Case(
        "eval-adapter-for-absent-modules",
        ["eval", "--model", TINY, "--peft", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"q_proj.*does not have",
        broken.adapter_for_absent_modules,
    ),
    Case(
        "train-adapter-for-absent-modules",
        ["train", "--model", "{tmp}/adapter", "--dataset", IMDB, "--max_steps", "1"],
        r"does not have",
        broken.adapter_for_absent_modules,
    ),
    Case(
        "eval-adapter-weights-cut",
        ["eval", "--model", TINY, "--peft", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"adapter_model\.safetensors is truncated",
        broken.adapter_weights_cut,
    ),
    Case(
        "eval-adapter-weights-for-other-modules",
        ["eval", "--model", TINY, "--peft", "{tmp}/adapter", "--tasks", "dlm_fpb"],
        r"weights do not match",
        broken.adapter_weights_for_other_modules,
    ),
    # --- data rows: file, row and column named ---
    Case(
        "train-label-out-of-range",
        TRAIN_TWEETS,
        r"sent_train\.csv.*row 3, column 'label' is 7",
        broken.label_out_of_range,
    ),
    Case("eval-label-out-of-range", EVAL_TWEETS, r"row 3, column 'label' is 7", broken.label_out_of_range),
    Case("train-label-negative", TRAIN_TWEETS, r"column 'label' is -3", broken.label_negative),
    Case("train-label-a-word", TRAIN_TWEETS, r"row 3, column 'label' is 'positive'", broken.label_a_word),
    Case("eval-label-a-word", EVAL_TWEETS, r"row 3, column 'label' is 'positive'", broken.label_a_word),
    Case("train-label-blank", TRAIN_TWEETS, r"row 3, column 'label' is null", broken.label_blank),
    Case("eval-label-blank", EVAL_TWEETS, r"row 3, column 'label' is null", broken.label_blank),
    Case("train-label-fraction", TRAIN_TWEETS, r"row 3, column 'label' is 1\.5", broken.label_fraction),
    Case("train-text-blank", TRAIN_TWEETS, r"row 3, column 'text' is null", broken.text_blank),
    Case("eval-text-blank", EVAL_TWEETS, r"row 3, column 'text' is null", broken.text_blank),
    Case(
        "data-show-label-out-of-range",
        ["data", "show", TWEETS, "--data-dir", "{tmp}/data", "-n", "8"],
        r"row 3, column 'label' is 7",
        broken.label_out_of_range,
    ),
    Case(
        "train-parquet-text-null",
        ["train", "--model", TINY, "--dataset", IMDB, "--mode", "sft", "--max_steps", "1", "--data-dir", "{tmp}/data"],
        r"train-00000-of-00001\.parquet.*row 3, column 'text' is null",
        broken.parquet_text_null,
    ),
    Case(
        "eval-parquet-text-null",
        ["eval", "--model", TINY, "--tasks", "dlm_imdb", "--data-dir", "{tmp}/data"],
        r"row 3, column 'text' is null",
        broken.parquet_text_null,
    ),
    Case(
        "train-jsonl-not-utf8",
        [
            "train",
            "--model",
            TINY,
            "--dataset",
            "LLukas22/fiqa",
            "--mode",
            "sft",
            "--max_steps",
            "1",
            "--data-dir",
            "{tmp}/data",
        ],
        r"train\.jsonl.*row \d+, column '\w+' is not UTF-8",
        broken.jsonl_not_utf8,
    ),
    Case(
        "eval-jsonl-not-utf8",
        ["eval", "--model", TINY, "--tasks", "dlm_fiqa_qa", "--data-dir", "{tmp}/data"],
        r"fiqa.*row \d+.*not UTF-8",
        broken.jsonl_not_utf8,
    ),
    Case(
        "data-show-jsonl-not-utf8",
        ["data", "show", "LLukas22/fiqa", "--data-dir", "{tmp}/data", "-n", "50"],
        r"row \d+.*not UTF-8",
        broken.jsonl_not_utf8,
    ),
    # --- bounded work ---
    Case("eval-bootstrap-huge", [*EVAL_TINY, "--bootstrap_iters", "1000000000"], r"beyond any real run"),
    Case(
        "plan-set-bootstrap-huge",
        ["plan", DEMO_PLAN, "--dry-run", "--set", "bootstrap_iters=1000000000"],
        r"bootstrap_iters.*beyond",
    ),
    Case(
        "plan-20000-seeds",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"20,000 seeds; at most 1,000",
        broken.plan_with_20000_seeds,
    ),
    Case(
        "plan-20000-runs",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"20,000 runs.*at most 10,000",
        broken.plan_of_20000_runs,
    ),
    Case("plan-jobs-zero", ["plan", DEMO_PLAN, "--jobs", "0"], r"--jobs.*got 0"),
    Case("plan-jobs-negative", ["plan", DEMO_PLAN, "--jobs", "-3"], r"--jobs.*got -3"),
    Case("plan-jobs-huge", ["plan", DEMO_PLAN, "--jobs", "100000"], r"--jobs"),
    Case("plan-gpus-per-run-zero", ["plan", DEMO_PLAN, "--gpus-per-run", "0"], r"--gpus-per-run"),
    Case(
        "report-against-empty",
        ["report", "--results-dir", "{tmp}/runs", "--against", ""],
        r"--against is empty",
        corrupt_record,
    ),
    Case("report-results-dir-empty", ["report", "--results-dir", ""], r"--results-dir is empty"),
    Case("eval-results-dir-empty", [*EVAL_TINY, "--results-dir", ""], r"--results-dir is empty"),
    Case("data-show-n-negative", ["data", "show", IMDB, "-n", "-5"], r"-n.*got -5"),
    Case("data-show-n-zero", ["data", "show", IMDB, "-n", "0"], r"-n.*got 0"),
    Case("data-show-n-huge", ["data", "show", IMDB, "-n", "100000000"], r"-n.*1,000"),
    Case("eval-limit-below-one-document", [*EVAL_TINY, "--limit", "1e-9"], r"less than one document"),
    Case(
        "run-limit-below-one-document",
        ["run", "--model", TINY, "--max_steps", "0", "--tasks", "dlm_fpb", "--limit", "0.000001"],
        r"less than one document",
    ),
    Case("plan-set-limit-nan", ["plan", DEMO_PLAN, "--dry-run", "--set", "limit=.nan"], r"--limit.*finite"),
    Case(
        "plan-misspelt-config",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"colaa.*did you mean 'cola'",
        broken.plan_with_misspelt_config,
    ),
    Case(
        "plan-two-runs-one-name",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"named 'a'",
        broken.plan_with_two_runs_of_one_name,
    ),
    Case(
        "plan-key-is-a-list",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"line 3.*not a list",
        broken.plan_with_a_list_as_key,
    ),
    Case(
        "plan-slurm-time-not-a-number",
        ["plan", "{tmp}/plan.yaml", "--dry-run"],
        r"slurm: time_min.*whole number",
        broken.plan_with_bad_slurm_time,
    ),
    Case(
        "report-output-is-a-directory",
        ["report", "--results-dir", "{tmp}/runs", "--format", "html", "--output", "{tmp}/page.html"],
        r"is a directory",
        broken.results_dir_as_html,
    ),
    Case("train-learning-rate-huge", ["train", *TRAIN_OK, "--learning_rate", "1000000"], r"learning_rate.*beyond"),
    Case("train-lora-alpha-huge", ["train", *TRAIN_OK, "--lora", "--lora_alpha", "100000000"], r"lora_alpha.*beyond"),
    # a name of 300 characters: no file system holds it, and every file call fails with ENAMETOOLONG
    Case(
        "eval-model-name-too-long",
        ["eval", "--model", "{tmp}/" + LONG, "--tasks", "dlm_fpb"],
        r"too long|longer than 255",
    ),
    Case(
        "train-output-name-too-long", ["train", *TRAIN_OK, "--output_dir", "{tmp}/" + LONG + "/x"], r"longer than 255"
    ),
    Case("report-results-dir-name-too-long", ["report", "--results-dir", "{tmp}/" + LONG], r"too long|longer than 255"),
    Case("report-plot-name-too-long", ["report", "--plot", "{tmp}/" + LONG + ".png"], r"longer than 255"),
    Case(
        "eval-chat-template-name-too-long",
        [*EVAL_TINY[:-2], "--tasks", "dlm_fpb_gen", "--chat-template", "{tmp}/" + LONG + ".jinja"],
        r"too long|longer than 255",
    ),
    Case("data-show-data-dir-name-too-long", ["data", "show", IMDB, "--data-dir", "{tmp}/" + LONG], r"longer than 255"),
    Case("plan-file-name-too-long", ["plan", "{tmp}/" + LONG + ".yaml"], r"too long|cannot read plan"),
]
CASES += ROBUST_CASES


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
