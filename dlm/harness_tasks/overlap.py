"""Contamination check: does the training data contain the evaluation documents?

Two measures, both on normalised text (lowercase, every run of punctuation/whitespace collapsed to one space):

- exact duplicate: a text field of an evaluation document equals a text field of some training row
  (FinGPT's `input` is word for word a Financial PhraseBank `sentence`);
- near duplicate: at least `near_threshold` of the document's word 8-grams occur somewhere in the training
  rows (containment, as in the GPT-3 / Llama contamination studies). It catches a sentence re-punctuated, or
  embedded in an instruction or a few-shot prompt (AdaptLLM's inputs hold FPB sentences plus a template).

What counts as text: string values of a row (nested lists/dicts included), split into lines; lines with fewer
than `MIN_WORDS` words are labels or ids ("positive", "Bearish") and are ignored. N-grams never cross a line; a
line shorter than 8 words counts as one unit that must match a training line whole. A line or field shared by
many evaluation documents (a prompt template such as "Question: what is the sentiment?") is boilerplate, not
content, and is left out of both measures.

Cost is linear: the evaluation side is indexed in hash sets, the training side streams through it once; no
pairwise comparison. Both sides are capped (`MAX_TRAIN_ROWS`, `MAX_EVAL_DOCS`): a larger set is a seeded random
sample of that many rows; a streamed corpus gives its first `MAX_STREAM_ROWS` documents. The report says when a
side was sampled (`train_sampled`, `eval_sampled`): fractions are estimates there.
"""

from __future__ import annotations

import importlib
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

import datasets

from dlm.config import parse_config_name
from dlm.data.loading import TABLE, held_out, iter_strings, load_split, lookup
from dlm.errors import UserError, suggest
from dlm.harness_tasks import loader
from dlm.harness_tasks.catalog import DOMAIN_GROUPS, TASKS_DIR, catalog, leaf_tasks
from dlm.quiet import quiet_libraries

NGRAM = 8  # words; long enough that shared phrasing ("the company said that ...") rarely reaches it
NEAR_THRESHOLD = 0.5  # share of a document's n-grams found in training data that makes it a near duplicate
WARN_FRACTION = 0.01  # flag the pair when more than 1% of evaluation documents are duplicated
MIN_WORDS = 4  # shorter strings are labels or ids, not documents
BOILERPLATE_DOCS = 3  # a line in at least this many evaluation documents (and >1% of them) is a template
MAX_TRAIN_ROWS = 100_000  # FinGPT sentiment train (76,772 rows) fits whole; bigger sets are sampled
MAX_STREAM_ROWS = 10_000  # streamed corpora (openwebtext, common_corpus...): their first documents only
MAX_EVAL_DOCS = 20_000
MAX_EXAMPLES = 5
SAMPLE_SEED = 0

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lowercase; punctuation, underscores and whitespace runs become one space."""
    return _NON_WORD.sub(" ", text.lower()).strip()


@dataclass
class _Field:
    original: str
    text: str  # normalised whole field
    lines: list[str]  # normalised lines with at least MIN_WORDS words


def text_fields(row, min_words: int = MIN_WORDS) -> list[_Field]:
    """The document-like strings of a row, in column order."""

    out: list[_Field] = []
    for value in iter_strings(row):
        lines = [line for line in map(normalise, value.splitlines()) if line.count(" ") + 1 >= min_words]
        if lines:
            out.append(_Field(value, normalise(value), lines))
    return out


def line_units(line: str, n: int = NGRAM) -> set[int]:
    """Hashes of a line's word n-grams; a line shorter than n words is one unit, matched whole."""
    words = line.split()
    if len(words) < n:
        return {hash(("line", line))}
    return {hash(gram) for gram in zip(*(words[i:] for i in range(n)))}


