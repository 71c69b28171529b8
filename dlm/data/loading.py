"""Datasets: look up, load (Hub or local snapshot, one code path), format as text or prompt/completion.
(Which rows a run trains on, and the mixture of several datasets: trainers/mixture.py.)

The table of datasets is dlm_data/datasets_table.py. Loading handles the real Hub's traps:
- bare ids (`glue`) resolve to namespaced ones (`nyu-mll/glue`); a local snapshot is `<data_dir>/<hub_id>`;
- script-only repos read their `refs/convert/parquet` branch with `data_dir=<config>` (the branch has no card,
  so a config name would not be found); a local snapshot of that branch is read the same way;
- split aliases (`validation` -> `valid` / `validation_matched`), label -1 rows dropped, row repairs applied;
- huge corpora are streamed, so a run that needs N rows reads about N rows;
- a gated set without a token, or no snapshot while offline, is a one-line `UserError` naming the fix.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from pathlib import Path

import datasets
import pyarrow
import pyarrow.compute as pc
from huggingface_hub import get_token

from dlm.data import hub
from dlm.data.root import data_root
from dlm.data.rows import check_split, checked_stream, read_rows
from dlm.data.table import TABLE, DatasetEntry, _unknown, lookup
from dlm.errors import UserError
from dlm.quiet import is_verbose

__all__ = ["TABLE", "DatasetEntry", "lookup", "load_split", "to_pretrain_text", "to_sft_pair", "show_rows", "held_out"]

PARQUET_BRANCH = "refs/convert/parquet"
# Split names users (and the seed) write, and what real repos call them instead.
SPLIT_ALIASES = {
    "validation": ("valid", "validation_matched", "dev", "val"),
    "valid": ("validation",),
    "dev": ("validation", "valid"),
    "val": ("validation", "valid"),
    "test": ("test_matched",),
}
PREVIEW_ROWS = 10_000  # `show_rows` reads at most this many rows to find n usable ones
MAX_SHOWN = 1_000  # `dlm data show -n`: rows printed as one table
# Rows per record batch when a parquet source is streamed. The pyarrow dataset scanner that datasets' parquet
# reader uses decodes a file ahead of the reader, in background threads, until its output queue holds 1 GiB
# (Acero's default backpressure), even with batch_readahead=0 and fragment_readahead=0. The queue counts a batch
# at its buffers' full size, and a batch smaller than a row group is a slice of the whole decoded row group, so
# small batches bound the decoded data held ahead to ~1 GiB x STREAM_BATCH_ROWS / rows per row group (16 MB for
# 1,000-row groups) instead of up to the whole file (bench/README.md, row 6).
STREAM_BATCH_ROWS = 16


def iter_strings(value):
    """Every string inside a row (nested dicts and lists included), in column order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from iter_strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from iter_strings(v)


def require_config(entry: DatasetEntry) -> None:
    if entry.configs and entry.config is None:
        raise UserError(f"dataset {entry.id} needs a config (--dataset_config); one of: {', '.join(entry.configs)}")


# --- loading -----------------------------------------------------------------------------------------------
def _source(entry: DatasetEntry, data_dir) -> tuple[str, dict, str]:
    """(path for `datasets`, builder kwargs, 'local' | 'hub'): a local snapshot when there is one, else the Hub."""
    export = entry.route == "parquet-export"
    kwargs = {"data_dir": entry.config} if export else {"name": entry.config}
    root = data_root(data_dir)
    if root is not None and (root / entry.hub_id).is_dir():
        snapshot = root / entry.hub_id
        # `datasets` caches a converted local snapshot under a key that does not see edits to its files; a cache
        # dir per stamp of the files (sizes and modification times) makes an edited snapshot read again
        kwargs["cache_dir"] = str(_snapshot_cache(snapshot))
        return str(snapshot), kwargs, "local"
    where = f" under {root}" if root is not None else ""
    if entry.route == "gated":
        if not get_token():
            raise UserError(
                f"dataset {entry.hub_id} is gated: accept its terms at https://huggingface.co/datasets/"
                f"{entry.hub_id} and set HF_TOKEN (or `hf auth login`), or pass --data-dir with a "
                f"snapshot at DIR/{entry.hub_id} (none found{where})"
            )
    if not hub.online():  # offline by choice, or found unreachable by one quick request (dlm/data/hub.py)
        raise UserError(hub.no_snapshot(entry.hub_id, root))
    if export:
        kwargs["revision"] = PARQUET_BRANCH
    return entry.hub_id, kwargs, "hub"


