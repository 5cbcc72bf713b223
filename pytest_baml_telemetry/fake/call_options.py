"""The real client's call options on the fake: which it honours, which it refuses, and why.

``with_options(...)`` and ``baml_options={...}`` take the options of baml-py's generated
client. The fake records ``client`` and ``tags`` (see :mod:`.client`); the others it cannot
honour raise ``NotImplementedError`` naming the option, never ignored silently, and
``on_tick`` on a sync client raises baml-py 0.226.3's own ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._validate import check_mapping, fail, short_repr

__all__ = ["OPTION_CHECKED", "SYNC_ON_TICK", "UNSUPPORTED_OPTIONS", "check_baml_options", "check_call_options"]

# Options of the real client the fake cannot honour: a call given one raises NotImplementedError
# (never ignores it silently). Why, per option:
UNSUPPORTED_OPTIONS = {
    "tb": "a TypeBuilder changes the function's output types at run time, which the fake does not model",
    "collector": "the fake cannot fill a baml_py.Collector with real FunctionLogs; read the events instead",
    "client_registry": "the fake resolves no clients; name one with with_options(client=...)",
    "env": "the fake resolves no client options from the environment",
}
OPTION_CHECKED = frozenset(UNSUPPORTED_OPTIONS) | {"on_tick", "tags"}
SYNC_ON_TICK = "on_tick is not supported for sync streams. Please use async streams instead."


def check_call_options(name: str, options: Mapping[str, Any], is_async: bool) -> None:
    """Refuse the options a call cannot honour (see ``with_options``); check ``tags``."""
    for key, why in UNSUPPORTED_OPTIONS.items():
        if options.get(key) is not None:
            raise NotImplementedError(f"{name}(baml_options={{{key!r}: ...}}): the fake {why}")
    if options.get("on_tick") is not None:
        if not is_async:
            raise ValueError(SYNC_ON_TICK)  # baml-py 0.226.3's sync client, calls and streams alike
        raise NotImplementedError(
            f"{name}(on_tick=...): the fake does not call on_tick (baml-py calls it with the "
            "runtime's own FunctionLog, which the fake cannot build)"
        )
    tags = options.get("tags")
    if tags is not None and not isinstance(tags, Mapping):
        check_mapping(tags, f"{name}(baml_options={{'tags': {short_repr(tags)}}})", expected="a dict of str or None")


def check_baml_options(collector: Any, client_registry: Any) -> None:
    """Type-check ``collector``/``client_registry`` as baml-py's runtime does (it panics on others)."""
    if collector is None and client_registry is None:
        return
    import baml_py

    expected = "a baml_py.Collector, a list of them, or None"
    if collector is not None and not isinstance(collector, baml_py.Collector):
        if not isinstance(collector, list):
            fail(TypeError, f"with_options(collector={short_repr(collector)})", expected)
        for item in collector:
            if not isinstance(item, baml_py.Collector):
                fail(TypeError, f"with_options(collector={short_repr(collector)}): item {short_repr(item)}", expected)
    if client_registry is not None and not isinstance(client_registry, baml_py.ClientRegistry):
        fail(TypeError, f"with_options(client_registry={short_repr(client_registry)})", "a baml_py.ClientRegistry or None")
