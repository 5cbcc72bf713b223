"""instrument(): the real generated baml-py client, driven offline against FakeLLMServer."""

from __future__ import annotations

import asyncio
import gc
import traceback

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter, StreamAbandoned, validate_stream
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.instrument import (
    InstrumentedClient,
    instrument,
    is_instrumented,
)

RESUME = '{"name": "Ann", "skills": ["Rust", "SQL"]}'


pytestmark = pytest.mark.usefixtures("_quiet_baml")


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


# ------------------------------------------------------------------ the cheap paths
# Nobody listening: no Collector of ours; somebody listening: the log is read with fast
# paths that must give what a full JSON parse gives.


def _counting_collectors(client) -> list:
    """Make ``client`` (an instrumented proxy, before any call) count the Collectors it creates."""
    import baml_py

    made: list = []
    settings = object.__getattribute__(client, "_pbt_settings")

    def factory(name):
        collector = baml_py.Collector(name)
        made.append(collector)
        return collector

    settings.collector_type = factory
    return made


def test_dispatcher_has_handlers_is_exact_and_cheap_to_ask():
    d = Dispatcher()
    assert d.has_handlers(("a", "b")) is False
    d.attach("h", ("a", "b"), lambda *a: None)
    assert d.has_handlers(("a", "b")) is True
    assert d.has_handlers(("a",)) is False and d.has_handlers(("a", "b", "c")) is False
    d.execute(("x",), {})  # a name executed without handlers is cached with no handler
    assert d.has_handlers(("x",)) is False
    assert d.has_handlers(["a", "b"]) is False and d.has_handlers("a.b") is False  # not names
    d.detach("h")
    assert d.has_handlers(("a", "b")) is False


def test_without_a_stop_or_exception_handler_no_collector_is_attached(generated_client, server):
    import baml_py

    dispatcher = Dispatcher()
    starts: list = []
    dispatcher.attach("starts-only", ("ash_baml", "call", "start"), lambda e, m, md, c: starts.append(md))
    b = instrument(generated_client.b, emitter=Emitter(dispatcher=dispatcher)).with_options(
        client_registry=server.client_registry("TestClient")
    )
    made = _counting_collectors(b)
    mine = baml_py.Collector("mine")
    server.respond("a", usage=(1, 2)).respond("b", usage=(3, 4))
    assert b.SayHello("x", baml_options={"collector": mine}) == "a"
    assert made == [] and len(mine.logs) == 1  # the user's options went through as they were
    assert [s["arguments"] for s in starts] == [{"name": "x"}]

    stops = EventCapture(dispatcher=dispatcher).attach()  # now somebody listens to stop
    assert b.SayHello(name="y") == "b"
    assert len(made) == 1 and len(made[0].logs) == 1
    (call,) = stops.calls
    assert (call.input_tokens, call.output_tokens, call.model) == (3, 4, "gpt-4o-mini")
    assert call.arguments == {"name": "y"}
    stops.detach()


def test_no_handler_still_pairs_start_with_stop_and_exception(generated_client, server, errors):
    dispatcher = Dispatcher()
    seen: list = []
    dispatcher.attach("start", ("ash_baml", "call", "start"), lambda e, m, md, c: seen.append(e[-1]))
    emitter = Emitter(dispatcher=dispatcher)
    registry = server.client_registry("TestClient")
    b = instrument(generated_client.b, emitter=emitter).with_options(client_registry=registry)
    made = _counting_collectors(b)
    server.respond("ok").fail(500)
    assert b.SayHello("x") == "ok"
    with pytest.raises(errors.BamlClientHttpError):
        b.SayHello("y")
    assert seen == ["start", "start"] and made == []
    # what nobody received was still emitted in pairs: a late listener sees a valid stream
    capture = EventCapture(dispatcher=dispatcher).attach()
    server.respond("late", usage=(2, 2))
    assert b.SayHello("z") == "late"
    _valid(capture)
    capture.detach()


