"""Routing a whole generated client at the fake server: ``FakeLLMServer.route(b)``.

(Being built for issue 14: :func:`client_registry_for` and :func:`route` are the entry points
``FakeLLMServer.route`` / ``client_registry_for`` delegate to.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import baml_py

    from .server import FakeLLMServer

__all__ = ["client_registry_for", "route"]


def client_registry_for(server: FakeLLMServer, client: Any) -> baml_py.ClientRegistry:
    """A ``ClientRegistry`` pointing every client declared in ``client``'s .baml sources at ``server``."""
    raise NotImplementedError("FakeLLMServer.client_registry_for is being built (issue 14)")


def route(server: FakeLLMServer, client: Any) -> Any:
    """``client`` (sync, async or instrumented) with every declared client pointed at ``server``."""
    raise NotImplementedError("FakeLLMServer.route is being built (issue 14)")
