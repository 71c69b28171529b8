"""Per-document outcomes of an evaluation, kept beside its record, and the bootstraps they allow.

`<results_dir>/<run_id>.outcomes.json.gz` holds, for every scored leaf task and filter:

    {"version", "docs": [12-hex doc hash, ...], "gold": [...], "pred": [...],
     "metrics": {metric: {"aggregation": NAME, "values": [per-document item, ...]}}}

`pred` is the per-choice log-likelihoods (4 decimals) of a multiple-choice document or the filtered generation
(first 200 characters); `values` are the items lm-eval hands to the metric's aggregation (0/1 for acc,
(gold, pred) pairs for F1/MCC), so any metric, corpus-level ones included, can be recomputed on a resample of the
documents: a bootstrap stderr for every score, and paired differences between two runs scored on the same
documents (results/paired.py).

NAME is written for the reader's information only. When a file is read, each metric's aggregation is looked up
by the task and metric it belongs to, in the task's own YAML (our installed plugins) or lm-eval's default for the
metric, and then in a fixed table of aggregation functions (`AGGREGATIONS`): a string found in a file is never
imported or called (an outcomes file someone sends you cannot make `dlm report` run code). A metric whose
aggregation is not in the table is left out (its score gets no bootstrap).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from lm_eval.api import metrics as lm_eval_metrics
from lm_eval.api.registry import get_metric_aggregation

from dlm.harness_tasks import metrics
from dlm.harness_tasks.catalog import catalog
from dlm.harness_tasks.twins import MISSING_METRIC
from dlm.store.outcomes import MetricItems, OutcomeBlock

PRED_CHARS = 200
# Every aggregation an outcomes block may be recomputed with, by name: lm-eval's own and those of dlm's metrics.
AGGREGATIONS = {
    "mean": lm_eval_metrics.mean,
    "median": lm_eval_metrics.median,
    "f1_macro": metrics.f1_macro,
    "f1_weighted": metrics.f1_weighted,
    "precision_macro": metrics.precision_macro,
    "recall_macro": metrics.recall_macro,
    "mcc": metrics.mcc,
    "grouped_f1_weighted": metrics.grouped_f1_weighted,
    "corpus_bleu": metrics.corpus_bleu,
}


def aggregation_name(task: str, metric: str) -> str | None:
    """The name (a key of AGGREGATIONS) of the aggregation that turns `metric`'s per-document items of `task` into
    its score: from the task's YAML when it is one of ours, else lm-eval's default for the metric; None if neither
    names one in the table."""
    if metric == MISSING_METRIC["metric"]:
        return MISSING_METRIC["aggregation"]
    info = catalog().get(task)
    declared = (
        next((m for m in (info.config.get("metric_list") or []) if m.get("metric") == metric), None)
        if info is not None
        else None
    )
    name = declared.get("aggregation") if declared else None
    if name is None:
        try:
            name = get_metric_aggregation(metric).__name__
        except (KeyError, AttributeError):  # a metric lm-eval's registry does not know
            return None
    name = str(name).rsplit(".", 1)[-1]  # `!function dlm.harness_tasks.metrics.f1_weighted` -> f1_weighted
    return name if name in AGGREGATIONS else None


def aggregation(name: str):
    return AGGREGATIONS[name]


def resolved(task: str, block: OutcomeBlock) -> OutcomeBlock:
    """An outcomes block read from a file, each metric's aggregation looked up by task and metric (the name the
    file gives is ignored); metrics without one in the table are dropped."""
    kept = {}
    for metric, slot in block.metrics.items():
        name = aggregation_name(task, metric)
        if name is not None and _fits(name, slot.values):
            kept[metric] = MetricItems(aggregation=name, values=slot.values)
    return replace(block, metrics=kept)


MAX_LABELS = 100  # distinct labels in (gold, pred) items: the bootstrap holds 2,000 x labels^2 confusion counts
_PAIRED = {"f1_macro", "f1_weighted", "precision_macro", "recall_macro", "mcc"}


def _fits(name: str, values: list) -> bool:
    """Whether per-document items read from a file have the shape their aggregation takes: numbers (null for an
    undefined one) for a mean or median, (gold, pred) integer label pairs with at most MAX_LABELS labels for the
    confusion-matrix metrics. Items that do not fit get no bootstrap (the score keeps its recorded stderr) instead
    of a traceback or a number computed from reshaped items."""
    if name in ("mean", "median"):
        return all(v is None or (type(v) in (int, float, bool) and abs(v) < 1e300) for v in values)
    if name in _PAIRED:
        labels = set()
        for v in values:
            if not (isinstance(v, (list, tuple)) and len(v) == 2):
                return False
            if not all(type(x) in (int, bool) and abs(x) < 2**31 for x in v):
                return False
            labels.update(v)
        return len(labels) <= MAX_LABELS
    return True


def from_samples(samples: dict, versions: dict) -> dict[str, dict[str, OutcomeBlock]]:
    """{task: {filter: block}} from lm-eval's `samples` (log_samples=True)."""
    out: dict[str, dict[str, OutcomeBlock]] = {}
    for task, rows in samples.items():
        for row in rows:
            version = versions.get(task)
            block = out.setdefault(task, {}).setdefault(
                row.get("filter", "none"), OutcomeBlock(version=None if version is None else str(version))
            )
            block.docs.append(str(row.get("doc_hash") or row.get("doc_id"))[:12])
            block.gold.append(_plain(row.get("target")))
            block.pred.append(_prediction(row.get("filtered_resps")))
            for metric in row.get("metrics") or []:
                name = aggregation_name(task, metric)
                if metric not in row or name is None:
                    continue
                block.metrics.setdefault(metric, MetricItems(aggregation=name)).values.append(_plain(row[metric]))
    return out


