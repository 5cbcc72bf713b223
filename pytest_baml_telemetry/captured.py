"""What a capture holds: captured events, calls paired from them, and their snapshot form.

A :class:`CapturedEvent` is one ``(name, measurements, metadata)`` as the dispatcher
executed it (never copied). :func:`pair_calls` pairs each start with the first stop or
exception of the same prefix and span context, as :class:`CapturedCall` records.
:func:`snapshot` turns events into plain dicts that compare equal across runs (span
contexts numbered, clocks zeroed, exceptions as text). :func:`ends_begun_before` finds the
stops and exceptions whose start is not among the events before them: calls begun before
the capture attached (a thread left over from an earlier test, an abandoned stream
collected later), which are kept but are not a pairing failure. Nothing here filters or
waits: that is :class:`~pytest_baml_telemetry.capture.EventCapture`'s job.

A capture keeps plain ``(name, measurements, metadata)`` tuples and makes records only of
what it hands out (:func:`records`); :func:`named_calls` and :func:`call_values` pair and
read the calls of one function from such tuples without making a record per call, giving
the values :class:`CapturedCall` would have (:func:`pair_call` makes the record itself).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import compress, repeat
from operator import eq, ge, itemgetter
from typing import Any, NamedTuple

from .contract import EventName, event_kind, format_event_name

_NAME = itemgetter(0)
_SPAN = "telemetry_span_context"
_ANY: Any = object()  # no function name given

__all__ = [
    "BEGUN_BEFORE",
    "CALL_ATTRS",
    "CallIndex",
    "CapturedCall",
    "CapturedEvent",
    "call_starts",
    "call_values",
    "ends_begun_before",
    "ends_begun_before_of",
    "event_kinds",
    "indexed",
    "named_calls",
    "of_names",
    "pair_call",
    "pair_calls",
    "records",
    "snapshot",
]


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
        return {name: getattr(self, name) for name in CALL_ATTRS}

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


CALL_ATTRS: tuple[str, ...] = (
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


def pair_calls(events: Iterable[CapturedEvent]) -> list[CapturedCall]:
    """Starts paired with their stop or exception, in order of start."""
    ends: dict[Any, CapturedEvent] = {}
    starts: list[CapturedEvent] = []
    for ev in events:
        kind = ev.kind
        if kind == "start":
            starts.append(ev)
        elif kind in ("stop", "exception"):
            ends.setdefault((ev.name[:-1], ev.span_context), ev)
    return [pair_call(start, ends.get((start.name[:-1], start.span_context))) for start in starts]


BEGUN_BEFORE = "[begun before this test: its start was not captured]"
"""The mark of an end event found by :func:`ends_begun_before` in failure messages."""


def ends_begun_before(events: Sequence[Any]) -> frozenset[int]:
    """The indices of the stops and exceptions with no start of the same prefix and span before them.

    Such a call began before the capture attached (or before it was cleared): its end is
    kept and shown, marked, but its missing start is no pairing failure. An end whose span
    context cannot be hashed is left to the contract check. ``events`` are records or plain
    ``(name, measurements, metadata)`` tuples.
    """
    return indexed(events)[0]


def indexed(events: Sequence[Any]) -> tuple[frozenset[int], CallIndex | None]:
    """:func:`ends_begun_before` and the :class:`CallIndex` it used (``None`` when a name cannot be hashed)."""
    try:
        index = CallIndex(events)
    except TypeError:  # an unhashable name (not a call event): the one-by-one walk skips it
        return _ends_begun_before(events), None
    return frozenset(ends_begun_before_of(index)), index


def ends_begun_before_of(index: CallIndex, function_name: Any = _ANY) -> list[int]:
    """:func:`ends_begun_before` of ``index.events``, sorted, only those of ``function_name`` if given.

    With a function name only its ends and the starts of their spans are looked at.
    """
    events = index.events
    found: list[int] = []
    try:
        for starts, ends in index.by_prefix.values():
            if function_name is not _ANY:
                ends = [i for i in ends if events[i][2].get("function_name") == function_name]
                if not ends:
                    continue
                spans = {events[i][2].get(_SPAN) for i in ends}
                starts = [i for i in starts if events[i][2].get(_SPAN) in spans]
            # the first start of each span; an end is begun before when its span's first start is not before it
            first = dict(zip(reversed([events[i][2].get(_SPAN) for i in starts]), reversed(starts)))
            firsts = map(first.get, [events[i][2].get(_SPAN) for i in ends], ends)  # its span's first start, or itself
            found.extend(compress(ends, map(ge, firsts, ends)))
    except TypeError:  # an unhashable span context: the one-by-one walk skips just that event
        found = list(_ends_begun_before(events))
        if function_name is not _ANY:
            found = [i for i in found if events[i][2].get("function_name") == function_name]
    return sorted(found)


class CallIndex:
    """Where the call events are among captured tuples, found once for a query.

    ``kinds`` is the event kind of each distinct name, ``prefixes`` maps each call prefix
    (``("ash_baml", "call")``) to its start names and its end names; :meth:`where` picks
    events or positions by name, ``by_prefix`` (made when first read) the positions of
    each prefix's starts and ends, ``counts`` how many events of each name there are (in
    order of first appearance). A name that cannot be hashed raises ``TypeError``.
    """

    def __init__(self, events: Sequence[Any]) -> None:
        self.events = events
        self.names = names = list(map(_NAME, events))
        self.kinds: dict[Any, str | None] = {name: event_kind(name) for name in set(names)}
        self.prefixes: dict[Any, tuple[set[Any], set[Any]]] = {}
        for name, kind in self.kinds.items():
            if kind in ("start", "stop", "exception"):
                self.prefixes.setdefault(name[:-1], (set(), set()))[kind != "start"].add(name)
        self._by_prefix: dict[Any, tuple[list[int], list[int]]] | None = None

    def where(self, wanted: set[Any], positions: bool = False) -> list[Any]:
        """The events (or their positions) whose name is in ``wanted``, in order."""
        if not wanted:
            return []
        if len(wanted) == 1:  # comparing with one name is cheaper than hashing every name
            flags = map(eq, self.names, repeat(next(iter(wanted))))
        else:
            flags = map(wanted.__contains__, self.names)
        return list(compress(range(len(self.names)) if positions else self.events, flags))

    @property
    def starts(self) -> set[Any]:
        """Every start name."""
        return {name for name, kind in self.kinds.items() if kind == "start"}

    @property
    def by_prefix(self) -> dict[Any, tuple[list[int], list[int]]]:
        if self._by_prefix is None:
            self._by_prefix = {p: (self.where(s, True), self.where(e, True)) for p, (s, e) in self.prefixes.items()}
        return self._by_prefix

    @property
    def counts(self) -> Counter[Any]:
        return Counter(self.names)


def _ends_begun_before(events: Sequence[Any]) -> frozenset[int]:
    started: set[Any] = set()
    found = []
    for index, ev in enumerate(events):
        kind = event_kind(ev[0])
        if kind not in ("start", "stop", "exception"):
            continue
        try:
            key = (ev[0][:-1], ev[2].get(_SPAN))
            if kind == "start":
                started.add(key)
            elif key not in started:
                found.append(index)
        except TypeError:  # an unhashable span context: a contract violation, reported by the check
            continue
    return frozenset(found)


def snapshot(events: Iterable[CapturedEvent], virtual: bool) -> list[dict[str, Any]]:
    """Events as plain dicts, normalised for ``==`` (see ``EventCapture.as_dicts``)."""
    spans: dict[Any, int] = {}
    out = []
    for ev in events:
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


def _plain(value: Any) -> Any:
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def pair_call(start: CapturedEvent, end: CapturedEvent | None) -> CapturedCall:
    """The :class:`CapturedCall` of ``start`` and its stop or exception (``None``: still running)."""
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


# --------------------------------------------------------------------------- from plain tuples

_RECORD = partial(tuple.__new__, CapturedEvent)


def records(items: Iterable[Any]) -> list[CapturedEvent]:
    """``(name, measurements, metadata)`` tuples as :class:`CapturedEvent` records."""
    return list(map(_RECORD, items))


Triple = tuple[Any, Any, "bool | None"]
"""``(start, end or None, ok)``: a call read from plain tuples; ``ok`` as :attr:`CapturedCall.ok`."""


def event_kinds(events: Iterable[Any]) -> dict[Any, str | None]:
    """The :func:`~pytest_baml_telemetry.contract.event_kind` of each distinct name among ``events``."""
    return {name: event_kind(name) for name in set(map(_NAME, events))}


def named_calls(index: CallIndex, function_name: Any) -> list[Triple]:
    """The calls of ``function_name`` among ``index.events``, as :func:`pair_calls` pairs them.

    The calls are ``(start, end, ok)`` triples in order of start; only the ends of their
    prefixes and spans are looked at.
    """
    kinds = index.kinds
    named = [s for s in call_starts(index) if s[2].get("function_name") == function_name]
    ends_of: dict[Any, dict[Any, Any]] = {}  # prefix -> {span: its first end}
    for prefix in {s[0][:-1] for s in named}:
        spans = {s[2].get(_SPAN) for s in named if s[0][:-1] == prefix}
        firsts = [e for e in index.where(index.prefixes[prefix][1]) if e[2].get(_SPAN) in spans]
        ends_of[prefix] = {e[2].get(_SPAN): e for e in reversed(firsts)}  # the first end of each span
    pairs = [(s, ends_of[s[0][:-1]].get(s[2].get(_SPAN))) for s in named]
    return [(s, e, None if e is None else kinds[e[0]] == "stop") for s, e in pairs]


def call_starts(index: CallIndex) -> list[Any]:
    """Every start among ``index.events``, in order."""
    return index.where(index.starts)


def of_names(events: Sequence[Any], names: Any) -> list[Any]:
    """The events whose name is in ``names`` (a set), or equals ``names`` (a name), in order."""
    if isinstance(names, (set, frozenset)):
        return list(compress(events, map(names.__contains__, map(_NAME, events))))
    return list(compress(events, map(eq, map(_NAME, events), repeat(names))))


def _end(key: str) -> Callable[[Any, Any, Any], Any]:
    return lambda s, e, ok: None if e is None else e[1].get(key)


def _duration_ms(s: Any, e: Any, ok: Any) -> Any:
    duration = None if e is None else e[1].get("duration")
    return None if duration is None else duration / 1_000_000


_CALL_VALUES: dict[str, Callable[[Any, Any, Any], Any]] = {
    "function_name": lambda s, e, ok: s[2].get("function_name"),
    "ok": lambda s, e, ok: ok,
    "streaming": lambda s, e, ok: bool(s[2].get("streaming")),
    "duration": _end("duration"),
    "duration_ms": _duration_ms,
    "input_tokens": _end("input_tokens"),
    "output_tokens": _end("output_tokens"),
    "total_tokens": _end("total_tokens"),
    "cached_input_tokens": _end("cached_input_tokens"),
    "model": lambda s, e, ok: None if e is None else e[2].get("model"),
    "error": lambda s, e, ok: None if e is None or ok else e[2].get("reason"),
    "kind": lambda s, e, ok: None if e is None or ok else e[2].get("kind"),
    "arguments": lambda s, e, ok: s[2].get("arguments"),
    "result": lambda s, e, ok: e[2].get("result") if ok else None,
    "time_to_first_chunk": _end("time_to_first_chunk"),
}


def call_values(attr: str, calls: Iterable[Triple]) -> list[Any]:
    """The :class:`CapturedCall` attribute ``attr`` (one of :data:`CALL_ATTRS`) of each call triple."""
    get = _CALL_VALUES[attr]
    return [get(s, e, ok) for s, e, ok in calls]
