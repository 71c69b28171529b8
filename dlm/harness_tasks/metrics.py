"""Metrics shared by the task families, written for lm-eval's `process_results` / `aggregation` hooks.

Why hooks instead of lm-eval metric names: a `multiple_choice` task only computes lm-eval's own metric names
(acc, f1, mcc, ...), and its `f1` is sklearn's binary F1, which crashes on 3 classes. So classification tasks set
`process_results: !function harness_tasks.metrics.classification_results`, which returns, per document,
`acc` (0/1) plus a `(gold, pred)` pair for every corpus-level metric, and the YAML names one aggregation below
for each of those (`f1_macro`, `f1_weighted`, `precision_macro`, `recall_macro`, `mcc`).

Every function here is pure (scikit-learn and sacrebleu compute the corpus metrics). The per-document scoring of
free-text answers (ROUGE-L, the opt-in embedding similarity) is harness_tasks/text_answers.py: it needs torch,
transformers and rouge-score, which `dlm report` (it recomputes only the aggregations) never loads.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import defaultdict

import sacrebleu
from sklearn.metrics import f1_score, matthews_corrcoef, precision_score, recall_score

CLASSIFICATION_METRICS = ("acc", "f1_macro", "f1_weighted", "precision_macro", "recall_macro", "mcc")


# --- classification (multiple_choice tasks) --------------------------------------------------------------------------
def predicted_index(results) -> int:
    """Index of the choice with the highest log-likelihood (the first one on ties, like numpy.argmax).

    A generative twin (harness_tasks/twins.py) passes the choice it read from the text instead: an int, -1 when
    the text named no label."""
    if isinstance(results, int):
        return results
    lls = [ll for ll, _is_greedy in results]
    return max(range(len(lls)), key=lls.__getitem__)


def classification_scores(gold: int, results) -> dict:
    """Per-document values: `acc` is averaged directly, the other metrics aggregate (gold, pred) pairs."""
    pred = predicted_index(results)
    pair = (int(gold), pred)
    return {"acc": float(pred == int(gold)), **{name: pair for name in CLASSIFICATION_METRICS[1:]}}


def classification_results(doc, results) -> dict:
    """process_results for tasks whose documents carry the gold choice index in `label`."""
    return classification_scores(doc["label"], results)


def _pairs(items):
    golds = [int(g) for g, _ in items]
    preds = [int(p) for _, p in items]
    return golds, preds


def _labels(golds, preds) -> list[int]:
    """The classes averaged over: those seen in gold or predicted. A twin's "no label found" (-1) is not a class:
    it counts as a miss of the gold class (FinBen/PIXIU likewise average over real labels only)."""
    return sorted(set(golds) | {p for p in preds if p >= 0})


def _averaged(score, items, average: str) -> float:
    golds, preds = _pairs(items)
    return float(score(golds, preds, labels=_labels(golds, preds), average=average, zero_division=0))


def f1_macro(items) -> float:

    return _averaged(f1_score, items, "macro")


def f1_weighted(items) -> float:

    return _averaged(f1_score, items, "weighted")


def precision_macro(items) -> float:

    return _averaged(precision_score, items, "macro")


def recall_macro(items) -> float:

    return _averaged(recall_score, items, "macro")


def mcc(items) -> float:

    with warnings.catch_warnings():  # one class only (tiny --limit runs): sklearn warns, and returns 0.0
        warnings.simplefilter("ignore", UserWarning)
        return float(matthews_corrcoef(*_pairs(items)))


def grouped_f1_weighted(items) -> float:
    """Mean over groups of the weighted F1 inside each group; items are (group, gold, pred).

    AdaptLLM's Headline score: nine yes/no questions (class_id 0-8) per headline, weighted F1 per question, then
    the plain mean over questions. AdaptLLM divides by 9; we divide by the groups present, which is the same on
    the full test set and stays defined under --limit.
    """

    by_group: dict = defaultdict(lambda: ([], []))
    for group, gold, pred in items:
        by_group[group][0].append(int(gold))
        by_group[group][1].append(int(pred))
    scores = [f1_score(g, p, labels=_labels(g, p), average="weighted", zero_division=0) for g, p in by_group.values()]
    return float(sum(scores) / len(scores)) if scores else 0.0


# --- free text: the corpus BLEU aggregation (per-document scoring: harness_tasks/text_answers.py) --------------------
def corpus_bleu(items) -> float:
    """Corpus BLEU over (reference, prediction) pairs with sacrebleu's defaults, scaled to [0, 1] like the rest."""

    refs = [str(r) for r, _ in items]
    preds = [str(p) for _, p in items]
    return float(sacrebleu.corpus_bleu(preds, [refs]).score) / 100.0


