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


@pytest.fixture(autouse=True)
def signal_dispositions_put_back():
    """An in-process command that was interrupted leaves SIGINT/SIGTERM/SIGHUP ignored on its way out (as a real
    process exiting would); an ignored disposition is inherited by every process a later test starts, which would
    then keep ignoring the signal (dlm respects `nohup`). Each test gets back the dispositions it started with."""
    import signal

    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for signum, handler in saved.items():
        if handler is not None and signal.getsignal(signum) != handler:
            signal.signal(signum, handler)


@pytest.fixture(autouse=True)
def no_terminal_size_from_elsewhere(monkeypatch):
    """Table widths follow COLUMNS; a library imported by an earlier test in the same worker may have exported
    it. Each test starts without it (a test that wants a width sets its own)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("LINES", raising=False)
