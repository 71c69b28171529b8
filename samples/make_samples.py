"""Write samples/: a miniature snapshot of every seed dataset, laid out exactly like the real Hub repository.

    python samples/make_samples.py      # deterministic: same seed, same rows, same files

Each `samples/<owner>/<name>/` mirrors what `huggingface-cli download --repo-type dataset <id> --local-dir ...`
gives (file formats, folder names, README front-matter `configs:` and `dataset_info` with ClassLabel names);
for repos whose `main` holds only a loading script it mirrors the `refs/convert/parquet` branch instead
(`<config>/<split>/0000.parquet`, no README). Rows are synthetic (samples/synthetic.py) but schema-true:
same columns, types, label encodings and split names as the real data, at a few dozen to a few hundred rows.
"""
from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT.parent)]

import synthetic as S  # noqa: E402
from trainers.datasets_table import DM_MATH_MODULES, MMLU_SUBJECTS  # noqa: E402

SEED = 20240601
OWNERS = ("stanfordnlp", "nyu-mll", "takala", "zeroshot", "TheFinAI", "FinGPT", "cais", "TIGER-Lab", "LLukas22",
          "gbharti", "virattt", "JanosAudran", "openai", "yale-nlp", "deepmind", "bigcode", "AdaptLLM", "PleIAs",
          "Skylion007", "bookcorpus", "open-web-math", "Salesforce")
SENT3 = ["negative", "neutral", "positive"]


# --- writers -----------------------------------------------------------------------------------------------
def features(spec: dict):
    """Features from a compact spec: 'string', 'int64', ['a', 'b'] (ClassLabel names), ('list', 'string'), {struct}."""
    from datasets import ClassLabel, Features, List, Value

    def one(t):
        if isinstance(t, list):
            return ClassLabel(names=t)
        if isinstance(t, tuple):
            return List(one(t[1]))
        if isinstance(t, dict):
            return {k: one(v) for k, v in t.items()}
        return Value(t)
    return Features({k: one(v) for k, v in spec.items()})


def write_parquet(rel: str, rows: list[dict], spec: dict) -> int:
    """Parquet with the `huggingface` schema metadata that push_to_hub and the parquet converter both embed."""
    import pyarrow.parquet as pq
    from datasets import Dataset

    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    table = Dataset.from_list(rows, features=features(spec)).data.table
    # Keep the `huggingface` features metadata (ClassLabel names), drop pyarrow's bulky ARROW:schema copy.
    with pq.ParquetWriter(path, table.schema, compression="zstd", store_schema=False) as writer:
        writer.add_key_value_metadata({"huggingface": table.schema.metadata[b"huggingface"].decode()})
        writer.write_table(table)
    return table.nbytes


def write_csv(rel: str, rows: list[dict]) -> None:
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write_json(rel: str, rows: list[dict]) -> None:
    """A JSON array of records (what these repos' `.json` files hold; `datasets` also reads JSON Lines)."""
    path = ROOT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def write_card(repo: str, body: str, configs: list[dict] | None = None, infos: list[dict] | None = None,
               extra: dict | None = None) -> None:
    """README.md with the YAML front-matter the Hub and `datasets` read (configs, dataset_info, gating)."""
    import yaml

    meta = dict(extra or {})
    if infos:
        meta["dataset_info"] = [{"config_name": i["config"], "features": features(i["spec"])._to_yaml_list(),
                                 "splits": [{"name": s, "num_bytes": b, "num_examples": n}
                                            for s, (n, b) in i["splits"].items()]}
                                for i in infos]
        if len(infos) == 1 and infos[0]["config"] == "default":
            meta["dataset_info"] = {k: v for k, v in meta["dataset_info"][0].items() if k != "config_name"}
    if configs:
        meta["configs"] = configs
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) if meta else ""
    path = ROOT / repo / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"---\n{front}---\n\n# {repo} (dlm sample)\n\nSynthetic miniature of the real repository: "
                    f"same layout, columns and label encodings, invented rows.\n\n{body.strip()}\n", encoding="utf-8")


def config(name: str, files: dict[str, str], default: bool = False) -> dict:
    out = {"config_name": name, "data_files": [{"split": s, "path": p} for s, p in files.items()]}
    if default:
        out["default"] = True
    return out


def fake_hash(*parts) -> str:
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()[:16]


