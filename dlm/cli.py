"""`dlm`: train small causal LMs on domain data and score them against large models' published numbers.

Every command is thin: parse flags -> build a config dataclass -> call one library function -> print.
Heavy libraries (torch, transformers, trl, peft, lm_eval) are imported inside the commands that need them,
so `dlm --help` stays instant. Mistakes a user can make raise `UserError`: one line, exit code 2.
"""

from __future__ import annotations

import errno
import inspect
import re
import sys
from contextlib import redirect_stderr, redirect_stdout
from typing import Annotated, Optional

import typer

from dlm import signals
from dlm.errors import UserError
from dlm.files import check_data_dir
from dlm.secrets import ScrubbedStream, scrub
from dlm.settings import BY_NAME, SETTINGS, for_command, spellings

# rich_markup_mode=None: plain help. Rich-rendered help imports and lays out ~0.2 s of rich/markdown code, which
# alone broke the "instant --help" budget (0.3 s); errors are printed by main() either way.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Train small LMs on domain data (continued pretraining, SFT, LoRA, mixtures) and compare "
    "their zero/few-shot scores with GPT-4-class models.",
)
data_app = typer.Typer(
    no_args_is_help=True, rich_markup_mode=None, help="The study's datasets: list, inspect, check overlap."
)
tasks_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="The lm-evaluation-harness task plugins.")
app.add_typer(data_app, name="data")
app.add_typer(tasks_app, name="tasks")


@app.callback()
def _global_options(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            envvar="DLM_VERBOSE",
            help="show the libraries' progress bars, warnings and log lines (hidden by "
            "default); anywhere on the command line; plan runs' child processes inherit it",
        ),
    ] = False,
) -> None:
    from dlm.quiet import set_verbose

    set_verbose(verbose)


def _opt(*names: str, help: str = "", **kw):
    return typer.Option(*names, help=help, **kw)


def _setting(name: str):
    """The option of one run setting (dlm/config.py), for the commands outside train/eval/run that take it too."""
    s = BY_NAME[name]
    kind = s.kind if s.default is not None else Optional[s.kind]
    return Annotated[kind, _opt(*s.spellings(), help=s.help, envvar=s.envvar)]


DataDir = _setting("data_dir")


def _config_of(what: str):
    """--dataset_config of the `data` commands, whose dataset is an argument (the run setting's help names
    --dataset, which they do not have)."""
    return Annotated[Optional[str], _opt(*BY_NAME["dataset_config"].spellings(), help=f"config of {what}")]


ResultsDir = _setting("results_dir")
HiddenConfig = Annotated[Optional[str], _opt("--config", hidden=True)]  # the old spelling of --dataset_config
HiddenRuns = Annotated[Optional[str], _opt("--runs", hidden=True)]  # the old spelling of --results-dir


_ALIASES: dict[str, dict[str, str]] = {}  # {command: {hidden alias parameter: setting}}


def _setting_values(params: dict, aliases: dict[str, str]) -> dict:
    """Parsed options -> setting values: aliases folded into their setting; options not given are left out where
    the config's default is not None (--tasks: no option is "no tasks yet", the config's empty tuple)."""
    values = dict(params)
    for param, target in aliases.items():
        value = values.pop(param)
        if value is not None:
            values[target] = value
    values = {k: (None if BY_NAME[k].many and not v else v) for k, v in values.items()}  # no --datasets: none
    return {k: v for k, v in values.items() if v is not None or BY_NAME[k].default is None}


def parse_settings(command: str, argv: list[str]) -> dict:
    """The setting values `dlm COMMAND ARGV` would run with, from the same parser, without running anything."""
    click_command = typer.main.get_command(app).commands[command]
    with click_command.make_context(command, expand_list_flags(list(argv))) as context:
        return _setting_values(context.params, _ALIASES[command])


