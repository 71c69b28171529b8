"""`dlm report --format html` and the report's figures: one self-contained file (parses, matrix table, plots as
decodable data: PNGs, nothing external, every text escaped); a heatmap scale that shows cells above the large
model; per-task bars with 95% error bars; legends by short run labels; ablation points with their stderr.

Records are constructed (results/report.py's own test helpers), so the file takes seconds. The real-browser check
is bench/report_html.py: Chromium is an apt package, not something pip can install here.
"""

from __future__ import annotations

import base64
import io
import math
from html.parser import HTMLParser

import pytest
from test_report import record, score, write_all

from dlm.results.html import to_html
from dlm.results.matrix import APPROACHES
from dlm.results.plots import Z95, figures, write_plots
from dlm.results.report import build_report, render_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVIL_TASK = "dlm_<script>alert(1)"
EVIL_DATA = "<i>data"  # becomes part of a run label


def trained(run_id, approach, value, stderr=0.02, fraction=1.0, dataset="x", curve=None, created="2025-01-02"):
    return record(
        run_id,
        approach,
        [score("dlm_fpb", value, stderr=stderr)],
        domain="finance",
        created=created,
        train={
            "config": {
                "model": "gpt2",
                "mode": "pretrain" if approach == "pretrain" else "sft",
                "data_fraction": fraction,
                "data": {"parts": [{"dataset": dataset}]},
            },
            "curve": curve or [],
        },
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    curve = [
        {
            "step": s,
            "tokens": 1000 * s,
            "task": "dlm_fpb",
            "metric": "f1_weighted",
            "value": v,
            "stderr": 0.03,
            "is_group": False,
        }
        for s, v in [(0, 0.2), (10, 0.5)]
    ]
    runs = [
        record(
            "20250101-000000-aaaaaaaa-eval-gpt2-zero-shot-baseline",
            "zero-shot",
            [score("dlm_fpb", 0.40, stderr=0.03), score(EVIL_TASK, 0.5)],
        ),
        trained(
            "20250102-000000-bbbbbbbb-sft-gpt2-twitter-financial-news-sentiment", "sft", 0.86, stderr=0.025, curve=curve
        ),
        trained(
            "20250103-000000-cccccccc-sft-gpt2-quarter-of-the-data", "sft", 0.60, fraction=0.25, created="2025-01-03"
        ),
        trained("20250104-000000-dddddddd-pretrain-gpt2-evil", "pretrain", 0.50, stderr=None, dataset=EVIL_DATA),
    ]
    directory = write_all(tmp_path_factory.mktemp("html") / "runs", runs)
    return build_report(directory)


class Page(HTMLParser):
    """Every start tag with its attributes, and the rows of each table by id."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.rows: dict[str, int] = {}
        self._table, self._in_body = None, False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("id")
            self.rows.setdefault(self._table, 0)
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows[self._table] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False


@pytest.fixture(scope="module")
def page(report):
    text = to_html(report)
    return text, Page(text)


def test_html_holds_the_matrix_every_score_and_the_runs(report, page):
    _, parsed = page
    assert parsed.rows["matrix"] == len(report["matrix"]) * len(APPROACHES)
    assert parsed.rows["scores"] == len(report["rows"])
    assert parsed.rows["runs"] == len(report["runs"])
    assert parsed.rows["verdicts"] == len(report["criteria"]) + len(report["hypotheses"])
    assert parsed.rows["questions"] == len(report["questions"]) == 5
    assert "headline" in parsed.rows


def test_plots_are_embedded_pngs_that_decode(page):
    from PIL import Image

    _, parsed = page
    sources = [a["src"] for tag, a in parsed.tags if tag == "img"]
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    for src in sources:
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == PNG_SIGNATURE
        image = Image.open(io.BytesIO(png))
        image.load()  # decodes every pixel: a truncated stream raises here
        assert image.width > 100 and image.height > 100


def test_nothing_external_is_referenced(page):
    _, parsed = page
    links = [a.get(key) for _, a in parsed.tags for key in ("src", "href") if a.get(key)]
    assert not [link for link in links if link.lower().startswith(("http:", "https:", "//", "file:"))]
    assert not [tag for tag, _ in parsed.tags if tag in ("link", "script", "iframe", "object")]


def test_record_text_is_escaped(report, page):
    text, parsed = page
    assert "<script>" not in text and "<i>" not in text
    assert "dlm_&lt;script&gt;alert(1)" in text
    evil = next(r["label"] for r in report["runs"] if "evil" in r["run_id"])
    assert EVIL_DATA in evil and evil.replace("<", "&lt;").replace(">", "&gt;") in text


def test_runs_are_named_by_label_and_mapped_to_their_ids_once(report, page):
    text, _ = page
    for run in report["runs"]:
        assert run["label"] != run["run_id"]
        assert text.count(f"<code>{run['run_id']}</code>") == 1  # the runs table


def test_render_report_writes_the_html_file(report, tmp_path, capsys):
    out = tmp_path / "report.html"
    render_report(report["runs_dir"], fmt="html", output=str(out))
    assert Page(out.read_text(encoding="utf-8")).rows["matrix"] == len(report["matrix"]) * len(APPROACHES)


# --- figures ------------------------------------------------------------------------------------------------------
def by_key(report: dict) -> dict:
    return {plot.key: plot.figure for plot in figures(report)}


def heatmap_report(percents: dict[str, float]) -> dict:
    cells = {approach: {"finance": {"mean_ratio": p / 100, "n": 1, "runs": ["r"]}} for approach, p in percents.items()}
    return {"against": ["gpt-4"], "runs": [], "rows": [], "matrix": {"gpt2": cells}, "ablations": {}, "curves": {}}


def drawn_heatmap(percents: dict[str, float]):
    """(cell colours by approach, the image) of a one-column heatmap, as drawn."""
    image = by_key(heatmap_report(percents))["heatmap:gpt2"].axes[0].images[0]
    colours = image.to_rgba(image.get_array())
    return {approach: tuple(colours[i, 0]) for i, approach in enumerate(APPROACHES) if approach in percents}, image


def test_heatmap_scale_does_not_saturate_at_the_large_model():
    colours, image = drawn_heatmap({"zero-shot": 40.0, "pretrain": 100.0, "sft": 110.0})
    assert colours["sft"] != colours["pretrain"]  # 110% is not drawn as 100%
    assert image.norm(100) == pytest.approx(0.5)  # diverging, neutral at the large model's score
    colourbar = image.figure.axes[1]
    assert 100 in [round(t) for t in colourbar.get_yticks()]
    colours, image = drawn_heatmap({"pretrain": 100.0, "sft": 110.0, "multitask": 260.0})
    assert len(set(colours.values())) == 3 and image.norm.vmax >= 260 and image.norm(260) <= 1


def test_task_bars_have_95_percent_error_bars_and_short_labels(report):
    from matplotlib.container import BarContainer

    ax = by_key(report)["scores"].axes[0]
    bars = [c for c in ax.containers if isinstance(c, BarContainer)]
    assert bars and all(c.errorbar is not None for c in bars)
    stderrs = {r["value"]: r["stderr"] for r in report["rows"] if r["primary"] and r["task"] == "dlm_fpb"}
    drawn = {}
    for container in bars:
        segments = container.errorbar.lines[2][0].get_segments()
        for bar, segment in zip(container.patches, segments):
            # an interval-less bar (NaN yerr) has an empty segment
            drawn[round(bar.get_height(), 6)] = abs(segment[1][1] - segment[0][1]) if len(segment) else math.nan
    for value, stderr in stderrs.items():
        if stderr is not None:
            assert drawn[round(value, 6)] == pytest.approx(2 * Z95 * stderr)
        else:  # no stderr in the record: no interval drawn
            assert math.isnan(drawn[round(value, 6)])
    legend = {t.get_text() for t in by_key(report)["scores"].legends[0].get_texts()}
    assert {
        r["label"] for r in report["runs"] if any(x["run_id"] == r["run_id"] and x["primary"] for x in report["rows"])
    } <= legend
    assert not any(r["run_id"] in text or r["run_id"][-16:] in text for r in report["runs"] for text in legend)


def test_ablation_points_carry_stderr_and_are_drawn_with_intervals(report):
    series = report["ablations"]["data_fraction"]
    assert series
    for points in series.values():
        assert all(len(p) == 3 for p in points)
        assert {(p[0], p[2]) for p in points} == {(1.0, 0.025), (0.25, 0.02)}
    ax = by_key(report)["ablation:data_fraction"].axes[0]
    assert ax.containers and all(c.has_yerr for c in ax.containers)


def test_learning_curves_are_labelled_by_short_labels(report):
    figure = by_key(report)["curve:dlm_fpb"]
    legend = {t.get_text() for t in figure.legends[0].get_texts()}
    sft = next(r for r in report["runs"] if "bbbbbbbb" in r["run_id"])
    assert sft["label"] in legend and sft["run_id"] not in legend


def test_write_plots_writes_one_png_of_every_figure(report, tmp_path):
    from PIL import Image

    path = write_plots(report, tmp_path / "p.png")
    stacked = Image.open(path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert stacked.height >= sum(int(f.get_figheight() * 100) for f in by_key(report).values()) - 4


def test_the_scores_table_is_folded_away_and_every_column_is_named(report, page):
    text, parsed = page
    table = text.index('<table id="scores">')
    assert text.rfind("<details>", 0, table) > text.rfind("</details>", 0, table)  # inside a closed <details>
    header = text[table : text.index("</thead>", table)]
    names = [h.split(">", 1)[1] for h in header.split("</th>")[:-1]]
    assert len(names) == 16 and all(name.strip() for name in names), names


def test_a_zero_bar_is_labelled_even_among_many(report):
    from dlm.results.plots import BAR_LABELS_UP_TO, _task_bars_figure

    run = report["runs"][0]
    rows = [
        {
            "task": f"dlm_t{i:02d}",
            "run_id": run["run_id"],
            "label": run["label"],
            "primary": True,
            "value": 0.0 if i == 3 else 0.5,
            "stderr": 0.01,
            "baseline_value": 0.8,
        }
        for i in range(BAR_LABELS_UP_TO + 6)  # too many bars to label each one
    ]
    ax = _task_bars_figure({"rows": rows, "runs": [run]}, "gpt-4").axes[0]
    labels = [t.get_text() for t in ax.texts if t.get_text()]
    assert labels == ["0.00"]
