"""`dlm demo`: the whole study offline on tiny-gpt2 and samples/, in about a minute on 2 CPU cores."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

from dlm.files import check_output_file, check_writable, shipped
from dlm.plan import run_plan
from dlm.results.report import next_step, render_report
from dlm.store.pointer import remember_results_dir
from dlm.study.cycle import say

DEMO_PLAN = shipped("plans") / "demo.yaml"  # in a checkout, or inside an installed wheel (setup.py)
# the phase-3 plan cut down to the tiny model, on samples/: runs offline, as printed, from any directory
TRY_A_PLAN = shlex.join(
    [
        "dlm",
        "plan",
        str(shipped("plans") / "phase3_finetune.yaml"),
        "--data-dir",
        str(shipped("samples")),
        "--set",
        "model=tiny-gpt2",
        "--set",
        "max_steps=20",
        "--set",
        "limit=30",
    ]
)
DEMO_NOTE = (
    "tiny-gpt2 (2 layers, 64 dims) on miniature sample data: these numbers demonstrate the pipeline, "
    "not the research answer"
)


def demo(results_dir: str = "dlm-demo", plot: str | None = "dlm-demo/demo.png") -> None:
    """Offline end to end: zero-shot, continued pretraining, SFT, pretrain -> SFT, each evaluated, then the report."""

    check_output_file(plot, ".png", "--plot")  # before the demo, not after it
    check_writable(results_dir, "--results-dir")
    samples = shipped("samples")
    # before any Hugging Face import: a hub call would otherwise hang for tens of seconds per attempt
    for name, value in {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DLM_DATA_DIR": str(samples),
        "TOKENIZERS_PARALLELISM": "false",
    }.items():
        os.environ.setdefault(name, value)
    started = time.time()
    say(f"demo: {DEMO_NOTE}")
    say(f"demo: data from {os.environ['DLM_DATA_DIR']}; records in {results_dir}")
    run_plan(
        str(DEMO_PLAN), results_dir=results_dir, report=False, checkpoints_dir=str(Path(results_dir) / "checkpoints")
    )

    remember_results_dir(results_dir)  # a plain `dlm report` reads the demo's records, even when no run was left
    render_report(runs_dir=results_dir, against="gpt-4", fmt="table", plot=plot)
    say(f"demo finished in {time.time() - started:.0f} s" + (f"; plot: {plot}" if plot else ""))
    say(f"[bold yellow]note: {DEMO_NOTE}.[/]")
    say(next_step(results_dir))
    say(f"then a shipped plan on the tiny model, offline: {TRY_A_PLAN}")