def snapshot_stamp(directory: Path) -> str:
    """A hash of every file's relative path, size and modification time under `directory`."""
    digest = hashlib.sha1()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and ".cache" not in p.parts):
        stat = path.stat()
        digest.update(f"{path.relative_to(directory)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _snapshot_cache(snapshot: Path) -> Path:

    return Path(datasets.config.HF_DATASETS_CACHE) / "dlm-snapshots" / f"{snapshot.name}-{snapshot_stamp(snapshot)}"


def _builder(entry: DatasetEntry, path: str, kwargs: dict, where: str):

    try:
        return datasets.load_dataset_builder(path, **kwargs)
    except (ConnectionError, datasets.exceptions.DatasetNotFoundError) as exc:
        raise UserError(
            f"cannot open {entry.hub_id} ({type(exc).__name__}: {_first_line(exc)}); "
            f"check the network or token, or pass --data-dir with a local snapshot"
        ) from None
    except (FileNotFoundError, ValueError) as exc:  # a local snapshot lacking this config's files
        if where != "local":
            raise
        raise UserError(
            f"the snapshot {path} has no data for {entry.label()} ({_first_line(exc)}); download it "
            f"again (for script repos: the refs/convert/parquet branch)"
        ) from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:160]


def _resolve_split(entry: DatasetEntry, split: str, available: list[str]) -> str:
    if split in available:
        return split
    for alias in SPLIT_ALIASES.get(split, ()):
        if alias in available:
            return alias
    held = f" (its eval set is a fixed {entry.holdout:.0%} of train)" if entry.holdout else ""
    raise _unknown("split", split, entry.label(), available, held)


def load_split(
    dataset_id: str, config: str | None = None, split: str | None = None, data_dir=None, streaming: bool | None = None
):
    """Raw rows of one split (a `Dataset`, or an `IterableDataset` when streamed), from the Hub or from
    `<data_dir or DLM_DATA_DIR>/<hub_id>` by the same code. Label -1 rows are dropped; row repairs applied.
    `streaming=None` streams the large and huge sets only."""
    entry = lookup(dataset_id, config)
    require_config(entry)
    path, kwargs, where = _source(entry, data_dir)
    builder = _builder(entry, path, kwargs, where)
    available = [str(name) for name in (builder.config.data_files or builder.info.splits or {})]
    split = _resolve_split(entry, split or entry.train_split or entry.eval_split, available)
    place = split_place(entry, split, (builder.config.data_files or {}).get(split))
    with _quiet(where == "local"):  # a local snapshot converts in a blink: no progress bars on stderr
        if entry.streamed if streaming is None else streaming:
            _bound_readahead(builder)
            rows = builder.as_streaming_dataset(split=split)
            if entry.clean is not None:
                rows = rows.map(entry.clean)
            rows = checked_stream(entry, rows, place)
        else:
            _prepare(builder, entry, path, where)
            rows = builder.as_dataset(split=split)
            if entry.clean is not None:
                rows = rows.map(entry.clean)
            check_split(entry, rows, place)  # before -1 rows are dropped: row numbers are the file's
        return _drop_unlabelled(rows, entry.label_field)


def split_place(entry: DatasetEntry, split: str, files) -> str:
    """How an error names a split: the dataset, the split and its file (or how many files)."""
    files = [str(f) for f in files or []]
    if len(files) == 1:
        return f"{entry.label()} split '{split}' ({files[0].rsplit('/', 1)[-1]})"
    return f"{entry.label()} split '{split}'" + (f" ({len(files)} files)" if files else "")


def _prepare(builder, entry: DatasetEntry, path: str, where: str) -> None:
    """Convert the split files; a truncated or corrupt file of a local snapshot is one line naming the snapshot."""

    try:
        builder.download_and_prepare()
    except (datasets.exceptions.DatasetGenerationError, pyarrow.ArrowException, OSError) as exc:
        if where != "local" or isinstance(exc, (ConnectionError, PermissionError)):
            raise
        cause = exc.__cause__ or exc
        raise UserError(
            f"cannot read the snapshot {path} of {entry.label()} ({type(cause).__name__}: "
            f"{_first_line(cause)}); download it again"
        ) from None


def _bound_readahead(builder) -> None:
    """Stream a parquet source in small record batches (STREAM_BATCH_ROWS), unless the builder sets its own."""
    config = builder.config
    if type(config).__name__ == "ParquetConfig" and getattr(config, "batch_size", None) is None:
        config.batch_size = STREAM_BATCH_ROWS


@contextlib.contextmanager
def _quiet(enabled: bool):

    turn_off = enabled and not is_verbose() and datasets.is_progress_bar_enabled()
    if turn_off:
        datasets.disable_progress_bars()
    try:
        yield
    finally:
        if turn_off:
            datasets.enable_progress_bars()


