"""SFT real tokens/s on Twitter-length texts: dlm's packed path vs TRL SFTTrainer's default padded batches.

    python bench/sft_throughput.py                  # GPT-2-124M shape (random init), 3 rounds x 3 steps each
    python bench/sft_throughput.py --model tiny     # the 2-layer tiny-gpt2 (overhead-bound, not compute-bound)
    python bench/sft_throughput.py --tiny           # a few seconds: checks the script runs
    python bench/sft_throughput.py --trl-padding max_length   # TRL padding every batch to max_length instead

Data: zeroshot/twitter-financial-news-sentiment as `dlm train --mode sft` formats it (prompt + completion,
~55 tokens per example with the tiny tokenizer), read from DLM_DATA_DIR (default samples/).
dlm side: `trainers.sft.build_sft_trainer` with the arguments `dlm train` builds (whole examples packed into rows
of nearly equal length <= max_length, position ids restarting per example, completion-only loss, LM head applied
at the supervised positions only).
TRL side: `SFTTrainer` with SFTConfig's defaults for the data path (no packing, not padding-free, pad to the
longest example of each batch, completion-only loss). Both sides: same model, same batch_size, fp32, no activation
checkpointing (TRL's own defaults, bf16=True and checkpointing on, do not start on a CPU without use_cpu and
would slow the baseline for reasons that have nothing to do with packing).
Real tokens = non-padding positions (prompt + completion + EOS). Rounds alternate (dlm, TRL, dlm, TRL, ...); each
builds its trainer afresh from the same initial weights and times `--steps` optimizer steps (the first is
warm-up, not counted). The ratio is of the median real tokens/s over rounds.
"""

from __future__ import annotations

import copy
import tempfile

import benchlib as common

DATASET = "zeroshot/twitter-financial-news-sentiment"


class CountingCollator:
    """Wraps a trainer's collator: real tokens and positions of every batch, in the order steps consume them."""

    def __init__(self, inner):
        self.inner, self.real, self.positions = inner, [], []

    def __call__(self, rows):
        batch = self.inner(rows)
        positions = batch["input_ids"].numel()
        if "real_tokens" in batch:
            real = int(batch["real_tokens"].sum())
        elif "attention_mask" in batch:
            real = int(batch["attention_mask"].sum())
        else:
            real = positions
        self.real.append(real)
        self.positions.append(positions)
        return batch


def sft_data(n_rows: int | None):
    from dlm.config import MixtureSpec
    from dlm.trainers.mixture import training_dataset

    dataset, _ = training_dataset(MixtureSpec.single(DATASET), "sft", max_rows=n_rows)
    return dataset


def dlm_args(out: str, batch: int, max_length: int, steps: int, lr: float) -> dict:
    """The TrainingArguments `dlm train --mode sft` builds, with saving and logging out of the way."""
    from pathlib import Path

    from dlm.config import TrainConfig
    from dlm.trainers.train import _training_args

    cfg = TrainConfig(
        model="bench",
        dataset=DATASET,
        mode="sft",
        max_steps=steps,
        batch_size=batch,
        gradient_accumulation_steps=1,
        max_length=max_length,
    )
    args = _training_args(cfg, Path(out), lr)
    args.update(save_strategy="no", logging_steps=10**6, logging_first_step=False)
    return args


def dlm_trainer(model, tokenizer, dataset, out, batch, max_length, steps, lr, callbacks):
    from dlm.trainers.sft import build_sft_trainer

    return build_sft_trainer(
        model, tokenizer, dataset, dlm_args(out, batch, max_length, steps, lr), max_length, callbacks=callbacks
    )


def trl_trainer(model, tokenizer, dataset, out, batch, steps, lr, callbacks, pad_to: int | None = None):
    """SFTTrainer as shipped: only what a CPU run must set (use_cpu, fp32) and what is held equal (no
    activation checkpointing, batch size, steps, learning rate, no saving or logging) is passed. `pad_to`: pad
    every batch to that many positions (the fixed-shape batches of a classic fine-tuning script) instead of
    TRL's default, the longest example of the batch."""
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(
        output_dir=out,
        pad_to_multiple_of=pad_to,
        max_length=pad_to or 1024,
        max_steps=steps,
        per_device_train_batch_size=batch,
        learning_rate=lr,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        logging_steps=10**6,
        dataloader_num_workers=0,
        seed=42,
    )
    return SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer, callbacks=callbacks)


def counted(trainer) -> CountingCollator:
    from dlm.trainers.train import _quiet_trainer

    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    _quiet_trainer(trainer)
    return counter


