"""Write samples/: a miniature snapshot of every seed dataset, laid out exactly like the real Hub repository.

    python samples/make_samples.py      # deterministic: same seed, same rows, same files

Each `samples/<owner>/<name>/` mirrors what `huggingface-cli download --repo-type dataset <id> --local-dir ...`
gives (file formats, folder names, README front-matter `configs:` and `dataset_info` with ClassLabel names);
for repos whose `main` holds only a loading script it mirrors the `refs/convert/parquet` branch instead
(`<config>/<split>/0000.parquet`, no README). Rows are synthetic (samples/synthetic.py) but schema-true:
same columns, types, label encodings and split names as the real data, at a few dozen to a few hundred rows.
"""

from __future__ import annotations

import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(ROOT.parent)]

import disjoint as D  # noqa: E402
import synthetic as S  # noqa: E402
import writers  # noqa: E402
from repos_finance import (  # noqa: E402
    SENT3,
    adaptllm,
    finance_alpaca,
    financemath,
    financial_phrasebank,
    financial_qa_10k,
    financial_reports_sec,
    fingpt_sentiment,
    fiqa_qa,
    fiqa_sentiment,
    twitter_sentiment,
    twitter_topic,
)
from synthetic import SEED  # noqa: E402
from writers import Repo, config, export, write_card, write_parquet  # noqa: E402

from dlm.data.table import DM_MATH_MODULES, MMLU_SUBJECTS  # noqa: E402

OWNERS = (
    "stanfordnlp",
    "nyu-mll",
    "takala",
    "zeroshot",
    "TheFinAI",
    "FinGPT",
    "cais",
    "TIGER-Lab",
    "LLukas22",
    "gbharti",
    "virattt",
    "JanosAudran",
    "openai",
    "yale-nlp",
    "deepmind",
    "bigcode",
    "AdaptLLM",
    "PleIAs",
    "Skylion007",
    "bookcorpus",
    "open-web-math",
    "Salesforce",
)


# --- one function per repository ---------------------------------------------------------------------------
def imdb(rng):
    spec = {"text": "string", "label": ["neg", "pos"]}

    def rows(n, add):
        return [
            add(lambda lab=lab: {"text": S.review(rng, lab), "label": int(lab == "pos")}, "IMDB")
            for lab in S.balanced(rng, n, ["neg", "pos"])
        ]

    unsup = [{"text": S.review(rng, rng.choice(["neg", "pos"])), "label": -1} for _ in range(20)]
    r = Repo("stanfordnlp/imdb")
    splits = {"train": rows(80, D.SPLITS.training), "test": rows(40, D.SPLITS.evaluation), "unsupervised": unsup}
    r.add("plain_text", spec, splits, default=True)
    r.card("Large Movie Review Dataset. Labels: 0 neg, 1 pos; `unsupervised` rows have label -1.")


