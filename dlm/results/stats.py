"""The statistics behind every verdict: intervals that carry every source of noise, decisions on the interval,
multiplicity corrections. Pure functions of per-document items (numpy only; nothing here reads a record).

Inputs. A *run* is the list of per-document items lm-eval hands to a metric's aggregation (0/1 for `acc`,
(gold, pred) pairs for F1/MCC; harness_tasks/outcomes.py), all runs of a comparison aligned on the same documents
(`align` restricts runs to the documents all of them scored). `aggregation` names the metric's aggregation in
outcomes.py's table ("mean", "f1_weighted", "mcc", ...; the vectorised form is used where there is one) or is the
function itself. Seeds are several runs of one setup.

Intervals (95% unless `level` says otherwise; every one carries its bootstrap replicates, so a p-value for any
threshold can be read from the same draws):
- `compare(treated, control, aggregation)`: treated - control, its relative gain (treated - control) / |control|,
  and each side's own interval, from ONE two-level bootstrap. Documents: every replicate draws one set of
  document indices and applies it to every run of both sides (documents are shared by seeds and by treated and
  control). Seeds: every replicate also shifts each side by a draw of its seed-level noise: normal, with the
  variance of the mean over k seeds, itself redrawn from its sampling distribution (a scaled chi-square at the
  Welch-Satterthwaite degrees of freedom, k - 1 for one seeded side), less each run's own document noise, which the
  document draws already carry. With `paired_seeds` (seed i of treated and control belong together) the per-seed
  differences are used. With the document noise negligible the interval is Student's t for one seeded side and
  Welch's for two. Why not resample the seeds themselves: a resample of 3-5 seeds takes a handful of lopsided
  values and its variance is too small by (k-1)/k; such intervals covered the truth 84-86% of the time where seeds
  dominate (bench/coverage.py). With one run a side there is no seed term: the plain paired document bootstrap
  (percentile). The relative gain divides each replicate's difference by the same replicate's control.
- `ratio_to_large(ours, aggregation, large)`: ours / the large model's score, resampling the large model too:
  its own per-document items on the same documents (`Measured`), or, for a published number without them
  (`Published`), binomial noise at its test-set size (or its reported stderr). A published number of unknown size
  and stderr is used as exact and the result says so (`large_noise`, `size_known`): never a silent exact number.

Decisions (`decide`, `decide_gain`): "supported"/"met" when the whole interval clears the threshold, "not
supported"/"not met" when it lies entirely below it, "inconclusive" otherwise. A relative threshold over a control
of zero, or whose interval includes zero, is decided on the absolute difference, and the decision says so.

Multiplicity: `holm` (family-wise, for verdict families), `benjamini_hochberg` (q-values, for the approach x domain
matrix), `bootstrap_p` (one- or two-sided, for a threshold, from an interval's replicates). Power before running:
results/power.py. Coverage of every interval type by simulation: results/coverage.py and bench/coverage.py.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dlm.harness_tasks.outcomes import draws_for, on_draws

ITERS = 2000
SEED = 1234
# Document draws are the same for every comparison of a report (common random numbers): two gains that share a
# control see the same control noise, so their difference is paired, and a run's metric on the draws is computed
# once (`_DRAWN`). Draws of different tasks stay independent in effect: they index different documents, aligned in
# document-hash order. The seed-level noise is drawn with each comparison's own `seed`.
DOCUMENT_SEED = 4321
LEVEL = 0.95
MEAN = "mean"
VERDICTS = {
    "hypothesis": ("supported", "not supported", "inconclusive"),
    "criterion": ("met", "not met", "inconclusive"),
}
Aggregation = str | Callable


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float | None
    high: float | None
    method: str
    draws: np.ndarray = field(repr=False, compare=False)
    df: float = math.inf  # degrees of freedom of the quantiles (inf: normal / plain percentile)
    notes: tuple[str, ...] = ()

    @property
    def width(self) -> float | None:
        return None if self.low is None else self.high - self.low

    def includes(self, value: float) -> bool:
        return self.low is not None and self.low <= value <= self.high

    def as_dict(self) -> dict:
        """The interval without its replicates (for a record or a report)."""
        ci = None if self.low is None else [self.low, self.high]
        return {"estimate": self.estimate, "ci": ci, "method": self.method, "df": self.df, "notes": list(self.notes)}


@dataclass(frozen=True)
class Comparison:
    absolute: Interval  # treated - control
    relative: Interval | None  # (treated - control) / |control|; None when the control is 0
    treated: Interval
    control: Interval
    documents: int
    seeds: tuple[int, int]  # (treated, control)


@dataclass(frozen=True)
class Measured:
    """A large model scored here: its per-document items on the same documents as ours."""

    items: Sequence


@dataclass(frozen=True)
class Published:
    """A published score without per-document outcomes: its value, test-set size and/or reported stderr."""

    value: float
    n: int | None = None
    stderr: float | None = None


@dataclass(frozen=True)
class Ratio:
    interval: Interval  # ours / large
    large_noise: str  # how the large model's uncertainty entered
    size_known: bool  # False: a published number of unknown size (and no stderr) was taken as exact


@dataclass(frozen=True)
class Decision:
    verdict: str
    on: str  # "absolute" | "relative"
    reason: str


# --- documents -----------------------------------------------------------------------------------------------
def align(*runs: tuple[Sequence[str], Sequence]) -> list[list]:
    """Each run's items restricted to the documents every run scored, in one order (sorted by document hash);
    a run is (document hashes, items)."""
    first = runs[0][0] if runs else None
    if (
        isinstance(first, list)
        and len(set(first)) == len(first)
        and all(isinstance(d, list) and d == first for d, _ in runs[1:])
    ):
        # the common case (one task's runs list its documents in one order): the same result, without a dict a run
        order = sorted(range(len(first)), key=first.__getitem__)
        return [[items[i] for i in order] for _, items in runs]
    indexes = [{d: i for i, d in enumerate(docs)} for docs, _ in runs]
    common = sorted(set.intersection(*(set(index) for index in indexes))) if runs else []
    return [[items[index[d]] for d in common] for (_, items), index in zip(runs, indexes)]


# --- the one bootstrap -----------------------------------------------------------------------------------------
def _full(run: Sequence, aggregation: Aggregation, content: tuple | None = None) -> float:
    """The metric on every document once; kept by `content` (`_content`) when given."""
    if content is not None and content in _FULL:
        return _FULL[content]
    value = float(on_draws(list(run), aggregation, np.arange(len(run))[None, :])[0])
    _remember(_FULL, content, value)
    return value


def _on_shared_draws(
    sides: list[list[Sequence]], aggregation: Aggregation, iters: int, seed: int, contents: list | None = None
) -> list:
    """For each side, a (runs x iters) matrix: every run's metric on the same document draws. `contents`: each
    run's `_content` key, in the order of the sides' runs, when the caller has them already."""
    n = len(sides[0][0])
    if any(len(run) != n for side in sides for run in side):
        raise ValueError("every run of a comparison must score the same documents (align them with `align`)")
    runs = [run for side in sides for run in side]
    contents = contents if contents is not None else [_content(run, aggregation) for run in runs]
    keys = [None if content is None else (content, iters, seed) for content in contents]
    missing = [i for i, key in enumerate(keys) if key is None or key not in _DRAWN]
    if missing:
        parts: dict[int, list[np.ndarray]] = {i: [] for i in missing}
        for draws in draws_for(n, iters, seed):
            for i in missing:
                parts[i].append(on_draws(list(runs[i]), aggregation, draws))
        for i in missing:
            _remember(_DRAWN, keys[i], np.concatenate(parts[i]))
    rows = [_DRAWN[key] if key is not None and key in _DRAWN else None for key in keys]
    rows = [row if row is not None else np.concatenate(parts[i]) for i, row in enumerate(rows)]
    out, start = [], 0
    for side in sides:
        out.append(np.stack(rows[start : start + len(side)]))
        start += len(side)
    return out


# A report compares one run with many others (H1, H3, every research question, each over several tasks) on the
# same documents and the same draws (`draws_for` is seeded): a run's metric on the draws, and on all documents, is
# computed once and kept, keyed by its items' bytes and the aggregation (and the draws). 1,000 runs x 3 tasks x
# 2,000 draws is about 50 MB.
_DRAWN: dict[tuple, np.ndarray] = {}
_FULL: dict[tuple, float] = {}
_REMEMBERED_MAX = 20_000


def _content(run: Sequence, aggregation: Aggregation) -> tuple | None:
    """What a run's metric depends on: the aggregation and the items' bytes; None for items that are not numbers
    (generated text) or an aggregation given as a function (computed every time)."""
    if not isinstance(aggregation, str):
        return None
    try:
        content = np.asarray(run)
    except (TypeError, ValueError):  # ragged items
        return None
    if content.dtype.kind not in "biuf":  # text (the string "10" must not share a key with the number 10), None
        return None
    # hashed in its own type: as floats, labels above 2**53 that differ would read alike
    digest = hashlib.blake2b(content.tobytes(), digest_size=16).digest()
    return (aggregation, content.dtype.str, content.shape, digest)


def _remember(kept: dict, key: tuple | None, value) -> None:
    if key is None:
        return
    if len(kept) >= _REMEMBERED_MAX:
        kept.pop(next(iter(kept)))  # the oldest entry
    kept[key] = value


def _seed_weights(k: int, iters: int, rng: np.random.Generator) -> np.ndarray:
    """iters x k weights of a resample of k seeds (multinomial counts / k); a single run always weighs 1."""
    if k == 1:
        return np.ones((iters, 1))
    return rng.multinomial(k, np.full(k, 1.0 / k), size=iters) / k


def _seed_part(full: np.ndarray, on_docs: np.ndarray) -> tuple[float, float, int]:
    """(between-seed variance, each run's own document variance, k) of one side, from the seeds' scores on all
    documents (`full`, k) and on the document draws (`on_docs`, k x iters).

    The scores of k seeds on the same documents differ by the seed's effect AND by each run's own luck on these
    documents; the document draws already carry that luck, so `_two_level` takes it out of the between-seed
    variance (method of moments for seeds crossed with documents): own = (mean single-run bootstrap variance -
    bootstrap variance of the seeds' mean) x k / (k - 1)."""
    k = len(full)
    if k < 2:
        return 0.0, 0.0, k
    between = float(np.var(full, ddof=1))
    own = (float(np.var(on_docs, axis=1, ddof=1).mean()) - float(np.var(on_docs.mean(axis=0), ddof=1))) * k / (k - 1)
    return between, max(0.0, own), k


def _two_level(
    doc_draws: np.ndarray, seed_parts: list[tuple[float, float, int]], rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """(replicates, df): each document replicate plus a normal seed-level shift whose variance is itself redrawn per
    replicate, so that few seeds give Student-t tails: the seed variance of the mean, V = sum(between / k), is drawn
    as V x df / chi2(df) with its Welch-Satterthwaite df (k - 1 for one seeded side), less each run's own document
    noise (sum(own / k), already in the document draws), floored at 0. With the document noise negligible this is
    Student's t for one seeded side and Welch's for two. df: those degrees of freedom (reported). The document
    replicates as they are when no side has seeds that differ."""
    parts = [(between / k, own / k, k) for between, own, k in seed_parts if k > 1 and between > 0]
    if not parts:
        return doc_draws, math.inf
    total = sum(v for v, _, _ in parts)
    df = total**2 / sum(v**2 / (k - 1) for v, _, k in parts)
    iters = len(doc_draws)
    redrawn = total * df / rng.chisquare(df, iters)
    seed_var = np.maximum(redrawn - sum(own for _, own, _ in parts), 0.0)
    return doc_draws + np.sqrt(seed_var) * rng.standard_normal(iters), df


def interval_from_draws(point: float, draws: np.ndarray, method: str, level: float, df=math.inf, notes=()) -> Interval:
    finite = draws[np.isfinite(draws)]
    if len(finite) < len(draws) * 0.99:
        return Interval(point, None, None, method, draws, df, (*notes, "undefined in over 1% of resamples"))
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(point, float(low), float(high), method, draws, df, tuple(notes))


def compare(
    treated: Sequence[Sequence],
    control: Sequence[Sequence],
    aggregation: Aggregation = MEAN,
    *,
    paired_seeds: bool = False,
    iters: int = ITERS,
    seed: int = SEED,
    level: float = LEVEL,
    correct_few_seeds: bool = True,
) -> Comparison:
    """treated - control (absolute and relative) with every source of noise; `treated` and `control` are lists of
    runs (one per seed), each a list of per-document items on the same documents. `correct_few_seeds=False`
    resamples the seeds themselves instead (too narrow with few seeds; for comparison only)."""
    treated, control = [list(r) for r in treated], [list(r) for r in control]
    if paired_seeds and len(treated) != len(control):
        raise ValueError("paired seeds need as many treated as control runs")
    contents = [_content(r, aggregation) for r in (*treated, *control)]
    t_full = np.array([_full(r, aggregation, c) for r, c in zip(treated, contents)])
    c_full = np.array([_full(r, aggregation, c) for r, c in zip(control, contents[len(treated) :])])
    m_t, m_c = _on_shared_draws([treated, control], aggregation, iters, DOCUMENT_SEED, contents)
    rng = np.random.default_rng(seed + 1)
    t_point, c_point = float(t_full.mean()), float(c_full.mean())
    delta = t_point - c_point
    seeded = max(len(treated), len(control)) > 1

    if correct_few_seeds:
        t_docs, c_docs = m_t.mean(axis=0), m_c.mean(axis=0)  # the seeds' mean on each document draw
        t_part, c_part = _seed_part(t_full, m_t), _seed_part(c_full, m_c)
        diff_parts = [_seed_part(t_full - c_full, m_t - m_c)] if paired_seeds else [t_part, c_part]
        diff_draws, df = _two_level(t_docs - c_docs, diff_parts, rng)
        t_draws, t_df = _two_level(t_docs, [t_part], rng)
        c_draws, c_df = _two_level(c_docs, [c_part], rng)
    else:  # resample the seeds themselves (too narrow with few seeds; for comparison only)
        w_t = _seed_weights(len(treated), iters, rng)
        w_c = w_t if paired_seeds else _seed_weights(len(control), iters, rng)
        t_draws, c_draws = (w_t * m_t.T).sum(axis=1), (w_c * m_c.T).sum(axis=1)
        diff_draws, df, t_df, c_df = t_draws - c_draws, math.inf, math.inf, math.inf
    method = "two-level bootstrap (shared documents, seeds)" if seeded else "paired bootstrap (shared documents)"
    notes = () if seeded else ("one run a side: variation between training seeds not measured",)
    absolute = interval_from_draws(delta, diff_draws, method, level, df, notes)
    sides = [
        interval_from_draws(t_point, t_draws, method, level, t_df),
        interval_from_draws(c_point, c_draws, method, level, c_df),
    ]

    relative = None
    if c_point != 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_draws = diff_draws / np.abs(c_draws)
        rel_notes = ["relative gain: the control (the denominator) is resampled too"]
        if sides[1].includes(0.0):
            rel_notes.append("the control's interval includes 0: the relative gain is unbounded")
        relative = interval_from_draws(delta / abs(c_point), rel_draws, method, level, df, rel_notes)
    return Comparison(absolute, relative, sides[0], sides[1], len(treated[0]), (len(treated), len(control)))


def pool(comparisons: Sequence[Comparison], level: float = LEVEL) -> Comparison:
    """The mean over tasks of several comparisons, each task counting once: the replicate-wise mean of their draws
    (each task's replicates come from its own document draws, so their noises add as independent), and the
    relative gain from the pooled replicates (the pooled control resampled too). Seed-level shifts are drawn per
    task, as independent: a seed that helps on every task would widen the pooled interval, and that correlation
    is not modelled (its effect on one task is)."""
    comparisons = list(comparisons)
    if len(comparisons) == 1:
        return comparisons[0]
    method = comparisons[0].absolute.method + f", mean over {len(comparisons)} tasks"
    df = min(c.absolute.df for c in comparisons)

    def pooled(part: str, notes=()) -> Interval:
        intervals = [getattr(c, part) for c in comparisons]
        draws = np.mean([i.draws for i in intervals], axis=0)
        return interval_from_draws(float(np.mean([i.estimate for i in intervals])), draws, method, level, df, notes)

    notes = tuple(dict.fromkeys(n for c in comparisons for n in c.absolute.notes))
    absolute, treated, control = pooled("absolute", notes), pooled("treated"), pooled("control")
    relative = None
    if control.estimate != 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_draws = absolute.draws / np.abs(control.draws)
        rel_notes = ["relative gain: the control (the denominator) is resampled too"]
        if control.includes(0.0):
            rel_notes.append("the control's interval includes 0: the relative gain is unbounded")
        relative = interval_from_draws(
            absolute.estimate / abs(control.estimate), rel_draws, method, level, df, rel_notes
        )
    seeds = (max(c.seeds[0] for c in comparisons), max(c.seeds[1] for c in comparisons))
    return Comparison(absolute, relative, treated, control, sum(c.documents for c in comparisons), seeds)


def paired_difference(
    treated: Sequence, control: Sequence, aggregation: Aggregation = MEAN, *, iters: int = ITERS, seed: int = SEED
) -> Interval:
    """treated - control of two single runs on the same documents (the paired document bootstrap)."""
    return compare([treated], [control], aggregation, iters=iters, seed=seed).absolute


def ratio_to_large(
    ours: Sequence[Sequence],
    aggregation: Aggregation,
    large: Measured | Published,
    *,
    iters: int = ITERS,
    seed: int = SEED,
    level: float = LEVEL,
) -> Ratio:
    """ours / the large model's score (e.g. "% of GPT-4"), the large model resampled too; `ours` is a list of runs
    (one per seed) on the same documents."""
    ours = [list(r) for r in ours]
    contents = [_content(r, aggregation) for r in ours]
    full = np.array([_full(r, aggregation, c) for r, c in zip(ours, contents)])
    measured = isinstance(large, Measured)
    sides = [ours, [list(large.items)]] if measured else [ours]
    if measured:
        contents.append(_content(sides[1][0], aggregation))
    matrices = _on_shared_draws(sides, aggregation, iters, DOCUMENT_SEED, contents)
    rng = np.random.default_rng(seed + 2)
    our_point = float(full.mean())
    our_draws, df = _two_level(matrices[0].mean(axis=0), [_seed_part(full, matrices[0])], rng)
    size_known = True
    if measured:
        large_point = _full(sides[1][0], aggregation, contents[-1])
        large_draws = matrices[1][0]
        noise = "per-document outcomes on the same documents (paired)"
    else:
        large_point = float(large.value)
        if large.stderr is not None:
            large_draws = rng.normal(large_point, large.stderr, iters)
            noise = f"reported stderr {large.stderr:g}"
        elif large.n:
            large_draws = rng.binomial(int(large.n), min(max(large_point, 0.0), 1.0), iters) / int(large.n)
            noise = f"binomial at its test-set size n={int(large.n)}"
        else:
            large_draws = np.full(iters, large_point)
            noise = "unknown test-set size: the published number is taken as exact (interval too narrow)"
            size_known = False
    if large_point == 0:
        empty = interval_from_draws(
            math.nan, np.full(iters, math.nan), "ratio", level, df, ("the large model's score is 0",)
        )
        return Ratio(empty, noise, size_known)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = our_draws / large_draws
    method = "ratio, both sides resampled" if size_known else "ratio, ours resampled"
    return Ratio(interval_from_draws(our_point / large_point, draws, method, level, df, (noise,)), noise, size_known)


# --- decisions -------------------------------------------------------------------------------------------------
def decide(low: float | None, high: float | None, threshold: float, *, inclusive: bool = True, words="hypothesis"):
    """Three-way verdict on an interval against a threshold ("at least" when inclusive, "more than" otherwise)."""
    yes, no, unsure = VERDICTS[words]
    if low is None or high is None:
        return unsure
    clears = low >= threshold if inclusive else low > threshold
    below = high < threshold if inclusive else high <= threshold
    return yes if clears else no if below else unsure


def decide_gain(
    comparison: Comparison,
    threshold: float,
    *,
    relative: bool = False,
    absolute_threshold: float = 0.0,
    inclusive: bool = True,
    words: str = "hypothesis",
) -> Decision:
    """A gain of at least `threshold` (relative: a fraction of |control|). A relative threshold over a control of
    0, or whose interval includes 0, has no meaning: it is decided on the absolute difference against
    `absolute_threshold` (default: any gain, "more than 0"), and the reason says so."""
    if not relative:
        a = comparison.absolute
        return Decision(decide(a.low, a.high, threshold, inclusive=inclusive, words=words), "absolute", "")
    why = None
    if comparison.control.estimate == 0:
        why = "the control scored 0"
    elif comparison.control.includes(0.0):
        why = f"the control's interval [{comparison.control.low:+.4f}, {comparison.control.high:+.4f}] includes 0"
    elif comparison.relative is None or comparison.relative.low is None:
        why = "the relative gain is undefined in too many resamples"
    if why:
        a = comparison.absolute
        strict = absolute_threshold == 0.0
        verdict = decide(a.low, a.high, absolute_threshold, inclusive=not strict and inclusive, words=words)
        goal = "more than 0" if strict else f"at least {absolute_threshold:+.4f}"
        return Decision(
            verdict,
            "absolute",
            f"relative threshold not applicable ({why}): decided on the absolute difference, {goal}",
        )
    r = comparison.relative
    return Decision(decide(r.low, r.high, threshold, inclusive=inclusive, words=words), "relative", "")


# --- p-values and multiplicity -------------------------------------------------------------------------------------
def bootstrap_p(draws: np.ndarray, threshold: float = 0.0, alternative: str = "greater") -> float:
    """p-value of "the quantity is above `threshold`" (greater), below it (less) or different (two-sided), from
    bootstrap replicates: the share of replicates on the other side, (1 + count) / (1 + B). Consistent with the
    percentile interval: a 95% interval excludes the threshold when the two-sided p is below 0.05. Its smallest
    value is 1 / (1 + B): use enough iterations for the family size being corrected."""
    draws = np.asarray(draws, dtype=float)
    draws = draws[np.isfinite(draws)]
    b = len(draws)
    greater = (1 + np.count_nonzero(draws <= threshold)) / (1 + b)
    less = (1 + np.count_nonzero(draws >= threshold)) / (1 + b)
    if alternative == "greater":
        return float(greater)
    if alternative == "less":
        return float(less)
    return float(min(1.0, 2 * min(greater, less)))


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down family-wise adjusted p-values (None stays None and is not counted in the family)."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values (false discovery rate); None stays None and is not counted."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(known)
    out: list[float | None] = [None] * len(pvalues)
    running = 1.0
    for rank in range(m - 1, -1, -1):
        p, i = known[rank]
        running = min(running, m * p / (rank + 1))
        out[i] = min(1.0, running)
    return out
