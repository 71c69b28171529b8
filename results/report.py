"""`dlm report`: every stored run beside the published large-model numbers, the study plan's approach x domain
matrix, success criteria and hypotheses with verdicts, efficiency, contamination. Built from run records
only; nothing is recomputed.

    dlm report --runs results/runs --against gpt-4 --format markdown --plot report.png
    dlm report --against gpt-4,gpt-4o      # GPT-4's number where published, else GPT-4o's
"""
from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

from dataclasses import replace

from results.baselines import BASELINES_FILE, check_models, load, measured_baselines
from results.console import MISSING, contamination_flags, fmt, fmt_score, fmt_seconds
from results.matrix import (APPROACHES, DOMAINS, approach_matrix, ablation_series, comparison_units, efficiency,
                            learning_curves, make_runs, one_protocol_per_task, primary_rows, score_rows, steps_budget)
from dlm_data.records import load_records
from results.seeds import seed_groups
from results.verdicts import all_verdicts, pct
from dlm_data.errors import UserError

FORMATS = ("table", "markdown", "csv", "json")
TINY_NOTE = ("tiny-gpt2 runs demonstrate the pipeline only: a 2-layer toy model on miniature sample data says "
             "nothing about the research question.")


def build_report(runs_dir: str | Path, against: str = "gpt-4", baselines: str | Path = BASELINES_FILE) -> dict:
    """The report as plain data (the JSON format is exactly this)."""
    table = load(str(baselines))
    records, skipped = load_records(runs_dir)
    api_names = [str((r.get("model") or {}).get("name")) for r in records if r.get("approach") == "api"]
    against_keys = check_models(against, table, api_names)
    measured = measured_baselines(records, against_keys)
    if measured:  # API runs measured here come first (baselines.py `_distance`), published numbers after
        table = replace(table, entries=[*measured, *table.entries])
    records = [r for r in records if r.get("approach") != "api"]  # baselines, not small-model runs
    if not records and not measured:
        extra = f" ({len(skipped)} unreadable file(s) skipped: {', '.join(f for f, _ in skipped)})" if skipped else ""
        raise UserError(f"no run records in {runs_dir}{extra}; run `dlm demo` or `dlm run ...` first, "
                        "or point --runs at the directory that holds them")
    failed = [r["run_id"] for r in records if r.get("status") in ("failed", "error")]
    incomplete = [r["run_id"] for r in records if r.get("status") == "incomplete"]
    runs = make_runs([r for r in records if r["run_id"] not in failed and r["run_id"] not in incomplete])
    rows = score_rows(runs, against_keys, table)
    primary = primary_rows(rows, table)
    units = comparison_units(primary)
    matrix = approach_matrix(one_protocol_per_task(primary))
    from results.paired import Outcomes

    verdicts = all_verdicts(runs, primary, units, table, against_keys, Outcomes(runs_dir))
    primary_ids = {id(row) for row in primary}
    notes = ["ratio = our score / the published score; ≠ marks a comparison that is not like-for-like (footnotes "
             "say why); sources of every published number are in results/baselines.yaml.",
             "matrix cell = mean ratio over the runs of an approach and the tasks of a domain that have a published "
             "number (primary metric per task); cross-domain = tasks outside the run's training domain.",
             "* = the published number was read in a copy or summary of the original source; re-check before quoting.",
             "measured here = the large model's score from an API run in this results dir (same prompts, "
             "documents and metric; n and stderr shown); otherwise the published number, whose source is in "
             "results/baselines.yaml.",
             "scoring: LL = options ranked by log-likelihood, gen = an answer read from generated text (the "
             "generative twins, dlm_<task>_gen); a twin is set only against generated-answer numbers, and where a "
             "run has both, the like-for-like one counts and the other is shown beside it.",
             "gains: absolute = treated - control (points); relative = (treated - control) / |control| (n/a for a "
             "control of 0); a hypothesis is supported when the paired 95% interval clears zero and the effect "
             "reaches the threshold, not supported when it lies below the threshold, inconclusive otherwise; "
             "--limit (subset) runs decide nothing."]
    if any(run.tiny for run in runs):
        notes.insert(0, TINY_NOTE)
    for run in runs:  # overlap reports that name a dataset rather than one of the run's tasks
        flags = contamination_flags((run.record.get("train") or {}).get("contamination"))
        tasks = {r.score.task for r in rows if r.run is run}
        for name, overlap in flags.items():
            if name != "*" and name not in tasks:
                notes.append(f"⚠ {run.run_id}: training data overlaps {name} above threshold (overlap {overlap})")
    if failed:
        notes.append(f"{len(failed)} failed run(s) left out: {', '.join(failed)}")
    if incomplete:
        notes.append(f"{len(incomplete)} incomplete run(s) left out (trained, interrupted before their evaluation "
                     f"finished; re-run them with --resume): {', '.join(incomplete)}")
    return {
        "runs_dir": str(runs_dir), "against": against_keys, "notes": notes,
        "skipped": [{"file": f, "reason": why} for f, why in skipped],
        "runs": [{"run_id": r.run_id, "model": r.base_model, "approach": r.approach,
                  "train_domains": sorted(r.train_domains), "tiny": r.tiny} for r in runs],
        "rows": [{**row.to_dict(), "primary": id(row) in primary_ids} for row in rows],
        "matrix": {model: {approach: {col: {"mean_ratio": cell.mean, "n": len(cell.ratios), "runs": sorted(cell.runs)}
                                      for col, cell in cols.items()} for approach, cols in approaches.items()}
                   for model, approaches in matrix.items()},
        "criteria": [v.to_dict() for v in verdicts["criteria"]],
        "hypotheses": [v.to_dict() for v in verdicts["hypotheses"]],
        "efficiency": efficiency(runs, primary),
        "seeds": seed_groups(units),
        "ablations": ablation_series(primary),
        "curves": learning_curves(runs, table),
        "steps_budget": steps_budget(units, {r.run_id: r.record for r in runs}),
        "tasks_without_published_number": {task: _why_no_number(task, table)
                                           for task in sorted({r.score.task for r in rows if r.baseline is None}
                                                              - {r.score.task for r in rows if r.baseline})},
    }