def glue(rng):
    nouns, verbs = (
        ["cat", "teacher", "committee", "river", "child", "senator", "dog", "pilot", "farmer", "doctor", "poet"]
        + ["student", "mayor", "sailor", "baker", "judge", "nurse", "painter", "singer", "driver"],
        ["saw", "praised", "crossed", "liked", "followed", "visited", "helped", "called", "met", "thanked"],
    )
    hobbies = ["music", "chess", "football", "gardening", "cooking", "painting", "hiking", "poetry", "cinema"]
    days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]

    def sent():
        return f"The {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)}."

    def cola(lab):
        if lab:
            return {"sentence": sent()}
        return {
            "sentence": rng.choice(
                [
                    f"The {rng.choice(nouns)} the {rng.choice(nouns)} {rng.choice(verbs)}.",
                    f"{rng.choice(verbs).capitalize()} the the {rng.choice(nouns)} did.",
                ]
            )
        }

    def sst2(lab):
        cue = S.REVIEW_CUES["pos" if lab else "neg"]
        parts = rng.sample(S.FILM_PARTS, 2)
        return {
            "sentence": f"{rng.choice(['a', 'the', 'its'])} {rng.choice(cue)} {parts[0]} and "
            f"{rng.choice(cue)} {parts[1]} "
        }

    def pair(lab, a, b, same):
        s1 = sent()
        return {a: s1, b: s1.replace("The", "A", 1) if same(lab) else sent().replace(".", " yesterday.")}

    def nli(lab, a, b):  # 0 entailment, 1 neutral, 2 contradiction
        s1 = f"The {rng.choice(nouns)} {rng.choice(verbs)} the {rng.choice(nouns)} in {rng.choice(S.CITIES)}."
        subj = " ".join(s1.split()[:2])
        return {
            a: s1,
            b: [
                f"{subj} was in {s1.split()[-1]}",
                f"{subj} may also like {rng.choice(hobbies)} on {rng.choice(days)}.",
                f"{subj} never {rng.choice(verbs)} anyone in {rng.choice(S.CITIES)}.",
            ][lab],
        }

    def qnli(lab):
        noun, city = rng.choice(nouns), rng.choice(S.CITIES)
        return {
            "question": f"Where did the {noun} live in {rng.randint(1900, 2000)}?",
            "sentence": f"The {noun} lived in {city}."
            if lab == 0
            else f"{rng.choice(hobbies).capitalize()} is popular in {city} on {rng.choice(days)}.",
        }

    tasks = {
        "cola": (["unacceptable", "acceptable"], {"sentence": "string"}, cola),
        "sst2": (["negative", "positive"], {"sentence": "string"}, sst2),
        "mrpc": (
            ["not_equivalent", "equivalent"],
            {"sentence1": "string", "sentence2": "string"},
            lambda lab: pair(lab, "sentence1", "sentence2", lambda label: label == 1),
        ),
        "qqp": (
            ["not_duplicate", "duplicate"],
            {"question1": "string", "question2": "string"},
            lambda lab: {
                k.replace("sentence", "question"): v.replace(".", "?")
                for k, v in pair(lab, "sentence1", "sentence2", lambda label: label == 1).items()
            },
        ),
        "mnli": (
            ["entailment", "neutral", "contradiction"],
            {"premise": "string", "hypothesis": "string"},
            lambda lab: nli(lab, "premise", "hypothesis"),
        ),
        "qnli": (["entailment", "not_entailment"], {"question": "string", "sentence": "string"}, qnli),
        "rte": (
            ["entailment", "not_entailment"],
            {"sentence1": "string", "sentence2": "string"},
            lambda lab: pair(lab, "sentence1", "sentence2", lambda label: label == 0),
        ),
        "wnli": (
            ["not_entailment", "entailment"],
            {"sentence1": "string", "sentence2": "string"},
            lambda lab: pair(lab, "sentence1", "sentence2", lambda label: label == 1),
        ),
    }
    r = Repo("nyu-mll/glue")

    def rows(make, names, n, hidden=False, add=D.SPLITS.evaluation):  # training splits pass add=D.SPLITS.training
        out = [
            add(lambda lab=lab: dict(make(lab), label=-1 if hidden else lab), "GLUE")
            for lab in S.balanced(rng, n, list(range(len(names))))
        ]
        return [dict(row, idx=i) for i, row in enumerate(out)]

    mnli_splits = {}
    for name, (names, fields, make) in tasks.items():
        spec = {**fields, "label": names, "idx": "int32"}
        if name == "mnli":
            mnli_splits = {
                "validation_matched": rows(make, names, 30),
                "validation_mismatched": rows(make, names, 30),
                "test_matched": rows(make, names, 12, True),
                "test_mismatched": rows(make, names, 12, True),
            }
            r.add(name, spec, {"train": rows(make, names, 60, add=D.SPLITS.training), **mnli_splits})
            continue
        r.add(
            name,
            spec,
            {
                "train": rows(make, names, 60 if name != "wnli" else 40, add=D.SPLITS.training),
                "validation": rows(make, names, 30 if name != "wnli" else 20),
                "test": rows(make, names, 16, hidden=name != "mrpc"),
            },
        )
    spec = {"premise": "string", "hypothesis": "string", "label": tasks["mnli"][0], "idx": "int32"}
    for kind in ("matched", "mismatched"):
        r.add(
            f"mnli_{kind}", spec, {"validation": mnli_splits[f"validation_{kind}"], "test": mnli_splits[f"test_{kind}"]}
        )
    r.add("ax", spec, {"test": rows(lambda lab: nli(lab, "premise", "hypothesis"), tasks["mnli"][0], 12, True)})
    sts = [
        dict(
            (D.SPLITS.training if i < 30 else D.SPLITS.evaluation)(
                lambda: pair(0, "sentence1", "sentence2", lambda label: True), "GLUE STS-B"
            ),
            label=round(rng.uniform(0, 5), 2),
            idx=i,
        )
        for i in range(50)
    ]
    r.add(
        "stsb",
        {"sentence1": "string", "sentence2": "string", "label": "float32", "idx": "int32"},
        {"train": sts[:30], "validation": sts[30:42], "test": [dict(x, label=-1.0) for x in sts[42:]]},
    )
    r.configs.sort(key=lambda c: c["config_name"])
    r.card(
        "GLUE benchmark. WNLI labels are 0 not_entailment, 1 entailment (reverse of RTE/QNLI). "
        "Test labels are -1 except MRPC."
    )


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
        splits = {
            "test": [row(subject) for _ in range(6)],
            "validation": [row(subject) for _ in range(3)],
            "dev": [row(subject) for _ in range(5)],
        }
        r.add(subject, spec, splits)
        for k, v in splits.items():
            full[k] += v
    aux = [dict(row(rng.choice(MMLU_SUBJECTS)), subject="") for _ in range(40)]
    r.add("all", spec, {**full, "auxiliary_train": aux})
    r.add("auxiliary_train", spec, {"train": aux})
    r.configs.sort(key=lambda c: c["config_name"])
    r.card(
        "MMLU: 57 subjects + all + auxiliary_train. `answer` is 0..3 = A..D; dev holds the 5-shot exemplars.",
        extra={"license": "mit"},
    )


