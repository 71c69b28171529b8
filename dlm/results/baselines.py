"""Published large-model numbers (results/baselines.yaml): load them, find the one closest to a score's
protocol, and say why a comparison is not like-for-like.

    >>> from dlm.results.baselines import match
    >>> match("dlm_fpb", "f1_weighted", model="gpt-4", shots=0).value
    0.78
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from dlm.data.fingerprint import SYNTHETIC
from dlm.errors import suggest
from dlm.harness_tasks.catalog import twin_of
from dlm.store.records import RunRecord

BASELINES_FILE = Path(__file__).with_name("baselines.yaml")

# Metrics our harness computes from generated text; every other metric scores options by log-likelihood.
GENERATIVE_METRICS = {
    "exact_match",
    "convfinqa_acc",
    "rougeL",
    "rouge1",
    "rouge2",
    "bleu",
    "sem_sim",
    "entity_f1",
    "pass@1",
    "pass_at_1",
}
# A baseline in another metric of the same family is still shown (and marked); across families it is not,
# because a ratio of, say, MCC to accuracy means nothing.
METRIC_FAMILY = {
    "acc": "accuracy",
    "exact_match": "accuracy",
    "convfinqa_acc": "accuracy",
    "f1": "f1",
    "f1_macro": "f1",
    "f1_weighted": "f1",
    "headline_f1": "f1",
    "entity_f1": "f1",
    "mcc": "mcc",
    "pass@1": "pass",
    "pass_at_1": "pass",
    "rougeL": "rouge",
    "rouge1": "rouge",
    "rouge2": "rouge",
    "bleu": "bleu",
    "sem_sim": "sem_sim",
}


@dataclass(frozen=True)
class Baseline:
    model: str  # short key: gpt-4, gpt-4o, claude-3.5-sonnet, ...
    task: str
    metric: str
    shots: int | None  # None: the source does not say
    cot: bool | str | None  # True, False, "program-of-thought", or None (not stated)
    value: float  # 0-1
    scoring: str  # "generative" | "loglikelihood" | "unstated"
    protocol: str
    source: str
    model_version: str = ""
    subset: str | None = None
    variant: str | None = None
    second_hand: bool = False
    note: str = ""
    measured: bool = False  # an API run in this results dir (dlm eval --model openai:...), not a publication
    n: int | None = None  # documents scored: the source's test-set size (None: unknown)
    stderr: float | None = None
    scoring_rule: str | None = None  # the source's own reading of generated answers (FinGPT: no label = neutral)

    def label(self) -> str:
        shots = "?-shot" if self.shots is None else f"{self.shots}-shot"
        cot = {True: " CoT", "program-of-thought": " PoT"}.get(self.cot, "")
        return f"{self.model} {shots}{cot}"


@dataclass
class BaselineTable:
    entries: list[Baseline]
    models: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, dict] = field(default_factory=dict)
    domain_prefixes: dict[str, str] = field(default_factory=dict)
    no_number: dict[str, str] = field(default_factory=dict)  # task -> why no large model has a published number

    def task_domain(self, task: str) -> str | None:
        task = filed_under(task)
        if task in self.tasks:
            return self.tasks[task].get("domain")
        for prefix, domain in self.domain_prefixes.items():
            if task.startswith(prefix):
                return domain
        return None

    def primary_metric(self, task: str) -> str | None:
        return (self.tasks.get(filed_under(task)) or {}).get("metric")


def filed_under(task: str) -> str:
    """The task name published numbers are filed under: a generative twin's numbers are its sibling's (the same
    documents and metric; `scoring` tells the protocols apart)."""

    return twin_of(task) or task


@lru_cache(maxsize=4)
def load(path: str | Path = BASELINES_FILE) -> BaselineTable:

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    fields = Baseline.__dataclass_fields__
    entries = [Baseline(**{k: v for k, v in row.items() if k in fields}) for row in data.get("baselines", [])]
    return BaselineTable(
        entries=entries,
        models=data.get("models") or {},
        tasks=data.get("tasks") or {},
        domain_prefixes=data.get("domain_prefixes") or {},
        no_number=data.get("no_large_model_number") or {},
    )


def api_model_matches(key: str, api_model: str) -> bool:
    """`--against gpt-4o` covers openai:gpt-4o-2024-08-06; `claude-3.5-sonnet` covers claude-3-5-sonnet-20240620."""

    def norm(text: str) -> str:
        return text.lower().replace(".", "-")

    name = norm(api_model.split(":", 1)[-1])
    return name == norm(key) or name.startswith(norm(key) + "-")


def measured_baselines(records: list[RunRecord], keys: list[str]) -> list[Baseline]:
    """The scores of API runs (records whose `approach` is "api") as baselines of every `--against` key they match:
    same prompts, documents and metric as the small models, so these come before published numbers."""

    out = []
    for record in records:
        if record.approach != "api" or record.status != "ok":
            continue
        name = str(record.model.name or "")
        api = record.api if isinstance(record.api, dict) else {}
        returned = [str(m) for m in api.get("models_returned") or [] if isinstance(m, str)]
        for key in keys:
            if not api_model_matches(key, name):
                continue
            for score in (s for s in record.scores if s.value is not None):
                out.append(
                    Baseline(
                        model=key,
                        task=filed_under(score.task),
                        metric=score.metric,
                        shots=score.num_fewshot,
                        cot=False,
                        value=score.value,
                        scoring=our_scoring(score),
                        protocol="measured here: dlm's prompts and documents through the API",
                        source=f"run {record.run_id} ({name})",
                        model_version=", ".join(returned),
                        subset="first documents only (--limit)" if record.protocol and record.protocol.limit else None,
                        measured=True,
                        n=score.n,
                        stderr=score.stderr,
                    )
                )
    return out


def model_keys(model: str | list[str]) -> list[str]:
    """`--against gpt-4,gpt-4o` means: GPT-4's number where there is one, else GPT-4o's."""
    if isinstance(model, str):
        return [m.strip().lower() for m in model.split(",") if m.strip()]
    return [m.lower() for m in model]


def check_models(model: str | list[str], table: BaselineTable | None = None, api_models=()) -> list[str]:
    table = table or load()
    known = {b.model for b in table.entries} | {str(m).split(":", 1)[-1].lower() for m in api_models}
    keys = model_keys(model)
    for key in keys:
        if key not in known and not any(api_model_matches(key, m) for m in api_models):
            raise suggest(key, known, "baseline model", hint="models with published numbers in results/baselines.yaml")
    return keys


def _distance(b: Baseline, metric: str, shots: int | None, scoring: str | None) -> tuple:
    """Sort key: same metric first, then same scoring, then a number measured here with the same shots, whole test
    set, same dataset variant, the label read as such (no source-specific scoring rule), no CoT, nearest shot
    count."""
    shot_gap = 99 if shots is None or b.shots is None else abs(b.shots - shots)
    return (
        b.metric != metric,
        scoring is not None and b.scoring != scoring,
        not (b.measured and b.shots == shots),
        b.subset is not None,
        b.variant is not None,
        b.scoring_rule is not None,
        b.cot is not False,
        shot_gap,
        b.second_hand,
        b.scoring == "unstated",
    )


def match(
    task: str,
    metric: str,
    model: str | list[str] = "gpt-4",
    shots: int | None = None,
    table: BaselineTable | None = None,
    scoring: str | None = None,
) -> Baseline | None:
    """The published number of `model` (or the first of several that has one) closest to our protocol.

    Only baselines in the same metric family are candidates; among them the closest protocol wins (see
    `_distance`). A generative twin is set only against generated-answer numbers: its point is to be measured
    the way they were. None when the model has no number for the task.
    """

    table = table or load()
    family = METRIC_FAMILY.get(metric, metric)
    twin = twin_of(task) is not None
    for key in model_keys(model):
        candidates = [
            b
            for b in table.entries
            if b.model == key
            and b.task == filed_under(task)
            and METRIC_FAMILY.get(b.metric, b.metric) == family
            and (not twin or b.scoring == "generative")
        ]
        if candidates:
            return min(candidates, key=lambda b: _distance(b, metric, shots, scoring))
    return None


def our_scoring(score) -> str:
    """How a score was obtained: its recorded protocol, else (records made before protocols were recorded) a guess
    from the metric."""
    recorded = getattr(score, "scoring", None)
    if recorded:
        return recorded
    return "generative" if score.metric in GENERATIVE_METRICS else "loglikelihood"


def protocol_differs(score, baseline: Baseline, limit: int | None = None) -> list[str]:
    """Why `score` (a dlm_data.records.Score) and `baseline` are not measured the same way; [] when they are."""
    reasons = []
    if score.metric != baseline.metric:
        reasons.append(f"metric differs (ours {score.metric}, theirs {baseline.metric})")
    if baseline.shots is None:
        reasons.append("baseline shots not stated")
    elif score.num_fewshot is None:
        reasons.append(f"our shot count unknown (theirs {baseline.shots})")
    elif score.num_fewshot != baseline.shots:
        reasons.append(f"shots differ (ours {score.num_fewshot}, theirs {baseline.shots})")
    ours = our_scoring(score)
    if baseline.scoring == "unstated":
        reasons.append("baseline scoring not stated")
    elif ours != baseline.scoring:
        reasons.append(
            {
                "loglikelihood": "ours log-likelihood multiple choice, theirs generative",
                "generative": "ours generative, theirs log-likelihood multiple choice",
            }.get(ours, f"ours {ours}, theirs {baseline.scoring}")
        )
    if baseline.cot is True:
        reasons.append("baseline used chain-of-thought")
    elif baseline.cot == "program-of-thought":
        reasons.append("baseline used program-of-thought")
    elif baseline.cot is None:
        reasons.append("baseline chain-of-thought use not stated")
    if baseline.subset:
        reasons.append(f"baseline subset: {baseline.subset}")
    if baseline.variant:
        reasons.append(f"dataset variant: {baseline.variant}")
    if baseline.scoring_rule:
        reasons.append(f"baseline scoring rule: {baseline.scoring_rule}")
    if limit:
        reasons.append(f"ours on the first {float(limit):g} examples only (--limit)")
    source = score.protocol.data_source if score.protocol else None
    if not baseline.measured and source and source.startswith(SYNTHETIC + ":"):
        reasons.append("ours on synthetic sample data (samples/), not the published test set")
    if not baseline.measured and baseline.n and score.n and score.n != baseline.n:
        reasons.append(f"documents differ (ours n={score.n}, theirs n={baseline.n})")
    return reasons