@pytest.mark.asyncio
async def test_async_calls_attach_a_collector_only_when_listened_to(generated_client, server):
    dispatcher = Dispatcher()
    b = instrument(generated_client.async_b, emitter=Emitter(dispatcher=dispatcher)).with_options(
        client_registry=server.client_registry("TestClient")
    )
    made = _counting_collectors(b)
    server.respond("quiet", usage=(1, 1)).respond("heard", usage=(4, 3))
    assert await b.SayHello("x") == "quiet"
    assert made == []
    capture = EventCapture(dispatcher=dispatcher).attach()
    assert await b.SayHello("y") == "heard"
    _valid(capture)
    (call,) = capture.calls
    assert len(made) == 1 and (call.input_tokens, call.output_tokens, call.model) == (4, 3, "gpt-4o-mini")
    capture.detach()


def test_an_exception_only_handler_gets_what_the_collector_knows(generated_client, server, errors):
    dispatcher = Dispatcher()
    failures: list = []
    dispatcher.attach("exc", ("ash_baml", "call", "exception"), lambda e, m, md, c: failures.append(md))
    b = instrument(generated_client.b, emitter=Emitter(dispatcher=dispatcher)).with_options(
        client_registry=server.client_registry("TestClient")
    )
    server.fail(500)
    with pytest.raises(errors.BamlClientHttpError):
        b.SayHello("x")
    (md,) = failures
    assert (md["model"], md["num_attempts"], md["client_name"]) == ("gpt-4o-mini", 1, "TestClient")
    assert md["request_id"].startswith("breq_")


def test_an_emitter_that_emits_no_stop_or_exception_reads_nothing(generated_client, server, tel):
    _, capture = tel
    starts_only = Emitter(dispatcher=capture.dispatcher, events=("start",))
    registry = server.client_registry("TestClient")
    b = instrument(generated_client.b, emitter=starts_only).with_options(client_registry=registry)
    made = _counting_collectors(b)  # calls and streams of b share its settings
    server.respond("hi")
    assert b.SayHello("x") == "hi"
    server.respond("one two")
    assert list(b.stream.SayHello("y"))[-1] == "one two"
    assert made == [] and len(capture.starts) == 2 and capture.stops == []


def test_streams_read_the_collector_only_when_listened_to(generated_client, server):
    dispatcher = Dispatcher()
    b = instrument(generated_client.b, emitter=Emitter(dispatcher=dispatcher)).with_options(
        client_registry=server.client_registry("TestClient")
    )
    made = _counting_collectors(b)
    server.respond("quiet stream", usage=(1, 1), chunks=2).respond("heard stream", usage=(6, 2), chunks=2)
    assert b.stream.SayHello("x").get_final_response() == "quiet stream"
    assert made == []
    capture = EventCapture(dispatcher=dispatcher).attach()
    assert b.stream.SayHello("y").get_final_response() == "heard stream"
    _valid(capture)
    (call,) = capture.calls
    assert len(made) == 1 and (call.input_tokens, call.output_tokens, call.model) == (6, 2, "gpt-4o-mini")
    assert call.end.metadata["request_id"].startswith("chatcmpl-fake")
    capture.detach()


# ------------------------------------------------------------------ the compiled binder


def _spec_of(function):
    from pytest_baml_telemetry.instrument import _FunctionSpec

    return _FunctionSpec(function.__name__, function)


def _generated_like(self, resume, tags=None, limit=3, baml_options={}):  # noqa: B006 - as generated
    raise AssertionError("never called")


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("r",), {}),
        (("r", {"t": "1"}), {}),
        (("r",), {"limit": 5}),
        ((), {"resume": "r", "baml_options": {"tags": {}}}),
        (("r", None, 1, {"client": "X"}), {}),
        ((), {}),  # missing resume
        (("r",), {"resume": "again"}),  # given twice
        (("r",), {"nope": 1}),  # unknown keyword
        (("r", 1, 2, {}, 5), {}),  # too many
    ],
)
def test_binder_agrees_with_the_reference_binding(args, kwargs):
    spec = _spec_of(_generated_like)
    expected = spec.bind(args, kwargs)  # the hand-written reference
    if expected is None:
        with pytest.raises(TypeError):
            spec.binder(*args, **kwargs)
        return
    arguments, options = spec.binder(*args, **kwargs)
    assert list(arguments) == ["resume", "tags", "limit"]  # parameter order, defaults applied
    assert {**arguments, "baml_options": options} == expected


