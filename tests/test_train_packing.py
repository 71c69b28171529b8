"""Packing for continued pretraining and SFT label masking, checked on the tiny GPT-2 without training."""

from __future__ import annotations

import pytest

TWEETS = [
    "Bullish: $JPM operating profit rose to EUR 759 mn",
    "Bearish: $TSLA misses estimates, shares fall 4%",
    "Notice: $BA publishes its report in July",
    "Upgrade: $AAPL won a new order worth EUR 287 mn",
    "Stocks edge higher as investors weigh earnings",
] * 20


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from dlm.trainers.models import load_model

    model, tokenizer = load_model(str(tiny_model_dir), for_training=True)
    model.eval()
    return model, tokenizer


def doc_ids(tokenizer, texts):
    from dlm.trainers.pretrain import document_token_ids

    return list(document_token_ids(texts, tokenizer))


def test_blocks_are_full_eos_separated_and_lose_no_token(tiny):
    from dlm.trainers.pretrain import PackStats, pack_token_ids

    _, tok = tiny
    docs = doc_ids(tok, TWEETS + ["a much longer filing " * 40])  # one document longer than a block
    stats = PackStats()
    blocks = list(pack_token_ids(docs, 32, tok.pad_token_id, stats))
    assert all(len(ids) == 32 and len(pos) == 32 for ids, pos, _ in blocks)
    assert all(n_real == 32 for _, _, n_real in blocks[:-1]), "only the last block may be padded"
    real = [t for ids, _, n_real in blocks for t in ids[:n_real]]
    assert real == [t for d in docs for t in d], "every token, in order, no token lost"
    assert sum(t == tok.eos_token_id for t in real) == len(docs), "exactly one EOS after each document"
    assert stats.tokens == len(real) and stats.blocks == len(blocks) and stats.documents == len(docs)
    # positions restart at each document start and at each block start
    ids, pos, _ = blocks[0]
    for i in range(1, 32):
        assert pos[i] == (0 if ids[i - 1] == tok.eos_token_id else pos[i - 1] + 1)


def test_efficiency_on_tweet_length_texts(tiny):
    from dlm.trainers.pretrain import PackStats, pack_token_ids

    _, tok = tiny
    stats = PackStats()
    list(pack_token_ids(doc_ids(tok, TWEETS), 128, tok.pad_token_id, stats))
    assert stats.efficiency(128) >= 0.95
    assert stats.padded_efficiency(128) < 0.3, "padding each tweet to max_length would waste most positions"


def test_labels_skip_segment_starts_and_padding(tiny):
    from dlm.trainers.pretrain import block_example

    example = block_example([5, 6, 0, 7, 8, 0, 0, 0], [0, 1, 2, 0, 1, 2, 0, 1], n_real=6)
    assert example["labels"].tolist() == [-100, 6, 0, -100, 8, 0, -100, -100]
    assert int(example["real_tokens"]) == 6


def test_document_logits_inside_a_block_equal_logits_alone(tiny):
    import torch

    from dlm.trainers.pretrain import block_example, pack_token_ids

    model, tok = tiny
    docs = doc_ids(tok, TWEETS[:6])
    ids, pos, n_real = next(pack_token_ids(docs, 64, tok.pad_token_id))
    example = block_example(ids, pos, n_real)
    starts = [i for i, p in enumerate(pos) if p == 0] + [64]
    first, second = starts[1], starts[2]  # the second segment is a whole document preceded by another
    assert ids[first:second] == docs[1]
    with torch.no_grad():
        packed = model(
            input_ids=example["input_ids"][None], position_ids=example["position_ids"][None], use_cache=False
        ).logits[0]
        alone = model(input_ids=torch.tensor([docs[1]]), use_cache=False).logits[0]
    assert torch.allclose(packed[first:second], alone, atol=1e-5)


