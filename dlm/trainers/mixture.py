"""Training data from the table's datasets: a deterministic fraction of each, evaluation rows held out, and a
mixture drawn by exact rates (in memory, or lazily from streamed corpora).

Loading and formatting rows is dlm_data/data.py; this module decides which rows a run trains on and in what order.
"""

from __future__ import annotations

import hashlib
import itertools
import random

import datasets

from dlm.config import MixtureSpec
from dlm.data.loading import (
    held_out,
    is_usable,
    load_split,
    lookup,
    require_config,
    row_formatter,
)
from dlm.data.rows import read_rows
from dlm.errors import UserError


def _unit_hash(text: str) -> float:
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16) / 0x100000000


class _Part:
    """One mixture component: its rows (in memory) or its stream, cycled in a seeded order."""

    def __init__(self, entry, rows, mode: str, seed: int, fraction: float, rows_read: dict):

        self.entry, self.seed, self.fraction = entry, seed, fraction
        self.format = row_formatter(entry, mode)
        self.streamed = isinstance(rows, datasets.IterableDataset)
        self.rows_read = rows_read  # shared {label: raw rows read}, live while a stream is consumed
        self.rows_read[entry.label()] = 0 if self.streamed else len(rows)
        if self.streamed:
            self.stream = rows
            self.examples = None
        else:  # a deterministic `fraction` subset: the first k of a seeded permutation (nested across fractions)
            order = (
                [i for i, row in enumerate(rows) if not held_out(entry, row)]
                if entry.holdout
                else list(range(len(rows)))
            )
            random.Random(seed).shuffle(order)
            keep = sorted(order[: max(1, round(len(order) * fraction))]) if order else []
            where = f"{entry.label()} split '{entry.train_split}'"
            self.examples = [ex for ex in map(self.format, read_rows(rows.select(keep), where)) if is_usable(ex)]
            if not self.examples:
                raise UserError(f"{entry.label()} has no usable training rows (check --data_fraction)")

    def __len__(self):
        return len(self.examples)

    def _stream_pass(self):
        for i, row in enumerate(read_rows(self.stream, f"{self.entry.label()} split '{self.entry.train_split}'")):
            self.rows_read[self.entry.label()] += 1
            if self.fraction < 1 and _unit_hash(f"{self.seed}:{i}") >= self.fraction:
                continue  # a deterministic share of a stream: whether row i is in depends on (seed, i) only
            if not held_out(self.entry, row):
                example = self.format(row)
                if is_usable(example):
                    yield example

    def examples_forever(self):
        for epoch in itertools.count():
            if self.streamed:
                produced = False
                for example in self._stream_pass():
                    produced = True
                    yield example
                if not produced:
                    raise UserError(f"{self.entry.label()} yielded no usable training rows")
            else:
                order = list(range(len(self.examples)))
                random.Random(f"{self.seed}-{epoch}").shuffle(order)
                for i in order:
                    yield self.examples[i]


def mixture_schedule(rates: list[float]):
    """Which part each draw comes from: smooth weighted round-robin, so after n draws every part has its share
    within one row (deterministic, no sampling noise; proportions are exact to 1/n)."""
    credit = [0.0] * len(rates)
    while True:
        for i, rate in enumerate(rates):
            credit[i] += rate
        j = max(range(len(rates)), key=credit.__getitem__)
        credit[j] -= 1.0
        yield j


def _mixed(parts: list[_Part], rates: list[float]):
    streams = [p.examples_forever() for p in parts]
    for j in mixture_schedule(rates):
        yield next(streams[j])


def training_dataset(
    mixture: MixtureSpec,
    mode: str,
    data_dir=None,
    seed: int = 42,
    data_fraction: float = 1.0,
    max_rows: int | None = None,
):
    """(dataset with `text` (pretrain) or `prompt`/`completion` (sft), info dict).

    Rows are drawn from the parts by the mixture rates (exact proportions). Length: `max_rows` if given; else one
    pass of the combined in-memory data (sum of the parts' sizes); with a streamed part and no `max_rows`, an
    endless `IterableDataset` that reads its sources only as far as the trainer consumes it."""

    if mode not in ("pretrain", "sft"):
        raise UserError(f"unknown mode '{mode}'; use pretrain or sft")
    if not (0 < data_fraction <= 1):
        raise UserError(f"data_fraction must be in (0, 1] (got {data_fraction})")
    total = sum(mixture.rates)
    rates = [r / total for r in mixture.rates]
    parts, rows_read = [], {}
    for spec in mixture.parts:
        entry = lookup(spec.dataset, spec.config)
        require_config(entry)
        if entry.train_split is None:
            raise UserError(
                f"{entry.label()} is evaluation-only (no training split); evaluate it with `dlm eval`, "
                f"or train on another dataset (`dlm data list`)"
            )
        rows = load_split(entry.id, entry.config, entry.train_split, data_dir=data_dir)
        parts.append(_Part(entry, rows, mode, seed, data_fraction, rows_read))
    streamed = any(p.streamed for p in parts)
    info = {
        "parts": [p.entry.label() for p in parts],
        "rates": rates,
        "mode": mode,
        "seed": seed,
        "data_fraction": data_fraction,
        "streamed": streamed,
        "rows_read": rows_read,
    }
    if max_rows is None and streamed:

        def endless():
            yield from _mixed(parts, rates)

        dataset = datasets.IterableDataset.from_generator(endless)
        schedule = list(itertools.islice(mixture_schedule(rates), 10_000))
        counts = [schedule.count(i) for i in range(len(parts))]
        rows = None
    else:
        rows = max_rows if max_rows is not None else sum(len(p) for p in parts)
        examples, counts = [], [0] * len(parts)
        streams = [p.examples_forever() for p in parts]
        for j in itertools.islice(mixture_schedule(rates), rows):
            examples.append(next(streams[j]))
            counts[j] += 1
        dataset = datasets.Dataset.from_list(examples)
    info.update(
        rows=rows,
        realised_proportions=[c / max(1, sum(counts)) for c in counts],
        rows_available=[None if p.streamed else len(p) for p in parts],
    )
    return dataset, info
