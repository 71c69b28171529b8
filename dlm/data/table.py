"""The study's datasets: one `DatasetEntry` per seed dataset, with the real-world facts a loader needs.

Facts (ids, configs, split names, label encodings, routes, sizes) follow the Hub repositories as they are, not as
older tutorials show them: bare ids (`glue`, `wikitext`) are resolved to namespaced ones, script-only repos are read
from their `refs/convert/parquet` branch, FiQA's validation split is `valid`, WNLI's labels are reversed, twitter
sentiment is 0 Bearish / 1 Bullish / 2 Neutral. Loading, formatting and mixing live in dlm_data/data.py.

Prompts of classification and QA sets are the ones the evaluation tasks in harness_tasks/ score, so a model
fine-tuned here is asked at evaluation time exactly what it was taught.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from dlm.errors import UserError, suggest

MMLU_SUBJECTS = (
    "abstract_algebra",
    "anatomy",
    "astronomy",
    "business_ethics",
    "clinical_knowledge",
    "college_biology",
    "college_chemistry",
    "college_computer_science",
    "college_mathematics",
    "college_medicine",
    "college_physics",
    "computer_security",
    "conceptual_physics",
    "econometrics",
    "electrical_engineering",
    "elementary_mathematics",
    "formal_logic",
    "global_facts",
    "high_school_biology",
    "high_school_chemistry",
    "high_school_computer_science",
    "high_school_european_history",
    "high_school_geography",
    "high_school_government_and_politics",
    "high_school_macroeconomics",
    "high_school_mathematics",
    "high_school_microeconomics",
    "high_school_physics",
    "high_school_psychology",
    "high_school_statistics",
    "high_school_us_history",
    "high_school_world_history",
    "human_aging",
    "human_sexuality",
    "international_law",
    "jurisprudence",
    "logical_fallacies",
    "machine_learning",
    "management",
    "marketing",
    "medical_genetics",
    "miscellaneous",
    "moral_disputes",
    "moral_scenarios",
    "nutrition",
    "philosophy",
    "prehistory",
    "professional_accounting",
    "professional_law",
    "professional_medicine",
    "professional_psychology",
    "public_relations",
    "security_studies",
    "sociology",
    "us_foreign_policy",
    "virology",
    "world_religions",
)

# The 56 modules of deepmind/math_dataset (one config each); `_composed` variants chain several skills.
DM_MATH_MODULES = tuple(
    sorted(
        [
            f"algebra__{m}"
            for m in (
                "linear_1d",
                "linear_1d_composed",
                "linear_2d",
                "linear_2d_composed",
                "polynomial_roots",
                "polynomial_roots_composed",
                "sequence_next_term",
                "sequence_nth_term",
            )
        ]
        + [
            f"arithmetic__{m}"
            for m in (
                "add_or_sub",
                "add_or_sub_in_base",
                "add_sub_multiple",
                "div",
                "mixed",
                "mul",
                "mul_div_multiple",
                "nearest_integer_root",
                "simplify_surd",
            )
        ]
        + ["calculus__differentiate", "calculus__differentiate_composed"]
        + [f"comparison__{m}{c}" for m in ("closest", "kth_biggest", "pair", "sort") for c in ("", "_composed")]
        + ["measurement__conversion", "measurement__time", "numbers__base_conversion"]
        + [
            f"numbers__{m}{c}"
            for m in (
                "div_remainder",
                "gcd",
                "is_factor",
                "is_prime",
                "lcm",
                "list_prime_factors",
                "place_value",
                "round_number",
            )
            for c in ("", "_composed")
        ]
        + [
            f"polynomials__{m}"
            for m in (
                "add",
                "coefficient_named",
                "collect",
                "compose",
                "evaluate",
                "evaluate_composed",
                "expand",
                "simplify_power",
            )
        ]
        + ["probability__swr_p_level_set", "probability__swr_p_sequence"]
    )
)

ROUTES = ("plain", "parquet-export", "gated", "stream")
# Size classes; "large" and "huge" sets (millions of rows, billions of tokens) are streamed by default.
SIZE_CLASSES = ("small", "medium", "large", "huge")


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of the study. `lookup(id, config)` returns it resolved for one config (`config` set)."""

    id: str  # as the study plan writes it (`glue`, `wikitext`, `stanfordnlp/imdb`)
    hub_id: str  # canonical namespaced id; a local snapshot lives at <data_dir>/<hub_id>
    domain: str  # finance | math | general | code | corpus
    configs: tuple[str, ...] = ()  # () = the repo's single unnamed (default) config
    default_config: str | None = None  # None with configs: the user must pick one
    train_split: str | None = "train"  # None: evaluation only
    eval_split: str | None = None  # the split evaluation tasks score (None: a training-only set)
    route: str = "plain"  # plain | parquet-export (script repo: refs/convert/parquet) | gated | stream
    text_fields: tuple[str, ...] = ("text",)
    label_field: str | None = None
    label_names: tuple[str, ...] = ()  # label id -> name, as the repo encodes it
    size_class: str = "small"
    prompt: str | None = None  # SFT prompt, `str.format(**row)`; None with no formatter: a pretraining corpus
    answer: str = "{label}"  # completion template; {label} is answer_words[row[label_field]]
    answer_words: tuple[str, ...] = ()  # label id -> completion word (default: label_names)
    formatter: Callable | None = None  # (entry, row) -> (prompt, completion) where a template cannot say it
    pretrain_with_answer: bool = False  # pretraining text = prompt + completion (QA, instructions), not text_fields
    holdout: float = 0.0  # train-only sets scored by an eval task: share of train rows kept out of training
    clean: Callable | None = None  # row -> row repair applied while loading (a real-data quirk)
    label_is_score: bool = False  # the label is a number the formatter bins (FiQA), not a class index
    optional_fields: tuple[str, ...] = ()  # text fields a formatter reads as empty when null (Alpaca's `input`)
    per_config: Mapping[str, dict] = field(default_factory=dict)  # config -> field overrides (GLUE tasks differ)
    aliases: tuple[str, ...] = ()  # other spellings users write
    note: str = ""
    config: str | None = None  # set on a resolved entry

    @property
    def streamed(self) -> bool:
        return self.route == "stream" or self.size_class in ("large", "huge")

    @property
    def can_sft(self) -> bool:
        return self.prompt is not None or self.formatter is not None

    def for_config(self, config: str | None) -> DatasetEntry:
        return replace(self, config=config, **self.per_config.get(config, {}))

    def label(self) -> str:
        return self.id + (f":{self.config}" if self.config else "")


