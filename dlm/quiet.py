"""Quiet by default: the libraries' progress bars and known-noise messages are switched off here, by name, and dlm
prints its own progress lines instead (the pipeline's "dlm [i/n]" lines, the trainer's step lines, "[dlm eval]").

`--verbose` (or DLM_VERBOSE=1) leaves every library as it is. It lives in the environment so that the children
of a plan (`python -m dlm.plan.child`, forked or spawned; `python main.py`) are quiet or verbose like their
parent: they are started with a copy of os.environ.

Only named switches and exact messages, never stderr as a whole: a real error, an unknown warning and the
traceback of a bug still show.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import subprocess
import sys
import time
import warnings

VERBOSE_ENV = "DLM_VERBOSE"
_TRUE = ("1", "true", "t", "yes", "y", "on")  # what click reads as true in a bool option's envvar

# Known-misleading library log lines (substring match) and the loggers that emit them: the 'pass an
# attention_mask' advice is wrong for packed batches (their isolation relies on having no attention_mask) and for
# lm-eval's log-likelihood batches (padding only follows the scored tokens of a causal LM); GPT-2 configs carry
# loss_type=None, which means the default loss; a tied LM head is never saved, so resuming always 'misses' it;
# mtime ordering of checkpoints is harmless.
NOISE_MESSAGES = (
    "strongly recommend passing in an `attention_mask`",
    "mtime may not be reliable",
    "`loss_type=None` was set in the config",
    "missing keys in the checkpoint model loaded: ['lm_head.weight']",
)
NOISE_LOGGERS = ("transformers.modeling_utils", "transformers.trainer_utils", "transformers.trainer")
# Known python warnings: (message regex, category). Gradient checkpointing is dlm's explicit choice.
NOISE_WARNINGS = ((r".*(gradient_checkpointing|is_gradient_checkpointing).*", FutureWarning),)
LM_EVAL_LOGGER = "lm_eval"  # the parent of every lm-eval module's logger
# While a model loads, transformers logs a table of missing/unexpected/mis-shaped tensors (and, for such a checkpoint,
# which layers its tensor-parallel plan does not cover): dlm refuses such a checkpoint itself, in one line
# (trainers/model_integrity.py), so those warnings are noise on stderr. Errors still show.
LOAD_REPORT_LOGGERS = ("transformers",)


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in _TRUE


def set_verbose(on: bool) -> None:
    """For this process and, through its environment, every process it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


@contextlib.contextmanager
def verbose_scope():
    """DLM_VERBOSE as it was before a command: an in-process `cli.main([... --verbose])` must not leave it set."""
    before = os.environ.get(VERBOSE_ENV)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(VERBOSE_ENV, None)
        else:
            os.environ[VERBOSE_ENV] = before


class _DropMessages(logging.Filter):
    def filter(self, record):
        return not any(m in record.getMessage() for m in NOISE_MESSAGES)


@contextlib.contextmanager
def quiet_libraries():
    """No tqdm bars from transformers/datasets and none of the known-noise messages inside; restored afterwards.
    Verbose: nothing changes."""
    if is_verbose():
        yield
        return
    import datasets
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    noise = _DropMessages()
    loggers = [logging.getLogger(name) for name in NOISE_LOGGERS]
    for logger in loggers:
        logger.addFilter(noise)
    try:
        with warnings.catch_warnings():
            for message, category in NOISE_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(noise)
        if bars[0]:
            hf_logging.enable_progress_bar()
        if bars[1]:
            datasets.enable_progress_bars()


@contextlib.contextmanager
def without_load_report():
    """transformers' loading report off inside a from_pretrained call (verbose: shown)."""
    loggers = [logging.getLogger(name) for name in LOAD_REPORT_LOGGERS]
    before = [logger.level for logger in loggers]
    if not is_verbose():
        for logger in loggers:
            logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before):
            logger.setLevel(level)


