"""Learning curves: task scores of the in-memory model every `--eval_steps` optimizer steps (and at step 0).

The scoring itself is handed in (`evaluator(model, tokenizer) -> [score dicts]`, harness_tasks/evaluate.py's
`curve_evaluator`): trainers/ sit below the evaluation layer. Points are appended to `dlm_curve.json` in the
output dir as they are made, so a resumed run keeps its earlier points and does not score a step twice; they go
into the run record (`train.curve`) and, as scalars, to the `--report_to` tracker. Time spent scoring is counted
apart (`train.curve_eval_s`) and left out of the training time.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

CURVE_FILE = "dlm_curve.json"


def read_points(output_dir: str | Path) -> list[dict]:
    try:
        points = json.loads((Path(output_dir) / CURVE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return points if isinstance(points, list) else []


def write_points(output_dir: str | Path, points: list[dict]) -> None:
    from dlm_data.records import atomic_write_text

    atomic_write_text(Path(output_dir) / CURVE_FILE, json.dumps(points, indent=1))


def to_points(step: int, tokens: int, scores: list[dict]) -> list[dict]:
    return [{"step": step, "tokens": tokens, "task": s["task"], "metric": s["metric"], "filter": s.get("filter"),
             "value": s["value"], "stderr": s.get("stderr"), "n": s.get("n"), "is_group": s.get("is_group", False)}
            for s in scores]


def curve_callback(evaluator, every: int, output_dir: Path, points: list[dict], timing: dict, trainer_ref: dict,
                   tokenizer):
    """A TrainerCallback scoring at step 0 and every `every` steps (and the last step); `points` and
    `timing["seconds"]` are filled in place."""
    from transformers import TrainerCallback

    from trainers import runtime

    class Curve(TrainerCallback):
        def _score(self, state, model):
            if any(p["step"] == state.global_step for p in points):
                return  # already scored before an interruption
            if runtime.is_main_process():
                started = time.perf_counter()
                scores = evaluator(model, tokenizer)
                timing["seconds"] = timing.get("seconds", 0.0) + time.perf_counter() - started
                new = to_points(state.global_step, int(state.num_input_tokens_seen), scores)
                points.extend(new)
                write_points(output_dir, points)
                trainer = trainer_ref.get("trainer")
                scalars = {f"dlm_eval/{p['task']}/{p['metric']}": p["value"] for p in new if not p["is_group"]}
                if trainer is not None and scalars:
                    trainer.log(scalars)
                shown = ", ".join(f"{p['task']} {p['metric']} {p['value']:.3f}" for p in new[:3] if not p["is_group"])
                print(f"curve point at step {state.global_step}: {shown}", file=sys.stderr, flush=True)
            runtime.barrier()  # the other ranks wait while rank 0 scores

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            self._score(state, model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % every == 0 or state.global_step >= state.max_steps:
                self._score(state, model)
            return control

    return Curve()


class CurveRun:
    """What train() needs: the callback to add, the trainer to log through, and the record fields at the end."""

    def __init__(self, cfg, evaluator, output_dir: Path, resuming: bool, tokenizer):
        self.points = read_points(output_dir) if resuming else []
        self.timing: dict = {}
        self.trainer_ref: dict = {}
        self.callback = None
        if cfg.eval_steps and evaluator is not None:
            self.callback = curve_callback(evaluator, cfg.eval_steps, output_dir, self.points, self.timing,
                                           self.trainer_ref, tokenizer)

    def attach(self, trainer) -> None:
        self.trainer_ref["trainer"] = trainer

    @property
    def eval_seconds(self) -> float:
        return float(self.timing.get("seconds", 0.0))

    def record_fields(self) -> dict:
        if self.callback is None:
            return {}
        return {"curve": self.points, "curve_eval_s": round(self.eval_seconds, 3)}