def render_report(runs_dir: str | Path, against: str = "gpt-4", fmt: str = "table", plot: str | None = None,
                  baselines: str | Path = BASELINES_FILE) -> str:
    """Print the report in `fmt` (and write the PNG `plot`); returns the printed text."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format '{fmt}'; use one of: {', '.join(FORMATS)}")
    from dlm_data.records import check_plot_path

    check_plot_path(plot)
    report = build_report(runs_dir, against, baselines)
    for item in report["skipped"]:  # on stderr too, so csv/json output stays parseable
        print(f"skipped {item['file']}: {item['reason']}", file=sys.stderr)
    if fmt == "json":
        text = json.dumps(_json_safe(report), indent=2, default=str)
        print(text)
    elif fmt == "csv":
        text = to_csv(report)
        sys.stdout.write(text)
    elif fmt == "markdown":
        text = "\n".join(to_markdown(report))
        print(text)
    else:
        text = print_tables(report)
    if plot:
        from results.plots import write_plots

        written = write_plots(report, plot)
        print(f"plot written to {written}", file=sys.stderr)
    return text


def _json_safe(value):
    """NaN / inf (an undefined metric) become null: strict JSON readers reject NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# --- shared cell text -----------------------------------------------------------------------------------------
def _footnotes(rows: list[dict]) -> dict[tuple, int]:
    notes: dict[tuple, int] = {}
    for row in rows:
        reasons = tuple(row["protocol_differs"])
        if reasons and reasons not in notes:
            notes[reasons] = len(notes) + 1
    return notes


def _row_cells(row: dict, notes: dict[tuple, int]) -> list[str]:
    metric = row["metric"] if row["filter"] in (None, "none") else f"{row['metric']} ({row['filter']})"
    score = fmt_score(row["value"], row["stderr"]) + (f" (n={row['n']})" if row["n"] is not None else "")
    mark = f"≠{notes[tuple(row['protocol_differs'])]}" if row["protocol_differs"] else ""
    published = MISSING
    if row["baseline_value"] is not None:
        shots = "?" if row["baseline_shots"] is None else row["baseline_shots"]
        published = f"{row['baseline_value']:.3f} ({row['baseline_model']}, {shots}-shot)"
        if row.get("baseline_measured"):
            published = (f"{fmt_score(row['baseline_value'], row.get('baseline_stderr'))} ({row['baseline_model']}, "
                         f"{shots}-shot, measured here, n={row.get('baseline_n')})")
        published += " *" if row["baseline_second_hand"] else ""
    other = row.get("other_protocol")
    beside = MISSING if not other else f"{fmt_score(other['value'], other['stderr'])} ({SCORING[other['scoring']]})"
    return [row["task"] + (" (group)" if row["is_group"] else ""), metric, row["run_id"], row["model"],
            row["approach"], SCORING.get(row.get("scoring"), row.get("scoring") or MISSING), score, beside,
            fmt(row["shots"]), published, pct(row["ratio"]), mark,
            f"⚠ overlap {row['contamination']}" if row["contamination"] else ""]


