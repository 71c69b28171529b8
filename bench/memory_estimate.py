"""Peak-memory estimates (trainers/memory.py) vs the measured peak, on CPU, for the shrunk study models.

    python bench/memory_estimate.py          # shrunk-gpt2 and shrunk-qwen2: pretrain, SFT, SFT LoRA, checkpointing
    python bench/memory_estimate.py --tiny   # one small case (checks the script runs)

Each case builds the trainer `dlm train` builds (trainers.pretrain / trainers.sft, the same TrainingArguments) and
trains `--steps` steps (Adam's states exist from the second step on). Measured: the weights plus the peak of what
torch allocated on the CPU during training (the profiler's memory events: `profiled_peak`), i.e. the live
tensors, as torch.cuda.max_memory_allocated counts them on a GPU; not the process's resident set, which adds the
heap's cached pages and the libraries. Estimated: `memory.estimate` from the model's config alone, for the batch
shape the run had: SFT rows are packed to at most max_length (the estimate is given the widest row seen) and dlm's
CPU SFT loss computes logits at the supervised positions only (the estimate is given the most any batch kept);
before a run, `dlm train --dry-run` uses max_length and every position, upper bounds. Deterministic sizes: no
alternation needed. Every case runs in its own process (`run_case`).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import benchlib as common
import torch
from torch.profiler import ProfilerActivity, profile

MARK = "MEMORY_ESTIMATE_CASE "
DATASET = "zeroshot/twitter-financial-news-sentiment"
CASES = [  # family, mode, lora, batch, length, gradient checkpointing
    (family, mode, lora, batch, length, checkpointing)
    for family in ("shrunk-gpt2", "shrunk-qwen2")
    for (mode, lora, batch, length, checkpointing) in (
        ("pretrain", False, 8, 128, False),
        ("pretrain", False, 4, 256, True),
        ("sft", False, 8, 128, False),
        ("sft", True, 8, 128, False),
        ("sft", True, 4, 256, True),
    )
]


def profiled_peak(run) -> int:
    """Peak bytes torch allocated on the CPU while `run()` ran, above what was allocated before (from the profiler's
    memory events): the CPU counterpart of torch.cuda.max_memory_allocated, without the heap's cached pages that
    a resident-set peak also counts."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = [
        e
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU
    ]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak


def measure(family: str, mode: str, lora: bool, batch: int, length: int, checkpointing: bool = False, steps: int = 2):
    """(measured peak bytes, the estimate for the batch shapes this run had) of `steps` training steps."""
    from dlm.config import TrainConfig
    from dlm.trainers.memory import estimate, model_config, shape_of
    from dlm.trainers.mixture import training_dataset
    from dlm.trainers.models import apply_lora, load_model
    from dlm.trainers.pretrain import build_pretrain_trainer
    from dlm.trainers.sft import build_sft_trainer
    from dlm.trainers.train import _quiet_libraries, _quiet_trainer, _training_args

    cfg = TrainConfig(
        model=family,
        dataset=DATASET,
        mode=mode,
        max_steps=steps,
        batch_size=batch,
        gradient_accumulation_steps=1,
        max_length=length,
        lora=lora,
        gradient_checkpointing=checkpointing,
    )
    model, tokenizer = load_model(family, for_training=True)
    spec = cfg.adapter
    if lora:
        model = apply_lora(model, spec.r, spec.alpha, spec.dropout, spec.targets)
        if checkpointing:
            model.enable_input_require_grads()
    weights = sum({p.untyped_storage().data_ptr(): p.untyped_storage().nbytes() for p in model.parameters()}.values())
    widths, kept = [], []
    with _quiet_libraries(), tempfile.TemporaryDirectory() as out:
        data, _ = training_dataset(cfg.data, mode)
        args = _training_args(cfg, Path(out), 1e-4)
        args.update(save_strategy="no", logging_steps=10**6, logging_first_step=False)
        if mode == "pretrain":
            trainer, _ = build_pretrain_trainer(model, tokenizer, data, args, length)
        else:
            trainer = build_sft_trainer(model, tokenizer, data, args, length)
            collate = trainer.data_collator

            def counted(rows):
                batch_ = collate(rows)
                widths.append(batch_["input_ids"].shape[1])
                supervised = (batch_["labels"][:, 1:] != -100).any(dim=0)  # the positions the CPU loss keeps
                kept.append(int(supervised.sum()) * batch_["input_ids"].shape[0])
                return batch_

            trainer.data_collator = counted
        _quiet_trainer(trainer)
        torch.manual_seed(0)
        measured = weights + profiled_peak(trainer.train)
    lora_spec = {"r": spec.r, "alpha": spec.alpha, "dropout": spec.dropout} if lora else None
    estimated = estimate(
        shape_of(model_config(family), lora_spec),
        mode,
        batch,
        max(widths) if widths else length,
        "cpu",
        checkpointing=checkpointing,
        logit_positions=max(kept) if kept else None,
    )
    return measured, estimated


def run_case(case: tuple, steps: int = 2) -> dict:
    """One case in a fresh process: the profiler keeps the sizes of blocks across its sessions, so a block freed
    between two sessions in one process is later reported with a stale size (measured: -13 MB on one case)."""
    family, mode, lora, batch, length, checkpointing = case
    spec = f"{family},{mode},{int(lora)},{batch},{length},{int(checkpointing)},{steps}"
    done = common.run_process([common.python(), str(Path(__file__).resolve()), "--case", spec])
    done.check(f"memory case {spec}")
    line = next(line for line in done.output.splitlines() if line.startswith(MARK))
    return json.loads(line[len(MARK) :])


def child(spec: str) -> None:
    family, mode, lora, batch, length, checkpointing, steps = spec.split(",")
    measured, estimated = measure(family, mode, lora == "1", int(batch), int(length), checkpointing == "1", int(steps))
    print(MARK + json.dumps({"measured_bytes": measured, "estimate": estimated.to_dict()}), flush=True)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--case", default=None, help=argparse.SUPPRESS)
    args = common.parse(p, argv)
    if args.case:
        child(args.case)
        return {}
    cases = [("shrunk-qwen2", "sft", True, 2, 64, False)] if args.tiny else CASES
    rows = []
    print(f"{'case':<44} {'measured MB':>12} {'estimate MB':>12} {'ratio':>7}")
    for case in cases:
        family, mode, lora, batch, length, checkpointing = case
        result = run_case(case, args.steps)
        measured, peak = result["measured_bytes"], result["estimate"]["peak_bytes"]
        name = f"{family} {mode}{' lora' if lora else ''} {batch}x{length}{' ckpt' if checkpointing else ''}"
        print(f"{name:<44} {measured / 2**20:>12.1f} {peak / 2**20:>12.1f} {peak / measured:>7.3f}", flush=True)
        rows.append({"case": name, **result, "ratio": peak / measured})
    worst = max(rows, key=lambda r: abs(r["ratio"] - 1))
    results = [
        common.result_line(
            "memory_estimate_worst_error",
            abs(worst["ratio"] - 1),
            0.25,
            True,
            f"|estimate / measured CPU peak - 1|, worst of {len(rows)} cases: {worst['case']}, "
            f"ratio {worst['ratio']:.3f}",
        )
    ]
    payload = {"bench": "memory_estimate", "rows": rows, "results": results}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