@dataclass
class _EvalIndex:
    """Evaluation documents indexed by field hash and by unit hash; collects what the training rows hit."""

    docs: list[str]  # display text per document
    ngram: int
    docs_by_field: dict[int, list[int]] = field(default_factory=dict)
    docs_by_unit: dict[int, list[int]] = field(default_factory=dict)
    units_per_doc: list[int] = field(default_factory=list)
    exact_match: dict[int, str] = field(default_factory=dict)  # doc -> training text that equals one of its fields
    found: list[set[int]] = field(default_factory=list)  # doc -> its units seen in training
    best_train: dict[int, tuple[int, str]] = field(default_factory=dict)  # doc -> (shared units, training text)
    boilerplate: int = 0  # distinct template lines/fields left out

    @classmethod
    def build(cls, rows: list, ngram: int) -> _EvalIndex:
        index = cls(docs=[], ngram=ngram)
        per_doc = [text_fields(row) for row in rows]
        # how many documents each field / line occurs in: templates repeat, content does not
        spread = Counter(
            h for fields in per_doc for h in {hash(f.text) for f in fields} | {hash(x) for f in fields for x in f.lines}
        )
        cutoff = max(BOILERPLATE_DOCS, 0.01 * len(per_doc))
        template = {h for h, count in spread.items() if count >= cutoff}
        index.boilerplate = len(template)
        for doc, fields in enumerate(per_doc):
            index.docs.append(" | ".join(f.original for f in fields))
            units: set[int] = set()
            for f in fields:
                if hash(f.text) not in template:
                    index.docs_by_field.setdefault(hash(f.text), []).append(doc)
                for line in f.lines:
                    if hash(line) not in template:
                        units |= line_units(line, ngram)
            for unit in units:
                index.docs_by_unit.setdefault(unit, []).append(doc)
            index.units_per_doc.append(len(units))
            index.found.append(set())
        return index

    def scan(self, train_rows) -> int:
        """Stream training rows through the index; returns how many rows were read."""
        seen: set[int] = set()  # FinGPT repeats FPB 6x: score each distinct field once
        count = 0
        for row in train_rows:
            count += 1
            for f in text_fields(row):
                key = hash(f.text)
                if key in seen:
                    continue
                seen.add(key)
                for doc in self.docs_by_field.get(key, ()):
                    self.exact_match.setdefault(doc, f.original)
                hits: Counter = Counter()
                for line in f.lines:
                    for unit in line_units(line, self.ngram):
                        for doc in self.docs_by_unit.get(unit, ()):
                            self.found[doc].add(unit)
                            hits[doc] += 1
                for doc, shared in hits.items():
                    if shared > self.best_train.get(doc, (0, ""))[0]:
                        self.best_train[doc] = (shared, f.original)
        return count


@dataclass
class Duplicate:
    doc: int  # index of the evaluation document
    kind: str  # "exact" | "near"
    containment: float  # share of the document's n-grams found in the training rows
    eval: str
    train: str  # the training text that matched (best match for "near")


def find_duplicates(
    train_rows, eval_rows: list, ngram: int = NGRAM, near_threshold: float = NEAR_THRESHOLD
) -> tuple[list[Duplicate], int, _EvalIndex]:
    """(duplicated evaluation documents in order, training rows read, the index) for in-memory rows."""
    index = _EvalIndex.build(eval_rows, ngram)
    train_count = index.scan(train_rows)
    found = []
    for doc in range(len(index.docs)):
        total = index.units_per_doc[doc]
        containment = len(index.found[doc]) / total if total else 0.0
        if doc in index.exact_match:
            found.append(Duplicate(doc, "exact", containment, index.docs[doc], index.exact_match[doc]))
        elif total and containment >= near_threshold:
            found.append(Duplicate(doc, "near", containment, index.docs[doc], index.best_train[doc][1]))
    return found, train_count, index


def compare_rows(
    train_rows,
    eval_rows: list,
    ngram: int = NGRAM,
    near_threshold: float = NEAR_THRESHOLD,
    warn_fraction: float = WARN_FRACTION,
) -> dict:
    """The overlap measures for in-memory rows (dicts or strings); the engine behind every report."""
    found, train_count, index = find_duplicates(train_rows, eval_rows, ngram, near_threshold)
    n_docs = len(index.docs)
    exact = sum(d.kind == "exact" for d in found)
    near = len(found) - exact
    fraction = len(found) / n_docs if n_docs else 0.0
    return {
        "train_rows": train_count,
        "eval_docs": n_docs,
        "exact": exact,
        "exact_fraction": _ratio(exact, n_docs),
        "near": near,
        "near_fraction": _ratio(near, n_docs),
        "duplicated": len(found),
        "duplicated_fraction": round(fraction, 4),
        "ngram": ngram,
        "near_threshold": near_threshold,
        "warn_fraction": warn_fraction,
        "template_lines_ignored": index.boilerplate,
        "above_threshold": fraction > warn_fraction,
        "examples": [
            {"kind": d.kind, "containment": round(d.containment, 3), "eval": d.eval[:200], "train": d.train[:200]}
            for d in found[:MAX_EXAMPLES]
        ],
    }


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


