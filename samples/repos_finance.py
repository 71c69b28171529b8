"""Finance repositories of the sample snapshots (one function per Hub repository; see make_samples.py)."""

from __future__ import annotations

import random
import re

import disjoint as D
import synthetic as S
from synthetic import SEED
from writers import Repo, config, export, write_card, write_csv, write_json, write_parquet

from dlm.data.loading import in_holdout, lookup

SENT3 = ["negative", "neutral", "positive"]
TFNS_LABELS = ["negative", "positive", "neutral"]  # 0 Bearish, 1 Bullish, 2 Neutral


def fpb_rows(rng) -> list[dict]:
    labels = S.balanced(rng, 540, SENT3)
    return [{"sentence": S.fpb_sentence(rng, lab), "label": SENT3.index(lab)} for lab in labels]


def tfns_rows(rng) -> tuple[list[dict], list[dict]]:
    """(train, validation); no validation tweet repeats, wholly or nearly, a training tweet. Its own index, so
    that the planted FinGPT leak below draws the same rows again."""
    apart = D.Disjoint()

    def rows(n, add):
        return [
            add(lambda lab=lab: {"text": S.tweet(rng, lab), "label": TFNS_LABELS.index(lab)}, "TFNS")
            for lab in S.balanced(rng, n, TFNS_LABELS)
        ]

    train = rows(360, apart.training)
    return train, rows(90, apart.evaluation)


def financial_phrasebank(rng):
    """Script repo: snapshot of refs/convert/parquet. Configs are nested: allagree < 75 < 66 < 50 agreement."""
    rows = fpb_rows(rng)
    holdout = lookup("takala/financial_phrasebank").holdout  # the scored share (dlm_fpb), split by a text hash
    for row in rows:  # the other datasets' rows are drawn apart from these (the known leaks below excepted)
        (D.SPLITS.add_evaluation if in_holdout(row["sentence"], holdout) else D.SPLITS.add_training)(row)
    spec = {"sentence": "string", "label": SENT3}
    for name, n in (
        ("sentences_allagree", 400),
        ("sentences_75agree", 450),
        ("sentences_66agree", 490),
        ("sentences_50agree", 540),
    ):
        export("takala/financial_phrasebank", name, spec, {"train": rows[:n]})


def twitter_sentiment(rng):
    train, valid = tfns_rows(rng)
    for row in train:
        D.SPLITS.add_training(row)
    for row in valid:
        D.SPLITS.add_evaluation(row)
    write_csv("zeroshot/twitter-financial-news-sentiment/sent_train.csv", train)
    write_csv("zeroshot/twitter-financial-news-sentiment/sent_valid.csv", valid)
    write_card(
        "zeroshot/twitter-financial-news-sentiment",
        "Finance tweets, 3 classes.\n\n```\nsentiments = {\n"
        '    "LABEL_0": "Bearish",\n    "LABEL_1": "Bullish",\n    "LABEL_2": "Neutral"\n}\n```',
        extra={"license": "mit", "task_categories": ["text-classification"]},
    )


def twitter_topic(rng):
    def rows(n, add):
        return [
            add(lambda t=t: {"text": S.topic_tweet(rng, t), "label": t}, "TFNS topic")
            for t in S.balanced(rng, n, list(range(20)))
        ]

    write_csv("zeroshot/twitter-financial-news-topic/topic_train.csv", rows(120, D.SPLITS.training))
    write_csv("zeroshot/twitter-financial-news-topic/topic_valid.csv", rows(40, D.SPLITS.evaluation))
    write_card(
        "zeroshot/twitter-financial-news-topic",
        "Finance tweets, 20 topics (LABEL_0 Analyst Update ... LABEL_19 Stock Movement).",
        extra={"license": "mit"},
    )


def fiqa_sentiment(rng):
    def row(lab):
        kind = rng.choice(["headline", "post"])
        return {
            "_id": str(rng.randint(1000, 99999)),
            "sentence": S.tweet(rng, lab) if kind == "post" else S.fpb_sentence(rng, lab).replace(" .", ""),
            "target": rng.choice(S.COMPANIES),
            "aspect": rng.choice(["Stock/Price Action", "Corporate/Sales", "Corporate/Risks"]),
            "score": S.fiqa_score(rng, lab),
            "type": kind,
        }

    def rows(n, add=D.SPLITS.evaluation):  # valid and test: apart from every training row so far
        return [add(lambda lab=lab: row(lab), "FiQA-SA") for lab in S.balanced(rng, n, SENT3)]

    spec = {
        "_id": "string",
        "sentence": "string",
        "target": "string",
        "aspect": "string",
        "score": "float64",
        "type": "string",
    }
    r = Repo("TheFinAI/fiqa-sentiment-classification")
    r.add(
        "default",
        spec,
        {"train": rows(330, D.SPLITS.training), "valid": rows(66), "test": rows(72)},
        pattern="data/{split}-00000-of-00001-{hash}.parquet",
    )
    r.card(
        "FiQA 2018 task 1 sentiment: `score` is a float in [-1, 1]; split `valid`, not `validation`.",
        extra={"license": "mit"},
    )


