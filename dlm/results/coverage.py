"""Do the 95% intervals of results/stats.py cover the truth 95% of the time? Simulated studies with a known true
value, for every interval type (bench/coverage.py runs 1,000 studies per type; tests/test_stats.py a few).

Documents are drawn from a population in which a model m (seed s) answers document d correctly when

    a_m + u_ms + beta z_d + gamma e_md + delta x_msd > 0,   z, e, x ~ N(0, 1), u_ms ~ N(0, tau_m^2)

z_d is the difficulty every model shares, e_md what one model (all its seeds) finds hard, x_msd one seed's own
noise, u_ms a seed's overall luck. The population accuracy is then exactly Phi(a_m / sqrt(beta^2 + gamma^2 +
delta^2 + tau_m^2)), so the true difference, relative gain and ratio are known. For macro F1 each document also has a
gold class (shares 0.5 / 0.3 / 0.2) and a wrong answer picks one of the other classes; its true value is the F1
of a 400,000-document draw of the population.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from dlm.harness_tasks.outcomes import draws_for, on_draws
from dlm.results import stats

BETA, GAMMA, DELTA = 1.0, 0.8, 0.5
F1_MACRO = "f1_macro"
CLASS_SHARES = (0.5, 0.3, 0.2)


@dataclass(frozen=True)
class Model:
    ability: float
    tau: float = 0.0  # sd of the seed effect (0: an untrained model, or seeds that differ per document only)

    def accuracy(self) -> float:
        return NormalDist().cdf(self.ability / math.sqrt(BETA**2 + GAMMA**2 + DELTA**2 + self.tau**2))


def _correct(rng, z: np.ndarray, model: Model, seeds: int) -> np.ndarray:
    """seeds x n 0/1 matrix of one model's runs on the documents with difficulties z."""
    own = rng.standard_normal(len(z))
    luck = rng.normal(0.0, model.tau, (seeds, 1)) if model.tau > 0 else np.zeros((seeds, 1))
    noise = rng.standard_normal((seeds, len(z)))
    return (model.ability + luck + BETA * z + GAMMA * own + DELTA * noise > 0).astype(float)


def _as_pairs(rng, gold: np.ndarray, correct: np.ndarray) -> list[list]:
    """(gold, pred) items of each run: the gold class when correct, else one of the other two."""
    other = (gold + 1 + rng.integers(0, 2, len(gold))) % 3
    return [np.stack([gold, np.where(run > 0, gold, other)], axis=1).tolist() for run in correct]


def _gold(rng, n: int) -> np.ndarray:
    return rng.choice(3, size=n, p=CLASS_SHARES)


def true_f1_difference(treated: Model, control: Model, size: int = 400_000, seed: int = 99) -> float:
    rng = np.random.default_rng(seed)
    z, gold = rng.standard_normal(size), _gold(rng, size)
    values = []
    for model in (treated, control):
        (items,) = _as_pairs(rng, gold, _correct(rng, z, model, 1))
        values.append(float(on_draws(items, F1_MACRO, np.arange(size)[None, :])[0]))
    return values[0] - values[1]


# --- one simulated study per interval type: (interval, truth) ---------------------------------------------------
def paired_accuracy(rng, n: int, iters: int, seed: int):
    treated, control = Model(0.45), Model(0.2)
    z = rng.standard_normal(n)
    got = stats.paired_difference(
        _correct(rng, z, treated, 1)[0], _correct(rng, z, control, 1)[0], iters=iters, seed=seed
    )
    return got, treated.accuracy() - control.accuracy()


def paired_f1(rng, n: int, iters: int, seed: int, truth: float):
    treated, control = Model(0.6), Model(0.2)
    z, gold = rng.standard_normal(n), _gold(rng, n)
    (t,), (c,) = _as_pairs(rng, gold, _correct(rng, z, treated, 1)), _as_pairs(rng, gold, _correct(rng, z, control, 1))
    return stats.paired_difference(t, c, F1_MACRO, iters=iters, seed=seed), truth


def seeds(rng, n: int, iters: int, seed: int, k_treated: int, k_control: int, tau: float, correct: bool = True):
    """Two trained setups (k seeds each), or a trained one against an untrained control (k_control = 1, tau 0)."""
    treated = Model(0.45, tau)
    control = Model(0.2, tau if k_control > 1 else 0.0)
    z = rng.standard_normal(n)
    got = stats.compare(
        list(_correct(rng, z, treated, k_treated)),
        list(_correct(rng, z, control, k_control)),
        iters=iters,
        seed=seed,
        correct_few_seeds=correct,
    ).absolute
    return got, treated.accuracy() - control.accuracy()


def relative_gain(rng, n: int, iters: int, seed: int):
    treated, control = Model(0.45), Model(0.1)
    z = rng.standard_normal(n)
    got = stats.compare([_correct(rng, z, treated, 1)[0]], [_correct(rng, z, control, 1)[0]], iters=iters, seed=seed)
    return got.relative, (treated.accuracy() - control.accuracy()) / control.accuracy()


