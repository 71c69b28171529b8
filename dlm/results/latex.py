"""`dlm report --format latex`: the report's tables for a paper, as one LaTeX document that compiles as it is
(article + booktabs + geometry + array, all in TeX Live's latex-recommended set); each table is a float to copy.

    dlm report --format latex --output tables.tex

Tables: the headline per domain (the best run of the criterion that decides it, then that run's score on each
task with its 95% interval beside the large model's number), the approach x domain matrix (mean % of the large
model with a 95% interval), the verdicts (effect with its interval; the corrected p or q and its family where
the report carries them, a dash otherwise) and the runs (label -> run id). Rounding is one rule everywhere:
scores 3 decimals, percentages 1 decimal, p and q 3 decimals (below 0.001: <0.001). Every cell whose comparison
is not like-for-like carries a numbered mark; the notes under its table say why. A report that holds tiny-model
runs says so in every caption. Every text from the records goes through `escape`.

`latex_view` is the one function that reads the report's structure (results/report.py build_report's dict); the
rest renders what it returns, so a change of the report's shape (typed records, corrected verdicts) is met there.
"""

from __future__ import annotations

import math

from dlm.results.matrix import APPROACHES, DOMAINS, TINY_NOTE, TRAINED_APPROACHES
from dlm.results.plots import Z95

DASH = "--"
# the success criterion that decides each matrix column (results/verdicts.py names)
CRITERION_OF = {
    "finance": "Domain matching (finance)",
    "math": "Domain matching (math)",
    "general": "Domain matching (general)",
    "cross": "Transfer",
}
SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
# symbols the report's texts use, which pdflatex's default fonts lack
SYMBOLS = {
    "≠": r"$\neq$",
    "±": r"$\pm$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
    "−": "-",
    "–": "--",
    "—": "---",
    "∞": r"$\infty$",
    "⚠": "(!)",
    "→": r"$\rightarrow$",
    "…": "...",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "·": r"$\cdot$",
    "√": r"$\surd$",
    "\u00a0": "~",
}


def escape(text) -> str:
    """`text` as LaTeX prints it literally: the ten specials (and < > |) escaped, the report's symbols as LaTeX,
    any other character outside Latin-1 as '?' (pdflatex would stop on it)."""
    out = []
    for char in str(text):
        if char in SPECIALS:
            out.append(SPECIALS[char])
        elif char in SYMBOLS:
            out.append(SYMBOLS[char])
        elif ord(char) > 0xFF:
            out.append("?")
        else:
            out.append(char)
    return "".join(out)


# --- numbers, one rounding rule -------------------------------------------------------------------------------
def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def score_text(value, low=None, high=None) -> str:
    if not _finite(value):
        return DASH
    interval = f" [{low:.3f}, {high:.3f}]" if _finite(low) and _finite(high) else ""
    return f"{value:.3f}{interval}"


def percent_text(ratio, low=None, high=None) -> str:
    """A ratio as % (1 decimal), with its interval in % when known; `\\%` is LaTeX's percent sign."""
    if ratio is None:
        return DASH
    if math.isinf(ratio):
        return r"$\infty$"
    if not _finite(ratio):
        return DASH
    interval = f" [{100 * low:.1f}, {100 * high:.1f}]" if _finite(low) and _finite(high) else ""
    return f"{100 * ratio:.1f}{interval}"


def probability_text(p) -> str:
    if not _finite(p):
        return DASH
    return "$<$0.001" if p < 0.001 else f"{p:.3f}"


def signed_text(value, low=None, high=None) -> str:
    if not _finite(value):
        return DASH
    interval = f" [{low:+.3f}, {high:+.3f}]" if _finite(low) and _finite(high) else ""
    return f"{value:+.3f}{interval}"


# --- the adapter: the report's structure -> what the tables show ------------------------------------------------
def latex_view(report: dict) -> dict:
    """What the LaTeX tables show, read from build_report's dict (the only place that knows its keys)."""
    labels = {run["run_id"]: run.get("label") or run["run_id"] for run in report["runs"]}
    return {
        "against": ",".join(report["against"]),
        "tiny": any(run.get("tiny") for run in report["runs"]),
        "headline": _headline(report, labels),
        "matrix": _matrix(report),
        "verdicts": _verdicts(report),
        "runs": [
            {"label": labels[r["run_id"]], "run_id": r["run_id"], "model": r["model"], "approach": r["approach"]}
            for r in report["runs"]
        ],
        "runs_dir": report["runs_dir"],
    }


