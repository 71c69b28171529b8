"""From stored run records to comparable rows: every score beside its matched published number, the study
plan's approach x domain matrix, efficiency, and the ablation series. Reads records only; never recomputes
a score.

Definitions the report relies on:
- a run's *base model* is the model its training started from, followed back through `starts_from` for
  sequential runs, so "gpt2 pretrained then fine-tuned" pairs with "gpt2 zero-shot";
- a run's *training domains* come from its `domain` (corpus -> general; "mixed" -> the domains of its datasets);
- the matrix cell (approach, domain) is the mean of value / published value over the runs of that approach and
  the tasks of that domain that have a published number; "cross-domain" uses tasks whose domain is not one of
  the run's training domains (undefined for zero-shot runs, which have no training data).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from dlm.data.table import lookup_domain
from dlm.harness_tasks.catalog import BENCHMARK_GROUPS
from dlm.results.baselines import (
    Baseline,
    BaselineTable,
    filed_under,
    match,
    our_scoring,
    protocol_differs,
)
from dlm.results.console import contamination_flags
from dlm.results.labels import APPROACH_LABELS, SEP, data_label
from dlm.results.stats import benjamini_hochberg
from dlm.store.records import RunRecord, Score, StartsFrom

APPROACHES = {
    "zero-shot": "Zero-shot baseline",
    "pretrain": "Continued pretraining",
    "sft": "Direct fine-tuning",
    "sequential": "Sequential training",
    "multitask": "Multi-task training",
}
DOMAINS = {"finance": "Financial", "math": "Mathematical", "general": "General", "cross": "Cross-domain"}
TRAIN_DOMAIN_ALIASES = {"corpus": "general", "financial": "finance", "mathematical": "math"}
# lm-eval reports GSM8K under two answer filters; the matrix and the hypotheses read the stricter one.
FILTER_PREFERENCE = ("strict-match", "none")
Z95 = 1.959964
TRAINED_APPROACHES = ("pretrain", "sft", "sequential", "multitask")
TINY_MODEL = "tiny-gpt2"
TINY_NOTE = (
    "tiny-gpt2 runs demonstrate the pipeline only: a 2-layer toy model on miniature sample data says "
    "nothing about the research question."
)


@dataclass
class Run:
    run_id: str
    approach: str
    base_model: str
    train_domains: frozenset[str]
    record: RunRecord

    @property
    def trained(self) -> bool:  # "unknown" (a local model dlm did not train) is neither trained nor a control
        return self.approach in TRAINED_APPROACHES

    @property
    def tiny(self) -> bool:
        return self.base_model == TINY_MODEL


@dataclass
class Row:
    """One score of one run, with the published number it is compared against."""

    run: Run
    score: Score
    task_domain: str | None
    baseline: Baseline | None
    ratio: float | None  # value / published value
    differs: list[str] = field(default_factory=list)  # why the comparison is not like-for-like
    contamination: str | None = None  # overlap of this run's training data with the task, when above threshold
    other_protocol: Score | None = None  # the same run, task and metric under the other scoring (twin <-> MC)

    @property
    def like_for_like(self) -> bool:
        return self.baseline is not None and our_scoring(self.score) == self.baseline.scoring

    def to_dict(self) -> dict:
        b = self.baseline
        other = self.other_protocol
        return {
            "run_id": self.run.run_id,
            "model": self.run.base_model,
            "approach": self.run.approach,
            "train_domains": sorted(self.run.train_domains),
            "task": self.score.task,
            "task_domain": self.task_domain,
            "metric": self.score.metric,
            "filter": self.score.filter,
            "value": self.score.value,
            "stderr": self.score.stderr,
            "n": self.score.n,
            "shots": self.score.num_fewshot,
            "is_group": self.score.is_group,
            "baseline_model": b.model if b else None,
            "baseline_value": b.value if b else None,
            "baseline_shots": b.shots if b else None,
            "baseline_source": b.source if b else None,
            "baseline_second_hand": b.second_hand if b else None,
            "baseline_measured": b.measured if b else None,
            "baseline_n": b.n if b else None,
            "baseline_stderr": b.stderr if b else None,
            "ratio": self.ratio,
            "protocol_differs": self.differs,
            "contamination": self.contamination,
            "scoring": our_scoring(self.score),
            "protocol": self.score.protocol,
            "other_protocol": None
            if other is None
            else {
                "task": other.task,
                "scoring": our_scoring(other),
                "value": other.value,
                "stderr": other.stderr,
                "n": other.n,
            },
        }


# --- runs ---------------------------------------------------------------------------------------------------
def short_model(name: str | None) -> str:
    """'openai-community/gpt2' and 'gpt2' are the same base model; so are 'Qwen/Qwen2-0.5B' and 'qwen2-0.5b'."""
    if not name:
        return "?"
    return str(name).rstrip("/").split("/")[-1].lower()


def origin_id(record: RunRecord) -> str | None:
    """The run whose checkpoint this run started from (cycle records: starts_from; train records: previous_run)."""
    if record.starts_from and record.starts_from.run_id:
        return record.starts_from.run_id
    return record.model.previous_run.run_id if record.model.previous_run else None


def base_model(record: RunRecord, by_id: dict[str, RunRecord], _depth: int = 0) -> str:
    lineage = record.evaluated.lineage if record.evaluated else None
    if lineage and lineage.base_model:  # an evaluation of a dlm checkpoint or adapter: the base its lineage names
        return short_model(lineage.base_model)
    origin = origin_id(record)
    if origin in by_id and _depth < 20:  # sequential: the pretrain run's own base
        return base_model(by_id[origin], by_id, _depth + 1)
    config = record.train.config if record.train else None
    return short_model((config.model if config else None) or record.model.name or record.model.base_model)


def train_domains(record: RunRecord) -> frozenset[str]:
    if approach_of(record) == "zero-shot":
        return frozenset()
    if not record.domain or record.domain == "mixed":  # bare `dlm train` records name only their datasets
        return frozenset(TRAIN_DOMAIN_ALIASES.get(d, d) for d in _dataset_domains(record))
    return frozenset(TRAIN_DOMAIN_ALIASES.get(d, d) for d in str(record.domain).split("+"))


def _dataset_domains(record: RunRecord) -> list[str]:
    """Domains of a mixture's datasets, from the dataset table (the record stores only the ids); an id no longer in
    the table, in an old record, has none."""
    config = record.train.config if record.train else None
    if config is None or not config.has_data():
        return []
    return [d for d in (lookup_domain(part.dataset) for part in config.data.parts) if d]


def approach_of(record: RunRecord) -> str:
    """Cycle records carry `approach`; a bare `dlm train` record only its training mode."""
    if record.approach:
        return record.approach
    mode = record.train.mode or (record.train.config.mode if record.train.config else None) if record.train else None
    return mode if mode in APPROACHES else "zero-shot"


def make_runs(records: list[RunRecord]) -> list[Run]:
    by_id = {r.run_id: r for r in records}
    by_output = {str(r.train.output_dir).rstrip("/"): r for r in records if r.train and r.train.output_dir}
    runs = []
    for r in records:
        # `dlm eval --model <checkpoint>` records know only the path: they inherit the training run's identity
        origin = by_output.get(str(r.model.name or "").rstrip("/"))
        if origin is not None and not r.train and not r.approach and not origin_id(r):
            r = replace(
                r, approach=approach_of(origin), domain=origin.domain, starts_from=StartsFrom(run_id=origin.run_id)
            )
        runs.append(
            Run(
                run_id=r.run_id,
                approach=approach_of(r),
                base_model=base_model(r, by_id),
                train_domains=train_domains(r),
                record=r,
            )
        )
    return runs


# --- rows ---------------------------------------------------------------------------------------------------
def score_rows(runs: list[Run], against: str | list[str], table: BaselineTable) -> list[Row]:
    rows = []
    for run in runs:
        flags = contamination_flags(run.record.train.contamination if run.record.train else [])
        limit = run.record.protocol.limit if run.record.protocol else None
        for score in run.record.scores:
            baseline = match(
                score.task, score.metric, against, shots=score.num_fewshot, table=table, scoring=our_scoring(score)
            )
            ratio = None
            if baseline is not None and baseline.value > 0 and score.value is not None:
                ratio = score.value / baseline.value
            differs = protocol_differs(score, baseline, limit=limit) if baseline else []
            overlap = flags.get(score.task, flags.get("*"))
            rows.append(
                Row(
                    run=run,
                    score=score,
                    task_domain=table.task_domain(score.task),
                    baseline=baseline,
                    ratio=ratio,
                    differs=differs,
                    contamination=overlap,
                )
            )
    _pair_protocols(rows)
    return rows


def _protocol_key(row: Row) -> tuple:
    return (row.run.run_id, filed_under(row.score.task), row.score.metric, row.score.filter)


def _pair_protocols(rows: list[Row]) -> None:
    """A run scored on a task and on its generative twin: each row names the other's score (shown beside it)."""
    by_key: dict[tuple, list[Row]] = {}
    for row in rows:
        by_key.setdefault(_protocol_key(row), []).append(row)
    for group in by_key.values():
        if len(group) == 2 and our_scoring(group[0].score) != our_scoring(group[1].score):
            group[0].other_protocol, group[1].other_protocol = group[1].score, group[0].score