# --- numbers ---------------------------------------------------------------------------------------------------------
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")


def parse_number(text: str) -> float | None:
    try:
        return float(str(text).replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def last_number(text: str) -> float | None:
    found = NUMBER.findall(str(text))
    return parse_number(found[-1]) if found else None


def numbers_close(pred: float | None, gold: float | None, rel_tol: float = 0.0, abs_tol: float = 0.0) -> bool:
    if pred is None or gold is None or math.isnan(pred) or math.isnan(gold):
        return False
    return math.isclose(pred, gold, rel_tol=rel_tol, abs_tol=abs_tol)


# --- entities (AdaptLLM NER) -----------------------------------------------------------------------------------------
# AdaptLLM writes gold entities as "word (TYPE)" and parses both sides with this pattern, so an entity name is the
# single word before the parenthesis; we keep that so our numbers compare with theirs.
ENTITY = re.compile(r"(\S+\s+)(\(\S+\))", re.IGNORECASE)


def parse_entities(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name, kind in ENTITY.findall(str(text)):
        entity = (name[:-1] if len(name) > 1 else "", kind[1:-1] if len(kind) > 2 else "")
        if entity not in out:
            out.append(entity)
    return out


def entity_f1(gold_text: str, pred_text: str) -> float:
    """Entity-level F1 of one document: a predicted entity matches a gold one when both its text and its type are
    equal, and each gold entity is matched at most once. precision = matches / #pred, recall = matches / #gold.

    Version 1 of adapt_ner followed AdaptLLM's `nereval` scoring, which also credits a type match alone, so a
    prediction that named none of the gold entities could still score up to 0.5; version 2 (this) does not.
    """
    gold, pred = parse_entities(gold_text), parse_entities(pred_text)
    unmatched = list(gold)
    matches = 0
    for entity in pred:
        if entity in unmatched and entity[0]:
            unmatched.remove(entity)
            matches += 1
    precision = matches / len(pred) if pred else 0.0
    recall = matches / len(gold) if gold else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


# --- ConvFinQA (AdaptLLM) --------------------------------------------------------------------------------------------
CONVFINQA_NUMBER = re.compile(r"[-+]?[.]?[\d]+(?:,\d\d\d)*[\.]?\d*(?:[eE][-+]?\d+)?[%]*")


def convfinqa_numbers(text: str) -> list[float]:
    """Numbers on the first line of `text`; `12%` means 0.12 and commas are thousands separators."""
    first_line = str(text).split("\n")[0].strip()
    numbers = []
    for token in CONVFINQA_NUMBER.findall(first_line):
        percents = token.count("%")
        value = parse_number(token.replace("%", ""))
        numbers.append(math.inf if value is None else value / (100**percents))
    return numbers


def convfinqa_match(gold_text: str, pred_text: str) -> float:
    """AdaptLLM's ConvFinQA rule: the gold's first number equals (abs_tol 1e-2) a number on the prediction's first line.

    Note that AdaptLLM accepts ANY number on that line, not only the first; we keep their rule so scores compare.
    """
    gold, pred = convfinqa_numbers(gold_text), convfinqa_numbers(pred_text)
    if not gold or not pred:
        return 0.0
    return float(any(math.isclose(p, gold[0], abs_tol=1e-2) for p in pred))
