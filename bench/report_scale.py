"""`dlm report` over constructed studies of 100, 300 and 1,000 runs (bench/study_gen.py: three models, every
approach, data fractions, seeds, per-document outcomes on shared documents), and the size of MMLU-sized outcomes.

    python bench/report_scale.py                  # 100, 300 and 1,000 runs; the real command, one process each
    python bench/report_scale.py --sizes 100 300  # some sizes only
    python bench/report_scale.py --tiny           # 20 runs, small tasks: checks the script runs

Each size is timed as `dlm report --results-dir DIR` in its own process (start-up, loading every record and
outcomes file, every verdict's bootstrap, the screen), with the load average beside it. Targets: 1,000 runs in
< 30 s on 2 cores, time growing linearly with the number of runs (the seconds per run at 1,000 within 1.5x of
those at 100); MMLU's 14,042 questions' outcomes < 5 MB.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib as common
from study_gen import write_study

MMLU_QUESTIONS = 14042
MMLU_SUBJECTS = 57
SIZES = (100, 300, 1000)


def _block(n: int, rate: float, rng: random.Random, choices: int = 4):
    from dlm.store.outcomes import MetricItems, OutcomeBlock

    acc = [1.0 if rng.random() < rate else 0.0 for _ in range(n)]
    gold = [rng.randrange(choices) for _ in range(n)]
    pred = [[round(-rng.random() * 20, 4) for _ in range(choices)] for _ in range(n)]
    block = OutcomeBlock(
        version="1",
        docs=[f"{i:012x}" for i in range(n)],
        gold=gold,
        pred=pred,
        metrics={"acc": MetricItems("mean", acc)},
    )
    return block, sum(acc) / n


def time_report(runs_dir: Path) -> tuple[float, str]:
    """Seconds of `dlm report --results-dir runs_dir` in a fresh process, and its first verdict line."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dlm", "report", "--results-dir", str(runs_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        check=True,
    )
    seconds = time.perf_counter() - started
    h1 = next((line for line in done.stdout.splitlines() if " H1 " in line or line.strip().startswith("H1")), "")
    return seconds, " ".join(h1.split())[:110]


def mmlu_outcomes_size(directory: Path, questions: int) -> int:
    from dlm.store.outcomes import write_outcomes

    rng = random.Random(1)
    per = questions // MMLU_SUBJECTS
    tasks = {}
    for s in range(MMLU_SUBJECTS):
        n = per + (1 if s < questions - per * MMLU_SUBJECTS else 0)
        block, _ = _block(n, 0.3, rng, choices=4)
        tasks[f"dlm_mmlu_{s}"] = {"none": block}
    return write_outcomes(directory, "mmlu", tasks).stat().st_size


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    args = common.parse(p, argv)
    sizes, questions = ([20], 570) if args.tiny else (args.sizes, MMLU_QUESTIONS)
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            study = Path(tmp) / f"runs-{size}"
            written = write_study(study, runs=size)
            load = os.getloadavg()[0]
            seconds, h1 = time_report(study)
            timings.append({"runs": size, "records": written, "seconds": seconds, "load": load})
            print(f"{written} records ({size} runs): dlm report in {seconds:.1f} s, load {load:.1f}; {h1}", flush=True)
        size = mmlu_outcomes_size(Path(tmp) / "mmlu", questions)
    print(f"outcomes of {questions} MMLU-shaped questions (4 choices' log-likelihoods, acc): {size / 2**20:.2f} MB")
    largest, smallest = timings[-1], timings[0]
    growth = (largest["seconds"] / largest["records"]) / (smallest["seconds"] / smallest["records"])
    results = [
        common.result_line(
            "report_seconds", largest["seconds"], 30.0, True, f"dlm report over {largest['records']} records"
        ),
        common.result_line(
            "seconds_per_record_growth", growth, 1.5, True, f"per record, {largest['runs']} vs {smallest['runs']} runs"
        ),
        common.result_line("mmlu_outcomes_mb", size / 2**20, 5.0, True, f"{questions} questions"),
    ]
    payload = {"bench": "report_scale", "results": results, "timings": timings, "mmlu_bytes": size}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