def _ratio_bounds(row: dict) -> tuple[float | None, float | None]:
    """A row's ratio interval: its score's 95% interval over the published number (taken as exact)."""
    if not _finite(row.get("stderr")) or not row.get("baseline_value"):
        return None, None
    base = row["baseline_value"]
    return (row["value"] - Z95 * row["stderr"]) / base, (row["value"] + Z95 * row["stderr"]) / base


def _headline(report: dict, labels: dict) -> list[dict]:
    criteria = {c["name"]: c for c in report["criteria"]}
    primary = {(r["run_id"], r["task"]): r for r in report["rows"] if r["primary"] and r["ratio"] is not None}
    out = []
    for column, name in DOMAINS.items():
        criterion = criteria.get(CRITERION_OF[column])
        if criterion is None:
            continue
        ranked = [e for e in criterion["evidence"] if "ratio" in e]
        entry = {"domain": name, "verdict": criterion["verdict"], "best": None, "tasks": []}
        if ranked:
            best = ranked[0]
            se = best.get("stderr")
            entry.update(
                best=labels.get(best["run_id"], best["run_id"]),
                ratio=best["ratio"],
                low=best["ratio"] - Z95 * se if _finite(se) else None,
                high=best["ratio"] + Z95 * se if _finite(se) else None,
                n_tasks=len(best["tasks"]),
            )
            for task in best["tasks"]:
                row = primary.get((best["run_id"], task))
                if row is None:
                    continue
                se = row.get("stderr")
                low, high = _ratio_bounds(row)
                entry["tasks"].append(
                    {
                        "task": task,
                        "metric": row["metric"],
                        "shots": row.get("shots"),
                        "scoring": row.get("scoring"),
                        "source": row.get("baseline_source"),
                        "second_hand": bool(row.get("baseline_second_hand")),
                        "measured": bool(row.get("baseline_measured")),
                        "score": (
                            row["value"],
                            row["value"] - Z95 * se if _finite(se) else None,
                            row["value"] + Z95 * se if _finite(se) else None,
                        ),
                        "baseline": row["baseline_value"],
                        "baseline_model": row["baseline_model"],
                        "baseline_shots": row["baseline_shots"],
                        "ratio": (row["ratio"], low, high),
                        "differs": list(row.get("protocol_differs") or []),
                    }
                )
        out.append(entry)
    return out


def _columns(row: dict) -> list[str]:
    """The matrix columns a row counts in (results/matrix.py columns_of, on the report's row dicts)."""
    domain, train_domains = row.get("task_domain"), set(row.get("train_domains") or [])
    if domain is None:
        return []
    if row.get("approach") not in TRAINED_APPROACHES or domain in train_domains:
        return [domain] if domain in DOMAINS else []
    return ["cross"] if train_domains else []


def _matrix(report: dict) -> list[dict]:
    """One line per base model and approach; each cell the mean % with a 95% interval from the rows it averages
    (normal approximation: tasks independent, published numbers exact). The interval is given only when those
    rows are exactly the cell's (same count and mean); a mark names every cell with a non-like-for-like row."""
    members: dict[tuple, list[dict]] = {}
    for row in report["rows"]:
        if row["primary"] and row["ratio"] is not None:
            for column in _columns(row):
                members.setdefault((row["model"], row["approach"], column), []).append(row)
    out = []
    for model, approaches in sorted(report["matrix"].items()):
        for approach, title in APPROACHES.items():
            cells = approaches.get(approach) or {}
            if not cells:
                continue
            line = []
            for column in DOMAINS:
                cell = cells.get(column)
                if cell is None or cell["mean_ratio"] is None:
                    line.append(None)
                    continue
                rows = members.get((model, approach, column)) or []
                same = len(rows) == cell["n"] and math.isclose(
                    sum(r["ratio"] for r in rows) / max(len(rows), 1), cell["mean_ratio"], rel_tol=1e-9, abs_tol=1e-12
                )
                ses = [r["stderr"] / r["baseline_value"] for r in rows if _finite(r["stderr"]) and r["baseline_value"]]
                low = high = None
                if same and rows and len(ses) == len(rows):
                    se = math.sqrt(sum(s * s for s in ses)) / len(rows)
                    low, high = cell["mean_ratio"] - Z95 * se, cell["mean_ratio"] + Z95 * se
                differs = sorted({reason for r in rows for reason in r.get("protocol_differs") or []})
                line.append({"mean": cell["mean_ratio"], "low": low, "high": high, "n": cell["n"], "differs": differs})
            out.append({"model": model, "approach": title, "cells": line})
    return out


