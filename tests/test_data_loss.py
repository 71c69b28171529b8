"""Data-loss scenarios, each with the exact files before and after: dlm never deletes or overwrites what it did not
write (plans never add --overwrite; --overwrite removes only dlm's own entries; runs never share an output dir)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlm import cli

TWEETS = "zeroshot/twitter-financial-news-sentiment"
FAST = ["--max_steps", "1", "--max_length", "32", "--batch_size", "2", "--gradient_accumulation_steps", "1"]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _user_dir(root: Path) -> Path:
    mine = root / "my-notes"
    (mine / "sub").mkdir(parents=True)
    (mine / "thesis.tex").write_text("\\section{Results}")
    (mine / "config.json").write_text('{"not": "a model of dlm"}')  # looks like a model dir
    (mine / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return mine


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_a_plan_naming_a_user_directory_as_output_dir_leaves_it_alone(tmp_path, tiny_model_dir, capsys, monkeypatch):
    mine = _user_dir(tmp_path)
    before = tree(mine)
    monkeypatch.chdir(tmp_path)  # a plan names folders below where it runs
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"defaults: {{model: tiny-gpt2, max_steps: 1, max_length: 32, batch_size: 2, "
        f"gradient_accumulation_steps: 1, tasks: dlm_tfns, limit: 2}}\n"
        f"runs:\n  - {{name: r, approach: sft, data: '{TWEETS}', output_dir: '{mine.name}'}}\n"
    )
    err = _fails(["plan", str(plan), "--results-dir", str(tmp_path / "runs")], capsys)
    assert "1 of 1 runs failed" in err
    assert tree(mine) == before


def test_two_runs_of_a_plan_may_not_share_an_output_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = tmp_path / "plan.yaml"
    shared = tmp_path / "shared"
    plan.write_text(
        f"defaults: {{model: tiny-gpt2, max_steps: 1}}\nruns:\n"
        f"  - {{name: a, approach: sft, data: '{TWEETS}', output_dir: shared}}\n"
        f"  - {{name: b, approach: sft, data: 'takala/financial_phrasebank:sentences_allagree', "
        f"output_dir: shared}}\n"
    )
    err = _fails(["plan", str(plan), "--dry-run"], capsys)
    assert "both write output_dir" in err and "line 4" in err
    assert not shared.exists()


def test_output_dir_equal_to_the_results_dir_is_refused_before_any_work(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "old-run.json").write_text(json.dumps({"run_id": "old-run", "kind": "eval"}))
    before = tree(tmp_path)
    for extra in ([], ["--overwrite"]):
        err = _fails(
            [
                "train",
                "--model",
                "tiny-gpt2",
                "--dataset",
                TWEETS,
                *FAST,
                "--output_dir",
                str(runs),
                "--results-dir",
                str(runs),
                *extra,
            ],
            capsys,
        )
        assert "overlap" in err
    assert tree(tmp_path) == before


def test_overwrite_of_a_foreign_model_dir_is_refused(tmp_path, capsys):
    mine = _user_dir(tmp_path)
    before = tree(mine)
    err = _fails(
        [
            "train",
            "--model",
            "tiny-gpt2",
            "--dataset",
            TWEETS,
            *FAST,
            "--output_dir",
            str(mine),
            "--overwrite",
            "--results-dir",
            str(tmp_path / "runs"),
        ],
        capsys,
    )
    assert "not written by dlm" in err and tree(mine) == before


def test_overwrite_removes_only_what_dlm_wrote(tmp_path, tiny_model_dir):
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = [
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        TWEETS,
        *FAST,
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
    ]
    cli.main(argv)
    dlm_files = set(tree(out))
    (out / "my-analysis.ipynb").write_text("{}")  # the user's, added after the run
    record = next(runs.glob("*.json"))
    (out / record.name).write_bytes(record.read_bytes())  # a run record copied in by hand
    cli.main([*argv, "--overwrite"])
    after = tree(out)
    assert after["my-analysis.ipynb"] == b"{}" and after[record.name] == record.read_bytes()
    assert set(after) - {"my-analysis.ipynb", record.name} <= dlm_files | {".dlm-output.json"}
    owner = json.loads((out / ".dlm-output.json").read_text())
    assert owner["complete"] is True and "my-analysis.ipynb" not in {*owner["written"], *owner["pending"]}


def test_a_dir_of_another_run_key_is_refused(tmp_path, tiny_model_dir):
    from dlm.config import TrainConfig
    from dlm.errors import UserError
    from dlm.trainers.checkpoints import claim
    from dlm.trainers.train import train

    out = tmp_path / "out"
    out.mkdir()
    claim(out, "key-of-run-a", "run-a")
    (out / "checkpoint-1").mkdir()
    before = tree(out)
    cfg = TrainConfig(
        model="tiny-gpt2",
        dataset=TWEETS,
        mode="pretrain",
        max_steps=1,
        output_dir=str(out),
        resume=True,
        run_key="key-of-run-b",
        results_dir=str(tmp_path / "runs"),
    )
    with pytest.raises(UserError, match="holds another run"):
        train(cfg)
    assert tree(out) == before


def test_resuming_a_finished_run_does_nothing_and_says_so(tmp_path, tiny_model_dir, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = [
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        TWEETS,
        *FAST,
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
    ]
    cli.main(argv)
    before = tree(out), tree(runs)
    err = _fails([*argv, "--resume"], capsys)
    assert "already finished" in err and (tree(out), tree(runs)) == before


def test_a_plan_name_is_one_path_component(tmp_path):
    from dlm.plan.file import load_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: ../../escape\ndefaults: {{model: tiny-gpt2}}\nruns:\n"
        f"  - {{name: ../../r, approach: sft, data: '{TWEETS}'}}\n"
    )
    (run,) = load_plan(str(plan)).runs
    out = Path(run.settings["output_dir"])
    assert out.parts[0] == "checkpoints" and ".." not in out.parts and len(out.parts) == 3


def test_a_run_key_runs_once_while_another_process_holds_its_lease(tmp_path, tiny_model_dir, capsys):
    import subprocess
    import sys
    import time

    from dlm.plan.file import load_plan
    from dlm.plan.runner import run_plan

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "defaults: {model: tiny-gpt2, tasks: dlm_fpb, limit: 2, bootstrap_iters: 0}\n"
        "runs:\n  - {name: zs, approach: zero-shot}\n"
    )
    runs = tmp_path / "runs"
    (run,) = load_plan(str(plan), results_dir=str(runs)).runs
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; sys.path.insert(0, '.');"
                "from dlm.store.leases import try_lease;"
                f"lease = try_lease({str(runs)!r}, {run.key!r}); print('held', flush=True); time.sleep(60)"
            ),
        ],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_plan(str(plan), results_dir=str(runs), report=False) == []
        assert "running in process" in capsys.readouterr().out
        assert not list(runs.glob("*.json"))
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    (record,) = run_plan(str(plan), results_dir=str(runs), report=False)  # the dead holder's lease is taken over
    assert record["plan_key"] == run.key
    assert len(list(runs.glob("*.json"))) == 1


def test_a_cycle_killed_while_evaluating_is_incomplete_and_resumes_without_training_again(
    tmp_path, tiny_model_dir, monkeypatch, capsys
):
    import dlm.harness_tasks.evaluate as evaluation
    from dlm.plan.runner import run_plan
    from dlm.results.report import build_report

    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"defaults: {{model: tiny-gpt2, max_steps: 1, max_length: 32, batch_size: 2, "
        f"gradient_accumulation_steps: 1, tasks: dlm_tfns, limit: 2, bootstrap_iters: 0}}\n"
        f"runs:\n  - {{name: s, approach: sft, data: '{TWEETS}'}}\n"
        f"  - {{name: zs, approach: zero-shot}}\n"
    )
    runs = tmp_path / "runs"
    real = evaluation.evaluate

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("dlm.study.cycle.evaluate", killed)  # the name the cycle calls
    with pytest.raises(KeyboardInterrupt):
        run_plan(str(plan), results_dir=str(runs), report=False, checkpoints_dir=str(tmp_path / "ckpt"))
    (record,) = [json.loads(p.read_text()) for p in runs.glob("*.json")]
    assert record["status"] == "incomplete"
    monkeypatch.setattr("dlm.study.cycle.evaluate", real)
    run_plan(str(plan), results_dir=str(runs), report=False, checkpoints_dir=str(tmp_path / "ckpt"))
    assert "not repeated" in capsys.readouterr().out
    stored = {r["run_id"]: r for r in (json.loads(p.read_text()) for p in runs.glob("*.json"))}
    assert stored[record["run_id"]]["status"] == "ok" and stored[record["run_id"]]["eval"]["scores"]
    assert len(stored) == 2  # the SFT run (one record, same id) and the zero-shot run
    report = build_report(runs)
    assert not any("incomplete" in n for n in report["notes"])


def test_the_report_leaves_an_incomplete_run_out_and_says_so(tmp_path):
    from dlm.results.report import build_report
    from dlm.store.records import write_record

    write_record(
        tmp_path,
        {
            "schema_version": 1,  # the flat config shape of schema 1, migrated when written
            "run_id": "ok-run",
            "kind": "eval",
            "status": "ok",
            "approach": "zero-shot",
            "model": {"name": "gpt2"},
            "eval": {"config": {}, "scores": []},
        },
    )
    write_record(
        tmp_path,
        {
            "schema_version": 1,
            "run_id": "half",
            "kind": "train",
            "status": "incomplete",
            "train": {"config": {"mode": "sft"}},
        },
    )
    report = build_report(tmp_path)
    assert [r["run_id"] for r in report["runs"]] == ["ok-run"]
    assert any("incomplete" in n and "half" in n for n in report["notes"])