# how each score was obtained, in the scores table; "other protocol" is the same task and metric scored the other way
SCORING = {"loglikelihood": "LL", "generative": "gen", "perplexity": "ppl", "mixed": "mixed"}
ROW_HEADER = ["task", "metric", "run", "model", "approach", "scoring", "score ± stderr", "other protocol", "shots",
              "published", "ratio", "protocol", "contamination"]


def _sorted_rows(report: dict) -> list[dict]:
    return sorted(report["rows"], key=lambda r: (r["task_domain"] or "~", r["task"], r["metric"], r["run_id"]))


def _matrix_lines(report: dict) -> list[tuple[str, list[list[str]]]]:
    """[(model, [[approach label, cell, ...], ...])] for every model with at least one published comparison."""
    out = []
    for model, approaches in sorted(report["matrix"].items()):
        lines = []
        for approach, label in APPROACHES.items():
            cols = approaches.get(approach, {})
            cells = []
            for col in DOMAINS:
                cell = cols.get(col)
                cells.append(f"{pct(cell['mean_ratio'])} (n={cell['n']})" if cell else MISSING)
            if approach == "zero-shot" and not cols.get("cross"):
                cells[-1] = "n/a"
            lines.append([label, *cells])
        out.append((model, lines))
    return out


def _efficiency_cells(e: dict) -> list[str]:
    peak = e["peak_memory_mb"]
    return [e["run_id"], e["model"], e["approach"], fmt_seconds(e["wall_time_s"]), fmt_seconds(e.get("predicted_s")),
            MISSING if peak is None else f"{peak:,.0f} MB", fmt(e["trainable_params"]), fmt(e["total_params"]),
            fmt(e["mean_score"]), fmt(e["score_per_m_params"], 5)]


def _why_no_number(task: str, table) -> str:
    from results.baselines import filed_under

    task = filed_under(task)  # a twin has its sibling's numbers, or its sibling's reason for having none
    if task in table.no_number:
        return table.no_number[task]
    others = sorted({b.model for b in table.entries if b.task == task})
    return f"published for {', '.join(others)}: add it to --against, e.g. gpt-4,{others[0]}" if others else ""


def _why_missing(report: dict) -> str:
    return ", ".join(f"{task} ({why})" if why else task
                     for task, why in report["tasks_without_published_number"].items())


BUDGET_HEADER = ["model", "SFT data", "task", "metric", "total steps", "pretrain k", "SFT steps", "score ± stderr",
                 "run"]


def _budget_lines(report: dict) -> list[list[str]]:
    return [[r["model"], r["sft_data"], r["task"], r["metric"], str(r["total_steps"]), str(r["pretrain_steps"]),
             str(r["sft_steps"]), fmt_score(r["value"], r["stderr"]), r["run_id"]] for r in report["steps_budget"]]


EFFICIENCY_HEADER = ["run", "model", "approach", "training time", "estimated", "peak memory", "trainable params", "total params",
                     "mean score", "score / M params"]


