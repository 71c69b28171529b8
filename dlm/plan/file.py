"""Plan files: read, check and expand an experiment plan (plans/*.yaml) into keyed runs (running them:
study/plan_runner.py).

A plan holds `defaults` (settings for every run), `matrix` (one mapping, or a list of them, of {setting: [values]},
expanded as a cartesian product: models x approaches x datasets x fractions ...) and `runs` (explicit runs, e.g. the
steps of sequential training). Settings are the names of study/settings.py's table plus four plan words: `name`, `approach`
(zero-shot | pretrain | sft), `data` ("id", "id:config" or a mapping of dataset flags, for mixtures) and `from`
(start from that earlier run's checkpoint: pretrain -> SFT). Each run's key is a hash of its resolved settings
(how and where it is run left out), so a re-run recognises finished runs by the key stored in their records.
Every mistake in a plan file is reported as file:line:column. `dlm plan FILE --set KEY=VALUE` overrides a setting
in every run where it means something (study/plan_overrides.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path

from dlm.data.fingerprint import data_source
from dlm.data.table import lookup
from dlm.errors import UserError, suggest
from dlm.plan.yaml_reader import at as _at
from dlm.plan.yaml_reader import read_plan_text, read_yaml
from dlm.settings import BY_NAME, DEFAULTS, evaluates_only, run_config
from dlm.study.cycle import check_tasks

PLAN_KEYS = ("name", "description", "checkpoints_dir", "seeds", "defaults", "matrix", "runs", "slurm")
SLURM_KEYS = ("partition", "time_min", "account", "cpus_per_task", "mem_gb", "cluster")
SLURM_NUMBERS = {"time_min": (1, 525_600), "cpus_per_task": (1, 1024), "mem_gb": (1, 65_536)}  # a year; a node
PLAN_WORDS = ("name", "approach", "data", "from")
PLAN_APPROACHES = ("zero-shot", "pretrain", "sft")
# A plan bigger than any study (3 models x 3 approaches x 30 datasets x 10 seeds is 2,700 runs) is a typo, and
# expanding and checking it would take minutes of CPU before anything useful happens
MAX_RUNS = 10_000
MAX_SEEDS = 1_000
DATA_FLAGS = ("dataset", "dataset_config", "datasets", "dataset_configs", "mixture_rates")
# settings that change where or how a run is done, not what it measures: left out of the run key
NOT_IN_KEY = (
    "results_dir",
    "output_dir",
    "resume",
    "overwrite",
    "report_to",
    "eval_batch_size",
    "data_dir",
    "output_path",
    "log_samples",
)
WRITTEN_PATHS = ("output_dir", "results_dir")  # folders a plan's runs write into: checked by _inside_here


@dataclass
class PlanRun:
    name: str
    settings: dict  # setting values (study/settings.py); defaults not filled in
    key: str
    after: str | None = None  # the plan run whose checkpoint this one starts from

    @property
    def trains(self) -> bool:
        return not evaluates_only(self.settings)


@dataclass
class Plan:
    name: str
    file: str
    runs: list[PlanRun]
    slurm: dict = field(default_factory=dict)  # `dlm plan --executor slurm`: partition, time_min, account, ...
    seeds: int = 1  # training seeds per setup (`seeds:`), for the power of its comparisons


def run_key(settings: dict, upstream_key: str | None, data_dir: str | None, sources: dict | None = None) -> str:
    """`sources`: {data dir: data_source} already computed while reading this plan (hashing the snapshots once
    per plan, not once per run: a plan of thousands of runs answers in seconds)."""
    s = {**DEFAULTS, **settings}
    if evaluates_only(s):  # what is evaluated, never how it would have been trained
        s = {k: s[k] for k in DEFAULTS if BY_NAME[k].scores}
    s = {k: v for k, v in s.items() if k not in NOT_IN_KEY}
    if upstream_key:
        s["model"] = f"plan-run:{upstream_key}"
    sources = {} if sources is None else sources
    if data_dir not in sources:
        sources[data_dir] = data_source(data_dir)
    s["data_source"] = sources[data_dir]  # samples/ scores are not hub scores
    return hashlib.sha256(json.dumps(s, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_plan(
    file: str,
    data_dir: str | None = None,
    results_dir: str = DEFAULTS["results_dir"],
    checkpoints_dir: str | None = None,
    overrides: dict[str, dict] | None = None,
) -> Plan:
    """Parse, check (errors name file:line:column) and expand a plan file into keyed runs, in order.
    `overrides`: `--set` items as study/plan_overrides.py's parse_overrides returns them."""

    forced = overrides or {}
    path = Path(file)
    doc = read_yaml(read_plan_text(file), file)
    if not isinstance(doc, dict):
        raise _at(file, getattr(doc, "mark", None), "a plan is a mapping with `defaults`, `matrix` and/or `runs`")
    for key in doc:
        if key not in PLAN_KEYS:
            raise _at(file, doc.key_marks[key], unknown_name(key, PLAN_KEYS, "plan section"))
    name = str(doc.get("name") or path.stem)
    if doc.get("checkpoints_dir") is not None:
        _inside_here(doc["checkpoints_dir"], file, doc.marks["checkpoints_dir"], "checkpoints_dir")
    ckpt_dir = checkpoints_dir or doc.get("checkpoints_dir") or f"checkpoints/{_slug(name)}"  # one path component
    defaults = read_layer(doc.get("defaults") or {}, file, "defaults")

    entries: list[tuple[dict, str | None, object]] = []  # (settings, explicit name, mark for errors)
    matrices = doc.get("matrix") or []
    for matrix in matrices if isinstance(matrices, list) else [matrices]:
        if not isinstance(matrix, dict):
            raise _at(file, getattr(matrix, "mark", doc.key_marks.get("matrix")), "a matrix maps settings to lists")
        prefix = matrix.get("name")  # optional: names this matrix's runs "<name>-<values>"
        if prefix is not None and not isinstance(prefix, str):
            raise _at(file, matrix.marks["name"], "a matrix's `name` is a word that prefixes its runs' names")
        axes = {}
        for key, values in matrix.items():
            if key == "name":
                continue
            items = values if isinstance(values, list) else [values]
            marks = getattr(values, "marks", None) or [matrix.marks[key]] * len(items)
            axes[key] = [
                read_layer({key: v}, file, "matrix", marks={key: m}, key_marks=matrix.key_marks)
                for v, m in zip(items, marks)
            ]
        for combo in product(*axes.values()):
            merged = dict(defaults)
            for layer in combo:
                merged.update(layer)
            varying = [k for k in axes if len(axes[k]) > 1] or list(axes)  # name runs by what differs
            label = "-".join(
                ([prefix] if prefix else []) + [_label(k, layer) for k, layer in zip(axes, combo) if k in varying]
            )
            entries.append((merged, label, matrix.mark))
    runs = doc.get("runs") or []
    if not isinstance(runs, list):
        raise _at(file, doc.marks["runs"], "`runs` is a list of runs (- name: ...)")
    for raw in runs:
        layer = read_layer(raw, file, "run")
        entries.append(({**defaults, **layer}, layer.pop("name", None), raw.mark))
    if not entries:
        raise UserError(f"{file}: the plan has no runs; add a `matrix` or a `runs` list (see plans/)")
    entries = [(overridden(settings, forced), label, mark) for settings, label, mark in entries]
    if doc.get("seeds") is not None:
        entries = _with_seeds(entries, doc["seeds"], file, doc.marks["seeds"])

    if len(entries) > MAX_RUNS:
        raise UserError(
            f"{file}: the plan expands to {len(entries):,} runs, more than any study runs (at most {MAX_RUNS:,}); "
            "check `seeds` and the matrix"
        )
    planned: list[PlanRun] = []
    by_name: dict[str, PlanRun] = {}
    by_key: dict[str, PlanRun] = {}
    by_output: dict[str, PlanRun] = {}
    names_at: dict[str, object] = {}
    sources: dict = {}  # data dir -> data_source, computed once for the plan
    for settings, label, mark in entries:
        settings = {k: v for k, v in settings.items() if k != "name"}
        settings.setdefault("results_dir", results_dir)
        if data_dir:
            settings.setdefault("data_dir", data_dir)
        upstream = None
        after = settings.pop("from", None)
        if after is not None:
            upstream = by_name.get(after)
            if upstream is None or not upstream.trains:
                raise _at(
                    file,
                    mark,
                    f"`from: {after}` must name an earlier training run of this plan"
                    f" (earlier runs: {', '.join(by_name) or 'none'})",
                )
            settings["model"] = upstream.settings["output_dir"]
            after = upstream.name  # a twin of an earlier run is known by that run's name
        if not settings.get("model"):
            raise _at(file, mark, "this run has no model; set `model:` in defaults, the matrix or the run")
        key = run_key(settings, upstream.key if upstream else None, settings.get("data_dir"), sources)
        twin = by_key.get(key)
        if twin is not None:  # the same run twice (e.g. zero-shot under several fractions): run it once
            by_name.setdefault(label or key, twin)
            continue
        run_name = label or key
        if run_name in by_name:  # names pick runs (`from:`, plan children, logs): one name, one run
            raise _at(
                file,
                mark,
                f"two different runs are named '{run_name}' (the first at line {names_at.get(run_name, '?')}); "
                "give each run its own `name:`",
            )
        run = PlanRun(run_name, settings, key, after)
        if run.trains and not settings.get("output_dir"):
            settings["output_dir"] = str(Path(ckpt_dir) / f"{_slug(run_name)}-{key[:8]}")
        elif run.trains and any(k not in NOT_IN_KEY for k in forced):  # the plan's output_dir holds the plan's run
            settings["output_dir"] = f"{settings['output_dir'].rstrip('/')}-{key[:8]}"
        _check_run(run, file, mark)
        if run.trains:
            shared = by_output.setdefault(settings["output_dir"], run)
            if shared is not run:
                raise _at(
                    file,
                    mark,
                    f"runs '{shared.name}' and '{run_name}' both write output_dir "
                    f"{settings['output_dir']}; give each run its own (or leave output_dir out)",
                )
        planned.append(run)
        by_name[run_name], by_key[key] = run, run
        names_at[run_name] = mark.line + 1 if mark is not None else "?"
    slurm = doc.get("slurm") or {}
    if not isinstance(slurm, dict) or any(k not in SLURM_KEYS for k in slurm):
        bad = next((k for k in slurm if k not in SLURM_KEYS), None) if isinstance(slurm, dict) else None
        raise _at(
            file,
            doc.key_marks.get("slurm"),
            f"`slurm:` maps {', '.join(SLURM_KEYS)} to values" + (f" (got '{bad}')" if bad else ""),
        )
    for key, value in slurm.items():
        bounds = SLURM_NUMBERS.get(key)
        fits = (
            isinstance(value, int) and not isinstance(value, bool) and bounds[0] <= value <= bounds[1]
            if bounds
            else isinstance(value, str) and value.strip()
        )
        if not fits:
            want = f"a whole number from {bounds[0]} to {bounds[1]:,}" if bounds else "a name"
            raise _at(file, slurm.marks.get(key), f"`slurm: {key}` must be {want} (got {value!r})")
    return Plan(name, str(file), planned, dict(slurm), len(doc.get("seeds") or [1]))


