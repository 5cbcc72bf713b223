"""FakeLLMServer speaks OpenAI as OpenAI does: the usage chunk only on request, usage details,
OpenAI's error type/code names, an ``x-request-id`` on every response (raw HTTP and the real runtime)."""

from __future__ import annotations

import json

import httpx
import pytest

from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.wire import openai as wire

COMPLETION_DETAILS = {
    "reasoning_tokens": 0,
    "audio_tokens": 0,
    "accepted_prediction_tokens": 0,
    "rejected_prediction_tokens": 0,
}


def _stream(server: FakeLLMServer, **extra) -> tuple[httpx.Response, list]:
    body = {"model": "m", "messages": [], "stream": True, **extra}
    with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=10) as resp:
        datas = [line[len("data: "):] for line in resp.iter_lines() if line.startswith("data: ")]
    assert datas[-1] == "[DONE]"
    return resp, [json.loads(d) for d in datas[:-1]]


# ------------------------------------------------------------------ usage chunk


def test_stream_without_include_usage_sends_no_usage_chunk(server):
    server.respond("a b", usage=(5, 4))
    _, chunks = _stream(server)
    assert all(c["choices"] for c in chunks)  # no usage chunk (it has "choices": [])
    assert all("usage" not in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_with_include_usage_sends_the_usage_chunk_and_null_usage_before_it(server):
    server.respond("a b", usage=(5, 4, 2))
    _, chunks = _stream(server, stream_options={"include_usage": True})
    *content, last = chunks
    assert [c["usage"] for c in content] == [None, None, None]  # two pieces and the finish chunk
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 4,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 2, "audio_tokens": 0},
        "completion_tokens_details": COMPLETION_DETAILS,
    }


def test_include_usage_false_is_not_a_request_for_usage(server):
    server.respond("a b", usage=(5, 4))
    _, chunks = _stream(server, stream_options={"include_usage": False})
    assert all(c["choices"] for c in chunks) and all("usage" not in c for c in chunks)


def test_usage_chunk_scripted_overrides_the_request(server):
    server.respond("a b", usage=(5, 4), usage_chunk=True).respond("a b", usage=(5, 4), usage_chunk=False)
    _, forced = _stream(server)
    assert forced[-1]["choices"] == [] and forced[-1]["usage"]["prompt_tokens"] == 5
    _, suppressed = _stream(server, stream_options={"include_usage": True})
    assert all(c["choices"] for c in suppressed)
    assert all(c.get("usage") is None for c in suppressed)


def test_usage_chunk_must_be_a_bool(server):
    with pytest.raises(TypeError, match=r"FakeLLMServer.respond: usage_chunk=1: expected True or False"):
        server.respond("x", usage=(1, 1), usage_chunk=1)
    assert server.pending == []


def test_json_usage_always_carries_the_details(server):
    server.respond("x", usage=(3, 4))
    body = httpx.post(server.base_url + "/chat/completions", json={"model": "m"}, timeout=10).json()
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0, "audio_tokens": 0}
    assert body["usage"]["completion_tokens_details"] == COMPLETION_DETAILS


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "status, error_type, code",
    [
        (400, "invalid_request_error", None),
        (401, "invalid_request_error", "invalid_api_key"),
        (403, "request_forbidden", None),
        (404, "invalid_request_error", "model_not_found"),
        (418, "invalid_request_error", None),
        (422, "invalid_request_error", None),
        (429, "requests", "rate_limit_exceeded"),
        (500, "server_error", None),
        (502, "server_error", None),
        (503, "server_error", None),
    ],
)
def test_error_bodies_use_openais_type_and_code(server, status, error_type, code):
    server.fail(status)
    resp = httpx.post(server.base_url + "/chat/completions", json={"model": "m"}, timeout=10)
    assert resp.status_code == status
    error = resp.json()["error"]
    assert (error["type"], error["code"], error["param"]) == (error_type, code, None)
    assert f"HTTP {status}" in error["message"]
    assert wire.error_type(status) == (error_type, code)


