"""Rows checked before they are trained on or scored: a bad cell is an error naming file, row and column.

Dataset files are not trusted. A label out of range, a string or null label, or a null text would otherwise crash
deep inside formatting with a bare IndexError/TypeError, or worse pass silently: a label of -3 indexes the class
names from the end, and a null text is formatted as the word "None" and trained on. Bytes that are not UTF-8 are
read by Arrow without complaint and fail only when the row is read.

What is checked, per dataset of the table (data/table.py):
- the label, where it is a class number (it indexes the answer words, or a row's `choices`/`options`): present,
  an integer, and in range (-1 is "unlabelled": such rows are dropped by design); a score label (FiQA's sentiment
  score) is a finite number; structured labels (SEC's {1d, 5d, 30d}, NER's lists) are left to their formatter;
- the columns a prompt or answer is made of (`prompt_fields`): present and not null;
- every string column: valid UTF-8.
Pretraining text columns are not required: a null text there is a blank row, skipped like an empty one.

Errors, not skips: a skipped row would change the number of documents a score is reported on, and the table's
real datasets hold no such rows, so a bad row means a broken snapshot or a wrong file, which the user must see.
In-memory splits are checked at once with Arrow (the row-by-row scan runs only to name a row once something is
wrong); streamed splits row by row as they are read.
"""

from __future__ import annotations

import math
import string

import datasets
import pyarrow
import pyarrow.compute as pc

from dlm.data.table import DatasetEntry
from dlm.errors import UserError

OPTION_COLUMNS = ("choices", "options")  # multiple-choice sets: the label indexes the row's own options


def prompt_fields(entry: DatasetEntry) -> tuple[str, ...]:
    """Columns a prompt or answer is built from, which must hold text (a null one would read "None")."""
    if entry.prompt is not None:
        names = [field for _, field, _, _ in string.Formatter().parse(entry.prompt + entry.answer) if field]
        return tuple(dict.fromkeys(n.split(".")[0].split("[")[0] for n in names if n != "label"))
    if entry.formatter is not None:
        return tuple(f for f in entry.text_fields if f not in entry.optional_fields)
    return ()


def label_problem(entry: DatasetEntry, row: dict) -> str | None:
    """What is wrong with the row's label, or None."""
    name = entry.label_field
    if not name or name not in row:
        return None
    value = row[name]
    if isinstance(value, (dict, list)):  # structured labels: the formatter picks its part
        return None
    if entry.label_is_score:
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return f"is {value!r}; it must be a finite number"
        return None
    options = next((row[c] for c in OPTION_COLUMNS if isinstance(row.get(c), list) and row[c]), None)
    classes = len(options) if options is not None else len(entry.answer_words or entry.label_names)
    if not classes:  # a free-form label (a text answer)
        return None
    if value is None:
        return "is null (empty)"
    if isinstance(value, bool) or not isinstance(value, int):
        return f"is {value!r}, not a class number 0..{classes - 1}"
    if value != -1 and not 0 <= value < classes:  # -1: unlabelled, dropped by design
        return f"is {value}, outside 0..{classes - 1}" + ("" if options is not None else f" ({_classes(entry)})")
    return None


def _classes(entry: DatasetEntry) -> str:
    names = entry.label_names or entry.answer_words
    return ", ".join(f"{i} {n}" for i, n in enumerate(names[:6])) + (" ..." if len(names) > 6 else "")


def required_columns(entry: DatasetEntry) -> tuple[str, ...]:
    """Columns every row must have: the prompt's, and the label where a template turns it into the answer."""
    label = (entry.label_field,) if entry.prompt is not None and "{label}" in entry.answer else ()
    return tuple(dict.fromkeys((*prompt_fields(entry), *label)))


def missing_columns(entry: DatasetEntry, columns, where: str) -> None:
    missing = [c for c in required_columns(entry) if c not in columns]
    if missing:
        raise UserError(
            f"{where} has no column '{missing[0]}' (its columns: {', '.join(columns)}); the snapshot is of another "
            "dataset or version - download it again"
        )


def row_problem(entry: DatasetEntry, row: dict) -> tuple[str, str] | None:
    """(column, what is wrong) for the first bad cell of a row, or None."""
    for field in prompt_fields(entry):
        if field in row and row[field] is None:
            return field, "is null (empty)"
    problem = label_problem(entry, row)
    return (entry.label_field, problem) if problem else None


def located(where: str, index: int, column: str, problem: str, fix: str = "") -> UserError:
    return UserError(
        f"{where}, row {index + 1}, column '{column}' {problem}; "
        + (fix or "fix or remove that row (or download the snapshot again)")
    )


