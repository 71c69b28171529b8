"""What the finance YAMLs cannot say in Jinja: FiQA score binning and the AdaptLLM / FinanceMath scorers."""

from dlm.harness_tasks.metrics import (
    classification_scores,
    convfinqa_match,
    entity_f1,
    last_number,
    numbers_close,
    parse_number,
)


def fiqa_sa_label(score: float) -> int:
    """0 negative (< -0.1), 1 neutral (< 0.1), 2 positive: the binning FinGPT and BloombergGPT use."""
    if score < -0.1:
        return 0
    if score < 0.1:
        return 1
    return 2


def fiqa_sa_docs(dataset):
    return dataset.map(lambda row: {"label": fiqa_sa_label(float(row["score"]))})


def adaptllm_choice_results(doc, results):
    return classification_scores(doc["gold_index"], results)


def adaptllm_headline_results(doc, results):
    scores = classification_scores(doc["gold_index"], results)
    gold, pred = scores["f1_weighted"]
    return {**scores, "headline_f1": (int(doc["class_id"]), gold, pred)}


def adaptllm_answer(doc) -> str:
    """AdaptLLM's gold answer: `label` is a list whose first entry counts (sometimes a bare string)."""
    label = doc["label"]
    return str(label[0] if isinstance(label, (list, tuple)) else label)


def adaptllm_ner_results(doc, results):
    return {"entity_f1": entity_f1(adaptllm_answer(doc), results[0])}


def adaptllm_convfinqa_results(doc, results):
    return {"exact_match": convfinqa_match(adaptllm_answer(doc), results[0])}


def financemath_results(doc, results):
    gold = parse_number(doc["ground_truth"])
    return {"exact_match": float(numbers_close(last_number(results[0]), gold, rel_tol=1e-2, abs_tol=1e-3))}
