"""SFT examples that do not fit --max_length: counted, and cut where it costs least.

TRL keeps the first max_length tokens of prompt + completion + EOS and drops rows left without a supervised token,
silently: an IMDB review whose prompt alone fills 256 tokens would vanish from training. Here, before TRL sees the
data, an over-long example keeps its whole completion and loses the *start* of its prompt (with dlm's templates:
the instruction and the start of the text; the end of the text and "Answer:" stay next to the answer). A completion
that alone does not fit keeps its start (TRL's cut) and is counted apart. Both counts go into the run record and the
training summary.
"""

from __future__ import annotations

FLAG = "_dlm_fit"  # 0 fits, 1 prompt cut from the left, 2 completion alone too long


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def fit_example(example: dict, tokenizer, max_length: int) -> dict:
    prompt, completion = example["prompt"], example["completion"]
    completion_len = len(_ids(tokenizer, completion)) + 1  # + EOS, which TRL appends
    prompt_ids = _ids(tokenizer, prompt)
    room = max_length - completion_len
    if len(prompt_ids) + completion_len <= max_length:
        return {"prompt": prompt, "completion": completion, FLAG: 0}
    if room < 1:
        return {"prompt": prompt, "completion": completion, FLAG: 2}
    keep = room
    while keep > 0:  # decoding a token suffix and re-encoding it can change the count by a token or two
        cut = tokenizer.decode(prompt_ids[-keep:])
        if len(_ids(tokenizer, cut)) + completion_len <= max_length:
            return {"prompt": cut, "completion": completion, FLAG: 1}
        keep -= 1
    return {"prompt": prompt, "completion": completion, FLAG: 2}


def fit_to_max_length(dataset, tokenizer, max_length: int):
    """(dataset with over-long prompts cut from the left, counts). Counts are None for a streamed dataset (its rows
    are fitted as they are read, and never all seen up front)."""
    mapped = dataset.map(lambda row: fit_example(row, tokenizer, max_length))
    if not hasattr(mapped, "column_names") or mapped.column_names is None or not hasattr(mapped, "__len__"):
        return mapped.remove_columns([FLAG]), None
    flags = mapped[FLAG]
    counts = {
        "examples": len(flags),
        "prompts_cut_from_left": sum(1 for f in flags if f == 1),
        "completions_too_long": sum(1 for f in flags if f == 2),
    }
    return mapped.remove_columns([FLAG]), counts
