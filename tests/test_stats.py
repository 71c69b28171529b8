"""results/stats.py, results/power.py and results/coverage.py: intervals that carry every source of noise,
decisions on the interval, multiplicity, power, and the coverage of every interval type (a small fixed-seed
simulation here; bench/coverage.py runs 1,000 studies per type). Outcomes are constructed: no model runs."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest

from dlm.harness_tasks import metrics
from dlm.harness_tasks.outcomes import draws_for, on_draws, resampled
from dlm.results import coverage, stats
from dlm.results.power import minimum_detectable_difference, one_side_variance, t_quantile
from dlm.store.outcomes import MetricItems, OutcomeBlock

F1_MACRO = "f1_macro"
F1_WEIGHTED = "f1_weighted"
MCC = "mcc"


def _ones(n: int, k: int, offset: int = 0) -> list[float]:
    """n documents, k of them right (from `offset` on)."""
    return [1.0 if offset <= i < offset + k else 0.0 for i in range(n)]


def _pairs_with_mcc(n: int, rng, agree: float) -> list[list[int]]:
    gold = rng.integers(0, 2, n)
    return [[int(g), int(g if rng.random() < agree else 1 - g)] for g in gold]


# --- the one bootstrap ------------------------------------------------------------------------------------------
def test_a_paired_difference_is_the_percentile_bootstrap_over_shared_document_draws():
    rng = np.random.default_rng(0)
    control = (rng.random(300) < 0.4).astype(float)
    treated = np.where(rng.random(300) < 0.85, control, 1 - control)
    got = stats.paired_difference(treated, control, iters=1000, seed=5)
    # the documents are drawn from the common stream (DOCUMENT_SEED), the same for every comparison of a report
    common = draws_for(300, 1000, stats.DOCUMENT_SEED)
    by_hand = np.concatenate([treated[d.index].mean(axis=1) - control[d.index].mean(axis=1) for d in common])
    assert got.estimate == pytest.approx(treated.mean() - control.mean())
    assert (got.low, got.high) == pytest.approx(tuple(np.percentile(by_hand, [2.5, 97.5])))
    assert got.df == math.inf and "seeds not measured" in got.notes[0]


def test_on_draws_is_what_resampled_computed_for_every_aggregation():
    rng = np.random.default_rng(1)
    pairs = [[int(g), int(p)] for g, p in rng.integers(-1, 3, (60, 2))]
    draws = rng.integers(0, 60, (4, 60))
    for name in (F1_MACRO, F1_WEIGHTED, MCC):
        block = OutcomeBlock(docs=[str(i) for i in range(60)], metrics={"m": MetricItems(name, pairs)})
        assert np.allclose(on_draws(pairs, name, draws), resampled(block, "m", draws))
    assert np.allclose(on_draws([1.0, 0.0, 1.0], lambda items: sum(items), [[0, 1, 2], [0, 0, 0]]), [2.0, 3.0])


def test_align_puts_runs_of_one_document_order_in_hash_order_and_keeps_one_item_per_document():
    docs = ["c", "a", "b"]
    assert stats.align((docs, [1, 2, 3]), (list(docs), [4, 5, 6])) == [[2, 3, 1], [5, 6, 4]]
    assert stats.align((["a", "a", "b"], [1, 2, 3]), (["a", "a", "b"], [4, 5, 6])) == [[2, 3], [5, 6]]


def test_the_counts_form_of_a_mean_is_the_mean_of_the_drawn_items_and_kept_draws_are_the_drawn_ones():
    rng = np.random.default_rng(2)
    values = rng.random(50)
    first = list(draws_for(50, 300, 9))
    again = list(draws_for(50, 300, 9))  # kept: the same chunks handed out again
    fresh = np.random.default_rng(9).integers(0, 50, (300, 50), dtype=np.int32)
    assert np.array_equal(np.concatenate([d.index for d in again]), fresh)
    for d in first:
        assert np.allclose(on_draws(list(values), "mean", d), values[d.index].mean(axis=1), rtol=0, atol=1e-12)
        with pytest.raises(ValueError):
            d.index[0, 0] = 1  # shared draws are read-only
    with_nan = np.where(np.arange(50) == 7, np.nan, values)  # only the resamples that drew document 7 are NaN
    got = on_draws(list(with_nan), "mean", first[0])
    assert np.array_equal(np.isnan(got), (first[0].index == 7).any(axis=1))


def test_draws_of_a_large_task_are_not_kept_chunk_after_chunk():
    """MMLU-sized: 14,042 documents x 2,000 draws come in chunks of ~4 M indices; a chunk and its counts are let go
    before the next (they were all held until the end: ~380 MB)."""
    values = list(np.random.default_rng(3).random(14042))
    tracemalloc.start()
    try:
        total = sum(len(on_draws(values, "mean", d)) for d in draws_for(14042, 2000, 11))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 2000 and peak < 150 * 2**20, peak


def test_text_items_and_numbers_that_read_alike_do_not_share_a_kept_metric():
    text = [["10", "9", "8", "10", "9"]]
    numbers = [[10, 9, 8, 10, 9]]
    stats.compare(text, text, "median", iters=50)
    assert stats.compare(numbers, numbers, "median", iters=50).treated.estimate == 9.0


def test_integer_labels_beyond_a_floats_precision_do_not_share_a_kept_metric():
    treated = [[2**53, 2**53], [1, 1], [1, 1], [2**53, 2**53]]
    control = [[2**53 + 1, 2**53], [1, 1], [1, 1], [2**53 + 1, 2**53]]  # the same as floats, not as labels
    got = stats.compare([treated], [control], "f1_weighted", iters=50)
    assert got.treated.estimate == 1.0 and got.control.estimate < 1.0


def test_confusion_metrics_with_many_labels_are_the_slow_loop():
    rng = np.random.default_rng(4)
    gold, pred = rng.integers(0, 7, 80), rng.integers(-1, 7, 80)  # 7 labels and "no label": the gathered form
    pairs = [[int(g), int(p)] for g, p in zip(gold, pred)]
    draws = rng.integers(0, 80, (5, 80))
    for name in (F1_MACRO, F1_WEIGHTED, MCC):
        slow = [getattr(metrics, name)([tuple(pairs[i]) for i in row]) for row in draws]
        assert np.allclose(on_draws(pairs, name, draws), slow), name


def test_align_takes_document_hashes_as_arrays_too():
    docs = np.array(["b", "a"])
    assert stats.align((docs, [1, 2]), (docs.copy(), [3, 4])) == [[2, 1], [4, 3]]


def test_runs_must_share_their_documents_and_align_restricts_them_to_the_common_ones():
    with pytest.raises(ValueError, match="same documents"):
        stats.compare([[1.0, 0.0]], [[1.0, 0.0, 1.0]])
    a, b, c = stats.align((["x", "y", "z"], [1, 2, 3]), (["z", "w", "x"], [30, 40, 10]), (["x", "z"], [7, 9]))
    assert (a, b, c) == ([1, 3], [10, 30], [7, 9])
    got = stats.paired_difference([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], iters=200).as_dict()
    assert got["estimate"] == pytest.approx(1 / 3) and len(got["ci"]) == 2 and "draws" not in got


# --- seeds: every source of noise in the interval ---------------------------------------------------------------
def test_identical_seed_copies_give_one_runs_interval_where_pooling_narrowed_it():
    """Five identical copies of one treated run: the old pooling (each pair on its own draws, averaged) gave an
    interval about 0.4-0.5x as wide as one run's; the two-level bootstrap shares the document draw and gives
    exactly one run's interval."""
    widths = coverage.identical_copies(n=400, copies=5, iters=1000)
    assert widths["two_level_over_one"] == pytest.approx(1.0, abs=1e-9)
    assert widths["old_over_one"] < 0.6