def one_protocol_per_task(rows: list[Row]) -> list[Row]:
    """Where a run has a task under both scorings, the row that compares like-for-like with its published number
    counts (the twin beside a generative GPT-4 number), else the log-likelihood one; the other is only shown beside
    it. So no task counts twice in a domain score, and no ratio mixes protocols when a like-for-like one exists."""
    by_score = {id(r.score): r for r in rows}
    kept = []
    for row in rows:
        other = by_score.get(id(row.other_protocol)) if row.other_protocol is not None else None
        if other is None:
            kept.append(row)
            continue
        mine, theirs = row.like_for_like, other.like_for_like
        if (mine and not theirs) or (mine == theirs and our_scoring(row.score) == "loglikelihood"):
            kept.append(row)
    return kept


def primary_rows(rows: list[Row], table: BaselineTable) -> list[Row]:
    """One row per (run, task): the task's primary metric (baselines.yaml `tasks`), stricter filter first."""
    by_key: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        by_key.setdefault((row.run.run_id, row.score.task), []).append(row)
    chosen = []
    for (_, task), group in by_key.items():
        wanted = table.primary_metric(task)

        def rank(row: Row, wanted=wanted) -> tuple:
            filt = row.score.filter or "none"
            return (
                row.score.metric != wanted,
                row.baseline is None,
                FILTER_PREFERENCE.index(filt) if filt in FILTER_PREFERENCE else len(FILTER_PREFERENCE),
            )

        chosen.append(min(group, key=rank))
    return chosen