def test_binder_is_only_made_for_plain_signatures():
    def no_options(self, a):
        pass

    def keyword_only(self, a, *, baml_options={}):  # noqa: B006
        pass

    assert _spec_of(no_options).binder is None
    assert _spec_of(keyword_only).binder is None and _spec_of(keyword_only).simple is False
    assert _spec_of(_generated_like).binder is not None


# ------------------------------------------------------------------ reading a FunctionLog


class _Body:
    def __init__(self, text):
        self._text = text

    def text(self):
        if isinstance(self._text, Exception):
            raise self._text
        return self._text


def _attempt(request_text, response_text=None, *, sse=None, start=0, client="C", request_id="breq_1"):
    from types import SimpleNamespace

    attempt = SimpleNamespace(
        provider="openai",
        client_name=client,
        http_request=SimpleNamespace(body=_Body(request_text), id=request_id),
        http_response=None if response_text is None else SimpleNamespace(body=_Body(response_text)),
        timing=SimpleNamespace(start_time_utc_ms=start),
    )
    if sse is not None:
        attempt.sse_responses = lambda: [SimpleNamespace(text=t) for t in sse]
    return attempt


def _log(*attempts, usage=(10, 5, None), selected="only"):
    from types import SimpleNamespace

    if selected == "only":
        selected = attempts[0] if len(attempts) == 1 else None
    counts = None
    if usage is not None:
        counts = SimpleNamespace(input_tokens=usage[0], output_tokens=usage[1], cached_input_tokens=usage[2])
    return SimpleNamespace(usage=counts, calls=list(attempts), selected_call=selected)


def _read(log):
    from pytest_baml_telemetry.instrument import read_collector_log

    call = Emitter(dispatcher=Dispatcher()).call("F")
    read_collector_log(log, call)
    return call


def _expected_served(text):
    import json

    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None, False, None
    model = data.get("model")
    ident = data.get("id")
    return (ident if isinstance(ident, str) and ident else None), isinstance(model, str), model


REQUESTS = [
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}]}',
    '{"model":"a\\"b","messages":[]}',
    '{"messages":[{"model":"inner"}],"model":"outer"}',
    '{"model": "spaced", "messages": []}',
    '{"messages":[]}',
    '{"model":7,"messages":[]}',
    "not json",
    '{"model":"m[1]","stream":true}',
]

RESPONSES = [
    '{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"id":"in"}]}',
    '{"id": "chatcmpl-2", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": []}',
    '{"choices": [{"id": "inner", "model": "inner"}], "id": "outer", "model": "m"}',
    '{"meta": {"id": "inner"}, "id": "outer", "model": "m"}',
    '{"id": "a\\"b", "model": "m", "choices": []}',
    '{"id": 7, "model": null}',
    '{"object": "id", "id": "x", "model": "model", "choices": []}',
    '{"object": "model", "model": "m", "id": "x"}',
    '{"a\\"b\\"id": "fake", "x\\"y\\"model": "fake", "id": "real", "model": "m"}',
    '{"model": "m", "id": "a[b"}',
    '{"id": "a[b", "model": "m", "choices": []}',
    '{"id": "", "model": "m"}',
    '{\n  "id": "pretty",\n  "model": "m"\n}',
    '{"id":"no-model","choices":[]}',
    '{"error": {"message": "rate limited", "type": "x"}}',
    '{"id" : "odd-spacing", "model" : "m"}',
    "not json",
    "",
]


@pytest.mark.parametrize("request_text", REQUESTS)
def test_requested_model_is_what_a_json_parse_gives(request_text):
    import json

    try:
        data = json.loads(request_text)
    except ValueError:
        data = {}
    model = data.get("model") if isinstance(data, dict) and isinstance(data.get("model"), str) else None
    assert _read(_log(_attempt(request_text))).model == model


@pytest.mark.parametrize("response_text", RESPONSES)
def test_response_id_and_model_are_what_a_json_parse_gives(response_text):
    ident, has_model, model = _expected_served(response_text)
    for log in (
        _log(_attempt(REQUESTS[0], response_text)),
        _log(_attempt(REQUESTS[0], sse=[response_text, "[DONE]"])),  # a stream: the first chunk
    ):
        call = _read(log)
        assert call.extra["request_id"] == (ident or "breq_1")
        assert ("response_model" in call.extra) is has_model
        if has_model:
            assert call.extra["response_model"] == model
        assert call.model == "gpt-4o-mini"
        assert list(call.extra) == ["num_attempts", "provider", "client_name"] + (
            ["response_model"] if has_model else []
        ) + ["request_id"]


