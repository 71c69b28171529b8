"""Where training runs: precision for the hardware at hand, and the few distributed facts the trainers need.

`torchrun --nproc_per_node N dlm train ...` runs the same code in N processes. The process group is created here,
before anything else, so that all ranks can agree on values only rank 0 should choose (the run id) and so that
no rank creates files before every rank has checked the output directory.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import torch
import torch.distributed as dist

from dlm.errors import UserError


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def init_distributed() -> None:
    """Create the process group under torchrun (gloo on CPU, nccl on GPUs); no-op for a single process.

    Trainer/accelerate reuse an existing group, so creating it early changes nothing for them.
    """
    if world_size() <= 1:
        return

    if dist.is_initialized():
        return
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")


def broadcast_from_main(value):
    """Rank 0's `value` on every rank (identity for a single process)."""
    if world_size() <= 1:
        return value

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def check_report_to(report_to: str) -> None:
    """Fail before training, not at its first log step, when the chosen tracker is not installed."""

    needs = {"tensorboard": ("tensorboard", "tensorboardX"), "wandb": ("wandb",)}.get(report_to, ())
    if needs and not any(importlib.util.find_spec(m) for m in needs):
        raise UserError(
            f"--report_to {report_to} needs the {needs[0]} package: pip install {needs[0]} (or use --report_to none)"
        )


def cpu_supports_bf16() -> bool:

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def precision(bf16_requested: bool) -> dict:
    """TrainingArguments fields for mixed precision: bf16 on GPUs that have it, fp16 on older GPUs (T4),
    fp32 on CPU unless --bf16 was asked for and the CPU supports it. Weights stay float32 either way."""

    if torch.cuda.is_available():
        if torch.cuda.is_bf16_supported():
            return {"bf16": True, "fp16": False, "use_cpu": False}
        return {"bf16": False, "fp16": True, "use_cpu": False}
    mps = getattr(torch.backends, "mps", None)
    on_mps = bool(mps and mps.is_available())
    if bf16_requested:
        if on_mps or not cpu_supports_bf16():
            raise UserError("--bf16 needs a GPU or a CPU with bf16 instructions (avx512_bf16/AMX); drop --bf16")
        return {"bf16": True, "fp16": False, "use_cpu": not on_mps}
    return {"bf16": False, "fp16": False, "use_cpu": not on_mps}


def device_name() -> str:

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores)"


def reset_peak_memory() -> None:
    """Start a new peak: CUDA's statistics, or on Linux the process's resident high-water mark (VmHWM, reset by
    writing 5 to /proc/self/clear_refs). Elsewhere the CPU peak stays the process's, and says so in the record."""

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_memory_mb() -> float:
    """Peak accelerator memory if training ran on a GPU, else the peak resident memory since reset_peak_memory()."""

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # KiB
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return float("nan")
