"""Security: remote code runs only when asked, secrets never reach disk or logs, weights are safetensors only.

The secret test plants tokens/keys in the environment, runs a real tiny training (full and LoRA) and a real
evaluation through the CLI, then greps every byte written (checkpoints, training_args.json, trainer state, adapter
config, model cards, run records) and the captured stdout/stderr.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlm import cli
from dlm.errors import UserError

PLANTED = {  # distinctive values, so a hit can only be a leak
    "HF_TOKEN": "hf_PlantedHubToken0123456789abcdef",
    "HUGGING_FACE_HUB_TOKEN": "hf_PlantedLegacyToken0123456789",
    "OPENAI_API_KEY": "sk-PlantedOpenAIKey0123456789abcdef",
    "ANTHROPIC_API_KEY": "sk-ant-PlantedAnthropicKey012345",
    "WANDB_API_KEY": "PlantedWandbKey0123456789abcdef01",
}
# Trainer state needed for an exact --resume: pickles, but never model weights (nor the training arguments: JSON)
RESUME_STATE = {"optimizer.pt", "scheduler.pt", "scaler.pt"}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


# --- trust_remote_code ------------------------------------------------------------------------------------
def make_custom_code_model(directory: Path, tiny_model_dir: Path, marker: Path) -> Path:
    """A checkpoint whose config maps to a modeling file that leaves `marker` behind when it is executed."""
    directory.mkdir(parents=True)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, directory / name)
    (directory / "custom_gpt.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(marker)!r}).write_text('remote code ran')\n"
        "from transformers import GPT2Config, GPT2LMHeadModel\n\n"
        "class CustomConfig(GPT2Config):\n    model_type = 'custom_gpt'\n\n"
        "class CustomModel(GPT2LMHeadModel):\n    config_class = CustomConfig\n"
    )
    config = json.loads((tiny_model_dir / "config.json").read_text())
    config.update(
        model_type="custom_gpt",
        architectures=["CustomModel"],
        auto_map={"AutoConfig": "custom_gpt.CustomConfig", "AutoModelForCausalLM": "custom_gpt.CustomModel"},
    )
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture()
def custom_code_model(tmp_path, tiny_model_dir):
    marker = tmp_path / "remote-code-ran"
    return make_custom_code_model(tmp_path / "custom", tiny_model_dir, marker), marker


def test_remote_code_is_refused_without_opt_in(custom_code_model):
    from dlm.trainers.models import load_model

    model_dir, marker = custom_code_model
    with pytest.raises(UserError, match="--trust-remote-code"):
        load_model(str(model_dir))
    assert not marker.exists(), "the model's own code ran without --trust-remote-code"


def test_remote_code_runs_only_with_opt_in(custom_code_model):
    from dlm.trainers.models import load_model

    model_dir, marker = custom_code_model
    model, _ = load_model(str(model_dir), trust_remote_code=True)
    assert marker.exists() and type(model).__name__ == "CustomModel"


def test_cli_eval_refuses_remote_code_with_one_line(custom_code_model, tmp_path, capfd):
    model_dir, marker = custom_code_model
    code, _, err = run_cli(
        capfd,
        "eval",
        "--model",
        str(model_dir),
        "--tasks",
        "dlm_fpb",
        "--limit",
        "2",
        "--results-dir",
        str(tmp_path / "runs"),
    )
    assert code == 2 and "--trust-remote-code" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not (tmp_path / "runs").exists()


def test_opt_in_runs_remote_code_and_is_recorded(custom_code_model, tmp_path, capfd):
    model_dir, marker = custom_code_model
    code, _, err = run_cli(
        capfd,
        "eval",
        "--model",
        str(model_dir),
        "--trust-remote-code",
        "--tasks",
        "dlm_fpb",
        "--limit",
        "2",
        "--results-dir",
        str(tmp_path / "runs"),
    )
    assert code == 0, err[-2000:]
    record = json.loads(next((tmp_path / "runs").glob("*.json")).read_text())
    assert marker.exists() and record["eval"]["config"]["trust_remote_code"] is True


# --- code-executing tasks ----------------------------------------------------------------------------------------
def test_lm_eval_itself_refuses_the_code_task_without_confirmation(tiny_model_dir):
    """`lm_eval --tasks dlm_bigcodebench --include_path dlm/harness_tasks` also needs --confirm_run_unsafe_code."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from dlm.harness_tasks.catalog import TASKS_DIR, catalog

    assert catalog()["dlm_bigcodebench"].unsafe_code
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    model = HFLM(pretrained=str(tiny_model_dir), device="cpu", batch_size=1)
    with pytest.raises(ValueError, match="confirm_run_unsafe_code"):
        lm_eval.simple_evaluate(model=model, tasks=["dlm_bigcodebench"], task_manager=manager, limit=1)


# --- helpers ----------------------------------------------------------------------------------------------
def run_cli(capfd, *argv: str) -> tuple[int, str, str]:
    """cli.main in-process; (exit code, stdout, stderr). Exit code 0 when main returns normally."""
    capfd.readouterr()
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capfd.readouterr()
    return code, out, err


# --- secrets never reach disk or logs; weights are safetensors -------------------------------------------------
TWEETS = "zeroshot/twitter-financial-news-sentiment"
SMALL = [
    "--max_steps",
    "2",
    "--save_steps",
    "1",
    "--batch_size",
    "2",
    "--gradient_accumulation_steps",
    "1",
    "--max_length",
    "64",
]


