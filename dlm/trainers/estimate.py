"""How long a training run will take, said before it starts and corrected once its first steps are timed.

Before training: tokens to process (max_steps x batch x accumulation x max_length x processes: an upper bound, as
packed rows are nearly full) x 6 x parameters FLOPs per token (forward + backward; attention FLOPs not counted),
over the device's throughput: a dated table of GPU peaks (T4 ... H100) times an assumed utilisation, or on a
CPU or an unknown GPU a matmul timed here. Small models are dominated by per-step overheads that FLOPs do not see,
so after CALIBRATION_STEPS steps the progress line prints a calibrated estimate (the steps' own pace), and both
estimates go into the record beside the actual time.
"""

from __future__ import annotations

import functools
import re
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, TrainerCallback

from dlm.errors import UserError
from dlm.trainers.models import resolve_model
from dlm.trainers.progress import format_duration

BUDGET_S = 2 * 3600  # the study plan's "training time < 2 hours per experiment"
CALIBRATION_STEPS = 5
TABLE_DATE = "2024-06"
# dense fp16/bf16 tensor-core peak TFLOP/s from the vendors' datasheets (T4 has no bf16: fp16)
GPU_PEAK_TFLOPS = {"t4": 65.0, "v100": 125.0, "l4": 121.0, "a10": 125.0, "a100": 312.0, "h100": 989.0, "h200": 989.0}
GPU_UTILISATION = 0.30  # nanoGPT reports ~29% MFU on an A100 before torch.compile; llm.c reaches ~60%
CPU_UTILISATION = 0.50  # bench/mfu.py measured 70% for the GPT-2-124M shape in fp32 here; smaller shapes get less
# parameters of the study's models, for plan estimates without loading them
MODEL_PARAMS = {
    "gpt2": 124_439_808,
    "openai-community/gpt2": 124_439_808,
    "gpt2-medium": 354_823_168,
    "openai-community/gpt2-medium": 354_823_168,
    "qwen2-0.5b": 494_032_768,
    "Qwen/Qwen2-0.5B": 494_032_768,
    "Qwen/Qwen2-0.5B-Instruct": 494_032_768,
}


def model_params(name: str | None) -> int | None:
    """Parameter count of a model without loading its weights: the table above, or a local config built on the
    meta device; None when neither is at hand (a hub id not in the table, offline)."""
    if not name:
        return None
    if name in MODEL_PARAMS:
        return MODEL_PARAMS[name]

    try:
        resolved = Path(resolve_model(name))
    except UserError:
        return None
    if not (resolved / "config.json").is_file():
        return None

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(resolved))
    return sum(p.numel() for p in model.parameters())


def tokens_to_process(cfg, processes: int = 1) -> int:
    return cfg.max_steps * cfg.batch_size * cfg.gradient_accumulation_steps * cfg.max_length * processes


def device_key(name: str) -> str | None:
    """ "Tesla T4" -> "t4", "NVIDIA A100-SXM4-80GB" -> "a100"; None for a GPU not in the table ("A10G")."""

    return next((key for key in GPU_PEAK_TFLOPS if re.search(rf"\b{key}\b", name.lower())), None)


@functools.lru_cache(maxsize=8)
def measured_peak_flops(device: str = "cpu", n: int = 1024, repeats: int = 3) -> float:
    """FLOP/s of an n x n matmul on this device (fp32 on CPU, bf16 on a GPU), best of `repeats`; timed once per
    process (a quarter of a second each: a plan's dry run of 1,000 runs would spend minutes re-timing it)."""

    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call warms up
        if device != "cpu":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device != "cpu":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def throughput(device: str | None = None) -> tuple[float, str]:
    """(usable FLOP/s, how it was obtained) for a named device ("t4") or the one at hand (None)."""
    if device:
        key = device.lower()
        if key == "cpu":
            return measured_peak_flops() * CPU_UTILISATION, f"this CPU's timed matmul x {CPU_UTILISATION:.0%}"
        if key not in GPU_PEAK_TFLOPS:
            raise UserError(f"unknown --device '{device}'; use one of {', '.join(GPU_PEAK_TFLOPS)} or cpu")
        return (
            GPU_PEAK_TFLOPS[key] * 1e12 * GPU_UTILISATION,
            f"{key.upper()} peak {GPU_PEAK_TFLOPS[key]:g} TFLOP/s ({TABLE_DATE} datasheet) x {GPU_UTILISATION:.0%}",
        )

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        key = device_key(name)
        if key:
            return throughput(key)
        return (
            measured_peak_flops("cuda", 4096) * GPU_UTILISATION,
            f"{name}: timed bf16 matmul x {GPU_UTILISATION:.0%}",
        )
    return throughput("cpu")


def predict_seconds(tokens: int, params: int, device: str | None = None) -> tuple[float, str]:
    flops_per_s, basis = throughput(device)
    return tokens * 6 * params / flops_per_s, f"{tokens:,} tokens x 6 x {params / 1e6:,.1f}M params / ({basis})"


def before_training(cfg, params: int, resumed_step: int = 0, processes: int = 1, main: bool = True) -> dict:
    """Print the estimate of what this process will train (a resumed run has fewer steps left); the record's
    train.time_estimate, which the calibration callback completes."""

    remaining = replace(cfg, max_steps=max(cfg.max_steps - resumed_step, 1))
    predicted, basis = predict_seconds(tokens_to_process(remaining, processes), params)
    if main:
        print(f"time estimate before training: {format_duration(predicted)} ({basis})", file=sys.stderr, flush=True)
        warn_if_over_budget(predicted, "this run")
    return {"predicted_s": round(predicted, 3), "basis": basis}


def warn_if_over_budget(seconds: float, what: str, stream=None) -> bool:

    if seconds <= BUDGET_S:
        return False
    print(
        f"warning: {what} is estimated at {format_duration(seconds)}, over the study plan's 2 h per experiment; "
        "fewer --max_steps, a shorter --max_length or --lora would bring it down",
        file=stream or sys.stderr,
        flush=True,
    )
    return True


class Calibrate(TrainerCallback):
    """Times the first CALIBRATION_STEPS optimizer steps, prints the calibrated total and stores it in `estimate`
    (the record's train.time_estimate). Time spent scoring learning-curve points in those steps (`scoring_s()`,
    step 0 included) is not training time and is taken out."""

    def __init__(self, estimate: dict, stream=None, scoring_s=lambda: 0.0):
        self.estimate, self.stream, self.scoring_s = estimate, stream, scoring_s

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step, self.scored_before = time.perf_counter(), state.global_step, None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.scored_before is None:  # after every on_train_begin, the step-0 curve point included
            self.started, self.scored_before = time.perf_counter(), self.scoring_s()

    def on_step_end(self, args, state, control, **kwargs):
        done = state.global_step - self.first_step
        if done != min(CALIBRATION_STEPS, state.max_steps - self.first_step) or "calibrated_s" in self.estimate:
            return control
        elapsed = time.perf_counter() - self.started - (self.scoring_s() - (self.scored_before or 0.0))
        total = elapsed / done * (state.max_steps - self.first_step)
        self.estimate.update(calibrated_s=round(total, 3), calibrated_at_step=state.global_step)
        if state.is_world_process_zero:
            print(
                f"time estimate after {done} step(s): {format_duration(total)} for the whole run (training only)",
                file=self.stream or sys.stderr,
                flush=True,
            )
            warn_if_over_budget(total, "this run", self.stream)
        return control


def calibration_callback(estimate: dict, stream=None, scoring_s=lambda: 0.0) -> Calibrate:
    return Calibrate(estimate, stream, scoring_s)
