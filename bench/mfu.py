"""CPU model FLOPs utilisation of GPT-2-124M pretraining (6 * N * tokens/s) vs this machine's measured matmul peak.

    python bench/mfu.py                 # GPT-2-124M shape (random init), batch 4 x 256, 4 steps fp32 (+ 4 bf16)
    python bench/mfu.py --tiny          # tiny-gpt2, 2 steps, small matmuls (checks the script runs)

Training: `trainers.pretrain.build_pretrain_trainer` with the arguments `dlm train` builds (fp32; bf16 = CPU
autocast, only where the CPU has bf16 instructions). N = all parameters, the tied embedding counted once (it is
also the output layer's matmul); attention-score FLOPs (12 * layers * seq_len * d_model per token, ~4% here)
are left out, as the usual 6N definition does. Peak: the best of a few square matmuls (torch.mm, 2048^3) in
the same dtype, measured right after every training step, so the machine's load at that moment affects both
numbers alike. MFU = median achieved FLOP/s over steps (first step = warm-up, not counted) / median peak.
"""

from __future__ import annotations

import tempfile
import time

import benchlib as common


def matmul_flops(dtype_name: str, n: int) -> float:
    import torch

    return common.matmul_peak(getattr(torch, dtype_name), n)


def timed_steps_with_peak(dtype_name: str, n: int):
    """A TrainerCallback: seconds of each step (from the previous step end, batch fetch included), then the
    matmul peak measured right after it; the peak's own time is not charged to the next step."""
    from transformers import TrainerCallback

    class _StepsAndPeak(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.peaks: list[float] = []
            self.last = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.peaks.append(matmul_flops(dtype_name, n))
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.last)
            self.peaks.append(matmul_flops(dtype_name, n))
            self.last = time.perf_counter()

    return _StepsAndPeak()


def train_steps(model, tokenizer, texts, batch, length, steps, bf16, peak_n) -> dict:
    import datasets
    from sft_throughput import dlm_args

    from dlm.trainers import runtime
    from dlm.trainers.pretrain import build_pretrain_trainer
    from dlm.trainers.train import _quiet_trainer

    probe = timed_steps_with_peak("bfloat16" if bf16 else "float32", peak_n)
    with tempfile.TemporaryDirectory() as out:
        args = dlm_args(out, batch, length, steps, 1e-4)
        args.update(runtime.precision(bf16))
        data = datasets.Dataset.from_list([{"text": t} for t in texts])
        trainer, _ = build_pretrain_trainer(model, tokenizer, data, args, length, callbacks=[probe])
        _quiet_trainer(trainer)
        trainer.train()
    return {"step_s": probe.times, "peak_flops": probe.peaks}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--no-bf16", action="store_true", help="fp32 only")
    args = common.parse(p, argv)
    peak_n = 2048
    if args.tiny:
        args.steps, args.batch, args.length, args.no_bf16, peak_n = 2, 2, 64, True, 256

    import copy

    import torch
    from pretrain_step import corpus

    from dlm.trainers import runtime
    from dlm.trainers.models import count_params, load_model
    from dlm.trainers.train import _quiet_libraries

    tiny_model, tokenizer = load_model("tiny-gpt2", for_training=True)
    base = tiny_model if args.tiny else common.gpt2_124m()
    tokenizer = tokenizer if args.tiny else common.gpt2_tokenizer()
    _, n_params = count_params(base)
    texts = corpus(200 if args.tiny else 4000)
    tokens_per_step = args.batch * args.length
    flops_per_step = 6 * n_params * tokens_per_step
    precisions = ["float32"] + ([] if args.no_bf16 or not runtime.cpu_supports_bf16() else ["bfloat16"])
    print(
        f"model {'tiny' if args.tiny else 'gpt2-124m'}: N = {n_params / 1e6:.1f}M, batch {args.batch} x "
        f"{args.length}, {args.steps} steps per precision, torch threads {torch.get_num_threads()}, "
        f"bf16 instructions: {runtime.cpu_supports_bf16()}",
        flush=True,
    )
    results, lines = {}, []
    with _quiet_libraries():
        for dtype in precisions:
            run = train_steps(
                copy.deepcopy(base), tokenizer, texts, args.batch, args.length, args.steps, dtype == "bfloat16", peak_n
            )
            times = run["step_s"][1:] or run["step_s"]  # the first step is warm-up
            achieved = [flops_per_step / t for t in times]
            peak = common.median(run["peak_flops"])
            mfu = common.median(achieved) / peak
            results[dtype] = {"step_s": times, "achieved_flops": achieved, "peak_flops": run["peak_flops"], "mfu": mfu}
            print(
                f"{dtype}: {common.median(times):.2f} s/step ({tokens_per_step / common.median(times):,.0f} "
                f"tokens/s), achieved {common.median(achieved) / 1e9:.1f} GFLOP/s, matmul peak "
                f"{peak / 1e9:.1f} GFLOP/s ({common.spread([f / 1e9 for f in run['peak_flops']])})",
                flush=True,
            )
            target = 0.30 if dtype == "float32" else float("nan")
            lines.append(common.result_line(f"mfu[{dtype}]", mfu, target, False, "6*N*tokens/s / measured matmul peak"))
    payload = {"bench": "mfu", "args": vars(args), "n_params": n_params, "results": results, "lines": lines}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
