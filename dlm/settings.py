"""Run settings as flags and plan keys, generated from the config dataclasses (dlm/config.py).

`SETTINGS` is a view over the fields of `Sources`, `DataChoice`, `TrainConfig`, `EvalProtocol`, `EvalConfig` and
`RunConfig`: nothing here writes a default or a help text. It gives:
- the options of `dlm train`, `dlm eval` and `dlm run` (dlm/cli.py builds them from `for_command`), and so
  `python main.py`, which hands its arguments to `dlm run`;
- the keys of plan files (`RUN_SETTINGS`: every setting `dlm run` takes) and the command lines `dlm plan --dry-run`
  prints (`command_line`);
- the configs a command runs with (`train_config`, `eval_config`, `run_config`), built from setting values
  (name -> value, as flags or a plan give them; what is missing takes its default).

Adding a setting is one field in dlm/config.py with `setting(default, help, commands)`; every command, main.py and
plan files take it, and the code reads it as an attribute of the config.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, fields, replace

from dlm.config import (
    DataChoice,
    EvalConfig,
    EvalProtocol,
    RunConfig,
    Sources,
    TrainConfig,
    is_api_model,
)
from dlm.errors import UserError, suggest
from dlm.files import check_data_dir, check_output_file, check_writable

# the classes whose fields are settings, in the order --help lists them
SETTING_CLASSES = (Sources, DataChoice, TrainConfig, EvalProtocol, EvalConfig, RunConfig)


@dataclass(frozen=True)
class Setting:
    """One field of a config class seen as a command-line option and plan key."""

    name: str
    kind: type  # str | int | float | bool: the type of the value (of each value, for `many`)
    default: object
    help: str
    commands: frozenset
    many: bool  # several values, as the study plan writes them: --datasets A B
    required: bool
    envvar: str | None
    aliases: dict  # {command: (extra names, hidden from --help)}
    command_defaults: dict
    scores: bool  # part of what an evaluation-only run is (its plan key); the rest is about training
    split: str | None  # the option is text split on this character into a tuple
    owner: type  # the config class that declares it

    def default_for(self, command: str):
        return self.command_defaults.get(command, self.default)

    def spellings(self) -> list[str]:
        return spellings(self.name)

    def hidden_aliases(self, command: str) -> tuple[str, ...]:
        return tuple(self.aliases.get(command, ()))


def spellings(name: str) -> list[str]:
    """--max_steps and --max-steps: the study plan's underscores, and the dashes of most CLIs."""
    return [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])


def _kind(annotation) -> tuple[type, bool]:
    """(value type, takes several values) of a field annotation like `int | None` or `tuple[str, ...] | None`."""
    args = (
        [a for a in typing.get_args(annotation) if a is not type(None)]
        if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
        else [annotation]
    )
    (kind,) = args
    if typing.get_origin(kind) is tuple:
        return typing.get_args(kind)[0], True
    return kind, False


def collect(classes=SETTING_CLASSES) -> tuple[Setting, ...]:
    """Every setting field of `classes` (an inherited field once, from the class that declares it)."""
    out: dict[str, Setting] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            meta = f.metadata
            if "commands" not in meta or f.name in out:  # internal fields; inherited ones are seen once
                continue
            kind, many = _kind(hints[f.name])
            if meta["split"]:  # --tasks a,b: one text on the command line
                kind, many = str, False
            owner = next(c for c in reversed(cls.__mro__) if f.name in getattr(c, "__dataclass_fields__", {}))
            out[f.name] = Setting(
                f.name,
                kind,
                f.default,
                meta["help"],
                meta["commands"],
                many,
                meta["required"],
                meta["envvar"],
                meta["aliases"],
                meta["command_defaults"],
                meta["scores"],
                meta["split"],
                owner,
            )
    return tuple(out.values())


SETTINGS = collect()
BY_NAME = {s.name: s for s in SETTINGS}
RUN_SETTINGS = tuple(s for s in SETTINGS if "run" in s.commands)  # python main.py, dlm run, plan files
DEFAULTS = {s.name: s.default for s in RUN_SETTINGS}


def for_command(command: str) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if command in s.commands)


def evaluates_only(values: dict) -> bool:
    """A run that trains nothing: `--evaluation_only`, or `--max_steps 0` (the study plan's spelling)."""
    s = {**DEFAULTS, **values}
    return bool(s.get("evaluation_only")) or s.get("max_steps") == 0


