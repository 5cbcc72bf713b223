"""Hypothesis strategies for the BAML telemetry contract.

Property-test your own handlers, exporters and BAML-calling code against *arbitrary*
valid telemetry, and your validators against arbitrary broken telemetry::

    from hypothesis import given
    from pytest_baml_telemetry import strategies as bst

    @given(bst.event_streams())
    def test_my_cost_handler(stream):
        for name, measurements, metadata in stream:
            my_handler(name, measurements, metadata, None)
        ...

Every strategy here is a function that can be called with no arguments, as in
``hypothesis.strategies``; keyword arguments narrow it. A keyword that fixes a value
(``prefix=``, ``function_name=``, ``streaming=``, ``usage=``, ...) takes either the value
itself or a Hypothesis strategy drawing it.

Valid data

* :func:`usages` -- :class:`~pytest_baml_telemetry.Usage` with each count an int or
  ``None`` (unknown); cached input tokens never exceed known input tokens.
* :func:`outcomes` -- an :class:`Outcome`: what one call does (returns, with or without
  usage; raises any fault of :mod:`pytest_baml_telemetry.fake.faults`; is interrupted
  by a ``BaseException``; streams N partials and completes, is abandoned, or fails).
  ``outcome.script(fake, "Fn")`` queues it on a ``FakeBamlClient``;
  ``outcome.run(fake, "Fn")`` / ``await outcome.arun(fake, "Fn")`` also play the caller.
* :func:`start_events`, :func:`stop_events`, :func:`exception_events`,
  :func:`handler_failure_events`, :func:`events` -- single valid events, each an
  :data:`Event` ``(name, measurements, metadata)`` triple.
* :func:`event_streams` -- valid streams of many calls with interleaved starts and
  ends, unique span contexts, and durations equal to the difference of the monotonic
  times of each call's start and end.

Broken data (for negative tests)

* :func:`invalid_events` -- an :class:`InvalidEvent`: a valid event with exactly one
  thing broken, and ``broken_key``/``reason`` saying what.
* :func:`invalid_streams` -- an :class:`InvalidStream`: a stream of valid events with
  exactly one pairing defect (unpaired start, end without start, double end, reused
  span, function name / streaming / prefix mismatch) or one invalid event.

Importing this module registers strategies for :class:`~pytest_baml_telemetry.Usage`,
:class:`Outcome`, :data:`Event` and :class:`InvalidEvent` with
``st.register_type_strategy``, so ``st.from_type(Usage)`` and ``st.builds(...)`` use them.
``import pytest_baml_telemetry`` does not import this module (nor Hypothesis).
"""

from __future__ import annotations

import asyncio
import gc
import string
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar, cast

from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .capture import CapturedEvent
from .clock import DurationLike, parse_duration_ns
from .contract import (
    DEFAULT_PREFIX,
    EVENT_SPECS,
    HANDLER_FAILURE,
    KINDS,
    EventName,
    StreamAbandoned,
    Usage,
    check_event_name,
    event_kind,
)
from .fake import faults as _faults
from .fake.faults import Fault

__all__ = [
    "Event",
    "EVENT_KINDS",
    "FAULT_NAMES",
    "InvalidEvent",
    "InvalidStream",
    "MODELS",
    "FUNCTION_NAMES",
    "OUTCOME_KINDS",
    "Outcome",
    "OutcomeRun",
    "SimulatedInterrupt",
    "STREAM_DEFECTS",
    "arguments",
    "event_prefixes",
    "event_streams",
    "events",
    "exception_events",
    "exception_reasons",
    "function_names",
    "handler_failure_events",
    "invalid_events",
    "invalid_streams",
    "models",
    "outcomes",
    "span_contexts",
    "start_events",
    "stop_events",
    "token_counts",
    "usages",
]

T = TypeVar("T")

Event = CapturedEvent
"""A generated event: a ``(name, measurements, metadata)`` named tuple, the same type the
capture fixtures record (so ``event.kind``, ``event.span_context``, ... work)."""

EVENT_KINDS = ("start", "stop", "exception", "handler_failure")
"""The kinds :func:`events` and :func:`invalid_events` draw from."""

FUNCTION_NAMES = ("ExtractResume", "ClassifyTicket", "SummarizeThread", "AnswerQuestion", "TranslateText")
"""BAML function names :func:`function_names` prefers (it also draws other identifiers)."""

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "llama-3.1-8b-instruct")
"""Model names :func:`models` prefers (it also draws other names and ``None``)."""

_NS_PER_S = 1_000_000_000


# =========================================================================== helpers


def _owner(function: str, key: str, value: Any) -> str:
    return f"strategies.{function}({key}={value!r})"


def _as_strategy(value: Any, default: SearchStrategy[T], check: Callable[[Any], Any] | None = None) -> SearchStrategy[T]:
    """``None`` -> ``default``; a strategy -> itself; a value -> ``st.just(check(value))``."""
    if value is None:
        return default
    if isinstance(value, SearchStrategy):
        return value
    return st.just(check(value) if check is not None else value)