def mmlu_pro(rng):
    cats = [
        "computer science",
        "math",
        "chemistry",
        "engineering",
        "law",
        "biology",
        "health",
        "physics",
        "business",
        "philosophy",
        "economics",
        "other",
        "psychology",
        "history",
    ]

    def row(i, cat, cot):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        n = rng.choice([10, 10, 10, 8])
        options = [str(a + b + d) for d in rng.sample(range(-9, 10), n) if d != 0][: n - 1]
        k = rng.randrange(n)
        options.insert(k, str(a + b))
        letter = "ABCDEFGHIJ"[k]
        q = f"What is {a} + {b}?" if cat == "math" else f"In {cat}, which number equals {a} plus {b}?"
        return {
            "question_id": i,
            "question": q,
            "options": options,
            "answer": letter,
            "answer_index": k,
            "cot_content": f"A: Let's think step by step. {a} + {b} = {a + b}. The answer is ({letter})."
            if cot
            else "",
            "category": cat,
            "src": f"ori_mmlu-{cat.replace(' ', '_')}",
        }

    test = [row(i, cats[i % 14] if i < 42 else "math", False) for i in range(60)]
    val = [row(100 + i, cats[i % 14], True) for i in range(28)]
    spec = {
        "question_id": "int64",
        "question": "string",
        "options": ("list", "string"),
        "answer": "string",
        "answer_index": "int64",
        "cot_content": "string",
        "category": "string",
        "src": "string",
    }
    r = Repo("TIGER-Lab/MMLU-Pro")
    r.add("default", spec, {"test": test, "validation": val}, pattern="data/{split}-00000-of-00001.parquet")
    r.card("MMLU-Pro: up to 10 options, `answer` letter A-J and `answer_index`.", extra={"license": "mit"})


