"""The layering of ``docs/architecture.md``: imports go one way only, and nothing is circular.

Layers, lowest first: errors/checks/files < core < models < data < training < serving < cli. Every
import of every module under ``src/nomoretuning`` counts (at module level, inside functions, or
under ``TYPE_CHECKING``): a module may import its own layer or a lower one, never a higher one,
and no set of modules may import each other in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "nomoretuning"
LAYERS = {
    "errors": 0,
    "checks": 0,
    "files": 0,
    "core": 1,
    "models": 2,
    "data": 3,
    "training": 4,
    "serving": 5,
    "cli": 6,
}
"""Layer of each top-level part of the package."""
TOP = {f"{PACKAGE}": 1, f"{PACKAGE}.__main__": 6}
"""The package's own ``__init__`` (the public API, made of core) and ``python -m``'s entry."""
LAZY = {f"{PACKAGE}": {f"{PACKAGE}.serving"}}
"""Imports a module makes on first use of one of its attributes only (the package's
``__getattr__`` gives ``nomoretuning.load_run`` without importing pandas at ``import
nomoretuning``): allowed to reach up, since nothing is imported when the module is."""


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    if module in TOP:
        return TOP[module]
    return LAYERS[module.split(".")[1]]


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _imports(module: str) -> set[str]:
    """The package modules that ``module`` imports (``from pkg import sub`` names ``pkg.sub``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    targets: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if _is_package(module) else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            names = [
                f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
                for alias in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # "nomoretuning.a.b.C" -> "nomoretuning.a.b"
                name = name.rpartition(".")[0]
            if name.startswith(PACKAGE) and name != module:
                targets.add(name)
    return targets


GRAPH = {module: _imports(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_reaches_up_a_layer(module: str) -> None:
    lazy = LAZY.get(module, set())
    upward = sorted(t for t in GRAPH[module] - lazy if _layer(t) > _layer(module))
    assert not upward, f"{module} (layer {_layer(module)}) imports higher layers: {upward}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The sets of two or more modules that import each other (Tarjan's strongly connected
    components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, set())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_no_modules_import_each_other() -> None:
    assert not _cycles(GRAPH), f"modules importing each other: {_cycles(GRAPH)}"


def test_the_checks_catch_an_upward_import_and_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _layer("nomoretuning.data.batching") > _layer("nomoretuning.models.features")
    assert _layer("nomoretuning.cli.main") > _layer("nomoretuning.training.trainer")
    assert "nomoretuning.training.checkpoint" in _imports("nomoretuning.training.trainer")
