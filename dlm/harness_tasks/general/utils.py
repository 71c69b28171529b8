"""What the general YAMLs cannot say in Jinja: lm-eval's MNLI prompt (a full stop is added to the hypothesis)."""


def mnli_prompt(doc) -> str:
    hypothesis = doc["hypothesis"].strip()
    if not hypothesis.endswith("."):
        hypothesis += "."
    return f"{doc['premise']}\nQuestion: {hypothesis} True, False or Neither?\nAnswer:"