def fingpt_sentiment(rng):
    def row(lab):
        if rng.random() < 0.2:  # NWGI rows use a 7-level scale
            lab = rng.choice(["mildly ", "moderately ", "strong "]) + lab if lab != "neutral" else lab
            instr = (
                "What is the sentiment of this news? Please choose an answer from {strong negative/moderately "
                "negative/mildly negative/neutral/mildly positive/moderately positive/strong positive}."
            )
        else:
            instr = "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}."
        return {"input": S.fpb_sentence(rng, lab.split()[-1]), "output": lab, "instruction": instr}

    rows = [D.SPLITS.training(lambda lab=lab: row(lab), "FinGPT") for lab in S.balanced(rng, 80, SENT3)]
    rows += fingpt_leaked_rows()  # the known real leak, on purpose: not drawn apart
    r = Repo("FinGPT/fingpt-sentiment-train")
    r.add(
        "default",
        {"input": "string", "output": "string", "instruction": "string"},
        {"train": rows},
        pattern="data/{split}-00000-of-00001-dabab110260ac909.parquet",
    )
    r.card("FinGPT sentiment instruction data (FPB, FiQA-SA, TFNS, NWGI), train only.")


def fiqa_qa(rng):
    for split, n, add in (("train", 60, D.SPLITS.training), ("test", 30, D.SPLITS.evaluation)):
        rows = [add(lambda: S.finance_qa(rng), "FiQA QA") for _ in range(n)]
        write_json(f"LLukas22/fiqa/{split}.json", rows)
    write_card(
        "LLukas22/fiqa",
        "FiQA 2018 task 2 (StackExchange Investment) question/answer pairs.",
        extra={"license": "cc-by-3.0", "task_categories": ["feature-extraction", "sentence-similarity"]},
    )


def finance_alpaca(rng):
    def row(i):
        qa = S.finance_qa(rng)
        if i % 3 == 0:
            return {
                "instruction": "Classify the sentiment of the sentence.",
                "input": S.fpb_sentence(rng, "positive"),
                "output": "positive",
                "text": "",
            }
        return {"instruction": qa["question"], "input": "", "output": qa["answer"], "text": ""}

    rows = [D.SPLITS.training(lambda i=i: row(i), "finance-alpaca") for i in range(60)]
    write_json("gbharti/finance-alpaca/Cleaned_date.json", rows)
    write_card(
        "gbharti/finance-alpaca",
        "Alpaca + FiQA + generated finance instructions (instruction, input, output).",
        extra={"language": ["en"]},
    )


def financial_qa_10k(rng):
    spec = {k: "string" for k in ("question", "answer", "context", "ticker", "filing")}
    r = Repo("virattt/financial-qa-10K")
    r.add(
        "default", spec, {"train": [S.ten_k_row(rng) for _ in range(80)]}, pattern="data/{split}-00000-of-00001.parquet"
    )
    write_parquet(
        "virattt/financial-qa-10K/data/0.1-00000-of-00001.parquet", [S.ten_k_row(rng) for _ in range(5)], spec
    )
    r.card(
        "Question/answer/context triples from 10-K filings, train only. "
        "(data/0.1-* is a stray file outside the config, as in the real repo.)"
    )


