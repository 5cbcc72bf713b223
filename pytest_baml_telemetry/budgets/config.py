"""Configuration files of budgets and prices: :class:`BudgetConfigError` and the one TOML reader.

Every problem with a file (missing, a directory, not UTF-8, not TOML) is a
:class:`BudgetConfigError` naming the file; the plugin turns it into a usage error.

A budget file may also hold a ``[compare]`` table (the baseline tolerances, read by
:mod:`pytest_baml_telemetry.report.compare`): :func:`load_toml` leaves such side tables
(:data:`SIDE_TABLES`) out of what the budget reader sees, unless asked for them.
"""

from __future__ import annotations

import sys
from os import PathLike
from pathlib import Path
from typing import Any, Union

from .._validate import fail, short_repr

__all__ = ["BudgetConfigError", "SIDE_TABLES", "StrPath", "load_toml"]

StrPath = Union[str, "PathLike[str]"]

SIDE_TABLES: dict[str, tuple[str, ...]] = {"budget file": ("compare",)}
"""Per kind of file (``what``): top-level tables another module reads (left out by default)."""


class BudgetConfigError(ValueError):
    """A budget or price configuration (file or mapping) is malformed.

    The message names the file (when there is one), the table and the key.
    """


def load_toml(path: StrPath, what: str, *, side_tables: bool = False) -> tuple[Path, dict[str, Any]]:
    """Read the TOML file ``path``; ``what`` (``"budget file"``) names it in messages.

    The :data:`SIDE_TABLES` of ``what`` are left out unless ``side_tables``.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    if not isinstance(path, (str, PathLike)):
        fail(TypeError, f"{what} path {short_repr(path)}", "a str or path")
    p = Path(path)
    try:
        exists, is_file = p.exists(), p.is_file()
    except OSError as e:  # too long a name: exists() raises
        raise BudgetConfigError(f"{what} {str(p)!r} cannot be read: {e.strerror or e}") from None
    if not exists:
        raise BudgetConfigError(f"{what} {str(p)!r} does not exist")
    if not is_file:
        raise BudgetConfigError(f"{what} {str(p)!r} is not a file")
    try:
        with p.open("rb") as f:
            data = tomllib.load(f)
        if not side_tables:
            for name in SIDE_TABLES.get(what, ()):
                data.pop(name, None)
        return p, data
    except tomllib.TOMLDecodeError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} cannot be read: {e}") from e