# --- named formatters: only where a str.format template cannot say it ----------------------------------------
LETTERS = "ABCDEFGHIJ"
FIN_NEWS_PROMPT = (
    "Analyze the sentiment of this statement extracted from a financial news article. Provide your "
    "answer as either negative, positive or neutral.\nText: {sentence}\nAnswer:"
)
SENTIMENT3 = ("negative", "neutral", "positive")


def fiqa_label(score: float) -> int:
    """FinGPT/BloombergGPT binning of FiQA's continuous score: < -0.1 negative, < 0.1 neutral, else positive."""
    return 0 if score < -0.1 else 1 if score < 0.1 else 2


def fiqa_pair(entry, row):
    return FIN_NEWS_PROMPT.format(**row), SENTIMENT3[fiqa_label(float(row["score"]))]


def mnli_pair(entry, row):
    hypothesis = row["hypothesis"].strip()
    hypothesis += "" if hypothesis.endswith(".") else "."  # lm-eval's MNLI prompt ends the hypothesis with a stop
    return f"{row['premise']}\nQuestion: {hypothesis} True, False or Neither?\nAnswer:", ("True", "Neither", "False")[
        row["label"]
    ]


def choices_pair(entry, row):
    """MMLU (`choices`, answer id) and MMLU-Pro (`options`, answer_index): lettered options, letter answer."""
    options = row.get("choices") or row["options"]
    index = row["answer"] if "choices" in row else row["answer_index"]
    lines = "".join(f"\n{LETTERS[i]}. {option}" for i, option in enumerate(options))
    return f"{row['question'].strip()}{lines}\nAnswer:", LETTERS[index]


