"""Configuration files of budgets and prices: :class:`BudgetConfigError` and the one TOML reader.

Every problem with a file (missing, a directory, not UTF-8, not TOML) is a
:class:`BudgetConfigError` naming the file; the plugin turns it into a usage error.
"""

from __future__ import annotations

import sys
from os import PathLike
from pathlib import Path
from typing import Any, Union

from .._validate import fail, short_repr

__all__ = ["BudgetConfigError", "StrPath", "load_toml"]

StrPath = Union[str, "PathLike[str]"]


class BudgetConfigError(ValueError):
    """A budget or price configuration (file or mapping) is malformed.

    The message names the file (when there is one), the table and the key.
    """


def load_toml(path: StrPath, what: str) -> tuple[Path, dict[str, Any]]:
    """Read the TOML file ``path``; ``what`` (``"budget file"``) names it in messages."""
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
            return p, tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} cannot be read: {e}") from e