def settings_command(command: str, name: str | None = None):
    """Register `body(values: dict)` as a Typer command whose options are the run settings `command` takes
    (dlm/settings.py, generated from the config dataclasses), with their defaults, help and aliases."""
    taken = for_command(command)
    names = {s.name for s in taken}

    def register(body):
        params, annotations, aliases = [], {}, {}
        for s in taken:
            kind = list[str] if s.many else s.kind  # several values are parsed by the config (None, rates)
            default = None if s.split else s.default_for(command)
            if default is None and not s.required:
                kind = Optional[kind]
            option = typer.Option(
                ... if s.required else default,
                *s.spellings(),
                help=s.help,
                envvar=s.envvar,
                show_default=default is not None and s.kind is not bool,
            )
            params.append(inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=kind))
            annotations[s.name] = kind
            for alias in s.hidden_aliases(command):
                if alias not in names:  # `dlm eval --batch_size` is --eval_batch_size; in `dlm run` it trains
                    param = f"alias__{alias}"
                    aliases[param] = s.name
                    option = typer.Option(None, *spellings(alias), hidden=True)
                    params.append(
                        inspect.Parameter(
                            param, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=Optional[s.kind]
                        )
                    )
                    annotations[param] = Optional[s.kind]

        def command_function(**params):
            return body(_setting_values(params, aliases))

        _ALIASES[name or command] = aliases
        command_function.__signature__ = inspect.Signature(params)
        command_function.__annotations__ = annotations
        command_function.__doc__ = body.__doc__
        command_function.__name__ = body.__name__
        return app.command(name or command)(command_function)

    return register


# --- data --------------------------------------------------------------------------------------------------
@data_app.command("list")
def data_list() -> None:
    """All datasets of the study: id, domain, configs, splits, loading route, size class."""
    from dlm.data.table import TABLE
    from dlm.results.console import print_dataset_table

    print_dataset_table(TABLE)


@data_app.command("show")
def data_show(
    dataset: Annotated[str, typer.Argument(help="dataset id")],
    dataset_config: _config_of("DATASET") = None,
    config: HiddenConfig = None,
    split: Annotated[Optional[str], _opt("--split")] = None,
    n: Annotated[int, _opt("-n", "--n")] = 5,
    as_: Annotated[str, _opt("--as", help="raw | pretrain | sft")] = "raw",
    data_dir: DataDir = None,
) -> None:
    """Print the first rows of a dataset, raw or as training text / prompt+completion."""
    from dlm.data.loading import show_rows
    from dlm.results.console import print_rows

    check_data_dir(data_dir)
    chosen = dataset_config or config
    print_rows(show_rows(dataset, config=chosen, split=split, n=n, as_=as_, data_dir=data_dir), title=dataset)


@data_app.command("overlap")
def data_overlap(
    train: Annotated[str, typer.Argument(help="training dataset id[:config]")],
    evaluation: Annotated[str, typer.Argument(help="task name, or dataset id[:config]")],
    dataset_config: _config_of("TRAIN (the same as writing TRAIN as id:config)") = None,
    data_dir: DataDir = None,
) -> None:
    """Exact and near-duplicate overlap between a training set and an evaluation set."""
    from dlm.harness_tasks.overlap import overlap_report
    from dlm.results.console import print_overlap

    check_data_dir(data_dir)
    if dataset_config is not None:  # the same as writing TRAIN as id:config
        if ":" in train:
            raise UserError(f"give the config once: '{train}' already names one, so drop --dataset_config")
        train = f"{train}:{dataset_config}"
    print_overlap(overlap_report(train, evaluation, data_dir=data_dir))


# --- tasks -------------------------------------------------------------------------------------------------
@tasks_app.command("list")
def tasks_list() -> None:
    """Every task and group: name, family, dataset, metric, shots, version."""
    from dlm.harness_tasks.catalog import list_tasks
    from dlm.results.console import print_task_table

    print_task_table(list_tasks())


@tasks_app.command("path")
def tasks_path() -> None:
    """The folder to pass to `lm_eval --include_path`."""
    from dlm.harness_tasks.catalog import TASKS_DIR

    print(TASKS_DIR)


