"""Offline, hermetic test setup. Runs before any Hugging Face import.

- HF_HUB_OFFLINE / HF_DATASETS_OFFLINE: a hub call fails at once instead of hanging ~25-50 s.
- A fresh HF_HOME, DLM_CACHE and LM_HARNESS_CACHE_PATH per session: nothing leaks in from the machine.
- DLM_DATA_DIR=samples/: every dataset id resolves to its miniature snapshot.
- `tiny_model_dir`: the tiny GPT-2 (own BPE tokenizer on samples/ text), built once per session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="dlm-tests-"))
os.environ.update(
    {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(_SESSION_TMP / "hf_home"),
        "DLM_CACHE": str(_SESSION_TMP / "dlm_cache"),
        "LM_HARNESS_CACHE_PATH": str(_SESSION_TMP / "lm_eval_cache"),
        "DLM_DATA_DIR": str(ROOT / "samples"),
        "TOKENIZERS_PARALLELISM": "false",
        "WANDB_MODE": "disabled",
    }
)
os.environ.pop("DLM_VERBOSE", None)  # tests assert on dlm's quiet default, whatever the developer's shell sets
for secret in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "WANDB_API_KEY"):
    os.environ.pop(secret, None)

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    return ROOT / "samples"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """Path of the tiny GPT-2 (the `tiny-gpt2` alias), built once per test session."""
    from dlm.trainers.tiny import tiny_gpt2_path

    return tiny_gpt2_path()


@pytest.fixture()
def results_dir(tmp_path) -> Path:
    return tmp_path / "runs"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_TMP, ignore_errors=True)
