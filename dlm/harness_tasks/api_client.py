"""Sending API requests: N at a time, backing off on 429 and 5xx (honouring Retry-After), every answer cached
as it arrives, and a request that still fails reported, never scored.

lm-eval's TemplateAPI retries 3 times with a fixed exponential wait and no Retry-After (its issue #2594); a run of
thousands of paid requests needs to wait out a rate limit instead of failing or, worse, scoring an empty answer.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504, 529}
FIRST_WAIT_S = 1.0
LONGEST_WAIT_S = 60.0


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
    """(input, output) tokens from an OpenAI (`prompt_tokens`) or Anthropic (`input_tokens`) usage block."""
    usage = response.get("usage") or {}
    tokens_in = usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0
    tokens_out = usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0
    return int(tokens_in), int(tokens_out)


class Sender:
    def __init__(
        self, url: str, headers: dict, cache, concurrency: int = 1, max_wait_s: float = 300.0, timeout_s: float = 120.0
    ):
        self.url, self.headers, self.cache = url, headers, cache
        self.concurrency, self.max_wait_s, self.timeout_s = max(1, concurrency), max_wait_s, timeout_s
        self.stats = Stats()
        self._lock = threading.Lock()

    def run(self, jobs: list[Job]) -> None:
        """Answer every job: from the cache, else over HTTP (jobs left with `error` failed after retries)."""
        pending = []
        for job in jobs:  # a job that arrives with a response was answered from the cache by the caller
            cached = job.response if job.response is not None else self.cache.get(job.key)
            if cached is not None:
                job.response = cached
                self.stats.cache_hits += 1
                if cached.get("model"):
                    self.stats.models_returned.add(str(cached["model"]))
            else:
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

        if self.concurrency == 1:
            for job in pending:
                one(job)
        else:
            with ThreadPoolExecutor(self.concurrency) as pool:
                list(pool.map(one, pending))

    def _send(self, job: Job) -> None:

        waited, attempt = 0.0, 0
        while True:
            attempt += 1
            with self._lock:
                self.stats.sent += 1
            try:
                reply = requests.post(self.url, json=job.payload, headers=self.headers, timeout=self.timeout_s)
            except (requests.ConnectionError, requests.Timeout) as err:
                status, reason, wait = None, f"{err.__class__.__name__}", None
            else:
                if reply.ok:
                    response = reply.json()
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
                status, reason, wait = reply.status_code, f"HTTP {reply.status_code}", retry_after(reply.headers)
                if status not in RETRYABLE:
                    job.error = f"{reason}: {reply.text[:200]}"
                    break
            wait = wait if wait is not None else min(LONGEST_WAIT_S, FIRST_WAIT_S * 2 ** (attempt - 1))
            wait *= 1 + 0.1 * random.random()  # concurrent workers do not all come back at the same instant
            if waited + wait > self.max_wait_s:
                job.error = f"{reason} after {attempt} attempt(s) and {waited:.0f} s of waiting (--max-wait)"
                break
            with self._lock:
                self.stats.retries += 1
            time.sleep(wait)
            waited += wait
        with self._lock:
            self.stats.failed += 1
