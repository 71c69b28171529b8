"""One live progress line on stderr (step, loss, tokens/s, ETA) instead of tqdm bars and logged dicts.

On a terminal the line is redrawn in place; in logs (CI, nohup) one line is written per logging step. Only the
main process prints.
"""

from __future__ import annotations

import sys
import time

from transformers import TrainerCallback

from dlm.signals import raise_if_stopped


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds < 0:  # NaN
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def make_progress_callback(stream=None, min_interval_s: float = 0.5) -> ProgressLine:
    return ProgressLine(stream, min_interval_s)


class ProgressLine(TrainerCallback):
    """One line per logged step (a live, redrawn line on a terminal): step, loss, tokens/s, ETA."""

    def __init__(self, stream=None, min_interval_s: float = 0.5):
        self.stream = stream or sys.stderr
        self.min_interval_s = min_interval_s
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.loss = None
        self.start_time = None
        self.start_step = 0
        self.start_tokens = 0
        self.last_draw = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_time = time.perf_counter()
        self.start_step = state.global_step
        self.start_tokens = state.num_input_tokens_seen

    def line(self, state) -> str:
        elapsed = max(time.perf_counter() - (self.start_time or time.perf_counter()), 1e-9)
        steps_done = state.global_step - self.start_step
        tokens_per_s = (state.num_input_tokens_seen - self.start_tokens) / elapsed
        eta = (state.max_steps - state.global_step) * elapsed / steps_done if steps_done else float("nan")
        loss = "?" if self.loss is None else f"{self.loss:.4f}"
        return (
            f"step {state.global_step}/{state.max_steps} | loss {loss} | {tokens_per_s:,.0f} tok/s | "
            f"ETA {format_duration(eta)}"
        )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])
            if state.is_world_process_zero and not self.live:
                print(self.line(state), file=self.stream, flush=True)

    def on_step_end(self, args, state, control, **kwargs):
        raise_if_stopped()  # a SIGTERM/SIGHUP whose exception was dropped on its way up still stops the run
        if state.global_step >= state.max_steps:
            control.should_log = True  # the loss curve and final loss include the last step
        now = time.perf_counter()
        if self.live and state.is_world_process_zero and now - self.last_draw >= self.min_interval_s:
            self.last_draw = now
            print("\r" + self.line(state).ljust(79), end="", file=self.stream, flush=True)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.live and state.is_world_process_zero:
            print("\r" + self.line(state).ljust(79), file=self.stream, flush=True)