# --- renderers ------------------------------------------------------------------------------------------------
def print_tables(report: dict) -> str:
    from rich.console import Console
    from rich.table import Table

    console = Console(record=True)
    if not console.is_terminal:
        console.width = max(console.width, 200)
    against = ",".join(report["against"])
    for note in report["notes"]:
        console.print(f"[dim]• {note}[/dim]", highlight=False)
    rows = _sorted_rows(report)
    notes = _footnotes(rows)
    scores = Table(title=f"Scores against {against}", header_style="bold")
    for name in ROW_HEADER:
        scores.add_column(name)
    for row in rows:
        scores.add_row(*_row_cells(row, notes))
    console.print(scores)
    for reasons, number in notes.items():
        console.print(f"≠{number}: " + "; ".join(reasons), highlight=False)
    for model, lines in _matrix_lines(report):
        matrix = Table(title=f"% of {against} — {model}", header_style="bold")
        for name in ["approach", *DOMAINS.values()]:
            matrix.add_column(name)
        for line in lines:
            matrix.add_row(*line)
        console.print(matrix)
    if not report["matrix"]:
        console.print(f"% of {against}: no run has a score on a task with a published number", highlight=False)
    verdicts = Table(title="Success criteria and hypotheses", header_style="bold")
    for name in ("check", "claim", "verdict", "evidence / missing"):
        verdicts.add_column(name)
    for v in report["criteria"] + report["hypotheses"]:
        color = {"met": "green", "supported": "green", "not met": "red", "not supported": "red"}.get(v["verdict"],
                                                                                                    "yellow")
        verdicts.add_row(v["name"], v["claim"], f"[{color}]{v['verdict']}[/{color}]", v["detail"])
    console.print(verdicts)
    if report["seeds"]:
        seeds = Table(title="Runs that differ only by seed", header_style="bold")
        for name in ("model", "approach", "task", "metric", "mean ± sd", "seeds"):
            seeds.add_column(name)
        for e in report["seeds"]:
            seeds.add_row(e["model"], e["approach"], e["task"], e["metric"], f"{e['mean']:.4f} ± {e['sd']:.4f}",
                          str(e["seeds"]))
        console.print(seeds)
    if report["steps_budget"]:
        budget = Table(title="Steps budget: pretraining k steps, then SFT (total - k)", header_style="bold")
        for name in BUDGET_HEADER:
            budget.add_column(name)
        for line in _budget_lines(report):
            budget.add_row(*line)
        console.print(budget)
    if report["efficiency"]:
        eff = Table(title="Efficiency", header_style="bold")
        for name in EFFICIENCY_HEADER:
            eff.add_column(name)
        for e in report["efficiency"]:
            eff.add_row(*_efficiency_cells(e))
        console.print(eff)
    if report["tasks_without_published_number"]:
        console.print(f"no published {against} number: " + _why_missing(report), highlight=False)
    for item in report["skipped"]:
        console.print(f"[yellow]skipped {item['file']}: {item['reason']}[/yellow]", highlight=False)
    return console.export_text()


def _md_table(header: list[str], lines: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(esc(c) for c in line) + " |" for line in lines), ""]


def to_markdown(report: dict) -> list[str]:
    against = ",".join(report["against"])
    out = [f"# dlm report: scores against {against}", "", *(f"- {note}" for note in report["notes"]), ""]
    rows = _sorted_rows(report)
    notes = _footnotes(rows)
    out += ["## Scores", "", *_md_table(ROW_HEADER, [_row_cells(r, notes) for r in rows])]
    out += [f"- ≠{number}: " + "; ".join(reasons) for reasons, number in notes.items()] + [""]
    out += [f"## % of {against} by approach and domain", ""]
    for model, lines in _matrix_lines(report):
        out += [f"### {model}", "", *_md_table(["approach", *DOMAINS.values()], lines)]
    if not report["matrix"]:
        out += ["No run has a score on a task with a published number.", ""]
    out += ["## Success criteria and hypotheses", "",
            *_md_table(["check", "claim", "verdict", "evidence / missing"],
                       [[v["name"], v["claim"], f"**{v['verdict']}**", v["detail"]]
                        for v in report["criteria"] + report["hypotheses"]])]
    if report["steps_budget"]:
        out += ["## Steps budget", "", *_md_table(BUDGET_HEADER, _budget_lines(report))]
    if report["efficiency"]:
        lines = [_efficiency_cells(e) for e in report["efficiency"]]
        out += ["## Efficiency", "", *_md_table(EFFICIENCY_HEADER, lines)]
    if report["tasks_without_published_number"]:
        out += [f"No published {against} number: " + _why_missing(report), ""]
    out += [f"Skipped {item['file']}: {item['reason']}" for item in report["skipped"]]
    return out


def to_csv(report: dict) -> str:
    buffer = io.StringIO()
    fields = list(report["rows"][0].keys()) if report["rows"] else ["run_id"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in _sorted_rows(report):
        writer.writerow({**row, "train_domains": "+".join(row["train_domains"]),
                         "protocol_differs": "; ".join(row["protocol_differs"])})
    return buffer.getvalue()
