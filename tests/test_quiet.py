"""Quiet by default (dlm_data/quiet.py): a real evaluation prints dlm's own lines, not the libraries' progress bars
and known-noise messages; `--verbose` (anywhere on the line) and DLM_VERBOSE=1 (what a plan's children inherit)
show them again."""

from __future__ import annotations

import os

# what lm-eval / transformers / git printed into every evaluation before
HIDDEN = (
    "Running loglikelihood requests",
    "Tokenizing inputs",
    "it/s]",
    "Loading weights",
    "strongly recommend passing in an `attention_mask`",
    "fatal: not a git repository",
)


def _eval(extra: list[str], model, samples, results, capfd) -> str:
    from dlm import cli

    cli.main(
        [
            "eval",
            "--model",
            str(model),
            "--tasks",
            "dlm_tfns",
            "--limit",
            "3",
            "--bootstrap-iters",
            "0",
            "--data-dir",
            str(samples),
            "--results-dir",
            str(results),
            *extra,
        ]
    )
    captured = capfd.readouterr()
    return captured.out + captured.err


def test_quiet_by_default_and_verbose_shows_the_libraries(
    tiny_model_dir, samples_dir, results_dir, tmp_path, capfd, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # outside a git repository, where lm-eval's `git describe` printed "fatal: ..."
    quiet = _eval([], tiny_model_dir, samples_dir, results_dir, capfd)
    assert not [text for text in HIDDEN if text in quiet], quiet
    assert "[dlm eval] scoring 9 log-likelihood requests ... " in quiet  # 3 documents x 3 options, with its time

    verbose = _eval(["--verbose"], tiny_model_dir, samples_dir, results_dir, capfd)
    assert "Running loglikelihood requests" in verbose and "Loading weights" in verbose
    assert "[dlm eval] scoring" not in verbose  # the bars are the progress then
    assert "DLM_VERBOSE" not in os.environ  # an in-process command leaves the environment as it found it

    assert len(list(results_dir.glob("*.json"))) == 2


def test_main_py_takes_verbose_and_children_read_it_from_the_environment(monkeypatch):
    from dlm import cli
    from dlm.quiet import is_verbose, set_verbose

    # main.py hands its arguments to `dlm run`, whose --verbose is the global option, not a run setting
    argv = cli.expand_list_flags(["--model", "tiny-gpt2", "--max_steps", "0"])
    assert "verbose" not in cli.parse_settings("run", argv)
    monkeypatch.setenv("DLM_VERBOSE", "0")  # recorded, so that teardown removes what set_verbose writes
    assert not is_verbose()
    set_verbose(True)  # what --verbose does: in os.environ, which every plan child is started with a copy of
    assert is_verbose() and os.environ["DLM_VERBOSE"] == "1"
    for value, verbose in (("yes", True), ("true", True), ("0", False), ("", False)):
        monkeypatch.setenv("DLM_VERBOSE", value)
        assert is_verbose() is verbose
