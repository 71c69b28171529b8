"""Secrets never leave: planted by value (environment, the --api-key-env variable, the Hugging Face token file, a
database URL), by shape (keys that are in no variable) and in a URL's password, then every file dlm writes and
everything it prints is grepped, across train, eval (local and API against a local server), plan --jobs 2
--verbose and every report format. Model-generated code gets a clean environment and cannot read dlm's.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from api_support import ScriptedServer
from train_support import ROOT, TWEETS

from dlm import cli

BY_VALUE = {  # in the environment, not shaped like any key: only scrubbing by value finds them
    "DB_PASSWORD": "correct-horse-battery-staple-42",
    "MY_LLM": "llm-gateway-credential-0xC0FFEE",  # named by --api-key-env: no hint in the name
    "OPENAI_API_KEY": "plain-openai-value-with-no-shape-77",
}
URL_PASSWORD = "Pg-Secret-Pass-9876"  # inside DATABASE_URL: a URL's password is a secret wherever it sits
TOKEN_FILE = "tokenfile-secret-value-31337"  # $HF_HOME/token, as `huggingface-cli login` leaves it
BY_SHAPE = {  # in no variable: found by their shape
    "hf": "hf_" + "Q" * 34,
    "openai": "sk-proj-" + "R" * 40,
    "github": "ghp_" + "G" * 36,
    "aws": "AKIA" + "Z" * 16,
}
BASE_URL_PASSWORD = "UrlPassw0rd-Secret-55"  # --base-url http://user:PASS@host


def all_planted() -> dict[str, str]:
    return {
        **BY_VALUE,
        "url password": URL_PASSWORD,
        "token file": TOKEN_FILE,
        "base-url": BASE_URL_PASSWORD,
        **BY_SHAPE,
    }


@pytest.fixture()
def planted(tmp_path, monkeypatch):
    for name, value in BY_VALUE.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DATABASE_URL", f"postgres://admin:{URL_PASSWORD}@db.internal:5432/study")
    home = tmp_path / "hf_home"
    home.mkdir()
    (home / "token").write_text(TOKEN_FILE)
    monkeypatch.setenv("HF_HOME", str(home))
    return all_planted()


def run(capfd, *argv: str) -> tuple[int, str]:
    capfd.readouterr()
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as done:
        code = done.code
    out, err = capfd.readouterr()
    return code, out + err


def _bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data  # outcomes files are gzipped JSON


def leaks(root: Path, printed: str, planted: dict[str, str], theirs=("token",)) -> list[tuple[str, str]]:
    """Planted values in the files under `root` (but `theirs`: the token file, a probe's own report) or `printed`."""
    found = [
        (str(p.relative_to(root)), name)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name not in theirs
        for name, value in planted.items()
        if value.encode() in _bytes(p)
    ]
    return found + [("stdout/stderr", name) for name, value in planted.items() if value in printed]


# --- scrub itself ---------------------------------------------------------------------------------------------------
def test_scrub_by_value_by_shape_and_in_urls(planted, monkeypatch):
    from dlm.secrets import forget_secrets, scrub, secret_names, treat_as_secret

    treat_as_secret("MY_LLM")
    planted = {k: v for k, v in planted.items() if k != "base-url"}  # a secret only inside its URL: below
    text = (
        " | ".join(planted.values())
        + f" | http://user:{BASE_URL_PASSWORD}@host/v1 | Authorization: Bearer abcdefgh12345"
    )
    clean = scrub({"k": [text]})["k"][0]
    assert not [name for name, value in planted.items() if value in clean], clean
    assert "http://user:***@host/v1" in clean and "Bearer ***" in clean
    assert (
        scrub("basic approach with sixteen words, macro-F1 = 0.7")
        == "basic approach with sixteen words, macro-F1 = 0.7"
    )
    for name in secret_names():  # forget_secrets() pops them: let monkeypatch put them back afterwards
        monkeypatch.setenv(name, os.environ[name])
    forget_secrets()  # gone from the environment (generated code is about to run), still scrubbed
    assert "DB_PASSWORD" not in os.environ and scrub(BY_VALUE["DB_PASSWORD"]) == "***"


def test_csv_cells_that_start_a_formula_and_markdown_cells_are_neutralised(tmp_path, capsys):
    from dlm.results.report import render_report
    from dlm.store.records import write_record

    runs = tmp_path / "runs"
    hostile = "=HYPERLINK(1) | <img src=x onerror=alert(1)> [click](javascript:alert)"  # no "/": a name
    write_record(
        runs,
        {
            "run_id": "r1",
            "kind": "eval",
            "status": "ok",
            "created_at": "2025-01-01T00:00:00",
            "model": {"name": hostile},
            "approach": "zero-shot",
            "eval": {
                "config": {},
                "tasks": ["dlm_fpb"],
                "scores": [
                    {"task": "dlm_fpb", "metric": "acc", "value": 0.5, "stderr": 0.1, "n": 20, "num_fewshot": 0}
                ],
            },
        },
    )
    text = render_report(runs, fmt="csv")
    cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
    assert cells and not any(cell.startswith(("=", "+", "-", "@")) for cell in cells)
    assert any(cell.lower().startswith("'=hyperlink") for cell in cells)  # the report lowercases names
    markdown = render_report(runs, fmt="markdown")
    assert "<img" not in markdown and "&lt;img" in markdown and "\\[click\\]" in markdown
    assert all(
        line.count(" | ") == line.count("|") - 2 - line.count("\\|")
        for line in markdown.splitlines()
        if line.startswith("| ")
    )


# --- model-generated code: a clean environment; dlm's own environment out of reach ---------------------------------
PROBE = """
import json, os, sys
found = {"env": dict(os.environ), "home_token": None}
try:
    found["parent_environ"] = open(f"/proc/{os.getppid()}/environ", "rb").read().decode("latin-1")
except OSError as err:
    found["parent_environ"] = f"denied {err.errno}"
for guess in (os.path.expanduser("~/.cache/huggingface/token"), os.path.join(os.environ.get("HF_HOME", "/nonexistent"), "token")):
    if os.path.isfile(guess):
        found["home_token"] = open(guess).read()
json.dump(found, open(REPORT, "w"))
"""


def _as_unprivileged() -> list[str]:
    """Root reads any process's /proc/<pid>/environ (dumpable or not): the parent is run as `nobody` there."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("root without setpriv: cannot run the check as an ordinary user")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_generated_code_gets_a_clean_environment_and_cannot_read_dlm_s(tmp_path):
    """What harness_tasks/code/utils.py does for every program (local or API model, or lm_eval itself): the
    program sees no secret in its environment, no token file location, and not its parent's /proc environ."""
    # under /tmp itself: pytest's tmp_path is private to root, the unprivileged parent could not reach it
    scratch = Path(tempfile.mkdtemp(prefix="dlm-probe-"))
    scratch.chmod(0o777)
    report = scratch / "found.json"
    program = PROBE.replace("REPORT", repr(str(report)))
    parent = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from dlm.harness_tasks.code.utils import passes_tests\n"
        f"passes_tests({program!r}, 30)\n"
    )
    prefix = _as_unprivileged()
    python = "/usr/bin/python3" if prefix and Path("/usr/bin/python3").exists() else sys.executable
    hf_home = scratch / "hf_home"
    hf_home.mkdir()
    (hf_home / "token").write_text(TOKEN_FILE)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_HOME": str(hf_home),
        "HOME": str(scratch),
        "DATABASE_URL": f"postgres://admin:{URL_PASSWORD}@db.internal/x",
        **BY_VALUE,
    }
    try:
        done = subprocess.run([*prefix, python, "-c", parent], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        found = json.loads(report.read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert found["parent_environ"].startswith("denied"), "the program read its parent's environment"
    assert found["home_token"] is None
    visible = json.dumps(found["env"])
    assert not [name for name, value in all_planted().items() if value in visible]
    assert set(found["env"]) <= {
        "PATH",
        "HOME",
        "TMPDIR",
        "MPLBACKEND",
        "PYTHONDONTWRITEBYTECODE",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
    }


def test_an_api_code_task_runs_generated_code_without_the_keys(tmp_path):
    """openai-compatible + dlm_bigcodebench + --allow-code-execution: the API key must stay in dlm (requests need
    it), the program the server sent must not see it, nor the other secrets, nor the token file."""
    report = tmp_path / "found.json"
    completion = "    return None\n" + PROBE.replace("REPORT", repr(str(report)))
    server = ScriptedServer(content=completion)
    home = tmp_path / "hf_home"
    home.mkdir()
    (home / "token").write_text(TOKEN_FILE)
    env = {
        **os.environ,
        **BY_VALUE,
        "PYTHONPATH": str(ROOT),
        "HF_HOME": str(home),
        "DLM_CACHE": str(tmp_path / "cache"),
        "DATABASE_URL": f"postgres://admin:{URL_PASSWORD}@db.internal/x",
    }
    command = [sys.executable, "-m", "dlm", "eval", "--model", "openai-compatible:scripted", "--base-url"]
    command += [server.url, "--api-key-env", "MY_LLM", "--tasks", "dlm_bigcodebench", "--limit", "1"]
    command += ["--allow-code-execution", "--results-dir", str(tmp_path / "runs")]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    finally:
        server.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    assert server.authorizations == [f"Bearer {BY_VALUE['MY_LLM']}"]  # the key was used, as it must be
    found = json.loads(report.read_text())
    visible = json.dumps(found["env"]) + str(found["home_token"])
    assert not [name for name, value in all_planted().items() if value in visible]
    if os.geteuid() != 0:  # root reads any /proc/<pid>/environ: checked as `nobody` in the test above
        assert found["parent_environ"].startswith("denied")
    assert leaks(tmp_path, done.stdout + done.stderr, all_planted(), theirs=("token", "found.json")) == []


# --- the whole tour -------------------------------------------------------------------------------------------------
def test_planted_secrets_reach_no_file_and_no_output(planted, tmp_path, monkeypatch, capfd, tiny_model_dir):
    """train, eval (local, API with a password in --base-url and the key in --api-key-env, an API error that quotes
    the key), plan --jobs 2 --verbose with key-shaped values in the plan file, every report format."""
    from dlm.trainers.tiny import tiny_gpt2_path

    monkeypatch.chdir(tmp_path)
    cache = tmp_path / "cache"  # the API response cache is grepped too; the tiny model is linked in, not rebuilt
    cache.mkdir()
    (cache / tiny_gpt2_path().name).symlink_to(tiny_gpt2_path())
    monkeypatch.setenv("DLM_CACHE", str(cache))
    runs = tmp_path / "runs"
    printed = ""
    small = ["--max_steps", "1", "--save_steps", "1", "--batch_size", "2", "--gradient_accumulation_steps", "1"]
    out = tmp_path / f"ckpt-{BY_SHAPE['hf']}"  # a path holding a key: records, cards, logs name it
    code, text = run(
        capfd,
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        TWEETS,
        "--mode",
        "sft",
        *small,
        "--max_length",
        "32",
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
    )
    assert code == 0, text[-2000:]
    printed += text
    code, text = run(
        capfd,
        "eval",
        "--model",
        str(out),
        "--tasks",
        "dlm_tfns",
        "--limit",
        "2",
        "--system-instruction",
        f"Answer. {BY_SHAPE['openai']}",
        "--results-dir",
        str(runs),
    )
    assert code == 0, text[-2000:]
    printed += text

    server = ScriptedServer(["401-echo"])
    try:
        url = server.url.replace("http://", f"http://user:{BASE_URL_PASSWORD}@")
        api = [
            "eval",
            "--model",
            "openai-compatible:scripted",
            "--base-url",
            url,
            "--api-key-env",
            "MY_LLM",
            "--tasks",
            "dlm_tfns_gen",
            "--limit",
            "2",
            "--results-dir",
            str(runs),
        ]
        code, text = run(capfd, *api)  # the gateway answers 401 quoting the key: the run stops, one line
        assert code == 2 and "HTTP 401" in text and "***" in text, text[-2000:]
        printed += text
        code, text = run(capfd, *api)
        assert code == 0, text[-2000:]
        printed += text
    finally:
        server.stop()
    # the URL's user:password goes as HTTP Basic (requests' rule: it takes the place of the Bearer key)
    assert server.authorizations[-1].startswith("Basic ")

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "defaults: {model: tiny-gpt2, tasks: dlm_tfns, limit: 2}\n"
        "runs:\n"
        f"  - {{name: a, approach: zero-shot, system_instruction: 'Be brief {BY_SHAPE['github']}'}}\n"
        f"  - {{name: b, approach: zero-shot, system_instruction: 'Key {BY_SHAPE['aws']} {BY_VALUE['DB_PASSWORD']}'}}\n"
    )
    code, text = run(capfd, "--verbose", "plan", str(plan), "--jobs", "2", "--results-dir", str(runs))
    assert code == 0, text[-3000:]
    printed += text
    assert len(list((runs / "logs").glob("*.log"))) == 2

    for fmt in ("table", "markdown", "csv", "json", "html"):
        code, text = run(capfd, "report", "--results-dir", str(runs), "--format", fmt)
        assert code == 0, text[-2000:]
        printed += text
    code, text = run(capfd, "report", "--results-dir", str(runs), "--detail", "--plot", str(tmp_path / "r.png"))
    assert code == 0, text[-2000:]
    printed += text

    records = list(runs.glob("*.json"))
    assert len(records) >= 6 and (runs / "report.html").is_file()
    found = leaks(tmp_path, printed, planted, theirs=("token", "plan.yaml"))
    lines = [line for line in printed.splitlines() if any(v in line for v in planted.values())]
    assert found == [], f"secrets leaked: {found} {lines[:5]}"
    api_record = next(json.loads(p.read_text()) for p in records if '"approach": "api"' in p.read_text())
    assert api_record["api"]["url"].startswith("http://user:***@127.0.0.1")  # which server, without its password
    print(
        f"secrets: {len(planted)} planted, {sum(1 for p in tmp_path.rglob('*') if p.is_file())} files + output, 0 leaked"
    )
