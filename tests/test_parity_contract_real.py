"""Issue 12 on the real runtime: instrument(b) reads baml-py's Collector on failures too.

The generated client (tests/baml_src, baml-py 0.226.3) runs against FakeLLMServer. What
the Collector holds on each failure was measured there: the provider's usage for a
BamlValidationError, a BamlClientFinishReasonError and a retry that ended in a validation
error; no counts for an HTTP error (status_code = the HTTP status), a refused connection
(BamlClientHttpError, status_code 503), a timeout, a cut stream (status_code 2) and an abort.
The billing rule turns the not-billed ones (status >= 400) into 0/0 and leaves the rest None.
"""

from __future__ import annotations

import threading

import pytest

from pytest_baml_telemetry import validate_stream
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.instrument import instrument

pytestmark = pytest.mark.usefixtures("_quiet_baml")

RESUME = '{"name": "Ann", "skills": ["Rust", "SQL"]}'
CALL_KEYS = ("model", "provider", "client_name", "num_attempts", "request_id")


@pytest.fixture
def errors():
    from baml_py import errors

    return errors


def _client(generated_client, server, emitter, client_name="TestClient", *, async_=False, **registry_kwargs):
    base = generated_client.async_b if async_ else generated_client.b
    registry = server.client_registry(client_name, **registry_kwargs)
    return instrument(base, emitter=emitter).with_options(client_registry=registry)


def _only_exception(capture: EventCapture):
    validate_stream(capture.events)
    assert capture.handler_failures == [] and capture.stops == []
    (exc,) = capture.exceptions
    for key in CALL_KEYS:
        assert key in exc.metadata, key
    return exc