def _check_int(value: Any, function: str, key: str, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{_owner(function, key, value)}: expected an int >= {minimum}")
    if value < minimum:
        raise ValueError(f"{_owner(function, key, value)}: expected an int >= {minimum}")
    return value


def _check_bool(value: Any, function: str, key: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{_owner(function, key, value)}: expected True or False")
    return value


def _check_prefix(value: Any, function: str) -> EventName:
    try:
        return check_event_name(value, what=f"strategies.{function}(prefix=...)")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{exc} (or a strategy drawing prefixes)") from None


def _prefix_strategy(prefix: Any, function: str) -> SearchStrategy[EventName]:
    if prefix is None:
        return st.just(DEFAULT_PREFIX)
    return _as_strategy(prefix, st.just(DEFAULT_PREFIX), lambda v: _check_prefix(v, function))


def _check_function_name(value: Any, function: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{_owner(function, 'function_name', value)}: expected a non-empty str (or a strategy)")
    return value


def _check_kinds(kinds: Any, allowed: Sequence[str], function: str, key: str = "kinds") -> tuple[str, ...]:
    if kinds is None:
        return tuple(allowed)
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        chosen = tuple(kinds)
    except TypeError:
        raise TypeError(f"{_owner(function, key, kinds)}: expected a collection of {tuple(allowed)}") from None
    if not chosen:
        raise ValueError(f"{_owner(function, key, kinds)}: expected at least one of {tuple(allowed)}")
    for kind in chosen:
        if kind not in allowed:
            raise ValueError(f"strategies.{function}({key}=...): unknown kind {kind!r}; expected some of {tuple(allowed)}")
    return chosen


def _duration_ns(value: Any, function: str, key: str) -> int:
    try:
        return parse_duration_ns(value, name=f"strategies.{function}({key})")
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc)) from None


# =========================================================================== building blocks


_IDENT_FIRST = string.ascii_letters
_IDENT_REST = string.ascii_letters + string.digits + "_"


def _identifiers(*, capitalized: bool = False, max_size: int = 16) -> SearchStrategy[str]:
    first = st.sampled_from(string.ascii_uppercase if capitalized else _IDENT_FIRST + "_")
    rest = st.text(alphabet=_IDENT_REST, max_size=max_size - 1)
    return st.builds(lambda a, b: a + b, first, rest)


def function_names() -> SearchStrategy[str]:
    """BAML function names: mostly :data:`FUNCTION_NAMES`, also other identifiers."""
    return st.one_of(st.sampled_from(FUNCTION_NAMES), _identifiers(capitalized=True))


def models(*, allow_none: bool = True) -> SearchStrategy[str | None]:
    """Model names: mostly :data:`MODELS`, also other non-empty names and (``allow_none``) ``None``."""
    _check_bool(allow_none, "models", "allow_none")
    names = st.one_of(st.sampled_from(MODELS), st.text(min_size=1, max_size=24))
    return st.one_of(st.none(), names) if allow_none else names


def event_prefixes() -> SearchStrategy[EventName]:
    """Event prefixes: ``("ash_baml",)`` or other tuples of 1-3 identifiers."""
    return st.one_of(
        st.just(DEFAULT_PREFIX),
        st.lists(_identifiers(max_size=10), min_size=1, max_size=3).map(tuple),
    )


def span_contexts() -> SearchStrategy[Any]:
    """``telemetry_span_context`` values: hashable, never ``None`` (ints, strings, tuples)."""
    return st.one_of(
        st.integers(min_value=1, max_value=2**63 - 1),
        st.text(min_size=1, max_size=16),
        st.tuples(st.text(alphabet=string.hexdigits, min_size=1, max_size=8), st.integers(0, 2**32)),
    )


_JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=24),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=5,
)


def arguments() -> SearchStrategy[dict[str, Any]]:
    """A call's ``arguments``: a dict of argument names to JSON-like values."""
    return st.dictionaries(_identifiers(max_size=12), _JSON, max_size=4)


_RESOURCES = st.one_of(st.none(), st.text(min_size=1, max_size=16), st.sampled_from([dict, Usage, StreamAbandoned]))
_OPT_STR = st.one_of(st.none(), st.text(max_size=16))
_CLIENT_MODULES = st.one_of(st.none(), st.just("baml_client"), _identifiers(max_size=16))


def token_counts(*, max_tokens: int = 1_000_000, allow_unknown: bool = True) -> SearchStrategy[int | None]:
    """One token count: an int in ``0..max_tokens``, or (``allow_unknown``) ``None``."""
    _check_int(max_tokens, "token_counts", "max_tokens")
    _check_bool(allow_unknown, "token_counts", "allow_unknown")
    ints = st.integers(min_value=0, max_value=max_tokens)
    return st.one_of(st.none(), ints) if allow_unknown else ints


def usages(*, max_tokens: int = 1_000_000, allow_unknown: bool = True, cached: bool = True) -> SearchStrategy[Usage]:
    """:class:`~pytest_baml_telemetry.Usage` values.

    Each count is an int in ``0..max_tokens`` or, with ``allow_unknown`` (the default),
    ``None`` (unknown, as when a provider reports no usage). ``cached_input_tokens`` is
    ``None`` or an int, never more than ``input_tokens`` when both are known;
    ``cached=False`` always leaves it ``None``.
    """
    _check_int(max_tokens, "usages", "max_tokens")
    _check_bool(allow_unknown, "usages", "allow_unknown")
    _check_bool(cached, "usages", "cached")
    counts = token_counts(max_tokens=max_tokens, allow_unknown=allow_unknown)

    @st.composite
    def draw_usage(draw: st.DrawFn) -> Usage:
        i = draw(counts, label="input_tokens")
        o = draw(counts, label="output_tokens")
        c = None
        if cached and draw(st.booleans(), label="has cached_input_tokens"):
            c = draw(st.integers(min_value=0, max_value=max_tokens if i is None else i), label="cached_input_tokens")
        return Usage(i, o, c)

    return draw_usage()


