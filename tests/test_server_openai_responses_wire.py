"""FakeLLMServer speaking OpenAI Responses to baml-py's real ``openai-responses`` client.

Measured with baml-py 0.226.3: the client posts to ``{base_url}/responses`` (``base_url``
ending in ``/v1``) with ``authorization``; the Collector's tokens are ``usage.input_tokens``,
``output_tokens`` and ``input_tokens_details.cached_tokens``, in a stream read from
``response.completed``; a ``null`` usage reads as unknown.
"""

from __future__ import annotations

import json

import httpx
import pytest

from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.wire import openai_responses as wire

EVENTS = [
    "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
    "response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
    "response.output_text.done", "response.content_part.done", "response.output_item.done",
]


@pytest.fixture
def collector():
    import baml_py

    return baml_py.Collector("responses")


@pytest.fixture
def b(generated_client, server: FakeLLMServer, collector):
    registry = server.client_registry(
        "TestClient", provider="openai-responses", model="gpt-fake", options={"http": {"request_timeout_ms": 500}}
    )
    return generated_client.b.with_options(client_registry=registry, collector=collector)


def _usage(collector):
    u = collector.last.usage
    return u.input_tokens, u.output_tokens, u.cached_input_tokens


def test_client_options_point_a_responses_client_at_the_server(server: FakeLLMServer):
    assert server.client_options(provider="openai-responses", model="gpt-x") == {
        "model": "gpt-x", "api_key": "sk-fake", "base_url": server.base_url,
    }
    assert server.client_options(provider="openai-responses", client="R")["base_url"] == f"{server.url}/_c/R/v1"


def test_a_call_gets_a_response_with_its_usage(b, server: FakeLLMServer, collector):
    server.respond("Hello, Ann!", usage=(120, 30, 100))
    assert b.SayHello("Ann") == "Hello, Ann!"
    assert _usage(collector) == (120, 30, 100)
    call = collector.last.selected_call
    assert (call.provider, call.client_name) == ("openai-responses", "TestClient")
    body = call.http_response.body.json()
    assert (body["object"], body["status"], body["model"], body["incomplete_details"]) == ("response", "completed", "gpt-fake", None)
    assert body["id"].startswith("resp_") and wire.response_text(body) == "Hello, Ann!"
    assert body["usage"] == {
        "input_tokens": 120, "input_tokens_details": {"cached_tokens": 100},
        "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 150,
    }
    (req,) = server.requests
    assert (req.path, req.provider, req.client, req.model, req.served) == ("/v1/responses", "openai-responses", "TestClient", "gpt-fake", "respond")
    assert req.headers["authorization"] == "***"
    assert req.messages[0]["content"] == [{"type": "input_text", "text": "Say hello to Ann."}]
    assert call.http_response.headers["x-request-id"] == req.request_id


def test_no_usage_reads_as_unknown(b, server: FakeLLMServer, collector):
    server.respond("hi")
    assert b.SayHello("x") == "hi"
    assert _usage(collector) == (None, None, None)


def test_a_stream_sends_the_responses_events_and_usage(b, server: FakeLLMServer, collector):
    server.respond("Hello there, Bo", usage=(7, 5, 2), chunks=3, chunk_delay="30ms")
    stream = b.stream.SayHello("Bo")
    partials = list(stream)
    assert stream.get_final_response() == "Hello there, Bo"
    assert partials and partials[-1] == "Hello there, Bo" and all("Hello there, Bo".startswith(p) for p in partials)
    assert _usage(collector) == (7, 5, 2)
    assert server.requests[0].stream is True


@pytest.mark.parametrize("finish, status, reason", [("stop", "completed", None), ("length", "incomplete", "max_output_tokens")])
def test_the_raw_stream_is_named_events_in_order(server: FakeLLMServer, finish, status, reason):
    server.respond("one two three", usage=(3, 2, 1), finish_reason=finish)
    with httpx.stream("POST", server.url + "/v1/responses", json={"model": "m", "stream": True}, timeout=10) as r:
        assert r.headers["content-type"] == "text/event-stream"
        lines = [line for line in r.iter_lines() if line]
    names = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    assert names == EVENTS + [f"response.{status}"]
    data = [wire.decode_event(line) for line in lines if line.startswith("data: ")]
    assert [d["type"] for d in data] == names and [d["sequence_number"] for d in data] == list(range(len(names)))
    assert "".join(p for d in data for p in wire.event_pieces(d)) == "one two three"
    final = data[-1]
    assert wire.response_usage(final) == (3, 2, 1) and wire.response_text(final["response"]) == "one two three"
    assert (final["response"]["status"], final["response"]["incomplete_details"]) == (status, reason and {"reason": reason})


def test_an_error_status_raises_with_openais_error_body(b, server: FakeLLMServer):
    from baml_py import errors

    server.fail(429)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert (info.value.status_code, info.value.client_name) == (429, "TestClient")
    body = json.loads(info.value.message.split(". ", 1)[1])
    assert body["error"]["type"] == "requests" and body["error"]["code"] == "rate_limit_exceeded"


def test_malformed_hang_and_broken_streams(b, server: FakeLLMServer):
    from baml_py import errors

    server.malformed()
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert info.value.status_code == 200
    server.malformed()
    with pytest.raises(errors.BamlClientHttpError, match="Failed to parse SSE data as JSON") as info:
        b.stream.SayHello("x").get_final_response()
    assert info.value.status_code == 2
    server.fail_stream(after_chunks=2)
    with pytest.raises(errors.BamlClientHttpError, match="Stream transport error") as info:
        b.stream.SayHello("x").get_final_response()
    assert info.value.status_code == 2
    server.hang(2)
    with pytest.raises(errors.BamlTimeoutError):
        b.SayHello("x")
    assert [r.served for r in server.requests] == ["malformed", "malformed", "fail_stream", "hang"]


def test_scripts_target_the_responses_format(generated_client, server: FakeLLMServer):
    registry = server.client_registry("TestClient", provider="openai-responses")
    server.client_registry("RetryingClient", registry=registry)
    b = generated_client.b.with_options(client_registry=registry)
    server.respond("chat", provider="openai").respond("responses", provider="openai-responses")
    assert b.SayHello("y") == "responses"
    assert b.SayHelloWithRetry("x") == "chat"


def test_the_wire_module_reads_what_it_writes():
    usage = wire.usage_to_wire((10, 4, 3))
    body = wire.completion_body("hi", id=wire.new_id("x"), model="m", usage=usage)
    assert wire.response_text(body) == "hi" and wire.response_usage(body) == (10, 4, 3)
    assert (wire.response_id(body), wire.response_model(body)) == ("resp_x", "m")
    assert wire.request_messages({"input": "hello"}) == [{"role": "user", "content": "hello"}]
    assert wire.encode_event(("response.created", "nope")) == b"event: response.created\ndata: nope\n\n"
    events = wire.stream_events(["a", "b"], id="i", model="m")
    assert events[wire.OPENING_EVENTS]["delta"] == "a" and events[-1]["type"] == "response.completed"
    with pytest.raises(ValueError, match="no output"):
        wire.response_text({"choices": []})
