"""Generate a real ``baml_client`` with the installed ``baml-cli`` and import it.

``generate_client(baml_src, output_dir)`` copies the ``.baml`` sources into a
temporary ``baml_src/`` directory, rewrites the ``generator`` block there (the
sources are never modified) so that its ``version`` equals the installed
``baml-py`` and its ``output_dir`` points into a temporary directory, runs
``baml-cli generate --from <copy>`` and moves the generated package to
``output_dir/<client_package_name>``. The client therefore always matches the
runtime it runs on, and generated code never lands in the source tree.

``import_generated(path)`` imports such a package under a unique module name
(see its docstring), so several generated clients — or the same one imported
twice — never collide in ``sys.modules`` with each other or with a real
``baml_client`` of the project under test.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Union

__all__ = [
    "BamlGenerateError",
    "GeneratedClient",
    "baml_cli_command",
    "baml_py_version",
    "client_module_of",
    "generate_client",
    "import_generated",
]

PathLike = Union[str, "os.PathLike[str]"]

SUPPORTED_OUTPUT_TYPES = ("python/pydantic", "python/pydantic/v1")
_GENERATOR_FILE = "_pytest_baml_telemetry_generator.baml"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_GENERATED_NAME = re.compile(r"^_pbt_generated_(?P<package>[A-Za-z_][A-Za-z0-9_]*?)_[0-9a-f]{10}_\d+$")
"""The unique module names :func:`import_generated` gives (``_pbt_generated_<package>_<hash>_<n>``)."""
_CLIENT_SUBMODULES = ("sync_client", "async_client")


class BamlGenerateError(RuntimeError):
    """``baml-cli generate`` failed; ``stdout``/``stderr``/``returncode`` hold what it said."""

    def __init__(self, message: str, *, stdout: str = "", stderr: str = "", returncode: int | None = None) -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode


def baml_py_version() -> str:
    """The installed ``baml-py`` version (``importlib.metadata``), e.g. ``"0.226.3"``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("baml-py")
    except PackageNotFoundError:
        raise BamlGenerateError("baml-py is not installed in this environment; pip install baml-py") from None


def baml_cli_command() -> list[str]:
    """The command that runs the installed ``baml-cli``.

    Looks next to ``sys.executable`` first (the virtualenv's ``bin``/``Scripts``),
    then on ``PATH``; failing both, runs the CLI built into the installed ``baml_py``
    (``baml_py.invoke_runtime_cli``) with ``sys.executable``. Raises
    ``BamlGenerateError`` when none is available.
    """
    bindir = Path(sys.executable).parent
    for name in ("baml-cli", "baml-cli.exe"):
        candidate = bindir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("baml-cli")
    if found:
        return [found]
    if importlib.util.find_spec("baml_py") is not None:
        return [
            sys.executable,
            "-c",
            "import sys; from baml_py import invoke_runtime_cli; sys.argv[0] = 'baml-cli'; "
            "sys.exit(invoke_runtime_cli())",
        ]
    raise BamlGenerateError(
        f"baml-cli not found: not next to {sys.executable}, not on PATH, and baml_py is not importable; "
        "install baml-py (it ships baml-cli) in this environment"
    )


# ----------------------------------------------------------------- generator blocks


def _scan_blocks(text: str) -> list[tuple[int, int, str]]:
    """Find top-level ``generator <name> { ... }`` blocks: (start, end, body) spans.

    Skips ``//`` comments, ``"..."`` strings and ``#"..."#`` raw strings, so a
    ``generator`` inside a prompt is never touched.
    """
    blocks: list[tuple[int, int, str]] = []
    i, n, depth = 0, len(text), 0
    block_start = body_start = -1
    top_end = 0  # end of the previous top-level block
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if c == "#" and i + 1 < n and text[i + 1] in '"#':
            hashes = len(text[i:]) - len(text[i:].lstrip("#"))
            if text.startswith('"', i + hashes):
                closing = '"' + "#" * hashes
                j = text.find(closing, i + hashes + 1)
                i = n if j < 0 else j + len(closing)
                continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c == "{":
            depth += 1
            if depth == 1:
                m = re.search(r"(?<![\w.])generator\s+\w+\s*$", text[top_end:i])
                if m is not None:
                    block_start, body_start = top_end + m.start(), i + 1
        elif c == "}":
            depth = max(depth - 1, 0)
            if depth == 0:
                top_end = i + 1
                if block_start >= 0:
                    blocks.append((block_start, i + 1, text[body_start:i]))
                    block_start = body_start = -1
        i += 1
    return blocks


def _block_output_type(body: str) -> str | None:
    m = re.search(r'^\s*output_type\s+"([^"]*)"', body, re.MULTILINE)
    return m.group(1) if m else None


