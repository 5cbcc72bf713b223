"""The respx builders of every provider (read back by the provider's wire readers), wire_format,
record_response, argument errors, and the README's modular example in a real pytest session."""

from __future__ import annotations

import textwrap

import httpx
import pytest

from pytest_baml_telemetry import Usage
from pytest_baml_telemetry import modular as m
from pytest_baml_telemetry.modular_responses import __all__ as BUILDERS
from pytest_baml_telemetry.wire import anthropic, bedrock, google, openai, openai_responses

# builder prefix -> wire module
PREFIXES = {"openai": openai, "openai_responses": openai_responses, "anthropic": anthropic, "google": google}


def _read_stream(wire, response: httpx.Response) -> tuple[str, tuple | None, str | None, str | None]:
    """Text, last usage, first id and model of a streamed response, read line by line as the path reads it."""
    text, usage, rid, model = "", None, None, None
    with httpx.Client(transport=httpx.MockTransport(lambda request: response)) as http:
        lines = list(http.send(http.build_request("POST", "http://x/"), stream=True).iter_lines())
    for line in lines:
        event = wire.decode_event(line)
        if not isinstance(event, dict):
            continue
        text += "".join(wire.event_pieces(event))
        usage = wire.response_usage(event) or usage
        rid = rid or wire.response_id(event)
        model = model or wire.response_model(event)
    return text, usage, rid, model


def test_every_builder_is_reexported_by_modular():
    for name in BUILDERS:
        if name == "EventStream":
            continue
        assert getattr(m, name) is getattr(__import__("pytest_baml_telemetry.modular_responses", fromlist=[name]), name)
        assert name in m.__all__
    assert m.openai_chat_response is m.openai_body


@pytest.mark.parametrize("prefix", PREFIXES)
def test_bodies_read_back(prefix):
    wire = PREFIXES[prefix]
    body = getattr(m, f"{prefix}_body")({"name": "Ann"}, usage=(10, 5, 3), model="served", id="the-id")
    assert wire.response_text(body) == '{"name": "Ann"}'
    assert wire.response_usage(body) == (10, 5, 3)
    assert (wire.response_id(body), wire.response_model(body)) == ("the-id", "served")
    response = getattr(m, f"{prefix}_response")("hi", usage=Usage(1, 2))
    assert response.status_code == 200 and wire.response_text(response.json()) == "hi"
    assert wire.response_usage(response.json())[:2] == (1, 2)


