"""The docstring examples of the models package run and pass."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import nomoretuning.models as models_pkg

MODULES = ["nomoretuning.models"] + [
    f"nomoretuning.models.{m.name}" for m in pkgutil.iter_modules(models_pkg.__path__)
]


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_every_public_class_and_function_has_an_example() -> None:
    missing = []
    for name in models_pkg.__all__:
        obj = getattr(models_pkg, name)
        if callable(obj) and ">>>" not in (obj.__doc__ or ""):
            missing.append(name)
    assert missing == []


def test_models_layer_imports_only_torch_numpy_checks_and_core() -> None:
    import ast
    import pathlib

    allowed = (
        "torch",
        "numpy",
        "nomoretuning.checks",
        "nomoretuning.errors",
        "nomoretuning.core",
        "nomoretuning.models",
        "__future__",
    )
    stdlib = ("collections", "dataclasses", "typing", "inspect", "math")
    for path in pathlib.Path(models_pkg.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for mod in names:
                assert mod.startswith(allowed + stdlib), f"{path.name} imports {mod}"
