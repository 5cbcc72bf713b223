"""The event contract: event names, the fields of every event, and validators.

This module is the single source of truth for what a BAML call emits. It is a port of
the ``ash_baml`` ``:telemetry`` conventions with their known defects fixed (streams
emit events, errors are ``exception`` events, unknown tokens are ``None``, ``model`` is
emitted, prompts and raw HTTP bodies are not put into metadata).

Rules: event names are parsed, checked, classified and formatted only here
(:func:`check_event_name`, :func:`parse_event_name`, :func:`event_kind`,
:func:`split_call_event`, :func:`call_event_name`, :func:`format_event_name`), and time
units are converted only with :data:`TIME_UNITS` / :func:`convert_time_unit`.

Times are in the *native* unit, the nanosecond: ``system_time`` is ``time.time_ns()``,
``monotonic_time`` is ``time.monotonic_ns()`` and ``duration`` is a difference of
monotonic readings.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, Union

from ._validate import check_count, is_count, is_int, is_number, short_repr

__all__ = [
    "DEFAULT_PREFIX",
    "CALL_START",
    "CALL_STOP",
    "CALL_EXCEPTION",
    "HANDLER_FAILURE",
    "KINDS",
    "CALL_KINDS",
    "TIME_UNITS",
    "MAX_NATIVE",
    "EventName",
    "Field",
    "EventSpec",
    "EVENT_SPECS",
    "ALWAYS_EMITTED",
    "ContractViolation",
    "StreamAbandoned",
    "Usage",
    "convert_time_unit",
    "check_event_name",
    "parse_event_name",
    "event_kind",
    "split_call_event",
    "call_event_name",
    "format_event_name",
    "check_token",
    "validate_event",
    "validate_stream",
]

EventName = tuple[str, ...]

_T = TypeVar("_T")
Checked = Union[_T, Any]
"""``Checked[T]``: a public parameter that expects a ``T`` and checks it itself at run time.