def test_unknown_path_is_an_invalid_request_error(server):
    resp = httpx.post(server.url + "/v1/embeddings", json={}, timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "invalid_request_error"


# ------------------------------------------------------------------ x-request-id


def test_every_response_has_an_x_request_id_that_is_recorded(server):
    server.respond("ok").fail(429).malformed("nope {").respond("s t", usage=(1, 1))
    url = server.base_url + "/chat/completions"
    responses = [
        httpx.post(url, json={"model": "m"}, timeout=10),
        httpx.post(url, json={"model": "m"}, timeout=10),
        httpx.post(url, json={"model": "m"}, timeout=10),
    ]
    stream_resp, _ = _stream(server, stream_options={"include_usage": True})
    responses.append(stream_resp)
    responses.append(httpx.post(url, json={"model": "m"}, timeout=10))  # unscripted: 500
    responses.append(httpx.get(server.url + "/v1/models", timeout=10))  # not served: 404
    assert [r.status_code for r in responses] == [200, 429, 200, 200, 500, 404]
    ids = [r.headers["x-request-id"] for r in responses]
    assert all(i.startswith("req_") for i in ids) and len(set(ids)) == len(ids)
    assert [r.request_id for r in server.requests] == ids


def test_request_ids_stay_unique_across_reset(server):
    server.respond("one")
    first = httpx.post(server.base_url + "/chat/completions", json={}, timeout=10).headers["x-request-id"]
    server.reset()
    server.respond("two")
    second = httpx.post(server.base_url + "/chat/completions", json={}, timeout=10).headers["x-request-id"]
    assert first != second
    assert [r.request_id for r in server.requests] == [second]


# ------------------------------------------------------------------ the real runtime


@pytest.fixture
def collector():
    import baml_py

    return baml_py.Collector("wire")


def _b(generated_client, server, collector):
    return generated_client.b.with_options(client_registry=server.client_registry("TestClient"), collector=collector)


def test_real_client_reads_tokens_with_details(generated_client, server, collector):
    server.respond("Hello", usage=(12, 7))
    assert _b(generated_client, server, collector).SayHello("x") == "Hello"
    usage = collector.last.usage
    # OpenAI sends cached_tokens 0: baml-py reports 0 cached tokens (not unknown)
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (12, 7, 0)
    assert collector.last.selected_call.http_response.headers["x-request-id"] == server.requests[0].request_id


def test_real_client_stream_asks_for_usage_and_reads_the_chunk(generated_client, server, collector):
    server.respond("Hello there", usage=(9, 5, 3), chunks=2)
    stream = _b(generated_client, server, collector).stream.SayHello("x")
    assert stream.get_final_response() == "Hello there"
    (req,) = server.requests
    assert req.json["stream_options"] == {"include_usage": True}
    usage = collector.last.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (9, 5, 3)


def test_real_client_stream_without_a_usage_chunk_has_unknown_tokens(generated_client, server, collector):
    server.respond("Hello there", usage=(9, 5), usage_chunk=False)
    stream = _b(generated_client, server, collector).stream.SayHello("x")
    assert stream.get_final_response() == "Hello there"
    usage = collector.last.usage
    assert (usage.input_tokens, usage.output_tokens) == (None, None)


def test_real_client_http_error_carries_openais_body(generated_client, server, collector):
    from baml_py import errors

    server.fail(401)
    with pytest.raises(errors.BamlClientHttpError) as info:
        _b(generated_client, server, collector).SayHello("x")
    assert info.value.status_code == 401
    assert "invalid_api_key" in info.value.message and "invalid_request_error" in info.value.message


def test_a_cut_off_stream_that_asked_for_usage_has_null_usage_chunks(server):
    server.fail_stream(after_chunks=2, content="a b c")
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    datas = []
    with pytest.raises(httpx.HTTPError):
        with httpx.stream("POST", server.base_url + "/chat/completions", json=body, timeout=10) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    datas.append(json.loads(line[len("data: "):]))
    assert [c["choices"][0]["delta"]["content"] for c in datas] == ["a ", "b "]
    assert [c["usage"] for c in datas] == [None, None]
