"""The typed stub ``_evserver.pyi`` describes the engine module as built: the same functions,
classes and public methods, no more and no fewer."""

from __future__ import annotations

import ast
from pathlib import Path

import evserver
import evserver._evserver as engine

STUB = Path(evserver.__file__).with_name("_evserver.pyi")


def _stub() -> ast.Module:
    assert STUB.is_file(), f"the stub is not installed with the package: {STUB}"
    return ast.parse(STUB.read_text())


def _public(names: list[str]) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def test_the_stub_names_every_function_and_class_of_the_module() -> None:
    tree = _stub()
    named = {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    }
    assert named == _public(dir(engine))


def test_the_stub_names_each_class_s_public_methods() -> None:
    for node in _stub().body:
        if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
            continue
        stubbed = {
            item.name
            for item in node.body
            if isinstance(item, ast.FunctionDef)
            and not (item.name.startswith("__") or item.name == "_")
        }
        stubbed |= {
            item.target.id
            for item in node.body
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
        }
        assert stubbed == _public(dir(getattr(engine, node.name))), node.name


def test_the_stub_is_valid_python_for_type_checkers() -> None:
    compile(STUB.read_text(), str(STUB), "exec")