def _stacktraces() -> SearchStrategy[traceback.StackSummary]:
    frame = st.tuples(
        st.sampled_from(["app/service.py", "app/llm.py", "baml_client/sync_client.py", "<stdin>"]),
        st.integers(min_value=1, max_value=5000),
        _identifiers(max_size=12),
        st.sampled_from(["return b.ExtractResume(text)", "raise error", "", "await stream.get_final_response()"]),
    )
    return st.lists(frame, max_size=4).map(traceback.StackSummary.from_list)


class SimulatedInterrupt(BaseException):
    """A ``BaseException`` that is not an ``Exception`` (like ``KeyboardInterrupt``), safe to
    raise anywhere, in threads and event loops: its call's exception event has kind ``"exit"``."""


def _error_reasons() -> SearchStrategy[BaseException]:
    plain = st.sampled_from([ValueError, RuntimeError, TimeoutError, ConnectionError, KeyError]).flatmap(
        lambda cls: st.text(max_size=20).map(cls)
    )
    baml = st.sampled_from(
        [
            lambda: _faults.timeout(),
            lambda: _faults.rate_limited(),
            lambda: _faults.http_error(500),
            lambda: _faults.http_error(401),
            lambda: _faults.validation_error(raw_output="not json"),
            lambda: _faults.abort(),
            lambda: _faults.client_error(),
        ]
    ).map(lambda make: make().build())  # baml_py is imported only when such a reason is drawn
    return st.one_of(plain, baml)


def _exit_reasons(function_name: str = "") -> SearchStrategy[BaseException]:
    return st.one_of(
        st.builds(asyncio.CancelledError),
        st.builds(KeyboardInterrupt),
        st.builds(SystemExit, st.integers(0, 2)),
        st.builds(SimulatedInterrupt),
        st.just(function_name).map(StreamAbandoned),
    )


def exception_reasons(*, kind: str | None = None) -> SearchStrategy[tuple[str, BaseException]]:
    """``(kind, reason)`` pairs that agree: ``"error"`` with an ``Exception`` (plain Python
    errors and real ``baml_py.errors`` ones), ``"exit"`` with another ``BaseException``
    (cancellation, interrupts, :class:`~pytest_baml_telemetry.StreamAbandoned`)."""
    if kind is not None and kind not in ("error", "exit"):
        raise ValueError(f"{_owner('exception_reasons', 'kind', kind)}: expected 'error', 'exit' or None")
    error = _error_reasons().map(lambda r: ("error", r))
    exit_ = _exit_reasons().map(lambda r: ("exit", r))
    if kind == "error":
        return error
    if kind == "exit":
        return exit_
    return st.one_of(error, exit_)


# =========================================================================== outcomes


OUTCOME_KINDS = ("success", "fault", "base_exception", "stream_completed", "stream_abandoned", "stream_failed")
"""The kinds of :class:`Outcome`."""

_FAULT_BUILDERS: dict[str, Callable[[st.DrawFn], Fault]] = {
    "timeout": lambda draw: _faults.timeout(),
    "http_error": lambda draw: _faults.http_error(
        draw(st.sampled_from([400, 401, 403, 404, 408, 500, 502, 503, 529]), label="status_code")
    ),
    "rate_limited": lambda draw: _faults.rate_limited(
        retry_after=draw(st.one_of(st.none(), st.sampled_from(["1s", "2s", "30s"])), label="retry_after")
    ),
    "connection_refused": lambda draw: _faults.connection_refused(),
    "validation_error": lambda draw: _faults.validation_error(
        raw_output=draw(st.sampled_from(["", "not json", '{"name": 1}']), label="raw_output")
    ),
    "finish_reason_error": lambda draw: _faults.finish_reason_error(
        draw(st.sampled_from(["length", "content_filter"]), label="finish_reason")
    ),
    "abort": lambda draw: _faults.abort(),
    "client_error": lambda draw: _faults.client_error(),
    "invalid_argument": lambda draw: _faults.invalid_argument(),
    "cancelled": lambda draw: _faults.cancelled(),
}
FAULT_NAMES = tuple(_FAULT_BUILDERS)
"""The faults :func:`outcomes` draws (every fault of ``fake.faults`` but ``stream_failure``,
which the ``"stream_failed"`` outcomes use to wrap them)."""


class OutcomeRun(NamedTuple):
    """What :meth:`Outcome.run` / :meth:`Outcome.arun` saw.

    ``result`` is what the call (or ``get_final_response()``) returned, ``error`` what it
    raised (``None`` if nothing; an abandoned stream raises nothing), ``partials`` the
    partial values read from a stream, ``call`` the fake's
    :class:`~pytest_baml_telemetry.fake.FakeCall` record of the call (its ``error`` of an
    abandoned stream is the :class:`~pytest_baml_telemetry.StreamAbandoned` reason).
    """

    outcome: Outcome
    result: Any
    error: BaseException | None
    partials: tuple[Any, ...]
    call: Any


