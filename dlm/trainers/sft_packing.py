"""Packing whole SFT examples into rows of nearly equal length, for batches of stacked rows (CPUs, sdpa, eager).

When bins are stacked as the rows of a batch, every row is padded to the longest row of the batch, so what
matters is not how full each bin is but how *equal* the bins are. TRL's best-fit decreasing fills bins up to
`max_length` and leaves the rest short: with 50-65-token tweets in 256-token bins, four examples fill 200-256
positions and every batch pads to 256 (0.93 real tokens per position). Spreading the same examples over the fewest
bins with the longest-first-to-the-shortest-bin rule (LPT) makes all bins within a few tokens of each other
(0.99+). On sets where best-fit already makes bins equal (many small examples fill every gap), LPT can be
slightly worse, so each window keeps whichever of the two has the higher `real / (bins x longest bin)`.

An example is never split (its completion would be trained without its prompt); examples longer than
`max_length` were already cut to it by TRL's preparation. Packing works on windows of `WINDOW` examples (the
whole of a small dataset; streamed datasets pack lazily window by window); the trainer's sampler shuffles rows.
"""

from __future__ import annotations

import bisect
import heapq
import math

WINDOW = 2000
PACKED_COLUMNS = ("input_ids", "labels")


def best_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices grouped into bins of at most `capacity` tokens: longest first, each into the fullest bin it fits."""
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (space left, bin index), sorted
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        at = bisect.bisect_left(free, (lengths[index], -1))
        if at == len(free):
            bins.append([index])
            space, number = capacity - lengths[index], len(bins) - 1
        else:
            space, number = free.pop(at)
            bins[number].append(index)
            space -= lengths[index]
        if space > 0:
            bisect.insort(free, (space, number))
    return bins


def longest_to_shortest_bin(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices spread over the fewest bins that hold them all when each example, longest first, goes to the
    currently shortest bin (LPT scheduling): bin totals end within about one short example of each other.
    The bin count is found by bisection (~log2(n) LPT passes): from the tokens' lower bound up to one bin per
    example, which always fits (examples are at most `capacity` long)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])

    def spread(count: int) -> list[list[int]] | None:
        heap = [(0, number) for number in range(count)]
        bins: list[list[int]] = [[] for _ in range(count)]
        for index in order:
            load, number = heapq.heappop(heap)
            if load + lengths[index] > capacity:
                return None
            bins[number].append(index)
            heapq.heappush(heap, (load + lengths[index], number))
        return bins

    low, high = max(1, math.ceil(sum(lengths) / capacity)), max(1, len(lengths))
    best = spread(high)
    if best is None:  # an example over `capacity` (preparation cuts them; never split one here): best-fit copes
        return best_fit_decreasing(lengths, capacity)
    while low < high:
        middle = (low + high) // 2
        bins = spread(middle)
        if bins is None:
            low = middle + 1
        else:
            best, high = bins, middle
    return [b for b in best if b]


def row_efficiency(bins: list[list[int]], lengths: list[int]) -> float:
    """Real tokens / positions if every bin were padded to the longest one (the worst batch of these bins)."""
    totals = [sum(lengths[i] for i in b) for b in bins]
    return sum(totals) / (len(totals) * max(totals)) if totals else 1.0


def balanced_bins(lengths: list[int], capacity: int) -> list[list[int]]:
    candidates = (longest_to_shortest_bin(lengths, capacity), best_fit_decreasing(lengths, capacity))
    return max(candidates, key=lambda bins: row_efficiency(bins, lengths))


def _pack_window(batch: dict, capacity: int) -> dict:
    lengths = [len(ids) for ids in batch["input_ids"]]
    packed: dict[str, list] = {name: [] for name in (*PACKED_COLUMNS, "seq_lengths")}
    for members in balanced_bins(lengths, capacity):
        for name in PACKED_COLUMNS:
            packed[name].append([token for i in members for token in batch[name][i]])
        packed["seq_lengths"].append([lengths[i] for i in members])
    return packed


def pack_equal_rows(tokenized, max_length: int):
    """Tokenized SFT examples (`input_ids`, `labels`, each at most `max_length` long) -> packed rows with
    `seq_lengths`, the layout TRL's packing produces (so the collators and `packing_stats` read both)."""
    return tokenized.select_columns(list(PACKED_COLUMNS)).map(
        _pack_window,
        batched=True,
        batch_size=WINDOW,
        fn_kwargs={"capacity": max_length},
        remove_columns=list(PACKED_COLUMNS),
    )
