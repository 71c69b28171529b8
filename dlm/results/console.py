"""Rich printers for the CLI: dataset table, rows, overlap, task list, training summary, eval scores.

Records come typed (dlm/store/records.py); every printer tolerates absent values: None prints as "–", so a
partial record never crashes the command that made it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.table import Table

from dlm.store.records import RunRecord, TrainPart

MISSING = "–"
MAX_CELL = 300  # characters of one cell in `data show`; long documents would push everything else off screen
MAX_CONFIGS = 4  # configs listed before "(+N more)"; glue has 8, deepmind math ~56, mmlu 57


def screen_width() -> int | None:
    """COLUMNS when set (piped output included), else the terminal's width (rich decides)."""
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and int(value) > 20 else None


def _console():

    console = Console(width=screen_width())
    if not console.is_terminal and screen_width() is None:  # piped, no COLUMNS: Rich would squeeze to 80
        console.width = max(console.width, 160)
    return console


def _table(title: str | None = None, *columns: str):

    table = Table(title=title, show_lines=False, header_style="bold")
    for name in columns:
        table.add_column(name)
    return table


def fmt(value: Any, digits: int = 4) -> str:
    """One cell: None -> '–', floats rounded, ints with thousands separators, lists joined."""
    if value is None or value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return MISSING
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple, set)):
        return ", ".join(fmt(v, digits) for v in value) or MISSING
    return str(value)