def alpaca_pair(entry, row):
    context = f"\nInput: {row['input']}" if (row.get("input") or "").strip() else ""
    return f"Instruction: {row['instruction']}{context}\nResponse:", row["output"]


def financemath_pair(entry, row):
    tables = "\n\n".join(row.get("tables") or [])
    return f"{tables + chr(10) * 2 if tables else ''}Question: {row['question']}\nAnswer:", str(row["ground_truth"])


def sec_pair(entry, row):
    return (
        f"{row['sentence']}\nQuestion: Will the company's stock return over the next day be positive or "
        f"negative?\nAnswer:",
        ("positive", "negative")[row["labels"]["1d"]],
    )


def adaptllm_pair(entry, row):
    """AdaptLLM inputs are complete few-shot prompts; the answer is the gold option or the first gold label."""
    if row.get("options"):
        return row["input"], row["options"][row["gold_index"]]
    label = row["label"]
    return row["input"], str(label[0] if isinstance(label, (list, tuple)) else label)


def bigcodebench_pair(entry, row):
    return row["complete_prompt"], row["canonical_solution"]


def clean_bytes_repr(row: dict) -> dict:
    """deepmind/math_dataset values were read from bytes: exports may hold "b'...\\n'" reprs or trailing newlines."""

    def clean(value: str) -> str:
        text = value.strip()
        if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
            try:
                text = ast.literal_eval(text).decode("utf-8").strip()
            except (ValueError, SyntaxError, UnicodeDecodeError):
                pass
        return text

    return {key: clean(value) if isinstance(value, str) else value for key, value in row.items()}


# --- GLUE: one entry, eight tasks that differ in fields, labels and prompt (lm-eval's built-in prompts) ---------
def _glue(fields, names, prompt, words=None, **extra):
    return dict(text_fields=fields, label_names=names, prompt=prompt, answer_words=words or names, **extra)


GLUE_TASKS = {
    "cola": _glue(
        ("sentence",),
        ("unacceptable", "acceptable"),
        "{sentence}\nQuestion: Does this sentence make sense?\nAnswer:",
        ("no", "yes"),
    ),
    "sst2": _glue(
        ("sentence",), ("negative", "positive"), "{sentence}\nQuestion: Is this sentence positive or negative?\nAnswer:"
    ),
    "mrpc": _glue(
        ("sentence1", "sentence2"),
        ("not_equivalent", "equivalent"),
        "Sentence 1: {sentence1}\nSentence 2: {sentence2}\nQuestion: Do both sentences mean the same thing?\nAnswer:",
        ("no", "yes"),
    ),
    "qqp": _glue(
        ("question1", "question2"),
        ("not_duplicate", "duplicate"),
        "Question 1: {question1}\nQuestion 2: {question2}\nQuestion: Do both questions ask the same thing?\nAnswer:",
        ("no", "yes"),
    ),
    "mnli": _glue(
        ("premise", "hypothesis"),
        ("entailment", "neutral", "contradiction"),
        None,
        ("True", "Neither", "False"),
        formatter=mnli_pair,
        eval_split="validation_matched",
    ),
    "qnli": _glue(
        ("question", "sentence"),
        ("entailment", "not_entailment"),
        "{question}\n{sentence}\nQuestion: Does this response answer the question?\nAnswer:",
        ("yes", "no"),
    ),
    "rte": _glue(
        ("sentence1", "sentence2"),
        ("entailment", "not_entailment"),
        "{sentence1}\nQuestion: {sentence2} True or False?\nAnswer:",
        ("True", "False"),
    ),
    "wnli": _glue(
        ("sentence1", "sentence2"),
        ("not_entailment", "entailment"),  # reversed order, as on the Hub
        "{sentence1}\nQuestion: {sentence2} True or False?\nAnswer:",
        ("False", "True"),
    ),
}
TOPICS = (
    "Analyst Update",
    "Fed | Central Banks",
    "Company | Product News",
    "Treasuries | Corporate Debt",
    "Dividend",
    "Earnings",
    "Energy | Oil",
    "Financials",
    "Currencies",
    "General News | Opinion",
    "Gold | Metals | Materials",
    "IPO",
    "Legal | Regulation",
    "M&A | Investments",
    "Macro",
    "Markets",
    "Politics",
    "Personnel Change",
    "Stock Commentary",
    "Stock Movement",
)
QA_PROMPT = "Question: {question}\nAnswer:"

