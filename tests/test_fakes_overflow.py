"""No overflow in the fakes and the capture: every duration is range-checked where it is taken.

Each entry point gives a ``ValueError`` naming its key and the value for a duration beyond
``contract.MAX_NATIVE`` (``1e300``, ``10**30``, ``"999...9s"``, ``inf``, ``10**400``),
never a bare ``OverflowError``. A latency that would carry a call's clock past the native
range fails the call with a clear error and valid, paired events. ``wait_for`` and
``await_for`` take an "effectively infinite" timeout and return at once when the event is
already there.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter, faults
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.fake import FakeBamlClient
from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.modular import openai_error_response

HUGE = [
    (10**30, "1000000000000000000000000000000"),
    (1e300, "1e+300"),
    ("9" * 40 + "s", "'" + "9" * 40 + "s'"),
    (math.inf, "inf"),
    (10**400, "<int of about 401 digits>"),
]

ENTRY_POINTS = [
    ("respond(latency=)", lambda v: FakeBamlClient().respond("A", 1, latency=v), "respond('A'): latency="),
    ("respond(chunk_latency=)", lambda v: FakeBamlClient().respond("A", 1, partials=[1], chunk_latency=v), "chunk_latency="),
    ("respond(chunk_latency=[])", lambda v: FakeBamlClient().respond("A", 1, partials=[1], chunk_latency=[v]), "chunk_latency[0]="),
    ("fail(latency=)", lambda v: FakeBamlClient().fail("A", "timeout", latency=v), "fail('A'): latency="),
    ("faults.timeout(after=)", lambda v: faults.timeout(after=v), "faults.timeout(): after="),
    ("faults.abort(after=)", lambda v: faults.abort(after=v), "faults.abort(): after="),
    ("faults.http_error(retry_after=)", lambda v: faults.http_error(503, retry_after=v), "faults.http_error(): retry_after="),
    ("faults.rate_limited(retry_after=)", lambda v: faults.rate_limited(retry_after=v), "faults.rate_limited(): retry_after="),
    ("faults.rate_limited(after=)", lambda v: faults.rate_limited(after=v), "faults.rate_limited(): after="),
    ("FakeLLMServer.respond(latency=)", lambda v: FakeLLMServer().respond("x", latency=v), "FakeLLMServer.respond: latency="),
    ("FakeLLMServer.respond(chunk_delay=)", lambda v: FakeLLMServer().respond("x", chunk_delay=v), "FakeLLMServer.respond: chunk_delay="),
    ("FakeLLMServer.fail(retry_after=)", lambda v: FakeLLMServer().fail(429, retry_after=v), "FakeLLMServer.fail: retry_after="),
    ("FakeLLMServer.fail(latency=)", lambda v: FakeLLMServer().fail(429, latency=v), "FakeLLMServer.fail: latency="),
    ("FakeLLMServer.hang()", lambda v: FakeLLMServer().hang(v), "FakeLLMServer.hang: seconds="),
]


@pytest.mark.parametrize(("value", "shown"), HUGE, ids=[s[:12] for _, s in HUGE])
@pytest.mark.parametrize(("label", "enter", "key"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
def test_a_duration_beyond_the_native_range_is_a_value_error_naming_key_and_value(label, enter, key, value, shown) -> None:
    with pytest.raises(ValueError) as info:
        enter(value)
    assert not isinstance(info.value, OverflowError)
    text = str(info.value)
    assert key + shown in text, text


@pytest.mark.parametrize(("value", "shown"), [(10**30, "1000000000000000000000000000000"), (10**400, "<int of about 401 digits>")])
def test_modular_retry_after_is_bounded(value, shown) -> None:
    with pytest.raises(ValueError, match="openai_error_response: retry_after=") as info:
        openai_error_response(429, retry_after=value)
    assert shown in str(info.value) and "whole seconds, an int from 0 to 9223372036" in str(info.value)
    assert openai_error_response(429, retry_after=9_223_372_036).headers["Retry-After"] == "9223372036"


def test_partials_that_add_up_beyond_the_native_range_are_refused_when_scripted() -> None:
    longest = 9_223_372_036
    with pytest.raises(ValueError, match=r"respond\('A'\): chunk_latency=\[9223372036, 9223372036\] adds up to"):
        FakeBamlClient().respond("A", 1, partials=[1, 2], chunk_latency=[longest, longest])


def test_a_latency_past_the_clocks_range_fails_the_call_with_valid_paired_events() -> None:
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher))
    fake.respond("Slow", 1, latency=9_223_372_036)  # accepted: within MAX_NATIVE on its own
    with pytest.raises(ValueError, match="past contract.MAX_NATIVE on the fake's clock; expected at most 7456146437s"):
        fake.Slow()
    assert [e.kind for e in capture.events] == ["start", "exception"]
    capture.check()  # every event is valid and paired
    assert fake.clock.elapsed_ns == 0


def test_a_stream_past_the_clocks_range_fails_with_valid_events() -> None:
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher))
    fake.respond("Slow", 1, partials=[1], latency=9_223_372_036)
    stream = fake.stream.Slow()
    with pytest.raises(ValueError, match="past contract.MAX_NATIVE"):
        list(stream)
        stream.get_final_response()
    capture.check()


# --------------------------------------------------------------------------- wait_for / await_for


def _stopped(dispatcher: Dispatcher) -> None:
    with Emitter(dispatcher=dispatcher).call("Done", arguments={}):
        pass


@pytest.mark.parametrize("timeout", [1e300, 10**30, 10**400, math.inf, "9" * 40 + "s"])
def test_wait_for_an_effectively_infinite_timeout_returns_at_once_when_the_event_is_there(timeout) -> None:
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    _stopped(dispatcher)
    started = time.monotonic()
    (found,) = capture.wait_for("stop", timeout=timeout)
    assert found.function_name == "Done" and time.monotonic() - started < 5


def test_wait_for_an_infinite_timeout_waits_for_an_event_from_another_thread() -> None:
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    timer = threading.Timer(0.05, _stopped, args=(dispatcher,))
    timer.start()
    try:
        assert len(capture.wait_for("stop", timeout=1e300)) == 1
    finally:
        timer.join()


@pytest.mark.parametrize("timeout", [1e300, math.inf])
def test_await_for_an_effectively_infinite_timeout(timeout) -> None:
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()

    async def main() -> None:
        _stopped(dispatcher)
        assert len(await capture.await_for("stop", timeout=timeout)) == 1
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, _stopped, dispatcher)
        assert len(await capture.await_for("stop", timeout=timeout, count=2)) == 2

    asyncio.run(main())


@pytest.mark.parametrize(
    ("timeout", "error", "shown"),
    [(-1, ValueError, "timeout=-1 is negative"), (math.nan, ValueError, "timeout=nan"), ("later", ValueError, "timeout='later'"),
     (None, TypeError, "timeout=None"), (True, TypeError, "timeout=True")],
)
def test_wait_for_still_refuses_what_is_not_a_timeout(timeout, error, shown) -> None:
    capture = EventCapture(dispatcher=Dispatcher()).attach()
    with pytest.raises(error, match="timeout=") as info:
        capture.wait_for("stop", timeout=timeout)
    assert shown in str(info.value)

    async def main() -> None:
        await capture.await_for("stop", timeout=timeout)

    with pytest.raises(error, match="timeout="):
        asyncio.run(main())
