"""Capture events and assert on them: the ``baml_events`` / ``baml_capture`` fixtures' object.

An :class:`EventCapture` is a dispatcher handler that keeps every event it receives, as
the dispatcher gave it (its handler only appends; waiters are woken only when there are
any). Assertions match partially with :mod:`~pytest_baml_telemetry.matching`: each given
key must match, where an expected value may be a literal, a type, a predicate, a nested
mapping (matched partially) or any object whose ``==`` does the matching
(``dirty-equals``: ``IsInt``, ``IsStr(regex=...)``, ...). A failed assertion says what
was expected, the closest captured events with their differences, and what was captured.
The records (events, paired calls, snapshots) live in :mod:`~pytest_baml_telemetry.captured`.

The capture keeps plain ``(name, measurements, metadata)`` tuples; an assertion scans
them with :func:`~pytest_baml_telemetry.matching.select` (events of the name only, one
pass per expected key) and makes records only of what it returns or shows, so a query
over a million events stays linear and cheap. :attr:`EventCapture.events` makes the
records once and keeps them (extended as events arrive, dropped by :meth:`~EventCapture.clear`).

A stop or exception whose start came before the capture attached (a thread left over
from an earlier test finishing its call, an abandoned stream collected later) is kept
and listed in :attr:`EventCapture.begun_before_test`; it never fails the teardown's
pairing check, and a failed assertion that shows it marks it as begun before the test.
"""

from __future__ import annotations

import contextvars
import itertools
import math
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter
from typing import Any, TypeGuard, Union

from ._validate import check_bool, check_mapping, fail, is_count, is_int, short_repr
from .captured import (
    BEGUN_BEFORE,
    CALL_ATTRS,
    CallIndex,
    CapturedCall,
    CapturedEvent,
    call_starts,
    call_values,
    ends_begun_before,
    ends_begun_before_of,
    event_kinds,
    indexed,
    named_calls,
    of_names,
    pair_call,
    pair_calls,
    records,
    snapshot,
)
from .clock import DurationLike, parse_timeout
from .contract import (
    CALL_KINDS,
    DEFAULT_PREFIX,
    HANDLER_FAILURE,
    EventName,
    call_event_name,
    check_event_name,
    format_event_name,
    parse_event_name,
)
from .dispatcher import Dispatcher, default_dispatcher
from .matching import best, describe, describe_mapping, differences, flags, leaders, matches, select

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
Raw = tuple[EventName, Mapping[str, Any], Mapping[str, Any]]
_capture_ids = itertools.count(1)
_current_capture: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar(
    "pytest_baml_telemetry_capture", default=frozenset()
)


def resolve_event_name(event: Any, prefix: EventName = DEFAULT_PREFIX) -> EventName:
    """Turn ``"stop"``, ``"ash_baml.call.stop"`` or ``("ash_baml","call","stop")`` into a tuple.

    The short names ``"start"``, ``"stop"``, ``"exception"`` use ``prefix``;
    ``"handler_failure"`` is ``("telemetry","handler","failure")``.
    """
    if isinstance(event, str):
        if event in CALL_KINDS:
            return call_event_name(prefix, event)
        if event in ("handler_failure", "failure"):
            return HANDLER_FAILURE
        if not event or "." not in event:
            fail(
                ValueError, f"unknown event {short_repr(event)}",
                "'start', 'stop', 'exception', 'handler_failure', a dotted name such as 'ash_baml.call.stop', or a tuple of strings",
            )
    return parse_event_name(event, what="event")


# --------------------------------------------------------------------------- expected events


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
            parts.append(f"measurements={describe_mapping(self.measurements)}")
        if self.metadata:
            parts.append(f"metadata={describe_mapping(self.metadata)}")
        return " with ".join(parts) if len(parts) > 1 else parts[0]