def ratio_published(rng, n: int, iters: int, seed: int, large_n: int = 500, large_accuracy: float = 0.8):
    ours = Model(0.3)
    published = stats.Published(rng.binomial(large_n, large_accuracy) / large_n, n=large_n)
    runs = [_correct(rng, rng.standard_normal(n), ours, 1)[0]]
    got = stats.ratio_to_large(runs, stats.MEAN, published, iters=iters, seed=seed).interval
    return got, ours.accuracy() / large_accuracy


def ratio_measured(rng, n: int, iters: int, seed: int):
    ours, large = Model(0.3), Model(1.2)
    z = rng.standard_normal(n)
    measured = stats.Measured(_correct(rng, z, large, 1)[0])
    got = stats.ratio_to_large([_correct(rng, z, ours, 1)[0]], stats.MEAN, measured, iters=iters, seed=seed).interval
    return got, ours.accuracy() / large.accuracy()


def interval_types(n: int = 300, n_large: int = 2000, correct_few_seeds: bool = True) -> dict:
    """name -> function(rng, iters, seed) -> (interval, truth). `n` documents a study; the seed types where seeds
    dominate the noise use `n_large` (many documents make the document noise small). The F1 truth is computed
    once here. `correct_few_seeds=False` gives the plain two-level percentile interval, for comparison."""
    f1_truth = true_f1_difference(Model(0.6), Model(0.2))
    fix = correct_few_seeds
    return {
        "paired document bootstrap, accuracy": lambda r, b, s: paired_accuracy(r, n, b, s),
        "paired document bootstrap, macro F1": lambda r, b, s: paired_f1(r, n, b, s, f1_truth),
        f"two-level, 5 vs 5 seeds, n={n} (documents dominate)": lambda r, b, s: seeds(r, n, b, s, 5, 5, 0.05, fix),
        f"two-level, 3 vs 3 seeds, n={n_large} (seeds dominate)": lambda r, b, s: seeds(
            r, n_large, b, s, 3, 3, 0.15, fix
        ),
        f"two-level, 3 seeds vs an untrained control, n={n_large}": lambda r, b, s: seeds(
            r, n_large, b, s, 3, 1, 0.15, fix
        ),
        "relative gain, control resampled": lambda r, b, s: relative_gain(r, n, b, s),
        "ratio to a published baseline (binomial, n=500)": lambda r, b, s: ratio_published(r, n, b, s),
        "ratio to a large model measured here (paired)": lambda r, b, s: ratio_measured(r, n, b, s),
    }


def coverage(study, studies: int, iters: int, seed: int) -> dict:
    """Share of `studies` simulated studies whose interval holds the truth, with the mean width."""
    rng = np.random.default_rng(seed)
    hits, widths = 0, []
    for i in range(studies):
        got, truth = study(rng, iters, seed + i)
        hits += got.includes(truth)
        widths.append(got.width if got.width is not None else math.nan)
    return {"studies": studies, "coverage": hits / studies, "mean_width": float(np.nanmean(widths))}


# --- the old pooled interval against the two-level one ------------------------------------------------------------
def old_pooled_interval(pairs: list[tuple[list, list]], iters: int, seed: int = stats.SEED) -> tuple[float, float]:
    """What the report did before: each (treated seed, control) pair bootstrapped on its own document draws
    (seed + i), the replicates averaged over pairs (results/paired.py `_paired_bootstrap`)."""
    total = np.zeros(iters)
    for i, (treated, control) in enumerate(pairs):
        n = len(treated)
        total += np.concatenate(
            [on_draws(treated, stats.MEAN, d) - on_draws(control, stats.MEAN, d) for d in draws_for(n, iters, seed + i)]
        )
    low, high = np.percentile(total / len(pairs), [2.5, 97.5])
    return float(low), float(high)


def identical_copies(n: int = 1000, copies: int = 5, iters: int = stats.ITERS, seed: int = 7) -> dict:
    """A constructed study: `copies` treated "seeds" that are identical copies of one run, against one control.
    Widths of one run's interval, the old pooled interval and the two-level interval."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n)
    treated, control = _correct(rng, z, Model(0.45), 1)[0], _correct(rng, z, Model(0.2), 1)[0]
    one = stats.paired_difference(treated, control, iters=iters)
    low, high = old_pooled_interval([(treated, control)] * copies, iters)
    two_level = stats.compare([treated] * copies, [control], iters=iters).absolute
    return {
        "documents": n,
        "copies": copies,
        "one_run": one.width,
        "old_pooled": high - low,
        "two_level": two_level.width,
        "old_over_one": (high - low) / one.width,
        "two_level_over_old": two_level.width / (high - low),
        "two_level_over_one": two_level.width / one.width,
    }
