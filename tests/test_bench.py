"""Every benchmark script under bench/ starts and finishes at its --tiny size.

The benchmarks themselves do not run in CI (they take minutes to hours and need a quiet machine); this only keeps
them from rotting as the code they measure changes. Each script runs in this process (imports are shared, so the
whole file costs seconds, not a fresh interpreter per script); cli_startup spawns its own short processes.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if p.stem not in ("benchlib", "study_gen"))  # libraries


def load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


def test_every_script_is_covered():
    expected = {
        "cli_startup",
        "cycle",
        "eval_vs_lm_eval",
        "gpu",
        "lora_memory",
        "memory_estimate",
        "mfu",
        "packing",
        "pretrain_step",
        "sft_throughput",
        "streaming",
        "report_scale",
        "twins",
        "api_throughput",
        "time_estimate",
        "plan_jobs",
        "coverage",
    }
    assert expected <= set(SCRIPTS)


# the slowest tiny runs (whole plans in subprocesses, a real API server): `pytest -m slow` runs them
SLOW_SCRIPTS = {"plan_jobs", "api_throughput"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_SCRIPTS else n for n in SCRIPTS])
def test_script_runs_tiny(name, tiny_model_dir, capsys):
    module = load(name)
    payload = module.main(["--tiny"])
    out = capsys.readouterr().out
    assert payload and payload.get("bench") == name
    assert "RESULT " in out, out[-2000:]  # every script ends with its ratio line(s)
    if name == "cycle":  # the one thing a tiny run does measure: the trained model reaches the evaluator as is
        assert payload["weight_reads"] == 1
