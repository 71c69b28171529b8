"""An evaluation's scores into the model card of the directory it scored (trainers/cards.py writes the card).

The card belongs to what was scored: the adapter dir of `--peft DIR`, else the `--model DIR` itself, and only when
dlm trained it (a hub model or a directory dlm did not write gets no card). Each score carries the dataset its
task reads (id, config, and the raw split scored, from the task's YAML) so a model-index entry names its data.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from dlm.config import EvalConfig, is_api_model
from dlm.harness_tasks.catalog import catalog, leaf_tasks
from dlm.store.records import RunRecord
from dlm.trainers.cards import write_card


def task_dataset(task: str) -> dict:
    """{"id", "config", "split"} of the data a task scores: the raw split name (a holdout is the held-out part of
    it); a group: its members' dataset and split where they agree, "mixed" where not; None for lm-eval's own."""
    info = catalog().get(task)
    if info is None:
        return {"id": None, "config": None, "split": None}
    if info.kind == "group":
        parts = [task_dataset(leaf) for leaf in leaf_tasks(task)]
        out = {}
        for key in ("id", "config", "split"):
            values = {p[key] for p in parts}
            out[key] = values.pop() if len(values) == 1 else ("mixed" if key != "config" else None)
        return out
    config = info.config
    kwargs = config.get("dataset_kwargs") or {}
    split = config.get("test_split") or config.get("validation_split")
    raw = (kwargs.get("splits") or {}).get(split, split)
    if kwargs.get("holdout") and raw is not None:
        raw = f"{raw} (held-out {kwargs['holdout'].get('fraction', '')} of it)".replace("  ", " ")
    return {"id": kwargs.get("hub_id") or config.get("dataset_path"), "config": kwargs.get("hub_config"), "split": raw}


def card_directory(cfg: EvalConfig) -> Path | None:
    """The local directory whose weights were scored (the adapter's for --peft), or None."""
    if is_api_model(cfg.model):
        return None
    target = Path(cfg.peft or cfg.model).expanduser()
    return target if target.is_dir() else None


def card_entries(cfg: EvalConfig, record: RunRecord) -> list[dict]:
    """The record's scores as card entries (trainers/cards.py), each naming the evaluation run it came from, and
    flagged where the run's overlap check found the task's documents in its training data."""
    reports = record.train.contamination if record.train and isinstance(record.train.contamination, list) else []
    overlaps = {r.get("eval"): r for r in reports if isinstance(r, dict) and r.get("above_threshold")}
    entries = []
    for score in record.scores:
        if score.value is None:  # undefined (lm-eval reported NaN): nothing to put on a card
            continue
        overlap = overlaps.get(score.task)
        entries.append(
            {
                "task": score.task,
                "metric": score.metric,
                "filter": score.filter or "none",
                "value": score.value,
                "stderr": score.stderr,
                "stderr_method": score.stderr_method,
                "n": score.n,
                "shots": score.num_fewshot,
                "limit": cfg.protocol.limit,
                "protocol": asdict(score.protocol) if score.protocol else None,
                "run_id": record.run_id,
                "is_group": score.is_group,
                "dataset": task_dataset(score.task),
                "contamination": (
                    f"{overlap.get('duplicated')} of {overlap.get('eval_docs')} documents occur in the training data"
                    if overlap
                    else None
                ),
            }
        )
    return entries


def add_scores(cfg: EvalConfig, record: RunRecord) -> Path | None:
    """The scores of `record` added to the card of the directory it scored; the card's path, or None where that
    directory is not one dlm trained (or its README.md is someone else's)."""
    directory = card_directory(cfg)
    if directory is None or cfg.protocol.documents is not None:  # a fixed document subset is a curve point
        return None
    provenance = asdict(record.provenance) if record.provenance else None
    return write_card(directory, card_entries(cfg, record), provenance=provenance)
