"""The optional compiled build: the dispatcher and the emitter core compiled with mypyc.

    python -m pytest_baml_telemetry.compiled build    # needs mypy (it ships mypyc) and a C compiler
    python -m pytest_baml_telemetry.compiled status   # which of the modules are compiled
    python -m pytest_baml_telemetry.compiled clean    # back to pure Python

``build`` compiles :data:`COMPILED_MODULES` (``dispatcher.py`` and ``emitter.py``, the
per-event path) into extension modules written next to their sources, plus one shared
mypyc library beside the package directory; ``clean`` removes exactly the files the build
wrote (listed in :data:`MANIFEST`). Python imports an extension module before the ``.py``
of the same name, so the pure-Python modules are the fallback whenever the extension is
absent or was built for another interpreter: nothing else changes, and the test suite runs
against both (CI runs it once compiled, once pure).

Rules of the compiled modules, kept by their code: public parameters that our own code
checks are annotated ``Checked[T]`` (see :mod:`.contract`), so that a bad value still gets
our message naming it rather than mypyc's terse ``TypeError``; no class there is subclassed
or patched at run time; a clock may return any number. The build copies the package to a
temporary directory and compiles it there, so that no ``pyproject.toml`` nor stale
``build/`` directory gets in the way.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["COMPILED_MODULES", "MANIFEST", "BuildError", "build", "clean", "status", "main"]

COMPILED_MODULES = ("dispatcher", "emitter")
"""The modules of the package that ``build`` compiles."""

PACKAGE = Path(__file__).resolve().parent
MANIFEST = PACKAGE / ".compiled-files"
"""Written by ``build``: the files it created, one path per line, which ``clean`` removes."""

GROUP = "pytest_baml_telemetry_core"

_SETUP = """\
from setuptools import setup
from mypyc.build import mypycify

setup(
    name="pytest-baml-telemetry-compiled",
    packages=[],
    ext_modules=mypycify({paths!r}, group_name={group!r}),
)
"""


class BuildError(RuntimeError):
    """The compiled build could not be made (no mypyc, no C compiler, a compile error)."""


def status(*, imported: bool = True) -> dict[str, str]:
    """``{module: "compiled" | "pure"}`` for each of :data:`COMPILED_MODULES`.

    ``imported=True`` tells what this process runs (importing the modules if needed);
    ``imported=False`` what a new import would load, from the files on disk.
    """
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    out = {}
    for name in COMPILED_MODULES:
        if imported:
            origin = getattr(importlib.import_module(f"{__package__}.{name}"), "__file__", None)
        else:
            spec = importlib.machinery.PathFinder.find_spec(f"{__package__}.{name}", [str(PACKAGE)])
            origin = spec.origin if spec is not None else None
        out[name] = "compiled" if str(origin).endswith(suffixes) else "pure"
    return out


def clean() -> list[Path]:
    """Remove what ``build`` wrote (and only that); returns the removed paths."""
    removed = []
    if MANIFEST.exists():
        for line in MANIFEST.read_text().splitlines():
            path = Path(line)
            if line and path.exists():
                path.unlink()
                removed.append(path)
        MANIFEST.unlink()
    return removed


def build(*, verbose: bool = False) -> list[Path]:
    """Compile :data:`COMPILED_MODULES` in place; returns the files written.

    Raises :class:`BuildError` naming what is missing or what failed. A previous build is
    removed first.
    """
    for module, install in (("mypyc", "mypyc, which ships with mypy: pip install mypy"), ("setuptools", "setuptools: pip install setuptools")):
        try:
            importlib.import_module(module)
        except ImportError:
            raise BuildError(f"the compiled build needs {install}") from None
    clean()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="pbt-mypyc-") as tmp:
        root = Path(tmp)
        shutil.copytree(
            PACKAGE,
            root / PACKAGE.name,
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", MANIFEST.name),
        )
        # the modules they import are read for their types, not compiled; their own type
        # errors (the package's mypy run reports those) do not stop this build
        paths = ["--follow-imports=silent", *(f"{PACKAGE.name}/{name}.py" for name in COMPILED_MODULES)]
        (root / "setup.py").write_text(_SETUP.format(paths=paths, group=GROUP))
        cmd = [sys.executable, "setup.py", "build_ext", "--inplace"]
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
        if verbose or proc.returncode:
            sys.stderr.write(proc.stdout + proc.stderr)
        if proc.returncode:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise BuildError(f"mypyc failed (exit {proc.returncode}): " + " / ".join(tail))
        suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
        made = [
            path
            for path in sorted(root.rglob("*"))
            if path.name.endswith(suffixes) and "build" not in path.relative_to(root).parts[:1]
        ]
        if not made:
            raise BuildError("mypyc reported success but wrote no extension module")
        targets = [PACKAGE.parent / path.relative_to(root) for path in made]
        try:
            # the manifest first, so that clean() also removes a build stopped half-way
            MANIFEST.write_text("".join(f"{path}\n" for path in targets))
            for source, target in zip(made, targets):
                shutil.copy2(source, target)
                written.append(target)
        except OSError as exc:
            raise BuildError(f"cannot write the compiled modules beside the package: {exc}") from None
    return written


def main(argv: list[str] | None = None) -> int:
    """``build`` / ``status`` / ``clean``; exit 1 on a failed build, 2 on a bad command."""
    args = sys.argv[1:] if argv is None else argv
    command = args[0] if args else "status"
    if command == "build":
        try:
            for path in build(verbose="-v" in args):
                print(f"wrote {path}")
        except BuildError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif command == "clean":
        for path in clean():
            print(f"removed {path}")
    elif command != "status":
        print(f"error: unknown command {command!r}; expected build, status or clean", file=sys.stderr)
        return 2
    for name, state in status(imported=False).items():
        print(f"{name}: {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
