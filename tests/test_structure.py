"""The project's own import graph: no cycle, and packages import only the layers below them."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# top to bottom: a module may import its own package and anything to its right, never to its left
LAYERS = [("cli", "main"), ("study",), ("results",), ("harness_tasks",), ("trainers",), ("dlm_data",)]
RANK = {name: i for i, names in enumerate(LAYERS) for name in names}


def _modules() -> dict[str, Path]:
    found = {"cli": REPO / "cli.py", "main": REPO / "main.py"}
    for package in ("study", "results", "harness_tasks", "trainers", "dlm_data"):
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module `path` imports, at module level or inside functions."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
                return path[path.index(nxt):] + [nxt]
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
    assert "dlm_data.data" in edges["harness_tasks.loader"]  # a module-level import
    assert "study.cycle" in edges["study.settings"]  # imported inside cycle_from_settings only
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_has_no_cycle():
    assert _cycle(graph()) is None


def test_imports_only_point_down():
    upward = [f"{src} -> {dst}" for src, dsts in graph().items() for dst in dsts
              if RANK[dst.split(".")[0]] < RANK[src.split(".")[0]]]
    assert upward == []


def test_the_wheel_installs_no_generic_top_level_module():
    import tomllib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert not {"main", "pipeline", "plan_file"} & set(setup["py-modules"])
    assert not (REPO / "pipeline.py").exists() and not (REPO / "plan_file.py").exists()
