"""instrument(): the real generated baml-py client, driven offline against FakeLLMServer."""

from __future__ import annotations

import asyncio
import gc
import traceback

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter, StreamAbandoned, validate_stream
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.instrument import InstrumentedClient, instrument, is_instrumented

RESUME = '{"name": "Ann", "skills": ["Rust", "SQL"]}'


@pytest.fixture(autouse=True)
def _quiet_baml(monkeypatch: pytest.MonkeyPatch) -> None:
    # baml-py copies os.environ per call: this silences its [BAML INFO] lines on stdout
    monkeypatch.setenv("BAML_LOG", "off")


@pytest.fixture(scope="module")
def module_server():
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(module_server: FakeLLMServer):
    module_server.reset()
    yield module_server
    module_server.reset()


@pytest.fixture
def tel():
    """(emitter, capture) on a private dispatcher; every test's events must be valid."""
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    yield Emitter(dispatcher=dispatcher), capture
    capture.detach()


@pytest.fixture
def errors():
    from baml_py import errors

    return errors


def _valid(capture: EventCapture) -> None:
    validate_stream(capture.events)
    assert capture.handler_failures == []
    assert all(call.finished for call in capture.calls)


def _client(generated_client, server, emitter, client_name="TestClient", *, async_=False, **registry_kwargs):
    base = generated_client.async_b if async_ else generated_client.b
    registry = server.client_registry(client_name, **registry_kwargs)
    return instrument(base, emitter=emitter, resource="ResumeService", action="extract").with_options(
        client_registry=registry
    )


# ------------------------------------------------------------------ successes


def test_success_with_usage_reports_what_the_server_sent(generated_client, server, tel):
    emitter, capture = tel
    server.respond(RESUME, usage=(120, 30, 20), model="gpt-4o-mini-2024-07-18")
    b = _client(generated_client, server, emitter)
    result = b.ExtractResume("Ann knows Rust and SQL")
    assert (result.name, result.skills) == ("Ann", ["Rust", "SQL"])
    _valid(capture)
    (start,) = capture.starts
    assert start.metadata["arguments"] == {"resume": "Ann knows Rust and SQL"}
    assert start.metadata["function_name"] == "ExtractResume"
    assert start.metadata["client_module"] == "baml_client"
    assert (start.metadata["resource"], start.metadata["action"]) == ("ResumeService", "extract")
    assert start.metadata["streaming"] is False
    (stop,) = capture.stops
    m, md = stop.measurements, stop.metadata
    assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (120, 30, 150, 20)
    assert md["model"] == "gpt-4o-mini" == server.requests[0].model  # what the request asked for
    assert md["response_model"] == "gpt-4o-mini-2024-07-18"  # what the server said it served
    assert (md["provider"], md["client_name"], md["num_attempts"]) == ("openai", "TestClient", 1)
    assert md["request_id"].startswith("chatcmpl-fake")
    assert md["result"] is result
    assert m["duration"] > 0
    server.assert_all_used()


def test_model_comes_from_the_request_body(generated_client, server, tel):
    emitter, capture = tel
    server.respond("Hello, Bo!", usage=(5, 3))
    b = _client(generated_client, server, emitter, model="gpt-4.1-nano")
    assert b.SayHello("Bo") == "Hello, Bo!"
    _valid(capture)
    assert server.requests[0].model == "gpt-4.1-nano"
    capture.assert_call("SayHello", ok=True, model="gpt-4.1-nano", input_tokens=5, output_tokens=3, total_tokens=8)


def test_success_without_usage_has_unknown_tokens_not_zero(generated_client, server, tel):
    emitter, capture = tel
    server.respond("Hello, Bob!")
    assert _client(generated_client, server, emitter).SayHello("Bob") == "Hello, Bob!"
    _valid(capture)
    (stop,) = capture.stops
    for key in ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens"):
        assert stop.measurements[key] is None, key
    assert stop.metadata["model"] == "gpt-4o-mini"


