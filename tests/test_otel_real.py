"""SpanHandler on the real generated baml-py client (instrument(b)) against FakeLLMServer."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from baml_py.errors import BamlClientHttpError

from pytest_baml_telemetry import Dispatcher, Emitter, validate_stream
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.instrument import instrument
from pytest_baml_telemetry.opentelemetry import SpanCapture

pytestmark = pytest.mark.usefixtures("_quiet_baml")

RESUME = '{"name": "Ann", "skills": ["Rust", "SQL"]}'
RESUME_TEXT = "Ann-the-unique-candidate knows Rust and SQL"
PROMPT = "Extract the resume from this text"  # the rendered prompt of ExtractResume (tests/baml_src)


@pytest.fixture
def otel():
    """(emitter, span capture, event capture) on a private dispatcher."""
    dispatcher = Dispatcher()
    events = EventCapture(dispatcher=dispatcher).attach()
    spans = SpanCapture(dispatcher=dispatcher).attach()
    yield Emitter(dispatcher=dispatcher), spans, events
    spans.detach()
    events.detach()
    validate_stream(events.events)


def _client(generated_client, server, emitter, client_name="TestClient", *, async_=False, **registry_kwargs):
    base = generated_client.async_b if async_ else generated_client.b
    registry = server.client_registry(client_name, **registry_kwargs)
    return instrument(base, emitter=emitter).with_options(client_registry=registry)


def test_a_real_call_is_one_span_with_what_the_server_reported(generated_client, server, otel):
    emitter, spans, events = otel
    server.respond(RESUME, usage=(120, 30, 20), model="gpt-4o-mini-2024-07-18")
    result = _client(generated_client, server, emitter).ExtractResume(RESUME_TEXT)
    assert result.name == "Ann"
    (stop,) = events.stops
    (span,) = spans.spans
    assert span["name"] == "chat gpt-4o-mini" and span["kind"] == "CLIENT" and span["status"] == {"code": "UNSET"}
    attrs = span["attributes"]
    assert attrs == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "baml.provider": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.response.id": stop.metadata["request_id"],
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cache_read.input_tokens": 20,
        "baml.function_name": "ExtractResume",
        "baml.client_name": "TestClient",
        "baml.num_attempts": 1,
        "baml.streaming": False,
    }
    assert attrs["gen_ai.response.id"].startswith("chatcmpl-fake")
    (raw,) = spans.finished_spans
    assert raw.end_time - raw.start_time == stop.measurements["duration"] > 0
    spans.assert_not_recorded(RESUME_TEXT, PROMPT, "Rust", "sk-test-not-a-real-key")


def test_a_429_is_an_error_span_with_the_status_and_no_body(generated_client, server, otel):
    emitter, spans, events = otel
    server.fail(429, body={"error": {"message": "slow down " + RESUME_TEXT}})
    with pytest.raises(BamlClientHttpError) as info:
        _client(generated_client, server, emitter).ExtractResume(RESUME_TEXT)
    assert info.value.status_code == 429
    (exc,) = events.exceptions
    span = spans.assert_span("chat gpt-4o-mini", status={"code": "ERROR", "description": "BamlClientHttpError (status 429)"},
                             attributes={"error.type": "BamlClientHttpError", "baml.num_attempts": 1})
    for key, attr in (("input_tokens", "gen_ai.usage.input_tokens"), ("output_tokens", "gen_ai.usage.output_tokens")):
        assert exc.measurements[key] == 0 == span["attributes"][attr]  # an HTTP error is not billed: 0, known
    assert span["events"] == [{"name": "exception", "attributes": {"exception.type": "BamlClientHttpError"}}]
    # no completion was served: baml's own request id, not a gen_ai.response.id
    assert exc.metadata["request_id"].startswith("breq_")
    assert span["attributes"]["baml.request_id"] == exc.metadata["request_id"]
    assert "gen_ai.response.id" not in span["attributes"]
    spans.assert_not_recorded(RESUME_TEXT, PROMPT, "slow down")


def test_a_retried_call_is_one_span_counting_its_attempts(generated_client, server, otel):
    emitter, spans, events = otel
    server.fail(429).respond("finally", usage=(11, 2))
    b = _client(generated_client, server, emitter, "RetryingClient", retry_policy="QuickRetry")
    assert b.SayHelloWithRetry("Zoe") == "finally"
    (span,) = spans.spans
    assert span["status"] == {"code": "UNSET"}
    assert span["attributes"]["baml.num_attempts"] == 2
    assert span["attributes"]["baml.client_name"] == "RetryingClient"


def test_a_real_stream_span_has_the_time_to_first_chunk(generated_client, server, otel):
    emitter, spans, events = otel
    server.respond("Hello there, Ann", usage=(9, 5, 1), chunks=3, chunk_delay="20ms")
    stream = _client(generated_client, server, emitter).stream.SayHello("Ann")
    assert list(stream)[-1] == "Hello there, Ann"
    assert stream.get_final_response() == "Hello there, Ann"
    (stop,) = events.stops
    ttfc = stop.measurements["time_to_first_chunk"]
    assert isinstance(ttfc, int) and 0 < ttfc < stop.measurements["duration"]
    span = spans.assert_span("chat gpt-4o-mini", attributes={
        "baml.streaming": True,
        "gen_ai.request.stream": True,
        "gen_ai.response.time_to_first_chunk": ttfc / 1e9,
        "gen_ai.usage.input_tokens": 9,
        "gen_ai.usage.output_tokens": 5,
    })
    assert 0 < span["attributes"]["gen_ai.response.time_to_first_chunk"] < 60
    spans.assert_not_recorded("Say hello to Ann", "Hello there")


def test_real_calls_in_threads_are_parented_to_each_threads_span(generated_client, server, otel):
    emitter, spans, events = otel
    for i in range(3):
        server.respond(f"Hi {i}", usage=(3, 1))
    b = _client(generated_client, server, emitter)

    def work(i: int) -> str:
        with spans.tracer.start_as_current_span(f"request-{i}"):
            return b.SayHello(f"n{i}")

    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(work, range(3)))
    assert sorted(answers) == ["Hi 0", "Hi 1", "Hi 2"]
    for i in range(3):
        spans.assert_span("chat gpt-4o-mini", parent_name=f"request-{i}", count=1)


@pytest.mark.asyncio
async def test_real_async_calls_in_gathered_tasks_are_parented_to_each_tasks_span(generated_client, server, otel):
    emitter, spans, events = otel
    for i in range(4):
        server.respond(f"Hi {i}", usage=(3, 1), latency="30ms")
    b = _client(generated_client, server, emitter, async_=True)

    async def task(i: int) -> str:
        with spans.tracer.start_as_current_span(f"task-{i}"):
            return await b.SayHello(f"n{i}")

    with spans.tracer.start_as_current_span("handler"):
        answers = await asyncio.gather(*(task(i) for i in range(4)))
    assert sorted(answers) == [f"Hi {i}" for i in range(4)]
    calls = [s for s in spans.spans if s["kind"] == "CLIENT"]
    assert len(calls) == 4
    for i in range(4):
        spans.assert_span("chat gpt-4o-mini", parent_name=f"task-{i}", count=1)
        spans.assert_span(f"task-{i}", parent_name="handler", count=1)
    (raw_handler,) = [s for s in spans.finished_spans if s.name == "handler"]
    assert all(s.context.trace_id == raw_handler.context.trace_id for s in spans.finished_spans)


def test_content_only_when_opted_in(generated_client, server):
    dispatcher = Dispatcher()
    server.respond(RESUME, usage=(1, 1))
    with SpanCapture(dispatcher=dispatcher, record_content=True) as spans:
        _client(generated_client, server, Emitter(dispatcher=dispatcher)).ExtractResume(RESUME_TEXT)
    (span,) = spans.spans
    assert RESUME_TEXT in span["attributes"]["gen_ai.input.messages"]
    (message,) = json.loads(span["attributes"]["gen_ai.output.messages"])
    assert message["role"] == "assistant"
    assert json.loads(message["parts"][0]["content"]) == {"name": "Ann", "skills": ["Rust", "SQL"]}  # the pydantic result


def test_latest_names_on_the_real_client(generated_client, server, monkeypatch):
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    dispatcher = Dispatcher()
    server.respond("Hi", usage=(1, 1))
    with SpanCapture(dispatcher=dispatcher, record_content=True) as spans:
        _client(generated_client, server, Emitter(dispatcher=dispatcher)).SayHello("Ann")
    (span,) = spans.spans
    attrs = span["attributes"]
    assert attrs["gen_ai.provider.name"] == "openai" and "gen_ai.system" not in attrs
    assert attrs["gen_ai.prompt.variable.name"] == "Ann" and "gen_ai.input.messages" not in attrs
