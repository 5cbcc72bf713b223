"""README.md's two commands are the ones CI and newcomers run: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.+?)\n```", text, flags=re.S)[:2]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    example, tests = _commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == tests


def test_readme_example_command_runs_the_examples_with_the_report_and_budgets() -> None:
    example, _ = _commands()
    assert "pytest examples" in example and "--baml-report" in example
    for path in re.findall(r"--baml-(?:budgets|prices)=(\S+)", example):
        assert (ROOT / path).is_file(), path


def test_every_example_file_named_in_the_readme_exists() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in set(re.findall(r"`(examples/[\w./]+\.(?:py|toml))`", text)):
        assert (ROOT / path).is_file(), path


def test_the_readme_first_test_passes(pytester) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"A first test.*?```python\n(.*?)```", text, flags=re.S)[0]
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_first=block)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_the_development_layout_names_modules_that_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.findall(r"## Development.*?```\n(pytest_baml_telemetry/\n.*?)```", text, flags=re.S)[0]
    package = ROOT / "pytest_baml_telemetry"
    named = re.findall(r"^  ([\w/]+(?:\.py|/))", block, flags=re.M)
    assert len(named) > 20
    for name in named:
        assert (package / name).exists(), name
    for path in [p for p in package.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()]:
        shown = path.name + ("/" if path.is_dir() else "")
        assert path.name == "__init__.py" or shown in named, f"{shown} is not in the README's layout"


def test_the_readme_example_command_passes() -> None:
    """The example suite with its session budgets and prices, as the README's first command runs it."""
    import subprocess
    import sys

    example, _ = _commands()
    args = example.split("&& pytest ", 1)[1].split()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.search(r"budgets: \d+ checked, 0 failed", result.stdout), result.stdout[-4000:]
