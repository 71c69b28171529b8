"""Sending API requests: N at a time, backing off on 429 and 5xx (honouring Retry-After), every answer checked and
then cached as it arrives, and a request that still fails reported, never scored.

lm-eval's TemplateAPI retries 3 times with a fixed exponential wait and no Retry-After (its issue #2594); a run of
thousands of paid requests needs to wait out a rate limit instead of failing or, worse, scoring an empty answer.

A response is an answer only once `answer_problem` finds nothing wrong with it: JSON (not an HTML error page), no
`error`, a non-empty `choices` list whose message content is a string (Anthropic: a `content` list of text
blocks), usage counts that are non-negative integers. Anything else - HTTP 200 with an error body included - is
retried like a 5xx, and is never cached, counted or scored, so a re-run after the server recovers asks again.

`--max-wait` bounds each request from its first send to giving up, waits and attempts included; a server that
drip-feeds its answer one byte at a time (each read well within a read timeout) is cut off at that deadline: a
timer shuts the connection's socket down (urllib3's own timeouts are per read).
"""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from dlm.secrets import scrub

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504, 529}
FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 60.0
CONNECT_TIMEOUT_S = 10.0
MAX_BODY_BYTES = 16 * 2**20  # a chat answer is a few kB; a server that streams without end is cut here


@dataclass
class Job:
    key: str
    payload: dict
    response: dict | None = None
    error: str | None = None


@dataclass
class Stats:
    requests: int = 0
    cache_hits: int = 0
    sent: int = 0  # HTTP requests made, retries included
    answered: int = 0
    failed: int = 0
    retries: int = 0
    rejected: int = 0  # HTTP 200 bodies that were not a well-formed answer (retried, never scored)
    tokens_in: int = 0
    tokens_out: int = 0
    models_returned: set = field(default_factory=set)

    def to_dict(self) -> dict:
        return {
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "http_requests": self.sent,
            "answered": self.answered,
            "failed": self.failed,
            "retries": self.retries,
            "rejected_answers": self.rejected,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "models_returned": sorted(self.models_returned),
        }


def retry_after(headers) -> float | None:
    """Seconds a 429/503 asks us to wait: `Retry-After` (seconds; an HTTP date is treated as unknown), or OpenAI's
    `retry-after-ms`."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def usage_tokens(response: dict) -> tuple[int, int]:
    """(input, output) tokens from an OpenAI (`prompt_tokens`) or Anthropic (`input_tokens`) usage block (checked
    by `answer_problem` first: non-negative integers or absent)."""
    usage = response.get("usage") or {}
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0
    return int(tokens_in), int(tokens_out)


def answer_problem(response, provider: str = "openai") -> str | None:
    """What makes `response` not a well-formed answer of `provider` (openai, openai-compatible, anthropic), or None."""
    if not isinstance(response, dict):
        return f"the body is JSON {type(response).__name__}, not an object"
    if response.get("error") or response.get("type") == "error":
        return f"the body is an error: {str(response.get('error'))[:200]}"
    usage = response.get("usage")
    if usage is not None:
        if not isinstance(usage, dict):
            return "`usage` is not an object"
        for name in ("prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"):
            count = usage.get(name)
            if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
                return f"usage.{name} is {count!r}, not a count"
    if response.get("model") is not None and not isinstance(response["model"], str):
        return "`model` is not a string"
    if provider == "anthropic":
        blocks = response.get("content")
        if not isinstance(blocks, list) or not blocks:
            return "`content` is not a non-empty list"
        if not all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in blocks):
            return "a `content` block has no text"
        return None
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        return "`choices` is not a non-empty list"
    indexes = []
    for choice in choices:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict) or not isinstance(message.get("content"), str):
            return "a choice has no message content (null, missing or not text)"
        indexes.append(choice.get("index"))
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in indexes) or sorted(indexes) != list(
        range(len(choices))
    ):
        return f"choice indexes are {indexes}, not 0..{len(choices) - 1}"
    return None


# --- a hard deadline per HTTP attempt -------------------------------------------------------------------------
_in_use: dict[int, tuple[int, object]] = {}  # thread id -> (attempt number, the urllib3 connection it is using)
_in_use_lock = threading.Lock()
_attempts = iter(range(1, 2**62))


def _track(connection) -> None:
    with _in_use_lock:
        current = _in_use.get(threading.get_ident())
        if current is not None:
            _in_use[threading.get_ident()] = (current[0], connection)


class _TrackedPool(HTTPConnectionPool):
    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout)
        _track(connection)
        return connection


class _TrackedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout=None):
        connection = super()._get_conn(timeout)
        _track(connection)
        return connection


class _TrackedAdapter(HTTPAdapter):
    """requests' adapter whose connection pools say which connection each thread is using."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _TrackedPool, "https": _TrackedHTTPSPool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = {"http": _TrackedPool, "https": _TrackedHTTPSPool}
        return manager


