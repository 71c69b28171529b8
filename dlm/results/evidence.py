"""From report rows to evidence: the per-document items behind a score, runs grouped into the seeds of one setup,
treated-vs-control gains and ratios to the large model with every source of noise (results/stats.py), and the one
decision rule every verdict, criterion and research question uses.

Decisions. A claim tests one quantity (a gain, a ratio) against a threshold, from the quantity's bootstrap
replicates: p_above = P(quantity <= threshold) and p_below = P(quantity >= threshold), one-sided (results/stats.py
`bootstrap_p`). A claim over several candidates (a hypothesis over several training setups, a criterion over
several runs: "some run reaches 80%") takes the best candidate with the selection paid for: p_yes = min p_above x m
(Holm's first step over the m candidates), p_no = max p_below (every candidate must be below). A family of claims
(the hypotheses H1-H3, the criteria, the research questions) is then corrected by Holm over the claims, and a claim
is "supported"/"met" when its corrected p_yes < ALPHA, "not supported"/"not met" when its corrected p_no < ALPHA,
"inconclusive" otherwise. ALPHA = 0.025 one-sided: for one candidate in a family of one this is exactly "the whole
two-sided 95% interval lies above (below) the threshold".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dlm.results.matrix import Row
from dlm.results.paired import Outcomes
from dlm.results.seeds import setup_key
from dlm.results.stats import (
    ITERS,
    SEED,
    VERDICTS,
    Comparison,
    Interval,
    Published,
    align,
    bootstrap_p,
    compare,
    holm,
    pool,
    ratio_to_large,
)

ALPHA = 0.025  # one-sided level of every decision (see the module docstring)
MISSING_METRIC = "missing"


def _normal_interval(estimate: float, se: float | None, method: str, rng: np.random.Generator) -> Interval:
    """An interval from a stderr alone (records without outcomes): normal replicates, so the same decision code
    applies; wider than the paired bootstrap, since the two sides' covariance is unknown."""
    if se is None:
        draws = np.full(ITERS, math.nan)
        return Interval(estimate, None, None, "no stderr recorded", draws)
    draws = rng.normal(estimate, se, ITERS)
    low, high = np.percentile(draws, [2.5, 97.5])
    return Interval(estimate, float(low), float(high), method, draws)


# --- gains: treated vs control -------------------------------------------------------------------------------------
@dataclass
class Gain:
    """treated - control over one or more tasks (each counting once), the runs of each side being the seeds of one
    setup; every source of noise in its intervals."""

    comparison: Comparison
    pairs: list[tuple[Row, Row]]
    tasks: list[str]

    @property
    def runs(self) -> list[str]:
        return sorted({a.run.run_id for a, _ in self.pairs} | {b.run.run_id for _, b in self.pairs})

    @property
    def treated_runs(self) -> list[str]:
        return sorted({a.run.run_id for a, _ in self.pairs})

    @property
    def control_runs(self) -> list[str]:
        return sorted({b.run.run_id for _, b in self.pairs})

    def describe(self) -> str:
        a, c = self.comparison.absolute, self.comparison
        interval = "no interval" if a.low is None else f"[{a.low:+.4f}, {a.high:+.4f}]"
        rel = c.relative
        rel_text = (
            "relative n/a (control 0)"
            if rel is None
            else f"relative {100 * rel.estimate:+.1f}%"
            + ("" if rel.low is None else f" [{100 * rel.low:+.0f}%, {100 * rel.high:+.0f}%]")
        )
        seeds = f"{c.seeds[0]} vs {c.seeds[1]} seed(s)"
        return (
            f"treated {c.treated.estimate:.4f} vs control {c.control.estimate:.4f}: {a.estimate:+.4f} {interval}, "
            f"{rel_text}; {len(self.tasks)} task(s), {c.documents} documents, {seeds}; {a.method}"
        )

    def to_dict(self) -> dict:
        c = self.comparison
        return {
            "treated": c.treated.estimate,
            "control": c.control.estimate,
            "absolute": c.absolute.estimate,
            "ci95": None if c.absolute.low is None else [c.absolute.low, c.absolute.high],
            "relative": None if c.relative is None else c.relative.estimate,
            "relative_ci95": None
            if c.relative is None or c.relative.low is None
            else [c.relative.low, c.relative.high],
            "method": c.absolute.method,
            "notes": list(c.absolute.notes) + ([] if c.relative is None else list(c.relative.notes)),
            "tasks": self.tasks,
            "documents": c.documents,
            "seeds": list(c.seeds),
            "runs": self.runs,
            "treated_runs": self.treated_runs,
            "control_runs": self.control_runs,
        }


def _unique(rows: list[Row]) -> list[Row]:
    return list({r.run.run_id: r for r in rows}.values())


