"""Contamination check: the engine on planted rows, the known real leaks reproduced by samples/, the CLI."""

from __future__ import annotations

import random

import pytest

from dlm.harness_tasks.overlap import compare_rows, normalise

FPB_SENTENCE = "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 ."
FINGPT_ROW = {
    "instruction": "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}.",
    "input": "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007.",
    "output": "positive",
}


def _words(rng: random.Random, n: int) -> str:
    return " ".join(f"w{rng.randrange(50_000)}" for _ in range(n))


def test_normalise_collapses_case_punctuation_and_space():
    assert normalise("  Profit ROSE,  to EUR 13.1 mn!\n") == "profit rose to eur 13 1 mn"


def test_exact_duplicate_inside_an_instruction_row_is_found():
    report = compare_rows([FINGPT_ROW], [{"sentence": FPB_SENTENCE, "label": 2}])
    assert (report["exact"], report["near"], report["above_threshold"]) == (1, 0, True)
    assert report["examples"][0]["kind"] == "exact" and "13.1" in report["examples"][0]["train"]


def test_sentence_embedded_in_a_prompt_is_a_near_duplicate():
    prompt = {
        "input": f"Sentence: {FPB_SENTENCE}\nQuestion: what is the sentiment?\nAnswer:",
        "options": ["negative", "neutral", "positive"],
        "gold_index": 2,
    }
    report = compare_rows([FINGPT_ROW], [prompt])
    assert (report["exact"], report["near"]) == (0, 1)
    assert report["examples"][0]["containment"] >= 0.5


def test_labels_and_unrelated_text_are_not_overlap():
    train = [{"text": "The board approved the dividend after a long meeting on Tuesday evening.", "label": "positive"}]
    evals = [
        {"sentence": "Shares of the retailer fell sharply after weak holiday sales were reported.", "label": "positive"}
    ]
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


def test_realistic_sizes_are_one_pass_over_the_training_rows():
    """40k training rows against 5k evaluation documents: a hash scan that reads the training side once, as a
    stream (an iterator cannot be read twice), no pairwise comparison (~1.5 s idle; no time is asserted here)."""
    rng = random.Random(3)
    evals = [{"sentence": _words(rng, 25)} for _ in range(5_000)]
    train = [{"input": _words(rng, 25), "output": "neutral"} for _ in range(40_000)]
    train[1000] = {"input": evals[7]["sentence"]}
    report = compare_rows(iter(train), evals)
    assert report["exact"] == 1 and report["train_rows"] == 40_000


def test_template_lines_shared_by_many_documents_are_not_content():
    rng = random.Random(4)
    template = "Question: what is the sentiment of this news?"
    evals = [{"input": f"{_words(rng, 3)}\n{template}\nAnswer:"} for _ in range(20)]
    report = compare_rows([{"instruction": template, "input": _words(rng, 12)}], evals)
    assert report["duplicated"] == 0 and report["template_lines_ignored"] >= 1


# --- the known real leaks, reproduced in samples/ (samples/make_samples.py, "Known real leaks") ----------------
FINGPT = "FinGPT/fingpt-sentiment-train"
TAKALA_ALL = "takala/financial_phrasebank:sentences_allagree"
TFNS = "zeroshot/twitter-financial-news-sentiment"


@pytest.fixture(scope="module")
def planted():
    """The FinGPT rows samples/make_samples.py planted, straight from the generator."""
    import sys
    from pathlib import Path

    samples = str(Path(__file__).resolve().parent.parent / "samples")
    sys.path.insert(0, samples)  # the generator imports its sibling modules by bare name
    try:
        import repos_finance
    finally:
        sys.path.remove(samples)
    return repos_finance.fingpt_leaked_rows()


def test_every_planted_fpb_and_tweet_row_in_fingpt_is_caught(planted):
    from dlm.harness_tasks.overlap import dataset_documents, find_duplicates, normalise, training_rows

    leaked = planted
    fingpt = training_rows(FINGPT, None).rows
    for source, column in ((TAKALA_ALL, "sentence"), (TFNS, "text")):
        dataset, _, config = source.partition(":")
        docs = dataset_documents(dataset, config or None, None).rows
        flagged = {docs[d.doc][column] for d in find_duplicates(fingpt, docs)[0] if d.kind == "exact"}
        planted_here = {normalise(d[column]) for d in docs} & {normalise(r["input"]) for r in leaked}
        assert planted_here and planted_here <= {normalise(t) for t in flagged}