def overridden(settings: dict, forced: dict[str, dict]) -> dict:
    """One run's settings with the --set overrides: a setting that only shapes training (max_steps, learning_rate,
    batch_size ...) is set in training runs alone, so an evaluation-only run stays one (and keeps its key);
    what an evaluation uses (model, limit, num_fewshot, tasks, data ...) is set in every run. A `from:` run
    still starts from its upstream run's checkpoint (`model` is replaced after this)."""
    if not forced:
        return settings
    evaluation_only = evaluates_only(settings)
    out = dict(settings)
    for key, layer in forced.items():
        if evaluation_only and key != "data" and not BY_NAME[key].scores:
            continue
        out.update(layer)
    return out


def _with_seeds(entries: list, seeds, file: str, mark) -> list:
    """`seeds: [1, 2, 3]`: every training run once per seed (`<name>-seed<k>`); a `from:` run starts from the
    replica of its upstream run with the same seed. Evaluation-only runs do not depend on a seed: run once."""
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32 for x in seeds)
    ):
        raise _at(file, mark, "`seeds` is a list of integers in [0, 2^32), e.g. seeds: [1, 2, 3]")
    if len(seeds) > MAX_SEEDS:
        raise _at(file, mark, f"`seeds` lists {len(seeds):,} seeds; at most {MAX_SEEDS:,} (a study uses 3 to 10)")
    out = []
    for settings, label, entry_mark in entries:
        if evaluates_only(settings):
            out.append((settings, label, entry_mark))
            continue
        for seed in seeds:
            replica = {**settings, "seed": seed}
            if replica.get("from"):
                replica["from"] = f"{replica['from']}-seed{seed}"
            out.append((replica, f"{label}-seed{seed}" if label else f"seed{seed}", entry_mark))
    return out