def _prediction(resps):
    if isinstance(resps, (list, tuple)) and resps and all(isinstance(r, (list, tuple)) for r in resps):
        return [round(float(r[0]), 4) for r in resps]  # multiple choice: (loglikelihood, is_greedy) per choice
    if isinstance(resps, (list, tuple)) and len(resps) == 1:
        resps = resps[0]
    return str(resps)[:PRED_CHARS]


def _plain(value):
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict, str)):
        value = value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _items(values: list) -> list:
    return [tuple(v) if isinstance(v, list) else v for v in values]  # JSON lists back into the tuples lm-eval made


def aggregate(block: OutcomeBlock, metric: str, index=None) -> float:
    slot = block.metrics[metric]
    values = _items(slot.values)
    if index is not None:
        values = [values[i] for i in index]
    return float(aggregation(slot.aggregation)(values))


def resampled(block: OutcomeBlock, metric: str, draws) -> np.ndarray:
    """The metric on each row of `draws` (a B x n matrix of document indices); vectorised for means and the
    confusion-matrix metrics of harness_tasks/metrics.py, a loop over the aggregation for anything else."""
    slot = block.metrics[metric]
    return on_draws(slot.values, slot.aggregation, draws)


def on_draws(values: list, how, draws) -> np.ndarray:
    """The aggregation `how` (a name of AGGREGATIONS, or a function) of the per-document `values` on each row of
    `draws` (a `Resamples` chunk or a B x m matrix of document indices): the vectorised form where there is one
    (means, the confusion-matrix metrics), a loop otherwise."""
    draws = draws if isinstance(draws, Resamples) else Resamples(draws)
    name = how if isinstance(how, str) else next((k for k, f in AGGREGATIONS.items() if f is how), None)
    fast = _FAST.get(name)
    if fast is not None:
        return fast(values, draws)
    function = aggregation(name) if isinstance(how, str) else how
    items = _items(values)
    return np.array([float(function([items[i] for i in row])) for row in draws.index])


class Resamples:
    """One chunk of bootstrap resamples: `index`, B x m document indices (row b is resample b), and, built on first
    use and kept, how often each of n documents was drawn in each resample (B x n counts). A metric that needs only
    per-document sums (a mean, a confusion matrix) is then one matrix product per run instead of gathering B x m
    items; a report computes ~13,000 run-task metrics on the same few chunks, so the counts are built once."""

    __slots__ = ("index", "_counts")

    def __init__(self, index):
        self.index = np.asarray(index)
        self._counts: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def counts(self, n: int) -> np.ndarray:
        """B x n float counts of each of n documents in each resample (exact: small integers)."""
        if n not in self._counts:
            if self.index.size and not 0 <= self.index.min() <= self.index.max() < n:
                raise IndexError(f"resample indices outside the {n} documents")
            b = len(self.index)
            flat = (self.index + (np.arange(b, dtype=np.int64) * n)[:, None]).ravel()
            counts = np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)
            counts.flags.writeable = False  # shared by every run scored on these draws
            self._counts[n] = counts
        return self._counts[n]

    def nbytes(self) -> int:
        return self.index.nbytes + sum(c.nbytes for c in self._counts.values())


# Chunks of draws kept for reuse, newest last, up to about _KEPT_BYTES: a report draws the same (n, iters, seed)
# for every run scored on a task; MMLU's 14k documents x 2,000 draws (~340 MB with counts) are not kept.
_KEPT: dict[tuple, list[Resamples]] = {}
_KEPT_BYTES = 256 * 2**20