def _cut(thread: int, attempt: int, fired: threading.Event) -> None:
    """The attempt's deadline passed: shut its socket down (the blocked read returns at once)."""
    with _in_use_lock:
        current = _in_use.get(thread)
        if current is None or current[0] != attempt:
            return  # that attempt is over
        fired.set()
        sock = getattr(current[1], "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post_within(session: requests.Session, url: str, payload: dict, headers: dict, limit_s: float):
    """(status code, headers, body bytes) of one POST that ends within `limit_s` seconds, whatever the server does;
    raises requests' exceptions (a cut-off attempt: requests.Timeout)."""
    thread, attempt = threading.get_ident(), next(_attempts)
    fired = threading.Event()
    with _in_use_lock:
        _in_use[thread] = (attempt, None)
    timer = threading.Timer(limit_s, _cut, args=(thread, attempt, fired))
    timer.daemon = True
    timer.start()
    try:
        reply = session.post(
            url, json=payload, headers=headers, timeout=(min(CONNECT_TIMEOUT_S, limit_s), limit_s), stream=True
        )
        body = b""
        for chunk in reply.iter_content(65536):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise requests.ConnectionError(f"answer longer than {MAX_BODY_BYTES} bytes")
        return reply.status_code, reply.headers, body
    except (requests.RequestException, OSError) as err:
        if fired.is_set():
            raise requests.Timeout(f"no complete answer within {limit_s:.0f} s") from None
        if isinstance(err, requests.RequestException):
            raise
        raise requests.ConnectionError(str(err)) from None
    finally:
        timer.cancel()
        with _in_use_lock:
            _in_use.pop(thread, None)


class Sender:
    def __init__(
        self,
        url: str,
        headers: dict,
        cache,
        concurrency: int = 1,
        max_wait_s: float = 300.0,
        timeout_s: float = 120.0,
        provider: str = "openai",
    ):
        self.url, self.headers, self.cache, self.provider = url, headers, cache, provider
        self.concurrency, self.max_wait_s, self.timeout_s = max(1, concurrency), max_wait_s, timeout_s
        self.stats = Stats()
        self._lock = threading.Lock()
        self.session = requests.Session()
        adapter = _TrackedAdapter(pool_connections=2, pool_maxsize=self.concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def usable(self, response) -> bool:
        return response is not None and answer_problem(response, self.provider) is None

    def run(self, jobs: list[Job]) -> None:
        """Answer every job: from the cache, else over HTTP (jobs left with `error` failed after retries)."""
        pending = []
        for job in jobs:  # a job that arrives with a response was answered from the cache by the caller
            cached = job.response if job.response is not None else self.cache.get(job.key)
            if self.usable(cached):  # a malformed answer cached by an older dlm is asked for again
                job.response = cached
                self.stats.cache_hits += 1
                if cached.get("model"):
                    self.stats.models_returned.add(str(cached["model"]))
            else:
                job.response = None
                pending.append(job)
        self.stats.requests += len(jobs)
        done = [0]

        def one(job: Job) -> None:
            self._send(job)
            with self._lock:
                done[0] += 1
                if done[0] == len(pending) or done[0] % 50 == 0:
                    sys.stdout.write(f"[dlm eval] API: {done[0]}/{len(pending)} requests answered or given up\n")
                    sys.stdout.flush()

        try:
            if self.concurrency == 1:
                for job in pending:
                    one(job)
            else:
                with ThreadPoolExecutor(self.concurrency) as pool:
                    list(pool.map(one, pending))
        finally:
            self.session.close()

    def _attempt(self, job: Job, limit_s: float) -> tuple[dict | None, str, float | None, bool]:
        """(answer or None, why not, seconds the server asks us to wait, whether to try again)."""
        try:
            status, headers, body = post_within(self.session, self.url, job.payload, self.headers, limit_s)
        except requests.RequestException as err:
            return None, scrub(str(err)) if isinstance(err, requests.Timeout) else err.__class__.__name__, None, True
        if not 200 <= status < 300:
            text = scrub(body[:200].decode("utf-8", "replace"))  # a gateway's 401 may quote the key it was sent
            return None, f"HTTP {status}: {text}", retry_after(headers), status in RETRYABLE
        try:
            response = json.loads(body)
        except ValueError:
            shown = scrub(body[:60].decode("utf-8", "replace")).replace("\n", " ")
            return None, f"HTTP {status} with a body that is not JSON ({shown!r})", None, True
        problem = answer_problem(response, self.provider)
        if problem is not None:
            with self._lock:
                self.stats.rejected += 1
            return None, f"HTTP {status} but not an answer: {scrub(problem)}", None, True
        return response, "", None, False

    def _send(self, job: Job) -> None:

        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            with self._lock:
                self.stats.sent += 1
            # every attempt ends by the request's deadline (at least 1 s: --max-wait 0 still sends once)
            limit = min(self.timeout_s, max(1.0, self.max_wait_s - (time.monotonic() - started)))
            response, reason, wait, again = self._attempt(job, limit)
            if response is not None:
                self.cache.put(job.key, response)  # stored before anything else can go wrong
                job.response = response
                tokens_in, tokens_out = usage_tokens(response)
                with self._lock:
                    self.stats.answered += 1
                    self.stats.tokens_in += tokens_in
                    self.stats.tokens_out += tokens_out
                    if response.get("model"):
                        self.stats.models_returned.add(str(response["model"]))
                return
            if not again:
                job.error = reason
                break
            wait = wait if wait is not None else min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (attempt - 1))
            wait *= 1 + 0.1 * random.random()  # concurrent workers do not all come back at the same instant
            elapsed = time.monotonic() - started
            if elapsed + wait > self.max_wait_s:
                job.error = f"{reason} after {attempt} attempt(s) and {elapsed:.0f} s (--max-wait)"
                break
            with self._lock:
                self.stats.retries += 1
            time.sleep(wait)
        with self._lock:
            self.stats.failed += 1
