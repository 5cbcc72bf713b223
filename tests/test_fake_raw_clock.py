"""Issue 13: merged partials (``respond(merge=True)``) and streams on the clock.

A fast model (or a consumer slower than the chunks) makes baml-py merge the queued partials
into one: the app bug the issue found (handling only ``partial.commands[-1]``) skips a
command then, and only a fake that merges shows it. A fake stream's duration includes the
time its consumer spends while holding it, as a real stream's does, but not the time other
tasks or threads spend on their own calls.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any

import pytest

from pytest_baml_telemetry import VirtualClock
from pytest_baml_telemetry.fake import AsyncFakeBamlClient, FakeBamlClient

pytestmark = pytest.mark.usefixtures("_quiet_baml")

S = 1_000_000_000
MS = 1_000_000

# each chunk completes at most one command (a Command is @@stream.done: it appears whole)
CHUNKS = [
    '{"title": "Trip", "commands": [',
    '{"action": "book", "target": "flight"}',
    ', {"action": "pack", "target": "bag"}',
    ', {"action": "call", "target": "taxi"}',
    '], "status": "ready"}',
]
ALL = [("book", "flight"), ("pack", "bag"), ("call", "taxi")]


def buggy_app(stream: Any, work: Any = None) -> list[tuple[str, str]]:
    """Runs, per partial, only the last command it shows (the issue's app bug)."""
    ran: list[tuple[str, str]] = []
    for partial in stream:
        if partial.commands:
            last = (partial.commands[-1].action, partial.commands[-1].target)
            if last not in ran:
                ran.append(last)
        if work is not None:
            work()
    stream.get_final_response()
    return ran


def correct_app(stream: Any, work: Any = None) -> list[tuple[str, str]]:
    """Runs every command it has not run yet."""
    ran: list[tuple[str, str]] = []
    for partial in stream:
        for command in partial.commands[len(ran):]:
            ran.append((command.action, command.target))
        if work is not None:
            work()
    stream.get_final_response()
    return ran


async def abuggy_app(stream: Any) -> list[tuple[str, str]]:
    ran: list[tuple[str, str]] = []
    async for partial in stream:
        if partial.commands:
            last = (partial.commands[-1].action, partial.commands[-1].target)
            if last not in ran:
                ran.append(last)
    await stream.get_final_response()
    return ran


async def acorrect_app(stream: Any) -> list[tuple[str, str]]:
    ran: list[tuple[str, str]] = []
    async for partial in stream:
        for command in partial.commands[len(ran):]:
            ran.append((command.action, command.target))
    await stream.get_final_response()
    return ran


# ---------------------------------------------------------------------------- merge=True


def test_a_slow_model_hides_the_bug(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=CHUNKS, chunk_latency="100ms", merge=True, reusable=True)
    assert buggy_app(fake.stream.MakePlan("trip", [])) == ALL  # one partial per command: no merge
    assert correct_app(fake.stream.MakePlan("trip", [])) == ALL


def test_a_fast_model_merges_partials_and_the_bug_skips_commands(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=CHUNKS, merge=True, reusable=True)  # latency 0: all queued at once
    buggy = buggy_app(fake.stream.MakePlan("trip", []))
    assert buggy == [("call", "taxi")]  # book and pack were never run
    assert correct_app(fake.stream.MakePlan("trip", [])) == ALL


def test_a_consumer_slower_than_the_chunks_gets_them_merged(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=CHUNKS, chunk_latency="100ms", merge=True, reusable=True)

    def work() -> None:  # handling a partial takes 250 ms of the shared clock
        fake.clock.advance("250ms")

    assert buggy_app(fake.stream.MakePlan("trip", []), work) == [("pack", "bag"), ("call", "taxi")]
    assert correct_app(fake.stream.MakePlan("trip", []), work) == ALL


def test_without_merge_every_partial_is_yielded_even_to_a_slow_consumer(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=CHUNKS, chunk_latency="100ms")
    assert buggy_app(fake.stream.MakePlan("trip", []), lambda: fake.clock.advance("250ms")) == ALL


@pytest.mark.parametrize("which", ["async_b", "async_module"])
def test_merging_on_an_async_fake(typed_client, typed_async_client, which):
    b = typed_client.async_b if which == "async_b" else typed_async_client.module.b
    fake = AsyncFakeBamlClient(spec=b)
    fake.respond("MakePlan", chunks=CHUNKS, merge=True, reusable=True)
    assert asyncio.run(abuggy_app(fake.stream.MakePlan("trip", []))) == [("call", "taxi")]
    assert asyncio.run(acorrect_app(fake.stream.MakePlan("trip", []))) == ALL


def test_merge_with_scripted_partials():
    fake = FakeBamlClient()
    fake.respond("Say", "abcd", partials=["a", "ab", "abc"], chunk_latency=["1s", "0s", "1s"], merge=True)
    stream = fake.stream.Say(x=1)
    assert list(stream) == ["ab", "abc"]  # a and ab arrive at the same instant: one partial
    assert stream.get_final_response() == "abcd"
    assert fake.calls[0].duration_ns == 2 * S


def test_merge_must_be_a_bool():
    with pytest.raises(TypeError, match=r"merge=1"):
        FakeBamlClient().respond("Say", "x", merge=1)


# ---------------------------------------------------------------------------- consumer time


def test_the_consumers_time_between_chunks_counts_in_the_duration(tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter)
    fake.respond("Say", "abc", partials=["a", "ab", "abc"], latency="4s")  # partials at 1, 2, 3 s
    stream = fake.stream.Say(x=1)
    for _ in stream:
        fake.clock.advance("2s")  # the app works 2 s on each partial
    assert stream.get_final_response() == "abc"
    (call,) = capture.calls
    assert call.time_to_first_chunk == 1 * S  # the scripted first-chunk latency
    assert call.duration == 7 * S  # 1 s + 3 x 2 s of the consumer's work (past the 4 s latency)
    assert fake.calls[0].duration_ns == 7 * S


def test_a_consumer_quicker_than_the_model_keeps_the_scripted_duration(tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter)
    fake.respond("Say", "abc", partials=["a", "ab", "abc"], latency="4s")
    stream = fake.stream.Say(x=1)
    for _ in stream:
        fake.clock.advance("500ms")
    stream.get_final_response()
    (call,) = capture.calls
    assert (call.time_to_first_chunk, call.duration) == (1 * S, 4 * S)


def test_the_consumers_other_fake_calls_count(tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter)
    fake.respond("Say", "ab", partials=["a", "ab"], latency="3s")  # partials at 1, 2 s
    fake.respond("Tool", "done", latency="5s")
    stream = fake.stream.Say(x=1)
    for partial in stream:
        if partial == "a":
            fake.Tool(y=1)  # a tool call made while the stream is held
    stream.get_final_response()
    say, tool = sorted(capture.calls, key=lambda c: c.function_name)
    assert tool.duration == 5 * S
    assert say.duration == 6 * S and say.time_to_first_chunk == 1 * S


def test_time_before_reading_counts_too(tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter)
    fake.respond("Say", "ab", partials=["a", "ab"], latency="3s")
    stream = fake.stream.Say(x=1)
    fake.clock.advance("10s")  # the app reads the stream late: what was sent is waiting
    assert list(stream) == ["a", "ab"]
    stream.get_final_response()
    (call,) = capture.calls
    assert call.duration == 10 * S  # as the emitter's wrapper measures a real stream read late
    assert call.time_to_first_chunk == 10 * S


def test_concurrent_async_streams_keep_their_own_durations(tel):
    """Task A's tool call (8 s) between its partials counts for A's stream, not for B's."""
    emitter, capture = tel
    clock = VirtualClock()
    fake = AsyncFakeBamlClient(emitter=emitter, clock=clock)
    fake.respond("A", "a", partials=["a1", "a2"], latency="3s")
    fake.respond("B", "b", partials=["b1", "b2"], latency="6s")
    fake.respond("Tool", "t", latency="8s")

    async def consume_a() -> None:
        stream = fake.stream.A(x=1)
        async for partial in stream:
            if partial == "a1":
                await fake.Tool(y=1)
        await stream.get_final_response()

    async def consume_b() -> None:
        stream = fake.stream.B(x=1)
        async for _ in stream:
            pass
        await stream.get_final_response()

    async def main() -> None:
        await asyncio.gather(consume_a(), consume_b())

    asyncio.run(main())
    calls = {c.function_name: c for c in capture.calls}
    assert calls["B"].duration == 6 * S  # not B's consumer's tool call
    assert calls["Tool"].duration == 8 * S
    # A's stream was held through the tool call: it ends when the tool call has ended (the tool
    # call started where the shared clock stood, which B's stream had taken to 3 s)
    end = {name: c.end.measurements["monotonic_time"] for name, c in calls.items()}
    assert end["A"] == end["Tool"] and calls["A"].duration > 9 * S
    assert calls["A"].time_to_first_chunk == 1 * S


def test_concurrent_threads_keep_their_own_durations(tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter)
    fake.respond("Main", "m", partials=["m1", "m2"], latency="3s")
    fake.respond("Other", "o", latency="20s")
    stream = fake.stream.Main(x=1)
    it = iter(stream)
    assert next(it) == "m1"
    worker = threading.Thread(target=lambda: fake.Other(y=1))
    worker.start()
    worker.join()
    assert list(it) == ["m2"]
    stream.get_final_response()
    durations = {c.function_name: c.duration for c in capture.calls}
    assert durations == {"Main": 3 * S, "Other": 20 * S}


class ReadOnlyClock:
    """A clock the fake can read but not advance."""

    def __init__(self) -> None:
        self.now = 1_000 * S

    def time_ns(self) -> int:
        return self.now

    def monotonic_ns(self) -> int:
        return self.now


def test_a_clock_the_fake_cannot_advance_adds_no_consumer_time(tel):
    emitter, capture = tel
    clock = ReadOnlyClock()
    fake = FakeBamlClient(emitter=emitter, clock=clock)
    fake.respond("Say", "ab", partials=["a", "ab"], latency="3s")
    stream = fake.stream.Say(x=1)
    for _ in stream:
        clock.now += 5 * S
    stream.get_final_response()
    (call,) = capture.calls
    assert call.duration == 3 * S


def test_a_closed_stream_stops_counting(tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter)
    fake.respond("Say", "ab", partials=["a", "ab"], latency="3s")
    fake.respond("Say", "ab", partials=["a", "ab"], latency="3s")
    first = fake.stream.Say(x=1)
    assert next(iter(first)) == "a"
    first.close()
    second = fake.stream.Say(x=2)
    list(second)
    second.get_final_response()
    timeline = fake._shared.timeline
    assert len(timeline._streams) == 0  # neither stream is counted any more
    assert fake.calls[1].duration_ns == 3 * S
    fake.respond("Say", "ab", partials=["a", "ab"], latency="3s")
    dropped = fake.stream.Say(x=3)
    assert next(iter(dropped)) == "a"
    assert len(timeline._streams) == 1
    del dropped
    gc.collect()
    assert len(timeline._streams) == 0  # a stream dropped unread is forgotten too