def test_variation_between_seeds_widens_the_interval():
    rng = np.random.default_rng(2)
    n = 2000
    control = (rng.random(n) < 0.4).astype(float)
    rates = [0.50, 0.56, 0.62]  # three training seeds, six points apart
    treated = [(rng.random(n) < r).astype(float) for r in rates]
    two_level = stats.compare(treated, [control], iters=1000).absolute
    old_low, old_high = coverage.old_pooled_interval([(t, control) for t in treated], 1000)
    one = stats.paired_difference(treated[1], control, iters=1000)
    assert two_level.width > 2 * (old_high - old_low) and two_level.width > 2 * one.width
    assert two_level.df < 3 and "two-level" in two_level.method


def test_paired_seeds_resample_treated_and_control_together():
    rng = np.random.default_rng(3)
    n = 800
    luck = [0.45, 0.55, 0.65]  # seed i shifts treated and control alike: the differences hardly vary
    control = [(rng.random(n) < r).astype(float) for r in luck]
    treated = [np.maximum(c, (rng.random(n) < 0.1).astype(float)) for c in control]
    paired = stats.compare(treated, control, paired_seeds=True, iters=1000).absolute
    unpaired = stats.compare(treated, control, iters=1000).absolute
    assert paired.width < unpaired.width / 2 and paired.low > 0


def test_a_best_of_several_seeds_does_not_meet_a_criterion_the_others_miss():
    """Five seeds at 76-77% and one at 91.6% against an 80% criterion: not "met" (the old rule took any bound)."""
    n = 1000
    runs = [_ones(n, round(n * r)) for r in (0.76, 0.765, 0.77, 0.76, 0.77, 0.916)]
    side = stats.compare(runs, [_ones(n, 500)], iters=1000).treated
    assert side.estimate == pytest.approx(np.mean([0.76, 0.765, 0.77, 0.76, 0.77, 0.916]), abs=1e-9)
    assert stats.decide(side.low, side.high, 0.80, words="criterion") == "inconclusive"


