"""--report_to tensorboard / wandb (offline): the training loss and every learning-curve point reach the tracker as
scalars at their optimizer step, read back from the files the trackers wrote (TensorBoard's event reader; the
offline W&B run's .wandb log), with the run's protocol and provenance beside them."""

from __future__ import annotations

import json
import struct

import pytest
from train_support import config, one_thread  # noqa: F401 (one torch thread for this module)

from dlm.study.cycle import curve_evaluator_for
from dlm.trainers.train import train

TASK = "dlm_tfns"


def _train(tmp_path, report_to: str):
    cfg = config(tmp_path, "tracked", report_to=report_to, max_steps=3, eval_steps=2, eval_tasks=TASK, eval_limit=4)
    return train(cfg, evaluator=curve_evaluator_for(cfg)).record


def _expected(record: dict) -> tuple[dict, dict]:
    """{step: loss} of the record's loss curve and {(task/metric): {step: value}} of its curve points."""
    losses = {step: loss for step, loss in record["train"]["loss_curve"]}
    points: dict[str, dict] = {}
    for p in record["train"]["curve"]:
        if not p["is_group"]:
            points.setdefault(f"{p['task']}/{p['metric']}", {})[p["step"]] = p["value"]
    return losses, points


def test_tensorboard_gets_every_loss_and_every_curve_point_at_its_step(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    record = _train(tmp_path, "tensorboard")
    losses, points = _expected(record)
    # the loss of a step that also scored a curve point is kept (trainer.log used to clear it)
    assert sorted(losses) == [1, 2, 3]
    assert set(next(iter(points.values()))) == {0, 2, 3}
    (run_dir,) = (tmp_path / "tracked" / "runs").iterdir()
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    read = {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}
    assert read["train/loss"] == pytest.approx(losses)
    for name, by_step in points.items():
        assert read[f"eval/{name}"] == pytest.approx(by_step), name
    (note,) = events.Tensors("dlm/run/text_summary")
    notes = json.loads(note.tensor_proto.string_val[0].decode().strip("`").removeprefix("json\n"))
    assert notes["run_id"] == record["run_id"] and notes["protocol"]["fewshot_seed"] == 1234
    assert notes["curve"] == {"eval_steps": 2, "eval_tasks": TASK, "eval_limit": 4}
    assert notes["provenance"]["libraries"]["transformers"]


def wandb_records(path):
    """The records of a W&B run file (.wandb): LevelDB's log format, 32 KiB blocks after a 7-byte ':W&B' header,
    each record `checksum u32, length u16, type u8` (1 full, 2 first, 3 middle, 4 last) and a protobuf Record."""
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    assert raw[:4] == b":W&B"
    block, header = 32768, 7
    position, pending = header, b""
    while position + header <= len(raw):
        if block - position % block < header:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[position : position + header])
        if kind == 0 and length == 0:
            break
        pending += raw[position + header : position + header + length]
        position += header + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def test_offline_wandb_run_holds_every_loss_and_curve_point_at_its_step(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_PROJECT", "dlm-test")
    record = _train(tmp_path, "wandb")
    losses, points = _expected(record)
    assert sorted(losses) == [1, 2, 3]
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    rows, config = [], {}
    for item in wandb_records(run_file):
        kind = item.WhichOneof("record_type")
        if kind == "history":
            rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in item.history.item})
        elif kind == "config":
            config.update({i.key: json.loads(i.value_json) for i in item.config.update})
    read: dict[str, dict] = {}
    for row in rows:  # the Trainer's x-axis: train/global_step, logged with every row
        for key, value in row.items():
            if not key.startswith("_") and key != "train/global_step":
                read.setdefault(key, {})[row["train/global_step"]] = value
    assert read["train/loss"] == pytest.approx(losses)
    for name, by_step in points.items():
        assert read[f"eval/{name}"] == pytest.approx(by_step), name
    assert config["dlm"]["run_id"] == record["run_id"] and config["dlm"]["protocol"]["dtype"] == "float32"
    import wandb

    assert wandb.run is None  # closed at the end of training: the next training starts its own run
