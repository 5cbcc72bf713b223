"""FakeLLMServer speaking AWS Bedrock Converse to baml-py's real ``aws-bedrock`` client.

Measured with baml-py 0.226.3 (its AWS SDK for Rust): with static credentials and
``endpoint_url`` at the server (a path prefix is kept: the client tag works) it posts to
``/model/{modelId}/converse`` (``converse-stream`` for streams; the id URL-encoded) with a SigV4
``authorization``; streams are binary event-stream frames with CRC32s; the SDK itself retries
a throttling or 5xx answer (3 attempts in all, about 1-2 s of backoff), so such a failure is
scripted three times; a ``ValidationException`` with HTTP 400 is reported as status 401, a
``ModelTimeoutException`` (408) as ``BamlTimeoutError``; ``http { request_timeout_ms }`` is not
applied: a hang lasts its full time, then the dropped connection raises status 2.
"""

from __future__ import annotations

import httpx
import pytest

from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.fake.server_clients import FAKE_AWS_ACCESS_KEY_ID
from pytest_baml_telemetry.wire import bedrock

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


@pytest.fixture
def collector():
    import baml_py

    return baml_py.Collector("bedrock")


@pytest.fixture
def b(generated_client, server: FakeLLMServer, collector):
    registry = server.client_registry("TestClient", provider="aws-bedrock", model=MODEL)
    return generated_client.b.with_options(client_registry=registry, collector=collector)


def _usage(collector):
    u = collector.last.usage
    return u.input_tokens, u.output_tokens, u.cached_input_tokens


def test_client_options_give_static_credentials_and_the_endpoint(server: FakeLLMServer):
    assert server.client_options(provider="aws-bedrock", model="m", api_key="secret") == {
        "model": "m", "region": "us-east-1", "access_key_id": FAKE_AWS_ACCESS_KEY_ID,
        "secret_access_key": "secret", "endpoint_url": server.url,
    }
    assert server.client_options(provider="aws-bedrock", client="B")["endpoint_url"] == f"{server.url}/_c/B"


def test_a_call_gets_a_converse_body_with_its_usage(b, server: FakeLLMServer, collector):
    server.respond("Hello, Ann!", usage=(120, 30, 100))
    assert b.SayHello("Ann") == "Hello, Ann!"
    assert _usage(collector) == (120, 30, 100)
    call = collector.last.selected_call
    assert (call.provider, call.client_name) == ("aws-bedrock", "TestClient")
    (req,) = server.requests
    assert (req.path, req.provider, req.client, req.model, req.stream, req.served) == (
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", "aws-bedrock", "TestClient", MODEL, False, "respond",
    )
    assert req.headers["authorization"] == "***" and "x-amz-date" in req.headers
    assert req.messages == [{"role": "user", "content": [{"text": "Say hello to Ann."}]}]


def test_a_stream_is_event_stream_frames(b, server: FakeLLMServer, collector):
    server.respond("Hello there, Bo", usage=(7, 5, 2), chunks=3, chunk_delay="30ms")
    stream = b.stream.SayHello("Bo")
    partials = list(stream)
    assert stream.get_final_response() == "Hello there, Bo"
    assert partials and partials[-1] == "Hello there, Bo" and all("Hello there, Bo".startswith(p) for p in partials)
    assert _usage(collector) == (7, 5, 2)
    (req,) = server.requests
    assert req.path.endswith("/converse-stream") and req.stream is True


def test_the_raw_stream_frames_and_their_crcs(server: FakeLLMServer):
    server.respond("one two three", usage=(3, 2, 1), finish_reason="length")
    with httpx.stream("POST", server.url + "/model/m/converse-stream", json={}, timeout=10) as r:
        assert r.headers["content-type"] == "application/vnd.amazon.eventstream"
        assert r.headers["x-amzn-requestid"]
        data = r.read()
    frames = bedrock.decode_frames(data)
    names = [h[":event-type"] for h, _ in frames]
    assert names == ["messageStart"] + ["contentBlockDelta"] * 3 + ["contentBlockStop", "messageStop", "metadata"]
    assert all(h[":message-type"] == "event" and h[":content-type"] == "application/json" for h, _ in frames)
    import json

    events = [(h[":event-type"], json.loads(p)) for h, p in frames]
    assert "".join(p for e in events for p in bedrock.event_pieces(e)) == "one two three"
    assert events[-2][1] == {"stopReason": "max_tokens"} and bedrock.response_usage(events[-1][1]) == (3, 2, 1)
    broken = bytearray(data)
    broken[20] ^= 0xFF
    with pytest.raises(ValueError, match="bad message CRC"):
        bedrock.decode_frames(bytes(broken))


