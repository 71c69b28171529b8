"""Generative twins (`dlm_<task>_gen`), label extraction, chat templates and the protocol recorded on scores.

Every twin also runs in tests/test_eval.py's module run (1 shot, 3 documents each, `dlm_all_gen`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from train_support import ROOT, TWEETS, config

from dlm.harness_tasks.catalog import TASKS_DIR, catalog, leaf_tasks, twin_for, twin_of
from dlm.harness_tasks.extraction import EXTRACTION_VERSION, extract_label

SENTIMENT = ["negative", "neutral", "positive"]
LETTERS = ["A", "B", "C", "D"]
TOPICS = ["Analyst Update", "Fed | Central Banks", "Company | Product News", "Stock Commentary", "Stock Movement"]


# --- extraction -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, choices, expected",
    [
        (" positive", SENTIMENT, 2),
        ("Positive.", SENTIMENT, 2),
        ("NEGATIVE!!", SENTIMENT, 0),
        ("The sentiment is **Neutral**.", SENTIMENT, 1),
        ("\n\n  negative\nText: positive", SENTIMENT, 0),
        ("positive, not negative", SENTIMENT, 2),
        ("neutrality is a virtue", SENTIMENT, None),
        ("I cannot tell.", SENTIMENT, None),
        ("", SENTIMENT, None),
        ("   \n  ", SENTIMENT, None),
        ("Fed/central banks", TOPICS, 1),
        ("stock movement today", TOPICS, 4),
        ("Company | product news", TOPICS, 2),
        ("B", LETTERS, 1),
        ("(c)", LETTERS, 2),
        ("Answer: D", LETTERS, 3),
        ("the answer is (b) because", LETTERS, 1),
        ("B. Paris", LETTERS, 1),
        ("C) 42", LETTERS, 2),
        ("a good question", LETTERS, None),
        ("e.g. nothing", LETTERS, None),
        ("E", LETTERS, None),
        ("The answer is 2.0", ["1", "2", "3"], 1),
        ("+3 points", ["1", "2", "3"], 2),
        ("seven", ["1", "2", "3"], None),
        ("Yes", ["No", "Yes"], 1),
        ("no.", ["No", "Yes"], 0),
        ("True, False or Neither? Neither", ["True", "Neither", "False"], 0),
    ],
)
def test_extract_label_reads_the_first_label_of_the_first_line(text, choices, expected):
    assert extract_label(text, choices) == expected


def test_missing_predictions_count_as_wrong_and_are_no_class():
    """-1 ("no label found") lowers recall of the gold class; it is not averaged as a class of its own, and the
    vectorised bootstrap computes the same numbers as scikit-learn."""
    import numpy as np
    from sklearn.metrics import f1_score

    from dlm.harness_tasks import metrics
    from dlm.harness_tasks.outcomes import _FAST, Resamples

    pairs = [(0, 0), (0, -1), (1, 1), (1, -1), (2, 2), (2, 0), (1, 1), (0, -1)]
    golds, preds = zip(*pairs)
    expected = f1_score(golds, preds, labels=[0, 1, 2], average="macro", zero_division=0)
    assert metrics.f1_macro(pairs) == pytest.approx(expected)
    assert metrics.f1_macro(pairs) > f1_score(golds, preds, average="macro", zero_division=0)  # no phantom class
    draws = np.array([list(range(len(pairs))), [0, 1, 1, 3, 4, 4, 6, 7]])
    for name in ("f1_macro", "f1_weighted", "precision_macro", "recall_macro", "mcc"):
        fast = _FAST[name]([list(p) for p in pairs], Resamples(draws))
        slow = [getattr(metrics, name)([pairs[i] for i in row]) for row in draws]
        assert np.allclose(fast, slow), name


# --- the twins as files -------------------------------------------------------------------------------------------
def test_every_multiple_choice_task_has_a_twin_sharing_its_prompt_data_and_metrics():
    ours = catalog()
    multiple_choice = [
        n for n, i in ours.items() if i.kind == "task" and i.config.get("output_type") == "multiple_choice"
    ]
    assert len(multiple_choice) == 74  # 7 finance, IMDB, 8 GLUE, 57 MMLU, MMLU-Pro math
    for name in multiple_choice:
        twin = twin_for(name)
        assert twin == f"{name}_gen" and twin_of(twin) == name, name
        mc, gen = ours[name].config, ours[twin].config
        for key in (
            "doc_to_text",
            "doc_to_choice",
            "doc_to_target",
            "dataset_kwargs",
            "metric_list",
            "description",
            "test_split",
            "validation_split",
            "fewshot_split",
            "process_docs",
            "process_results",
        ):
            assert gen.get(key) == mc.get(key), (twin, key)
        assert gen["output_type"] == "generate_until" and gen["generation_kwargs"]["do_sample"] is False
        assert gen["generation_kwargs"]["max_gen_toks"] <= 32 and gen["generation_kwargs"]["until"]
        assert ours[twin].metrics[-1] == "missing"
    for group in ("fin_sentiment", "dlm_adaptllm", "dlm_glue", "dlm_mmlu"):
        twins = [twin_for(t) for t in leaf_tasks(group) if twin_for(t)]
        assert leaf_tasks(f"{group}_gen") == twins, group
    for group in ("dlm_finance_gen", "dlm_general_gen", "dlm_math_gen", "fin_sentiment_gen"):
        assert twin_of(group) == group[:-4] and all(catalog()[t].twin for t in leaf_tasks(group))


def test_lm_eval_runs_a_twin_group_directly_with_the_chat_template(tmp_path, tiny_model_dir):
    """`lm_eval --tasks fin_sentiment_gen --include_path dlm/harness_tasks --apply_chat_template` works as is, and the
    prompts it sends carry the tiny model's chat-template markers."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--tasks",
        "fin_sentiment_gen",
        "--include_path",
        str(TASKS_DIR),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir}",
        "--device",
        "cpu",
        "--limit",
        "2",
        "--apply_chat_template",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    scores = json.loads(results.read_text())["results"]
    assert {"fin_sentiment_gen", "dlm_fpb_gen", "dlm_tfns_gen", "dlm_fiqa_sa_gen"} <= set(scores)
    assert all("missing,none" in scores[t] for t in ("dlm_fpb_gen", "dlm_tfns_gen", "dlm_fiqa_sa_gen"))
    sample = json.loads(next(out.rglob("samples_dlm_tfns_gen_*.jsonl")).read_text().splitlines()[0])
    prompt = sample["arguments"]["gen_args_0"]["arg_0"]
    assert prompt.startswith("<|user|>\nAnalyze the sentiment") and prompt.endswith("<|end|>\n<|assistant|>\n")