def comparison_units(rows: list[Row], both_protocols: bool = False) -> list[Row]:
    """Rows for run-vs-run comparisons and domain scores: every task counts once. A benchmark group's row (MMLU:
    57 subjects must not outvote eight other tasks) stands for its subtasks; the row of any other group (dlm_finance,
    dlm_glue, ...) is dropped for its tasks', so a domain's score is the mean of its tasks with equal weights, not
    lm-eval's size-weighted group number. Membership comes from lm-eval's `group_subtasks` kept in the record."""

    hidden: dict[str, set[str]] = {}  # run id -> rows replaced by others
    for run_id, record in {r.run.run_id: r.run.record for r in rows}.items():
        raw = record.eval.raw if record.eval and isinstance(record.eval.raw, dict) else {}
        present = {r.score.task for r in rows if r.run.run_id == run_id}
        groups = raw.get("group_subtasks") if isinstance(raw.get("group_subtasks"), dict) else {}
        hidden[run_id] = {
            m for group, subs in groups.items() if group in present and group in BENCHMARK_GROUPS for m in subs
        }
        hidden[run_id] |= {group for group in groups if group in present and group not in BENCHMARK_GROUPS}
    kept = [r for r in rows if r.score.task not in hidden[r.run.run_id] and r.score.value is not None]
    # comparisons with the large model: one protocol per task; run-vs-run comparisons choose theirs per pair
    return kept if both_protocols else one_protocol_per_task(kept)


# --- the approach x domain matrix ------------------------------------------------------------------------------
@dataclass
class Cell:
    ratios: list[float] = field(default_factory=list)
    runs: set[str] = field(default_factory=set)
    variances: list[float | None] = field(default_factory=list)  # of each ratio (see `ratio_variance`)
    threshold: float = 0.0  # what the cell is tested against: 80% (a domain column), 60% (cross-domain)
    q: float | None = None  # Benjamini-Hochberg q-value of "the cell's mean ratio is at or above its threshold"

    @property
    def mean(self) -> float | None:
        return sum(self.ratios) / len(self.ratios) if self.ratios else None

    @property
    def se(self) -> float | None:
        if not self.variances or None in self.variances:
            return None
        return math.sqrt(sum(self.variances)) / len(self.variances)

    @property
    def ci95(self) -> list[float] | None:
        se = self.se
        return None if se is None else [self.mean - Z95 * se, self.mean + Z95 * se]

    @property
    def p(self) -> float | None:
        """One-sided p of "mean ratio at or above the threshold" (normal approximation)."""
        se = self.se
        if se is None or se == 0:
            return None
        return 0.5 * math.erfc((self.mean - self.threshold) / se / math.sqrt(2))


