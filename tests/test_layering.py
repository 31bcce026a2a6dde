"""The import graph runs one way: storage/media/engine below the pipeline, faces above it, no cycles.

Read from the source (AST), so a new import that breaks the architecture fails here, whatever it does at
run time. Imports under ``if TYPE_CHECKING:`` count too: a cycle for the type checker is still a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "streamup"
LOWER = ("streamup.storage", "streamup.media", "streamup.engine", "streamup.pipeline")
FACES = ("streamup.cli", "streamup.many", "streamup.worker", "streamup.metrics", "streamup.fanout",
         "streamup.observe", "streamup.progress", "streamup.doctor", "streamup.http_server")
#: Faces that reach the media only through the pipeline level (``upscale()``, its progress snapshots and
#: cancel event, ``streamup.pipeline.remux``), and what they must not import: PyAV and the layers below.
PIPELINE_USERS = ("streamup.cli", "streamup.many", "streamup.worker", "streamup.metrics", "streamup.fanout")
BELOW_PIPELINE = ("av", "streamup.media", "streamup.engine")
#: Known reaches below the pipeline level, each to be moved behind a pipeline-level function; a new one
#: fails the test below. Imports of ``streamup.engine`` under ``if TYPE_CHECKING:`` (engine types in
#: annotations) are allowed and not listed.
KNOWN_BELOW = {
    # `streamup models` lists and downloads weights: no pipeline-level function offers that yet.
    ("streamup.cli", "streamup.engine.weights"),
}


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


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING"))


def _all_imports(node: ast.AST, type_only: bool = False) -> list[tuple[str, bool]]:
    """(imported name, whether only under ``if TYPE_CHECKING:``) for every import, in functions too and
    third-party ones too; ``from a.b import c`` is ``a.b.c`` (a module or a name in ``a.b``)."""
    if isinstance(node, ast.Import):
        return [(a.name, type_only) for a in node.names]
    if isinstance(node, ast.ImportFrom):
        return [(f"{node.module}.{a.name}", type_only) for a in node.names] if node.module else []
    if _is_type_checking(node):
        assert isinstance(node, ast.If)
        return [i for child in node.body for i in _all_imports(child, True)] + \
            [i for child in node.orelse for i in _all_imports(child, type_only)]
    return [i for child in ast.iter_child_nodes(node) for i in _all_imports(child, type_only)]


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


def test_the_faces_above_the_pipeline_import_neither_pyav_nor_media_nor_engine() -> None:
    """cli, worker, metrics and fanout use the pipeline level only; PyAV, ``streamup.media`` and
    ``streamup.engine`` are reached through ``streamup.pipeline`` and ``streamup.pipeline.remux``."""
    found: set[tuple[str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        if not _within(name, PIPELINE_USERS):
            continue
        for target, type_only in _all_imports(ast.parse(path.read_text())):
            if type_only and _within(target, ("streamup.engine",)):
                continue  # engine types for annotations only
            if _within(target, BELOW_PIPELINE):
                found.add((name, target))
    unknown = sorted((m, t) for m, t in found if not any(m == k and _within(t, (p,)) for k, p in KNOWN_BELOW))
    assert unknown == []
    gone = sorted((k, p) for k, p in KNOWN_BELOW if not any(m == k and _within(t, (p,)) for m, t in found))
    assert gone == [], "no longer imported: remove from KNOWN_BELOW"


def test_the_import_scan_sees_what_it_must() -> None:
    """The scan above finds imports in functions and under ``if TYPE_CHECKING:``, and tells them apart."""
    tree = ast.parse(
        "import av\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from streamup.engine.base import FrameUpscaler\n"
        "def f():\n"
        "    from streamup.media import mux\n")
    assert sorted(_all_imports(tree)) == [("av", False), ("streamup.engine.base.FrameUpscaler", True),
                                          ("streamup.media.mux", False), ("typing.TYPE_CHECKING", False)]


#: The worker's AWS transports: its job queue (SQS) and its scale-in protection (Auto Scaling).
WORKER_TRANSPORTS = ("streamup.worker.sqs", "streamup.worker.scalein")
AWS = ("boto3", "botocore", "streamup.storage.aws")


def _imports_of(package: str) -> dict[str, list[str]]:
    """Module of ``package`` → every name it imports (in functions and under ``TYPE_CHECKING`` too)."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = _module(path)
        if _within(name, (package,)):
            found[name] = [target for target, _ in _all_imports(ast.parse(path.read_text()))]
    return found


def test_the_worker_never_imports_the_fan_out() -> None:
    """The fan-out is a job hook the CLI plugs into the worker; the worker does not know it exists."""
    found = {(m, t) for m, ts in _imports_of("streamup.worker").items() for t in ts
             if _within(t, ("streamup.fanout",))}
    assert sorted(found) == []


def test_only_the_worker_transport_speaks_aws() -> None:
    """The worker's logic speaks of a ``JobQueue`` and a busy hook; boto, botocore and the AWS helper stay
    in the transports behind them (``sqs``, ``scalein``)."""
    imports = _imports_of("streamup.worker")
    for transport in WORKER_TRANSPORTS:
        assert transport in imports and any(_within(t, AWS) for t in imports[transport])
    found = {(m, t) for m, ts in imports.items() if m not in WORKER_TRANSPORTS for t in ts if _within(t, AWS)}
    assert sorted(found) == []


#: The modules where an AWS transport lives: the only ones that may import boto3 or botocore (a new AWS
#: transport module is added here). Everything else speaks of ``InputError``/``OutputError`` and asks
#: ``storage.transient`` what a failure was.
AWS_TRANSPORTS = (
    "streamup.storage.aws", "streamup.storage.s3", "streamup.worker.sqs", "streamup.worker.scalein")


def test_boto_is_imported_only_where_an_aws_transport_lives() -> None:
    importers: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for target, _ in _all_imports(ast.parse(path.read_text())):
            if _within(target, ("boto3", "botocore")):
                importers.setdefault(_module(path), set()).add(target)
    assert "streamup.storage.aws" in importers, "the scan must see the shared AWS helper's imports"
    assert sorted(m for m in importers if m not in AWS_TRANSPORTS) == []
