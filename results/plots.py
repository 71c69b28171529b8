"""`dlm report --plot FILE.png`: % of the large model by approach x domain (one heatmap per base model), scores per
task beside the published number, and ablation curves (data fraction, model size) when such runs exist.
Draws only what the report data holds; matplotlib runs headless (Agg)."""
from __future__ import annotations

from pathlib import Path

from results.matrix import APPROACHES, DOMAINS

MAX_TASKS = 40  # bars beyond this are unreadable; the tables hold every task
MAX_CURVE_PANELS = 6  # one panel per task with a learning curve


def write_plots(report: dict, path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    against = ",".join(report["against"])
    models = sorted(report["matrix"])
    ablations = [(k, v) for k, v in report["ablations"].items() if v]
    curves = sorted((report.get("curves") or {}).items())[:MAX_CURVE_PANELS]
    panels = len(models) + 1 + len(ablations) + len(curves)
    fig, axes = plt.subplots(panels, 1, figsize=(12, 4.5 * panels), squeeze=False)
    axes = list(axes[:, 0])
    for ax, model in zip(axes, models):
        _heatmap(ax, report["matrix"][model], f"% of {against} — {model}")
    _task_bars(axes[len(models)], report, against)
    for ax, (kind, series) in zip(axes[len(models) + 1:], ablations):
        _curves(ax, kind, series)
    for ax, (task, by_run) in zip(axes[len(models) + 1 + len(ablations):], curves):
        _learning_curve(ax, task, by_run)
    if any(run["tiny"] for run in report["runs"]):
        fig.suptitle("tiny-gpt2 runs demonstrate the pipeline only", color="firebrick")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _heatmap(ax, matrix: dict, title: str) -> None:
    import numpy as np

    approaches, columns = list(APPROACHES), list(DOMAINS)
    grid = np.full((len(approaches), len(columns)), np.nan)
    for i, approach in enumerate(approaches):
        for j, col in enumerate(columns):
            cell = (matrix.get(approach) or {}).get(col)
            if cell and cell["mean_ratio"] is not None:
                grid[i, j] = 100 * cell["mean_ratio"]
    import matplotlib

    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")  # grey: no runs for that cell
    top = max(100.0, float(np.nanmax(grid)) if np.isfinite(grid).any() else 0.0)
    image = ax.imshow(grid, cmap=cmap, vmin=0, vmax=top, aspect="auto")
    ax.figure.colorbar(image, ax=ax, label="%")
    ax.set_xticks(range(len(columns)), [DOMAINS[c] for c in columns])
    ax.set_yticks(range(len(approaches)), [APPROACHES[a] for a in approaches])
    for i in range(len(approaches)):
        for j in range(len(columns)):
            text = "–" if np.isnan(grid[i, j]) else f"{grid[i, j]:.0f}%"
            dark = not np.isnan(grid[i, j]) and grid[i, j] < 0.6 * top
            ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
    ax.set_title(title)


def _task_bars(ax, report: dict, against: str) -> None:
    rows = [r for r in report["rows"] if r["primary"]]
    with_baseline = [r for r in rows if r["baseline_value"] is not None]
    rows = with_baseline or rows
    tasks = sorted({r["task"] for r in rows})[:MAX_TASKS]
    rows = [r for r in rows if r["task"] in tasks]
    runs = sorted({r["run_id"] for r in rows})
    width = 0.8 / max(len(runs), 1)
    for k, run in enumerate(runs):
        xs = [tasks.index(r["task"]) + k * width for r in rows if r["run_id"] == run]
        ys = [r["value"] for r in rows if r["run_id"] == run]
        label = next(f"{r['model']} {r['approach']}" for r in rows if r["run_id"] == run)
        ax.bar(xs, ys, width=width, label=f"{label} ({run[-16:]})")
    published = {r["task"]: r["baseline_value"] for r in with_baseline}
    for task, value in published.items():
        x = tasks.index(task)
        ax.hlines(value, x - 0.1, x + 0.8, colors="black", linestyles="dashed")
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(tasks))], tasks, rotation=30, ha="right")
    ax.set_ylim(0, 1.25)  # room above 1.0 for the legend
    ax.set_ylabel("score (primary metric)")
    ax.set_title(f"Scores per task (dashed: published {against} number)" if published else "Scores per task")
    if runs:
        ax.legend(fontsize="small", ncol=3, loc="upper left")


def _curves(ax, kind: str, series: dict) -> None:
    for label, points in series.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=label)
    if kind == "model_size":
        ax.set_xscale("log")
        ax.set_xlabel("total parameters")
    else:
        ax.set_xlabel("fraction of training data")
    ax.set_ylabel("score (primary metric)")
    ax.set_title("Data-size ablation" if kind == "data_fraction" else "Model-size ablation")
    ax.legend(fontsize="small")


def _learning_curve(ax, task: str, by_run: dict) -> None:
    """Score vs tokens seen for every run with curve points on `task` (error bars: the points' stderr)."""
    for run_id, points in sorted(by_run.items()):
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        errors = [p[2] or 0.0 for p in points]
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=run_id[-28:])
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("score (primary metric)")
    ax.set_title(f"Learning curve — {task}")
    ax.legend(fontsize="small")
