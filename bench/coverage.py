"""Coverage of every interval type of results/stats.py, the two-level seed interval against the old pooled one, and
the minimum detectable difference of each finance task at its real test-set size.

1. Coverage: for each interval type (results/coverage.py: paired document bootstrap of accuracy and of macro F1,
   two-level seed bootstrap in three regimes, relative gain, ratio to a published and to a measured large model),
   `--studies` simulated studies with a known true value; the share of 95% intervals holding it should be 93-97%.
   The seed types also run without the small-seed correction, to show what it fixes.
2. Width: five identical copies of one treated run against one control; the old pooled interval (each pair on its
   own document draws, averaged), the two-level one and one run's, on one constructed study and on 20.
3. MDD at 80% power, two-sided 5%, for the finance tasks at their test-set sizes (shared/reference/datasets.md).

    python bench/coverage.py                 # 1,000 studies per type; rewrites its section of bench/README.md
    python bench/coverage.py --tiny          # a few studies: checks the script runs, writes nothing
"""

from __future__ import annotations

import time
from pathlib import Path

import benchlib as common
import numpy as np

from dlm.files import atomic_write
from dlm.results import coverage
from dlm.results.power import minimum_detectable_difference

README = Path(__file__).with_name("README.md")
START, END = "<!-- bench/coverage.py: start -->", "<!-- bench/coverage.py: end -->"
BAND = (0.93, 0.97)

# task, documents scored (None: not confirmed), approximate?, primary metric, where the size comes from
FINANCE_TASKS = [
    ("dlm_fpb", 970, True, "f1_weighted", "20% hash holdout of FPB sentences_50agree (4,846 rows)"),
    ("dlm_tfns", 2388, False, "f1_weighted", "twitter-financial-news-sentiment validation"),
    ("dlm_fiqa_sa", 234, False, "f1_weighted", "TheFinAI/fiqa-sentiment-classification test"),
    ("dlm_fin_topics", 4118, False, "f1_weighted", "twitter-financial-news-topic validation (card)"),
    ("dlm_fin_qa_10k", 1400, True, "rougeL", "20% hash holdout of financial-qa-10K (7,000 rows)"),
    ("dlm_fiqa_qa", None, False, "rougeL", "LLukas22/fiqa test: row count not confirmed"),
    ("dlm_adapt_fpb", 970, False, "f1_weighted", "AdaptLLM/finance-tasks FPB test"),
    ("dlm_adapt_fiqa_sa", 235, False, "f1_weighted", "AdaptLLM/finance-tasks FiQA_SA test"),
    ("dlm_adapt_headline", 20500, True, "headline_f1", "AdaptLLM/finance-tasks Headline test (viewer: 20.5k)"),
    ("dlm_adapt_ner", 98, False, "entity_f1", "AdaptLLM/finance-tasks NER test"),
    ("dlm_adapt_convfinqa", 1490, True, "exact_match", "AdaptLLM/finance-tasks ConvFinQA test (viewer: 1.49k)"),
    ("dlm_financemath", 200, False, "exact_match", "yale-nlp/FinanceMath validation"),
]


def coverage_rows(studies: int, iters: int, n: int, n_large: int) -> list[dict]:
    rows = []
    corrected = coverage.interval_types(n=n, n_large=n_large)
    plain = coverage.interval_types(n=n, n_large=n_large, correct_few_seeds=False)
    for i, (name, study) in enumerate(corrected.items()):
        started = time.perf_counter()
        got = coverage.coverage(study, studies, iters, seed=1000 * (i + 1))
        row = {"type": name, **got, "seconds": time.perf_counter() - started}
        if name.startswith("two-level"):
            row["uncorrected"] = coverage.coverage(plain[name], studies, iters, seed=1000 * (i + 1))
        rows.append(row)
        extra = (
            f"; without the small-seed correction {row['uncorrected']['coverage']:.3f}" if "uncorrected" in row else ""
        )
        print(f"{name}: coverage {got['coverage']:.3f}, mean width {got['mean_width']:.4f}{extra}", flush=True)
    return rows


def width_rows(iters: int, constructions: int) -> dict:
    one = coverage.identical_copies(n=1000, copies=5, iters=iters, seed=7)
    many = [coverage.identical_copies(n=1000, copies=5, iters=iters, seed=s) for s in range(constructions)]
    old = np.array([m["old_over_one"] for m in many])
    new = np.array([m["two_level_over_old"] for m in many])
    return {
        "one_study": one,
        "constructions": constructions,
        "old_over_one_mean": float(old.mean()),
        "old_over_one_range": [float(old.min()), float(old.max())],
        "two_level_over_old_mean": float(new.mean()),
        "two_level_over_old_range": [float(new.min()), float(new.max())],
    }


def mdd_rows() -> list[dict]:
    rows = []
    for task, n, approximate, metric, source in FINANCE_TASKS:
        cells = {
            "one run a side": minimum_detectable_difference(n, 0.5, metric=metric),
            "one run a side, rho 0.5": minimum_detectable_difference(n, 0.5, metric=metric, correlation=0.5),
            "3 seeds a side, seed sd 0.02": minimum_detectable_difference(n, 0.5, metric=metric, seeds=3, seed_sd=0.02),
        }
        rows.append(
            {
                "task": task,
                "n": n,
                "approximate": approximate,
                "metric": metric,
                "source": source,
                **{k: (None if v.mdd is None else v.mdd) for k, v in cells.items()},
            }
        )
    return rows


