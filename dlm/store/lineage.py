"""What a model directory is: the lineage dlm writes beside the weights, and the role an evaluation gives it.

Every output dir of `dlm train` holds `dlm_lineage.json` (and its `merged/` copy too):

    {"schema": 1, "base_model": "gpt2", "approach": "sequential", "domain": "finance", "adapter": false,
     "stages": [{"run_id", "mode", "data": ["gbharti/finance-alpaca"], "domain", "steps", "lora", "seed"}, ...]}

`stages` runs oldest first, through any number of stages (pretrain -> SFT -> SFT ...). An evaluation then knows
what it scored without guessing from the command that made it:
- "base": a published model (hub id or alias), no adapter -> approach "zero-shot", the control of H1/H3;
- "dlm-checkpoint" / "dlm-adapter": a model dlm trained -> the approach and domain of its lineage;
- "unknown": a local directory dlm did not write -> approach "unknown", never a control.
"""

from __future__ import annotations

import json
from pathlib import Path

from dlm.data.loading import lookup
from dlm.errors import UserError
from dlm.files import atomic_write

LINEAGE_FILE = "dlm_lineage.json"
TRAIN_RECORD_FILE = "dlm_train.json"  # the training record copied beside the weights (older checkpoints: only this)
MIXED = "mixed"  # the domain of a mixture whose datasets come from several domains


def approach_of(stages: list[dict]) -> str:
    """sequential = the last stage starts from a checkpoint an earlier *pretrain* stage wrote (it wins over
    multitask: the base is the difference the study measures); multitask = a mixture of several datasets."""
    if not stages:
        return "zero-shot"
    last = stages[-1]
    if any(s.get("mode") == "pretrain" for s in stages[:-1]):
        return "sequential"
    if len(last.get("data") or []) > 1:
        return "multitask"
    return str(last.get("mode") or "unknown")


def domain_of(datasets: list[str]) -> str | None:

    domains = list(dict.fromkeys(lookup(d.partition(":")[0]).domain for d in datasets))
    if not domains:
        return None
    return domains[0] if len(domains) == 1 else MIXED


def read_lineage(directory: str | Path) -> dict | None:
    """The lineage of a dlm output dir (or of its `merged/` or `checkpoint-N/` subdirs), or None if dlm did not
    write it. Checkpoints written before lineage files existed are described from their training record."""
    path = Path(directory).expanduser()
    for candidate in (path, path.parent):
        lineage = _read_json(candidate / LINEAGE_FILE)
        if isinstance(lineage, dict) and isinstance(lineage.get("stages"), list):
            if candidate != path and path.name.startswith("checkpoint-"):
                lineage = {**lineage, "intermediate": path.name}
            return lineage
        record = _read_json(candidate / TRAIN_RECORD_FILE)
        if isinstance(record, dict) and isinstance(record.get("train"), dict):
            return _from_train_record(record)
        if candidate == path and not (path.name == "merged" or path.name.startswith("checkpoint-")):
            break  # only the subdirs dlm writes inherit their parent's lineage
    return None


def _from_train_record(record: dict) -> dict:
    train = record["train"]
    config = train.get("config") or {}
    parts = (train.get("data") or {}).get("parts") or []
    stage = {
        "run_id": record.get("run_id"),
        "mode": train.get("mode") or config.get("mode"),
        "data": [str(p) for p in parts],
        "steps": config.get("max_steps"),
        "lora": bool(config.get("lora")),
        "seed": config.get("seed"),
    }
    stages = [stage]
    previous = (record.get("model") or {}).get("previous_run")
    if isinstance(previous, dict):
        stages.insert(
            0,
            {
                "run_id": previous.get("run_id"),
                "mode": previous.get("mode"),
                "data": [str(p) for p in previous.get("data") or []],
            },
        )
    return {
        "schema": 1,
        "base_model": (record.get("model") or {}).get("name"),
        "stages": stages,
        "approach": approach_of(stages),
        "domain": _safe_domain(stage["data"]),
        "adapter": stage["lora"],
    }


def new_lineage(
    start_model: str,
    run_id: str,
    mode: str,
    datasets: list[str],
    steps: int,
    lora: bool,
    seed: int,
    resolved_start: str | None = None,
) -> dict:
    """The lineage of a run's output: the starting checkpoint's stages (if dlm wrote it) plus this stage."""
    upstream = read_lineage(resolved_start or start_model) if Path(resolved_start or start_model).is_dir() else None
    stages = [
        *(upstream or {}).get("stages", []),
        {
            "run_id": run_id,
            "mode": mode,
            "data": list(datasets),
            "domain": _safe_domain(datasets),
            "steps": steps,
            "lora": lora,
            "seed": seed,
        },
    ]
    return {
        "schema": 1,
        "base_model": (upstream or {}).get("base_model") or start_model,
        "stages": stages,
        "approach": approach_of(stages),
        "domain": _safe_domain(datasets),
        "adapter": lora,
    }


def _safe_domain(datasets: list[str]) -> str | None:

    try:
        return domain_of(datasets)
    except UserError:  # a dataset no longer in the table: the lineage still stands, its domain is unknown
        return None


def describe_model(model: str, peft: str | None = None) -> dict:
    """{"role", "approach", "domain", "lineage"} of what an evaluation scores (see the module docstring)."""
    local = Path(model).expanduser()
    target = Path(peft).expanduser() if peft else (local if local.is_dir() else None)
    if target is None:
        return {"role": "base", "approach": "zero-shot", "domain": None, "lineage": None}
    lineage = read_lineage(target)
    if lineage is None:
        return {"role": "unknown", "approach": "unknown", "domain": None, "lineage": None}
    role = "dlm-adapter" if (peft or lineage.get("adapter")) else "dlm-checkpoint"
    return {
        "role": role,
        "approach": lineage.get("approach") or approach_of(lineage["stages"]),
        "domain": lineage.get("domain"),
        "lineage": lineage,
    }


def write_lineage(directory: str | Path, lineage: dict) -> None:

    atomic_write(Path(directory) / LINEAGE_FILE, json.dumps(lineage, indent=2, default=str))


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
