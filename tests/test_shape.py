"""The tree keeps its shape: no import cycle among the project's modules (imports inside functions
count, since they run too), no module over the size limit, nothing under ``resources/`` that knows
the project, and no private Dagster import."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("efficientai_assets", "resources", "sensors", "benchmarks")
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imported_names(path: Path) -> Iterator[str]:
    """Every module name an import statement anywhere in the file may refer to."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for imported in _imported_names(path):
            # `from a.b import c` names module a.b.c when it exists, else a name inside a.b.
            target = imported if imported in modules else None
            if target is None:
                parent = imported.rpartition(".")[0]
                target = (
                    imported if imported in modules else (parent if parent in modules else None)
                )
            if target and target != name:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_project_modules() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_over_the_line_limit() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _modules().values()
        if (lines := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert too_long == {}, f"split these modules (limit {MAX_LINES} lines): {too_long}"


def test_resources_know_the_tool_not_the_project() -> None:
    graph = import_graph()
    leaks = {
        name: sorted(t for t in targets if not t.startswith("resources"))
        for name, targets in graph.items()
        if name.startswith("resources")
        and any(t.split(".")[0] in ("efficientai_assets", "sensors") for t in targets)
    }
    assert leaks == {}


# The one exception, pinned to Dagster 1.13.27: its in-process executor's pool wait never sleeps
# (min(0, ...)), and no public setting changes that; the module re-assembles the executor around
# a context whose wait sleeps (docs/operations.md, tests/operations/test_pool_wait.py).
PRIVATE_DAGSTER_ALLOWED = {"resources/in_process_executor.py"}


def test_no_private_dagster_import() -> None:
    private = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in [*_modules().values(), *(ROOT / "tests").rglob("*.py")]
        for name in _imported_names(path)
        if name.startswith("dagster._") or name.startswith("dagster_shared")
        if str(path.relative_to(ROOT)) not in PRIVATE_DAGSTER_ALLOWED
    )
    assert private == []