TABLE: list[DatasetEntry] = [
    # --- general ------------------------------------------------------------------------------------------------
    DatasetEntry(
        "stanfordnlp/imdb",
        "stanfordnlp/imdb",
        "general",
        ("plain_text",),
        "plain_text",
        eval_split="test",
        label_field="label",
        label_names=("neg", "pos"),
        answer_words=("negative", "positive"),
        prompt="{text}\nQuestion: Is this review positive or negative?\nAnswer:",
        aliases=("imdb",),
        note="`unsupervised` split has label -1 (dropped)",
    ),
    DatasetEntry(
        "glue",
        "nyu-mll/glue",
        "general",
        tuple(GLUE_TASKS),
        eval_split="validation",
        label_field="label",
        per_config=GLUE_TASKS,
        aliases=("nyu-mll/glue",),
        note="test labels are -1 (dropped) except mrpc; mnli evaluates on validation_matched",
    ),
    DatasetEntry(
        "cais/mmlu",
        "cais/mmlu",
        "general",
        MMLU_SUBJECTS + ("all", "auxiliary_train"),
        "all",
        train_split="auxiliary_train",
        eval_split="test",
        text_fields=("question", "choices"),
        label_field="answer",
        label_names=tuple("ABCD"),
        size_class="medium",
        formatter=choices_pair,
        pretrain_with_answer=True,
        aliases=("mmlu", "hendrycks_test"),
        per_config={
            "auxiliary_train": {"train_split": "train", "eval_split": None},
            **{s: {"train_split": None} for s in MMLU_SUBJECTS},
        },
        note="dev = the 5 few-shot exemplars per subject; training rows are auxiliary_train",
    ),
    # --- finance ------------------------------------------------------------------------------------------------
    DatasetEntry(
        "takala/financial_phrasebank",
        "takala/financial_phrasebank",
        "finance",
        ("sentences_allagree", "sentences_75agree", "sentences_66agree", "sentences_50agree"),
        "sentences_allagree",
        eval_split="train",
        route="parquet-export",
        text_fields=("sentence",),
        label_field="label",
        label_names=SENTIMENT3,
        prompt=FIN_NEWS_PROMPT,
        holdout=0.2,
        aliases=("financial_phrasebank",),
        note="train only: a fixed 20% (hash of the sentence) is the eval set and never trained on",
    ),
    DatasetEntry(
        "zeroshot/twitter-financial-news-sentiment",
        "zeroshot/twitter-financial-news-sentiment",
        "finance",
        eval_split="validation",
        label_field="label",
        label_names=("Bearish", "Bullish", "Neutral"),
        answer_words=("negative", "positive", "neutral"),
        prompt="Analyze the sentiment of this financial tweet. Provide your answer as either negative, "
        "positive or neutral.\nText: {text}\nAnswer:",
        note="CSV: plain int labels",
    ),
    DatasetEntry(
        "zeroshot/twitter-financial-news-topic",
        "zeroshot/twitter-financial-news-topic",
        "finance",
        eval_split="validation",
        label_field="label",
        label_names=TOPICS,
        prompt="What is the topic of this financial tweet?\nText: {text}\nTopic:",
    ),
    DatasetEntry(
        "TheFinAI/fiqa-sentiment-classification",
        "TheFinAI/fiqa-sentiment-classification",
        "finance",
        eval_split="test",
        text_fields=("sentence",),
        label_field="score",
        label_names=SENTIMENT3,
        label_is_score=True,
        formatter=fiqa_pair,
        aliases=("ChanceFocus/fiqa-sentiment-classification",),
        note="score is a float in [-1, 1], binned; validation split is named `valid`",
    ),
    DatasetEntry(
        "FinGPT/fingpt-sentiment-train",
        "FinGPT/fingpt-sentiment-train",
        "finance",
        text_fields=("input",),
        prompt="Instruction: {instruction}\nInput: {input}\nAnswer:",
        answer="{output}",
        note="contains FPB and twitter-sentiment train rows (overlap)",
    ),
    DatasetEntry(
        "LLukas22/fiqa",
        "LLukas22/fiqa",
        "finance",
        eval_split="test",
        prompt=QA_PROMPT,
        answer="{answer}",
        text_fields=("question", "answer"),
        pretrain_with_answer=True,
    ),
    DatasetEntry(
        "gbharti/finance-alpaca",
        "gbharti/finance-alpaca",
        "finance",
        text_fields=("instruction", "input", "output"),
        optional_fields=("input",),
        formatter=alpaca_pair,
        pretrain_with_answer=True,
    ),
    DatasetEntry(
        "virattt/financial-qa-10K",
        "virattt/financial-qa-10K",
        "finance",
        eval_split="train",
        text_fields=("question", "context", "answer"),
        prompt="Context: {context}\nQuestion: {question}\nAnswer:",
        answer="{answer}",
        pretrain_with_answer=True,
        holdout=0.2,
        note="train only: a fixed 20% (hash of the question) is the eval set and never trained on",
    ),
    DatasetEntry(
        "JanosAudran/financial-reports-sec",
        "JanosAudran/financial-reports-sec",
        "finance",
        ("large_lite", "large_full", "small_lite", "small_full"),
        "small_lite",
        eval_split="validation",
        route="parquet-export",
        text_fields=("sentence",),
        label_field="labels",
        label_names=("positive", "negative"),
        size_class="huge",
        formatter=sec_pair,
        note="labels.{1d,5d,30d}: 0 positive, 1 negative; map sections by name",
    ),
    DatasetEntry(
        "yale-nlp/FinanceMath",
        "yale-nlp/FinanceMath",
        "finance",
        train_split=None,
        eval_split="validation",
        route="gated",
        text_fields=("question",),
        formatter=financemath_pair,
        note="gated: accept the terms on the Hub and set HF_TOKEN; test answers unreleased",
    ),
    DatasetEntry(
        "AdaptLLM/finance-tasks",
        "AdaptLLM/finance-tasks",
        "finance",
        ("ConvFinQA", "FPB", "FiQA_SA", "Headline", "NER"),
        "FPB",
        train_split=None,
        eval_split="test",
        text_fields=("input",),
        formatter=adaptllm_pair,
        label_field="gold_index",
        per_config={"ConvFinQA": {"label_field": "label"}, "NER": {"label_field": "label"}},
        note="test only; `input` is already a complete few-shot prompt",
    ),
    # --- math ---------------------------------------------------------------------------------------------------
    DatasetEntry(
        "openai/gsm8k",
        "openai/gsm8k",
        "math",
        ("main", "socratic"),
        "main",
        eval_split="test",
        text_fields=("question", "answer"),
        prompt=QA_PROMPT,
        answer="{answer}",
        pretrain_with_answer=True,
        aliases=("gsm8k",),
    ),
    DatasetEntry(
        "deepmind/math_dataset",
        "deepmind/math_dataset",
        "math",
        DM_MATH_MODULES,
        "algebra__linear_1d",
        eval_split="test",
        route="parquet-export",
        text_fields=("question", "answer"),
        prompt=QA_PROMPT,
        answer="{answer}",
        pretrain_with_answer=True,
        size_class="large",
        clean=clean_bytes_repr,
        aliases=("math_dataset",),
        note="2M train rows per module; values cleaned of b'...' reprs",
    ),
    DatasetEntry(
        "TIGER-Lab/MMLU-Pro",
        "TIGER-Lab/MMLU-Pro",
        "math",
        train_split=None,
        eval_split="test",
        text_fields=("question", "options"),
        label_field="answer_index",
        label_names=tuple(LETTERS),
        formatter=choices_pair,
        pretrain_with_answer=True,
        note="validation = CoT exemplars; up to 10 options",
    ),
    DatasetEntry(
        "open-web-math/open-web-math",
        "open-web-math/open-web-math",
        "math",
        route="stream",
        size_class="huge",
        note="14.7B tokens; metadata is a JSON string",
    ),
    # --- code ---------------------------------------------------------------------------------------------------
    DatasetEntry(
        "bigcode/bigcodebench",
        "bigcode/bigcodebench",
        "code",
        train_split=None,
        eval_split="v0.1.4",
        text_fields=("complete_prompt", "canonical_solution"),
        formatter=bigcodebench_pair,
        pretrain_with_answer=True,
        note="splits are versions v0.1.0_hf .. v0.1.4",
    ),
    # --- pretraining corpora ------------------------------------------------------------------------------------
    DatasetEntry(
        "PleIAs/common_corpus", "PleIAs/common_corpus", "corpus", route="stream", size_class="huge", note="~2T tokens"
    ),
    DatasetEntry(
        "Skylion007/openwebtext",
        "Skylion007/openwebtext",
        "corpus",
        ("plain_text",),
        "plain_text",
        route="parquet-export",
        size_class="huge",
        aliases=("openwebtext",),
        note="script repo; the parquet export is a partial prefix",
    ),
    DatasetEntry(
        "bookcorpus/bookcorpus",
        "bookcorpus/bookcorpus",
        "corpus",
        ("plain_text",),
        "plain_text",
        route="parquet-export",
        size_class="huge",
        aliases=("bookcorpus",),
        note="one sentence per row",
    ),
    DatasetEntry(
        "wikitext",
        "Salesforce/wikitext",
        "corpus",
        ("wikitext-103-raw-v1", "wikitext-103-v1", "wikitext-2-raw-v1", "wikitext-2-v1"),
        "wikitext-103-raw-v1",
        eval_split="validation",
        size_class="medium",
        aliases=("Salesforce/wikitext",),
        note="rows are lines; empty lines skipped for training",
    ),
]


