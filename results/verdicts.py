"""The study plan's success criteria and hypotheses, decided from stored records (results/matrix.py rows).

Each check returns a Verdict: met / not met, supported / not supported / inconclusive, or "not enough runs"
naming the runs that would decide it. Thresholds are the study plan's:
- domain matching: a trained small model reaches >= 80% of the large model's published number on its domain;
- transfer: >= 60% on tasks outside the training domain;  - efficiency: every training run < 2 h;
- H1: continued pretraining on finance/math data beats the same model zero-shot by >= 20% (relative, on the
  pooled mean of paired scores); H2: pretrain -> SFT (sequential) beats direct SFT on the same tasks;
- H3: domain pretraining improves out-of-domain tasks by >= 10% (relative) over the zero-shot model.
Pairs always share base model, task, metric, filter and shot count.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from results.matrix import DOMAINS, Row, Run

DOMAIN_MATCH = 0.80
TRANSFER = 0.60
MAX_TRAIN_SECONDS = 2 * 3600
H1_GAIN = 0.20
H3_GAIN = 0.10
EXAMPLE = {"finance": "dlm run --model gpt2 --dataset gbharti/finance-alpaca --mode pretrain --max_steps 2000",
           "math": "dlm run --model gpt2 --dataset openai/gsm8k --dataset_config main --mode pretrain --max_steps 800",
           "general": "dlm run --model gpt2 --dataset stanfordnlp/imdb --mode sft --max_steps 500"}


@dataclass
class Verdict:
    name: str
    claim: str
    verdict: str
    detail: str
    evidence: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"name": self.name, "claim": self.claim, "verdict": self.verdict, "detail": self.detail,
                "evidence": self.evidence}


def pct(x: float | None) -> str:
    if x is None:
        return "–"
    return "∞" if math.isinf(x) else f"{100 * x:.1f}%"


def _mean(values) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


# --- success criteria ---------------------------------------------------------------------------------------
def _best_run(rows: list[Row]) -> tuple[Run, float, int] | None:
    per_run: dict[str, list[Row]] = {}
    for row in rows:
        per_run.setdefault(row.run.run_id, []).append(row)
    scored = [(group[0].run, _mean(r.ratio for r in group), len(group)) for group in per_run.values()]
    return max(scored, key=lambda t: t[1]) if scored else None


def domain_matching(primary: list[Row], covered: dict[str, list[str]], against: str) -> list[Verdict]:
    out = []
    for domain in ("finance", "math", "general"):
        claim = f"a trained small model reaches >= {DOMAIN_MATCH:.0%} of {against} on {DOMAINS[domain].lower()} tasks"
        rows = [r for r in primary if r.run.trained and r.ratio is not None and r.task_domain == domain
                and domain in r.run.train_domains]
        best = _best_run(rows)
        if best is None:
            tasks = ", ".join(covered.get(domain, [])) or f"(no {domain} task has a {against} number)"
            out.append(Verdict(f"Domain matching ({domain})", claim, "not enough runs",
                               f"missing: a trained run on {domain} data evaluated on {tasks}; e.g. {EXAMPLE[domain]}"))
            continue
        run, ratio, n = best
        out.append(Verdict(f"Domain matching ({domain})", claim, "met" if ratio >= DOMAIN_MATCH else "not met",
                           f"best: {run.run_id} ({run.base_model}, {run.approach}) at {pct(ratio)} of {against} "
                           f"over {n} task(s)", [{"run_id": run.run_id, "ratio": ratio, "tasks": n}]))
    return out


def transfer(primary: list[Row], against: str) -> Verdict:
    claim = f"cross-domain performance >= {TRANSFER:.0%} of {against}"
    rows = [r for r in primary if r.run.trained and r.ratio is not None and r.task_domain
            and r.run.train_domains and r.task_domain not in r.run.train_domains]
    best = _best_run(rows)
    if best is None:
        return Verdict("Transfer", claim, "not enough runs",
                       f"missing: a trained run evaluated on tasks of another domain that have a {against} number "
                       "(add --transfer to `dlm run`)")
    run, ratio, n = best
    return Verdict("Transfer", claim, "met" if ratio >= TRANSFER else "not met",
                   f"best: {run.run_id} ({run.base_model}, trained on {'+'.join(sorted(run.train_domains))}) at "
                   f"{pct(ratio)} over {n} out-of-domain task(s)", [{"run_id": run.run_id, "ratio": ratio}])


def training_time(runs: list[Run]) -> Verdict:
    claim = "every training run takes < 2 hours"
    timed = [(r, (r.record.get("train") or {}).get("wall_time_s")) for r in runs if r.trained]
    timed = [(r, t) for r, t in timed if t is not None]
    if not timed:
        return Verdict("Efficiency", claim, "not enough runs", "missing: a training run with a recorded wall time")
    slow = [(r, t) for r, t in timed if t >= MAX_TRAIN_SECONDS]
    longest = max(timed, key=lambda rt: rt[1])
    record = longest[0].record
    device = (record.get("train") or {}).get("device") or (record.get("provenance") or {}).get("device") or "?"
    detail = f"{len(timed)} run(s); longest {longest[1] / 60:.1f} min ({longest[0].run_id}, {device})"
    if slow:
        detail += "; over 2 h: " + ", ".join(r.run_id for r, _ in slow)
    return Verdict("Efficiency", claim, "not met" if slow else "met", detail,
                   [{"run_id": r.run_id, "wall_time_s": t} for r, t in timed])


# --- hypotheses ---------------------------------------------------------------------------------------------
def _key(row: Row) -> tuple:
    s = row.score
    return (row.run.base_model, s.task, s.metric, s.filter, s.num_fewshot)


def pairs(treated: list[Row], control: list[Row]) -> list[tuple[Row, Row]]:
    """(treated, control) with equal base model, task, metric, filter, shots; the newest control run wins."""
    latest = {}
    for row in control:  # records are oldest first, so later rows overwrite earlier ones
        latest[_key(row)] = row
    return [(row, latest[_key(row)]) for row in treated if _key(row) in latest]


def _missing(treated: list[Row], what: str) -> str:
    need: dict[str, set[str]] = {}
    for row in treated:
        need.setdefault(row.run.base_model, set()).add(row.score.task)
    return "; ".join(f"{what} of {model} on {', '.join(sorted(tasks))}" for model, tasks in sorted(need.items()))


def _evidence(found: list[tuple[Row, Row]]) -> list[dict]:
    return [{"task": a.score.task, "metric": a.score.metric, "model": a.run.base_model, "treated_run": a.run.run_id,
             "treated": a.score.value, "control_run": b.run.run_id, "control": b.score.value} for a, b in found]


def _relative_gain(found: list[tuple[Row, Row]]) -> tuple[float, float, float]:
    treated, control = _mean(a.score.value for a, _ in found), _mean(b.score.value for _, b in found)
    if control == 0:
        return treated, control, (math.inf if treated > 0 else 0.0)
    return treated, control, (treated - control) / control


def _higher_better(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.score.higher_is_better]


def h1(units: list[Row]) -> Verdict:
    claim = f"continued pretraining on finance/math data beats zero-shot by >= {H1_GAIN:.0%} (relative)"
    treated = [r for r in _higher_better(units) if r.run.approach == "pretrain" and r.task_domain in ("finance", "math")
               and r.task_domain in r.run.train_domains]
    control = [r for r in units if r.run.approach == "zero-shot"]
    return _gain_verdict("H1", claim, treated, control, H1_GAIN,
                         "missing: a continued-pretraining run on finance or math data evaluated on its domain's "
                         f"tasks, e.g. `{EXAMPLE['finance']}`")


def h3(units: list[Row]) -> Verdict:
    claim = f"domain pretraining improves out-of-domain tasks by >= {H3_GAIN:.0%} (relative) over zero-shot"
    treated = [r for r in _higher_better(units) if r.run.approach == "pretrain" and r.task_domain
               and r.run.train_domains and r.task_domain not in r.run.train_domains]
    control = [r for r in units if r.run.approach == "zero-shot"]
    return _gain_verdict("H3", claim, treated, control, H3_GAIN,
                         "missing: a continued-pretraining run evaluated on tasks outside its training domain, e.g. "
                         f"`{EXAMPLE['finance']} --transfer`")


def _gain_verdict(name, claim, treated, control, threshold, no_treated) -> Verdict:
    if not treated:
        return Verdict(name, claim, "not enough runs", no_treated)
    found = pairs(treated, control)
    if not found:
        return Verdict(name, claim, "not enough runs", "missing: " + _missing(treated, "a zero-shot run"))
    mean_t, mean_c, gain = _relative_gain(found)
    verdict = "supported" if gain >= threshold else "not supported"
    return Verdict(name, claim, verdict, f"{len(found)} paired score(s): trained mean {mean_t:.4f} vs zero-shot "
                   f"{mean_c:.4f}, relative change {pct(gain)} (threshold {threshold:.0%})", _evidence(found))


def h2(units: list[Row]) -> Verdict:
    claim = "pretrain -> SFT (sequential) beats direct SFT on the same tasks"
    treated = [r for r in _higher_better(units) if r.run.approach == "sequential"]
    control = [r for r in units if r.run.approach == "sft"]
    if not treated:
        return Verdict("H2", claim, "not enough runs", "missing: a sequential run (pretrain, then `dlm run --model "
                       "<pretrain checkpoint> --mode sft ...`) and a direct SFT run of the same base model")
    found = pairs(treated, control)
    if not found:
        return Verdict("H2", claim, "not enough runs", "missing: " + _missing(treated, "a direct SFT run"))
    mean_t, mean_c, _ = _relative_gain(found)
    diff = mean_t - mean_c
    errors = [(a.score.stderr, b.score.stderr) for a, b in found]
    noise = None
    if all(x is not None and y is not None for x, y in errors):  # stderr of the difference of the two means
        noise = math.sqrt(sum(x * x + y * y for x, y in errors)) / len(found)
    if noise is not None and abs(diff) <= noise:
        verdict = "inconclusive"
    else:
        verdict = "supported" if diff > 0 else "not supported"
    spread = f" ± {noise:.4f}" if noise is not None else " (no stderr recorded)"
    return Verdict("H2", claim, verdict, f"{len(found)} paired score(s): sequential mean {mean_t:.4f} vs direct SFT "
                   f"{mean_c:.4f}, difference {diff:+.4f}{spread}", _evidence(found))


def covered_tasks(table, against_keys: list[str]) -> dict[str, list[str]]:
    """{domain: our tasks that have a published number of one of `against_keys`}."""
    out: dict[str, set[str]] = {}
    for b in table.entries:
        if b.model in against_keys:
            out.setdefault(table.task_domain(b.task) or "?", set()).add(b.task)
    return {d: sorted(t) for d, t in out.items()}


def all_verdicts(runs: list[Run], primary: list[Row], units: list[Row], table, against_keys: list[str]) -> dict:
    against = ",".join(against_keys)
    covered = covered_tasks(table, against_keys)
    return {"criteria": [*domain_matching(primary, covered, against), transfer(primary, against),
                         training_time(runs)],
            "hypotheses": [h1(units), h2(units), h3(units)]}
