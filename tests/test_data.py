"""The dataset layer on the sample snapshots: table, loading traps, formatting, mixtures, fractions, streaming."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from dlm.config import MixtureSpec
from dlm.data.loading import TABLE, load_split, lookup, show_rows, to_pretrain_text, to_sft_pair
from dlm.data.table import fiqa_label
from dlm.errors import UserError
from dlm.trainers.mixture import training_dataset

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
TFNS = "zeroshot/twitter-financial-news-sentiment"
FPB = "takala/financial_phrasebank"
FINGPT = "FinGPT/fingpt-sentiment-train"


def _default(entry):
    return lookup(entry.id, entry.default_config or (entry.configs[0] if entry.configs else None))


def _rows(dataset, n=None):
    return list(itertools.islice(dataset, n)) if n else list(dataset)


# --- the table and the snapshots -----------------------------------------------------------------------------
def test_table_covers_the_study_plan():
    ids = {e.id for e in TABLE}
    assert len(TABLE) == 23  # 26 seed datasets; the 4 AdaptLLM ones are configs of one repo
    assert {"glue", "wikitext", "stanfordnlp/imdb", "AdaptLLM/finance-tasks", "PleIAs/common_corpus"} <= ids
    assert lookup("glue").configs == ("cola", "sst2", "mrpc", "qqp", "mnli", "qnli", "rte", "wnli")
    assert len(lookup("cais/mmlu").configs) == 59 and len(lookup("deepmind/math_dataset").configs) == 56
    assert set(lookup("AdaptLLM/finance-tasks").configs) == {"ConvFinQA", "FPB", "FiQA_SA", "Headline", "NER"}
    assert all(e.route in ("plain", "parquet-export", "gated", "stream") for e in TABLE)


@pytest.mark.parametrize("entry", TABLE, ids=lambda e: e.id)
def test_every_config_has_a_snapshot(entry):
    """Every config of the table is present in samples/, in the layout its route reads."""
    repo = SAMPLES / entry.hub_id
    assert repo.is_dir()
    for config in entry.configs:
        if entry.route == "parquet-export":  # refs/convert/parquet: <config>/<split>/0000.parquet, no card
            assert list((repo / config).glob("*/0000.parquet")), config
            assert not (repo / "README.md").exists()
        else:
            assert re.search(rf"config_name: {re.escape(config)}\n", (repo / "README.md").read_text()), config


@pytest.mark.parametrize("entry", TABLE, ids=lambda e: e.id)
def test_every_dataset_loads_train_and_eval_split_from_samples(entry):
    entry = _default(entry)
    for split in {entry.train_split, entry.eval_split} - {None}:
        rows = _rows(load_split(entry.id, entry.config, split))
        assert len(rows) >= 10, (entry.label(), split)
        assert all(f in rows[0] for f in entry.text_fields), (entry.label(), split, list(rows[0]))


@pytest.mark.parametrize(
    "dataset,config,field,names",
    [
        ("stanfordnlp/imdb", "plain_text", "label", ["neg", "pos"]),
        ("glue", "wnli", "label", ["not_entailment", "entailment"]),  # reversed w.r.t. rte/qnli
        ("glue", "rte", "label", ["entailment", "not_entailment"]),
        ("glue", "mnli", "label", ["entailment", "neutral", "contradiction"]),
        (FPB, "sentences_50agree", "label", ["negative", "neutral", "positive"]),
        ("cais/mmlu", "anatomy", "answer", ["A", "B", "C", "D"]),
    ],
)
def test_class_label_names_match_the_table(dataset, config, field, names):
    rows = load_split(dataset, config, lookup(dataset, config).eval_split or "train")
    assert rows.features[field].names == names == list(lookup(dataset, config).label_names)


def test_label_encodings_of_plain_int_and_float_sets():
    # twitter sentiment CSV: plain ints, 0 Bearish 1 Bullish 2 Neutral (cue words in the samples agree)
    tfns = lookup(TFNS)
    assert tfns.label_names == ("Bearish", "Bullish", "Neutral")
    for row in _rows(load_split(TFNS, split="validation")):
        word = row["text"].split(":")[0]
        assert row["label"] == {"Bearish": 0, "Downgrade": 0, "Selloff": 0, "Bullish": 1, "Upgrade": 1, "Rally": 1}.get(
            word, 2
        )
    # FiQA: a float score, binned as FinGPT does; the eval task's binning agrees
    from dlm.harness_tasks.finance.utils import fiqa_sa_label

    for score in (-1.0, -0.5, -0.1001, -0.1, 0.0, 0.0999, 0.1, 0.7, 1.0):
        assert fiqa_label(score) == fiqa_sa_label(score)
    assert (fiqa_label(-0.11), fiqa_label(-0.1), fiqa_label(0.1)) == (0, 1, 2)
    sec = load_split("JanosAudran/financial-reports-sec", "small_lite", "train", streaming=False)
    assert sec.features["labels"]["1d"].names == ["positive", "negative"]


def test_split_aliases_hidden_labels_and_row_repairs():
    assert len(load_split("TheFinAI/fiqa-sentiment-classification", split="validation")) == 66  # named `valid`
    assert len(load_split("glue", "mnli", "validation")) == 30  # validation_matched
    assert len(load_split("glue", "cola", "test")) == 0  # hidden test labels (-1) dropped
    assert len(load_split("glue", "mrpc", "test")) == 16  # MRPC's test labels are real
    assert len(load_split("imdb", split="unsupervised")) == 0
    dm = _rows(load_split("deepmind/math_dataset", "numbers__gcd", "test"))
    assert not any(r["question"].startswith("b'") or r["answer"].endswith("\\n") for r in dm)
    assert lookup("imdb").hub_id == "stanfordnlp/imdb" and lookup("wikitext").hub_id == "Salesforce/wikitext"


def test_hub_routes_without_network(monkeypatch):
    """Script-only repos go to the parquet-export branch with data_dir=<config>; others pass the config name."""
    from dlm.data import hub
    from dlm.data.loading import _source

    monkeypatch.delenv("DLM_DATA_DIR")
    monkeypatch.setattr(hub, "online", lambda: True)  # the route is the subject here, not the network
    assert _source(lookup(FPB, "sentences_50agree"), None) == (
        FPB,
        {"data_dir": "sentences_50agree", "revision": "refs/convert/parquet"},
        "hub",
    )
    assert _source(lookup("glue", "cola"), None) == ("nyu-mll/glue", {"name": "cola"}, "hub")


# --- formatting ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", [e for e in TABLE if e.can_sft or e.per_config], ids=lambda e: e.id)
def test_sft_pairs_follow_the_conventions(entry):
    entry = _default(entry)
    for row in _rows(load_split(entry.id, entry.config, entry.eval_split or entry.train_split), 5):
        prompt, completion = to_sft_pair(entry, row)
        assert prompt and not prompt.endswith(" ")
        assert completion.startswith(" ") and completion.strip()
        assert to_pretrain_text(entry, row).strip()


def test_formatting_of_labels_answers_and_pretraining_text():
    fpb = lookup(FPB, "sentences_allagree")
    row = next(r for r in load_split(FPB, fpb.config) if r["label"] == 0)
    prompt, completion = to_sft_pair(fpb, row)
    assert completion == " negative" and prompt.endswith(f"Text: {row['sentence']}\nAnswer:")
    assert to_pretrain_text(fpb, row) == row["sentence"]  # classification text is pretrained without its label
    tfns = lookup(TFNS)
    bearish = next(r for r in load_split(TFNS) if r["label"] == 0)
    assert to_sft_pair(tfns, bearish)[1] == " negative"  # Bearish verbalised as the eval task's choice
    gsm = lookup("openai/gsm8k", "main")
    row = next(iter(load_split("openai/gsm8k", "main")))
    prompt, completion = to_sft_pair(gsm, row)
    assert prompt == f"Question: {row['question']}\nAnswer:" and "<<" in completion and "\n#### " in completion
    assert to_pretrain_text(gsm, row) == prompt + completion  # QA sets pretrain on question + answer
    fiqa = lookup("TheFinAI/fiqa-sentiment-classification")
    for row in load_split(fiqa.id, split="test"):
        assert to_sft_pair(fiqa, row)[1].strip() == ("negative", "neutral", "positive")[fiqa_label(row["score"])]
    mmlu = lookup("cais/mmlu", "anatomy")
    row = next(iter(load_split("cais/mmlu", "anatomy", "test")))
    assert to_sft_pair(mmlu, row)[1] == " " + "ABCD"[row["answer"]]
    with pytest.raises(UserError, match="--mode pretrain"):
        to_sft_pair(lookup("wikitext"), {"text": "x"})


def _task_yaml(path: Path) -> dict:
    """A task YAML with its `include`s merged (tags like !function read as plain strings)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
    doc = yaml.load(path.read_text(), Loader=Loader) or {}
    merged = {}
    includes = doc.pop("include", [])
    for inc in [includes] if isinstance(includes, str) else includes:
        merged.update(_task_yaml(path.parent / inc))
    return {**merged, **doc}