def gsm8k(rng):
    spec = {"question": "string", "answer": "string"}

    def triple(add):
        return add(lambda: dict(zip(("question", "answer", "socratic"), S.gsm8k(rng))), "GSM8K")

    triples = [tuple(triple(D.SPLITS.training if i < 60 else D.SPLITS.evaluation).values()) for i in range(90)]
    r = Repo("openai/gsm8k")
    for name, col in (("main", 1), ("socratic", 2)):
        rows = [{"question": t[0], "answer": t[col]} for t in triples]
        r.add(name, spec, {"train": rows[:60], "test": rows[60:]})
    r.card("Grade school math: answers carry <<calc>> annotations and a final `#### N` line.", extra={"license": "mit"})


def math_dataset(rng):
    """Script repo: refs/convert/parquet snapshot. Values mimic the script's bytes repr (b'...\\n')."""

    def row(module):
        q, a = S.deepmind(rng, module)
        return {"question": f"b'{q}\\n'", "answer": f"b'{a}\\n'"}

    for module in DM_MATH_MODULES:
        rows = [
            (D.SPLITS.training if i < 20 else D.SPLITS.evaluation)(lambda m=module: row(m), module) for i in range(30)
        ]
        export(
            "deepmind/math_dataset",
            module,
            {"question": "string", "answer": "string"},
            {"train": rows[:20], "test": rows[20:]},
        )


def bigcodebench(rng):
    from bigcode_tasks import TASKS

    versions = ["v0.1.0_hf", "v0.1.1", "v0.1.2", "v0.1.3", "v0.1.4"]
    r = Repo("bigcode/bigcodebench")
    spec = {
        k: "string"
        for k in (
            "task_id",
            "complete_prompt",
            "instruct_prompt",
            "canonical_solution",
            "code_prompt",
            "test",
            "entry_point",
            "doc_struct",
            "libs",
        )
    }
    r.add(
        "default",
        spec,
        {v: [make(i, v) for i, make in enumerate(TASKS)] for v in versions},
        pattern="data/{split}-00000-of-00001.parquet",
    )
    r.card("BigCodeBench: splits are dataset versions; v0.1.4 is the current one.", extra={"license": "apache-2.0"})


def corpora(rng):
    paras = [
        "The council approved the annual budget after a long debate on public transport.",
        "In the year 1851 the ship left the harbour with a cargo of timber and wool.",
        "We propose a simple method for estimating the volatility of asset returns.",
        "def add(a, b):\n    return a + b",
        "Le conseil municipal a vote le budget de la ville.",
        "The central bank raised interest rates to fight inflation.",
        "She opened the old book and read the first chapter aloud.",
    ]
    types = [
        "Open Government",
        "Open Culture",
        "Open Science",
        "Open Source",
        "Open Government",
        "Open Web",
        "Open Culture",
    ]
    for k in range(1, 11):
        rows = []
        for j in range(8):
            i = rng.randrange(len(paras))
            rows.append(
                {
                    "identifier": f"cc-{k}-{j}",
                    "text": paras[i] + " " + rng.choice(paras),
                    "open_type": types[i],
                    "language": "French" if "Le conseil" in paras[i] else "English",
                }
            )
        write_parquet(
            f"PleIAs/common_corpus/common_corpus_{k}/subset_{k}_1.parquet",
            rows,
            {"identifier": "string", "text": "string", "open_type": "string", "language": "string"},
        )
    write_card(
        "PleIAs/common_corpus",
        "About 2 trillion tokens of open text, in folders common_corpus_1..10 (stream it).",
        extra={"language": ["en", "fr"]},
    )
    web = [
        {"text": f"{rng.choice(paras)} {S.fin_phrase(rng, rng.choice(SENT3)).capitalize()}. {rng.choice(paras)}"}
        for _ in range(60)
    ]
    export("Skylion007/openwebtext", "plain_text", {"text": "string"}, {"partial-train": web}, shards=3)
    books = [
        {
            "text": rng.choice(
                [
                    "he looked at her and smiled .",
                    "the rain did not stop all night .",
                    "`` where are you going ? '' she asked .",
                    "i closed the door behind me .",
                ]
            )
        }
        for _ in range(80)
    ]
    export("bookcorpus/bookcorpus", "plain_text", {"text": "string"}, {"train": books}, shards=2)
    owm = []
    for i in range(40):
        a, b = rng.randint(2, 9), rng.randint(2, 9)
        owm.append(
            {
                "url": f"https://math.example.org/q/{i}",
                "date": f"2023-01-1{i % 10}",
                "text": f"The derivative of $x^{a}$ is ${a}x^{a - 1}$. Hence $\\int_0^1 {b}x\\,dx = {b / 2}$.",
                "metadata": S.jstr({"extraction_info": {"found_math": True}, "score": round(rng.random(), 3)}),
            }
        )
    r = Repo("open-web-math/open-web-math")
    spec = {"url": "string", "text": "string", "date": "string", "metadata": "string"}
    nbytes = sum(
        write_parquet(f"{r.repo}/data/train-{k:05d}-of-00002.parquet", owm[k * 20 : (k + 1) * 20], spec)
        for k in range(2)
    )
    write_card(
        r.repo,
        "OpenWebMath: 14.7B tokens of mathematical web pages; `metadata` is a JSON string.",
        configs=[config("default", {"train": "data/train-*"})],
        infos=[{"config": "default", "spec": spec, "splits": {"train": (len(owm), nbytes)}}],
        extra={"license": "odc-by"},
    )


