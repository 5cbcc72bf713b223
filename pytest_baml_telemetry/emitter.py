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
        prefix: EventName = DEFAULT_PREFIX,
        *,
        dispatcher: Dispatcher | None = None,
        enabled: bool = True,
        events: Iterable[str] = EVENT_KINDS,
        sample_rate: float = 1.0,
        rng: Callable[[], float] | Any = None,
        clock: Clock | None = None,
        redact: Callable[[str, Any], Any] | None = None,
    ) -> None:
        self.prefix: EventName = check_event_name(prefix, what="emitter prefix")
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            raise TypeError(f"Emitter(dispatcher={dispatcher!r}): expected a Dispatcher or None")
        self.dispatcher = dispatcher if dispatcher is not None else default_dispatcher
        self.enabled = check_bool(enabled, f"Emitter(enabled={enabled!r})")
        if isinstance(events, str):
            raise TypeError(
                f"Emitter(events={events!r}): expected a collection of event kinds such as "
                f"('start', 'stop'), not a single string"
            )
        try:
            chosen = tuple(events)
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
        self.sample_rate = float(sample_rate)
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
        function_name: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        resource: Any = None,
        action: str | None = None,
        client_module: str | None = None,
        streaming: bool = False,
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
        function_name: str | None = None,
        resource: Any = None,
        action: str | None = None,
        client_module: str | None = None,
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
                async with Call(self, name, bind(args, kwargs), resource, action, module, False) as call:
                    result = await function(*args, **kwargs)
                    call.set_result(result)
                    return result

            return async_wrapper

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with Call(self, name, bind(args, kwargs), resource, action, module, False) as call:
                result = function(*args, **kwargs)
                call.set_result(result)
                return result

        return wrapper

    def stream(
        self,
        stream: Any,
        function_name: str,
        *,
        arguments: Mapping[str, Any] | None = None,
        resource: Any = None,
        action: str | None = None,
        client_module: str | None = None,
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
        call = Call(self, function_name, arguments, resource, action, client_module, True, clock)
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
        "started",
        "_timing",
    )

    def __init__(
        self,
        emitter: Emitter,
        function_name: str,
        arguments: Mapping[str, Any] | None,
        resource: Any,
        action: str | None,
        client_module: str | None,
        streaming: bool,
        clock: Clock | None = None,
    ) -> None:
        # Checked inline, not through _validate (same messages): this runs on every call.
        if not isinstance(function_name, str) or not function_name:
            raise TypeError(f"function_name={function_name!r}: expected the BAML function's name, a non-empty str")
        if type(arguments) is not dict and arguments is not None and not isinstance(arguments, Mapping):
            raise TypeError(f"{function_name}: arguments={arguments!r} is not a mapping; expected a dict or None")
        if action is not None and not isinstance(action, str):
            raise TypeError(f"{function_name}: action={action!r}: expected a str or None")
        if client_module is not None and not isinstance(client_module, str):
            raise TypeError(f"{function_name}: client_module={client_module!r}: expected a str or None")
        if streaming is not True and streaming is not False:
            raise TypeError(f"{function_name}: streaming={streaming!r}: expected True or False")
        self.emitter = emitter
        # what the clock is read through: the emitter (its cached bound methods) or this clock's
        self._timing: Emitter | _Timing = emitter if clock is None else _Timing(clock, function_name)
        self.function_name = function_name
        self.arguments = arguments
        self.resource = resource
        self.action = action
        self.client_module = client_module
        self.streaming = streaming
        # sampling, decided once per call (all of its events or none)
        if emitter.enabled:
            rate = emitter.sample_rate
            self.sampled = rate >= 1.0 or (rate > 0.0 and emitter._random() < rate)
        else:
            self.sampled = False
        self.span_context: Hashable | None = None
        self.start_monotonic = 0
        self.first_chunk_monotonic: int | None = None
        self.result: Any = None
        self.usage: Usage | None = None
        self.model: str | None = None
        self.extra: dict[str, Any] | None = None
        self.ended = False
        self.started = False

    def __repr__(self) -> str:
        state = "ended" if self.ended else "open"
        return f"<Call {self.function_name} {state} span={self.span_context!r}>"

    # ------------------------------------------------------------------ setters

    def set_result(self, result: Any) -> None:
        """The value the call returned (emitted as ``result`` after redaction)."""
        self.result = result

    def set_usage(
        self,
        input_tokens: int | Usage | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
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

    def set_model(self, model: str | None) -> None:
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
        if self.started:
            raise RuntimeError(
                f"{self!r} was already started; a call object is used for one call "
                "(create a new one with emitter.call(...))"
            )
        self.started = True
        emitter = self.emitter
        self.start_monotonic = now = self._timing._monotonic_ns()
        if not self.sampled:
            return self
        self.span_context = span = next(span_contexts)
        if emitter._emit_start:
            name = emitter.start_event
            handlers = emitter.dispatcher.handlers_for(name)
            if handlers:  # nobody listening: build nothing
                args = self.arguments
                args = {} if args is None else dict(args)
                if emitter.redact is not None:
                    args = emitter._redacted("arguments", args)
                measurements = {"system_time": self._timing._time_ns(), "monotonic_time": now}
                metadata = {
                    "resource": self.resource,
                    "action": self.action,
                    "function_name": self.function_name,
                    "arguments": args,
                    "client_module": self.client_module,
                    "streaming": self.streaming,
                    "telemetry_span_context": span,
                }
                # The dispatcher's handler loop, inlined here and in stop(): these run on every
                # call, and a shared helper (one more frame per event) measured ~4% of a call.
                for handler in handlers:
                    try:
                        handler.function(name, measurements, metadata, handler.config)
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
        if self.ended:
            return
        if not self.started:
            raise self._not_started("stop")
        self.ended = True
        emitter = self.emitter
        if not self.sampled or not emitter._emit_stop:
            return
        name = emitter.stop_event
        handlers = emitter.dispatcher.handlers_for(name)
        if not handlers:  # nobody listening: build nothing
            return
        now = self._timing._monotonic_ns()
        start = self.start_monotonic
        usage = self.usage
        if usage is None:
            measurements: dict[str, Any] = {
                "duration": now - start,
                "monotonic_time": now,
                "input_tokens": None,
                "output_tokens": None,
                "total_tokens": None,
                "cached_input_tokens": None,
            }
        else:
            i = usage.input_tokens
            o = usage.output_tokens
            measurements = {
                "duration": now - start,
                "monotonic_time": now,
                "input_tokens": i,
                "output_tokens": o,
                "total_tokens": None if i is None or o is None else i + o,
                "cached_input_tokens": usage.cached_input_tokens,
            }
        if self.streaming:
            first = self.first_chunk_monotonic
            measurements["time_to_first_chunk"] = None if first is None else first - start
        result = self.result
        if emitter.redact is not None:
            result = emitter._redacted("result", result)
        metadata = {
            "resource": self.resource,
            "action": self.action,
            "function_name": self.function_name,
            "client_module": self.client_module,
            "streaming": self.streaming,
            "model": self.model,
            "provider": None,
            "client_name": None,
            "num_attempts": None,
            "request_id": None,
            "result": result,
            "telemetry_span_context": self.span_context,
        }
        if self.extra:
            metadata.update(self.extra)
            metadata["telemetry_span_context"] = self.span_context
        for handler in handlers:  # inlined, see start()
            try:
                handler.function(name, measurements, metadata, handler.config)
            except BaseException as exc:  # noqa: BLE001 - a handler must never break the call
                emitter.dispatcher.handler_failed(handler, name, exc)

    def exception(self, exc: BaseException, stacktrace: traceback.StackSummary | None = None) -> None:
        """Emit the exception event for ``exc`` (once); the caller re-raises it."""
        if self.ended:
            return
        if not self.started:
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
        # the keys common with stop() written out again: one dict literal is the cheapest build
        metadata = {
            "resource": self.resource,
            "action": self.action,
            "function_name": self.function_name,
            "client_module": self.client_module,
            "streaming": self.streaming,
            "model": self.model,
            "provider": None,
            "client_name": None,
            "num_attempts": None,
            "request_id": None,
            "kind": "error" if isinstance(exc, Exception) else "exit",
            "reason": exc,
            "stacktrace": stacktrace,
            "telemetry_span_context": self.span_context,
        }
        if self.extra:
            metadata.update(self.extra)
            metadata["telemetry_span_context"] = self.span_context
        # tokens as on stop: a failure the provider answered (and billed) carries its usage,
        # one known not billed carries 0/0 (set by the caller), an unknown one None. The same
        # measurement literals as stop() writes: a shared helper costs stop, the hot path, a call.
        usage = self.usage
        if usage is None:
            measurements: dict[str, Any] = {
                "duration": now - self.start_monotonic,
                "monotonic_time": now,
                "input_tokens": None,
                "output_tokens": None,
                "total_tokens": None,
                "cached_input_tokens": None,
            }
        else:
            i = usage.input_tokens
            o = usage.output_tokens
            measurements = {
                "duration": now - self.start_monotonic,
                "monotonic_time": now,
                "input_tokens": i,
                "output_tokens": o,
                "total_tokens": None if i is None or o is None else i + o,
                "cached_input_tokens": usage.cached_input_tokens,
            }
        dispatcher.execute(emitter.exception_event, measurements, metadata)

    # ------------------------------------------------------------------ context managers

    __enter__ = start

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        if exc is None:
            self.stop()
        else:
            self.exception(exc, _stack_of(tb))
        return False

    async def __aenter__(self) -> Call:
        return self.start()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)
