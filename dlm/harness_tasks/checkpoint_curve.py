"""`dlm eval --model OUTPUT_DIR --checkpoints`: every saved `checkpoint-N` of a training run and its final model
scored into one learning curve, in one record (`eval.curve`, points as trainers/curve.py writes them).

A re-run keeps the points an earlier run of the same evaluation (same output dir, tasks, shots, limit) already
computed and scores only the new checkpoints.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, replace
from pathlib import Path

from dlm.errors import UserError
from dlm.store.provenance import new_run_id
from dlm.store.records import RunRecord, load_records, write_record
from dlm.trainers.curve import to_points
from dlm.trainers.train import RECORD_IN_OUTPUT

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def _state(path: Path) -> dict:
    try:
        return json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def stages(output_dir: Path) -> list[tuple[int, int | None, Path]]:
    """(step, tokens seen, directory) of every checkpoint and of the final model, in step order."""

    found = []
    for child in output_dir.iterdir():
        match = CHECKPOINT.match(child.name)
        if match and child.is_dir():
            state = _state(child)
            found.append((int(match.group(1)), state.get("num_input_tokens_seen"), child))
    try:
        trained = json.loads((output_dir / RECORD_IN_OUTPUT).read_text(encoding="utf-8")).get("train") or {}
    except (OSError, ValueError):
        trained = {}
    has_final = (output_dir / "config.json").is_file() or (output_dir / "adapter_config.json").is_file()
    final_step = (trained.get("config") or {}).get("max_steps")
    if has_final and final_step is not None and all(step != final_step for step, _, _ in found):
        found.append((int(final_step), trained.get("tokens_seen"), output_dir))
    return sorted(found, key=lambda item: item[0])


def _key(cfg) -> dict:
    """What makes two curves the same measurement: the output dir, the tasks and the protocol's measurement."""
    return {
        "checkpoints_of": str(Path(cfg.model).expanduser().resolve()),
        "tasks": list(cfg.protocol.tasks),
        **cfg.protocol.measurement(),
    }


def _earlier(cfg) -> RunRecord | None:
    records, _ = load_records(cfg.results_dir)
    key = _key(cfg)
    for record in reversed(records):
        if record.eval is not None and record.eval.curve_of == key and record.status == "ok":
            return record
    return None


def evaluate_checkpoints(cfg, evaluate) -> dict:
    """The record: the final model's scores plus `eval.curve` over every stage (`evaluate` is evaluate.evaluate)."""

    root = Path(cfg.model).expanduser()
    if not root.is_dir():
        raise UserError(f"--checkpoints takes a training output dir; '{cfg.model}' is not a directory")
    found = stages(root)
    if not found:
        raise UserError(
            f"no checkpoint-N folders and no final model in '{cfg.model}'; --checkpoints scores the "
            "checkpoints a `dlm train --save_steps N` run saved"
        )
    earlier = _earlier(cfg)
    kept: dict[int, list[dict]] = {}
    for point in earlier.eval.curve if earlier is not None else []:
        kept.setdefault(point.step, []).append(asdict(point))
    points, last = [], None
    for step, tokens, path in found:
        if step in kept:
            points += kept[step]
            print(f"[dlm eval] step {step}: kept from run {earlier.run_id}")
            continue
        print(f"[dlm eval] step {step}: scoring {path.name}")
        last = evaluate(replace(cfg, model=str(path), checkpoints=False), write=False)
        points += to_points(step, int(tokens or 0), last["eval"]["scores"])
    if last is None or found[-1][2] != Path(last["model"]["name"]):
        if earlier is not None and found[-1][0] in kept:  # nothing new at the last stage: its scores stand
            last = earlier.to_dict()
            last.pop("run_id", None)
        else:
            last = evaluate(replace(cfg, model=str(found[-1][2]), checkpoints=False), write=False)
    record = {**last, "model": {**(last.get("model") or {}), "name": cfg.model}}
    record["eval"] = {**record["eval"], "curve": points, "curve_of": _key(cfg), "config": cfg.to_dict()}

    record["run_id"] = new_run_id(f"eval-checkpoints-{root.name}")
    path = write_record(cfg.results_dir, record)
    print(f"[dlm eval] record written: {path}")
    return record
