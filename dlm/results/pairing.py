"""Which of our runs a verdict compares with which: treated and control scores of the same base model, task,
metric, filter and shots that results/paired.py `mismatch` allows to be paired (newest control first), one protocol
per pair of runs, and the reasons a score found no control."""

from __future__ import annotations

import json
from dataclasses import asdict

from dlm.results.baselines import filed_under, our_scoring
from dlm.results.evidence import measurable
from dlm.results.matrix import Row, Run
from dlm.results.paired import Outcomes, different_documents, mismatch
from dlm.results.seeds import NOT_SETUP


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
    setups: dict[str, str] = {}  # run id -> same_setup(run), computed once per run (it serialises the config)

    def setup_of(run) -> str:
        if run.run_id not in setups:
            setups[run.run_id] = same_setup(run)
        return setups[run.run_id]

    for row in treated:
        candidates = by_key.get(_key(row), [])
        reasons = []
        for candidate in reversed(candidates):
            # the cheap checks first: comparing the documents scored reads both runs' outcomes files
            why = mismatch(row, candidate, outcomes, documents=False)
            if why is None and same_setup is not None and setup_of(row.run) != setup_of(candidate.run):
                why = "a training setting other than the starting checkpoint differs"
            if why is None:
                why = different_documents(row, candidate, outcomes)
            if why is None:
                found.append((row, candidate))
                break
            reasons.append(f"{candidate.run.run_id}: {why}")
        else:
            if candidates:
                unpaired.append(
                    f"{row.run.run_id} {row.score.task} {row.score.metric} not paired ({first(reasons, 'candidates')})"
                )
    return found, unpaired


SHOWN = 3  # reasons named per unpaired score, and unpaired scores named per verdict; the rest are counted


def first(reasons: list[str], rest: str) -> str:
    """The first SHOWN reasons and a count of the rest (a 1,000-run study has hundreds of near misses)."""
    more = len(reasons) - SHOWN
    return "; ".join(reasons[:SHOWN]) + (f"; and {more} more {rest}" if more > 0 else "")


def one_protocol(found: list[tuple[Row, Row]]) -> tuple[list[tuple[Row, Row]], list[str]]:
    """Where a pair of runs is scored on a task under both protocols, the one both runs are measurable on decides:
    generated answers (like-for-like with the large models' numbers) unless either run named no label on every
    document, then log-likelihood. Returns the pairs kept and what was chosen where it mattered."""
    scores = {}
    for a, b in found:
        for row in (a, b):
            for s in row.run.record.scores:
                scores[(row.run.run_id, s.task, s.metric)] = s.value
    by_unit: dict[tuple, dict[str, tuple[Row, Row]]] = {}
    for a, b in found:
        unit = (a.run.run_id, b.run.run_id, filed_under(a.score.task), a.score.metric)
        by_unit.setdefault(unit, {})[our_scoring(a.score) or "?"] = (a, b)
    kept, said = [], []
    for unit, by_protocol in by_unit.items():
        gen, ll = by_protocol.get("generative"), by_protocol.get("loglikelihood")
        if gen and ll:
            usable = measurable(list(gen), scores)
            kept.append(gen if usable else ll)
            if not usable:
                said.append(f"{unit[2]}: log-likelihood (a run named no label on every generated answer)")
        else:
            kept += list(by_protocol.values())
    return kept, said
