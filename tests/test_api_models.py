"""API models against a real OpenAI-compatible server on 127.0.0.1 (`transformers serve` + tiny-gpt2), through a
fault-injecting proxy that counts every request (tests/api_support.py). No request leaves this machine.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from api_support import FaultProxy, Served
from train_support import ROOT

TASKS = "fin_sentiment_gen"  # 3 twins
LIMIT = "3"  # 9 requests
PLANTED = "sk-planted0123456789abcdefghijklmnop"


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    served = Served(tiny_model_dir, tmp_path_factory.mktemp("serve") / "serve.log")
    yield served
    served.stop()


@pytest.fixture()
def proxy(server, tiny_model_dir):
    made = []

    def make(faults=None, slow_s=0.3):
        made.append(FaultProxy(server.url, str(tiny_model_dir), faults, slow_s))
        return made[-1]

    yield make
    for p in made:
        p.stop()


@pytest.fixture()
def cache_dir(tmp_path, monkeypatch):
    """A private response cache per test (DLM_CACHE also holds the tiny model: keep that one)."""
    from dlm.trainers.tiny import tiny_gpt2_path

    tiny = tiny_gpt2_path()
    target = tmp_path / "dlm_cache"
    target.mkdir()
    (target / tiny.name).symlink_to(tiny)
    monkeypatch.setenv("DLM_CACHE", str(target))
    return target


def dlm_eval(*args, results: Path):
    from dlm import cli

    argv = ["eval", "--tasks", TASKS, "--limit", LIMIT, "--results-dir", str(results), *args]
    try:
        cli.main(argv)
    except SystemExit as done:
        return done.code
    return 0


def record_of(results: Path) -> dict:
    """The newest record (by creation time: two run ids of the same second sort by their random part)."""
    from dlm.store.records import load_records

    return load_records(results)[0][-1].to_dict()  # as stored


def test_eval_through_the_api_is_cached_and_a_rerun_sends_nothing(proxy, cache_dir, tmp_path, tiny_model_dir):
    live = proxy()
    results = tmp_path / "runs"
    model = f"openai-compatible:{tiny_model_dir.name}"
    assert dlm_eval("--model", model, "--base-url", live.url, "--concurrency", "2", results=results) == 0
    first = record_of(results)
    assert live.arrived == 9 and first["api"]["requests"] == 9 and first["api"]["answered"] == 9
    assert first["approach"] == "api" and first["api"]["cache_hits"] == 0
    scores = {(s["task"], s["metric"]): s for s in first["eval"]["scores"]}
    assert scores[("dlm_tfns_gen", "missing")]["n"] == 3
    assert scores[("dlm_tfns_gen", "acc")]["protocol"]["scoring"] == "generative"
    assert all(p["temperature"] == 0.0 and p["stop"] == ["\n\n"] for p in live.payloads)
    # the same command again: every answer from the cache, and the server is not needed
    live.stop()
    assert dlm_eval("--model", model, "--base-url", live.url, results=results) == 0
    again = record_of(results)
    assert again["api"]["cache_hits"] == 9 and again["api"]["http_requests"] == 0
    assert [s["value"] for s in again["eval"]["scores"]] == [s["value"] for s in first["eval"]["scores"]]


def test_a_changed_system_instruction_misses_the_cache(proxy, cache_dir, tmp_path, tiny_model_dir):
    live = proxy()
    model = f"openai-compatible:{tiny_model_dir.name}"
    assert dlm_eval("--model", model, "--base-url", live.url, results=tmp_path / "a") == 0
    assert (
        dlm_eval("--model", model, "--base-url", live.url, "--system-instruction", "Be brief.", results=tmp_path / "b")
        == 0
    )
    assert live.arrived == 18
    assert live.payloads[-1]["messages"][0] == {"role": "system", "content": "Be brief."}


def test_cache_keys_cover_provider_url_model_task_version_and_payload():
    from dlm.harness_tasks.api_cache import request_key

    base = ("openai", "https://x/v1/chat/completions", "gpt-4o", "dlm_fpb_gen", "1.0", {"messages": [], "stop": []})
    keys = {request_key(*base)}
    for i, other in enumerate(
        [
            "anthropic",
            "https://y/v1/chat/completions",
            "gpt-4o-mini",
            "dlm_tfns_gen",
            "2.0",
            {"messages": [{"role": "system", "content": "x"}], "stop": []},
        ]
    ):
        keys.add(request_key(*base[:i], other, *base[i + 1 :]))
    assert len(keys) == 7


def test_429_500_and_a_dropped_connection_are_recovered(proxy, cache_dir, tmp_path, tiny_model_dir):
    live = proxy(faults=["429", "500", "drop"])
    results = tmp_path / "runs"
    assert dlm_eval("--model", f"openai-compatible:{tiny_model_dir.name}", "--base-url", live.url, results=results) == 0
    api = record_of(results)["api"]
    assert api["answered"] == 9 and api["retries"] == 3 and api["failed"] == 0
    assert live.arrived == 12 and live.answered == 9


def test_a_request_that_keeps_failing_leaves_the_run_incomplete_and_a_rerun_completes_it(
    proxy, cache_dir, tmp_path, tiny_model_dir, capsys
):
    failing = proxy(faults=["ok", "500", "500", "500", "500", "500"])
    results = tmp_path / "runs"
    model = f"openai-compatible:{tiny_model_dir.name}"
    assert dlm_eval("--model", model, "--base-url", failing.url, "--max-wait", "2", results=results) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "failed after retries" in err and "run the same command again" in err
    incomplete = record_of(results)
    assert incomplete["status"] == "incomplete" and incomplete["eval"]["scores"] == []
    answered_before = failing.answered
    assert dlm_eval("--model", model, "--base-url", failing.url, results=results) == 0
    assert failing.answered - answered_before == 9 - answered_before  # only what was missing
    assert record_of(results)["status"] == "ok"


def test_kill_9_then_rerun_sends_only_the_missing_requests(proxy, cache_dir, tmp_path, tiny_model_dir):
    slow = proxy(faults=["slow"] * 9, slow_s=0.5)
    results = tmp_path / "runs"
    command = [
        sys.executable,
        "-c",
        "from dlm import cli; cli.main()",
        "eval",
        "--model",
        f"openai-compatible:{tiny_model_dir.name}",
        "--base-url",
        slow.url,
        "--tasks",
        TASKS,
        "--limit",
        LIMIT,
        "--results-dir",
        str(results),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = cache_dir / "api" / "responses.sqlite"

    def cached() -> int:  # the proxy counts a response when it sends it; the child commits it a moment later
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
                return connection.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        except sqlite3.OperationalError:  # not created yet, or its table not yet
            return 0

    deadline = time.time() + 120
    while cached() < 4 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    kept = cached()
    assert 4 <= kept < 9 and not list(results.glob("*.json"))
    before = slow.arrived
    assert dlm_eval("--model", f"openai-compatible:{tiny_model_dir.name}", "--base-url", slow.url, results=results) == 0
    assert slow.arrived - before == 9 - kept
    assert record_of(results)["api"]["cache_hits"] == kept


def test_openai_payloads_keep_temperature_0_and_stops_and_the_key_never_reaches_disk(
    proxy, cache_dir, tmp_path, monkeypatch
):
    """lm-eval's OpenAI class forces temperature 1 and drops `stop` for names containing "5" (gpt-4o-2024-05-13)."""
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    live = proxy()
    results = tmp_path / "runs"
    assert dlm_eval("--model", "openai:gpt-4o-2024-05-13", "--base-url", live.url, results=results) == 0
    assert live.arrived == 9
    assert all(
        p["temperature"] == 0.0 and p["stop"] == ["\n\n"] and p["model"] == "gpt-4o-2024-05-13" for p in live.payloads
    )
    assert all(a == f"Bearer {PLANTED}" for a in live.authorizations)  # sent, as it must be
    record = record_of(results)
    assert record["api"]["cost_usd"] is not None and record["api"]["estimate"]["prices_as_of"]
    for path in [*tmp_path.rglob("*"), *cache_dir.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            assert PLANTED.encode() not in path.read_bytes(), path


def test_a_budget_refusal_sends_nothing_and_dry_run_only_estimates(proxy, cache_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    live = proxy()
    results = tmp_path / "runs"
    code = dlm_eval(
        "--model", "openai:gpt-4o-2024-08-06", "--base-url", live.url, "--max-cost", "0.000001", results=results
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len([line for line in err if line.startswith("error")]) == 1 and "--max-cost" in err[-1]
    assert dlm_eval("--model", "openai:gpt-4o-2024-08-06", "--base-url", live.url, "--dry-run", results=results) == 0
    out = capsys.readouterr().out
    # tiktoken fetches its encodings from the internet on first use; offline the estimate says it counted by length
    assert "9 request(s) to send" in out and ("prompt tokens (tiktoken" in out or "characters per token" in out)
    assert "$" in out and "no scores in this record" not in out  # a dry run is not a run without scores
    assert live.arrived == 0 and not results.exists()


def test_lm_eval_s_own_chat_class_runs_the_twins_against_the_server(server, tmp_path, tiny_model_dir):
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "local-chat-completions",
        "--model_args",
        f"model={tiny_model_dir},base_url={server.url}/chat/completions,num_concurrent=1",
        "--tasks",
        "dlm_tfns_gen",
        "--include_path",
        str(ROOT / "dlm" / "harness_tasks"),
        "--apply_chat_template",
        "--limit",
        "2",
        "--output_path",
        str(out),
    ]
    done = subprocess.run(
        command, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    assert "missing,none" in json.loads(results.read_text())["results"]["dlm_tfns_gen"]


def test_the_guard_restores_what_lm_eval_s_classes_change(monkeypatch):
    """lm-eval's OpenAI class drops `stop` and sets temperature 1 for "5" in the name; its Anthropic class replaces
    a whitespace-only stop list with "\\n\\nHuman:". The guarded payload is the task's."""
    from lm_eval.api.registry import get_model

    from dlm.harness_tasks.api_models import guarded

    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    gen = {"until": ["\n\n", "Text:"], "max_gen_toks": 16, "do_sample": False, "temperature": 0.0}
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    openai = get_model("openai-chat-completions")(model="gpt-4o-2024-05-13")
    raw = openai._create_payload(messages, generate=True, gen_kwargs=copy.deepcopy(gen))  # it mutates `until`
    assert raw["temperature"] == 1 and "stop" not in raw  # the trap
    fixed = guarded(raw, gen, "openai")
    assert fixed["temperature"] == 0.0 and fixed["stop"] == ["\n\n", "Text:"]
    anthropic = get_model("anthropic-chat")(model="claude-3-5-sonnet-20240620")
    raw = anthropic._create_payload(messages, generate=True, gen_kwargs={**copy.deepcopy(gen), "until": ["\n\n"]})
    assert raw["stop_sequences"] == ["\n\nHuman:"] and raw["system"] == "s"
    fixed = guarded(raw, {**gen, "until": ["\n\n"]}, "anthropic")
    assert "stop_sequences" not in fixed and fixed["temperature"] == 0.0 and fixed["max_tokens"] == 16
    fixed = guarded(raw, gen, "anthropic")
    assert fixed["stop_sequences"] == ["Text:"]