@dataclass(frozen=True)
class Outcome:
    """What one BAML call does, scriptable on a :class:`~pytest_baml_telemetry.FakeBamlClient`.

    ``kind`` is one of :data:`OUTCOME_KINDS`:

    - ``"success"``: returns ``result`` with ``usage`` (``None``: tokens unknown) and ``model``;
    - ``"fault"``: raises ``fault`` (a :class:`~pytest_baml_telemetry.fake.faults.Fault`;
      ``faults.cancelled()`` raises ``asyncio.CancelledError``, a ``BaseException``);
    - ``"base_exception"``: raises :class:`SimulatedInterrupt` (a ``BaseException``);
    - ``"stream_completed"``: a stream yields ``partials`` then returns ``result``;
    - ``"stream_abandoned"``: a stream of which the caller reads ``read`` partials, then
      closes it (``abandon="close"``) or drops it (``abandon="drop"``);
    - ``"stream_failed"``: a stream yields ``partials`` then fails with ``fault``.

    ``latency_ns`` is the call's scripted (virtual) duration.
    """

    kind: str
    result: Any = None
    usage: Usage | None = None
    model: str | None = None
    latency_ns: int = 0
    fault: Fault | None = None
    partials: tuple[Any, ...] = ()
    read: int = 0
    abandon: str = "close"

    def __post_init__(self) -> None:
        if self.kind not in OUTCOME_KINDS:
            raise ValueError(f"Outcome(kind={self.kind!r}): expected one of {OUTCOME_KINDS}")
        if self.usage is not None and not isinstance(self.usage, Usage):
            raise TypeError(f"Outcome(usage={self.usage!r}): expected a Usage or None")
        if self.model is not None and not isinstance(self.model, str):
            raise TypeError(f"Outcome(model={self.model!r}): expected a str or None")
        _check_int(self.latency_ns, "Outcome", "latency_ns")
        needs_fault = self.kind in ("fault", "base_exception", "stream_failed")
        if needs_fault and not isinstance(self.fault, Fault):
            raise TypeError(f"Outcome(kind={self.kind!r}, fault={self.fault!r}): expected a faults.Fault")
        if not needs_fault and self.fault is not None:
            raise ValueError(f"Outcome(kind={self.kind!r}, fault={self.fault!r}): this kind raises nothing")
        if not isinstance(self.partials, tuple):
            raise TypeError(f"Outcome(partials={self.partials!r}): expected a tuple")
        if self.partials and not self.streaming:
            raise ValueError(f"Outcome(kind={self.kind!r}, partials=<{len(self.partials)}>): only streams have partials")
        _check_int(self.read, "Outcome", "read")
        if self.read > len(self.partials) or (self.read and self.kind != "stream_abandoned"):
            raise ValueError(
                f"Outcome(kind={self.kind!r}, read={self.read!r}): expected 0, or for a stream_abandoned "
                f"outcome at most its {len(self.partials)} partials"
            )
        if self.abandon not in ("close", "drop"):
            raise ValueError(f"Outcome(abandon={self.abandon!r}): expected 'close' or 'drop'")

    def __repr__(self) -> str:
        parts = [repr(self.kind)]
        if self.kind in ("success", "stream_completed", "stream_abandoned"):
            parts.append(f"result={self.result!r}")
            parts.append(f"usage={self.usage!r}")
            if self.model is not None:
                parts.append(f"model={self.model!r}")
        if self.fault is not None:
            parts.append(f"fault={self.fault!r}")
        if self.partials:
            parts.append(f"partials={self.partials!r}")
        if self.kind == "stream_abandoned":
            parts.append(f"read={self.read}, abandon={self.abandon!r}")
        parts.append(f"latency_ns={self.latency_ns}")
        return f"Outcome({', '.join(parts)})"

    # ------------------------------------------------------------------ expectations

    @property
    def streaming(self) -> bool:
        """Whether the call is a stream (``fake.stream.Fn(...)``)."""
        return self.kind.startswith("stream_")

    @property
    def ok(self) -> bool:
        """Whether the call ends with a stop event."""
        return self.kind in ("success", "stream_completed")

    @property
    def expected_event(self) -> str:
        """``"stop"`` or ``"exception"``: the event that ends the call."""
        return "stop" if self.ok else "exception"

    @property
    def error_class(self) -> type[BaseException] | None:
        """The class of the exception the caller sees (``None`` when it sees none)."""
        return None if self.fault is None else self.fault.error_class

    @property
    def reason_class(self) -> type[BaseException] | None:
        """The class of the exception event's ``reason`` (``None`` for a stop)."""
        if self.kind == "stream_abandoned":
            return StreamAbandoned
        return self.error_class

    @property
    def expected_kind(self) -> str | None:
        """The exception event's ``kind``: ``"error"``, ``"exit"``, or ``None`` for a stop."""
        reason = self.reason_class
        if reason is None:
            return None
        return "error" if issubclass(reason, Exception) else "exit"

    # ------------------------------------------------------------------ scripting

    def script(self, fake: Any, function_name: str) -> Any:
        """Queue this outcome for ``function_name`` on ``fake``; return the scripted outcome.

        Uses ``fake.respond`` or ``fake.fail``; the call's latency is exactly
        :attr:`latency_ns`. What the *caller* does to a stream (read N partials, close or
        drop it) is up to the code under test, or to :meth:`run`.
        """
        latency = f"{self.latency_ns}ns"
        if self.kind in ("success", "stream_completed", "stream_abandoned"):
            return fake.respond(
                function_name,
                self.result,
                usage=self.usage,
                model=self.model,
                latency=latency,
                partials=list(self.partials) if self.streaming else None,
            )
        fault = self.fault
        if self.kind == "stream_failed":
            fault = _faults.stream_failure(partials=list(self.partials), error=self.fault)
        return fake.fail(function_name, fault, latency=latency)

    def _expected_error(self, error: BaseException) -> bool:
        cls = self.error_class
        return cls is not None and isinstance(error, cls)

    @staticmethod
    def _record(fake: Any, scripted: Any) -> Any:
        for call in reversed(fake.calls):
            if call.outcome is scripted:
                return call
        return None

    def run(self, fake: Any, function_name: str, **arguments: Any) -> OutcomeRun:
        """Script this outcome on ``fake``, make the call as a caller would, and report.

        ``fake`` is a ``FakeBamlClient`` (an ``AsyncFakeBamlClient`` is used through its
        sync twin). Non-streaming outcomes call ``fake.<function_name>(**arguments)``;
        streams call ``fake.stream.<function_name>(...)``, read the partials, and call
        ``get_final_response()`` (or close/drop the stream for ``"stream_abandoned"``).
        The outcome's own error is caught and returned in :attr:`OutcomeRun.error`; any
        other exception propagates.
        """
        sync_fake = fake.as_sync() if getattr(fake, "_is_async", False) else fake
        scripted = self.script(sync_fake, function_name)
        result: Any = None
        error: BaseException | None = None
        read: list[Any] = []
        try:
            if not self.streaming:
                result = sync_fake.function(function_name)(**arguments)
            else:
                stream = getattr(sync_fake.stream, function_name)(**arguments)
                if self.kind == "stream_abandoned":
                    it = iter(stream)
                    for _ in range(self.read):
                        read.append(next(it))
                    it.close()
                    if self.abandon == "close":
                        stream.close()
                    else:
                        del it, stream
                else:
                    read.extend(stream)
                    result = stream.get_final_response()
        except BaseException as exc:
            if not self._expected_error(exc):
                raise
            error = exc
        call = self._record(sync_fake, scripted)
        if self.kind == "stream_abandoned" and call is not None and call.duration_ns is None:
            gc.collect()  # a dropped stream in a reference cycle ends when it is collected
        return OutcomeRun(self, result, error, tuple(read), call)

    async def arun(self, fake: Any, function_name: str, **arguments: Any) -> OutcomeRun:
        """The async form of :meth:`run` (a sync ``FakeBamlClient`` is used through its async twin)."""
        async_fake = fake if getattr(fake, "_is_async", False) else fake.as_async()
        scripted = self.script(async_fake, function_name)
        result: Any = None
        error: BaseException | None = None
        read: list[Any] = []
        try:
            if not self.streaming:
                result = await async_fake.function(function_name)(**arguments)
            else:
                stream = getattr(async_fake.stream, function_name)(**arguments)
                if self.kind == "stream_abandoned":
                    it = stream.__aiter__()
                    for _ in range(self.read):
                        read.append(await it.__anext__())
                    await it.aclose()
                    if self.abandon == "close":
                        await stream.aclose()
                    else:
                        del it, stream
                else:
                    async for partial in stream:
                        read.append(partial)
                    result = await stream.get_final_response()
        except BaseException as exc:
            if not self._expected_error(exc):
                raise
            error = exc
        call = self._record(async_fake, scripted)
        if self.kind == "stream_abandoned" and call is not None and call.duration_ns is None:
            gc.collect()
        return OutcomeRun(self, result, error, tuple(read), call)