def _set_key(body: str, key: str, value: str) -> str:
    line = f'  {key} "{value}"'
    pattern = re.compile(rf"^[ \t]*{key}\s+(\"[^\"]*\"|\S+)[ \t]*(//[^\n]*)?$", re.MULTILINE)
    if pattern.search(body):
        return pattern.sub(lambda _m: line, body, count=1)
    return body.rstrip() + "\n" + line + "\n"


def _patch_generators(src: Path, output_type: str, out_dir: Path, version: str) -> None:
    """Keep one generator for ``output_type`` (version/output_dir rewritten), drop the rest."""
    kept = False
    for path in sorted(src.rglob("*.baml")):
        text = path.read_text(encoding="utf-8")
        blocks = _scan_blocks(text)
        if not blocks:
            continue
        pieces: list[str] = []
        pos = 0
        for start, end, body in blocks:
            pieces.append(text[pos:start])
            if not kept and _block_output_type(body) == output_type:
                body = _set_key(body, "version", version)
                body = _set_key(body, "output_dir", out_dir.as_posix())
                header = text[start : text.index("{", start) + 1]
                pieces.append(f"{header}{body}}}")
                kept = True
            else:
                pieces.append("// (generator removed by pytest_baml_telemetry.baml_gen)")
            pos = end
        pieces.append(text[pos:])
        path.write_text("".join(pieces), encoding="utf-8")
    if not kept:
        (src / _GENERATOR_FILE).write_text(
            "generator pytest_baml_telemetry {\n"
            f'  output_type "{output_type}"\n'
            f'  output_dir "{out_dir.as_posix()}"\n'
            f'  version "{version}"\n'
            "  default_client_mode sync\n"
            "}\n",
            encoding="utf-8",
        )


# ----------------------------------------------------------------------- generate


def _readable(output: str, staged: Path, src: Path) -> str:
    """baml-cli output for humans: original paths, no Rust stack backtrace."""
    text = output.replace(str(staged), str(src))
    cut = text.find("Stack backtrace:")
    if cut >= 0:
        text = text[:cut].rstrip() + "\n(Rust stack backtrace omitted; see .stdout/.stderr)"
    return text.strip()


def generate_client(
    baml_src: PathLike,
    output_dir: PathLike,
    *,
    output_type: str = "python/pydantic",
    client_package_name: str = "baml_client",
    timeout: float = 120.0,
) -> Path:
    """Generate a client from ``baml_src`` into ``output_dir/<client_package_name>``.

    ``baml_src`` is a directory of ``.baml`` files (it is copied, never modified).
    The generator block for ``output_type`` in the copy gets ``version`` set to the
    installed baml-py version and ``output_dir`` set to a staging directory; other
    generator blocks are dropped; if there is none, one is added. An existing
    ``output_dir/<client_package_name>`` that was generated before is replaced.

    Returns ``output_dir`` (resolved): the directory that *contains* the generated
    package, ready for :func:`import_generated`. Raises ``BamlGenerateError`` with
    baml-cli's output when generation fails, ``FileNotFoundError``/``ValueError``
    for bad arguments.
    """
    src = Path(os.fspath(baml_src)).expanduser()
    if not src.is_dir():
        raise FileNotFoundError(f"generate_client: baml_src={os.fspath(baml_src)!r} is not a directory of .baml files")
    if not any(src.rglob("*.baml")):
        raise ValueError(f"generate_client: baml_src={os.fspath(baml_src)!r} contains no .baml files")
    if output_type not in SUPPORTED_OUTPUT_TYPES:
        raise ValueError(
            f"generate_client: output_type={output_type!r} is not supported; expected one of "
            f"{', '.join(SUPPORTED_OUTPUT_TYPES)}"
        )
    if not isinstance(client_package_name, str) or not _IDENTIFIER.match(client_package_name):
        raise ValueError(
            f"generate_client: client_package_name={client_package_name!r} is not a valid Python package name"
        )
    out = Path(os.fspath(output_dir)).expanduser().resolve()
    target = out / client_package_name
    if target.exists() and not (target / "inlinedbaml.py").is_file():
        raise FileExistsError(
            f"generate_client: {str(target)!r} exists and is not a generated baml client; refusing to replace it"
        )
    out.mkdir(parents=True, exist_ok=True)
    version = baml_py_version()

    with tempfile.TemporaryDirectory(prefix="baml_gen_", dir=out) as tmp:
        staged_src = Path(tmp) / "baml_src"  # baml-cli insists on a directory named baml_src
        shutil.copytree(src, staged_src, ignore=shutil.ignore_patterns("__pycache__", ".*"))
        staged_out = Path(tmp) / "out"
        _patch_generators(staged_src, output_type, staged_out, version)
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "0")
        cmd = [*baml_cli_command(), "generate", "--from", str(staged_src)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise BamlGenerateError(f"baml-cli generate timed out after {timeout}s: {' '.join(cmd)}") from exc
        generated = staged_out / "baml_client"
        if proc.returncode != 0 or not (generated / "__init__.py").is_file():
            stderr, stdout = (_readable(t, staged_src, src) for t in (proc.stderr, proc.stdout))
            raise BamlGenerateError(
                f"baml-cli generate failed for baml_src={str(src)!r} (exit status {proc.returncode}).\n"
                f"--- baml-cli stderr ---\n{stderr}\n--- baml-cli stdout ---\n{stdout}",
                stdout=proc.stdout,
                stderr=proc.stderr,
                returncode=proc.returncode,
            )
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(generated), str(target))
    return out


