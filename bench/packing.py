"""Packing efficiency (real tokens / positions processed) of dlm's pretrain and SFT batches on short texts.

    python bench/packing.py            # one epoch of each short-text sample set through the real dataloaders
    python bench/packing.py --tiny     # one dataset, a few seconds
    python bench/packing.py --tokenizer tiny   # tiny-gpt2's BPE instead of GPT-2's real tokenizer (earlier rounds)

Nothing is trained: each dataset goes through the same Trainer dataloader and collator `dlm train` uses, and the
batches of one epoch are counted. The sample snapshots hold a few hundred rows each, so they are cycled to
`--rows` examples (default 5,000): the size of a small real set, where the one partly filled block at the end of
a finite corpus stops mattering (with 300 rows it alone costs a few percent). Positions = every input position the model computes (padding included); real tokens = the
text's tokens (EOS separators included). Alongside, what padding gives on the same rows: TRL SFTTrainer's default
(pad to the longest example of each batch) and padding every example to max_length (the classic fixed-shape batch).
Deterministic: no timing, so no alternation is needed.
"""

from __future__ import annotations

import tempfile

import benchlib as common

SHORT_TEXT_SETS = (
    "zeroshot/twitter-financial-news-sentiment",
    "takala/financial_phrasebank",
    "TheFinAI/fiqa-sentiment-classification",
    "zeroshot/twitter-financial-news-topic",
)


def count_batches(loader) -> tuple[int, int]:
    real = positions = 0
    for batch in loader:
        n = batch["input_ids"].numel()
        positions += n
        if "real_tokens" in batch:
            real += int(batch["real_tokens"].sum())
        elif "attention_mask" in batch:
            real += int(batch["attention_mask"].sum())
        else:
            real += n
    return real, positions


def pretrain_efficiency(model, tokenizer, dataset, batch: int, max_length: int) -> dict:
    from sft_throughput import dlm_args

    from dlm.trainers.pretrain import build_pretrain_trainer

    with tempfile.TemporaryDirectory() as out:
        args = dlm_args(out, batch, max_length, 1, 1e-4)
        trainer, blocks = build_pretrain_trainer(model, tokenizer, dataset, args, max_length)
        real, positions = count_batches(trainer.get_train_dataloader())
    return {
        "dlm": real / positions,
        "pad_to_max_length": blocks.stats.padded_efficiency(max_length),
        "documents": blocks.stats.documents,
        "blocks": blocks.stats.blocks,
    }


def sft_efficiency(model, tokenizer, dataset, batch: int, max_length: int) -> dict:
    from sft_throughput import dlm_args
    from trl import SFTConfig, SFTTrainer

    from dlm.trainers.sft import build_sft_trainer

    with tempfile.TemporaryDirectory() as out:
        ours = build_sft_trainer(model, tokenizer, dataset, dlm_args(out, batch, max_length, 1, 1e-4), max_length)
        real, positions = count_batches(ours.get_train_dataloader())
        config = SFTConfig(
            output_dir=out,
            per_device_train_batch_size=batch,
            use_cpu=True,
            bf16=False,
            activation_checkpointing=False,
            report_to="none",
            max_length=max_length,
        )
        trl = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        trl_real, trl_positions = count_batches(trl.get_train_dataloader())
        examples = len(trl.train_dataset)
    return {
        "dlm": real / positions,
        "trl_default_padding": trl_real / trl_positions,
        "pad_to_max_length": trl_real / (examples * max_length),
        "examples": examples,
        "mean_tokens": trl_real / examples,
    }


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--rows", type=int, default=5000, help="examples per dataset (the samples are cycled to this)")
    p.add_argument(
        "--tokenizer", choices=("gpt2", "tiny"), default="gpt2", help="GPT-2's real tokenizer, or tiny-gpt2's BPE"
    )
    args = common.parse(p, argv)
    names = SHORT_TEXT_SETS[:1] if args.tiny else SHORT_TEXT_SETS

    from dlm.config import MixtureSpec
    from dlm.trainers.mixture import training_dataset
    from dlm.trainers.models import load_model
    from dlm.trainers.train import _quiet_libraries

    # shrunk-gpt2: GPT-2's real tokenizer (token counts as GPT-2 models see them); tiny: the tiny BPE of before
    model, tokenizer = load_model("shrunk-gpt2" if args.tokenizer == "gpt2" else "tiny-gpt2", for_training=True)
    rows = {}
    with _quiet_libraries():
        for name in names:
            limit = 60 if args.tiny else args.rows
            pre, _ = training_dataset(MixtureSpec.single(name), "pretrain", max_rows=limit)
            sft, _ = training_dataset(MixtureSpec.single(name), "sft", max_rows=limit)
            rows[name] = {
                "pretrain": pretrain_efficiency(model, tokenizer, pre, args.batch, args.max_length),
                "sft": sft_efficiency(model, tokenizer, sft, args.batch, args.max_length),
            }
    print(
        f"{args.tokenizer} tokenizer, max_length {args.max_length}, batch {args.batch}; real tokens / positions "
        "over one epoch"
    )
    print(
        f"{'dataset':<45} {'pretrain dlm':>12} {'pad/max':>8} | {'sft dlm':>8} {'TRL pad':>8} {'pad/max':>8} "
        f"{'tok/ex':>6}"
    )
    for name, row in rows.items():
        pre, sft = row["pretrain"], row["sft"]
        print(
            f"{name:<45} {pre['dlm']:>12.3f} {pre['pad_to_max_length']:>8.3f} | {sft['dlm']:>8.3f} "
            f"{sft['trl_default_padding']:>8.3f} {sft['pad_to_max_length']:>8.3f} {sft['mean_tokens']:>6.0f}"
        )
    results = [
        common.result_line(
            "packing_efficiency[pretrain]",
            min(r["pretrain"]["dlm"] for r in rows.values()),
            0.98,
            False,
            "worst dataset, real tokens / positions",
        ),
        common.result_line(
            "packing_efficiency[sft]",
            min(r["sft"]["dlm"] for r in rows.values()),
            0.98,
            False,
            "worst dataset, real tokens / positions",
        ),
    ]
    payload = {"bench": "packing", "args": vars(args), "rows": rows, "results": results}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