def test_a_frame_is_the_aws_event_stream_layout():
    frame = bedrock.encode_frame({":event-type": "x"}, b"{}")
    import struct
    import zlib

    total, headers_len, prelude_crc = struct.unpack(">III", frame[:12])
    assert (total, headers_len) == (len(frame), 1 + 11 + 3 + 1)
    assert prelude_crc == zlib.crc32(frame[:8]) and struct.unpack(">I", frame[-4:])[0] == zlib.crc32(frame[:-4])
    assert bedrock.decode_frames(frame) == [({":event-type": "x"}, b"{}")]
    assert bedrock.decode_frames(frame[:-1]) == []  # an incomplete frame waits for more bytes


@pytest.mark.parametrize(
    "status, times, reported",
    [(403, 1, 403), (404, 1, 404), (413, 1, 413), (424, 1, 424), (400, 1, 401), (429, 3, 429), (503, 3, 503)],
)
def test_an_error_status_raises_as_the_sdk_reads_it(b, server: FakeLLMServer, status, times, reported):
    from baml_py import errors

    for _ in range(times):
        server.fail(status)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert (info.value.status_code, info.value.client_name) == (reported, "TestClient")
    kind, _ = bedrock.error_type(status)
    assert kind in info.value.message
    assert [r.served for r in server.requests] == ["fail"] * times
    assert [r.headers["amz-sdk-request"] for r in server.requests] == [f"attempt={i}; max=3" for i in range(1, times + 1)]


def test_a_model_timeout_is_a_timeout(b, server: FakeLLMServer):
    from baml_py import errors

    server.fail(408)
    with pytest.raises(errors.BamlTimeoutError):
        b.SayHello("x")


def test_malformed_hang_and_broken_streams(b, server: FakeLLMServer):
    from baml_py import errors

    server.malformed()
    with pytest.raises(errors.BamlClientHttpError, match="DeserializeError") as info:
        b.SayHello("x")
    assert info.value.status_code == 200
    server.malformed()
    with pytest.raises(errors.BamlClientHttpError, match="failed to unmarshall MessageStart") as info:
        b.stream.SayHello("x").get_final_response()
    assert info.value.status_code == 2
    server.fail_stream(after_chunks=2)
    with pytest.raises(errors.BamlClientHttpError, match="Failed to parse event: DispatchFailure") as info:
        b.stream.SayHello("x").get_final_response()
    assert info.value.status_code == 2
    server.hang(0.3)
    with pytest.raises(errors.BamlClientHttpError, match="IncompleteMessage") as info:
        b.SayHello("x")
    assert info.value.status_code == 2
    assert [r.served for r in server.requests] == ["malformed", "malformed", "fail_stream", "hang"]


def test_scripts_target_the_bedrock_format(generated_client, server: FakeLLMServer):
    registry = server.client_registry("TestClient", provider="aws-bedrock")
    server.client_registry("RetryingClient", registry=registry, provider="google-ai")
    b = generated_client.b.with_options(client_registry=registry)
    server.respond("gemini", provider="google-ai").respond("bedrock", client="TestClient", provider="aws-bedrock")
    assert b.SayHello("y") == "bedrock"
    assert b.SayHelloWithRetry("x") == "gemini"


def test_the_wire_module_reads_what_it_writes():
    usage = bedrock.usage_to_wire((10, 4, 3))
    assert usage == {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14, "cacheReadInputTokens": 3, "cacheWriteInputTokens": 0}
    body = bedrock.completion_body("hi", usage=usage, finish_reason=bedrock.finish_reason("stop"))
    assert bedrock.response_text(body) == "hi" and bedrock.response_usage(body) == (10, 4, 3) and body["stopReason"] == "end_turn"
    assert bedrock.usage_to_wire((1, 2)) == {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3}
    assert bedrock.path_model("/model/a%3Ab/converse") == "a:b" and bedrock.request_stream(None, "/model/a/converse-stream")
    assert bedrock.error_headers("ThrottlingException")["x-amzn-ErrorType"].startswith("ThrottlingException:")
    assert bedrock.request_id("p", 1) == bedrock.request_id("p", 1)
    with pytest.raises(ValueError, match="no output.message.content"):
        bedrock.response_text({"choices": []})
