"""pytest-baml-telemetry: capture, assert and budget the telemetry of BAML calls in pytest.

The public API (SPEC section 7). Heavier parts (fakes, instrumentation, budgets) are
imported on first use so that loading the plugin stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .clock import VirtualClock
from .contract import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    HANDLER_FAILURE,
    ContractViolation,
    StreamAbandoned,
    Usage,
    convert_time_unit,
    validate_event,
    validate_stream,
)
from .dispatcher import (
    Dispatcher,
    HandlerExistsError,
    attach,
    attach_many,
    detach,
    execute,
    list_handlers,
    span,
)
from .emitter import Emitter

__version__ = "0.1.0"

_LAZY = {
    # name: module that defines it
}

if TYPE_CHECKING:  # pragma: no cover
    pass


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_baml_telemetry' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CALL_EXCEPTION",
    "CALL_START",
    "CALL_STOP",
    "HANDLER_FAILURE",
    "ContractViolation",
    "Dispatcher",
    "Emitter",
    "HandlerExistsError",
    "StreamAbandoned",
    "Usage",
    "VirtualClock",
    "attach",
    "attach_many",
    "convert_time_unit",
    "detach",
    "execute",
    "list_handlers",
    "span",
    "validate_event",
    "validate_stream",
    *_LAZY,
]
