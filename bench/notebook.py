"""The quickstart notebook as a fresh Colab machine meets it, timed: opened alone in an empty folder where dlm is not
importable, its first code cell installs dlm (here from a wheel built from this tree), then every cell runs on
tiny-gpt2 and the samples shipped inside the wheel, and the report is shown as an HTML page; a second execution
(a lost session, re-run) resumes and writes nothing again.

    python bench/notebook.py          # wheel build, then two executions from a bare folder: their times
    python bench/notebook.py --tiny   # wheel build and the install cell only (tests/test_notebook.py runs it all)

The "machine" is a throwaway venv that sees this environment's libraries (torch, transformers, ipykernel ...)
through a folder of links that leaves dlm out, so nothing is installed into the environment running this. pip
installs with --no-index: no network here, and every dependency is already visible. Helpers shared with the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import site
import subprocess
import sys
import time
from pathlib import Path

import benchlib as common

NOTEBOOK = common.ROOT / "notebooks" / "quickstart.ipynb"
KERNEL = "dlm-bare"
# what a machine without the repository runs with: the tiny model, the samples inside the installed package
TINY_PARAMETERS = {"model": "tiny-gpt2", "max_steps": 20, "limit": None, "data_dir": "samples"}
OFFLINE_PIP = ["--no-index", "--no-build-isolation"]  # dependencies are found installed; setuptools builds a git URL


def source_copy(dest: Path) -> Path:
    """The working tree's files (tracked, and new ones not ignored), copied: a build writes nothing into it."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=common.ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for rel in (p.decode() for p in listed if p):
        source = common.ROOT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    return dest


def build_wheel(work: Path) -> Path:
    """A wheel of the working tree (samples/ and plans/ inside it, setup.py), built offline."""
    tree = source_copy(work / "tree")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(work), str(tree)],
        check=True,
    )
    (wheel,) = work.glob("dlm-*.whl")
    return wheel


def bare_machine(root: Path) -> Path:
    """A venv where `import dlm` fails: this environment's packages are linked in, dlm's own entries left out
    (its editable hook lives in a .pth file, which a plain path entry never runs). Returns the kernels folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    own_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    linked = root / "linked-site-packages"
    linked.mkdir()
    for shared in site.getsitepackages():
        for entry in Path(shared).iterdir():
            if entry.name.startswith(("dlm-", "dlm.", "__editable__")) or entry.suffix == ".pth":
                continue
            if not (linked / entry.name).exists():
                (linked / entry.name).symlink_to(entry)
    (own_site / "environment.pth").write_text(f"{linked}\n")
    kernels = root / "share" / "jupyter"
    spec = kernels / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    return kernels


@contextlib.contextmanager
def machine_environment(kernels: Path):
    """The kernel's environment: no PYTHONPATH (which would find a checkout) and no DLM_DATA_DIR (the notebook must
    find the samples inside the installed package); the bare machine's kernel spec."""
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "DLM_DATA_DIR", "JUPYTER_PATH")}
    os.environ.pop("PYTHONPATH", None)
    os.environ.pop("DLM_DATA_DIR", None)
    os.environ["JUPYTER_PATH"] = str(kernels)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


INSTALL_CELL = 'find_spec("dlm")'  # text of the cell that installs dlm


def execute(folder: Path, parameters: dict, kernels: Path, until: str | None = None, timeout: int = 900):
    """Run the notebook in `folder` with `parameters` injected after the parameters cell, as papermill does (with
    `until`: only up to the first cell holding that text); returns (executed notebook, seconds)."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (index,) = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    injected = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(injected))
    if until is not None:
        last = next(i for i, c in enumerate(notebook.cells) if until in c.source)
        notebook.cells = notebook.cells[: last + 1]
    started = time.perf_counter()
    with machine_environment(kernels):
        client = NotebookClient(
            notebook, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(folder)}}
        )
        client.execute()
    return notebook, time.perf_counter() - started


def outputs(notebook) -> str:
    """Printed text and error text of every code cell."""
    return "".join(
        o.get("text", "") + "".join(o.get("traceback", []))
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
    )


def html_outputs(notebook) -> list[str]:
    return [
        o["data"]["text/html"]
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {})
    ]


def main(argv=None) -> dict:
    import tempfile

    p = common.parser(__doc__)
    args = common.parse(p, argv)
    work = Path(tempfile.mkdtemp(prefix="dlm-bench-notebook-"))
    try:
        started = time.perf_counter()
        wheel = build_wheel(work / "wheel")
        build_s = time.perf_counter() - started
        kernels = bare_machine(work / "machine")
        folder = work / "bare"
        folder.mkdir()
        parameters = {
            **TINY_PARAMETERS,
            "workdir": str(folder / "study"),
            "wheel": str(wheel),
            "pip_args": OFFLINE_PIP,
        }
        if args.tiny:
            notebook, first_s = execute(folder, parameters, kernels, until=INSTALL_CELL)
            again_s = float("nan")
        else:
            notebook, first_s = execute(folder, parameters, kernels)
            _, again_s = execute(folder, parameters, kernels)
        text = outputs(notebook)
        installed = "installing dlm from " in text and f"dlm from {work}" in text
        print(
            f"wheel build {build_s:.1f} s; first execution (install + 4 runs + report) {first_s:.1f} s; "
            f"re-run (resume) {again_s:.1f} s; installed into the bare machine: {installed}"
        )
        pages = [html for html in html_outputs(notebook) if html.startswith("<iframe srcdoc=")]
        if pages:
            print(
                f"report shown as an HTML page of {len(pages[-1]):,} characters, "
                f"{pages[-1].count('&lt;table')} tables, {pages[-1].count('data:image/png')} plots"
            )
        results = [common.result_line("notebook_bare_s", first_s, float("nan"), True, "first execution, seconds")]
        payload = {
            "bench": "notebook",
            "wheel_build_s": build_s,
            "first_s": first_s,
            "again_s": again_s,
            "installed": installed,
            "results": results,
        }
        common.write_json(args.json_out, payload)
        return payload
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
