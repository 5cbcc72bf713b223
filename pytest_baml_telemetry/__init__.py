"""pytest-baml-telemetry: capture, assert and budget the telemetry of BAML calls in pytest.

The public API, importable from the package itself. Every name is imported from its module
on first use (PEP 562), so ``import pytest_baml_telemetry`` and loading the plugin (which
imports this package first) import no module a test has not asked for yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

__version__ = "0.1.0"

_LAZY = {
    # name: module that defines it (imported on first use)
    "CALL_EXCEPTION": ".contract",
    "CALL_START": ".contract",
    "CALL_STOP": ".contract",
    "HANDLER_FAILURE": ".contract",
    "ContractViolation": ".contract",
    "StreamAbandoned": ".contract",
    "Usage": ".contract",
    "convert_time_unit": ".contract",
    "validate_event": ".contract",
    "validate_stream": ".contract",
    "Dispatcher": ".dispatcher",
    "HandlerExistsError": ".dispatcher",
    "attach": ".dispatcher",
    "attach_many": ".dispatcher",
    "detach": ".dispatcher",
    "execute": ".dispatcher",
    "list_handlers": ".dispatcher",
    "span": ".dispatcher",
    "Emitter": ".emitter",
    "VirtualClock": ".clock",
    # the function, not the submodule of the same name (_lazy binds the function either way)
    "instrument": ".instrument",
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
    from .clock import VirtualClock as VirtualClock
    from .contract import CALL_EXCEPTION as CALL_EXCEPTION
    from .contract import CALL_START as CALL_START
    from .contract import CALL_STOP as CALL_STOP
    from .contract import HANDLER_FAILURE as HANDLER_FAILURE
    from .contract import ContractViolation as ContractViolation
    from .contract import StreamAbandoned as StreamAbandoned
    from .contract import Usage as Usage
    from .contract import convert_time_unit as convert_time_unit
    from .contract import validate_event as validate_event
    from .contract import validate_stream as validate_stream
    from .dispatcher import Dispatcher as Dispatcher
    from .dispatcher import HandlerExistsError as HandlerExistsError
    from .dispatcher import attach as attach
    from .dispatcher import attach_many as attach_many
    from .dispatcher import detach as detach
    from .dispatcher import execute as execute
    from .dispatcher import list_handlers as list_handlers
    from .dispatcher import span as span
    from .emitter import Emitter as Emitter
    from .exporters import JsonlExporter as JsonlExporter
    from .fake import AsyncFakeBamlClient as AsyncFakeBamlClient
    from .fake import FakeBamlClient as FakeBamlClient
    from .fake import NothingScriptedError as NothingScriptedError
    from .fake import faults as faults
    from .fake.server import FakeLLMServer as FakeLLMServer
    from .instrument import instrument as instrument
    from .trackers import CostTracker as CostTracker
    from .trackers import LatencyTracker as LatencyTracker
    from .trackers import LoggingHandler as LoggingHandler
    from .trackers import SlowCallTracker as SlowCallTracker
    from .trackers import log_calls as log_calls


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    """The module's names with the public ones not yet imported (as ``dir()`` showed them when eager)."""
    return sorted({*globals(), *_LAZY})


__all__ = list(_LAZY)
