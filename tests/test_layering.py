"""The import graph runs one way: storage/media/engine below the pipeline, faces above it, no cycles.

Read from the source (AST), so a new import that breaks the architecture fails here, whatever it does at
run time. Imports under ``if TYPE_CHECKING:`` count too: a cycle for the type checker is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "streamup"
LOWER = ("streamup.storage", "streamup.media", "streamup.engine", "streamup.pipeline", "streamup.flow")
FACES = ("streamup.cli", "streamup.worker", "streamup.metrics", "streamup.fanout", "streamup.observe",
         "streamup.progress", "streamup.doctor", "streamup.http_server")


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module → the package modules it imports. ``from streamup.engine import tiling`` is an edge to the
    module ``streamup.engine.tiling``; ``from streamup.engine.base import FrameUpscaler`` to its module."""
    trees = {_module(path): ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, tree in trees.items():
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("streamup"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in trees else node.module)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in trees)
        graph[name] = targets - {name}
    return graph


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_layers_below_the_pipeline_never_import_a_face() -> None:
    graph = _imports()
    wrong = sorted((m, t) for m, ts in graph.items() if _within(m, LOWER) for t in ts if _within(t, FACES))
    assert wrong == []


def test_nothing_imports_the_package_root_back() -> None:
    assert sorted(m for m, ts in _imports().items() if "streamup" in ts and m != "streamup") == []


def test_there_are_no_import_cycles() -> None:
    graph = _imports()
    package_inits = {m for m in graph if (PACKAGE / Path(*m.split(".")[1:]) / "__init__.py").exists()}
    # a package's __init__ re-exporting its own submodules is not a cycle with them
    edges = {m: {t for t in ts if not (m in package_inits and t.startswith(m + "."))}
             for m, ts in graph.items()}
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str], on_path: set[str], done: set[str]) -> None:
        for nxt in sorted(edges[node]):
            if nxt in on_path:
                cycles.append([*path[path.index(nxt):], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt], on_path | {nxt}, done)
        done.add(node)

    done: set[str] = set()
    for start in sorted(edges):
        if start not in done:
            visit(start, [start], {start}, done)
    assert cycles == []
