"""Strategies for single valid events: ``start``, ``stop``, ``exception`` and handler failures.

Every event drawn passes ``validate_event``. An event is an :data:`Event`, the
``(name, measurements, metadata)`` named tuple the capture fixtures record. Keywords that
fix a value (``prefix=``, ``function_name=``, ``streaming=``, ...) take the value or a
strategy drawing it, and are checked when the strategy is built. The builders
(``start_event``, ``stop_event``, ``exception_event``, ``stop_parts``, ``call_metadata``)
are shared with the stream strategies, which make calls out of them.
"""

from __future__ import annotations

import string
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..capture import CapturedEvent
from ..clock import DurationLike
from ..contract import (
    CALL_KINDS,
    DEFAULT_PREFIX,
    HANDLER_FAILURE,
    MAX_NATIVE,
    TIME_UNITS,
    EventName,
    Usage,
    call_event_name,
    check_event_name,
)
from ._validation import as_strategy, check_bool, check_function_name, check_kinds, check_prefix, checked, duration_ns
from ._values import (
    CLIENT_MODULES,
    JSON_VALUES,
    OPTIONAL_STR,
    RESOURCES,
    arguments,
    event_prefixes,
    exception_reasons,
    function_names,
    identifiers,
    models,
    span_contexts,
    stacktraces,
    usage_option,
)

__all__ = [
    "EVENT_KINDS",
    "MONOTONIC_TIMES",
    "WALL_TIMES",
    "Event",
    "call_metadata",
    "end_monotonic",
    "event_options",
    "events",
    "exception_event",
    "exception_events",
    "handler_failure_events",
    "prefix_strategy",
    "start_event",
    "start_events",
    "stop_event",
    "stop_events",
    "stop_parts",
]

Event = CapturedEvent
"""A generated event: a ``(name, measurements, metadata)`` named tuple, the same type the
capture fixtures record (so ``event.kind``, ``event.span_context``, ... work)."""

EVENT_KINDS = (*CALL_KINDS, "handler_failure")
"""The kinds :func:`events` and :func:`invalid_events` draw from."""

_NS_PER_S = TIME_UNITS["second"]



def call_metadata(function_name: str, streaming: bool, draw: st.DrawFn) -> dict[str, Any]:
    """The metadata every event of one call shares (start and end agree on it)."""
    return {
        "resource": draw(RESOURCES, label="resource"),
        "action": draw(OPTIONAL_STR, label="action"),
        "function_name": function_name,
        "client_module": draw(CLIENT_MODULES, label="client_module"),
        "streaming": streaming,
    }


WALL_TIMES = st.integers(min_value=1_600_000_000 * _NS_PER_S, max_value=2_100_000_000 * _NS_PER_S)
"""``system_time`` values (ns since the epoch, 2020..2036)."""
MONOTONIC_TIMES = st.integers(min_value=0, max_value=2**62)
"""``monotonic_time`` values (ns)."""


def end_monotonic(draw: st.DrawFn, duration: int) -> int:
    """The ``monotonic_time`` of an end event lasting ``duration``: at least ``duration``,
    at most ``contract.MAX_NATIVE`` (a ``max_duration`` near it never leaves the int64 range)."""
    return draw(st.integers(0, min(2**62, MAX_NATIVE - duration)), label="monotonic_time") + duration


def start_event(prefix: EventName, common: Mapping[str, Any], args: dict[str, Any], system_time: int, monotonic: int, span: Any) -> Event:
    """A start event of the call with metadata ``common``."""
    return Event(
        call_event_name(prefix, "start"),
        {"system_time": system_time, "monotonic_time": monotonic},
        {**common, "arguments": args, "telemetry_span_context": span},
    )


