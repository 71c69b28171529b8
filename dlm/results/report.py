"""`dlm report`: every stored run beside the published large-model numbers, the study plan's approach x domain
matrix, success criteria and hypotheses with verdicts, efficiency, contamination. Built from run records
only; nothing is recomputed.

    dlm report --results-dir runs --against gpt-4 --format markdown --plot report.png
    dlm report --against gpt-4,gpt-4o      # GPT-4's number where published, else GPT-4o's
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

from dlm.errors import UserError
from dlm.files import atomic_write, check_output_file
from dlm.results.baselines import (
    BASELINES_FILE,
    check_models,
    filed_under,
    load,
    measured_baselines,
    model_keys,
)
from dlm.results.console import contamination_flags
from dlm.results.detail import print_tables, to_csv, to_markdown
from dlm.results.html import to_html
from dlm.results.labels import run_labels
from dlm.results.latex import to_latex
from dlm.results.matrix import (
    TINY_NOTE,
    ablation_series,
    approach_matrix,
    comparison_units,
    efficiency,
    learning_curves,
    make_runs,
    one_protocol_per_task,
    primary_rows,
    score_rows,
    steps_budget,
)
from dlm.results.paired import Outcomes
from dlm.results.plots import write_plots
from dlm.results.power import power_table
from dlm.results.questions import answer_questions
from dlm.results.screen import print_screen
from dlm.results.seeds import seed_groups
from dlm.results.verdicts import DOMAIN_MATCH, H1_GAIN, H3_GAIN, TRANSFER, all_verdicts, full_test_set
from dlm.secrets import ScrubbedStream, scrub
from dlm.store.leases import is_held
from dlm.store.pointer import here, last_results_dir
from dlm.store.records import RunRecord, load_records

FORMATS = ("table", "markdown", "csv", "json", "html", "latex")
FILE_SUFFIX = {"html": ".html", "latex": ".tex"}  # the formats --output writes to a file


def _power(units: list, seeds: list[dict]) -> list[dict]:
    """Per task scored on its full test set: the smallest difference a comparison can see (80% power, 5%), the
    zero-shot mean as base rate (all runs' mean where there is no zero-shot run), the study's seeds and their
    median spread where it has seeds (results/power.py)."""
    by_task: dict[str, list] = {}
    for row in full_test_set(units):
        value = row.score.value
        if row.score.n and value is not None and 0.0 <= value <= 1.0:
            by_task.setdefault(row.score.task, []).append(row)
    tasks = {}
    for task, rows in by_task.items():
        controls = [r.score.value for r in rows if not r.run.trained] or [r.score.value for r in rows]
        tasks[task] = (max(r.score.n for r in rows), rows[0].score.metric, statistics.fmean(controls))
    spread = {}
    for task in tasks:
        entries = [e for e in seeds if e["task"] == task]
        if entries:
            spread[task] = (max(e["seeds"] for e in entries), statistics.median(e["sd"] for e in entries))
    return power_table(tasks, 1, {"H1": H1_GAIN, "H3": H3_GAIN}, spread)


def build_report(runs_dir: str | Path, against: str = "gpt-4", baselines: str | Path = BASELINES_FILE) -> dict:
    """The report as plain data (the JSON format is exactly this)."""
    table = load(str(baselines))
    records, skipped = load_records(runs_dir)
    api_names = [str(r.model.name) for r in records if r.approach == "api"]
    against_keys = check_models(against, table, api_names)
    measured = measured_baselines(records, against_keys)
    if measured:  # API runs measured here come first (baselines.py `_distance`), published numbers after
        table = replace(table, entries=[*measured, *table.entries])
    records = [r for r in records if r.approach != "api"]  # baselines, not small-model runs
    if not records and not measured:
        extra = f" ({len(skipped)} unreadable file(s) skipped: {', '.join(f for f, _ in skipped)})" if skipped else ""
        raise UserError(
            f"no run records in {runs_dir}{extra}; run `dlm demo` or `dlm run ...` first, "
            "or point --results-dir at the directory that holds them"
        )
    failed = [r.run_id for r in records if r.status == "failed"]
    unfinished = [r for r in records if r.status == "incomplete"]
    running = [r.run_id for r in unfinished if is_held(runs_dir, lease_key(r))]
    incomplete = [r.run_id for r in unfinished if r.run_id not in running]
    runs = make_runs([r for r in records if r.status == "ok"])
    rows = score_rows(runs, against_keys, table)
    primary = primary_rows(rows, table)
    units = comparison_units(primary)  # every task once, the like-for-like protocol where a run has both
    both = comparison_units(primary, both_protocols=True)  # run-vs-run comparisons pick their protocol per pair
    thresholds = {**dict.fromkeys(("finance", "math", "general"), DOMAIN_MATCH), "cross": TRANSFER}
    matrix = approach_matrix(one_protocol_per_task(primary), thresholds)

    outcomes = Outcomes(runs_dir)
    verdicts = all_verdicts(runs, units, both, table, against_keys, outcomes)
    budget = steps_budget(units, {r.run_id: r.record for r in runs})
    seeds = seed_groups(units)
    primary_ids = {id(row) for row in primary}
    labels = run_labels(runs)
    notes = [
        "ratio = our score / the published score; ≠ marks a comparison that is not like-for-like (footnotes "
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
        "gains: absolute = treated - control (points); relative = (treated - control) / |control|, the control "
        "resampled too (a relative threshold over a control whose interval includes 0 is decided on the absolute "
        "difference). Intervals carry documents and seeds (two-level bootstrap) and the large model's noise. A "
        "claim is supported / met when its Holm-corrected one-sided p (at or above the threshold) is below 0.025, "
        "which for a single test is the whole 95% interval above it; not supported when the same holds below; "
        "inconclusive otherwise. Families: the criteria, the hypotheses, the research questions; a claim over "
        "several setups or runs pays for picking the best (Holm). Subsets (--limit), contaminated scores and scores "
        "that are not like-for-like (scoring, shots, rule, data, documents) decide nothing.",
    ]
    if any(run.tiny for run in runs):
        notes.insert(0, TINY_NOTE)
    for run in runs:  # overlap reports that name a dataset rather than one of the run's tasks
        flags = contamination_flags(run.record.train.contamination if run.record.train else [])
        tasks = {r.score.task for r in rows if r.run is run}
        for name, overlap in flags.items():
            if name != "*" and name not in tasks:
                notes.append(f"⚠ {run.run_id}: training data overlaps {name} above threshold (overlap {overlap})")
    if failed:
        notes.append(f"{len(failed)} failed run(s) left out: {', '.join(failed)}")
    if running:
        notes.append(
            f"{len(running)} run(s) still running, left out until they finish (a live process holds their "
            f"lease): {', '.join(running)}"
        )
    if incomplete:
        notes.append(
            f"{len(incomplete)} incomplete run(s) left out (trained, interrupted before their evaluation "
            f"finished; re-run them with --resume): {', '.join(incomplete)}"
        )
    return {
        "runs_dir": str(runs_dir),
        "against": against_keys,
        "notes": notes,
        "skipped": [{"file": f, "reason": why} for f, why in skipped],
        "runs": [
            {
                "run_id": r.run_id,
                "label": labels[r.run_id],
                "model": r.base_model,
                "approach": r.approach,
                "train_domains": sorted(r.train_domains),
                "tiny": r.tiny,
            }
            for r in runs
        ],
        "rows": [{**row.to_dict(), "label": labels[row.run.run_id], "primary": id(row) in primary_ids} for row in rows],
        "matrix": {
            model: {
                approach: {
                    col: {
                        "mean_ratio": cell.mean,
                        "n": len(cell.ratios),
                        "runs": sorted(cell.runs),
                        "ci95": cell.ci95,
                        "threshold": cell.threshold,
                        "p": cell.p,
                        "q": cell.q,
                    }
                    for col, cell in cols.items()
                }
                for approach, cols in approaches.items()
            }
            for model, approaches in matrix.items()
        },
        "criteria": [v.to_dict() for v in verdicts["criteria"]],
        "hypotheses": [v.to_dict() for v in verdicts["hypotheses"]],
        "efficiency": efficiency(runs, primary),
        "seeds": seeds,
        "power": _power(units, seeds),
        "ablations": ablation_series(primary),
        "curves": learning_curves(runs, table),
        "steps_budget": budget,
        "questions": answer_questions(
            both,
            outcomes,
            [v.to_dict() for v in verdicts["hypotheses"]],
            [v.to_dict() for v in verdicts["criteria"]],
            budget,
            ",".join(against_keys),
        ),
        "tasks_without_published_number": {
            task: _why_no_number(task, table)
            for task in sorted(
                {r.score.task for r in rows if r.baseline is None} - {r.score.task for r in rows if r.baseline}
            )
        },
    }


DEFAULT_RESULTS_DIR = "runs"  # dlm.config.Sources.results_dir's default


def lease_key(record: RunRecord) -> str:
    """The lease a record's run is written under: its plan key (a plan run), else its run id (dlm run)."""
    config = record.train.config if record.train else None
    return record.plan_key or (config.run_key if config else None) or record.run_id


def find_results_dir(explicit: str | None) -> str:
    """--results-dir when given; else the dir where the last dlm command run in this working directory wrote its
    records (the demo's, a run's, a plan's; dlm/store/pointer.py), else runs/. Says on stderr, as its first line,
    where it looked and why, so a report of the wrong records is never silent."""

    if explicit:
        return explicit
    last = last_results_dir()
    if last and any(Path(last).glob("*.json")):
        print(
            f"dlm report: reading {last} (where the last dlm command run in {here()} wrote its records; "
            "or --results-dir)",
            file=sys.stderr,
        )
        return last
    print(
        f"dlm report: reading {DEFAULT_RESULTS_DIR} (the default: no dlm command run in {here()} has written "
        "records yet; or --results-dir)",
        file=sys.stderr,
    )
    return DEFAULT_RESULTS_DIR


def next_step(results_dir: str | Path) -> str:
    """The command to read what was just written (printed by every command that writes records)."""
    same = Path(results_dir).resolve() == Path(DEFAULT_RESULTS_DIR).resolve()
    return (
        "next: dlm report"
        + ("" if same else f" --results-dir {results_dir}")
        + "   (--detail for every score, --format html for a page to share)"
    )


def render_report(
    runs_dir: str | Path | None,
    against: str = "gpt-4",
    fmt: str = "table",
    plot: str | None = None,
    baselines: str | Path = BASELINES_FILE,
    detail: bool = False,
    output: str | None = None,
) -> str:
    """Print the report in `fmt` (and write the PNG `plot`); returns the printed text. The table format is one
    screen (results/screen.py) unless `detail`; html is written to `output` (default <runs_dir>/report.html).
    No `runs_dir`: the one `find_results_dir` finds, once the other inputs are checked."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format '{fmt}'; use one of: {', '.join(FORMATS)}")
    if runs_dir is not None and not str(runs_dir).strip():  # '' would quietly read the default dir instead
        raise UserError("--results-dir is empty; give the folder of run records, or leave it out")
    if not model_keys(against):
        raise UserError("--against is empty; name a large model, e.g. --against gpt-4 (or gpt-4,gpt-4o)")

    check_output_file(plot, ".png", "--plot")
    if output and fmt not in FILE_SUFFIX:
        raise UserError(
            f"--output is where --format html or --format latex writes its file; add one of them (got --format {fmt})"
        )
    check_output_file(output, FILE_SUFFIX.get(fmt, ".html"), "--output")
    runs_dir = find_results_dir(runs_dir and str(runs_dir))
    html_path = Path(output or Path(runs_dir) / "report.html") if fmt == "html" else None
    if html_path is not None and not output:  # --output was checked above; the default goes in the results dir
        check_output_file(str(html_path), ".html", "--results-dir")
    report = build_report(runs_dir, against, baselines)
    # records come from anyone: whatever reaches the screen or a file is scrubbed of secrets (by value, by shape)
    with redirect_stdout(ScrubbedStream(sys.stdout)), redirect_stderr(ScrubbedStream(sys.stderr)):
        return _render(report, fmt, html_path, detail, plot, output)


def _render(report: dict, fmt: str, html_path: Path | None, detail: bool, plot: str | None, output: str | None) -> str:
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
    elif fmt == "latex":
        text = scrub(to_latex(report))
        if output:
            atomic_write(output, text)
            Path(output).chmod(0o644)  # a file to send on, like the html page
            print(f"report written to {output}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    elif fmt == "html":
        text = scrub(to_html(report))
        atomic_write(html_path, text)
        html_path.chmod(0o644)  # a page to send on: readable like the plot beside it, not private like a temp file
        print(f"report written to {html_path}", file=sys.stderr)
    elif detail:
        text = print_tables(report)
    else:
        text = print_screen(report)
    if plot:
        written = write_plots(report, plot)
        print(f"plot written to {written}", file=sys.stderr)
    return scrub(text)


def _json_safe(value):
    """NaN / inf (an undefined metric) become null: strict JSON readers reject NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _why_no_number(task: str, table) -> str:

    task = filed_under(task)  # a twin has its sibling's numbers, or its sibling's reason for having none
    if task in table.no_number:
        return table.no_number[task]
    others = sorted({b.model for b in table.entries if b.task == task})
    return f"published for {', '.join(others)}: add it to --against, e.g. gpt-4,{others[0]}" if others else ""