# --- train / eval / run: options generated from the config dataclasses (dlm/settings.py) --------------------
# The heavy libraries are imported inside the commands that need them: `dlm --help`, `dlm tasks list` and
# `dlm data list` must not pay for torch and transformers (tests/test_structure.py checks it).
@settings_command("train")
def train(settings: dict) -> None:
    """Continued pretraining (packed) or SFT (full / LoRA); writes a checkpoint and a run record. --dry-run: the
    run's estimated time and peak memory (on --target-device), nothing loaded or written."""
    _preflight(settings)
    from dlm.results.console import print_train_summary
    from dlm.settings import train_config
    from dlm.store.records import as_record
    from dlm.study.cycle import curve_evaluator_for
    from dlm.trainers.dry_run import dry_run
    from dlm.trainers.runtime import is_main_process
    from dlm.trainers.train import train as run_training

    cfg = train_config(settings)
    if cfg.dry_run:
        dry_run(cfg)
        return
    result = run_training(cfg, evaluator=curve_evaluator_for(cfg))
    if is_main_process():  # under torchrun every rank returns here; one summary is enough
        print_train_summary(as_record(result.record))


@settings_command("eval")
def eval_(settings: dict) -> None:
    """Score a model (hub id, alias, checkpoint, or base + --peft adapter) on lm-eval tasks."""
    _preflight(settings)
    from dlm.harness_tasks.evaluate import evaluate
    from dlm.results.console import print_eval
    from dlm.settings import eval_config
    from dlm.store.records import as_record

    record = evaluate(eval_config(settings))
    if "dry_run" in record:  # an API dry run: the estimate is printed, nothing was scored or written
        return
    print_eval(as_record(record))
    _print_next_step(settings)


@settings_command("run")
def run(settings: dict) -> None:
    """Train then evaluate, one run record. --max_steps 0 / --evaluation_only: evaluate the model as it is."""
    _preflight(settings)
    from dlm.results.console import print_eval
    from dlm.settings import run_config
    from dlm.store.records import as_record
    from dlm.study.cycle import run_cycle

    print_eval(as_record(run_cycle(run_config(settings, command=_invocation))))
    _print_next_step(settings)


def _preflight(settings: dict) -> None:
    """An unreachable Hub that the model or data would need, in one line before torch & co are imported (seconds)."""
    from dlm.data.hub import preflight

    datasets = [settings.get("dataset"), *(settings.get("datasets") or [])]
    preflight(settings.get("model"), [d for d in datasets if d], settings.get("data_dir"))


def _print_next_step(settings: dict) -> None:
    from dlm.results.report import next_step
    from dlm.study.cycle import say

    if not settings.get("dry_run"):  # an API dry run writes no record
        say(next_step(settings.get("results_dir") or BY_NAME["results_dir"].default))


# --- report / plan / demo ----------------------------------------------------------------------------------
@app.command()
def report(
    results_dir: Annotated[
        Optional[str],
        _opt(
            "--results-dir",
            "--results_dir",
            help="folder of run records (default: where dlm last wrote one, else runs)",
        ),
    ] = None,
    runs: HiddenRuns = None,
    against: Annotated[str, _opt("--against", help="large model to compare with")] = "gpt-4",
    format: Annotated[str, _opt("--format", help="table | markdown | csv | json | html | latex")] = "table",
    detail: Annotated[bool, _opt("--detail", help="every score, note and table, not one screen")] = False,
    output: Annotated[
        Optional[str],
        _opt(
            "--output",
            help="--format html: the file to write (default: report.html in the results dir); "
            "--format latex: a .tex file (default: printed)",
        ),
    ] = None,
    plot: Annotated[Optional[str], _opt("--plot", help="write figures to FILE.png")] = None,
) -> None:
    """One screen of results against stored large-model numbers (never recomputes); --detail for everything."""
    from dlm.results.report import render_report

    render_report(runs_dir=runs or results_dir, against=against, fmt=format, plot=plot, detail=detail, output=output)


