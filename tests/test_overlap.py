"""Contamination check: the engine on planted rows, the known real leaks reproduced by samples/, the CLI."""
from __future__ import annotations

import random
import time

import pytest

from trainers.overlap import NGRAM, compare_rows, normalise

FPB_SENTENCE = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 ."
FINGPT_ROW = {"instruction": "What is the sentiment of this news? Please choose an answer from "
                             "{negative/neutral/positive}.",
              "input": "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
              "output": "positive"}


def _words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randrange(50_000)}" for _ in range(n))


def test_normalise_collapses_case_punctuation_and_space():
    assert normalise("  Profit ROSE,  to EUR 13.1 mn!\n") == "profit rose to eur 13 1 mn"


def test_exact_duplicate_inside_an_instruction_row_is_found():
    report = compare_rows([FINGPT_ROW], [{"sentence": FPB_SENTENCE, "label": 2}])
    assert (report["exact"], report["near"], report["above_threshold"]) == (1, 0, True)
    assert report["examples"][0]["kind"] == "exact" and "13.1" in report["examples"][0]["train"]


def test_sentence_embedded_in_a_prompt_is_a_near_duplicate():
    prompt = {"input": f"Sentence: {FPB_SENTENCE}\nQuestion: what is the sentiment?\nAnswer:",
              "options": ["negative", "neutral", "positive"], "gold_index": 2}
    report = compare_rows([FINGPT_ROW], [prompt])
    assert (report["exact"], report["near"]) == (0, 1)
    assert report["examples"][0]["containment"] >= 0.5


def test_labels_and_unrelated_text_are_not_overlap():
    train = [{"text": "The board approved the dividend after a long meeting on Tuesday evening.", "label": "positive"}]
    evals = [{"sentence": "Shares of the retailer fell sharply after weak holiday sales were reported.",
              "label": "positive"}]
    report = compare_rows(train, evals)
    assert (report["duplicated"], report["above_threshold"]) == (0, False)


def test_shared_boilerplate_below_threshold_is_not_a_duplicate():
    rng = random.Random(1)
    boiler = "according to the company statement released on monday"  # 8 words: exactly one shared 8-gram
    evals = [{"text": f"{boiler} {_words(rng, 30)}"}]
    train = [{"text": f"{boiler} {_words(rng, 30)}"}]
    report = compare_rows(train, evals)
    assert report["duplicated"] == 0 and report["near"] == 0


def test_fractions_and_threshold():
    rng = random.Random(2)
    evals = [{"text": _words(rng, 20)} for _ in range(200)]
    train = [dict(e) for e in evals[:5]] + [{"text": _words(rng, 20)} for _ in range(500)]
    report = compare_rows(train, evals)
    assert (report["exact"], report["eval_docs"], report["train_rows"]) == (5, 200, 505)
    assert report["duplicated_fraction"] == 0.025 and report["above_threshold"]
    assert not compare_rows(train, evals, warn_fraction=0.05)["above_threshold"]


def test_linear_time_on_realistic_sizes():
    """76k training rows (FinGPT's size) against 5k evaluation documents in seconds, not minutes."""
    rng = random.Random(3)
    evals = [{"sentence": _words(rng, 25)} for _ in range(5_000)]
    train = [{"input": _words(rng, 25), "output": "neutral"} for _ in range(76_000)]
    train[1000] = {"input": evals[7]["sentence"]}
    start = time.perf_counter()
    report = compare_rows(iter(train), evals)
    elapsed = time.perf_counter() - start
    assert report["exact"] == 1 and report["train_rows"] == 76_000
    assert elapsed < 20, f"{elapsed:.1f}s"  # ~3 s unloaded; generous for a busy 2-core machine
