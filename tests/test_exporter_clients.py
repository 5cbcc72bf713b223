"""JsonlExporter on the fake client and on the real generated client (instrument(b) against
FakeLLMServer): threads and asyncio tasks writing at once, and an API key that never appears."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import Dispatcher, Emitter
from pytest_baml_telemetry.exporters import JsonlExporter
from pytest_baml_telemetry.fake import FakeBamlClient, faults
from pytest_baml_telemetry.instrument import instrument

pytestmark = pytest.mark.usefixtures("_quiet_baml")

KEY = "sk-proj-Ck29vLmNbQwErTy55uIoPaSd"
RESUME = '{"name": "Ann", "skills": ["Rust", "SQL"]}'


def read(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="ascii")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]  # every line valid JSON


def assert_paired(records: list[dict[str, Any]], calls: int) -> None:
    """Every start has exactly one stop or exception with its span context, and nothing else."""
    by_context: dict[int, list[str]] = {}
    for r in records:
        by_context.setdefault(r["metadata"]["telemetry_span_context"], []).append(r["event"][-1])
    assert len(by_context) == calls
    assert all(kinds in (["start", "stop"], ["start", "exception"]) for kinds in by_context.values()), by_context


def test_fake_client_calls_from_many_threads_write_whole_lines_that_pair(tmp_path: Path) -> None:
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher))
    fake.respond("ExtractResume", {"name": "Ann"}, usage=(100, 20), model="gpt-4o-mini", reusable=True)
    fake.fail("SayHello", faults.rate_limited(), reusable=True)
    path = tmp_path / "events.jsonl"
    threads, per_thread = 8, 150
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            if (i + j) % 5:
                fake.ExtractResume(resume=f"cv {i}/{j} " + "x" * 3000)  # long lines: more chance to interleave
            else:
                with pytest.raises(errors.BamlClientHttpError):
                    fake.SayHello(name="x")

    with JsonlExporter(path, dispatcher=dispatcher, include_arguments=True) as exporter:
        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    records = read(path)
    assert len(records) == 2 * threads * per_thread == exporter.written
    assert_paired(records, threads * per_thread)
    kinds = Counter(r["event"][-1] for r in records)
    assert kinds["exception"] == sum(1 for i in range(threads) for j in range(per_thread) if (i + j) % 5 == 0)
    failures = [r for r in records if r["event"][-1] == "exception"]
    assert all(r["metadata"]["reason"]["type"] == "BamlClientHttpError" for r in failures)
    assert all(r["metadata"]["reason"]["status_code"] == 429 for r in failures)


def test_fake_client_async_tasks_write_lines_that_pair(tmp_path: Path) -> None:
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher))
    fake.respond("ExtractResume", {"name": "Ann"}, usage=(100, 20), latency="1ms", reusable=True)
    afake = fake.as_async()
    path = tmp_path / "events.jsonl"

    async def main() -> None:
        await asyncio.gather(*(afake.ExtractResume(resume=f"cv {i}") for i in range(300)))

    with JsonlExporter(path, dispatcher=dispatcher):
        asyncio.run(main())
    records = read(path)
    assert len(records) == 600
    assert_paired(records, 300)


def _real(generated_client: Any, server: Any, emitter: Emitter, *, async_: bool = False) -> Any:
    base = generated_client.async_b if async_ else generated_client.b
    registry = server.client_registry("TestClient", options={"api_key": KEY})
    return instrument(base, emitter=emitter, resource="ResumeService").with_options(client_registry=registry)


def test_real_client_events_and_the_api_key_never_appears(generated_client, server, tmp_path: Path) -> None:
    dispatcher = Dispatcher()
    b = _real(generated_client, server, Emitter(dispatcher=dispatcher))
    path = tmp_path / "events.jsonl"
    # everything opted in: still no key
    exporter = JsonlExporter(
        path, dispatcher=dispatcher, include_arguments=True, include_results=True,
        include_error_messages=True, include_stacktrace=True, dump_models=True,
    ).attach()
    server.respond(RESUME, usage=(120, 30, 20), model="gpt-4o-mini-2024-07-18")
    result = b.ExtractResume(f"Ann knows Rust; my key is {KEY}")
    assert result.name == "Ann"
    # the provider echoes the key in its error body, as OpenAI's 401 does
    server.fail(401, body={"error": {"message": f"Incorrect API key provided: {KEY}.", "code": "invalid_api_key"}})
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("Bob")
    assert KEY in str(info.value)  # the real runtime's message carries it ...
    server.respond("Hello there, Ann", usage=(9, 5, 1), chunks=3)
    stream = b.stream.SayHello("Ann")
    for _ in stream:
        pass
    stream.get_final_response()
    exporter.close()
    text = path.read_text()
    assert KEY not in text and KEY[8:] not in text  # ... the log never does
    records = read(path)
    assert_paired(records, 3)
    start, stop, _, exc, _, sstop = records
    assert start["metadata"]["arguments"] == {"resume": "Ann knows Rust; my key is ***"}
    assert stop["metadata"]["result"] == {"name": "Ann", "skills": ["Rust", "SQL"]}
    assert (stop["measurements"]["input_tokens"], stop["measurements"]["cached_input_tokens"]) == (120, 20)
    md = stop["metadata"]
    assert (md["model"], md["response_model"], md["provider"], md["client_name"]) == (
        "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "openai", "TestClient",
    )
    reason = exc["metadata"]["reason"]
    assert (reason["type"], reason["status_code"]) == ("BamlClientHttpError", 401)
    assert "Incorrect API key provided: ***" in reason["message"]
    assert sstop["metadata"]["streaming"] is True and sstop["measurements"]["time_to_first_chunk"] > 0


def test_real_client_by_default_writes_no_arguments_results_or_messages(generated_client, server, tmp_path: Path) -> None:
    dispatcher = Dispatcher()
    b = _real(generated_client, server, Emitter(dispatcher=dispatcher))
    path = tmp_path / "events.jsonl"
    with JsonlExporter(path, dispatcher=dispatcher):
        server.respond(RESUME, usage=(120, 30))
        b.ExtractResume("Ann's private resume text")
        server.fail(500)
        with pytest.raises(errors.BamlClientHttpError):
            b.SayHello("Bob")
    text = path.read_text()
    for leaked in ("private resume", "Rust", "Bob", "FakeLLMServer scripted failure", KEY):
        assert leaked not in text
    records = read(path)
    assert records[-1]["metadata"]["reason"] == {"type": "BamlClientHttpError", "status_code": 500}


def test_real_async_client_concurrent_tasks(generated_client, server, tmp_path: Path) -> None:
    dispatcher = Dispatcher()
    b = _real(generated_client, server, Emitter(dispatcher=dispatcher), async_=True)
    n = 12
    for _ in range(n):
        server.respond("Hello!", usage=(3, 2))
    path = tmp_path / "events.jsonl"

    async def main() -> list[Any]:
        return await asyncio.gather(*(b.SayHello(f"user {i}") for i in range(n)))

    with JsonlExporter(path, dispatcher=dispatcher):
        assert asyncio.run(main()) == ["Hello!"] * n
    records = read(path)
    assert len(records) == 2 * n
    assert_paired(records, n)
    assert all(r["measurements"]["total_tokens"] == 5 for r in records if r["event"][-1] == "stop")


def test_real_client_threads(generated_client, server, tmp_path: Path) -> None:
    dispatcher = Dispatcher()
    b = _real(generated_client, server, Emitter(dispatcher=dispatcher))
    n = 8
    for _ in range(n):
        server.respond("Hello!", usage=(3, 2))
    path = tmp_path / "events.jsonl"
    with JsonlExporter(path, dispatcher=dispatcher):
        pool = [threading.Thread(target=b.SayHello, args=(f"u{i}",)) for i in range(n)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    records = read(path)
    assert_paired(records, n)


def test_real_typed_results_enum_and_model_arguments(typed_client, server, tmp_path: Path) -> None:
    """The real runtime's types: an enum result is written as its value, a list-of-enum argument
    as values, a pydantic result as its repr by default and as a dict with dump_models=True."""
    dispatcher = Dispatcher()
    b = instrument(typed_client.b, emitter=Emitter(dispatcher=dispatcher)).with_options(
        client_registry=server.client_registry("TypedClient")
    )
    types = typed_client.types
    path = tmp_path / "events.jsonl"
    with JsonlExporter(path, dispatcher=dispatcher, include_arguments=True, include_results=True):
        server.respond("HIGH", usage=(5, 1))
        assert b.Classify("urgent!", [types.Priority.LOW, types.Priority.HIGH]) == types.Priority.HIGH
        server.respond('{"name": "Ann", "tags": ["x"], "priority": "LOW"}', usage=(5, 1))
        person = b.ExtractPerson("Ann")
    with JsonlExporter(path, dispatcher=dispatcher, include_results=True, dump_models=True, events=["stop"]):
        server.respond('{"name": "Bo", "tags": [], "age": 7, "priority": "HIGH"}', usage=(5, 1))
        b.ExtractPerson("Bo")
    start, stop, _, pstop, dumped = read(path)
    assert start["metadata"]["arguments"] == {"text": "urgent!", "labels": ["LOW", "HIGH"]}
    assert stop["metadata"]["result"] == "HIGH"
    assert pstop["metadata"]["result"] == repr(person) and "Ann" in pstop["metadata"]["result"]
    dump = dumped["metadata"]["result"]
    assert (dump["name"], dump["age"], dump["priority"]) == ("Bo", 7, "HIGH")
