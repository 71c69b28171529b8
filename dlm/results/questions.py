"""The study plan's five research questions, answered from the records with their evidence and 95% intervals, or
"not enough runs" naming the runs that would decide them.

RQ1 continued pretraining vs direct fine-tuning; RQ2 which domain gains most from specialised training; RQ3 how the
gain changes with model size; RQ4 how close the best small model per domain comes to the large model under the
same protocol; RQ5 the best split of a fixed step budget between pretraining and fine-tuning.

Gains are paired differences (results/paired.py): same base model, task, metric, shots, limit, data source and
documents, on full test sets. An answer that the intervals cannot tell apart says "inconclusive".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dlm.results.matrix import DOMAINS, Row
from dlm.results.paired import Difference, Outcomes, difference
from dlm.results.verdicts import (
    EXAMPLE,
    Z95,
    full_test_set,
    higher_better,
    pairs,
    pct,
    runs_ratio,
)

SIZES_PLAN = "plans/phase5_ablations.yaml"
MORE_SIZES = "the same runs on a second model size, e.g. `dlm plan plans/phase3_finetune.yaml --set model=gpt2-medium`"


@dataclass
class Answer:
    name: str
    question: str
    verdict: str  # "answered" | "inconclusive" | "not enough runs"
    answer: str
    runs: list[str] = field(default_factory=list)  # run ids the answer rests on
    evidence: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "question": self.question,
            "verdict": self.verdict,
            "answer": self.answer,
            "runs": self.runs,
            "evidence": self.evidence,
        }


def _in_domain(rows: list[Row], approaches: tuple[str, ...]) -> list[Row]:
    return [
        r
        for r in higher_better(rows)
        if r.run.approach in approaches and r.task_domain and r.task_domain in r.run.train_domains
    ]


def _gain(treated: list[Row], control: list[Row], outcomes: Outcomes) -> tuple[Difference | None, list]:
    found, _ = pairs(full_test_set(treated), full_test_set(control), outcomes)
    return (difference(found, outcomes) if found else None), found


def _interval(diff: Difference) -> str:
    if diff.low is None:
        return f"{diff.delta:+.3f} (no interval)"
    return f"{diff.delta:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]"


def _sign(diff: Difference) -> int:
    """+1 / -1 when the 95% interval clears zero, 0 when it does not (or there is none)."""
    if diff.low is None:
        return 0
    return 1 if diff.low > 0 else -1 if diff.high < 0 else 0


def _runs(found: list) -> list[str]:
    return sorted({a.run.run_id for a, _ in found} | {b.run.run_id for _, b in found})


def _best_per_run(treated: list[Row], control: list[Row], outcomes: Outcomes):
    """(difference, pairs) of the treated run with the largest paired gain over `control`, or (None, [])."""
    by_run: dict[str, list[Row]] = {}
    for row in treated:
        by_run.setdefault(row.run.run_id, []).append(row)
    best = (None, [])
    for rows in by_run.values():
        diff, found = _gain(rows, control, outcomes)
        if diff is not None and (best[0] is None or diff.delta > best[0].delta):
            best = (diff, found)
    return best


def rq1(units: list[Row], outcomes: Outcomes, h2: dict) -> Answer:
    question = "Does continued pretraining on domain data outperform direct fine-tuning?"
    treated = _in_domain(units, ("pretrain",))
    control = [r for r in units if r.run.approach == "sft" and r.task_domain in r.run.train_domains]
    diff, found = _gain(treated, control, outcomes)
    seq = f"pretrain→SFT vs SFT (H2): {h2['verdict']}"
    if h2.get("difference") and h2["difference"].get("ci95"):
        d = h2["difference"]
        seq += f", {d['absolute']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"
    if diff is None:
        return Answer(
            "RQ1",
            question,
            "not enough runs",
            "needs a continued-pretraining run and a direct SFT run of the same base model scored on the "
            f"same in-domain tasks (e.g. `{EXAMPLE['finance']}` beside an SFT run); {seq}",
        )
    sign = _sign(diff)
    said = {1: "pretraining alone is better", -1: "direct fine-tuning is better", 0: "the intervals cannot tell"}[sign]
    return Answer(
        "RQ1",
        question,
        "answered" if sign else "inconclusive",
        f"{said}: pretrain − SFT {_interval(diff)} over {diff.pairs} paired score(s){_budgets(found)}; {seq}",
        _runs(found),
        [diff.to_dict()],
    )


def _budgets(found: list) -> str:
    """The two sides' training steps, said when they differ: a 20-step pretraining run against a 150-step SFT run
    compares budgets as much as approaches."""

    def steps(rows) -> set:
        return {
            r.run.record.train.config.max_steps if r.run.record.train and r.run.record.train.config else None
            for r in rows
        }

    pretrain, sft = steps(a for a, _ in found), steps(b for _, b in found)
    if pretrain == sft:
        return ""
    shown = lambda values: "/".join(str(v) for v in sorted(values, key=str))  # noqa: E731
    return f" (unequal budgets: pretraining {shown(pretrain)} steps, SFT {shown(sft)} steps)"


def rq2(units: list[Row], outcomes: Outcomes) -> Answer:
    question = "Which domains benefit most from specialised training?"
    control = [r for r in units if r.run.approach == "zero-shot"]
    gains, runs = {}, []
    for domain in ("finance", "math", "general"):
        treated = [
            r for r in _in_domain(units, ("pretrain", "sft", "sequential", "multitask")) if r.task_domain == domain
        ]
        diff, found = _best_per_run(treated, control, outcomes)
        if diff is not None:
            gains[domain] = (diff, found[0][0].run.run_id)
            runs += _runs(found)
    missing = [d for d in ("finance", "math", "general") if d not in gains]
    shown = "; ".join(
        f"{DOMAINS[d].lower()} {_interval(diff)} ({_relative(diff)})"
        for d, (diff, _) in sorted(gains.items(), key=lambda kv: -kv[1][0].delta)
    )
    need = f"{', '.join(missing)} (e.g. `{EXAMPLE[missing[0]]}`)" if missing else ""
    if len(gains) < 2:
        return Answer(
            "RQ2",
            question,
            "not enough runs",
            (f"measured: {shown}; " if shown else "") + f"needs a trained and a zero-shot run on {need}",
            sorted(set(runs)),
        )
    ranked = sorted(gains.items(), key=lambda kv: -kv[1][0].delta)
    (top, (a, _)), (second, (b, _)) = ranked[0], ranked[1]
    apart = a.low is not None and b.high is not None and a.low > b.high
    verdict = "answered" if apart else "inconclusive"
    lead = (
        f"{DOMAINS[top].lower()} gains most"
        if apart
        else f"{DOMAINS[top].lower()} and {DOMAINS[second].lower()} overlap"
    )
    tail = f"; not measured: {', '.join(missing)}" if missing else ""
    return Answer(
        "RQ2",
        question,
        verdict,
        f"{lead} (best run's paired gain over zero-shot): {shown}{tail}",
        sorted(set(runs)),
        [{"domain": d, **diff.to_dict(), "run_id": rid} for d, (diff, rid) in ranked],
    )


def _relative(diff: Difference) -> str:
    return "relative n/a" if diff.relative is None else f"{100 * diff.relative:+.0f}%"


def _params(row: Row) -> float | None:
    return row.run.record.train.total_params if row.run.record.train else None


def rq3(units: list[Row], outcomes: Outcomes) -> Answer:
    question = "How does model size affect the benefits of domain-specific training?"
    treated = _in_domain(units, ("pretrain", "sft", "sequential", "multitask"))
    control = [r for r in units if r.run.approach == "zero-shot"]
    by_model: dict[str, tuple[Difference, float | None, list]] = {}
    for model in sorted({r.run.base_model for r in treated}):
        rows = [r for r in treated if r.run.base_model == model]
        diff, found = _best_per_run(rows, control, outcomes)
        if diff is not None:
            by_model[model] = (diff, _params(found[0][0]), found)
    order = sorted(by_model.items(), key=lambda kv: kv[1][1] or math.inf)
    shown = "; ".join(f"{m} ({_size(p)}) {_interval(d)}" for m, (d, p, _) in order)
    runs = sorted({rid for _, (_, _, found) in order for rid in _runs(found)})
    if len(by_model) < 2:
        return Answer(
            "RQ3",
            question,
            "not enough runs",
            (f"gain over zero-shot measured for {shown}; " if shown else "") + f"needs {MORE_SIZES}",
            runs,
        )
    (small, (a, _, _)), (large, (b, _, _)) = order[0], order[-1]
    se = _se(a, b)
    change = b.delta - a.delta
    if se is None or abs(change) <= Z95 * se:
        return Answer("RQ3", question, "inconclusive", f"gains by size: {shown}; the intervals overlap", runs)
    trend = "grows" if change > 0 else "shrinks"
    return Answer("RQ3", question, "answered", f"the gain {trend} with size ({small} → {large}): {shown}", runs)


def _size(params: float | None) -> str:
    return "? params" if not params else f"{params / 1e6:.1f}M" if params < 1e9 else f"{params / 1e9:.2f}B"


def _se(a: Difference, b: Difference) -> float | None:
    if a.low is None or b.low is None:
        return None
    return math.hypot((a.high - a.low) / (2 * Z95), (b.high - b.low) / (2 * Z95))


def rq4(units: list[Row], against: str) -> Answer:
    question = "Can small models achieve competitive performance with proper training?"
    parts, runs, evidence, verdicts = [], [], [], []
    others = [r for r in units if r.ratio is not None and r.differs]
    for domain in ("finance", "math", "general"):
        rows = [r for r in units if r.ratio is not None and not r.differs and r.task_domain == domain]
        ranked = runs_ratio(full_test_set(rows))
        if not ranked:
            continue
        run, ratio, se, tasks = ranked[0]
        low = None if se is None else ratio - Z95 * se
        high = None if se is None else ratio + Z95 * se
        interval = "" if low is None else f" [{pct(low)}, {pct(high)}]"
        parts.append(
            f"{DOMAINS[domain].lower()} {pct(ratio)}{interval} of {against} ({run.base_model} "
            f"{run.approach}, {len(tasks)} task(s))"
        )
        runs.append(run.run_id)
        evidence.append({"domain": domain, "run_id": run.run_id, "ratio": ratio, "stderr": se, "tasks": tasks})
        verdicts.append(low is not None and (low >= 0.8 or high < 0.8))
    if not parts:
        hint = (
            (
                f"; {len(others)} score(s) compare with {against} under another protocol (e.g. log-likelihood vs "
                "generated answers): score the generative twins (`--tasks fin_sentiment_gen`)"
            )
            if others
            else ""
        )
        return Answer(
            "RQ4",
            question,
            "not enough runs",
            f"needs a like-for-like score (same scoring and shots as the published number) on a full test set{hint}",
        )
    verdict = "answered" if all(verdicts) else "inconclusive"
    # answered: every interval lies on one side of the 80% domain-matching criterion
    return Answer("RQ4", question, verdict, "best like-for-like run per domain: " + "; ".join(parts), runs, evidence)


def rq5(budget: list[dict]) -> Answer:
    question = "What is the optimal balance between pretraining and fine-tuning steps?"
    cells: dict[tuple, list[dict]] = {}
    for row in budget:
        cells.setdefault((row["model"], row["sft_data"], row["total_steps"], row["task"], row["metric"]), []).append(
            row
        )
    if not cells:
        return Answer(
            "RQ5",
            question,
            "not enough runs",
            f"needs a fixed step budget split as k pretraining + (total − k) SFT steps for 2+ values of "
            f"k (the budget sweep in {SIZES_PLAN})",
        )
    parts, runs, decided = [], [], []
    for (model, _data, total, task, _metric), rows in sorted(cells.items()):
        ranked = sorted(rows, key=lambda r: -r["value"])
        best, second = ranked[0], ranked[1]
        errors = (best["stderr"], second["stderr"])
        apart = None not in errors and best["value"] - second["value"] > Z95 * math.hypot(*errors)
        decided.append(apart)
        parts.append(
            f"{model} {task}: best k = {best['pretrain_steps']} of {total} ({best['value']:.3f}"
            + ("" if best["stderr"] is None else f" ± {best['stderr']:.3f}")
            + ")"
            + ("" if apart else f", not apart from k = {second['pretrain_steps']}")
        )
        runs += [r["run_id"] for r in rows]
    return Answer("RQ5", question, "answered" if all(decided) else "inconclusive", "; ".join(parts), sorted(set(runs)))


def answer_questions(
    units: list[Row], outcomes: Outcomes, hypotheses: list[dict], budget: list[dict], against: str
) -> list[dict]:
    h2 = next((h for h in hypotheses if h["name"] == "H2"), {"verdict": "not enough runs"})
    return [
        a.to_dict()
        for a in (
            rq1(units, outcomes, h2),
            rq2(units, outcomes),
            rq3(units, outcomes),
            rq4(units, against),
            rq5(budget),
        )
    ]
