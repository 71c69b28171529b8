"""Per-document scores of free-text answers, for lm-eval's `process_results` hook of the generative QA tasks
(finance/_qa_template_yaml): exact match after SQuAD normalisation, ROUGE-L, the (reference, prediction) pair that
metrics.corpus_bleu aggregates, and, opt-in, the cosine similarity of mean-pooled embeddings (sem_sim)."""

from __future__ import annotations

import os
import re
import string
import sys

import torch
from rouge_score import rouge_scorer
from transformers import AutoModel, AutoTokenizer

SEM_SIM_ENV = "DLM_SEM_SIM_MODEL"


# --- exact match and ROUGE-L -----------------------------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, drop punctuation and articles (a/an/the), collapse whitespace."""
    text = str(text).lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


_ROUGE = None


def rouge_l(reference: str, prediction: str) -> float:
    """ROUGE-L F-measure (rouge-score, Porter stemming), in [0, 1]."""
    global _ROUGE
    if _ROUGE is None:
        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return float(_ROUGE.score(reference, prediction)["rougeL"].fmeasure)


def text_scores(reference: str, prediction: str) -> dict:
    """Per-document values for free-text answers: exact_match (normalised), rougeL, bleu pair, optional sem_sim."""
    reference, prediction = str(reference).strip(), str(prediction).strip()
    out = {
        "exact_match": float(normalize_answer(prediction) == normalize_answer(reference)),
        "rougeL": rouge_l(reference, prediction),
        "bleu": (reference, prediction),
    }
    similarity = semantic_similarity(reference, prediction)
    if similarity is not None:
        out["sem_sim"] = similarity
    return out


def text_results(doc, results) -> dict:
    """process_results for generate_until tasks whose documents carry the reference in `answer`."""
    return text_scores(doc["answer"], results[0])


# --- semantic similarity (opt-in) ------------------------------------------------------------------------------------
_EMBEDDER: dict = {}


def semantic_similarity(reference: str, prediction: str) -> float | None:
    """Cosine similarity of mean-pooled embeddings, or None when no embedding model is configured.

    Opt-in: set DLM_SEM_SIM_MODEL to a local directory or hub id of a sentence-embedding model (for example
    sentence-transformers/all-MiniLM-L6-v2). Nothing is downloaded unless you name a model that is not cached;
    if it cannot be loaded, sem_sim is skipped with one warning and every other metric is still computed.
    """
    name = os.environ.get(SEM_SIM_ENV, "").strip()
    if not name:
        return None
    embed = _embedder(name)
    if embed is None:
        return None
    a, b = embed([reference, prediction])
    return float(max(-1.0, min(1.0, (a @ b).item())))


def load_embedder(name: str):
    """(texts -> unit vectors) function built from any transformers encoder; raises if the model cannot load."""

    tokenizer = AutoTokenizer.from_pretrained(name)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    model = AutoModel.from_pretrained(name).eval()

    @torch.no_grad()
    def embed(texts):
        batch = tokenizer([t or " " for t in texts], padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1)

    return embed


def _embedder(name: str):
    if name not in _EMBEDDER:
        try:
            _EMBEDDER[name] = load_embedder(name)
        # what from_pretrained raises for a model it cannot find or read (a missing folder or id, an unknown
        # architecture, a damaged or mismatched checkpoint): skip sem_sim, never fail the evaluation
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
            sys.stderr.write(
                f"warning: sem_sim skipped: cannot load embedding model '{name}' ({err.__class__.__name__})\n"
            )
            _EMBEDDER[name] = None
    return _EMBEDDER[name]