class Repo:
    """Collects the splits of one config, writes them, and remembers what the card must declare."""

    def __init__(self, repo: str):
        self.repo, self.configs, self.infos = repo, [], []

    def add(self, name: str, spec: dict, splits: dict[str, list[dict]], pattern: str = "{config}/{split}-00000-of-00001.parquet",
            default: bool = False) -> None:
        files, sizes = {}, {}
        for split, rows in splits.items():
            rel = pattern.format(config=name, split=split, hash=fake_hash(self.repo, name, split))
            sizes[split] = (len(rows), write_parquet(f"{self.repo}/{rel}", rows, spec))
            files[split] = rel.split("-00000-of-")[0] + "-*" if "-00000-of-" in rel else rel  # cards use globs
        self.configs.append(config(name, files, default))
        self.infos.append({"config": name, "spec": spec, "splits": sizes})

    def card(self, body: str, extra: dict | None = None) -> None:
        write_card(self.repo, body, self.configs, self.infos, extra)


def export(repo: str, name: str, spec: dict, splits: dict[str, list[dict]], shards: int = 1) -> None:
    """The `refs/convert/parquet` branch layout: <config>/<split>/NNNN.parquet, no README."""
    for split, rows in splits.items():
        size = -(-len(rows) // shards)
        for k in range(shards):
            write_parquet(f"{repo}/{name}/{split}/{k:04d}.parquet", rows[k * size:(k + 1) * size], spec)


# --- one function per repository ---------------------------------------------------------------------------
def imdb(rng):
    spec = {"text": "string", "label": ["neg", "pos"]}
    def rows(n): return [{"text": S.review(rng, lab), "label": int(lab == "pos")} for lab in S.balanced(rng, n, ["neg", "pos"])]
    unsup = [{"text": S.review(rng, rng.choice(["neg", "pos"])), "label": -1} for _ in range(20)]
    r = Repo("stanfordnlp/imdb")
    r.add("plain_text", spec, {"train": rows(80), "test": rows(40), "unsupervised": unsup}, default=True)
    r.card("Large Movie Review Dataset. Labels: 0 neg, 1 pos; `unsupervised` rows have label -1.")


def glue(rng):
    nouns, verbs = ["cat", "teacher", "committee", "river", "child", "senator", "dog"], ["saw", "praised", "crossed", "liked"]
    def sent(): return f"The {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)}."
    def cola(lab):
        if lab:
            return {"sentence": sent()}
        return {"sentence": rng.choice([f"The {rng.choice(nouns)} the {rng.choice(nouns)} {rng.choice(verbs)}.",
                                        f"{rng.choice(verbs).capitalize()} the the {rng.choice(nouns)} did."])}
    def sst2(lab): return {"sentence": " ".join(S.REVIEW["pos" if lab else "neg"][rng.randrange(6)].lower().split()[1:]) + " "}
    def pair(lab, a, b, same):
        s1 = sent()
        return {a: s1, b: s1.replace("The", "A", 1) if same(lab) else sent().replace(".", " yesterday.")}
    def nli(lab, a, b):  # 0 entailment, 1 neutral, 2 contradiction
        s1 = f"The {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)} in {rng.choice(S.CITIES)}."
        subj = " ".join(s1.split()[:2])
        return {a: s1, b: [f"{subj} was in {s1.split()[-1]}", f"{subj} may also like music.", f"{subj} never did anything."][lab]}
    def qnli(lab):
        city = rng.choice(S.CITIES)
        return {"question": f"Where did the {rng.choice(nouns)} live?",
                "sentence": f"The {rng.choice(nouns)} lived in {city}." if lab == 0 else "Music is popular in summer."}
    tasks = {
        "cola": (["unacceptable", "acceptable"], {"sentence": "string"}, cola),
        "sst2": (["negative", "positive"], {"sentence": "string"}, sst2),
        "mrpc": (["not_equivalent", "equivalent"], {"sentence1": "string", "sentence2": "string"},
                 lambda lab: pair(lab, "sentence1", "sentence2", lambda l: l == 1)),
        "qqp": (["not_duplicate", "duplicate"], {"question1": "string", "question2": "string"},
                lambda lab: {k.replace("sentence", "question"): v.replace(".", "?") for k, v in
                             pair(lab, "sentence1", "sentence2", lambda l: l == 1).items()}),
        "mnli": (["entailment", "neutral", "contradiction"], {"premise": "string", "hypothesis": "string"},
                 lambda lab: nli(lab, "premise", "hypothesis")),
        "qnli": (["entailment", "not_entailment"], {"question": "string", "sentence": "string"}, qnli),
        "rte": (["entailment", "not_entailment"], {"sentence1": "string", "sentence2": "string"},
                lambda lab: pair(lab, "sentence1", "sentence2", lambda l: l == 0)),
        "wnli": (["not_entailment", "entailment"], {"sentence1": "string", "sentence2": "string"},
                 lambda lab: pair(lab, "sentence1", "sentence2", lambda l: l == 1)),
    }
    r = Repo("nyu-mll/glue")

    def rows(make, names, n, hidden=False):
        out = [dict(make(lab), label=-1 if hidden else lab) for lab in S.balanced(rng, n, list(range(len(names))))]
        return [dict(row, idx=i) for i, row in enumerate(out)]
    mnli_splits = {}
    for name, (names, fields, make) in tasks.items():
        spec = {**fields, "label": names, "idx": "int32"}
        if name == "mnli":
            mnli_splits = {"validation_matched": rows(make, names, 30), "validation_mismatched": rows(make, names, 30),
                           "test_matched": rows(make, names, 12, True), "test_mismatched": rows(make, names, 12, True)}
            r.add(name, spec, {"train": rows(make, names, 60), **mnli_splits})
            continue
        r.add(name, spec, {"train": rows(make, names, 60 if name != "wnli" else 40),
                           "validation": rows(make, names, 30 if name != "wnli" else 20),
                           "test": rows(make, names, 16, hidden=name != "mrpc")})
    spec = {"premise": "string", "hypothesis": "string", "label": tasks["mnli"][0], "idx": "int32"}
    for kind in ("matched", "mismatched"):
        r.add(f"mnli_{kind}", spec, {"validation": mnli_splits[f"validation_{kind}"], "test": mnli_splits[f"test_{kind}"]})
    r.add("ax", spec, {"test": rows(lambda lab: nli(lab, "premise", "hypothesis"), tasks["mnli"][0], 12, True)})
    sts = [dict(pair(0, "sentence1", "sentence2", lambda l: True), label=round(rng.uniform(0, 5), 2), idx=i) for i in range(50)]
    r.add("stsb", {"sentence1": "string", "sentence2": "string", "label": "float32", "idx": "int32"},
          {"train": sts[:30], "validation": sts[30:42], "test": [dict(x, label=-1.0) for x in sts[42:]]})
    r.configs.sort(key=lambda c: c["config_name"])
    r.card("GLUE benchmark. WNLI labels are 0 not_entailment, 1 entailment (reverse of RTE/QNLI). "
           "Test labels are -1 except MRPC.")


def fpb_rows(rng) -> list[dict]:
    labels = S.balanced(rng, 540, SENT3)
    return [{"sentence": S.fpb_sentence(rng, lab), "label": SENT3.index(lab)} for lab in labels]


def financial_phrasebank(rng):
    """Script repo: snapshot of refs/convert/parquet. Configs are nested: allagree < 75 < 66 < 50 agreement."""
    rows = fpb_rows(rng)
    spec = {"sentence": "string", "label": SENT3}
    for name, n in (("sentences_allagree", 400), ("sentences_75agree", 450), ("sentences_66agree", 490),
                    ("sentences_50agree", 540)):
        export("takala/financial_phrasebank", name, spec, {"train": rows[:n]})


TFNS_LABELS = ["negative", "positive", "neutral"]  # 0 Bearish, 1 Bullish, 2 Neutral


def tfns_rows(rng) -> tuple[list[dict], list[dict]]:
    def rows(n): return [{"text": S.tweet(rng, lab), "label": TFNS_LABELS.index(lab)}
                         for lab in S.balanced(rng, n, TFNS_LABELS)]
    return rows(360), rows(90)


def twitter_sentiment(rng):
    train, valid = tfns_rows(rng)
    write_csv("zeroshot/twitter-financial-news-sentiment/sent_train.csv", train)
    write_csv("zeroshot/twitter-financial-news-sentiment/sent_valid.csv", valid)
    write_card("zeroshot/twitter-financial-news-sentiment", "Finance tweets, 3 classes.\n\n```\nsentiments = {\n"
               '    "LABEL_0": "Bearish",\n    "LABEL_1": "Bullish",\n    "LABEL_2": "Neutral"\n}\n```',
               extra={"license": "mit", "task_categories": ["text-classification"]})


def twitter_topic(rng):
    def rows(n): return [{"text": S.topic_tweet(rng, t), "label": t} for t in S.balanced(rng, n, list(range(20)))]
    write_csv("zeroshot/twitter-financial-news-topic/topic_train.csv", rows(120))
    write_csv("zeroshot/twitter-financial-news-topic/topic_valid.csv", rows(40))
    write_card("zeroshot/twitter-financial-news-topic", "Finance tweets, 20 topics (LABEL_0 Analyst Update ... "
               "LABEL_19 Stock Movement).", extra={"license": "mit"})


def fiqa_sentiment(rng):
    def rows(n):
        out = []
        for lab in S.balanced(rng, n, SENT3):
            kind = rng.choice(["headline", "post"])
            text = S.tweet(rng, lab) if kind == "post" else S.fpb_sentence(rng, lab).replace(" .", "")
            out.append({"_id": str(rng.randint(1000, 99999)), "sentence": text, "target": rng.choice(S.COMPANIES),
                        "aspect": rng.choice(["Stock/Price Action", "Corporate/Sales", "Corporate/Risks"]),
                        "score": S.fiqa_score(rng, lab), "type": kind})
        return out
    spec = {"_id": "string", "sentence": "string", "target": "string", "aspect": "string", "score": "float64",
            "type": "string"}
    r = Repo("TheFinAI/fiqa-sentiment-classification")
    r.add("default", spec, {"train": rows(330), "valid": rows(66), "test": rows(72)},
          pattern="data/{split}-00000-of-00001-{hash}.parquet")
    r.card("FiQA 2018 task 1 sentiment: `score` is a float in [-1, 1]; split `valid`, not `validation`.",
           extra={"license": "mit"})


def fingpt_sentiment(rng):
    rows = []
    for lab in S.balanced(rng, 80, SENT3):
        if rng.random() < 0.2:  # NWGI rows use a 7-level scale
            lab = rng.choice(["mildly ", "moderately ", "strong "]) + lab if lab != "neutral" else lab
            instr = ("What is the sentiment of this news? Please choose an answer from {strong negative/moderately "
                     "negative/mildly negative/neutral/mildly positive/moderately positive/strong positive}.")
        else:
            instr = "What is the sentiment of this news? Please choose an answer from {negative/neutral/positive}."
        rows.append({"input": S.fpb_sentence(rng, lab.split()[-1]), "output": lab, "instruction": instr})
    rows += fingpt_leaked_rows()
    r = Repo("FinGPT/fingpt-sentiment-train")
    r.add("default", {"input": "string", "output": "string", "instruction": "string"}, {"train": rows},
          pattern="data/{split}-00000-of-00001-dabab110260ac909.parquet")
    r.card("FinGPT sentiment instruction data (FPB, FiQA-SA, TFNS, NWGI), train only.")


def mmlu(rng):
    spec = {"question": "string", "subject": "string", "choices": ("list", "string"), "answer": list("ABCD")}
    words = sorted({s.split("_")[-1] for s in MMLU_SUBJECTS})
    def row(subject):
        if "math" in subject or "algebra" in subject or "statistics" in subject:
            a, b = rng.randint(2, 40), rng.randint(2, 40)
            right, wrong = str(a + b), [str(a + b + d) for d in rng.sample([-3, -1, 2, 5, 7], 3)]
            q = f"What is {a} + {b}?"
        else:
            right = subject.split("_")[-1]
            wrong = rng.sample([w for w in words if w != right], 3)
            q = f"Which of the following terms is most closely related to {subject.replace('_', ' ')}?"
        choices = wrong[:]
        k = rng.randrange(4)
        choices.insert(k, right)
        return {"question": q, "subject": subject, "choices": choices, "answer": k}
    r = Repo("cais/mmlu")
    full = {"dev": [], "validation": [], "test": []}
    for subject in MMLU_SUBJECTS:
        splits = {"test": [row(subject) for _ in range(6)], "validation": [row(subject) for _ in range(3)],
                  "dev": [row(subject) for _ in range(5)]}
        r.add(subject, spec, splits)
        for k, v in splits.items():
            full[k] += v
    aux = [dict(row(rng.choice(MMLU_SUBJECTS)), subject="") for _ in range(40)]
    r.add("all", spec, {**full, "auxiliary_train": aux})
    r.add("auxiliary_train", spec, {"train": aux})
    r.configs.sort(key=lambda c: c["config_name"])
    r.card("MMLU: 57 subjects + all + auxiliary_train. `answer` is 0..3 = A..D; dev holds the 5-shot exemplars.",
           extra={"license": "mit"})


def mmlu_pro(rng):
    cats = ["computer science", "math", "chemistry", "engineering", "law", "biology", "health", "physics", "business",
            "philosophy", "economics", "other", "psychology", "history"]
    def row(i, cat, cot):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        n = rng.choice([10, 10, 10, 8])
        options = [str(a + b + d) for d in rng.sample(range(-9, 10), n) if d != 0][:n - 1]
        k = rng.randrange(n)
        options.insert(k, str(a + b))
        letter = "ABCDEFGHIJ"[k]
        q = f"What is {a} + {b}?" if cat == "math" else f"In {cat}, which number equals {a} plus {b}?"
        return {"question_id": i, "question": q, "options": options, "answer": letter, "answer_index": k,
                "cot_content": f"A: Let's think step by step. {a} + {b} = {a + b}. The answer is ({letter})." if cot else "",
                "category": cat, "src": f"ori_mmlu-{cat.replace(' ', '_')}"}
    test = [row(i, cats[i % 14] if i < 42 else "math", False) for i in range(60)]
    val = [row(100 + i, cats[i % 14], True) for i in range(28)]
    spec = {"question_id": "int64", "question": "string", "options": ("list", "string"), "answer": "string",
            "answer_index": "int64", "cot_content": "string", "category": "string", "src": "string"}
    r = Repo("TIGER-Lab/MMLU-Pro")
    r.add("default", spec, {"test": test, "validation": val}, pattern="data/{split}-00000-of-00001.parquet")
    r.card("MMLU-Pro: up to 10 options, `answer` letter A-J and `answer_index`.", extra={"license": "mit"})


def fiqa_qa(rng):
    for split, n in (("train", 60), ("test", 30)):
        write_json(f"LLukas22/fiqa/{split}.json", [S.finance_qa(rng) for _ in range(n)])
    write_card("LLukas22/fiqa", "FiQA 2018 task 2 (StackExchange Investment) question/answer pairs.",
               extra={"license": "cc-by-3.0", "task_categories": ["feature-extraction", "sentence-similarity"]})


def finance_alpaca(rng):
    rows = []
    for i in range(60):
        qa = S.finance_qa(rng)
        if i % 3 == 0:
            rows.append({"instruction": "Classify the sentiment of the sentence.", "input": S.fpb_sentence(rng, "positive"),
                         "output": "positive", "text": ""})
        else:
            rows.append({"instruction": qa["question"], "input": "", "output": qa["answer"], "text": ""})
    write_json("gbharti/finance-alpaca/Cleaned_date.json", rows)
    write_card("gbharti/finance-alpaca", "Alpaca + FiQA + generated finance instructions (instruction, input, output).",
               extra={"language": ["en"]})


def financial_qa_10k(rng):
    spec = {k: "string" for k in ("question", "answer", "context", "ticker", "filing")}
    r = Repo("virattt/financial-qa-10K")
    r.add("default", spec, {"train": [S.ten_k_row(rng) for _ in range(80)]}, pattern="data/{split}-00000-of-00001.parquet")
    write_parquet("virattt/financial-qa-10K/data/0.1-00000-of-00001.parquet", [S.ten_k_row(rng) for _ in range(5)], spec)
    r.card("Question/answer/context triples from 10-K filings, train only. "
           "(data/0.1-* is a stray file outside the config, as in the real repo.)")


def financial_reports_sec(rng):
    """Script repo: snapshot of refs/convert/parquet. Section ids in the (alphabetical) README order."""
    sections = sorted(f"section_{s}" for s in ("1", "1A", "1B", "2", "3", "4", "5", "6", "7", "7A", "8", "9", "9A",
                                                "9B", "10", "11", "12", "13", "14", "15"))
    ret = ["positive", "negative"]  # 0 positive, 1 negative (reversed from the usual order)
    lite = {"cik": "string", "sentence": "string", "section": sections,
            "labels": {"1d": ret, "5d": ret, "30d": ret}, "filingDate": "string", "docID": "string",
            "sentenceID": "string", "sentenceCount": "int64"}
    full = {**lite, "name": "string", "tickers": ("list", "string"), "exchanges": ("list", "string"),
            "sic": "string", "form": "string"}  # extra filing metadata of the *_full configs (exact list unconfirmed)
    def rows(n, with_meta):
        out = []
        for i in range(n):
            lab = rng.randrange(2)
            cik = f"{rng.randint(1000, 99999):010d}"
            row = {"cik": cik, "sentence": f"{rng.choice(S.COMPANIES)} {S.fin_phrase(rng, ret[lab])} .",
                   "section": rng.randrange(20), "labels": {"1d": lab, "5d": lab, "30d": rng.randrange(2)},
                   "filingDate": f"20{rng.randint(10, 20)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                   "docID": f"{cik}_10-K_2019", "sentenceID": f"{cik}_10-K_2019_{i}", "sentenceCount": 40 + i}
            if with_meta:
                row.update(name=rng.choice(S.COMPANIES).upper(), tickers=[rng.choice(S.TICKERS)], exchanges=["NYSE"],
                           sic=str(rng.randint(1000, 9999)), form="10-K")
            out.append(row)
        return out
    for size in ("large", "small"):
        for kind, spec in (("lite", lite), ("full", full)):
            train = "partial-train" if size == "large" else "train"  # the converter caps big splits
            export("JanosAudran/financial-reports-sec", f"{size}_{kind}", spec,
                   {train: rows(40, kind == "full"), "validation": rows(15, kind == "full"),
                    "test": rows(15, kind == "full")})


def gsm8k(rng):
    spec = {"question": "string", "answer": "string"}
    triples = [S.gsm8k(rng) for _ in range(90)]
    r = Repo("openai/gsm8k")
    for name, col in (("main", 1), ("socratic", 2)):
        rows = [{"question": t[0], "answer": t[col]} for t in triples]
        r.add(name, spec, {"train": rows[:60], "test": rows[60:]})
    r.card("Grade school math: answers carry <<calc>> annotations and a final `#### N` line.", extra={"license": "mit"})


def financemath(rng):
    topics = ["Accounting", "Market Analysis & Economics", "Asset Classes & Derivatives",
              "Quantitative Analysis & Valuation", "Risk Management"]
    def row(i, answered):
        rev, cost = rng.randint(100, 900) * 10, rng.randint(10, 90) * 10
        table = f"| Item | Value |\n|---|---|\n| Revenue | {rev} |\n| Cost | {cost} |" if i % 2 else ""
        return {"question_id": f"{'validation' if answered else 'test'}-{i}",
                "question": f"A firm has revenue of {rev} and costs of {cost}. What is its profit margin in percent?",
                "tables": [table] if table else [],
                "python_solution": (f"def solution():\n    revenue = {rev}\n    cost = {cost}\n    answer = "
                                    f"(revenue - cost) / revenue * 100\n    return answer") if answered else "",
                "ground_truth": round((rev - cost) / rev * 100, 3) if answered else None,
                "topic": rng.choice(topics)}
    write_json("yale-nlp/FinanceMath/validation.json", [row(i, True) for i in range(30)])
    write_json("yale-nlp/FinanceMath/test.json", [row(i, False) for i in range(10)])
    write_card("yale-nlp/FinanceMath", "Knowledge-intensive financial math; test answers are not released.",
               configs=[config("default", {"validation": "validation.json", "test": "test.json"})],
               extra={"license": "mit", "extra_gated_prompt": "You agree to share your contact information.",
                      "extra_gated_fields": {"Name": "text", "Affiliation": "text"}})


def math_dataset(rng):
    """Script repo: refs/convert/parquet snapshot. Values mimic the script's bytes repr (b'...\\n')."""
    for module in DM_MATH_MODULES:
        pairs = [S.deepmind(rng, module) for _ in range(30)]
        rows = [{"question": f"b'{q}\\n'", "answer": f"b'{a}\\n'"} for q, a in pairs]
        export("deepmind/math_dataset", module, {"question": "string", "answer": "string"},
               {"train": rows[:20], "test": rows[20:]})


def bigcodebench(rng):
    from bigcode_tasks import TASKS
    versions = ["v0.1.0_hf", "v0.1.1", "v0.1.2", "v0.1.3", "v0.1.4"]
    r = Repo("bigcode/bigcodebench")
    spec = {k: "string" for k in ("task_id", "complete_prompt", "instruct_prompt", "canonical_solution", "code_prompt",
                                  "test", "entry_point", "doc_struct", "libs")}
    r.add("default", spec, {v: [make(i, v) for i, make in enumerate(TASKS)] for v in versions},
          pattern="data/{split}-00000-of-00001.parquet")
    r.card("BigCodeBench: splits are dataset versions; v0.1.4 is the current one.", extra={"license": "apache-2.0"})


def adaptllm(rng):
    def demo(sentence, answer): return f"{sentence}\nQuestion: what is the sentiment?\nAnswer: {answer}"
    def sentiment_rows(n):
        out = []
        for lab in S.balanced(rng, n, SENT3):
            shots = [demo(S.fpb_sentence(rng, d), d) for d in rng.sample(SENT3, 2)]
            out.append({"input": "\n\n".join(shots + [demo(S.fpb_sentence(rng, lab), "").rstrip()]),
                        "options": SENT3, "gold_index": SENT3.index(lab)})
        return out
    questions = ["Does the news headline talk about price?", "Does the news headline talk about price going up?",
                 "Does the news headline talk about price staying constant?",
                 "Does the news headline talk about price going down?", "Does the news headline talk about price in the past?",
                 "Does the news headline talk about price in the future?",
                 "Does the news headline talk about a general event (apart from prices) in the past?",
                 "Does the news headline talk about a general event (apart from prices) in the future?",
                 "Does the news headline compare gold with any other asset?"]
    headline = []
    for i in range(72):
        up = rng.random() < 0.5
        text = f"gold prices {'rise' if up else 'fall'} {rng.randint(1, 9)}% {rng.choice(['today', 'this week'])}"
        cid = i % 9
        gold = 0 if (cid in (0, 4) or (cid == 1 and up) or (cid == 3 and not up)) else 1
        headline.append({"input": f"Headline: \"{text}\" Now answer this question: {questions[cid]}",
                         "options": ["Yes", "No"], "gold_index": gold, "class_id": cid})
    ner = []
    for _ in range(20):
        c, city, person = rng.choice(S.COMPANIES).split()[0], rng.choice(S.CITIES), rng.choice(["Smith", "Virtanen", "Lee"])
        ner.append({"input": f"Sentence: {person} said {c} will open an office in {city} .\n"
                             "Please extract entities and their types from the input sentence, entity types should be "
                             "chosen from {person/organization/location}.\nAnswer:",
                    "label": [f"{person} (person), {c} (organization), {city} (location)"]})
    conv = []
    for i in range(20):
        a, b = rng.randint(100, 900), rng.randint(100, 900)
        conv.append({"id": f"Single_JKHY/2009/page_28.pdf-{i}",
                     "input": f"| year | 2009 | 2008 |\n| revenue | {a} | {b} |\nRevenue changed between 2008 and 2009.\n"
                              f"Q: what was the revenue in 2009? A: {a}\nQ: what was the change from 2008? A:",
                     "label": [str(a - b)]})
    files = {"ConvFinQA": ("ConviFinQA", conv), "FiQA_SA": ("FiQA_SA", sentiment_rows(60)),
             "FPB": ("FPB", adaptllm_fpb_from_takala(sentiment_rows(60), demo)), "Headline": ("Headline", headline), "NER": ("NER", ner)}
    for _, (folder, rows) in files.items():
        write_json(f"AdaptLLM/finance-tasks/{folder}/test.json", rows)
    write_card("AdaptLLM/finance-tasks", "Evaluation sets of AdaptLLM (test only); `input` is a complete few-shot prompt.",
               configs=[config(name, {"test": f"{folder}/test.json"}) for name, (folder, _) in files.items()])


def corpora(rng):
    paras = ["The council approved the annual budget after a long debate on public transport.",
             "In the year 1851 the ship left the harbour with a cargo of timber and wool.",
             "We propose a simple method for estimating the volatility of asset returns.",
             "def add(a, b):\n    return a + b", "Le conseil municipal a vote le budget de la ville.",
             "The central bank raised interest rates to fight inflation.",
             "She opened the old book and read the first chapter aloud."]
    types = ["Open Government", "Open Culture", "Open Science", "Open Source", "Open Government", "Open Web", "Open Culture"]
    for k in range(1, 11):
        rows = []
        for j in range(8):
            i = rng.randrange(len(paras))
            rows.append({"identifier": f"cc-{k}-{j}", "text": paras[i] + " " + rng.choice(paras), "open_type": types[i],
                         "language": "French" if "Le conseil" in paras[i] else "English"})
        write_parquet(f"PleIAs/common_corpus/common_corpus_{k}/subset_{k}_1.parquet", rows,
                      {"identifier": "string", "text": "string", "open_type": "string", "language": "string"})
    write_card("PleIAs/common_corpus", "About 2 trillion tokens of open text, in folders common_corpus_1..10 (stream it).",
               extra={"language": ["en", "fr"]})
    web = [{"text": f"{rng.choice(paras)} {S.fin_phrase(rng, rng.choice(SENT3)).capitalize()}. {rng.choice(paras)}"}
           for _ in range(60)]
    export("Skylion007/openwebtext", "plain_text", {"text": "string"}, {"partial-train": web}, shards=3)
    books = [{"text": rng.choice(["he looked at her and smiled .", "the rain did not stop all night .",
                                  "`` where are you going ? '' she asked .", "i closed the door behind me ."])}
             for _ in range(80)]
    export("bookcorpus/bookcorpus", "plain_text", {"text": "string"}, {"train": books}, shards=2)
    owm = []
    for i in range(40):
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        owm.append({"url": f"https://math.example.org/q/{i}", "date": "2023-01-1%d" % (i % 10),
                    "text": f"The derivative of $x^{a}$ is ${a}x^{a - 1}$. Hence $\\int_0^1 {b}x\\,dx = {b / 2}$.",
                    "metadata": S.jstr({"extraction_info": {"found_math": True}, "score": round(rng.random(), 3)})})
    r = Repo("open-web-math/open-web-math")
    spec = {"url": "string", "text": "string", "date": "string", "metadata": "string"}
    nbytes = sum(write_parquet(f"{r.repo}/data/train-{k:05d}-of-00002.parquet", owm[k * 20:(k + 1) * 20], spec)
                 for k in range(2))
    write_card(r.repo, "OpenWebMath: 14.7B tokens of mathematical web pages; `metadata` is a JSON string.",
               configs=[config("default", {"train": "data/train-*"})],
               infos=[{"config": "default", "spec": spec, "splits": {"train": (len(owm), nbytes)}}],
               extra={"license": "odc-by"})


def wikitext(rng):
    r = Repo("Salesforce/wikitext")
    for size in ("103", "2"):
        for raw in (True, False):
            name = f"wikitext-{size}{'-raw' if raw else ''}-v1"
            splits = {s: [{"text": line} for _ in range(n) for line in S.wiki_article(rng, raw)] for s, n in
                      (("test", 2), ("train", 5), ("validation", 2))}
            if size == "103":  # the big train split comes in two shards
                half = len(splits["train"]) // 2
                nbytes = sum(write_parquet(f"{r.repo}/{name}/train-{k:05d}-of-00002.parquet", part, {"text": "string"})
                             for k, part in enumerate((splits["train"][:half], splits["train"][half:])))
                rest = {s: v for s, v in splits.items() if s != "train"}
                r.add(name, {"text": "string"}, rest)
                r.configs[-1]["data_files"].insert(1, {"split": "train", "path": f"{name}/train-*"})
                r.infos[-1]["splits"]["train"] = (len(splits["train"]), nbytes)
            else:
                r.add(name, {"text": "string"}, splits)
    r.card("WikiText language modelling: one row per line (many empty), headings ` = Title = `.",
           extra={"license": ["cc-by-sa-3.0", "gfdl"]})


# --- Known real leaks, reproduced so the contamination check (trainers/overlap.py) has real cases to catch ----
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
    fpb = [{"input": r["sentence"], "output": SENT3[r["label"]], "instruction": news}
           for r in rng.sample(_takala_rows(), LEAKED_FPB)]
    tfns_train, _ = tfns_rows(random.Random(f"{SEED}-twitter_sentiment"))
    tfns = [{"input": r["text"], "output": TFNS_LABELS[r["label"]], "instruction": tweet}
            for r in rng.sample(tfns_train, LEAKED_TFNS)]
    return [row for row in fpb + tfns for _ in range(LEAK_COPIES)]


def adaptllm_fpb_from_takala(rows: list[dict], demo) -> list[dict]:
    """AdaptLLM FPB prompts rebuilt from takala sentences (demonstrations and scored sentence), labels kept."""
    import re

    rng = _leak_rng("adaptllm-fpb")
    by_label = {lab: [r["sentence"] for r in _takala_rows() if SENT3[r["label"]] == lab] for lab in SENT3}
    out = []
    for row in rows:
        shots = [demo(rng.choice(by_label[lab]), lab) for lab in re.findall(r"\nAnswer: (\w+)", row["input"])]
        scored = demo(rng.choice(by_label[SENT3[row["gold_index"]]]), "").rstrip()
        out.append({**row, "input": "\n\n".join(shots + [scored])})
    return out


def main() -> None:
    for owner in OWNERS:
        shutil.rmtree(ROOT / owner, ignore_errors=True)
    makers = [imdb, glue, financial_phrasebank, twitter_sentiment, twitter_topic, fiqa_sentiment, fingpt_sentiment,
              mmlu, mmlu_pro, fiqa_qa, finance_alpaca, financial_qa_10k, financial_reports_sec, gsm8k, financemath,
              math_dataset, bigcodebench, adaptllm, corpora, wikitext]
    for make in makers:
        make(random.Random(f"{SEED}-{make.__name__}"))  # one stream per repo: editing one leaves the others alone
    files = [p for p in ROOT.rglob("*") if p.is_file() and p.parts[len(ROOT.parts)] in OWNERS]
    print(f"wrote {len(files)} files, {sum(p.stat().st_size for p in files) / 1024:.0f} KiB under {ROOT}")


if __name__ == "__main__":
    main()
