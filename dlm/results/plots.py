"""`dlm report --plot FILE.png` and the figures of `--format html`: % of the large model by approach x domain (one
heatmap per base model), scores per task with 95% intervals beside the large model's number, ablation curves
(data fraction, model size) and learning curves, when such runs exist.

Runs are named by their short labels (results/labels.py; the report lists label -> run id). Figures are built
on matplotlib's object API with the Agg canvas, never pyplot: headless, and no global backend switched under a
notebook's feet.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.colors import Normalize, TwoSlopeNorm, to_hex, to_rgb
from matplotlib.figure import Figure
from PIL import Image  # a dependency of matplotlib

from dlm.results.matrix import APPROACHES, DOMAINS

MAX_TASKS = 40  # bars beyond this are unreadable; the tables hold every task
MAX_CURVE_PANELS = 6  # one figure per task with a learning curve
Z95 = 1.96  # error bars are 95% normal intervals: value ± 1.96 stderr
PAR = 100.0  # % of the large model at which the heatmap is neutral
MIN_TOP = 2 * PAR  # the scale reaches at least 200%: as far above par as 0% is below it
HEAT_CMAP = "RdBu"  # red below the large model, blue above, white at par
BAR_LABELS_UP_TO = 24  # values printed on the bars while they stay legible
TINY_TITLE = "tiny-gpt2 runs demonstrate the pipeline only"
DPI = 100


class Plot(NamedTuple):
    key: str  # stable id: "heatmap:<model>", "scores", "ablation:<kind>", "curve:<task>"
    caption: str
    figure: object  # matplotlib.figure.Figure


def figures(report: dict) -> list[Plot]:
    """Every figure the report's data supports, in reading order."""
    against = ",".join(report["against"])
    labels = {run["run_id"]: run.get("label") or run["run_id"] for run in report["runs"]}
    tiny = any(run["tiny"] for run in report["runs"])
    plots = [
        Plot(
            f"heatmap:{model}",
            f"% of {against} by approach and domain — {model}",
            _heatmap_figure(report["matrix"][model], f"% of {against} — {model}"),
        )
        for model in sorted(report["matrix"])
    ]
    if any(r["primary"] for r in report["rows"]):
        plots.append(Plot("scores", f"Scores per task beside {against}", _task_bars_figure(report, against)))
    for kind, series in report["ablations"].items():
        if series:
            plots.append(Plot(f"ablation:{kind}", _ABLATION_TITLES.get(kind, kind), _ablation_figure(kind, series)))
    baselines = _baselines_by_task(report)
    for task, by_run in sorted((report.get("curves") or {}).items())[:MAX_CURVE_PANELS]:
        plots.append(
            Plot(
                f"curve:{task}",
                f"Learning curve — {task}",
                _learning_curve_figure(task, by_run, labels, baselines.get(task), against),
            )
        )
    if tiny:
        for plot in plots:
            plot.figure.suptitle(TINY_TITLE, color="firebrick")
    return plots