def test_finish_reasons_in_each_providers_words():
    assert m.openai_body("x", finish_reason="length")["choices"][0]["finish_reason"] == "length"
    assert m.anthropic_body("x", finish_reason="length")["stop_reason"] == "max_tokens"
    assert m.anthropic_body("x")["stop_reason"] == "end_turn"
    assert m.google_body("x", finish_reason="length")["candidates"][0]["finishReason"] == "MAX_TOKENS"
    incomplete = m.openai_responses_body("x", finish_reason="length")
    assert (incomplete["status"], incomplete["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    assert m.bedrock_body("x", finish_reason="length")["stopReason"] == "max_tokens"
    assert m.anthropic_body("x", finish_reason="refusal")["stop_reason"] == "refusal"  # the provider's own word


@pytest.mark.parametrize("prefix", PREFIXES)
def test_streams_read_back(prefix):
    wire = PREFIXES[prefix]
    events = getattr(m, f"{prefix}_stream_events")("one two three", usage=(4, 3, 1), model="served", id="sid")
    assert sum(len(wire.event_pieces(e)) for e in events if isinstance(e, dict)) == 3
    response = getattr(m, f"{prefix}_stream_response")("one two three", usage=(4, 3, 1), model="served", id="sid")
    assert response.headers["content-type"] == wire.STREAM_CONTENT_TYPE
    text, usage, rid, model = _read_stream(wire, response)
    assert (text, usage) == ("one two three", (4, 3, 1))
    # wire.anthropic.response_id/response_model do not look inside message_start's "message" (yet)
    assert (rid, model) == ((None, None) if wire is anthropic else ("sid", "served"))
    cut = getattr(m, f"{prefix}_stream_response")("one two three", break_after=1)
    with pytest.raises(httpx.RemoteProtocolError):
        _read_stream(wire, cut)


def test_bedrock_response_names_its_request_in_a_header():
    response = m.bedrock_response("hi", usage=(3, 2, 1), id="req-1")
    assert response.headers["x-amzn-RequestId"] == "req-1"
    assert bedrock.response_text(response.json()) == "hi" and bedrock.response_usage(response.json()) == (3, 2, 1)
    assert m.bedrock_response("hi").headers["x-amzn-RequestId"] != m.bedrock_response("hi").headers["x-amzn-RequestId"]
    assert not hasattr(m, "bedrock_stream_response")  # baml-py 0.226.3 has no modular Bedrock stream


@pytest.mark.parametrize(
    "build, status, check",
    [
        (m.openai_error_response, 429, lambda r: r.json()["error"]["type"] == "requests"),
        (m.openai_responses_error_response, 401, lambda r: r.json()["error"]["code"] == "invalid_api_key"),
        (m.anthropic_error_response, 529, lambda r: r.json() == {
            "type": "error", "error": {"type": "overloaded_error", "message": "scripted HTTP 529 error"}}),
        (m.google_error_response, 429, lambda r: r.json()["error"] == {
            "code": 429, "message": "scripted HTTP 429 error", "status": "RESOURCE_EXHAUSTED"}),
        (m.bedrock_error_response, 429, lambda r: r.headers["x-amzn-ErrorType"].startswith("ThrottlingException:")
         and r.json() == {"message": "scripted HTTP 429 error"}),
    ],
)
def test_error_responses_in_each_providers_shape(build, status, check):
    response = build(status, retry_after=3)
    assert response.status_code == status and response.headers["retry-after"] == "3"
    assert check(response)
    assert build(400, message="bad", error_type="my_type").status_code == 400


@pytest.mark.parametrize("prefix", [*PREFIXES, "bedrock"])
@pytest.mark.parametrize(
    "what, kwargs, error, match",
    [
        ("response", {"content": 3}, TypeError, "content=3"),
        ("response", {"content": "x", "usage": (-1, 2)}, ValueError, "input_tokens=-1"),
        ("response", {"content": "x", "status_code": 700}, ValueError, "status_code=700"),
        ("response", {"content": "x", "finish_reason": ""}, ValueError, "finish_reason=''"),
        ("response", {"content": "x", "headers": {"a": 1}}, TypeError, "headers="),
        ("error_response", {"status_code": 200}, ValueError, "status_code=200 is not an error"),
        ("error_response", {"status_code": 429, "retry_after": -1}, ValueError, "retry_after=-1"),
        ("error_response", {"status_code": 429, "message": 5}, TypeError, "message=5"),
        ("stream_events", {"content": "a b", "chunks": ["a"]}, ValueError, "do not join"),
        ("stream_response", {"content": "a", "break_after": -1}, ValueError, "break_after=-1"),
        ("stream_response", {"content": "a", "model": ""}, TypeError, "model=''"),
    ],
)
def test_bad_builder_input_names_the_value(prefix, what, kwargs, error, match):
    build = getattr(m, f"{prefix}_{what}", None)
    if build is None:  # only Bedrock has no stream builders
        assert (prefix, what.startswith("stream_")) == ("bedrock", True)
        return
    with pytest.raises(error, match=match) as info:
        build(**kwargs)
    assert info.value.args[0].startswith(f"{prefix}_")  # the builder's name first


@pytest.mark.parametrize(
    "url, provider, expected",
    [
        ("https://api.openai.com/v1/chat/completions", None, ("openai", openai, "/v1/chat/completions")),
        ("http://127.0.0.1:1/_c/Smart/v1/chat/completions", "ollama", ("ollama", openai, "/v1/chat/completions")),
        ("https://x.openai.azure.com/openai/deployments/gpt4/chat/completions?api-version=1", None,
         ("azure-openai", openai, "/openai/deployments/gpt4/chat/completions")),
        ("https://api.openai.com/v1/responses", None, ("openai-responses", openai_responses, "/v1/responses")),
        ("https://proxy.example/anthropic/v1/messages", None, ("anthropic", anthropic, "/v1/messages")),
        ("https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
         None, ("google-ai", google, "/v1beta/models/gemini-2.0-flash:streamGenerateContent")),
        ("https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude%3Av1/converse", None,
         ("aws-bedrock", bedrock, "/model/anthropic.claude%3Av1/converse")),
        ("https://example.com/api/generate", None, (None, openai, "")),
        ("https://example.com/api/generate", "anthropic", ("anthropic", anthropic, "")),
    ],
)
def test_wire_format_from_the_url(url, provider, expected):
    fmt = m.wire_format(url, provider)
    assert tuple(fmt) == expected
    if fmt.path:
        assert fmt.wire.is_chat_path(fmt.path)


def test_wire_format_and_call_modular_refuse_a_bad_provider(tel):
    emitter, capture = tel
    with pytest.raises(TypeError, match="provider=3"):
        m.wire_format("https://api.openai.com/v1/chat/completions", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="provider=''"):
        m.call_modular(object(), "SayHello", provider="", emitter=emitter)
    assert capture.events == []


def test_record_response_reads_any_format(tel):
    emitter, capture = tel

    def answer(request: httpx.Request) -> httpx.Response:
        return m.google_response("hi", usage=(8, 2, 5), model="gemini-2.0-flash-001", id="gid")

    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        response = http.post(url, json={})
    with emitter.call("SayHello", arguments={}) as call:
        m.record_response(call, response)  # the format from response.request.url
    with emitter.call("SayHello", arguments={}) as call:
        m.record_response(call, m.anthropic_body("hi", usage=(1, 1, 1), id="msg_1"), provider="anthropic")
    with emitter.call("SayHello", arguments={}) as call:
        m.record_response(call, httpx.Response(200, content=b"not json"))  # sets nothing
    google_call, anthropic_call, empty = capture.calls
    assert (google_call.input_tokens, google_call.output_tokens) == (8, 2)
    stop = capture.stops[0]
    assert (stop.measurements["cached_input_tokens"], stop.metadata["request_id"], stop.metadata["response_model"]) == (
        5, "gid", "gemini-2.0-flash-001")
    assert (anthropic_call.input_tokens, capture.stops[1].metadata["request_id"]) == (1, "msg_1")
    assert empty.input_tokens is None


README_EXAMPLE = '''
import baml_py
import httpx
import respx

from pytest_baml_telemetry.baml_gen import import_generated
from pytest_baml_telemetry.modular import anthropic_error_response, anthropic_response, call_modular

registry = baml_py.ClientRegistry()
registry.add_llm_client("TestClient", "anthropic", {{
    "model": "claude-3-5-haiku-latest", "api_key": "k", "base_url": "https://api.anthropic.com"}})
b = import_generated({path!r}).b.with_options(client_registry=registry)


def test_modular(baml_events):
    with respx.mock() as router, httpx.Client() as http:
        router.post(url__regex=r".*/v1/messages").mock(side_effect=[
            anthropic_error_response(429), anthropic_response('{{"name": "Ann", "skills": []}}', usage=(12, 5, 4)),
        ])
        for _ in range(3):
            try:
                resume = call_modular(b, "ExtractResume", arguments={{"resume": "Ann"}}, http_client=http)
                break
            except httpx.HTTPStatusError as exc:
                assert exc.response.json()["error"]["type"] == "rate_limit_error"
    assert resume.name == "Ann"
    baml_events.assert_call("ExtractResume", ok=True, input_tokens=12, output_tokens=5)
    stop = baml_events.stops[-1]
    assert (stop.metadata["provider"], stop.metadata["model"], stop.measurements["cached_input_tokens"]) == (
        "anthropic", "claude-3-5-haiku-latest", 4)
    assert [call.ok for call in baml_events.calls] == [False, True]
'''


def test_the_readme_modular_example_in_a_real_session(pytester, generated_client):
    pytester.makepyfile(test_readme_modular=textwrap.dedent(README_EXAMPLE.format(path=str(generated_client.path.parent))))
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "Traceback" not in text, text
    result.assert_outcomes(passed=1)
