"""Short run labels ("sft·tfns", "pt→sft·tfns·s7", "gpt2·lora·sst2") for tables and plots: a run id such as
20261202-032900-e2ea60fb-sft-tiny-gpt2-twitter-financial-news-sentiment is exact but unreadable in a 100-column
table or a legend. Labels are made once per report (report["runs"][i]["label"]) and used everywhere, and the
report lists each label beside its run id, so a label always leads back to its record.

A label is approach · training data, prefixed by the base model when the report holds several, followed by only
those settings that tell apart runs that would otherwise share a label (seed, steps, data fraction, LoRA rank);
anything still equal gets #2, #3 in run order.
"""

from __future__ import annotations

import re

from dlm.config import TrainConfig
from dlm.store.records import RunRecord

APPROACH_LABELS = {
    "zero-shot": "zs",
    "pretrain": "pt",
    "sft": "sft",
    "sequential": "pt→sft",
    "multitask": "mt",
    "unknown": "eval",
}
SEP = "·"
PLAIN_CONFIGS = ("", "default", "main", "plain_text")  # configs that name nothing: gsm8k "main", imdb "plain_text"
MAX_WHOLE_NAME = 14  # longer dataset names become their initials


def dataset_label(dataset: str, config: str | None = None) -> str:
    """'glue', 'sst2' -> 'sst2'; 'zeroshot/twitter-financial-news-sentiment' -> 'tfns'; 'openai/gsm8k' -> 'gsm8k'."""
    if config and config not in PLAIN_CONFIGS:
        return config if len(config) <= MAX_WHOLE_NAME else _initials(config)
    name = str(dataset).rstrip("/").split("/")[-1]
    return name if len(name) <= MAX_WHOLE_NAME else _initials(name)


def _initials(name: str) -> str:
    words = [w for w in re.split(r"[-_.\s]+", name) if w]
    return "".join(w[0] for w in words).lower() if len(words) > 1 else name[:MAX_WHOLE_NAME]


def _config(record: RunRecord) -> TrainConfig | None:
    return record.train.config if record.train else None


def data_label(record: RunRecord) -> str:
    """The run's training data: one dataset, or a mixture joined by '+'; '' for a run without training data."""
    config = _config(record)
    if config is None or not config.has_data():
        return ""
    return "+".join(dataset_label(part.dataset, part.config) for part in config.data.parts)


def _discriminators(record: RunRecord) -> dict[str, str]:
    """Settings that may tell two runs apart, as label suffixes (shown only where they do)."""
    config = _config(record)
    if config is None:
        return {"seed": "", "steps": "", "fraction": "", "lora": ""}
    return {
        "seed": f"s{config.seed}",
        "steps": f"{config.max_steps}st",
        "fraction": "" if config.data_fraction == 1.0 else f"f{config.data_fraction:g}",
        "lora": f"r{config.lora_r}" if config.lora else "",
    }


def run_labels(runs: list) -> dict[str, str]:
    """{run_id: short label} for `runs` (results/matrix.Run), unique within the list."""
    several_models = len({r.base_model for r in runs}) > 1
    labels, suffixes = {}, {}
    for run in runs:
        approach = APPROACH_LABELS.get(run.approach, run.approach)
        if run.approach == "sft" and _config(run.record) is not None and _config(run.record).lora:
            approach = "lora"
        data = data_label(run.record)
        parts = [run.base_model] if several_models else []
        labels[run.run_id] = SEP.join(parts + [approach] + ([data] if data else []))
        suffixes[run.run_id] = _discriminators(run.record)
    for key in ("seed", "steps", "fraction", "lora"):
        groups: dict[str, list] = {}
        for run in runs:
            groups.setdefault(labels[run.run_id], []).append(run)
        for group in groups.values():
            if len(group) > 1 and len({suffixes[r.run_id][key] for r in group}) > 1:
                for run in group:
                    if suffixes[run.run_id][key]:
                        labels[run.run_id] += SEP + suffixes[run.run_id][key]
    seen: dict[str, int] = {}
    for run in sorted(runs, key=lambda r: r.run_id):  # equal settings: #2, #3 by run id (creation time)
        label = labels[run.run_id]
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            labels[run.run_id] = f"{label}#{seen[label]}"
    return labels