def _faults_strategy(fault_names: Sequence[str]) -> SearchStrategy[Fault]:
    @st.composite
    def draw_fault(draw: st.DrawFn) -> Fault:
        name = draw(st.sampled_from(fault_names), label="fault")
        return _FAULT_BUILDERS[name](draw)

    return draw_fault()


def outcomes(
    *,
    kinds: Sequence[str] | str | None = None,
    faults: Sequence[str] | str | None = None,
    usage: Any = None,
    model: Any = None,
    max_partials: int = 4,
    max_latency: DurationLike = "60s",
) -> SearchStrategy[Outcome]:
    """:class:`Outcome` values: what one call does.

    ``kinds`` limits the kinds (default: all of :data:`OUTCOME_KINDS`; e.g.
    ``kinds=("success", "fault")`` for non-streaming calls only). ``faults`` limits the
    faults raised by ``"fault"`` and ``"stream_failed"`` outcomes (names of
    :data:`FAULT_NAMES`). ``usage`` (a :class:`Usage`, ``None``-able strategy) and
    ``model`` fix or narrow the successful calls' usage and model (default: usage from
    :func:`usages` or ``None``; model from :func:`models`). Streams have up to
    ``max_partials`` partials; latency is up to ``max_latency``.
    """
    chosen = _check_kinds(kinds, OUTCOME_KINDS, "outcomes")
    fault_names = _check_kinds(faults, FAULT_NAMES, "outcomes", "faults")
    _check_int(max_partials, "outcomes", "max_partials")
    latency_max = _duration_ns(max_latency, "outcomes", "max_latency")
    usage_s = _as_strategy(usage, st.one_of(st.none(), usages()), lambda v: Usage.coerce(v, name="strategies.outcomes(usage)"))
    model_s = _as_strategy(model, models())
    fault_s = _faults_strategy(fault_names)
    results = st.one_of(_JSON, st.builds(dict, name=st.text(max_size=12), score=st.integers(0, 100)))
    partial_values: SearchStrategy[Any] = st.one_of(st.none(), st.text(max_size=12), st.builds(dict, name=st.text(max_size=8)))

    @st.composite
    def draw_outcome(draw: st.DrawFn) -> Outcome:
        kind = draw(st.sampled_from(chosen), label="kind")
        latency = draw(st.integers(min_value=0, max_value=latency_max), label="latency_ns")
        streaming = kind.startswith("stream_")
        partials: tuple[Any, ...] = ()
        if streaming:
            partials = tuple(draw(st.lists(partial_values, max_size=max_partials), label="partials"))
        if kind in ("success", "stream_completed", "stream_abandoned"):
            read = 0
            abandon = "close"
            if kind == "stream_abandoned":
                read = draw(st.integers(min_value=0, max_value=len(partials)), label="read")
                abandon = draw(st.sampled_from(("close", "drop")), label="abandon")
            return Outcome(
                kind,
                result=draw(results, label="result"),
                usage=draw(usage_s, label="usage"),
                model=draw(model_s, label="model"),
                latency_ns=latency,
                partials=partials,
                read=read,
                abandon=abandon,
            )
        if kind == "base_exception":
            fault = _faults.coerce_error(SimulatedInterrupt, name="base_exception")
        else:
            fault = draw(fault_s, label="fault")
        return Outcome(kind, latency_ns=latency, fault=fault, partials=partials)

    return draw_outcome()


