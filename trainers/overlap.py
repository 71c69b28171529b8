"""Contamination check: does the training data contain the evaluation documents?

Two measures, both on normalised text (lowercase, every run of punctuation/whitespace collapsed to one space):

- exact duplicate: a text field of an evaluation document equals a text field of some training row
  (FinGPT's `input` is word for word a Financial PhraseBank `sentence`);
- near duplicate: at least `near_threshold` of the document's word 8-grams occur somewhere in the training
  rows (containment, as in the GPT-3 / Llama contamination studies; it catches a sentence embedded in an
  instruction prompt or re-punctuated). Fields shorter than 8 words can only match exactly.

Fields are the string values of a row (nested lists/dicts included) with at least `MIN_WORDS` words, so label
strings ("positive", "Bearish") never count as overlap. N-grams never cross a field boundary.

Cost is linear: the (small) evaluation side is indexed in hash sets, the training side streams through it
once; no pairwise comparison. Both sides are capped (`MAX_TRAIN_ROWS`, `MAX_EVAL_DOCS`): a training set
larger than the cap is a seeded random sample of that many rows (the first rows when streamed), and the
report says so, so fractions are estimates there.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice

from trainers.errors import UserError

NGRAM = 8  # words; long enough that shared boilerplate ("the company said that ...") rarely reaches it
NEAR_THRESHOLD = 0.5  # share of a document's n-grams found in training data that makes it a near duplicate
WARN_FRACTION = 0.01  # flag the pair when more than 1% of evaluation documents are duplicated
MIN_WORDS = 4  # shorter strings are labels or ids, not documents
MAX_TRAIN_ROWS = 100_000  # FinGPT sentiment train (76,772 rows) fits whole; huge corpora are sampled
MAX_EVAL_DOCS = 20_000
MAX_EXAMPLES = 5
SAMPLE_SEED = 0

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lowercase; punctuation, underscores and whitespace runs become one space."""
    return _NON_WORD.sub(" ", text.lower()).strip()


def text_fields(row, min_words: int = MIN_WORDS) -> list[tuple[str, str]]:
    """The document-like strings of a row as (normalised, original) pairs, in column order."""
    out: list[tuple[str, str]] = []

    def collect(value):
        if isinstance(value, str):
            norm = normalise(value)
            if norm.count(" ") + 1 >= min_words:
                out.append((norm, value))
        elif isinstance(value, dict):
            for v in value.values():
                collect(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                collect(v)

    collect(row)
    return out


def ngram_hashes(words: list[str], n: int = NGRAM) -> set[int]:
    return {hash(gram) for gram in zip(*(words[i:] for i in range(n)))}


@dataclass
class _EvalIndex:
    """Evaluation documents indexed by field hash and by n-gram hash; collects what the training rows hit."""

    docs: list[str]  # display text per document
    ngram: int
    exact_by_field: dict[int, list[int]] = field(default_factory=dict)
    docs_by_ngram: dict[int, list[int]] = field(default_factory=dict)
    ngrams_per_doc: list[int] = field(default_factory=list)
    exact_match: dict[int, str] = field(default_factory=dict)  # doc -> training text that equals it
    found: list[set[int]] = field(default_factory=list)  # doc -> its n-grams seen in training
    best_train: dict[int, tuple[int, str]] = field(default_factory=dict)  # doc -> (shared n-grams, training text)

    @classmethod
    def build(cls, rows: list, ngram: int) -> "_EvalIndex":
        index = cls(docs=[], ngram=ngram)
        for row in rows:
            doc = len(index.docs)
            fields = text_fields(row)
            index.docs.append(" | ".join(original for _, original in fields))
            grams: set[int] = set()
            for text, _ in fields:
                index.exact_by_field.setdefault(hash(text), []).append(doc)
                grams |= ngram_hashes(text.split(), ngram)
            for g in grams:
                index.docs_by_ngram.setdefault(g, []).append(doc)
            index.ngrams_per_doc.append(len(grams))
            index.found.append(set())
        return index

    def scan(self, train_rows) -> int:
        """Stream training rows through the index; returns how many rows were read."""
        seen_fields: set[int] = set()  # FinGPT repeats FPB 6x: score each distinct field once
        count = 0
        for row in train_rows:
            count += 1
            for text, original in text_fields(row):
                key = hash(text)
                if key in seen_fields:
                    continue
                seen_fields.add(key)
                for doc in self.exact_by_field.get(key, ()):
                    self.exact_match.setdefault(doc, original)
                hits: Counter = Counter()
                for g in ngram_hashes(text.split(), self.ngram):
                    for doc in self.docs_by_ngram.get(g, ()):
                        self.found[doc].add(g)
                        hits[doc] += 1
                for doc, shared in hits.items():
                    if shared > self.best_train.get(doc, (0, ""))[0]:
                        self.best_train[doc] = (shared, original)
        return count


def compare_rows(train_rows, eval_rows: list, ngram: int = NGRAM, near_threshold: float = NEAR_THRESHOLD,
                 warn_fraction: float = WARN_FRACTION) -> dict:
    """The overlap measures for in-memory rows (dicts or strings); the engine behind every report."""
    index = _EvalIndex.build(eval_rows, ngram)
    train_count = index.scan(train_rows)
    exact, near, examples = 0, 0, []
    for doc in range(len(index.docs)):
        total = index.ngrams_per_doc[doc]
        containment = len(index.found[doc]) / total if total else 0.0
        if doc in index.exact_match:
            exact += 1
            kind, train_text = "exact", index.exact_match[doc]
        elif total and containment >= near_threshold:
            near += 1
            kind, train_text = "near", index.best_train[doc][1]
        else:
            continue
        if len(examples) < MAX_EXAMPLES:
            examples.append({"kind": kind, "containment": round(containment, 3),
                             "eval": index.docs[doc][:200], "train": train_text[:200]})
    n_docs = len(index.docs)
    duplicated = exact + near
    fraction = duplicated / n_docs if n_docs else 0.0
    return {
        "train_rows": train_count, "eval_docs": n_docs,
        "exact": exact, "exact_fraction": _ratio(exact, n_docs),
        "near": near, "near_fraction": _ratio(near, n_docs),
        "duplicated": duplicated, "duplicated_fraction": round(fraction, 4),
        "ngram": ngram, "near_threshold": near_threshold, "warn_fraction": warn_fraction,
        "above_threshold": fraction > warn_fraction,
        "examples": examples,
    }


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
