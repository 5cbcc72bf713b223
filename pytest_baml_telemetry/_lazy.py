"""Lazy re-exports for package facades (PEP 562 module ``__getattr__``).

A facade lists each public name with the module that owns it; the module is imported on
first use and the value cached in the facade's namespace, so importing the facade stays
cheap. Unknown names raise ``AttributeError`` as a module does.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that loads ``name`` from ``homes[name]`` (relative or absolute)."""

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = sys.modules[package]
        value = getattr(importlib.import_module(home, module.__package__ or package), name)
        setattr(module, name, value)
        return value

    return __getattr__
