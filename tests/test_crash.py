"""Run records survive crashes: a kill at any moment never leaves a partial record, concurrent writers lose nothing.

The subject is the process boundary (kill -9, two writers), so these tests use subprocesses on purpose.
Kill -9 + `--resume` of training and plan resume are tested with the trainer and the pipeline.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dlm.store.records import load_records, write_record

ROOT = Path(__file__).resolve().parent.parent
KILL_ROUNDS = 12  # each kills a writer: 3 of 4 aim inside the temp-file -> rename window
PAYLOAD = 2_000_000  # characters: a write of a few ms, the window a kill must hit
PROVENANCE = {"git_sha": None}
SCORE = {
    "task": "dlm_fpb",
    "metric": "acc",
    "value": 0.5,
}  # given explicitly: provenance() would run git on every write


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


def _assert_only_whole_records(directory: Path) -> list[dict]:
    """Every file the store reads back is a complete record; nothing is skipped as unreadable."""
    records, skipped = load_records(directory)
    assert skipped == [], f"partial or foreign files are read as records: {skipped}"
    for record in records:
        payload, size = record.command[0], int(record.plan_key)  # the payload and its size, in schema fields
        assert payload == "x" * len(payload) and len(payload) == size
    return records


WRITER = """
    import sys
    from dlm.store.records import write_record
    directory, size = sys.argv[1], int(sys.argv[2])
    i = 0
    while True:  # until killed
        write_record(directory, {"kind": "eval", "command": ["x" * size], "plan_key": str(size),
                                 "plan": {"run": str(i)}, "provenance": {"git_sha": None}})
        i += 1
"""


def _kill_writer(directory: Path, during_write: bool, delay: float) -> bool:
    """Start a writer and kill -9 it: `delay` s after its temp file appears (during_write), or `delay` s after
    it starts. True if the kill hit a write (its temp file is left behind)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = set(os.listdir(directory))
    proc = subprocess.Popen(_python(WRITER, str(directory), str(PAYLOAD)), env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while (
        during_write
        and time.monotonic() < deadline
        and not any(n.endswith(".tmp") for n in set(os.listdir(directory)) - before)
    ):
        pass
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return any(n.endswith(".tmp") for n in set(os.listdir(directory)) - before)


def _write_window(directory: Path, monkeypatch) -> float:
    """Seconds from a record's temp file being created to its rename, measured on one write here."""
    from dlm import files  # records are written by its atomic_write

    marks: dict[str, float] = {}
    real_mkstemp, real_replace = files.tempfile.mkstemp, files.os.replace

    def mkstemp(*args, **kwargs):
        marks["created"] = time.perf_counter()
        return real_mkstemp(*args, **kwargs)

    def replace(*args):
        marks["renamed"] = time.perf_counter()
        return real_replace(*args)

    with monkeypatch.context() as patch:
        patch.setattr(files.tempfile, "mkstemp", mkstemp)
        patch.setattr(files.os, "replace", replace)
        write_record(
            directory, {"kind": "eval", "command": ["x" * PAYLOAD], "plan_key": str(PAYLOAD), "provenance": {}}
        )
    return marks["renamed"] - marks["created"]


def test_kill9_at_random_moments_never_leaves_a_partial_record(tmp_path, monkeypatch):
    rng = random.Random(0)
    window = _write_window(tmp_path, monkeypatch)
    inside_write = 0
    for i in range(KILL_ROUNDS):  # mostly inside the write window, sometimes anywhere in the writer's life
        if i % 4:
            inside_write += _kill_writer(tmp_path, during_write=True, delay=rng.random() * window / 4)
        else:
            _kill_writer(tmp_path, during_write=False, delay=0.05 + rng.random() * 0.3)
        _assert_only_whole_records(tmp_path)
    print(f"kill -9: {KILL_ROUNDS} rounds, {inside_write} inside a write ({window * 1000:.1f} ms window)")
    assert inside_write >= 1, f"no kill landed inside a write (window {window * 1000:.1f} ms)"
    assert len(_assert_only_whole_records(tmp_path)) > 1, "no write completed besides the calibration one"


CRASH_BEFORE_RENAME = """
    import os, sys
    from dlm import files
    from dlm.store import records as store
    from dlm.store import rescue
    def die(*args, **kwargs):  # the data is written and fsynced; the process dies before the rename
        os._exit(137)
    files.os.replace = die
    store.write_record(sys.argv[1], {"kind": "eval", "command": ["xx"], "plan_key": "2", "provenance": {}})
"""


def test_kill_between_write_and_rename_leaves_no_record(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(_python(CRASH_BEFORE_RENAME, str(tmp_path)), env=env, cwd=ROOT)
    assert done.returncode == 137
    assert any(tmp_path.iterdir()), "the crash should have left its temporary file behind"
    assert load_records(tmp_path) == ([], [])


def test_exception_during_write_cleans_up(tmp_path, monkeypatch):
    from dlm import files

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "fsync", fail)
    with pytest.raises(KeyboardInterrupt):
        write_record(tmp_path, {"kind": "eval", "command": ["x"], "plan_key": "1", "provenance": PROVENANCE})
    assert list(tmp_path.iterdir()) == []


CONCURRENT_WRITER = """
    import sys
    from dlm.store.records import write_record
    directory, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    for i in range(count):
        write_record(directory, {"kind": "cycle", "plan": {"name": who, "run": str(i)}, "command": ["x" * 5000],
                                 "plan_key": "5000", "provenance": {"git_sha": None}})
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    count = 100
    procs = [
        subprocess.Popen(_python(CONCURRENT_WRITER, str(tmp_path), who, str(count)), env=env, cwd=ROOT)
        for who in ("a", "b")
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    records = _assert_only_whole_records(tmp_path)
    written = {(r.plan.name, int(r.plan.run)) for r in records}
    assert written == {(who, i) for who in "ab" for i in range(count)}
    assert len({r.run_id for r in records}) == 2 * count
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".json") or p.name.startswith(".")]


def test_record_file_is_complete_json_with_its_run_id(tmp_path):
    path = write_record(tmp_path, {"kind": "eval", "command": ["abc"], "provenance": PROVENANCE})
    record = json.loads(path.read_text())
    assert path.name == f"{record['run_id']}.json" and record["command"] == ["abc"]


def test_a_full_disk_at_the_end_keeps_the_scores_elsewhere_and_says_where(tmp_path, monkeypatch, capsys):
    import errno
    import json

    import pytest

    from dlm.errors import UserError
    from dlm.store import records as store
    from dlm.store import rescue

    real = store.atomic_write
    results = tmp_path / "runs"

    def full(path, text):
        if str(path).startswith(str(results)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(store, "atomic_write", full)
    monkeypatch.setattr(rescue.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    with pytest.raises(UserError, match="No space left on device.*saved to") as err:
        store.write_record(results, {"run_id": "r1", "kind": "eval", "eval": {"scores": [SCORE]}})
    rescued = tmp_path / "tmp" / "dlm-rescued-records" / "r1.json"
    assert str(rescued) in str(err.value)
    assert json.loads(rescued.read_text())["eval"]["scores"][0]["value"] == 0.5
    assert not list(results.glob("*.json"))