def _points(value) -> str:
    return "unknown size" if value is None else f"{100 * value:.1f}"


def markdown(rows: list[dict], widths: dict, mdd: list[dict], studies: int, iters: int) -> str:
    lines = [
        START,
        "## Coverage of the intervals, seed widths, minimum detectable differences (`coverage.py`)",
        "",
        f"Measured with `python bench/coverage.py` ({studies} simulated studies per type, {iters} bootstrap "
        "replicates each; the simulation is described in `dlm/results/coverage.py`). A 95% interval should hold the "
        "true value in 93-97% of studies (1,000 studies: +-1.4 points of binomial noise on the share). The two-level "
        "types also ran with the seeds themselves resampled (`compare(..., correct_few_seeds=False)`), what the "
        "small-seed correction replaces.",
        "",
        "| interval type | coverage | mean width | seeds resampled instead | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        plain = f"{r['uncorrected']['coverage']:.3f}" if "uncorrected" in r else "—"
        ok = BAND[0] <= r["coverage"] <= BAND[1]
        lines.append(
            f"| {r['type']} | **{r['coverage']:.3f}** | {r['mean_width']:.4f} | {plain} | {'meets' if ok else 'miss'} |"
        )
    one = widths["one_study"]
    lines += [
        "",
        f"**Width, five identical copies of one treated run** (n = {one['documents']} documents, one control): the old "
        f"pooled interval is {one['old_over_one']:.2f}x one run's; the two-level interval is "
        f"{one['two_level_over_one']:.2f}x one run's, i.e. **{one['two_level_over_old']:.2f}x the old one**. Over "
        f"{widths['constructions']} such constructions: old / one run {widths['old_over_one_mean']:.2f} "
        f"({widths['old_over_one_range'][0]:.2f}-{widths['old_over_one_range'][1]:.2f}), two-level / old "
        f"{widths['two_level_over_old_mean']:.2f} ({widths['two_level_over_old_range'][0]:.2f}-"
        f"{widths['two_level_over_old_range'][1]:.2f}).",
        "",
        "**Minimum detectable difference** (80% power, two-sided 5%, in points of the metric, at base rate 0.5, the "
        "widest case; `dlm/results/power.py`). rho is the correlation of the two runs' per-document outcomes; the "
        "seed column assumes a between-seed standard deviation of 2 points. ≈: approximate size.",
        "",
        "| task | documents | metric | one run a side | rho 0.5 | 3 seeds a side, seed sd 2 pts | size from |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in mdd:
        n = "unknown" if r["n"] is None else ("≈" if r["approximate"] else "") + f"{r['n']:,}"
        lines.append(
            f"| `{r['task']}` | {n} | {r['metric']} | {_points(r['one run a side'])} | "
            f"{_points(r['one run a side, rho 0.5'])} | {_points(r['3 seeds a side, seed sd 0.02'])} | {r['source']} |"
        )
    return "\n".join(lines + ["", END])


def write_section(text: str) -> None:
    current = README.read_text(encoding="utf-8")
    if START in current and END in current:
        updated = current[: current.index(START)] + text + current[current.index(END) + len(END) :]
    else:
        updated = current.rstrip("\n") + "\n\n" + text + "\n"
    atomic_write(README, updated)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--studies", type=int, default=1000, help="simulated studies per interval type")
    p.add_argument("--iters", type=int, default=1000, help="bootstrap replicates per interval")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite this script's section of bench/README.md")
    args = common.parse(p, argv)
    studies, iters, n, n_large, constructions = (
        (12, 100, 80, 200, 2) if args.tiny else (args.studies, args.iters, 300, 2000, 20)
    )
    rows = coverage_rows(studies, iters, n, n_large)
    widths = width_rows(iters, constructions)
    mdd = mdd_rows()
    print(
        f"identical copies: old pooled / one run {widths['one_study']['old_over_one']:.3f}, two-level / old "
        f"{widths['one_study']['two_level_over_old']:.3f}, two-level / one run {widths['one_study']['two_level_over_one']:.3f}"
    )
    for r in mdd:
        print(f"MDD {r['task']} (n={r['n']}): {_points(r['one run a side'])} (points, one run a side)")
    results = [
        common.result_line(
            f"coverage[{r['type']}]", r["coverage"], BAND[0], False, "share of 95% intervals holding the truth"
        )
        for r in rows
    ]
    results.append(
        common.result_line(
            "two_level_over_old_width",
            widths["one_study"]["two_level_over_old"],
            float("nan"),
            False,
            "5 identical seed copies",
        )
    )
    payload = {"bench": "coverage", "results": results, "coverage": rows, "widths": widths, "mdd": mdd}
    common.write_json(args.json_out, payload)
    if not args.tiny and not args.no_readme:
        write_section(markdown(rows, widths, mdd, studies, iters))
        print(f"wrote its section of {README}")
    return payload


if __name__ == "__main__":
    main()
