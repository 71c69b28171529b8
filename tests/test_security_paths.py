"""Nothing from a file is executed, paths stay inside their folder, dlm never writes through a link or over what it
did not write, and one process writes an output dir at a time. Each test is a case of issue 27's "Why", with the
exact files before and after.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from train_support import ROOT, TWEETS, config

from dlm import cli
from dlm.errors import UserError

FAST = ["--max_length", "32", "--batch_size", "2", "--gradient_accumulation_steps", "1", "--save_steps", "1"]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run(capsys, *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    try:
        cli.main(list(argv))
        code = 0
    except SystemExit as done:
        code = done.code
    return code, capsys.readouterr().err


def train_argv(out: Path, runs: Path, *extra: str, steps: int = 2, mode: str = "pretrain") -> list[str]:
    return [
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        TWEETS,
        "--mode",
        mode,
        "--max_steps",
        str(steps),
        *FAST,
        "--output_dir",
        str(out),
        "--results-dir",
        str(runs),
        *extra,
    ]


def victim_file(tmp_path: Path) -> tuple[Path, bytes]:
    victim = tmp_path / "victim" / "thesis.tex"
    victim.parent.mkdir()
    victim.write_bytes(b"\\section{Mine}")
    return victim, victim.read_bytes()


class Planted:
    """A pickle that runs code when it is loaded: creates `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# --- nothing executed from data ---------------------------------------------------------------------------------
def test_no_unpickling_anywhere_in_dlm():
    """dlm itself never unpickles: no torch.load without weights_only=True, no pickle.load(s)."""
    risky = re.compile(r"pickle\.loads?\(|weights_only=False|torch\.load\(|yaml\.unsafe_load|(?<![\w.])(?:eval|exec)\(")
    offenders = []
    for path in (ROOT / "dlm").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        offenders += [(str(path.relative_to(ROOT)), m.group(0)) for m in risky.finditer(text)]
        if "yaml.load(" in text and "(yaml.SafeLoader)" not in text:  # a SafeLoader subclass, in the same file
            offenders.append((str(path.relative_to(ROOT)), "yaml.load"))
    assert offenders == []


def test_planted_pickles_in_a_resumed_dir_are_never_loaded(tmp_path, tiny_model_dir, capsys):
    """An output dir of an older dlm (its mark lists bare names; training_args.bin pickles beside the weights):
    --resume trains on and never loads them, and the new checkpoints hold JSON arguments, no pickle."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    assert run(capsys, *train_argv(out, runs))[0] == 0
    mark = json.loads((out / ".dlm-output.json").read_text())
    listed = sorted({*mark["written"], *mark["pending"], "training_args.bin"})  # an older dlm listed them all
    legacy = {"owner": "dlm", "run_key": None, "run_id": mark["run_id"], "entries": listed}
    (out / ".dlm-output.json").write_text(json.dumps(legacy))
    marker = tmp_path / "pickle-ran"
    for folder in (out, *out.glob("checkpoint-*")):  # an older dlm kept the pickle Trainer writes, no JSON
        (folder / "training_args.json").unlink()
        (folder / "training_args.bin").write_bytes(pickle.dumps(Planted(marker)))
    code, err = run(capsys, *train_argv(out, runs, "--resume", steps=4))
    assert code == 0, err[-2000:]
    assert not marker.exists(), "a planted pickle was loaded"
    for checkpoint in ("checkpoint-3", "checkpoint-4"):
        assert (out / checkpoint / "training_args.json").is_file()
        assert not (out / checkpoint / "training_args.bin").exists()
    assert json.loads((out / "training_args.json").read_text())["max_steps"] == 4


# --- paths confined -----------------------------------------------------------------------------------------------
HOSTILE_NAMES = ["../victim", "../victim/thesis.tex", "/etc/hostname", "", ".", "..", "sub/../../victim", None, 7]


def test_overwrite_never_leaves_the_output_dir_whatever_the_mark_names(tmp_path, tiny_model_dir, capsys):
    """A mark (from anyone) that names ../victim, an absolute path, '..': --overwrite removes nothing outside."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    victim, before = victim_file(tmp_path)
    assert run(capsys, *train_argv(out, runs, steps=1))[0] == 0
    mark = json.loads((out / ".dlm-output.json").read_text())
    mark["pending"] = [*mark["pending"], *HOSTILE_NAMES]
    mark["written"] = {**mark["written"], "../victim": {"sha256": "0" * 64}}
    (out / ".dlm-output.json").write_text(json.dumps(mark))
    outside = tree(tmp_path / "victim")
    assert run(capsys, *train_argv(out, runs, "--overwrite", steps=1))[0] == 0
    assert victim.read_bytes() == before and tree(tmp_path / "victim") == outside
    older = {"owner": "dlm", "entries": HOSTILE_NAMES, "foreign": []}  # the mark of an older dlm
    (out / ".dlm-output.json").write_text(json.dumps(older))
    inside = tree(out)
    code, err = run(capsys, *train_argv(out, runs, "--overwrite", steps=1))
    # it names none of the model's files: they are not proven dlm's, so they are neither removed nor written over
    assert code == 2 and "not written by this run" in err and len(err.strip().splitlines()) == 1
    assert tree(out) == inside and victim.read_bytes() == before and Path("/etc/hostname").exists()


def test_what_a_user_adds_while_training_is_never_claimed_nor_removed(tmp_path, tiny_model_dir, capsys):
    """Mid-run (from a curve point's scorer, between checkpoint saves) a user adds notes, an eval folder and a
    copied checkpoint-77, and swaps README.md (the model card TRL rewrites at every save) for a symlink to a file
    of theirs. Nothing is written through the link, none of it enters the mark, --overwrite leaves all of it."""
    from dlm.trainers.checkpoints import owned_entries
    from dlm.trainers.train import train

    out = tmp_path / "out"
    victim, before = victim_file(tmp_path)
    added = {}

    def user_meddles(model, tokenizer):
        if (out / "checkpoint-1").is_dir() and not added:
            (out / "notes.txt").write_text("my notes")
            (out / "eval").mkdir()
            (out / "eval" / "scores.csv").write_text("a,b\n")
            shutil.copytree(out / "checkpoint-1", out / "checkpoint-77")
            assert (out / "README.md").is_file()  # TRL's card, written at the first save
            (out / "README.md").unlink()
            (out / "README.md").symlink_to(victim)
            added.update(tree(out / "eval"), notes=b"my notes")
        return [], {}

    cfg = config(tmp_path, "out", mode="sft", max_steps=4, save_steps=1, eval_steps=2, save_total_limit=2)
    capsys.readouterr()
    train(cfg, evaluator=user_meddles)
    assert added, "the user's files were never added: the test did not test anything"
    assert victim.read_bytes() == before and (out / "README.md").is_symlink()
    assert capsys.readouterr().err.count("kept README.md") == 1  # said once, at the first save that kept it
    mark = json.loads((out / ".dlm-output.json").read_text())
    claimed = {*mark["written"], *mark["pending"]}
    assert not claimed & {"notes.txt", "eval", "checkpoint-77"}
    assert "README.md" not in {p.name for p in owned_entries(out)}  # dlm's card once; a link of theirs now
    assert (out / "checkpoint-77").is_dir()  # dlm's rotation (limit 2) removes only its own checkpoints
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3", "checkpoint-4", "checkpoint-77"]
    mine = {p: (out / p).read_bytes() for p in ("notes.txt", "eval/scores.csv")}
    copied = tree(out / "checkpoint-77")
    cfg = config(tmp_path, "out", mode="sft", max_steps=2, save_steps=1, overwrite=True)
    with pytest.raises(UserError, match="README.md' is a symlink"):
        train(cfg)  # the link is where this run would write its card: refused before any work, not written through
    (out / "README.md").unlink()
    train(cfg)
    assert {p: (out / p).read_bytes() for p in mine} == mine and tree(out / "checkpoint-77") == copied
    assert victim.read_bytes() == before


def test_a_symlinked_checkpoint_ahead_is_refused_before_any_work(tmp_path, tiny_model_dir, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    assert run(capsys, *train_argv(out, runs, steps=2))[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "checkpoint-3").symlink_to(elsewhere)
    before = tree(out), tree(runs)
    code, err = run(capsys, *train_argv(out, runs, "--resume", steps=4))
    assert code == 2 and "checkpoint-3' is a symlink" in err and len(err.strip().splitlines()) == 1
    assert (tree(out), tree(runs)) == before and list(elsewhere.iterdir()) == []


def test_a_record_naming_outcomes_outside_its_folder_is_not_read(tmp_path):
    from dlm.files import file_inside

    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "ok.outcomes.json.gz").write_bytes(b"x")
    (folder / "link.outcomes.json.gz").symlink_to("/dev/zero")
    assert file_inside(folder, "ok.outcomes.json.gz") == folder / "ok.outcomes.json.gz"
    for name in ("../x.outcomes.json.gz", "/etc/passwd", "link.outcomes.json.gz", "..", "", None, "a/b"):
        assert file_inside(folder, name) is None


def test_a_copied_record_does_not_choose_what_a_resumed_cycle_evaluates(tmp_path):
    """A cycle interrupted while evaluating resumes by scoring its own output dir; a dlm_train.json copied from
    another dir (naming that dir) is not taken for it."""
    from dlm.study.cycle import trained_not_evaluated
    from dlm.trainers.checkpoints import write_owner

    out, other = tmp_path / "out", tmp_path / "other"
    out.mkdir()
    write_owner(out, {"owner": "dlm", "complete": True, "written": {}, "pending": []})
    record = {"run_id": "r", "kind": "train", "status": "incomplete", "train": {"config": {"max_steps": 5}}}
    cfg = config(tmp_path, "out", max_steps=5, resume=True)
    for named, found in ((other, None), (out, "r")):
        record["train"]["output_dir"] = str(named)
        (out / "dlm_train.json").write_text(json.dumps(record))
        pending = trained_not_evaluated(cfg)
        assert (pending.run_id if pending is not None else None) == found


@pytest.mark.parametrize(
    "line",
    [
        "output_dir: /tmp/elsewhere",
        "output_dir: ../escape",
        "output_dir: ~/x",
        "output_dir: a/../../b",
        "results_dir: /tmp/runs-elsewhere",
    ],
)
def test_a_plan_cannot_aim_writes_outside_where_it_runs(line, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"defaults: {{model: tiny-gpt2, max_steps: 1}}\nruns:\n  - {{name: a, approach: sft, {line}}}\n")
    code, err = run(capsys, "plan", str(plan), "--dry-run")
    assert code == 2 and "must be a relative path below" in err and "line 3" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan.yaml"]


def test_a_plan_s_checkpoints_dir_is_confined_and_the_flag_is_not(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = tmp_path / "plan.yaml"
    body = f"defaults: {{model: tiny-gpt2, max_steps: 1}}\nruns:\n  - {{name: a, approach: sft, data: '{TWEETS}'}}\n"
    plan.write_text("checkpoints_dir: /tmp/x\n" + body)
    code, err = run(capsys, "plan", str(plan), "--dry-run")
    assert code == 2 and "checkpoints_dir" in err and "--checkpoints-dir" in err
    plan.write_text(body)
    capsys.readouterr()
    cli.main(["plan", str(plan), "--dry-run", "--checkpoints-dir", str(tmp_path / "big-disk")])
    assert f"--output_dir {tmp_path / 'big-disk'}/" in capsys.readouterr().out


# --- YAML with limits -------------------------------------------------------------------------------------------
def _plan_cases(tmp_path: Path) -> dict[str, str]:
    deep = tmp_path / "deep.yaml"
    deep.write_text("runs: " + "[" * 20_000 + "]" * 20_000 + "\n")
    laughs = tmp_path / "laughs.yaml"
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [" + ", ".join([f"*{chr(96 + i)}"] * 9) + "]")
    laughs.write_text("\n".join(lines) + "\nruns: *j\n")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (2 << 20) + b"\n")
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    tagged = tmp_path / "tagged.yaml"
    tagged.write_text(f"runs: !!python/object/apply:os.system ['touch {tmp_path / 'tag-ran'}']\n")
    return {
        "python tag": str(tagged),
        "deep": str(deep),
        "alias bomb": str(laughs),
        "/dev/zero": "/dev/zero",
        "2 MB": str(big),
        "fifo": str(fifo),
        "a folder": str(tmp_path),
    }


def test_hostile_plan_files_are_refused_with_one_line(tmp_path, capsys):
    expected = {
        "python tag": "could not determine a constructor",
        "deep": "nested more than 64 levels",
        "alias bomb": "once its aliases",
        "/dev/zero": "not a regular file",
        "2 MB": "larger than 1 MiB",
        "fifo": "not a regular file",
        "a folder": "not a regular file",
    }
    for case, path in _plan_cases(tmp_path).items():
        code, err = run(capsys, "plan", path, "--dry-run")
        assert code == 2 and expected[case] in err and len(err.strip().splitlines()) == 1, (case, err)
    assert not (tmp_path / "tag-ran").exists()


def test_hostile_set_values_are_refused_with_one_line(capsys):
    plan = str(ROOT / "plans" / "demo.yaml")
    for item, expected in (
        ("limit=" + "[" * 20_000, "characters long"),
        ("limit=" + "[" * 5_000, "nested more than 64 levels"),
        ("limit=" + "&a [" + ", ".join(["*a"] * 3) + "]", "invalid YAML"),
    ):
        code, err = run(capsys, "plan", plan, "--dry-run", "--set", item)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, (item, err)


# --- one writer per output dir; --resume continues the same run only ----------------------------------------------
def test_a_second_writer_of_an_output_dir_is_refused_with_one_line(tmp_path, capsys):
    """Another process (another `dlm train`, a plan with another run key) holds the dir: refused, nothing written."""
    out, runs = tmp_path / "out", tmp_path / "runs"
    out.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom dlm.store.leases import try_dir_lease\n"
            f"lease = try_dir_lease({str(out)!r})\nprint('held', flush=True)\ntime.sleep(120)\n",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        for extra in ([], ["--resume"], ["--overwrite"]):
            code, err = run(capsys, *train_argv(out, runs, *extra))
            assert code == 2 and f"being written by process {holder.pid}" in err, err
            assert len(err.strip().splitlines()) == 1
        assert list(out.iterdir()) == [] and not runs.exists()
    finally:
        holder.kill()
        holder.wait()
    deadline = time.time() + 10  # the kernel drops a dead holder's lock
    while time.time() < deadline and run(capsys, *train_argv(out, runs, steps=1))[0] != 0:
        time.sleep(0.2)
    assert (out / "model.safetensors").is_file()


def test_resume_refuses_a_dir_that_trained_another_run_naming_the_difference(tmp_path, tiny_model_dir, capsys):
    out, runs = tmp_path / "out", tmp_path / "runs"
    assert run(capsys, *train_argv(out, runs, steps=1))[0] == 0
    before = tree(out), tree(runs)
    other = train_argv(out, runs, "--resume", steps=3, mode="sft")
    other[other.index(TWEETS)] = "takala/financial_phrasebank"
    code, err = run(capsys, *other)
    assert code == 2 and "--resume refused" in err and len(err.strip().splitlines()) == 1
    assert "mode 'pretrain' there, 'sft' now" in err and "takala/financial_phrasebank" in err
    assert (tree(out), tree(runs)) == before
    assert run(capsys, *train_argv(out, runs, "--resume", steps=2))[0] == 0  # the same run continues


def test_ownership_follows_content_not_names(tmp_path):
    """A file or folder is dlm's while its content is what dlm recorded: touched but unchanged stays dlm's, edited
    or added to is someone else's, a symlink never is (size and mtime only spare re-reading unchanged files)."""
    from dlm.trainers.ownership import digest, owns

    (tmp_path / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "checkpoint-1").mkdir()
    (tmp_path / "checkpoint-1" / "trainer_state.json").write_text('{"global_step": 1}')
    mark = {"written": {n: digest(tmp_path / n) for n in ("model.safetensors", "checkpoint-1")}}
    assert owns(tmp_path, "model.safetensors", mark) and owns(tmp_path, "checkpoint-1", mark)
    os.utime(tmp_path / "model.safetensors", ns=(1, 1))  # touched: the hash says it is the same
    assert owns(tmp_path, "model.safetensors", mark)
    (tmp_path / "model.safetensors").write_bytes(b"someone else's weights")
    assert not owns(tmp_path, "model.safetensors", mark)
    (tmp_path / "model.safetensors").write_bytes(b"weights")  # the same bytes again: dlm's again
    assert owns(tmp_path, "model.safetensors", mark)
    (tmp_path / "checkpoint-1" / "notes.txt").write_text("mine")
    assert not owns(tmp_path, "checkpoint-1", mark)
    (tmp_path / "checkpoint-1" / "notes.txt").unlink()
    (tmp_path / "model.safetensors").unlink()
    (tmp_path / "model.safetensors").symlink_to(tmp_path / "checkpoint-1" / "trainer_state.json")
    assert owns(tmp_path, "checkpoint-1", mark) and not owns(tmp_path, "model.safetensors", mark)
