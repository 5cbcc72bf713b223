"""Strategies for valid event streams: many calls in flight, in emission order.

Every stream drawn passes ``validate_stream``: span contexts are unique, each start is
followed by exactly one stop or exception agreeing with it, time only moves forward, and
each end's ``duration`` is the difference of its and its start's monotonic times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..clock import DurationLike
from ..contract import DEFAULT_PREFIX, MAX_NATIVE, StreamAbandoned
from ._events import (
    WALL_TIMES,
    Event,
    call_metadata,
    event_options,
    exception_event,
    handler_failure_events,
    start_event,
    stop_event,
    stop_parts,
)
from ._validation import MAX_SIZE, as_strategy, check_bool, check_count, duration_ns, fail
from ._values import arguments, exception_reasons, models, span_contexts, stacktraces, usage_option

__all__ = ["event_streams"]

@dataclass
class _CallPlan:
    """One call of a generated stream (internal)."""

    span: Any
    common: dict[str, Any]
    args: dict[str, Any]
    start_index: int = -1
    end_index: int = -1
    start_mono: int = 0


def event_streams(
    *,
    max_calls: int = 8,
    min_calls: int = 0,
    prefix: Any = DEFAULT_PREFIX,
    function_name: Any = None,
    streaming: Any = None,
    usage: Any = None,
    model: Any = None,
    exceptions: bool = True,
    handler_failures: bool = False,
    max_gap: DurationLike = "5s",
) -> SearchStrategy[list[Event]]:
    """Valid streams (lists of :data:`Event`) of ``min_calls..max_calls`` calls, in emission order.

    Starts and ends interleave (many calls in flight at once), span contexts are unique,
    every start is followed by exactly one stop or exception with the same span,
    function name and ``streaming``; time moves forward by ``0..max_gap`` between
    events (never beyond ``contract.MAX_NATIVE``), and each end's ``duration`` is exactly the difference of its monotonic time
    and its start's. All events share one prefix (``prefix``: a tuple, or a strategy
    drawn once per stream). ``function_name``, ``streaming``, ``usage`` and ``model``
    fix or narrow the calls. ``exceptions=False`` ends every call with a stop;
    ``handler_failures=True`` sprinkles ``("telemetry","handler","failure")`` events in.
    """
    check_count(min_calls, "event_streams", "min_calls", maximum=MAX_SIZE)
    check_count(max_calls, "event_streams", "max_calls", maximum=MAX_SIZE)
    if max_calls < min_calls:
        fail(f"strategies.event_streams(min_calls={min_calls!r}, max_calls={max_calls!r}): expected min_calls <= max_calls")
    check_bool(exceptions, "event_streams", "exceptions")
    check_bool(handler_failures, "event_streams", "handler_failures")
    gap_max = duration_ns(max_gap, "event_streams", "max_gap")
    prefix_s, name_s, streaming_s, _ = event_options("event_streams", prefix, function_name, streaming, None)
    usage_s = usage_option(usage, "event_streams")
    model_s = as_strategy(model, models())
    failure_s = handler_failure_events()

    @st.composite
    def draw_stream(draw: st.DrawFn) -> list[Event]:
        pfx = draw(prefix_s, label="prefix")
        n = draw(st.integers(min_value=min_calls, max_value=max_calls), label="calls")
        spans = draw(st.lists(span_contexts(), min_size=n, max_size=n, unique=True), label="spans")
        wall0 = draw(WALL_TIMES, label="system_time at start")
        mono0 = now = draw(st.integers(0, 2**61), label="monotonic_time at start")
        out: list[Event] = []
        pending = list(range(n))
        running: list[_CallPlan] = []
        while pending or running:
            if pending and running:
                begin = draw(st.booleans(), label="start another call")
            else:
                begin = bool(pending)
            # both clocks stay within contract.MAX_NATIVE however large max_gap is
            room = min(MAX_NATIVE - now, MAX_NATIVE - wall0 - (now - mono0))
            now += draw(st.integers(0, min(gap_max, room)), label="gap")
            wall = wall0 + (now - mono0)
            if begin:
                i = pending.pop(0)
                common = call_metadata(draw(name_s, label="function_name"), draw(streaming_s, label="streaming"), draw)
                call = _CallPlan(spans[i], common, draw(arguments(), label="arguments"), start_mono=now)
                running.append(call)
                out.append(start_event(pfx, common, call.args, wall, now, call.span))
            else:
                call = running.pop(draw(st.integers(0, len(running) - 1), label="which call ends"))
                duration = now - call.start_mono
                if not exceptions or draw(st.booleans(), label="ends with stop"):
                    tokens, extra = stop_parts(draw, usage_s, model_s, call.common["streaming"], duration)
                    out.append(stop_event(pfx, call.common, duration, now, tokens, extra, call.span))
                else:
                    kind, reason = draw(exception_reasons(), label="reason")
                    if isinstance(reason, StreamAbandoned):
                        reason = StreamAbandoned(call.common["function_name"])
                    out.append(
                        exception_event(pfx, call.common, duration, now, kind, reason, draw(stacktraces(), label="stacktrace"), call.span)
                    )
            if handler_failures and draw(st.integers(0, 3), label="handler failure here") == 0:
                failure = draw(failure_s, label="handler failure")
                # handler_failure_events() builds fresh dicts: give them this stream's times and event
                cast("dict[str, Any]", failure.measurements).update({"system_time": wall, "monotonic_time": now})
                cast("dict[str, Any]", failure.metadata)["event_name"] = out[-1].name
                out.append(failure)
        return out

    return draw_stream()