def _check_run(run: PlanRun, file: str, mark) -> None:
    """Catch a bad run when the plan is read, not hours later when its turn comes (no I/O beyond the table)."""

    try:
        config = run_config(run.settings)
        for part in config.data.parts if config.data else []:
            lookup(part.dataset, part.config)  # a misspelt config fails now, not when the run's turn comes
        if config.protocol.tasks:
            check_tasks(list(config.protocol.tasks), config.evaluation.allow_code_execution)
    except UserError as err:
        raise _at(file, mark, f"run '{run.name}': {err}") from None


def unknown_name(name, choices, what: str) -> str:

    return str(suggest(str(name), choices, what))


def read_layer(raw, file: str, where: str, marks: dict | None = None, key_marks: dict | None = None) -> dict:
    """One mapping of plan settings, checked and turned into setting values (approach/data expanded)."""
    if not isinstance(raw, dict):
        raise _at(file, getattr(raw, "mark", None), f"expected a mapping of settings in {where} (name: value)")
    marks = marks or getattr(raw, "marks", {})
    key_marks = key_marks or getattr(raw, "key_marks", marks)
    out: dict = {}
    for key, value in raw.items():
        mark = marks.get(key)
        if key not in BY_NAME and key not in PLAN_WORDS:
            raise _at(file, key_marks.get(key), unknown_name(key, [*BY_NAME, *PLAN_WORDS], "setting"))
        if key in ("name", "from"):
            if where != "run" and not (where == "matrix" and key == "name"):
                raise _at(file, key_marks.get(key), f"`{key}` belongs to an entry of `runs`, not to {where}")
            if not isinstance(value, str) or not value:
                raise _at(file, mark, f"`{key}` must be a run name")
            out[key] = value
        elif key == "approach":
            if value not in PLAN_APPROACHES:
                raise _at(
                    file,
                    mark,
                    f"approach must be one of {', '.join(PLAN_APPROACHES)} (got {value!r}); "
                    "sequential runs use `from: <run>`, multitask runs a mixture in `data`",
                )
            out.update({"evaluation_only": True} if value == "zero-shot" else {"mode": value, "evaluation_only": False})
            out["approach"] = value
        elif key == "data":
            out.update(_data(value, file, mark))
        else:
            out[key] = _value(BY_NAME[key], value, file, mark)
            if key in WRITTEN_PATHS and out[key] is not None:
                _inside_here(out[key], file, mark, key)
    if any(k in out for k in DATA_FLAGS):  # a layer that names data replaces all data of the layers below
        out = {**{k: None for k in DATA_FLAGS}, **out}
    out.pop("approach", None)
    return out