def gain(found: list[tuple[Row, Row]], outcomes: Outcomes, seed: int = SEED) -> Gain | None:
    """The gain of the treated rows over their control rows (pairs from results/verdicts.py `pairs`), pooled over
    tasks; each task's treated runs (and control runs) are the seeds of one setup. None when nothing is paired."""
    if not found:
        return None
    by_task: dict[tuple, list[tuple[Row, Row]]] = {}
    for a, b in found:
        by_task.setdefault((a.score.task, a.score.metric, a.score.filter), []).append((a, b))
    comparisons = []
    rng = np.random.default_rng(seed)
    for i, (_task, task_pairs) in enumerate(sorted(by_task.items())):
        treated, control = _unique([a for a, _ in task_pairs]), _unique([b for _, b in task_pairs])
        one_to_one = len(task_pairs) == len(treated) == len(control) > 1
        sides = [[outcomes.items(r) for r in side] for side in (treated, control)]
        if all(x is not None for side in sides for x in side):
            aggregation = sides[0][0][2]
            aligned = align(*[(docs, items) for side in sides for docs, items, _ in side])
            t_items, c_items = aligned[: len(treated)], aligned[len(treated) :]
            if aligned and aligned[0]:
                comparisons.append(compare(t_items, c_items, aggregation, paired_seeds=one_to_one, seed=seed + 7 * i))
                continue
        comparisons.append(_from_stderrs(treated, control, rng))
    return Gain(pool(comparisons), found, sorted({k[0] for k in by_task}))


def mean_se(rows: list[Row]) -> float | None:
    """Standard error of the mean score of `rows` (the seeds of one setup) from their stderrs alone: each run's own
    noise, and, with several seeds, their spread (which holds the seed-to-seed variation): the larger of the two."""
    errors = [r.score.stderr for r in rows]
    if None in errors:
        return None
    k = len(rows)
    own = math.sqrt(sum(e * e for e in errors)) / k
    if k < 2:
        return own
    return max(own, float(np.std([r.score.value for r in rows], ddof=1)) / math.sqrt(k))


def _from_stderrs(treated: list[Row], control: list[Row], rng) -> Comparison:
    t = float(np.mean([r.score.value for r in treated]))
    c = float(np.mean([r.score.value for r in control]))
    se = mean_se

    method = "normal approximation from stderrs (no per-document outcomes)"
    ti, ci = _normal_interval(t, se(treated), method, rng), _normal_interval(c, se(control), method, rng)
    diff_se = None if ti.low is None or ci.low is None else math.hypot(se(treated), se(control))
    absolute = _normal_interval(t - c, diff_se, method, rng)
    relative = None
    if c != 0 and absolute.low is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = absolute.draws / np.abs(ci.draws)
        low, high = np.percentile(draws[np.isfinite(draws)], [2.5, 97.5])
        relative = Interval((t - c) / abs(c), float(low), float(high), method, draws)
    n = min((r.score.n or 0) for r in treated + control)
    return Comparison(absolute, relative, ti, ci, n, (len(treated), len(control)))


def by_setup(found: list[tuple[Row, Row]]) -> dict[str, list[tuple[Row, Row]]]:
    """Pairs grouped by the treated run's setup (runs equal in everything but their seed): each group is one
    candidate of a claim, its seeds pooled two-level."""
    groups: dict[str, list[tuple[Row, Row]]] = {}
    for a, b in found:
        groups.setdefault(setup_key(a.run) or a.run.run_id, []).append((a, b))
    return groups


# --- ratios to the large model ---------------------------------------------------------------------------------------
def ratio(rows: list[Row], outcomes: Outcomes, large_items: dict | None = None, seed: int = SEED) -> Interval | None:
    """Our mean score over `rows` (one run or the seeds of one setup, one or more tasks) as a share of the large
    model's, both sides resampled (results/stats.py `ratio_to_large`); mean over tasks of per-task ratios. None
    when no row has a baseline."""
    by_task: dict[str, list[Row]] = {}
    for row in rows:
        if row.baseline is not None:
            by_task.setdefault(row.score.task, []).append(row)
    intervals = []
    rng = np.random.default_rng(seed)
    for i, (_task, task_rows) in enumerate(sorted(by_task.items())):
        baseline = task_rows[0].baseline
        ours = [outcomes.items(r) for r in task_rows]
        if all(x is not None for x in ours):
            large = Published(baseline.value, baseline.n, baseline.stderr)
            aligned = align(*[(docs, items) for docs, items, _ in ours])
            if aligned and aligned[0]:
                intervals.append(ratio_to_large(aligned, ours[0][2], large, seed=seed + 11 * i).interval)
                continue
        value = float(np.mean([r.score.value for r in task_rows]))
        ours_i = _normal_interval(value, mean_se(task_rows), "normal approximation from stderrs", rng)
        large_se = baseline.stderr or (
            math.sqrt(max(baseline.value * (1 - baseline.value), 0.0) / baseline.n) if baseline.n else 0.0
        )
        large_draws = rng.normal(baseline.value, large_se, ITERS) if large_se else np.full(ITERS, baseline.value)
        with np.errstate(divide="ignore", invalid="ignore"):
            draws = ours_i.draws / large_draws
        finite = draws[np.isfinite(draws)]
        low, high = (None, None) if ours_i.low is None or not len(finite) else np.percentile(finite, [2.5, 97.5])
        intervals.append(Interval(value / baseline.value, low, high, ours_i.method, draws))
    if not intervals:
        return None
    draws = np.mean([i.draws for i in intervals], axis=0)
    finite = draws[np.isfinite(draws)]
    estimate = float(np.mean([i.estimate for i in intervals]))
    if any(i.low is None for i in intervals) or len(finite) < 0.99 * len(draws):
        return Interval(estimate, None, None, intervals[0].method, draws)
    low, high = np.percentile(finite, [2.5, 97.5])
    return Interval(estimate, float(low), float(high), intervals[0].method, draws)


