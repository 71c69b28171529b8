"""The default `dlm report`: one terminal screen. The headline (per domain, the runs that decide the domain
criterion, each with its interval, against the large model), the approach x domain matrix, the verdicts with their
intervals and runs, the research questions, and a short footer; primary metrics only. Every score, note and source
is in `--detail` and the file formats (results/report.py).

Width follows the terminal, or COLUMNS when piped; cells wrap rather than cut, so no task or run name is shortened
beyond its defined label (results/labels.py), and each label shown is listed beside its run id at the end.
"""

from __future__ import annotations

import re

from rich import box
from rich.console import Console
from rich.table import Table

from dlm.results.console import MISSING, screen_width
from dlm.results.matrix import APPROACHES, DOMAINS
from dlm.results.verdicts import pct

RUNS_PER_DOMAIN = 3  # deciding runs shown per domain in the headline; the rest are in --detail
LABELS_LISTED = 8
VERDICT_COLORS = {"met": "green", "supported": "green", "answered": "green", "not met": "red", "not supported": "red"}


PIPED_WIDTH = 100  # piped with no COLUMNS: the width the screen is laid out for


def _table(title: str, *columns: str):

    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        header_style="bold",
        padding=(0, 1),
    )
    for name in columns:
        table.add_column(name, overflow="fold")
    return table


EXAMPLE_CLAUSE = re.compile(r"[;,]? ?\(?e\.g\. (`[^`]*`|dlm [^;)]*)\)?")


def brief(text: str) -> str:
    """The screen drops example commands ("e.g. `dlm run ...`"); --detail keeps them."""
    return EXAMPLE_CLAUSE.sub("", text).strip()


def _colored(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict, "yellow")
    return f"[{color}]{verdict}[/{color}]"


def _labels(report: dict) -> dict[str, str]:
    return {r["run_id"]: r["label"] for r in report["runs"]}


def _interval(ratio, ci) -> str:
    """A ratio with its 95% interval (both sides resampled, results/evidence.py): not symmetric in general."""
    if ratio is None:
        return MISSING
    if not ci:
        return f"{pct(ratio)} (no interval)"
    return f"{pct(ratio)} [{pct(ci[0])}, {pct(ci[1])}]"


def _p(value: float) -> str:
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _side(run_ids: list[str], labels: dict[str, str]) -> str:
    """One side of the comparison that decided a verdict: its first run's label and how many more (seeds)."""
    names = sorted(labels.get(r, r) for r in run_ids)
    return names[0] + (f" +{len(names) - 1}" if len(names) > 1 else "") if names else "?"


def _tasks(tasks: list[str], shown: int = 3) -> str:
    """Whole task names, the first few: a 57-subject domain is named by its count beyond them."""
    return ", ".join(tasks[:shown]) + (f" +{len(tasks) - shown}" if len(tasks) > shown else "")


def _protocol(rows: list[dict]) -> str:
    scorings = sorted({r["scoring"] for r in rows if r.get("scoring")})
    shots = sorted({str(r["shots"]) for r in rows})
    same = all(not r["protocol_differs"] for r in rows)
    short = {"loglikelihood": "LL", "generative": "gen"}
    return f"{'+'.join(short.get(s, s) for s in scorings)}, {'/'.join(shots)}-shot" + ("" if same else ", ≠")


def headline(report: dict, labels: dict[str, str]):
    """The table and, below it, one line per domain naming the tasks its deciding runs were scored on."""
    against = ",".join(report["against"])
    table = _table(
        f"Headline: runs deciding each domain criterion vs {against} (primary metric, 95% intervals)",
        "domain",
        "run",
        f"% of {against} ± 95%",
        "ours",
        against,
        "protocol",
    )
    for column in table.columns:
        column.no_wrap = True  # labels, intervals and protocols whole; the task names follow the table
    primary = [r for r in report["rows"] if r["primary"] and r["ratio"] is not None]
    tasks: dict[str, list[str]] = {}
    for verdict in report["criteria"]:
        if not verdict["name"].startswith("Domain matching"):
            continue
        domain = verdict["name"].split("(")[-1].rstrip(")")
        if not verdict["evidence"]:
            table.add_row(domain, "not enough runs", MISSING, MISSING, MISSING, MISSING)
            continue
        for k, e in enumerate(verdict["evidence"][:RUNS_PER_DOMAIN]):
            rows = [
                r
                for r in primary
                if r["run_id"] == e["run_id"] and r["task"] in e["tasks"] and r["task_domain"] == domain
            ]
            ours = sum(r["value"] for r in rows) / len(rows) if rows else None
            theirs = sum(r["baseline_value"] for r in rows) / len(rows) if rows else None
            table.add_row(
                domain if k == 0 else "",
                labels.get(e["run_id"], e["run_id"]),
                _interval(e["ratio"], e.get("ci95")),
                MISSING if ours is None else f"{ours:.3f}",
                MISSING if theirs is None else f"{theirs:.3f}",
                _protocol(rows) if rows else MISSING,
            )
            tasks.setdefault(domain, [])
            tasks[domain] += [t for t in e["tasks"] if t not in tasks[domain]]
    notes = [f"{domain} tasks: {_tasks(names, shown=6)}" for domain, names in tasks.items()]
    return table, notes


def matrices(report: dict) -> list:
    against = ",".join(report["against"])
    out = []
    for model, approaches in sorted(report["matrix"].items()):
        table = _table(
            f"% of {against} by approach and domain — {model} (mean ratio, n tasks; every score, deciding or not)",
            "approach",
            *DOMAINS.values(),
        )
        for approach, name in APPROACHES.items():
            cols = approaches.get(approach, {})
            cells = [f"{pct(c['mean_ratio'])} ({c['n']})" if (c := cols.get(col)) else MISSING for col in DOMAINS]
            if approach == "zero-shot":
                cells[-1] = "n/a"
            table.add_row(name, *cells)
        out.append(table)
    return out