# --- chat templates ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chat_run(tiny_model_dir):
    """lm-eval's prompts for 3 TFNS documents under the tiny chat template and a system instruction, and the
    record `evaluate` writes for that setting."""
    from dlm.harness_tasks.evaluate import evaluate, load_tasks, run_harness, task_manager_for
    from dlm.settings import eval_config
    from dlm.trainers.chat import applied_to, resolve
    from dlm.trainers.models import load_model

    model, tokenizer = load_model("tiny-gpt2")
    cfg = eval_config(
        dict(
            model="tiny-gpt2",
            tasks=["dlm_tfns_gen", "dlm_tfns"],
            limit=3,
            chat_template="default",
            system_instruction="You are a financial analyst.",
            bootstrap_iters=0,
        )
    )
    manager = task_manager_for(["dlm_tfns_gen"])
    loaded = load_tasks(manager, ["dlm_tfns_gen"])
    with applied_to(tokenizer, resolve(tokenizer, "default", "tiny-gpt2")):
        results = run_harness(
            model, tokenizer, [loaded["tasks"]["dlm_tfns_gen"]], manager, cfg, log_samples=True, chat=True
        )
    record = evaluate(cfg, model=model, tokenizer=tokenizer, write=False)
    return results["samples"]["dlm_tfns_gen"], record, tokenizer


def test_sft_prompts_in_a_chat_template_are_the_prompts_lm_eval_scores(chat_run):
    from dlm.data.loading import load_split, lookup, to_sft_pair
    from dlm.trainers.chat import chat_pair

    samples, _, tokenizer = chat_run
    entry = lookup(TWEETS)
    rows = {row["text"]: row for row in load_split(TWEETS, split="validation")}
    for sample in samples:
        sent = sample["arguments"][0][0]
        assert sent.startswith("<|system|>\nYou are a financial analyst.<|end|>\n<|user|>\n")
        prompt, completion = chat_pair(
            tokenizer, *to_sft_pair(entry, rows[sample["doc"]["text"]]), "You are a financial analyst."
        )
        assert prompt == sent
        assert completion.startswith(["negative", "positive", "neutral"][sample["doc"]["label"]])


def test_protocol_is_recorded_on_every_score(chat_run):
    from dlm.trainers.chat import text_hash

    _, record, tokenizer = chat_run
    scores = record["eval"]["scores"]
    assert scores and all(s["protocol"] for s in scores)
    for score in scores:
        protocol = score["protocol"]
        assert protocol["shots"] == score["num_fewshot"] == 0
        assert protocol["chat_template"] == {"name": "default", "sha256": text_hash(tokenizer.chat_template)}
        assert protocol["system_instruction"] == text_hash("You are a financial analyst.")
        assert protocol["fewshot_as_multiturn"] is False
        if score["task"] == "dlm_tfns_gen":
            assert protocol["scoring"] == "generative" and protocol["extraction"] == f"dlm-labels-v{EXTRACTION_VERSION}"
            assert protocol["generation"] == {
                "until": ["\n\n"],
                "max_gen_toks": 16,
                "do_sample": False,
                "temperature": 0.0,
            }
        else:
            assert protocol["scoring"] == "loglikelihood" and protocol["generation"] is None


# --- SFT trains for the twin -------------------------------------------------------------------------------------
def test_sft_teaches_the_tiny_model_to_say_the_label(tmp_path, tiny_model_dir):
    """After SFT on the samples' TFNS, the twin reads a label from (nearly) every answer, and most are right; the
    untrained model names none."""
    from dlm.harness_tasks.evaluate import evaluate
    from dlm.settings import eval_config
    from dlm.trainers.models import load_model
    from dlm.trainers.train import train

    def twin_scores(model, tokenizer):
        cfg = eval_config(dict(model="tiny-gpt2", tasks=["dlm_tfns_gen"], bootstrap_iters=0))
        record = evaluate(cfg, model=model, tokenizer=tokenizer, write=False)
        return {s["metric"]: s for s in record["eval"]["scores"]}

    before = twin_scores(*load_model("tiny-gpt2"))
    result = train(
        config(
            tmp_path,
            "sft",
            mode="sft",
            max_steps=150,
            batch_size=8,
            max_length=128,
            learning_rate=3e-3,
            warmup_steps=5,
            save_steps=1000,
            logging_steps=10,
        )
    )
    after = twin_scores(result.model, result.tokenizer)
    assert before["missing"]["value"] > 0.9
    assert after["acc"]["value"] >= 0.8 and after["missing"]["value"] <= 0.05, (after["acc"], after["missing"])
    assert after["acc"]["n"] == before["acc"]["n"] >= 50
