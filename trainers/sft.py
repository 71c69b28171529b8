"""Supervised fine-tuning with TRL's SFTTrainer on prompt/completion pairs (full fine-tuning or LoRA).

- Loss on the completion only: TRL tokenises `prompt` and `prompt + completion`, appends EOS to the completion
  and masks the prompt tokens with -100.
- Packed, padding-free batches: examples are binned best-fit-decreasing into rows of at most `max_length` tokens
  and a batch is concatenated into one sequence with position ids restarting per example (no padding computed,
  no attention across examples: the same block-diagonal mask as pretraining). The `bfd_split` strategy cuts an
  example longer than `max_length` into fragments instead of dropping its tail (plain `bfd` truncates), so no
  completion token - in particular no EOS - is silently lost.
- SFTConfig defaults that would break or slow a CPU run (bf16=True, gradient checkpointing on) are overridden by
  the caller's precision and checkpointing choices.
"""
from __future__ import annotations

PACKING_STRATEGY = "bfd_split"
SFT_COLUMNS = ("prompt", "completion")


def sft_columns_only(dataset):
    """Drop everything but prompt/completion: TRL would treat extra columns (e.g. `text`) as another format."""
    names = getattr(dataset, "column_names", None)
    if names is None:  # a streamed dataset with unknown features: trust the data layer
        return dataset
    missing = [c for c in SFT_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"SFT data needs columns prompt and completion; got {names}")
    extra = [c for c in names if c not in SFT_COLUMNS]
    return dataset.remove_columns(extra) if extra else dataset


def build_sft_trainer(model, tokenizer, dataset, args_kwargs: dict, max_length: int, callbacks=()):
    from trl import SFTConfig, SFTTrainer

    from trainers.pretrain import counting_trainer

    config = SFTConfig(**args_kwargs, max_length=max_length, packing=True, packing_strategy=PACKING_STRATEGY,
                       completion_only_loss=True)
    trainer = counting_trainer(SFTTrainer)(model=model, args=config, train_dataset=sft_columns_only(dataset),
                                           processing_class=tokenizer, callbacks=list(callbacks))
    return trainer


def packing_stats(packed_dataset, max_length: int, limit: int | None = None) -> dict:
    """How full the packed rows are, and what padding every example to max_length would give instead.

    `bin_fill` = real tokens / (rows x max_length); `padded_efficiency` = real tokens / (examples x max_length).
    Reads `limit` rows of a streamed dataset (re-reading its start), all rows of a finite one.
    """
    tokens = rows = examples = 0
    for row in packed_dataset:
        rows += 1
        tokens += len(row["input_ids"])
        examples += len(row["seq_lengths"]) if "seq_lengths" in row else 1
        if limit is not None and rows >= limit:
            break
    if not rows:
        return {"bin_fill": None, "padded_efficiency": None, "packed_rows": 0, "examples": 0}
    return {"bin_fill": tokens / (rows * max_length), "padded_efficiency": tokens / (examples * max_length),
            "packed_rows": rows, "examples": examples, "tokens": tokens}