def wikitext(rng):
    r = Repo("Salesforce/wikitext")
    for size in ("103", "2"):
        for raw in (True, False):
            name = f"wikitext-{size}{'-raw' if raw else ''}-v1"
            splits = {
                s: [
                    row
                    for _ in range(n)
                    for row in (D.SPLITS.training if s == "train" else D.SPLITS.evaluation)(
                        lambda raw=raw: [{"text": line} for line in S.wiki_article(rng, raw)], "WikiText"
                    )
                ]
                for s, n in (("test", 2), ("train", 5), ("validation", 2))
            }
            if size == "103":  # the big train split comes in two shards
                half = len(splits["train"]) // 2
                nbytes = sum(
                    write_parquet(f"{r.repo}/{name}/train-{k:05d}-of-00002.parquet", part, {"text": "string"})
                    for k, part in enumerate((splits["train"][:half], splits["train"][half:]))
                )
                rest = {s: v for s, v in splits.items() if s != "train"}
                r.add(name, {"text": "string"}, rest)
                r.configs[-1]["data_files"].insert(1, {"split": "train", "path": f"{name}/train-*"})
                r.infos[-1]["splits"]["train"] = (len(splits["train"]), nbytes)
            else:
                r.add(name, {"text": "string"}, splits)
    r.card(
        "WikiText language modelling: one row per line (many empty), headings ` = Title = `.",
        extra={"license": ["cc-by-sa-3.0", "gfdl"]},
    )


def main(root: Path = ROOT) -> None:
    # Build next to `root`, then swap each owner folder in: readers (tests running meanwhile) never see a
    # half-written snapshot for longer than one rename.
    build = Path(tempfile.mkdtemp(prefix=".samples-build-", dir=root.parent))
    writers.ROOT = build
    D.SPLITS = D.Disjoint()  # a second run in one process starts from an empty index too
    try:
        makers = [
            imdb,
            glue,
            financial_phrasebank,
            twitter_sentiment,
            twitter_topic,
            fiqa_sentiment,
            fingpt_sentiment,
            mmlu,
            mmlu_pro,
            fiqa_qa,
            finance_alpaca,
            financial_qa_10k,
            financial_reports_sec,
            gsm8k,
            financemath,
            math_dataset,
            bigcodebench,
            adaptllm,
            corpora,
            wikitext,
        ]
        for make in makers:
            make(random.Random(f"{SEED}-{make.__name__}"))  # one stream per repo: editing one leaves others alone
        root.mkdir(parents=True, exist_ok=True)
        for owner in OWNERS:
            shutil.rmtree(root / owner, ignore_errors=True)
            (build / owner).replace(root / owner)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    files = [p for p in root.rglob("*") if p.is_file() and p.parts[len(root.parts)] in OWNERS]
    print(f"wrote {len(files)} files, {sum(p.stat().st_size for p in files) / 1024:.0f} KiB under {root}")


if __name__ == "__main__":
    main()
