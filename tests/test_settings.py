"""One description of a run: the config dataclasses (dlm/config.py) generate dlm train / eval / run, main.py, plan
keys and dry-run command lines, and one evaluation protocol reaches every scorer."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, fields
from pathlib import Path

import pytest
import typer

import main as seed_main
from dlm import cli, settings
from dlm.config import ALL, TRAIN, EvalConfig, EvalProtocol, RunConfig, TrainConfig, setting
from dlm.settings import BY_NAME, RUN_SETTINGS, SETTINGS, for_command

ROOT = Path(__file__).resolve().parent.parent


def _options(command_name: str) -> dict:
    group = typer.main.get_command(cli.app)
    return {p.name: p for p in group.commands[command_name].params}


@pytest.mark.parametrize("command", ["train", "eval", "run"])
def test_each_command_takes_exactly_its_fields_with_their_defaults_and_help(command):
    visible = {n: p for n, p in _options(command).items() if not p.hidden}
    taken = for_command(command)
    assert set(visible) == {s.name for s in taken}
    for s in taken:
        option = visible[s.name]
        assert option.help == s.help
        assert set(option.opts) == set(s.spellings())
        if not s.required and not s.many and not s.split:
            assert option.default == s.default_for(command), s.name


def test_every_setting_is_a_field_and_its_default_is_the_field_default():
    declared = {f.name: f for cls in (EvalProtocol, TrainConfig, EvalConfig, RunConfig) for f in fields(cls)}
    for s in SETTINGS:
        assert declared[s.name].default == s.default, s.name
        assert declared[s.name].metadata["help"] == s.help


def test_commands_that_differ_say_so_in_the_field():
    assert _options("train")["mode"].default == "pretrain" and _options("run")["mode"].default == "sft"
    assert _options("eval")["fewshot_seed"].default == 1234 and _options("train")["seed"].default == 42
    assert _options("eval")["alias__seed"].hidden  # `dlm eval --seed` is the few-shot seed, as it always was
    assert _options("eval")["alias__batch_size"].hidden  # `dlm eval --batch_size` is the eval batch size
    values = cli.parse_settings("eval", ["--model", "m", "--tasks", "dlm_fpb", "--seed", "7", "--batch_size", "3"])
    assert values["fewshot_seed"] == 7 and values["eval_batch_size"] == 3


def test_main_py_is_dlm_run(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "main", lambda argv, program, own_process: seen.append((argv, program, own_process)))
    seed_main.main(["--model", "tiny-gpt2", "--max-steps", "0"])
    assert seen == [(["run", "--model", "tiny-gpt2", "--max-steps", "0"], ("python", "main.py"), False)]
    source = (ROOT / "main.py").read_text()
    assert "argparse" not in source and "add_argument" not in source  # no parser of its own


def test_plan_keys_are_the_run_settings():
    from dlm.plan.file import PLAN_WORDS

    outside_run = {s.name: s.commands for s in SETTINGS if "run" not in s.commands}
    assert outside_run == {
        "peft": {"eval"},
        "checkpoints": {"eval"},
        "dry_run": {"train", "eval"},  # `dlm plan --dry-run` is the dry run of `dlm run` lines
        "target_device": {"train"},
    }
    assert set(BY_NAME) - set(outside_run) == {s.name for s in RUN_SETTINGS}
    assert not set(PLAN_WORDS) & set(BY_NAME)


def test_one_protocol_object_per_run_and_it_is_built_in_one_place():
    run = settings.run_config(
        {
            "model": "tiny-gpt2",
            "dataset": "glue",
            "dataset_config": "sst2",
            "mode": "sft",
            "num_fewshot": 3,
            "chat_template": "default",
            "fewshot_seed": 9,
            "limit": 40,
        }
    )
    assert run.train.protocol is run.evaluation.protocol
    assert (run.protocol.num_fewshot, run.protocol.chat_template, run.protocol.fewshot_seed) == (3, "default", 9)
    assert run.train.chat_template == "default"  # SFT prompts are rendered as the scores' prompts are
    built = []  # every `EvalProtocol(...)` call in the package
    for path in (ROOT / "dlm").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "EvalProtocol":
                built.append(path.relative_to(ROOT).as_posix())
    assert built == ["dlm/settings.py"]


def test_bootstrap_iters_is_taken_wherever_scores_are_made(results_dir, capsys):
    for command in (["run", "--max_steps", "0"], ["eval"]):
        argv = [
            *command,
            "--model",
            "tiny-gpt2",
            "--tasks",
            "dlm_nope",
            "--bootstrap_iters",
            "0",
            "--results-dir",
            str(results_dir),
        ]
        with pytest.raises(SystemExit) as exit_:
            cli.main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "dlm_nope" in err and "bootstrap" not in err  # the task, not the flag
    values = cli.parse_settings("run", ["--model", "tiny-gpt2", "--max_steps", "0", "--bootstrap-iters", "7"])
    assert settings.run_config(values).protocol.bootstrap_iters == 7


def test_eval_config_takes_bootstrap_iters_and_the_fewshot_seed():
    cfg = settings.eval_config({"model": "tiny-gpt2", "tasks": "dlm_fpb", "bootstrap_iters": 5})
    assert cfg.protocol.bootstrap_iters == 5 and cfg.protocol.fewshot_seed == 1234
    assert cfg.protocol.tasks == ("dlm_fpb",)


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


def test_a_new_field_appears_in_every_command_and_in_plan_files(monkeypatch, tmp_path):
    """The README's "adding a setting" note: one field, and train / run / main.py / plan files take it."""

    @dataclass(kw_only=True)
    class Probed(TrainConfig):
        probe_flag: int = setting(3, "a setting added by this test", TRAIN)

    taken = settings.collect((*settings.SETTING_CLASSES[:2], Probed, *settings.SETTING_CLASSES[3:]))
    row = {s.name: s for s in taken}["probe_flag"]
    assert (row.kind, row.default, row.commands, row.help) == (int, 3, TRAIN, "a setting added by this test")
    monkeypatch.setattr(settings, "SETTINGS", taken)
    monkeypatch.setattr(settings, "BY_NAME", {s.name: s for s in taken})
    monkeypatch.setattr(settings, "RUN_SETTINGS", tuple(s for s in taken if "run" in s.commands))
    monkeypatch.setattr(settings, "DEFAULTS", {s.name: s.default for s in taken if "run" in s.commands})
    monkeypatch.setattr(cli, "BY_NAME", settings.BY_NAME)
    monkeypatch.setattr(cli, "for_command", settings.for_command)
    assert settings.command_line({"model": "m", "probe_flag": 5})[-2:] == ["--probe_flag", "5"]
    app = typer.Typer()
    monkeypatch.setattr(cli, "app", app)
    seen = {}
    cli.settings_command("train")(lambda values: seen.update(values))
    typer.main.get_command(app).main(["--model", "m", "--probe-flag", "9"], standalone_mode=False)
    assert seen["probe_flag"] == 9
    plan = tmp_path / "p.yaml"
    plan.write_text(
        "defaults: {model: tiny-gpt2, dataset: glue, dataset_config: sst2, probe_flag: 4}\nmatrix: {approach: [sft]}\n"
    )
    from dlm.plan import file as plan_file

    monkeypatch.setattr(plan_file, "BY_NAME", settings.BY_NAME)
    names = {f.name for f in fields(Probed)}
    monkeypatch.setattr(
        plan_file,
        "run_config",
        lambda values, **kw: settings.RunConfig(
            evaluation=EvalConfig(model=values["model"]),
            train=Probed(**{k: v for k, v in values.items() if k in names}),
        ),
    )
    assert plan_file.load_plan(str(plan)).runs[0].settings["probe_flag"] == 4


def test_every_setting_belongs_to_at_least_one_command():
    assert all(s.commands and s.commands <= ALL for s in SETTINGS)
