"""The report's ``run`` metadata: :func:`run_metadata` and :func:`redact_args`.

When the run started and ended (UTC, ISO 8601), the Python, baml-py and plugin versions,
how many xdist workers sent data, and the pytest arguments with secrets masked: the value
of an option or ``-o``/``-p`` assignment whose name says key, token, secret, password,
credential or auth, an ``NAME=value`` argument of such a name, and the password of a URL
(``https://user:***@host``) become ``"***"``. Paths in the arguments are normalised
(``./app/../prices.toml`` is written ``prices.toml``), as the report writes every path.
"""

from __future__ import annotations

import os
import platform
import re
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

__all__ = ["MASK", "redact_args", "run_metadata", "utc_now"]

MASK = "***"
"""What a secret value is replaced with."""

_SECRET = re.compile(r"(api[_-]?key|key|token|secret|passw(or)?d|pwd|credential|auth|cookie|session[_-]?id)", re.I)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@/\s]+(?P<at>@)", re.I)
_ASSIGN = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<value>.*)$", re.S)


def utc_now() -> str:
    """Now, UTC, ISO 8601 with milliseconds (``2026-12-01T13:03:16.123+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _mask_assign(text: str) -> str:
    m = _ASSIGN.match(text)
    if m and _SECRET.search(m["name"]):
        return f"{m['name']}={MASK}"
    return text


def redact_args(args: Iterable[Any]) -> list[str]:
    """The arguments as str, secret values replaced by :data:`MASK` (see the module doc)."""
    out: list[str] = []
    pending = ""  # "value": the next argument is a secret option's value; "assign": -o's NAME=VALUE
    for raw in args:
        arg = str(raw)
        was, pending = pending, ""
        if was == "value" and not arg.startswith("-"):
            arg = MASK  # --api-key VALUE
        elif was == "assign":
            arg = _mask_assign(arg)
        elif arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            arg = f"{name}={MASK}" if _SECRET.search(name) else f"{name}={_mask_assign(value)}"
        elif arg.startswith("--") and _SECRET.search(arg):
            pending = "value"
        elif arg == "-o":
            pending = "assign"
        elif arg.startswith("-o") and len(arg) > 2:
            arg = "-o" + _mask_assign(arg[2:])
        else:
            arg = _mask_assign(arg)
        out.append(_URL_PASSWORD.sub(rf"\g<head>{MASK}\g<at>", arg))
    return out


def _normpath(arg: str) -> str:
    """``arg`` with a path in it normalised: ``--opt=./a/../b`` -> ``--opt=b``, ``./t/x.py::test`` -> ``t/x.py::test``."""
    head, sep, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if "/" not in value or "://" in value or value.startswith("-"):
        return arg
    path, colons, rest = value.partition("::")
    return f"{head}{sep}{os.path.normpath(path)}{colons}{rest}"


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def run_metadata(
    *, started: str | None, finished: str | None, xdist_workers: int, args: Iterable[Any] = ()
) -> dict[str, Any]:
    """The ``run`` section of the report::

        {"started": str | None, "finished": str | None,   # UTC ISO 8601
         "python": "3.12.3", "python_implementation": "CPython",
         "baml_py": str | None, "plugin": str,              # versions (None: not installed)
         "xdist_workers": int,                              # 0: not distributed
         "pytest_args": [str]}                              # secrets masked
    """
    from .. import __version__

    return {
        "started": started,
        "finished": finished,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation() or sys.implementation.name,
        "baml_py": _version("baml-py"),
        "plugin": __version__,
        "xdist_workers": xdist_workers,
        "pytest_args": [_normpath(a) for a in redact_args(args)],
    }
