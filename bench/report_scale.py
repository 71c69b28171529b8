"""`dlm report` over many records with per-document outcomes, and the size of MMLU-sized outcomes.

    python bench/report_scale.py            # 200 records (100 zero-shot/pretrain pairs on 1,000-doc tasks)
    python bench/report_scale.py --tiny     # 10 records, small tasks: checks the script runs

Records and outcomes are constructed (the statistics are the report's own: paired bootstraps of H1/H3, bootstrap
stderr already stored). Targets: the report in < 5 s on 2 cores; MMLU's 14,042 questions' outcomes < 5 MB.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

import benchlib as common

MMLU_QUESTIONS = 14042
MMLU_SUBJECTS = 57


def _block(n: int, rate: float, rng: random.Random, choices: int = 3):
    acc = [1.0 if rng.random() < rate else 0.0 for _ in range(n)]
    gold = [rng.randrange(choices) for _ in range(n)]
    pred = [[round(-rng.random() * 20, 4) for _ in range(choices)] for _ in range(n)]
    pairs = [[g, g if a else (g + 1) % choices] for g, a in zip(gold, acc)]
    from dlm.store.outcomes import MetricItems, OutcomeBlock

    block = OutcomeBlock(
        version="1",
        docs=[f"{i:012x}" for i in range(n)],
        gold=gold,
        pred=pred,
        metrics={"acc": MetricItems("mean", acc), "f1_weighted": MetricItems("f1_weighted", pairs)},
    )
    return block, sum(acc) / n


def write_study(directory: Path, pairs: int, docs: int) -> None:
    from dlm.harness_tasks import metrics
    from dlm.store.outcomes import write_outcomes
    from dlm.store.records import write_record

    rng = random.Random(0)
    for i in range(pairs):
        for role, rate, day in (("zero-shot", 0.35, 1), ("pretrain", 0.45, 2)):
            run_id = f"{role}-{i:03d}"
            block, acc = _block(docs, rate, rng)
            write_outcomes(directory, run_id, {"dlm_fpb": {"none": block}})
            f1 = metrics.f1_weighted([tuple(p) for p in block.metrics["f1_weighted"].values])
            record = {
                "schema_version": 1,  # the flat config shape of schema 1, migrated when written
                "run_id": run_id,
                "kind": "cycle",
                "status": "ok",
                "created_at": f"2025-01-0{day}T{i:06d}",
                "approach": role,
                "domain": None if role == "zero-shot" else "finance",
                "model": {"name": f"model-{i}" if role == "zero-shot" else f"checkpoints/{run_id}"},
                "eval": {
                    "config": {"limit": None},
                    "outcomes": f"{run_id}.outcomes.json.gz",
                    "scores": [
                        {
                            "task": "dlm_fpb",
                            "metric": m,
                            "value": v,
                            "stderr": 0.01,
                            "n": docs,
                            "num_fewshot": 0,
                            "filter": "none",
                            "version": "1",
                        }
                        for m, v in (("acc", acc), ("f1_weighted", f1))
                    ],
                },
            }
            if role != "zero-shot":
                record["train"] = {
                    "config": {
                        "model": f"model-{i}",
                        "mode": "pretrain",
                        "seed": 1,
                        "data": {"parts": ["gbharti/finance-alpaca"]},
                    },
                    "wall_time_s": 60.0,
                }
            write_record(directory, record)


def mmlu_outcomes_size(directory: Path, questions: int) -> int:
    from dlm.store.outcomes import write_outcomes

    rng = random.Random(1)
    per = questions // MMLU_SUBJECTS
    tasks = {}
    for s in range(MMLU_SUBJECTS):
        n = per + (1 if s < questions - per * MMLU_SUBJECTS else 0)
        block, _ = _block(n, 0.3, rng, choices=4)
        del block.metrics["f1_weighted"]  # MMLU scores acc only
        tasks[f"dlm_mmlu_{s}"] = {"none": block}
    return write_outcomes(directory, "mmlu", tasks).stat().st_size


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--records", type=int, default=200)
    p.add_argument("--docs", type=int, default=1000, help="documents per task")
    args = common.parse(p, argv)
    records, docs, questions = (10, 50, 570) if args.tiny else (args.records, args.docs, MMLU_QUESTIONS)
    from dlm.results.report import build_report

    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "runs"
        write_study(study, records // 2, docs)
        started = time.perf_counter()
        report = build_report(study)
        seconds = time.perf_counter() - started
        size = mmlu_outcomes_size(Path(tmp) / "mmlu", questions)
    h1 = next(v for v in report["hypotheses"] if v["name"] == "H1")
    print(
        f"{records} records, {docs} documents each: report built in {seconds:.2f} s; H1 {h1['verdict']} "
        f"({h1['detail'][:120]})"
    )
    print(f"outcomes of {questions} MMLU-shaped questions (4 choices' log-likelihoods, acc): {size / 2**20:.2f} MB")
    results = [
        common.result_line("report_seconds", seconds, 5.0, True, f"build_report over {records} records"),
        common.result_line("mmlu_outcomes_mb", size / 2**20, 5.0, True, f"{questions} questions"),
    ]
    payload = {"bench": "report_scale", "results": results, "seconds": seconds, "mmlu_bytes": size}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
