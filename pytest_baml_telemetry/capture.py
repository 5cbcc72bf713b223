"""Capture events and assert on them: partial matching, closest-event diffs, waiting.

An :class:`EventCapture` is a dispatcher handler that keeps every event it receives.
Matching is partial: each given key must match, where an expected value may be a
literal, a type, a predicate, a nested mapping (matched partially) or any object whose
``==`` does the matching (``dirty-equals``: ``IsInt``, ``IsStr(regex=...)``, ...).
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeGuard, Union

from .clock import DurationLike, parse_duration
from .contract import (
    DEFAULT_PREFIX,
    HANDLER_FAILURE,
    EventName,
    check_event_name,
    event_kind,
    format_event_name,
)
from .dispatcher import Dispatcher, default_dispatcher

__all__ = [
    "EventCapture",
    "CapturedEvent",
    "CapturedCall",
    "EventMatcher",
    "expect",
    "resolve_event_name",
    "matches",
]

EventSpec = Union[str, EventName]
_SHORT = ("start", "stop", "exception")
_capture_ids = itertools.count(1)
_current_capture: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "pytest_baml_telemetry_capture", default=frozenset()
)
_MISSING = object()


def resolve_event_name(event: Any, prefix: EventName = DEFAULT_PREFIX) -> EventName:
    """Turn ``"stop"``, ``"ash_baml.call.stop"`` or ``("ash_baml","call","stop")`` into a tuple.

    The short names ``"start"``, ``"stop"``, ``"exception"`` use ``prefix``;
    ``"handler_failure"`` is ``("telemetry","handler","failure")``.
    """
    if isinstance(event, str):
        if event in _SHORT:
            return prefix + ("call", event)
        if event in ("handler_failure", "failure"):
            return HANDLER_FAILURE
        if not event or "." not in event:
            raise ValueError(
                f"unknown event {event!r}: expected 'start', 'stop', 'exception', 'handler_failure', "
                "a dotted name such as 'ash_baml.call.stop', or a tuple of strings"
            )
        return check_event_name(tuple(event.split(".")), what="event")
    return check_event_name(event, what="event")


# --------------------------------------------------------------------------- matching


def _value_matches(expected: Any, actual: Any) -> bool:
    if expected is actual:
        return True
    try:
        if expected == actual:
            return True
    except Exception:
        pass
    if isinstance(expected, type):
        return not isinstance(actual, type) and isinstance(actual, expected)
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and matches(expected, actual)
    if callable(expected):
        try:
            return bool(expected(actual))
        except Exception:
            return False
    return False


def matches(expected: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> bool:
    """True when every key of ``expected`` is in ``actual`` with a matching value."""
    if not expected:
        return True
    for key, want in expected.items():
        got = actual.get(key, _MISSING)
        if got is _MISSING or not _value_matches(want, got):
            return False
    return True


def _describe(value: Any, limit: int = 120) -> str:
    if isinstance(value, type):
        text = value.__name__
    else:
        try:
            text = repr(value)
        except Exception as exc:
            text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    if callable(value) and not isinstance(value, type) and text.startswith("<function"):
        text = f"a value satisfying {getattr(value, '__qualname__', text)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _differences(where: str, expected: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> list[str]:
    out = []
    for key, want in (expected or {}).items():
        got = actual.get(key, _MISSING)
        if got is _MISSING:
            out.append(f"{where}[{key!r}]: expected {_describe(want)}, but the key is missing")
        elif not _value_matches(want, got):
            out.append(f"{where}[{key!r}]: expected {_describe(want)}, got {_describe(got)}")
    return out


def _score(expected: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> int:
    return sum(1 for k, v in (expected or {}).items() if k in actual and _value_matches(v, actual[k]))


# --------------------------------------------------------------------------- data


class CapturedEvent(NamedTuple):
    """One captured event: ``(name, measurements, metadata)``, as a tuple and by attribute."""

    name: EventName
    measurements: Mapping[str, Any]
    metadata: Mapping[str, Any]

    @property
    def kind(self) -> str | None:
        """``"start"``, ``"stop"``, ``"exception"``, ``"handler_failure"`` or ``None``."""
        return event_kind(self.name)

    @property
    def dotted_name(self) -> str:
        return format_event_name(self.name)

    @property
    def span_context(self) -> Any:
        return self.metadata.get("telemetry_span_context")

    @property
    def function_name(self) -> str | None:
        return self.metadata.get("function_name")

    def summary(self) -> str:
        """A one-line description for failure messages."""
        parts = []
        md = self.metadata
        if "function_name" in md:
            parts.append(f"function_name={md['function_name']!r}")
        if self.kind == "exception":
            reason = md.get("reason")
            parts.append(f"kind={md.get('kind')!r} reason={type(reason).__name__}: {reason}")
        if self.kind == "handler_failure":
            parts.append(f"handler_id={md.get('handler_id')!r} reason={md.get('reason')!r}")
        if "telemetry_span_context" in md:
            parts.append(f"span={md['telemetry_span_context']!r}")
        return f"{self.dotted_name}({', '.join(parts)})"


@dataclass(frozen=True)
class CapturedCall:
    """A start paired with its stop or exception (``ok`` is ``None`` while still running).

    ``function_name`` is ``None`` only for a start event whose metadata has none (an
    event outside the contract).
    """

    function_name: str | None
    ok: bool | None
    streaming: bool
    duration: int | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cached_input_tokens: int | None
    model: str | None
    error: BaseException | None
    kind: str | None
    arguments: Any
    result: Any
    time_to_first_chunk: int | None
    span_context: Any
    start: CapturedEvent
    end: CapturedEvent | None = field(default=None)

    @property
    def duration_ms(self) -> float | None:
        """The duration in milliseconds (a float), or ``None`` while running."""
        return None if self.duration is None else self.duration / 1_000_000

    @property
    def finished(self) -> bool:
        return self.end is not None

    def as_mapping(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _CALL_ATTRS}

    def summary(self) -> str:
        state = {True: "ok", False: "failed", None: "running"}[self.ok]
        bits = [f"{self.function_name} {state}"]
        if self.duration is not None:
            bits.append(f"{self.duration / 1_000_000:g}ms")
        if self.model is not None:
            bits.append(f"model={self.model!r}")
        if self.input_tokens is not None or self.output_tokens is not None:
            bits.append(f"tokens={self.input_tokens}/{self.output_tokens}")
        if self.error is not None:
            bits.append(f"error={type(self.error).__name__}: {self.error}")
        return " ".join(bits)


_CALL_ATTRS = (
    "function_name",
    "ok",
    "streaming",
    "duration",
    "duration_ms",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "cached_input_tokens",
    "model",
    "error",
    "kind",
    "arguments",
    "result",
    "time_to_first_chunk",
)


@dataclass(frozen=True)
class EventMatcher:
    """An expected event: a name plus partial measurements and metadata."""

    name: EventName
    measurements: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None

    def matches(self, event: CapturedEvent) -> bool:
        return (
            event.name == self.name
            and matches(self.measurements, event.measurements)
            and matches(self.metadata, event.metadata)
        )

    def describe(self) -> str:
        parts = [format_event_name(self.name)]
        if self.measurements:
            parts.append(f"measurements={_describe_mapping(self.measurements)}")
        if self.metadata:
            parts.append(f"metadata={_describe_mapping(self.metadata)}")
        return " with ".join(parts) if len(parts) > 1 else parts[0]


def _describe_mapping(mapping: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in mapping.items()) + "}"


def _check_mapping(value: Any, what: str) -> Mapping[str, Any] | None:
    if value is None or isinstance(value, Mapping):
        return value
    raise TypeError(f"{what}={value!r} is not a mapping; expected a dict of keys to expected values, or None")


def expect(
    event: EventSpec,
    *,
    measurements: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    prefix: EventName = DEFAULT_PREFIX,
) -> EventMatcher:
    """Describe an expected event for :meth:`EventCapture.assert_sequence`."""
    return EventMatcher(
        resolve_event_name(event, prefix),
        _check_mapping(measurements, "measurements"),
        _check_mapping(metadata, "metadata"),
    )


# --------------------------------------------------------------------------- capture


class EventCapture:
    """Keeps every event of the given names that a dispatcher executes, for assertions.

    Attach with :meth:`attach` (or use it as a context manager); the pytest fixtures
    ``baml_events`` and ``baml_capture`` do it for you and detach at teardown. With
    ``context=True`` only events emitted in the context that attached the capture (and
    in contexts copied from it: asyncio tasks, ``contextvars.copy_context().run``,
    ``asyncio.to_thread``) are kept.
    """

    def __init__(
        self,
        event_names: EventSpec | Iterable[EventSpec] | None = None,
        *,
        prefix: EventName = DEFAULT_PREFIX,
        dispatcher: Dispatcher | None = None,
        context: bool = False,
        virtual_clock: bool = False,
    ) -> None:
        self.prefix = check_event_name(prefix, what="capture prefix")
        if event_names is None:
            names = [self.prefix + ("call", k) for k in _SHORT] + [HANDLER_FAILURE]
        else:
            if isinstance(event_names, str) or _is_single_name(event_names):
                event_names = [event_names]
            names = []
            for ev in event_names:
                name = resolve_event_name(ev, self.prefix)
                if name not in names:
                    names.append(name)
            if not names:
                raise ValueError("EventCapture(event_names=[]): expected at least one event name")
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            raise TypeError(f"EventCapture(dispatcher={dispatcher!r}): expected a Dispatcher or None")
        for option, value in (("context", context), ("virtual_clock", virtual_clock)):
            if not isinstance(value, bool):
                raise TypeError(f"EventCapture({option}={value!r}): expected True or False")
        self.event_names: tuple[EventName, ...] = tuple(names)
        self.dispatcher = dispatcher if dispatcher is not None else default_dispatcher
        self.virtual_clock = virtual_clock
        self.id = next(_capture_ids)
        self.handler_id = f"pytest-baml-telemetry-capture-{self.id}"
        self._raw: list[tuple[EventName, Mapping[str, Any], Mapping[str, Any]]] = []
        self._cond = threading.Condition()
        self._waiting = 0
        self._context = bool(context)
        self._token: contextvars.Token[frozenset[int]] | None = None
        self.attached = False

    # ------------------------------------------------------------------ attach

    def _handler(self, name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        self._raw.append((name, measurements, metadata))
        if self._waiting:
            with self._cond:
                self._cond.notify_all()

    def _context_handler(self, name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        if self.id in _current_capture.get():
            self._handler(name, measurements, metadata, config)

    def attach(self) -> EventCapture:
        """Start capturing. Returns ``self``."""
        if self.attached:
            return self
        if self._context:
            self._token = _current_capture.set(_current_capture.get() | {self.id})
        handler = self._context_handler if self._context else self._handler
        self.dispatcher.attach_many(self.handler_id, list(self.event_names), handler)
        self.attached = True
        return self

    def detach(self) -> None:
        """Stop capturing (what was captured stays)."""
        self.dispatcher.detach(self.handler_id)
        if self._token is not None:
            try:
                _current_capture.reset(self._token)
            except ValueError:  # detached from another context: leave the variable alone
                pass
            self._token = None
        self.attached = False

    def __enter__(self) -> EventCapture:
        return self.attach()

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def clear(self) -> None:
        """Forget every captured event."""
        self._raw.clear()

    def __repr__(self) -> str:
        return f"<EventCapture {len(self._raw)} event(s) of {[format_event_name(n) for n in self.event_names]}>"

    def __len__(self) -> int:
        return len(self._raw)

    # ------------------------------------------------------------------ views

    @property
    def events(self) -> list[CapturedEvent]:
        """Every captured event, in emission order."""
        return [CapturedEvent(*raw) for raw in list(self._raw)]

    def _of_kind(self, kind: str) -> list[CapturedEvent]:
        return [e for e in self.events if e.kind == kind]

    @property
    def starts(self) -> list[CapturedEvent]:
        return self._of_kind("start")

    @property
    def stops(self) -> list[CapturedEvent]:
        return self._of_kind("stop")

    @property
    def exceptions(self) -> list[CapturedEvent]:
        return self._of_kind("exception")

    @property
    def handler_failures(self) -> list[CapturedEvent]:
        return self._of_kind("handler_failure")

    @property
    def calls(self) -> list[CapturedCall]:
        """Starts paired with their stop or exception, in order of start."""
        ends: dict[Any, CapturedEvent] = {}
        starts: list[CapturedEvent] = []
        for ev in self.events:
            kind = ev.kind
            if kind == "start":
                starts.append(ev)
            elif kind in ("stop", "exception"):
                ends.setdefault((ev.name[:-1], ev.span_context), ev)
        out = []
        for start in starts:
            end = ends.get((start.name[:-1], start.span_context))
            out.append(_pair(start, end))
        return out

    # ------------------------------------------------------------------ matching helpers

    def _matcher(self, event: Any, measurements: Any, metadata: Any) -> EventMatcher:
        if isinstance(event, EventMatcher):
            if measurements is not None or metadata is not None:
                raise TypeError("pass measurements/metadata either in expect(...) or as arguments, not both")
            return event
        return expect(event, measurements=measurements, metadata=metadata, prefix=self.prefix)

    def find(self, event: Any, *, measurements: Mapping[str, Any] | None = None, metadata: Mapping[str, Any] | None = None) -> list[CapturedEvent]:
        """Captured events matching ``event`` and the partial mappings."""
        matcher = self._matcher(event, measurements, metadata)
        return [e for e in self.events if matcher.matches(e)]

    def _closest(self, matcher: EventMatcher, events: Sequence[CapturedEvent], limit: int = 3) -> list[str]:
        same = [(i, e) for i, e in enumerate(events) if e.name == matcher.name]
        ranked = sorted(
            same,
            key=lambda ie: -(_score(matcher.measurements, ie[1].measurements) + _score(matcher.metadata, ie[1].metadata)),
        )
        lines = []
        for i, ev in ranked[:limit]:
            diffs = _differences("measurements", matcher.measurements, ev.measurements) + _differences(
                "metadata", matcher.metadata, ev.metadata
            )
            lines.append(f"  #{i} {ev.summary()}")
            lines.extend(f"      {d}" for d in diffs)
        if len(ranked) > limit:
            lines.append(f"  ... and {len(ranked) - limit} more {format_event_name(matcher.name)} event(s)")
        return lines

    def _inventory(self, events: Sequence[CapturedEvent]) -> str:
        if not events:
            return "nothing was captured"
        counts = Counter(e.dotted_name for e in events)
        return "captured: " + ", ".join(f"{n} x {name}" for name, n in counts.items())

    # ------------------------------------------------------------------ assertions

    def assert_emitted(
        self,
        event: Any,
        measurements: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        count: int | None = None,
    ) -> list[CapturedEvent]:
        """Assert a matching event was captured (exactly ``count`` times if given); return the matches."""
        __tracebackhide__ = True
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError(f"count={count!r}: expected an int >= 0 or None")
        matcher = self._matcher(event, measurements, metadata)
        events = self.events
        found = [e for e in events if matcher.matches(e)]
        if (count is None and found) or (count is not None and len(found) == count):
            return found
        want = "at least once" if count is None else f"exactly {count} time(s)"
        lines = [f"expected {matcher.describe()} {want}, found {len(found)} matching of {len(events)} captured event(s)"]
        if count is not None and found:
            lines.append("matching events:")
            lines.extend(f"  {e.summary()}" for e in found[:5])
            if len(found) > 5:
                lines.append(f"  ... and {len(found) - 5} more")
        elif not found:
            closest = self._closest(matcher, events)
            if closest:
                lines.append("closest captured events:")
                lines.extend(closest)
            else:
                lines.append(f"no {format_event_name(matcher.name)} event was captured")
        lines.append(self._inventory(events))
        raise AssertionError("\n".join(lines))

    def assert_not_emitted(
        self,
        event: Any,
        measurements: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Assert no captured event matches."""
        __tracebackhide__ = True
        matcher = self._matcher(event, measurements, metadata)
        found = [(i, e) for i, e in enumerate(self.events) if matcher.matches(e)]
        if found:
            lines = [f"expected no {matcher.describe()}, found {len(found)}:"]
            lines.extend(f"  #{i} {e.summary()}" for i, e in found[:5])
            if len(found) > 5:
                lines.append(f"  ... and {len(found) - 5} more")
            raise AssertionError("\n".join(lines))

    def assert_call(self, function_name: str, *, count: int | None = None, **expected: Any) -> CapturedCall:
        """Assert a paired call of ``function_name`` whose attributes match ``expected``.

        Keys are attributes of :class:`CapturedCall` (``ok``, ``model``, ``input_tokens``,
        ``duration_ms``, ``error``, ...). Returns the first matching call.
        """
        __tracebackhide__ = True
        unknown = sorted(set(expected) - set(_CALL_ATTRS))
        if unknown:
            raise TypeError(f"assert_call: unknown call attribute(s) {unknown}; expected some of {list(_CALL_ATTRS)}")
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
            raise ValueError(f"count={count!r}: expected an int >= 0 or None")
        calls = self.calls
        named = [c for c in calls if c.function_name == function_name]
        found = [c for c in named if matches(expected, c.as_mapping())]
        if found and (count is None or len(found) == count):
            return found[0]
        if count is not None and not found and count == 0:
            return None  # type: ignore[return-value]
        want = "" if count is None else f" exactly {count} time(s)"
        desc = ", ".join(f"{k}={_describe(v)}" for k, v in expected.items())
        lines = [f"expected a call of {function_name!r}{' with ' + desc if desc else ''}{want}, found {len(found)}"]
        if not found:
            if named:
                lines.append(f"calls of {function_name!r}:")
                ranked = sorted(named, key=lambda c: -_score(expected, c.as_mapping()))
                for call in ranked[:3]:
                    lines.append(f"  {call.summary()}")
                    lines.extend(f"      {d}" for d in _differences("call", expected, call.as_mapping()))
                if len(named) > 3:
                    lines.append(f"  ... and {len(named) - 3} more")
            else:
                others = Counter(c.function_name for c in calls)
                lines.append(
                    "calls captured: " + ", ".join(f"{n} x {f}" for f, n in others.items())
                    if others
                    else "no call was captured"
                )
        raise AssertionError("\n".join(lines))

    def assert_sequence(self, *expected: Any) -> list[CapturedEvent]:
        """Assert the expected events occur in this order (other events may come between).

        Each item is an event name (``"start"``, ``"ash_baml.call.stop"``, a tuple) or an
        :func:`expect` matcher. Returns the matched events.
        """
        __tracebackhide__ = True
        if not expected:
            raise ValueError("assert_sequence(): expected at least one event")
        matchers = [self._matcher(e, None, None) for e in expected]
        events = self.events
        matched: list[tuple[int, CapturedEvent]] = []
        pos = 0
        for k, matcher in enumerate(matchers):
            for i in range(pos, len(events)):
                if matcher.matches(events[i]):
                    matched.append((i, events[i]))
                    pos = i + 1
                    break
            else:
                lines = [f"expected {len(matchers)} events in order; matched the first {k}:"]
                for i, ev in matched:  # the first k matchers matched
                    lines.append(f"  ok  #{i} {ev.summary()}")
                lines.append(f"  missing: {matcher.describe()}" + (f" after event #{pos - 1}" if pos else ""))
                rest = events[pos:]
                closest = self._closest(matcher, rest)
                if closest:
                    lines.append("closest candidates after that point (numbered from there):")
                    lines.extend(closest)
                earlier = [i for i in range(pos) if matcher.matches(events[i])]
                if earlier:
                    lines.append(f"  (a matching event exists earlier, at #{earlier[0]}: out of order)")
                lines.append(self._inventory(events))
                raise AssertionError("\n".join(lines))
        return [ev for _, ev in matched]

    # ------------------------------------------------------------------ waiting

    def _count(self, matcher: EventMatcher) -> int:
        return sum(1 for raw in list(self._raw) if matcher.matches(CapturedEvent(*raw)))

    def _timeout_error(self, matcher: EventMatcher, count: int, timeout: float) -> AssertionError:
        found = self._count(matcher)
        lines = [
            f"timed out after {timeout:g}s waiting for {count} x {matcher.describe()}; "
            f"{found} matching of {len(self._raw)} captured event(s)"
        ]
        closest = self._closest(matcher, self.events)
        if closest and not found:
            lines.append("closest captured events:")
            lines.extend(closest)
        lines.append(self._inventory(self.events))
        return AssertionError("\n".join(lines))

    def _wait_args(self, timeout: DurationLike, count: int) -> float:
        seconds = parse_duration(timeout, name="timeout")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count={count!r}: expected an int >= 1")
        return seconds

    def wait_for(
        self,
        event: Any,
        *,
        timeout: DurationLike = 1.0,
        measurements: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        count: int = 1,
    ) -> list[CapturedEvent]:
        """Block until ``count`` matching events were captured (from any thread).

        Raises ``AssertionError`` after ``timeout`` (a duration). Returns the matches.
        """
        __tracebackhide__ = True
        matcher = self._matcher(event, measurements, metadata)
        seconds = self._wait_args(timeout, count)
        deadline = time.monotonic() + seconds
        with self._cond:
            self._waiting += 1
        try:
            while True:
                if self._count(matcher) >= count:
                    return self.find(matcher)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timeout_error(matcher, count, seconds)
                with self._cond:
                    self._cond.wait(min(remaining, 0.05))
        finally:
            with self._cond:
                self._waiting -= 1

    async def await_for(
        self,
        event: Any,
        *,
        timeout: DurationLike = 1.0,
        measurements: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        count: int = 1,
    ) -> list[CapturedEvent]:
        """The asyncio form of :meth:`wait_for`: yields to the event loop while waiting."""
        __tracebackhide__ = True
        import asyncio

        matcher = self._matcher(event, measurements, metadata)
        seconds = self._wait_args(timeout, count)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        delay = 0.0005
        while True:
            if self._count(matcher) >= count:
                return self.find(matcher)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._timeout_error(matcher, count, seconds)
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.02)

    # ------------------------------------------------------------------ snapshots

    def as_dicts(self, *, virtual_clock: bool | None = None) -> list[dict[str, Any]]:
        """Captured events as plain dicts, normalised for ``==`` and snapshot tests.

        Span contexts become 1, 2, ... in order of first appearance; ``system_time`` and
        ``monotonic_time`` become 0, and so do ``duration`` and ``time_to_first_chunk``
        unless the clock is virtual; exceptions become ``"ClassName: message"``; stack
        traces are dropped; event names become dotted strings.
        """
        virtual = self.virtual_clock if virtual_clock is None else virtual_clock
        spans: dict[Any, int] = {}
        out = []
        for ev in self.events:
            measurements = {}
            for key, value in ev.measurements.items():
                if key in ("system_time", "monotonic_time"):
                    value = 0
                elif key in ("duration", "time_to_first_chunk") and not virtual and value is not None:
                    value = 0
                measurements[key] = _plain(value)
            metadata = {}
            for key, value in ev.metadata.items():
                if key == "stacktrace":
                    continue
                if key == "telemetry_span_context":
                    value = spans.setdefault(value, len(spans) + 1)
                elif key == "event_name" and isinstance(value, tuple):
                    value = format_event_name(value)
                metadata[key] = _plain(value)
            out.append({"event": ev.dotted_name, "measurements": measurements, "metadata": metadata})
        return out

    # ------------------------------------------------------------------ teardown checks

    def check(self, *, validate: bool = True, allow_handler_failures: bool = False) -> None:
        """Raise ``AssertionError`` on a contract violation, an unpaired start or a handler failure."""
        from .contract import ContractViolation, validate_stream

        problems = []
        if not allow_handler_failures:
            for ev in self.handler_failures:
                md = ev.metadata
                reason = md.get("reason")
                problems.append(
                    f"handler {md.get('handler_id')!r} failed on {format_event_name(md.get('event_name'))} "
                    f"and was detached: {type(reason).__name__}: {reason}"
                )
        if validate:
            contract_events = [e for e in self.events if e.kind is not None]
            try:
                validate_stream(contract_events)
            except ContractViolation as exc:
                problems.append(f"contract violation: {exc}")
        if problems:
            hints = []
            if any(p.startswith("handler") for p in problems):
                hints.append("@pytest.mark.baml_events(allow_handler_failures=True)")
            if any(p.startswith("contract") for p in problems):
                hints.append("@pytest.mark.baml_events(validate=False)")
            raise AssertionError(
                "baml_events: the telemetry captured during this test is not valid:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + ("\n(relax with " + " or ".join(hints) + ")" if hints else "")
            )