def _drop_unlabelled(rows, label_field: str | None):
    """GLUE test splits and IMDB's `unsupervised` carry label -1 (hidden / none): never train or score on them."""

    features = rows.features or {}
    feature = features.get(label_field) if label_field else None
    is_int = isinstance(feature, datasets.ClassLabel) or str(getattr(feature, "dtype", "")).startswith("int")
    if not is_int:
        return rows
    if isinstance(rows, datasets.Dataset):
        if not pc.any(pc.equal(rows.data.column(label_field), -1)).as_py():
            return rows  # nothing to drop: skip a pass over the data
    return rows.filter(lambda row: row[label_field] != -1)


# --- formatting --------------------------------------------------------------------------------------------
def _answer_word(entry: DatasetEntry, row: dict) -> str:
    words = entry.answer_words or entry.label_names
    return words[row[entry.label_field]]


def to_sft_pair(entry: DatasetEntry, row: dict) -> tuple[str, str]:
    """(prompt, completion): the prompt has no trailing space, the completion starts with one."""
    require_config(entry)
    if entry.formatter is not None:
        prompt, completion = entry.formatter(entry, row)
    elif entry.prompt is not None:
        prompt = entry.prompt.format(**row)
        label = _answer_word(entry, row) if "{label}" in entry.answer else None
        completion = entry.answer.format(**{**row, "label": label})
    else:
        raise UserError(f"{entry.id} is a pretraining corpus with no prompt/completion; use --mode pretrain")
    prompt = prompt.rstrip(" ")
    return prompt, completion if completion.startswith(" ") else " " + completion.lstrip()


def to_pretrain_text(entry: DatasetEntry, row: dict) -> str:
    """Text for continued pretraining: the text fields (labels left out), or prompt + answer for QA and
    instruction sets, whose answers are domain text too. Empty for blank rows (callers skip them)."""
    require_config(entry)
    if entry.pretrain_with_answer and entry.can_sft:
        prompt, completion = to_sft_pair(entry, row)
        return prompt + completion
    parts = [row.get(name) for name in entry.text_fields]
    return "\n".join(str(p) for p in parts if p is not None and str(p).strip()).strip("\n")


def row_formatter(entry: DatasetEntry, mode: str):
    if mode == "pretrain":
        return lambda row: {"text": to_pretrain_text(entry, row)}
    if not entry.can_sft:
        raise UserError(f"{entry.id} is a pretraining corpus with no prompt/completion; use --mode pretrain")
    return lambda row: dict(zip(("prompt", "completion"), to_sft_pair(entry, row)))


def is_usable(example: dict) -> bool:
    return any(str(v).strip() for v in example.values())


# --- holdout --------------------------------------------------------------------------------------------
def in_holdout(text: str, fraction: float) -> bool:
    """Whether a row belongs to the held-out test part: a hash of its normalised key text, so the choice is stable
    across machines and library versions, and identical texts (duplicates) always land on the same side."""
    digest = hashlib.sha1(" ".join(str(text).lower().split()).encode("utf-8")).hexdigest()
    return int(digest[:8], 16) / 0x100000000 < fraction


def held_out(entry: DatasetEntry, row: dict) -> bool:
    """True for rows an evaluation task scores (train-only sets): the rule harness_tasks/loader.py splits its
    test rows by, keyed on the first text field (the task's holdout key), so training never sees a scored row."""
    if not entry.holdout:
        return False
    return in_holdout(row[entry.text_fields[0]], entry.holdout)


# --- preview -------------------------------------------------------------------------------------------------
def show_rows(
    dataset: str, config: str | None = None, split: str | None = None, n: int = 5, as_: str = "raw", data_dir=None
) -> list[dict]:
    """The first n rows of a split, raw or as training text / prompt+completion (`dlm data show`)."""
    if as_ not in ("raw", "pretrain", "sft"):
        raise UserError(f"unknown --as '{as_}'; use raw, pretrain or sft")
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SHOWN:
        raise UserError(f"-n is how many rows to show: 1 to {MAX_SHOWN:,} (got {n})")
    entry = lookup(dataset, config)
    require_config(entry)
    fmt = (lambda row: row) if as_ == "raw" else row_formatter(entry, as_)
    rows = load_split(dataset, entry.config, split, data_dir=data_dir, streaming=True)  # read only what is shown
    out = []
    for row in itertools.islice(read_rows(rows, f"{entry.label()} split '{split or 'default'}'"), PREVIEW_ROWS):
        example = fmt(row)
        if as_ == "raw" or is_usable(example):
            out.append(example)
        if len(out) >= n:
            break
    return out