It reads as ``T`` to a reader and accepts any value, so that a bad one reaches our own check
and its message (naming the value and what was expected) also in the optional compiled build,
where mypyc would otherwise reject it first with a terse ``TypeError`` of its own.
"""

DEFAULT_PREFIX: EventName = ("ash_baml",)
CALL_START: EventName = ("ash_baml", "call", "start")
CALL_STOP: EventName = ("ash_baml", "call", "stop")
CALL_EXCEPTION: EventName = ("ash_baml", "call", "exception")
HANDLER_FAILURE: EventName = ("telemetry", "handler", "failure")

CALL_KINDS = ("start", "stop", "exception")
"""The kinds of call event: the last part of ``prefix + ("call", kind)``."""

KINDS = frozenset({"error", "exit", "throw"})
"""Values of the ``kind`` metadata: ``"error"`` for ``Exception``, ``"exit"`` for other
``BaseException`` (cancellation, interrupts, abandoned streams); ``"throw"`` is reserved."""

TimeUnit = Literal["native", "nanosecond", "microsecond", "millisecond", "second"]
TIME_UNITS: dict[str, int] = {
    "native": 1,
    "nanosecond": 1,
    "microsecond": 1_000,
    "millisecond": 1_000_000,
    "second": 1_000_000_000,
}

MAX_NATIVE = 2**63 - 1
"""The largest native time value (a duration or a time in ns, about 292 years) that every
part of the package can hold: it is the int64 range the aggregator stores durations in."""


class ContractViolation(AssertionError):
    """An event (or a stream of events) breaks the contract.

    The message names the event, the key and the bad value. ``event_name``, ``key`` and
    ``value`` hold them for programs.
    """

    def __init__(self, message: str, *, event_name: Any = None, key: str | None = None, value: Any = None):
        super().__init__(message)
        self.event_name = event_name
        self.key = key
        self.value = value


class StreamAbandoned(BaseException):
    """Reason of the exception event of a stream closed or dropped before its final response.

    A ``BaseException`` (like ``GeneratorExit``), so the event's ``kind`` is ``"exit"``.
    It is put in the event's metadata; it is never raised into user code.
    """

    def __init__(self, function_name: str = "", detail: str = "closed before its final response"):
        super().__init__(f"stream of {function_name or 'a BAML function'} {detail}")
        self.function_name = function_name
        self.detail = detail


def convert_time_unit(value: int | float, from_unit: str, to_unit: str) -> int | float:
    """Convert ``value`` between ``"native"``, ``"nanosecond"``, ``"microsecond"``,
    ``"millisecond"`` and ``"second"``.

    As Erlang's ``erlang:convert_time_unit/3``: an ``int`` gives an ``int`` rounded down;
    a ``float`` gives a ``float``.
    """
    try:
        f = TIME_UNITS[from_unit]
    except (KeyError, TypeError):
        raise ValueError(f"unknown time unit from_unit={from_unit!r}; expected one of {sorted(TIME_UNITS)}") from None
    try:
        t = TIME_UNITS[to_unit]
    except (KeyError, TypeError):
        raise ValueError(f"unknown time unit to_unit={to_unit!r}; expected one of {sorted(TIME_UNITS)}") from None
    if not is_number(value):
        raise TypeError(f"convert_time_unit(value={value!r}): expected an int or a float")
    if is_int(value):
        return (value * f) // t
    return float(value) * f / t


# --------------------------------------------------------------------------- names


def format_event_name(event_name: Any) -> str:
    """``("ash_baml","call","stop")`` → ``"ash_baml.call.stop"`` (anything else: its repr)."""
    if isinstance(event_name, tuple) and event_name and all(isinstance(p, str) for p in event_name):
        return ".".join(event_name)
    return repr(event_name)


def check_event_name(event_name: Any, *, what: str = "event name") -> EventName:
    """Return ``event_name`` as a tuple of non-empty strings or raise ``TypeError``/``ValueError``.

    Lists are accepted and turned into tuples.
    """
    if isinstance(event_name, list):
        event_name = tuple(event_name)
    if not isinstance(event_name, tuple):
        hint = ""
        if isinstance(event_name, str):
            hint = f" (write {tuple(event_name.split('.'))!r}, not a string)"
        raise TypeError(
            f"invalid {what} {event_name!r}: expected a non-empty tuple of non-empty strings{hint}"
        )
    if not event_name:
        raise ValueError(f"invalid {what} (): expected a non-empty tuple of non-empty strings")
    for part in event_name:
        if not isinstance(part, str):
            raise TypeError(
                f"invalid {what} {event_name!r}: part {part!r} is a {type(part).__name__}, "
                "expected a non-empty tuple of non-empty strings"
            )
        if not part:
            raise ValueError(f"invalid {what} {event_name!r}: has an empty part; expected non-empty strings")
    return event_name


def parse_event_name(event_name: Any, *, what: str = "event name") -> EventName:
    """As :func:`check_event_name`, and a dotted string ``"ash_baml.call.stop"`` is split on dots."""
    if isinstance(event_name, str):
        event_name = tuple(event_name.split("."))
    return check_event_name(event_name, what=what)


def call_event_name(prefix: EventName, kind: str) -> EventName:
    """``prefix + ("call", kind)``: the name of a call event (no checks; see :data:`CALL_KINDS`)."""
    return prefix + ("call", kind)


def split_call_event(event_name: Any) -> tuple[EventName, str] | None:
    """``(prefix, kind)`` of a call event ``prefix + ("call", kind)``; ``None`` for any other value.

    ``kind`` is one of :data:`CALL_KINDS`; ``prefix`` is non-empty. No exception is raised.
    """
    if isinstance(event_name, tuple) and len(event_name) >= 3 and event_name[-2] == "call":
        kind = event_name[-1]
        if kind in _CALL_KIND_SET:
            return event_name[:-2], kind
    return None


_CALL_KIND_SET = frozenset(CALL_KINDS)


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True)
class Field:
    """One measurement or metadata key: what it must hold, and whether it may be absent."""

    key: str
    expected: str
    check: Callable[[Any], bool]
    required: bool = True


def _is_int(v: Any) -> bool:
    return type(v) is int or is_int(v)


def _is_nonneg_int(v: Any) -> bool:
    return (type(v) is int and v >= 0) or is_count(v)


def _opt_nonneg_int(v: Any) -> bool:
    return v is None or _is_nonneg_int(v)


_TIME_KEYS = ("duration", "time_to_first_chunk")
"""Measurements the recorders store in int64 arrays: at most :data:`MAX_NATIVE`. (Times,
``monotonic_time`` and ``system_time``, are read by nobody that stores them, so any int.)"""


def _opt_str(v: Any) -> bool:
    return v is None or isinstance(v, str)


def _nonempty_str(v: Any) -> bool:
    return isinstance(v, str) and v != ""


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _anything(v: Any) -> bool:
    return True


def _span_ctx(v: Any) -> bool:
    if v is None:
        return False
    try:
        hash(v)
    except TypeError:
        return False
    return True


def _is_mapping(v: Any) -> bool:
    return isinstance(v, Mapping)


def _is_kind(v: Any) -> bool:
    return isinstance(v, str) and v in KINDS


def _is_exception(v: Any) -> bool:
    return isinstance(v, BaseException)


def _is_stack(v: Any) -> bool:
    return isinstance(v, traceback.StackSummary)


def _is_event_name(v: Any) -> bool:
    try:
        check_event_name(v)
    except (TypeError, ValueError):
        return False
    return True


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


INT = "an int"
NONNEG = "an int >= 0"
OPT_NONNEG = "an int >= 0 or None (None when unknown, never a made-up 0)"
OPT_STR = "a str or None"
_SYSTEM_TIME = Field("system_time", INT, _is_int)
_MONOTONIC = Field("monotonic_time", INT, _is_int)
_DURATION = Field("duration", NONNEG, _is_nonneg_int)
_COMMON_META = (
    Field("resource", "any object or None", _anything),
    Field("action", OPT_STR, _opt_str),
    Field("function_name", "a non-empty str (the BAML function)", _nonempty_str),
    Field("client_module", OPT_STR, _opt_str),
    Field("streaming", "a bool", _is_bool),
)
_SPAN = Field("telemetry_span_context", "a hashable, non-None value unique per call", _span_ctx)
_KIND = Field("kind", 'one of "error", "exit", "throw"', _is_kind)
_REASON = Field("reason", "the exception object itself (a BaseException)", _is_exception)
_STACK = Field("stacktrace", "a traceback.StackSummary", _is_stack)
_TOKENS = (
    Field("input_tokens", OPT_NONNEG, _opt_nonneg_int),
    Field("output_tokens", OPT_NONNEG, _opt_nonneg_int),
    Field("total_tokens", OPT_NONNEG, _opt_nonneg_int),
    Field("cached_input_tokens", OPT_NONNEG, _opt_nonneg_int, required=False),
)
# On an exception the tokens may be absent (events of emitters older than this contract);
# the reference emitter always writes them: see ALWAYS_EMITTED.
_FAILURE_TOKENS = tuple(Field(f.key, f.expected, f.check, required=False) for f in _TOKENS)
# Call metadata of a stop / exception. Optional for validate_event (third-party emitters
# may not know them); the reference emitter always writes the first five (None when unknown).
_CALL_META = (
    Field("model", OPT_STR, _opt_str),
    Field("provider", OPT_STR, _opt_str, required=False),
    Field("client_name", OPT_STR, _opt_str, required=False),
    Field("num_attempts", OPT_NONNEG, _opt_nonneg_int, required=False),
    Field("request_id", OPT_STR, _opt_str, required=False),
)
# ``response_model`` (the model the provider said it served) is extra metadata: not checked.


@dataclass(frozen=True)
class EventSpec:
    """The fields of one kind of event."""

    kind: str
    measurements: tuple[Field, ...]
    metadata: tuple[Field, ...]


EVENT_SPECS: dict[str, EventSpec] = {
    "start": EventSpec(
        "start",
        (_SYSTEM_TIME, _MONOTONIC),
        (*_COMMON_META, Field("arguments", "a dict of the call's arguments", _is_mapping), _SPAN),
    ),
    "stop": EventSpec(
        "stop",
        (
            _DURATION,
            _MONOTONIC,
            *_TOKENS,
            Field("time_to_first_chunk", OPT_NONNEG, _opt_nonneg_int, required=False),
        ),
        (
            *_COMMON_META,
            *_CALL_META,
            Field("result", "any value (after redaction)", _anything),
            _SPAN,
        ),
    ),
    "exception": EventSpec(
        "exception",
        (_DURATION, _MONOTONIC, *_FAILURE_TOKENS),
        (
            *_COMMON_META,
            *(Field(f.key, f.expected, f.check, required=False) for f in _CALL_META),
            _KIND,
            _REASON,
            _STACK,
            _SPAN,
        ),
    ),
    "handler_failure": EventSpec(
        "handler_failure",
        (_SYSTEM_TIME, _MONOTONIC),
        (
            Field("event_name", "an event name (tuple of non-empty strings)", _is_event_name),
            Field("handler_id", "a hashable handler id", _hashable),
            Field("handler_config", "any value", _anything),
            _KIND,
            _REASON,
            _STACK,
        ),
    ),
}

ALWAYS_EMITTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "stop": (
        ("duration", "monotonic_time", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens"),
        ("model", "provider", "client_name", "num_attempts", "request_id"),
    ),
    "exception": (
        ("duration", "monotonic_time", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens"),
        ("model", "provider", "client_name", "num_attempts", "request_id"),
    ),
}
"""``kind -> (measurement keys, metadata keys)`` the reference emitter writes on every stop
and exception event (``None`` when unknown), including those :func:`validate_event` lets
a third-party event leave out. ``response_model`` is written only when it was reported.

