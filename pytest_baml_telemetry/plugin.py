"""pytest wiring: options, markers and fixtures. Behaviour lives in the other modules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest

from .capture import EventCapture
from .clock import VirtualClock
from .contract import DEFAULT_PREFIX

_EVENTS_KEY = pytest.StashKey["tuple[EventCapture, dict[str, Any]]"]()

MARKERS = {
    "baml_events": (
        "baml_events(validate=True, allow_handler_failures=False, context=False): options of the "
        "baml_events fixture; closest scope wins per option"
    ),
    "baml_fake": (
        "baml_fake(assert_all_used=True, real_sleep=False): options of the baml_fake fixture; "
        "closest scope wins per option"
    ),
    "baml_budget": (
        "baml_budget(p50=..., p95=..., max_calls=..., max_cost_usd=..., function=..., model=..., ...): "
        "a performance budget over the BAML calls of this test; several markers stack"
    ),
}

_EVENTS_DEFAULTS = {"validate": True, "allow_handler_failures": False, "context": False}


def marker_options(node: pytest.Item, name: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """Merge the keyword options of every ``name`` marker on ``node``, closest scope winning.

    Unknown options and positional arguments raise ``TypeError`` naming them.
    """
    options: dict[str, Any] = {}
    for marker in node.iter_markers(name):  # closest first
        if marker.args:
            raise TypeError(
                f"@pytest.mark.{name}{marker.args!r}: positional arguments are not accepted; "
                f"expected keyword options among {sorted(defaults)}"
            )
        for key, value in marker.kwargs.items():
            if key not in defaults:
                raise TypeError(
                    f"@pytest.mark.{name}({key}={value!r}): unknown option {key!r}; expected one of {sorted(defaults)}"
                )
            options.setdefault(key, value)
    merged = {**defaults, **options}
    for key, default in defaults.items():
        if isinstance(default, bool) and not isinstance(merged[key], bool):
            raise TypeError(f"@pytest.mark.{name}({key}={merged[key]!r}): expected True or False")
    return merged


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    entry = item.stash.get(_EVENTS_KEY, None)
    if entry is not None:
        capture, options = entry
        message = None
        try:
            capture.check(validate=options["validate"], allow_handler_failures=options["allow_handler_failures"])
        except AssertionError as exc:
            message = str(exc)
        if message is not None:
            pytest.fail(message, pytrace=False)
    return result


@pytest.fixture
def baml_events(request: pytest.FixtureRequest) -> Iterator[EventCapture]:
    """The start/stop/exception events (default prefix) and handler failures of this test.

    After the test body, the capture is validated against the contract and the pairing
    of starts with stops/exceptions; a violation or a handler failure fails the test
    unless ``@pytest.mark.baml_events(validate=False)`` /
    ``(allow_handler_failures=True)`` relaxes it.
    """
    options = marker_options(request.node, "baml_events", _EVENTS_DEFAULTS)
    capture = EventCapture(
        prefix=DEFAULT_PREFIX,
        context=options["context"],
        virtual_clock="baml_clock" in request.fixturenames,
    )
    capture.attach()
    request.node.stash[_EVENTS_KEY] = (capture, options)
    try:
        yield capture
    finally:
        capture.detach()


@pytest.fixture
def baml_capture(request: pytest.FixtureRequest) -> Iterator[Callable[..., EventCapture]]:
    """A factory of captures (the analogue of ``:telemetry_test.attach_event_handlers``).

    ``baml_capture(events=None, *, prefix=("ash_baml",), dispatcher=None, context=False)``
    attaches an :class:`EventCapture` to the given event names (tuples, dotted strings or
    ``"start"``/``"stop"``/``"exception"``), or to the call events of ``prefix``; every
    capture is detached at teardown, also when the test fails.
    """
    made: list[EventCapture] = []
    virtual = "baml_clock" in request.fixturenames

    def factory(events: Any = None, *, prefix: Any = DEFAULT_PREFIX, dispatcher: Any = None, context: bool = False) -> EventCapture:
        capture = EventCapture(events, prefix=prefix, dispatcher=dispatcher, context=context, virtual_clock=virtual)
        capture.attach()
        made.append(capture)
        return capture

    try:
        yield factory
    finally:
        for capture in made:
            capture.detach()


@pytest.fixture
def baml_clock() -> "VirtualClock":
    """A :class:`VirtualClock` for this test: scripted latency advances it, nothing sleeps."""
    from .clock import VirtualClock

    return VirtualClock()
