"""API responses are validated before they count, every request ends in bounded time, and a bad --base-url is
refused: against a real misbehaving server on 127.0.0.1 (tests/api_support.py ScriptedServer, no model behind it).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import BAD_ANSWERS, ScriptedServer, chat_answer
from train_support import ROOT

TASK = "dlm_tfns_gen"


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    target = tmp_path / "dlm_cache"
    target.mkdir()
    monkeypatch.setenv("DLM_CACHE", str(target))
    return target


@pytest.fixture()
def scripted():
    made = []

    def make(script=None, **kw):
        made.append(ScriptedServer(script, **kw))
        return made[-1]

    yield make
    for server in made:
        server.stop()


def dlm_eval(server_url: str, results: Path, *extra: str, limit: int = 2) -> int:
    from dlm import cli

    argv = ["eval", "--model", "openai-compatible:scripted", "--base-url", server_url, "--tasks", TASK]
    argv += ["--limit", str(limit), "--results-dir", str(results), *extra]
    try:
        cli.main(argv)
    except SystemExit as done:
        return done.code
    return 0


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]


def cached(cache_dir: Path) -> list[dict]:
    db = cache_dir / "api" / "responses.sqlite"
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        return [json.loads(row[0]) for row in connection.execute("SELECT response FROM responses")]


# --- the checks themselves -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(BAD_ANSWERS))
def test_each_malformed_200_answer_is_a_problem(kind):
    from dlm.harness_tasks.api_client import answer_problem

    try:
        body = json.loads(BAD_ANSWERS[kind])
    except ValueError:
        return  # not JSON at all: the client never gets as far as this check (test below)
    assert answer_problem(body, "openai-compatible") is not None
    assert answer_problem(chat_answer(), "openai-compatible") is None


def test_anthropic_answers_are_checked_too():
    from dlm.harness_tasks.api_client import answer_problem

    good = {"type": "message", "content": [{"type": "text", "text": "positive"}], "usage": {"input_tokens": 3}}
    assert answer_problem(good, "anthropic") is None
    for bad in (
        {"type": "error", "error": {"type": "overloaded_error"}},
        {**good, "content": []},
        {**good, "content": [{"type": "tool_use", "id": "x"}]},
        {**good, "usage": {"output_tokens": -1}},
    ):
        assert answer_problem(bad, "anthropic") is not None


class DictCache:
    def __init__(self, entries=None):
        self.entries = dict(entries or {})

    def get(self, key):
        return self.entries.get(key)

    def put(self, key, value):
        self.entries[key] = value


@pytest.mark.parametrize("kind", [*sorted(BAD_ANSWERS), "drop"])
def test_a_bad_answer_is_retried_then_counted_once_and_cached_only_when_good(kind, scripted):
    from dlm.harness_tasks.api_client import Job, Sender

    server = scripted([kind])
    cache = DictCache()
    sender = Sender(server.url + "/chat/completions", {}, cache, max_wait_s=30, provider="openai-compatible")
    job = Job("k", {"messages": [{"role": "user", "content": "hi"}]})
    sender.run([job])
    assert server.steps == [kind, "ok"], "the bad answer is asked for again"
    assert job.response == chat_answer() and cache.entries == {"k": chat_answer()}
    stats = sender.stats.to_dict()
    assert stats["answered"] == 1 and stats["retries"] == 1 and stats["tokens_in"] == 7
    assert stats["rejected_answers"] == (0 if kind in ("drop", "malformed-json", "html") else 1)


def test_a_malformed_answer_in_the_cache_is_asked_for_again(scripted):
    """A cache filled by an older dlm (which cached `choices: []`) does not answer: the request is sent."""
    from dlm.harness_tasks.api_client import Job, Sender

    server = scripted()
    cache = DictCache({"k": {"choices": []}})
    sender = Sender(server.url + "/chat/completions", {}, cache, provider="openai-compatible")
    job = Job("k", {"messages": []})
    sender.run([job])
    assert server.arrived == 1 and sender.stats.cache_hits == 0 and cache.entries["k"] == chat_answer()


# --- end to end: dlm eval against the misbehaving server ---------------------------------------------------------
def test_malformed_200_answers_are_never_scored_and_the_run_is_scored_from_good_ones(scripted, cache_dir, tmp_path):
    """One bad answer then a good one for each of 8 requests: every bad kind is retried, none scored or cached."""
    kinds = [*sorted(BAD_ANSWERS), "drop"]
    script = [step for kind in kinds for step in (kind, "ok")]
    server = scripted(script)
    results = tmp_path / "runs"
    assert dlm_eval(server.url, results, limit=len(kinds)) == 0
    (record,) = records(results)
    api = record["api"]
    assert record["status"] == "ok" and api["answered"] == len(kinds) and api["retries"] == len(kinds)
    assert api["rejected_answers"] == len(kinds) - 3  # drop, malformed JSON and HTML are not JSON answers
    assert api["tokens_in"] == 7 * len(kinds) and api["tokens_out"] == len(kinds)  # never a negative count
    assert server.arrived == 2 * len(kinds)
    assert cached(cache_dir) == [chat_answer()] * len(kinds)
    scores = {(s["task"], s["metric"]): s for s in record["eval"]["scores"]}
    assert scores[(TASK, "missing")]["value"] == 0.0  # every scored answer is the server's real "positive"


def test_a_rerun_after_the_server_recovers_sends_the_requests_again(scripted, cache_dir, tmp_path, capsys):
    broken = scripted(["null-content"] * 50)
    results = tmp_path / "runs"
    assert dlm_eval(broken.url, results, "--max-wait", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not an answer" in err[0] and "run the same command again" in err[0]
    assert records(results)[-1]["status"] == "incomplete" and cached(cache_dir) == []
    recovered = scripted()
    assert dlm_eval(recovered.url, results) == 0
    assert recovered.arrived == 2 and records(results)[-1]["status"] == "ok"


def test_a_drip_feeding_server_ends_at_max_wait(scripted, cache_dir, tmp_path):
    """One byte every 5 s (status line included): each read is well within any read timeout, so only a deadline
    per request ends it. The whole answer would take ~20 minutes; the run ends incomplete at --max-wait."""
    server = scripted(["drip"] * 10, drip_s=5.0)
    results = tmp_path / "runs"
    command = [sys.executable, "-m", "dlm", "eval", "--model", "openai-compatible:scripted", "--base-url"]
    command += [server.url, "--tasks", TASK, "--limit", "1", "--results-dir", str(results), "--max-wait", "3"]
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,  # a hang fails here, not in 20 minutes
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "no complete answer within" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert records(results)[-1]["status"] == "incomplete" and cached(cache_dir) == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/v1",
        "http://",
        "http://127.0.0.1:99999/v1",
        "http://exa mple.com/v1",
        "127.0.0.1:8000/v1",
        "",
    ],
)
def test_a_base_url_that_is_not_http_is_refused_with_one_line(url, tmp_path, capsys, cache_dir):
    results = tmp_path / "runs"
    assert dlm_eval(url, results) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "--base-url" in err[0]
    assert not results.exists()
