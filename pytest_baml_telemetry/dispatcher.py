"""A port of Erlang ``:telemetry``: attach handlers to event names and execute events.

Rules (each one tested):

* Dispatch is by exact event name: a handler attached to ``("a","b")`` does not see
  ``("a",)`` or ``("a","b","c")``.
* ``attach``/``attach_many`` with a ``handler_id`` already attached raise
  :class:`HandlerExistsError` (a ``ValueError``); ``detach`` returns whether it removed
  anything, and removes the handler from every event it was attached to.
* Handlers run synchronously in the emitting thread, in the order they were attached.
* A handler that raises is detached from every event it was attached to, a
  ``("telemetry","handler","failure")`` event is executed with ``event_name``,
  ``handler_id``, ``handler_config``, ``kind``, ``reason`` and ``stacktrace``, the failure
  is logged on the ``pytest_baml_telemetry`` logger, and the other handlers still run.
  The emitting code never sees the handler's error. ``KeyboardInterrupt``, ``SystemExit``
  and ``asyncio.CancelledError`` raised by a handler are handled the same way (kind
  ``"exit"``) and then re-raised, so that an interrupt is not swallowed.
* The handler table is an immutable mapping replaced under a lock on attach/detach and
  read without a lock on execute, so every operation is safe from any thread.
* Code that builds its events only when someone listens (the emitter) uses the public
  fast path: :meth:`Dispatcher.handlers_for` gives the attached handlers of one name,
  the caller runs them and reports a raising one with :meth:`Dispatcher.handler_failed`,
  which applies the failure rules above.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, NamedTuple

from ._validate import check_callable, check_mapping
from .contract import HANDLER_FAILURE, Checked, EventName, check_event_name, format_event_name

__all__ = [
    "Dispatcher",
    "AttachedHandler",
    "HandlerExistsError",
    "HandlerFunction",
    "default_dispatcher",
    "attach",
    "attach_many",
    "detach",
    "execute",
    "span",
    "list_handlers",
    "new_span_context",
    "span_contexts",
]

logger = logging.getLogger("pytest_baml_telemetry")

HandlerFunction = Callable[[EventName, Mapping[str, Any], Mapping[str, Any], Any], Any]

_MAX_CACHED_NAMES = 4096

span_contexts = itertools.count(1)
"""The process's ``telemetry_span_context`` values: ``next(span_contexts)`` is a fresh one
(the emitter's per-call form of :func:`new_span_context`)."""


def new_span_context() -> int:
    """A fresh ``telemetry_span_context``, unique within the process."""
    return next(span_contexts)


class HandlerExistsError(ValueError):
    """A handler with this id is already attached (Erlang's ``{error, already_exists}``)."""


class AttachedHandler(NamedTuple):
    """One handler attached to one event, as :meth:`Dispatcher.handlers_for` returns it."""

    id: Hashable
    event_name: EventName
    function: HandlerFunction
    config: Any


def _is_interrupt(exc: BaseException) -> bool:
    """KeyboardInterrupt, SystemExit or asyncio.CancelledError (without importing asyncio)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        return True
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def _check_payload(event_name: Any, measurements: Any, metadata: Any) -> None:
    """The payload check of ``execute``, for payloads that are not plain dicts (off the fast path)."""
    where = f"execute({format_event_name(event_name)})"
    check_mapping(
        measurements,
        f"{where}: measurements={measurements!r} ({type(measurements).__name__}) is not a mapping",
        expected="a dict such as {'duration': 12}",
    )
    check_mapping(
        metadata,
        f"{where}: metadata={metadata!r} ({type(metadata).__name__}) is not a mapping",
        optional=True,
        expected="a dict or None",
    )


class Dispatcher:
    """An isolated handler table with the ``:telemetry`` API.

    The module-level :func:`attach`, :func:`execute`, ... act on :data:`default_dispatcher`.

    ``handlers_for(event_name)`` is the fast path for code that runs handlers itself: the
    tuple of :class:`AttachedHandler` attached to exactly ``event_name``, in attach order,
    or a false value (``()`` or ``None``) when there is none. It does no validation (pass
    a well-formed tuple name) and is a bound ``dict.get`` of the current handler table,
    replaced with the table, so that asking costs no Python frame. The caller calls each
    ``handler.function(event_name, measurements, metadata, handler.config)`` and passes
    any ``BaseException`` it raises to :meth:`handler_failed`.
    """

    __slots__ = ("_routes", "_by_id", "_lock", "name", "handlers_for", "__weakref__")

    handlers_for: Callable[[EventName], tuple[AttachedHandler, ...] | None]

    def __init__(self, name: Checked[str | None] = None) -> None:
        # event name -> tuple of handlers. Replaced wholesale under the lock; names seen by
        # execute with no handler are cached here with () so they are validated once.
        self._routes: dict[Any, tuple[AttachedHandler, ...]] = {}
        self.handlers_for = self._routes.get
        # handler id -> its records (one per event), in attach order
        self._by_id: dict[Hashable, tuple[AttachedHandler, ...]] = {}
        self._lock = threading.Lock()
        self.name = name

    def _set_routes(self, routes: dict[Any, tuple[AttachedHandler, ...]]) -> None:
        """Publish a new handler table (under the lock)."""
        self._routes = routes
        self.handlers_for = routes.get

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<Dispatcher{label} with {len(self._by_id)} handler(s)>"

    # ------------------------------------------------------------------ attach / detach

    def attach(
        self, handler_id: Hashable, event_name: Checked[EventName], function: HandlerFunction, config: Any = None
    ) -> None:
        """Attach ``function`` to one event; raise :class:`HandlerExistsError` if the id is taken."""
        self.attach_many(handler_id, [event_name], function, config)

    def attach_many(
        self,
        handler_id: Hashable,
        event_names: Checked[Iterable[EventName]],
        function: HandlerFunction,
        config: Any = None,
    ) -> None:
        """Attach ``function`` to several events under one ``handler_id``."""
        try:
            hash(handler_id)
        except TypeError:
            raise TypeError(f"handler_id={handler_id!r} is not hashable; expected a str or another hashable value") from None
        check_callable(
            function,
            f"handler function={function!r} for handler_id={handler_id!r} is not callable",
            expected="a callable (event_name, measurements, metadata, config)",
        )
        if isinstance(event_names, (str, bytes)) or not isinstance(event_names, Iterable):
            raise TypeError(
                f"event_names={event_names!r} for handler_id={handler_id!r}: expected a list of event "
                "names (tuples of non-empty strings)"
            )
        if isinstance(event_names, tuple) and event_names and all(isinstance(p, str) for p in event_names):
            raise TypeError(
                f"event_names={event_names!r} for handler_id={handler_id!r} looks like a single event "
                "name; expected a list of event names, e.g. [" + repr(event_names) + "]"
            )
        names: list[EventName] = []
        raw: Any  # each member is checked here, not by the compiled build's casts
        for raw in event_names:
            name = check_event_name(raw)
            if name not in names:
                names.append(name)
        if not names:
            raise ValueError(f"event_names=[] for handler_id={handler_id!r}: expected at least one event name")
        records = tuple(AttachedHandler(handler_id, name, function, config) for name in names)
        with self._lock:
            if handler_id in self._by_id:
                raise HandlerExistsError(f"a handler with id {handler_id!r} is already attached")
            routes = dict(self._routes)
            for rec in records:
                routes[rec.event_name] = routes.get(rec.event_name, ()) + (rec,)
            by_id = dict(self._by_id)
            by_id[handler_id] = records
            self._by_id = by_id
            self._set_routes(routes)

    def detach(self, handler_id: Hashable) -> bool:
        """Detach the handler from every event; return ``False`` if no such handler was attached."""
        try:
            hash(handler_id)
        except TypeError:
            return False
        with self._lock:
            return self._remove_locked(handler_id, None)

    def _remove_locked(self, handler_id: Hashable, only: AttachedHandler | None) -> bool:
        records = self._by_id.get(handler_id)
        if records is None or (only is not None and not any(r is only for r in records)):
            return False
        by_id = dict(self._by_id)
        del by_id[handler_id]
        routes = dict(self._routes)
        for rec in records:
            remaining = tuple(h for h in routes.get(rec.event_name, ()) if h.id != handler_id)
            routes[rec.event_name] = remaining
        self._by_id = by_id
        self._set_routes(routes)
        return True

    def list_handlers(self, prefix: Checked[EventName | tuple[()]] = ()) -> list[dict[str, Any]]:
        """Handlers attached to events starting with ``prefix`` (``()`` lists all).

        One dict per (handler, event) with ``id``, ``event_name``, ``function``, ``config``.
        """
        if isinstance(prefix, list):
            prefix = tuple(prefix)
        if prefix != ():
            prefix = check_event_name(prefix, what="event prefix")
        n = len(prefix)
        return [
            {"id": rec.id, "event_name": rec.event_name, "function": rec.function, "config": rec.config}
            for records in self._by_id.values()
            for rec in records
            if rec.event_name[:n] == prefix
        ]

    def clear(self) -> None:
        """Detach every handler."""
        with self._lock:
            self._by_id = {}
            self._set_routes({})

    # ------------------------------------------------------------------ execute

    def execute(
        self,
        event_name: Checked[EventName],
        measurements: Mapping[str, Any],
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Call every handler attached to exactly ``event_name``, in the calling thread."""
        try:
            handlers = self._routes[event_name]
        except (KeyError, TypeError):
            event_name, handlers = self._lookup_slow(event_name)
        if handlers:
            if type(measurements) is not dict or (metadata is not None and type(metadata) is not dict):
                _check_payload(event_name, measurements, metadata)
            if metadata is None:
                metadata = {}
            for handler in handlers:
                try:
                    handler.function(event_name, measurements, metadata, handler.config)
                except BaseException as exc:  # noqa: BLE001 - a handler must never break the caller
                    self.handler_failed(handler, event_name, exc)
        elif type(measurements) is not dict or (metadata is not None and type(metadata) is not dict):
            _check_payload(event_name, measurements, metadata)

    def has_handlers(self, event_name: Checked[EventName]) -> bool:
        """Whether any handler is attached to exactly ``event_name`` (O(1), no validation)."""
        try:
            return bool(self._routes.get(event_name))
        except TypeError:
            return False

    def _lookup_slow(self, event_name: Any) -> tuple[EventName, tuple[AttachedHandler, ...]]:
        name = check_event_name(event_name)
        routes = self._routes
        handlers = routes.get(name)
        if handlers is None:
            handlers = ()
            if type(event_name) is tuple and len(routes) < _MAX_CACHED_NAMES:
                # Losing this entry to a concurrent attach/detach only costs a re-check.
                routes[name] = ()
        return name, handlers

    def handler_failed(self, handler: AttachedHandler, event_name: EventName, exc: BaseException) -> None:
        """Apply the failure rules to ``handler``, which raised ``exc`` while handling ``event_name``.

        Detaches it (once, whatever the number of threads reporting it), logs the failure,
        executes the handler-failure event, and re-raises ``exc`` if it is an interrupt.
        For callers that run the handlers of :meth:`handlers_for` themselves.
        """
        with self._lock:
            removed = self._remove_locked(handler.id, handler)
        if removed:
            # Only the thread that detached the handler reports it: once, whatever the load.
            kind = "error" if isinstance(exc, Exception) else "exit"
            logger.error(
                "handler %r failed on event %s and has been detached: %s: %s",
                handler.id,
                format_event_name(event_name),
                type(exc).__name__,
                exc,
                exc_info=(type(exc), exc, exc.__traceback__),
            )
            self.execute(
                HANDLER_FAILURE,
                {"system_time": time.time_ns(), "monotonic_time": time.monotonic_ns()},
                {
                    "event_name": event_name,
                    "handler_id": handler.id,
                    "handler_config": handler.config,
                    "kind": kind,
                    "reason": exc,
                    "stacktrace": traceback.extract_tb(exc.__traceback__),
                },
            )
        if _is_interrupt(exc):
            raise exc

    # ------------------------------------------------------------------ span

    def span(
        self,
        event_prefix: Checked[EventName],
        start_metadata: Mapping[str, Any],
        function: Callable[[], Checked[tuple[Any, ...]]],
    ) -> Any:
        """Run ``function`` between ``prefix + ("start",)`` and ``("stop",)``/``("exception",)``.

        ``function`` returns ``(result, stop_metadata)`` or ``(result, extra_measurements,
        stop_metadata)``; ``result`` is returned. All three events carry the same
        ``telemetry_span_context`` (the one in ``start_metadata`` if given). Start
        measurements are ``system_time`` and ``monotonic_time``; stop measurements
        ``duration`` and ``monotonic_time`` plus the extra ones; exception metadata is the
        start metadata plus ``kind``, ``reason`` and ``stacktrace``, and the exception is
        re-raised.
        """
        prefix = check_event_name(event_prefix, what="event prefix")
        check_mapping(start_metadata, f"span({format_event_name(prefix)}): start_metadata={start_metadata!r}")
        check_callable(function, f"span({format_event_name(prefix)}): function={function!r}")
        ctx = start_metadata.get("telemetry_span_context")
        if ctx is None:
            ctx = new_span_context()
        start_meta = {**start_metadata, "telemetry_span_context": ctx}
        start_time = time.monotonic_ns()
        self.execute(prefix + ("start",), {"monotonic_time": start_time, "system_time": time.time_ns()}, start_meta)
        try:
            outcome = function()
            result, extra, stop_meta = _span_outcome(prefix, outcome)
        except BaseException as exc:
            stop_time = time.monotonic_ns()
            self.execute(
                prefix + ("exception",),
                {"duration": stop_time - start_time, "monotonic_time": stop_time},
                {
                    **start_meta,
                    "kind": "error" if isinstance(exc, Exception) else "exit",
                    "reason": exc,
                    "stacktrace": traceback.extract_tb(exc.__traceback__),
                },
            )
            raise
        stop_time = time.monotonic_ns()
        if "telemetry_span_context" not in stop_meta:
            stop_meta = {**stop_meta, "telemetry_span_context": ctx}
        self.execute(
            prefix + ("stop",),
            {**extra, "duration": stop_time - start_time, "monotonic_time": stop_time},
            stop_meta,
        )
        return result


def _span_outcome(prefix: EventName, outcome: Any) -> tuple[Any, Mapping[str, Any], Mapping[str, Any]]:
    if isinstance(outcome, tuple):
        if len(outcome) == 2 and isinstance(outcome[1], Mapping):
            return outcome[0], {}, outcome[1]
        if len(outcome) == 3 and isinstance(outcome[1], Mapping) and isinstance(outcome[2], Mapping):
            return outcome
    raise TypeError(
        f"span({format_event_name(prefix)}): the span function returned {outcome!r}; expected "
        "(result, stop_metadata) or (result, extra_measurements, stop_metadata) with mappings"
    )


default_dispatcher = Dispatcher("default")
"""The dispatcher behind the module-level functions."""

attach = default_dispatcher.attach
attach_many = default_dispatcher.attach_many
detach = default_dispatcher.detach
execute = default_dispatcher.execute
span = default_dispatcher.span
list_handlers = default_dispatcher.list_handlers