def test_usage_is_read_as_baml_reports_it_and_still_checked():
    from pytest_baml_telemetry import Usage

    call = _read(_log(_attempt(REQUESTS[0]), usage=(120, 30, 20)))
    assert call.usage == Usage(120, 30, 20) and call.usage.total_tokens == 150
    assert type(call.usage) is Usage and hash(call.usage) == hash(Usage(120, 30, 20))
    assert _read(_log(_attempt(REQUESTS[0]), usage=(None, None, None))).usage == Usage()
    assert _read(_log(_attempt(REQUESTS[0]), usage=None)).usage is None
    with pytest.raises(ValueError, match="input_tokens=-1"):
        _read(_log(_attempt(REQUESTS[0]), usage=(-1, 2, None)))
    with pytest.raises(TypeError, match="output_tokens=True"):
        _read(_log(_attempt(REQUESTS[0]), usage=(1, True, None)))


def test_attempts_without_a_selected_one_report_the_latest():
    early = _attempt(REQUESTS[0], start=1, client="A", request_id="breq_a")
    late = _attempt(REQUESTS[0], start=9, client="B", request_id="breq_b")
    middle = _attempt(REQUESTS[0], start=5, client="M", request_id="breq_m")
    call = _read(_log(early, late, middle))
    assert (call.extra["num_attempts"], call.extra["client_name"], call.extra["request_id"]) == (3, "B", "breq_b")
    chosen = _read(_log(early, late, selected=early))
    assert (chosen.extra["num_attempts"], chosen.extra["client_name"]) == (2, "A")
    empty = _read(_log(usage=None, selected=None))
    assert empty.extra == {"num_attempts": 0} and empty.model is None


def test_unreadable_bodies_are_skipped():
    call = _read(_log(_attempt(RuntimeError("gone"), RuntimeError("gone"))))
    assert call.model is None and call.extra["request_id"] == "breq_1" and "response_model" not in call.extra


def test_a_broken_log_is_logged_not_raised(caplog):
    from types import SimpleNamespace

    from pytest_baml_telemetry.instrument import _read_collector

    call = Emitter(dispatcher=Dispatcher()).call("F")
    bad_usage = SimpleNamespace(input_tokens=-5, output_tokens=1, cached_input_tokens=None)
    broken = SimpleNamespace(last=SimpleNamespace(usage=bad_usage))
    with caplog.at_level("ERROR", logger="pytest_baml_telemetry"):
        _read_collector(broken, call)
    assert "reading the baml Collector for F failed" in caplog.text and "input_tokens=-5" in caplog.text


def _json_objects():
    from hypothesis import strategies as st

    fragments = list('ab"\\[]{}:, \n\u00e9') + ["id", "model", '"id": "', '"model":"']
    text = st.lists(st.sampled_from(fragments), max_size=6).map("".join)
    scalars = st.none() | st.booleans() | st.integers(-5, 5) | text
    values = st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(text, inner, max_size=2), max_leaves=4
    )
    keys = st.sampled_from(["id", "model", "object", "choices", "x", 'i"d', "model ", 'a"b"id', 'a"b"model'])
    return st.dictionaries(keys, values, max_size=5)


def test_fast_paths_agree_with_json_on_generated_bodies():
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from pytest_baml_telemetry.instrument import top_level_strings

    @settings(max_examples=300, deadline=None, database=None)
    @given(_json_objects(), st.sampled_from([(",", ":"), (", ", ": "), (",", ": ")]), st.booleans())
    def check(obj, separators, ascii_only):
        text = json.dumps(obj, separators=separators, ensure_ascii=ascii_only)
        expected = {k: obj[k] for k in ("id", "model") if isinstance(obj.get(k), str)}
        assert top_level_strings(text, ("id", "model")) == expected
        call = _read(_log(_attempt(text, text)))
        assert call.model == expected.get("model")
        assert call.extra["request_id"] == (expected.get("id") or "breq_1")
        assert call.extra.get("response_model") == expected.get("model")
        assert ("response_model" in call.extra) is ("model" in expected)

    check()
