"""The detailed renderings of a report (results/report.py `build_report`): every score, note and table, as a
Rich table (`dlm report --detail`), Markdown or CSV. The default one-screen view is results/screen.py.
"""

from __future__ import annotations

import csv
import io

from rich.console import Console
from rich.table import Table

from dlm.results.console import MISSING, fmt, fmt_score, fmt_seconds, screen_width
from dlm.results.matrix import APPROACHES, DOMAINS
from dlm.results.verdicts import pct


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
            published = (
                f"{fmt_score(row['baseline_value'], row.get('baseline_stderr'))} ({row['baseline_model']}, "
                f"{shots}-shot, measured here, n={row.get('baseline_n')})"
            )
        published += " *" if row["baseline_second_hand"] else ""
    other = row.get("other_protocol")
    beside = MISSING if not other else f"{fmt_score(other['value'], other['stderr'])} ({SCORING[other['scoring']]})"
    return [
        row["task"] + (" (group)" if row["is_group"] else ""),
        metric,
        row["run_id"],
        row["model"],
        row["approach"],
        SCORING.get(row.get("scoring"), row.get("scoring") or MISSING),
        score,
        beside,
        fmt(row["shots"]),
        published,
        pct(row["ratio"]),
        mark,
        f"⚠ overlap {row['contamination']}" if row["contamination"] else "",
    ]


# how each score was obtained, in the scores table; "other protocol" is the same task and metric scored the other way
SCORING = {"loglikelihood": "LL", "generative": "gen", "perplexity": "ppl", "mixed": "mixed"}
ROW_HEADER = [
    "task",
    "metric",
    "run",
    "model",
    "approach",
    "scoring",
    "score ± stderr",
    "other protocol",
    "shots",
    "published",
    "ratio",
    "protocol",
    "contamination",
]


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
    return [
        e["run_id"],
        e["model"],
        e["approach"],
        fmt_seconds(e["wall_time_s"]),
        fmt_seconds(e.get("predicted_s")),
        MISSING if peak is None else f"{peak:,.0f} MB",
        fmt(e["trainable_params"]),
        fmt(e["total_params"]),
        fmt(e["mean_score"]),
        fmt(e["score_per_m_params"], 5),
    ]


def _why_missing(report: dict) -> str:
    return ", ".join(
        f"{task} ({why})" if why else task for task, why in report["tasks_without_published_number"].items()
    )


BUDGET_HEADER = [
    "model",
    "SFT data",
    "task",
    "metric",
    "total steps",
    "pretrain k",
    "SFT steps",
    "score ± stderr",
    "run",
]


def _budget_lines(report: dict) -> list[list[str]]:
    return [
        [
            r["model"],
            r["sft_data"],
            r["task"],
            r["metric"],
            str(r["total_steps"]),
            str(r["pretrain_steps"]),
            str(r["sft_steps"]),
            fmt_score(r["value"], r["stderr"]),
            r["run_id"],
        ]
        for r in report["steps_budget"]
    ]


EFFICIENCY_HEADER = [
    "run",
    "model",
    "approach",
    "training time",
    "estimated",
    "peak memory",
    "trainable params",
    "total params",
    "mean score",
    "score / M params",
]


# --- renderers ------------------------------------------------------------------------------------------------
def print_tables(report: dict) -> str:

    console = Console(record=True, width=screen_width())
    if not console.is_terminal and screen_width() is None:  # piped with no COLUMNS: wide enough for whole cells
        console.width = max(console.width, 200)
    against = ",".join(report["against"])
    for note in report["notes"]:
        console.print(f"[dim]• {note}[/dim]", highlight=False)
    rows = _sorted_rows(report)
    notes = _footnotes(rows)
    scores = Table(title=f"Scores against {against}", header_style="bold")
    for name in ROW_HEADER:
        scores.add_column(name, overflow="fold")
    for row in rows:
        scores.add_row(*_row_cells(row, notes))
    console.print(scores)
    for reasons, number in notes.items():
        console.print(f"≠{number}: " + "; ".join(reasons), highlight=False)
    for model, lines in _matrix_lines(report):
        matrix = Table(title=f"% of {against} — {model}", header_style="bold")
        for name in ["approach", *DOMAINS.values()]:
            matrix.add_column(name, overflow="fold")
        for line in lines:
            matrix.add_row(*line)
        console.print(matrix)
    if not report["matrix"]:
        console.print(f"% of {against}: no run has a score on a task with a published number", highlight=False)
    verdicts = Table(title="Success criteria and hypotheses", header_style="bold")
    for name in ("check", "claim", "verdict", "evidence / missing"):
        verdicts.add_column(name, overflow="fold")
    for v in report["criteria"] + report["hypotheses"]:
        color = {"met": "green", "supported": "green", "not met": "red", "not supported": "red"}.get(
            v["verdict"], "yellow"
        )
        verdicts.add_row(v["name"], v["claim"], f"[{color}]{v['verdict']}[/{color}]", v["detail"])
    console.print(verdicts)
    questions = Table(title="Research questions (study plan)", header_style="bold")
    for name in ("question", "verdict", "answer"):
        questions.add_column(name, overflow="fold")
    for q in report.get("questions", []):
        questions.add_row(f"{q['name']}: {q['question']}", q["verdict"], q["answer"])
    console.print(questions)
    runs = Table(title="Runs (the short labels of the one-screen report and the plots)", header_style="bold")
    for name in ("label", "run id", "model", "approach"):
        runs.add_column(name, overflow="fold")
    for r in report["runs"]:
        runs.add_row(r["label"], r["run_id"], r["model"], r["approach"])
    console.print(runs)
    if report["seeds"]:
        seeds = Table(title="Runs that differ only by seed", header_style="bold")
        for name in ("model", "approach", "task", "metric", "mean ± sd", "seeds"):
            seeds.add_column(name, overflow="fold")
        for e in report["seeds"]:
            seeds.add_row(
                e["model"], e["approach"], e["task"], e["metric"], f"{e['mean']:.4f} ± {e['sd']:.4f}", str(e["seeds"])
            )
        console.print(seeds)
    if report["steps_budget"]:
        budget = Table(title="Steps budget: pretraining k steps, then SFT (total - k)", header_style="bold")
        for name in BUDGET_HEADER:
            budget.add_column(name, overflow="fold")
        for line in _budget_lines(report):
            budget.add_row(*line)
        console.print(budget)
    if report["efficiency"]:
        eff = Table(title="Efficiency", header_style="bold")
        for name in EFFICIENCY_HEADER:
            eff.add_column(name, overflow="fold")
        for e in report["efficiency"]:
            eff.add_row(*_efficiency_cells(e))
        console.print(eff)
    if report["tasks_without_published_number"]:
        console.print(f"no published {against} number: " + _why_missing(report), highlight=False)
    for item in report["skipped"]:
        console.print(f"[yellow]skipped {item['file']}: {item['reason']}[/yellow]", highlight=False)
    return console.export_text()