def _correction(verdict: dict) -> dict | None:
    """The multiple-comparison correction of a verdict where the report carries one: {"label": "p (Holm)" | "q (BH)",
    "value", "family"}; None otherwise (printed as a dash). Read from `verdict["correction"]` ({"method", "value",
    "family"}) or from `p_holm` / `q_bh` and `family` beside the verdict or its difference."""
    found = verdict.get("correction")
    if isinstance(found, dict) and _finite(found.get("value")):
        method = str(found.get("method") or "").lower()
        label = "q (BH)" if method in ("bh", "fdr_bh", "benjamini-hochberg") else f"p ({method.capitalize() or '?'})"
        return {"label": label, "value": found["value"], "family": found.get("family")}
    for source in (verdict, verdict.get("difference") or {}):
        for key, label in (("p_holm", "p (Holm)"), ("q_bh", "q (BH)")):
            if _finite(source.get(key)):
                return {"label": label, "value": source[key], "family": source.get("family") or verdict.get("family")}
    return None


def _verdicts(report: dict) -> list[dict]:
    out = []
    for kind, items in (("criterion", report["criteria"]), ("hypothesis", report["hypotheses"])):
        for v in items:
            difference = v.get("difference") or {}
            ci = difference.get("ci95") or [None, None]
            out.append(
                {
                    "kind": kind,
                    "name": v["name"],
                    "claim": v["claim"],
                    "verdict": v["verdict"],
                    "effect": (difference.get("absolute"), ci[0], ci[1]),
                    "pairs": difference.get("pairs"),
                    "correction": _correction(v),
                }
            )
    return out


# --- rendering --------------------------------------------------------------------------------------------------
SCORING = {"loglikelihood": "LL", "generative": "gen", "perplexity": "ppl", "mixed": "mixed"}


class Marks:
    """Numbered marks for non-like-for-like cells, and s-numbered ones for the sources of the large model's
    numbers; each table lists the notes of the marks it used."""

    def __init__(self):
        self.numbers: dict[tuple, int] = {}
        self.used: list[int] = []
        self.sources: dict[str, int] = {}
        self.used_sources: list[int] = []

    def source(self, text: str | None) -> str:
        if not text:
            return ""
        number = self.sources.setdefault(text, len(self.sources) + 1)
        if number not in self.used_sources:
            self.used_sources.append(number)
        return f"$^{{s{number}}}$"

    def mark(self, reasons: list[str]) -> str:
        if not reasons:
            return ""
        number = self.numbers.setdefault(tuple(reasons), len(self.numbers) + 1)
        if number not in self.used:
            self.used.append(number)
        return f"$^{{{number}}}$"

    def notes(self) -> list[str]:
        """The notes of the marks used since the last call, in the order first used."""
        reasons = {n: r for r, n in self.numbers.items()}
        lines = [f"$^{{{n}}}$ not like-for-like: {escape('; '.join(reasons[n]))}." for n in sorted(self.used)]
        texts = {n: t for t, n in self.sources.items()}
        lines += [f"$^{{s{n}}}$ {escape(texts[n])}" for n in sorted(self.used_sources)]
        self.used, self.used_sources = [], []
        return lines


def _float(caption: str, columns: str, header: list[str], body: list[str], notes: list[str], label: str) -> str:
    lines = [
        r"\begin{table}[htbp]",
        r"\centering",
        r"\small",
        rf"\caption{{{caption}}}",
        rf"\label{{tab:dlm-{label}}}",
        rf"\begin{{tabular}}{{{columns}}}",
        r"\toprule",
        " & ".join(header) + r" \\",
        r"\midrule",
        *(body or [r"\multicolumn{" + str(len(header)) + r"}{l}{nothing to show} \\"]),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if notes:
        lines += [r"\par\smallskip", r"\begin{minipage}{0.95\linewidth}\footnotesize"]
        lines += [note + r"\par" for note in notes]
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines)


def _caption(text: str, view: dict) -> str:
    tiny = rf" \emph{{{escape(TINY_NOTE)}}}" if view["tiny"] else ""
    return escape(text) + tiny


