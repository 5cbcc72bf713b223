"""pytest-baml-telemetry: capture, assert and budget the telemetry of BAML calls in pytest.

The public API, importable from the package itself. Heavier parts (fakes, instrumentation, budgets) are
imported on first use so that loading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports
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

# Eager, so that the name is the function and not the submodule of the same name.
from .instrument import instrument

__version__ = "0.1.0"

_LAZY = {
    # name: module that defines it (imported on first use)
    "FakeBamlClient": ".fake",
    "AsyncFakeBamlClient": ".fake",
    "NothingScriptedError": ".fake",
    "faults": ".fake",
    "FakeLLMServer": ".fake.server",
    "EventCapture": ".capture",
    "expect": ".capture",
    "Budget": ".budgets",
    "PriceTable": ".budgets",
    "Aggregator": ".budgets",
    "CostTracker": ".trackers",
    "SlowCallTracker": ".trackers",
    "LatencyTracker": ".trackers",
    "LoggingHandler": ".trackers",
    "log_calls": ".trackers",
    "JsonlExporter": ".exporters",
}

if TYPE_CHECKING:  # pragma: no cover
    from .budgets import Aggregator as Aggregator
    from .budgets import Budget as Budget
    from .budgets import PriceTable as PriceTable
    from .capture import EventCapture as EventCapture
    from .capture import expect as expect
    from .exporters import JsonlExporter as JsonlExporter
    from .fake import AsyncFakeBamlClient as AsyncFakeBamlClient
    from .fake import FakeBamlClient as FakeBamlClient
    from .fake import NothingScriptedError as NothingScriptedError
    from .fake import faults as faults
    from .fake.server import FakeLLMServer as FakeLLMServer
    from .trackers import CostTracker as CostTracker
    from .trackers import LatencyTracker as LatencyTracker
    from .trackers import LoggingHandler as LoggingHandler
    from .trackers import SlowCallTracker as SlowCallTracker
    from .trackers import log_calls as log_calls


__getattr__ = lazy_exports(__name__, _LAZY)


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
    "instrument",
    "list_handlers",
    "span",
    "validate_event",
    "validate_stream",
    *_LAZY,
]
