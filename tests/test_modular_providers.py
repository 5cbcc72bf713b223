"""The httpx path in every wire format: the requests baml-py's modular API builds per provider,
answered by the respx builders, read into the same events ``instrument(b)`` emits for the same
scripted answer on the real runtime over FakeLLMServer."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from pytest_baml_telemetry import validate_stream
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.instrument import instrument
from pytest_baml_telemetry.modular import (
    acall_modular,
    anthropic_error_response,
    anthropic_response,
    anthropic_stream_response,
    bedrock_error_response,
    bedrock_response,
    call_modular,
    google_error_response,
    google_response,
    google_stream_response,
    openai_error_response,
    openai_response,
    openai_responses_error_response,
    openai_responses_response,
    openai_responses_stream_response,
    openai_stream_response,
)
from pytest_baml_telemetry.wire import anthropic, bedrock, google, openai, openai_responses

pytestmark = pytest.mark.usefixtures("_quiet_baml")

PROVIDERS = ["openai", "openai-generic", "azure-openai", "ollama", "anthropic", "openai-responses", "google-ai", "aws-bedrock"]
# the chat-completions providers other than openai: baml asks for a stream's usage only when told to
NEEDS_INCLUDE_USAGE = {"openai-generic", "azure-openai", "ollama"}
# openai-generic and ollama post to OpenAI's path: only the caller can name them
NAMED_BY_CALLER = {"openai-generic", "ollama"}

# provider -> (wire module, the tail of the URL path b.request builds, b.stream_request's)
REQUESTS = {
    "openai": (openai, "/v1/chat/completions", "/v1/chat/completions"),
    "openai-generic": (openai, "/v1/chat/completions", "/v1/chat/completions"),
    "azure-openai": (openai, "/openai/deployments/gpt-4o-mini/chat/completions", "/openai/deployments/gpt-4o-mini/chat/completions"),
    "ollama": (openai, "/v1/chat/completions", "/v1/chat/completions"),
    "anthropic": (anthropic, "/v1/messages", "/v1/messages"),
    "openai-responses": (openai_responses, "/v1/responses", "/v1/responses"),
    "google-ai": (google, "/v1beta/models/gpt-4o-mini:generateContent", "/v1beta/models/gpt-4o-mini:streamGenerateContent"),
    "aws-bedrock": (bedrock, "/model/gpt-4o-mini/converse", None),
}


def _answer(provider: str, content: str, **kw):
    if provider == "aws-bedrock":
        kw.pop("model", None)
        return bedrock_response(content, **kw)
    build = {"anthropic": anthropic_response, "openai-responses": openai_responses_response, "google-ai": google_response}
    return build.get(provider, openai_response)(content, **kw)


def _stream_answer(provider: str, content: str, **kw):
    build = {
        "anthropic": anthropic_stream_response,
        "openai-responses": openai_responses_stream_response,
        "google-ai": google_stream_response,
    }
    return build.get(provider, openai_stream_response)(content, **kw)


def _error_answer(provider: str, status: int):
    build = {
        "anthropic": anthropic_error_response,
        "openai-responses": openai_responses_error_response,
        "google-ai": google_error_response,
        "aws-bedrock": bedrock_error_response,
    }
    return build.get(provider, openai_error_response)(status)


@pytest.fixture
def tel2():
    """Two private (emitter, capture) pairs: the instrumented call's and the modular call's."""
    from pytest_baml_telemetry import Dispatcher, Emitter

    pairs = []
    for _ in range(2):
        dispatcher = Dispatcher()
        pairs.append((Emitter(dispatcher=dispatcher), EventCapture(dispatcher=dispatcher).attach()))
    yield pairs
    for _, capture in pairs:
        capture.detach()


def _client(generated_client, server, provider):
    options = {"stream_options": {"include_usage": True}} if provider in NEEDS_INCLUDE_USAGE else None
    registry = server.client_registry("TestClient", provider=provider, options=options)
    return generated_client.b.with_options(client_registry=registry)


def _end(capture: EventCapture):
    validate_stream(capture.events)
    assert capture.handler_failures == []
    (end,) = [e for e in capture.events if e.name[-1] in ("stop", "exception")]
    return end


def _summary(end) -> dict:
    m, md = end.measurements, end.metadata
    return {
        "event": end.name[-1],
        "tokens": (m["input_tokens"], m["output_tokens"], m["cached_input_tokens"], m["total_tokens"]),
        "model": md["model"],
        "provider": md["provider"],
        "streaming": md["streaming"],
    }


def _modular(b, provider, answer, emitter, *, stream=False, **kw):
    """call_modular with respx answering the exact request baml built."""
    with respx.mock(assert_all_called=True) as router:
        route = router.route()
        route.mock(side_effect=[answer])
        try:
            return call_modular(
                b, "SayHello", arguments={"name": "Ann"}, emitter=emitter, stream=stream,
                provider=provider if provider in NAMED_BY_CALLER else None, **kw,
            )
        finally:
            assert route.call_count == 1


# ------------------------------------------------------------------ the requests baml builds


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_request_baml_builds_names_its_format(generated_client, server, provider):
    from pytest_baml_telemetry.modular import wire_format

    b = _client(generated_client, server, provider)
    wire, path, stream_path = REQUESTS[provider]
    request = b.request.SayHello(name="Ann")
    url = httpx.URL(request.url)
    assert url.path.endswith(path), url
    fmt = wire_format(request.url, provider if provider in NAMED_BY_CALLER else None)
    assert (fmt.provider, fmt.wire, fmt.path) == (provider, wire, path)
    assert (wire.request_model(request.body.json()) or wire.path_model(fmt.path)) == "gpt-4o-mini"
    if provider == "aws-bedrock":
        # measured: unsigned, to AWS's own host whatever the endpoint_url, and no modular streaming
        assert url.host == "bedrock-runtime.us-east-1.amazonaws.com" and "authorization" not in request.headers
        from baml_py.errors import BamlError

        with pytest.raises(BamlError, match="AWS Bedrock modular streaming is not supported"):
            b.stream_request.SayHello(name="Ann")
        return
    assert url.host == "127.0.0.1"
    streamed = b.stream_request.SayHello(name="Ann")
    assert httpx.URL(streamed.url).path.endswith(stream_path)
    assert wire.request_stream(streamed.body.json(), wire_format(streamed.url).path)


# ------------------------------------------------------------------ the same events as instrument(b)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_answer_reads_as_instrument_reads_it(generated_client, server, tel2, provider):
    (em_i, cap_i), (em_m, cap_m) = tel2
    b = _client(generated_client, server, provider)
    server.respond("Hello Ann", usage=(10, 5, 3), model="served-model")
    assert instrument(b, emitter=em_i).SayHello(name="Ann") == "Hello Ann"
    answer = _answer(provider, "Hello Ann", usage=(10, 5, 3), model="served-model", id="id-1")
    assert _modular(b, provider, answer, em_m) == "Hello Ann"
    real, modular = _end(cap_i), _end(cap_m)
    assert _summary(modular) == _summary(real)
    assert _summary(modular)["tokens"] == (10, 5, 3, 15) and _summary(modular)["provider"] == provider
    md = modular.metadata
    assert md["request_id"] == "id-1"  # the body's id (Bedrock's x-amzn-RequestId header)
    if provider != "aws-bedrock":  # a Converse body names no model
        assert md["response_model"] == "served-model"
    if "response_model" in real.metadata:
        assert real.metadata["response_model"] == md["response_model"]


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "aws-bedrock"])
@pytest.mark.parametrize("finish_reason", ["stop", "length"])
def test_a_stream_reads_as_instrument_reads_it(generated_client, server, tel2, provider, finish_reason):
    (em_i, cap_i), (em_m, cap_m) = tel2
    b = _client(generated_client, server, provider)
    server.respond("Hello there, Ann", usage=(9, 4, 2), model="served-model", chunks=3, finish_reason=finish_reason)
    real_error = None
    try:
        instrument(b, emitter=em_i).stream.SayHello(name="Ann").get_final_response()
    except Exception as exc:  # noqa: BLE001 - compared below
        real_error = exc
    answer = _stream_answer(provider, "Hello there, Ann", chunks=3, usage=(9, 4, 2), model="served-model",
                            finish_reason=finish_reason)
    partials: list[str] = []
    result = _modular(b, provider, answer, em_m, stream=True, on_partial=partials.append)
    real, modular = _end(cap_i), _end(cap_m)
    assert real_error is None, real_error  # baml-py allows every finish reason by default
    assert result == "Hello there, Ann" and len(partials) == 3 and partials[-1] == result
    assert _summary(modular) == _summary(real)
    assert _summary(modular)["tokens"] == (9, 4, 2, 13)
    m = modular.measurements
    assert isinstance(m["time_to_first_chunk"], int) and 0 <= m["time_to_first_chunk"] <= m["duration"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_error_reads_as_instrument_reads_it(generated_client, server, tel2, provider):
    (em_i, cap_i), (em_m, cap_m) = tel2
    b = _client(generated_client, server, provider)
    for _ in range(3 if provider == "aws-bedrock" else 1):  # the AWS SDK retries a 429 itself, 3 attempts
        server.fail(429)
    with pytest.raises(Exception):  # noqa: B017 - baml-py's own error
        instrument(b, emitter=em_i).SayHello(name="Ann")
    with pytest.raises(httpx.HTTPStatusError) as info:
        _modular(b, provider, _error_answer(provider, 429), em_m)
    real, modular = _end(cap_i), _end(cap_m)
    assert _summary(modular) == _summary(real)
    assert _summary(modular)["tokens"] == (0, 0, 0, 0)
    assert modular.metadata["reason"] is info.value
    response = info.value.response
    kind = {
        "anthropic": lambda: response.json()["error"]["type"] == "rate_limit_error",
        "google-ai": lambda: response.json()["error"]["status"] == "RESOURCE_EXHAUSTED",
        "aws-bedrock": lambda: response.headers["x-amzn-ErrorType"].startswith("ThrottlingException"),
    }.get(provider, lambda: response.json()["error"]["code"] == "rate_limit_exceeded")
    assert kind()


# ------------------------------------------------------------------ the fake server's own bytes


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "aws-bedrock"])
@pytest.mark.parametrize("stream", [False, True])
def test_the_modular_path_reads_the_fake_servers_answers(generated_client, server, tel, provider, stream):
    """No respx: httpx sends baml's request to FakeLLMServer, which answers in the provider's format."""
    emitter, capture = tel
    b = _client(generated_client, server, provider)
    server.respond("Hi Ann", usage=(7, 3, 1), model="served-model", chunks=2)
    with httpx.Client() as http:
        result = call_modular(b, "SayHello", arguments={"name": "Ann"}, http_client=http, emitter=emitter,
                              stream=stream, provider=provider if provider in NAMED_BY_CALLER else None)
    assert result == "Hi Ann"
    end = _end(capture)
    assert _summary(end)["tokens"] == (7, 3, 1, 10) and _summary(end)["provider"] == provider
    (recorded,) = server.requests
    assert recorded.client == "TestClient"
    # the provider's id: the body's or the stream's, else (an Anthropic stream) its request-id header
    request_id = end.metadata["request_id"]
    assert isinstance(request_id, str) and not request_id.startswith("breq_")


# ------------------------------------------------------------------ failures and async


def test_a_cut_anthropic_stream_has_unknown_tokens(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, "anthropic")
    partials: list[str] = []
    answer = anthropic_stream_response("one two three", usage=(5, 3), break_after=4)  # start, block, 2 deltas
    with pytest.raises(httpx.RemoteProtocolError):
        _modular(b, "anthropic", answer, emitter, stream=True, on_partial=partials.append)
    assert partials == ["one ", "one two "]
    end = _end(capture)
    assert end.name[-1] == "exception" and _summary(end)["tokens"][:2] == (None, None)


def test_a_malformed_google_event_fails_the_call(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, "google-ai")
    answer = httpx.Response(200, headers={"content-type": "text/event-stream"}, content=b"data: {not json\n\n")
    with pytest.raises(json.JSONDecodeError):
        _modular(b, "google-ai", answer, emitter, stream=True)
    assert _end(capture).name[-1] == "exception"


def test_an_anthropic_stream_through_the_async_path(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, "anthropic")

    async def main():
        with respx.mock() as router:
            router.route().mock(side_effect=[anthropic_stream_response('{"name": "Ann", "skills": ["Go"]}',
                                                                       usage=(30, 8, 4), id="msg_a")])
            async with httpx.AsyncClient() as http:
                return await acall_modular(b, "ExtractResume", arguments={"resume": "x"}, http_client=http,
                                           emitter=emitter, stream=True)

    resume = asyncio.run(main())
    assert (resume.name, resume.skills) == ("Ann", ["Go"])
    capture.assert_call("ExtractResume", ok=True, streaming=True, input_tokens=30, output_tokens=8,
                        model="gpt-4o-mini")
    end = _end(capture)
    assert (end.metadata["provider"], end.measurements["cached_input_tokens"]) == ("anthropic", 4)


@pytest.mark.parametrize("stream", [False, True])
def test_an_async_client_in_google_ai(generated_client, server, tel, stream):
    """An async ``b`` (its ``b.request`` is awaited) in the Gemini format, streamed or not."""
    emitter, capture = tel
    registry = server.client_registry("TestClient", provider="google-ai")
    async_b = generated_client.async_b.with_options(client_registry=registry)
    answer = (google_stream_response if stream else google_response)(
        "Hello Ann", usage=(6, 2, 1), model="gemini-2.0-flash-001", id="gid"
    )

    async def main():
        with respx.mock() as router:
            route = router.route()
            route.mock(side_effect=[answer])
            result = await acall_modular(async_b, "SayHello", arguments={"name": "Ann"}, emitter=emitter, stream=stream)
            assert route.calls.last.request.url.path.endswith(
                ":streamGenerateContent" if stream else ":generateContent"
            )
            return result

    assert asyncio.run(main()) == "Hello Ann"
    end = _end(capture)
    assert _summary(end) == {"event": "stop", "tokens": (6, 2, 1, 8), "model": "gpt-4o-mini", "provider": "google-ai",
                             "streaming": stream}
    assert (end.metadata["request_id"], end.metadata["response_model"]) == ("gid", "gemini-2.0-flash-001")


def test_an_anthropic_delta_without_input_tokens_keeps_message_starts(generated_client, server, tel):
    """Anthropic's older streams end with ``message_delta`` usage ``{"output_tokens": n}`` only: the
    input and cached counts of ``message_start`` stay, the output count is the delta's."""
    from pytest_baml_telemetry.modular_responses import EventStream

    emitter, capture = tel
    b = _client(generated_client, server, "anthropic")
    events = anthropic.stream_events(["Hi ", "Ann"], id="msg_1", model="claude",
                                     usage=anthropic.usage_to_wire((10, 5, 3)))
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    delta["usage"] = {"output_tokens": 5}
    answer = httpx.Response(200, headers={"content-type": "text/event-stream"},
                            stream=EventStream([anthropic.encode_event(e) for e in events]))
    assert _modular(b, "anthropic", answer, emitter, stream=True) == "Hi Ann"
    assert _summary(_end(capture))["tokens"] == (10, 5, 3, 15)
