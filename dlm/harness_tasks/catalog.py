"""What tasks exist, read straight from the YAML files (no lm-eval import, so `dlm tasks list` is instant).

`list_tasks()` feeds `dlm tasks list`; `resolve_tasks(names)` checks what a user typed before any model or data
is loaded (unknown names get close suggestions; lm-eval's built-in tasks are accepted too); `leaf_tasks(name)`
expands a group. The YAML rules mirror lm-eval's index: every `*.yaml` below TASKS_DIR is a task (`task:`) or a
group (`group:`); `include:` files are merged first and local keys win; files without the .yaml suffix are
templates.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from dlm.errors import UserError
from dlm.words import plural

TASKS_DIR = Path(__file__).resolve().parent
DOMAIN_GROUPS = {"finance": "dlm_finance", "math": "dlm_math", "general": "dlm_general"}
# Groups that are one benchmark split into parts: their aggregate is the benchmark's score and stands for the parts
# in comparisons. Every other group (a domain, GLUE, a family) is a list of tasks, each of which counts once.
BENCHMARK_GROUPS = ("dlm_mmlu", "dlm_deepmind_math")
PREFIX = "dlm_"  # every name except the user's `fin_sentiment` group, so none shadows an lm-eval built-in
TWIN_CLASS = "dlm.harness_tasks.twins.GenerativeTwin"  # the `class:` of every generative twin (harness_tasks/twins.py)
TWIN_SUFFIX = "_gen"  # dlm_fpb -> dlm_fpb_gen, fin_sentiment -> fin_sentiment_gen


@dataclass(frozen=True)
class TaskInfo:
    name: str
    kind: str  # "task" | "group"
    family: str  # folder under harness_tasks/ ("suite" for files at the top)
    path: Path
    dataset: str | None = None  # "hub_id[:config]"
    metrics: tuple[str, ...] = ()
    num_fewshot: int = 0
    fewshot_split: str | None = None
    version: str | None = None
    members: tuple[str, ...] = ()  # groups: direct children
    unsafe_code: bool = False
    twin: bool = False  # a generative twin (task), or a group of twins
    config: dict = field(default_factory=dict, repr=False, compare=False)

    def row(self) -> dict:
        """One line of `dlm tasks list`."""
        shots = str(self.num_fewshot) + (f" (pool: {self.fewshot_split})" if self.fewshot_split else "")
        dataset = self.dataset if self.kind == "task" else plural(len(leaf_tasks(self.name)), "task")
        return {
            "name": self.name,
            "kind": self.kind,
            "is_group": self.kind == "group",
            "family": self.family,
            "dataset": dataset,
            "metric": ", ".join(self.metrics),
            "shots": shots if self.kind == "task" else "",
            "version": self.version,
        }


class _TaskYamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """Safe YAML (libyaml's parser where PyYAML has it: the catalog's 180 files load 8x faster) with lm-eval's
    `!function x.y` tag read as the plain string 'x.y' (nothing is imported)."""


_TaskYamlLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


def read_yaml(path: Path) -> dict:
    """A task/group file with its includes merged, as lm-eval reads it; `!function x.y` stays the string 'x.y'."""
    config = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskYamlLoader) or {}
    includes = config.pop("include", [])
    merged: dict = {}
    for include in [includes] if isinstance(includes, str) else includes:
        merged.update(read_yaml(path.parent / include))
    merged.update(config)
    return merged


def _metric_names(config: dict) -> tuple[str, ...]:
    if "aggregate_metric_list" in config:
        return tuple(str(m["metric"]) for m in config["aggregate_metric_list"])
    names = tuple(str(m["metric"]) for m in config.get("metric_list") or [])
    if config.get("class") == TWIN_CLASS:
        names += ("missing",)
    filters = [f["name"] for f in config.get("filter_list") or []]
    if filters:
        names = tuple(f"{n} ({'/'.join(filters)})" for n in names)
    return names


def _info(path: Path, config: dict) -> TaskInfo:
    relative = path.relative_to(TASKS_DIR)
    family = relative.parts[0] if len(relative.parts) > 1 else "suite"
    version = (config.get("metadata") or {}).get("version")
    common = dict(
        family=family,
        path=path,
        metrics=_metric_names(config),
        config=config,
        version=None if version is None else str(version),
    )
    if "group" in config:  # lm-eval's rule: a file with `group` is a group even if it also has `task`
        members = config.get("task") or []
        names = tuple(m if isinstance(m, str) else m.get("task") or m.get("group") for m in members)
        return TaskInfo(name=str(config["group"]), kind="group", members=names, **common)
    kwargs = config.get("dataset_kwargs") or {}
    dataset = kwargs.get("hub_id") or config.get("dataset_path")
    if dataset and kwargs.get("hub_config"):
        dataset = f"{dataset}:{kwargs['hub_config']}"
    if dataset and kwargs.get("where"):
        dataset += "[" + ",".join(f"{k}={v}" for k, v in kwargs["where"].items()) + "]"
    return TaskInfo(
        name=str(config["task"]),
        kind="task",
        dataset=dataset,
        num_fewshot=int(config.get("num_fewshot") or 0),
        fewshot_split=config.get("fewshot_split"),
        unsafe_code=bool(config.get("unsafe_code")),
        twin=config.get("class") == TWIN_CLASS,
        **common,
    )


@lru_cache(maxsize=1)
def catalog() -> dict[str, TaskInfo]:
    """Every task and group under TASKS_DIR by name. A file that does not parse raises (it would otherwise vanish
    silently from lm-eval's index)."""
    out: dict[str, TaskInfo] = {}
    for path in sorted(TASKS_DIR.rglob("*.yaml")):
        if "__pycache__" in path.parts:
            continue
        config = read_yaml(path)
        if "group" not in config and "task" not in config:
            raise ValueError(f"{path}: neither `task:` nor `group:`; lm-eval would skip it")
        info = _info(path, config)
        if info.name in out:
            raise ValueError(f"{path}: name '{info.name}' is also defined in {out[info.name].path}")
        out[info.name] = info
    return out


def twin_of(name: str) -> str | None:
    """The multiple-choice task a generative twin belongs to (dlm_fpb_gen -> dlm_fpb, fin_sentiment_gen ->
    fin_sentiment); None for anything else. Published numbers are filed under the sibling's name."""
    ours = catalog()
    info = ours.get(name)
    if info is None or not name.endswith(TWIN_SUFFIX) or name[: -len(TWIN_SUFFIX)] not in ours:
        return None
    if info.kind == "task":
        return name[: -len(TWIN_SUFFIX)] if info.twin else None
    return name[: -len(TWIN_SUFFIX)] if all(ours[leaf].twin for leaf in leaf_tasks(name)) else None


def twin_for(name: str) -> str | None:
    """The generative twin of a multiple-choice task or group, when there is one."""
    twin = name + TWIN_SUFFIX
    return twin if twin in catalog() and twin_of(twin) == name else None


def list_tasks() -> list[dict]:
    """Rows for `dlm tasks list`: groups first (suite, then by family), then tasks by family and name."""
    infos = sorted(catalog().values(), key=lambda i: (i.kind != "group", i.family != "suite", i.family, i.name))
    return [info.row() for info in infos]


def leaf_tasks(name: str) -> list[str]:
    """The tasks a name stands for: itself for a task, all nested members for a group (our catalog only)."""
    info = catalog()[name]
    if info.kind == "task":
        return [name]
    return [leaf for member in info.members for leaf in leaf_tasks(member)]


def comparison_tasks(names) -> list[str]:
    """The tasks that count once each in comparisons (results/matrix.py `comparison_units`): a benchmark split into
    parts stands as its group, any other group as its tasks; a generative twin stands for itself."""
    ours = catalog()
    out: list[str] = []
    for name in names:
        if name not in ours:
            continue
        if ours[name].kind == "task" or name in BENCHMARK_GROUPS:
            out.append(name)
        else:
            out += comparison_tasks(ours[name].members)
    return list(dict.fromkeys(out))


def _builtin_names() -> set[str]:
    """lm-eval's own task/group/tag names (indexing them takes several seconds, so only on demand)."""

    from lm_eval.tasks import (
        TaskManager,  # lazy: 0.8 s of imports that `dlm tasks list` does not need
    )

    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    return set(TaskManager(include_defaults=True).all_tasks)


def resolve_tasks(names) -> list[str]:
    """Validated task/group names, in the order given. Domain words map to their group (finance -> dlm_finance).

    Unknown names raise UserError with the closest names. A name that is not ours is accepted if lm-eval has it
    built in (that check indexes lm-eval's ~15k task files, so it only runs for such names). Two names that share
    a task (a group and one of its members) are refused, since lm-eval would refuse them later.
    """
    ours = catalog()
    resolved: list[str] = []
    builtins: set[str] | None = None
    for raw in names:
        name = DOMAIN_GROUPS.get(str(raw).strip(), str(raw).strip())
        if name in ours:
            resolved.append(name)
            continue
        close = difflib.get_close_matches(name, list(ours) + list(DOMAIN_GROUPS), n=3, cutoff=0.75)
        if not close and not name.startswith(PREFIX):
            builtins = _builtin_names() if builtins is None else builtins
            if name in builtins:
                resolved.append(name)
                continue
            close = difflib.get_close_matches(name, builtins, n=3, cutoff=0.75)
        hint = "; did you mean " + " or ".join(f"'{c}'" for c in close) + "?" if close else ""
        raise UserError(f"unknown task '{name}'{hint} (`dlm tasks list` shows all)")
    _refuse_overlaps(resolved)
    return resolved


def _refuse_overlaps(names: list[str]) -> None:
    seen: dict[str, str] = {}
    for name in names:
        for leaf in leaf_tasks(name) if name in catalog() else [name]:
            if leaf in seen:
                first = seen[leaf]
                what = f"'{name}' and '{first}' both contain '{leaf}'" if name != first else f"'{name}' is given twice"
                raise UserError(f"{what}; ask for each task once (run overlapping groups separately)")
            seen[leaf] = name