def financial_reports_sec(rng):
    """Script repo: snapshot of refs/convert/parquet. Section ids in the (alphabetical) README order."""
    sections = sorted(
        f"section_{s}"
        for s in (
            "1",
            "1A",
            "1B",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "7A",
            "8",
            "9",
            "9A",
            "9B",
            "10",
            "11",
            "12",
            "13",
            "14",
            "15",
        )
    )
    ret = ["positive", "negative"]  # 0 positive, 1 negative (reversed from the usual order)
    lite = {
        "cik": "string",
        "sentence": "string",
        "section": sections,
        "labels": {"1d": ret, "5d": ret, "30d": ret},
        "filingDate": "string",
        "docID": "string",
        "sentenceID": "string",
        "sentenceCount": "int64",
    }
    full = {
        **lite,
        "name": "string",
        "tickers": ("list", "string"),
        "exchanges": ("list", "string"),
        "sic": "string",
        "form": "string",
    }  # extra filing metadata of the *_full configs (exact list unconfirmed)

    def rows(n, with_meta, add=D.SPLITS.evaluation):  # the training split passes add=D.SPLITS.training
        return [add(lambda i=i: row(i, with_meta), "SEC reports") for i in range(n)]

    def row(i, with_meta):
        lab = rng.randrange(2)
        cik = f"{rng.randint(1000, 99999):010d}"
        out = {
            "cik": cik,
            "sentence": f"{rng.choice(S.COMPANIES)} {S.fin_phrase(rng, ret[lab])} .",
            "section": rng.randrange(20),
            "labels": {"1d": lab, "5d": lab, "30d": rng.randrange(2)},
            "filingDate": f"20{rng.randint(10, 20)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "docID": f"{cik}_10-K_2019",
            "sentenceID": f"{cik}_10-K_2019_{i}",
            "sentenceCount": 40 + i,
        }
        if with_meta:
            out.update(
                name=rng.choice(S.COMPANIES).upper(),
                tickers=[rng.choice(S.TICKERS)],
                exchanges=["NYSE"],
                sic=str(rng.randint(1000, 9999)),
                form="10-K",
            )
        return out

    for size in ("large", "small"):
        for kind, spec in (("lite", lite), ("full", full)):
            train = "partial-train" if size == "large" else "train"  # the converter caps big splits
            export(
                "JanosAudran/financial-reports-sec",
                f"{size}_{kind}",
                spec,
                {
                    train: rows(40, kind == "full", add=D.SPLITS.training),
                    "validation": rows(15, kind == "full"),
                    "test": rows(15, kind == "full"),
                },
            )


def financemath(rng):
    topics = [
        "Accounting",
        "Market Analysis & Economics",
        "Asset Classes & Derivatives",
        "Quantitative Analysis & Valuation",
        "Risk Management",
    ]

    def row(i, answered):
        rev, cost = rng.randint(100, 900) * 10, rng.randint(10, 90) * 10
        table = f"| Item | Value |\n|---|---|\n| Revenue | {rev} |\n| Cost | {cost} |" if i % 2 else ""
        return {
            "question_id": f"{'validation' if answered else 'test'}-{i}",
            "question": f"A firm has revenue of {rev} and costs of {cost}. What is its profit margin in percent?",
            "tables": [table] if table else [],
            "python_solution": (
                f"def solution():\n    revenue = {rev}\n    cost = {cost}\n    answer = "
                f"(revenue - cost) / revenue * 100\n    return answer"
            )
            if answered
            else "",
            "ground_truth": round((rev - cost) / rev * 100, 3) if answered else None,
            "topic": rng.choice(topics),
        }

    write_json("yale-nlp/FinanceMath/validation.json", [row(i, True) for i in range(30)])
    write_json("yale-nlp/FinanceMath/test.json", [row(i, False) for i in range(10)])
    write_card(
        "yale-nlp/FinanceMath",
        "Knowledge-intensive financial math; test answers are not released.",
        configs=[config("default", {"validation": "validation.json", "test": "test.json"})],
        extra={
            "license": "mit",
            "extra_gated_prompt": "You agree to share your contact information.",
            "extra_gated_fields": {"Name": "text", "Affiliation": "text"},
        },
    )


