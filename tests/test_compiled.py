"""The optional compiled build's command and state (the build itself is exercised by CI's compiled run)."""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_baml_telemetry import compiled


def test_status_names_each_compiled_module_as_it_is_imported_and_on_disk() -> None:
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    now = compiled.status()
    assert set(now) == set(compiled.COMPILED_MODULES) == {"dispatcher", "emitter"}
    for name, state in now.items():
        module = sys.modules[f"pytest_baml_telemetry.{name}"]
        assert state == ("compiled" if str(module.__file__).endswith(suffixes) else "pure")
    on_disk = compiled.status(imported=False)
    for name, state in on_disk.items():
        built = [p for p in compiled.PACKAGE.glob(f"{name}.*") if p.name.endswith(suffixes)]
        assert state == ("compiled" if built else "pure")


@pytest.mark.skipif(
    os.environ.get("PYTEST_BAML_TELEMETRY_EXPECT") not in ("compiled", "pure"),
    reason="CI's two runs set PYTEST_BAML_TELEMETRY_EXPECT=compiled|pure",
)
def test_this_run_uses_the_build_ci_asked_for() -> None:
    expected = os.environ["PYTEST_BAML_TELEMETRY_EXPECT"]
    assert compiled.status() == dict.fromkeys(compiled.COMPILED_MODULES, expected)


def test_clean_removes_exactly_the_files_of_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = [tmp_path / "a.so", tmp_path / "b.so"]
    kept = tmp_path / "other__mypyc.so"
    for path in (*made, kept):
        path.write_bytes(b"x")
    manifest = tmp_path / ".compiled-files"
    manifest.write_text("".join(f"{p}\n" for p in made) + f"{tmp_path / 'gone.so'}\n")
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    assert compiled.clean() == made
    assert not manifest.exists() and kept.exists() and not any(p.exists() for p in made)
    assert compiled.clean() == []


def test_build_without_mypyc_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mypyc", None)
    with pytest.raises(compiled.BuildError, match=r"needs mypyc, which ships with mypy: pip install mypy"):
        compiled.build()
    assert compiled.main(["build"]) == 1


def test_the_command_refuses_an_unknown_subcommand() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_baml_telemetry.compiled", "make"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "unknown command 'make'; expected build, status or clean" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "pytest_baml_telemetry.compiled", "status"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [f"{name}: {state}" for name, state in compiled.status(imported=False).items()]


def test_build_without_setuptools_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "setuptools", None)
    with pytest.raises(compiled.BuildError, match=r"needs setuptools: pip install setuptools"):
        compiled.build()


def _fake_mypyc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A package copy under tmp_path and a setup.py run that writes what mypyc writes."""
    package = tmp_path / "site" / "pytest_baml_telemetry"
    package.mkdir(parents=True)
    for name in compiled.COMPILED_MODULES:
        (package / f"{name}.py").write_text("X = 1\n")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]

    def run(cmd: list[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert cmd[1:] == ["setup.py", "build_ext", "--inplace"]
        setup = (Path(cwd) / "setup.py").read_text()
        assert "--follow-imports=silent" in setup and "group_name='pytest_baml_telemetry_core'" in setup
        for name in compiled.COMPILED_MODULES:
            (Path(cwd) / "pytest_baml_telemetry" / f"{name}{suffix}").write_bytes(b"so")
        (Path(cwd) / f"pytest_baml_telemetry_core__mypyc{suffix}").write_bytes(b"so")
        (Path(cwd) / "build").mkdir()
        (Path(cwd) / "build" / f"stale{suffix}").write_bytes(b"so")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(compiled, "PACKAGE", package)
    monkeypatch.setattr(compiled, "MANIFEST", package / ".compiled-files")
    monkeypatch.setattr(compiled.subprocess, "run", run)
    return package


def test_build_copies_the_extensions_beside_the_package_and_clean_removes_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = _fake_mypyc(monkeypatch, tmp_path)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    written = compiled.build()
    expected = [package.parent / f"pytest_baml_telemetry_core__mypyc{suffix}"] + [
        package / f"{name}{suffix}" for name in sorted(compiled.COMPILED_MODULES)
    ]
    assert sorted(written) == sorted(expected) and all(p.exists() for p in expected)
    assert compiled.status(imported=False) == dict.fromkeys(compiled.COMPILED_MODULES, "compiled")
    assert compiled.clean() == [Path(line) for line in [str(p) for p in written]]
    assert compiled.status(imported=False) == dict.fromkeys(compiled.COMPILED_MODULES, "pure")
    assert sorted(p.name for p in package.iterdir()) == sorted(f"{n}.py" for n in compiled.COMPILED_MODULES)


def test_a_build_that_cannot_write_beside_the_package_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_mypyc(monkeypatch, tmp_path)
    monkeypatch.setattr(compiled, "MANIFEST", tmp_path / "missing-dir" / ".compiled-files")
    with pytest.raises(compiled.BuildError, match=r"cannot write the compiled modules beside the package: .*missing-dir"):
        compiled.build()
