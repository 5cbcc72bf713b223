"""The house rules of the package, checked from its source: one room per idea stays true.

- no module imports another module's private names (``from .x import _y``) or reads another
  object's private attributes across modules where the rule forbids it (the emitter and the
  dispatcher's private state);
- every module has a docstring that says what it is for, and names no document outside the
  repository;
- modules stay under about 700 lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "pytest_baml_telemetry"
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)
MAX_LINES = 750  # "about 700"


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _is_module(path: Path, node: ast.ImportFrom, name: str) -> bool:
    """``from .. import _validate`` imports a (package-private) module, which is allowed."""
    if node.level:
        base = path.parent
        for _ in range(node.level - 1):
            base = base.parent
    else:
        base = PACKAGE.parent
    for part in (node.module or "").split("."):
        if part:
            base = base / part
    return (base / f"{name}.py").is_file() or (base / name / "__init__.py").is_file()


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_no_module_imports_another_modules_private_names(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = [
        f"line {node.lineno}: from {'.' * node.level}{node.module or ''} import {alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("pytest_baml_telemetry"))
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__") and not _is_module(path, node, alias.name)
    ]
    assert not bad, f"{_rel(path)} imports private names of another module: {bad}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_every_module_says_what_it_is_for_and_points_nowhere_outside(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text))
    assert doc, f"{_rel(path)} has no module docstring"
    outside = re.findall(r"\bSPEC(?:\.md)?\b|ARCHITECTURE|DEVELOPERS\.md|\.\./shared", doc)
    assert not outside, f"{_rel(path)}'s docstring refers to documents outside the repository: {outside}"


@pytest.mark.parametrize("path", MODULES, ids=_rel)
def test_modules_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{_rel(path)} has {lines} lines; split it by idea (about 700 at most)"


def test_the_emitter_never_touches_the_dispatchers_private_state() -> None:
    for name in ("emitter.py", "streams.py"):
        path = PACKAGE / name
        if path.exists():
            found = re.findall(r"dispatcher\._\w+", path.read_text(encoding="utf-8"))
            assert not found, f"{name} reads the dispatcher's private state: {sorted(set(found))}"