def stop_parts(draw: st.DrawFn, usage_s: SearchStrategy[Usage | None], model_s: SearchStrategy[Any], streaming: bool, duration: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The token measurements and the stop-only metadata of one stop event."""
    usage = draw(usage_s, label="usage") or Usage()
    m: dict[str, Any] = {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_input_tokens is not None or draw(st.booleans(), label="cached_input_tokens present"):
        m["cached_input_tokens"] = usage.cached_input_tokens
    if streaming:
        m["time_to_first_chunk"] = draw(st.one_of(st.none(), st.integers(0, duration)), label="time_to_first_chunk")
    md: dict[str, Any] = {"model": draw(model_s, label="model"), "result": draw(JSON_VALUES, label="result")}
    for key in ("provider", "client_name", "request_id"):
        if draw(st.booleans(), label=f"{key} present"):
            md[key] = draw(
                {
                    "provider": st.sampled_from(["openai", "anthropic", "google-ai", "openai-generic"]),
                    "client_name": st.sampled_from(["Smart", "Fast", "FakeClient"]),
                    "request_id": st.text(alphabet=string.hexdigits, min_size=8, max_size=16).map("req_".__add__),
                }[key],
                label=key,
            )
    if draw(st.booleans(), label="num_attempts present"):
        md["num_attempts"] = draw(st.integers(1, 5), label="num_attempts")
    return m, md


def stop_event(prefix: EventName, common: Mapping[str, Any], duration: int, monotonic: int, tokens: dict[str, Any], extra: dict[str, Any], span: Any) -> Event:
    """A stop event: ``tokens`` and ``extra`` come from :func:`stop_parts`."""
    return Event(
        call_event_name(prefix, "stop"),
        {"duration": duration, "monotonic_time": monotonic, **tokens},
        {**common, **extra, "telemetry_span_context": span},
    )


def exception_event(prefix: EventName, common: Mapping[str, Any], duration: int, monotonic: int, kind: str, reason: BaseException, stack: traceback.StackSummary, span: Any, model: Any = None) -> Event:
    """An exception event whose ``kind`` agrees with ``reason`` (the caller draws them together)."""
    md = {**common, "kind": kind, "reason": reason, "stacktrace": stack, "telemetry_span_context": span}
    if model is not None:  # the reference emitter adds the model when it was known
        md["model"] = model
    return Event(call_event_name(prefix, "exception"), {"duration": duration, "monotonic_time": monotonic}, md)


def prefix_strategy(prefix: Any, function: str) -> SearchStrategy[EventName]:
    """The ``prefix=`` keyword: ``None`` is the default prefix; a value is checked now."""
    if prefix is None:
        return st.just(DEFAULT_PREFIX)
    return as_strategy(prefix, st.just(DEFAULT_PREFIX), lambda v: check_prefix(v, function))


def event_options(function: str, prefix: Any, function_name: Any, streaming: Any, span: Any) -> tuple[SearchStrategy[Any], ...]:
    """The checked ``prefix``, ``function_name``, ``streaming`` and ``span`` keywords, as strategies."""
    return (
        prefix_strategy(prefix, function),
        as_strategy(function_name, function_names(), lambda v: check_function_name(v, function)),
        as_strategy(streaming, st.booleans(), lambda v: check_bool(v, function, "streaming")),
        as_strategy(span, span_contexts()),
    )


def start_events(*, prefix: Any = DEFAULT_PREFIX, function_name: Any = None, streaming: Any = None, span: Any = None) -> SearchStrategy[Event]:
    """Valid ``start`` events. ``prefix`` (default ``("ash_baml",)``), ``function_name``,
    ``streaming`` and ``span`` (the ``telemetry_span_context``) fix or narrow the drawn ones."""
    prefix_s, name_s, streaming_s, span_s = event_options("start_events", prefix, function_name, streaming, span)

    @st.composite
    def draw_start(draw: st.DrawFn) -> Event:
        common = call_metadata(draw(name_s, label="function_name"), draw(streaming_s, label="streaming"), draw)
        return start_event(
            draw(prefix_s, label="prefix"), common, draw(arguments(), label="arguments"),
            draw(WALL_TIMES, label="system_time"), draw(MONOTONIC_TIMES, label="monotonic_time"), draw(span_s, label="span"),
        )

    return draw_start()


def stop_events(
    *,
    prefix: Any = DEFAULT_PREFIX,
    function_name: Any = None,
    streaming: Any = None,
    span: Any = None,
    usage: Any = None,
    model: Any = None,
    max_duration: DurationLike = "120s",
) -> SearchStrategy[Event]:
    """Valid ``stop`` events: tokens from ``usage`` (default: :func:`usages` or unknown;
    ``total_tokens`` is their sum or ``None``), ``model`` from :func:`models`, optional
    ``cached_input_tokens``, ``provider``, ``client_name``, ``num_attempts``,
    ``request_id``, and for streams ``time_to_first_chunk`` (<= ``duration``)."""
    prefix_s, name_s, streaming_s, span_s = event_options("stop_events", prefix, function_name, streaming, span)
    usage_s = usage_option(usage, "stop_events")
    model_s = as_strategy(model, models())
    max_ns = duration_ns(max_duration, "stop_events", "max_duration")

    @st.composite
    def draw_stop(draw: st.DrawFn) -> Event:
        streaming_v = draw(streaming_s, label="streaming")
        common = call_metadata(draw(name_s, label="function_name"), streaming_v, draw)
        duration = draw(st.integers(0, max_ns), label="duration")
        tokens, extra = stop_parts(draw, usage_s, model_s, streaming_v, duration)
        monotonic = end_monotonic(draw, duration)
        return stop_event(draw(prefix_s, label="prefix"), common, duration, monotonic, tokens, extra, draw(span_s, label="span"))

    return draw_stop()


def exception_events(
    *,
    prefix: Any = DEFAULT_PREFIX,
    function_name: Any = None,
    streaming: Any = None,
    span: Any = None,
    kind: str | None = None,
    max_duration: DurationLike = "120s",
) -> SearchStrategy[Event]:
    """Valid ``exception`` events whose ``kind`` agrees with their ``reason`` (see
    :func:`exception_reasons`; ``kind="error"`` or ``"exit"`` narrows them), with a
    ``traceback.StackSummary`` ``stacktrace``."""
    prefix_s, name_s, streaming_s, span_s = event_options("exception_events", prefix, function_name, streaming, span)
    reasons = exception_reasons(kind=kind)
    max_ns = duration_ns(max_duration, "exception_events", "max_duration")

    @st.composite
    def draw_exception(draw: st.DrawFn) -> Event:
        common = call_metadata(draw(name_s, label="function_name"), draw(streaming_s, label="streaming"), draw)
        duration = draw(st.integers(0, max_ns), label="duration")
        kind_v, reason = draw(reasons, label="reason")
        return exception_event(
            draw(prefix_s, label="prefix"), common, duration, end_monotonic(draw, duration),
            kind_v, reason, draw(stacktraces(), label="stacktrace"), draw(span_s, label="span"),
            draw(st.one_of(st.none(), models(allow_none=False)), label="model"),
        )

    return draw_exception()


def handler_failure_events(*, event_name: Any = None, kind: str | None = None) -> SearchStrategy[Event]:
    """Valid ``("telemetry","handler","failure")`` events: ``event_name`` (default: a call
    event under any prefix), a hashable ``handler_id``, any ``handler_config``, and a
    ``kind`` agreeing with the ``reason``."""
    names = st.builds(call_event_name, event_prefixes(), st.sampled_from(CALL_KINDS))
    name_s = as_strategy(event_name, names, lambda v: checked(check_event_name, v, what="strategies.handler_failure_events(event_name=...)"))
    reasons = exception_reasons(kind=kind)

    @st.composite
    def draw_failure(draw: st.DrawFn) -> Event:
        kind_v, reason = draw(reasons, label="reason")
        return Event(
            HANDLER_FAILURE,
            {"system_time": draw(WALL_TIMES, label="system_time"), "monotonic_time": draw(MONOTONIC_TIMES, label="monotonic_time")},
            {
                "event_name": draw(name_s, label="event_name"),
                "handler_id": draw(st.one_of(identifiers(max_size=20), st.integers(), st.tuples(st.text(max_size=6), st.integers())), label="handler_id"),
                "handler_config": draw(st.one_of(st.none(), JSON_VALUES), label="handler_config"),
                "kind": kind_v,
                "reason": reason,
                "stacktrace": draw(stacktraces(), label="stacktrace"),
            },
        )

    return draw_failure()


def events(*, prefix: Any = DEFAULT_PREFIX, kinds: Sequence[str] | str | None = None) -> SearchStrategy[Event]:
    """Any single valid event (of ``kinds``, default all of :data:`EVENT_KINDS`), as an
    :data:`Event` ``(name, measurements, metadata)`` triple."""
    chosen = check_kinds(kinds, EVENT_KINDS, "events")
    prefix_strategy(prefix, "events")  # checked now, not at draw time
    makers = {
        "start": lambda: start_events(prefix=prefix),
        "stop": lambda: stop_events(prefix=prefix),
        "exception": lambda: exception_events(prefix=prefix),
        "handler_failure": lambda: handler_failure_events(),
    }
    return st.one_of([makers[k]() for k in chosen])
