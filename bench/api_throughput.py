"""API requests per second against a local OpenAI-compatible server, at concurrency 1 and 4, and cache hits on re-run.

Starts `transformers serve` with tiny-gpt2 on 127.0.0.1 (tests/api_support.py), scores fin_sentiment_gen through
`openai-compatible:` with a fresh response cache at --concurrency 1 and 4 (alternated), then re-runs the last one
against the filled cache. The server's generation time dominates: the figure is what dlm's client adds on top of
a fast server, not what a provider allows.

    python bench/api_throughput.py [--tiny] [--json bench/api_throughput.json]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import benchlib as common

sys.path.insert(0, str(common.ROOT / "tests"))


def one_run(model: str, url: str, limit: int, concurrency: int, cache: Path) -> tuple[float, dict]:
    from dlm.harness_tasks.evaluate import evaluate
    from dlm.settings import eval_config

    os.environ["DLM_CACHE"] = str(cache)
    cfg = eval_config(
        {
            "model": model,
            "tasks": "fin_sentiment_gen",
            "limit": limit,
            "base_url": url,
            "concurrency": concurrency,
            "bootstrap_iters": 0,
        }
    )
    started = time.perf_counter()
    record = evaluate(cfg, write=False)
    return time.perf_counter() - started, record["api"]


def main(argv=None) -> dict:
    args = common.parse(common.parser(__doc__), argv)
    from api_support import Served

    from dlm.trainers.tiny import tiny_gpt2_path

    tiny = tiny_gpt2_path()
    work = Path(tempfile.mkdtemp(prefix="dlm-bench-api-"))
    served = Served(tiny, work / "serve.log")
    limit = 2 if args.tiny else 40
    rounds = 1 if args.tiny else 3
    model = f"openai-compatible:{tiny}"  # the served model answers to its own path
    rates: dict[int, list[float]] = {1: [], 4: []}
    try:
        for r in range(rounds):
            for concurrency in (1, 4):
                cache = work / f"cache-{concurrency}-{r}"
                cache.mkdir()
                (cache / tiny.name).symlink_to(tiny)
                seconds, api = one_run(model, served.url, limit, concurrency, cache)
                rates[concurrency].append(api["answered"] / seconds)
        again_s, again = one_run(model, served.url, limit, 4, cache)
    finally:
        served.stop()
    hits = again["cache_hits"] / again["requests"]
    one, four = common.median(rates[1]), common.median(rates[4])
    print(
        f"{api['requests']} requests per run: concurrency 1 {one:.1f} req/s, concurrency 4 {four:.1f} req/s "
        f"(whole evaluations, {rounds} alternated round(s)); re-run: {again['cache_hits']}/{again['requests']} "
        f"from the cache, {again['http_requests']} sent, {again_s:.1f} s"
    )
    results = [
        common.result_line("requests_per_s_concurrency_1", one, float("nan"), False, "tiny-gpt2 served locally"),
        common.result_line("requests_per_s_concurrency_4", four, float("nan"), False, "tiny-gpt2 served locally"),
        common.result_line("cache_hits_on_rerun", hits, 1.0, False, "share of requests answered by the cache"),
    ]
    payload = {
        "bench": "api_throughput",
        "results": results,
        "rates": rates,
        "rerun": again,
        "requests_per_run": api["requests"],
    }
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