def test_429_then_success_under_a_retry_policy_counts_attempts(generated_client, server, tel):
    emitter, capture = tel
    server.fail(429, retry_after=1).respond("finally", usage=(11, 2))
    b = _client(generated_client, server, emitter, "RetryingClient", retry_policy="QuickRetry")
    assert b.SayHelloWithRetry("Zoe") == "finally"
    _valid(capture)
    assert len(capture.starts) == 1 and capture.exceptions == []
    (stop,) = capture.stops
    assert stop.metadata["num_attempts"] == 2
    assert stop.metadata["client_name"] == "RetryingClient"
    assert (stop.measurements["input_tokens"], stop.measurements["output_tokens"]) == (11, 2)
    assert [r.served for r in server.requests] == ["fail", "respond"]


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("status", [500, 401])
def test_http_errors_emit_the_real_exception_and_reraise_it(generated_client, server, tel, errors, status):
    emitter, capture = tel
    server.fail(status)
    with pytest.raises(errors.BamlClientHttpError) as info:
        _client(generated_client, server, emitter).SayHello("x")
    assert info.value.status_code == status
    _valid(capture)
    assert capture.stops == []
    (exc,) = capture.exceptions
    md = exc.metadata
    assert md["reason"] is info.value
    assert md["kind"] == "error"
    assert isinstance(md["stacktrace"], traceback.StackSummary) and len(md["stacktrace"]) > 0
    assert (md["model"], md["num_attempts"], md["client_name"]) == ("gpt-4o-mini", 1, "TestClient")
    assert md["request_id"].startswith("breq_")  # no response id was served: baml's request id
    assert exc.measurements["duration"] > 0


def test_timeout_with_a_low_request_timeout_emits_baml_timeout_error(generated_client, server, tel, errors):
    emitter, capture = tel
    server.hang(10)
    b = _client(
        generated_client, server, emitter, "FastTimeoutClient", options={"http": {"request_timeout_ms": 200}}
    )
    with pytest.raises(errors.BamlTimeoutError) as info:
        b.SayHelloQuickly("x")
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["reason"] is info.value
    assert exc.metadata["function_name"] == "SayHelloQuickly"
    assert exc.measurements["duration"] >= 150_000_000  # it waited for the 200 ms timeout


def test_validation_error_is_an_exception_event(generated_client, server, tel, errors):
    emitter, capture = tel
    server.respond("not json at all", usage=(3, 4))
    with pytest.raises(errors.BamlValidationError) as info:
        _client(generated_client, server, emitter).ExtractResume("x")
    assert info.value.raw_output == "not json at all"
    _valid(capture)
    capture.assert_call("ExtractResume", ok=False, error=info.value, kind="error", model="gpt-4o-mini")
    assert capture.exceptions[0].metadata["num_attempts"] == 1


def test_wrong_arguments_still_pair_start_with_exception(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, emitter)
    with pytest.raises(TypeError):
        b.SayHello(nam="typo")  # type: ignore[call-arg]
    _valid(capture)
    (call,) = capture.calls
    assert call.ok is False and isinstance(call.error, TypeError)
    assert server.requests == []


# ------------------------------------------------------------------ streams


def test_sync_stream_reads_tokens_from_the_final_usage_chunk(generated_client, server, tel):
    emitter, capture = tel
    server.respond("Hello there, Ann", usage=(9, 5, 1), chunks=3)
    stream = _client(generated_client, server, emitter).stream.SayHello("Ann")
    assert len(capture.starts) == 1 and capture.starts[0].metadata["streaming"] is True  # start on creation
    partials = list(stream)
    assert partials and partials[-1] == "Hello there, Ann"
    assert stream.get_final_response() == "Hello there, Ann"
    _valid(capture)
    (stop,) = capture.stops
    m = stop.measurements
    assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (9, 5, 14, 1)
    assert isinstance(m["time_to_first_chunk"], int) and 0 <= m["time_to_first_chunk"] <= m["duration"]
    md = stop.metadata
    assert (md["streaming"], md["model"], md["result"]) == (True, "gpt-4o-mini", "Hello there, Ann")
    assert md["request_id"].startswith("chatcmpl-fake") and md["num_attempts"] == 1
    assert server.requests[0].stream is True


@pytest.mark.asyncio
async def test_async_stream_reads_tokens_from_the_final_usage_chunk(generated_client, server, tel):
    emitter, capture = tel
    server.respond(RESUME, usage=(40, 12), model="gpt-4o-mini-2024-07-18")
    stream = _client(generated_client, server, emitter, async_=True).stream.ExtractResume("Ann: Rust, SQL")
    partials = [p async for p in stream]
    final = await stream.get_final_response()
    assert partials and (final.name, final.skills) == ("Ann", ["Rust", "SQL"])
    _valid(capture)
    (stop,) = capture.stops
    assert (stop.measurements["input_tokens"], stop.measurements["output_tokens"]) == (40, 12)
    assert isinstance(stop.measurements["time_to_first_chunk"], int)
    assert stop.metadata["response_model"] == "gpt-4o-mini-2024-07-18"
    assert stop.metadata["model"] == "gpt-4o-mini"


