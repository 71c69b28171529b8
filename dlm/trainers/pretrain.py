"""Continued pretraining on packed sequences.

Documents are tokenised, each followed by EOS, and laid end to end into blocks of exactly `max_length` tokens: no
padding except at the very end of a finite corpus, and no token is dropped (a document longer than the room left
continues in the next block). Every block carries `position_ids` that restart at 0 at each document start and at
each block start. With no attention_mask and no KV cache, transformers (5.x, `masking_utils`) turns restarting
position ids into a block-diagonal causal mask for every attention kernel on CPU (sdpa, eager) as on GPU, so a
token never attends across a document boundary: the logits of a document inside a block equal its logits alone
(tests/test_families.py checks it on GPT-2 and Qwen2). With a KV cache the mask is plain causal and documents see
each other, and a loaded model's config asks for one (use_cache=True): every training batch is therefore run with
use_cache=False (`counting_trainer`), whatever the config says. The first token of every segment is not a
prediction target (its only possible context would be the previous document).

Finite datasets are packed once into arrays (shuffled per epoch by the Trainer's seeded sampler, so resume can
skip consumed batches); streamed datasets (`datasets.IterableDataset`) are tokenised and packed lazily, so a run
of N steps reads about N x batch x max_length tokens of the corpus.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import datasets
import numpy as np
import torch
from transformers import Trainer, TrainingArguments, default_data_collator

from dlm.errors import UserError
from dlm.trainers.models import fuse_activations
from dlm.trainers.scrubbing import SafeSaves

IGNORE_INDEX = -100
TOKENIZE_BATCH = 1000


@dataclass
class PackStats:
    """Counts from packing: real tokens vs block positions, and what padding each document would cost instead."""

    documents: int = 0
    tokens: int = 0  # real tokens, EOS separators included
    blocks: int = 0
    padded_rows: int = 0  # rows needed if every document were padded to max_length (long ones split)

    def efficiency(self, max_length: int) -> float:
        return self.tokens / (self.blocks * max_length) if self.blocks else 0.0

    def padded_efficiency(self, max_length: int) -> float:
        return self.tokens / (self.padded_rows * max_length) if self.padded_rows else 0.0


def document_token_ids(texts: Iterable[str], tokenizer) -> Iterator[list[int]]:
    """Token ids of each non-empty text, ending with exactly one EOS (the tokenizer's own BOS, if any, kept)."""
    eos = tokenizer.eos_token_id
    batch: list[str] = []

    def encode(chunk):
        for ids in tokenizer(chunk, add_special_tokens=True, verbose=False)["input_ids"]:
            yield ids if ids and ids[-1] == eos else ids + [eos]

    for text in texts:
        if text and text.strip():
            batch.append(text)
        if len(batch) >= TOKENIZE_BATCH:
            yield from encode(batch)
            batch = []
    if batch:
        yield from encode(batch)


def pack_token_ids(
    documents: Iterable[list[int]], max_length: int, pad_id: int, stats: PackStats | None = None
) -> Iterator[tuple[list[int], list[int], int]]:
    """Blocks (input_ids, position_ids, n_real) of exactly max_length; only the last block may hold padding,
    always at its end (position ids 0.. as a segment of its own, never a prediction target)."""
    stats = stats if stats is not None else PackStats()
    ids: list[int] = []
    positions: list[int] = []
    for doc in documents:
        stats.documents += 1
        stats.tokens += len(doc)
        stats.padded_rows += -(-len(doc) // max_length)
        start = 0
        while start < len(doc):
            piece = doc[start : start + max_length - len(ids)]
            ids.extend(piece)
            positions.extend(range(len(piece)))
            start += len(piece)
            if len(ids) == max_length:
                stats.blocks += 1
                yield ids, positions, max_length
                ids, positions = [], []
    if ids:
        n_real = len(ids)
        stats.blocks += 1
        yield ids + [pad_id] * (max_length - n_real), positions + list(range(max_length - n_real)), n_real


def block_example(ids, positions, n_real: int) -> dict:
    """Model inputs of one block: labels are the inputs except segment starts and padding (-100)."""

    input_ids = torch.as_tensor(ids, dtype=torch.long)
    position_ids = torch.as_tensor(positions, dtype=torch.long)
    labels = input_ids.clone()
    labels[position_ids == 0] = IGNORE_INDEX
    labels[n_real:] = IGNORE_INDEX
    return {
        "input_ids": input_ids,
        "position_ids": position_ids,
        "labels": labels,
        "real_tokens": torch.tensor(n_real, dtype=torch.long),
    }


def texts_of(dataset, column: str = "text") -> Iterator[str]:
    """The text column of a datasets.Dataset / IterableDataset, read in batches (works for both)."""
    for batch in dataset.iter(batch_size=TOKENIZE_BATCH):
        yield from batch[column]


class PackedBlocks(torch.utils.data.Dataset):
    """A finite corpus packed once into int32 arrays (a few bytes per token)."""

    def __init__(self, dataset, tokenizer, max_length: int, column: str = "text"):
        self.stats = PackStats()
        ids, positions, n_real = [], [], []
        for block_ids, block_positions, real in pack_token_ids(
            document_token_ids(texts_of(dataset, column), tokenizer), max_length, tokenizer.pad_token_id, self.stats
        ):
            ids.append(np.asarray(block_ids, dtype=np.int32))
            positions.append(np.asarray(block_positions, dtype=np.int32))
            n_real.append(real)
        if not ids:
            raise UserError("the training data holds no text to pretrain on; check --dataset/--data_fraction")
        self.ids, self.positions, self.n_real = np.stack(ids), np.stack(positions), n_real

    def __len__(self):
        return len(self.n_real)

    def __getitem__(self, index):
        return block_example(self.ids[index], self.positions[index], self.n_real[index])


class StreamedBlocks(torch.utils.data.IterableDataset):
    """A streamed corpus, tokenised and packed while training consumes it."""

    def __init__(self, dataset, tokenizer, max_length: int, column: str = "text"):
        self.dataset, self.tokenizer, self.max_length, self.column = dataset, tokenizer, max_length, column
        self.stats = PackStats()

    def set_epoch(self, epoch: int):  # a new shuffle order per pass, like the finite case
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __iter__(self):
        docs = document_token_ids(texts_of(self.dataset, self.column), self.tokenizer)
        for block in pack_token_ids(docs, self.max_length, self.tokenizer.pad_token_id, self.stats):
            yield block_example(*block)


def packed_dataset(dataset, tokenizer, max_length: int, column: str = "text"):
    """PackedBlocks for a finite dataset, StreamedBlocks for a datasets.IterableDataset."""
    if isinstance(dataset, datasets.IterableDataset):
        return StreamedBlocks(dataset, tokenizer, max_length, column)
    return PackedBlocks(dataset, tokenizer, max_length, column)


def counting_trainer(base):
    """`base` (Trainer or SFTTrainer) that counts real tokens and processed positions of every trained batch.

    Real tokens go to `state.num_input_tokens_seen`, which checkpoints save, so the count survives --resume; the
    Trainer's own counter cannot tell padding from EOS when pad == eos (GPT-2). Positions are counted for this
    process's session only (packing efficiency = real / positions).
    """

    # class here: its base is the trainer class given (Trainer for pretraining, TRL's SFTTrainer for SFT)
    class CountingTrainer(SafeSaves, base):  # SafeSaves: no pickled arguments, no write through a link
        positions_processed = 0
        tokens_this_session = 0

        def training_step(self, model, inputs, num_items_in_batch=None):

            real = inputs.pop("real_tokens", None)  # the model must not see this key
            # no KV cache: only then do restarting position ids become a block-diagonal mask (module docstring)
            inputs["use_cache"] = False
            positions = inputs["input_ids"].numel()
            if real is not None:
                real = real.sum()
            elif "attention_mask" in inputs:
                real = inputs["attention_mask"].sum()
            else:  # padding-free batches (SFT packing): every position is a real token
                real = positions
            counts = torch.tensor([int(real), positions], dtype=torch.long, device=self.args.device)
            counts = self.accelerator.gather(counts).view(-1, 2).sum(0)
            self.state.num_input_tokens_seen += int(counts[0])
            self.tokens_this_session += int(counts[0])
            self.positions_processed += int(counts[1])
            return super().training_step(model, inputs, num_items_in_batch)

    CountingTrainer.__name__ = f"Counting{base.__name__}"
    return CountingTrainer


def build_pretrain_trainer(model, tokenizer, dataset, args_kwargs: dict, max_length: int, callbacks=()):
    """A Trainer over packed blocks of `dataset` (column "text")."""

    fuse_activations(model)
    blocks = packed_dataset(dataset, tokenizer, max_length)
    # remove_unused_columns would strip real_tokens before training_step sees it
    args = TrainingArguments(**args_kwargs, remove_unused_columns=False)
    trainer = counting_trainer(Trainer)(
        model=model,
        args=args,
        train_dataset=blocks,
        processing_class=tokenizer,
        data_collator=default_data_collator,
        callbacks=list(callbacks),
    )
    return trainer, blocks