def png_bytes(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def figure_pngs(report: dict) -> list[tuple[Plot, bytes]]:
    """Each figure as PNG bytes (for embedding in HTML)."""
    return [(plot, png_bytes(plot.figure)) for plot in figures(report)]


def write_plots(report: dict, path: str | Path) -> Path:
    """All figures stacked into one PNG at `path`. Stacked as images rather than drawn as subplots of one figure,
    so each keeps the layout it has on its own (legends below the axes, widths by the number of bars)."""

    images = [Image.open(io.BytesIO(png)).convert("RGB") for _, png in figure_pngs(report)]
    if not images:
        images = [Image.open(io.BytesIO(png_bytes(_empty_figure()))).convert("RGB")]
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
    return path


def _palette(n: int) -> list:
    """n colours that stay distinct: tab10's repeat after 10 runs, which made two runs one colour."""

    if n <= 10:
        return list(matplotlib.colormaps["tab10"].colors)
    if n <= 20:
        return list(matplotlib.colormaps["tab20"].colors)
    cmap = matplotlib.colormaps["turbo"]
    return [cmap(i / (n - 1)) for i in range(n)]


def _figure(width: float, height: float):

    return Figure(figsize=(width, height), layout="constrained")


def _empty_figure():
    fig = _figure(8, 1.5)
    fig.text(0.5, 0.5, "no scores to plot", ha="center", va="center")
    return fig


# --- % of the large model ----------------------------------------------------------------------------------------
def heat_norm(values: list[float]):
    """0% .. max(200%, largest cell), white at 100%: cells above the large model get their own colours instead of
    saturating at 100%."""

    top = max([MIN_TOP] + [v for v in values if math.isfinite(v)])
    if top <= MIN_TOP:
        return Normalize(vmin=0, vmax=MIN_TOP)  # symmetric about par: equal distances, equal colour steps
    return TwoSlopeNorm(vmin=0, vcenter=PAR, vmax=math.ceil(top))


def heat_colour(percent: float, norm) -> str:
    """The heatmap's colour of `percent` as #rrggbb (the HTML matrix uses the same scale)."""

    return to_hex(matplotlib.colormaps[HEAT_CMAP](norm(percent)))


def ink_for(colour: str) -> str:
    """Black or white text, whichever reads on `colour` (relative luminance)."""

    r, g, b = to_rgb(colour)
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def matrix_percents(matrix: dict) -> list[list[float]]:
    """approach x domain grid of % of the large model, NaN where no run has a comparison."""
    return [
        [
            100 * cell["mean_ratio"]
            if (cell := (matrix.get(a) or {}).get(c)) and cell["mean_ratio"] is not None
            else math.nan
            for c in DOMAINS
        ]
        for a in APPROACHES
    ]


def _heatmap_figure(matrix: dict, title: str):

    grid = np.array(matrix_percents(matrix))
    norm = heat_norm(list(grid.flat))
    fig = _figure(10, 4.5)
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps[HEAT_CMAP].with_extremes(bad="lightgrey")  # grey: no runs for that cell
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
    bar = fig.colorbar(image, ax=ax, label="% of the large model")
    bar.ax.axhline(PAR, color="black", linewidth=2)  # the large model's own score
    ticks = sorted({0, 50, 80, PAR, 150, norm.vmax})
    bar.set_ticks(ticks, labels=[f"{t:.0f}%" + (" (par)" if t == PAR else "") for t in ticks])
    ax.set_xticks(range(len(DOMAINS)), list(DOMAINS.values()))
    ax.set_yticks(range(len(APPROACHES)), list(APPROACHES.values()))
    for i, approach in enumerate(APPROACHES):
        for j, col in enumerate(DOMAINS):
            value = grid[i, j]
            if np.isnan(value):
                text = "n/a" if approach == "zero-shot" and col == "cross" else "–"
                ax.text(j, i, text, ha="center", va="center", color="dimgrey")
                continue
            n = matrix[approach][col]["n"]
            ax.text(j, i, f"{value:.0f}%\n(n={n})", ha="center", va="center", color=ink_for(heat_colour(value, norm)))
    ax.set_title(title)
    return fig


# --- scores per task ---------------------------------------------------------------------------------------------
def _interval(stderr) -> float:
    """Half-width of the 95% interval; NaN (no bar drawn) where the record has no stderr."""
    return Z95 * stderr if isinstance(stderr, (int, float)) and math.isfinite(stderr) else math.nan


def _task_bars_figure(report: dict, against: str):
    rows = [r for r in report["rows"] if r["primary"] and r["value"] is not None and math.isfinite(r["value"])]
    with_baseline = [r for r in rows if r["baseline_value"] is not None]
    rows = with_baseline or rows
    tasks = sorted({r["task"] for r in rows})[:MAX_TASKS]
    rows = [r for r in rows if r["task"] in tasks]
    order = [run["run_id"] for run in report["runs"]]
    runs = sorted({r["run_id"] for r in rows}, key=lambda rid: (order.index(rid) if rid in order else len(order), rid))
    label = {r["run_id"]: r.get("label") or r["run_id"] for r in rows}
    width = 0.8 / max(len(runs), 1)
    ncol = min(len(runs) + 1, 4)
    legend_rows = math.ceil((len(runs) + 1) / ncol)
    fig = _figure(max(12.0, 1.5 + 0.22 * len(rows)), 5.0 + 0.28 * legend_rows)
    ax = fig.add_subplot()
    ax.set_prop_cycle(color=_palette(len(runs)))
    top, named = 1.0, False
    for k, run in enumerate(runs):
        mine = [r for r in rows if r["run_id"] == run]
        xs = [tasks.index(r["task"]) + (k - (len(runs) - 1) / 2) * width for r in mine]
        ys = [r["value"] for r in mine]
        errors = [_interval(r["stderr"]) for r in mine]
        bars = ax.bar(
            xs, ys, width=width, yerr=errors, capsize=2, label=label[run], error_kw={"elinewidth": 1, "ecolor": "black"}
        )
        # every value while they stay legible; beyond that the zeros only (a 0.00 bar, e.g. a twin that never named
        # a label, is otherwise invisible, as if the score were missing)
        every = len(rows) <= BAR_LABELS_UP_TO
        shown = [f"{y:.2f}" if every or y == 0 else "" for y in ys]
        for text in ax.bar_label(bars, labels=shown, fontsize=7, padding=2):
            text.set_bbox({"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8})
            text.set_zorder(3)  # above the large model's line
        top = max([top] + [y + (0 if math.isnan(e) else e) for y, e in zip(ys, errors)])
        # the large model's number each bar is compared against, drawn across the bar (one line per task where
        # every run meets the same number)
        for x, r in zip(xs, mine):
            if r["baseline_value"] is not None:
                ax.hlines(
                    r["baseline_value"],
                    x - width / 2,
                    x + width / 2,
                    colors="black",
                    linewidth=2,
                    label=None if named else against,
                )
                named, top = True, max(top, r["baseline_value"])
    ax.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_ylim(0, top * 1.1)
    ax.set_ylabel("score (primary metric)")
    ax.set_title(f"Scores per task, 95% intervals (black line: {against})" if with_baseline else "Scores per task")
    if runs:
        fig.legend(loc="outside lower center", ncol=ncol, fontsize="small", frameon=False)
    return fig


# --- ablations and learning curves -----------------------------------------------------------------------------------
_ABLATION_TITLES = {"data_fraction": "Data-size ablation", "model_size": "Model-size ablation"}


def _ablation_figure(kind: str, series: dict):
    fig = _figure(12, 4.5 + 0.25 * math.ceil(len(series) / 2))
    ax = fig.add_subplot()
    ax.set_prop_cycle(color=_palette(len(series)))
    for name, points in sorted(series.items()):
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        errors = [_interval(p[2] if len(p) > 2 else None) for p in points]
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=name)
    if kind == "model_size":
        ax.set_xscale("log")
        ax.set_xlabel("total parameters")
    else:
        ax.set_xlabel("fraction of training data")
    ax.set_ylabel("score (primary metric)")
    ax.set_title(f"{_ABLATION_TITLES.get(kind, kind)} (95% intervals)")
    fig.legend(loc="outside lower center", ncol=2, fontsize="small", frameon=False)
    return fig


def _baselines_by_task(report: dict) -> dict[str, float]:
    return {r["task"]: r["baseline_value"] for r in report["rows"] if r["primary"] and r["baseline_value"] is not None}


def _learning_curve_figure(task: str, by_run: dict, labels: dict, baseline: float | None, against: str):
    """Score vs tokens seen for every run with curve points on `task` (error bars: 95% intervals)."""
    fig = _figure(12, 4.5 + 0.25 * math.ceil((len(by_run) + 1) / 4))
    ax = fig.add_subplot()
    ax.set_prop_cycle(color=_palette(len(by_run)))
    for run_id, points in sorted(by_run.items(), key=lambda kv: labels.get(kv[0], kv[0])):
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        errors = [_interval(p[2]) for p in points]
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=labels.get(run_id, run_id))
    if baseline is not None:
        ax.axhline(baseline, color="black", linestyle="dashed", label=against)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("score (primary metric)")
    ax.set_title(f"Learning curve — {task} (95% intervals)")
    fig.legend(loc="outside lower center", ncol=4, fontsize="small", frameon=False)
    return fig
