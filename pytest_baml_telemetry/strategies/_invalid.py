"""Strategies for broken telemetry, for negative tests of validators and handlers.

:func:`invalid_events` breaks exactly one thing in a valid event and
:func:`invalid_streams` plants exactly one defect in a valid stream; each value says
what was broken (``broken_key``, ``reason``), so a test can assert that
``validate_event``/``validate_stream`` reject it naming that key.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from ..contract import (
    DEFAULT_PREFIX,
    EVENT_SPECS,
    HANDLER_FAILURE,
    KINDS,
    EventName,
    call_event_name,
    event_kind,
    split_call_event,
)
from ._events import EVENT_KINDS, Event, events, exception_event
from ._streams import event_streams
from ._validation import MAX_SIZE, check_bool, check_count, check_kinds, fail
from ._values import event_prefixes, exception_reasons, function_names

__all__ = ["STREAM_DEFECTS", "InvalidEvent", "InvalidStream", "invalid_events", "invalid_streams"]


class InvalidEvent(NamedTuple):
    """A valid event with exactly one thing broken.

    ``broken_key`` is the key :func:`~pytest_baml_telemetry.validate_event` must name:
    a measurement or metadata key, ``"measurements"``/``"metadata"`` when the whole
    mapping was replaced, or ``"event_name"`` when the name was broken. ``where`` is
    ``"measurements"``, ``"metadata"`` or ``"event_name"``; ``reason`` says what was done
    (``"missing"``, ``"wrong value 'abc'"``, ...); ``value`` is the bad value (``None``
    for a missing key).
    """

    name: Any
    measurements: Any
    metadata: Any
    broken_key: str
    reason: str
    where: str
    value: Any = None

    @property
    def event(self) -> tuple[Any, Any, Any]:
        """The broken ``(name, measurements, metadata)`` triple."""
        return (self.name, self.measurements, self.metadata)


class _Unhashable:
    """A value that is not hashable (for span contexts and handler ids)."""

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "<unhashable>"


_BAD_INT = st.sampled_from([1.5, "12", True, None, [1], 2.0])
_BAD_OPT_NONNEG = st.one_of(st.integers(max_value=-1), st.sampled_from([2.0, "3", True, False, [0], float("nan")]))
_BAD_OPT_STR = st.sampled_from([1, 2.5, b"bytes", ["x"], True, ("gpt",)])
_BAD_VALUES: dict[str, SearchStrategy[Any]] = {
    "system_time": _BAD_INT,
    "monotonic_time": _BAD_INT,
    "duration": st.one_of(st.integers(max_value=-1), _BAD_INT),
    "input_tokens": _BAD_OPT_NONNEG,
    "output_tokens": _BAD_OPT_NONNEG,
    "total_tokens": _BAD_OPT_NONNEG,
    "cached_input_tokens": _BAD_OPT_NONNEG,
    "time_to_first_chunk": _BAD_OPT_NONNEG,
    "num_attempts": _BAD_OPT_NONNEG,
    "action": _BAD_OPT_STR,
    "client_module": _BAD_OPT_STR,
    "model": _BAD_OPT_STR,
    "provider": _BAD_OPT_STR,
    "client_name": _BAD_OPT_STR,
    "request_id": _BAD_OPT_STR,
    "function_name": st.sampled_from(["", None, 3, b"ExtractResume", ("ExtractResume",)]),
    "streaming": st.sampled_from([0, 1, "true", None, "False"]),
    "arguments": st.sampled_from([None, [("resume", "...")], "resume=...", 3]),
    "telemetry_span_context": st.sampled_from([None, [1], {"a": 1}, {1}, _Unhashable()]),
    "kind": st.one_of(
        st.text(max_size=8).filter(lambda s: s not in KINDS),
        st.sampled_from([None, 1, b"error", "Error", ("error",)]),
    ),
    "reason": st.sampled_from(["boom", None, ValueError, 42, ("error", "boom"), "Exception: boom"]),
    "stacktrace": st.sampled_from([[], "Traceback (most recent call last): ...", None, ("app.py", 1)]),
    "event_name": st.sampled_from(["ash_baml.call.stop", (), ("ash_baml", 1), None, ("ash_baml", "")]),
    "handler_id": st.sampled_from([[1], {"a": 1}, {1}, _Unhashable()]),
}
"""Values each checked key rejects (keys that accept anything can only be deleted)."""

_BAD_NAMES = st.one_of(
    st.sampled_from(["ash_baml.call.stop", (), ("ash_baml", 1, "stop"), ("ash_baml", "", "stop"), None, ["ash_baml", ""]]),
    st.sampled_from([("ash_baml", "call", "finish"), ("ash_baml", "stop"), ("call",), ("telemetry", "handler", "failed")]),
)


def _mutations(kind: str, name: EventName, m: Mapping[str, Any], md: Mapping[str, Any], *, names: bool) -> list[tuple[str, str, str]]:
    spec = EVENT_SPECS[kind]
    found: list[tuple[str, str, str]] = []
    for where, data, fields in (("measurements", m, spec.measurements), ("metadata", md, spec.metadata)):
        for f in fields:
            if f.key not in data:
                continue
            if f.required:
                found.append(("delete", where, f.key))
            if f.key in _BAD_VALUES:
                found.append(("retype", where, f.key))
    if kind == "stop":
        if m["input_tokens"] is not None and m["output_tokens"] is not None:
            found.append(("wrong_total", "measurements", "total_tokens"))
        else:
            found.append(("made_up_total", "measurements", "total_tokens"))
    found.append(("not_a_mapping", "measurements", "measurements"))
    found.append(("not_a_mapping", "metadata", "metadata"))
    if names:
        found.append(("bad_name", "event_name", "event_name"))
    return found


def _mutate(draw: st.DrawFn, event: Event, *, names: bool, only: frozenset[str] | None = None) -> InvalidEvent:
    name, m, md = event
    kind = event_kind(tuple(name))
    assert kind is not None  # generated events are contract events
    found = _mutations(kind, name, m, md, names=names)
    if only is not None:
        found = [mutation for mutation in found if mutation[2] in only]
        assume(found)  # an optional key this event does not have: draw another event
    action, where, key = draw(st.sampled_from(found), label="mutation")
    m, md = dict(m), dict(md)
    target = m if where == "measurements" else md
    if action == "delete":
        del target[key]
        return InvalidEvent(name, m, md, key, "missing", where)
    if action == "retype":
        bad = draw(_BAD_VALUES[key], label=f"bad {key}")
        target[key] = bad
        return InvalidEvent(name, m, md, key, f"wrong value {bad!r}", where, bad)
    if action == "wrong_total":
        right = m["input_tokens"] + m["output_tokens"]
        bad = draw(st.integers(0, right + 1000).filter(lambda t: t != right), label="wrong total_tokens")
        m["total_tokens"] = bad
        return InvalidEvent(name, m, md, key, f"total_tokens={bad} is not input_tokens + output_tokens = {right}", where, bad)
    if action == "made_up_total":
        bad = draw(st.integers(0, 1000), label="made-up total_tokens")
        m["total_tokens"] = bad
        return InvalidEvent(name, m, md, key, f"total_tokens={bad} made up while a part is unknown (must be None)", where, bad)
    if action == "not_a_mapping":
        bad = draw(st.sampled_from([None, [], list(target.items()), "measurements"]), label=f"bad {key}")
        if where == "measurements":
            return InvalidEvent(name, bad, md, key, f"measurements replaced by {bad!r}", where, bad)
        return InvalidEvent(name, m, bad, key, f"metadata replaced by {bad!r}", where, bad)
    bad = draw(_BAD_NAMES.filter(lambda n: n != name), label="bad event name")
    return InvalidEvent(bad, m, md, "event_name", f"event name {bad!r} is malformed or not a contract event", "event_name", bad)


def invalid_events(
    *,
    prefix: Any = DEFAULT_PREFIX,
    kinds: Sequence[str] | str | None = None,
    event_names: bool = True,
    keys: Sequence[str] | str | None = None,
) -> SearchStrategy[InvalidEvent]:
    """:class:`InvalidEvent` values: an event of :func:`events` with exactly one thing broken.

    The breakages: a required key deleted; a checked key given a wrong value (wrong
    type, negative count, ``kind`` not in ``{"error","exit","throw"}``, unhashable span
    context, ...); ``total_tokens`` not the sum of known parts, or a made-up
    ``total_tokens`` when a part is unknown; measurements or metadata not a mapping;
    and (``event_names=True``) a malformed or non-contract event name.
    ``validate_event(inv.name, inv.measurements, inv.metadata)`` raises
    ``ContractViolation`` whose message names ``inv.broken_key`` (for a broken name: the
    bad name). ``keys`` limits which keys are broken (e.g. ``keys="input_tokens"``;
    ``"measurements"``, ``"metadata"`` and ``"event_name"`` name the whole mapping or the
    name); only event kinds that have one of them are drawn.
    """
    chosen = check_kinds(kinds, EVENT_KINDS, "invalid_events")
    check_bool(event_names, "invalid_events", "event_names")
    only: frozenset[str] | None = None
    if keys is not None:
        whole = ("measurements", "metadata") + (("event_name",) if event_names else ())
        known = sorted({f.key for spec in EVENT_SPECS.values() for f in (*spec.measurements, *spec.metadata)} | set(whole))
        only = frozenset(check_kinds(keys, known, "invalid_events", "keys"))
        chosen = tuple(
            k for k in chosen
            if only & {f.key for f in (*EVENT_SPECS[k].measurements, *EVENT_SPECS[k].metadata)} | (only & set(whole))
        )
        if not chosen:
            fail(
                f"strategies.invalid_events(keys={keys!r}, kinds={kinds!r}): none of these event kinds has those keys"
            )
    valid = events(prefix=prefix, kinds=chosen)

    @st.composite
    def draw_invalid(draw: st.DrawFn) -> InvalidEvent:
        return _mutate(draw, draw(valid, label="valid event"), names=event_names, only=only)

    return draw_invalid()


# =========================================================================== invalid streams


STREAM_DEFECTS = (
    "unpaired_start",
    "end_without_start",
    "end_before_start",
    "double_end",
    "reused_span",
    "function_name_mismatch",
    "streaming_mismatch",
    "prefix_mismatch",
    "invalid_event",
)
"""The defects :func:`invalid_streams` plants."""


class InvalidStream(NamedTuple):
    """A stream with exactly one defect (one of :data:`STREAM_DEFECTS`).

    ``broken_key`` is the key ``validate_stream``'s ``ContractViolation`` names
    (``"telemetry_span_context"`` for pairing defects, ``"function_name"``,
    ``"streaming"``, ``"event_name"`` for a prefix mismatch, or the invalid event's key);
    ``reason`` says what was done; ``index`` is the position of the event that was changed
    or added (or of the start left unpaired).
    """

    events: list[Event]
    defect: str
    broken_key: str
    reason: str
    index: int  # type: ignore[assignment]  # a public field name that shadows tuple.index()


def _prefix_of(event: Event) -> EventName:
    """The prefix of a call event (of a generated, valid stream)."""
    parts = split_call_event(event.name)
    assert parts is not None  # generated call events are contract events
    return parts[0]


def _ends(stream: Sequence[Event]) -> dict[Any, int]:
    return {e.metadata["telemetry_span_context"]: i for i, e in enumerate(stream) if e.kind in ("stop", "exception")}


def _starts(stream: Sequence[Event]) -> dict[Any, int]:
    return {e.metadata["telemetry_span_context"]: i for i, e in enumerate(stream) if e.kind == "start"}


def invalid_streams(
    *,
    max_calls: int = 6,
    prefix: Any = DEFAULT_PREFIX,
    defects: Sequence[str] | str | None = None,
) -> SearchStrategy[InvalidStream]:
    """:class:`InvalidStream` values: a valid :func:`event_streams` stream (1..``max_calls``
    calls, 2.. for ``reused_span``) with exactly one of ``defects`` (default all of
    :data:`STREAM_DEFECTS`) planted. ``validate_stream`` must reject every one."""
    chosen = check_kinds(defects, STREAM_DEFECTS, "invalid_streams", "defects")
    check_count(max_calls, "invalid_streams", "max_calls", minimum=1, maximum=MAX_SIZE)
    if chosen == ("reused_span",) and max_calls < 2:
        fail("strategies.invalid_streams(defects=('reused_span',), max_calls=1): a reused span needs max_calls >= 2")
    streams = event_streams(min_calls=1, max_calls=max_calls, prefix=prefix)

    @st.composite
    def draw_invalid_stream(draw: st.DrawFn) -> InvalidStream:
        stream = list(draw(streams, label="valid stream"))
        starts, ends = _starts(stream), _ends(stream)
        spans = list(starts)
        possible = [d for d in chosen if d != "reused_span" or len(spans) >= 2]
        if not possible:  # only reused_span asked for, and one call drawn: add a second call
            possible = ["reused_span"]
        defect = draw(st.sampled_from(possible), label="defect")
        span = draw(st.sampled_from(spans), label="call")
        si, ei = starts[span], ends[span]
        start, end = stream[si], stream[ei]
        key = "telemetry_span_context"
        if defect == "unpaired_start":
            del stream[ei]
            return InvalidStream(stream, defect, key, f"the end of the call {span!r} was removed", si)
        if defect == "end_without_start":
            del stream[si]
            return InvalidStream(stream, defect, key, f"the start of the call {span!r} was removed", ei - 1)
        if defect == "end_before_start":
            del stream[ei]
            stream.insert(si, end)
            return InvalidStream(stream, defect, key, f"the end of the call {span!r} was moved before its start", si)
        if defect == "double_end":
            if end.kind == "stop" and draw(st.booleans(), label="exception after stop"):
                kind, reason = draw(exception_reasons(), label="second end")
                second = exception_event(
                    _prefix_of(end), {k: start.metadata[k] for k in ("resource", "action", "function_name", "client_module", "streaming")},
                    end.measurements["duration"], end.measurements["monotonic_time"], kind, reason,
                    traceback.StackSummary.from_list([]), span,
                )
            else:
                second = Event(end.name, dict(end.measurements), dict(end.metadata))
            at = draw(st.integers(ei + 1, len(stream)), label="second end at")
            stream.insert(at, second)
            return InvalidStream(stream, defect, key, f"the call {span!r} ended twice ({end.kind}, then {second.kind})", at)
        if defect == "reused_span":
            if len(spans) < 2:
                # add a second call after the first one ended, then give it the same span
                stream.append(Event(start.name, dict(start.measurements), dict(start.metadata)))
                stream.append(Event(end.name, dict(end.measurements), dict(end.metadata)))
                return InvalidStream(stream, defect, key, f"a second call reused the span {span!r}", len(stream) - 2)
            other = draw(st.sampled_from([s for s in spans if s != span]), label="other call")
            first, second_span = sorted((span, other), key=lambda s: starts[s])
            for i in (starts[second_span], ends[second_span]):
                e = stream[i]
                stream[i] = Event(e.name, e.measurements, {**e.metadata, "telemetry_span_context": first})
            return InvalidStream(stream, defect, key, f"the call {second_span!r} reused the span {first!r}", starts[second_span])
        if defect == "function_name_mismatch":
            other_name = draw(function_names().filter(lambda n: n != start.metadata["function_name"]), label="other function_name")
            stream[ei] = Event(end.name, end.measurements, {**end.metadata, "function_name": other_name})
            return InvalidStream(stream, defect, "function_name", f"the end says {other_name!r}, its start {start.metadata['function_name']!r}", ei)
        if defect == "streaming_mismatch":
            flipped = not start.metadata["streaming"]
            m = dict(end.measurements)
            if not flipped:
                m.pop("time_to_first_chunk", None)
            stream[ei] = Event(end.name, m, {**end.metadata, "streaming": flipped})
            return InvalidStream(stream, defect, "streaming", f"the end says streaming={flipped}, its start {not flipped}", ei)
        if defect == "prefix_mismatch":
            end_prefix = _prefix_of(end)
            other_prefix = draw(event_prefixes().filter(lambda p: p != end_prefix), label="other prefix")
            stream[ei] = Event(call_event_name(other_prefix, end.kind or ""), end.measurements, end.metadata)
            return InvalidStream(stream, defect, "event_name", f"the end is under {other_prefix!r}, its start under {_prefix_of(start)!r}", ei)
        # invalid_event: one event of the stream broken
        index = draw(st.sampled_from([i for i, e in enumerate(stream) if e.name != HANDLER_FAILURE]), label="broken event")
        broken = _mutate(draw, stream[index], names=False)
        stream[index] = Event(broken.name, broken.measurements, broken.metadata)
        return InvalidStream(stream, defect, broken.broken_key, f"event {index}: {broken.broken_key} {broken.reason}", index)

    return draw_invalid_stream()