def test_streamed_corpus_packs_like_a_finite_one(tiny):
    import datasets

    from dlm.trainers.pretrain import packed_dataset

    _, tok = tiny
    finite = datasets.Dataset.from_list([{"text": t} for t in TWEETS])
    streamed = finite.to_iterable_dataset()
    packed, lazy = packed_dataset(finite, tok, 48), packed_dataset(streamed, tok, 48)
    assert lazy.stats.blocks == 0, "nothing is read before training asks"
    lazy_blocks = list(lazy)
    assert len(lazy_blocks) == len(packed)
    assert all(lazy_blocks[i]["input_ids"].tolist() == packed[i]["input_ids"].tolist() for i in range(len(packed)))


def test_sft_supervises_exactly_the_completion_and_eos(tiny, tmp_path):
    import datasets

    from dlm.trainers.sft import build_sft_trainer

    model, tok = tiny
    pairs = [
        ("Tweet: $JPM operating profit rose\nSentiment:", " bullish"),
        ("Tweet: $TSLA misses estimates\nSentiment:", " bearish"),
        ("Tweet: $BA publishes its report in July\nSentiment:", " neutral"),
    ] * 4
    data = datasets.Dataset.from_list([{"prompt": p, "completion": c} for p, c in pairs])
    args = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=2,
        report_to="none",
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = build_sft_trainer(model, tok, data, args, max_length=64)
    rows = list(trainer.train_dataset)
    assert sum(len(r["seq_lengths"]) for r in rows) == len(pairs), "no example dropped or split"
    assert len(rows) < len(pairs), "short examples share packed rows"
    batch = trainer.data_collator(rows[:2])
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 2, "one row per bin, no mask"
    completions = {c for _, c in pairs}
    segments = 0
    for labels, positions in zip(batch["labels"].tolist(), batch["position_ids"].tolist()):
        starts = [i for i, p in enumerate(positions) if p == 0] + [len(positions)]
        for start, end in zip(starts, starts[1:]):
            supervised = [t for t in labels[start:end] if t != -100]
            if not supervised:  # padding at the end of the shorter row
                continue
            segments += 1
            assert tok.decode(supervised[:-1]) in completions and supervised[-1] == tok.eos_token_id
    assert segments == sum(len(r["seq_lengths"]) for r in rows[:2])


def test_sft_rows_are_nearly_equal_where_best_fit_leaves_them_short():
    import random

    from dlm.trainers.sft_packing import balanced_bins, best_fit_decreasing, row_efficiency

    rng = random.Random(0)
    tweets = [rng.randint(50, 65) for _ in range(1000)]  # tweet-like lengths: 4 per 256-token bin, never 5
    bins = balanced_bins(tweets, 256)
    assert sorted(i for b in bins for i in b) == list(range(len(tweets))), "every example once, none split"
    assert max(sum(tweets[i] for i in b) for b in bins) <= 256
    assert row_efficiency(best_fit_decreasing(tweets, 256), tweets) < 0.95, "the case best-fit handles badly"
    assert row_efficiency(bins, tweets) >= 0.98
    mixed = [rng.randint(5, 120) for _ in range(1000)]  # many small ones: best fit fills every gap
    assert row_efficiency(balanced_bins(mixed, 256), mixed) >= 0.98
    long = [rng.randint(150, 256) for _ in range(1000)]  # one per bin: no two fit together
    bins = balanced_bins(long, 256)
    assert len(bins) == len(long) and sorted(i for b in bins for i in b) == list(range(len(long)))


def test_sft_trainer_rows_are_equal_length_on_the_real_path(tiny, tmp_path):
    import datasets

    from dlm.trainers.sft import build_sft_trainer

    model, tok = tiny
    data = datasets.Dataset.from_list(
        [{"prompt": f"Tweet: {t} #{i}\nSentiment:", "completion": " neutral"} for i, t in enumerate(TWEETS * 3)]
    )
    args = dict(
        output_dir=str(tmp_path),
        max_steps=1,
        per_device_train_batch_size=4,
        report_to="none",
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        save_strategy="no",
        disable_tqdm=True,
    )
    trainer = build_sft_trainer(model, tok, data, args, max_length=128)
    lengths = [len(row["input_ids"]) for row in trainer.train_dataset]
    assert sum(len(row["seq_lengths"]) for row in trainer.train_dataset) == len(data)
    assert max(lengths) <= 128 and sum(lengths) / (len(lengths) * max(lengths)) >= 0.98
