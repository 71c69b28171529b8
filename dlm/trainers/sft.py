"""Supervised fine-tuning with TRL's SFTTrainer on prompt/completion pairs (full fine-tuning or LoRA).

- Loss on the completion only: TRL tokenises `prompt` and `prompt + completion`, appends EOS to the completion
  and masks the prompt tokens with -100.
- Packed batches: examples are binned best-fit-decreasing into rows of at most `max_length` tokens, with position
  ids restarting per example and no attention_mask, so transformers builds a block-diagonal causal mask (no
  attention across examples, as in pretraining). Strategy `bfd`: an example longer than `max_length` keeps its
  first `max_length` tokens, like unpacked SFT truncation. (`bfd_split` would keep the tail as a separate
  fragment, i.e. train the completion without its prompt - measured: a tiny model then never learns the label from
  the text.) Truncated examples are counted and reported, so a too-small --max_length is visible.
- How bins become a batch depends on the attention kernel. With FlashAttention (varlen kernels) TRL's
  padding-free collator concatenates the batch into one row and attention costs sum(len_i^2). Without it (sdpa or
  eager: CPUs, most setups) one long row costs (batch x max_length)^2 through a dense mask - 8x the attention of
  8 separate rows - so bins are stacked as rows instead, padded to the longest bin of the batch. For that layout
  the examples are spread over bins of nearly equal length (`trainers.sft_packing`: 0.995+ real tokens per
  position on tweets, where TRL's bfd bins leave 0.93-0.96).
- SFTConfig defaults that would break or slow a CPU run (bf16=True, gradient checkpointing on) are overridden by
  the caller's precision and checkpointing choices.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from transformers import Trainer
from trl import SFTConfig, SFTTrainer

from dlm.trainers.models import fuse_activations
from dlm.trainers.pretrain import counting_trainer
from dlm.trainers.sft_packing import pack_equal_rows

PACKING_STRATEGY = "bfd"
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

    fuse_activations(model)
    config = SFTConfig(
        **args_kwargs, max_length=max_length, packing=True, packing_strategy=PACKING_STRATEGY, completion_only_loss=True
    )
    rows = not uses_varlen_attention(model)
    trainer = counting_trainer(EqualRowsSFTTrainer if rows else DlmSFTTrainer)(
        model=model,
        args=config,
        train_dataset=sft_columns_only(dataset),
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    if rows:
        trainer.data_collator = PackedRowsCollator(pad_token_id=tokenizer.pad_token_id)
    return trainer


class DlmSFTTrainer(SFTTrainer):
    """SFTTrainer whose loss on CPU is a plain cross-entropy over the supervised positions only.

    TRL computes the loss through a fused LM head that never materialises the logits; on GPUs its Triton kernel
    scores only the supervised positions (a real saving for 150k-token vocabularies), but without Triton it
    scores every position in Python-tiled chunks, which made a tiny-model CPU step ~3x slower than the plain
    loss. The plain loss in turn would apply the LM head to every position, though completion-only SFT
    supervises a few percent of them: `supervised_positions_loss` keeps only those (GPT-2-124M, 4 x 256:
    -30% step time, ~0.6 GB less memory). Same value either way: summed NLL of the completion tokens over
    the tokens in the batch.
    """

    def _prepare_dataset(self, dataset, processing_class, args, packing, formatting_func, dataset_name):
        if not (packing and self.equal_rows):
            return super()._prepare_dataset(dataset, processing_class, args, packing, formatting_func, dataset_name)

        # TRL's unpacked preparation: tokenise, mask the prompt, cut at max_length, drop unsupervised rows
        tokenized = super()._prepare_dataset(dataset, processing_class, args, False, formatting_func, dataset_name)
        return pack_equal_rows(tokenized, args.max_length)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.args.device.type == "cpu":
            inputs["use_cache"] = False
            if not return_outputs and "labels" in inputs and accepts_logits_to_keep(model):
                loss = supervised_positions_loss(model, inputs, num_items_in_batch)
                if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                    # num_items_in_batch is the count over all processes and DDP averages the gradients:
                    # scale back like Trainer.compute_loss does, or loss and gradient shrink by world size
                    loss = loss * self.accelerator.num_processes
                return loss
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


class EqualRowsSFTTrainer(DlmSFTTrainer):
    """For attention without varlen support: examples packed into stacked rows of nearly equal length."""

    equal_rows = True


def accepts_logits_to_keep(model) -> bool:
    """Whether the causal LM's forward takes `logits_to_keep` (transformers' models do; PEFT and DDP wrappers pass
    keyword arguments through to them)."""

    inner = getattr(model, "module", model)  # DDP
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner  # PEFT
    try:
        return "logits_to_keep" in inspect.signature(inner.forward).parameters
    except (TypeError, ValueError):
        return False


def supervised_positions_loss(model, inputs: dict, num_items_in_batch=None):
    """Causal-LM loss with the LM head applied only at positions whose next token is supervised.

    Position t predicts token t+1, so the positions kept are those where any row has labels[:, t+1] != -100
    (one index set for the whole batch, as `logits_to_keep` takes). The sum of token NLLs is divided by
    `num_items_in_batch` when the Trainer gives it (as the model's own loss does), else by the supervised count.
    """

    inputs = dict(inputs)
    labels = inputs.pop("labels")
    targets = labels[:, 1:]
    keep = (targets != -100).any(dim=0).nonzero().squeeze(-1)
    logits = model(**inputs, logits_to_keep=keep).logits
    picked = targets[:, keep]
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), picked.reshape(-1), ignore_index=-100, reduction="sum"
    )
    if num_items_in_batch is None:
        num_items_in_batch = (picked != -100).sum()
    return loss / num_items_in_batch


def uses_varlen_attention(model) -> bool:
    config = getattr(model, "config", None)
    return "flash" in str(getattr(config, "_attn_implementation", "") or "")


class PackedRowsCollator:
    """One row per packed bin, right-padded to the longest bin of the batch; position ids restart per example.

    Labels: TRL's completion mask, plus -100 at every example start (nothing precedes it in its own example) and
    on padding. `real_tokens` (popped before the forward) lets the trainer count tokens vs positions.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, rows: list[dict]) -> dict:

        width = max(len(row["input_ids"]) for row in rows)
        ids, positions, labels, real = [], [], [], []
        for row in rows:
            n, pad = len(row["input_ids"]), width - len(row["input_ids"])
            lengths = row.get("seq_lengths") or [n]
            row_positions = [i for length in lengths for i in range(length)] + list(range(pad))
            row_labels = [(-100 if p == 0 else t) for t, p in zip(row["labels"], row_positions)] + [-100] * pad
            ids.append(list(row["input_ids"]) + [self.pad_token_id] * pad)
            positions.append(row_positions)
            labels.append(row_labels)
            real.append(n)
        return {
            "input_ids": torch.tensor(ids),
            "position_ids": torch.tensor(positions),
            "labels": torch.tensor(labels),
            "real_tokens": torch.tensor(real),
        }


def packing_stats(packed_dataset, max_length: int, limit: int | None = None) -> dict:
    """How full the packed rows are, what padding every example to max_length would give instead, and how many
    examples reached max_length (were truncated, or fit exactly).

    `bin_fill` = real tokens / (rows x max_length); `padded_efficiency` = real tokens / (examples x max_length).
    Reads `limit` rows of a streamed dataset (re-reading its start), all rows of a finite one.
    """
    tokens = rows = examples = at_max = 0
    for row in packed_dataset:
        rows += 1
        tokens += len(row["input_ids"])
        lengths = row["seq_lengths"] if "seq_lengths" in row else [len(row["input_ids"])]
        examples += len(lengths)
        at_max += sum(1 for length in lengths if length >= max_length)
        if limit is not None and rows >= limit:
            break
    if not rows:
        return {"bin_fill": None, "padded_efficiency": None, "packed_rows": 0, "examples": 0}
    return {
        "bin_fill": tokens / (rows * max_length),
        "padded_efficiency": tokens / (examples * max_length),
        "packed_rows": rows,
        "examples": examples,
        "examples_at_max_length": at_max,
    }
