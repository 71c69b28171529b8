"""The study plan's five research questions, answered from the records with their evidence and intervals, or
"not enough runs" naming the runs that would decide them, or "not comparable" naming why the two sides cannot be
set against each other (different training budgets, data sources or protocols).

RQ1 continued pretraining vs direct fine-tuning; RQ2 which domain gains most from specialised training; RQ3 how the
gain changes with model size; RQ4 how close the best small model per domain comes to the large model under the
same protocol (the domain-matching criteria, results/verdicts.py); RQ5 the best split of a fixed step budget
between pretraining and fine-tuning.

Gains are results/evidence.py's: paired on the same documents, seeds two-level, full test sets, no contaminated
score. A domain's or a model size's gain is the mean over all its training setups (no best-run selection); a
"best" (the domain that gains most, the best k) is decided against every other with the selection paid for.
RQ1, RQ2, RQ3 and RQ5 are one Holm family (RQ4 is decided in the criteria's family).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from dlm.results.evidence import Candidate, Claim, Gain, by_setup, decide_family, gain
from dlm.results.matrix import DOMAINS, Row
from dlm.results.paired import Outcomes
from dlm.results.pairing import one_protocol, pairs
from dlm.results.stats import Comparison, Interval, interval_from_draws, pool
from dlm.results.verdicts import EXAMPLE, full_test_set, higher_better, pct

SIZES_PLAN = "plans/phase5_ablations.yaml"
MORE_SIZES = "the same runs on a second model size, e.g. `dlm plan plans/phase3_finetune.yaml --set model=gpt2-medium`"
TRAINED = ("pretrain", "sft", "sequential", "multitask")


@dataclass
class Answer:
    name: str
    question: str
    verdict: str  # "answered" | "inconclusive" | "not enough runs" | "not comparable"
    answer: str
    runs: list[str] = field(default_factory=list)  # run ids the answer rests on
    evidence: list[dict] = field(default_factory=list)
    correction: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _in_domain(rows: list[Row], approaches: tuple[str, ...]) -> list[Row]:
    return [
        r
        for r in higher_better(rows)
        if r.run.approach in approaches
        and r.task_domain
        and r.task_domain in r.run.train_domains
        and not r.contamination
    ]


def _gains(treated: list[Row], control: list[Row], outcomes: Outcomes, seed: int) -> list[Gain]:
    """One gain per (treated setup, control setup), seeds pooled two-level."""
    found, _ = pairs(full_test_set(treated), full_test_set(control), outcomes)
    found, _ = one_protocol(found)
    groups: dict[tuple, list] = {}
    for key, group in by_setup(found).items():
        for a, b in group:
            groups.setdefault((key, b.run.base_model), []).append((a, b))
    return [gain(group, outcomes, seed=seed + 31 * i) for i, (_, group) in enumerate(sorted(groups.items()))]


def _mean_of(gains: list[Gain]) -> Comparison:
    return pool([g.comparison for g in gains])


def _interval_text(interval: Interval) -> str:
    if interval.low is None:
        return f"{interval.estimate:+.3f} (no interval)"
    return f"{interval.estimate:+.3f} [{interval.low:+.3f}, {interval.high:+.3f}]"


def _scope(gains: list[Gain]) -> str:
    """n, documents, seeds and data source of what an answer rests on."""
    runs = sorted({r for g in gains for r in g.runs})
    documents = sum(g.comparison.documents for g in gains)
    seeds = max((max(g.comparison.seeds) for g in gains), default=0)
    sources = sorted(
        {
            (a.score.protocol.data_source if a.score.protocol else None) or "unrecorded"
            for g in gains
            for a, _ in g.pairs
        }
    )
    shown = ", ".join(s.split(":")[0] for s in sources)
    return f"{len(gains)} setup(s), {len(runs)} run(s), {documents} documents, up to {seeds} seed(s), data: {shown}"


def _difference(a: Comparison, b: Comparison) -> Interval:
    """a's gain minus b's, from their independent replicates."""
    draws = a.absolute.draws - b.absolute.draws
    return interval_from_draws(a.absolute.estimate - b.absolute.estimate, draws, "difference of two gains", 0.95)


def _budgets(gains: list[Gain]) -> str | None:
    """Why the two sides of RQ1 cannot be compared: unequal training budgets (steps x batch x accumulation)."""

    def budget(row: Row):
        config = row.run.record.train.config if row.run.record.train else None
        return None if config is None else config.max_steps * config.batch_size * config.gradient_accumulation_steps

    for g in gains:
        ours, theirs = {budget(a) for a, _ in g.pairs}, {budget(b) for _, b in g.pairs}
        if ours != theirs:
            return (
                f"unequal training budgets (pretraining {'/'.join(map(str, sorted(ours, key=str)))} vs SFT "
                f"{'/'.join(map(str, sorted(theirs, key=str)))} sequences)"
            )
    return None


def rq1(units: list[Row], outcomes: Outcomes, h2: dict) -> tuple[Answer, Claim | None]:
    question = "Does continued pretraining on domain data outperform direct fine-tuning?"
    treated = _in_domain(units, ("pretrain",))
    control = [r for r in units if r.run.approach == "sft" and r.task_domain in r.run.train_domains]
    gains = _gains(treated, control, outcomes, seed=11)
    seq = f"pretrain→SFT vs SFT (H2): {h2['verdict']}"
    if not gains:
        return Answer(
            "RQ1",
            question,
            "not enough runs",
            "needs a continued-pretraining run and a direct SFT run of the same base model scored on the "
            f"same in-domain tasks (e.g. `{EXAMPLE['finance']}` beside an SFT run); {seq}",
        ), None
    why = _budgets(gains)
    if why:
        return Answer(
            "RQ1",
            question,
            "not comparable",
            f"{why}; {_scope(gains)}; {seq}",
            sorted({r for g in gains for r in g.runs}),
        ), None
    mean = _mean_of(gains)
    claim = Claim("RQ1", [Candidate("pretrain - SFT", mean.absolute, 0.0, "absolute")])
    return Answer(
        "RQ1",
        question,
        "",
        f"pretrain − SFT {_interval_text(mean.absolute)}; {_scope(gains)}; {seq}",
        sorted({r for g in gains for r in g.runs}),
        [g.to_dict() for g in gains],
    ), claim


def _domain_gains(units: list[Row], outcomes: Outcomes) -> dict[str, list[Gain]]:
    control = [r for r in units if r.run.approach == "zero-shot"]
    out = {}
    for i, domain in enumerate(("finance", "math", "general")):
        treated = [r for r in _in_domain(units, TRAINED) if r.task_domain == domain]
        gains = _gains(treated, control, outcomes, seed=100 + 1000 * i)
        if gains:
            out[domain] = gains
    return out


def rq2(units: list[Row], outcomes: Outcomes) -> tuple[Answer, Claim | None]:
    question = "Which domains benefit most from specialised training?"
    gains = _domain_gains(units, outcomes)
    by_domain = {d: _mean_of(g) for d, g in gains.items()}
    missing = [d for d in ("finance", "math", "general") if d not in by_domain]
    shown = "; ".join(
        f"{DOMAINS[d].lower()} {_interval_text(c.absolute)}"
        for d, c in sorted(by_domain.items(), key=lambda kv: -kv[1].absolute.estimate)
    )
    runs = sorted({r for g in gains.values() for gg in g for r in gg.runs})
    if len(by_domain) < 2:
        need = f"{', '.join(missing)} (e.g. `{EXAMPLE[missing[0]]}`)" if missing else ""
        return Answer(
            "RQ2",
            question,
            "not enough runs",
            (f"measured: {shown}; " if shown else "") + f"needs a trained and a zero-shot run on {need}",
            runs,
        ), None
    ranked = sorted(by_domain.items(), key=lambda kv: -kv[1].absolute.estimate)
    top, top_gain = ranked[0]
    # the top domain must beat every other: the selection is paid for by testing it against all of them
    candidates = [
        Candidate(f"{top} - {other}", _difference(top_gain, other_gain), 0.0, "absolute")
        for other, other_gain in ranked[1:]
    ]
    claim = Claim("RQ2", [_all_of(candidates)])
    scope = _scope([g for gs in gains.values() for g in gs])
    tail = f"; not measured: {', '.join(missing)}" if missing else ""
    return Answer(
        "RQ2",
        question,
        "",
        f"{DOMAINS[top].lower()} gains most? gain over zero-shot (mean over setups): {shown}{tail}; {scope}",
        runs,
        [{"domain": d, **asdict_interval(c.absolute)} for d, c in ranked],
    ), claim


def _all_of(candidates: list[Candidate]) -> Candidate:
    """One candidate that holds when every one of `candidates` does: its p_above is the largest (intersection-union),
    its interval the least favourable."""
    worst = max(candidates, key=lambda c: c.p_above if c.p_above is not None else math.inf)
    return worst


def asdict_interval(interval: Interval) -> dict:
    return {
        "estimate": interval.estimate,
        "ci95": None if interval.low is None else [interval.low, interval.high],
        "method": interval.method,
    }


def _params(row: Row) -> float | None:
    return row.run.record.train.total_params if row.run.record.train else None


def rq3(units: list[Row], outcomes: Outcomes) -> tuple[Answer, Claim | None]:
    question = "How does model size affect the benefits of domain-specific training?"
    treated = _in_domain(units, TRAINED)
    control = [r for r in units if r.run.approach == "zero-shot"]
    by_model: dict[str, tuple[Comparison, float | None, list[Gain]]] = {}
    for i, model in enumerate(sorted({r.run.base_model for r in treated})):
        rows = [r for r in treated if r.run.base_model == model]
        gains = _gains(rows, control, outcomes, seed=7000 + 100 * i)
        if gains:
            params = next((p for g in gains for a, _ in g.pairs if (p := _params(a))), None)
            by_model[model] = (_mean_of(gains), params, gains)
    order = sorted(by_model.items(), key=lambda kv: kv[1][1] or math.inf)
    shown = "; ".join(f"{m} ({_size(p)}) {_interval_text(c.absolute)}" for m, (c, p, _) in order)
    every = [g for _, (_, _, gains) in order for g in gains]
    runs = sorted({r for g in every for r in g.runs})
    if len(by_model) < 2:
        return Answer(
            "RQ3",
            question,
            "not enough runs",
            (f"gain over zero-shot measured for {shown}; " if shown else "") + f"needs {MORE_SIZES}",
            runs,
        ), None
    (small, (a, _, _)), (large, (b, _, _)) = order[0], order[-1]
    change = _difference(b, a)
    claim = Claim("RQ3", [Candidate(f"{large} - {small}", change, 0.0, "absolute")])
    return Answer(
        "RQ3",
        question,
        "",
        f"gain by size (mean over setups): {shown}; largest − smallest {_interval_text(change)}; {_scope(every)}",
        runs,
    ), claim


def _size(params: float | None) -> str:
    return "? params" if not params else f"{params / 1e6:.1f}M" if params < 1e9 else f"{params / 1e9:.2f}B"


def rq4(criteria: list[dict], units: list[Row], against: str) -> Answer:
    """Read off the domain-matching criteria (like-for-like scores only, decided in their family)."""
    question = "Can small models achieve competitive performance with proper training?"
    parts, runs, evidence, verdicts = [], [], [], []
    for criterion in criteria:
        if not criterion["name"].startswith("Domain matching") or not criterion["evidence"]:
            continue
        domain = criterion["name"].split("(")[-1].rstrip(")")
        best = criterion["evidence"][0]
        ci = best.get("ci95")
        interval = f" [{pct(ci[0])}, {pct(ci[1])}]" if ci else " (no interval)"
        parts.append(
            f"{DOMAINS[domain].lower()} {pct(best['ratio'])}{interval} of {against} ({best['model']} "
            f"{best['approach']}, {len(best['tasks'])} task(s), {best['documents']} documents, "
            f"{best['seeds']} seed(s)): {criterion['verdict']}"
        )
        runs.append(best["run_id"])
        evidence.append({"domain": domain, **best})
        verdicts.append(criterion["verdict"] in ("met", "not met"))
    if not parts:
        others = [r for r in units if r.ratio is not None and r.differs]
        hint = (
            (
                f"; {len(others)} score(s) compare with {against} under another protocol or data ("
                + "; ".join(sorted({r.differs[0] for r in others})[:3])
                + "): score the generative twins on the published test sets"
            )
            if others
            else ""
        )
        return Answer(
            "RQ4",
            question,
            "not enough runs",
            "needs a like-for-like score (same scoring, shots, data and documents as the published number) "
            f"on a full test set{hint}",
        )
    verdict = "answered" if all(verdicts) else "inconclusive"
    return Answer(
        "RQ4",
        question,
        verdict,
        "best like-for-like run per domain (decided with the criteria, Holm over their family): " + "; ".join(parts),
        runs,
        evidence,
    )


def rq5(units: list[Row], budget: list[dict], outcomes: Outcomes) -> tuple[Answer, Claim | None]:
    question = "What is the optimal balance between pretraining and fine-tuning steps?"
    cells: dict[tuple, list[dict]] = {}
    for row in budget:
        cells.setdefault((row["model"], row["sft_data"], row["total_steps"], row["task"], row["metric"]), []).append(
            row
        )
    if not cells:
        return Answer(
            "RQ5",
            question,
            "not enough runs",
            "needs a fixed step budget split as k pretraining + "
            f"(total − k) SFT steps for 2+ values of k (the budget sweep in {SIZES_PLAN})",
        ), None
    by_id = {(r.run.run_id, r.score.task, r.score.metric): r for r in units}
    parts, runs, candidates, best_ks = [], [], [], []
    for (model, _data, total, task, metric), entries in sorted(cells.items()):
        ranked = sorted(entries, key=lambda e: -e["value"])
        best = ranked[0]
        best_ks.append(f"k = {best['pretrain_steps']} of {total}")
        best_row = by_id.get((best["run_id"], task, metric))
        versus = []
        for other in ranked[1:]:
            other_row = by_id.get((other["run_id"], task, metric))
            if best_row is None or other_row is None:
                continue
            g = gain([(best_row, other_row)], outcomes, seed=5000 + len(candidates))
            versus.append(
                Candidate(
                    f"k={best['pretrain_steps']} - k={other['pretrain_steps']}", g.comparison.absolute, 0.0, "absolute"
                )
            )
        if versus:
            worst = _all_of(versus)
            # the best k was picked after looking: its test against the others pays for the K choices
            candidates.append(_paid(worst, len(ranked)))
        parts.append(
            f"{model} {task}: best k = {best['pretrain_steps']} of {total} ({best['value']:.3f}"
            + ("" if best["stderr"] is None else f" ± {best['stderr']:.3f}")
            + f"), {len(ranked)} runs of {len({e['pretrain_steps'] for e in ranked})} splits"
        )
        runs += [e["run_id"] for e in entries]
    claim = Claim("RQ5", candidates) if candidates else None
    return Answer("RQ5", question, "" if claim else "inconclusive", _cells(parts, best_ks), sorted(set(runs))), claim


SHOWN_CELLS = 3  # (model, task) cells named in RQ5's answer; the rest are tallied by their best k


def _cells(parts: list[str], best_ks: list) -> str:
    """The first cells in words and, in a larger study, how often each k was best over all of them."""
    if len(parts) <= SHOWN_CELLS:
        return "; ".join(parts)
    tally = ", ".join(f"{best} in {n}" for best, n in Counter(best_ks).most_common())
    more = len(parts) - SHOWN_CELLS
    return (
        "; ".join(parts[:SHOWN_CELLS])
        + f"; and {more} more cells. Highest point estimate over all {len(parts)} (model, task, budget) cells: {tally}"
    )


def _paid(candidate: Candidate, choices: int) -> Candidate:
    """A candidate whose p-values carry the choice of the best of `choices` (Bonferroni)."""
    if candidate.p_above is not None:
        candidate.p_above = min(1.0, candidate.p_above * choices)
    return candidate


WORDS = {  # (supported, not supported) in each question's own words
    "RQ1": ("answered: continued pretraining alone is better", "answered: direct fine-tuning is better"),
    "RQ2": ("answered: {top} gains most", "answered: {top} does not gain most"),
    "RQ3": ("answered: the gain grows with model size", "answered: the gain shrinks with model size"),
    "RQ5": ("answered: the best split beats every other", "answered"),
}


def answer_questions(
    units: list[Row], outcomes: Outcomes, hypotheses: list[dict], criteria: list[dict], budget: list[dict], against: str
) -> list[dict]:
    h2 = next((h for h in hypotheses if h["name"] == "H2"), {"verdict": "not enough runs"})
    answers = [rq1(units, outcomes, h2), rq2(units, outcomes), rq3(units, outcomes), rq5(units, budget, outcomes)]
    claims = [claim for _, claim in answers if claim is not None]
    decide_family(claims, "research questions")
    out = []
    for answer, claim in answers:
        if claim is not None:
            yes, no = WORDS[answer.name]
            top = answer.answer.split(" gains most?")[0] if answer.name == "RQ2" else ""
            said = {"supported": yes.format(top=top), "not supported": no.format(top=top)}.get(claim.verdict)
            answer.verdict = "answered" if said else "inconclusive"
            answer.answer = (
                f"{said or 'the intervals cannot tell'}: {answer.answer}; Holm-corrected p "
                f"{_p(claim.p_yes_adjusted)} / {_p(claim.p_no_adjusted)}, family {claim.family} of "
                f"{claim.family_size}"
            )
            answer.correction = {
                "method": "Holm",
                "value": claim.p_yes_adjusted,
                "value_not": claim.p_no_adjusted,
                "family": f"{claim.family} ({claim.family_size} tests)",
                "size": claim.family_size,
            }
        out.append(answer)
    out.insert(3, rq4(criteria, units, against))
    return [a.to_dict() for a in out]


def _p(value: float | None) -> str:
    return "–" if value is None else "<0.001" if value < 0.001 else f"{value:.3f}"
