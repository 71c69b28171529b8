"""Learning curves: task scores of the in-memory model every `--eval_steps` optimizer steps (and at step 0).

The scoring itself is handed in (`evaluator(model, tokenizer) -> (score dicts, outcomes)`, harness_tasks/
evaluate.py's `curve_evaluator`, which scores with the run's own evaluation protocol): trainers/ sit below the
evaluation layer. Points are appended to `dlm_curve.json` in the output dir as they are made, so a resumed run
keeps its earlier points and does not score a step twice; each point's per-document outcomes go beside it
(`dlm_curve/step-<N>.outcomes.json.gz`, the format of dlm/store/outcomes.py); the points go into the run record
(`train.curve`) and, as scalars named eval/<task>/<metric> at their step, to the `--report_to` tracker. Time spent scoring is counted apart
(`train.curve_eval_s`) and left out of the training time.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from transformers import TrainerCallback

from dlm.files import atomic_write
from dlm.store.outcomes import SUFFIX, write_outcomes_file
from dlm.trainers import runtime
from dlm.words import plural

CURVE_FILE = "dlm_curve.json"
CURVE_OUTCOMES_DIR = "dlm_curve"


def point_outcomes_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CURVE_OUTCOMES_DIR / f"step-{step}{SUFFIX}"


def read_points(output_dir: str | Path) -> list[dict]:
    try:
        points = json.loads((Path(output_dir) / CURVE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return points if isinstance(points, list) else []


def write_points(output_dir: str | Path, points: list[dict]) -> None:
    atomic_write(Path(output_dir) / CURVE_FILE, json.dumps(points, indent=1))


def to_points(step: int, tokens: int, scores: list[dict]) -> list[dict]:
    return [
        {
            "step": step,
            "tokens": tokens,
            "task": s["task"],
            "metric": s["metric"],
            "filter": s.get("filter"),
            "value": s["value"],
            "stderr": s.get("stderr"),
            "n": s.get("n"),
            "is_group": s.get("is_group", False),
        }
        for s in scores
    ]


def scalar_name(point: dict) -> str:
    """The tracker name of a curve point: `eval_<task>/<metric>` (`,<filter>` unless lm-eval's "none"), which the
    Trainer's TensorBoard and W&B callbacks file under eval/ (their `rewrite_logs`: eval/<task>/<metric>)."""
    metric = point["metric"] + (f",{point['filter']}" if point.get("filter") not in (None, "none") else "")
    return f"eval_{point['task']}/{metric}"


def log_points(trainer, control, points: list[dict]) -> None:
    """The points' scores to the --report_to tracker at the current step, through `trainer.log`. Trainer.log
    clears `control.should_log`; called from on_step_end, that would drop the training loss of this very step
    (from the record's loss curve and the tracker alike), so the flag is put back as it was."""
    scalars = {scalar_name(p): p["value"] for p in points if not p["is_group"]}
    if not scalars:
        return
    should_log = control.should_log
    trainer.log(scalars)
    control.should_log = should_log


class CurveCallback(TrainerCallback):
    """Scores the model at step 0, every `every` steps and at the last step; each point is written as it is made."""

    def __init__(self, run: CurveRun, evaluator, every: int, output_dir: Path, tokenizer):
        self.run, self.evaluator, self.every, self.output_dir, self.tokenizer = (
            run,
            evaluator,
            every,
            output_dir,
            tokenizer,
        )

    def _score(self, state, model, control) -> None:
        points, step = self.run.points, state.global_step
        if any(p["step"] == step for p in points):
            return  # already scored before an interruption
        if runtime.is_main_process():
            started = time.perf_counter()
            scores, outcomes = self.evaluator(model, self.tokenizer)
            if outcomes:
                write_outcomes_file(point_outcomes_path(self.output_dir, step), f"curve-step-{step}", outcomes)
                self.run.documents = {  # the fixed subset every point scores, by document hash
                    task: hashlib.sha256(
                        "\n".join(sorted({d for b in blocks.values() for d in b.docs})).encode()
                    ).hexdigest()[:16]
                    for task, blocks in outcomes.items()
                }
            self.run.eval_seconds += time.perf_counter() - started
            new = to_points(step, int(state.num_input_tokens_seen), scores)
            points.extend(new)
            write_points(self.output_dir, points)
            if self.run.trainer is not None and new:
                log_points(self.run.trainer, control, new)
            tasks = len({p["task"] for p in new if not p["is_group"]})
            print(
                f"curve point at step {step}: {plural(tasks, 'task')} scored in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
                flush=True,
            )
        runtime.barrier()  # the other ranks wait while rank 0 scores

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._score(state, model, control)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0 or state.global_step >= state.max_steps:
            self._score(state, model, control)
        return control


class CurveRun:
    """What train() needs: the callback to add, the trainer to log through, and the record fields at the end."""

    def __init__(self, cfg, evaluator, output_dir: Path, resuming: bool, tokenizer):
        self.points = read_points(output_dir) if resuming else []
        self.eval_seconds = 0.0  # time spent scoring, left out of the training time
        self.documents: dict[str, str] = {}  # {task: sha256 of the hashes of the documents every point scores}
        self.trainer = None
        self.callback = None
        if cfg.eval_steps and evaluator is not None:
            self.callback = CurveCallback(self, evaluator, cfg.eval_steps, output_dir, tokenizer)

    def attach(self, trainer) -> None:
        self.trainer = trainer

    def record_fields(self) -> dict:
        if self.callback is None:
            return {}
        return {
            "curve": self.points,
            "curve_eval_s": round(self.eval_seconds, 3),
            "curve_documents": self.documents or None,
        }
