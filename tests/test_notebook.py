"""notebooks/quickstart.ipynb as a fresh Colab machine meets it: opened alone in an empty folder where dlm is not
importable, its first code cell installs dlm (from a wheel built from this tree, or from a local git URL), every
cell runs on tiny-gpt2 and the samples shipped inside the package, the report is shown as an HTML page (not
markdown text), and a second execution resumes (writes no run again). Times: bench/notebook.py."""

from __future__ import annotations

import subprocess
import sys
from html import unescape

import pytest
from train_support import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import notebook as bare  # noqa: E402  (bench/notebook.py: the bare machine, shared with the benchmark)


@pytest.fixture
def machine(tmp_path):
    """A fresh bare machine per test (each one installs dlm itself): its kernels folder."""
    return bare.bare_machine(tmp_path / "machine")


def test_the_repository_address_is_written_once():
    sys.path.insert(0, str(ROOT / "notebooks"))
    import sync_repository

    assert sync_repository.main(["--check"]) == 0  # the notebook carries pyproject.toml's Repository
    text = bare.NOTEBOOK.read_text(encoding="utf-8")
    url = sync_repository.repository()
    assert f'repository = \\"{url}\\"' in text and sync_repository.colab_badge_url(url) in text
    assert "OWNER" not in text


def test_the_notebook_installs_dlm_in_a_bare_folder_runs_and_resumes(tmp_path, machine):
    wheel = bare.build_wheel(tmp_path / "wheel")
    folder = tmp_path / "bare"  # no repository beside the notebook
    folder.mkdir()
    parameters = {
        **bare.TINY_PARAMETERS,
        "workdir": str(folder / "study"),
        "wheel": str(wheel),
        "pip_args": bare.OFFLINE_PIP,
    }
    notebook, _ = bare.execute(folder, parameters, machine)
    text = bare.outputs(notebook)
    assert f"installing dlm from {wheel}" in text
    assert f"dlm from {tmp_path / 'machine'}" in text  # the copy installed into the bare machine, not a checkout
    assert "_shipped/samples" in text  # the data the notebook found: inside the installed package
    assert "training precision: fp32" in text  # CPU here
    assert "time estimate" in text or "training time estimates" in text
    assert "4 run(s) written this time" in text
    # the report, rendered as a page (not printed as markdown); dlm's own progress lines are rich's HTML here
    (page,) = [html for html in bare.html_outputs(notebook) if html.startswith("<iframe srcdoc=")]
    inner = unescape(page)
    assert '<table id="matrix">' in inner and "data:image/png;base64," in inner
    assert "| task |" not in text  # no raw markdown table anywhere
    assert len(list((folder / "study" / "runs").glob("*.json"))) >= 4
    assert not (folder / "samples").exists() and not (folder / "plans").exists()

    again, _ = bare.execute(folder, parameters, machine)
    assert "0 run(s) written this time" in bare.outputs(again)  # a lost session re-run: nothing is redone
    assert "installing dlm" not in bare.outputs(again)  # installed once


def test_the_install_cell_takes_a_git_url(tmp_path, machine):
    """From a local git URL (a bare clone of this repository's commit), as Colab would from GitHub."""
    clone = tmp_path / "dlm.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(ROOT), str(clone)], check=True)
    folder = tmp_path / "bare"
    folder.mkdir()
    parameters = {"repository": f"file://{clone}", "pip_args": bare.OFFLINE_PIP}
    notebook, _ = bare.execute(folder, parameters, machine, until=bare.INSTALL_CELL)
    text = bare.outputs(notebook)
    assert f"installing dlm from git+file://{clone}" in text and f"dlm from {tmp_path / 'machine'}" in text
