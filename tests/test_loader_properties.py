"""Property tests of the two strict loaders not covered elsewhere (hypothesis): per-document outcomes files and the
lineage beside the weights. Whatever a file holds, the loader returns a valid object or refuses cleanly (outcomes:
SchemaError naming the file; lineage: None, "not written by dlm"); no other exception, nothing evaluated.
Records: tests/test_records.py; marks: tests/test_mark.py; plan files: tests/test_security_properties.py."""

from __future__ import annotations

import copy
import gzip
import json
import math
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_records import JSON

from dlm.store.lineage import LINEAGE_FILE, Lineage, Stage, read_lineage, write_lineage
from dlm.store.outcomes import MetricItems, OutcomeBlock, Outcomes, load_outcomes, read_outcomes, write_outcomes
from dlm.store.schema import Json, SchemaError, _convert, _scalars

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real_outcomes() -> tuple[dict, bytes]:
    block = OutcomeBlock(
        version="1",
        docs=["a1", "b2", "c3"],
        gold=[0, 2, 1],
        pred=[[-1.0, -2.0, -3.0], [-3.0, -2.0, -1.0], [-2.0, -1.0, -3.0]],
        metrics={
            "acc": MetricItems("mean", [1.0, 1.0, 1.0]),
            "f1_weighted": MetricItems(None, [[0, 0], [2, 2], [1, 1]]),
        },
    )
    with tempfile.TemporaryDirectory() as folder:
        raw = write_outcomes(folder, "run-1", {"dlm_tfns": {"none": block}}).read_bytes()
    return json.loads(gzip.decompress(raw)), raw


REAL, RAW = _real_outcomes()
PATHS = [
    ("schema",),
    ("run_id",),
    ("tasks",),
    ("tasks", "dlm_tfns"),
    ("tasks", "dlm_tfns", "none"),
    ("tasks", "dlm_tfns", "none", "docs"),
    ("tasks", "dlm_tfns", "none", "gold"),
    ("tasks", "dlm_tfns", "none", "pred"),
    ("tasks", "dlm_tfns", "none", "metrics"),
    ("tasks", "dlm_tfns", "none", "metrics", "acc"),
    ("tasks", "dlm_tfns", "none", "metrics", "acc", "aggregation"),
    ("tasks", "dlm_tfns", "none", "metrics", "acc", "values"),
]


@SETTINGS
@given(JSON)
def test_any_json_value_is_outcomes_or_a_clean_refusal(data):
    try:
        outcomes = load_outcomes(data, "o.json.gz")
    except SchemaError as err:
        assert str(err).startswith("o.json.gz")
    else:
        assert isinstance(outcomes, Outcomes)


@SETTINGS
@given(st.sampled_from(PATHS), JSON)
def test_a_real_outcomes_file_with_any_field_replaced_is_outcomes_or_a_clean_refusal(path, value):
    data = copy.deepcopy(REAL)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        outcomes = load_outcomes(data, "o.json.gz")
    except SchemaError as err:
        assert "o.json.gz" in str(err)
    else:  # a block that loads has one item per document everywhere (what the bootstraps index by)
        for filters in outcomes.tasks.values():
            for block in filters.values():
                assert all(len(m.values) == len(block.docs) for m in block.metrics.values())


@SETTINGS
@given(st.integers(0, len(RAW) - 1), st.integers(0, 255), st.integers(0, 40))
def test_a_damaged_outcomes_file_is_outcomes_or_a_clean_refusal(where, byte, cut):
    """A flipped byte anywhere in the gzip stream, and a file cut short."""
    raw = bytearray(RAW)
    raw[where] = byte
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x.outcomes.json.gz"
        for content in (bytes(raw), RAW[: len(RAW) - cut]):
            path.write_bytes(content)
            try:
                read_outcomes(path)
            except SchemaError as err:
                assert "x.outcomes.json.gz" in str(err)


def _real_lineage() -> dict:
    lineage = Lineage(
        base_model="gpt2",
        stages=[Stage("r1", "pretrain", ["gbharti/finance-alpaca"], "finance", 20, False, 1)],
        approach="pretrain",
        domain="finance",
        adapter=False,
        merged=False,
    )
    with tempfile.TemporaryDirectory() as folder:
        write_lineage(folder, lineage)
        return json.loads((Path(folder) / LINEAGE_FILE).read_text())


LINEAGE = _real_lineage()
LINEAGE_PATHS = [("schema",), ("base_model",), ("stages",), ("approach",), ("adapter",), ("intermediate",)] + [
    ("stages", 0, key) for key in ("run_id", "mode", "data", "steps", "lora", "seed")
]


@SETTINGS
@given(st.sampled_from(LINEAGE_PATHS) | st.just(()), JSON)
def test_any_lineage_file_is_a_lineage_or_unknown(path, value):
    data = copy.deepcopy(LINEAGE)
    if path:
        target = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value
    else:
        data = value  # the whole file replaced
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / LINEAGE_FILE).write_text(json.dumps(data))
        found = read_lineage(folder)
    assert found is None or isinstance(found, Lineage)
    if found is not None:
        assert all(s.steps is None or s.steps >= 0 for s in found.stages)


SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**400), 10**400),  # beyond a float's range too
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1e308, -1e308, 0.5]),  # finite values whose sum overflows
    st.text(max_size=3),
)
ITEMS = st.lists(st.one_of(SCALAR, st.lists(SCALAR, max_size=5), st.lists(st.lists(SCALAR, max_size=2), max_size=2)))


@SETTINGS
@given(ITEMS)
def test_the_fast_check_of_per_document_lists_accepts_only_what_the_element_wise_check_accepts(values):
    """Outcomes files hold millions of plain values, checked a list at a time (schema._scalars); whatever it accepts
    the element-wise check accepts too and reads the same (that one turns a NaN or an infinity into null); what it
    declines goes the element-wise way."""
    fast = _scalars(Json, values, {})
    try:
        slow = [_convert(Json, v, "x", {}, False) for v in values]
    except SchemaError:
        slow = None
    if fast is not None:
        assert slow is not None and fast == slow == values
    plain = lambda v: isinstance(v, (str, bool, int, type(None))) or (isinstance(v, float) and math.isfinite(v))  # noqa: E731
    every_plain = all(plain(v) or (isinstance(v, list) and all(plain(x) for x in v)) for v in values)
    if every_plain and not any(isinstance(v, int) and abs(v) > 2**900 for v in _flat(values)):
        assert fast is not None or _overflows(values)


def _flat(values):
    for v in values:
        yield from (v if isinstance(v, list) else [v])


def _overflows(values) -> bool:
    floats = [v for v in _flat(values) if isinstance(v, float)]
    return not math.isfinite(sum(floats)) if floats else False