# --- values -> configs ---------------------------------------------------------------------------------------
def filled(values: dict, command: str) -> dict:
    """`values` with every setting of `command` that is missing at its default; an unknown name is refused."""
    allowed = {s.name: s.default_for(command) for s in for_command(command)}
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise suggest(unknown[0], allowed, "setting", f"dlm {command} --help lists them")
    s = {**allowed, **values}
    if not s["model"] or not str(s["model"]).strip():
        raise UserError("--model is required, e.g. --model gpt2 (or a checkpoint dir)")
    return s


def check_dirs(s: dict) -> None:
    """The folders a command writes into, checked before any work (not after hours of training)."""
    check_writable(s["results_dir"], "--results-dir")
    if s.get("output_dir"):
        check_writable(s["output_dir"], "--output_dir")
    if s.get("output_path"):  # lm-eval's spelling: a folder, or a FILE.json whose name the files are built on
        path = str(s["output_path"])
        if path.lower().endswith(".json"):
            check_output_file(path, ".json", "--output_path")
        else:
            check_writable(path, "--output_path")
    check_data_dir(s.get("data_dir"))


def _of(cls, values: dict) -> dict:
    """The values of `cls`'s own settings (and inherited ones), typed as the dataclass holds them."""
    out = {}
    for f in fields(cls):
        if "commands" not in f.metadata or f.name not in values:
            continue
        value = values[f.name]
        if f.metadata["split"] and isinstance(value, str):
            value = tuple(part.strip() for part in value.split(f.metadata["split"]) if part.strip())
        elif isinstance(value, list):
            value = tuple(value)
        out[f.name] = value
    return out


def protocol(values: dict) -> EvalProtocol:
    """The evaluation protocol of these values: built once per command and passed whole to every scorer."""
    return EvalProtocol(**_of(EvalProtocol, values))


def train_config(values: dict, command: str = "train", evaluation: EvalProtocol | None = None) -> TrainConfig:
    """Setting values (missing ones default) -> a validated TrainConfig. `evaluation`: the protocol of the run it
    belongs to (`dlm run`), else built from the same values (`dlm train`: SFT prompts and curve points)."""
    s = filled(values, command)
    check_dirs(s)
    if command == "train" and s["mode"] == "pretrain" and (s.get("chat_template") or s.get("system_instruction")):
        raise UserError(
            "--chat-template and --system-instruction shape SFT prompts; continued pretraining reads "
            "plain text: drop them, or use --mode sft"
        )
    return TrainConfig(**_of(TrainConfig, s), protocol=evaluation or protocol(s)).validate()


def eval_config(values: dict, command: str = "eval") -> EvalConfig:
    """`dlm eval` setting values -> a validated EvalConfig."""
    s = filled(values, command)
    check_dirs(s)
    return EvalConfig(**_of(EvalConfig, s), protocol=protocol(s)).validate()


def run_config(values: dict, command: list[str] | None = None, tags: dict | None = None) -> RunConfig:
    """`dlm run` / main.py / plan setting values -> a RunConfig: one protocol, shared by training (SFT prompts,
    curve points) and the evaluation; its tasks are chosen later from the data's domain when none are given."""
    s = filled(values, "run")
    check_dirs(s)
    evaluation = EvalConfig(**_of(EvalConfig, s), protocol=protocol(s))
    evaluation.validate_sources()
    evaluation.protocol.validate(served=is_api_model(evaluation.model))
    only = evaluates_only(s)
    choice = DataChoice(**_of(DataChoice, s))
    data = choice.data if choice.has_data() or not only else None  # training without data fails here, with the fix
    train = None if only else train_config(s, command="run", evaluation=evaluation.protocol)
    return RunConfig(
        **_of(RunConfig, s),
        train=train,
        evaluation=evaluation,
        data=data,
        command=tuple(command) if command else None,
        tags=dict(tags or {}),
    )


def with_model(cfg: EvalConfig, model: str, **changes) -> EvalConfig:
    """The same evaluation of another model (a checkpoint, the trained output dir)."""
    return replace(cfg, model=model, **changes)


# --- configs -> command lines --------------------------------------------------------------------------------
def command_line(values: dict, program: tuple[str, ...] = ("dlm", "run")) -> list[str]:
    """The argv that reproduces `values` (settings left at their defaults are omitted)."""
    argv = list(program)
    s = {**DEFAULTS, **values}
    only = evaluates_only(s)
    for setting in RUN_SETTINGS:
        value = s[setting.name]
        if value is None or value == setting.default or (only and not setting.scores):
            continue
        if setting.split and not isinstance(value, str):
            value = setting.split.join(value)
        if setting.kind is bool:
            argv.append(f"--{setting.name}")
        elif setting.many:
            argv += [f"--{setting.name}", *("None" if v is None else _plain(v) for v in value)]
        else:
            argv += [f"--{setting.name}", _plain(value)]
    return argv


def _plain(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
