"""`dlm report --format html`: the report as one self-contained HTML file a researcher can email or attach. No
external CSS, script, font or image: the style sheet is inline and the plots are PNGs in data: URIs.

Runs are named by their short labels (results/labels.py); the runs table lists label -> run id once. Every text
from the records (run ids, task names, sources, notes) goes through html.escape. Where a number needs its
provenance, the source or the protocol difference is both a hover title and a numbered footnote, so a printed
copy keeps it too.
"""

from __future__ import annotations

import base64
import math
from html import escape

from dlm.results.console import MISSING, fmt, fmt_score, fmt_seconds
from dlm.results.matrix import APPROACHES, DOMAINS
from dlm.results.plots import (
    Z95,
    figure_pngs,
    heat_colour,
    heat_norm,
    ink_for,
    matrix_percents,
)
from dlm.results.verdicts import pct

# how each score was obtained (the same abbreviations as the text report's scoring column)
SCORING = {"loglikelihood": "LL", "generative": "gen", "perplexity": "ppl", "mixed": "mixed"}
# the success criterion that decides each matrix column (results/verdicts.py names)
CRITERION_OF = {
    "finance": "Domain matching (finance)",
    "math": "Domain matching (math)",
    "general": "Domain matching (general)",
    "cross": "Transfer",
}
VERDICT_CLASS = {"met": "good", "supported": "good", "not met": "bad", "not supported": "bad", "answered": "good"}

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222; margin: 2em auto;
       max-width: 1250px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; vertical-align: top; text-align: left; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.domain td { background: #f7f7fb; font-weight: 600; }
.good { color: #1a7f37; font-weight: 600; } .bad { color: #b42318; font-weight: 600; } .open { color: #8a6d00; }
.warn { color: #b42318; } .meta, .small { color: #666; font-size: 12px; }
[title] { text-decoration: underline dotted #999; cursor: help; } td[title] { text-decoration: none; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { color: #555; font-size: 12px; } code { font-size: 12px; }
details summary { cursor: pointer; color: #1a4f9c; } .wide { overflow-x: auto; }
#scores td, #scores th { white-space: nowrap; padding: 2px 6px; }
"""


def to_html(report: dict) -> str:
    against = ",".join(report["against"])
    labels = {run["run_id"]: run.get("label") or run["run_id"] for run in report["runs"]}
    notes = Footnotes()
    scores = _scores_table(report, labels, notes, against)  # first: it numbers the footnotes the others reuse
    parts = [
        f"<h1>Small models against {escape(against)}</h1>",
        f'<p class="meta">{len(report["runs"])} run(s) from <code>{escape(report["runs_dir"])}</code>; '
        "every score comes from the run records; ratios, means and intervals are computed from them.</p>",
        _notes(report),
        "<h2>Headline: best small model per domain</h2>",
        _headline(report, labels, notes, against),
        f"<h2>% of {escape(against)} by approach and domain</h2>",
        _matrix(report, labels),
        "<h2>Success criteria and hypotheses</h2>",
        _verdicts(report, labels),
        "<h2>Research questions</h2>",
        _questions(report, labels),
        "<h2>Plots</h2>",
        _plots(report),
        "<h2>All scores</h2>",
        f"<details><summary>{len(report['rows'])} score(s): every task, metric and run (open to show)</summary>"
        f'<div class="wide">{scores}</div></details>',
        "<h2>Runs</h2>",
        _runs(report),
        _efficiency(report, labels),
        _no_number(report),
        "<h2>Footnotes</h2>",
        notes.html(),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>dlm report — {escape(against)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(p for p in parts if p)
        + "\n</body></html>\n"
    )


class Footnotes:
    """Numbered notes: protocol differences (≠1, ≠2 ...) and sources of the large-model numbers (s1, s2 ...)."""

    def __init__(self):
        self.protocol: dict[tuple, int] = {}
        self.sources: dict[str, int] = {}

    def protocol_mark(self, reasons: list[str]) -> str:
        if not reasons:
            return ""
        number = self.protocol.setdefault(tuple(reasons), len(self.protocol) + 1)
        return f'<a href="#p{number}" title="{escape("; ".join(reasons))}">≠{number}</a>'

    def source_mark(self, source: str | None) -> str:
        if not source:
            return ""
        number = self.sources.setdefault(source, len(self.sources) + 1)
        return f'<sup><a href="#s{number}" title="{escape(source)}">s{number}</a></sup>'

    def html(self) -> str:
        items = [f'<li id="p{n}">≠{n}: {escape("; ".join(r))}</li>' for r, n in self.protocol.items()]
        items += [f'<li id="s{n}">s{n}: {escape(s)}</li>' for s, n in self.sources.items()]
        return f'<ul class="small">{"".join(items)}</ul>' if items else '<p class="small">none</p>'


def _table(header: list[str], rows: list[str], table_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(rows) + "\n</tbody></table>"


def _td(text: str, cls: str = "", title: str | None = None, raw: str = "") -> str:
    """One cell of escaped `text` (+ `raw`, markup made here from escaped parts)."""
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{escape(title)}"' if title else "")
    return f"<td{attrs}>{escape(text)}{raw}</td>"


def _interval(value, stderr) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    if stderr is None or not math.isfinite(stderr):
        return f"{value:.4f}"
    return f"{value:.4f} [{value - Z95 * stderr:.4f}, {value + Z95 * stderr:.4f}]"


def _with_labels(text: str, labels: dict[str, str]) -> str:
    """Verdict details name runs by id; the short label reads better and the runs table maps it back."""
    for run_id in sorted(labels, key=len, reverse=True):
        text = text.replace(run_id, labels[run_id])
    return text


def _notes(report: dict) -> str:
    items = [
        f'<li class="{"warn" if note.startswith("tiny-gpt2") or note.startswith("⚠") else ""}">{escape(note)}</li>'
        for note in report["notes"]
    ]
    items += [f'<li class="warn">skipped {escape(s["file"])}: {escape(s["reason"])}</li>' for s in report["skipped"]]
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _published(row: dict) -> str:
    shots = "?" if row["baseline_shots"] is None else row["baseline_shots"]
    where = ", measured here" if row.get("baseline_measured") else ""
    return (
        f"{fmt_score(row['baseline_value'], row.get('baseline_stderr') if where else None)} "
        f"({row['baseline_model']}, {shots}-shot{where})" + (" *" if row["baseline_second_hand"] else "")
    )


def _headline(report: dict, labels: dict, notes: Footnotes, against: str) -> str:
    """Per domain the best run of the criterion that decides it (the verdict's own ranking), then that run's score on
    each of the domain's tasks with its 95% interval beside the large model's number."""
    criteria = {c["name"]: c for c in report["criteria"]}
    primary = {(r["run_id"], r["task"]): r for r in report["rows"] if r["primary"] and r["ratio"] is not None}
    out = []
    for domain, name in DOMAINS.items():
        criterion = criteria.get(CRITERION_OF[domain])
        if criterion is None:
            continue
        verdict = criterion["verdict"]
        cls = VERDICT_CLASS.get(verdict, "open")
        ranked = [e for e in criterion["evidence"] if "ratio" in e]
        if not ranked:
            out.append(
                f'<tr class="domain">{_td(name)}<td colspan="4">no deciding run</td>'
                f"{_td(verdict, cls, _with_labels(criterion['detail'], labels))}</tr>"
            )
            continue
        best = ranked[0]
        se = best["stderr"]
        interval = "" if se is None else f" [{pct(best['ratio'] - Z95 * se)}, {pct(best['ratio'] + Z95 * se)}]"
        out.append(
            f'<tr class="domain">{_td(name)}{_td(labels.get(best["run_id"], best["run_id"]))}'
            f'<td colspan="2">mean over {len(best["tasks"])} task(s)</td>'
            f"{_td(pct(best['ratio']) + interval, 'num')}"
            f"{_td(verdict, cls, _with_labels(criterion['detail'], labels))}</tr>"
        )
        for task in best["tasks"]:
            row = primary.get((best["run_id"], task))
            if row is None:
                continue
            low, high = (
                (
                    (row["value"] - Z95 * row["stderr"]) / row["baseline_value"],
                    (row["value"] + Z95 * row["stderr"]) / row["baseline_value"],
                )
                if row["stderr"] is not None and row["baseline_value"]
                else (None, None)
            )
            ratio = pct(row["ratio"]) + (f" [{pct(low)}, {pct(high)}]" if low is not None else "")
            out.append(
                f"<tr>{_td(task)}{_td(row['label'])}{_td(_interval(row['value'], row['stderr']), 'num')}"
                f"{_td(_published(row), raw=notes.source_mark(row['baseline_source']))}"
                f"{_td(ratio, 'num', raw=' ' + notes.protocol_mark(row['protocol_differs']))}<td></td></tr>"
            )
    header = ["domain / task", "best run", "score [95% interval]", against, f"% of {against} [95% interval]", "verdict"]
    return _table(header, out, "headline") if out else "<p>no criteria in this report</p>"


def _matrix(report: dict, labels: dict) -> str:
    """One row per base model and approach; cells coloured on the heatmap's scale (white = par, blue = above)."""
    out = []
    for model, matrix in sorted(report["matrix"].items()):
        grid = matrix_percents(matrix)
        norm = heat_norm([v for line in grid for v in line])
        for (approach, title), line in zip(APPROACHES.items(), grid):
            cells = []
            for col, value in zip(DOMAINS, line):
                if math.isnan(value):
                    cells.append(_td("n/a" if approach == "zero-shot" and col == "cross" else MISSING, "num"))
                    continue
                cell = matrix[approach][col]
                colour = heat_colour(value, norm)
                runs = ", ".join(labels.get(r, r) for r in cell["runs"])
                cells.append(
                    f'<td class="num" style="background:{colour};color:{ink_for(colour)}" '
                    f'title="{escape(f"runs: {runs}")}">{value:.1f}% (n={cell["n"]})</td>'
                )
            out.append(f"<tr>{_td(model)}{_td(title)}{''.join(cells)}</tr>")
    return _table(["model", "approach", *DOMAINS.values()], out, "matrix")


def _verdicts(report: dict, labels: dict) -> str:
    out = []
    for kind, items in (("criterion", report["criteria"]), ("hypothesis", report["hypotheses"])):
        for v in items:
            out.append(
                f"<tr>{_td(kind)}{_td(v['name'])}{_td(v['claim'])}"
                f"{_td(v['verdict'], VERDICT_CLASS.get(v['verdict'], 'open'))}"
                f"{_td(_with_labels(v['detail'] or '', labels), 'small')}</tr>"
            )
    return _table(["kind", "name", "claim", "verdict", "detail"], out, "verdicts")


def _questions(report: dict, labels: dict) -> str:
    rows = [
        f"<tr>{_td(q['name'])}{_td(q['question'])}{_td(q['verdict'], VERDICT_CLASS.get(q['verdict'], 'open'))}"
        f"{_td(_with_labels(q['answer'], labels), 'small')}</tr>"
        for q in report.get("questions", [])
    ]
    return _table(["", "question", "verdict", "answer"], rows, "questions")


def _plots(report: dict) -> str:
    out = []
    for plot, png in figure_pngs(report):
        data = base64.b64encode(png).decode("ascii")
        out.append(
            f'<figure><img alt="{escape(plot.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(plot.caption)}</figcaption></figure>"
        )
    return "\n".join(out) or "<p>nothing to plot</p>"


def _scores_table(report: dict, labels: dict, notes: Footnotes, against: str) -> str:
    rows = sorted(report["rows"], key=lambda r: (r["task_domain"] or "~", r["task"], r["metric"], r["label"]))
    out = []
    for row in rows:
        metric = row["metric"] if row["filter"] in (None, "none") else f"{row['metric']} ({row['filter']})"
        value = MISSING if row["value"] is None or not math.isfinite(row["value"]) else f"{row['value']:.4f}"
        other = row.get("other_protocol")
        beside = (
            MISSING
            if not other
            else f"{fmt_score(other['value'], other['stderr'])} ({SCORING.get(other['scoring'], other['scoring'])})"
        )
        published = MISSING if row["baseline_value"] is None else _published(row)
        out.append(
            "<tr>"
            + _td(row["task"] + (" (group)" if row["is_group"] else ""))
            + _td(metric)
            + _td(row["label"], title=row["run_id"])
            + _td(row["model"])
            + _td(row["approach"])
            + _td(SCORING.get(row.get("scoring"), row.get("scoring") or MISSING))
            + _td(value, "num")
            + _td(fmt(row["stderr"]), "num")
            + _td(fmt(row["n"]), "num")
            + _td(fmt(row["shots"]), "num")
            + _td(published, raw=notes.source_mark(row["baseline_source"]))
            + _td(pct(row["ratio"]), "num")
            + _td("", raw=notes.protocol_mark(row["protocol_differs"]))
            + _td(beside)
            + _td(f"⚠ overlap {row['contamination']}" if row["contamination"] else "", "warn")
            + ("<td>yes</td>" if row["primary"] else "<td></td>")
            + "</tr>"
        )
    header = [
        "task",
        "metric",
        "run",
        "model",
        "approach",
        "scoring",
        "score",
        "stderr",
        "n",
        "shots",
        against,
        "ratio",
        "protocol",
        "other protocol",
        "contamination",
        "primary metric",
    ]
    return _table(header, out, "scores")


def _runs(report: dict) -> str:
    out = [
        f"<tr>{_td(r['label'])}<td><code>{escape(r['run_id'])}</code></td>{_td(r['model'])}"
        f"{_td(r['approach'])}{_td(', '.join(r['train_domains']) or MISSING)}"
        f"{_td('yes' if r['tiny'] else '', 'warn')}</tr>"
        for r in report["runs"]
    ]
    return _table(["label", "run id", "base model", "approach", "training domains", "tiny"], out, "runs")


def _efficiency(report: dict, labels: dict) -> str:
    rows = report.get("efficiency") or []
    if not rows:
        return ""
    out = []
    for e in rows:
        peak = e["peak_memory_mb"]
        out.append(
            f"<tr>{_td(labels.get(e['run_id'], e['run_id']))}{_td(fmt_seconds(e['wall_time_s']), 'num')}"
            f"{_td(MISSING if peak is None else f'{peak:,.0f} MB', 'num')}"
            f"{_td(fmt(e['trainable_params']), 'num')}{_td(fmt(e['total_params']), 'num')}"
            f"{_td(fmt(e['mean_score']), 'num')}</tr>"
        )
    return "<h3>Cost</h3>" + _table(
        ["run", "training time", "peak memory", "trainable params", "total params", "mean score"], out, "efficiency"
    )


def _no_number(report: dict) -> str:
    missing = report.get("tasks_without_published_number") or {}
    if not missing:
        return ""
    items = "".join(f"<li>{escape(task)}{': ' + escape(why) if why else ''}</li>" for task, why in missing.items())
    return f'<h3>Tasks without a published number</h3><ul class="small">{items}</ul>'