# =========================================================================== single events


def _metadata_common(function_name: str, streaming: bool, draw: st.DrawFn) -> dict[str, Any]:
    return {
        "resource": draw(_RESOURCES, label="resource"),
        "action": draw(_OPT_STR, label="action"),
        "function_name": function_name,
        "client_module": draw(_CLIENT_MODULES, label="client_module"),
        "streaming": streaming,
    }


_WALL = st.integers(min_value=1_600_000_000 * _NS_PER_S, max_value=2_100_000_000 * _NS_PER_S)
_MONOTONIC = st.integers(min_value=0, max_value=2**62)


def _start(prefix: EventName, common: Mapping[str, Any], args: dict[str, Any], system_time: int, monotonic: int, span: Any) -> Event:
    return Event(
        prefix + ("call", "start"),
        {"system_time": system_time, "monotonic_time": monotonic},
        {**common, "arguments": args, "telemetry_span_context": span},
    )


def _stop_parts(draw: st.DrawFn, usage_s: SearchStrategy[Usage | None], model_s: SearchStrategy[Any], streaming: bool, duration: int) -> tuple[dict[str, Any], dict[str, Any]]:
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
    md: dict[str, Any] = {"model": draw(model_s, label="model"), "result": draw(_JSON, label="result")}
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


def _stop(prefix: EventName, common: Mapping[str, Any], duration: int, monotonic: int, tokens: dict[str, Any], extra: dict[str, Any], span: Any) -> Event:
    return Event(
        prefix + ("call", "stop"),
        {"duration": duration, "monotonic_time": monotonic, **tokens},
        {**common, **extra, "telemetry_span_context": span},
    )


def _exception(prefix: EventName, common: Mapping[str, Any], duration: int, monotonic: int, kind: str, reason: BaseException, stack: traceback.StackSummary, span: Any, model: Any = None) -> Event:
    md = {**common, "kind": kind, "reason": reason, "stacktrace": stack, "telemetry_span_context": span}
    if model is not None:  # the reference emitter adds the model when it was known
        md["model"] = model
    return Event(prefix + ("call", "exception"), {"duration": duration, "monotonic_time": monotonic}, md)


def _event_options(function: str, prefix: Any, function_name: Any, streaming: Any, span: Any) -> tuple[SearchStrategy[Any], ...]:
    return (
        _prefix_strategy(prefix, function),
        _as_strategy(function_name, function_names(), lambda v: _check_function_name(v, function)),
        _as_strategy(streaming, st.booleans(), lambda v: _check_bool(v, function, "streaming")),
        _as_strategy(span, span_contexts()),
    )


