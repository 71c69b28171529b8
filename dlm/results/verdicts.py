"""The study plan's success criteria and hypotheses, decided from stored records (results/matrix.py rows).

Each check returns a Verdict: met / not met, supported / not supported / inconclusive, or "not enough runs"
naming the runs that would decide it. Thresholds are the study plan's:
- domain matching: a trained small model reaches >= 80% of the large model's number on its domain;
- transfer: >= 60% on tasks outside the training domain;  - efficiency: every training run < 2 h;
- H1: continued pretraining on finance/math data beats the same model zero-shot by >= 20% (relative);
  H2: pretrain -> SFT (sequential) beats direct SFT trained with every other setting equal; H3: domain
  pretraining improves out-of-domain tasks by >= 10% (relative) over zero-shot.

How they are decided (results/evidence.py): every candidate (a training setup, its seeds pooled) gets an interval
with every source of noise: documents and seeds (two-level bootstrap), the control or the large model resampled
too (results/stats.py). A criterion or hypothesis with several candidates pays for picking the best (Holm over the
candidates); the criteria and the hypotheses are each a family, Holm-corrected. Only like-for-like scores decide a
criterion (same scoring, shots, extraction and scoring rule, data source and documents as the published number),
only full test sets and uncontaminated scores decide anything; the others are shown, with the reason. Comparisons
between our own runs are decided on the protocol where both runs are measurable (a generated answer of a run that
named no label on any document is not a measurement), and say which.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from dlm.results.baselines import our_scoring
from dlm.results.evidence import Candidate, Claim, by_setup, decide_family, gain, gain_candidate, ratio
from dlm.results.matrix import DOMAINS, Row, Run, origin_id, train_seconds
from dlm.results.paired import Outcomes
from dlm.results.pairing import first, one_protocol, pairs, sft_setup
from dlm.results.seeds import setup_key
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
PROTOCOL_NAMES = {"generative": "generated answers", "loglikelihood": "log-likelihood"}


@dataclass
class Verdict:
    name: str
    claim: str
    verdict: str
    detail: str
    evidence: list[dict] = field(default_factory=list)
    difference: dict | None = None  # hypotheses: the deciding candidate's gain (results/evidence.py Gain.to_dict)
    correction: dict | None = None  # {"method": "Holm", "value": corrected p, "family", "size", "candidates"}

    def to_dict(self) -> dict:
        return asdict(self)


def pct(x: float | None) -> str:
    if x is None:
        return "–"
    return "∞" if math.isinf(x) else f"{100 * x:.1f}%"


def _p(value: float | None) -> str:
    return "–" if value is None else "<0.001" if value < 0.001 else f"{value:.3f}"


def _decided(claim: Claim) -> str:
    """How the claim was decided, said after its interval: the corrected p and the family."""
    return (
        f"Holm-corrected p {_p(claim.p_yes_adjusted)} (at or above the threshold) / {_p(claim.p_no_adjusted)} "
        f"(below), family {claim.family} of {claim.family_size}, best of {len(claim.candidates)} candidate(s)"
    )


def _correction(claim: Claim) -> dict:
    return {
        "method": "Holm",
        "value": claim.p_yes_adjusted,
        "value_not": claim.p_no_adjusted,
        "family": f"{claim.family} ({claim.family_size} tests)",
        "size": claim.family_size,
        "candidates": len(claim.candidates),
    }


# --- which rows may decide ----------------------------------------------------------------------------------
def full_test_set(rows: list[Row]) -> list[Row]:
    """Only full test sets decide: a --limit run is a subset, a fixed document subset a curve point."""
    return [r for r in rows if r.run.record.protocol is None or r.run.record.protocol.limit is None]


def higher_better(rows: list[Row]) -> list[Row]:
    return [r for r in rows if r.score.higher_is_better]


def _deciding(rows: list[Row]) -> tuple[list[Row], list[str]]:
    """Rows that may decide a comparison with the large model: full test set, like-for-like with the published
    number, training data not overlapping the test set. The rest are named with the reason, not counted."""
    full = full_test_set(rows)
    full_ids = {id(r) for r in full}
    subsets = [r for r in rows if id(r) not in full_ids]
    differs = [r for r in full if r.differs]
    contaminated = [r for r in full if not r.differs and r.contamination]
    keep = [r for r in full if not r.differs and not r.contamination]
    notes = []
    if subsets:
        notes.append(f"{len(subsets)} --limit (subset) score(s) shown, not deciding")
    if differs:
        reasons = sorted({f"{r.score.task}: {r.differs[0]}" for r in differs})
        notes.append(
            "not like-for-like, not deciding: " + "; ".join(reasons[:4]) + (" ..." if len(reasons) > 4 else "")
        )
    if contaminated:
        notes.append(
            "training data overlaps the test set, not deciding: "
            + ", ".join(sorted({f"{r.score.task} ({r.contamination})" for r in contaminated}))
        )
    return keep, notes


def _describe_sources(rows: list[Row]) -> str:
    sources = sorted({(r.score.protocol.data_source if r.score.protocol else None) or "unrecorded" for r in rows})
    return "data: " + ", ".join(s.split(":")[0] + (f" {s.split(':')[1][:8]}" if ":" in s else "") for s in sources)


# --- success criteria -----------------------------------------------------------------------------------------------
def _ratio_claim(name: str, rows: list[Row], threshold: float, outcomes: Outcomes) -> Claim:
    candidates = []
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(setup_key(row.run) or row.run.run_id, []).append(row)
    for group in groups.values():
        interval = ratio(group, outcomes)
        if interval is None:
            continue
        runs = sorted({r.run.run_id for r in group})
        seeds = len(runs)
        detail = {
            "run_id": runs[0],
            "runs": runs,
            "ratio": interval.estimate,
            "ci95": None if interval.low is None else [interval.low, interval.high],
            "stderr": None if interval.low is None else (interval.high - interval.low) / (2 * Z95),
            "tasks": sorted({r.score.task for r in group}),
            "documents": sum(r.score.n or 0 for r in group if r.run.run_id == runs[0]),
            "seeds": seeds,
            "model": group[0].run.base_model,
            "approach": group[0].run.approach,
            "method": interval.method,
        }
        candidates.append(Candidate(runs[0], interval, threshold, "ratio", detail=detail))
    return Claim(name, candidates, words="criterion")


def _ratio_verdict(
    claim_text: str,
    claim: Claim,
    threshold: float,
    missing: str,
    notes: list[str],
    rows: list[Row],
    covered: list[str] | None = None,
) -> Verdict:
    if not claim.candidates:
        return Verdict(claim.name, claim_text, "not enough runs", "; ".join([missing, *notes]))
    ranked = sorted(claim.candidates, key=lambda c: -c.interval.estimate)
    evidence = [{**c.detail, "p": c.p_above} for c in ranked]
    shown = []
    for c in ranked[:5]:
        d = c.detail
        interval = f" [{pct(d['ci95'][0])}, {pct(d['ci95'][1])}]" if d["ci95"] else " (no interval)"
        shown.append(
            f"{d['run_id']} ({d['model']}, {d['approach']}, {d['seeds']} seed(s)) {pct(d['ratio'])}"
            f"{interval} over {len(d['tasks'])} task(s), {d['documents']} documents"
        )
    detail = "; ".join(shown) + f"; threshold {pct(threshold)}; " + _decided(claim) + f"; {_describe_sources(rows)}"
    if covered is not None:
        scored = set(ranked[0].detail["tasks"])
        absent = [t for t in covered if t not in scored]
        detail += f"; tasks: {', '.join(ranked[0].detail['tasks'])}" + (
            f"; no deciding score on: {', '.join(absent)}" if absent else ""
        )
    return Verdict(
        claim.name, claim_text, claim.verdict, "; ".join([detail, *notes]), evidence, correction=_correction(claim)
    )


def criteria(primary: list[Row], covered: dict[str, list[str]], against: str, outcomes: Outcomes) -> list[Verdict]:
    """Domain matching per domain and transfer, decided as one Holm family."""
    specs = []
    for domain in ("finance", "math", "general"):
        claim = f"a trained small model reaches >= {DOMAIN_MATCH:.0%} of {against} on {DOMAINS[domain].lower()} tasks"
        rows = [
            r
            for r in primary
            if r.run.trained and r.ratio is not None and r.task_domain == domain and domain in r.run.train_domains
        ]
        tasks = ", ".join(covered.get(domain, [])) or f"(no {domain} task has a {against} number)"
        missing = f"missing: a trained run on {domain} data evaluated on {tasks}; e.g. {EXAMPLE[domain]}"
        specs.append((f"Domain matching ({domain})", claim, rows, DOMAIN_MATCH, missing, covered.get(domain, [])))
    rows = [
        r
        for r in primary
        if r.run.trained
        and r.ratio is not None
        and r.task_domain
        and r.run.train_domains
        and r.task_domain not in r.run.train_domains
    ]
    specs.append(
        (
            "Transfer",
            f"cross-domain performance >= {TRANSFER:.0%} of {against}",
            rows,
            TRANSFER,
            f"missing: a trained run evaluated on tasks of another domain that have a {against} number "
            "(add --transfer to `dlm run`)",
            None,
        )
    )
    claims, decided = [], []
    for name, text, rows, threshold, missing, cover in specs:
        keep, notes = _deciding(rows)
        claim = _ratio_claim(name, keep, threshold, outcomes)
        claims.append(claim)
        decided.append((text, claim, threshold, missing, notes, keep, cover))
    decide_family(claims, "criteria")
    return [
        _ratio_verdict(text, claim, threshold, missing, notes, keep, cover)
        for text, claim, threshold, missing, notes, keep, cover in decided
    ]


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


# --- hypotheses --------------------------------------------------------------------------------------------------
def _hypothesis(
    name, text, treated, control, threshold, relative, what, outcomes, no_treated, same_setup=None
) -> tuple[Claim | None, Verdict | None, dict]:
    """(claim, verdict when it cannot be tested, context for its verdict)."""
    if not treated:
        return None, Verdict(name, text, "not enough runs", no_treated), {}
    deciding = [r for r in full_test_set(treated) if not r.contamination]
    notes = []
    if len(deciding) < len(treated):
        notes.append(f"{len(treated) - len(deciding)} --limit (subset) or contaminated score(s) shown, not deciding")
    found, unpaired = pairs(deciding, full_test_set(control), outcomes, same_setup)
    found, chosen = one_protocol(found)
    notes += ([first(unpaired, "scores not paired")] if unpaired else []) + chosen
    if not found:
        detail = "missing: " + _missing(deciding or treated, f"a full-test-set score of {what}")
        return None, Verdict(name, text, "not enough runs", "; ".join([detail, *notes])), {}
    candidates, gains = [], []
    for i, (_setup, setup_pairs) in enumerate(sorted(by_setup(found).items())):
        g = gain(setup_pairs, outcomes, seed=1234 + 101 * i)
        gains.append(g)
        candidates.append(gain_candidate(setup_pairs[0][0].run.run_id, g, threshold, relative))
    claim = Claim(name, candidates)
    return (
        claim,
        None,
        {"text": text, "notes": notes, "found": found, "gains": gains, "threshold": threshold, "relative": relative},
    )


def _hypothesis_verdict(claim: Claim, ctx: dict) -> Verdict:
    best = claim.best
    g = ctx["gains"][claim.candidates.index(best)]
    protocols = sorted({PROTOCOL_NAMES.get(our_scoring(a.score), str(our_scoring(a.score))) for a, _ in g.pairs})
    rule = ""
    if ctx["threshold"] is not None:
        rule = f"threshold {ctx['threshold']:.0%} {'relative' if ctx['relative'] else 'absolute'}"
    detail = "; ".join(
        filter(
            None,
            [
                g.describe(),
                f"decided on {best.on}" + (f" ({best.reason})" if best.reason else "") + (f", {rule}" if rule else ""),
                _decided(claim),
                f"protocol: {', '.join(protocols)}",
                _describe_sources([a for a, _ in g.pairs]),
                *ctx["notes"],
            ],
        )
    )
    return Verdict(
        claim.name,
        ctx["text"],
        claim.verdict,
        detail,
        _evidence(ctx["found"]),
        {**g.to_dict(), "pairs": len(g.pairs), "decided_on": best.on},
        _correction(claim),
    )


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
            "scoring": our_scoring(a.score),
        }
        for a, b in found
    ]


def hypotheses(units: list[Row], outcomes: Outcomes) -> list[Verdict]:
    """H1-H3, decided as one Holm family."""
    zero_shot = [r for r in units if r.run.approach == "zero-shot"]
    pretrained = [
        r for r in higher_better(units) if r.run.approach == "pretrain" and r.task_domain and r.run.train_domains
    ]
    specs = [
        _hypothesis(
            "H1",
            f"continued pretraining on finance/math data beats zero-shot by >= {H1_GAIN:.0%} (relative)",
            [r for r in pretrained if r.task_domain in ("finance", "math") and r.task_domain in r.run.train_domains],
            zero_shot,
            H1_GAIN,
            True,
            "a zero-shot run",
            outcomes,
            "missing: a continued-pretraining run on finance or math data evaluated on its domain's tasks, "
            f"e.g. `{EXAMPLE['finance']}`",
        ),
        _hypothesis(
            "H2",
            "pretrain -> SFT (sequential) beats direct SFT trained with every other setting equal, on the same tasks",
            [r for r in higher_better(units) if r.run.approach == "sequential"],
            [r for r in units if r.run.approach == "sft"],
            0.0,
            False,
            "a direct SFT run with the same training settings",
            outcomes,
            "missing: a sequential run (pretrain, then `dlm run --model <pretrain checkpoint> --mode sft "
            "...`) and a direct SFT run of the same base model",
            same_setup=sft_setup,
        ),
        _hypothesis(
            "H3",
            f"domain pretraining improves out-of-domain tasks by >= {H3_GAIN:.0%} (relative) over zero-shot",
            [r for r in pretrained if r.task_domain not in r.run.train_domains],
            zero_shot,
            H3_GAIN,
            True,
            "a zero-shot run",
            outcomes,
            "missing: a continued-pretraining run evaluated on tasks outside its training domain, e.g. "
            f"`{EXAMPLE['finance']} --transfer`",
        ),
    ]
    decide_family([claim for claim, _, _ in specs if claim is not None], "hypotheses")
    return [verdict if claim is None else _hypothesis_verdict(claim, ctx) for claim, verdict, ctx in specs]


def covered_tasks(table, against_keys: list[str]) -> dict[str, list[str]]:
    """{domain: our tasks that have a published number of one of `against_keys`}."""
    out: dict[str, set[str]] = {}
    for b in table.entries:
        if b.model in against_keys:
            out.setdefault(table.task_domain(b.task) or "?", set()).add(b.task)
    return {d: sorted(t) for d, t in out.items()}


def all_verdicts(
    runs: list[Run], units: list[Row], both: list[Row], table, against_keys: list[str], outcomes: Outcomes | None = None
) -> dict:
    """`units`: the primary-metric rows, every task once, one protocol per task (the one like-for-like with the
    published number where a run has both); `both`: the same with both protocols, for run-vs-run comparisons."""
    outcomes = outcomes or Outcomes(None)
    against = ",".join(against_keys)
    covered = covered_tasks(table, against_keys)
    return {
        "criteria": [*criteria(units, covered, against, outcomes), training_time(runs)],
        "hypotheses": hypotheses(both, outcomes),
    }
