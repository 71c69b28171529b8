"""`dlm train --dry-run`: what a training run would cost, said before anything is loaded, trained or written.

The run is checked as a real one is up to the point where it would load the model (settings, data names, the
output directory's state), then sized from the model's config alone (trainers/memory.py: built on the meta
device, no weights): parameters, the time estimate of trainers/estimate.py, and the estimated peak memory on the
device asked for (`--target-device`, default the GPU at hand, else this CPU), with whether it fits.
"""

from __future__ import annotations

from pathlib import Path

from dlm.config import TrainConfig
from dlm.data.loading import lookup
from dlm.errors import UserError
from dlm.trainers import estimate, memory
from dlm.trainers.checkpoints import check_unfinished, prepare_output_dir, resumed_step
from dlm.trainers.progress import format_duration


def dry_run(cfg: TrainConfig, out=print) -> dict:
    """Print the run's size, time and memory estimates; return them (nothing is written)."""
    cfg.validate()
    for part in cfg.data.parts:  # a misspelt dataset fails as it would in a real run
        lookup(part.dataset, part.config)
    device = memory.known_device(cfg.target_device, "--target-device") if cfg.target_device else memory.local_device()
    resumed = 0
    if cfg.output_dir:
        checkpoint = prepare_output_dir(Path(cfg.output_dir).expanduser().resolve(), cfg.resume, cfg.overwrite)
        if checkpoint is not None:
            check_unfinished(checkpoint, cfg.max_steps)
            resumed = resumed_step(checkpoint)
    shape = memory.run_shape(cfg)
    if shape is None:
        raise UserError(
            f"--dry-run: the config of '{cfg.model}' is not at hand (not a local checkpoint, not in the Hugging "
            "Face cache); download it once, or size a study model by its alias (gpt2, gpt2-medium, qwen2-0.5b)"
        )
    peak = memory.estimate_run(cfg, shape, device)
    steps = max(cfg.max_steps - resumed, 0)
    tokens = steps * cfg.batch_size * cfg.gradient_accumulation_steps * cfg.max_length
    seconds, basis = estimate.predict_seconds(tokens, shape.total_params, device)
    out(f"dry run of {cfg.mode}{' (LoRA)' if cfg.lora else ''} on {cfg.model}: nothing is loaded, trained or written")
    out(
        f"  model: {shape.model_type}, {shape.total_params / 1e6:,.1f}M parameters, "
        f"{shape.trainable_params / 1e6:,.2f}M trained"
    )
    out(
        f"  steps: {steps}{f' (resuming at {resumed})' if resumed else ''} of {cfg.batch_size} x {cfg.max_length} "
        f"tokens, {cfg.gradient_accumulation_steps} micro-batches per step"
    )
    out(f"  time estimate: {format_duration(seconds)} ({basis})")
    out(f"  memory estimate: {peak.summary()}")
    for note in peak.notes:
        out(f"    note: {note}")
    if peak.fits is False:
        out(
            f"  the run {'may not fit' if peak.verdict == 'TIGHT' else 'does not fit'}: --gradient_checkpointing, a smaller --batch_size (raise "
            "--gradient_accumulation_steps to keep the batch), a shorter --max_length or --lora bring it down"
        )
    return {"device": device, "memory": peak.to_dict(), "time_s": seconds, "params": shape.total_params}