def tokens_per_s(times, real, skip: int) -> float:
    """Real tokens over time of the steps after warm-up (batch i is consumed by step i: no accumulation)."""
    return sum(real[skip : len(times)]) / sum(times[skip:])


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--model", choices=("gpt2-124m", "tiny"), default="gpt2-124m")
    p.add_argument("--batch", type=int, default=8, help="per-device batch size, both sides (TRL's default: 8)")
    p.add_argument("--max-length", type=int, default=256, help="dlm's packed row length (dlm's default: 256)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps per side per round")
    p.add_argument("--rounds", type=int, default=None, help="alternated rounds (dlm, TRL, dlm, TRL, ...)")
    p.add_argument(
        "--trl-padding",
        choices=("longest", "max_length"),
        default="longest",
        help="TRL side: its default (pad to the longest example of each batch) or pad to --max-length",
    )
    args = common.parse(p, argv)
    if args.tiny:
        args.model, args.steps, args.batch, args.max_length, args.rounds = "tiny", 2, 4, 128, 1
    steps = args.steps or (3 if args.model == "gpt2-124m" else 12)
    rounds = args.rounds or (3 if args.model == "gpt2-124m" else 5)

    import torch

    from dlm.trainers.models import load_model
    from dlm.trainers.train import _quiet_libraries

    if args.model == "tiny":
        base, tokenizer = load_model("tiny-gpt2", for_training=True)
    else:  # GPT-2's real tokenizer: real label tokens and tweet lengths
        base, tokenizer = common.gpt2_124m(), common.gpt2_tokenizer()
    dataset = sft_data(40 if args.tiny else None)
    lr = 5e-5
    print(
        f"model {args.model} ({sum(p.numel() for p in base.parameters()) / 1e6:.1f}M params), {len(dataset)} "
        f"examples of {DATASET}, batch {args.batch}, dlm max_length {args.max_length}, {steps} steps per "
        f"side per round, {rounds} alternated rounds, torch threads {torch.get_num_threads()}",
        flush=True,
    )

    pad_to = args.max_length if args.trl_padding == "max_length" else None
    skip = 1  # the first step of every run pays allocator/optimizer warm-up

    def run(build) -> dict:
        timer = common.StepTimes.make()
        with tempfile.TemporaryDirectory() as out:
            trainer = build(copy.deepcopy(base), out, [timer])
            counter = counted(trainer)
            trainer.train()
        times = timer.times[skip:]
        real = counter.real[skip : len(timer.times)]
        positions = counter.positions[skip : len(timer.times)]
        return {"tokens_per_s": sum(real) / sum(times), "step_s": times, "real": real, "positions": positions}

    sides = {
        "dlm": lambda: run(
            lambda m, out, cb: dlm_trainer(m, tokenizer, dataset, out, args.batch, args.max_length, steps, lr, cb)
        ),
        "trl": lambda: run(
            lambda m, out, cb: trl_trainer(m, tokenizer, dataset, out, args.batch, steps, lr, cb, pad_to)
        ),
    }
    with _quiet_libraries():
        runs = common.alternate(sides, rounds)
    summary = {}
    for name, results in runs.items():
        rates = [r["tokens_per_s"] for r in results]
        real = sum(sum(r["real"]) for r in results)
        positions = sum(sum(r["positions"]) for r in results)
        step_s = common.median([t for r in results for t in r["step_s"]])
        summary[name] = {
            "tokens_per_s": rates,
            "median_tokens_per_s": common.median(rates),
            "real_over_positions": real / positions,
            "median_step_s": step_s,
            "real_tokens_per_step": real / sum(len(r["real"]) for r in results),
        }
        print(
            f"{name:>4}: {common.median(rates):8.0f} real tok/s (rounds {common.spread(rates)}), "
            f"{step_s * 1000:.0f} ms/step median, {summary[name]['real_tokens_per_step']:.0f} real tokens/step, "
            f"real/positions {real / positions:.3f}",
            flush=True,
        )
    ratios = [a / b for a, b in zip(summary["dlm"]["tokens_per_s"], summary["trl"]["tokens_per_s"])]
    print(f"per-round ratios: {', '.join(f'{r:.2f}' for r in ratios)}")
    baseline = "TRL default padded" if pad_to is None else f"TRL padded to {pad_to}"
    line = common.result_line(
        f"sft_tokens_per_s[{args.model}]",
        summary["dlm"]["median_tokens_per_s"] / summary["trl"]["median_tokens_per_s"],
        3.0,
        False,
        f"dlm packed / {baseline}, real tokens/s",
    )
    payload = {"bench": "sft_throughput", "args": vars(args), "summary": summary, "result": line}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