def start_events(*, prefix: Any = DEFAULT_PREFIX, function_name: Any = None, streaming: Any = None, span: Any = None) -> SearchStrategy[Event]:
    """Valid ``start`` events. ``prefix`` (default ``("ash_baml",)``), ``function_name``,
    ``streaming`` and ``span`` (the ``telemetry_span_context``) fix or narrow the drawn ones."""
    prefix_s, name_s, streaming_s, span_s = _event_options("start_events", prefix, function_name, streaming, span)

    @st.composite
    def draw_start(draw: st.DrawFn) -> Event:
        common = _metadata_common(draw(name_s, label="function_name"), draw(streaming_s, label="streaming"), draw)
        return _start(
            draw(prefix_s, label="prefix"), common, draw(arguments(), label="arguments"),
            draw(_WALL, label="system_time"), draw(_MONOTONIC, label="monotonic_time"), draw(span_s, label="span"),
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
    prefix_s, name_s, streaming_s, span_s = _event_options("stop_events", prefix, function_name, streaming, span)
    usage_s = _as_strategy(usage, st.one_of(st.none(), usages()), lambda v: Usage.coerce(v, name="strategies.stop_events(usage)"))
    model_s = _as_strategy(model, models())
    max_ns = _duration_ns(max_duration, "stop_events", "max_duration")

    @st.composite
    def draw_stop(draw: st.DrawFn) -> Event:
        streaming_v = draw(streaming_s, label="streaming")
        common = _metadata_common(draw(name_s, label="function_name"), streaming_v, draw)
        duration = draw(st.integers(0, max_ns), label="duration")
        tokens, extra = _stop_parts(draw, usage_s, model_s, streaming_v, duration)
        monotonic = draw(_MONOTONIC, label="monotonic_time") + duration
        return _stop(draw(prefix_s, label="prefix"), common, duration, monotonic, tokens, extra, draw(span_s, label="span"))

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
    prefix_s, name_s, streaming_s, span_s = _event_options("exception_events", prefix, function_name, streaming, span)
    reasons = exception_reasons(kind=kind)
    max_ns = _duration_ns(max_duration, "exception_events", "max_duration")

    @st.composite
    def draw_exception(draw: st.DrawFn) -> Event:
        common = _metadata_common(draw(name_s, label="function_name"), draw(streaming_s, label="streaming"), draw)
        duration = draw(st.integers(0, max_ns), label="duration")
        kind_v, reason = draw(reasons, label="reason")
        return _exception(
            draw(prefix_s, label="prefix"), common, duration, draw(_MONOTONIC, label="monotonic_time") + duration,
            kind_v, reason, draw(_stacktraces(), label="stacktrace"), draw(span_s, label="span"),
            draw(st.one_of(st.none(), models(allow_none=False)), label="model"),
        )

    return draw_exception()


def handler_failure_events(*, event_name: Any = None, kind: str | None = None) -> SearchStrategy[Event]:
    """Valid ``("telemetry","handler","failure")`` events: ``event_name`` (default: a call
    event under any prefix), a hashable ``handler_id``, any ``handler_config``, and a
    ``kind`` agreeing with the ``reason``."""
    names = st.builds(lambda p, k: p + ("call", k), event_prefixes(), st.sampled_from(("start", "stop", "exception")))
    name_s = _as_strategy(event_name, names, lambda v: check_event_name(v, what="strategies.handler_failure_events(event_name=...)"))
    reasons = exception_reasons(kind=kind)

    @st.composite
    def draw_failure(draw: st.DrawFn) -> Event:
        kind_v, reason = draw(reasons, label="reason")
        return Event(
            HANDLER_FAILURE,
            {"system_time": draw(_WALL, label="system_time"), "monotonic_time": draw(_MONOTONIC, label="monotonic_time")},
            {
                "event_name": draw(name_s, label="event_name"),
                "handler_id": draw(st.one_of(_identifiers(max_size=20), st.integers(), st.tuples(st.text(max_size=6), st.integers())), label="handler_id"),
                "handler_config": draw(st.one_of(st.none(), _JSON), label="handler_config"),
                "kind": kind_v,
                "reason": reason,
                "stacktrace": draw(_stacktraces(), label="stacktrace"),
            },
        )

    return draw_failure()


def events(*, prefix: Any = DEFAULT_PREFIX, kinds: Sequence[str] | str | None = None) -> SearchStrategy[Event]:
    """Any single valid event (of ``kinds``, default all of :data:`EVENT_KINDS`), as an
    :data:`Event` ``(name, measurements, metadata)`` triple."""
    chosen = _check_kinds(kinds, EVENT_KINDS, "events")
    _prefix_strategy(prefix, "events")  # checked now, not at draw time
    makers = {
        "start": lambda: start_events(prefix=prefix),
        "stop": lambda: stop_events(prefix=prefix),
        "exception": lambda: exception_events(prefix=prefix),
        "handler_failure": lambda: handler_failure_events(),
    }
    return st.one_of([makers[k]() for k in chosen])


# =========================================================================== streams


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
    events, and each end's ``duration`` is exactly the difference of its monotonic time
    and its start's. All events share one prefix (``prefix``: a tuple, or a strategy
    drawn once per stream). ``function_name``, ``streaming``, ``usage`` and ``model``
    fix or narrow the calls. ``exceptions=False`` ends every call with a stop;
    ``handler_failures=True`` sprinkles ``("telemetry","handler","failure")`` events in.
    """
    _check_int(min_calls, "event_streams", "min_calls")
    _check_int(max_calls, "event_streams", "max_calls")
    if max_calls < min_calls:
        raise ValueError(f"strategies.event_streams(min_calls={min_calls!r}, max_calls={max_calls!r}): expected min_calls <= max_calls")
    _check_bool(exceptions, "event_streams", "exceptions")
    _check_bool(handler_failures, "event_streams", "handler_failures")
    gap_max = _duration_ns(max_gap, "event_streams", "max_gap")
    prefix_s, name_s, streaming_s, _ = _event_options("event_streams", prefix, function_name, streaming, None)
    usage_s = _as_strategy(usage, st.one_of(st.none(), usages()), lambda v: Usage.coerce(v, name="strategies.event_streams(usage)"))
    model_s = _as_strategy(model, models())
    failure_s = handler_failure_events()

    @st.composite
    def draw_stream(draw: st.DrawFn) -> list[Event]:
        pfx = draw(prefix_s, label="prefix")
        n = draw(st.integers(min_value=min_calls, max_value=max_calls), label="calls")
        spans = draw(st.lists(span_contexts(), min_size=n, max_size=n, unique=True), label="spans")
        wall0 = draw(_WALL, label="system_time at start")
        mono0 = now = draw(st.integers(0, 2**61), label="monotonic_time at start")
        out: list[Event] = []
        pending = list(range(n))
        running: list[_CallPlan] = []
        while pending or running:
            if pending and running:
                begin = draw(st.booleans(), label="start another call")
            else:
                begin = bool(pending)
            now += draw(st.integers(0, gap_max), label="gap")
            wall = wall0 + (now - mono0)
            if begin:
                i = pending.pop(0)
                common = _metadata_common(draw(name_s, label="function_name"), draw(streaming_s, label="streaming"), draw)
                call = _CallPlan(spans[i], common, draw(arguments(), label="arguments"), start_mono=now)
                running.append(call)
                out.append(_start(pfx, common, call.args, wall, now, call.span))
            else:
                call = running.pop(draw(st.integers(0, len(running) - 1), label="which call ends"))
                duration = now - call.start_mono
                if not exceptions or draw(st.booleans(), label="ends with stop"):
                    tokens, extra = _stop_parts(draw, usage_s, model_s, call.common["streaming"], duration)
                    out.append(_stop(pfx, call.common, duration, now, tokens, extra, call.span))
                else:
                    kind, reason = draw(exception_reasons(), label="reason")
                    if isinstance(reason, StreamAbandoned):
                        reason = StreamAbandoned(call.common["function_name"])
                    out.append(
                        _exception(pfx, call.common, duration, now, kind, reason, draw(_stacktraces(), label="stacktrace"), call.span)
                    )
            if handler_failures and draw(st.integers(0, 3), label="handler failure here") == 0:
                failure = draw(failure_s, label="handler failure")
                # handler_failure_events() builds fresh dicts: give them this stream's times and event
                cast("dict[str, Any]", failure.measurements).update({"system_time": wall, "monotonic_time": now})
                cast("dict[str, Any]", failure.metadata)["event_name"] = out[-1].name
                out.append(failure)
        return out

    return draw_stream()


# =========================================================================== invalid events


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
    chosen = _check_kinds(kinds, EVENT_KINDS, "invalid_events")
    _check_bool(event_names, "invalid_events", "event_names")
    only: frozenset[str] | None = None
    if keys is not None:
        whole = ("measurements", "metadata") + (("event_name",) if event_names else ())
        known = sorted({f.key for spec in EVENT_SPECS.values() for f in (*spec.measurements, *spec.metadata)} | set(whole))
        only = frozenset(_check_kinds(keys, known, "invalid_events", "keys"))
        chosen = tuple(
            k for k in chosen
            if only & {f.key for f in (*EVENT_SPECS[k].measurements, *EVENT_SPECS[k].metadata)} | (only & set(whole))
        )
        if not chosen:
            raise ValueError(
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


def _ends(stream: Sequence[Event]) -> dict[Any, int]:
    return {e.metadata["telemetry_span_context"]: i for i, e in enumerate(stream) if e.name[-1] in ("stop", "exception") and e.name != HANDLER_FAILURE}


def _starts(stream: Sequence[Event]) -> dict[Any, int]:
    return {e.metadata["telemetry_span_context"]: i for i, e in enumerate(stream) if e.name[-1] == "start"}


def invalid_streams(
    *,
    max_calls: int = 6,
    prefix: Any = DEFAULT_PREFIX,
    defects: Sequence[str] | str | None = None,
) -> SearchStrategy[InvalidStream]:
    """:class:`InvalidStream` values: a valid :func:`event_streams` stream (1..``max_calls``
    calls, 2.. for ``reused_span``) with exactly one of ``defects`` (default all of
    :data:`STREAM_DEFECTS`) planted. ``validate_stream`` must reject every one."""
    chosen = _check_kinds(defects, STREAM_DEFECTS, "invalid_streams", "defects")
    _check_int(max_calls, "invalid_streams", "max_calls", minimum=1)
    if chosen == ("reused_span",) and max_calls < 2:
        raise ValueError("strategies.invalid_streams(defects=('reused_span',), max_calls=1): a reused span needs max_calls >= 2")
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
            if end.name[-1] == "stop" and draw(st.booleans(), label="exception after stop"):
                kind, reason = draw(exception_reasons(), label="second end")
                second = _exception(
                    end.name[:-2], {k: start.metadata[k] for k in ("resource", "action", "function_name", "client_module", "streaming")},
                    end.measurements["duration"], end.measurements["monotonic_time"], kind, reason,
                    traceback.StackSummary.from_list([]), span,
                )
            else:
                second = Event(end.name, dict(end.measurements), dict(end.metadata))
            at = draw(st.integers(ei + 1, len(stream)), label="second end at")
            stream.insert(at, second)
            return InvalidStream(stream, defect, key, f"the call {span!r} ended twice ({end.name[-1]}, then {second.name[-1]})", at)
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
            other_prefix = draw(event_prefixes().filter(lambda p: p != end.name[:-2]), label="other prefix")
            stream[ei] = Event(other_prefix + end.name[-2:], end.measurements, end.metadata)
            return InvalidStream(stream, defect, "event_name", f"the end is under {other_prefix!r}, its start under {start.name[:-2]!r}", ei)
        # invalid_event: one event of the stream broken
        index = draw(st.sampled_from([i for i, e in enumerate(stream) if e.name != HANDLER_FAILURE]), label="broken event")
        broken = _mutate(draw, stream[index], names=False)
        stream[index] = Event(broken.name, broken.measurements, broken.metadata)
        return InvalidStream(stream, defect, broken.broken_key, f"event {index}: {broken.broken_key} {broken.reason}", index)

    return draw_invalid_stream()


# =========================================================================== registration

st.register_type_strategy(Usage, usages())
st.register_type_strategy(Outcome, outcomes())
st.register_type_strategy(CapturedEvent, events())
st.register_type_strategy(InvalidEvent, invalid_events())
st.register_type_strategy(InvalidStream, invalid_streams())