def _clip(text: str, limit: int = MAX_CELL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _get(obj: Any, name: str, default=None):
    """Attribute of a dataclass or key of a dict, whichever `obj` is."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


# --- data -------------------------------------------------------------------------------------------------
def abbreviate(items: Iterable | None, limit: int = MAX_CONFIGS) -> str:
    items = [str(i) for i in (items or []) if i is not None]
    if not items:
        return MISSING
    if len(items) <= limit:
        return ", ".join(items)
    return ", ".join(items[:limit]) + f" … (+{len(items) - limit} more)"


def print_dataset_table(table: Iterable) -> None:
    """`dlm data list`: one row per dataset of the study."""
    out = _table("Datasets", "id", "domain", "configs", "splits (train / eval)", "loading route", "size")
    count = 0
    for entry in table:
        count += 1
        dataset_id = fmt(_get(entry, "id"))
        hub_id = _get(entry, "hub_id")
        if hub_id and hub_id != _get(entry, "id"):
            dataset_id += f"\n[dim]{hub_id}[/dim]"
        splits = f"{fmt(_get(entry, 'train_split'))} / {fmt(_get(entry, 'eval_split'))}"
        out.add_row(
            dataset_id,
            fmt(_get(entry, "domain")),
            abbreviate(_get(entry, "configs")),
            splits,
            fmt(_get(entry, "route")),
            fmt(_get(entry, "size_class")),
        )
    # the study plan counts AdaptLLM/finance-tasks once per config: its 26 datasets are configs of 23 repositories
    out.caption = f"{count} repositories" + (
        " (the study plan's 26 datasets are configs of these)" if count == 23 else ""
    )
    _console().print(out)


def print_rows(rows: list[dict], title: str | None = None) -> None:
    """`dlm data show`: the first rows of a split; columns are the union of the rows' keys, in first-seen order."""
    console = _console()
    if not rows:
        console.print(f"[yellow]no rows[/yellow]{' in ' + title if title else ''}")
        return
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    out = _table(title, "#", *columns)
    out.show_lines = True  # rows are documents; lines keep them apart when cells wrap
    for i, row in enumerate(rows):
        # repr-like quoting for strings keeps leading spaces visible (SFT completions start with one)
        cells = [_clip(repr(v)) if isinstance(v, str) else _clip(fmt(v)) for v in (row.get(c) for c in columns)]
        out.add_row(str(i), *cells)
    console.print(out)


def print_overlap(report: dict) -> None:
    """`dlm data overlap`: a key/value table; nested dicts are flattened to dotted keys, examples listed below."""
    console = _console()
    report = report or {}
    out = _table("Train/eval overlap", "field", "value")
    examples = []
    for key, value in _flatten(report):
        if isinstance(value, list) and value and (isinstance(value[0], dict) or len(value) > 3):
            examples.append((key, value))
            out.add_row(key, f"{len(value)} items (listed below)")
            continue
        out.add_row(key, _clip(fmt(value), 160))
    console.print(out)
    for key, items in examples:
        console.print(f"[bold]{key}[/bold] (first 5 of {len(items)}):")
        for item in items[:5]:
            if isinstance(item, dict) and "eval" in item:  # overlap example: which eval text matched which train text
                head = " ".join(f"{k}={fmt(v, 3)}" for k, v in item.items() if k not in ("eval", "train"))
                console.print(
                    f"  • {head}\n    eval:  {_clip(str(item['eval']), 200)}\n"
                    f"    train: {_clip(str(item.get('train', '')), 200)}",
                    markup=False,
                    highlight=False,
                )
            else:
                console.print("  • " + _clip(str(item), 200), markup=False, highlight=False)
    flagged = report.get("above_threshold", report.get("contaminated"))
    if flagged:
        console.print("[bold red]overlap above threshold: scores on this evaluation set are suspect[/bold red]")
    elif flagged is not None:
        console.print("[green]overlap below threshold[/green]")


def _flatten(data: dict, prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            items.extend(_flatten(value, name + "."))
        else:
            items.append((name, value))
    return items


# --- tasks ------------------------------------------------------------------------------------------------
def print_task_table(rows: list[dict]) -> None:
    """`dlm tasks list`: name, family, dataset, metric, shots, version; groups in bold."""
    out = _table("Evaluation tasks", "name", "family", "dataset", "metric", "shots", "version")
    for row in rows or []:
        name = fmt(_get(row, "name"))
        if _get(row, "is_group") or _get(row, "kind") == "group":
            name = f"[bold]{name}[/bold] (group)"
        out.add_row(
            name,
            fmt(_get(row, "family")),
            fmt(_get(row, "dataset")),
            fmt(_get(row, "metric", _get(row, "metrics"))),
            fmt(_get(row, "shots", _get(row, "num_fewshot"))),
            fmt(_get(row, "version")),
        )
    out.caption = f"{len(rows or [])} tasks and groups"
    _console().print(out)


# --- train / eval -----------------------------------------------------------------------------------------
def _steps(train: TrainPart) -> Any:
    if train.global_step is not None:
        return train.global_step
    if train.loss_curve:
        return train.loss_curve[-1][0]
    return train.config.max_steps if train.config else None


def print_train_summary(record: RunRecord) -> None:
    """After `dlm train`: where the checkpoint went and what the run cost."""
    train = record.train or TrainPart()
    out = _table(f"Training run {record.run_id}", "", "")
    out.show_header = False
    peak = train.peak_memory_mb
    efficiency = train.packing_efficiency
    rows = [
        ("model", fmt(record.model.name)),
        ("approach / domain", f"{fmt(record.approach)} / {fmt(record.domain)}"),
        ("output dir", fmt(train.output_dir)),
        ("steps", fmt(_steps(train))),
        ("final loss", fmt(train.final_loss)),
        ("tokens seen", fmt(train.tokens_seen)),
        ("packing efficiency", MISSING if efficiency is None else f"{100 * efficiency:.1f}%"),
        ("tokens/s", fmt(train.tokens_per_s, 1)),
        ("wall time", fmt_seconds(train.wall_time_s)),
        ("peak memory", MISSING if peak is None else f"{peak:,.0f} MB"),
        ("trainable / total params", f"{fmt(train.trainable_params)} / {fmt(train.total_params)}"),
    ]
    fitted = train.fit_to_max_length if isinstance(train.fit_to_max_length, dict) else None
    if fitted:
        rows.append(
            (
                "over --max_length",
                f"{fitted['prompts_cut_from_left']} of {fitted['examples']} prompts cut "
                f"from the left, {fitted['completions_too_long']} completions too long",
            )
        )
    for key, value in rows:
        out.add_row(key, value)
    console = _console()
    console.print(out)
    _print_contamination(console, train.contamination)


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def contamination_flags(contamination) -> dict[str, str]:
    """Which evaluation sets a run's training data overlaps above threshold: {task or "*": "overlap value"}.

    Accepts the overlap report of one eval set ({"above_threshold": true, "eval": ..., "overlap": ...}), a list of
    such reports, or a dict keyed by task name; "*" means the report did not name a task.
    """
    if isinstance(contamination, list):
        flags = {}
        for item in contamination:
            flags.update(contamination_flags(item))
        return flags
    if not isinstance(contamination, dict):
        return {}
    if "above_threshold" in contamination or "contaminated" in contamination:
        if not (contamination.get("above_threshold") or contamination.get("contaminated")):
            return {}
        name = contamination.get("eval") or contamination.get("task") or contamination.get("eval_name") or "*"
        value = next(
            (
                contamination[k]
                for k in ("duplicated_fraction", "overlap", "overlap_fraction")
                if contamination.get(k) is not None
            ),
            None,
        )
        return {str(name): fmt(value)}
    flags = {}
    for key, value in contamination.items():
        if isinstance(value, dict):
            flags.update({(k if k != "*" else key): v for k, v in contamination_flags(value).items()})
    return flags


def _print_contamination(console, contamination) -> None:
    for task, overlap in contamination_flags(contamination).items():
        where = "evaluation data" if task == "*" else task
        console.print(
            f"[bold red]contamination:[/bold red] training data overlaps {where} above threshold "
            f"(overlap {overlap}); scores there are suspect",
            highlight=False,
        )


def fmt_score(value: float | None, stderr: float | None) -> str:
    if value is None or value != value:  # None or NaN (lm-eval reports NaN when a metric is undefined)
        return MISSING
    return f"{value:.4f}" + (f" ± {stderr:.4f}" if stderr is not None else "")


def print_eval(record: RunRecord) -> None:
    """After `dlm eval` / `dlm run`: one row per (task, metric, filter); groups in bold and marked."""
    model = record.model.name
    out = _table(f"Scores — {fmt(model)}", "task", "metric", "value ± stderr", "n", "shots")
    out.caption = f"run {record.run_id}"  # a caption, not the title: a long run id stays whole
    scores = record.scores
    for s in scores:
        metric = s.metric if s.filter in (None, "none") else f"{s.metric} ({s.filter})"
        task = f"[bold]{s.task}[/bold] (group)" if s.is_group else s.task
        out.add_row(task, metric, fmt_score(s.value, s.stderr), fmt(s.n), fmt(s.num_fewshot))
    console = _console()
    if not scores:
        console.print("[yellow]no scores in this record[/yellow]")
        return
    console.print(out)
    if model == "tiny-gpt2":
        console.print(
            "[dim]tiny-gpt2 numbers demonstrate the pipeline only; they say nothing about the study's question.[/dim]"
        )
    _print_contamination(console, record.train.contamination if record.train else [])