def ratio_variance(row: Row) -> float | None:
    """Variance of ours / theirs for one row, both sides' noise: our stderr, and the published number's reported
    stderr or binomial noise at its test-set size (none when neither is known: the number is taken as exact)."""
    b = row.baseline
    if row.score.stderr is None or b is None or not b.value:
        return None
    theirs = b.stderr if b.stderr is not None else (math.sqrt(b.value * (1 - b.value) / b.n) if b.n else 0.0)
    return (row.score.stderr / b.value) ** 2 + (row.score.value * theirs / b.value**2) ** 2


def columns_of(row: Row) -> list[str]:
    """The matrix columns a row counts in (see the module docstring)."""
    if row.task_domain is None:
        return []
    if not row.run.trained:
        return [row.task_domain] if row.task_domain in DOMAINS else []
    if row.task_domain in row.run.train_domains:
        return [row.task_domain] if row.task_domain in DOMAINS else []
    return ["cross"] if row.run.train_domains else []


def approach_matrix(rows: list[Row], thresholds: dict[str, float]) -> dict[str, dict[str, dict[str, Cell]]]:
    """{base model: {approach: {domain column: Cell}}} over rows that have a published number; each cell with its
    interval (normal approximation: the scores' stderrs and the published numbers' noise) and the Benjamini-Hochberg
    q-value, over every cell of the matrix, of "at or above its column's threshold" (`thresholds`)."""
    matrix: dict[str, dict[str, dict[str, Cell]]] = {}
    for row in rows:
        if row.ratio is None:
            continue
        for column in columns_of(row):
            cell = (
                matrix.setdefault(row.run.base_model, {})
                .setdefault(row.run.approach, {})
                .setdefault(column, Cell(threshold=thresholds.get(column, 0.0)))
            )
            cell.ratios.append(row.ratio)
            cell.variances.append(ratio_variance(row))
            cell.runs.add(row.run.run_id)
    cells = [cell for approaches in matrix.values() for cols in approaches.values() for cell in cols.values()]
    for cell, q in zip(cells, benjamini_hochberg([cell.p for cell in cells])):
        cell.q = q
    return matrix


# --- efficiency and ablations --------------------------------------------------------------------------------
def efficiency(runs: list[Run], primary: list[Row]) -> list[dict]:
    """Per trained run: cost, size, mean primary score and that score per million parameters."""
    out = []
    for run in runs:
        train = run.record.train
        if not run.trained or train is None:
            continue
        values = [r.score.value for r in comparison_units(primary) if r.run is run]
        mean = sum(values) / len(values) if values else None
        total = train.total_params
        estimate = train.time_estimate if isinstance(train.time_estimate, dict) else {}
        out.append(
            {
                "run_id": run.run_id,
                "model": run.base_model,
                "approach": run.approach,
                "wall_time_s": train_seconds(run.record),
                "predicted_s": estimate.get("calibrated_s", estimate.get("predicted_s")),
                "peak_memory_mb": train.peak_memory_mb,
                "trainable_params": train.trainable_params,
                "total_params": total,
                "mean_score": mean,
                "tasks": len(values),
                "score_per_m_params": mean / (total / 1e6) if mean is not None and total else None,
            }
        )
    return out


def train_seconds(record: RunRecord) -> float | None:
    """Training time alone: the wall time of training minus the time spent scoring curve points (older records
    without a separate training time)."""
    train = record.train
    if train is None:
        return None
    if train.train_time_s is not None:
        return train.train_time_s
    if train.wall_time_s is None:
        return None
    return max(train.wall_time_s - (train.curve_eval_s or 0.0), 0.0)


def _data_key(run: Run) -> str:
    config = run.record.train.config if run.record.train else None
    if config is not None and config.has_data():
        return "+".join(p.label() for p in config.data.parts)
    return str(run.record.domain)