def test_failing_stream_emits_one_exception_with_the_error_it_raises(generated_client, server, tel, errors):
    emitter, capture = tel
    server.fail_stream(after_chunks=2, content="one two three four")
    stream = _client(generated_client, server, emitter).stream.SayHello("x")
    for _ in stream:  # like baml-py, iteration itself does not raise
        pass
    with pytest.raises(errors.BamlClientHttpError, match="Stream transport error") as info:
        stream.get_final_response()
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["reason"] is info.value and exc.metadata["streaming"] is True
    assert capture.stops == []


def test_closed_and_dropped_streams_are_abandoned(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, emitter)
    server.respond("one two three", usage=(1, 3))
    first = b.stream.SayHello("a")
    for _partial in first:
        break  # stop reading after the first partial
    first.close()
    second = b.stream.SayHello("b")  # never read: baml-py streams are lazy, nothing is sent
    del second
    gc.collect()
    _valid(capture)
    reasons = [e.metadata["reason"] for e in capture.exceptions]
    assert [type(r) for r in reasons] == [StreamAbandoned, StreamAbandoned]
    assert "closed" in str(reasons[0]) and "dropped" in str(reasons[1])
    assert all(e.metadata["kind"] == "exit" for e in capture.exceptions)
    assert len(server.requests) == 1


def test_a_stream_that_cannot_be_created_still_pairs_its_events(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, emitter)
    with pytest.raises(ValueError, match="on_tick is not supported for sync streams") as info:
        b.stream.SayHello("x", baml_options={"on_tick": lambda name, log: None})
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["reason"] is info.value and exc.metadata["streaming"] is True
    assert b.stream is b.stream  # the instrumented stream client is made once per client


@pytest.mark.asyncio
async def test_async_call_cancelled_is_an_exit(generated_client, server, tel):
    emitter, capture = tel
    server.hang(10)
    b = _client(generated_client, server, emitter, async_=True)
    task = asyncio.ensure_future(b.SayHello("slow"))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if server.requests:
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    _valid(capture)
    (exc,) = capture.exceptions
    assert exc.metadata["kind"] == "exit" and isinstance(exc.metadata["reason"], asyncio.CancelledError)


# ------------------------------------------------------------------ the proxy


def test_with_options_derivatives_of_derivatives_emit(generated_client, server, tel):
    emitter, capture = tel
    server.respond("one").respond("two").respond("three")
    root = instrument(generated_client.b, emitter=emitter)
    first = root.with_options(client_registry=server.client_registry("TestClient"))
    second = first.with_options(tags={"team": "search"})
    third = second.with_options(env={"UNUSED": "1"})
    assert [c.SayHello("x") for c in (first, second, third)] == ["one", "two", "three"]
    _valid(capture)
    assert len(capture.stops) == 3
    for derived in (first, second, third):
        assert is_instrumented(derived) and isinstance(derived, type(generated_client.b))
        assert type(derived) is InstrumentedClient


def test_other_attributes_pass_through_without_events(generated_client, server, tel):
    emitter, capture = tel
    b = _client(generated_client, server, emitter)
    request = b.request.SayHello("Ann")
    assert request.body.json()["model"] == "gpt-4o-mini"
    assert b.parse.SayHello("plain text") == "plain text"
    assert b.stream_request.SayHello("Ann").body.json()["stream"] is True
    assert "SayHello" in dir(b)
    assert capture.events == []


def test_user_collectors_still_receive_their_logs(generated_client, server, tel):
    import baml_py

    emitter, capture = tel
    mine, per_call, extra = baml_py.Collector("mine"), baml_py.Collector("per-call"), baml_py.Collector("extra")
    server.respond("a", usage=(1, 2)).respond("b", usage=(3, 4)).respond("c", usage=(5, 6))
    b = _client(generated_client, server, emitter).with_options(collector=mine)
    assert b.SayHello("x") == "a"
    assert b.SayHello("y", baml_options={"collector": per_call}) == "b"
    assert b.SayHello(name="z", baml_options={"collector": [per_call, extra]}) == "c"
    _valid(capture)
    # exactly what baml-py does without instrumentation: a per-call collector replaces with_options'
    assert [log.usage.input_tokens for log in mine.logs] == [1]
    assert [log.usage.input_tokens for log in per_call.logs] == [3, 5]
    assert [log.usage.input_tokens for log in extra.logs] == [5]
    assert [s.measurements["input_tokens"] for s in capture.stops] == [1, 3, 5]


