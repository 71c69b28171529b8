"""Which scores may be compared, and by how much two runs differ beyond the noise.

A treated/control pair shares base model, task, task version, metric, filter, shots, data source, the `--limit`
and the exact set of scored documents (from the per-document outcomes, harness_tasks/outcomes.py); anything else
is not paired, with the reason. The difference of a set of pairs is the pooled mean of (treated - control) over
the pairs, in absolute points, with a paired bootstrap 95% interval: every resample draws the same documents for
both runs of a pair. Records without outcomes fall back to a normal approximation from the two stderrs
(unpaired, wider), and a score without any stderr gives no interval at all.

Gains (written in the report's footer and the README):
- absolute gain = treated - control, in the metric's points;
- relative gain = (treated - control) / |control|: dividing by the magnitude keeps the sign of the change for a
  negative control (MCC -0.05 -> +0.05 is +200%, not -200%); for a control of exactly 0 it is undefined ("n/a")
  instead of infinite, and the verdict rests on the absolute interval alone.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlm.files import file_inside
from dlm.harness_tasks.outcomes import draws_for, resampled, resolved
from dlm.store.outcomes import MetricItems, OutcomeBlock, read_outcomes
from dlm.store.outcomes import Outcomes as StoredOutcomes
from dlm.store.records import ScoreProtocol
from dlm.store.schema import SchemaError

ITERS = 1000
SEED = 1234
Z95 = 1.959964


@dataclass
class Difference:
    pairs: int
    treated: float
    control: float
    delta: float
    low: float | None
    high: float | None
    method: str  # "paired bootstrap" | "normal approximation" | "no stderr"

    @property
    def relative(self) -> float | None:
        return None if self.control == 0 else self.delta / abs(self.control)

    def relative_bounds(self) -> tuple[float | None, float | None]:
        if self.control == 0 or self.low is None:
            return None, None
        return self.low / abs(self.control), self.high / abs(self.control)

    def describe(self) -> str:
        interval = (
            "no interval: no stderr recorded"
            if self.low is None
            else f"95% CI [{self.low:+.4f}, {self.high:+.4f}], {self.method}"
        )
        rel = self.relative
        rel_text = "relative n/a (control 0)" if rel is None else f"relative {100 * rel:+.1f}%"
        return (
            f"{self.pairs} paired score(s): treated {self.treated:.4f} vs control {self.control:.4f}, "
            f"absolute {self.delta:+.4f} ({interval}), {rel_text}"
        )

    def to_dict(self) -> dict:
        lo, hi = self.relative_bounds()
        return {
            "pairs": self.pairs,
            "treated": self.treated,
            "control": self.control,
            "absolute": self.delta,
            "ci95": None if self.low is None else [self.low, self.high],
            "relative": self.relative,
            "relative_ci95": None if lo is None else [lo, hi],
            "method": self.method,
        }


def decide(diff: Difference, threshold: float | None) -> str:
    """supported: the interval clears zero and the effect reaches the threshold; not supported: the interval clears
    the threshold the other way; inconclusive otherwise (no interval, or one that straddles)."""
    if diff.low is None:
        return "inconclusive"
    if threshold is None:  # "beats": any positive difference
        return "supported" if diff.low > 0 else "not supported" if diff.high < 0 else "inconclusive"
    rel, (_, rel_high) = diff.relative, diff.relative_bounds()
    if rel is None:  # a zero control: every gain is above any relative threshold
        return "supported" if diff.low > 0 else "not supported" if diff.high <= 0 else "inconclusive"
    if diff.low > 0 and rel >= threshold:
        return "supported"
    if rel_high < threshold:
        return "not supported"
    return "inconclusive"


class Outcomes:
    """Per-document outcomes of the records of one results dir, read on first use."""

    def __init__(self, results_dir: str | Path | None):
        self.results_dir = Path(results_dir) if results_dir else None
        self._cache: dict[str, StoredOutcomes | None] = {}
        self._blocks: dict[tuple, OutcomeBlock | None] = {}  # (file, task, filter, metric) -> resolved block
        self._doc_sets: dict[tuple, frozenset] = {}
        self._items: dict[tuple, tuple[list[str], list, str]] = {}
        self.unreadable: dict[str, str] = {}  # file -> why it was not read (shown in the report's notes)

    def block(self, row) -> OutcomeBlock | None:
        """The row's per-document outcomes, resolved against its task (one per file, task, filter and metric: a
        report asks for the same block once per comparison it enters)."""
        key = self._key(row)
        if key is None:
            return None
        if key not in self._blocks:
            self._blocks[key] = self._resolved(row.run.memo[("outcomes_file", self.results_dir)], row)
        return self._blocks[key]

    def _key(self, row) -> tuple | None:
        """(outcomes file name, task, filter, metric) of a row's score; None when its run has no outcomes file."""
        memo = ("outcomes_file", self.results_dir)
        if memo not in row.run.memo:
            row.run.memo[memo] = row.run.record.outcomes_file(self.results_dir) if self.results_dir else None
        path = row.run.memo[memo]
        return None if path is None else (path.name, row.score.task, row.score.filter, row.score.metric)

    def documents(self, row) -> frozenset | None:
        """The document hashes the row's score was computed on, or None without outcomes."""
        block = self.block(row)
        if block is None:
            return None
        key = self._key(row)[:3]  # the documents are the same for every metric
        if key not in self._doc_sets:
            self._doc_sets[key] = frozenset(block.docs)
        return self._doc_sets[key]

    def items(self, row) -> tuple[list[str], list, str] | None:
        """(document hashes, per-document items, aggregation name) of the row's score, or None without outcomes;
        made once per block (the caller must not modify them)."""
        block = self.block(row)
        if block is None:
            return None
        key = self._key(row)
        if key not in self._items:
            slot = block.metrics[row.score.metric]
            values = [tuple(v) if isinstance(v, list) else v for v in slot.values]  # JSON lists back into tuples
            self._items[key] = (block.docs, values, slot.aggregation)
        return self._items[key]

    def _resolved(self, path: Path, row) -> OutcomeBlock | None:
        if path.name not in self._cache:
            try:
                if os.path.lexists(path) and file_inside(path.parent, path.name) is None:  # a link is not followed
                    raise OSError(f"{path.name} is not a plain file of this folder (a link, a device, a FIFO)")
                self._cache[path.name] = read_outcomes(path)
            except FileNotFoundError:
                self._cache[path.name] = None
            except (OSError, SchemaError) as err:  # a damaged or foreign file: that run's intervals fall back
                self._cache[path.name] = None
                self.unreadable[path.name] = str(err)
        stored = self._cache[path.name]
        block = stored.block(row.score.task, row.score.filter) if stored else None
        if block is None:
            return None
        block = resolved(row.score.task, block)  # aggregations by task and metric, never by a name in the file
        return block if row.score.metric in block.metrics else None


