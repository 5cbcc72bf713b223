"""The README's "Real parsing offline" example runs as written, on the typed test app."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = pytest.mark.usefixtures("_quiet_baml")


def example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("**Real parsing offline.**"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_example_runs(typed_client, monkeypatch):
    code = example()
    assert "merge=True" in code and 'raw="not json at all"' in code
    fake_module = types.ModuleType("baml_client")
    fake_module.b = typed_client.b  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "baml_client", fake_module)
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    namespace["test_merged_partials_and_a_bad_answer"]()  # type: ignore[operator]


def test_the_readme_example_fails_without_the_fix(typed_client, monkeypatch):
    """The same example with the issue's app bug (only the last command) misses one."""
    code = example().replace("partial.commands[len(ran):]", "partial.commands[-1:]")
    fake_module = types.ModuleType("baml_client")
    fake_module.b = typed_client.b  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "baml_client", fake_module)
    namespace: dict[str, object] = {}
    exec(compile(code, str(README), "exec"), namespace)
    with pytest.raises(AssertionError):
        namespace["test_merged_partials_and_a_bad_answer"]()  # type: ignore[operator]
