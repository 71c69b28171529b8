"""The study plan's success criteria and hypotheses, decided from stored records (results/matrix.py rows).

Each check returns a Verdict: met / not met, supported / not supported / inconclusive, or "not enough runs"
naming the runs that would decide it. Thresholds are the study plan's:
- domain matching: a trained small model reaches >= 80% of the large model's published number on its domain;
- transfer: >= 60% on tasks outside the training domain;  - efficiency: every training run < 2 h;
- H1: continued pretraining on finance/math data beats the same model zero-shot by >= 20% (relative, on the
  pooled mean of paired scores); H2: pretrain -> SFT (sequential) beats direct SFT with the same SFT data, steps,
  LoRA setting and seed; H3: domain pretraining improves out-of-domain tasks by >= 10% (relative) over zero-shot.
Pairs share base model, task, version, metric, filter, shots, limit, data source and documents (results/paired.py);
each hypothesis is decided on full test sets from a 95% interval of the difference: "supported", "not supported"
or "inconclusive" (results/paired.py `decide`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from dlm.results.matrix import DOMAINS, Row, Run, origin_id, train_seconds
from dlm.results.paired import Outcomes, decide, difference, mismatch
from dlm.results.seeds import NOT_SETUP
from dlm.store.records import RunRecord

DOMAIN_MATCH = 0.80
TRANSFER = 0.60
MAX_TRAIN_SECONDS = 2 * 3600
Z95 = 1.959964
H1_GAIN = 0.20
H3_GAIN = 0.10
EXAMPLE = {
    "finance": "dlm run --model gpt2 --dataset gbharti/finance-alpaca --mode pretrain --max_steps 2000",
    "math": "dlm run --model gpt2 --dataset openai/gsm8k --dataset_config main --mode pretrain --max_steps 800",
    "general": "dlm run --model gpt2 --dataset stanfordnlp/imdb --mode sft --max_steps 500",
}


@dataclass
class Verdict:
    name: str
    claim: str
    verdict: str
    detail: str
    evidence: list[dict] = field(default_factory=list)
    difference: dict | None = None  # hypotheses: results/paired.Difference.to_dict()

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "claim": self.claim,
            "verdict": self.verdict,
            "detail": self.detail,
            "evidence": self.evidence,
            "difference": self.difference,
        }


def pct(x: float | None) -> str:
    if x is None:
        return "–"
    return "∞" if math.isinf(x) else f"{100 * x:.1f}%"


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


# --- success criteria ---------------------------------------------------------------------------------------
def _deciding(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """Rows that may decide a criterion: full test set, and a published number of the same shot count (zero-shot
    means zero-shot). The rest are named, not counted."""
    keep, notes = [], []
    subsets = [r for r in rows if r not in full_test_set(rows)]
    other = [r for r in full_test_set(rows) if r.baseline is not None and r.baseline.shots != r.score.num_fewshot]
    keep = [r for r in full_test_set(rows) if r not in other]
    if subsets:
        notes.append(f"{len(subsets)} --limit (subset) score(s) shown in the tables, not deciding")
    if other:
        notes.append(
            "other protocol, not deciding: "
            + ", ".join(
                sorted(
                    {
                        f"{r.score.task} ({_shots(r.baseline.shots)} published vs {r.score.num_fewshot}-shot here)"
                        for r in other
                    }
                )
            )
        )
    return keep, notes


def _shots(shots: int | None) -> str:
    return "shot count unknown" if shots is None else f"{shots}-shot"


def runs_ratio(rows: list[Row]) -> list[tuple[Run, float, float | None, list[str]]]:
    """(run, mean ratio over its tasks, stderr of that mean or None, tasks) per run, best first."""
    per_run: dict[str, list[Row]] = {}
    for row in rows:
        per_run.setdefault(row.run.run_id, []).append(row)
    out = []
    for group in per_run.values():
        ratios = [r.ratio for r in group]
        errors = [r.score.stderr / r.baseline.value if r.score.stderr is not None else None for r in group]
        se = (math.sqrt(sum(e * e for e in errors)) / len(errors)) if all(e is not None for e in errors) else None
        out.append((group[0].run, _mean(ratios), se, sorted(r.score.task for r in group)))
    return sorted(out, key=lambda t: -t[1])


def _ratio_verdict(name, claim, rows, threshold, missing, covered=None) -> Verdict:
    deciding, notes = _deciding(rows)
    ranked = runs_ratio(deciding)
    if not ranked:
        return Verdict(name, claim, "not enough runs", "; ".join([missing, *notes]))
    lows = [ratio - Z95 * se if se is not None else None for _, ratio, se, _ in ranked]
    highs = [ratio + Z95 * se if se is not None else None for _, ratio, se, _ in ranked]
    if any(low is not None and low >= threshold for low in lows):
        verdict = "met"
    elif all(high is not None and high < threshold for high in highs):
        verdict = "not met"
    else:
        verdict = "inconclusive"
    shown = []
    for (run, ratio, _se, tasks), low, high in zip(ranked, lows, highs):
        interval = f" [{pct(low)}, {pct(high)}]" if low is not None else " (no stderr)"
        shown.append(
            f"{run.run_id} ({run.base_model}, {run.approach}) {pct(ratio)}{interval} over {len(tasks)} task(s)"
        )
    detail = "; ".join(shown)
    if covered is not None:
        scored = set(ranked[0][3])
        absent = [t for t in covered if t not in scored]
        detail += f"; tasks: {', '.join(ranked[0][3])}" + (
            f"; no deciding score on: {', '.join(absent)}" if absent else ""
        )
    return Verdict(
        name,
        claim,
        verdict,
        "; ".join([detail, *notes]),
        [{"run_id": run.run_id, "ratio": ratio, "stderr": se, "tasks": tasks} for run, ratio, se, tasks in ranked],
    )


def domain_matching(primary: list[Row], covered: dict[str, list[str]], against: str) -> list[Verdict]:
    out = []
    for domain in ("finance", "math", "general"):
        claim = f"a trained small model reaches >= {DOMAIN_MATCH:.0%} of {against} on {DOMAINS[domain].lower()} tasks"
        rows = [
            r
            for r in primary
            if r.run.trained and r.ratio is not None and r.task_domain == domain and domain in r.run.train_domains
        ]
        tasks = ", ".join(covered.get(domain, [])) or f"(no {domain} task has a {against} number)"
        missing = f"missing: a trained run on {domain} data evaluated on {tasks}; e.g. {EXAMPLE[domain]}"
        out.append(
            _ratio_verdict(f"Domain matching ({domain})", claim, rows, DOMAIN_MATCH, missing, covered.get(domain, []))
        )
    return out


def transfer(primary: list[Row], against: str) -> Verdict:
    claim = f"cross-domain performance >= {TRANSFER:.0%} of {against}"
    rows = [
        r
        for r in primary
        if r.run.trained
        and r.ratio is not None
        and r.task_domain
        and r.run.train_domains
        and r.task_domain not in r.run.train_domains
    ]
    return _ratio_verdict(
        "Transfer",
        claim,
        rows,
        TRANSFER,
        f"missing: a trained run evaluated on tasks of another domain that have a {against} number "
        "(add --transfer to `dlm run`)",
    )


def training_time(runs: list[Run]) -> Verdict:
    claim = (
        "every training run takes < 2 hours (all stages of a sequential run, all processes of a resumed one; "
        "scoring learning-curve points during training is not counted)"
    )
    by_id = {r.run_id: r.record for r in runs}
    timed = [(r, study_time(r.record, by_id)) for r in runs if r.trained]
    timed = [(r, t) for r, t in timed if t is not None]
    if not timed:
        return Verdict("Efficiency", claim, "not enough runs", "missing: a training run with a recorded wall time")
    slow = [(r, t) for r, t in timed if t >= MAX_TRAIN_SECONDS]
    longest = max(timed, key=lambda rt: rt[1])
    record = longest[0].record
    device = (
        (record.train.device if record.train else None)
        or (record.provenance.device if record.provenance else None)
        or "?"
    )
    detail = f"{len(timed)} run(s); longest {longest[1] / 60:.1f} min ({longest[0].run_id}, {device})"
    if slow:
        detail += "; over 2 h: " + ", ".join(r.run_id for r, _ in slow)
    return Verdict(
        "Efficiency",
        claim,
        "not met" if slow else "met",
        detail,
        [{"run_id": r.run_id, "wall_time_s": t} for r, t in timed],
    )


def study_time(record: RunRecord, by_id: dict[str, RunRecord], depth: int = 0) -> float | None:
    """Training time of a run plus that of the runs it starts from (pretrain -> SFT counts both stages); time
    spent scoring learning-curve points is not training."""
    own = train_seconds(record)
    if own is None:
        return None
    origin = origin_id(record)
    if origin in by_id and depth < 20:
        upstream = study_time(by_id[origin], by_id, depth + 1)
        return own + (upstream or 0.0)
    return own


# --- hypotheses ---------------------------------------------------------------------------------------------
def _key(row: Row) -> tuple:
    s = row.score
    return (row.run.base_model, s.task, s.metric, s.filter, s.num_fewshot)


def sft_setup(run: Run) -> str:
    """What an H2 control must share with the sequential run's SFT stage: every training setting (data, steps,
    learning rate, batch, length, LoRA, seed, ...) except where it starts from, the one thing H2 tests."""
    config = run.record.train.config if run.record.train else None
    if config is None:
        return ""
    setup = {k: v for k, v in asdict(config).items() if k not in (*NOT_SETUP, "model", "seed")}
    return json.dumps({**setup, "seed": config.seed}, sort_keys=True, default=str)


def pairs(
    treated: list[Row], control: list[Row], outcomes: Outcomes | None = None, same_setup=None
) -> tuple[list[tuple[Row, Row]], list[str]]:
    """(treated, control) pairs that may be compared (results/paired.py `mismatch`), the newest qualifying control
    for each treated score; and one reason for each treated score left unpaired although a control exists."""
    outcomes = outcomes or Outcomes(None)
    by_key: dict[tuple, list[Row]] = {}
    for row in control:  # records are oldest first
        by_key.setdefault(_key(row), []).append(row)
    found, unpaired = [], []
    for row in treated:
        candidates = by_key.get(_key(row), [])
        reasons = []
        for candidate in reversed(candidates):
            why = mismatch(row, candidate, outcomes)
            if why is None and same_setup is not None and same_setup(row.run) != same_setup(candidate.run):
                why = "different SFT data, steps, LoRA setting or seed"
            if why is None:
                found.append((row, candidate))
                break
            reasons.append(f"{candidate.run.run_id}: {why}")
        else:
            if candidates:
                unpaired.append(
                    f"{row.run.run_id} {row.score.task} {row.score.metric} not paired ({'; '.join(reasons)})"
                )
    return found, unpaired


def _missing(treated: list[Row], what: str) -> str:
    need: dict[str, set[str]] = {}
    for row in treated:
        need.setdefault(row.run.base_model, set()).add(row.score.task)
    return "; ".join(f"{what} of {model} on {', '.join(sorted(tasks))}" for model, tasks in sorted(need.items()))


def _evidence(found: list[tuple[Row, Row]]) -> list[dict]:
    return [
        {
            "task": a.score.task,
            "metric": a.score.metric,
            "model": a.run.base_model,
            "treated_run": a.run.run_id,
            "treated": a.score.value,
            "control_run": b.run.run_id,
            "control": b.score.value,
            "n": a.score.n,
        }
        for a, b in found
    ]


def higher_better(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.score.higher_is_better]


def full_test_set(rows: list[Row]) -> list[Row]:
    """Hypotheses are decided on full test sets: a --limit run is a subset and decides nothing."""
    return [r for r in rows if r.run.record.protocol is None or r.run.record.protocol.limit is None]


def h1(units: list[Row], outcomes: Outcomes | None = None) -> Verdict:
    claim = f"continued pretraining on finance/math data beats zero-shot by >= {H1_GAIN:.0%} (relative)"
    treated = [
        r
        for r in higher_better(units)
        if r.run.approach == "pretrain"
        and r.task_domain in ("finance", "math")
        and r.task_domain in r.run.train_domains
    ]
    control = [r for r in units if r.run.approach == "zero-shot"]
    return _comparison(
        "H1",
        claim,
        treated,
        control,
        H1_GAIN,
        "a zero-shot run",
        outcomes,
        "missing: a continued-pretraining run on finance or math data evaluated on its domain's "
        f"tasks, e.g. `{EXAMPLE['finance']}`",
    )


def h3(units: list[Row], outcomes: Outcomes | None = None) -> Verdict:
    claim = f"domain pretraining improves out-of-domain tasks by >= {H3_GAIN:.0%} (relative) over zero-shot"
    treated = [
        r
        for r in higher_better(units)
        if r.run.approach == "pretrain"
        and r.task_domain
        and r.run.train_domains
        and r.task_domain not in r.run.train_domains
    ]
    control = [r for r in units if r.run.approach == "zero-shot"]
    return _comparison(
        "H3",
        claim,
        treated,
        control,
        H3_GAIN,
        "a zero-shot run",
        outcomes,
        "missing: a continued-pretraining run evaluated on tasks outside its training domain, e.g. "
        f"`{EXAMPLE['finance']} --transfer`",
    )


def h2(units: list[Row], outcomes: Outcomes | None = None) -> Verdict:
    claim = "pretrain -> SFT (sequential) beats direct SFT (same data, steps, LoRA setting, seed) on the same tasks"
    treated = [r for r in higher_better(units) if r.run.approach == "sequential"]
    control = [r for r in units if r.run.approach == "sft"]
    return _comparison(
        "H2",
        claim,
        treated,
        control,
        None,
        "a direct SFT run with the same SFT setup",
        outcomes,
        "missing: a sequential run (pretrain, then `dlm run --model <pretrain checkpoint> --mode sft "
        "...`) and a direct SFT run of the same base model",
        same_setup=sft_setup,
    )


def _comparison(name, claim, treated, control, threshold, what, outcomes, no_treated, same_setup=None) -> Verdict:
    if not treated:
        return Verdict(name, claim, "not enough runs", no_treated)
    subsets = [r for r in treated if r not in full_test_set(treated)]
    found, unpaired = pairs(full_test_set(treated), full_test_set(control), outcomes, same_setup)
    notes = ([f"{len(subsets)} --limit (subset) score(s) shown but not deciding"] if subsets else []) + unpaired
    if not found:
        detail = "missing: " + _missing(full_test_set(treated) or treated, f"a full-test-set score of {what}")
        return Verdict(name, claim, "not enough runs", "; ".join([detail, *notes]))
    diff = difference(found, outcomes or Outcomes(None))
    rule = f" (threshold {threshold:.0%} relative)" if threshold is not None else ""
    detail = diff.describe() + rule + "".join(f"; {n}" for n in notes)
    return Verdict(name, claim, decide(diff, threshold), detail, _evidence(found), diff.to_dict())


def covered_tasks(table, against_keys: list[str]) -> dict[str, list[str]]:
    """{domain: our tasks that have a published number of one of `against_keys`}."""
    out: dict[str, set[str]] = {}
    for b in table.entries:
        if b.model in against_keys:
            out.setdefault(table.task_domain(b.task) or "?", set()).add(b.task)
    return {d: sorted(t) for d, t in out.items()}


def all_verdicts(
    runs: list[Run],
    primary: list[Row],
    units: list[Row],
    table,
    against_keys: list[str],
    outcomes: Outcomes | None = None,
) -> dict:
    against = ",".join(against_keys)
    covered = covered_tasks(table, against_keys)
    return {
        "criteria": [*domain_matching(units, covered, against), transfer(units, against), training_time(runs)],
        "hypotheses": [h1(units, outcomes), h2(units, outcomes), h3(units, outcomes)],
    }
