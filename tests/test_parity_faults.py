"""Faults raise what baml-py 0.226.3 raises, and expose the metadata the fake client reads."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import baml_py
import pytest

from pytest_baml_telemetry.contract import Usage
from pytest_baml_telemetry.fake import faults
from pytest_baml_telemetry.fake.client import FakeBamlClient

NOT_BILLED = Usage(0, 0, 0)
SERVED = Usage(10, 5, 0)  # what the fake server's usage=(10, 5) reports: OpenAI always sends cached_tokens


@pytest.mark.parametrize(
    ("fault", "usage"),
    [
        (faults.http_error(500), NOT_BILLED),
        (faults.rate_limited(), NOT_BILLED),
        (faults.connection_refused(), NOT_BILLED),
        (faults.timeout(after="1s"), None),
        (faults.stream_failure(2), None),
        (faults.validation_error(), None),
        (faults.validation_error(usage=(12, 3)), Usage(12, 3)),
        (faults.finish_reason_error("length", usage={"input_tokens": 5, "output_tokens": 7}), Usage(5, 7)),
    ],
    ids=repr,
)
def test_fault_exposes_usage_attempts_and_client(fault: faults.Fault, usage: Usage | None) -> None:
    assert fault.usage == usage
    assert fault.num_attempts == 1
    assert fault.client_name is None
    assert fault.attempt_latencies_ns == ()


def test_fault_client_name_is_the_scripted_one() -> None:
    assert faults.http_error(500, client_name="Primary").client_name == "Primary"
    assert faults.timeout(client_name="Slow").client_name == "Slow"


def test_fault_usage_rejects_a_non_usage() -> None:
    with pytest.raises(TypeError, match=r"faults.validation_error\(\): usage='x'"):
        faults.validation_error(usage="x")


# ----------------------------------------------------------------------------------------
# The parity table: each failure mode through the REAL runtime (the generated client on
# FakeLLMServer) and through the fake (FakeBamlClient scripted with the fault), compared
# class, attributes and message layout. What baml-py 0.226.3 raised, measured this way,
# is written down in pytest_baml_telemetry/fake/fault_messages.py.

ATTRIBUTES = ("client_name", "status_code", "message", "detailed_message", "raw_output", "prompt", "finish_reason")
BODY = {"error": {"message": "scripted", "type": "server_error"}}
HELLO_PROMPT = "system: Say hello to x.\n"
FAST = {"http": {"request_timeout_ms": 300}}


def _normalise(text: Any) -> Any:
    """What differs from run to run in a real message: ports, the rendered prompt, clocks."""
    if not isinstance(text, str):
        return text
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    return re.sub(r"prompt: Chat\(.*?\), request_options: \{.*?\}, start_time: SystemTime \{[^}]*\}, latency: [^,]+,",
                  "prompt: <P>, request_options: <O>, start_time: <T>, latency: <L>,", text)


def error_view(exc: BaseException) -> dict[str, Any]:
    view: dict[str, Any] = {"class": type(exc), "args": tuple(_normalise(a) for a in exc.args)}
    for name in ATTRIBUTES:
        if hasattr(exc, name):
            view[name] = _normalise(getattr(exc, name))
    view["retry_after"] = hasattr(exc, "retry_after")
    return view


@dataclass
class Mode:
    """One failure mode: how to provoke it for real, and the fault that reproduces it."""

    id: str
    real: Callable[[Any, Any], Any]  # (server, b) -> a callable that makes the call
    fault: Callable[[], faults.Fault]
    function: str = "SayHello"
    streaming: bool = False
    client_name: str = "TestClient"
    attempts: int | None = 1


def _b(b: Any, server: Any, client: str = "TestClient", **kw: Any) -> Any:
    return b.with_options(client_registry=server.client_registry(client, **kw))


def _hello(bb: Any, streaming: bool, **options: Any) -> Callable[[], Any]:
    if streaming:
        def run() -> Any:
            stream = bb.stream.SayHello(name="x", **options)
            list(stream)
            return stream.get_final_response()
        return run
    return lambda: bb.SayHello(name="x", **options)


def _http(code: int, streaming: bool) -> Mode:
    def real(server: Any, b: Any) -> Any:
        server.fail(code, body=BODY)
        return _hello(_b(b, server), streaming)

    return Mode(f"http_{code}" + ("_stream" if streaming else ""), real, lambda: faults.http_error(code, body=BODY),
                streaming=streaming)


def _pre_aborted(server: Any, b: Any) -> Any:
    server.respond("hi")
    controller = baml_py.AbortController()
    controller.abort()
    return lambda: _b(b, server).SayHello(name="x", baml_options={"abort_controller": controller})


def _aborted_in_flight(server: Any, b: Any) -> Any:
    server.hang(3)
    controller = baml_py.AbortController()

    def run() -> Any:
        threading.Timer(0.3, controller.abort).start()
        return _b(b, server).SayHello(name="x", baml_options={"abort_controller": controller})

    return run


def _connect_timeout(server: Any, b: Any) -> Any:
    # a listening socket whose accept queue is full drops the SYN: the connect times out
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(s)
    registry = baml_py.ClientRegistry()
    registry.add_llm_client("TestClient", "openai", {
        "model": "gpt-4o-mini", "api_key": "k", "base_url": f"http://127.0.0.1:{port}/v1",
        "http": {"connect_timeout_ms": 300},
    })

    def run() -> Any:
        try:
            return b.with_options(client_registry=registry).SayHello(name="x")
        finally:
            for s in [*fillers, listener]:
                s.close()

    return run


def _retrying(server: Any, b: Any, streaming: bool = False, **kw: Any) -> Any:
    bb = _b(b, server, "RetryingClient", retry_policy="QuickRetry", **kw)
    if streaming:
        def run() -> Any:
            stream = bb.stream.SayHelloWithRetry(name="x")
            list(stream)
            return stream.get_final_response()
        return run
    return lambda: bb.SayHelloWithRetry(name="x")


def _fallback(server: Any, b: Any) -> Any:
    server.fail(429, body=BODY).fail(500, body=BODY)
    registry = server.client_registry("A")
    server.client_registry("B", registry=registry)
    registry.add_llm_client("TestClient", "fallback", {"strategy": ["A", "B"]})
    return lambda: b.with_options(client_registry=registry).SayHello(name="x")


def _retry_then_invalid(server: Any, b: Any) -> Any:
    server.fail(429, body=BODY).respond("not json", usage=(10, 5))
    bb = _b(b, server, "RetryingClient", retry_policy="QuickRetry", primary=True)
    return lambda: bb.ExtractResume(resume="x")


RESUME_PROMPT = (
    "system: Extract the resume from this text:\nx\n\nAnswer in JSON using this schema:\n{\n  name: string,\n"
    "  skills: string[],\n}\n"
)
RESUME_PARSE_ERROR = (
    'Failed to parse LLM response: Failed to coerce value: ParsingError { scope: [], reason: "Failed while parsing '
    'required fields: missing=1, unparsed=0", causes: [ParsingError { scope: [], reason: "Missing required field: '
    'name", causes: [] }] }'
)


def _resume_invalid(**kw: Any) -> faults.Fault:
    return faults.validation_error(raw_output="not json", prompt=RESUME_PROMPT, message=RESUME_PARSE_ERROR, **kw)


MODES = [
    *(_http(code, False) for code in (400, 401, 404, 429, 500, 503)),
    *(_http(code, True) for code in (429, 500)),
    Mode("http_503_text_body",
         lambda s, b: (s.fail(503, body="upstream down"), _hello(_b(b, s), False))[1],
         lambda: faults.http_error(503, body="upstream down")),
    Mode("http_503_text_body_stream",
         lambda s, b: (s.fail(503, body="upstream down"), _hello(_b(b, s), True))[1],
         lambda: faults.http_error(503, body="upstream down"), streaming=True),
    Mode("connection_refused", lambda s, b: _hello(b, False), faults.connection_refused),
    Mode("connection_refused_stream", lambda s, b: _hello(b, True), faults.connection_refused, streaming=True),
    Mode("timeout_request", lambda s, b: (s.hang(3), _hello(_b(b, s, options=FAST), False))[1],
         lambda: faults.timeout(after="300ms")),
    Mode("timeout_request_stream", lambda s, b: (s.hang(3), _hello(_b(b, s, options=FAST), True))[1],
         lambda: faults.timeout(after="300ms"), streaming=True),
    Mode("timeout_connect", _connect_timeout, lambda: faults.timeout(after="300ms", kind="connect")),
    Mode("timeout_idle_stream",
         lambda s, b: (s.respond("hello there my friend", chunks=4, chunk_delay=1.0),
                       _hello(_b(b, s, options={"http": {"idle_timeout_ms": 300}}), True))[1],
         lambda: faults.stream_failure(1, error=faults.timeout(kind="idle", limit="300ms")), streaming=True),
    Mode("malformed", lambda s, b: (s.malformed(), _hello(_b(b, s), False))[1], faults.malformed),
    Mode("malformed_stream", lambda s, b: (s.malformed(), _hello(_b(b, s), True))[1], faults.malformed, streaming=True),
    Mode("stream_cut", lambda s, b: (s.fail_stream(2), _hello(_b(b, s), True))[1],
         lambda: faults.stream_failure(after_partials=2), streaming=True),
    Mode("stream_cut_non_streaming_call", lambda s, b: (s.fail_stream(2), _hello(_b(b, s), False))[1],
         lambda: faults.stream_failure(after_partials=2)),
    Mode("finish_reason",
         lambda s, b: (s.respond("cut short", finish_reason="length", usage=(10, 5)),
                       _hello(_b(b, s, options={"finish_reason_allow_list": ["stop"]}), False))[1],
         lambda: faults.finish_reason_error("length", raw_output="cut short", prompt=HELLO_PROMPT, usage=SERVED)),
    Mode("finish_reason_stream",
         lambda s, b: (s.respond("cut short", finish_reason="length", usage=(10, 5)),
                       _hello(_b(b, s, options={"finish_reason_allow_list": ["stop"]}), True))[1],
         lambda: faults.finish_reason_error("length", raw_output="cut short", prompt=HELLO_PROMPT, usage=SERVED),
         streaming=True),
    Mode("validation",
         lambda s, b: (s.respond("not json", usage=(10, 5)), lambda: _b(b, s).ExtractResume(resume="x"))[1],
         lambda: _resume_invalid(usage=SERVED), function="ExtractResume"),
    Mode("abort_before_the_call", _pre_aborted, faults.abort, attempts=None),  # baml-py makes no attempt
    Mode("abort_in_flight", _aborted_in_flight, lambda: faults.abort(after="300ms")),
    Mode("retry_3_http",
         lambda s, b: (s.fail(429, body=BODY).fail(500, body=BODY).fail(503, body=BODY), _retrying(s, b))[1],
         lambda: faults.attempts(faults.rate_limited(body=BODY), faults.http_error(500, body=BODY),
                                 faults.http_error(503, body=BODY)),
         function="SayHelloWithRetry", client_name="RetryingClient", attempts=3),
    Mode("retry_3_http_stream",
         lambda s, b: (s.fail(429, body=BODY).fail(500, body=BODY).fail(503, body=BODY), _retrying(s, b, True))[1],
         lambda: faults.attempts(faults.rate_limited(body=BODY), faults.http_error(500, body=BODY),
                                 faults.http_error(503, body=BODY)),
         function="SayHelloWithRetry", client_name="RetryingClient", attempts=3, streaming=True),
    Mode("retry_timeout_in_the_middle",
         lambda s, b: (s.fail(429, body=BODY).hang(3).fail(503, body=BODY), _retrying(s, b, options=FAST))[1],
         lambda: faults.attempts(faults.rate_limited(body=BODY), faults.timeout(after="300ms"),
                                 faults.http_error(503, body=BODY)),
         function="SayHelloWithRetry", client_name="RetryingClient", attempts=3),
    Mode("retry_ending_in_a_timeout",
         lambda s, b: (s.fail(429, body=BODY).fail(500, body=BODY).hang(3), _retrying(s, b, options=FAST))[1],
         lambda: faults.attempts(faults.rate_limited(body=BODY), faults.http_error(500, body=BODY),
                                 faults.timeout(after="300ms")),
         function="SayHelloWithRetry", client_name="RetryingClient", attempts=3),
    Mode("retry_ending_in_a_validation_error", _retry_then_invalid,
         lambda: faults.attempts(faults.rate_limited(body=BODY), _resume_invalid(), usage=SERVED),
         function="ExtractResume", client_name="RetryingClient", attempts=2),
    Mode("fallback_two_clients", _fallback,
         lambda: faults.attempts(faults.rate_limited(body=BODY, client_name="A"),
                                 faults.http_error(500, body=BODY, client_name="B")),
         client_name="B", attempts=2),
]


def _raised(run: Callable[[], Any]) -> BaseException:
    try:
        result = run()
    except BaseException as exc:  # noqa: BLE001 - the exception is what is compared
        return exc
    raise AssertionError(f"no exception; the call returned {result!r}")


def _fake_error(mode: Mode, fault: faults.Fault) -> BaseException:
    fake = FakeBamlClient(client_name=mode.client_name)
    fake.fail(mode.function, fault)
    if mode.streaming:
        stream = getattr(fake.stream, mode.function)(name="x")

        def run() -> Any:
            list(stream)
            return stream.get_final_response()

        return _raised(run)
    arguments = {"resume": "x"} if mode.function == "ExtractResume" else {"name": "x"}
    return _raised(lambda: getattr(fake, mode.function)(**arguments))


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAML_LOG", "off")


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.id)
def test_the_fault_raises_what_the_real_runtime_raises(mode: Mode, generated_client: Any, server: Any) -> None:
    collector = baml_py.Collector()
    real = _raised(mode.real(server, generated_client.b.with_options(collector=collector)))
    fault = mode.fault()
    assert error_view(_fake_error(mode, fault)) == error_view(real)
    assert fault.num_attempts == mode.attempts
    if collector.last is not None and collector.last.calls:
        assert len(collector.last.calls) == mode.attempts
        scripted = {f.client_name or mode.client_name for f in fault.attempt_faults} or {mode.client_name}
        assert {call.client_name for call in collector.last.calls} == scripted


# ----------------------------------------------------------------------------------------
# The fault objects: what the fake client reads from them, and their argument checks.


@pytest.mark.parametrize(
    ("fault", "usage"),
    [
        (faults.http_error(2), None),  # a cut body: the provider may have billed
        (faults.http_error(200), None),
        (faults.malformed(), None),
        # nothing was sent, but baml-py's message is a request timeout's: production cannot tell
        (faults.timeout(after="1s", kind="connect"), None),
        (faults.timeout(after="1s", kind="idle"), None),
        (faults.abort(), NOT_BILLED),  # aborted before the call: nothing was sent (no attempt)
        (faults.abort(after="1s"), None),
        (faults.stream_failure(1, error=faults.http_error(500)), None),  # partials arrived
        (faults.stream_failure(0, error=faults.http_error(500)), NOT_BILLED),
        (faults.attempts(faults.rate_limited(), faults.http_error(503)), NOT_BILLED),
        (faults.attempts(faults.rate_limited(), faults.timeout(after="1s")), None),
        (faults.attempts(faults.rate_limited(), faults.validation_error(usage=(10, 5))), Usage(10, 5, None)),
        (faults.attempts(faults.rate_limited(), faults.validation_error(), usage=(10, 5)), Usage(10, 5)),
    ],
    ids=repr,
)
def test_each_fault_says_whether_it_was_billed(fault: faults.Fault, usage: Usage | None) -> None:
    assert fault.usage == usage


def test_attempts_expose_their_count_latencies_and_last_client() -> None:
    fault = faults.attempts(
        faults.rate_limited(after="100ms", client_name="A"),
        faults.timeout(after="2s"),
        faults.http_error(503, after="50ms", client_name="B"),
    )
    assert fault.num_attempts == 3
    assert fault.attempt_latencies_ns == (100_000_000, 2_000_000_000, 50_000_000)
    assert fault.client_name == "B"
    assert fault.after_ns is None  # the call lasts the sum of the attempts
    exc = fault.build(client_name="Retrying")
    assert type(exc) is baml_py.errors.BamlClientHttpError and exc.status_code == 503 and exc.client_name == "B"
    lines = exc.detailed_message.split("\n")
    assert lines[:3] == ["3 failed attempts:", "", 'Attempt 0: LLM client "A" failed with status code: RateLimited (429)']
    assert lines[3].startswith("    Message: Request failed with status code: 429 Too Many Requests. ")
    assert lines[4] == 'Attempt 1: LLM client "Retrying" timed out: Request timed out'
    assert lines[5] == 'Attempt 2: LLM client "B" failed with status code: ServiceUnavailable (503)'
    ending_in_timeout = faults.attempts("rate_limited", faults.timeout(after="1s")).build()
    assert type(ending_in_timeout) is baml_py.errors.BamlTimeoutError and not hasattr(ending_in_timeout, "detailed_message")
    assert faults.make("attempts", "rate_limited", "timeout").num_attempts == 2


def test_an_attempt_list_ending_in_a_stream_failure_streams_its_partials() -> None:
    fault = faults.attempts(faults.rate_limited(), faults.stream_failure(partials=["a", "ab"]))
    assert fault.partials == ("a", "ab")
    exc = fault.build(client_name="C", streaming=True)
    assert exc.status_code == 2 and exc.message.startswith("Stream transport error: ")
    assert "Attempt 1: LLM client \"C\" failed with status code: BadResponse 2" in exc.detailed_message


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: faults.attempts(faults.rate_limited()), TypeError, r"faults.attempts\(\): expected two or more faults"),
        (lambda: faults.attempts(), TypeError, "got 0"),
        (lambda: faults.attempts("rate_limited", faults.attempts("timeout", "abort")), ValueError, "cannot be nested"),
        (lambda: faults.attempts(faults.stream_failure(1), "timeout"), ValueError, "only the last attempt"),
        (lambda: faults.attempts("rate_limited", 42), TypeError, r"faults.attempts\(attempt 1\)=42"),
        (lambda: faults.attempts("rate_limited", "timeout", usage="x"), TypeError, r"faults.attempts\(\): usage='x'"),
        (lambda: faults.timeout(kind="wall"), ValueError, r"faults.timeout\(kind='wall'\): expected one of 'request'"),
        (lambda: faults.timeout(kind="idle"), TypeError, r"faults.timeout\(kind='idle'\): give after= or limit="),
        (lambda: faults.timeout("1s", limit="soon"), ValueError, "'soon'"),
        (lambda: faults.http_error(1), ValueError, r"faults.http_error\(status_code=1\): expected an HTTP status code in "
                                                    r"100..599, or 2 or 200"),
        (lambda: faults.http_error(600), ValueError, "status_code=600"),
        (lambda: faults.http_error(500, body=3), TypeError, r"faults.http_error\(body=3\): expected a str, a dict"),
        (lambda: faults.malformed(3), TypeError, r"faults.malformed\(body=3\)"),
        (lambda: faults.malformed(parse_error=3), TypeError, r"faults.malformed\(parse_error=3\)"),
        (lambda: faults.malformed('{"a": 1}'), ValueError, r"faults.malformed\(body='\{\"a\": 1\}'\) is valid JSON: "
                                                          "expected a body that does not parse"),
        (lambda: faults.finish_reason_error(usage=(-1, 0)), ValueError, "input_tokens=-1"),
    ],
)
def test_bad_fault_arguments_are_refused_naming_them(make: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make()


def test_http_error_takes_baml_pys_own_status_codes() -> None:
    cut = faults.http_error(2).build(client_name="C")
    assert cut.status_code == 2 and cut.message.startswith("Could not read response body: ")
    assert cut.detailed_message.startswith('LLM client "C" failed with status code: Unspecified error code: 2\n')
    unparsed = faults.http_error(200).build(client_name="C")
    assert unparsed.status_code == 200 and unparsed.message.startswith('LLM call failed: LLMErrorResponse { client: "C"')
    assert faults.http_error(200).build(streaming=True).message.startswith("Failed to parse SSE data as JSON: ")


def test_retry_after_shapes_only_the_fault_never_the_error() -> None:
    fault = faults.rate_limited(retry_after="1500ms")
    assert fault.retry_after == 1.5
    for streaming in (False, True):
        exc = fault.build(streaming=streaming)
        assert not hasattr(exc, "retry_after") and "Retry-After" not in exc.detailed_message
    assert faults.http_error(500).retry_after is None


def test_timeout_kinds_carry_the_real_messages() -> None:
    assert faults.timeout(after="1s").build().message == "Request timed out"
    assert faults.timeout(after="1s", kind="connect").build().message == "Request timed out"
    assert faults.timeout(after="2s", kind="idle", limit="300ms").build().message == (
        "Timeout: No data received within 300ms (idle_timeout)"
    )
    assert faults.timeout(after="1500ms", kind="idle").build().message == "Timeout: No data received within 1500ms (idle_timeout)"
    assert faults.timeout(kind="total", limit="10s").build().message == "Request timed out after 10000ms"
    assert repr(faults.timeout("1s", kind="idle")) == "timeout('1s', kind='idle')"


def test_finish_reason_and_abort_messages() -> None:
    exc = faults.finish_reason_error("content_filter", raw_output="r", prompt="p").build()
    assert exc.message == "Finish reason not allowed" and exc.finish_reason == "content_filter"
    assert exc.detailed_message == "Finish reason error: Finish reason not allowed\nPrompt: p\nRaw Response: r\nFinish Reason: content_filter"
    assert faults.abort().build().args == ("Operation was aborted",)
    assert faults.abort(after="1s").build().args == ("AbortError",)
    assert faults.abort(message="custom").build().args == ("custom",)


def test_the_registry_has_the_new_faults() -> None:
    assert {"malformed", "attempts"} <= set(faults.FAULTS)
    assert faults.FAULTS["malformed"].drawn and not faults.FAULTS["attempts"].drawn
    assert faults.make("malformed").build(client_name="C").status_code == 200


# ----------------------------------------------------------------------------------------
# The events: the same names, kind, keys, tokens and attempts on both paths.

TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens")


def _recording() -> tuple[Any, list[tuple[Any, dict[str, Any], dict[str, Any]]]]:
    from pytest_baml_telemetry import Dispatcher, Emitter

    dispatcher = Dispatcher()
    seen: list[tuple[Any, dict[str, Any], dict[str, Any]]] = []
    dispatcher.attach_many(
        "parity",
        [("ash_baml", "call", kind) for kind in ("start", "stop", "exception")],
        lambda name, m, md, _: seen.append((name, dict(m), dict(md))),
    )
    return Emitter(dispatcher=dispatcher), seen


def event_view(seen: list[tuple[Any, dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """What must agree between the fake and the real runtime: not values that name the run."""
    out = []
    for name, measurements, metadata in seen:
        view: dict[str, Any] = {
            "event": name[-1],
            "measurements": sorted(measurements),
            "metadata": sorted(k for k in metadata if k != "response_model"),  # only when reported
        }
        if name[-1] != "start":
            view["tokens"] = {k: measurements.get(k) for k in TOKENS}
            view["num_attempts"] = metadata.get("num_attempts")
            view["kind"] = metadata.get("kind")
            view["reason"] = type(metadata.get("reason")).__name__
        out.append(view)
    return out


def _fake_events(mode: Mode, fault: faults.Fault) -> list[dict[str, Any]]:
    emitter, seen = _recording()
    fake = FakeBamlClient(emitter=emitter, client_name=mode.client_name)
    fake.fail(mode.function, fault)
    arguments = {"resume": "x"} if mode.function == "ExtractResume" else {"name": "x"}
    if mode.streaming:
        stream = getattr(fake.stream, mode.function)(**arguments)

        def run() -> Any:
            list(stream)
            return stream.get_final_response()

        _raised(run)
        del stream
    else:
        _raised(lambda: getattr(fake, mode.function)(**arguments))
    return event_view(seen)


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.id)
def test_the_fault_emits_what_the_real_runtime_emits(mode: Mode, generated_client: Any, server: Any) -> None:
    from pytest_baml_telemetry import instrument

    emitter, seen = _recording()
    _raised(mode.real(server, instrument(generated_client.b, emitter=emitter)))
    real = event_view(seen)
    fake = _fake_events(mode, mode.fault())
    assert [e["event"] for e in real] == ["start", "exception"]
    assert fake == real