def _is_single_name(value: Any) -> TypeGuard[EventName]:
    """``("my_app", "call", "stop")`` is one name; ``("start", "stop")`` is two."""
    return (
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(p, str) for p in value)
        and not any(p in _SHORT or p in ("handler_failure", "failure") or "." in p for p in value)
    )


def _plain(value: Any) -> Any:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _pair(start: CapturedEvent, end: CapturedEvent | None) -> CapturedCall:
    smd = start.metadata
    if end is None:
        return CapturedCall(
            function_name=smd.get("function_name"),
            ok=None,
            streaming=bool(smd.get("streaming")),
            duration=None,
            input_tokens=None,
            output_tokens=None,
            total_tokens=None,
            cached_input_tokens=None,
            model=None,
            error=None,
            kind=None,
            arguments=smd.get("arguments"),
            result=None,
            time_to_first_chunk=None,
            span_context=start.span_context,
            start=start,
        )
    m, md = end.measurements, end.metadata
    ok = end.kind == "stop"
    return CapturedCall(
        function_name=smd.get("function_name"),
        ok=ok,
        streaming=bool(smd.get("streaming")),
        duration=m.get("duration"),
        input_tokens=m.get("input_tokens"),
        output_tokens=m.get("output_tokens"),
        total_tokens=m.get("total_tokens"),
        cached_input_tokens=m.get("cached_input_tokens"),
        model=md.get("model"),
        error=None if ok else md.get("reason"),
        kind=None if ok else md.get("kind"),
        arguments=smd.get("arguments"),
        result=md.get("result") if ok else None,
        time_to_first_chunk=m.get("time_to_first_chunk"),
        span_context=start.span_context,
        start=start,
        end=end,
    )