def _corrected_p(v: dict) -> str:
    """The Holm-corrected p of the side the verdict took: P(at or below the threshold) for a claim met or
    supported, P(at or above it) for one not met or not supported; both when it is inconclusive."""
    correction = v.get("correction") or {}
    yes, no = correction.get("value"), correction.get("value_not")
    if v["verdict"] in ("not met", "not supported") and no is not None:
        return f", p(Holm, not) {_p(no)}"
    if v["verdict"] == "inconclusive" and yes is not None and no is not None:
        return f", p(Holm) {_p(yes)} / not {_p(no)}"
    return f", p(Holm) {_p(yes)}" if yes is not None else ""


def _verdict_evidence(v: dict, labels: dict[str, str]) -> tuple[str, str]:
    """(interval text, runs) of one criterion or hypothesis; the missing runs when there are none."""
    if v["verdict"] == "not enough runs":
        return brief(v["detail"].removeprefix("missing: ")), MISSING
    diff = v.get("difference")
    if diff:
        ci = diff.get("ci95")
        rel = diff.get("relative")
        text = f"{diff['absolute']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else " (no interval)")
        text += f", {'rel. n/a' if rel is None else f'{100 * rel:+.0f}%'}, {diff['pairs']} pairs"
        text += _corrected_p(v)
        return text, f"{_side(diff['treated_runs'], labels)} vs {_side(diff['control_runs'], labels)}"
    if v["evidence"] and "ratio" in v["evidence"][0]:
        best = v["evidence"][0]
        return f"best {_interval(best['ratio'], best.get('ci95'))}{_corrected_p(v)}", ", ".join(
            labels.get(e["run_id"], e["run_id"]) for e in v["evidence"][:RUNS_PER_DOMAIN]
        )
    timed = [e for e in v["evidence"] if e.get("wall_time_s") is not None]
    if timed:  # efficiency: the longest run decides it
        longest = max(timed, key=lambda e: e["wall_time_s"])
        return (
            f"{len(timed)} run(s), longest {longest['wall_time_s'] / 60:.1f} min",
            labels.get(longest["run_id"], longest["run_id"]),
        )
    return v["detail"].split(";")[0], MISSING


def verdicts(report: dict, labels: dict[str, str]):
    table = _table("Success criteria and hypotheses", "check", "verdict", "interval / missing (runs)")
    for column in table.columns[:2]:
        column.no_wrap = True
    for v in report["criteria"] + report["hypotheses"]:
        text, runs = _verdict_evidence(v, labels)
        table.add_row(
            v["name"].replace("Domain matching", "Domain"),
            _colored(v["verdict"]),
            text + ("" if runs == MISSING else f" ({runs})"),
        )
    return table


def questions(report: dict, labels: dict[str, str]):
    table = _table("Research questions (study plan)", "", "verdict", "answer")
    for q in report.get("questions", []):
        answer = brief(q["answer"])
        for run_id, label in labels.items():
            answer = answer.replace(run_id, label)
        table.add_row(q["name"], _colored(q["verdict"]), answer)
    return table


def footer(report: dict, labels: dict[str, str], shown: set[str]) -> list[str]:
    listed = [r for r in report["runs"] if r["run_id"] in shown][:LABELS_LISTED]
    lines = [f"{r['label']} = {r['run_id']}" for r in listed]
    if len(shown) > len(listed):
        lines.append(f"{len(shown) - len(listed)} more run(s) in --detail")
    missing = len(report["tasks_without_published_number"])
    lines.append(
        "ratio = our score / the published score; ≠ = not like-for-like; sources: results/baselines.yaml"
        + (f"; {missing} task(s) have no published number" if missing else "")
    )
    if report["skipped"]:
        lines.append(f"{len(report['skipped'])} unreadable record file(s) skipped (listed in --detail)")
    lines.append("every score, note and source: dlm report --detail, or --format html|markdown|csv|json")
    return lines


def print_screen(report: dict) -> str:

    console = Console(record=True, width=screen_width())
    if not console.is_terminal and screen_width() is None:
        console.width = PIPED_WIDTH
    labels = _labels(report)
    against = ",".join(report["against"])
    models = sorted({r["model"] for r in report["runs"]})
    console.print(
        f"[bold]dlm report[/bold]: {report['runs_dir']} — {len(report['runs'])} run(s) of "
        f"{', '.join(models)}, against {against}",
        highlight=False,
    )
    for note in report["notes"]:
        if note.startswith(("tiny-gpt2", "⚠", "failed", "incomplete")) or " run(s) left out" in note:
            console.print(f"[yellow]{note}[/yellow]", highlight=False)
    table, task_notes = headline(report, labels)
    console.print(table)
    for line in task_notes:
        console.print(f"[dim]{line}[/dim]", highlight=False)
    for table in matrices(report):
        console.print(table)
    if not report["matrix"]:
        console.print(f"% of {against}: no run has a score on a task with a published number", highlight=False)
    console.print(verdicts(report, labels))
    console.print(questions(report, labels))
    shown = {e["run_id"] for v in report["criteria"] for e in v["evidence"] if "run_id" in e}
    shown |= {e[k] for v in report["hypotheses"] for e in v["evidence"] for k in ("treated_run", "control_run")}
    shown |= {rid for q in report.get("questions", []) for rid in q["runs"]}
    shown &= set(labels)
    for line in footer(report, labels, shown):
        console.print(f"[dim]{line}[/dim]", highlight=False)
    return console.export_text()