def _headline_table(view: dict, marks: Marks) -> str:
    against = escape(view["against"])
    body = []
    for entry in view["headline"]:
        verdict = escape(entry["verdict"])
        if entry["best"] is None:
            body.append(
                rf"\textbf{{{escape(entry['domain'])}}} & \multicolumn{{4}}{{l}}{{no deciding run}} & {verdict} \\"
            )
            continue
        body.append(
            rf"\textbf{{{escape(entry['domain'])}}} & {escape(entry['best'])} & "
            rf"mean of {entry['n_tasks']} task(s) & & "
            rf"{percent_text(entry['ratio'], entry['low'], entry['high'])} & {verdict} \\"
        )
        for task in entry["tasks"]:
            shots = "?-shot" if task["baseline_shots"] is None else f"{task['baseline_shots']}-shot"
            where = ", measured here" if task["measured"] else ""
            published = (
                f"{task['baseline']:.3f} ({escape(task['baseline_model'])}, {shots}{where})"
                + ("*" if task["second_hand"] else "")
                + marks.source(task["source"])
            )
            ours = ", ".join(
                x
                for x in (
                    escape(task["metric"]),
                    SCORING.get(task["scoring"], escape(task["scoring"] or "")),
                    "" if task["shots"] is None else f"{task['shots']}-shot",
                )
                if x
            )
            body.append(
                rf"\quad {escape(task['task'])} ({ours}) & & {score_text(*task['score'])} & "
                rf"{published} & {percent_text(*task['ratio'])}{marks.mark(task['differs'])} & \\"
            )
    caption = _caption(
        f"Headline: the best small model per domain against {view['against']}. Score with its 95% interval "
        f"(LL: options ranked by log-likelihood, gen: answer read from generated text); % of {view['against']} "
        "with its 95% interval (the published number taken as exact; s: its source; *: read in a copy or "
        "summary of the source).",
        view,
    )
    header = ["Domain / task", "Best run", "Score [95\\% CI]", against, f"\\% of {against} [95\\% CI]", "Verdict"]
    return _float(caption, "llrlrl", header, body, marks.notes(), "headline")


def _matrix_table(view: dict, marks: Marks) -> str:
    body = []
    for line in view["matrix"]:
        cells = []
        for cell in line["cells"]:
            if cell is None:
                cells.append(DASH)
                continue
            cells.append(
                f"{percent_text(cell['mean'], cell['low'], cell['high'])} ({cell['n']}){marks.mark(cell['differs'])}"
            )
        body.append(" & ".join([escape(line["model"]), escape(line["approach"]), *cells]) + r" \\")
    caption = _caption(
        f"% of {view['against']} by approach and domain: mean over the tasks with a published number (count in "
        "parentheses) with its 95% interval (normal approximation, tasks independent).",
        view,
    )
    header = ["Model", "Approach", *(escape(name) for name in DOMAINS.values())]
    return _float(caption, "llrrrr", header, body, marks.notes(), "matrix")


def _verdicts_table(view: dict) -> str:
    body = []
    for v in view["verdicts"]:
        correction = v["correction"]
        corrected = (
            DASH if correction is None else f"{escape(correction['label'])} {probability_text(correction['value'])}"
        )
        family = DASH if correction is None or not correction.get("family") else escape(correction["family"])
        body.append(
            rf"{escape(v['kind'])} & {escape(v['name'])} & {escape(v['claim'])} & {escape(v['verdict'])} & "
            rf"{signed_text(*v['effect'])} & {corrected} & {family} \\"
        )
    caption = _caption(
        "Success criteria and hypotheses. Effect: treated − control (absolute) with its paired 95% interval; "
        "corrected p or q and its family where the report carries them, a dash otherwise.",
        view,
    )
    header = ["Kind", "Name", "Claim", "Verdict", "Effect [95\\% CI]", "Corrected", "Family"]
    return _float(caption, "llp{5.2cm}lrll", header, body, [], "verdicts")


def _runs_table(view: dict) -> str:
    body = [
        rf"{escape(r['label'])} & \texttt{{{escape(r['run_id'])}}} & {escape(r['model'])} & {escape(r['approach'])} \\"
        for r in view["runs"]
    ]
    caption = _caption(f"Runs (records in {view['runs_dir']}).", view)
    return _float(caption, "llll", ["Label", "Run id", "Model", "Approach"], body, [], "runs")


def to_latex(report: dict) -> str:
    view = latex_view(report)
    marks = Marks()
    tables = [_headline_table(view, marks), _matrix_table(view, marks), _verdicts_table(view), _runs_table(view)]
    return "\n".join(
        [
            "% dlm report --format latex: every number from the run records; tables need booktabs (and array).",
            r"\documentclass[10pt]{article}",
            r"\usepackage[landscape,margin=1.5cm]{geometry}",
            r"\usepackage{booktabs}",
            r"\usepackage{array}",
            r"\begin{document}",
            "",
            "\n\n".join(tables),
            "",
            r"\end{document}",
            "",
        ]
    )