Tokens on an exception event follow the billing rule: a failure the provider answered (a
validation error, a finish-reason error) carries the provider's usage; one known not to be
billed (an HTTP status >= 400, a refused connection) carries 0/0; one whose billing is
unknown (a timeout after the request was sent, a cut-off stream, an abort) carries None.
"""

_CALL_SUFFIXES = {("call", kind): kind for kind in CALL_KINDS}


def event_kind(event_name: Any) -> str | None:
    """``"start"``, ``"stop"``, ``"exception"``, ``"handler_failure"`` or ``None``.

    Call events are recognised by their suffix, so any emitter prefix works:
    ``("my_app", "call", "stop")`` is a stop.
    """
    if not isinstance(event_name, tuple):
        return None
    if event_name == HANDLER_FAILURE:
        return "handler_failure"
    if len(event_name) >= 3:
        return _CALL_SUFFIXES.get(event_name[-2:])
    return None


def _violation(event_name: Any, where: str, key: str, value: Any, expected: str, span: Any = None) -> ContractViolation:
    name = format_event_name(event_name)
    ctx = "" if span is None else f" (telemetry_span_context={short_repr(span, 60)})"
    return ContractViolation(
        f"{name}{ctx}: {where}[{key!r}] = {short_repr(value)}: expected {expected}",
        event_name=event_name,
        key=key,
        value=value,
    )


def validate_event(event_name: Any, measurements: Any, metadata: Any) -> None:
    """Check one event against the contract; raise :class:`ContractViolation` if it breaks it.

    Call events are recognised by their ``("call", "start"|"stop"|"exception")`` suffix;
    ``("telemetry","handler","failure")`` is checked too. Extra keys are allowed.
    Durations (``duration``, ``time_to_first_chunk``) must lie in the int64 range (at
    most :data:`MAX_NATIVE`): what this accepts, the recorders can record. Also checks ``total_tokens == input_tokens + output_tokens`` when all three are known,
    and that ``total_tokens`` is ``None`` when either part is unknown (on a stop, and on an
    exception that carries tokens). An exception event may leave out the token
    measurements and the call metadata (``model``, ``provider``, ...), for emitters older
    than the contract; when present they are typed as on a stop. The reference emitter
    always writes them: :data:`ALWAYS_EMITTED`.
    """
    try:
        event_name = check_event_name(event_name)
    except (TypeError, ValueError) as exc:
        raise ContractViolation(str(exc), event_name=event_name, key="event_name", value=event_name) from None
    kind = event_kind(event_name)
    if kind is None:
        raise ContractViolation(
            f"{format_event_name(event_name)}: not a contract event; expected a name ending in "
            '("call","start"), ("call","stop"), ("call","exception"), or ("telemetry","handler","failure")',
            event_name=event_name,
            key="event_name",
            value=event_name,
        )
    spec = EVENT_SPECS[kind]
    for where, data in (("measurements", measurements), ("metadata", metadata)):
        if not isinstance(data, Mapping):
            raise ContractViolation(
                f"{format_event_name(event_name)}: {where} = {short_repr(data)}: expected a mapping",
                event_name=event_name,
                key=where,
                value=data,
            )
    span = metadata.get("telemetry_span_context")
    for where, data, fields in (
        ("measurements", measurements, spec.measurements),
        ("metadata", metadata, spec.metadata),
    ):
        for field in fields:
            if field.key not in data:
                if field.required:
                    raise ContractViolation(
                        f"{format_event_name(event_name)}: {where} is missing the key {field.key!r} "
                        f"(expected {field.expected})",
                        event_name=event_name,
                        key=field.key,
                    )
                continue
            value = data[field.key]
            if not field.check(value):
                raise _violation(event_name, where, field.key, value, field.expected, span)
    for key in _TIME_KEYS:
        value = measurements.get(key)
        if value is not None and _is_int(value) and not -MAX_NATIVE - 1 <= value <= MAX_NATIVE:
            raise _violation(
                event_name, "measurements", key, value,
                "a duration within the int64 range (at most contract.MAX_NATIVE = 2**63 - 1 ns), "
                "what the recorders can hold", span,
            )
    if kind == "stop" or (kind == "exception" and "total_tokens" in measurements):
        i, o, t = measurements.get("input_tokens"), measurements.get("output_tokens"), measurements["total_tokens"]
        if i is not None and o is not None:
            if t != i + o:
                raise _violation(
                    event_name, "measurements", "total_tokens", t,
                    f"input_tokens + output_tokens = {i} + {o} = {i + o}", span,
                )
        elif t is not None:
            raise _violation(
                event_name, "measurements", "total_tokens", t,
                f"None, because input_tokens={i!r} or output_tokens={o!r} is unknown", span,
            )


EventLike = Union[tuple, Any]


def _unpack(item: Any, index: int) -> tuple[Any, Any, Any]:
    if isinstance(item, tuple) and len(item) == 3:
        return item
    try:
        return item.name, item.measurements, item.metadata
    except AttributeError:
        raise TypeError(
            f"validate_stream: item {index} = {short_repr(item)} is neither an (event_name, measurements, "
            "metadata) triple nor an object with name, measurements and metadata attributes"
        ) from None


def validate_stream(events: Iterable[EventLike]) -> None:
    """Check every event and the pairing of a whole stream; raise :class:`ContractViolation`.

    ``events`` holds ``(event_name, measurements, metadata)`` triples or objects with
    ``name``, ``measurements`` and ``metadata`` (such as captured events), in emission
    order. Every start must be followed by exactly one stop or exception with the same
    ``telemetry_span_context``, of the same prefix, with the same ``function_name`` and
    ``streaming``; no stop or exception may come without its start.
    """
    if isinstance(events, (str, bytes, Mapping)) or not isinstance(events, Iterable):
        raise TypeError(
            f"validate_stream(events={short_repr(events)}): expected an iterable of (event_name, measurements, "
            "metadata) triples or captured events"
        )
    open_spans: dict[Any, tuple[int, EventName, Mapping[str, Any]]] = {}
    closed: set[Any] = set()
    for index, item in enumerate(events):
        name, measurements, metadata = _unpack(item, index)
        validate_event(name, measurements, metadata)
        name = tuple(name)
        kind = event_kind(name)
        if kind == "handler_failure":
            continue
        span = metadata["telemetry_span_context"]
        if kind == "start":
            if span in open_spans or span in closed:
                raise ContractViolation(
                    f"{format_event_name(name)} (event {index}): telemetry_span_context={short_repr(span, 60)} "
                    "was already used by an earlier start; expected a unique span context per call",
                    event_name=name, key="telemetry_span_context", value=span,
                )
            open_spans[span] = (index, name, metadata)
            continue
        started = open_spans.pop(span, None)
        if started is None:
            again = "a second end for a call that already ended" if span in closed else "no start before it"
            raise ContractViolation(
                f"{format_event_name(name)} (event {index}) for {metadata.get('function_name')!r} with "
                f"telemetry_span_context={short_repr(span, 60)}: {again}; expected exactly one stop or "
                "exception after each start",
                event_name=name, key="telemetry_span_context", value=span,
            )
        closed.add(span)
        start_index, start_name, start_meta = started
        if start_name[:-1] != name[:-1]:
            raise ContractViolation(
                f"{format_event_name(name)} (event {index}) ends a call started as "
                f"{format_event_name(start_name)} (event {start_index}); expected the same prefix",
                event_name=name, key="event_name", value=name,
            )
        for key in ("function_name", "streaming"):
            if metadata[key] != start_meta[key]:
                raise ContractViolation(
                    f"{format_event_name(name)} (event {index}): metadata[{key!r}] = {short_repr(metadata[key])} "
                    f"but its start (event {start_index}) has {short_repr(start_meta[key])}; expected them to agree",
                    event_name=name, key=key, value=metadata[key],
                )
    if open_spans:
        first_span, (index, name, meta) = next(iter(open_spans.items()))
        more = f" (and {len(open_spans) - 1} more)" if len(open_spans) > 1 else ""
        raise ContractViolation(
            f"{format_event_name(name)} (event {index}) for {meta.get('function_name')!r} with "
            f"telemetry_span_context={short_repr(first_span, 60)} has no stop or exception{more}; "
            "expected exactly one after each start",
            event_name=name, key="telemetry_span_context", value=first_span,
        )


# --------------------------------------------------------------------------- usage


def check_token(name: str, value: Any, owner: str) -> int | None:
    """A token count: an int >= 0, or ``None`` when unknown; the error names ``owner(name=value)``."""
    if value is None:
        return None
    return check_count(value, f"{owner}({name}={value!r})", expected="an int >= 0 or None (unknown)")


@dataclass(frozen=True)
class Usage:
    """Token usage of one call. A count nobody reported stays ``None`` (never 0).

    ``cached_input_tokens`` are part of ``input_tokens`` (as providers report them).
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_input_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("input_tokens", "output_tokens", "cached_input_tokens"):
            check_token(name, getattr(self, name), "Usage")

    @property
    def total_tokens(self) -> int | None:
        """``input_tokens + output_tokens`` when both are known, else ``None``."""
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return self.input_tokens + self.output_tokens

    @classmethod
    def coerce(cls, value: Any, *, name: str = "usage") -> Usage | None:
        """Accept a ``Usage``, a mapping with the three keys, an ``(input, output)`` pair or ``None``."""
        if value is None or isinstance(value, Usage):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"input_tokens", "output_tokens", "cached_input_tokens"}
            if unknown:
                raise TypeError(
                    f"{name}={value!r} has unknown keys [{', '.join(sorted(map(repr, unknown)))}]; expected input_tokens, "
                    "output_tokens, cached_input_tokens"
                )
            return cls(**value)
        if isinstance(value, tuple) and len(value) in (2, 3):
            return cls(*value)
        raise TypeError(
            f"{name}={value!r} ({type(value).__name__}) is not a usage; expected Usage(input_tokens=..., "
            "output_tokens=..., cached_input_tokens=...), a dict with those keys, an (input, output) "
            "tuple, or None"
        )