# --- decisions -------------------------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One candidate of a claim: its interval, the threshold it is tested against, and its one-sided p-values."""

    label: str
    interval: Interval
    threshold: float
    on: str  # "absolute" | "relative" | "ratio"
    reason: str = ""  # why this quantity (e.g. a relative threshold over a zero control, decided on the absolute)
    p_above: float | None = None
    p_below: float | None = None
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        draws = self.interval.draws
        if self.interval.low is not None and np.isfinite(draws).any():
            self.p_above = bootstrap_p(draws, self.threshold, "greater")
            self.p_below = bootstrap_p(draws, self.threshold, "less")


@dataclass
class Claim:
    """One claim of a family (a hypothesis, a criterion, a research question): its candidates and its decision."""

    name: str
    candidates: list[Candidate]
    words: str = "hypothesis"  # "hypothesis": supported / not supported; "criterion": met / not met
    p_yes: float | None = None  # min p_above x m (the best candidate, its selection paid for)
    p_no: float | None = None  # max p_below (every candidate below the threshold)
    p_yes_adjusted: float | None = None  # after the family's Holm correction
    p_no_adjusted: float | None = None
    family: str = ""
    family_size: int = 0
    verdict: str = "inconclusive"

    def __post_init__(self):
        above = [c.p_above for c in self.candidates if c.p_above is not None]
        below = [c.p_below for c in self.candidates]
        if above:
            self.p_yes = min(1.0, min(above) * len(self.candidates))
        if below and None not in below:
            self.p_no = max(below)

    @property
    def best(self) -> Candidate | None:
        known = [c for c in self.candidates if c.p_above is not None]
        return min(known, key=lambda c: c.p_above) if known else (self.candidates[0] if self.candidates else None)

    def correction(self) -> dict:
        return {
            "method": "Holm",
            "family": self.family,
            "size": self.family_size,
            "candidates": len(self.candidates),
            "p": self.p_yes_adjusted,
            "p_not": self.p_no_adjusted,
        }


def decide_family(claims: list[Claim], family: str) -> None:
    """Holm over the family's claims (those that have candidates), then each claim's verdict (module docstring)."""
    tested = [c for c in claims if c.candidates]
    yes = holm([c.p_yes for c in tested])
    no = holm([c.p_no for c in tested])
    for claim, p_yes, p_no in zip(tested, yes, no):
        claim.p_yes_adjusted, claim.p_no_adjusted = p_yes, p_no
        claim.family, claim.family_size = family, len(tested)
        positive, negative, unsure = VERDICTS[claim.words]
        if p_yes is not None and p_yes < ALPHA:
            claim.verdict = positive
        elif p_no is not None and p_no < ALPHA:
            claim.verdict = negative
        else:
            claim.verdict = unsure


def gain_candidate(label: str, g: Gain, threshold: float | None, relative: bool) -> Candidate:
    """The candidate a gain is decided on: relative when asked and meaningful; a relative threshold over a control
    of 0 (or whose interval includes 0) is decided on the absolute difference, more than 0, and says so."""
    c = g.comparison
    if relative and threshold is not None:
        why = None
        if c.control.estimate == 0:
            why = "the control scored 0"
        elif c.control.includes(0.0):
            why = "the control's interval includes 0"
        elif c.relative is None or c.relative.low is None:
            why = "the relative gain is undefined in too many resamples"
        if why is None:
            return Candidate(label, c.relative, threshold, "relative", detail=g.to_dict())
        reason = f"relative threshold not applicable ({why}): decided on the absolute difference, more than 0"
        return Candidate(label, c.absolute, 0.0, "absolute", reason, detail=g.to_dict())
    return Candidate(label, c.absolute, threshold or 0.0, "absolute", detail=g.to_dict())


def measurable(rows: list[Row], scores_by_run: dict) -> bool:
    """A generative row is measurable unless its run named no label for every document (missing = 1)."""
    for row in rows:
        missing = scores_by_run.get((row.run.run_id, row.score.task, MISSING_METRIC))
        if missing is not None and missing >= 1.0:
            return False
    return True
