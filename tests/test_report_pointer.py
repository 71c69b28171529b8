"""A plain `dlm report` reads the records of the last dlm command run in the same working directory (never those of
a process started elsewhere), says so on its first stderr line, and calls a run whose lease a live process holds
"running", not "interrupted"."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from dlm.results.report import build_report, find_results_dir
from dlm.store.records import write_record


def _record(run_id: str, **extra) -> dict:
    return {
        "run_id": run_id,
        "kind": "eval",
        "status": "ok",
        "approach": "zero-shot",
        "model": {"name": "gpt2"},
        "eval": {"config": {}, "scores": []},
        **extra,
    }


def test_each_working_directory_keeps_its_own_last_results_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLM_CACHE", str(tmp_path / "cache"))  # one cache shared by both "projects", as for one user
    project_a, project_b = tmp_path / "a", tmp_path / "b"
    project_a.mkdir()
    project_b.mkdir()

    monkeypatch.chdir(project_a)
    write_record(project_a / "plan-runs", _record("in-a"))
    monkeypatch.chdir(project_b)  # later, another process of the same user, elsewhere
    write_record(project_b / "demo-runs", _record("in-b"))

    monkeypatch.chdir(project_a)
    capsys.readouterr()
    assert find_results_dir(None) == str((project_a / "plan-runs").resolve())
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"dlm report: reading {project_a / 'plan-runs'} ") and str(project_a) in first

    monkeypatch.chdir(project_b)
    assert find_results_dir(None) == str((project_b / "demo-runs").resolve())

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    monkeypatch.chdir(fresh)  # no dlm command ran here: the default, said so
    capsys.readouterr()
    assert find_results_dir(None) == "runs"
    assert "the default" in capsys.readouterr().err.splitlines()[0]


def test_a_note_of_another_directory_is_not_used(tmp_path, monkeypatch):
    from dlm.store.pointer import pointer_file

    monkeypatch.setenv("DLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    write_record(tmp_path / "runs-here", _record("r"))
    note = pointer_file()
    note.write_text(note.read_text().replace(str(tmp_path), str(tmp_path / "other")))  # a copied or colliding note
    assert find_results_dir(None) == "runs"


HOLDER = textwrap.dedent(
    """
    import sys, time
    from dlm.store.leases import try_lease
    lease = try_lease(sys.argv[1], sys.argv[2])
    assert not isinstance(lease, str)
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_run_whose_lease_a_live_process_holds_is_running_not_interrupted(tmp_path):
    results = tmp_path / "runs"
    write_record(results, _record("done"))
    half = {"run_id": "half", "kind": "train", "status": "incomplete", "train": {"config": {"mode": "sft"}}}
    write_record(results, {**half, "plan_key": "k1"})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(results), "k1"], stdout=subprocess.PIPE, text=True
    )  # a plan process still evaluating the run
    try:
        assert holder.stdout.readline().strip() == "held"
        notes = build_report(results)["notes"]
        assert any("still running" in n and "half" in n for n in notes), notes
        assert not any("--resume" in n for n in notes)
        assert [r["run_id"] for r in build_report(results)["runs"]] == ["done"]
    finally:
        holder.kill()
        holder.wait()
    notes = build_report(results)["notes"]  # the holder is gone: now the run was interrupted
    assert any("incomplete" in n and "half" in n and "--resume" in n for n in notes), notes
    assert not any("still running" in n for n in notes)
    assert not (results / ".leases" / "half.lock").exists()  # the report only reads leases, it creates none


def test_a_run_outside_a_plan_is_leased_by_its_run_id(tmp_path):
    results = tmp_path / "runs"
    write_record(results, {"run_id": "solo", "kind": "train", "status": "incomplete", "train": {"config": {}}})
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(results), "solo"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert any("still running" in n and "solo" in n for n in build_report(results)["notes"])
    finally:
        holder.kill()
        holder.wait()
