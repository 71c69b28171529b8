"""The `--report_to` trackers (TensorBoard, W&B): what dlm adds to what the Trainer's own callbacks send them.

The Trainer's TensorBoardCallback / WandbCallback log the training loss, learning rate and grad norm at each
logging step; the learning-curve points (trainers/curve.py) go through `trainer.log` as eval/<task>/<metric> at
their step. Here:
- `RunNotes`: at the start of training, the run's id, evaluation protocol and provenance go to the tracker too
  (TensorBoard: a text summary `dlm/run`; W&B: the run config key `dlm`), scrubbed like a record, so a curve seen
  in a tracker says how its points were scored and by what code;
- `finish`: a W&B run is closed when its training ends. The Trainer leaves it open, and the next training in the
  same process (a plan, a cycle after a cycle) would otherwise log into it.
"""

from __future__ import annotations

import json
import sys

from transformers import TrainerCallback

from dlm.secrets import scrub
from dlm.store.provenance import provenance


def run_notes(run_id: str, cfg) -> dict:
    """What a tracker is told about the run: its id, mode, data, protocol and provenance (no secret)."""
    return scrub(
        json.loads(
            json.dumps(
                {
                    "run_id": run_id,
                    "model": cfg.model,
                    "mode": cfg.mode,
                    "data": cfg.data.label(),
                    "seed": cfg.seed,
                    "curve": {"eval_steps": cfg.eval_steps, "eval_tasks": cfg.eval_tasks, "eval_limit": cfg.eval_limit},
                    "protocol": {"tasks": list(cfg.protocol.tasks), **cfg.protocol.measurement()},
                    "provenance": provenance(),
                },
                default=str,
            )
        )
    )


class RunNotes(TrainerCallback):
    """Writes `run_notes` to the trackers the Trainer opened (their callbacks come first and open them in their
    own on_train_begin)."""

    def __init__(self, notes: dict):
        self.notes = notes
        self.trainer = None

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None or not state.is_world_process_zero:
            return
        for callback in self.trainer.callback_handler.callbacks:
            name = type(callback).__name__
            if name == "TensorBoardCallback" and getattr(callback, "tb_writer", None) is not None:
                text = "```json\n" + json.dumps(self.notes, indent=2) + "\n```"
                callback.tb_writer.add_text("dlm/run", text, global_step=state.global_step)
                callback.tb_writer.flush()
            elif name == "WandbCallback" and getattr(callback, "_wandb", None) is not None:
                run = callback._wandb.run
                if run is not None:
                    run.config.update({"dlm": self.notes}, allow_val_change=True)


def finish(report_to: str) -> None:
    """Close the W&B run this training logged into (TensorBoard's writer is closed by its callback)."""
    if report_to != "wandb" or "wandb" not in sys.modules:
        return
    wandb = sys.modules["wandb"]
    if getattr(wandb, "run", None) is not None:
        wandb.finish()