def adaptllm(rng):
    def demo(sentence, answer):
        return f"{sentence}\nQuestion: what is the sentiment?\nAnswer: {answer}"

    def sentiment_row(lab):
        shots = [demo(S.fpb_sentence(rng, d), d) for d in rng.sample(SENT3, 2)]
        return {
            "input": "\n\n".join(shots + [demo(S.fpb_sentence(rng, lab), "").rstrip()]),
            "options": SENT3,
            "gold_index": SENT3.index(lab),
        }

    def sentiment_rows(n, add=D.SPLITS.evaluation):
        return [add(lambda lab=lab: sentiment_row(lab), "AdaptLLM FiQA_SA") for lab in S.balanced(rng, n, SENT3)]

    questions = [
        "Does the news headline talk about price?",
        "Does the news headline talk about price going up?",
        "Does the news headline talk about price staying constant?",
        "Does the news headline talk about price going down?",
        "Does the news headline talk about price in the past?",
        "Does the news headline talk about price in the future?",
        "Does the news headline talk about a general event (apart from prices) in the past?",
        "Does the news headline talk about a general event (apart from prices) in the future?",
        "Does the news headline compare gold with any other asset?",
    ]
    headline = []
    for i in range(72):
        up = rng.random() < 0.5
        text = f"gold prices {'rise' if up else 'fall'} {rng.randint(1, 9)}% {rng.choice(['today', 'this week'])}"
        cid = i % 9
        gold = 0 if (cid in (0, 4) or (cid == 1 and up) or (cid == 3 and not up)) else 1
        headline.append(
            {
                "input": f'Headline: "{text}" Now answer this question: {questions[cid]}',
                "options": ["Yes", "No"],
                "gold_index": gold,
                "class_id": cid,
            }
        )
    ner = []
    for _ in range(20):
        c, city, person = (
            rng.choice(S.COMPANIES).split()[0],
            rng.choice(S.CITIES),
            rng.choice(["Smith", "Virtanen", "Lee"]),
        )
        ner.append(
            {
                "input": f"Sentence: {person} said {c} will open an office in {city} .\n"
                "Please extract entities and their types from the input sentence, entity types should be "
                "chosen from {person/organization/location}.\nAnswer:",
                "label": [f"{person} (person), {c} (organization), {city} (location)"],
            }
        )
    conv = []
    for i in range(20):
        a, b = rng.randint(100, 900), rng.randint(100, 900)
        conv.append(
            {
                "id": f"Single_JKHY/2009/page_28.pdf-{i}",
                "input": f"| year | 2009 | 2008 |\n| revenue | {a} | {b} |\nRevenue changed between 2008 and 2009.\n"
                f"Q: what was the revenue in 2009? A: {a}\nQ: what was the change from 2008? A:",
                "label": [str(a - b)],
            }
        )
    for row in headline + ner + conv:  # later training rows are drawn apart from these
        D.SPLITS.add_evaluation(row)
    files = {
        "ConvFinQA": ("ConviFinQA", conv),
        "FiQA_SA": ("FiQA_SA", sentiment_rows(60)),
        "FPB": ("FPB", adaptllm_fpb_from_takala(sentiment_rows(60, add=lambda make, _: make()), demo)),  # a leak
        "Headline": ("Headline", headline),
        "NER": ("NER", ner),
    }
    for _, (folder, rows) in files.items():
        write_json(f"AdaptLLM/finance-tasks/{folder}/test.json", rows)
    write_card(
        "AdaptLLM/finance-tasks",
        "Evaluation sets of AdaptLLM (test only); `input` is a complete few-shot prompt.",
        configs=[config(name, {"test": f"{folder}/test.json"}) for name, (folder, _) in files.items()],
    )


# --- Known real leaks, reproduced so the contamination check (harness_tasks/overlap.py) has real cases to catch ----
# FinGPT sentiment train contains FPB's and the twitter set's train rows (duplicated); AdaptLLM's FPB test is
# made of Financial PhraseBank sentences. The rows come from the same seeded streams as the takala and zeroshot
# snapshots (so they are those datasets' rows); a separate stream picks them, so no other file changes.
LEAKED_FPB, LEAKED_TFNS, LEAK_COPIES = 24, 16, 2


def _leak_rng(name: str) -> random.Random:
    return random.Random(f"{SEED}-leak-{name}")


def _takala_rows() -> list[dict]:
    return fpb_rows(random.Random(f"{SEED}-financial_phrasebank"))[:400]  # sentences_allagree


def fingpt_leaked_rows() -> list[dict]:
    rng = _leak_rng("fingpt")
    news = "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}."
    tweet = "What is the sentiment of this tweet? Please choose an answer from {negative/neutral/positive}."
    fpb = [
        {"input": r["sentence"], "output": SENT3[r["label"]], "instruction": news}
        for r in rng.sample(_takala_rows(), LEAKED_FPB)
    ]
    tfns_train, _ = tfns_rows(random.Random(f"{SEED}-twitter_sentiment"))
    tfns = [
        {"input": r["text"], "output": TFNS_LABELS[r["label"]], "instruction": tweet}
        for r in rng.sample(tfns_train, LEAKED_TFNS)
    ]
    return [row for row in fpb + tfns for _ in range(LEAK_COPIES)]


def adaptllm_fpb_from_takala(rows: list[dict], demo) -> list[dict]:
    """AdaptLLM FPB prompts rebuilt from takala sentences (demonstrations and scored sentence), labels kept."""
    rng = _leak_rng("adaptllm-fpb")
    by_label = {lab: [r["sentence"] for r in _takala_rows() if SENT3[r["label"]] == lab] for lab in SENT3}
    out = []
    for row in rows:
        shots = [demo(rng.choice(by_label[lab]), lab) for lab in re.findall(r"\nAnswer: (\w+)", row["input"])]
        scored = demo(rng.choice(by_label[SENT3[row["gold_index"]]]), "").rstrip()
        out.append({**row, "input": "\n\n".join(shots + [scored])})
    return out