# ------------------------------------------------------------------------- import


class GeneratedClient(tuple):
    """``(b, async_b)`` of an imported generated client, with more as attributes.

    ``module`` (the package), ``async_module`` (its ``async_client``), ``types``
    (its ``types`` module, e.g. ``client.types.Resume``), ``name`` (the unique name
    it was imported under) and ``path`` (the package directory).
    """

    b: Any
    async_b: Any
    module: ModuleType
    async_module: ModuleType
    types: ModuleType
    name: str
    path: Path

    def __new__(cls, module: ModuleType, async_module: ModuleType, name: str, path: Path) -> GeneratedClient:
        self = super().__new__(cls, (module.b, async_module.b))
        self.b = module.b
        self.async_b = async_module.b
        self.module = module
        self.async_module = async_module
        self.types = module.types
        self.name = name
        self.path = path
        return self

    def __repr__(self) -> str:
        return f"GeneratedClient(name={self.name!r}, path={str(self.path)!r})"


_import_lock = threading.Lock()
_import_counter = itertools.count(1)
_import_cache: dict[tuple[str, str, int], GeneratedClient] = {}


def import_generated(path: PathLike, package: str = "baml_client", *, fresh: bool = False) -> GeneratedClient:
    """Import the generated package ``path/package`` and return ``(b, async_b)``.

    The package is imported under a unique module name,
    ``_pbt_generated_<package>_<hash of its path>_<n>``, never as ``baml_client``:
    the generated code uses only relative imports, so it works under any name, and
    ``sys.path`` is left alone. Two generated clients, or a test client and the
    application's own ``baml_client``, can therefore coexist in one process.
    Repeated calls for the same, unchanged package return the same modules (one
    ``BamlRuntime``); ``fresh=True`` imports a new copy. The package's
    ``async_client`` (not imported by its ``__init__``) is imported too.
    """
    if not isinstance(package, str) or not _IDENTIFIER.match(package):
        raise ValueError(f"import_generated: package={package!r} is not a valid Python package name")
    pkg_dir = Path(os.fspath(path)).expanduser().resolve() / package
    init = pkg_dir / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(
            f"import_generated: no generated package {package!r} in {os.fspath(path)!r} (missing {init})"
        )
    stamp_file = pkg_dir / "inlinedbaml.py"
    stamp = stamp_file.stat().st_mtime_ns if stamp_file.exists() else init.stat().st_mtime_ns
    key = (str(pkg_dir), package, stamp)
    with _import_lock:
        if not fresh and key in _import_cache:
            return _import_cache[key]
        digest = hashlib.sha1(str(pkg_dir).encode()).hexdigest()[:10]
        name = f"_pbt_generated_{package}_{digest}_{next(_import_counter)}"  # read back by _GENERATED_NAME
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(pkg_dir)])
        if spec is None or spec.loader is None:  # pragma: no cover - only for exotic importers
            raise ImportError(f"import_generated: cannot build an import spec for {init}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
            async_module = importlib.import_module(f"{name}.async_client")
        except BaseException:
            for mod_name in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[mod_name]
            raise
        client = GeneratedClient(module, async_module, name, pkg_dir)
        _import_cache[key] = client
        return client


def client_module_of(client: Any) -> str | None:
    """The generated package a baml-py client object belongs to, as telemetry names it.

    ``"baml_client"`` for ``baml_client.sync_client.BamlSyncClient`` (or its
    ``async_client``), also when the package was imported by :func:`import_generated`
    under a unique module name; ``None`` when the class has no module name.
    """
    module = getattr(type(client), "__module__", None)
    if not isinstance(module, str):
        return None
    package, _, last = module.rpartition(".")
    if package and last in _CLIENT_SUBMODULES:
        module = package
    head, _, rest = module.partition(".")
    match = _GENERATED_NAME.match(head)
    if match:
        module = match.group("package") + ("." + rest if rest else "")
    return module
