"""Training time that adds up over the processes of one run: an interrupted run resumed with --resume records the
time of every process that trained it, not only the last one.

Each process adds its time to `dlm_time.json` in the output dir after every optimizer step (a small atomic
rename, no fsync: at worst the last step's time of a killed process is lost), and a resumed run starts from
what is there. Evaluation time is recorded apart, in the eval block.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from transformers import TrainerCallback

from dlm.files import atomic_write

LEDGER = "dlm_time.json"


class RunClock:
    def __init__(self, output_dir: Path, resuming: bool, started: float):
        self.path = Path(output_dir) / LEDGER
        self.started = started
        previous = _read(self.path) if resuming else {}
        self.previous_wall = float(previous.get("wall_time_s") or 0.0)
        self.previous_train = float(previous.get("train_time_s") or 0.0)
        self.processes = int(previous.get("processes") or 0) + 1
        self.train_started: float | None = None

    def totals(self) -> dict:
        now = time.time()
        train = now - self.train_started if self.train_started is not None else 0.0
        return {
            "wall_time_s": self.previous_wall + now - self.started,
            "train_time_s": self.previous_train + train,
            "processes": self.processes,
            "this_process_wall_time_s": now - self.started,
        }

    def write(self) -> None:
        atomic_write(self.path, json.dumps(self.totals()), durable=False)  # after every step: no fsync

    def callback(self) -> ClockCallback:
        return ClockCallback(self)


class ClockCallback(TrainerCallback):
    """Notes when training starts and writes the ledger after every step (a kill loses at most one step)."""

    def __init__(self, clock: RunClock):
        self.clock = clock

    def on_train_begin(self, args, state, control, **kwargs):
        self.clock.train_started = time.time()

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.clock.write()


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
