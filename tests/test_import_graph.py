"""The `landmarks` package imports without cycles, lazy imports included.

A cycle that Python tolerates today (an import inside a function, or one under
TYPE_CHECKING) still ties two modules together: neither can be read, tested or moved
without the other, and the next top-level import turns it into an ImportError. So every
`import` and `from ... import` statement counts, wherever it sits in the module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "landmarks"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    where: str  # path:line of the import statement, for the failure message


def module_names(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under `package_dir`."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(package_dir.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module a dotted name lands in: itself, or the closest enclosing module."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imported_names(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool
) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        # A relative import counts from the module's package (itself, for an __init__).
        package = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}" if base else package
    # `from pkg import name` imports the submodule pkg.name when there is one, else pkg.
    for alias in node.names:
        yield f"{base}.{alias.name}" if alias.name != "*" else base


def import_edges(modules: dict[str, Path], root: Path) -> list[Edge]:
    """Every import of one of `modules` by another, wherever the statement is."""
    edges = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        dynamic = _imports_by_name(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = list(_imported_names(node, module, is_package))
            elif dynamic and isinstance(node, ast.Constant) and node.value in modules:
                names = [node.value]
            else:
                continue
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != module:
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    edges.append(Edge(module, target, where))
    return edges


def _imports_by_name(tree: ast.Module) -> bool:
    """Whether the module imports modules named by strings (`importlib.import_module`).

    Then every string in it that names a module of the package counts as an import of
    it: `landmarks.cli` lists its subcommand modules in a tuple and imports them in a loop.
    """
    return any(
        isinstance(node, ast.Attribute | ast.Name)
        and (node.attr if isinstance(node, ast.Attribute) else node.id) == "import_module"
        for node in ast.walk(tree)
    )


def find_cycles(edges: list[Edge]) -> list[list[Edge]]:
    """One cycle, as its edges, for each strongly connected group of modules (Tarjan)."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(group, graph) for group in groups]


def _cycle_in(group: set[str], graph: dict[str, dict[str, Edge]]) -> list[Edge]:
    """A shortest way from the group's first module back to itself, inside the group."""
    start = min(group)
    paths: dict[str, list[Edge]] = {start: []}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt, edge in sorted(graph[node].items()):
                if nxt == start:
                    return [*paths[node], edge]
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], edge]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start} in its own strongly connected group")


def describe(cycle: list[Edge]) -> str:
    steps = " -> ".join([cycle[0].source, *(edge.target for edge in cycle)])
    return (
        steps + "\n" + "\n".join(f"    {e.source} imports {e.target} at {e.where}" for e in cycle)
    )


def test_landmarks_import_graph_has_no_cycle() -> None:
    modules = module_names(ROOT / PACKAGE)
    cycles = find_cycles(import_edges(modules, ROOT))
    assert not cycles, "import cycles in landmarks/:\n" + "\n".join(map(describe, cycles))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


# The check itself must see the cycles that Python lets through at import time.
@pytest.mark.parametrize(
    ("files", "expected"),
    [
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/sub/__init__.py": "",
                "pkg/sub/run.py": "from pkg.sub import report\n",
                "pkg/sub/report.py": (
                    "from typing import TYPE_CHECKING\n"
                    "if TYPE_CHECKING:\n    from pkg.sub.run import Result\n"
                ),
            },
            "pkg.sub.report -> pkg.sub.run -> pkg.sub.report",
            id="type-checking-import",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/a.py": "import pkg.b\n",
                "pkg/b.py": "from . import c\n",
                "pkg/c.py": "def later():\n    from .a import thing\n",
            },
            "pkg.a -> pkg.b -> pkg.c -> pkg.a",
            id="lazy-relative-import",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "from pkg.run import main\n",
                "pkg/run.py": "from pkg import helper\n",
            },
            "pkg -> pkg.run -> pkg",
            id="name-from-the-package-init",
        ),
        pytest.param(
            {
                "pkg/__init__.py": "",
                "pkg/cli.py": (
                    "import importlib\n"
                    "MODULES = ('pkg.sub',)\n"
                    "def main():\n"
                    "    for name in MODULES:\n"
                    "        importlib.import_module(name)\n"
                ),
                "pkg/sub.py": "def register():\n    from pkg.cli import main\n",
            },
            "pkg.cli -> pkg.sub -> pkg.cli",
            id="import-module-by-name",
        ),
    ],
)
def test_cycle_check_finds_hidden_cycles(
    tmp_path: Path, files: dict[str, str], expected: str
) -> None:
    _write(tmp_path, files)
    cycles = find_cycles(import_edges(module_names(tmp_path / "pkg"), tmp_path))
    assert [describe(c).splitlines()[0] for c in cycles] == [expected]


def test_cycle_check_passes_a_package_init_that_imports_its_modules(tmp_path: Path) -> None:
    # A submodule importing a sibling submodule through the package is not a cycle with
    # the package's __init__, which merely re-exports.
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.run import main\n",
            "pkg/run.py": "from pkg import report\n",
            "pkg/report.py": "import json\n",
        },
    )
    assert find_cycles(import_edges(module_names(tmp_path / "pkg"), tmp_path)) == []