@app.command()
def plan(
    file: Annotated[str, typer.Argument(help="plan YAML (see plans/)")],
    dry_run: Annotated[bool, _opt("--dry-run", "--dry_run", help="print the commands only")] = False,
    device: Annotated[
        Optional[str],
        _opt(
            "--device",
            help="with --dry-run: estimate training times on this "
            "device (t4, v100, l4, a100, h100, cpu; default: this machine)",
        ),
    ] = None,
    jobs: Annotated[int, _opt("--jobs", help="runs at once, each in its own process")] = 1,
    executor: Annotated[str, _opt("--executor", help="local | ray | slurm (submitit)")] = "local",
    address: Annotated[Optional[str], _opt("--address", help="--executor ray: the cluster address")] = None,
    gpus_per_run: Annotated[int, _opt("--gpus-per-run", "--gpus_per_run", help="GPUs given to each run")] = 1,
    set_: Annotated[
        Optional[list[str]],
        _opt(
            "--set",
            help="KEY=VALUE: a setting for every run where it applies "
            "(training settings skip zero-shot runs); repeatable, e.g. "
            "--set model=tiny-gpt2 --set max_steps=20",
        ),
    ] = None,
    data_dir: DataDir = None,
    results_dir: ResultsDir = BY_NAME["results_dir"].default,
    checkpoints_dir: Annotated[
        Optional[str],
        _opt(
            "--checkpoints-dir",
            "--checkpoints_dir",
            help="where training runs without their own output_dir write (default: the plan's checkpoints_dir, "
            "else checkpoints/<plan name>); a plan file itself may only name folders below where it runs",
        ),
    ] = None,
) -> None:
    """Run a matrix of train->evaluate cycles; finished runs are skipped on re-run."""
    from dlm.plan import run_plan

    run_plan(
        file,
        dry_run=dry_run,
        data_dir=data_dir,
        results_dir=results_dir,
        device=device,
        jobs=jobs,
        executor=executor,
        address=address,
        gpus_per_run=gpus_per_run,
        overrides=set_,
        checkpoints_dir=checkpoints_dir,
    )


@app.command()
def demo(results_dir: ResultsDir = "dlm-demo", plot: Annotated[str, _opt("--plot")] = "dlm-demo/demo.png") -> None:
    """Offline end-to-end on tiny-gpt2 and samples/: zero-shot, pretrain, SFT, pretrain->SFT, report. The tiny
    model is built on first use and cached in $DLM_CACHE (default ~/.cache/dlm)."""
    from dlm.demo import demo as run_demo

    run_demo(results_dir=results_dir, plot=plot)


# options that may be given bare, as lm-eval's --apply_chat_template is: `--chat-template` alone means its value here
BARE_VALUES = {"--chat-template": "default", "--chat_template": "default"}


def expand_list_flags(argv: list[str]) -> list[str]:
    """Rewrite the seed's `--datasets A B --mixture_rates 0.7 0.3` into click's repeated-option form, and give a
    bare `--chat-template` (last, or followed by another option) its value `default`."""
    argv = [
        part
        for i, arg in enumerate(argv)
        for part in (
            [arg, BARE_VALUES[arg]]
            if arg in BARE_VALUES and (i + 1 == len(argv) or argv[i + 1].startswith("--"))
            else [arg]
        )
    ]
    out: list[str] = []
    current = None
    for arg in argv:
        is_value = current is not None and re.fullmatch(r"-[0-9.].*|-nan|-inf", arg, re.I)  # `--mixture_rates -0.5`
        if arg.startswith("-") and not is_value:
            current = arg if arg in _list_flags() else None
            if current is None or "=" in arg:
                out.append(arg)
            continue
        if current is not None:
            out.extend([current, arg])
        else:
            out.append(arg)
    return out


def _list_flags() -> set[str]:
    return {spelling for s in SETTINGS if s.many for spelling in s.spellings()}


_invocation: list[str] = []  # the command line being run, as the user typed it (recorded in the run record)


