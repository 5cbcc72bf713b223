"""The reference emitter: the one place that turns a BAML call into contract events.

``Emitter.call(...)`` is a context manager (``with`` and ``async with``) around one call;
``Emitter.wrap`` decorates plain functions and coroutine functions; ``Emitter.stream``
wraps a baml-py-like stream (sync or async, see :mod:`.streams`) so that the start event
is emitted when the stream is created, the stop event on its final response, and an
exception event when it fails or is closed or dropped before completing.

Rules: a :class:`Call` emits one start and then exactly one stop or exception; nothing is
built for an event nobody listens to; the per-call work stays free of extra function
layers (this is the hottest path), so the handlers are run here from the dispatcher's
public fast path (``handlers_for`` / ``handler_failed``) instead of through ``execute``.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
import traceback
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, Literal, TypeVar

from ._validate import check_bool, check_callable, check_number
from .clock import SYSTEM_CLOCK, Clock
from .contract import (
    CALL_KINDS,
    DEFAULT_PREFIX,
    Checked,
    EventName,
    Usage,
    call_event_name,
    check_event_name,
    check_token,
)
from .dispatcher import Dispatcher, default_dispatcher, span_contexts
from .streams import AsyncStream, SyncStream

__all__ = ["Emitter", "Call", "SyncStream", "AsyncStream", "EVENT_KINDS"]

logger = logging.getLogger("pytest_baml_telemetry")

EVENT_KINDS = CALL_KINDS
F = TypeVar("F", bound=Callable[..., Any])

_EMPTY_STACK = traceback.StackSummary.from_list([])


def _stack_of(tb: Any) -> traceback.StackSummary:
    """The stack of a traceback; source lines are read only when someone looks at them."""
    if tb is None:
        return _EMPTY_STACK
    return traceback.StackSummary.extract(traceback.walk_tb(tb), lookup_lines=False)

_OWNED_KEYS = frozenset(
    {
        "resource",
        "action",
        "function_name",
        "arguments",
        "client_module",
        "streaming",
        "result",
        "kind",
        "reason",
        "stacktrace",
        "telemetry_span_context",
    }
)
"""Metadata keys the emitter builds itself; ``Call.set`` refuses them (``model`` goes to ``set_model``)."""

# Templates of the event dicts, copied per event: ``dict.copy()`` of a template clones its
# key table, about twice as fast as building the same dict from a literal. Keys are in the
# order the events have always had; only the fields that differ from the template are set.
_START_METADATA: dict[str, Any] = {
    **dict.fromkeys(("resource", "action", "function_name", "arguments", "client_module")),
    "streaming": False,
    "telemetry_span_context": None,
}
_END_METADATA: dict[str, Any] = {
    **dict.fromkeys(("resource", "action", "function_name", "client_module")),
    "streaming": False,
    **dict.fromkeys(("model", "provider", "client_name", "num_attempts", "request_id")),
}
_STOP_METADATA: dict[str, Any] = {**_END_METADATA, "result": None, "telemetry_span_context": None}
_EXCEPTION_METADATA: dict[str, Any] = {**_END_METADATA, **dict.fromkeys(("kind", "reason", "stacktrace", "telemetry_span_context"))}
_END_MEASUREMENTS: dict[str, Any] = dict.fromkeys(
    ("duration", "monotonic_time", "input_tokens", "output_tokens", "total_tokens", "cached_input_tokens")
)


class Emitter:
    """Builds and executes the start / stop / exception events of BAML calls.

    ``prefix`` is prepended to ``("call", "start")`` etc. ``dispatcher`` defaults to the
    module-level one. ``enabled=False`` emits nothing. ``events`` limits which of
    ``"start"``, ``"stop"``, ``"exception"`` are emitted. ``sample_rate`` (0..1) is decided
    once per call with ``rng`` (a ``random.random``-like callable or an object with a
    ``random()`` method). ``clock`` supplies ``time_ns()``/``monotonic_ns()``.
    ``redact(key, value)`` (key ``"arguments"`` or ``"result"``) returns what is emitted
    instead of the value.
    """

    def __init__(
        self,
        prefix: Checked[EventName] = DEFAULT_PREFIX,
        *,
        dispatcher: Checked[Dispatcher | None] = None,
        enabled: Checked[bool] = True,
        events: Checked[Iterable[str]] = EVENT_KINDS,
        sample_rate: Checked[float] = 1.0,
        rng: Callable[[], float] | Any = None,
        clock: Clock | None = None,
        redact: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.prefix: EventName = check_event_name(prefix, what="emitter prefix")
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            raise TypeError(f"Emitter(dispatcher={dispatcher!r}): expected a Dispatcher or None")
        self.dispatcher = dispatcher if dispatcher is not None else default_dispatcher
        enabled = check_bool(enabled, f"Emitter(enabled={enabled!r})")
        if isinstance(events, str):
            raise TypeError(
                f"Emitter(events={events!r}): expected a collection of event kinds such as "
                f"('start', 'stop'), not a single string"
            )
        try:
            chosen: tuple[Any, ...] = tuple(events)
        except TypeError:
            raise TypeError(f"Emitter(events={events!r}): expected a collection of {EVENT_KINDS}") from None
        for kind in chosen:
            if kind not in EVENT_KINDS:
                raise ValueError(f"Emitter(events=...): unknown event kind {kind!r}; expected some of {EVENT_KINDS}")
        self._events = frozenset(chosen)
        # read on every call: derived once from the (read-only) events
        self._emit_start = "start" in self._events
        self._emit_stop = "stop" in self._events
        self._emit_exception = "exception" in self._events
        check_number(
            sample_rate,
            f"Emitter(sample_rate={sample_rate!r})",
            minimum=0.0,
            maximum=1.0,
            expected="a number between 0.0 and 1.0",
        )
        self._sample_rate = float(sample_rate)
        self._enabled: bool = enabled
        self._sampling = 0  # read on every call; kept by the enabled / sample_rate setters
        self._set_sampling()
        if rng is None:
            self._random: Callable[[], float] = random.random
        elif callable(rng):
            self._random = rng
        elif callable(getattr(rng, "random", None)):
            self._random = rng.random
        else:
            raise TypeError(f"Emitter(rng={rng!r}): expected a callable returning a float in [0, 1) or a random.Random")
        clock = SYSTEM_CLOCK if clock is None else clock
        if not (callable(getattr(clock, "time_ns", None)) and callable(getattr(clock, "monotonic_ns", None))):
            raise TypeError(f"Emitter(clock={clock!r}): expected an object with time_ns() and monotonic_ns()")
        self.clock = clock  # also caches its bound methods (see the property)
        self.redact = check_callable(
            redact, f"Emitter(redact={redact!r})", optional=True, expected="a callable (key, value) -> value, or None"
        )
        self.start_event: EventName = call_event_name(self.prefix, "start")
        self.stop_event: EventName = call_event_name(self.prefix, "stop")
        self.exception_event: EventName = call_event_name(self.prefix, "exception")
        # (handlers_for, start, stop, exception handlers): see _routing_for
        self._routing: tuple[Any, ...] = (None, (), (), ())

    @property
    def enabled(self) -> bool:
        """Whether this emitter emits at all (settable)."""
        return self._enabled

    @enabled.setter
    def enabled(self, enabled: Checked[bool]) -> None:
        self._enabled = check_bool(enabled, f"Emitter.enabled = {enabled!r}")
        self._set_sampling()

    @property
    def sample_rate(self) -> float:
        """The share of calls emitted, 0.0 to 1.0, decided once per call (settable)."""
        return self._sample_rate

    @sample_rate.setter
    def sample_rate(self, rate: Checked[float]) -> None:
        check_number(
            rate, f"Emitter.sample_rate = {rate!r}", minimum=0.0, maximum=1.0, expected="a number between 0.0 and 1.0"
        )
        self._sample_rate = float(rate)
        self._set_sampling()

    def _set_sampling(self) -> None:
        # what a call reads: 0 emits nothing, 1 every call, 2 draws with the rng
        rate = self._sample_rate
        self._sampling = 0 if not self._enabled or rate <= 0.0 else 1 if rate >= 1.0 else 2

    @property
    def clock(self) -> Clock:
        """The clock events are timed with (``time_ns()`` and ``monotonic_ns()``)."""
        return self._clock

    @clock.setter
    def clock(self, clock: Clock) -> None:
        self._clock = clock
        self._time_ns = clock.time_ns
        self._monotonic_ns = clock.monotonic_ns

    def __repr__(self) -> str:
        return (
            f"Emitter(prefix={self.prefix!r}, enabled={self.enabled}, events={sorted(self.events)}, "
            f"sample_rate={self.sample_rate})"
        )

    @property
    def events(self) -> frozenset[str]:
        """Which of ``"start"``, ``"stop"``, ``"exception"`` this emitter emits (read-only)."""
        return self._events

    @property
    def event_names(self) -> tuple[EventName, EventName, EventName]:
        """The start, stop and exception event names of this emitter."""
        return (self.start_event, self.stop_event, self.exception_event)

    def _routing_for(self, handlers_for: Any) -> tuple[Any, ...]:
        """The handlers of this emitter's three events, cached until the handler table changes.

        The dispatcher replaces its table (and ``handlers_for``, a bound ``get`` of it) on
        every attach and detach, so the cache is keyed on that bound method's identity; an
        event this emitter does not emit gets no handlers. Saves hashing the event name
        tuple (CPython does not cache tuple hashes) twice per call. Each handler is kept as
        ``(function, config, handler)``, unpacked faster than the named tuple's fields.
        """
        def unpacked(name: EventName, emitted: bool) -> tuple[tuple[Any, Any, Any], ...]:
            return tuple((h.function, h.config, h) for h in handlers_for(name) or ()) if emitted else ()

        routing = (
            handlers_for,
            unpacked(self.start_event, self._emit_start),
            unpacked(self.stop_event, self._emit_stop),
            unpacked(self.exception_event, self._emit_exception),
        )
        self._routing = routing
        return routing

    def _redacted(self, key: str, value: Any) -> Any:
        redact = self.redact
        if redact is None:
            return value
        try:
            out = redact(key, value)
        except Exception as exc:  # a broken redactor must not break the call, nor leak the value
            logger.error("redact(%r, ...) failed: %r; the value is replaced by a placeholder", key, exc)
            failed = f"<redaction failed: {type(exc).__name__}>"
            # ``arguments`` must stay a mapping (the contract), even when the redactor breaks
            return {"<redacted>": failed} if key == "arguments" else failed
        if key == "arguments" and not isinstance(out, Mapping):
            logger.error(
                "redact('arguments', ...) returned a %s, not a mapping; the arguments are replaced by a placeholder",
                type(out).__name__,
            )
            return {"<redacted>": f"<redaction failed: redact returned a {type(out).__name__}, expected a mapping>"}
        return out

    # ------------------------------------------------------------------ call forms

    def call(
        self,
        function_name: Checked[str],
        *,
        arguments: Mapping[str, Any] | None = None,
        resource: Any = None,
        action: Checked[str | None] = None,
        client_module: Checked[str | None] = None,
        streaming: Checked[bool] = False,
        clock: Clock | None = None,
    ) -> Call:
        """A context manager around one call (``with`` or ``async with``).

        Entering emits start; leaving normally emits stop; leaving by an exception emits
        exception (kind ``"error"`` for ``Exception``, ``"exit"`` for other
        ``BaseException``) and lets it propagate. ``clock`` times this call instead of the
        emitter's clock (e.g. a per-call virtual clock).
        """
        return Call(self, function_name, arguments, resource, action, client_module, streaming, clock)

    def wrap(
        self,
        function: F | None = None,
        *,
        function_name: Checked[str | None] = None,
        resource: Any = None,
        action: Checked[str | None] = None,
        client_module: Checked[str | None] = None,
    ) -> Any:
        """Decorate a function or coroutine function so that each call emits the contract.

        Usable bare (``@emitter.wrap``) or with options (``@emitter.wrap(function_name="X")``).
        The call's arguments are bound to the signature and emitted as ``arguments``; the
        return value is the ``result``.
        """
        if function is None:
            return functools.partial(
                self.wrap, function_name=function_name, resource=resource, action=action, client_module=client_module
            )
        if not callable(function):
            raise TypeError(f"Emitter.wrap({function!r}): expected a function or a coroutine function")
        name = function_name if function_name is not None else getattr(function, "__name__", None)
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"Emitter.wrap({function!r}, function_name={name!r}): cannot tell the function name; "
                "pass function_name= a non-empty str"
            )
        module = client_module if client_module is not None else getattr(function, "__module__", None)
        try:
            signature: inspect.Signature | None = inspect.signature(function)
        except (TypeError, ValueError):
            signature = None

        def bind(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
            if signature is None:
                return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
            return dict(bound.arguments)

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                async with self.call(
                    name, arguments=bind(args, kwargs), resource=resource, action=action, client_module=module
                ) as call:
                    result = await function(*args, **kwargs)
                    call.set_result(result)
                    return result

            return async_wrapper

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.call(
                name, arguments=bind(args, kwargs), resource=resource, action=action, client_module=module
            ) as call:
                result = function(*args, **kwargs)
                call.set_result(result)
                return result

        return wrapper

    def stream(
        self,
        stream: Any,
        function_name: Checked[str],
        *,
        arguments: Mapping[str, Any] | None = None,
        resource: Any = None,
        action: Checked[str | None] = None,
        client_module: Checked[str | None] = None,
        before_end: Callable[[Call, BaseException | None], None] | None = None,
        clock: Clock | None = None,
    ) -> SyncStream[Any] | AsyncStream[Any]:
        """Wrap a baml-py-like stream; the start event is emitted now.

        ``stream`` yields partials (``for`` or ``async for``) and has
        ``get_final_response()`` (a coroutine for async streams). Returns a
        :class:`SyncStream` or :class:`AsyncStream` with the same interface. ``before_end``
        is called with the call object and the error (or ``None``) just before stop or
        exception is emitted, to set usage and model. ``clock`` times this call instead of
        the emitter's clock.
        """
        check_callable(
            before_end,
            f"Emitter.stream(before_end={before_end!r})",
            optional=True,
            expected="a callable (call, error) -> None, or None",
        )
        if hasattr(stream, "__aiter__") or inspect.iscoroutinefunction(getattr(stream, "get_final_response", None)):
            wrapper: type[SyncStream[Any]] | type[AsyncStream[Any]] = AsyncStream
        elif hasattr(stream, "__iter__") or hasattr(stream, "get_final_response"):
            wrapper = SyncStream
        else:
            raise TypeError(
                f"Emitter.stream({stream!r}): expected a stream with iteration over partials and "
                "get_final_response(), as baml-py's BamlSyncStream / BamlStream"
            )
        # checked first, so that a refused stream neither samples nor emits
        call = self.call(
            function_name,
            arguments=arguments,
            resource=resource,
            action=action,
            client_module=client_module,
            streaming=True,
            clock=clock,
        )
        return wrapper(call, stream, before_end)


class _Timing:
    """A per-call clock's bound methods, under the names the emitter caches its own clock's."""

    __slots__ = ("_time_ns", "_monotonic_ns")

    def __init__(self, clock: Clock, function_name: str) -> None:
        time_ns = getattr(clock, "time_ns", None)
        monotonic_ns = getattr(clock, "monotonic_ns", None)
        if not (callable(time_ns) and callable(monotonic_ns)):
            raise TypeError(f"{function_name}: clock={clock!r}: expected an object with time_ns() and monotonic_ns()")
        self._time_ns = time_ns
        self._monotonic_ns = monotonic_ns


class Call:
    """One call in flight: set its result, usage, model and extra metadata before it ends.

    A call object is used once: :meth:`start` (done by ``with``) emits start, then exactly
    one of :meth:`stop` / :meth:`exception` ends it. Starting it twice, or ending it before
    it started, raises ``RuntimeError`` (either would break the start/end pairing).
    ``clock`` (default: the emitter's) supplies this call's ``time_ns()``/``monotonic_ns()``.
    """

    __slots__ = (
        "emitter",
        "function_name",
        "arguments",
        "resource",
        "action",
        "client_module",
        "streaming",
        "sampled",
        "span_context",
        "start_monotonic",
        "first_chunk_monotonic",
        "result",
        "usage",
        "model",
        "extra",
        "ended",
        "_timing",
    )

    emitter: Emitter
    function_name: str
    arguments: Mapping[str, Any] | None
    resource: Any
    action: str | None
    client_module: str | None
    streaming: bool
    sampled: bool
    span_context: Hashable | None
    # what the clock returned (an int in ns by the protocol; not narrowed, so that another
    # number from a hand-written clock behaves the same in the compiled build)
    start_monotonic: Any
    first_chunk_monotonic: Any
    result: Any
    usage: Usage | None
    model: str | None
    extra: dict[str, Any] | None
    ended: bool
    _timing: Emitter | _Timing

    def __init__(
        self,
        emitter: Emitter,
        function_name: Any,
        arguments: Any,
        resource: Any,
        action: Any,
        client_module: Any,
        streaming: Any,
        clock: Clock | None = None,
    ) -> None:
        # Checked inline, not through _validate (same messages): this runs on every call.
        # Exact types first, subclasses on the slow path.
        if type(function_name) is not str and not isinstance(function_name, str) or not function_name:
            raise TypeError(f"function_name={function_name!r}: expected the BAML function's name, a non-empty str")
        if arguments is not None and type(arguments) is not dict and not isinstance(arguments, Mapping):
            raise TypeError(f"{function_name}: arguments={arguments!r} is not a mapping; expected a dict or None")
        if action is not None and not isinstance(action, str):
            raise TypeError(f"{function_name}: action={action!r}: expected a str or None")
        if client_module is not None and not isinstance(client_module, str):
            raise TypeError(f"{function_name}: client_module={client_module!r}: expected a str or None")
        if streaming is not False and streaming is not True:
            raise TypeError(f"{function_name}: streaming={streaming!r}: expected True or False")
        self.emitter = emitter
        # what the clock is read through: the emitter (its cached bound methods) or this clock's
        self._timing = emitter if clock is None else _Timing(clock, function_name)
        self.function_name = function_name
        self.arguments = arguments
        self.resource = resource
        self.action = action
        self.client_module = client_module
        self.streaming = streaming
        # sampling, decided once per call (all of its events or none)
        sampling = emitter._sampling
        self.sampled = sampling == 1 or (sampling == 2 and emitter._random() < emitter._sample_rate)
        self.span_context = None
        self.start_monotonic = None
        self.first_chunk_monotonic = None
        self.result = None
        self.usage = None
        self.model = None
        self.extra = None
        self.ended = False

    @property
    def started(self) -> bool:
        """Whether the start event was emitted (or skipped, if not sampled)."""
        return self.start_monotonic is not None

    def __repr__(self) -> str:
        state = "ended" if self.ended else "open"
        return f"<Call {self.function_name} {state} span={self.span_context!r}>"

    # ------------------------------------------------------------------ setters

    def set_result(self, result: Any) -> None:
        """The value the call returned (emitted as ``result`` after redaction)."""
        self.result = result

    def set_usage(
        self,
        input_tokens: Checked[int | Usage | None] = None,
        output_tokens: Checked[int | None] = None,
        cached_input_tokens: Checked[int | None] = None,
    ) -> None:
        """Token usage; counts nobody reported stay ``None``. Also accepts a :class:`Usage`."""
        if isinstance(input_tokens, Usage):
            self.usage = input_tokens
            return
        self.usage = Usage(
            check_token("input_tokens", input_tokens, "set_usage"),
            check_token("output_tokens", output_tokens, "set_usage"),
            check_token("cached_input_tokens", cached_input_tokens, "set_usage"),
        )

    def set_model(self, model: Checked[str | None]) -> None:
        """The model the request asked for."""
        if model is not None and not isinstance(model, str):  # inline: the fakes call this on every call
            raise TypeError(f"{self.function_name}: set_model({model!r}): expected a str or None")
        self.model = model

    def set(self, **extra_metadata: Any) -> None:
        """Extra metadata for the stop / exception event (``provider``, ``client_name``, ...).

        Keys the emitter builds itself (``function_name``, ``streaming``, ``result``,
        ``kind``, ``telemetry_span_context``, ...) are refused with ``ValueError``;
        ``model=`` is passed to :meth:`set_model`.
        """
        owned = _OWNED_KEYS.intersection(extra_metadata)
        if owned:
            raise ValueError(
                f"{self.function_name}: set({', '.join(f'{k}=...' for k in sorted(owned))}): "
                f"{sorted(owned)!r} are set by the emitter itself; use set_result() for the result, "
                "and set() for extra metadata such as provider, client_name, num_attempts, request_id"
            )
        if "model" in extra_metadata:
            self.set_model(extra_metadata.pop("model"))
        if self.extra is None:
            self.extra = extra_metadata
        else:
            self.extra.update(extra_metadata)

    def mark_first_chunk(self) -> None:
        """Record the arrival of a stream's first chunk (later calls are ignored)."""
        if self.first_chunk_monotonic is None:
            self.first_chunk_monotonic = self._timing._monotonic_ns()

    # ------------------------------------------------------------------ events

    def start(self) -> Call:
        """Emit the start event (done by ``with``; call it yourself for other shapes)."""
        return self.__enter__()

    def __enter__(self) -> Call:
        # start(), here so that ``with`` (the hot path) costs one frame
        if self.start_monotonic is not None:
            raise RuntimeError(
                f"{self!r} was already started; a call object is used for one call "
                "(create a new one with emitter.call(...))"
            )
        emitter = self.emitter
        self.start_monotonic = now = self._timing._monotonic_ns()
        if not self.sampled:
            return self
        self.span_context = span = next(span_contexts)
        routing = emitter._routing
        if routing[0] is not emitter.dispatcher.handlers_for:
            routing = emitter._routing_for(emitter.dispatcher.handlers_for)
        handlers = routing[1]
        if handlers:  # nobody listening: build nothing
            name = emitter.start_event
            args = self.arguments
            args = {} if args is None else args.copy() if type(args) is dict else dict(args)
            if emitter.redact is not None:
                args = emitter._redacted("arguments", args)
            measurements = {"system_time": self._timing._time_ns(), "monotonic_time": now}
            metadata = _START_METADATA.copy()
            metadata["function_name"] = self.function_name
            metadata["arguments"] = args
            metadata["telemetry_span_context"] = span
            if self.resource is not None:
                metadata["resource"] = self.resource
            if self.action is not None:
                metadata["action"] = self.action
            if self.client_module is not None:
                metadata["client_module"] = self.client_module
            if self.streaming:
                metadata["streaming"] = True
            # The dispatcher's handler loop, inlined here and in stop(): these run on every
            # call, and a shared helper (one more frame per event) measured ~4% of a call.
            for function, config, handler in handlers:
                try:
                    function(name, measurements, metadata, config)
                except BaseException as exc:  # noqa: BLE001 - a handler must never break the call
                    emitter.dispatcher.handler_failed(handler, name, exc)
        return self

    def _not_started(self, what: str) -> RuntimeError:
        return RuntimeError(
            f"{self!r}: {what}() on a call that was never started; use `with emitter.call(...)` "
            "or call start() first"
        )

    def stop(self) -> None:
        """Emit the stop event (once)."""
        self.__exit__(None, None, None)

    def exception(self, exc: BaseException, stacktrace: traceback.StackSummary | None = None) -> None:
        """Emit the exception event for ``exc`` (once); the caller re-raises it."""
        if self.ended:
            return
        if self.start_monotonic is None:
            raise self._not_started("exception")
        self.ended = True
        emitter = self.emitter
        if not self.sampled or not emitter._emit_exception:
            return
        dispatcher = emitter.dispatcher
        if not dispatcher.handlers_for(emitter.exception_event):  # nobody listening: build nothing
            return
        now = self._timing._monotonic_ns()
        if stacktrace is None:
            stacktrace = _stack_of(exc.__traceback__)
        metadata = _EXCEPTION_METADATA.copy()
        metadata["function_name"] = self.function_name
        metadata["kind"] = "error" if isinstance(exc, Exception) else "exit"
        metadata["reason"] = exc
        metadata["stacktrace"] = stacktrace
        metadata["telemetry_span_context"] = self.span_context
        if self.resource is not None:
            metadata["resource"] = self.resource
        if self.action is not None:
            metadata["action"] = self.action
        if self.client_module is not None:
            metadata["client_module"] = self.client_module
        if self.model is not None:
            metadata["model"] = self.model
        if self.streaming:
            metadata["streaming"] = True
        if self.extra:
            metadata.update(self.extra)
            metadata["telemetry_span_context"] = self.span_context
        # tokens as on stop: a failure the provider answered (and billed) carries its usage,
        # one known not billed carries 0/0 (set by the caller), an unknown one None.
        measurements = _END_MEASUREMENTS.copy()
        measurements["duration"] = now - self.start_monotonic
        measurements["monotonic_time"] = now
        usage = self.usage
        if usage is not None:
            i = measurements["input_tokens"] = usage.input_tokens
            o = measurements["output_tokens"] = usage.output_tokens
            if i is not None and o is not None:
                measurements["total_tokens"] = i + o
            measurements["cached_input_tokens"] = usage.cached_input_tokens
        dispatcher.execute(emitter.exception_event, measurements, metadata)

    # ------------------------------------------------------------------ context managers

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is not None:
            self.exception(exc, _stack_of(tb))
            return False
        # stop(), inlined: leaving a ``with`` block is the hot path
        if self.ended:
            return False
        if self.start_monotonic is None:
            raise self._not_started("stop")
        self.ended = True
        emitter = self.emitter
        if not self.sampled:
            return False
        routing = emitter._routing
        if routing[0] is not emitter.dispatcher.handlers_for:
            routing = emitter._routing_for(emitter.dispatcher.handlers_for)
        handlers = routing[2]
        if not handlers:  # nobody listening: build nothing
            return False
        name = emitter.stop_event
        now = self._timing._monotonic_ns()
        start = self.start_monotonic
        measurements = _END_MEASUREMENTS.copy()
        measurements["duration"] = now - start
        measurements["monotonic_time"] = now
        usage = self.usage
        if usage is not None:
            i = measurements["input_tokens"] = usage.input_tokens
            o = measurements["output_tokens"] = usage.output_tokens
            if i is not None and o is not None:
                measurements["total_tokens"] = i + o
            measurements["cached_input_tokens"] = usage.cached_input_tokens
        result = self.result
        if emitter.redact is not None:
            result = emitter._redacted("result", result)
        metadata = _STOP_METADATA.copy()
        metadata["function_name"] = self.function_name
        metadata["result"] = result
        metadata["telemetry_span_context"] = self.span_context
        if self.resource is not None:
            metadata["resource"] = self.resource
        if self.action is not None:
            metadata["action"] = self.action
        if self.client_module is not None:
            metadata["client_module"] = self.client_module
        if self.model is not None:
            metadata["model"] = self.model
        if self.streaming:
            metadata["streaming"] = True
            first = self.first_chunk_monotonic
            measurements["time_to_first_chunk"] = None if first is None else first - start
        if self.extra:
            metadata.update(self.extra)
            metadata["telemetry_span_context"] = self.span_context
        for function, config, handler in handlers:  # inlined, see start()
            try:
                function(name, measurements, metadata, config)
            except BaseException as error:  # noqa: BLE001 - a handler must never break the call
                emitter.dispatcher.handler_failed(handler, name, error)
        return False

    async def __aenter__(self) -> Call:
        return self.start()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)
