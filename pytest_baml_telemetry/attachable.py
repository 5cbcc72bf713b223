"""The base of every ready-made handler: an object that attaches itself to a dispatcher.

:class:`AttachableHandler` gives the trackers and the metric reporters one way to attach
(``attach(dispatcher=None, prefix=None)``, ``detach()``, ``with handler:``) and a handler
id unique per instance, so two handlers of one kind never clash. A subclass says which
events it wants (:meth:`~AttachableHandler._event_names`, by default the call kinds in
``_kinds`` under the prefix) and handles them in :meth:`~AttachableHandler.handle`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping
from typing import Any

from ._validate import fail, short_repr
from .contract import DEFAULT_PREFIX, EventName, call_event_name, check_event_name
from .dispatcher import Dispatcher

__all__ = ["AttachableHandler"]

_handler_ids = itertools.count(1)


class AttachableHandler:
    """A handler that attaches itself to a :class:`~pytest_baml_telemetry.Dispatcher`.

    Subclasses implement :meth:`handle` and :meth:`_event_names`. The handler id is
    ``"pytest_baml_telemetry.<ClassName>-<n>"``, unique per instance.
    """

    _kinds: tuple[str, ...] = ("stop",)

    def __init__(self, *, dispatcher: Dispatcher | None = None, prefix: EventName = DEFAULT_PREFIX) -> None:
        if dispatcher is not None and not isinstance(dispatcher, Dispatcher):
            fail(TypeError, f"{type(self).__name__}(dispatcher={short_repr(dispatcher)})", "a Dispatcher or None")
        self._default_dispatcher = dispatcher
        self._default_prefix = check_event_name(prefix, what=f"{type(self).__name__} prefix")
        self._handler_id = f"pytest_baml_telemetry.{type(self).__name__}-{next(_handler_ids)}"
        self._attached_to: Dispatcher | None = None
        self._attach_lock = threading.Lock()

    @property
    def handler_id(self) -> str:
        """The id this instance attaches under (unique per instance)."""
        return self._handler_id

    @property
    def attached(self) -> bool:
        """Whether the handler is currently attached."""
        return self._attached_to is not None

    @property
    def dispatcher(self) -> Dispatcher | None:
        """The dispatcher it is attached to, or ``None``."""
        return self._attached_to

    def _event_names(self, prefix: EventName) -> list[EventName]:
        return [call_event_name(prefix, kind) for kind in self._kinds]

    def attach(self, dispatcher: Dispatcher | None = None, prefix: EventName | None = None) -> AttachableHandler:
        """Attach to ``dispatcher`` (default: the one given at construction, else the default
        dispatcher) for the call events under ``prefix``; return ``self``.

        Raises ``RuntimeError`` if this instance is already attached.
        """
        from .dispatcher import default_dispatcher

        if dispatcher is None:
            dispatcher = self._default_dispatcher if self._default_dispatcher is not None else default_dispatcher
        elif not isinstance(dispatcher, Dispatcher):
            fail(TypeError, f"{type(self).__name__}.attach(dispatcher={short_repr(dispatcher)})", "a Dispatcher or None")
        prefix = self._default_prefix if prefix is None else check_event_name(prefix, what="event prefix")
        with self._attach_lock:
            if self._attached_to is not None:
                raise RuntimeError(
                    f"{type(self).__name__} handler {self._handler_id!r} is already attached to "
                    f"{self._attached_to!r}; detach() it first"
                )
            dispatcher.attach_many(self._handler_id, self._event_names(prefix), self.handle, None)
            self._attached_to = dispatcher
        return self

    def detach(self) -> bool:
        """Detach; return ``False`` if it was not attached."""
        with self._attach_lock:
            dispatcher, self._attached_to = self._attached_to, None
        if dispatcher is None:
            return False
        return dispatcher.detach(self._handler_id)

    def __enter__(self) -> Any:
        if self._attached_to is None:
            self.attach()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.detach()

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        """The handler function (``(event_name, measurements, metadata, config)``)."""
        raise NotImplementedError