# --- relative gains and ratios resample the denominator -------------------------------------------------------
def test_a_relative_gain_over_a_near_zero_mcc_resamples_the_control():
    """CoLA-like: MCC about -0.03 -> +0.04. Dividing by an exact control gave a narrow relative interval; the
    control resampled makes it unbounded (its interval includes 0), and a relative threshold is then decided on the
    absolute difference, saying so."""
    rng = np.random.default_rng(4)
    control = _pairs_with_mcc(1043, rng, 0.485)
    treated = _pairs_with_mcc(1043, rng, 0.52)
    got = stats.compare([treated], [control], MCC, iters=1000)
    assert got.control.includes(0.0)
    exact_denominator_high = got.absolute.high / abs(got.control.estimate)  # the old relative bound
    assert got.relative.low is None or got.relative.high > 1.5 * exact_denominator_high
    assert any("unbounded" in note for note in got.relative.notes)
    decision = stats.decide_gain(got, 0.20, relative=True)
    assert decision.on == "absolute" and "includes 0" in decision.reason


def test_a_zero_control_is_decided_on_the_absolute_difference_and_says_so():
    """GSM8K 0/1319 -> 8/1319 passed any relative threshold before."""
    got = stats.compare([_ones(1319, 8)], [_ones(1319, 0)], iters=1000)
    assert got.relative is None
    decision = stats.decide_gain(got, 0.20, relative=True)
    assert decision.on == "absolute" and "the control scored 0" in decision.reason and "more than 0" in decision.reason
    assert decision.verdict == "supported"  # a real gain, but only "more than 0": not "at least +20%"
    floor = stats.decide_gain(got, 0.20, relative=True, absolute_threshold=0.05)
    assert floor.verdict == "not supported" and "at least +0.0500" in floor.reason


def test_decisions_need_the_whole_interval_past_the_threshold():
    assert stats.decide(0.085, 0.36, 0.20) == "inconclusive"  # +22.3% with [8.5%, 36%] was "supported" for >= 20%
    assert stats.decide(0.21, 0.36, 0.20) == "supported"
    assert stats.decide(0.02, 0.19, 0.20) == "not supported"
    assert stats.decide(0.0, 0.0, 0.0, inclusive=False) == "not supported"  # "more than 0": a tie is no gain
    assert stats.decide(0.80, 0.85, 0.80, words="criterion") == "met"
    assert stats.decide(None, None, 0.0) == "inconclusive"


def test_ratio_to_a_published_number_carries_its_binomial_noise_or_says_its_size_is_unknown():
    ours = [_ones(500, 300)]
    sized = stats.ratio_to_large(ours, stats.MEAN, stats.Published(0.8, n=200), iters=1000)
    exact = stats.ratio_to_large(ours, stats.MEAN, stats.Published(0.8), iters=1000)
    reported = stats.ratio_to_large(ours, stats.MEAN, stats.Published(0.8, stderr=0.05), iters=1000)
    assert sized.interval.estimate == pytest.approx(0.75) and sized.size_known
    assert sized.interval.width > 1.2 * exact.interval.width
    assert not exact.size_known and "unknown test-set size" in exact.large_noise
    assert "unknown test-set size" in exact.interval.notes[0]
    assert reported.interval.width > sized.interval.width and "reported stderr" in reported.large_noise


def test_ratio_to_a_large_model_measured_here_is_paired_on_the_documents():
    rng = np.random.default_rng(6)
    large = (rng.random(600) < 0.8).astype(float)
    ours = np.where(rng.random(600) < 0.9, large * (rng.random(600) < 0.8), 0.0)  # right mostly where it is
    got = stats.ratio_to_large([ours], stats.MEAN, stats.Measured(large), iters=1000)
    independent = stats.ratio_to_large([ours], stats.MEAN, stats.Published(large.mean(), n=600), iters=1000)
    assert got.interval.estimate == pytest.approx(ours.mean() / large.mean())
    assert got.interval.width < independent.interval.width and "paired" in got.large_noise


# --- p-values and multiplicity ------------------------------------------------------------------------------------
def test_holm_and_benjamini_hochberg_on_known_values():
    assert stats.holm([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.06, None, 0.06])
    assert stats.benjamini_hochberg([0.01, 0.04, None, 0.03]) == pytest.approx([0.03, 0.04, None, 0.04])
    assert stats.holm([0.5, 0.9]) == [1.0, 1.0] and stats.benjamini_hochberg([0.5, 0.9]) == [0.9, 0.9]


