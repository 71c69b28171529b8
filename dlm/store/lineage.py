"""What a model directory is: the lineage dlm writes beside the weights, and the role an evaluation gives it.

Every output dir of `dlm train` holds `dlm_lineage.json` (and its `merged/` copy too), a `Lineage`:

    {"schema": 1, "base_model": "gpt2", "approach": "sequential", "domain": "finance", "adapter": false,
     "stages": [{"run_id", "mode", "data": ["gbharti/finance-alpaca"], "domain", "steps", "lora", "seed"}, ...]}

`stages` runs oldest first, through any number of stages (pretrain -> SFT -> SFT ...). `read_lineage` is its one
strict loader: a file that is not this schema is not a lineage (the directory is then "unknown"). An evaluation
then knows what it scored without guessing from the command that made it (`describe_model`):
- "base": a published model (hub id or alias), no adapter -> approach "zero-shot", the control of H1/H3;
- "dlm-checkpoint" / "dlm-adapter": a model dlm trained -> the approach and domain of its lineage;
- "unknown": a local directory dlm did not write -> approach "unknown", never a control.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from dlm.data.table import lookup
from dlm.errors import UserError
from dlm.files import atomic_write
from dlm.store.schema import SchemaError, check, load

LINEAGE_FILE = "dlm_lineage.json"
TRAIN_RECORD_FILE = "dlm_train.json"  # the training record copied beside the weights (older checkpoints: only this)
MIXED = "mixed"  # the domain of a mixture whose datasets come from several domains
LINEAGE_SCHEMA = 1


@dataclass
class Stage:
    """One training stage of a checkpoint's lineage."""

    run_id: str | None = None
    mode: str | None = None
    data: list[str] = field(default_factory=list)
    domain: str | None = None
    steps: int | None = field(default=None, metadata=check(minimum=0))
    lora: bool | None = None
    seed: int | None = None


@dataclass
class Lineage:
    schema: int = field(default=LINEAGE_SCHEMA, metadata=check(minimum=1))
    base_model: str | None = None
    stages: list[Stage] = field(default_factory=list)
    approach: str | None = None
    domain: str | None = None
    adapter: bool | None = None
    merged: bool | None = None
    intermediate: str | None = None  # "checkpoint-N" when a checkpoint of the run was evaluated

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Evaluated:
    """What an evaluation scored: a published model ("base"), a dlm checkpoint/adapter, or an unknown dir."""

    role: str | None = field(
        default=None, metadata=check(choices=("base", "dlm-checkpoint", "dlm-adapter", "unknown", "api"))
    )
    approach: str | None = None
    domain: str | None = None
    lineage: Lineage | None = None


def approach_of(stages: list[Stage]) -> str:
    """sequential = the last stage starts from a checkpoint an earlier *pretrain* stage wrote (it wins over
    multitask: the base is the difference the study measures); multitask = a mixture of several datasets."""
    if not stages:
        return "zero-shot"
    last = stages[-1]
    if any(s.mode == "pretrain" for s in stages[:-1]):
        return "sequential"
    if len(last.data) > 1:
        return "multitask"
    return str(last.mode or "unknown")


def domain_of(datasets: list[str]) -> str | None:
    domains = list(dict.fromkeys(lookup(d.partition(":")[0]).domain for d in datasets))
    if not domains:
        return None
    return domains[0] if len(domains) == 1 else MIXED


def read_lineage(directory: str | Path) -> Lineage | None:
    """The lineage of a dlm output dir (or of its `merged/` or `checkpoint-N/` subdirs), or None if dlm did not
    write it. Checkpoints written before lineage files existed are described from their training record."""
    path = Path(directory).expanduser()
    for candidate in (path, path.parent):
        lineage = _load(candidate / LINEAGE_FILE)
        if lineage is not None:
            if candidate != path and path.name.startswith("checkpoint-"):
                lineage = replace(lineage, intermediate=path.name)
            return lineage
        record = _read_json(candidate / TRAIN_RECORD_FILE)
        if isinstance(record, dict) and isinstance(record.get("train"), dict):
            return _from_train_record(record)
        if candidate == path and not (path.name == "merged" or path.name.startswith("checkpoint-")):
            break  # only the subdirs dlm writes inherit their parent's lineage
    return None


