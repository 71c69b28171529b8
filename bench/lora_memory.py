"""Peak memory of LoRA vs full SFT on a GPT-2-124M-shaped model (target: LoRA <= 0.6x full).

    python bench/lora_memory.py            # GPT-2-124M shape (random init), batch 4 x 256, 3 steps, 2 rounds
    python bench/lora_memory.py --gradient-checkpointing   # both sides with activation checkpointing
    python bench/lora_memory.py --lora-dropout 0          # LoRA without dropout (peft's default; dlm's is 0.05)
    python bench/lora_memory.py --malloc-mmap-threshold 1048576   # both sides: glibc returns freed tensors at once
    python bench/lora_memory.py --tiny     # tiny-gpt2, 2 steps, in-process (checks the script runs)

Each run is its own process (peak RSS only grows within a process), alternated full, LoRA, full, LoRA, ...
A run builds the model, wraps it in LoRA adapters with dlm's defaults (r 16, alpha 32, dropout 0.05, every
attention and MLP projection) or not, and trains `--steps` steps through `trainers.sft.build_sft_trainer` on
zeroshot/twitter-financial-news-sentiment with the arguments `dlm train --mode sft` builds. Peak = the process's
maximum resident set (wait4), imports and all, as a user sees it; the part above the RSS before the model was
built is printed too.

Process RSS is more than what the tensors need: glibc keeps freed tensor memory in its heap for reuse, and the
LoRA forward (each adapted layer allocates its base output, the adapter output, its scaled copy and their sum)
fragments it; at 4 x 256 that is ~1.1 GB on either side. `--malloc-mmap-threshold BYTES` sets glibc's
MALLOC_MMAP_THRESHOLD_ for both sides' processes, so every tensor of at least BYTES is mapped and unmapped on its
own: RSS then tracks the live tensors (the allocator-independent ratio), at the price of ~1.3-1.7M page faults
per step (+35-70% step time on CPU), which is why dlm does not set it.
"""

from __future__ import annotations

import json
import sys
import tempfile

import benchlib as common

MARK = "LORA_MEMORY_CHILD "


def child(
    kind: str,
    tiny: bool,
    batch: int,
    length: int,
    steps: int,
    checkpointing: bool = False,
    lora_dropout: float | None = None,
) -> dict:
    from sft_throughput import dlm_args, sft_data

    from dlm.config import TrainConfig
    from dlm.trainers.models import apply_lora, count_params, load_model
    from dlm.trainers.sft import build_sft_trainer
    from dlm.trainers.train import _quiet_libraries, _quiet_trainer

    tiny_model, tokenizer = load_model("tiny-gpt2", for_training=True)
    tokenizer = tokenizer if tiny else common.gpt2_tokenizer()
    dataset = sft_data(40 if tiny else None)
    before_model = common.peak_rss_mb()
    model = tiny_model if tiny else common.gpt2_124m()
    if kind == "lora":
        spec = TrainConfig(model="bench", dataset="bench", lora=True).adapter  # dlm's LoRA defaults
        dropout = spec.dropout if lora_dropout is None else lora_dropout
        model = apply_lora(model, spec.r, spec.alpha, dropout, spec.targets)
        if checkpointing:  # as trainers/train.py does: checkpointed blocks need an input that requires grad
            model.enable_input_require_grads()
    trainable, total = count_params(model)
    with _quiet_libraries(), tempfile.TemporaryDirectory() as out:
        args = dlm_args(out, batch, length, steps, 1e-4)
        args["activation_checkpointing"] = checkpointing
        trainer = build_sft_trainer(model, tokenizer, dataset, args, length)
        _quiet_trainer(trainer)
        trainer.train()
    result = {
        "kind": kind,
        "before_model_mb": before_model,
        "peak_mb": common.peak_rss_mb(),
        "trainable": trainable,
        "total": total,
    }
    print(MARK + json.dumps(result), flush=True)
    return result