# --- what to compare: training rows of a dataset / mixture, documents of a task / dataset --------------------
@dataclass
class _Rows:
    label: str  # what the rows are, for the report ("takala/financial_phrasebank:sentences_50agree (test)")
    rows: list
    total: int | None  # rows available before the cap (None: a stream, length unknown)
    held_out: int = 0  # training rows skipped because an evaluation task scores them (train-only sets)

    @property
    def sampled(self) -> bool:
        return self.total is None or self.total > len(self.rows)


def parse_dataset_spec(spec: str) -> tuple[str, str | None, str | None]:
    """'id[:config[:split]]' -> (id, config, split); 'None' or an empty part means none."""

    dataset, config, split = (spec.split(":", 2) + [None, None])[:3]
    return dataset.strip(), parse_config_name(config), (split or "").strip() or None


def _capped(rows, limit: int) -> tuple[list, int | None]:
    """At most `limit` rows: a seeded random sample of an in-memory split, the first rows of a stream."""

    if isinstance(rows, datasets.IterableDataset):
        return list(islice(rows, min(limit, MAX_STREAM_ROWS))), None
    total = len(rows)
    if total > limit:
        rows = rows.select(sorted(random.Random(SAMPLE_SEED).sample(range(total), limit)))
    return list(rows), total


def training_rows(dataset: str, config: str | None, data_dir=None, max_rows: int = MAX_TRAIN_ROWS) -> _Rows:
    """The rows training on `dataset` would see: its training split, minus rows an evaluation task holds out."""

    entry = lookup(dataset, config)
    if entry.train_split is None:
        raise UserError(f"{entry.label()} is evaluation-only (no training split); give it as the second argument")
    rows, total = _capped(load_split(entry.id, entry.config, entry.train_split, data_dir=data_dir), max_rows)
    kept = [row for row in rows if not held_out(entry, row)]
    return _Rows(f"{entry.label()} ({entry.train_split})", kept, total, held_out=len(rows) - len(kept))


def dataset_documents(
    dataset: str, config: str | None, split: str | None, data_dir=None, max_docs: int = MAX_EVAL_DOCS
) -> _Rows:
    """Documents of a dataset given by id: the named split, else its training and evaluation splits together."""

    entry = lookup(dataset, config)
    splits = [split] if split else [s for s in dict.fromkeys((entry.train_split, entry.eval_split)) if s]
    docs, total = [], 0
    for name in splits:
        rows, available = _capped(load_split(entry.id, entry.config, name, data_dir=data_dir), max_docs)
        docs += rows
        total = None if total is None or available is None else total + available
    return _Rows(f"{entry.label()} ({'+'.join(splits)})", docs[:max_docs], total)


def task_documents(task: str, data_dir=None, max_docs: int = MAX_EVAL_DOCS) -> _Rows:
    """The documents an lm-eval task of harness_tasks/ scores (its test split, else its validation split)."""

    info = catalog()[task]
    kwargs = dict(info.config.get("dataset_kwargs") or {})
    split = info.config.get("test_split") or info.config.get("validation_split")
    data = loader.load(**kwargs, data_dir=data_dir)
    if split not in data:
        raise UserError(f"task {task} scores split '{split}' but its data has {', '.join(data)}")
    rows = data[split]
    process = info.config.get("process_docs")
    if process:  # e.g. FiQA score binning, MMLU-Pro's math subset: compare what the task scores
        rows = _yaml_function(info.path, process)(rows)
    docs, total = _capped(rows, max_docs)
    return _Rows(f"{info.dataset} ({split})", docs, total)


def _yaml_function(yaml_path, ref: str):
    """`!function utils.fiqa_sa_docs` in harness_tasks/<family>/x.yaml -> dlm.harness_tasks.<family>.utils.fiqa_sa_docs
    (our own installed YAML files name it; nothing read from a user's file reaches here)."""

    module, _, attr = ref.rpartition(".")
    package = ".".join(("dlm", *yaml_path.parent.resolve().relative_to(TASKS_DIR.parent).parts))
    return getattr(importlib.import_module(f"{package}.{module}"), attr)


def _leaf_tasks(names) -> list[str]:
    """Tasks of harness_tasks/ that `names` (tasks or groups) stand for, each once, in order."""

    out: list[str] = []
    for name in names:
        for task in leaf_tasks(name) if name in catalog() else [name]:
            if task not in out:
                out.append(task)
    return out