def _limit(row) -> float | None:
    protocol = row.run.record.protocol
    return protocol.limit if protocol else None


def _data_source(row) -> str:
    """Where the scored documents came from: the protocol's data source (content fingerprint) when recorded, else
    the data dir's name (older records)."""
    protocol = row.score.protocol
    if protocol is not None and protocol.data_source:
        return protocol.data_source
    config = row.run.record.eval.config if row.run.record.eval else None
    return str(Path(config.data_dir).name) if config and config.data_dir else "hub"


def mismatch(treated, control, outcomes: Outcomes, documents: bool = True) -> str | None:
    """Why two scores of the same (base model, task, metric, filter, shots) must not be paired; None if they may.
    `documents=False` leaves out the one check that reads outcomes files (`different_documents`)."""
    a, b = treated.score, control.score
    if a.version != b.version:
        return f"task version {a.version} vs {b.version}"
    la, lb = _limit(treated), _limit(control)
    if la != lb:
        return f"--limit {la} vs {lb}"
    if a.n is not None and b.n is not None and a.n != b.n:
        return f"{a.n} vs {b.n} documents"
    if _data_source(treated) != _data_source(control):
        return f"data from {_data_source(treated)} vs {_data_source(control)}"
    differs = protocol_mismatch(a.protocol, b.protocol)
    if differs:
        return differs
    return different_documents(treated, control, outcomes) if documents else None


def different_documents(treated, control, outcomes: Outcomes) -> str | None:
    """Why two scores may not be paired on their documents: each scored a set the other did not."""
    da, db = outcomes.documents(treated), outcomes.documents(control)
    if da is not None and db is not None and da != db:
        return "different documents scored"
    return None


PROTOCOL_FIELDS = ("scoring", "chat_template", "system_instruction", "fewshot_as_multiturn", "generation", "extraction")


def protocol_mismatch(a: ScoreProtocol | None, b: ScoreProtocol | None) -> str | None:
    """The first protocol field (harness_tasks/protocol.py) two scores differ in. Records from before protocols
    were recorded (None) were all plain prompts: they pair with scores that used no chat template, and their
    other fields are unknown, so those are not compared."""
    if a is None or b is None:
        known = a or b
        if known is None or not (known.chat_template or known.system_instruction or known.fewshot_as_multiturn):
            return None
        return "chat template " + (known.chat_template.name if known.chat_template else "none") + " vs none"
    for name in PROTOCOL_FIELDS:
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            if name == "chat_template":
                va, vb = (v.name if v else "none" for v in (va, vb))
            return f"{name.replace('_', ' ')} {va} vs {vb}"
    return None


def difference(found: list, outcomes: Outcomes) -> Difference:
    """Pooled treated - control over (treated row, control row) pairs, with its 95% interval."""

    treated = float(np.mean([a.score.value for a, _ in found]))
    control = float(np.mean([b.score.value for _, b in found]))
    delta = treated - control
    blocks = [(outcomes.block(a), outcomes.block(b)) for a, b in found]
    if all(x is not None and y is not None for x, y in blocks):
        low, high = _paired_bootstrap(found, blocks)
        return Difference(len(found), treated, control, delta, low, high, "paired bootstrap")
    errors = [(a.score.stderr, b.score.stderr) for a, b in found]
    if all(x is not None and y is not None for x, y in errors):
        se = math.sqrt(sum(x * x + y * y for x, y in errors)) / len(found)
        return Difference(
            len(found),
            treated,
            control,
            delta,
            delta - Z95 * se,
            delta + Z95 * se,
            "normal approximation (no per-document outcomes)",
        )
    return Difference(len(found), treated, control, delta, None, None, "no stderr")


def _paired_bootstrap(found: list, blocks: list) -> tuple[float, float]:

    total = np.zeros(ITERS)
    for i, ((a, b), (ta, tb)) in enumerate(zip(found, blocks)):
        ta, tb = _aligned(ta), _aligned(tb)  # the same document at the same index on both sides
        parts = [
            resampled(ta, a.score.metric, d) - resampled(tb, b.score.metric, d)
            for d in draws_for(len(ta.docs), ITERS, SEED + i)
        ]
        total += np.concatenate(parts)
    total /= len(found)
    low, high = np.percentile(total, [2.5, 97.5])
    return float(low), float(high)


def _aligned(block: OutcomeBlock) -> OutcomeBlock:
    order = sorted(range(len(block.docs)), key=block.docs.__getitem__)
    return OutcomeBlock(
        docs=[block.docs[i] for i in order],
        metrics={
            m: MetricItems(slot.aggregation, [slot.values[i] for i in order]) for m, slot in block.metrics.items()
        },
    )
