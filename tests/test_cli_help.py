"""The command line says only true things about itself: --help names only options the command has, counts read
`1 task`, the tiny model's cache is documented where it is used, and a bare --chat-template means `default`."""

from __future__ import annotations

import re

import pytest
import typer

from dlm import cli


def _commands(command, path):
    if hasattr(command, "commands"):  # a group (typer vendors its own click: not click.Group)
        for name, sub in command.commands.items():
            yield from _commands(sub, [*path, name])
    else:
        yield path, command


COMMANDS = list(_commands(typer.main.get_command(cli.app), ["dlm"]))


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p[1:]) for p, _ in COMMANDS])
def test_help_names_only_options_the_command_has(path, command):
    text = command.get_help(command.context_class(command, info_name=" ".join(path)))
    options = {name for param in command.params for name in [*param.opts, *param.secondary_opts]}
    text = re.sub(r"-\n\s*", "-", text)  # an option name wrapped at its dash
    text = re.sub(r"`lm_eval [^`]*`", "", text)  # another program's options
    mentioned = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", text))
    assert mentioned - options - {"--help"} == set(), text


def test_the_tiny_models_cache_is_documented_where_it_is_used(capsys):
    for command in (["demo", "--help"], ["train", "--help"], ["eval", "--help"]):
        try:
            cli.main(command)
        except SystemExit as done:
            assert not done.code
        assert "DLM_CACHE" in " ".join(capsys.readouterr().out.split()), command


def test_counts_of_one_are_singular(capsys):
    cli.main(["tasks", "list"])
    out = capsys.readouterr().out
    assert " 1 task " in out and not re.search(r"\b1 tasks\b", out)


@pytest.mark.parametrize(
    "argv",
    [
        ["--model", "tiny-gpt2", "--chat-template", "--tasks", "dlm_tfns_gen"],  # followed by another option
        ["--model", "tiny-gpt2", "--tasks", "dlm_tfns_gen", "--chat-template"],  # last
        ["--model", "tiny-gpt2", "--tasks", "dlm_tfns_gen", "--chat_template"],
    ],
)
def test_a_bare_chat_template_means_the_tokenizers_own(argv):
    settings = cli.parse_settings("eval", argv)
    assert settings["chat_template"] == "default" and settings["tasks"] == "dlm_tfns_gen"


def test_a_chat_template_with_a_value_keeps_it():
    assert cli.parse_settings("eval", ["--model", "m", "--chat-template", "t.jinja"])["chat_template"] == "t.jinja"