def _check_mapping(value: Any, what: str) -> Mapping[str, Any] | None:
    return check_mapping(value, f"{what}={short_repr(value)}", optional=True, expected="a dict of keys to expected values, or None")


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
            names = [call_event_name(self.prefix, k) for k in CALL_KINDS] + [HANDLER_FAILURE]
        else:
            if isinstance(event_names, str) or _is_single_name(event_names):
                event_names = [event_names]
            names = []
            for ev in event_names:
                name = resolve_event_name(ev, self.prefix)
                if name not in names:
                    names.append(name)
            if not names:
                fail(ValueError, "EventCapture(event_names=[])", "at least one event name")
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            fail(TypeError, f"EventCapture(dispatcher={short_repr(dispatcher)})", "a Dispatcher or None")
        for option, value in (("context", context), ("virtual_clock", virtual_clock)):
            check_bool(value, f"EventCapture({option}={value!r})")
        self.event_names: tuple[EventName, ...] = tuple(names)
        self.dispatcher = dispatcher if dispatcher is not None else default_dispatcher
        self.virtual_clock = virtual_clock
        self.id = next(_capture_ids)
        self.handler_id = f"pytest-baml-telemetry-capture-{self.id}"
        self._raw: list[Raw] = []  # what the handler appends: plain tuples, records are made when asked
        self._records: list[CapturedEvent] = []  # records of _raw[:len(_records)], made by `events`
        self._lock = threading.Lock()  # guards _records against clear() and another thread's `events`
        self._cond = threading.Condition()
        self._waiting = 0  # sync and async waiters; the handler wakes them only when there are any
        self._async_waiters: list[tuple[Any, Any]] = []  # (event loop, asyncio.Event)
        self._context = bool(context)
        self._token: contextvars.Token[frozenset[int]] | None = None
        self.attached = False

    # ------------------------------------------------------------------ attach

    def _handler(self, name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        self._raw.append((name, measurements, metadata))
        if self._waiting:
            self._wake()

    def _wake(self) -> None:
        """Release every waiter: it re-counts its matches (an event arrived)."""
        with self._cond:
            self._cond.notify_all()
            waiters = list(self._async_waiters)
        for loop, arrived in waiters:
            if not arrived.is_set():
                try:
                    loop.call_soon_threadsafe(arrived.set)
                except RuntimeError:  # its loop is closed: nobody is waiting there any more
                    pass

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
        with self._lock:
            self._raw.clear()
            self._records.clear()

    def __repr__(self) -> str:
        return f"<EventCapture {len(self._raw)} event(s) of {[format_event_name(n) for n in self.event_names]}>"

    def __len__(self) -> int:
        return len(self._raw)

    # ------------------------------------------------------------------ views

    @property
    def events(self) -> list[CapturedEvent]:
        """Every captured event, in emission order."""
        with self._lock:
            made, raw = self._records, self._raw
            n = len(raw)
            if len(made) < n:
                made.extend(records(raw[len(made) : n]))
            return made[:n]

    def _snapshot(self) -> list[Raw]:
        """The captured tuples so far (a copy: events arriving meanwhile are not in it)."""
        return self._raw[:]

    def _of_kind(self, kind: str) -> list[CapturedEvent]:
        raw = self._snapshot()
        return records(of_names(raw, {name for name, k in event_kinds(raw).items() if k == kind}))

    # one typed property per kind of event (the public views), each a one-line filter
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
        return pair_calls(self.events)

    @property
    def begun_before_test(self) -> list[CapturedEvent]:
        """The stops and exceptions whose start was not captured: calls begun before the capture attached."""
        raw = self._snapshot()
        return records(raw[i] for i in sorted(ends_begun_before(raw)))

    @staticmethod
    def _line(index: int, event: Raw, before: frozenset[int]) -> str:
        """``#index summary``, marked when the event's call began before the test."""
        summary = CapturedEvent(*event).summary()
        return f"#{index} {summary}" + (f" {BEGUN_BEFORE}" if index in before else "")

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
        return records(_select(matcher, self._snapshot()))

    def _closest(
        self,
        matcher: EventMatcher,
        events: Sequence[Raw],
        limit: int = 3,
        before: frozenset[int] = frozenset(),
        same: list[Raw] | None = None,
    ) -> list[str]:
        """The ``limit`` events of the name matching the most expected keys, with their differences.

        Called only when none of ``events`` matches: no candidate matches every expected key.
        ``same`` are the events of the matcher's name, when the caller has them already.
        """
        name = matcher.name
        if same is None:
            same = of_names(events, name)
        if not same:
            return []
        sections = ((1, matcher.measurements), (2, matcher.metadata))
        keys = len(matcher.measurements or ()) + len(matcher.metadata or ())
        picks = leaders(same, sections, limit, keys - 1)
        in_order = sorted(picks)
        where = dict(zip(in_order, _positions(events, [same[j] for j in in_order])))
        lines = []
        for i, ev in ((where[j], same[j]) for j in picks):
            lines.append(f"  {self._line(i, ev, before)}")
            lines.extend(f"      {d}" for d in differences("measurements", matcher.measurements, ev[1]))
            lines.extend(f"      {d}" for d in differences("metadata", matcher.metadata, ev[2]))
        more = max(len(same) - limit, 0)
        if more:
            lines.append(f"  ... and {more} more {format_event_name(name)} event(s)")
        return lines

    def _inventory(self, events: Sequence[Raw], before: frozenset[int] | None = None, index: CallIndex | None = None) -> str:
        if not events:
            return "nothing was captured"
        counts: dict[str, int] = {}
        for event_name, n in (index.counts if index is not None else Counter(map(itemgetter(0), events))).items():
            dotted = format_event_name(event_name)
            counts[dotted] = counts.get(dotted, 0) + n
        text = "captured: " + ", ".join(f"{n} x {name}" for name, n in counts.items())
        if before is None:
            before = ends_begun_before(events)
        if before:
            text += f" ({len(before)} end event(s) of calls begun before this test: their start was not captured)"
        return text

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
        if count is not None and not is_count(count):
            fail(ValueError, f"count={count!r}", "an int >= 0 or None")
        matcher = self._matcher(event, measurements, metadata)
        events = self._snapshot()
        same = of_names(events, matcher.name)
        found = _select_among(matcher, same)
        if (count is None and found) or (count is not None and len(found) == count):
            return records(found)
        before, index = indexed(events)
        want = "at least once" if count is None else f"exactly {count} time(s)"
        lines = [f"expected {matcher.describe()} {want}, found {len(found)} matching of {len(events)} captured event(s)"]
        if count is not None and found:
            lines.append("matching events:")
            lines.extend(f"  {self._line(i, e, before)}" for i, e in zip(_positions(events, found[:5]), found[:5]))
            if len(found) > 5:
                lines.append(f"  ... and {len(found) - 5} more")
        elif not found:
            closest = self._closest(matcher, events, before=before, same=same)
            if closest:
                lines.append("closest captured events:")
                lines.extend(closest)
            else:
                lines.append(f"no {format_event_name(matcher.name)} event was captured")
        lines.append(self._inventory(events, before, index))
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
        events = self._snapshot()
        found = _select(matcher, events)
        if found:
            before = ends_begun_before(events)
            lines = [f"expected no {matcher.describe()}, found {len(found)}:"]
            lines.extend(f"  {self._line(i, e, before)}" for i, e in zip(_positions(events, found[:5]), found[:5]))
            if len(found) > 5:
                lines.append(f"  ... and {len(found) - 5} more")
            raise AssertionError("\n".join(lines))

    def assert_call(self, function_name: str, *, count: int | None = None, **expected: Any) -> CapturedCall:
        """Assert a paired call of ``function_name`` whose attributes match ``expected``.

        Keys are attributes of :class:`CapturedCall` (``ok``, ``model``, ``input_tokens``,
        ``duration_ms``, ``error``, ...). Returns the first matching call.
        """
        __tracebackhide__ = True
        unknown = sorted(set(expected) - set(CALL_ATTRS))
        if unknown:
            fail(TypeError, f"assert_call: unknown call attribute(s) {unknown}", f"some of {list(CALL_ATTRS)}")
        if count is not None and not is_count(count):
            fail(ValueError, f"count={count!r}", "an int >= 0 or None")
        events = self._snapshot()
        index = CallIndex(events)
        named = named_calls(index, function_name)
        found = named
        for key, want in expected.items():  # one pass per key over the calls still in, as matches() checks them
            if found:
                found = list(compress(found, flags(want, call_values(key, found))))
        if found and (count is None or len(found) == count):
            return _call(found[0])
        if count is not None and not found and count == 0:
            return None  # type: ignore[return-value]
        want = "" if count is None else f" exactly {count} time(s)"
        desc = ", ".join(f"{k}={describe(v)}" for k, v in expected.items())
        lines = [f"expected a call of {function_name!r}{' with ' + desc if desc else ''}{want}, found {len(found)}"]
        if not found:
            if named:
                lines.append(f"calls of {function_name!r}:")
                points = [0] * len(named)
                for key, want in expected.items():
                    points = [p + hit for p, hit in zip(points, flags(want, call_values(key, named)))]
                for j in best(points, 3):
                    call = _call(named[j])
                    lines.append(f"  {call.summary()}")
                    lines.extend(f"      {d}" for d in differences("call", expected, call.as_mapping()))
                if len(named) > 3:
                    lines.append(f"  ... and {len(named) - 3} more")
            else:
                others = Counter(s[2].get("function_name") for s in call_starts(index))
                lines.append(
                    "calls captured: " + ", ".join(f"{n} x {f}" for f, n in others.items())
                    if others
                    else "no call was captured"
                )
        before = frozenset(leftovers := ends_begun_before_of(index, function_name))
        if leftovers:
            lines.append(f"not counted as calls of {function_name!r} (their start came before this test):")
            lines.extend(f"  {self._line(i, events[i], before)}" for i in leftovers[:5])
            if len(leftovers) > 5:
                lines.append(f"  ... and {len(leftovers) - 5} more")
        raise AssertionError("\n".join(lines))

    def assert_sequence(self, *expected: Any) -> list[CapturedEvent]:
        """Assert the expected events occur in this order (other events may come between).

        Each item is an event name (``"start"``, ``"ash_baml.call.stop"``, a tuple) or an
        :func:`expect` matcher. Returns the matched events.
        """
        __tracebackhide__ = True
        if not expected:
            fail(ValueError, "assert_sequence()", "at least one event")
        matchers = [self._matcher(e, None, None) for e in expected]
        events = self._snapshot()
        matched: list[tuple[int, Raw]] = []
        pos = 0
        for k, matcher in enumerate(matchers):
            i = _first(matcher, events, pos)
            if i is not None:
                matched.append((i, events[i]))
                pos = i + 1
            else:
                before = ends_begun_before(events)
                lines = [f"expected {len(matchers)} events in order; matched the first {k}:"]
                for i, ev in matched:  # the first k matchers matched
                    lines.append(f"  ok  {self._line(i, ev, before)}")
                lines.append(f"  missing: {matcher.describe()}" + (f" after event #{pos - 1}" if pos else ""))
                rest = events[pos:]
                closest = self._closest(matcher, rest, before=frozenset(i - pos for i in before if i >= pos))
                if closest:
                    lines.append("closest candidates after that point (numbered from there):")
                    lines.extend(closest)
                earlier = _first(matcher, events[:pos], 0)
                if earlier is not None:
                    lines.append(f"  (a matching event exists earlier, at #{earlier}: out of order)")
                lines.append(self._inventory(events, before))
                raise AssertionError("\n".join(lines))
        return records(ev for _, ev in matched)

    # ------------------------------------------------------------------ waiting

    def _count(self, matcher: EventMatcher) -> int:
        return len(_select(matcher, self._snapshot()))

    def _timeout_error(self, matcher: EventMatcher, count: int, timeout: float) -> AssertionError:
        events = self._snapshot()
        found = len(_select(matcher, events))
        lines = [
            f"timed out after {timeout:g}s waiting for {count} x {matcher.describe()}; "
            f"{found} matching of {len(events)} captured event(s)"
        ]
        before = ends_begun_before(events)
        closest = self._closest(matcher, events, before=before) if not found else []
        if closest:
            lines.append("closest captured events:")
            lines.extend(closest)
        lines.append(self._inventory(events, before))
        return AssertionError("\n".join(lines))

    def _wait_args(self, timeout: DurationLike, count: int) -> float:
        seconds = parse_timeout(timeout, name="timeout")  # math.inf: wait as long as it takes
        if not is_int(count) or count < 1:
            fail(ValueError, f"count={count!r}", "an int >= 1")
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

        Raises ``AssertionError`` after ``timeout`` (a duration; one beyond about 292 years,
        such as ``1e300``, waits as long as it takes). Returns the matches, at once when
        they are already captured.
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
        arrived = asyncio.Event()
        waiter = (loop, arrived)
        with self._cond:
            self._waiting += 1
            self._async_waiters.append(waiter)
        try:
            while True:
                arrived.clear()  # before counting: an event captured after the count sets it again
                if self._count(matcher) >= count:
                    return self.find(matcher)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._timeout_error(matcher, count, seconds)
                try:
                    await asyncio.wait_for(arrived.wait(), None if remaining == math.inf else remaining)
                except asyncio.TimeoutError:
                    pass
        finally:
            with self._cond:
                self._waiting -= 1
                self._async_waiters.remove(waiter)

    # ------------------------------------------------------------------ snapshots

    def as_dicts(self, *, virtual_clock: bool | None = None) -> list[dict[str, Any]]:
        """Captured events as plain dicts, normalised for ``==`` and snapshot tests.

        Span contexts become 1, 2, ... in order of first appearance; ``system_time`` and
        ``monotonic_time`` become 0, and so do ``duration`` and ``time_to_first_chunk``
        unless the clock is virtual; exceptions become ``"ClassName: message"``; stack
        traces are dropped; event names become dotted strings.
        """
        virtual = self.virtual_clock if virtual_clock is None else virtual_clock
        return snapshot(self.events, virtual)

    # ------------------------------------------------------------------ teardown checks

    def check(self, *, validate: bool = True, allow_handler_failures: bool = False) -> None:
        """Raise ``AssertionError`` on a contract violation, an unpaired start or a handler failure."""
        from .contract import ContractViolation, validate_event, validate_stream

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
            before = ends_begun_before(contract_events)
            try:
                for index in sorted(before):  # their fields are checked; their missing start is no failure
                    validate_event(*contract_events[index])
                # each keeps its place (as a placeholder the pairing skips), so event numbers stay the capture's
                validate_stream([_SKIPPED if i in before else e for i, e in enumerate(contract_events)] if before else contract_events)
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


_SKIPPED = (
    HANDLER_FAILURE,
    {"system_time": 0, "monotonic_time": 0},
    {
        "event_name": HANDLER_FAILURE,
        "handler_id": "pytest-baml-telemetry: an end begun before the test",
        "handler_config": None,
        "kind": "error",
        "reason": Exception("placeholder"),
        "stacktrace": traceback.StackSummary(),
    },
)
"""A valid event the pairing check skips: it stands in for an end whose start was not captured."""


def _select(matcher: EventMatcher, events: list[Raw]) -> list[Raw]:
    """The events ``matcher`` matches, in order (what ``matcher.matches`` keeps, one key per pass)."""
    return _select_among(matcher, of_names(events, matcher.name))


def _select_among(matcher: EventMatcher, same: list[Raw]) -> list[Raw]:
    """:func:`_select` of events already of the matcher's name."""
    return select(select(same, 1, matcher.measurements), 2, matcher.metadata)


def _first(matcher: EventMatcher, events: Sequence[Raw], start: int) -> int | None:
    """The index of the first event from ``start`` on that ``matcher`` matches, or ``None``."""
    name, measurements, metadata = matcher.name, matcher.measurements, matcher.metadata
    for i in range(start, len(events)):
        e = events[i]
        if e[0] == name and matches(measurements, e[1]) and matches(metadata, e[2]):
            return i
    return None


def _positions(events: Sequence[Raw], some: Sequence[Raw]) -> list[int]:
    """The indices in ``events`` of ``some``, events taken from it in order (found by identity)."""
    out: list[int] = []
    if some:
        wanted = iter(some)
        target: Raw | None = next(wanted)
        for i, e in enumerate(events):
            if e is target:
                out.append(i)
                target = next(wanted, None)
                if target is None:
                    break
    return out


def _call(triple: tuple[Any, Any, Any]) -> CapturedCall:
    start, end, _ = triple
    return pair_call(CapturedEvent(*start), None if end is None else CapturedEvent(*end))


def _is_single_name(value: Any) -> TypeGuard[EventName]:
    """``("my_app", "call", "stop")`` is one name; ``("start", "stop")`` is two."""
    return (
        isinstance(value, tuple)
        and bool(value)
        and all(isinstance(p, str) for p in value)
        and not any(p in CALL_KINDS or p in ("handler_failure", "failure") or "." in p for p in value)
    )