def test_adaptllm_fpb_prompts_are_near_duplicates_of_takala():
    from dlm.data.loading import load_split
    from dlm.harness_tasks.overlap import find_duplicates

    takala = list(load_split("takala/financial_phrasebank", "sentences_allagree", "train"))
    adapt = list(load_split("AdaptLLM/finance-tasks", "FPB", "test"))
    found = find_duplicates(takala, adapt)[0]
    assert len(adapt) == 60 and [d.kind for d in found] == ["near"] * 60  # every prompt: demos + scored sentence


def test_overlap_report_on_tasks_flags_the_leaks_and_not_clean_pairs(planted):
    from dlm.data.loading import in_holdout, lookup
    from dlm.harness_tasks.overlap import normalise, overlap_report

    fpb = overlap_report(FINGPT, "dlm_fpb")
    # exactly the planted FPB sentences that fall in dlm_fpb's scored share: FinGPT's other rows are drawn apart
    holdout = lookup("takala/financial_phrasebank").holdout
    news = [r for r in planted if "this news" in r["instruction"]]  # the planted FPB rows (the others are tweets)
    scored = {normalise(r["input"]) for r in news if in_holdout(r["input"], holdout)}
    assert fpb["above_threshold"] and fpb["exact"] == len(scored) > 0 and fpb["eval_source"].startswith("takala/")
    adapt = overlap_report(TAKALA_ALL, "dlm_adapt_fpb")
    assert adapt["above_threshold"] and adapt["near"] >= 50 and adapt["template_lines_ignored"] >= 1
    # training on takala leaves out dlm_fpb's held-out test rows: no overlap with the task it scores
    own = overlap_report("takala/financial_phrasebank:sentences_50agree", "dlm_fpb")
    assert own["train_rows_held_out"] == own["eval_docs"] > 0 and own["duplicated"] == 0
    clean = overlap_report("openai/gsm8k:main", "dlm_fpb")
    assert clean["duplicated"] == 0 and not clean["above_threshold"]


def test_group_gives_one_line_per_task():
    from dlm.harness_tasks.overlap import overlap_report

    report = overlap_report(FINGPT, "fin_sentiment")
    assert set(report["by_task"]) == {"dlm_fpb", "dlm_tfns", "dlm_fiqa_sa"} and report["above_threshold"]
    assert "ABOVE THRESHOLD" in report["by_task"]["dlm_fpb"]


def test_contamination_for_run_lists_each_task():
    from dlm.config import MixtureSpec
    from dlm.harness_tasks.overlap import contamination_for_run

    mixture = MixtureSpec.from_flags(datasets=[FINGPT, "stanfordnlp/imdb"])
    reports = contamination_for_run(mixture, ["fin_sentiment", "dlm_gsm8k"])
    by_task = {r["eval"]: r for r in reports}
    assert list(by_task) == ["dlm_fpb", "dlm_tfns", "dlm_fiqa_sa", "dlm_gsm8k"]
    assert by_task["dlm_fpb"]["above_threshold"] and not by_task["dlm_gsm8k"]["above_threshold"]
    assert by_task["dlm_fpb"]["train"] == mixture.label()


def test_cli_prints_the_report(capsys):
    from dlm import cli

    cli.main(["data", "overlap", FINGPT, "dlm_fpb"])
    out = capsys.readouterr().out
    assert "duplicated_fraction" in out and "above threshold" in out and "exact" in out


def test_a_cycle_records_and_announces_its_contamination(tmp_path, capsys, tiny_model_dir):
    from dlm.settings import run_config
    from dlm.study.cycle import run_cycle

    record = run_cycle(
        run_config(
            {
                "model": "tiny-gpt2",
                "dataset": FINGPT,
                "mode": "sft",
                "max_steps": 1,
                "batch_size": 2,
                "gradient_accumulation_steps": 1,
                "max_length": 64,
                "output_dir": str(tmp_path / "out"),
                "results_dir": str(tmp_path / "runs"),
                "tasks": "dlm_fpb,dlm_gsm8k",
                "limit": 2,
            }
        )
    )
    by_task = {r["eval"]: r for r in record["train"]["contamination"]}
    assert by_task["dlm_fpb"]["above_threshold"] and not by_task["dlm_gsm8k"]["above_threshold"]
    assert "contamination: " in capsys.readouterr().out
