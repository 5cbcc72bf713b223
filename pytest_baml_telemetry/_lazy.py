"""Lazy re-exports for package facades (PEP 562 module ``__getattr__``).

A facade lists each public name with the module that owns it; the module is imported on
first use and the value cached in the facade's namespace, so importing the facade stays
cheap. Unknown names raise ``AttributeError`` as a module does.

A name may be the same as the submodule that defines it (``pytest_baml_telemetry.instrument``
is the function of ``pytest_baml_telemetry/instrument.py``). Importing such a submodule
binds it on its package, which would hide the function; a facade with such a name gets a
module class that binds the submodule's value of that name instead, whoever imports the
submodule first (as an eager ``from .instrument import instrument`` in the package would).
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that loads ``name`` from ``homes[name]`` (relative or absolute)."""
    module = sys.modules[package]
    anchor = module.__package__ or package
    shadowed = {name for name, home in homes.items() if home in (f".{name}", f"{package}.{name}")}
    if shadowed and hasattr(module, "__path__"):  # only a package has submodules
        module.__class__ = _shadow_guard(frozenset(shadowed))

    def __getattr__(name: str) -> Any:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, anchor), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


def _shadow_guard(names: frozenset[str]) -> type[types.ModuleType]:
    """A module class that, for ``names``, binds ``submodule.<name>`` where the import system binds ``submodule``."""

    class _Facade(types.ModuleType):
        def __setattr__(self, name: str, value: Any) -> None:
            if (
                name in names
                and isinstance(value, types.ModuleType)
                and value.__name__ == f"{self.__name__}.{name}"
                and hasattr(value, name)
            ):
                value = getattr(value, name)
            super().__setattr__(name, value)

    return _Facade
