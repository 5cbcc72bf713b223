"""FakeLLMServer speaking Anthropic Messages to baml-py's real ``anthropic`` client.

Measured with baml-py 0.226.3: the client posts to ``{base_url}/v1/messages`` with
``x-api-key`` and ``anthropic-version``; the Collector's input tokens are ``input_tokens`` as
sent and its cached tokens ``cache_read_input_tokens``; a stream's usage is taken from
``message_delta`` when that usage is whole.
"""

from __future__ import annotations

import json

import httpx
import pytest

from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.wire import anthropic

EVENTS = ["message_start", "content_block_start", "content_block_delta", "content_block_delta",
          "content_block_delta", "content_block_stop", "message_delta", "message_stop"]


@pytest.fixture
def collector():
    import baml_py

    return baml_py.Collector("anthropic")


@pytest.fixture
def b(generated_client, server: FakeLLMServer, collector):
    registry = server.client_registry(
        "TestClient", provider="anthropic", model="claude-fake", options={"http": {"request_timeout_ms": 500}}
    )
    return generated_client.b.with_options(client_registry=registry, collector=collector)


def _usage(collector):
    u = collector.last.usage
    return u.input_tokens, u.output_tokens, u.cached_input_tokens


def test_client_options_point_an_anthropic_client_at_the_server(server: FakeLLMServer):
    assert server.client_options(provider="anthropic", model="claude-x") == {
        "model": "claude-x", "api_key": "sk-fake", "base_url": server.url,
    }
    assert server.client_options(provider="anthropic", client="Claude")["base_url"] == f"{server.url}/_c/Claude"


def test_a_call_gets_a_message_with_its_usage(b, server: FakeLLMServer, collector):
    server.respond("Hello, Ann!", usage=(120, 30, 100))
    assert b.SayHello("Ann") == "Hello, Ann!"
    assert _usage(collector) == (120, 30, 100)
    call = collector.last.selected_call
    assert (call.provider, call.client_name) == ("anthropic", "TestClient")
    body = call.http_response.body.json()
    assert body["type"] == "message" and body["id"].startswith("msg_") and body["model"] == "claude-fake"
    assert body["content"] == [{"type": "text", "text": "Hello, Ann!"}] and body["stop_reason"] == "end_turn"
    assert body["usage"] == {"input_tokens": 120, "output_tokens": 30, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0}
    (req,) = server.requests
    assert (req.path, req.provider, req.client, req.served, req.model) == ("/v1/messages", "anthropic", "TestClient", "respond", "claude-fake")
    assert req.headers["x-api-key"] == "***" and req.headers["anthropic-version"]
    assert req.messages == [{"role": "user", "content": [{"type": "text", "text": "Say hello to Ann."}]}]
    assert call.http_response.headers["request-id"] == req.request_id and req.request_id.startswith("req_")


def test_a_stream_sends_anthropics_events_and_usage(b, server: FakeLLMServer, collector):
    server.respond("Hello there, Bo", usage=(7, 5, 2), chunks=3, chunk_delay="30ms")
    stream = b.stream.SayHello("Bo")
    partials = list(stream)
    assert stream.get_final_response() == "Hello there, Bo"
    assert partials and partials[-1] == "Hello there, Bo" and all("Hello there, Bo".startswith(p) for p in partials)
    assert _usage(collector) == (7, 5, 2)
    assert server.requests[0].stream is True


def test_the_raw_stream_is_named_events_in_order(server: FakeLLMServer):
    server.respond("one two three", usage=(3, 2, 1), finish_reason="length")
    with httpx.stream("POST", server.url + "/v1/messages", json={"model": "m", "stream": True}, timeout=10) as r:
        assert r.headers["content-type"] == "text/event-stream" and r.headers["request-id"].startswith("req_")
        lines = [line for line in r.iter_lines() if line]
    names = [line[len("event: "):] for line in lines if line.startswith("event: ")]
    assert names == EVENTS
    data = [json.loads(line[len("data: "):]) for line in lines if line.startswith("data: ")]
    assert [d["type"] for d in data] == names
    assert "".join(p for d in data for p in anthropic.event_pieces(d)) == "one two three"
    assert data[0]["message"]["usage"]["input_tokens"] == 3 and data[-2]["delta"]["stop_reason"] == "max_tokens"
    assert anthropic.response_usage(data[0]) == (3, 1, 1) and anthropic.response_usage(data[-2]) == (3, 2, 1)


@pytest.mark.parametrize(
    "status, kind",
    [(400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
     (404, "not_found_error"), (429, "rate_limit_error"), (500, "api_error"), (529, "overloaded_error"), (418, "invalid_request_error")],
)
def test_an_error_status_raises_with_anthropics_error_body(b, server: FakeLLMServer, status, kind):
    from baml_py import errors

    server.fail(status)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert (info.value.status_code, info.value.client_name) == (status, "TestClient")
    assert f'{{"type":"error","error":{{"type":"{kind}","message":"FakeLLMServer scripted failure: HTTP {status}' in info.value.message


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


def test_finish_reasons_are_anthropics(b, server: FakeLLMServer, collector):
    server.respond("cut", finish_reason="length").respond("done", finish_reason="stop_sequence")
    assert b.SayHello("x") == "cut"
    assert collector.last.selected_call.http_response.body.json()["stop_reason"] == "max_tokens"
    assert b.SayHello("y") == "done"
    assert collector.last.selected_call.http_response.body.json()["stop_reason"] == "stop_sequence"


def test_scripts_target_the_anthropic_format(generated_client, server: FakeLLMServer):
    registry = server.client_registry("TestClient", provider="anthropic")
    server.client_registry("RetryingClient", registry=registry)  # openai
    b = generated_client.b.with_options(client_registry=registry)
    server.respond("from claude", provider="anthropic").respond("from gpt", provider="openai")
    assert b.SayHelloWithRetry("x") == "from gpt"
    assert b.SayHello("y") == "from claude"
    assert [(r.client, r.provider) for r in server.requests] == [("RetryingClient", "openai"), ("TestClient", "anthropic")]


def test_the_wire_module_reads_what_it_writes():
    usage = anthropic.usage_to_wire((10, 4, 3))
    body = anthropic.completion_body("hi", id=anthropic.new_id("x"), model="m", usage=usage)
    assert anthropic.response_text(body) == "hi" and anthropic.response_usage(body) == (10, 4, 3)
    assert (anthropic.response_id(body), anthropic.response_model(body)) == ("msg_x", "m")
    assert anthropic.usage_to_wire(None) is None
    assert anthropic.error_body("no", *anthropic.error_type(429)) == {"type": "error", "error": {"type": "rate_limit_error", "message": "no"}}
    events = anthropic.stream_events(["a", "b"], id="i", model="m", usage=usage)
    assert events[anthropic.OPENING_EVENTS]["delta"]["text"] == "a"
    line = anthropic.encode_event(events[0]).decode().splitlines()[1]
    assert anthropic.decode_event(line) == events[0] and anthropic.decode_event("event: ping") is None
    assert anthropic.encode_event(("message_start", "not json")) == b"event: message_start\ndata: not json\n\n"
    with pytest.raises(ValueError, match="no content blocks"):
        anthropic.response_text({"choices": []})