def main(
    argv: list[str] | None = None, program: tuple[str, ...] | None = None, own_process: bool | None = None
) -> None:
    """`dlm ARGV`; `program`: how the user invoked it when it was not `dlm` (main.py: ("python", "main.py")).
    `own_process`: the process exits after this command (default: when ARGV is the command line's), so a late
    Ctrl-C is ignored on the way out; an in-process caller (a test, a notebook) gets its signal handlers back."""
    own_process = argv is None if own_process is None else own_process
    given = list(sys.argv[1:] if argv is None else argv)
    _invocation[:] = [*program, *given[1:]] if program else [*sys.argv[:1], *given] if argv is None else ["dlm", *given]
    argv = expand_list_flags(given)
    if "--verbose" in argv:  # a global option, so click takes it only before the command: `dlm demo --verbose` too
        argv = ["--verbose", *(arg for arg in argv if arg != "--verbose")]
    from dlm.quiet import verbose_scope

    saved = signals.handlers()
    signals.stop_like_ctrl_c()
    try:
        # whatever a command prints (progress, tables, a library's log line) is scrubbed of secrets on the way out
        with verbose_scope(), redirect_stdout(ScrubbedStream(sys.stdout)), redirect_stderr(ScrubbedStream(sys.stderr)):
            code = app(args=argv, standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns that code
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            raise SystemExit(code)
    except UserError as err:
        _fail(str(err))
    except typer.Exit as err:
        raise SystemExit(err.exit_code) from None
    except KeyboardInterrupt as err:  # Ctrl-C, and SIGTERM / SIGHUP (dlm/signals.py)
        signals.ignore_stops()  # a second Ctrl-C while exiting changes nothing
        how = "" if signals.exit_code(err) == 130 else f" by {signals.signal_name(err)}"
        _fail(f"interrupted{how}: {INTERRUPTED_KEPT}", code=signals.exit_code(err))
    except OSError as err:
        name = str(err.filename or "")
        shown = name if len(name) <= 80 else f"{name[:60]}...{name[-15:]}"
        if err.errno == errno.ENAMETOOLONG:  # a path the user typed (--model, a report dir...) no file system holds
            _fail(f"the path '{shown}' is too long (a name over 255 bytes, or over 4096 in all); shorten it")
        if err.errno in DISK_FULL:  # a write dlm has no rescue for (a library's cache, a log)
            _fail(
                f"no room to write {shown or 'a file'} ({err.strerror}); free some space (or raise the quota or "
                f"`ulimit -f`) and re-run: {INTERRUPTED_KEPT}"
            )
        raise  # any other OSError is not the user's input: it keeps its traceback
    except Exception as err:  # click usage errors (unknown option, bad int) are user errors too
        import click

        # typer >= 0.2x vendors its own click: its usage errors are TyperExceptions, not click's classes
        if isinstance(err, (click.exceptions.ClickException, typer.TyperException)) and hasattr(err, "format_message"):
            _fail(err.format_message())
        if isinstance(err, (click.exceptions.Abort, typer.Abort)):
            _fail("aborted", code=130)
        raise
    finally:
        # Streamed parquet readers left in garbage cycles would otherwise be finalised at interpreter shutdown,
        # after pyarrow's runtime is gone: the process aborts (exit 134) or hangs once its work is done
        # (apache/arrow#45214; datasets' workaround covers pyarrow <= 24 only). `dlm data show` on a 2 GB
        # snapshot: 5 of 37 runs aborted without this collection, 0 of 32 with it.
        import gc

        gc.collect()
        if own_process:
            signals.ignore_stops()  # on the way out: a late Ctrl-C must not print a traceback from shutdown
        else:
            signals.restore(saved)


INTERRUPTED_KEPT = (
    "the records and complete checkpoints written so far are kept (`--resume` continues a "
    "training run, re-running `dlm plan` skips finished runs)"
)
INTERRUPTED = f"interrupted: {INTERRUPTED_KEPT}"


DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # disk full, quota, `ulimit -f`


def _fail(message: str, code: int = 2) -> None:
    sys.stderr.write(f"error: {scrub(message)}\n")  # a message may quote a server's answer, a URL, a path
    raise SystemExit(code)


if __name__ == "__main__":
    main()
