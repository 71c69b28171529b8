"""The output-dir mark (`.dlm-output.json`, dlm/store/mark.py): written through one checked form, read back by one
strict loader; a mark of an earlier dlm still loads; a broken or hostile one is refused naming the file and the
field, and then nothing in that folder is removed."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_records import JSON

from dlm.errors import UserError
from dlm.store.mark import MARK_FILE, MARK_VERSION, OutputMark, parse_mark, read_mark
from dlm.store.schema import SchemaError
from dlm.trainers.checkpoints import claim, clear_output_dir, owned_entries, record_written, run_identity


def marked_dir(tmp: Path) -> Path:
    """A folder as dlm leaves it: claimed by a run, a checkpoint folder and a file written and recorded."""
    out = tmp / "out"
    out.mkdir()
    claim(out, "key-1", "run-1", run_identity("gpt2", "sft", "x", False))
    (out / "checkpoint-2").mkdir()
    (out / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (out / "model.safetensors").write_bytes(b"weights")
    record_written(out, ["checkpoint-2", "model.safetensors"], complete=True)
    return out


def test_the_mark_dlm_writes_loads_as_a_typed_mark(tmp_path):
    out = marked_dir(tmp_path)
    data = json.loads((out / MARK_FILE).read_text())
    mark = parse_mark(data)
    assert isinstance(mark, OutputMark) and mark.version == MARK_VERSION and mark.complete
    assert mark.run.model == "gpt2" and mark.run_key == "key-1"
    assert mark.written["model.safetensors"].size == len(b"weights")
    assert set(mark.written["checkpoint-2"].files) == {"trainer_state.json"}
    assert read_mark(out)["written"]["model.safetensors"]["sha256"] == mark.written["model.safetensors"].sha256
    assert {p.name for p in owned_entries(out)} == {"checkpoint-2", "model.safetensors"}


def test_a_names_only_mark_of_an_earlier_dlm_still_loads(tmp_path):
    out = tmp_path / "old"
    out.mkdir()
    (out / "checkpoint-4").mkdir()
    old = {"owner": "dlm", "run_key": None, "run_id": "r", "entries": ["checkpoint-4"], "foreign": [], "complete": True}
    (out / MARK_FILE).write_text(json.dumps(old))
    assert parse_mark(old).version == 1 and read_mark(out)["entries"] == ["checkpoint-4"]
    assert [p.name for p in owned_entries(out)] == ["checkpoint-4"]


BAD = [
    (("written", "model.safetensors", "size"), -1, "written.model.safetensors.size"),
    (("written", "model.safetensors", "sha256"), 7, "written.model.safetensors.sha256"),
    (("written", "model.safetensors", "mtime_ns"), float("nan"), "written.model.safetensors.mtime_ns"),
    (("written", "checkpoint-2", "files"), {"../../etc/passwd": {"sha256": "a", "size": 1, "mtime_ns": 1}}, "files"),
    (("pending",), ["../outside"], "pending[0]"),
    (("pending",), ["/abs"], "pending[0]"),
    (("version",), 99, "version"),
    (("owner",), "someone", "owner"),
    (("complete",), "yes", "complete"),
    (("run",), {"model": "gpt2"}, "run.mode"),
]


@pytest.mark.parametrize("path, value, named", BAD, ids=[b[2] for b in BAD])
def test_a_bad_field_is_refused_naming_the_file_and_the_field_and_nothing_is_removed(tmp_path, path, value, named):
    out = marked_dir(tmp_path)
    data = json.loads((out / MARK_FILE).read_text())
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    (out / MARK_FILE).write_text(json.dumps(data))
    with pytest.raises(UserError) as err:
        clear_output_dir(out)
    assert str(out / MARK_FILE) in str(err.value) and named in str(err.value)
    assert (out / "model.safetensors").exists() and (out / "checkpoint-2").is_dir()


def test_a_mark_that_is_a_link_or_not_json_is_refused(tmp_path):
    out = marked_dir(tmp_path)
    (out / MARK_FILE).unlink()
    (out / MARK_FILE).write_bytes(b"\xff\xfe not json")
    with pytest.raises(UserError, match="not JSON"):
        read_mark(out)
    (out / MARK_FILE).unlink()
    (tmp_path / "elsewhere.json").write_text("{}")
    (out / MARK_FILE).symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(UserError, match="link"):
        read_mark(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_value_is_a_mark_or_a_clean_refusal(data):
    try:
        mark = parse_mark(data, "m.json")
    except SchemaError as err:
        assert str(err).startswith("m.json")
    else:
        assert isinstance(mark, OutputMark)


def _real_mark() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        return json.loads((marked_dir(Path(folder)) / MARK_FILE).read_text())


REAL = _real_mark()
PATHS = [
    ("written",),
    ("written", "model.safetensors"),
    ("written", "model.safetensors", "size"),
    ("written", "checkpoint-2", "files"),
    ("pending",),
    ("run",),
    ("run", "lora"),
    ("version",),
    ("run_key",),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), JSON)
def test_a_real_mark_with_any_field_replaced_is_a_mark_or_a_clean_refusal(path, value):
    data = copy.deepcopy(REAL)
    target = data
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    try:
        mark = parse_mark(data, "m.json")
    except SchemaError as err:
        assert "m.json" in str(err)
    else:
        assert all(".." not in name.split("/") for name in mark.pending)
        assert all(entry.size is None or entry.size >= 0 for entry in (mark.written or {}).values())