MD_ESCAPES = {
    "\\": "\\\\",
    "|": "\\|",
    "`": "\\`",
    "[": "\\[",
    "]": "\\]",
    "<": "&lt;",
    ">": "&gt;",
    "\n": " ",
    "\r": " ",
}
# a cell that starts with one of these is a formula to a spreadsheet (CSV injection): it is written as text
CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def md_cell(value) -> str:
    """A table cell from a record (run ids, model names, notes come from anyone): no table break, no raw HTML, no
    link or code span can be made of it; `**bold**` verdicts dlm writes itself stay as they are."""
    return "".join(MD_ESCAPES.get(ch, ch) for ch in str(value))


def _md_table(header: list[str], lines: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(md_cell(c) for c in line) + " |" for line in lines),
        "",
    ]


def csv_cell(value):
    """A string that a spreadsheet would run as a formula gets a leading ' (OWASP's advice); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return value


def to_markdown(report: dict) -> list[str]:
    against = ",".join(report["against"])
    out = [f"# dlm report: scores against {md_cell(against)}", "", *(f"- {md_cell(n)}" for n in report["notes"]), ""]
    rows = _sorted_rows(report)
    notes = _footnotes(rows)
    out += ["## Scores", "", *_md_table(ROW_HEADER, [_row_cells(r, notes) for r in rows])]
    out += [f"- ≠{number}: " + md_cell("; ".join(reasons)) for reasons, number in notes.items()] + [""]
    out += [f"## % of {md_cell(against)} by approach and domain", ""]
    for model, lines in _matrix_lines(report):
        out += [f"### {md_cell(model)}", "", *_md_table(["approach", *DOMAINS.values()], lines)]
    if not report["matrix"]:
        out += ["No run has a score on a task with a published number.", ""]
    out += [
        "## Success criteria and hypotheses",
        "",
        *_md_table(
            ["check", "claim", "verdict", "evidence / missing"],
            [
                [v["name"], v["claim"], f"**{v['verdict']}**", v["detail"]]
                for v in report["criteria"] + report["hypotheses"]
            ],
        ),
    ]
    out += [
        "## Research questions",
        "",
        *_md_table(
            ["question", "verdict", "answer"],
            [
                [f"{q['name']}: {q['question']}", f"**{q['verdict']}**", q["answer"]]
                for q in report.get("questions", [])
            ],
        ),
    ]
    out += [
        "## Runs",
        "",
        *_md_table(
            ["label", "run id", "model", "approach"],
            [[r["label"], r["run_id"], r["model"], r["approach"]] for r in report["runs"]],
        ),
    ]
    if report["steps_budget"]:
        out += ["## Steps budget", "", *_md_table(BUDGET_HEADER, _budget_lines(report))]
    if report["efficiency"]:
        lines = [_efficiency_cells(e) for e in report["efficiency"]]
        out += ["## Efficiency", "", *_md_table(EFFICIENCY_HEADER, lines)]
    if report["tasks_without_published_number"]:
        out += [md_cell(f"No published {against} number: " + _why_missing(report)), ""]
    out += [md_cell(f"Skipped {item['file']}: {item['reason']}") for item in report["skipped"]]
    return out


def to_csv(report: dict) -> str:
    buffer = io.StringIO()
    fields = list(report["rows"][0].keys()) if report["rows"] else ["run_id"]
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in _sorted_rows(report):
        cells = {
            **row,
            "train_domains": "+".join(row["train_domains"]),
            "protocol_differs": "; ".join(row["protocol_differs"]),
        }
        writer.writerow({name: csv_cell(value) for name, value in cells.items()})
    return buffer.getvalue()
