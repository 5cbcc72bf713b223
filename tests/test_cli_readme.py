"""The README's "From test to production" example runs as written (in a temporary directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## From test to production", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


def test_the_readme_production_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(_example(), "README.md (From test to production)", "exec"), {})
    out = capsys.readouterr().out
    assert "max_calls: 3 calls exceeds the limit 2 calls" in out
    assert (tmp_path / "report.json").exists()
    assert "Ann, Rust" not in (tmp_path / "events.jsonl").read_text()
