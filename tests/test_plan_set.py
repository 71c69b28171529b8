"""`dlm plan FILE --set KEY=VALUE`, run keys that follow the data's content (not the --data-dir spelling), and
dry-run lines that run as printed, from any directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from train_support import ROOT, TWEETS

from dlm import cli
from dlm.plan.file import load_plan
from dlm.plan.overrides import parse_overrides

PLAN = f"""name: small
defaults:
  model: gpt2
  tasks: dlm_tfns
  max_steps: 1000
runs:
  - {{name: zero-shot, approach: zero-shot}}
  - {{name: sft, approach: sft, data: {TWEETS}}}
  - {{name: pretrain, approach: pretrain, data: gbharti/finance-alpaca, output_dir: ckpt/fin-pretrain}}
  - {{name: then-sft, from: pretrain, approach: sft, data: {TWEETS}}}
"""
TINY = [
    "model=tiny-gpt2",
    "max_steps=2",
    "limit=5",
    "bootstrap_iters=0",
    "batch_size=2",
    "gradient_accumulation_steps=1",
    "max_length=64",
    "save_steps=1000",
    "learning_rate=1e-3",
]


@pytest.fixture()
def plan(tmp_path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(PLAN)
    return path


def by_name(plan_file: Path, **kw) -> dict:
    return {r.name: r for r in load_plan(str(plan_file), **kw).runs}


def test_set_reaches_the_runs_where_it_applies_and_makes_other_keys(plan):
    plain = by_name(plan)
    forced = by_name(plan, overrides=parse_overrides(TINY))
    assert forced["sft"].settings["max_steps"] == 2 and forced["sft"].settings["model"] == "tiny-gpt2"
    assert forced["sft"].settings["limit"] == 5.0 and forced["sft"].settings["learning_rate"] == 0.001
    # a zero-shot run stays one: the model and the evaluation settings reach it, training settings do not
    assert not forced["zero-shot"].trains and forced["zero-shot"].settings["model"] == "tiny-gpt2"
    assert forced["zero-shot"].settings["limit"] == 5.0 and forced["zero-shot"].settings["max_steps"] == 1000
    assert "batch_size" not in forced["zero-shot"].settings
    # a `from:` run still starts from its upstream checkpoint, which is the overridden run's own dir
    assert forced["then-sft"].settings["model"] == forced["pretrain"].settings["output_dir"]
    assert forced["pretrain"].settings["output_dir"].startswith("ckpt/fin-pretrain-")
    assert all(forced[n].key != plain[n].key for n in plain)
    assert len({r.settings["output_dir"] for r in [*plain.values(), *forced.values()] if r.trains}) == 6

    only_training = by_name(plan, overrides=parse_overrides(["max_steps=20"]))
    assert only_training["zero-shot"].key == plain["zero-shot"].key  # untouched: its finished record counts
    assert only_training["sft"].key != plain["sft"].key and only_training["sft"].settings["max_steps"] == 20


@pytest.mark.parametrize(
    "item,message",
    [
        ("max_step=20", r"unknown setting 'max_step'; did you mean 'max_steps'"),
        ("max_steps=twenty", r"`max_steps` must be an integer \(got 'twenty'\)"),
        ("max_steps=0", r"1 or more"),
        ("lora=maybe", r"`lora` must be true or false"),
        ("limit", r"write --set KEY=VALUE"),
        ("results_dir=elsewhere", r"use --results-dir"),
        ("dataset=imbd", r"did you mean 'stanfordnlp/imdb'"),
    ],
)
def test_a_bad_set_item_exits_2_naming_the_fix_before_any_run(plan, tmp_path, capsys, item, message):
    import re

    runs = tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["plan", str(plan), "--set", item, "--results-dir", str(runs)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and re.search(message, err), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and not runs.exists()


def test_a_plan_child_expands_the_same_overridden_plan(plan, tmp_path, capsys):
    from dlm.plan.child import main as child
    from dlm.plan.jobs import child_command

    command = child_command(str(plan), "sft", str(tmp_path / "runs"), None, None, ["max_steps=2"])
    assert command[-2:] == ["--set", "max_steps=2"]
    assert child([*command[3:-2], "--set", "max_steps=none"]) == 2  # the child reads and checks --set too
    assert "max_steps" in capsys.readouterr().err


def test_run_keys_follow_the_data_content_not_the_path_that_names_it(plan, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    absolute = os.environ["DLM_DATA_DIR"]  # conftest: ROOT/samples
    keys = {r.name: (r.key, r.settings.get("output_dir")) for r in load_plan(str(plan), data_dir="samples").runs}
    assert {r.name: (r.key, r.settings.get("output_dir")) for r in load_plan(str(plan)).runs} == keys
    assert {r.name: r.key for r in load_plan(str(plan), data_dir=absolute).runs} == {n: k for n, (k, _) in keys.items()}
    copy = tmp_path / "copy"  # as a fresh clone: the same bytes, every modification time new
    shutil.copytree(ROOT / "samples", copy, copy_function=shutil.copyfile)
    assert {r.name: r.key for r in load_plan(str(plan), data_dir=str(copy)).runs} == {
        n: k for n, (k, _) in keys.items()
    }
    tweets = next(p for p in sorted((copy / TWEETS).rglob("*")) if p.is_file() and p.name != "README.md")
    tweets.write_bytes(tweets.read_bytes() + b"\0")  # other data: every run is another run
    edited = {r.name: r.key for r in load_plan(str(plan), data_dir=str(copy)).runs}
    assert all(edited[n] != k for n, (k, _) in keys.items())
    (tmp_path / "no-snapshots").mkdir()
    hub = {r.name: r.key for r in load_plan(str(plan), data_dir=str(tmp_path / "no-snapshots")).runs}
    monkeypatch.delenv("DLM_DATA_DIR")
    assert {r.name: r.key for r in load_plan(str(plan)).runs} == hub  # an empty dir: every dataset is the Hub's


def test_a_downloaded_snapshot_is_known_by_the_sha256_hf_recorded_while_its_file_is_unchanged(tmp_path):
    import hashlib

    from dlm.data.fingerprint import snapshot_fingerprint

    content = b"text,label\nup,1\n"

    def snapshot(name: str, recorded: str | None = None) -> Path:
        root = tmp_path / name
        (root / TWEETS).mkdir(parents=True)
        (root / TWEETS / "sent_train.csv").write_bytes(content)
        if recorded:  # as `hf download --local-dir` leaves it: commit, etag, timestamp
            meta = root / TWEETS / ".cache" / "huggingface" / "download" / "sent_train.csv.metadata"
            meta.parent.mkdir(parents=True)
            meta.write_text(f"abc123\n{recorded}\n{(root / TWEETS / 'sent_train.csv').stat().st_mtime + 5}\n")
        return root

    plain = snapshot_fingerprint(snapshot("plain"))
    assert snapshot_fingerprint(snapshot("downloaded", hashlib.sha256(content).hexdigest())) == plain
    faked = snapshot("faked", "0" * 64)
    assert snapshot_fingerprint(faked) != plain  # the recorded hash is taken: the file is not read
    later = (faked / TWEETS / "sent_train.csv").stat().st_mtime_ns + 60 * 10**9
    os.utime(faked / TWEETS / "sent_train.csv", ns=(later, later))  # modified after the download: read again
    assert snapshot_fingerprint(faked) == plain


def _dry_run(args: list[str], capsys) -> list[str]:
    cli.main(["plan", *args, "--dry-run"])
    return capsys.readouterr().out.splitlines()


def test_a_printed_line_runs_as_printed_from_another_directory(plan, tmp_path, tiny_model_dir, capsys, monkeypatch):
    """The one real run here: the `sft` line of a dry run with --set, pasted into a shell elsewhere."""
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    args = [str(plan), "--results-dir", "runs", *(w for item in TINY for w in ("--set", item))]
    printed = [line for line in _dry_run(args, capsys) if " --model " in line]
    assert len(printed) == 4 and not any(line.startswith("#") for line in printed)
    sft = by_name(plan, overrides=parse_overrides(TINY), results_dir="runs")["sft"]
    (line,) = [line for line in printed if Path(sft.settings["output_dir"]).name in line]
    assert f"--results_dir {runs}" in line and f"--data_dir {os.environ['DLM_DATA_DIR']}" in line

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)  # the installed entry point, not this checkout's path
    done = subprocess.run(line, shell=True, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (record,) = [json.loads(p.read_text()) for p in runs.glob("*.json")]
    assert record["train"]["config"]["max_steps"] == 2 and record["train"]["config"]["model"] == "tiny-gpt2"
    assert record["eval"]["config"]["protocol"]["limit"] == 5 and record["approach"] == "sft"
    assert (tmp_path / sft.settings["output_dir"]).is_dir() and not list(elsewhere.iterdir())

    # as if the plan had run it: a re-run with the data dir spelled relatively or only in DLM_DATA_DIR sees it
    (runs / "as-planned.json").write_text(json.dumps({**record, "run_id": record["run_id"] + "p", "plan_key": sft.key}))
    monkeypatch.chdir(ROOT)
    args[2] = str(runs)
    from_env = _dry_run(args, capsys)
    relative = _dry_run([*args, "--data-dir", "samples"], capsys)
    assert from_env == relative and "4 runs, 1 finished" in from_env[0]
    assert [line.startswith("# done (") for line in relative if " --model " in line] == [False, True, False, False]