def _written_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_secrets_stay_out_of_files_and_output_and_weights_are_safetensors(tmp_path, monkeypatch, capfd, tiny_model_dir):
    """One real train->eval cycle (LoRA SFT, merged copy) and one full pretraining, with secrets planted."""
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    runs, cycle, full = tmp_path / "runs", tmp_path / "cycle", tmp_path / "full"
    commands = [
        [
            "run",
            "--model",
            "tiny-gpt2",
            "--dataset",
            TWEETS,
            "--mode",
            "sft",
            "--lora",
            "--merge_lora",
            *SMALL,
            "--tasks",
            "dlm_tfns",
            "--limit",
            "4",
            "--output_dir",
            str(cycle),
            "--results-dir",
            str(runs),
        ],
        [
            "train",
            "--model",
            "tiny-gpt2",
            "--dataset",
            "stanfordnlp/imdb",
            "--mode",
            "pretrain",
            *SMALL,
            "--output_dir",
            str(full),
            "--results-dir",
            str(runs),
        ],
    ]
    printed = ""
    for argv in commands:
        code, out, err = run_cli(capfd, *argv)
        assert code == 0, err[-2000:]
        printed += out + err
    files = _written_files(tmp_path)
    names = {p.name for p in files}
    assert {"training_args.json", "trainer_state.json", "adapter_config.json", "README.md"} <= names
    assert "training_args.bin" not in names  # dlm never unpickles, so it keeps no pickled arguments
    records = [json.loads(p.read_text()) for p in runs.glob("*.json")]
    assert len(records) == 2 and printed.strip()
    assert all(r["train"]["config"]["trust_remote_code"] is False for r in records)  # recorded, off by default

    leaked = [
        (str(p.relative_to(tmp_path)), name)
        for p in files
        for name, value in PLANTED.items()
        if value.encode() in p.read_bytes()
    ]
    leaked += [("stdout/stderr", name) for name, value in PLANTED.items() if value in printed]
    assert leaked == [], f"secrets leaked: {leaked}"
    print(f"secrets: {len(PLANTED)} planted, {len(files)} files + stdout/stderr scanned, 0 leaked")

    model_dirs = [cycle, cycle / "merged", full, *cycle.glob("checkpoint-*"), *full.glob("checkpoint-*")]
    assert len(model_dirs) >= 5
    for directory in model_dirs:
        assert list(directory.glob("*.safetensors")), f"no safetensors weights in {directory}"
    pickles = [
        p
        for p in files
        if p.suffix in PICKLE_SUFFIXES and p.name not in RESUME_STATE and not p.name.startswith("rng_state")
    ]
    assert pickles == [], f"pickled weights written: {pickles}"


def test_secrets_recognised_by_shape_are_scrubbed_from_every_file(tmp_path, monkeypatch, capfd, tiny_model_dir):
    """Tokens that are not in this environment, only in a path the user chose (an output dir named after a key)."""
    shaped = {"hf": "hf_" + "S" * 34, "openai": "sk-proj-" + "T" * 40, "anthropic": "sk-ant-api03-" + "U" * 30}
    for name in PLANTED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    out = tmp_path / ("run-" + "-".join(shaped.values()))
    code, _, err = run_cli(
        capfd,
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        TWEETS,
        "--mode",
        "sft",
        *SMALL,
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
    )
    assert code == 0, err[-2000:]
    files = _written_files(tmp_path)
    assert any(p.name == "training_args.json" for p in files) and any(p.name == "README.md" for p in files)
    leaked = [
        (str(p.relative_to(tmp_path)), kind)
        for p in files
        for kind, value in shaped.items()
        if value.encode() in p.read_bytes()
    ]
    assert leaked == [], f"secrets leaked: {leaked}"


def test_model_generated_code_cannot_read_the_parents_secrets(tmp_path):
    """A child of a process that called forget_secrets() finds the secret neither in its own environment nor in
    /proc/<parent>/environ (the kernel's copy of the parent's initial environment)."""
    import subprocess
    import sys

    probe = (
        "import os; block = open(f'/proc/{os.getppid()}/environ', 'rb').read(); "
        "print(block.count(b'PlantedSecret'), 'PLANTED_API_KEY' in os.environ)"
    )
    script = (
        "import subprocess, sys\n"
        "from dlm.secrets import forget_secrets\n"
        f"before = subprocess.run([sys.executable, '-c', {probe!r}], capture_output=True, text=True).stdout\n"
        "forget_secrets()\n"
        f"after = subprocess.run([sys.executable, '-c', {probe!r}], capture_output=True, text=True).stdout\n"
        "print(before.strip(), '|', after.strip())\n"
    )
    env = {**__import__("os").environ, "PLANTED_API_KEY": "PlantedSecret0123456789"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=60,
    )
    before, after = done.stdout.strip().split(" | ")
    assert before == "1 True"  # without it, the child reads the key both ways
    assert after == "0 False", done.stderr[-1000:]


def test_evaluate_forgets_secrets_before_code_tasks_run(tiny_model_dir, tmp_path, monkeypatch):
    import os

    import dlm.harness_tasks.evaluate as evaluation
    from dlm.secrets import secret_names
    from dlm.settings import eval_config

    for name in secret_names():  # forget_secrets() pops them: let monkeypatch put them back afterwards
        monkeypatch.setenv(name, os.environ[name])
    monkeypatch.setenv("PLANTED_API_KEY", "PlantedSecret0123456789")
    seen = {}

    def harness(model, tokenizer, tasks, manager, cfg, log_samples=False, chat=False, **_lm_eval_options):
        seen["key"] = os.environ.get("PLANTED_API_KEY")
        raise KeyboardInterrupt  # what the harness would do is not the point

    monkeypatch.setattr(evaluation, "run_harness", harness)
    cfg = eval_config(
        dict(
            model="tiny-gpt2", tasks=["dlm_fpb"], limit=2, allow_code_execution=True, results_dir=str(tmp_path / "runs")
        )
    )
    with pytest.raises(KeyboardInterrupt):
        evaluation.evaluate(cfg)
    assert seen == {"key": None}
