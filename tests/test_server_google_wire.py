"""FakeLLMServer speaking Google AI Gemini to baml-py's real ``google-ai`` client.

Measured with baml-py 0.226.3: the client posts to ``{base_url}/models/{model}:generateContent``
(streams: ``:streamGenerateContent?alt=sse``) with ``x-goog-api-key``; it refuses a response or
stream event without ``usageMetadata`` (an empty one reads as unknown usage); the Collector's
tokens are ``promptTokenCount``, ``candidatesTokenCount`` and ``cachedContentTokenCount``.
"""

from __future__ import annotations

import json

import httpx
import pytest

from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.wire import google


@pytest.fixture
def collector():
    import baml_py

    return baml_py.Collector("google")


@pytest.fixture
def b(generated_client, server: FakeLLMServer, collector):
    registry = server.client_registry(
        "TestClient", provider="google-ai", model="gemini-fake", options={"http": {"request_timeout_ms": 500}}
    )
    return generated_client.b.with_options(client_registry=registry, collector=collector)


def _usage(collector):
    u = collector.last.usage
    return u.input_tokens, u.output_tokens, u.cached_input_tokens


def test_client_options_point_a_gemini_client_at_the_server(server: FakeLLMServer):
    assert server.client_options(provider="google-ai", model="gemini-x") == {
        "model": "gemini-x", "api_key": "sk-fake", "base_url": f"{server.url}/v1beta",
    }
    assert server.client_options(provider="google-ai", client="G")["base_url"] == f"{server.url}/_c/G/v1beta"


def test_a_call_gets_a_response_with_its_usage_metadata(b, server: FakeLLMServer, collector):
    server.respond("Hello, Ann!", usage=(120, 30, 100))
    assert b.SayHello("Ann") == "Hello, Ann!"
    assert _usage(collector) == (120, 30, 100)
    call = collector.last.selected_call
    assert (call.provider, call.client_name) == ("google-ai", "TestClient")
    body = call.http_response.body.json()
    assert body["candidates"][0]["content"] == {"parts": [{"text": "Hello, Ann!"}], "role": "model"}
    assert body["candidates"][0]["finishReason"] == "STOP" and body["modelVersion"] == "gemini-fake"
    meta = body["usageMetadata"]
    assert (meta["promptTokenCount"], meta["candidatesTokenCount"], meta["totalTokenCount"], meta["cachedContentTokenCount"]) == (120, 30, 150, 100)
    (req,) = server.requests
    assert (req.path, req.provider, req.client, req.model, req.stream) == (
        "/v1beta/models/gemini-fake:generateContent", "google-ai", "TestClient", "gemini-fake", False,
    )
    assert req.headers["x-goog-api-key"] == "***"
    assert req.messages == [{"role": "user", "parts": [{"text": "Say hello to Ann."}]}]


def test_no_usage_reads_as_unknown(b, server: FakeLLMServer, collector):
    server.respond("hi")
    assert b.SayHello("x") == "hi"
    assert _usage(collector) == (None, None, None)
    server.respond("hi", usage=(5, 6))  # no cached count given: Gemini leaves the field out
    b.SayHello("x")
    assert _usage(collector) == (5, 6, None)
    assert "cachedContentTokenCount" not in collector.last.selected_call.http_response.body.json()["usageMetadata"]


def test_a_stream_sends_responses_and_the_usage_last(b, server: FakeLLMServer, collector):
    server.respond("Hello there, Bo", usage=(7, 5, 2), chunks=3, chunk_delay="30ms")
    stream = b.stream.SayHello("Bo")
    partials = list(stream)
    assert stream.get_final_response() == "Hello there, Bo"
    assert partials and partials[-1] == "Hello there, Bo" and all("Hello there, Bo".startswith(p) for p in partials)
    assert _usage(collector) == (7, 5, 2)
    (req,) = server.requests
    assert (req.path, req.stream, req.model) == ("/v1beta/models/gemini-fake:streamGenerateContent?alt=sse", True, "gemini-fake")


def test_the_raw_stream(server: FakeLLMServer):
    server.respond("one two three", usage=(3, 2, 1), finish_reason="length")
    url = server.url + "/v1beta/models/m:streamGenerateContent?alt=sse"
    with httpx.stream("POST", url, json={"contents": []}, timeout=10) as r:
        assert r.headers["content-type"] == "text/event-stream"
        events = [google.decode_event(line) for line in r.iter_lines() if line]
    assert "".join(p for e in events for p in google.event_pieces(e)) == "one two three"
    assert len(events) == 4 and all("finishReason" not in e["candidates"][0] for e in events[:3])
    assert events[-1]["candidates"][0]["finishReason"] == "MAX_TOKENS"
    assert google.response_usage(events[-1]) == (3, 2, 1) and google.response_usage(events[0]) == (None, None, None)
    assert httpx.post(server.url + "/v1beta/models/m:countTokens", json={}, timeout=10).status_code == 404


@pytest.mark.parametrize(
    "status, name",
    [(400, "INVALID_ARGUMENT"), (401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"),
     (429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE"), (418, "FAILED_PRECONDITION")],
)
def test_an_error_status_raises_with_googles_error_body(b, server: FakeLLMServer, status, name):
    from baml_py import errors

    server.fail(status)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert (info.value.status_code, info.value.client_name) == (status, "TestClient")
    body = json.loads(info.value.message.split(". ", 1)[1])
    assert body["error"]["code"] == status and body["error"]["status"] == name


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


def test_scripts_target_the_gemini_format(generated_client, server: FakeLLMServer):
    registry = server.client_registry("TestClient", provider="google-ai")
    server.client_registry("RetryingClient", provider="anthropic", registry=registry)
    b = generated_client.b.with_options(client_registry=registry)
    server.respond("from claude", provider="anthropic").respond("from gemini", provider="google-ai")
    assert b.SayHello("y") == "from gemini"
    assert b.SayHelloWithRetry("x") == "from claude"
    assert [(r.client, r.provider) for r in server.requests] == [("TestClient", "google-ai"), ("RetryingClient", "anthropic")]


def test_the_wire_module_reads_what_it_writes():
    usage = google.usage_to_wire((10, 4, 3))
    body = google.completion_body("hi", id=google.new_id("x"), model="m", usage=usage)
    assert google.response_text(body) == "hi" and google.response_usage(body) == (10, 4, 3)
    assert (google.response_id(body), google.response_model(body)) == ("respx", "m")
    assert google.error_body("no", *google.error_type(429)) == {"error": {"code": 429, "message": "no", "status": "RESOURCE_EXHAUSTED"}}
    assert google.error_body("no", "fake_llm_server_unscripted", "unscripted")["error"]["code"] == 500
    assert google.path_model("/v1beta/models/gemini-2.0-flash:generateContent") == "gemini-2.0-flash"
    assert google.request_stream(None, "/v1/models/g:streamGenerateContent") and not google.request_stream(None, "/v1/models/g:generateContent")
    assert not google.is_chat_path("/v1beta/models/g:embedContent")
    with pytest.raises(ValueError, match="no candidates"):
        google.response_text({"choices": []})