# --- a split in memory: checked at once -------------------------------------------------------------------------
def check_split(entry: DatasetEntry, rows: datasets.Dataset, where: str) -> None:
    """Every row of an in-memory split, before any is used (`where`: the split and its file, for the message)."""
    table = rows.data.table if hasattr(rows.data, "table") else rows.data
    _check_utf8(table, where)
    missing_columns(entry, rows.column_names, where)
    if _looks_fine(entry, table, rows.column_names):
        return
    columns = [c for c in (*prompt_fields(entry), entry.label_field, *OPTION_COLUMNS) if c and c in rows.column_names]
    # The worst cell is named, not the first: one blank or one word in a CSV label column makes the whole column
    # floats or strings, so the first row ("2.0", "'2'") is not the one to fix; the null or "pos" row is.
    worst: tuple[int, int, str, str] | None = None
    for index, row in enumerate(rows.select_columns(columns)):
        found = row_problem(entry, row)
        if found is None:
            continue
        rank = _severity(row.get(found[0]))
        if worst is None or rank < worst[0]:
            worst = (rank, index, *found)
        if rank == 0:
            break
    if worst is not None:
        raise located(where, *worst[1:])


def _severity(value) -> int:
    """0: null; 1: not a number at all ('pos', 1.5); 2: a number in the wrong type or range ('2', 2.0, 7)."""
    if value is None:
        return 0
    try:
        return 2 if float(value).is_integer() else 1
    except (TypeError, ValueError):
        return 1


def _looks_fine(entry: DatasetEntry, table: pyarrow.Table, columns: list[str]) -> bool:
    """Arrow's answer to "is every row fine?" without a Python pass over the rows (False: look row by row)."""
    for field in prompt_fields(entry):
        if table.column(field).null_count:
            return False
    name = entry.label_field
    if not name or name not in columns:
        return True
    label = table.column(name)
    kind = label.type
    if pyarrow.types.is_struct(kind) or pyarrow.types.is_list(kind) or pyarrow.types.is_large_list(kind):
        return True
    if label.null_count:
        return False
    if entry.label_is_score:
        return (pyarrow.types.is_floating(kind) or pyarrow.types.is_integer(kind)) and bool(
            pc.all(pc.is_finite(pc.cast(label, pyarrow.float64()))).as_py() is not False
        )
    options = next((c for c in OPTION_COLUMNS if c in columns), None)
    classes = len(entry.answer_words or entry.label_names)
    if options is None and not classes:
        return True
    if not pyarrow.types.is_integer(kind):
        return False
    if len(label) == 0:
        return True
    ok = pc.greater_equal(label, -1)
    if options is not None and pyarrow.types.is_list(table.column(options).type):
        bound = pc.list_value_length(table.column(options))
        ok = pc.and_(ok, pc.or_(pc.equal(label, -1), pc.and_(pc.greater_equal(label, 0), pc.less(label, bound))))
    elif classes:
        ok = pc.and_(ok, pc.less(label, classes))
    return pc.all(ok).as_py() is not False


def _check_utf8(table: pyarrow.Table, where: str) -> None:
    """Arrow reads a JSON or CSV file with bytes that are not UTF-8 into its string columns as they are; they fail
    only when the row is read. Validated here, at C speed, and the first bad cell named."""
    try:
        table.validate(full=True)
        return
    except pyarrow.ArrowInvalid:
        pass
    for name in table.column_names:
        column, offset_of = table.column(name), 0
        if not (pyarrow.types.is_string(column.type) or pyarrow.types.is_large_string(column.type)):
            continue
        for chunk in column.chunks:
            try:
                chunk.validate(full=True)
            except pyarrow.ArrowInvalid:
                for i, value in enumerate(pc.cast(chunk, pyarrow.binary()).to_pylist()):
                    try:
                        (value or b"").decode("utf-8")
                    except UnicodeDecodeError as err:
                        raise located(
                            where,
                            offset_of + i,
                            name,
                            f"is not UTF-8 text (byte {err.start}: {value[err.start : err.start + 1]!r})",
                            "save the file as UTF-8",
                        ) from None
            offset_of += len(chunk)
    raise UserError(f"{where}: the data does not read as valid Arrow data; download the snapshot again")


# --- a streamed split: checked row by row as it is read -----------------------------------------------------------
def checked_stream(entry: DatasetEntry, rows: datasets.IterableDataset, where: str) -> datasets.IterableDataset:
    """The stream, each row checked as it is read (a 2 TB corpus is never scanned ahead)."""

    def check(row: dict, index: int) -> dict:
        if index == 0:
            missing_columns(entry, list(row), where)
        found = row_problem(entry, row)
        if found is not None:
            raise located(where, index, *found)
        return row

    return rows.map(check, with_indices=True, features=rows.features)


def read_rows(rows, where: str, start: int = 0):
    """Iterate a split's rows; a row whose bytes are not UTF-8 (found only as it is read, when streamed) is one
    UserError naming it, not a UnicodeDecodeError from inside Arrow."""
    iterator, index = iter(rows), start
    while True:
        try:
            row = next(iterator)
        except StopIteration:
            return
        except UnicodeDecodeError as err:
            raise UserError(
                f"{where}, row {index + 1} is not UTF-8 text (byte {err.start}); save the file as UTF-8"
            ) from None
        yield row
        index += 1