def _load(path: Path) -> Lineage | None:
    data = _read_json(path)
    if data is None:
        return None
    try:
        lineage = load(Lineage, data, path.name)
    except SchemaError:
        return None  # not a lineage dlm wrote: the directory is "unknown"
    return lineage if lineage.schema <= LINEAGE_SCHEMA else None


def _from_train_record(record: dict) -> Lineage:
    """A lineage for a checkpoint written before lineage files existed, from its training record's copy."""
    train = record["train"]
    config = train.get("config") if isinstance(train.get("config"), dict) else {}
    parts = (train.get("data") or {}).get("parts") if isinstance(train.get("data"), dict) else []
    steps = config.get("max_steps")
    seed = config.get("seed")
    stage = Stage(
        run_id=str(record.get("run_id")) if record.get("run_id") else None,
        mode=str(train.get("mode") or config.get("mode") or "") or None,
        data=[str(p) for p in parts or []],
        steps=steps if isinstance(steps, int) and steps >= 0 else None,
        lora=bool(config.get("lora")),
        seed=seed if isinstance(seed, int) else None,
    )
    stages = [stage]
    previous = (record.get("model") or {}).get("previous_run") if isinstance(record.get("model"), dict) else None
    if isinstance(previous, dict):
        stages.insert(
            0,
            Stage(
                run_id=str(previous.get("run_id") or "") or None,
                mode=str(previous.get("mode") or "") or None,
                data=[str(p) for p in previous.get("data") or []],
            ),
        )
    name = (record.get("model") or {}).get("name") if isinstance(record.get("model"), dict) else None
    return Lineage(
        base_model=str(name) if name else None,
        stages=stages,
        approach=approach_of(stages),
        domain=_safe_domain(stage.data),
        adapter=stage.lora,
    )


def new_lineage(
    start_model: str,
    run_id: str,
    mode: str,
    datasets: list[str],
    steps: int,
    lora: bool,
    seed: int,
    resolved_start: str | None = None,
) -> Lineage:
    """The lineage of a run's output: the starting checkpoint's stages (if dlm wrote it) plus this stage."""
    start = resolved_start or start_model
    upstream = read_lineage(start) if Path(start).is_dir() else None
    stage = Stage(
        run_id=run_id, mode=mode, data=list(datasets), domain=_safe_domain(datasets), steps=steps, lora=lora, seed=seed
    )
    stages = [*(upstream.stages if upstream else []), stage]
    return Lineage(
        base_model=(upstream.base_model if upstream else None) or start_model,
        stages=stages,
        approach=approach_of(stages),
        domain=stage.domain,
        adapter=lora,
    )


def _safe_domain(datasets: list[str]) -> str | None:
    try:
        return domain_of(datasets)
    except UserError:  # a dataset no longer in the table: the lineage still stands, its domain is unknown
        return None


def describe_model(model: str, peft: str | None = None) -> Evaluated:
    """What an evaluation scores (see the module docstring)."""
    local = Path(model).expanduser()
    target = Path(peft).expanduser() if peft else (local if local.is_dir() else None)
    if target is None:
        return Evaluated(role="base", approach="zero-shot")
    lineage = read_lineage(target)
    if lineage is None:
        return Evaluated(role="unknown", approach="unknown")
    role = "dlm-adapter" if (peft or lineage.adapter) else "dlm-checkpoint"
    return Evaluated(
        role=role, approach=lineage.approach or approach_of(lineage.stages), domain=lineage.domain, lineage=lineage
    )


def write_lineage(directory: str | Path, lineage: Lineage) -> None:
    atomic_write(Path(directory) / LINEAGE_FILE, json.dumps(lineage.to_dict(), indent=2))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