def _inside_here(value, file: str, mark, key: str) -> None:
    """A folder a plan makes dlm write into is relative to where the plan runs and stays below it (a plan file may
    come from someone else: it cannot aim dlm's writes at ~/.ssh or /); a folder elsewhere is a flag you type."""
    path = Path(str(value))
    if not str(value).strip() or path.is_absolute() or ".." in path.parts or str(value).startswith("~"):
        flag = {"results_dir": "--results-dir", "checkpoints_dir": "--checkpoints-dir"}.get(key, "--checkpoints-dir")
        raise _at(
            file,
            mark,
            f"`{key}: {value}` must be a relative path below the folder the plan runs in (no '..', '~' or '/' "
            f"at the start); to write elsewhere, pass {flag} on the command line",
        )


def _data(value, file: str, mark) -> dict:
    if isinstance(value, str):
        dataset, _, config = value.partition(":")
        return {"dataset": dataset, "dataset_config": config or None}
    if isinstance(value, dict):
        for key in value:
            if key not in DATA_FLAGS:
                raise _at(file, value.key_marks[key], unknown_name(key, DATA_FLAGS, "data setting"))
        return {k: _value(BY_NAME[k], v, file, value.marks[k]) for k, v in value.items()}
    raise _at(file, mark, 'data is "id", "id:config" or a mapping (datasets: [A, B], mixture_rates: [...])')


def _value(flag, value, file: str, mark):
    if flag.many:
        items = value if isinstance(value, list) else [value]
        item_marks = getattr(value, "marks", None) or [mark] * len(items)
        return [_scalar(flag, v, file, m, allow_none=True) for v, m in zip(items, item_marks)]
    return _scalar(flag, value, file, mark, allow_none=flag.default is None)


def _scalar(flag, value, file: str, mark, allow_none: bool):
    if value is None:
        if allow_none:
            return None
        raise _at(file, mark, f"`{flag.name}` needs a value")
    is_bool = isinstance(value, bool)
    if flag.kind is bool and is_bool:
        return value
    if flag.kind is int and isinstance(value, int) and not is_bool:
        return value
    if flag.kind is float and isinstance(value, (int, float)) and not is_bool:
        return float(value)
    if flag.kind is str and isinstance(value, (str, int, float)) and not is_bool:
        return str(value)
    word = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[flag.kind]
    raise _at(file, mark, f"`{flag.name}` must be {word} (got {value!r})")


def _label(key: str, layer: dict) -> str:
    """A short readable name for one matrix value: 'gpt2', 'sft', 'openai/gsm8k:main', 'data_fraction=0.25'."""
    if key == "model":
        return Path(str(layer["model"])).name
    if key == "approach":
        return "zero-shot" if layer.get("evaluation_only") else str(layer.get("mode"))
    if key == "data" or key in DATA_FLAGS:
        datasets = layer.get("datasets") or [layer.get("dataset")]
        configs = layer.get("dataset_configs") or [layer.get("dataset_config")] * len(datasets)
        return "+".join(d + (f":{c}" if c and c != "None" else "") for d, c in zip(datasets, configs))
    return f"{key}={layer.get(key)}"


def _slug(text: str) -> str:

    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("._")[:80] or "run"