def draws_for(n: int, iters: int, seed: int, chunk: int | None = None):
    """`iters` resamples of n documents with replacement, as `Resamples` chunks of about 4 million indices (MMLU's
    14k documents x 1,000 would be 112 MB at once; a 600-document task comes in one chunk). The chunking does not
    change the draws: the generator yields the same indices however they are split. Callers must not modify them
    (the chunks of a small task are kept and handed to the next caller)."""
    chunk = chunk or max(1, 4_000_000 // max(n, 1))
    key = (n, iters, seed, chunk)
    if key in _KEPT:
        _KEPT[key] = _KEPT.pop(key)  # most recently used last
        yield from _KEPT[key]
        return
    rng = np.random.default_rng(seed)
    keep = 12 * n * iters <= _KEPT_BYTES // 4  # its size with counts (12 bytes a cell); larger tasks go chunk by chunk
    made, done = [], 0
    while done < iters:
        size = min(chunk, iters - done)
        index = rng.integers(0, n, (size, n), dtype=np.int32)
        index.flags.writeable = False
        resamples = Resamples(index)
        if keep:
            made.append(resamples)
        yield resamples
        done += size
    if keep:  # only when the whole generator was consumed
        _KEPT[key] = made
        while sum(r.nbytes() + 8 * r.index.size for rs in _KEPT.values() for r in rs) > _KEPT_BYTES:
            _KEPT.pop(next(iter(_KEPT)))


def bootstrap_stderr(block: OutcomeBlock, metric: str, iters: int, seed: int = 1234) -> float | None:
    """Standard deviation of the metric over `iters` resamples of the documents (with replacement)."""
    n = len(block.docs)
    if iters <= 1 or n < 2 or metric not in block.metrics:
        return None
    values = np.concatenate([resampled(block, metric, d) for d in draws_for(n, iters, seed)])
    return float(np.std(values, ddof=1))


# --- vectorised aggregations (the same numbers as harness_tasks/metrics.py and lm-eval's mean) -----------------
def _mean(values, draws: Resamples):
    v = np.asarray(values, dtype=float)
    if not np.isfinite(v).all():  # a product with the counts would spread a NaN to resamples that never drew it
        return v[draws.index].mean(axis=1)
    return draws.counts(len(v)) @ v / draws.index.shape[1]


def _confusion(values, draws: Resamples):
    """B x K x K counts of (gold, pred) over each resample, K = labels seen anywhere in `values`."""
    pairs = np.asarray(values, dtype=int).reshape(-1, 2)
    labels, codes = np.unique(pairs, return_inverse=True)
    k = len(labels)
    cell = codes.reshape(-1, 2) @ np.array([k, 1])
    if k * k > _COUNTS_CELLS:  # many labels: a product with a one-hot table would cost B x n x k^2
        flat = cell[draws.index] + (np.arange(len(draws)) * k * k)[:, None]
        counts = np.bincount(flat.ravel(), minlength=len(draws) * k * k)
        return counts.reshape(len(draws), k, k).astype(float), labels
    one_hot = np.zeros((len(cell), k * k))
    one_hot[np.arange(len(cell)), cell] = 1.0
    return (draws.counts(len(cell)) @ one_hot).reshape(len(draws), k, k), labels


_COUNTS_CELLS = 16  # up to 4 labels (the classification tasks have 2 or 3, plus "no label") a product is faster


def _per_class(values, draws):

    c, labels = _confusion(values, draws)
    tp = np.diagonal(c, axis1=1, axis2=2)
    gold, pred = c.sum(axis=2), c.sum(axis=1)
    # the labels averaged over: classes seen in gold or pred of this resample; a twin's -1 ("no label") is none
    present = ((gold + pred) > 0) & (labels >= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / pred, 0.0)
        recall = np.where(gold > 0, tp / gold, 0.0)
        f1 = np.where(gold + pred > 0, 2 * tp / (gold + pred), 0.0)
    return c, gold, pred, present, precision, recall, f1


def _macro(which: int):
    def fn(values, draws):
        parts = _per_class(values, draws)
        present, metric = parts[3], parts[which]
        return (metric * present).sum(axis=1) / present.sum(axis=1)

    return fn


def _f1_weighted(values, draws):

    _, gold, _, _, _, _, f1 = _per_class(values, draws)
    total = gold.sum(axis=1)
    return np.where(total > 0, (f1 * gold).sum(axis=1) / np.maximum(total, 1), 0.0)


def _mcc(values, draws):

    c, gold, pred, *_ = _per_class(values, draws)
    samples = c.sum(axis=(1, 2))
    correct = np.trace(c, axis1=1, axis2=2)
    cov_tp = correct * samples - (gold * pred).sum(axis=1)
    cov_pp = samples**2 - (pred**2).sum(axis=1)
    cov_tt = samples**2 - (gold**2).sum(axis=1)
    denominator = np.sqrt(cov_tt * cov_pp)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, cov_tp / denominator, 0.0)


_FAST = {  # by aggregation name (AGGREGATIONS)
    "mean": _mean,
    "f1_macro": _macro(6),
    "precision_macro": _macro(4),
    "recall_macro": _macro(5),
    "f1_weighted": _f1_weighted,
    "mcc": _mcc,
}
