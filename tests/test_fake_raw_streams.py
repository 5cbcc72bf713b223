"""Issue 13, streams of raw text: a fake stream's partials are baml-py's partial parser's.

``respond(fn, raw=..., chunks=[...])`` parses the text so far after each chunk with the
spec's ``b.parse_stream.<fn>``. The oracle is the real typed client streaming the same
chunks from ``FakeLLMServer``: with slow chunks baml-py yields one partial per chunk that
changes the parsed value, and the fake's partials must equal the real ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_baml_telemetry.fake import AsyncFakeBamlClient, FakeBamlClient
from pytest_baml_telemetry.wire.common import split_content

pytestmark = pytest.mark.usefixtures("_quiet_baml")

PLAN = '{"title": "Trip", "commands": [{"action": "book", "target": "flight"}, {"action": "pack", "target": "bag"}], "status": "ready"}'
CHUNKS = [
    '{"title": "Trip", ',
    '"commands": [',
    '{"action": "book", "target": "flight"}',
    ', {"action": "pack", ',
    '"target": "bag"}',
    '], "status": "rea',
    'dy"}',
]
SLOW = 0.25  # seconds between real chunks: slow enough that baml-py yields one partial per chunk


def dump(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def real_partials(server, b, chunks: list[str], *, delay: float = SLOW, is_async: bool = False) -> tuple[list[Any], Any]:
    server.respond(PLAN, chunks=chunks, chunk_delay=delay)
    client = b.with_options(client_registry=server.client_registry("TypedClient"))
    if is_async:
        async def run() -> tuple[list[Any], Any]:
            s = client.stream.MakePlan("trip", ["cheap"])
            seen = [dump(p) async for p in s]
            return seen, dump(await s.get_final_response())

        return asyncio.run(run())
    s = client.stream.MakePlan("trip", ["cheap"])
    seen = [dump(p) for p in s]
    return seen, dump(s.get_final_response())


def is_subsequence(part: list[Any], whole: list[Any]) -> bool:
    it = iter(whole)
    return all(any(x == y for y in it) for x in part)


def real_unmerged(server, b, chunks: list[str], fake_seen: list[Any], *, delay: float = SLOW, is_async: bool = False) -> tuple[list[Any], Any]:
    """The real stream's partials from a run where baml-py merged none (up to 6 tries: on a busy
    machine the runtime sometimes reads two slow chunks at once and yields one partial for them).
    Every run's partials must be the fake's with some merged away, never others."""
    for _ in range(6):
        real, final = real_partials(server, b, chunks, delay=delay, is_async=is_async)
        assert is_subsequence(real, fake_seen), (real, fake_seen)
        if len(real) == len(fake_seen):
            return real, final
    return real, final


def fake_partials(fake, *, is_async: bool = False) -> tuple[list[Any], Any]:
    if is_async:
        async def run() -> tuple[list[Any], Any]:
            s = fake.stream.MakePlan("trip", ["cheap"])
            seen = [dump(p) async for p in s]
            return seen, dump(await s.get_final_response())

        return asyncio.run(run())
    s = fake.stream.MakePlan("trip", ["cheap"])
    seen = [dump(p) for p in s]
    return seen, dump(s.get_final_response())


# ---------------------------------------------------------------------------- parity


def test_partials_equal_the_real_sync_stream_for_slow_chunks(server, typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=CHUNKS, latency="2s")
    seen, final = fake_partials(fake)
    real, real_final = real_unmerged(server, typed_client.b, CHUNKS, seen)
    assert seen == real
    assert final == real_final
    # 7 chunks, 5 partials: '"commands": [' and a Command not yet complete (@@stream.done) change nothing
    assert len(real) == 5


@pytest.mark.parametrize("which", ["async_b", "async_module"])
def test_partials_equal_the_real_async_stream_for_slow_chunks(server, typed_client, typed_async_client, which):
    b = typed_client.async_b if which == "async_b" else typed_async_client.module.b
    fake = AsyncFakeBamlClient(spec=b)
    fake.respond("MakePlan", raw=PLAN, chunks=CHUNKS)
    seen, final = fake_partials(fake, is_async=True)
    real, real_final = real_unmerged(server, b, CHUNKS, seen, is_async=True)
    assert (seen, final) == (real, real_final)


def test_word_chunks_by_default_match_the_servers_default(server, typed_client):
    words = split_content(PLAN, None)  # what FakeLLMServer sends without chunks=
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", raw=PLAN)
    seen, _ = fake_partials(fake)
    real, _ = real_unmerged(server, typed_client.b, words, seen, delay=0.15)
    assert seen == real
    assert len(seen) < len(words)  # a chunk that changes nothing yields no partial, as in baml-py


def test_chunks_arriving_together_make_one_partial(server, typed_client):
    # the real server sends each group as one chunk: what the parser sees once they are queued
    groups = [CHUNKS[:2], CHUNKS[2:5], CHUNKS[5:]]
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=groups)
    seen, _ = fake_partials(fake)
    real, _ = real_unmerged(server, typed_client.b, ["".join(g) for g in groups], seen)
    assert seen == real and len(seen) == 3
    assert [len(p["commands"]) for p in seen] == [0, 2, 2]  # the two commands came together


def test_without_a_delay_the_real_runtime_merges_partials(server, typed_client):
    """Measured: with chunk_delay=0 baml-py drains the queued events and yields only the latest
    (one partial, sometimes two, for 7 chunks); merge=True with latency 0 yields the last one."""
    unmerged = FakeBamlClient(spec=typed_client.b)
    unmerged.respond("MakePlan", chunks=CHUNKS)
    every, _ = fake_partials(unmerged)
    real, real_final = real_partials(server, typed_client.b, CHUNKS, delay=0)
    assert len(real) < len(every) and is_subsequence(real, every)
    assert real[-1] == every[-1] and real[-1]["status"] == {"value": "ready", "state": "Complete"}
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", chunks=CHUNKS, merge=True)  # latency 0: every chunk queued at once
    assert fake_partials(fake) == ([real[-1]], real_final)


# ---------------------------------------------------------------------------- what the parser produces


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_stream_done_and_with_state_as_the_real_parser_produces_them(typed_client, is_async):
    fake = (AsyncFakeBamlClient if is_async else FakeBamlClient)(spec=typed_client.async_b if is_async else typed_client.b)
    fake.respond("MakePlan", chunks=list(PLAN))  # one chunk per character
    seen, final = fake_partials(fake, is_async=is_async)
    assert len(seen) > 5
    for partial in seen:
        assert partial["title"] in (None, "Trip")  # @stream.done: only once complete
        for command in partial["commands"]:  # @@stream.done: a Command appears only when complete
            assert command in ({"action": "book", "target": "flight"}, {"action": "pack", "target": "bag"})
        status = partial["status"]  # @stream.with_state: the value with its state
        assert set(status) == {"value", "state"}
        assert status["state"] in ("Pending", "Incomplete", "Complete")
        assert status["value"] is None or "ready".startswith(status["value"])
    states = [p["status"]["state"] for p in seen]
    assert states[0] == "Pending" and states[-1] == "Complete" and "Incomplete" in states
    assert [p["status"]["value"] for p in seen if p["status"]["state"] == "Incomplete"][-1] == "ready"
    assert [len(p["commands"]) for p in seen] == sorted(len(p["commands"]) for p in seen)
    assert final == {"title": "Trip", "commands": [{"action": "book", "target": "flight"}, {"action": "pack", "target": "bag"}], "status": "ready"}
    stream_types = typed_client.module.stream_types
    fake.respond("MakePlan", raw=PLAN)
    s = fake.stream.MakePlan("g", [])
    first = next(iter(s)) if not is_async else asyncio.run(s.__aiter__().__anext__())
    assert isinstance(first, stream_types.Plan)


def test_chunks_are_scheduled_not_partials(typed_client, tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter, spec=typed_client.b)
    # chunks 1 and 3 change nothing the parser shows: they yield no partial, but their time is spent
    chunks = ['{"title": "Trip", ', '"commands": [', '{"action": "book", "target": "flight"}', "], ", '"status": "ok"}']
    outcome = fake.respond("MakePlan", chunks=chunks, chunk_latency=["1s", "1s", "1s", "1s", "1s"], usage=(5, 6))
    assert len(outcome.partials) == 3 and outcome.raw.slots == (0, 2, 4)
    assert outcome.partial_times_ns == (1_000_000_000, 3_000_000_000, 5_000_000_000)
    assert outcome.latency_ns == 5_000_000_000
    s = fake.stream.MakePlan("g", [])
    list(s)
    s.get_final_response()
    (call,) = capture.calls
    assert call.time_to_first_chunk == 1_000_000_000 and call.duration == 5_000_000_000
    with pytest.raises(ValueError, match="chunk_latency has 2 durations for 5 chunks; expected one duration, or one per chunk"):
        fake.respond("MakePlan", chunks=chunks, chunk_latency=["1s", "1s"])


def test_a_partial_the_parser_refuses_is_skipped(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    calls: list[str] = []
    real_parse_stream = typed_client.b.parse_stream

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            parse = getattr(real_parse_stream, name)

            def refuse_second(text: str) -> Any:
                calls.append(text)
                if len(calls) == 2:
                    from baml_py.errors import BamlError

                    raise BamlError("refused")
                return parse(text)

            return refuse_second

    class Spec:
        pass

    from pytest_baml_telemetry.fake import parsing
    from pytest_baml_telemetry.fake.spec import ClientSpec

    spec = ClientSpec(typed_client.b)
    client = Spec()
    client.parse = typed_client.b.parse  # type: ignore[attr-defined]
    client.parse_stream = Refusing()  # type: ignore[attr-defined]
    spec.source = client
    answer = parsing.parse_raw("respond('MakePlan')", spec, "MakePlan", raw=None, chunks=CHUNKS[:3], result=None, partials=None)
    assert answer.slots == (0, 2)  # the refused chunk yields nothing; the next one parses
    assert len(answer.partials) == 2
    assert answer.fails  # the text stops before "status": the final parse fails, the partials stand
    assert fake.unused() == []
