"""The httpx path: baml's modular API (b.request / httpx / b.parse) under respx, with telemetry."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import respx

from pytest_baml_telemetry import Usage, validate_stream
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.instrument import instrument
from pytest_baml_telemetry.modular import (
    acall_modular,
    call_modular,
    openai_chat_response,
    openai_error_response,
    openai_response,
    openai_stream_events,
    openai_stream_response,
    openai_usage,
    record_openai_response,
)

RESUME = '{"name": "Ann", "skills": ["Rust", "SQL"]}'
# tests/baml_src points every client at an unreachable loopback port: respx answers instead
URL = "http://127.0.0.1:9/v1/chat/completions"


pytestmark = pytest.mark.usefixtures("_quiet_baml")


@pytest.fixture
def route():
    with respx.mock(assert_all_called=False) as router:
        yield router.post(URL)


@pytest.fixture
def b(generated_client):
    return generated_client.b


@pytest.fixture
def async_b(generated_client):
    return generated_client.async_b


def _valid(capture: EventCapture) -> None:
    validate_stream(capture.events)
    assert capture.handler_failures == []
    assert all(call.finished for call in capture.calls)


# ------------------------------------------------------------------ successes


def test_success_with_usage(b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_response(RESUME, usage=(120, 30, 20), model="gpt-4o-mini-2024-07-18", id="chatcmpl-1"))
    with httpx.Client() as http:
        result = call_modular(b, "ExtractResume", arguments={"resume": "Ann knows Rust"}, http_client=http, emitter=emitter)
    assert (result.name, result.skills) == ("Ann", ["Rust", "SQL"])
    _valid(capture)
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "gpt-4o-mini" and "Ann knows Rust" in json.dumps(sent["messages"])
    assert route.calls.last.request.headers["authorization"].startswith("Bearer ")
    (start,) = capture.starts
    assert start.metadata["arguments"] == {"resume": "Ann knows Rust"}
    assert (start.metadata["client_module"], start.metadata["streaming"]) == ("baml_client", False)
    (stop,) = capture.stops
    m, md = stop.measurements, stop.metadata
    assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (120, 30, 150, 20)
    assert (md["model"], md["response_model"], md["request_id"]) == ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "chatcmpl-1")
    assert md["result"] is result and md["num_attempts"] == 1


def test_success_without_usage_has_unknown_tokens(b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_response("Hello, Bob!"))
    assert call_modular(b, "SayHello", arguments={"name": "Bob"}, emitter=emitter) == "Hello, Bob!"  # own client
    _valid(capture)
    (stop,) = capture.stops
    assert [stop.measurements[k] for k in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens")] == [
        None
    ] * 4


def test_429_then_success_with_the_callers_retry(b, route, tel):
    emitter, capture = tel
    route.side_effect = [openai_error_response(429, retry_after=1), openai_response("finally", usage=(11, 2))]
    result = None
    for _attempt in range(3):  # the modular API has no retry_policy: the caller retries
        try:
            result = call_modular(b, "SayHello", arguments={"name": "Zoe"}, emitter=emitter)
            break
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 429 and exc.response.headers["retry-after"] == "1"
    assert result == "finally"
    _valid(capture)
    first, second = capture.calls
    assert first.ok is False and first.error.response.status_code == 429
    assert second.ok is True and (second.input_tokens, second.output_tokens) == (11, 2)
    assert route.call_count == 2


@pytest.mark.parametrize("status", [500, 401])
def test_http_errors_raise_http_status_error(b, route, tel, status):
    emitter, capture = tel
    route.mock(return_value=openai_error_response(status))
    with pytest.raises(httpx.HTTPStatusError) as info:
        call_modular(b, "SayHello", arguments={"name": "x"}, emitter=emitter)
    assert info.value.response.status_code == status
    assert "error" in info.value.response.json()  # the body was read before raising
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["reason"] is info.value and exc.metadata["kind"] == "error"
    assert exc.metadata["model"] == "gpt-4o-mini"


def test_read_timeout(b, route, tel):
    emitter, capture = tel
    route.side_effect = httpx.ReadTimeout
    with pytest.raises(httpx.ReadTimeout) as info:
        call_modular(b, "SayHello", arguments={"name": "x"}, emitter=emitter)
    _valid(capture)
    assert capture.exceptions[0].metadata["reason"] is info.value


def test_parse_failure_is_an_exception_event(b, route, tel):
    from baml_py import errors

    emitter, capture = tel
    route.mock(return_value=openai_response("not json at all", usage=(3, 4)))
    with pytest.raises(errors.BamlError) as info:
        call_modular(b, "ExtractResume", arguments={"resume": "x"}, emitter=emitter)
    _valid(capture)
    capture.assert_call("ExtractResume", ok=False, error=info.value, model="gpt-4o-mini")


def test_wrong_argument_names_fail_inside_the_call(b, route, tel):
    emitter, capture = tel
    with pytest.raises(TypeError):
        call_modular(b, "SayHello", arguments={"nam": "typo"}, emitter=emitter)
    _valid(capture)
    assert capture.calls[0].ok is False and route.call_count == 0


# ------------------------------------------------------------------ streams


def test_sync_stream_tokens_from_the_usage_chunk(b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_stream_response("Hello there, Ann", chunks=3, usage=(9, 5, 1), id="chatcmpl-s"))
    partials: list[str] = []
    with httpx.Client() as http:
        final = call_modular(
            b, "SayHello", arguments={"name": "Ann"}, http_client=http, emitter=emitter, stream=True,
            on_partial=partials.append,
        )
    assert final == "Hello there, Ann" and len(partials) == 3 and partials[-1] == final
    assert json.loads(route.calls.last.request.content)["stream"] is True
    _valid(capture)
    (stop,) = capture.stops
    m = stop.measurements
    assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (9, 5, 14, 1)
    assert isinstance(m["time_to_first_chunk"], int) and 0 <= m["time_to_first_chunk"] <= m["duration"]
    assert (stop.metadata["streaming"], stop.metadata["request_id"]) == (True, "chatcmpl-s")


@pytest.mark.asyncio
async def test_async_stream_tokens_from_the_usage_chunk(async_b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_stream_response(RESUME, usage=(40, 12)))
    async with httpx.AsyncClient() as http:
        final = await acall_modular(
            async_b, "ExtractResume", arguments={"resume": "x"}, http_client=http, emitter=emitter, stream=True
        )
    assert (final.name, final.skills) == ("Ann", ["Rust", "SQL"])
    _valid(capture)
    capture.assert_call("ExtractResume", ok=True, streaming=True, input_tokens=40, output_tokens=12, model="gpt-4o-mini")
    assert isinstance(capture.stops[0].measurements["time_to_first_chunk"], int)


def test_failing_stream(b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_stream_response("one two three four", break_after=2))
    partials: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError) as info:
        call_modular(b, "SayHello", arguments={"name": "x"}, emitter=emitter, stream=True, on_partial=partials.append)
    assert partials == ["one ", "one two "]
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["reason"] is info.value and exc.metadata["streaming"] is True


@pytest.mark.asyncio
async def test_abandoned_async_stream_is_an_exit(async_b, route, tel):
    emitter, capture = tel
    gate = asyncio.Event()

    class Stalling(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield b'data: {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
            await gate.wait()  # never set: the reader is cancelled while waiting
            yield b"data: [DONE]\n\n"

    route.mock(return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Stalling()))
    seen = asyncio.Event()
    task = asyncio.ensure_future(
        acall_modular(async_b, "SayHello", arguments={"name": "x"}, emitter=emitter, stream=True,
                      on_partial=lambda partial: seen.set())
    )
    await asyncio.wait_for(seen.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["kind"] == "exit" and isinstance(exc.metadata["reason"], asyncio.CancelledError)


# ------------------------------------------------------------------ concurrency and composition


@pytest.mark.asyncio
async def test_twenty_concurrent_async_calls(async_b, route, tel):
    emitter, capture = tel

    def answer(request: httpx.Request) -> httpx.Response:
        i = int(json.dumps(json.loads(request.content)["messages"]).split("caller-")[1].split(".")[0])
        return openai_response(f"hello {i}", usage=(i + 1, 2 * i + 1))

    route.side_effect = answer
    async with httpx.AsyncClient() as http:
        results = await asyncio.gather(
            *(acall_modular(async_b, "SayHello", arguments={"name": f"caller-{i}"}, http_client=http, emitter=emitter)
              for i in range(20))
        )
    assert results == [f"hello {i}" for i in range(20)]
    _valid(capture)
    assert len(capture.stops) == 20
    for call in capture.calls:
        i = int(call.arguments["name"].split("-")[1])
        assert (call.result, call.input_tokens, call.output_tokens) == (f"hello {i}", i + 1, 2 * i + 1)


def test_an_instrumented_client_works_and_does_not_double_emit(b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_response("hi", usage=(1, 1)))
    assert call_modular(instrument(b, emitter=emitter), "SayHello", arguments={"name": "x"}, emitter=emitter) == "hi"
    _valid(capture)
    assert len(capture.starts) == 1


def test_context_manager_form_with_record_openai_response(b, route, tel):
    emitter, capture = tel
    route.mock(return_value=openai_response("Hello!", usage=Usage(7, 2), id="chatcmpl-cm"))
    with emitter.call("SayHello", arguments={"name": "Cy"}, client_module="baml_client") as call:
        request = b.request.SayHello(name="Cy")
        response = httpx.post(request.url, headers=request.headers, json=request.body.json())
        record_openai_response(call, response)
        call.set_model(request.body.json()["model"])
        call.set_result(b.parse.SayHello(response.json()["choices"][0]["message"]["content"]))
    _valid(capture)
    capture.assert_call("SayHello", ok=True, result="Hello!", input_tokens=7, output_tokens=2, model="gpt-4o-mini")
    assert capture.stops[0].metadata["request_id"] == "chatcmpl-cm"


# ------------------------------------------------------------------ builders and bad input


def test_builders_shape():
    body = openai_chat_response("hi", usage=(10, 5, 3), model="m", id="chatcmpl-x")
    assert body["choices"][0]["message"]["content"] == "hi"
    assert body["usage"] == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                             "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                           "accepted_prediction_tokens": 0,
                                                           "rejected_prediction_tokens": 0}}
    assert "usage" not in openai_chat_response("hi", usage=None)
    assert openai_chat_response({"a": 1})["choices"][0]["message"]["content"] == '{"a": 1}'
    assert openai_usage(body) == Usage(10, 5, 3) and openai_usage({"id": "x"}) is None
    error = openai_error_response(429, retry_after=2)
    assert (error.status_code, error.headers["retry-after"], error.json()["error"]["type"]) == (429, "2", "requests")
    events = openai_stream_events("a b", usage=(1, 2))
    assert [e["choices"][0]["delta"].get("content") for e in events[:2]] == ["a ", "b"]
    assert events[-2]["choices"] == [] and events[-2]["usage"]["prompt_tokens"] == 1 and events[-1] == "[DONE]"
    assert openai_stream_events("a b")[-2]["choices"][0]["finish_reason"] == "stop"  # no usage chunk


@pytest.mark.parametrize(
    "build, error, match",
    [
        (lambda: openai_response("x", status_code=700), ValueError, "status_code=700"),
        (lambda: openai_error_response(200), ValueError, "status_code=200 is not an error"),
        (lambda: openai_error_response(429, retry_after=-1), ValueError, "retry_after=-1"),
        (lambda: openai_chat_response("x", usage=(-1, 2)), ValueError, "input_tokens=-1"),
        (lambda: openai_chat_response(3), TypeError, "content=3"),
        (lambda: openai_chat_response("x", model=""), TypeError, "model=''"),
        (lambda: openai_stream_events("a b", chunks=["a"]), ValueError, "do not join"),
        (lambda: openai_stream_events("a b", chunks=0), ValueError, "chunks=0"),
        (lambda: openai_stream_response("a", break_after=-1), ValueError, "break_after=-1"),
    ],
)
def test_bad_builder_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_call_input_emits_nothing(b, async_b, tel):
    emitter, capture = tel
    with pytest.raises(ValueError, match="'Nope' is not a BAML function.*SayHello"):
        call_modular(b, "Nope", arguments={}, emitter=emitter)
    async_http = httpx.AsyncClient()
    with pytest.raises(TypeError, match="acall_modular"):
        call_modular(b, "SayHello", arguments={"name": "x"}, http_client=async_http, emitter=emitter)  # type: ignore[arg-type]
    asyncio.run(async_http.aclose())
    with pytest.raises(TypeError, match="async client"):
        call_modular(async_b, "SayHello", arguments={"name": "x"}, emitter=emitter)
    with pytest.raises(TypeError, match="arguments=.*mapping"):
        call_modular(b, "SayHello", arguments=["x"], emitter=emitter)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_partial is only for stream=True"):
        call_modular(b, "SayHello", arguments={"name": "x"}, emitter=emitter, on_partial=print)
    with pytest.raises(TypeError, match="modular API"):
        call_modular(object(), "SayHello", emitter=emitter)
    assert capture.events == []
