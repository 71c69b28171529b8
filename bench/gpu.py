"""Tokens/s and model FLOPs utilisation of dlm's pretraining and SFT on a GPU, GPT-2-124M and Qwen2-0.5B shapes.

    python bench/gpu.py                 # CUDA: both models x (pretrain, sft), dlm's GPU precision (bf16, or fp16)
    python bench/gpu.py --models gpt2-124m --modes pretrain --steps 30
    python bench/gpu.py --tiny          # tiny-gpt2, a few steps on whatever device there is (checks the script)

Models are random-init with the real configs (nothing downloaded); GPT-2 is fed its real tokenizer's ids, Qwen2
shrunk-qwen2's (Qwen2's special tokens over a small vocabulary: the real one is not vendored). Training goes
through `trainers.pretrain.build_pretrain_trainer` / `trainers.sft.build_sft_trainer` with the arguments
`dlm train` builds on this device (mixed precision per `trainers.runtime.precision`; SFT uses TRL's padding-free
path where FlashAttention is installed, stacked equal-length rows otherwise). Pretraining: packed 1,024-token
blocks of the sample corpora; SFT: zeroshot/twitter-financial-news-sentiment prompt/completion pairs in 512-token
rows.
Step time: CUDA-synchronised step ends, the first `--warmup` steps not counted. Tokens/s counts real tokens;
MFU = 6 * N * positions/s (padding included, since it is computed) / the measured dense matmul peak (best of
torch.mm 8192^3 in the training dtype). N counts the tied embedding once; attention-score FLOPs are left out, as
in the usual 6N definition (they add ~10% at 1,024 tokens for GPT-2-124M). Memory: torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import copy
import gc
import tempfile

import benchlib as common

SHAPES = {
    "gpt2-124m": (common.gpt2_124m, common.gpt2_tokenizer),
    "qwen2-0.5b": (common.qwen2_05b, common.qwen2_tokenizer),
}


def run_one(model, tokenizer, mode: str, batch: int, length: int, steps: int, device) -> dict:
    import datasets
    import torch
    from pretrain_step import corpus
    from sft_throughput import counted, dlm_args, sft_data

    timer = common.StepTimes.make(torch.cuda.synchronize if device.type == "cuda" else None)
    with tempfile.TemporaryDirectory() as out:
        args = dlm_args(out, batch, length, steps, 1e-4)
        if mode == "pretrain":
            from dlm.trainers.pretrain import build_pretrain_trainer

            texts = datasets.Dataset.from_list([{"text": t} for t in corpus(4 * batch * steps * length // 16)])
            trainer, _ = build_pretrain_trainer(model, tokenizer, texts, args, length, callbacks=[timer])
        else:
            from dlm.trainers.sft import build_sft_trainer

            trainer = build_sft_trainer(model, tokenizer, sft_data(None), args, length, callbacks=[timer])
        counter = counted(trainer)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        trainer.train()
    memory = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    return {
        "times": timer.times,
        "real": counter.real,
        "positions": counter.positions,
        "memory": memory,
        "bf16": bool(args.get("bf16")),
        "fp16": bool(args.get("fp16")),
    }


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--models", nargs="+", choices=sorted(SHAPES), default=sorted(SHAPES))
    p.add_argument("--modes", nargs="+", choices=("pretrain", "sft"), default=["pretrain", "sft"])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5, help="first steps not counted")
    p.add_argument("--batch", type=int, default=16, help="rows per step (pretrain and SFT)")
    args = common.parse(p, argv)

    import torch

    from dlm.trainers.models import count_params, load_model
    from dlm.trainers.train import _quiet_libraries

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny_model, tokenizer = load_model("tiny-gpt2", for_training=True)
    lengths = {"pretrain": 1024, "sft": 512}
    if args.tiny:
        args.steps, args.warmup, args.batch, lengths = 3, 1, 2, {"pretrain": 64, "sft": 128}
        builders = {"tiny": (lambda tok: copy.deepcopy(tiny_model), lambda: tokenizer)}
    else:
        if device.type != "cuda":
            raise SystemExit(
                "bench/gpu.py measures a GPU and none is visible (torch.cuda.is_available() is False); "
                "use --tiny to check the script on a CPU"
            )
        builders = {name: SHAPES[name] for name in args.models}
    name_of_device = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(
        f"device {name_of_device}, torch {torch.__version__}, {args.steps} steps ({args.warmup} warm-up), "
        f"batch {args.batch}",
        flush=True,
    )
    rows, lines = {}, []
    with _quiet_libraries():
        for model_name, (build, load_tokenizer) in builders.items():
            tokenizer = load_tokenizer()
            for mode in args.modes:
                model = build(tokenizer)
                _, n_params = count_params(model)
                run = run_one(model, tokenizer, mode, args.batch, lengths[mode], args.steps, device)
                del model
                dtype = torch.bfloat16 if run["bf16"] else torch.float16 if run["fp16"] else torch.float32
                peak = common.matmul_peak(dtype, 256 if args.tiny else 8192, device, repeats=5)
                counted_steps = slice(args.warmup, len(run["times"]))
                seconds = sum(run["times"][counted_steps])
                real = sum(run["real"][counted_steps]) / seconds
                positions = sum(run["positions"][counted_steps]) / seconds
                mfu = 6 * n_params * positions / peak
                key = f"{model_name}/{mode}"
                rows[key] = {
                    "n_params": n_params,
                    "length": lengths[mode],
                    "dtype": str(dtype),
                    "real_tokens_per_s": real,
                    "positions_per_s": positions,
                    "peak_flops": peak,
                    "mfu": mfu,
                    "max_memory_allocated": run["memory"],
                    "step_s": run["times"],
                }
                memory = f", {run['memory'] / 2**30:.1f} GiB allocated at most" if run["memory"] else ""
                print(
                    f"{key}: N = {n_params / 1e6:.0f}M, {str(dtype).replace('torch.', '')}, {args.batch} x "
                    f"{lengths[mode]}: {real:,.0f} real tokens/s ({positions:,.0f} positions/s), matmul peak "
                    f"{peak / 1e12:.1f} TFLOP/s{memory}",
                    flush=True,
                )
                lines.append(
                    common.result_line(
                        f"gpu_mfu[{key}]",
                        mfu,
                        float("nan"),
                        False,
                        f"6*N*positions/s / matmul peak on {name_of_device}",
                    )
                )
                gc.collect()  # the trainer, its optimizer states and the model go before the next shape is built
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    payload = {"bench": "gpu", "args": vars(args), "device": name_of_device, "rows": rows, "lines": lines}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
