"""Properties of the row checks (dlm/data/rows.py) on random rows: a row is refused with the column named, or it
formats into a prompt and answer without a null turned into the word "None"; never another exception. And the
Arrow fast path that checks a whole split at once agrees with the row-by-row truth."""

from __future__ import annotations

import datasets
import pyarrow
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dlm.data.loading import lookup, to_sft_pair
from dlm.data.rows import check_split, row_problem
from dlm.errors import UserError

# SFT datasets of every shape the checks know: a class label indexing answer words, a label indexing a row's own
# choices, a score label binned by its formatter, a formatter with an optional text field, an answer column
ENTRIES = [
    ("zeroshot/twitter-financial-news-sentiment", None),
    ("nyu-mll/glue", "mnli"),
    ("cais/mmlu", "anatomy"),
    ("TheFinAI/fiqa-sentiment-classification", None),
    ("gbharti/finance-alpaca", None),
    ("openai/gsm8k", "main"),
]
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12).filter(lambda t: "None" not in t)
NUMBER = st.one_of(
    st.integers(-5, 12), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, 1.0, 2.5])
)
LABEL = st.one_of(st.none(), st.integers(-5, 12), NUMBER, TEXT, st.booleans())


def _columns(entry) -> list[str]:
    return sorted({*entry.text_fields, *(c for c in (entry.label_field,) if c)})


@st.composite
def rows_of(draw, entry, count: int = 1) -> list[dict]:
    """Rows whose columns each hold one type (Arrow needs that), values possibly null."""
    kinds = {}
    for column in _columns(entry):
        if column == entry.label_field:
            kinds[column] = draw(st.sampled_from(["int", "float", "str", "any"]))
        elif column == "choices":
            kinds[column] = "list"
        else:
            kinds[column] = "text"
    values = {
        "int": st.one_of(st.none(), st.integers(-5, 12)),
        "float": st.one_of(st.none(), NUMBER.filter(lambda v: isinstance(v, float))),
        "str": st.one_of(st.none(), TEXT, st.sampled_from(["0", "1", "2"])),
        "any": LABEL,
        "text": st.one_of(st.none(), TEXT),
        "list": st.lists(TEXT, min_size=1, max_size=5),
    }
    return [{c: draw(values[k]) for c, k in kinds.items()} for _ in range(count)]


@pytest.mark.parametrize("dataset,config", ENTRIES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_row_is_refused_by_column_or_formats_without_none(dataset, config, data):
    entry = lookup(dataset, config)
    (row,) = data.draw(rows_of(entry))
    problem = row_problem(entry, row)
    if problem is not None:
        column, why = problem
        assert column in row and why
        return
    label = row.get(entry.label_field)
    if isinstance(label, int) and not isinstance(label, bool) and label == -1:
        return  # unlabelled: dropped when loaded, never formatted
    prompt, completion = to_sft_pair(entry, row)
    assert isinstance(prompt, str) and isinstance(completion, str)
    assert "None" not in prompt + completion


@pytest.mark.parametrize("dataset,config", ENTRIES[:3])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_the_arrow_fast_path_agrees_with_the_row_by_row_check(dataset, config, data):
    entry = lookup(dataset, config)
    rows = data.draw(rows_of(entry, count=data.draw(st.integers(1, 6))))
    try:
        split = datasets.Dataset.from_list(rows)
    except (pyarrow.ArrowInvalid, pyarrow.ArrowTypeError, OverflowError):
        assume(False)  # a column Arrow cannot type (ints and text mixed): no file reads as that
    # the rows as dlm reads them: Arrow has typed each column (0 and 0.0 in one column both read 0.0)
    bad = [i for i, row in enumerate(split.to_list()) if row_problem(entry, row) is not None]
    try:
        check_split(entry, split, "split 'test'")
    except UserError as err:
        assert bad, f"refused a split whose rows are all fine: {err}"
        assert f"row {bad[0] + 1}," in str(err) or any(f"row {i + 1}," in str(err) for i in bad)
    else:
        assert not bad, f"rows {bad} passed the fast path"
