"""The package's layers, checked on its import graph (an `ast` walk; nothing is imported).

- no import cycle between modules (module-level imports, `if TYPE_CHECKING:` blocks excluded; importing
  `a.b.c` also runs the packages `a` and `a.b`, so those count too);
- the engine (`_export`) reaches destinations only through the seam (`_destinations/base.py`) and
  `as_destination` (`_destinations/__init__.py`);
- destinations import nothing of the engine or the command line, and no destination imports another;
- the mapping layer reads of the destinations only Autopilot's standard fields, a leaf;
- the HTTP plumbing (`_http/`) imports no layer above it;
- the sandbox imports nothing from the parent package (a fake never shares code with what it checks);
- `_errors.py`, the root of the error tree, imports nothing from the package at run time;
- no module is longer than 600 lines.

Layer rules count every run-time import, also those inside functions; only `TYPE_CHECKING` imports are
left out (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import autopilot_segments

PACKAGE_DIR = Path(autopilot_segments.__file__).resolve().parent
PACKAGE = "autopilot_segments"
MAX_LINES = 600


def _module_name(path: Path) -> str:
    parts = (PACKAGE, *path.relative_to(PACKAGE_DIR).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], *, nested: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement of `body` with whether it sits in a function, skipping `if TYPE_CHECKING:` blocks."""
    for node in body:
        yield node, nested
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse, nested=nested)
            continue
        inner = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or nested
        for field in ("body", "orelse", "finalbody", "handlers"):
            children = getattr(node, field, None)
            if isinstance(children, list):
                statements = [c for c in children if isinstance(c, ast.stmt)]
                for handler in (c for c in children if isinstance(c, ast.ExceptHandler)):
                    statements.extend(handler.body)
                yield from _statements(statements, nested=inner)
        if isinstance(node, ast.Match):
            for case in node.cases:
                yield from _statements(case.body, nested=inner)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _imports(module: str) -> Iterator[tuple[str, bool]]:
    """(imported package module, inside a function?) for every run-time import of `module`."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node, nested in _statements(tree.body, nested=False):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(module, node)
            targets = [source]
            # `from . import x` imports the submodule x
            targets += [f"{source}.{a.name}" for a in node.names if f"{source}.{a.name}" in MODULES]
        for target in targets:
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                yield _existing(target), nested


def _existing(target: str) -> str:
    while target not in MODULES:
        target = target.rpartition(".")[0]
    return target


def _ancestors(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _runtime_imports(module: str) -> set[str]:
    return {target for target, _ in _imports(module)} - {module}


def _module_level_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        edges: set[str] = set()
        own = set(_ancestors(module)) | ({module} if _is_package(module) else set())
        for target, nested in _imports(module):
            if nested:
                continue
            # Importing a.b.c first runs a and a.b (unless they are already running: our own packages).
            edges.update(a for a in _ancestors(target) if a not in own)
            edges.add(target)
        graph[module] = edges - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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


def _within(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


def _layer(layer: str) -> list[str]:
    return [m for m in MODULES if _within(m, f"{PACKAGE}.{layer}")]


def test_the_walk_sees_the_package() -> None:
    # A walk that found nothing would pass every rule below.
    assert len(MODULES) > 100
    graph = _module_level_graph()
    assert f"{PACKAGE}._destinations.base" in graph[f"{PACKAGE}._export.batch"]
    assert f"{PACKAGE}._destinations.base" in graph[f"{PACKAGE}._destinations.autopilot.destination"]
    # importing a.b.c runs a.b: the package __init__ counts as an import
    assert f"{PACKAGE}._destinations" in graph[f"{PACKAGE}._export.batch"]


def test_no_import_cycle() -> None:
    assert _cycles(_module_level_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_engine_reaches_destinations_only_through_the_seam() -> None:
    allowed = {f"{PACKAGE}._destinations", f"{PACKAGE}._destinations.base"}
    offending = {
        (module, target)
        for module in _layer("_export")
        for target in _runtime_imports(module)
        if _within(target, f"{PACKAGE}._destinations") and target not in allowed
    }
    assert offending == set()


def test_destinations_import_neither_the_engine_nor_the_command_line() -> None:
    offending = {
        (module, target)
        for module in _layer("_destinations")
        for target in _runtime_imports(module)
        if any(_within(target, f"{PACKAGE}.{layer}") for layer in ("_export", "_cli", "_saved"))
    }
    assert offending == set()


@pytest.mark.parametrize("platform", ["autopilot", "ortto"])
def test_no_destination_imports_another(platform: str) -> None:
    own = f"{PACKAGE}._destinations.{platform}"
    others = [
        f"{PACKAGE}._destinations.{p.name}"
        for p in (PACKAGE_DIR / "_destinations").iterdir()
        if p.is_dir() and p.name != platform and not p.name.startswith("__")
    ]
    assert others
    offending = {
        (module, target)
        for module in _layer(f"_destinations.{platform}")
        for target in _runtime_imports(module)
        if any(_within(target, other) for other in others)
    }
    assert offending == set(), own


def test_the_mapping_reads_only_autopilots_field_leaf_of_the_destinations() -> None:
    leaf = f"{PACKAGE}._destinations.autopilot.fields"
    assert _runtime_imports(leaf) == set()
    above = ("_destinations", "_export", "_cli", "_saved", "sandbox")
    offending = {
        (module, target)
        for module in _layer("_mapping")
        for target in _runtime_imports(module)
        if any(_within(target, f"{PACKAGE}.{layer}") for layer in above) and target != leaf
    }
    assert offending == set()


def test_the_http_plumbing_imports_no_layer_above_it() -> None:
    above = ("_mapping", "_destinations", "_export", "_cli", "_saved", "sources", "sandbox")
    offending = {
        (module, target)
        for module in _layer("_http")
        for target in _runtime_imports(module)
        if any(_within(target, f"{PACKAGE}.{layer}") for layer in above)
    }
    assert _layer("_http")
    assert offending == set()


def test_the_sandbox_imports_nothing_from_the_parent_package() -> None:
    sandbox = f"{PACKAGE}.sandbox"
    offending = {
        (module, target)
        for module in _layer("sandbox")
        for target in _runtime_imports(module)
        if not _within(target, sandbox)
    }
    assert offending == set()


def test_the_error_root_imports_nothing_from_the_package() -> None:
    assert _runtime_imports(f"{PACKAGE}._errors") == set()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_longer_than_600_lines(module: str) -> None:
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module].relative_to(PACKAGE_DIR)}: {lines} lines; split it"