def test_sft_prompts_are_the_prompts_the_eval_tasks_score():
    """Fine-tuning teaches exactly what evaluation asks: same prompt text, same answer words."""
    import jinja2

    checked, seen = 0, set()
    for path in sorted((ROOT / "dlm" / "harness_tasks").rglob("*.yaml")):
        task = _task_yaml(path)
        kw, text, choices = task.get("dataset_kwargs") or {}, task.get("doc_to_text"), task.get("doc_to_choice")
        if not kw.get("hub_id") or not isinstance(text, str) or text.startswith("!") or kw.get("pool_rows"):
            continue
        key = kw["hub_id"] if kw["hub_id"] == "cais/mmlu" else (kw["hub_id"], kw.get("hub_config"))
        if key in seen:  # the 57 MMLU subject tasks share one prompt: check one
            continue
        seen.add(key)
        entry = lookup(kw["hub_id"], kw.get("hub_config"))
        if not entry.can_sft or task.get("process_docs"):
            continue
        row = next(iter(load_split(entry.id, entry.config, entry.eval_split or entry.train_split)))
        expected_prompt = jinja2.Template(text, keep_trailing_newline=True).render(**row)
        target = task.get("doc_to_target", "label")
        if str(target).startswith("!"):
            continue  # a Python target (AdaptLLM label lists): compared in test_formatting_* instead
        # lm-eval reads a bare column name as that column, anything else as a Jinja template
        target = row[target] if target in row else jinja2.Template(target, keep_trailing_newline=True).render(**row)
        choices = row[choices] if isinstance(choices, str) and choices in row else choices
        if isinstance(choices, list):
            expected = " " + choices[target]
        else:
            expected = target if target.startswith(" ") else " " + target  # code keeps its own indentation
        assert to_sft_pair(entry, row) == (expected_prompt, expected), path.name
        checked += 1
    assert checked >= 18  # imdb, 7 glue tasks, fpb, tfns, topics, fiqa_qa, 10-K, gsm8k, AdaptLLM, MMLU, code...


