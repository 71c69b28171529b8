"""One table of run settings (study/settings.py) drives dlm train / eval / run, main.py and plan files."""
from __future__ import annotations

import json

import pytest
import typer

import cli
import main as seed_main
from study import settings as table


def _options(command_name: str) -> dict:
    group = typer.main.get_command(cli.app)
    return {p.name: p for p in group.commands[command_name].params}


@pytest.mark.parametrize("command,name", [("train", "train"), ("eval", "eval"), ("run", "run")])
def test_each_command_takes_exactly_its_rows_with_their_defaults_and_help(command, name):
    options = _options(name)
    visible = {n: p for n, p in options.items() if not p.hidden}
    rows = table.for_command(command)
    assert set(visible) == {s.name for s in rows}
    for s in rows:
        option = visible[s.name]
        assert option.help == s.help
        assert set(option.opts) == set(s.spellings())
        if not s.required and not s.many:
            assert option.default == s.default_for(command), s.name


def test_commands_that_differ_say_so_in_the_table():
    assert _options("train")["mode"].default == "pretrain" and _options("run")["mode"].default == "sft"
    assert _options("eval")["seed"].default == 1234 and _options("train")["seed"].default == 42
    assert _options("eval")["alias__batch_size"].hidden  # `dlm eval --batch_size` is the eval batch size


def test_main_py_and_plan_files_take_the_run_rows():
    # --verbose is how much is printed (dlm_data/quiet.py), not a setting of the run
    dests = {a.dest for a in seed_main.build_parser()._actions if a.dest not in ("help", "verbose")}
    assert dests == {s.name for s in table.RUN_SETTINGS}
    from study.plan_file import PLAN_WORDS

    eval_only = {s.name for s in table.SETTINGS if s.commands == frozenset({"eval"})}
    assert eval_only == {"peft", "dry_run", "checkpoints"}
    assert set(table.BY_NAME) - eval_only == {s.name for s in table.RUN_SETTINGS}  # plan keys = run rows
    assert not set(PLAN_WORDS) & set(table.BY_NAME)


def test_bootstrap_iters_is_taken_wherever_scores_are_made(results_dir, capsys):
    for command in (["run", "--max_steps", "0"], ["eval"]):
        argv = [*command, "--model", "tiny-gpt2", "--tasks", "dlm_nope", "--bootstrap_iters", "0",
                "--results-dir", str(results_dir)]
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "dlm_nope" in err and "bootstrap" not in err  # the task, not the flag
    assert seed_main.parse(["--model", "tiny-gpt2", "--max_steps", "0", "--bootstrap-iters", "7"]).bootstrap_iters == 7


def test_eval_config_takes_bootstrap_iters_and_the_eval_seed():
    cfg = table.eval_config({"model": "tiny-gpt2", "tasks": "dlm_fpb", "bootstrap_iters": 5})
    assert cfg.bootstrap_iters == 5 and cfg.seed == 1234


def test_results_dir_and_dataset_config_are_spelled_alike_everywhere(tmp_path, capsys):
    empty = tmp_path / "runs"
    empty.mkdir()
    for flag in ("--results-dir", "--results_dir", "--runs"):  # --runs: the old spelling, hidden
        with pytest.raises(SystemExit) as exit_:
            cli.main(["report", flag, str(empty)])
        assert exit_.value.code == 2 and str(empty) in capsys.readouterr().err
    for flag in ("--dataset_config", "--dataset-config", "--config"):
        cli.main(["data", "show", "glue", flag, "sst2", "-n", "1"])
        assert "sentence" in capsys.readouterr().out
    help_text = json.dumps([p.opts for p in typer.main.get_command(cli.app).commands["report"].params if not p.hidden])
    assert "--runs" not in help_text


def test_a_new_row_appears_in_every_command_and_in_plan_files(monkeypatch, tmp_path):
    """The README's "adding a setting" note: one row, and train / run / main.py / plan files take it."""
    row = table.Setting("probe_flag", int, 3, "a setting added by this test", table.TRAIN)
    monkeypatch.setattr(table, "SETTINGS", (*table.SETTINGS, row))
    monkeypatch.setattr(table, "BY_NAME", {**table.BY_NAME, "probe_flag": row})
    monkeypatch.setattr(table, "RUN_SETTINGS", (*table.RUN_SETTINGS, row))
    monkeypatch.setattr(table, "DEFAULTS", {**table.DEFAULTS, "probe_flag": 3})
    assert "--probe-flag" in {o for a in seed_main.build_parser()._actions for o in a.option_strings}
    assert table.command_line({"model": "m", "probe_flag": 5})[-2:] == ["--probe_flag", "5"]
    app = typer.Typer()
    monkeypatch.setattr(cli, "app", app)
    seen = {}
    cli.settings_command("train")(lambda settings: seen.update(settings))
    typer.main.get_command(app).main(["--model", "m", "--probe-flag", "9"], standalone_mode=False)
    assert seen["probe_flag"] == 9
    plan = tmp_path / "p.yaml"
    plan.write_text("defaults: {model: tiny-gpt2, dataset: glue, dataset_config: sst2, probe_flag: 4}\n"
                    "matrix: {approach: [sft]}\n")
    from study.plan_file import load_plan

    monkeypatch.setattr("study.plan_file._check_run", lambda *a: None)  # the config has no field for it
    assert load_plan(str(plan)).runs[0].settings["probe_flag"] == 4
