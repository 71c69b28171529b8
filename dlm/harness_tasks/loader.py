"""The `custom_dataset` hook of every task: rows come from `dlm_data.data.load_split`, hub or local snapshot alike.

Why a hook and not `dataset_path`: `dlm_data.data` already knows every dataset's real-world traps (script-only
repos, the parquet-export branch, split names, gated sets without a token, label -1 rows, byte-repr cleaning)
and where a local snapshot lives (`--data-dir` / `DLM_DATA_DIR`). Relative `data_files` would also resolve against the working directory, not this
folder. So a task YAML says only which dataset and which splits:

    custom_dataset: !function harness_tasks.loader.load
    dataset_kwargs:
      hub_id: zeroshot/twitter-financial-news-sentiment
      splits: {train: train, validation: validation}     # lm-eval split name: raw split name
      holdout: {key: sentence, fraction: 0.2}            # train-only data: a fixed test part carved out of train
      pool_rows: {train: 2000}                           # cap a huge few-shot pool (first N rows)
      where: {subject: anatomy}                          # keep rows whose column equals the value
      distinct_pool: {split: train, key: [sentence]}     # drop pool rows whose key text equals a scored row's

`where` lets the 57 MMLU subject tasks share one load of the `all` config (one snapshot/card parse instead of
114, which took minutes). Splits are memoised per process for the same reason: a group loads each split once.
`distinct_pool` exists because datasets repeat texts across splits (GLUE, DeepMind mathematics...): lm-eval only
keeps a document out of its own shots when shots and scored documents share a split, so a train row equal to a
validation row would show the model the scored question with its answer.

lm-eval calls this as `load(**task metadata, **dataset_kwargs)`; the metadata carries `data_dir` when `dlm eval`
sets it (`lm_eval ... --metadata '{"data_dir": "samples"}'` does the same on the command line), plus unrelated keys
(version, model args), which are ignored.
"""

from __future__ import annotations

import os

import datasets

from dlm.data.loading import in_holdout, load_split
from dlm.data.root import DATA_DIR_ENV
from dlm.data.rows import read_rows
from dlm.errors import UserError

_SPLITS: dict[tuple, object] = {}  # (hub_id, config, split, data_dir, max_rows) -> Dataset, for this process


def load(
    hub_id: str,
    hub_config: str | None = None,
    splits: dict | None = None,
    holdout: dict | None = None,
    pool_rows: dict | None = None,
    where: dict | None = None,
    distinct_pool: dict | None = None,
    data_dir: str | None = None,
    **_task_metadata,
):
    """A `datasets.DatasetDict` with the splits the task names (see the module docstring)."""

    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    splits = dict(splits or {"test": "test"})
    pool_rows = dict(pool_rows or {})
    parts = {name: read_split(hub_id, hub_config, raw, data_dir, pool_rows.get(name)) for name, raw in splits.items()}
    if where:
        parts = {name: select_where(rows, where) for name, rows in parts.items()}
    if holdout:
        source = holdout.get("from", "train")
        parts.update(split_holdout(parts.pop(source), key=holdout["key"], fraction=float(holdout["fraction"])))
    if distinct_pool:
        pool = distinct_pool.get("split", "train")
        parts[pool] = drop_scored_texts(
            parts[pool], [rows for name, rows in parts.items() if name != pool], distinct_pool["key"]
        )
    empty = [name for name, rows in parts.items() if len(rows) == 0]
    if empty:  # lm-eval would fail later with a bare IndexError
        raise UserError(
            f"{hub_id}{':' + hub_config if hub_config else ''}: no rows in split(s) {', '.join(empty)} "
            f"(data dir: {data_dir or 'the Hub'}); check the snapshot"
        )
    return datasets.DatasetDict(parts)


def read_split(hub_id: str, config: str | None, split: str, data_dir: str | None, max_rows: int | None = None):
    """One split as a `datasets.Dataset` (memoised); with max_rows, only the first rows are read (streamed)."""
    key = (hub_id, config, split, str(data_dir), max_rows)
    if key not in _SPLITS:
        _SPLITS[key] = _read_split(hub_id, config, split, data_dir, max_rows)
    return _SPLITS[key]


def _read_split(hub_id: str, config: str | None, split: str, data_dir: str | None, max_rows: int | None):

    if max_rows:
        rows = load_split(hub_id, config=config, split=split, data_dir=data_dir, streaming=True)
        if isinstance(rows, datasets.Dataset):
            return rows.select(range(min(max_rows, len(rows))))
        return datasets.Dataset.from_list(list(read_rows(rows.take(max_rows), f"{hub_id} split '{split}'")))
    rows = load_split(hub_id, config=config, split=split, data_dir=data_dir, streaming=False)
    if isinstance(rows, datasets.IterableDataset):  # lm-eval needs len() and column features
        rows = datasets.Dataset.from_list(list(read_rows(rows, f"{hub_id} split '{split}'")))
    return rows


def select_where(rows, where: dict):
    """Rows whose columns equal the given values (an index selection: no map pass, no cache files)."""
    keep = [i for i, values in enumerate(zip(*(rows[c] for c in where))) if list(values) == list(where.values())]
    return rows.select(keep)


def _signatures(rows, key: list[str]) -> list[tuple]:
    return [tuple(" ".join(str(v).lower().split()) for v in values) for values in zip(*(rows[c] for c in key))]


def drop_scored_texts(pool, scored_splits: list, key: str | list[str]):
    """The pool without rows whose key columns (case and spacing aside) equal those of any scored row."""
    key = [key] if isinstance(key, str) else list(key)
    scored = {sig for rows in scored_splits for sig in _signatures(rows, key)}
    return pool.select([i for i, sig in enumerate(_signatures(pool, key)) if sig not in scored])


def split_holdout(rows, key: str, fraction: float) -> dict:
    """{'train': rows outside the holdout (few-shot pool), 'test': rows inside it (scored)}.

    `in_holdout` (dlm_data/data.py) is the one rule; training applies it (same key column, same fraction) to keep these test rows
    out of training."""
    mask = [in_holdout(text, fraction) for text in rows[key]]
    return {
        "train": rows.select([i for i, held in enumerate(mask) if not held]),
        "test": rows.select([i for i, held in enumerate(mask) if held]),
    }