def test_holm_keeps_the_family_error_at_five_percent_where_thirteen_raw_decisions_do_not():
    """13 runs truly at the threshold, each decided at one-sided 2.5% (a 95% interval's lower bound): about 28%
    of such studies make at least one false "met"; Holm keeps it at or below 5%."""
    rng = np.random.default_rng(7)
    p = rng.random((4000, 13))  # one-sided p-values under the null
    raw = (p < 0.025).any(axis=1).mean()
    holm = np.mean([min(stats.holm(list(row))) < 0.025 for row in p])
    assert 0.25 < raw < 0.31 and holm <= 0.03


def test_bootstrap_p_agrees_with_the_percentile_interval():
    rng = np.random.default_rng(8)
    draws = rng.normal(0.05, 0.02, 4000)
    low, high = np.percentile(draws, [2.5, 97.5])
    clear_of_the_bounds = [t for t in np.linspace(-0.02, 0.12, 57) if min(abs(t - low), abs(t - high)) > 2e-3]
    for threshold in clear_of_the_bounds:  # at the bounds themselves the two differ by one replicate
        outside = threshold < low or threshold > high
        assert (stats.bootstrap_p(draws, threshold, "two-sided") < 0.05) == outside, threshold
    assert stats.bootstrap_p(draws, 0.0, "greater") == pytest.approx((1 + np.sum(draws <= 0)) / 4001)
    assert stats.bootstrap_p(draws, 0.2, "less") == pytest.approx(1 / 4001)


# --- power ----------------------------------------------------------------------------------------------------------
def test_t_quantiles_match_scipy():
    from scipy import stats as scipy_stats

    for df in (1, 1.7, 2, 4, 9.5, 30, 200):
        for p in (0.6, 0.8, 0.975, 0.999):
            assert t_quantile(p, df) == pytest.approx(scipy_stats.t.ppf(p, df), rel=1e-8)
    assert t_quantile(0.975, math.inf) == pytest.approx(1.959964, abs=1e-6)


def test_minimum_detectable_difference():
    ner = minimum_detectable_difference(98, 0.5)
    assert ner.mdd == pytest.approx((1.959964 + 0.841621) * math.sqrt(2 * 0.25 / 98), rel=1e-5)
    assert ner.mdd > 0.19  # NER's 98 rows cannot see less than ~20 points
    unknown = minimum_detectable_difference(None, 0.5)
    assert unknown.mdd is None and "unknown test-set size" in unknown.reason
    seeded = minimum_detectable_difference(2388, 0.6, seeds=3, seed_sd=0.02)
    plain = minimum_detectable_difference(2388, 0.6)
    assert seeded.mdd > plain.mdd and seeded.df < math.inf and "3 vs 3 seeds" in seeded.approximation
    assert minimum_detectable_difference(2388, 0.6, correlation=0.5).mdd < plain.mdd
    untrained = minimum_detectable_difference(2388, 0.6, seeds=1, control_seeds=0, seed_sd=0.02)
    assert "cannot measure" in untrained.approximation


@pytest.mark.parametrize(
    "name, aggregation, shares",
    [("acc", stats.MEAN, None), ("f1_weighted", F1_WEIGHTED, (0.6, 0.3, 0.1)), ("f1_macro", F1_MACRO, (0.6, 0.3, 0.1))],
)
def test_the_variance_approximations_agree_with_the_bootstrap(name, aggregation, shares):
    rng = np.random.default_rng(9)
    n, rate = 1500, 0.65
    gold = rng.choice(3, size=n, p=shares or (1 / 3, 1 / 3, 1 / 3))
    right = rng.random(n) < rate
    pred = np.where(right, gold, (gold + 1 + rng.integers(0, 2, n)) % 3)
    items = right.astype(float).tolist() if name == "acc" else np.stack([gold, pred], axis=1).tolist()
    value = float(on_draws(items, aggregation, np.arange(n)[None, :])[0])
    boot = np.concatenate([on_draws(items, aggregation, d) for d in draws_for(n, 1000, 3)])
    approx, _ = one_side_variance(n, value, name, shares)
    assert math.sqrt(approx) == pytest.approx(boot.std(ddof=1), rel=0.2)


# --- coverage -------------------------------------------------------------------------------------------------------
def test_every_interval_type_covers_the_truth_about_95_percent_of_the_time():
    """A small fixed-seed run of the coverage simulation (bench/coverage.py runs 1,000 studies per type and
    checks 93-97%); here 120 studies per type and a loose band."""
    types = coverage.interval_types(n=150, n_large=600)
    assert len(types) >= 8
    for name, study in types.items():
        got = coverage.coverage(study, studies=120, iters=300, seed=21)
        assert 0.88 <= got["coverage"] <= 1.0, (name, got)
