"""Stream wrappers: the start, stop and exception events of a baml-py-like stream.

:class:`SyncStream` and :class:`AsyncStream` wrap a stream that yields partials and has
``get_final_response()``; ``Emitter.stream`` creates them. Rules: the start event is
emitted when the wrapper is created, the stop event on the final response, and an
exception event (a :class:`~pytest_baml_telemetry.contract.StreamAbandoned` reason, kind
``"exit"``) when the stream fails, or is closed or dropped before completing. A call ends
once, whichever of these comes first; iterating never raises for the final response
(as in baml-py: ``get_final_response()`` does).
"""

from __future__ import annotations

import inspect
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from .contract import StreamAbandoned

__all__ = ["SyncStream", "AsyncStream", "StreamCall"]

logger = logging.getLogger("pytest_baml_telemetry")

T = TypeVar("T")

_MISSING = object()


class StreamCall(Protocol):
    """What a stream wrapper needs of its call (an :class:`~pytest_baml_telemetry.emitter.Call`)."""

    function_name: str
    ended: bool
    span_context: Any

    def start(self) -> Any: ...
    def stop(self) -> None: ...
    def exception(self, exc: BaseException) -> None: ...
    def set_result(self, result: Any) -> None: ...
    def mark_first_chunk(self) -> None: ...


Call = StreamCall  # the name the signatures below use


class _StreamBase:
    """What both wrappers share: the call, the one-time end, abandonment and passthrough."""

    __slots__ = ("_call", "_stream", "_before_end", "_final", "_error", "_lock", "__weakref__")

    def __init__(self, call: Call, stream: Any, before_end: Callable[[Any, BaseException | None], None] | None):
        self._call = call
        self._stream = stream
        self._before_end = before_end
        self._final: Any = _MISSING
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        call.start()

    @property
    def call(self) -> Call:
        """The call object behind this stream."""
        return self._call

    def _end(self, error: BaseException | None, result: Any = None) -> None:
        with self._lock:
            call = self._call
            if call.ended:
                return
            try:
                if self._before_end is not None:
                    try:
                        self._before_end(call, error)
                    except Exception as exc:  # reading usage must not break the stream
                        logger.error("reading usage for %s failed: %r", call.function_name, exc)
            finally:  # an interrupt in before_end still ends the call, then propagates
                if error is None:
                    call.set_result(result)
                    call.stop()
                else:
                    call.exception(error)

    def _abandon(self, detail: str) -> None:
        if not self._call.ended:
            reason = StreamAbandoned(self._call.function_name, detail)
            self._end(reason)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __del__(self) -> None:
        try:
            if sys is None or sys.is_finalizing():  # interpreter shutdown: nothing to report to
                return
            self._abandon("was dropped before its final response")
        except Exception:
            pass


class SyncStream(_StreamBase, Generic[T]):
    """A sync stream whose start, stop and exception events are emitted for you.

    Iterate it for partials, call :meth:`get_final_response` for the final result,
    :meth:`close` to abandon it (an exception event of kind ``"exit"``).
    """

    __slots__ = ()

    def __iter__(self) -> Any:
        call = self._call
        try:
            for partial in self._stream:
                call.mark_first_chunk()
                yield partial
        except GeneratorExit:
            raise  # the loop was left early: not an abandonment while the stream is referenced
        except BaseException as exc:
            self._error = exc
            self._end(exc)
            raise
        try:
            self._complete()
        except BaseException:
            pass  # like baml-py, iteration does not raise: get_final_response() does

    def _complete(self) -> Any:
        if self._final is not _MISSING:
            return self._final
        if self._error is not None:
            raise self._error
        getter = getattr(self._stream, "get_final_response", None)
        if getter is None:
            self._final = None
            self._end(None, None)
            return None
        try:
            final = getter()
        except BaseException as exc:
            self._error = exc
            self._end(exc)
            raise
        self._final = final
        self._end(None, final)
        return final

    def get_final_response(self) -> Any:
        """The final result; emits stop (or exception if the stream failed)."""
        return self._complete()

    def close(self) -> None:
        """Abandon the stream: emits an exception event with a :class:`StreamAbandoned` reason."""
        self._abandon("was closed before its final response")
        close = getattr(self._stream, "close", None)
        if callable(close):
            close()


class AsyncStream(_StreamBase, Generic[T]):
    """An async stream whose start, stop and exception events are emitted for you."""

    # __aiter__ and _complete are the async twins of SyncStream's: they differ by their awaits.
    __slots__ = ()

    async def __aiter__(self) -> Any:
        call = self._call
        try:
            async for partial in self._stream:
                call.mark_first_chunk()
                yield partial
        except GeneratorExit:
            raise  # the loop was left early: not an abandonment while the stream is referenced
        except BaseException as exc:
            self._error = exc
            self._end(exc)
            raise
        try:
            await self._complete()
        except BaseException:
            pass  # like baml-py, iteration does not raise: get_final_response() does

    async def _complete(self) -> Any:
        if self._final is not _MISSING:
            return self._final
        if self._error is not None:
            raise self._error
        getter = getattr(self._stream, "get_final_response", None)
        if getter is None:
            self._final = None
            self._end(None, None)
            return None
        try:
            final = getter()
            if inspect.isawaitable(final):
                final = await final
        except BaseException as exc:
            self._error = exc
            self._end(exc)
            raise
        self._final = final
        self._end(None, final)
        return final

    async def get_final_response(self) -> Any:
        """The final result; emits stop (or exception if the stream failed)."""
        return await self._complete()

    async def aclose(self) -> None:
        """Abandon the stream: emits an exception event with a :class:`StreamAbandoned` reason."""
        self._abandon("was closed before its final response")
        close = getattr(self._stream, "aclose", None)
        if callable(close):
            await close()

    def close(self) -> None:
        """Abandon the stream (sync form of :meth:`aclose`)."""
        self._abandon("was closed before its final response")