def ablation_series(primary: list[Row]) -> dict[str, dict[str, list[tuple[float, float, float | None]]]]:
    """{"data_fraction" | "model_size": {series label: [(x, score, stderr)...]}}, only where x takes 2+ values.
    The stderr (None where the record has none) gives each point its interval in the plots."""
    fraction: dict[str, list] = {}
    size: dict[str, list] = {}
    short: dict[str, str] = {}
    for row in primary:
        run = row.run
        train = run.record.train
        if not run.trained or train is None or row.score.value is None:
            continue
        share = float(train.config.data_fraction) if train.config else 1.0
        approach = APPROACH_LABELS.get(run.approach, run.approach)
        point = (row.score.value, row.score.stderr)
        # series are keyed by the full data key; legends show the short data label (results/labels.py) where no
        # two series share one, since full dataset ids made legends wider than the figure
        scored = f"→ {row.score.task} ({row.score.metric})"
        full = f"{approach}{SEP}{_data_key(run)} {scored}"
        brief = f"{approach}{SEP}{data_label(run.record) or _data_key(run)} {scored}"
        key = f"{run.base_model}: {full}"
        short[key] = f"{run.base_model}: {brief}"
        fraction.setdefault(key, []).append((share, *point))
        if train.total_params:  # only runs on the same share of the same data line up by size
            key = f"{full}, data {share:g}"
            short[key] = f"{brief}, data {share:g}"
            size.setdefault(key, []).append((float(train.total_params), *point))
    out = {}
    for kind, series in (("data_fraction", fraction), ("model_size", size)):
        series = {k: sorted(v, key=lambda p: p[:2]) for k, v in series.items() if len({p[0] for p in v}) > 1}
        unique = len({short[k] for k in series}) == len(series)
        out[kind] = {short[k] if unique else k: v for k, v in series.items()}
    return out


# --- learning curves and the steps budget ----------------------------------------------------------------------
def learning_curves(runs: list[Run], table: BaselineTable) -> dict[str, dict[str, list[list]]]:
    """{task: {run id: [[tokens, value, stderr], ...]}} from `train.curve` (--eval_steps) and `eval.curve`
    (--checkpoints), the task's primary metric only, groups left out."""
    out: dict[str, dict[str, list[list]]] = {}
    for run in runs:
        points = (run.record.train.curve if run.record.train else []) + (
            run.record.eval.curve if run.record.eval else []
        )
        for p in points:
            if p.is_group or p.metric != (table.primary_metric(p.task) or "acc"):
                continue
            out.setdefault(p.task, {}).setdefault(run.run_id, []).append([p.tokens, p.value, p.stderr])
    return {task: {rid: sorted(series) for rid, series in by_run.items()} for task, by_run in out.items()}


def steps_budget(units: list[Row], by_id: dict[str, RunRecord]) -> list[dict]:
    """Runs that split one budget of optimizer steps between pretraining (k) and SFT (total - k): sequential runs
    (k = the pretraining run's steps) beside direct SFT runs (k = 0) of the same base model, SFT data and total.
    Only budgets with two or more splits are kept."""
    cells: dict[tuple, list[dict]] = {}
    for row in units:
        run = row.run
        if run.approach not in ("sft", "sequential"):
            continue
        config = run.record.train.config if run.record.train else None
        sft_steps = config.max_steps if config else None
        origin = by_id.get(origin_id(run.record) or "")
        origin_config = origin.train.config if origin is not None and origin.train else None
        k = 0 if run.approach == "sft" else (origin_config.max_steps if origin_config else None)
        if sft_steps is None or k is None:
            continue
        key = (run.base_model, _data_key(run), int(k) + int(sft_steps), row.score.task, row.score.metric)
        cells.setdefault(key, []).append(
            {
                "model": run.base_model,
                "sft_data": _data_key(run),
                "total_steps": int(k) + int(sft_steps),
                "pretrain_steps": int(k),
                "sft_steps": int(sft_steps),
                "task": row.score.task,
                "metric": row.score.metric,
                "value": row.score.value,
                "stderr": row.score.stderr,
                "run_id": run.run_id,
            }
        )
    rows = [r for group in cells.values() if len({c["pretrain_steps"] for c in group}) > 1 for r in group]
    return sorted(rows, key=lambda r: (r["model"], r["sft_data"], r["task"], r["total_steps"], r["pretrain_steps"]))
