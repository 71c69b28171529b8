"""The protocol of a score: everything about *how* a number was obtained that two numbers must share to compare.

Recorded on every score of every evaluation (`Score.protocol`):

    scoring            "loglikelihood" (options ranked by likelihood) | "generative" (an answer read from generated
                       text) | "perplexity" | "mixed" (a group of both)
    shots              in-context examples
    chat_template      null, or {"name", "sha256"} of the template the prompts were rendered in
    system_instruction sha256 of the system instruction, or null
    fewshot_as_multiturn
    generation         the decoding settings of generative tasks (until, max_gen_toks, do_sample, temperature)
    extraction         how the answer was read: "dlm-labels-v<N>" (the twins), lm-eval filter names, or null

results/baselines.py compares like with like on these fields.
"""

from __future__ import annotations

from dlm.harness_tasks.extraction import EXTRACTION_VERSION
from dlm.harness_tasks.twins import GenerativeTwin
from dlm.trainers.chat import text_hash

LIKELIHOOD_TYPES = {
    "multiple_choice": "loglikelihood",
    "loglikelihood": "loglikelihood",
    "loglikelihood_rolling": "perplexity",
    "generate_until": "generative",
}


def task_protocol(task) -> dict:
    """The task-side fields of one loaded lm-eval task."""

    scoring = LIKELIHOOD_TYPES.get(task.OUTPUT_TYPE, task.OUTPUT_TYPE)
    generation = None
    if scoring == "generative":
        kwargs = dict(task.config.generation_kwargs or {})
        generation = {
            key: kwargs.get(key) for key in ("until", "max_gen_toks", "do_sample", "temperature") if key in kwargs
        }
    if isinstance(task, GenerativeTwin):
        extraction = f"dlm-labels-v{EXTRACTION_VERSION}"
    else:
        names = [f.get("name") for f in task.config.filter_list or [] if isinstance(f, dict)]
        extraction = ",".join(n for n in names if n and n != "none") or None
    return {"scoring": scoring, "generation": generation, "extraction": extraction}


def group_protocol(members: list[dict]) -> dict:
    """A group's fields: the members' where they all agree, "mixed" (scoring) or null (the rest) where not."""
    if not members:
        return {"scoring": None, "generation": None, "extraction": None}
    out = {}
    for key in ("scoring", "generation", "extraction"):
        values = [m.get(key) for m in members]
        same = all(v == values[0] for v in values)
        out[key] = values[0] if same else ("mixed" if key == "scoring" else None)
    return out


def run_fields(template, system_instruction: str | None, fewshot_as_multiturn: bool) -> dict:
    """The run-side fields, shared by every score of one evaluation; `template`: a trainers.chat.ChatTemplate."""

    return {
        "chat_template": template.to_dict() if template is not None else None,
        "system_instruction": text_hash(system_instruction),
        "fewshot_as_multiturn": bool(fewshot_as_multiturn) if template is not None else False,
    }


def protocols(tasks: dict, group_subtasks: dict, run: dict) -> dict[str, dict]:
    """{task or group name: protocol without `shots`} for everything an evaluation reported."""
    out = {name: {**task_protocol(task), **run} for name, task in tasks.items()}

    def of(name: str) -> dict | None:
        if name in out:
            return out[name]
        if name not in group_subtasks:
            return None
        members = [p for p in (of(child) for child in group_subtasks[name]) if p is not None]
        out[name] = {**group_protocol(members), **run}
        return out[name]

    for group in group_subtasks:
        of(group)
    return out
