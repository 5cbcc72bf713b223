"""The fake honours baml_options={"abort_controller": c} (issue 12): a controller aborted
before the call, or while the call is in flight, raises BamlAbortError with the message
the real runtime gives at that moment (checked here against baml-py on FakeLLMServer)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import baml_py
import pytest
from baml_py import errors

from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock, validate_stream
from pytest_baml_telemetry.fake import FakeBamlClient, faults
from pytest_baml_telemetry.instrument import instrument

MS = 1_000_000
PREFIX = ("ash_baml", "call")
BEFORE, IN_FLIGHT = "Operation was aborted", "AbortError"  # what baml-py 0.226.3 raises (see the last tests)


class Events:
    def __init__(self) -> None:
        self.dispatcher = Dispatcher()
        self.items: list[Any] = []
        self.dispatcher.attach_many(
            "all", [PREFIX + (k,) for k in ("start", "stop", "exception")], lambda n, m, md, _c: self.items.append((n, m, md))
        )

    def ends(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        validate_stream(self.items)
        return [(n[-1], m, md) for n, m, md in self.items if n[-1] != "start"]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def fake(events: Events) -> FakeBamlClient:
    return FakeBamlClient(
        emitter=Emitter(dispatcher=events.dispatcher), clock=VirtualClock(), model="gpt-4o", provider="openai",
        client_name="Main",
    )


def aborted() -> baml_py.AbortController:
    controller = baml_py.AbortController()
    controller.abort()
    return controller


def test_aborted_before_the_call_nothing_was_attempted(fake, events):
    fake.respond("Hello", "hi", usage=(5, 1))
    with pytest.raises(errors.BamlAbortError) as info:
        fake.Hello(baml_options={"abort_controller": aborted()})
    assert str(info.value) == BEFORE
    stream = fake.stream.Hello(baml_options={"abort_controller": aborted()})
    assert list(stream) == []
    with pytest.raises(errors.BamlAbortError, match=f"^{BEFORE}$"):
        stream.get_final_response()
    for kind, m, md in events.ends():  # as the real runtime: no attempt, nothing known but that nothing was sent
        assert kind == "exception"
        assert (md["model"], md["provider"], md["client_name"], md["num_attempts"], md["request_id"]) == (None,) * 5
        assert (m["input_tokens"], m["output_tokens"]) == (0, 0)  # as instrument(b) bills it: $0
    assert fake.Hello() == "hi"  # the scripted outcome was not used


def test_aborted_by_another_task_while_in_flight(fake, events):
    afake = fake.as_async()
    afake.respond("Hello", "hi", usage=(5, 1), latency="10s")
    controller = baml_py.AbortController()

    async def main() -> None:
        call = asyncio.ensure_future(afake.Hello(baml_options={"abort_controller": controller}))
        await asyncio.sleep(0)  # the call has started
        controller.abort()
        with pytest.raises(errors.BamlAbortError) as info:
            await call
        assert str(info.value) == IN_FLIGHT

    asyncio.run(main())
    ((kind, m, md),) = events.ends()
    assert kind == "exception"
    assert (md["model"], md["client_name"], md["num_attempts"], md["request_id"]) == ("gpt-4o", "Main", 1, "fake-req-1")
    assert m["input_tokens"] is None  # billing unknown: the scripted usage is not reported
    assert fake.unused() == []  # the call used its outcome
    assert isinstance(fake.calls[0].error, errors.BamlAbortError)


def test_aborted_as_virtual_time_advances_in_an_async_call(fake, events):
    afake = fake.as_async()
    afake.respond("Hello", "hi", latency="10s")
    afake.respond("Hello", "hi", latency="1s")
    controller = baml_py.AbortController()

    async def watchdog() -> None:  # aborts once the clock shows the short call ended
        while fake.clock.elapsed_ns < 1_000_000_000:
            await asyncio.sleep(0)
        controller.abort()

    async def main() -> list[Any]:
        options = {"abort_controller": controller}
        return await asyncio.gather(
            afake.Hello(baml_options=options), afake.Hello(), watchdog(), return_exceptions=True
        )

    slow, quick, _ = asyncio.run(main())
    assert quick == "hi"
    assert isinstance(slow, errors.BamlAbortError) and str(slow) == IN_FLIGHT


def test_aborted_from_another_thread_while_sleeping_for_real(events):
    fake = FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher), real_sleep=True)
    fake.respond("Hello", "hi", latency="300ms")
    controller = baml_py.AbortController()
    timer = threading.Timer(0.05, controller.abort)
    timer.start()
    with pytest.raises(errors.BamlAbortError, match=f"^{IN_FLIGHT}$"):
        fake.Hello(baml_options={"abort_controller": controller})
    timer.join()
    ((kind, m, _),) = events.ends()
    assert (kind, m["duration"]) == ("exception", 300 * MS)


def test_a_stream_aborted_while_read_ends_quietly_and_its_final_response_raises(fake, events):
    fake.respond("Hello", "hi there", partials=["h", "hi", "hi t"], latency="400ms", usage=(5, 2))
    controller = baml_py.AbortController()
    stream = fake.stream.Hello(baml_options={"abort_controller": controller})
    seen = []
    for partial in stream:
        seen.append(partial)
        if partial == "hi":
            controller.abort()
    assert seen == ["h", "hi"]  # as baml-py: the iteration ends, no error
    with pytest.raises(errors.BamlAbortError, match=f"^{IN_FLIGHT}$"):
        stream.get_final_response()
    ((kind, m, md),) = events.ends()
    assert kind == "exception"
    assert m["duration"] == 200 * MS  # noticed at once: the second partial's time, no later one waited for
    assert m["input_tokens"] is None and md["request_id"] == "fake-req-1"


def test_an_async_stream_aborted_before_its_final_response(fake, events):
    afake = fake.as_async()
    afake.respond("Hello", "hi", partials=["h"], latency="200ms")
    controller = baml_py.AbortController()

    async def main() -> None:
        stream = afake.stream.Hello(baml_options={"abort_controller": controller})
        async for partial in stream:  # the last partial: the stream's end is read right after it
            assert partial == "h"
            controller.abort()
        with pytest.raises(errors.BamlAbortError, match=f"^{IN_FLIGHT}$"):
            await stream.get_final_response()

    asyncio.run(main())
    ((kind, m, _),) = events.ends()
    assert (kind, m["duration"]) == ("exception", 100 * MS)


def test_a_stream_read_to_its_end_is_no_longer_in_flight(fake, events):
    fake.respond("Hello", "hi", partials=["h"], latency="200ms")
    controller = baml_py.AbortController()
    stream = fake.stream.Hello(baml_options={"abort_controller": controller})
    assert list(stream) == ["h"]  # reading to the end also reads the final response
    controller.abort()
    assert stream.get_final_response() == "hi"
    assert [kind for kind, _, _ in events.ends()] == ["stop"]


def test_a_controller_aborted_after_the_call_changes_nothing(fake, events):
    fake.respond("Hello", "hi", reusable=True)
    controller = baml_py.AbortController()
    assert fake.Hello(baml_options={"abort_controller": controller}) == "hi"
    controller.abort()
    assert [kind for kind, _, _ in events.ends()] == ["stop"]
    fake.fail("Other", faults.timeout(after="1s"))
    with pytest.raises(errors.BamlTimeoutError):  # a scripted failure is raised as it is
        fake.Other(baml_options={"abort_controller": baml_py.AbortController()})


@pytest.mark.usefixtures("_quiet_baml")
def test_the_real_runtime_raises_the_same(generated_client, server, events):
    """The oracle: baml-py on FakeLLMServer, aborted before the call and in flight."""
    real = instrument(generated_client.b, emitter=Emitter(dispatcher=events.dispatcher)).with_options(
        client_registry=server.client_registry("TestClient")
    )
    server.respond("hi")
    with pytest.raises(errors.BamlAbortError) as before:
        real.SayHello("Bo", baml_options={"abort_controller": aborted()})
    server.reset()
    server.respond("hi", latency="2s")
    controller = baml_py.AbortController()
    timer = threading.Timer(0.2, controller.abort)
    timer.start()
    with pytest.raises(errors.BamlAbortError) as in_flight:
        real.SayHello("Bo", baml_options={"abort_controller": controller})
    timer.join()
    server.reset()
    assert (type(before.value), str(before.value)) == (errors.BamlAbortError, BEFORE)
    assert (type(in_flight.value), str(in_flight.value)) == (errors.BamlAbortError, IN_FLIGHT)
    (_, _, before_md), (_, _, flight_md) = events.ends()
    assert (before_md["client_name"], before_md["num_attempts"], before_md["request_id"]) == (None, None, None)
    assert (flight_md["client_name"], flight_md["num_attempts"]) == ("TestClient", 1)


@pytest.mark.usefixtures("_quiet_baml")
def test_the_real_runtime_ends_an_aborted_streams_iteration_quietly(generated_client, server):
    """The oracle for streams: abort while reading, the loop ends, the final response raises."""
    real = generated_client.b.with_options(client_registry=server.client_registry("TestClient"))
    server.respond("hello there my friend", chunks=4, chunk_delay="200ms")
    controller = baml_py.AbortController()
    stream = real.stream.SayHello("Bo", baml_options={"abort_controller": controller})
    seen = []
    for partial in stream:
        seen.append(partial)
        controller.abort()
    with pytest.raises(errors.BamlAbortError) as info:
        stream.get_final_response()
    server.reset()
    assert 1 <= len(seen) < 4 and str(info.value) == IN_FLIGHT  # a partial already received may still come