# --- training data ---------------------------------------------------------------------------------------------
def _mixture():
    return MixtureSpec.from_flags(
        datasets=[TFNS, FPB, FINGPT], dataset_configs=["None", "None", "None"], mixture_rates=["0.5", "0.3", "0.2"]
    )


def test_mixture_proportions_are_exact_over_10k_draws():
    dataset, info = training_dataset(_mixture(), "sft", max_rows=10_000)
    assert len(dataset) == 10_000 and set(dataset.column_names) == {"prompt", "completion"}
    # count where each row really came from, by its prompt
    markers = ("financial tweet", "financial news article", "Instruction:")
    origin = [next(i for i, m in enumerate(markers) if m in prompt) for prompt in dataset["prompt"]]
    realised = [origin.count(i) / len(origin) for i in range(3)]
    for asked, got, reported in zip([0.5, 0.3, 0.2], realised, info["realised_proportions"]):
        assert abs(got - asked) < 0.02 and abs(reported - got) < 1e-9
    again, _ = training_dataset(_mixture(), "sft", max_rows=500)
    assert again["prompt"] == dataset["prompt"][:500]  # deterministic for a seed, and a prefix of longer runs


def test_mixture_without_max_rows_is_one_pass_of_the_combined_data():
    dataset, info = training_dataset(_mixture(), "pretrain")
    assert info["rows"] == len(dataset) == sum(info["rows_available"])
    assert dataset.column_names == ["text"] and not info["streamed"]


def test_data_fraction_is_a_deterministic_nested_subset():
    full, _ = training_dataset(MixtureSpec.single(TFNS), "sft")
    quarter, info = training_dataset(MixtureSpec.single(TFNS), "sft", data_fraction=0.25)
    half, _ = training_dataset(MixtureSpec.single(TFNS), "sft", data_fraction=0.5)
    assert len(full) == 360 and len(quarter) == 90 and len(half) == 180
    assert set(quarter["prompt"]) <= set(half["prompt"])
    assert training_dataset(MixtureSpec.single(TFNS), "sft", data_fraction=0.25)[0]["prompt"] == quarter["prompt"]


def test_train_only_eval_sets_never_train_on_scored_rows():
    from dlm.harness_tasks.loader import in_holdout

    dataset, _ = training_dataset(MixtureSpec.single(FPB, "sentences_50agree"), "pretrain")
    sentences = [r["sentence"] for r in load_split(FPB, "sentences_50agree")]
    scored = [s for s in sentences if in_holdout(s, 0.2)]
    assert 0 < len(scored) < len(sentences) and len(dataset) == len(sentences) - len(scored)
    assert not set(scored) & set(dataset["text"])