# --- lookup ------------------------------------------------------------------------------------------------
def _index() -> dict[str, DatasetEntry]:
    """Every accepted spelling (lower-case): id, hub id, aliases, and the bare name of the hub id."""
    names: dict[str, DatasetEntry] = {}
    for entry in TABLE:
        for name in (entry.id, entry.hub_id, *entry.aliases, entry.hub_id.split("/")[-1]):
            names.setdefault(name.lower(), entry)
    return names


def lookup(dataset_id: str, config: str | None = None) -> DatasetEntry:
    """The table entry for an id as users write it (`glue`, `nyu-mll/glue`, `imdb`), resolved for `config`
    (or the default config). Unknown ids and configs raise UserError listing what is valid."""
    entry = _index().get((dataset_id or "").strip().lower())
    if entry is None:
        raise _unknown_dataset(dataset_id)
    if config in (None, "", "None", "none", "default") or (not entry.configs and config == "default"):
        config = entry.default_config
    if config is not None and config not in entry.configs:
        if not entry.configs:
            raise UserError(f"dataset {entry.id} has no configs; leave the config out (or write None)")
        raise _unknown("config", config, entry.id, entry.configs)
    return entry.for_config(config)


def _unknown_dataset(dataset_id: str) -> UserError:
    """Suggest table ids for near misses of any accepted spelling ('imbd' -> 'stanfordnlp/imdb')."""
    names, hint = _index(), "`dlm data list` shows all"
    close = difflib.get_close_matches(str(dataset_id).strip().lower(), list(names), n=6, cutoff=0.6)
    ids = list(dict.fromkeys(names[name].id for name in close))[:3]
    if not ids:
        return suggest(str(dataset_id), [e.id for e in TABLE], "dataset", hint)
    return UserError(f"unknown dataset '{dataset_id}'; did you mean {' or '.join(map(repr, ids))}? ({hint})")


def _unknown(what: str, name: str, owner: str, valid, extra: str = "") -> UserError:
    """ "unknown split 'tset' for X; did you mean 'test'? valid: train, test" - always listing what is valid."""
    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    guess = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
    return UserError(f"unknown {what} '{name}' for {owner}; {guess}valid: {', '.join(valid)}{extra}")


def lookup_domain(dataset_id: str) -> str | None:
    """The domain of a dataset id as written, or None for an id the table does not know (an old record's)."""
    entry = _index().get((dataset_id or "").strip().lower())
    return entry.domain if entry is not None else None
