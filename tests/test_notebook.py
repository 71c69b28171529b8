"""notebooks/quickstart.ipynb runs headless in a real Jupyter kernel (nbclient + ipykernel) on tiny-gpt2 and
samples/, every cell, and a second execution resumes (writes no run again)."""

from __future__ import annotations

import time
from pathlib import Path

from train_support import ROOT

NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def execute(workdir: Path, max_steps: int = 20):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (index,) = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    injected = (
        f"model = 'tiny-gpt2'\nmax_steps = {max_steps}\nlimit = None\ndata_dir = 'samples'\n"
        f"workdir = {str(workdir)!r}\ninstall = False"
    )
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(injected))  # what papermill does with -p
    started = time.perf_counter()
    NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    ).execute()
    return notebook, time.perf_counter() - started


def outputs(notebook) -> str:
    return "".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_the_quickstart_notebook_runs_and_resumes(tmp_path):
    notebook, seconds = execute(tmp_path / "study")
    text = outputs(notebook)
    assert "training precision: fp32" in text  # CPU here
    assert "time estimate" in text or "training time estimates" in text
    assert "4 run(s) written this time" in text
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, "the report's plots are shown inline"
    assert len(list((tmp_path / "study" / "runs").glob("*.json"))) >= 4
    assert seconds < 180
    again, _ = execute(tmp_path / "study")
    assert "0 run(s) written this time" in outputs(again)  # a lost session re-run: nothing is redone