def test_streamed_fraction_is_a_deterministic_share_of_the_stream():
    dataset, info = training_dataset(
        MixtureSpec.single("PleIAs/common_corpus"), "pretrain", data_fraction=0.5, max_rows=20
    )
    assert len(dataset) == 20 and 30 <= info["rows_read"]["PleIAs/common_corpus"] <= 55  # ~2 read per row kept
    again, _ = training_dataset(MixtureSpec.single("PleIAs/common_corpus"), "pretrain", data_fraction=0.5, max_rows=20)
    assert again["text"] == dataset["text"]


@pytest.mark.parametrize(
    "dataset,config",
    [
        (FPB, "sentences_50agree"),
        (TFNS, None),
        ("TheFinAI/fiqa-sentiment-classification", None),
        ("zeroshot/twitter-financial-news-topic", None),
        ("imdb", None),
    ],
)
def test_sample_classification_sets_are_learnable(dataset, config):
    """The cue words work: a bag-of-words classifier trained on the training rows labels the scored rows."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from dlm.harness_tasks.loader import in_holdout

    entry = lookup(dataset, config)
    train, _ = training_dataset(MixtureSpec.single(dataset, config), "sft")
    if entry.holdout:
        scored = [r for r in load_split(dataset, config) if in_holdout(r[entry.text_fields[0]], entry.holdout)]
    else:
        scored = list(load_split(dataset, config, entry.eval_split))
    prompts, answers = zip(*(to_sft_pair(entry, r) for r in scored))
    assert len(train) >= (300 if entry.domain == "finance" and "topic" not in dataset else 60) and len(scored) >= 40
    words = CountVectorizer(ngram_range=(1, 2)).fit(train["prompt"])
    model = LogisticRegression(max_iter=2000).fit(words.transform(train["prompt"]), train["completion"])
    assert (model.predict(words.transform(prompts)) == list(answers)).mean() >= 0.9


def test_generator_reproduces_the_committed_samples(tmp_path):
    import importlib.util

    import pyarrow.parquet as pq

    spec = importlib.util.spec_from_file_location("make_samples", SAMPLES / "make_samples.py")
    make_samples = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_samples)
    make_samples.main(tmp_path)
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(SAMPLES)
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.parts[len(SAMPLES.parts)] in make_samples.OWNERS
    )
    assert made == committed and len(made) > 400
    for rel in made:
        if rel.suffix == ".parquet":  # compare content: file bytes also carry the writer's version
            assert pq.read_table(tmp_path / rel).equals(pq.read_table(SAMPLES / rel), check_metadata=True), rel
        else:
            assert (tmp_path / rel).read_bytes() == (SAMPLES / rel).read_bytes(), rel
    assert sum((SAMPLES / rel).stat().st_size for rel in made) < 1.5 * 2**20


def test_streamed_corpus_reads_only_the_rows_consumed():
    dataset, info = training_dataset(MixtureSpec.single("PleIAs/common_corpus"), "pretrain")
    assert info["streamed"] and info["rows"] is None
    taken = _rows(dataset, 7)
    assert len(taken) == 7 and all(r["text"] for r in taken)
    assert info["rows_read"]["PleIAs/common_corpus"] <= 7  # of 80 in the snapshot
    capped, info = training_dataset(MixtureSpec.single("Skylion007/openwebtext"), "pretrain", max_rows=12)
    assert len(capped) == 12 and info["rows_read"]["Skylion007/openwebtext:plain_text"] <= 12


def test_streamed_parquet_is_read_in_small_record_batches():
    """pyarrow decodes a streamed parquet file ahead of the reader until ~1 GiB of batches wait (counted at their
    row group's size): small batches are what bound it (bench/README.md, row 6). The reader's batch size is only
    visible on the builder behind the stream."""
    from dlm.data.loading import STREAM_BATCH_ROWS

    stream = load_split("Skylion007/openwebtext", streaming=True)
    source = stream._ex_iterable
    while not hasattr(source, "generate_tables_fn"):  # through the filter that drops unlabelled rows, if any
        source = source.ex_iterable
    assert source.generate_tables_fn.__self__.config.batch_size == STREAM_BATCH_ROWS
    assert len(list(itertools.islice(stream, 40))) == 40 and STREAM_BATCH_ROWS < 40, "rows span several batches"


def test_show_rows_raw_pretrain_and_sft():
    raw = show_rows("glue", config="mrpc", split="test", n=3)
    assert len(raw) == 3 and {"sentence1", "sentence2", "label"} <= set(raw[0])
    sft = show_rows("glue", config="mrpc", n=2, as_="sft")
    assert all(r["completion"] in (" no", " yes") for r in sft)
    assert show_rows("wikitext", n=2, as_="pretrain")[0]["text"].strip()  # empty wikitext lines skipped


# --- bad input ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call,message",
    [
        (lambda empty: lookup("imbd"), r"unknown dataset 'imbd'; did you mean 'stanfordnlp/imdb'"),
        (
            lambda empty: lookup("glue", "sst3"),
            r"unknown config 'sst3' for glue; did you mean 'sst2'\? valid: cola, sst2",
        ),
        (lambda empty: lookup("stanfordnlp/imdb", "sst2"), r"valid: plain_text"),
        (
            lambda empty: load_split("imdb", split="tset"),
            r"unknown split 'tset' for stanfordnlp/imdb:plain_text; did you mean 'test'",
        ),
        (
            lambda empty: load_split("glue", "cola", "dev2"),
            r"unknown split 'dev2' for glue:cola; valid: train, validation, test",
        ),
        (lambda empty: load_split("glue"), r"needs a config"),
        (lambda empty: load_split("yale-nlp/FinanceMath", data_dir=empty), r"gated.*HF_TOKEN"),
        (lambda empty: load_split("openai/gsm8k", "main", data_dir=empty), r"offline.*--data-dir"),
        (lambda empty: training_dataset(MixtureSpec.single("wikitext"), "sft"), r"--mode pretrain"),
        (
            lambda empty: training_dataset(MixtureSpec.single("AdaptLLM/finance-tasks", "NER"), "sft"),
            r"evaluation-only",
        ),
    ],
    ids=[
        "id",
        "config",
        "no-configs",
        "split-typo",
        "split",
        "needs-config",
        "gated",
        "offline",
        "corpus-sft",
        "eval-only",
    ],
)
def test_bad_input_raises_one_line_user_error(call, message, tmp_path):
    with pytest.raises(UserError, match=message) as err:
        call(str(tmp_path))  # an empty --data-dir: no snapshot there
    assert "\n" not in str(err.value)


def test_samples_feed_the_tiny_tokenizer():
    from dlm.trainers.tiny import sample_texts

    texts = sample_texts()
    assert len(texts) > 10_000
    assert any("#### " in t for t in texts) and any(t.startswith(" = ") for t in texts)


def test_cli_data_list_and_show(capsys, monkeypatch):
    from dlm import cli

    monkeypatch.setenv("COLUMNS", "200")  # ids whole, whatever terminal the tests run in

    cli.main(["data", "list"])
    out = capsys.readouterr().out
    assert (
        "nyu-mll/glue" in out
        and "parquet-export" in out
        and "23 repositories (the study plan's 26 datasets are configs of these)" in out
    )
    cli.main(["data", "show", FPB, "--as", "sft", "-n", "2"])
    out = capsys.readouterr().out
    assert "Answer:" in out and re.search(r"' (negative|neutral|positive)'", out)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "show", "imbd"])
    assert exit_info.value.code == 2 and "stanfordnlp/imdb" in capsys.readouterr().err


def test_an_edited_snapshot_is_read_again_and_a_truncated_file_is_one_clear_error(tmp_path):
    import shutil

    from dlm.data.loading import load_split
    from dlm.errors import UserError

    root = tmp_path / "snap"
    tweets = root / "zeroshot" / "twitter-financial-news-sentiment"
    shutil.copytree(SAMPLES / "zeroshot" / "twitter-financial-news-sentiment", tweets)
    first = load_split("zeroshot/twitter-financial-news-sentiment", split="train", data_dir=str(root))
    train_csv = tweets / "sent_train.csv"
    header = train_csv.read_text().splitlines()[0]
    train_csv.write_text(header + '\n"an edited row, the only one",1\n')
    edited = load_split("zeroshot/twitter-financial-news-sentiment", split="train", data_dir=str(root))
    assert len(first) > 1 and len(edited) == 1 and edited[0]["text"] == "an edited row, the only one"

    imdb = root / "stanfordnlp" / "imdb"
    shutil.copytree(SAMPLES / "stanfordnlp" / "imdb", imdb)
    parquet = sorted(imdb.rglob("*.parquet"))[0]
    load_split("stanfordnlp/imdb", split=parquet.stem.split("-")[0], data_dir=str(root))
    parquet.write_bytes(parquet.read_bytes()[: parquet.stat().st_size // 2])  # truncated in a copy
    with pytest.raises(UserError, match=r"cannot read the snapshot .*imdb"):
        load_split("stanfordnlp/imdb", split=parquet.stem.split("-")[0], data_dir=str(root))