def run_child(kind: str, args) -> dict:
    if args.tiny:  # in this process: checks the code path, measures nothing
        result = child(kind, True, args.batch, args.length, args.steps, args.gradient_checkpointing, args.lora_dropout)
        return {**result, "process_peak_mb": result["peak_mb"]}
    cmd = (
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--batch",
            str(args.batch),
            "--length",
            str(args.length),
            "--steps",
            str(args.steps),
        ]
        + (["--tiny"] if args.tiny else [])
        + (["--gradient-checkpointing"] if args.gradient_checkpointing else [])
        + (["--lora-dropout", str(args.lora_dropout)] if args.lora_dropout is not None else [])
    )
    env = {"MALLOC_MMAP_THRESHOLD_": str(args.malloc_mmap_threshold)} if args.malloc_mmap_threshold else None
    result = common.run_process(cmd, env=env).check(f"{kind} run")
    line = next(text for text in result.output.splitlines() if text.startswith(MARK))
    return {**json.loads(line[len(MARK) :]), "process_peak_mb": result.peak_rss_mb}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument(
        "--gradient-checkpointing",
        action="store_true",
        help="both sides with `dlm train --gradient_checkpointing` (activations recomputed)",
    )
    p.add_argument(
        "--lora-dropout",
        type=float,
        default=None,
        help="LoRA dropout (default: dlm's, dlm.config.TrainConfig.lora_dropout)",
    )
    p.add_argument(
        "--malloc-mmap-threshold",
        type=int,
        default=None,
        metavar="BYTES",
        help="glibc MALLOC_MMAP_THRESHOLD_ for both sides' processes (RSS then tracks live tensors)",
    )
    p.add_argument("--child", choices=("full", "lora"), help=argparse_hidden())
    args = common.parse(p, argv)
    if args.tiny:
        args.rounds, args.steps = 1, 2
    if args.child:
        child(
            args.child, args.tiny, args.batch, args.length, args.steps, args.gradient_checkpointing, args.lora_dropout
        )
        return {}
    runs = common.alternate({kind: (lambda k=kind: run_child(k, args)) for kind in ("full", "lora")}, args.rounds)
    summary = {}
    for kind, results in runs.items():
        peak = common.median([r["process_peak_mb"] for r in results])
        above = common.median([r["process_peak_mb"] - r["before_model_mb"] for r in results])
        summary[kind] = {
            "peak_mb": peak,
            "above_start_mb": above,
            "trainable": results[0]["trainable"],
            "total": results[0]["total"],
        }
        print(
            f"{kind:>4}: peak RSS {peak:,.0f} MB ({common.spread([r['process_peak_mb'] for r in results])}), "
            f"{above:,.0f} MB above the RSS before the model was built; trainable "
            f"{results[0]['trainable'] / 1e6:.2f}M of {results[0]['total'] / 1e6:.2f}M",
            flush=True,
        )
    if summary["full"]["above_start_mb"] > 0:
        print(
            f"ratio of the memory above the start (training only): "
            f"{summary['lora']['above_start_mb'] / summary['full']['above_start_mb']:.3f}"
        )
    name = (
        ("tiny" if args.tiny else "gpt2-124m")
        + (", checkpointing" if args.gradient_checkpointing else "")
        + (f", lora_dropout {args.lora_dropout:g}" if args.lora_dropout is not None else "")
        + (f", mmap threshold {args.malloc_mmap_threshold}" if args.malloc_mmap_threshold else "")
    )
    line = common.result_line(
        f"lora_peak_memory[{name}]",
        summary["lora"]["peak_mb"] / summary["full"]["peak_mb"],
        0.6,
        True,
        "LoRA / full SFT, process peak RSS",
    )
    payload = {"bench": "lora_memory", "args": vars(args), "runs": runs, "summary": summary, "result": line}
    common.write_json(args.json_out, payload)
    return payload


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