def test_collector_given_before_instrument_still_receives_logs(generated_client, server, tel):
    import baml_py

    emitter, capture = tel
    mine = baml_py.Collector("before")
    raw = generated_client.b.with_options(collector=mine, client_registry=server.client_registry("TestClient"))
    server.respond("hi", usage=(2, 2))
    assert instrument(raw, emitter=emitter).SayHello("x") == "hi"
    assert len(mine.logs) == 1 and len(capture.stops) == 1


@pytest.mark.asyncio
async def test_twenty_concurrent_async_calls_pair_and_keep_their_own_tokens(generated_client, server, tel):
    emitter, capture = tel
    for i in range(20):
        server.respond(f"hello {i}", usage=(i + 1, 2 * i + 1))
    b = _client(generated_client, server, emitter, async_=True)
    results = await asyncio.gather(*(b.SayHello(f"n{i}") for i in range(20)))
    assert sorted(results) == sorted(f"hello {i}" for i in range(20))
    _valid(capture)
    assert len(capture.starts) == len(capture.stops) == 20
    assert len({s.metadata["telemetry_span_context"] for s in capture.starts}) == 20
    for stop in capture.stops:  # the server's order is not the calls' order: match by content
        i = int(stop.metadata["result"].split()[1])
        assert (stop.measurements["input_tokens"], stop.measurements["output_tokens"]) == (i + 1, 2 * i + 1)
    server.assert_all_used()


def test_instrumenting_twice_does_not_double_emit(generated_client, server, tel):
    emitter, capture = tel
    once = instrument(generated_client.b, emitter=emitter)
    twice = instrument(once, emitter=emitter, action="again")
    assert twice.__wrapped__ is generated_client.b
    server.respond("hi")
    assert twice.with_options(client_registry=server.client_registry("TestClient")).SayHello("x") == "hi"
    _valid(capture)
    assert len(capture.starts) == 1 and capture.starts[0].metadata["action"] == "again"


def test_disabled_emitter_emits_nothing_and_changes_nothing(generated_client, server, tel):
    import baml_py

    _, capture = tel
    mine = baml_py.Collector()
    off = Emitter(dispatcher=capture.dispatcher, enabled=False)
    server.respond("quiet", usage=(1, 1))
    b = instrument(generated_client.b, emitter=off).with_options(
        client_registry=server.client_registry("TestClient"), collector=mine
    )
    assert b.SayHello("x") == "quiet"
    assert capture.events == [] and len(mine.logs) == 1


def test_client_module_default_and_override(generated_client, server, tel):
    emitter, capture = tel
    server.respond("a").respond("b")
    registry = server.client_registry("TestClient")
    instrument(generated_client.b, emitter=emitter).with_options(client_registry=registry).SayHello("x")
    instrument(generated_client.b, emitter=emitter, client_module="app.llm").with_options(
        client_registry=registry
    ).SayHello("x")
    assert [s.metadata["client_module"] for s in capture.starts] == ["baml_client", "app.llm"]


def test_bad_input_is_rejected_clearly(generated_client):
    with pytest.raises(TypeError, match=r"not a module.*baml_client\.b"):
        instrument(generated_client.module)
    with pytest.raises(TypeError, match="not a generated baml-py client"):
        instrument(object())
    with pytest.raises(TypeError, match="emitter='nope'"):
        instrument(generated_client.b, emitter="nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="action=3"):
        instrument(generated_client.b, action=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="client_module=''"):
        instrument(generated_client.b, client_module="")


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"id": "chatcmpl-1", "object": "x", "model": "gpt-4o", "choices": [{"id": "inner"}]}', {"id": "chatcmpl-1", "model": "gpt-4o"}),
        ('{"model":"gpt-4o-mini","messages":[{"role":"user","content":"\\"model\\": \\"fake\\""}]}', {"model": "gpt-4o-mini"}),
        # keys after a nested value, or values with escapes: read with json.loads
        ('{"choices": [{"id": "inner", "model": "inner"}], "id": "outer", "model": "m"}', {"id": "outer", "model": "m"}),
        ('{"meta": {"id": "inner"}, "id": "outer", "model": "m"}', {"id": "outer", "model": "m"}),
        ('{"id": "a\\"b", "model": "m"}', {"id": 'a"b', "model": "m"}),
        ('{"id": 7, "model": null}', {}),
        ("not json at all", {}),
        ('["id", "model"]', {}),
    ],
)
def test_top_level_strings_reads_only_top_level_keys(text, expected):
    from pytest_baml_telemetry.instrument import top_level_strings

    assert top_level_strings(text, ("id", "model")) == expected
