"""Power before running: the minimum detectable difference (MDD) of a comparison between two setups, and the
normal and Student-t quantiles the statistics use (numpy and the standard library only).

MDD = (q(1 - alpha/2) + q(power)) x SE of the difference, the smallest true difference that a two-sided test at
`alpha` detects with probability `power` (80% at 5%: 2.80 SE with many documents). The SE adds:

- document noise, the same documents scored by both sides: 2 x var1 x (1 - rho) / n, where rho is the
  correlation of the two sides' per-document outcomes (0 unless you know better: two runs of one base model are
  positively correlated, which makes the paired comparison more sensitive, so rho = 0 is the cautious choice);
- seed noise, when given: seed_sd^2 x (1/k_treated + 1/k_control), seed_sd the standard deviation of the score
  between training seeds; an untrained side (a zero-shot control) has no seeds (k = 0, no term);
- with seed noise, Student-t quantiles at Welch-Satterthwaite degrees of freedom (k - 1 per seeded side), as the
  intervals of results/stats.py use.

var1, the variance of one side's score on n documents, by metric (the approximation used):
- accuracy-like (acc, exact_match, and per-document means in [0, 1] such as entity_f1 or rougeL, for which
  p(1 - p) is an upper bound): p (1 - p) / n at base rate p;
- f1_weighted: the same as accuracy (each class's F1 behaves like a proportion over its n x share_k documents;
  weighting by the shares gives p (1 - p) / n);
- f1_macro: p (1 - p) / n x mean_k(1 / share_k) / K (the unweighted mean over K classes: rare classes are noisy;
  1 for balanced classes). Class shares default to balanced.
tests/test_stats.py checks these against the bootstrap of simulated runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

ACCURACY_LIKE = {"acc", "accuracy", "exact_match", "convfinqa_acc", "entity_f1", "rougeL", "headline_f1", "f1_weighted"}


def normal_quantile(p: float) -> float:
    return NormalDist().inv_cdf(p)


def _continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    out = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            out *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return out


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1 - x) / b


def t_cdf(t: float, df: float) -> float:
    if math.isinf(df):
        return NormalDist().cdf(t)
    tail = 0.5 * _incomplete_beta(df / 2, 0.5, df / (df + t * t))
    return 1 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """Student-t quantile (df may be fractional); the normal one for df = inf or beyond 1e7."""
    if math.isinf(df) or df > 1e7:
        return normal_quantile(p)
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1 - p, df)
    low, high = 0.0, max(1.0, normal_quantile(p))
    while t_cdf(high, df) < p:
        low, high = high, high * 2
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if t_cdf(middle, df) < p else (low, middle)
        if high - low < 1e-12 * max(1.0, high):
            break
    return (low + high) / 2


@dataclass(frozen=True)
class Power:
    mdd: float | None  # None: not computable (reason says why)
    se: float | None
    n: int | None
    df: float
    approximation: str
    reason: str = ""


def one_side_variance(n: int, base_rate: float, metric: str, class_shares=None) -> tuple[float, str]:
    p = min(max(float(base_rate), 0.0), 1.0)
    variance = p * (1 - p) / n
    if metric == "f1_macro":
        shares = list(class_shares) if class_shares else None
        if shares:
            total = sum(shares)
            shares = [s / total for s in shares if s > 0]
            factor = sum(1 / s for s in shares) / len(shares) ** 2
        else:
            factor = 1.0
        return variance * factor, f"macro F1: p(1-p)/n x mean(1/share)/K = x{factor:.2f}"
    if metric in ACCURACY_LIKE:
        return variance, "accuracy-like: p(1-p)/n"
    return variance, f"{metric}: treated as accuracy-like, p(1-p)/n"


def minimum_detectable_difference(
    n: int | None,
    base_rate: float,
    *,
    metric: str = "acc",
    class_shares=None,
    seeds: int = 1,
    control_seeds: int | None = None,
    seed_sd: float = 0.0,
    correlation: float = 0.0,
    alpha: float = 0.05,
    power: float = 0.80,
) -> Power:
    """The smallest true difference (in the metric's points) that the comparison detects at `power`; see the
    module docstring. `control_seeds` defaults to `seeds`; 0 means an untrained control (no seed noise)."""
    control_seeds = seeds if control_seeds is None else control_seeds
    if not n:
        return Power(None, None, None, math.inf, "", "unknown test-set size: no minimum detectable difference")
    variance, how = one_side_variance(int(n), base_rate, metric, class_shares)
    doc_var = 2 * variance * (1 - correlation)
    parts = [seed_sd**2 / k for k in (seeds, control_seeds) if k > 0 and seed_sd > 0]
    total = doc_var + sum(parts)
    estimable = [(seed_sd**2 / k, k) for k in (seeds, control_seeds) if k > 1 and seed_sd > 0]
    df = total**2 / sum(v**2 / (k - 1) for v, k in estimable) if estimable else math.inf
    se = math.sqrt(total)
    mdd = (t_quantile(1 - alpha / 2, df) + t_quantile(power, df)) * se
    note = how + (f"; seed sd {seed_sd:g}, {seeds} vs {control_seeds} seeds" if seed_sd > 0 else "")
    if seed_sd > 0 and not estimable:
        note += " (one seed a side: the study cannot measure this noise, its intervals leave it out)"
    return Power(mdd, se, int(n), df, note)


def power_table(
    tasks: dict[str, tuple[int | None, str, float]], seeds: int, thresholds: dict[str, float]
) -> list[dict]:
    """One row per task: its test-set size, the minimum detectable difference (points, 80% power, two-sided 5%) of a
    comparison with `seeds` seeds a side (seed sd unknown before running: documents only), and which relative
    thresholds it can see at that base rate. `tasks`: {task: (n, metric, base rate)}; `thresholds`: {name: relative
    threshold}, e.g. {"H1": 0.20, "H3": 0.10}."""
    rows = []
    for task, (n, metric, base) in sorted(tasks.items()):
        power = minimum_detectable_difference(n, base, metric=metric, seeds=seeds)
        blind = sorted(name for name, rel in thresholds.items() if power.mdd is not None and power.mdd > rel * base)
        rows.append(
            {
                "task": task,
                "n": n,
                "metric": metric,
                "base_rate": base,
                "seeds": seeds,
                "mdd": power.mdd,
                "approximation": power.approximation or power.reason,
                "cannot_see": [f"{name} (needs {thresholds[name] * base:.3f})" for name in blind],
            }
        )
    return rows


def describe(row: dict) -> str:
    if row["mdd"] is None:
        return f"{row['task']}: test-set size unknown, no minimum detectable difference"
    blind = f"; too small to see {', '.join(row['cannot_see'])}" if row["cannot_see"] else ""
    return (
        f"{row['task']} (n={row['n']}): differences under {100 * row['mdd']:.1f} points cannot be told from noise "
        f"at 80% power (base rate {row['base_rate']:.2f}, {row['seeds']} seed(s) a side){blind}"
    )