# --- reports ---------------------------------------------------------------------------------------------------
def _report(train: _Rows, evaluation: _Rows, eval_name: str, train_name: str) -> dict:
    measures = compare_rows(train.rows, evaluation.rows)
    return {
        "eval": eval_name,
        "eval_source": evaluation.label,
        "train": train_name,
        "train_source": train.label,
        **measures,
        "train_sampled": train.sampled,
        "eval_sampled": evaluation.sampled,
        "train_rows_held_out": train.held_out,
    }


def _evaluation_sets(evaluation: str, data_dir) -> list[tuple[str, _Rows]]:

    evaluation = DOMAIN_GROUPS.get(evaluation, evaluation)
    if evaluation in catalog():
        return [(task, task_documents(task, data_dir)) for task in _leaf_tasks([evaluation])]
    dataset, config, split = parse_dataset_spec(evaluation)

    try:
        lookup(dataset, config)
    except UserError:
        if ":" in evaluation or "/" in evaluation:
            raise

        raise suggest(
            evaluation,
            list(catalog()) + [e.id for e in TABLE] + [e.hub_id for e in TABLE],
            "task or dataset",
            "`dlm tasks list` / `dlm data list`",
        ) from None
    return [(evaluation, dataset_documents(dataset, config, split, data_dir))]


def overlap_report(train: str, evaluation: str, data_dir=None) -> dict:
    """`dlm data overlap TRAIN EVAL`: TRAIN is a dataset id[:config]; EVAL a task or group of harness_tasks/, or a
    dataset id[:config[:split]] (no split: its training and evaluation splits). A group gives one line per task."""
    dataset, config, _ = parse_dataset_spec(train)
    with quiet_libraries():  # the datasets library's "Map" bars of reading the sets
        train_rows = training_rows(dataset, config, data_dir)
        reports = [_report(train_rows, docs, name, train) for name, docs in _evaluation_sets(evaluation, data_dir)]
    if len(reports) == 1:
        return reports[0]
    return _combined(train, evaluation, reports)


def _combined(train: str, evaluation: str, reports: list[dict]) -> dict:
    docs = sum(r["eval_docs"] for r in reports)
    duplicated = sum(r["duplicated"] for r in reports)
    return {
        "eval": evaluation,
        "train": train,
        "train_source": reports[0]["train_source"],
        "train_rows": reports[0]["train_rows"],
        "eval_docs": docs,
        "exact": sum(r["exact"] for r in reports),
        "near": sum(r["near"] for r in reports),
        "duplicated": duplicated,
        "duplicated_fraction": _ratio(duplicated, docs),
        "ngram": NGRAM,
        "near_threshold": NEAR_THRESHOLD,
        "warn_fraction": WARN_FRACTION,
        "above_threshold": any(r["above_threshold"] for r in reports),
        "by_task": {
            r["eval"]: f"{r['duplicated']}/{r['eval_docs']} duplicated ({r['duplicated_fraction']:.1%})"
            + (" ABOVE THRESHOLD" if r["above_threshold"] else "")
            for r in reports
        },
        "examples": [e for r in reports for e in r["examples"]][:MAX_EXAMPLES],
    }


def contamination_for_run(mixture, task_names, data_dir=None) -> list[dict]:
    """One overlap report per evaluated task for a run's training mixture (stored as record.train.contamination).

    Provenance, never a reason to fail a run: a task whose data cannot be read gets {"eval", "error"}.
    """
    with quiet_libraries():  # the datasets library's "Map" bars of reading the sets
        return _contamination_for_run(mixture, task_names, data_dir)


def _contamination_for_run(mixture, task_names, data_dir) -> list[dict]:
    parts = [training_rows(p.dataset, p.config, data_dir) for p in mixture.parts]
    train = _Rows(
        " + ".join(p.label for p in parts),
        [row for p in parts for row in p.rows],
        None if any(p.total is None for p in parts) else sum(p.total for p in parts),
        held_out=sum(p.held_out for p in parts),
    )

    out = []
    for task in _leaf_tasks(task_names):
        if task not in catalog():  # an lm-eval built-in task: its data is not ours to read
            out.append(
                {"eval": task, "error": "not a harness_tasks task; overlap not checked", "above_threshold": None}
            )
            continue
        try:
            out.append(_report(train, task_documents(task, data_dir), task, mixture.label()))
        except UserError as err:
            out.append({"eval": task, "error": str(err), "above_threshold": None})
    return out