@contextlib.contextmanager
def quiet_lm_eval():
    """An evaluation: quiet_libraries, lm-eval's log at ERROR (it warns per task about choices that are deliberate
    here: custom_dataset, overridden shots) unless LMEVAL_LOG_LEVEL is set, and its per-task "0/103" document bars
    off (Task.build_all_requests has no switch: the tqdm of lm_eval.api.task is replaced while inside).
    Verbose: lm-eval logs at INFO (LMEVAL_LOG_LEVEL still wins) to stderr, the bars as they are.
    Either way lm-eval's git lookup runs with git's stderr captured."""
    import lm_eval.api.task as lm_task
    import lm_eval.evaluator as lm_evaluator

    logger = logging.getLogger(LM_EVAL_LOGGER)
    saved = logger.level, lm_task.tqdm, lm_evaluator.get_git_commit_hash
    lm_evaluator.get_git_commit_hash = git_commit_hash
    handler = None
    if is_verbose():
        level = logging.getLevelName(os.environ.get("LMEVAL_LOG_LEVEL", "INFO").upper())
        logger.setLevel(level if isinstance(level, int) else logging.INFO)
        if not logger.handlers:  # lm-eval adds its handler in its own CLI only; ours is removed again below
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
            logger.addHandler(handler)
    else:
        lm_task.tqdm = functools.partial(_without_bar, lm_task.tqdm)
        if not os.environ.get("LMEVAL_LOG_LEVEL"):
            logger.setLevel(logging.ERROR)
    try:
        with quiet_libraries():
            yield
    finally:
        logger.setLevel(saved[0])
        lm_task.tqdm, lm_evaluator.get_git_commit_hash = saved[1:]
        if handler is not None:
            logger.removeHandler(handler)


def _without_bar(tqdm, *args, **kwargs):
    kwargs["disable"] = True
    return tqdm(*args, **kwargs)


def git_commit_hash() -> str | None:
    """lm-eval's get_git_commit_hash (the commit of the working directory, for its results), with git's stderr
    captured: outside a repository (`dlm demo` run from any directory) git printed "fatal: not a git repository"
    once per evaluation."""
    try:
        done = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        done = None
    if done is not None and done.returncode == 0:
        return done.stdout.strip()
    from lm_eval.loggers.utils import get_commit_from_path

    return get_commit_from_path(os.getcwd())  # lm-eval's own fallback: read .git/HEAD


# --- dlm's own progress instead of lm-eval's request bars -----------------------------------------------------------
_REQUESTS = {
    "loglikelihood": "scoring {} log-likelihood requests",
    "loglikelihood_rolling": "scoring {} rolling log-likelihoods",
    "generate_until": "generating {} answers",
}


COUNT_EVERY_S = 5.0  # how often a long request pass appends its count to its line


def with_own_progress(lm):
    """Quiet: lm-eval's request bars replaced by one line per request type, which gets `done/total` counts appended
    every COUNT_EVERY_S while it runs and ends with its time:
    `[dlm eval] generating 265 answers ... 61/265 130/265 197/265 48.9 s`. Verbose: the lm as it is."""
    if is_verbose():
        return lm
    modules = [sys.modules[c.__module__] for c in type(lm).__mro__ if hasattr(sys.modules.get(c.__module__), "tqdm")]
    for name, words in _REQUESTS.items():
        method = getattr(lm, name, None)
        if method is not None and "disable_tqdm" in inspect.signature(method).parameters:
            setattr(lm, name, functools.partial(_announced, method, words, modules))
    return lm


def _announced(method, words: str, modules: list, requests, disable_tqdm: bool = False):
    sys.stdout.write(f"[dlm eval] {words.format(len(requests))} ...")
    sys.stdout.flush()
    started, finished = time.time(), False
    saved = [module.tqdm for module in modules]
    for module in modules:  # lm-eval's bars of this pass become counts on this line
        module.tqdm = _Counts
    try:
        result = method(requests, disable_tqdm=False)
        finished = True
    finally:  # the line is ended either way, so that a traceback starts on its own line
        for module, bar in zip(modules, saved):
            module.tqdm = bar
        sys.stdout.write(f" {time.time() - started:.1f} s\n" if finished else " stopped\n")
        sys.stdout.flush()
    return result


class _Counts:
    """Stands in for tqdm inside a request pass: a bar with a total (the requests) appends ` done/total` to dlm's
    line at most every COUNT_EVERY_S (no redraws: a log file reads like the terminal); a bar wrapped around an
    iterable (tokenising the requests first) stays silent."""

    def __init__(self, iterable=None, total=None, disable=False, **_):
        self.iterable, self.total, self.n = iterable, total, 0
        self.counting = total is not None and not disable
        self.shown = time.time()

    def __iter__(self):
        yield from self.iterable

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.counting and self.n < self.total and time.time() - self.shown >= COUNT_EVERY_S:
            sys.stdout.write(f" {self.n}/{self.total}")
            sys.stdout.flush()
            self.shown = time.time()

    def close(self) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def refresh(self, *args, **kwargs) -> None:
        pass
