"""The package's own import graph: no cycle, sub-packages import only the layers below them, one installed
package, and the commands that must start instantly import no heavy library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# top to bottom: a module may import its own layer and anything below it, never above
LAYERS = [
    ("main", "dlm.cli", "dlm.__main__", "dlm.demo"),
    ("dlm.plan",),
    ("dlm.study", "dlm.settings"),
    ("dlm.results",),
    ("dlm.harness_tasks",),
    ("dlm.trainers",),
    ("dlm.data", "dlm.store"),
    ("dlm.config", "dlm.files", "dlm.quiet", "dlm.secrets", "dlm.signals", "dlm.errors", "dlm.words", "dlm"),
]


def _rank(module: str) -> int:
    for i, names in enumerate(LAYERS):
        if any(module == name or module.startswith(name + ".") for name in names if name != "dlm"):
            return i
    assert module == "dlm", module
    return len(LAYERS) - 1


def _modules() -> dict[str, Path]:
    found = {"main": REPO / "main.py"}
    for path in (REPO / "dlm").rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path], top_only: bool = False) -> set[str]:
    """Every project module `path` imports (at module level only with top_only, else inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_only else ast.walk(tree)
    out = set()
    for node in nodes:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_walker_sees_function_level_imports_and_finds_cycles():
    edges = graph()
    assert "dlm.data.loading" in edges["dlm.harness_tasks.loader"]  # a module-level import
    assert "dlm.demo" in edges["dlm.cli"]  # imported inside the `demo` command only
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_has_no_cycle():
    assert _cycle(graph()) is None


def test_imports_only_point_down():
    upward = [f"{src} -> {dst}" for src, dsts in graph().items() for dst in dsts if _rank(dst) < _rank(src)]
    assert upward == []


def test_the_wheel_installs_one_import_package():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    setup = project["tool"]["setuptools"]
    assert "py-modules" not in setup and setup["packages"]["find"]["include"] == ["dlm*"]
    assert project["project"]["scripts"] == {"dlm": "dlm.cli:main"}
    leftovers = [p.name for p in REPO.iterdir() if p.is_dir() and (p / "__init__.py").exists() and p.name != "dlm"]
    assert leftovers == []  # no other top-level package (tests/, bench/, samples/ are not packages)


def test_quick_commands_import_neither_torch_nor_transformers():
    probe = (
        "import sys; from dlm import cli\n"
        "for argv in (['--help'], ['tasks', 'list'], ['data', 'list']):\n"
        "    try: cli.main(argv)\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'lm_eval', 'trl', 'peft', 'datasets')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_report_loads_no_model_library():
    """`dlm report` recomputes aggregations only: torch, transformers and rouge-score (the per-document scoring of
    free-text answers, harness_tasks/text_answers.py) took ~2.5 s of every report's start-up."""
    probe = (
        "import sys; import dlm.results.report\n"
        "print(sorted(m for m in ('torch', 'transformers', 'rouge_score', 'trl', 'peft') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_library_modules_define_no_class_inside_a_function_without_saying_why():
    unexplained = []
    for path in (REPO / "dlm").rglob("*.py"):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.ClassDef)
                    and "# class here:" not in lines[inner.lineno - 2] + lines[inner.lineno - 1]
                ):
                    unexplained.append(f"{path.relative_to(REPO)}:{inner.lineno} {inner.name}")
    assert unexplained == []
