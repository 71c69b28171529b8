"""`dlm plan FILE --set KEY=VALUE`: one setting overridden in every run of a plan where it applies, e.g.

    dlm plan plans/phase3_finetune.yaml --set model=tiny-gpt2 --set max_steps=20 --set limit=30

An overridden run is another run: its key (study/plan_file.py's run_key) hashes the overridden settings, so the
records of the plan as written are not taken for it, and a training run that names its own output_dir in the plan
gets that dir with its key appended. Items are checked (as a plan file's values are) before anything runs; which
runs each one reaches is study/plan_file.py's `overridden`.
"""

from __future__ import annotations

from contextlib import suppress

from dlm.data.table import lookup
from dlm.errors import UserError
from dlm.plan.file import DATA_FLAGS, read_layer, read_yaml, unknown_name
from dlm.plan.yaml_reader import MAX_SET_CHARS
from dlm.settings import BY_NAME, RUN_SETTINGS

# --set keys that name something other than a setting of every run, and where to say it instead
NOT_SETTABLE = {
    "results_dir": "--results-dir",
    "data_dir": "--data-dir",
    "output_dir": "the plan file (each training run writes its own; the default is per run)",
    "evaluation_only": "the plan file (`approach: zero-shot`)",
    "resume": "nothing: a plan resumes its runs itself",
    "overwrite": "--overwrite on one `dlm run`",
    "name": "the plan file",
    "from": "the plan file",
    "approach": "the plan file",
}


def parse_overrides(items: list[str]) -> dict[str, dict]:
    """`--set KEY=VALUE` items -> {KEY: setting values}. KEY is a setting of `dlm run` (study/settings.py) or the
    plan word `data`; VALUE is read as a YAML scalar (20, 0.5, true, gpt2; [a, b] for the list settings) and checked
    as a plan file's value is. A bad item raises UserError naming the fix, before any run starts."""

    settable = [s.name for s in RUN_SETTINGS if s.name not in NOT_SETTABLE] + ["data"]
    out: dict[str, dict] = {}
    for item in items:
        key, eq, text = str(item).partition("=")
        key = key.strip()
        where = f"--set {item}" if len(item) <= 100 else f"--set {item[:60]}..."
        if len(item) > MAX_SET_CHARS:
            raise UserError(f"{where}: the item is {len(item):,} characters long (at most {MAX_SET_CHARS:,})")
        if not eq or not key:
            raise UserError(f"{where}: write --set KEY=VALUE, e.g. --set max_steps=20")
        if key in NOT_SETTABLE:
            raise UserError(f"{where}: `{key}` cannot be set for every run; use {NOT_SETTABLE[key]}")
        if key not in settable:
            raise UserError(f"--set: {unknown_name(key, settable, 'setting')}")
        # an empty value puts an optional setting back to none (`--set limit=`: full test sets); a run needs a model
        if not text.strip() and (key in ("model", "data") or BY_NAME[key].default is not None):
            raise UserError(
                f"{where}: `{key}` needs a value, e.g. --set {key}=" + ("tiny-gpt2" if key == "model" else "VALUE")
            )
        value = read_yaml(text, where) if text.strip() else None  # `--set limit=`: back to the default (none)
        if isinstance(value, str) and key in BY_NAME and BY_NAME[key].kind is float:
            with suppress(ValueError):  # YAML 1.1 reads 1e-4 as a string (it wants 1.0e-4); typed here, a number
                value = float(value)
        if isinstance(value, dict):
            raise UserError(f"{where}: the value is one word, number or [list]; quote a value holding ': '")
        layer = read_layer({key: value}, where, "--set", marks={key: None})
        if key == "max_steps" and layer["max_steps"] < 1:
            raise UserError(
                f"{where}: --set max_steps takes 1 or more; zero-shot runs belong in the plan file "
                "(`approach: zero-shot`)"
            )
        try:  # a misspelled dataset is named here, not as a mistake of every run of the plan
            for dataset in filter(None, [layer.get("dataset"), *(layer.get("datasets") or [])]):
                lookup(dataset)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        if key in out and out[key] != layer:
            raise UserError(f"{where}: `{key}` is set twice with different values; keep one --set {key}=...")
        out[key] = layer
    given = [k for k in out if k == "data" or k in DATA_FLAGS]
    if given:  # `--set datasets=[a, b] --set mixture_rates=[0.5, 0.5]` is one choice of data, replacing the plan's
        merged = dict.fromkeys(DATA_FLAGS)
        for k in given:
            merged.update({flag: v for flag, v in out.pop(k).items() if v is not None or flag == k})
        out["data"] = merged
    return out
