"""Generative twins on the tiny model: missing rate before and after SFT, and a twin's wall time vs its MC sibling.

1. The untrained tiny-gpt2 on the finance twins (fin_sentiment_gen, dlm_fin_topics_gen, dlm_adaptllm_gen): the
   share of outputs that name no label (`missing`).
2. The same model after SFT on the samples' twitter-financial-news-sentiment (150 steps, as
   tests/test_train.py), on the same twins: it learns to say the label.
3. Wall time of `dlm eval` on fin_sentiment_gen vs fin_sentiment at the same --limit, whole in-process
   evaluations alternated A, B, A, B; ratio of medians.

    python bench/twins.py [--tiny] [--json bench/twins.json]
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import replace
from pathlib import Path

import benchlib as common

FINANCE_TWINS = ["fin_sentiment_gen", "dlm_fin_topics_gen", "dlm_adaptllm_gen"]
TWEETS = "zeroshot/twitter-financial-news-sentiment"


def missing_rates(model, tokenizer, name: str, limit, results_dir: Path) -> dict:
    from dlm.harness_tasks.evaluate import evaluate
    from dlm.settings import eval_config

    cfg = replace(
        eval_config(
            {
                "model": name,
                "tasks": FINANCE_TWINS,
                "limit": limit,
                "results_dir": str(results_dir),
                "bootstrap_iters": 0,
            }
        ),
        device="cpu",
    )
    record = evaluate(cfg, model=model, tokenizer=tokenizer, write=False)
    return {
        s["task"]: {"missing": s["value"], "n": s["n"]}
        for s in record["eval"]["scores"]
        if s["metric"] == "missing" and not s["is_group"]
    }


def eval_seconds(model, tokenizer, tasks: str, limit) -> float:
    from dlm.harness_tasks.evaluate import evaluate
    from dlm.settings import eval_config

    started = time.perf_counter()
    cfg = replace(
        eval_config({"model": "tiny-gpt2", "tasks": tasks, "limit": limit, "bootstrap_iters": 0}), device="cpu"
    )
    evaluate(cfg, model=model, tokenizer=tokenizer, write=False)
    return time.perf_counter() - started


def main(argv=None) -> dict:
    args = common.parse(common.parser(__doc__), argv)
    from dlm.config import TrainConfig
    from dlm.trainers.models import load_model
    from dlm.trainers.train import train

    work = Path(tempfile.mkdtemp(prefix="dlm-bench-twins-"))
    limit = 3 if args.tiny else None
    base, tokenizer = load_model("tiny-gpt2")
    before = missing_rates(base, tokenizer, "tiny-gpt2", limit, work)
    steps = 2 if args.tiny else 150
    trained = train(
        TrainConfig(
            model="tiny-gpt2",
            dataset=TWEETS,
            mode="sft",
            max_steps=steps,
            batch_size=8,
            max_length=128,
            learning_rate=3e-3,
            warmup_steps=5,
            save_steps=1000,
            output_dir=str(work / "sft"),
            results_dir=str(work / "runs"),
        )
    )
    after = missing_rates(trained.model, trained.tokenizer, str(work / "sft"), limit, work)

    time_limit = 3 if args.tiny else 50
    rounds = 1 if args.tiny else 3
    twin, sibling = [], []
    for _ in range(rounds):
        twin.append(eval_seconds(base, tokenizer, "fin_sentiment_gen", time_limit))
        sibling.append(eval_seconds(base, tokenizer, "fin_sentiment", time_limit))
    untrained = sum(v["missing"] for v in before.values()) / len(before)
    sft = sum(v["missing"] for v in after.values()) / len(after)
    for name, rates in (("untrained", before), ("after SFT", after)):
        print(f"missing, {name}: " + ", ".join(f"{t} {v['missing']:.3f} (n={v['n']})" for t, v in rates.items()))
    ratio = common.median(twin) / common.median(sibling)
    print(
        f"fin_sentiment_gen {common.median(twin):.2f} s vs fin_sentiment {common.median(sibling):.2f} s "
        f"at --limit {time_limit}, {rounds} alternated round(s)"
    )
    results = [
        common.result_line("missing_untrained", untrained, float("nan"), True, "mean over the finance twins"),
        common.result_line("missing_after_sft", sft, float("nan"), True, f"after {steps} SFT steps on tweets"),
        common.result_line(
            "twin_vs_mc_wall_time",
            ratio,
            float("nan"),
            True,
            f"fin_sentiment_gen / fin_sentiment, --limit {time_limit}",
        ),
    ]
    payload = {
        "bench": "twins",
        "results": results,
        "missing_untrained": before,
        "missing_after_sft": after,
        "sft_steps": steps,
        "twin_s": twin,
        "mc_s": sibling,
        "limit": time_limit,
    }
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
