"""`dlm report --format html` opened in a real headless browser: the matrix table and every plot render.

    python bench/report_html.py                         # the demo's 4 tiny-gpt2 runs (~30 s), then the browser
    python bench/report_html.py --results-dir results/runs   # records already on disk
    python bench/report_html.py --tiny                  # 3 constructed records; the browser only if one is found

The browser is Chromium (Debian: `apt-get install chromium`; or --browser PATH to any Chromium/Chrome). Two
passes over the same file: a screenshot of the page as written, and --dump-dom of a copy with one probe script
appended that, once the page has loaded, writes what the browser decoded into the DOM (rows of table#matrix,
naturalWidth/Height of every <img>, every resource fetched that is not a data: URI). Checks: the matrix has one
row per base model x approach, every image decoded (naturalWidth > 0), nothing was fetched from outside the file,
and the screenshot is not blank. Without a browser (--tiny in CI) the browser checks are skipped and said so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from html import unescape
from pathlib import Path

import benchlib as common

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PROBE = """<script>
window.addEventListener("load", () => {
  const matrix = document.querySelector("table#matrix");
  const images = Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight, i.complete]);
  const fetched = performance.getEntriesByType("resource").map(e => e.name).filter(n => !n.startsWith("data:"));
  const out = document.createElement("pre");
  out.id = "dlm-probe";
  out.textContent = JSON.stringify({matrix_rows: matrix ? matrix.tBodies[0].rows.length : -1,
                                    matrix_header: matrix ? matrix.tHead.innerText : null,
                                    images: images, fetched: fetched, title: document.title});
  document.body.appendChild(out);
});
</script>"""
MIN_INK = 0.02  # share of non-white pixels below which a screenshot counts as blank


def find_browser(given: str | None) -> str | None:
    if given:
        return given
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def build_records(directory: Path, tiny: bool) -> None:
    if not tiny:  # the demo plan's real runs, without the demo's console report
        from dlm.demo import DEMO_PLAN
        from dlm.plan.runner import run_plan

        run_plan(
            str(DEMO_PLAN), results_dir=str(directory), report=False, checkpoints_dir=str(directory / "checkpoints")
        )
        return
    from dlm.store.records import write_record

    def score(task, value):
        return {
            "task": task,
            "metric": "f1_weighted",
            "value": value,
            "stderr": 0.02,
            "n": 100,
            "num_fewshot": 0,
            "filter": "none",
            "version": "1",
            "is_group": False,
        }

    for run_id, approach, value in (("a-zs", "zero-shot", 0.4), ("b-sft", "sft", 0.86), ("c-pre", "pretrain", 0.5)):
        record = {
            "schema_version": 1,  # the flat config shape of schema 1, migrated when written
            "run_id": run_id,
            "kind": "cycle",
            "status": "ok",
            "created_at": "2025-01-01",
            "approach": approach,
            "domain": None if approach == "zero-shot" else "finance",
            "model": {"name": "gpt2" if approach == "zero-shot" else f"checkpoints/{run_id}"},
            "eval": {"config": {"limit": None}, "scores": [score("dlm_fpb", value), score("dlm_tfns", value)]},
        }
        if approach != "zero-shot":
            record["train"] = {
                "config": {
                    "model": "gpt2",
                    "mode": approach if approach == "pretrain" else "sft",
                    "data": {"parts": [{"dataset": "x"}]},
                },
                "wall_time_s": 60.0,
            }
        write_record(directory, record)


def browse(browser: str, page: Path, screenshot: Path, width: int, height: int) -> tuple[dict, float]:
    """(what the probe saw, share of non-white pixels in the screenshot)."""
    flags = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={page.parent / 'profile'}",
    ]
    subprocess.run(
        [*flags, f"--screenshot={screenshot}", f"--window-size={width},{height}", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run(
        [*flags, "--dump-dom", "--virtual-time-budget=10000", probed.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    found = re.search(r'<pre id="dlm-probe">(.*?)</pre>', dom, re.S)
    seen = json.loads(unescape(found.group(1))) if found else {"error": "probe did not run (no load event?)"}
    from PIL import Image

    pixels = Image.open(screenshot).convert("L")
    histogram = pixels.histogram()
    ink = 1 - sum(histogram[250:]) / (pixels.width * pixels.height)
    return seen, ink


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--results-dir", default=None, help="records to render (default: run the demo plan into a temp dir)")
    p.add_argument("--browser", default=None, help="Chromium/Chrome binary (default: the first on PATH)")
    p.add_argument("--screenshot", default=None, help="keep the screenshot here (.png)")
    p.add_argument("--html", default=None, help="keep the HTML report here (.html)")
    p.add_argument("--window", default="1300,3000", help="browser window WIDTH,HEIGHT for the screenshot")
    args = common.parse(p, argv)
    from dlm.results.html import to_html
    from dlm.results.matrix import APPROACHES
    from dlm.results.report import build_report

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs = Path(args.results_dir) if args.results_dir else tmp / "runs"
        if not args.results_dir:
            started = time.perf_counter()
            build_records(runs, args.tiny)
            print(f"records: {'constructed' if args.tiny else 'demo plan'} in {time.perf_counter() - started:.1f} s")
        report = build_report(runs)
        started = time.perf_counter()
        html = to_html(report)
        render_s = time.perf_counter() - started
        page = tmp / "report.html"
        page.write_text(html, encoding="utf-8")
        expected_rows = len(report["matrix"]) * len(APPROACHES)
        embedded = html.count('src="data:image/png;base64,')
        print(
            f"html: {len(html) / 1024:.0f} KiB, {embedded} embedded PNG(s), to_html {render_s:.2f} s; "
            f"{len(report['runs'])} run(s), matrix rows expected {expected_rows}"
        )
        payload = {
            "bench": "report_html",
            "html_kib": len(html) / 1024,
            "to_html_s": render_s,
            "embedded_pngs": embedded,
            "expected_matrix_rows": expected_rows,
            "runs": len(report["runs"]),
        }
        browser = find_browser(args.browser)
        if browser is None:
            print("no Chromium/Chrome on PATH: browser checks skipped (apt-get install chromium, or --browser)")
            results = [common.result_line("browser_checks_passed", float("nan"), 1.0, False, "no browser found")]
            payload.update(results=results, browser=None)
            common.write_json(args.json_out, payload)
            return payload
        version = subprocess.run([browser, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
        shot = Path(args.screenshot) if args.screenshot else tmp / "report.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        width, height = (int(v) for v in args.window.split(","))
        started = time.perf_counter()
        seen, ink = browse(browser, page, shot, width, height)
        browse_s = time.perf_counter() - started
        if args.html:
            shutil.copyfile(page, args.html)
    images = seen.get("images") or []
    checks = {
        "matrix table with one row per model x approach": seen.get("matrix_rows") == expected_rows,
        "every image decoded (naturalWidth > 0)": bool(images) and all(w > 0 for w, _, _ in images),
        "as many decoded images as embedded PNGs": len(images) == embedded,
        "nothing fetched outside the file": seen.get("fetched") == [],
        "screenshot not blank": ink >= MIN_INK,
    }
    print(f"browser: {version} ({browse_s:.1f} s for screenshot + DOM)")
    print(
        f"saw: title {seen.get('title')!r}; table#matrix rows {seen.get('matrix_rows')} "
        f"(header {seen.get('matrix_header')!r}); images (naturalWidth x naturalHeight, complete) {images}; "
        f"fetched {seen.get('fetched')}; screenshot {ink:.1%} non-white"
        + (f"; {seen['error']}" if "error" in seen else "")
    )
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    if args.screenshot:
        print(f"screenshot: {shot}")
    passed = sum(checks.values())
    results = [
        common.result_line(
            "browser_checks_passed", passed / len(checks), 1.0, False, f"{passed}/{len(checks)} checks in {version}"
        )
    ]
    payload.update(results=results, browser=version, seen=seen, checks=checks, screenshot_ink=ink, browse_s=browse_s)
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