def _tokens(exc):
    m = exc.measurements
    return (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"])


# ------------------------------------------------------------------ billed: the provider answered


def test_validation_error_carries_the_providers_usage_and_metadata(generated_client, server, tel, errors):
    emitter, capture = tel
    server.respond("not json at all", usage=(30, 4, 10), model="gpt-4o-mini-2024-07-18")
    with pytest.raises(errors.BamlValidationError):
        _client(generated_client, server, emitter).ExtractResume("x")
    exc = _only_exception(capture)
    assert _tokens(exc) == (30, 4, 34, 10)
    md = exc.metadata
    assert (md["model"], md["provider"], md["client_name"], md["num_attempts"]) == (
        "gpt-4o-mini", "openai", "TestClient", 1,
    )
    assert md["response_model"] == "gpt-4o-mini-2024-07-18"
    assert md["request_id"].startswith("chatcmpl-")  # the provider answered: its response id


def test_validation_error_without_usage_is_unknown(generated_client, server, tel, errors):
    emitter, capture = tel
    server.respond("not json at all")
    with pytest.raises(errors.BamlValidationError):
        _client(generated_client, server, emitter).ExtractResume("x")
    assert _tokens(_only_exception(capture))[:3] == (None, None, None)


def test_finish_reason_error_carries_the_usage(generated_client, server, tel, errors):
    emitter, capture = tel
    server.respond("cut short", usage=(8, 9), finish_reason="length")
    b = _client(generated_client, server, emitter, options={"finish_reason_allow_list": ["stop"]})
    with pytest.raises(errors.BamlClientFinishReasonError):
        b.SayHello("x")
    exc = _only_exception(capture)
    assert _tokens(exc)[:3] == (8, 9, 17)
    assert exc.metadata["request_id"].startswith("chatcmpl-")


def test_retry_ending_in_a_validation_error_carries_usage_and_attempts(generated_client, server, tel, errors):
    emitter, capture = tel
    server.fail(429).respond("not json", usage=(5, 6))
    # ExtractResume's TestClient, replaced by one with a retry policy
    b = _client(generated_client, server, emitter, "TestClient", retry_policy="QuickRetry")
    with pytest.raises(errors.BamlValidationError):
        b.ExtractResume("x")
    exc = _only_exception(capture)
    assert _tokens(exc)[:3] == (5, 6, 11)
    assert exc.metadata["num_attempts"] == 2 and exc.metadata["client_name"] == "TestClient"
    assert [r.served for r in server.requests] == ["fail", "respond"]


def test_stream_finish_reason_error_carries_the_usage(generated_client, server, tel, errors):
    emitter, capture = tel
    server.respond("cut short here", usage=(8, 9), finish_reason="length")
    b = _client(generated_client, server, emitter, options={"finish_reason_allow_list": ["stop"]})
    stream = b.stream.SayHello("x")
    for _ in stream:
        pass
    with pytest.raises(errors.BamlClientFinishReasonError):
        stream.get_final_response()
    exc = _only_exception(capture)
    assert _tokens(exc)[:3] == (8, 9, 17) and exc.metadata["streaming"] is True


@pytest.mark.asyncio
async def test_async_validation_error_carries_the_usage(generated_client, server, tel, errors):
    emitter, capture = tel
    server.respond("nope", usage=(2, 3))
    with pytest.raises(errors.BamlValidationError):
        await _client(generated_client, server, emitter, async_=True).ExtractResume("x")
    assert _tokens(_only_exception(capture))[:3] == (2, 3, 5)


# ------------------------------------------------------------------ not billed: 0 / 0


@pytest.mark.parametrize("status", [400, 401, 429, 500])
def test_http_error_is_not_billed(generated_client, server, tel, errors, status):
    emitter, capture = tel
    server.fail(status)
    with pytest.raises(errors.BamlClientHttpError) as info:
        _client(generated_client, server, emitter).SayHello("x")
    assert info.value.status_code == status
    exc = _only_exception(capture)
    assert _tokens(exc) == (0, 0, 0, 0)
    assert (exc.metadata["provider"], exc.metadata["client_name"], exc.metadata["num_attempts"]) == (
        "openai", "TestClient", 1,
    )
    assert exc.metadata["request_id"].startswith("breq_")
    assert "response_model" not in exc.metadata


def test_retries_that_all_fail_are_not_billed(generated_client, server, tel, errors):
    emitter, capture = tel
    server.fail(500).fail(500).fail(500)
    b = _client(generated_client, server, emitter, "RetryingClient", retry_policy="QuickRetry")
    with pytest.raises(errors.BamlClientHttpError):
        b.SayHelloWithRetry("x")
    exc = _only_exception(capture)
    assert _tokens(exc) == (0, 0, 0, 0) and exc.metadata["num_attempts"] == 3


def test_refused_connection_is_not_billed(generated_client, tel, errors):
    emitter, capture = tel
    # the declared TestClient points at 127.0.0.1:9, where nothing listens
    b = instrument(generated_client.b, emitter=emitter)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert info.value.status_code == 503 and "Connection refused" in info.value.message
    exc = _only_exception(capture)
    assert _tokens(exc) == (0, 0, 0, 0)
    assert exc.metadata["client_name"] == "TestClient" and exc.metadata["num_attempts"] == 1


def test_stream_http_error_is_not_billed(generated_client, server, tel, errors):
    emitter, capture = tel
    server.fail(500)
    stream = _client(generated_client, server, emitter).stream.SayHello("x")
    for _ in stream:
        pass
    with pytest.raises(errors.BamlClientHttpError):
        stream.get_final_response()
    assert _tokens(_only_exception(capture)) == (0, 0, 0, 0)


# ------------------------------------------------------------------ billing unknown: None


def _unknown(exc) -> None:
    assert _tokens(exc) == (None, None, None, None)


def test_timeout_is_unknown(generated_client, server, tel, errors):
    emitter, capture = tel
    server.hang(10)
    b = _client(
        generated_client, server, emitter, "FastTimeoutClient", options={"http": {"request_timeout_ms": 200}}
    )
    with pytest.raises(errors.BamlTimeoutError):
        b.SayHelloQuickly("x")
    exc = _only_exception(capture)
    _unknown(exc)
    assert exc.metadata["client_name"] == "FastTimeoutClient" and exc.metadata["num_attempts"] == 1


def test_cut_stream_is_unknown(generated_client, server, tel, errors):
    emitter, capture = tel
    server.fail_stream(after_chunks=2, content="one two three four")
    stream = _client(generated_client, server, emitter).stream.SayHello("x")
    for _ in stream:
        pass
    with pytest.raises(errors.BamlClientHttpError) as info:
        stream.get_final_response()
    assert info.value.status_code == 2
    _unknown(_only_exception(capture))


def test_dropped_connection_and_malformed_answer_are_unknown(generated_client, server, tel, errors):
    emitter, capture = tel
    server.hang(0.2).malformed()
    b = _client(generated_client, server, emitter)
    with pytest.raises(errors.BamlClientHttpError) as dropped:
        b.SayHello("x")
    with pytest.raises(errors.BamlClientHttpError) as malformed:
        b.SayHello("x")
    assert (dropped.value.status_code, malformed.value.status_code) == (2, 200)
    validate_stream(capture.events)
    assert len(capture.exceptions) == 2
    for exc in capture.exceptions:
        _unknown(exc)


def test_abort_in_flight_is_unknown(generated_client, server, tel, errors):
    import baml_py

    emitter, capture = tel
    server.hang(5)
    controller = baml_py.AbortController()
    timer = threading.Timer(0.2, controller.abort)
    timer.start()
    try:
        with pytest.raises(errors.BamlAbortError):
            _client(generated_client, server, emitter).SayHello("x", baml_options={"abort_controller": controller})
    finally:
        timer.cancel()
    exc = _only_exception(capture)
    _unknown(exc)
    assert exc.metadata["num_attempts"] == 1


# ------------------------------------------------------------------ the httpx path (modular.py), same rule


def _modular_b(generated_client, server, *, async_=False):
    base = generated_client.async_b if async_ else generated_client.b
    return base.with_options(client_registry=server.client_registry("TestClient"))


def test_modular_parse_failure_carries_the_usage(generated_client, server, tel):
    from baml_py import errors

    from pytest_baml_telemetry.modular import call_modular

    emitter, capture = tel
    server.respond("not json at all", usage=(3, 4, 1))
    with pytest.raises(errors.BamlError):  # b.parse raises a plain BamlError (baml-py 0.226.3)
        call_modular(_modular_b(generated_client, server), "ExtractResume", arguments={"resume": "x"}, emitter=emitter)
    exc = _only_exception(capture)
    assert _tokens(exc) == (3, 4, 7, 1)
    assert exc.metadata["request_id"].startswith("chatcmpl-") and exc.metadata["num_attempts"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_modular_http_error_is_not_billed(generated_client, server, tel, stream):
    import httpx

    from pytest_baml_telemetry.modular import call_modular

    emitter, capture = tel
    server.fail(429)
    with pytest.raises(httpx.HTTPStatusError):
        call_modular(
            _modular_b(generated_client, server), "SayHello", arguments={"name": "x"}, emitter=emitter, stream=stream
        )
    exc = _only_exception(capture)
    assert _tokens(exc) == (0, 0, 0, 0)
    # no response id was served: baml's own request id, as instrument(b) reports it
    assert exc.metadata["request_id"].startswith("breq_") and exc.metadata["num_attempts"] == 1


def test_modular_refused_connection_is_not_billed(generated_client, tel):
    import httpx

    from pytest_baml_telemetry.modular import call_modular

    emitter, capture = tel
    with pytest.raises(httpx.ConnectError):  # the declared client: 127.0.0.1:9
        call_modular(generated_client.b, "SayHello", arguments={"name": "x"}, emitter=emitter)
    assert _tokens(_only_exception(capture)) == (0, 0, 0, 0)


@pytest.mark.asyncio
async def test_modular_async_refused_connection_and_http_error_are_not_billed(generated_client, server, tel):
    import httpx

    from pytest_baml_telemetry.modular import acall_modular

    emitter, capture = tel
    with pytest.raises(httpx.ConnectError):
        await acall_modular(generated_client.async_b, "SayHello", arguments={"name": "x"}, emitter=emitter)
    server.fail(500)
    with pytest.raises(httpx.HTTPStatusError):
        await acall_modular(
            _modular_b(generated_client, server, async_=True), "SayHello", arguments={"name": "x"},
            emitter=emitter, stream=True,
        )
    validate_stream(capture.events)
    assert [_tokens(e) for e in capture.exceptions] == [(0, 0, 0, 0), (0, 0, 0, 0)]


def test_modular_timeout_and_cut_stream_are_unknown(generated_client, server, tel):
    import httpx

    from pytest_baml_telemetry.modular import call_modular

    emitter, capture = tel
    server.hang(5).fail_stream(after_chunks=2, content="one two three")
    b = _modular_b(generated_client, server)
    with httpx.Client(timeout=0.2) as http, pytest.raises(httpx.ReadTimeout):
        call_modular(b, "SayHello", arguments={"name": "x"}, emitter=emitter, http_client=http)
    server.reset()
    server.fail_stream(after_chunks=2, content="one two three")
    with pytest.raises(httpx.HTTPError):
        call_modular(b, "SayHello", arguments={"name": "x"}, emitter=emitter, stream=True)
    validate_stream(capture.events)
    assert [_tokens(e) for e in capture.exceptions] == [(None, None, None, None)] * 2
