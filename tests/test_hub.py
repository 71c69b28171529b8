"""An unreachable Hub (a local server on 127.0.0.1 that refuses, or accepts and never answers, named by HF_ENDPOINT)
is found by one request and reported in one line naming --data-dir and HF_HUB_OFFLINE; a model already in the
local cache still loads, without the libraries' retries. "did you mean" never suggests the name typed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_support import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from hub_unreachable import SilentEndpoint, refusing_port  # noqa: E402  (the benchmark's endpoints)

# `dlm ARGV`, then (on stdout) which heavy libraries the process had imported by the time it ended
RUN = """
import sys
from dlm import cli
try:
    cli.main(sys.argv[1:])
finally:
    print("imported:", sorted(m for m in ("torch", "transformers", "lm_eval") if m in sys.modules), flush=True)
"""


def dlm(argv: list[str], endpoint: str, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    offline = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "DLM_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in offline}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home / "hf"), PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", RUN, *argv], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Retrying" not in done.stdout + done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["data", "show", "stanfordnlp/imdb", "-n", "1"],
        ["run", "--model", "tiny-gpt2", "--dataset", "stanfordnlp/imdb", "--max_steps", "1"],
    ],
    ids=["data-show", "run"],
)
def test_a_refusing_hub_is_one_line_naming_data_dir_and_hf_hub_offline(argv, tmp_path):
    done = dlm(argv, f"http://127.0.0.1:{refusing_port()}", tmp_path, tmp_path)
    line = one_error_line(done)
    assert "stanfordnlp/imdb" in line and "unreachable" in line and "--data-dir" in line and "HF_HUB_OFFLINE" in line
    assert "imported: []" in done.stdout  # said before torch, transformers and lm-eval were imported (seconds)


def test_a_silent_hub_is_asked_once_and_a_valid_alias_is_not_suggested_to_itself(tmp_path, samples_dir):
    server = SilentEndpoint()
    try:
        done = dlm(
            ["eval", "--model", "qwen2-0.5b", "--tasks", "dlm_fpb", "--data-dir", str(samples_dir)],
            f"http://127.0.0.1:{server.port}",
            tmp_path,
            tmp_path,
        )
        line = one_error_line(done)
        assert len(server.held) == 1  # one check, not one attempt per file and retry
    finally:
        server.close()
    assert "imported: []" in done.stdout  # said before torch, transformers and lm-eval were imported (seconds)
    assert "qwen2-0.5b" in line and "Qwen/Qwen2-0.5B" in line and "not in the local cache" in line
    assert "did you mean" not in line and "HF_HUB_OFFLINE" in line and "unreachable" in line
    assert not list(tmp_path.glob("runs*"))  # nothing written


def _cached_hub_model(home: Path, tiny: Path, repo: str = "someone/tiny") -> str:
    """The tiny model laid out as the Hugging Face cache stores a downloaded hub model."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    folder = home / "hf" / "hub" / f"models--{repo.replace('/', '--')}"
    shutil.copytree(tiny, folder / "snapshots" / sha)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(sha)
    return repo


def test_a_cached_model_loads_from_the_cache_when_the_hub_is_silent(tmp_path, samples_dir, tiny_model_dir):
    repo = _cached_hub_model(tmp_path, tiny_model_dir)
    server = SilentEndpoint()
    try:
        done = dlm(
            ["eval", "--model", repo, "--tasks", "dlm_fpb", "--limit", "2", "--data-dir", str(samples_dir)],
            f"http://127.0.0.1:{server.port}",
            tmp_path,
            tmp_path,
        )
        assert len(server.held) == 1
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and "unreachable" in warnings[0] and "local cache" in warnings[0], done.stderr
    assert "Retrying" not in done.stdout + done.stderr
    assert "scoring 6 log-likelihood requests" in done.stdout


@pytest.mark.parametrize(
    "name, suggested",
    [("qwen2-0.5b", None), ("gpt2", None), ("qwen2-05b", "qwen2-0.5b"), ("tiny-gtp2", "tiny-gpt2")],
)
def test_did_you_mean_never_names_the_name_typed(name, suggested):
    from dlm.trainers.models import ALIASES, not_cached

    message = not_cached(name, ALIASES.get(name, name), "the Hub is offline (HF_HUB_OFFLINE)")
    if suggested is None:
        assert "did you mean" not in message and "alias of" in message
    else:
        assert f"did you mean '{suggested}'?" in message


def test_suggest_leaves_out_the_typed_name():
    from dlm.errors import suggest

    message = str(suggest("gpt2", ["gpt2", "gpt2-medium"], "model"))
    assert "'gpt2'?" not in message and "'gpt2' or" not in message and "did you mean 'gpt2-medium'?" in message
    assert "did you mean 'gpt2'" in str(suggest("gtp2", ["gpt2"], "model"))
