"""Pretraining step time: dlm's packed Trainer vs a minimal hand-written PyTorch loop, same model, same batches.

    python bench/pretrain_step.py                          # tiny-gpt2, batch 8 x 128, 60 steps each
    python bench/pretrain_step.py --gpt2-124m --batch 4 --length 256 --steps 6   # GPT-2 124M shape
    python bench/pretrain_step.py --tiny                   # a few seconds: checks the script runs

Both loops do the same work per step: fetch a batch of packed blocks (position ids, no attention mask) from a
DataLoader with the same collator, forward, backward, gradient clipping at 1.0, fused AdamW, zero_grad. The dlm
side is `trainers.pretrain.build_pretrain_trainer` with the arguments `dlm train` builds. Both start from the
same initial weights (with the fused tanh-GELU dlm's trainers install, so the arithmetic is identical) and are
interleaved one optimizer step at a time in the same thread (dlm, hand, dlm, hand, ...: the hand step runs
inside a Trainer callback and is timed apart), so load from other users of the machine hits both alike; the
first steps are warm-up and not counted.
Prints median step times and their ratio (dlm / hand loop), and the corpus's packing efficiency.
"""

from __future__ import annotations

import copy
import tempfile
import time

import benchlib as common


def corpus(n_docs: int) -> list[str]:
    from dlm.trainers.tiny import sample_texts

    texts = [t for t in sample_texts() if len(t) > 20]
    return (texts * (n_docs // max(len(texts), 1) + 1))[:n_docs]


class HandLoop:
    """The hand-written loop, one step per call: fetch, forward, backward, clip, fused AdamW, zero_grad."""

    def __init__(self, model, blocks, batch: int, lr: float):
        import torch
        from transformers import default_data_collator

        self.torch = torch
        self.model = model
        model.train()
        model.config.use_cache = False
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)
        self.loader = torch.utils.data.DataLoader(
            blocks,
            batch_size=batch,
            shuffle=True,
            collate_fn=default_data_collator,
            generator=torch.Generator().manual_seed(0),
        )
        self.batches = iter(self.loader)

    def step(self) -> None:
        try:
            inputs = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            inputs = next(self.batches)
        inputs.pop("real_tokens")
        loss = self.model(**inputs).loss
        loss.backward()
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def interleaved(hand: HandLoop):
    """A TrainerCallback that runs one hand-loop step after every Trainer step, in the same thread, and times
    both: the Trainer's step from the end of the previous hand step to its own end (batch fetch included)."""
    from transformers import TrainerCallback

    class _Interleave(TrainerCallback):
        def __init__(self):
            self.times = {"hand": [], "dlm": []}
            self.last = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            now = time.perf_counter()
            self.times["dlm"].append(now - self.last)
            hand.step()
            self.last = time.perf_counter()
            self.times["hand"].append(self.last - now)

    return _Interleave()


def dlm_trainer(model, tokenizer, data, out: str, length: int, batch: int, steps: int, lr: float, callbacks):
    from sft_throughput import dlm_args

    from dlm.trainers.pretrain import build_pretrain_trainer
    from dlm.trainers.train import _quiet_trainer

    trainer, _ = build_pretrain_trainer(
        model, tokenizer, data, dlm_args(out, batch, length, steps, lr), length, callbacks=callbacks
    )
    _quiet_trainer(trainer)
    return trainer


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument(
        "--gpt2-124m",
        "--gpt2-config",
        dest="gpt2",
        action="store_true",
        help="GPT-2 124M shape (random init) instead of tiny-gpt2",
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--length", type=int, default=128)
    p.add_argument("--steps", type=int, default=None, help="steps per side per round")
    p.add_argument("--docs", type=int, default=4000)
    args = common.parse(p, argv)
    if args.tiny:
        args.gpt2, args.steps, args.docs, args.batch = False, 3, 200, 4
    steps = args.steps or (6 if args.gpt2 else 60)

    import datasets
    import torch

    from dlm.trainers.models import load_model
    from dlm.trainers.pretrain import PackStats, document_token_ids, pack_token_ids, packed_dataset
    from dlm.trainers.train import _quiet_libraries

    tiny_model, tokenizer = load_model("tiny-gpt2", for_training=True)
    base = common.gpt2_124m() if args.gpt2 else tiny_model
    tokenizer = common.gpt2_tokenizer() if args.gpt2 else tokenizer
    # dlm's trainers run GPT-2 with the fused tanh-GELU; the hand loop gets the same model, so the two sides do
    # identical arithmetic and the ratio is the training loop's own overhead
    from dlm.trainers.models import fuse_activations

    fuse_activations(base)
    texts = corpus(args.docs)
    stats = PackStats()
    for _ in pack_token_ids(document_token_ids(texts, tokenizer), args.length, tokenizer.pad_token_id, stats):
        pass
    print(
        f"corpus: {stats.documents} docs, {stats.tokens} tokens, max_length {args.length}: "
        f"packing efficiency {stats.efficiency(args.length):.3f} vs padding per document "
        f"{stats.padded_efficiency(args.length):.3f} ({stats.blocks} packed rows vs {stats.padded_rows} padded)"
    )
    data = datasets.Dataset.from_list([{"text": t} for t in texts])
    blocks = packed_dataset(data, tokenizer, args.length)
    lr = 1e-4
    name = "gpt2-124m" if args.gpt2 else "tiny"
    print(
        f"model {name} ({sum(p.numel() for p in base.parameters()) / 1e6:.1f}M params), batch {args.batch} x "
        f"{args.length}, {steps} steps each, interleaved, torch threads {torch.get_num_threads()}",
        flush=True,
    )
    probe = interleaved(HandLoop(copy.deepcopy(base), blocks, args.batch, lr))
    with _quiet_libraries(), tempfile.TemporaryDirectory() as out:
        dlm_trainer(copy.deepcopy(base), tokenizer, data, out, args.length, args.batch, steps, lr, [probe]).train()
    skip = 2 if steps > 4 else 1  # first steps pay allocator/optimizer warm-up
    times = {side: values[skip:] for side, values in probe.times.items()}
    hand_s, ours_s = common.median(times["hand"]), common.median(times["dlm"])
    tokens = args.batch * args.length
    for label, side, value in (("hand-written loop", "hand", hand_s), ("dlm Trainer", "dlm", ours_s)):
        print(
            f"{label + ':':<18} {value * 1000:8.1f} ms/step median ({tokens / value:,.0f} positions/s), "
            f"steps {common.spread(times[side])} s"
        )
    pairs = sorted(d / h for d, h in zip(times["dlm"], times["hand"]))
    print(f"pairwise ratios (step i of each): median {common.median(pairs):.3f}, {common.spread(pairs)}")
    line = common.result_line(
        f"pretrain_step_time[{name}]", ours_s / hand_s, 1.10, True, "dlm Trainer / hand-written loop, median step time"
    )
    payload = {"bench": "pretrain_step", "args": vars(args), "step_s": times, "result": line}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
