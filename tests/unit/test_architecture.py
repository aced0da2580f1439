"""The house rules of the code base, checked: thin handlers, layers that do not leak, no import
circles, rooms of a readable size, and the dead code that must not come back."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
LOCAL = ROOT / "local"
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
MAX_HANDLER_LINES = 120
MAX_MODULE_LINES = 500
HEAVY = ("httpx", "httpcore", "boto3", "botocore", "yaml")


def module_name(path: Path, base: Path) -> str:
    parts = list(path.relative_to(base).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(base: Path) -> dict[str, Path]:
    return {module_name(p, base): p for p in base.rglob("*.py") if "__pycache__" not in p.parts}


def top_level_imports(path: Path, name: str) -> set[str]:
    """Modules imported when `path` is imported: module level, not under TYPE_CHECKING and
    not inside functions (those run later and cannot form an import-time circle)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                if isinstance(node, ast.Try):
                    for handler in node.handlers:
                        visit(handler.body)

    visit(tree.body)
    return found


def import_graph(base: Path, prefix: str) -> dict[str, set[str]]:
    known = {n for n in modules(base) if n.startswith(prefix)}
    graph: dict[str, set[str]] = {}
    for name, path in modules(base).items():
        if name in known:
            graph[name] = {m for m in top_level_imports(path, name) if m in known and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return found


@pytest.mark.parametrize("handler", HANDLERS, ids=lambda p: p.parent.name)
def test_handlers_are_thin(handler: Path) -> None:
    text = handler.read_text()
    assert len(text.splitlines()) <= MAX_HANDLER_LINES
    for factory in ("@cache", "lru_cache", "cached_property", "functools.cache"):
        assert factory not in text, f"{handler.parent.name} builds its own cached {factory}"


def test_deciding_loads_no_http_aws_or_yaml() -> None:
    probe = (
        "import json, sys; import nbkeeper.keeper.decide; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_slack_edge_imports_no_domain_room() -> None:
    for name, path in modules(SHARED).items():
        if not name.startswith("nbkeeper.slack"):
            continue
        tree = ast.parse(path.read_text())
        imported = {
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        } | {
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        }
        leaks = [
            m
            for m in imported
            if m.startswith(("nbkeeper.keeper", "nbkeeper.chatops", "nbkeeper.worker"))
        ]
        assert leaks == [], f"{name} imports {leaks}"


@pytest.mark.parametrize(("base", "prefix"), [(SHARED, "nbkeeper"), (LOCAL, "nbkeeper_local")])
def test_no_import_circles(base: Path, prefix: str) -> None:
    assert cycles(import_graph(base, prefix)) == []


def test_the_cycle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_rooms_stay_readable() -> None:
    """No module of the layer over 500 lines; the schemas are one catalogue, kept whole."""
    long = {
        name: lines
        for name, path in modules(SHARED).items()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert set(long) <= {"nbkeeper.modelarts.schemas"}, long


DEAD = ("probe_limits", "describe_candidates", "ErrorBody", "BUTTON_TEXT_MAX", '"adopted"')


@pytest.mark.parametrize("name", DEAD)
def test_dead_code_stays_dead(name: str) -> None:
    for base in (SHARED, LOCAL, ROOT / "functions"):
        for path in base.rglob("*.py"):
            assert name not in path.read_text(), f"{name} is back in {path}"


def test_pass_outcomes_are_not_shaped_twice() -> None:
    from nbkeeper.keeper.report import NotebookOutcome

    assert not hasattr(NotebookOutcome, "as_dict")  # decision_detail shapes the figures once
