"""What the math YAMLs cannot say in Jinja: DeepMind answer matching, MMLU-Pro prompts.

(dlm_data.data.load_split already cleans the DeepMind rows of b'...' reprs and trailing newlines.)
"""

import math

from dlm.harness_tasks.metrics import parse_number

LETTERS = "ABCDEFGHIJ"


def normalize_math_answer(text: str) -> str:
    text = str(text).strip()
    return text[:-1].rstrip() if text.endswith(".") else text


def math_answers_equal(prediction: str, gold: str) -> bool:
    """Exact string match after normalisation; two numbers match by value (relative tolerance 1e-6)."""
    pred, ref = normalize_math_answer(prediction), normalize_math_answer(gold)
    if pred == ref:
        return True
    pred_num, ref_num = parse_number(pred), parse_number(ref)
    if pred_num is None or ref_num is None:
        return False
    return math.isclose(pred_num, ref_num, rel_tol=1e-6, abs_tol=1e-12)


def deepmind_results(doc, results):
    return {"exact_match": float(math_answers_equal(results[0], doc["answer"]))}


def mmlu_pro_math_docs(dataset):
    return dataset.filter(lambda row: row["category"] == "math")


def mmlu_pro_prompt(doc) -> str:
    options = "".join(f"\n{LETTERS[i]}. {option}" for i, option in enumerate(doc["options"]))
    return f"{doc['question'].strip()}{options}\nAnswer:"


def mmlu_pro_letters(doc) -> list:
    return list(LETTERS[: len(doc["options"])])
