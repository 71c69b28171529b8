"""Typed records: one strict loader (wrong types, non-finite numbers, negative counts, unknown enums and versions
refused with the file and field named), records of schema 1 that dlm wrote keep loading, nothing read from a file
is called, and no input makes the loader raise anything but its own error."""

from __future__ import annotations

import copy
import gzip
import json
import shutil
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dlm.config import EvalConfig, TrainConfig
from dlm.results.report import build_report
from dlm.store.outcomes import SUFFIX
from dlm.store.records import SCHEMA_VERSION, RunRecord, load_record, load_records, write_record
from dlm.store.schema import SchemaError

V1 = Path(__file__).resolve().parent / "assets" / "records-v1"  # written by dlm before the config dataclasses


def v1_records() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(V1.glob("*.json"))}


def test_schema_1_records_dlm_wrote_load_as_typed_records():
    loaded = {name: load_record(data, name) for name, data in v1_records().items()}
    by_approach = {r.approach: r for r in loaded.values()}
    assert set(by_approach) == {"zero-shot", "pretrain", "sft"}
    assert all(r.schema_version == SCHEMA_VERSION for r in loaded.values())
    sft = by_approach["sft"]
    assert isinstance(sft.train.config, TrainConfig) and isinstance(sft.eval.config, EvalConfig)
    assert [p.dataset for p in sft.train.config.data.parts] == ["zeroshot/twitter-financial-news-sentiment"]
    assert sft.train.config.mode == "sft" and sft.train.config.max_steps == 150
    assert sft.eval.config.protocol.tasks == ("fin_sentiment", "fin_sentiment_gen")
    assert sft.eval.config.protocol.eval_batch_size == 16 and sft.eval.config.protocol.bootstrap_iters == 100
    assert {s.scoring for s in sft.scores} == {"loglikelihood", "generative"}
    assert by_approach["pretrain"].train.config.data.parts[0].dataset == "gbharti/finance-alpaca"


def test_the_report_reads_a_folder_of_schema_1_records(tmp_path):
    shutil.copytree(V1, tmp_path / "runs")
    report = build_report(tmp_path / "runs")
    assert report["skipped"] == []
    assert {r["approach"] for r in report["runs"]} == {"zero-shot", "pretrain", "sft"}
    assert any(r["ratio"] is not None for r in report["rows"])


def _sft() -> dict:
    return copy.deepcopy(next(d for d in v1_records().values() if d.get("approach") == "sft"))


def _set(data: dict, path: str, value) -> dict:
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return data


BAD = [  # (dotted field, value, what the refusal names)
    ("eval.scores.0.value", float("nan"), "eval.scores[0].value: is nan"),
    ("eval.scores.0.value", float("inf"), "eval.scores[0].value: is inf"),
    ("eval.scores.0.value", "0.9", "eval.scores[0].value: expected a number"),
    ("eval.scores.0.stderr", -0.01, "eval.scores[0].stderr: is -0.01, expected at least 0"),
    ("eval.scores.0.n", -5, "eval.scores[0].n: is -5, expected at least 0"),
    ("eval.scores.0.n", True, "eval.scores[0].n: expected an integer"),
    ("eval.scores.0.task", None, "eval.scores[0].task: is null"),
    ("train.tokens_seen", -1, "train.tokens_seen: is -1"),
    ("train.wall_time_s", float("nan"), "train.wall_time_s: is nan"),
    ("train.config.max_steps", "150", "train.config.max_steps: expected an integer"),
    ("kind", "script", "kind: 'script' is not one of"),
    ("status", "done", "status: 'done' is not one of"),
    ("approach", "magic", "approach: 'magic' is not one of"),
    ("schema_version", 99, "newer dlm"),
    ("schema_version", "2", "is not a version"),
    ("eval.scores", {"a": 1}, "eval.scores: expected a list"),
    ("eval", [], "eval: expected an object"),
    ("model", "gpt2", "model: expected an object"),
]


@pytest.mark.parametrize("path,value,named", BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_a_bad_field_is_refused_naming_the_file_and_the_field(tmp_path, path, value, named):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "bad.json").write_text(json.dumps(_set(_sft(), path, value)))
    (runs / "good.json").write_text(json.dumps(_sft()))
    records, skipped = load_records(runs)
    assert [r.approach for r in records] == ["sft"]  # the good copy only
    ((file, reason),) = skipped
    assert file.endswith("bad.json") and reason.startswith("bad.json") and named in reason, reason


def test_the_same_run_under_two_file_names_counts_once(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    data = _sft()
    for name in ("a.json", "b-copy.json"):
        (runs / name).write_text(json.dumps(data))
    records, skipped = load_records(runs)
    assert len(records) == 1 and len(skipped) == 1 and "again" in skipped[0][1]


def test_a_record_dlm_builds_is_checked_before_it_is_written(tmp_path):
    with pytest.raises(ValueError, match="unknown field 'payload'"):
        write_record(tmp_path, {"kind": "eval", "payload": "x"})  # a typo in dlm's own code fails loudly
    with pytest.raises(ValueError, match="scores\\[0\\].value: is nan"):
        write_record(
            tmp_path, {"kind": "eval", "eval": {"scores": [{"task": "t", "metric": "acc", "value": float("nan")}]}}
        )
    assert not list(tmp_path.glob("*.json"))


def test_an_outcomes_file_cannot_make_the_report_call_code(tmp_path, monkeypatch):
    """The outcomes file names `canary:boom` as an aggregation: the report looks aggregations up by task and
    metric and never imports it (in schema 1 files the name was imported and called)."""
    canary_dir = tmp_path / "mods"
    canary_dir.mkdir()
    fired = tmp_path / "fired"
    (canary_dir / "canary.py").write_text(
        f"open({str(fired)!r}, 'w').write('imported')\ndef boom(items):\n"
        f"    open({str(fired)!r}, 'w').write('called')\n    return 0.0\n"
    )
    monkeypatch.syspath_prepend(str(canary_dir))
    runs = tmp_path / "runs"
    shutil.copytree(V1, runs)
    for path in runs.glob(f"*{SUFFIX}"):
        data = json.loads(gzip.decompress(path.read_bytes()))
        for filters in data["tasks"].values():
            for block in filters.values():
                for slot in block["metrics"].values():
                    slot["aggregation"] = "canary:boom"
        path.write_bytes(gzip.compress(json.dumps(data).encode()))
    report = build_report(runs)
    assert "canary" not in sys.modules and not fired.exists()
    # the outcomes were read and recomputed: the aggregations come from the tasks themselves
    assert "paired bootstrap" in json.dumps(report, default=str)


# --- property tests: the loader's only failure is its own error ------------------------------------------------
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_value_is_a_record_or_a_clean_refusal(data):
    try:
        record = load_record(data, "x.json")
    except SchemaError as err:
        assert str(err)
    else:
        assert isinstance(record, RunRecord)


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield prefix + (key,)
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value[:3]):
            yield prefix + (i,)
            yield from _paths(child, prefix + (i,))


SFT = _sft()
FIELD_PATHS = [p for p in _paths(SFT) if "raw" not in p]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FIELD_PATHS), JSON)
@example(("train", "config", "data", "parts"), True)  # the old shape's migration once iterated it: TypeError
def test_a_real_record_with_any_field_replaced_is_a_record_or_a_clean_refusal(path, value):
    data = copy.deepcopy(SFT)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        record = load_record(data, "x.json")
    except SchemaError as err:
        assert "x.json" in str(err)
    else:
        assert isinstance(record, RunRecord)
        assert all(s.value is None or s.value == s.value for s in record.scores)  # no NaN gets through
