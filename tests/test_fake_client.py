"""FakeBamlClient and faults: real baml-py errors, exact virtual durations, scripts, specs."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import types
from datetime import timedelta
from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import (
    Dispatcher,
    Emitter,
    StreamAbandoned,
    VirtualClock,
    validate_stream,
)
from pytest_baml_telemetry.clock import SYSTEM_CLOCK
from pytest_baml_telemetry.fake import (
    AsyncFakeBamlClient,
    FakeBamlClient,
    NothingScriptedError,
    UnusedOutcomesError,
    Usage,
    faults,
)

MS = 1_000_000
S = 1_000_000_000
PREFIX = ("ash_baml", "call")


class Events:
    """Captures every start / stop / exception event of a fresh dispatcher."""

    def __init__(self) -> None:
        self.dispatcher = Dispatcher()
        self.items: list[tuple[tuple[str, ...], dict[str, Any], dict[str, Any]]] = []
        self.dispatcher.attach_many(
            "capture",
            [PREFIX + (kind,) for kind in ("start", "stop", "exception")],
            lambda name, measurements, metadata, _config: self.items.append((name, measurements, metadata)),
        )

    @property
    def kinds(self) -> list[str]:
        return [name[-1] for name, _, _ in self.items]

    def ends(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        return [(name[-1], m, md) for name, m, md in self.items if name[-1] != "start"]

    def by_span(self) -> dict[Any, dict[str, tuple[dict[str, Any], dict[str, Any]]]]:
        spans: dict[Any, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
        for name, m, md in self.items:
            spans.setdefault(md["telemetry_span_context"], {})[name[-1]] = (m, md)
        return spans


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def fake(events: Events, clock: VirtualClock) -> FakeBamlClient:
    return FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher), clock=clock)


def only_call(events: Events) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, Any], dict[str, Any]]:
    """The start and the end event of the single call captured."""
    validate_stream(events.items)
    assert len(events.items) == 2, events.kinds
    (_, start_m, start_md), (end_name, end_m, end_md) = events.items
    assert start_md["telemetry_span_context"] == end_md["telemetry_span_context"]
    return start_m, start_md, end_name[-1], end_m, end_md


# ---------------------------------------------------------------------------- faults

# (fault, latency in ns, expected class, expected attributes, expected kind)
FAULT_CASES = [
    pytest.param(
        lambda: faults.timeout(after="30s"),
        30 * S,
        errors.BamlTimeoutError,
        {"client_name": "FakeClient", "message": "Request timed out"},
        "error",
        id="timeout",
    ),
    pytest.param(
        lambda: faults.http_error(503, after="1500ms"),
        1500 * MS,
        errors.BamlClientHttpError,
        {"client_name": "FakeClient", "status_code": 503},
        "error",
        id="http_error",
    ),
    pytest.param(
        lambda: faults.rate_limited(retry_after="2s", after="120ms"),
        120 * MS,
        errors.BamlClientHttpError,
        {"status_code": 429},  # issue 12: baml-py ignores Retry-After; no retry_after attribute
        "error",
        id="rate_limited",
    ),
    pytest.param(
        lambda: faults.validation_error(raw_output="not json", prompt="Extract: x", after="250ms"),
        250 * MS,
        errors.BamlValidationError,
        {"raw_output": "not json", "prompt": "Extract: x"},
        "error",
        id="validation_error",
    ),
    pytest.param(
        lambda: faults.abort(after="10ms"),
        10 * MS,
        errors.BamlAbortError,
        {"args": ("AbortError",)},  # issue 12: an abort in flight has baml-py's in-flight message
        "error",
        id="abort",
    ),
    pytest.param(
        lambda: faults.finish_reason_error("length", raw_output="cut", after=0.5),
        500 * MS,
        errors.BamlClientFinishReasonError,
        {"finish_reason": "length", "raw_output": "cut"},
        "error",
        id="finish_reason_error",
    ),
    pytest.param(
        lambda: faults.connection_refused(),
        0,
        errors.BamlClientHttpError,
        {"status_code": 503},
        "error",
        id="connection_refused",
    ),
    pytest.param(
        lambda: faults.client_error("boom", after=timedelta(milliseconds=3)),
        3 * MS,
        errors.BamlClientError,
        {"args": ("boom",)},
        "error",
        id="client_error",
    ),
    pytest.param(
        lambda: faults.invalid_argument("bad arg"),
        0,
        errors.BamlInvalidArgumentError,
        {"args": ("bad arg",)},
        "error",
        id="invalid_argument",
    ),
    pytest.param(
        lambda: faults.cancelled(after="5ms"),
        5 * MS,
        asyncio.CancelledError,
        {},
        "exit",
        id="cancelled",
    ),
]


def check_error(exc: BaseException, cls: type[BaseException], attributes: dict[str, Any]) -> None:
    assert type(exc) is cls
    for key, value in attributes.items():
        assert getattr(exc, key) == value, key
    if cls is not asyncio.CancelledError:
        assert isinstance(exc, errors.BamlError)


def check_exception_event(events: Events, exc: BaseException, latency: int, kind: str, streaming: bool) -> None:
    start_m, start_md, end, end_m, end_md = only_call(events)
    assert end == "exception"
    assert end_md["reason"] is exc
    assert end_md["kind"] == kind
    assert end_md["streaming"] is streaming
    assert end_md["function_name"] == "ExtractResume"
    assert end_m["duration"] == latency
    assert end_m["monotonic_time"] - start_m["monotonic_time"] == latency


@pytest.mark.parametrize("make, latency, cls, attributes, kind", FAULT_CASES)
def test_faults_build_the_real_baml_py_errors(make, latency, cls, attributes, kind):
    fault = make()
    assert fault.error_class is cls
    assert fault.after_ns == (latency or None)
    first, second = fault.build(), fault.build()
    assert first is not second  # a fresh exception per call
    check_error(first, cls, attributes)


def test_http_error_attributes_match_what_baml_py_sets():
    exc = faults.http_error(500, retry_after="1500ms").build(client_name="Primary")
    try:
        raise exc
    except errors.BamlClientHttpError as caught:  # as user code catches it
        assert caught.status_code == 500
        assert caught.client_name == "Primary"
        assert caught.message.startswith("Request failed with status code: 500 Internal Server Error. ")
        assert caught.detailed_message.splitlines() == [
            'LLM client "Primary" failed with status code: ServerError (500)',
            f"Message: {caught.message}",
        ]  # issue 12: no Retry-After line and no retry_after attribute (baml-py ignores the header)
        assert not hasattr(caught, "retry_after")
        assert isinstance(caught, errors.BamlClientError)
    other = faults.http_error(418, message="teapot").build()
    assert other.message == "teapot"
    assert other.detailed_message == 'LLM client "FakeClient" failed with status code: Unspecified error code: 418\nMessage: teapot'
    assert not hasattr(other, "retry_after")  # like real baml-py, which never sets it


def test_timeout_and_validation_errors_carry_what_baml_py_sets():
    timeout = faults.timeout("30s", client_name="Slow").build()
    assert (timeout.client_name, timeout.message) == ("Slow", "Request timed out")
    assert not hasattr(timeout, "detailed_message")  # real BamlTimeoutError has none
    invalid = faults.validation_error(raw_output="nope", prompt="P", message="Failed to parse").build()
    assert (invalid.raw_output, invalid.prompt, invalid.message) == ("nope", "P", "Failed to parse")
    assert invalid.detailed_message == "Parsing error: Failed to parse\nPrompt: P\nRaw Response: nope"
    assert str(faults.abort().build()) == "Operation was aborted"


@pytest.mark.parametrize("make, latency, cls, attributes, kind", FAULT_CASES)
def test_fault_through_sync_call(fake, events, clock, make, latency, cls, attributes, kind):
    fake.fail("ExtractResume", make())
    with pytest.raises(cls) as info:
        fake.ExtractResume(resume="text")
    check_error(info.value, cls, attributes)
    check_exception_event(events, info.value, latency, kind, streaming=False)
    assert clock.elapsed_ns == latency
    (call,) = fake.calls
    assert call.error is info.value and call.duration_ns == latency and not call.ok


@pytest.mark.parametrize("make, latency, cls, attributes, kind", FAULT_CASES)
def test_fault_through_async_call(fake, events, make, latency, cls, attributes, kind):
    afake = fake.as_async()
    afake.fail("ExtractResume", make())

    async def main() -> BaseException:
        try:
            await afake.ExtractResume(resume="text")
        except BaseException as exc:  # CancelledError included
            return exc
        raise AssertionError("no error raised")

    exc = asyncio.run(main())
    check_error(exc, cls, attributes)
    check_exception_event(events, exc, latency, kind, streaming=False)


@pytest.mark.parametrize("make, latency, cls, attributes, kind", FAULT_CASES)
def test_fault_through_sync_stream(fake, events, make, latency, cls, attributes, kind):
    fake.fail("ExtractResume", make())
    stream = fake.stream.ExtractResume(resume="text")
    assert events.kinds == ["start"]  # start when the stream is created
    assert list(stream) == []  # as in baml-py, iteration ends quietly
    with pytest.raises(cls) as info:
        stream.get_final_response()
    check_error(info.value, cls, attributes)
    check_exception_event(events, info.value, latency, kind, streaming=True)


@pytest.mark.parametrize("make, latency, cls, attributes, kind", FAULT_CASES)
def test_fault_through_async_stream(fake, events, make, latency, cls, attributes, kind):
    afake = fake.as_async()
    afake.fail("ExtractResume", make())

    async def main() -> BaseException:
        stream = afake.stream.ExtractResume(resume="text")
        assert [p async for p in stream] == []
        try:
            await stream.get_final_response()
        except BaseException as exc:
            return exc
        raise AssertionError("no error raised")

    exc = asyncio.run(main())
    check_error(exc, cls, attributes)
    check_exception_event(events, exc, latency, kind, streaming=True)


def test_fault_latency_can_come_from_fail(fake, events):
    fake.fail("ExtractResume", faults.http_error(500), latency="2s")
    with pytest.raises(errors.BamlClientHttpError):
        fake.ExtractResume(resume="x")
    assert events.ends()[0][1]["duration"] == 2 * S


def test_client_name_comes_from_with_options(fake):
    fake.fail("ExtractResume", faults.timeout(), reusable=True)
    with pytest.raises(errors.BamlTimeoutError) as info:
        fake.with_options(client="Fallback").ExtractResume(resume="x")
    assert info.value.client_name == "Fallback"
    fake.reset()
    fake.fail("ExtractResume", faults.timeout(client_name="Named"))
    with pytest.raises(errors.BamlTimeoutError) as info:
        fake.with_options(client="Fallback").ExtractResume(resume="x")
    assert info.value.client_name == "Named"  # the fault's own name wins


# ---------------------------------------------------------------------------- stream failures


def test_stream_failure_after_partials_sync(fake, events):
    fake.fail(
        "ExtractResume",
        faults.stream_failure(partials=["a", "ab"], error=faults.http_error(502), after="3s"),
    )
    stream = fake.stream.ExtractResume(resume="x")
    assert list(stream) == ["a", "ab"]
    with pytest.raises(errors.BamlClientHttpError) as info:
        stream.get_final_response()
    assert info.value.status_code == 502
    _, _, end, end_m, end_md = only_call(events)
    assert (end, end_md["reason"], end_m["duration"]) == ("exception", info.value, 3 * S)
    assert fake.calls[0].error is info.value


def test_stream_failure_after_partials_async(fake, events):
    afake = fake.as_async()
    afake.fail("ExtractResume", faults.stream_failure(3, error="timeout"), latency="4s")

    async def main() -> tuple[list[Any], BaseException]:
        stream = afake.stream.ExtractResume(resume="x")
        seen = [p async for p in stream]
        with pytest.raises(errors.BamlTimeoutError) as info:
            await stream.get_final_response()
        return seen, info.value

    seen, exc = asyncio.run(main())
    assert seen == [None, None, None]
    _, _, end, end_m, end_md = only_call(events)
    assert (end, end_md["reason"], end_m["duration"]) == ("exception", exc, 4 * S)


def test_stream_failure_on_a_plain_call_raises_its_error(fake, events):
    fake.fail("ExtractResume", faults.stream_failure(2, error=faults.abort(after="1s")))
    with pytest.raises(errors.BamlAbortError):
        fake.ExtractResume(resume="x")
    assert events.ends()[0][1]["duration"] == S


def test_stream_failure_default_error_is_the_cut_connection():
    # issue 12: baml-py reports a cut stream as BamlClientHttpError(status_code=2, "Stream transport error: ...")
    fault = faults.stream_failure(after_partials=2)
    exc = fault.build(streaming=True)
    assert type(exc) is errors.BamlClientHttpError and exc.status_code == 2
    assert exc.message.startswith("Stream transport error: reqwest::Error { kind: Decode")
    assert fault.partials == (None, None)


def test_faults_registry_has_one_entry_per_fault_callable_as_its_builder():
    import inspect
    import itertools

    for name, kind in faults.FAULTS.items():
        assert isinstance(kind, faults.FaultKind) and kind.name == name
        assert kind.build is getattr(faults, name)
        assert inspect.signature(kind) == inspect.signature(kind.build)
        assert kind.__doc__ == kind.build.__doc__
        if not kind.drawn:
            continue
        # every combination of the drawn examples builds the fault, by keyword
        choices = [list(a.examples) + ([None] if a.optional else []) for a in kind.arguments]
        for values in itertools.product(*choices):
            kwargs = {a.name: v for a, v in zip(kind.arguments, values) if v is not None}
            fault = kind(**kwargs)
            assert isinstance(fault, faults.Fault) and fault.name == name
            assert isinstance(fault.build(), BaseException)
    assert [n for n, k in faults.FAULTS.items() if not k.drawn] == ["stream_failure", "attempts"]  # issue 12: attempts
    assert faults.make("timeout").name == "timeout"


# ---------------------------------------------------------------------------- success


def test_respond_sync_emits_stop_with_usage_model_and_latency(fake, events, clock):
    fake.respond("ExtractResume", {"name": "Ada"}, usage=Usage(120, 40, 100), model="gpt-4o", latency="850ms")
    assert fake.ExtractResume(resume="cv") == {"name": "Ada"}
    start_m, start_md, end, end_m, end_md = only_call(events)
    assert end == "stop"
    assert start_md["arguments"] == {"resume": "cv"}
    assert start_md["client_module"] == "baml_client"
    assert start_md["streaming"] is False
    assert start_m["system_time"] == clock.time_ns() - 850 * MS
    assert end_m["duration"] == 850 * MS
    assert (end_m["input_tokens"], end_m["output_tokens"], end_m["total_tokens"]) == (120, 40, 160)
    assert end_m["cached_input_tokens"] == 100
    assert end_md["model"] == "gpt-4o"
    assert end_md["result"] == {"name": "Ada"}
    assert fake.calls[0].result == {"name": "Ada"} and fake.calls[0].ok


def test_unknown_tokens_are_none_never_zero(fake, events):
    fake.respond("SayHello", "hi")
    fake.respond("SayHello", "hi", usage={"input_tokens": 7})
    fake.SayHello(name="a")
    fake.SayHello(name="b")
    (_, first, first_md), (_, second, _) = events.ends()
    assert (first["input_tokens"], first["output_tokens"], first["total_tokens"]) == (None, None, None)
    assert first_md["model"] is None
    assert first["duration"] == 0
    assert (second["input_tokens"], second["output_tokens"], second["total_tokens"]) == (7, None, None)


def test_respond_async(fake, events):
    afake = fake.as_async()
    afake.respond("SayHello", "hi", usage=(3, 4), latency=0.25)
    assert asyncio.run(afake.SayHello(name="x")) == "hi"
    _, _, end, end_m, _ = only_call(events)
    assert (end, end_m["duration"], end_m["total_tokens"]) == ("stop", 250 * MS, 7)


def test_stream_partials_spread_over_latency(fake, events):
    fake.respond("SayHello", "hello", partials=["h", "he", "hel"], latency="4s", usage=(1, 2))
    stream = fake.stream.SayHello(name="x")
    assert list(stream) == ["h", "he", "hel"]
    assert stream.get_final_response() == "hello"
    _, start_md, end, end_m, end_md = only_call(events)
    assert start_md["streaming"] is True
    assert (end, end_m["duration"], end_m["time_to_first_chunk"]) == ("stop", 4 * S, S)
    assert end_md["result"] == "hello"
    assert end_m["total_tokens"] == 3


def test_stream_chunk_latency(fake, events):
    fake.respond("SayHello", "hey", partials=["h", "he"], chunk_latency=["100ms", "300ms"], latency="1s")
    fake.respond("SayHello", "hey", partials=["h", "he"], chunk_latency="200ms")
    stream = fake.stream.SayHello(name="x")
    assert list(stream) == ["h", "he"]
    assert stream.get_final_response() == "hey"
    other = fake.stream.SayHello(name="y")
    assert other.get_final_response() == "hey"  # partials skipped: straight to the end
    (_, first, _), (_, second, _) = events.ends()
    assert (first["duration"], first["time_to_first_chunk"]) == (S, 100 * MS)
    assert (second["duration"], second["time_to_first_chunk"]) == (400 * MS, None)


def test_async_stream_partials(fake, events):
    afake = fake.as_async()
    afake.respond("SayHello", "hello", partials=["h", "he"], latency="3s")

    async def main() -> tuple[list[str], str]:
        stream = afake.stream.SayHello(name="x")
        seen = [p async for p in stream]
        return seen, await stream.get_final_response()

    assert asyncio.run(main()) == (["h", "he"], "hello")
    _, _, end, end_m, _ = only_call(events)
    assert (end, end_m["duration"], end_m["time_to_first_chunk"]) == ("stop", 3 * S, S)


def test_closed_stream_is_an_exit_with_stream_abandoned(fake, events):
    fake.respond("SayHello", "hello", partials=["h", "he", "hel"], latency="4s")
    stream = fake.stream.SayHello(name="x")
    iterator = iter(stream)
    assert next(iterator) == "h"
    iterator.close()
    stream.close()
    _, _, end, end_m, end_md = only_call(events)
    assert end == "exception"
    assert end_md["kind"] == "exit"
    assert isinstance(end_md["reason"], StreamAbandoned)
    assert end_m["duration"] == S  # the time of the one partial read
    assert isinstance(fake.calls[0].error, StreamAbandoned)


# ---------------------------------------------------------------------------- scripts


def test_sequence_429_then_success(fake, events):
    fake.fail("ExtractResume", faults.rate_limited(retry_after="2s"))
    fake.respond("ExtractResume", "ok", latency="1s")
    with pytest.raises(errors.BamlClientHttpError) as info:
        fake.ExtractResume(resume="x")
    assert info.value.status_code == 429
    assert fake.ExtractResume(resume="x") == "ok"
    validate_stream(events.items)
    assert [kind for kind, _, _ in events.ends()] == ["exception", "stop"]
    with pytest.raises(NothingScriptedError) as nothing:
        fake.ExtractResume(resume="x")
    assert [c.outcome.kind if c.outcome else None for c in fake.calls] == ["fail", "respond", None]
    assert fake.calls[-1].error is nothing.value


def test_outcomes_queue_per_function(fake):
    fake.respond("A", 1)
    fake.respond("B", "b")
    fake.respond("A", 2)
    assert [fake.A(), fake.B(), fake.A()] == [1, "b", 2]


def test_reusable_outcome_stays_at_its_position(fake):
    fake.respond("A", "first")
    fake.respond("A", "always", reusable=True)
    assert [fake.A() for _ in range(4)] == ["first", "always", "always", "always"]
    assert fake.unused() == []
    fake.respond("B", "never", reusable=True)
    assert [o.function for o in fake.unused()] == ["B"]  # a reusable one never used is unused
    with pytest.raises(ValueError, match="reusable.*could never be used"):
        fake.respond("A", "after")
    with pytest.raises(ValueError, match="reusable"):
        fake.fail("B", faults.timeout())


def test_nothing_scripted_lists_what_is_scripted(fake, events):
    fake.respond("ExtractResume", "r")
    fake.fail("SayHello", faults.timeout())
    with pytest.raises(NothingScriptedError) as info:
        fake.ExtractResme(resume="cv")  # a typo
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "ExtractResme(resume='cv')" in message
    assert "nothing is scripted for 'ExtractResme'" in message
    assert "Did you mean 'ExtractResume'?" in message
    assert "ExtractResume:" in message and "SayHello:" in message
    assert "fail('SayHello', timeout())" in message
    assert "test_fake_client.py" in message  # where each outcome was scripted
    assert events.items == []  # no call happened: no event


def test_nothing_scripted_at_all(fake):
    with pytest.raises(NothingScriptedError, match="Nothing is scripted for any function"):
        fake.stream.SayHello(name="x")


def test_assert_all_used_lists_unused(fake):
    fake.respond("A", 1)
    fake.fail("B", faults.http_error(500))
    fake.A()
    with pytest.raises(UnusedOutcomesError) as info:
        fake.assert_all_used()
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert "1 scripted outcome(s) were never used" in message
    assert "fail('B', http_error(500))" in message
    assert "respond('A'" not in message
    assert "assert_all_used=False" in message


def test_reset_forgets_scripts_and_calls(fake):
    fake.respond("A", 1)
    fake.A()
    fake.respond("A", 2)
    fake.reset()
    assert fake.calls == [] and fake.unused() == []
    fake.assert_all_used()
    with pytest.raises(NothingScriptedError):
        fake.A()


def test_fail_accepts_classes_instances_names_and_callables(fake, events):
    boom = RuntimeError("boom")
    fake.fail("A", errors.BamlTimeoutError)
    fake.fail("A", errors.BamlClientHttpError)
    fake.fail("A", ValueError)
    fake.fail("A", boom, reusable=False)
    fake.fail("A", "rate_limited")
    seen: list[dict[str, Any]] = []

    def side_effect(**arguments: Any) -> Any:
        seen.append(arguments)
        return faults.http_error(arguments["code"], after="1s")

    fake.fail("A", side_effect)
    fake.fail("A", lambda **kw: (_ for _ in ()).throw(KeyError(kw["code"])), latency="2s")

    with pytest.raises(errors.BamlTimeoutError) as timeout:
        fake.A(code=1)
    assert timeout.value.client_name == "FakeClient"
    with pytest.raises(errors.BamlClientHttpError) as http:
        fake.A(code=1)
    assert http.value.status_code == 500
    with pytest.raises(ValueError):
        fake.A(code=1)
    with pytest.raises(RuntimeError) as same:
        fake.A(code=1)
    assert same.value is boom
    with pytest.raises(errors.BamlClientHttpError) as limited:
        fake.A(code=1)
    assert limited.value.status_code == 429
    with pytest.raises(errors.BamlClientHttpError) as computed:
        fake.A(code=404)
    assert computed.value.status_code == 404 and seen == [{"code": 404}]
    with pytest.raises(KeyError):
        fake.A(code=7)
    validate_stream(events.items)
    durations = [m["duration"] for kind, m, _ in events.ends()]
    assert durations == [0, 0, 0, 0, 0, S, 2 * S]


def test_callable_returning_nothing_is_a_script_error(fake, events):
    fake.fail("A", lambda **kw: None)
    with pytest.raises(TypeError, match="returned None"):
        fake.A()
    assert events.items == []


# ---------------------------------------------------------------------------- bad scripts


@pytest.mark.parametrize(
    "script, error, words",
    [
        (lambda f: f.respond("A", 1, latency=-1), ValueError, "latency=-1 is negative"),
        (lambda f: f.respond("A", 1, latency="soon"), ValueError, "latency='soon'"),
        (lambda f: f.respond("A", 1, latency=[1]), TypeError, "latency=[1]"),
        (lambda f: f.fail("A", faults.timeout(), latency="-2s"), ValueError, "latency='-2s'"),
        (lambda f: f.respond("A", 1, usage="lots"), TypeError, "usage='lots'"),
        (lambda f: f.respond("A", 1, usage={"input": 3}), TypeError, "unknown keys ['input']"),
        (lambda f: f.respond("A", 1, usage=(-1, 2)), ValueError, "input_tokens=-1"),
        (lambda f: f.respond("A", 1, usage=(1.5, 2)), TypeError, "input_tokens=1.5"),
        (lambda f: f.respond("A", 1, reusable=1), TypeError, "reusable=1"),
        (lambda f: f.fail("A", "timeout", reusable="yes"), TypeError, "reusable='yes'"),
        (lambda f: f.respond("A", 1, model=4), TypeError, "model=4"),
        (lambda f: f.respond(3, 1), TypeError, "function_name=3"),
        (lambda f: f.respond("not a name", 1), ValueError, "'not a name'"),
        (lambda f: f.respond("A", 1, partials="abc"), TypeError, "partials='abc'"),
        (lambda f: f.respond("A", 1, chunk_latency="1s"), ValueError, "without partials"),
        (lambda f: f.respond("A", 1, partials=[1], chunk_latency=["1s", "2s"]), ValueError, "2 durations for 1"),
        (lambda f: f.respond("A", 1, partials=[1], chunk_latency="2s", latency="1s"), ValueError, "shorter"),
        (lambda f: f.fail("A", 42), TypeError, "error=42"),
        (lambda f: f.fail("A", "timout"), ValueError, "unknown fault 'timout'; did you mean 'timeout'"),
        (lambda f: f.fail("A", faults.timeout("1s"), latency="2s"), ValueError, "both set the time"),
    ],
)
def test_bad_scripts_are_rejected_with_clear_errors(fake, script, error, words):
    with pytest.raises(error) as info:
        script(fake)
    assert words in str(info.value)
    assert fake.unused() == []


@pytest.mark.parametrize(
    "build, error, words",
    [
        (lambda: faults.http_error(600), ValueError, "status_code=600"),
        (lambda: faults.http_error(99), ValueError, "status_code=99"),
        (lambda: faults.http_error("500"), TypeError, "status_code='500'"),
        (lambda: faults.http_error(True), TypeError, "status_code=True"),
        (lambda: faults.http_error(500, retry=2), TypeError, "retry"),
        (lambda: faults.rate_limited(retry_after="-1s"), ValueError, "retry_after='-1s'"),
        (lambda: faults.rate_limited(retry_after="later"), ValueError, "retry_after='later'"),
        (lambda: faults.timeout(after=-0.5), ValueError, "after=-0.5 is negative"),
        (lambda: faults.timeout(message=3), TypeError, "message=3"),
        (lambda: faults.validation_error(raw_output=b"x"), TypeError, "raw_output=b'x'"),
        (lambda: faults.abort(after="forever"), ValueError, "after='forever'"),
        (lambda: faults.stream_failure(), TypeError, "after_partials=N or partials"),
        (lambda: faults.stream_failure(-1), ValueError, "after_partials=-1"),
        (lambda: faults.stream_failure(2, partials=[1]), ValueError, "disagree"),
        (lambda: faults.stream_failure(1, error=faults.stream_failure(1)), ValueError, "cannot wrap"),
        (lambda: faults.make("explode"), ValueError, "unknown fault 'explode'"),
    ],
)
def test_bad_fault_arguments_are_rejected(build, error, words):
    with pytest.raises(error) as info:
        build()
    assert words in str(info.value)


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="emitter=1"):
        FakeBamlClient(emitter=1)
    with pytest.raises(TypeError, match="clock='now'"):
        FakeBamlClient(clock="now")
    with pytest.raises(TypeError, match="real_sleep=1"):
        FakeBamlClient(real_sleep=1)
    with pytest.raises(TypeError, match="client_module=5"):
        FakeBamlClient(client_module=5)
    with pytest.raises(TypeError, match="spec=42"):
        FakeBamlClient(spec=42)


# ---------------------------------------------------------------------------- options


def test_with_options_shares_scripts_and_records_options(fake):
    fake.respond("A", 1)
    fake.respond("A", 2)
    derived = fake.with_options(client="Fallback", tags={"team": "x"})
    again = derived.with_options(client="Second")  # issue 13: env= raises NotImplementedError now
    assert derived.A() == 1
    assert again.A(baml_options={"tags": {"team": "y"}}) == 2
    assert derived.options == {"client": "Fallback", "tags": {"team": "x"}}
    first, second = fake.calls
    assert first.options == {"client": "Fallback", "tags": {"team": "x"}}
    assert second.options == {"client": "Second", "tags": {"team": "y"}}
    assert second.arguments == {}  # baml_options is not an argument
    assert fake.options == {}
    assert isinstance(fake.as_async().with_options(client="X"), AsyncFakeBamlClient)


def test_with_options_rejects_what_the_real_one_rejects(fake):
    with pytest.raises(TypeError, match="unexpected keyword argument 'retries'"):
        fake.with_options(retries=3)
    with pytest.raises(TypeError, match="client=3"):
        fake.with_options(client=3)
    with pytest.raises(TypeError, match="tags='x'"):
        fake.with_options(tags="x")


def test_aborted_abort_controller_raises_baml_abort_error(fake, events):
    import baml_py

    controller = baml_py.AbortController()
    controller.abort()
    fake.respond("A", 1)
    with pytest.raises(errors.BamlAbortError, match="Operation was aborted"):
        fake.A(baml_options={"abort_controller": controller})
    assert [kind for kind, _, _ in events.ends()] == ["exception"]
    assert fake.A() == 1  # the scripted outcome was not consumed


def test_unspecd_fake_needs_keyword_arguments(fake):
    fake.respond("A", 1)
    with pytest.raises(TypeError, match="cannot name the positional arguments"):
        fake.A("x")
    assert fake.unused() != []


def test_modular_api_is_not_faked(fake):
    with pytest.raises(AttributeError, match="modular API"):
        fake.request
    assert not hasattr(fake, "_private")


def test_names_shadowed_by_fake_methods_are_refused_when_scripted(fake):
    # issue 11: code calling b.reset(...) reaches the fake's own reset(), never a scripted function
    with pytest.raises(ValueError, match=r"respond\('reset', \.\.\.\): expected a BAML function the fake can call"):
        fake.respond("reset", "done")
    fake.respond("SayHello", "done")
    assert fake.function("SayHello")() == "done"
    assert fake.SayHello.__name__ == "SayHello"


def test_the_emitters_own_clock_is_not_used(events):
    fake = FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher, clock=SYSTEM_CLOCK))
    fake.respond("A", 1, latency="3s")
    fake.A()
    assert events.ends()[0][1]["duration"] == 3 * S
    assert fake.clock.elapsed_ns == 3 * S


def test_disabled_emitter_still_answers():
    events = Events()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher, enabled=False))
    fake.respond("A", 1)
    assert fake.A() == 1
    assert events.items == [] and fake.calls[0].span_context is None


@pytest.mark.parametrize("on", ["fake", "clock"])
def test_real_sleep_sleeps_for_real(events, on):
    fake = FakeBamlClient(
        emitter=Emitter(dispatcher=events.dispatcher),
        real_sleep=on == "fake",
        clock=VirtualClock(real_sleep=on == "clock"),
    )
    fake.respond("A", 1, latency="30ms")
    fake.respond("A", 2, latency="30ms")
    before = time.monotonic()
    fake.A()
    assert time.monotonic() - before >= 0.03
    before = time.monotonic()
    asyncio.run(fake.as_async().A())
    assert time.monotonic() - before >= 0.03
    assert [m["duration"] for _, m, _ in events.ends()] == [30 * MS, 30 * MS]  # virtual durations stay exact


def test_shared_clock_moves_to_the_end_of_each_call(fake, clock):
    fake.respond("A", 1, latency="1s")
    fake.respond("A", 2, latency="500ms")
    fake.A()
    clock.advance("2s")
    fake.A()
    assert clock.elapsed_ns == 3500 * MS


# ---------------------------------------------------------------------------- specs


class FakeGeneratedClient:
    """Shaped like a generated BamlSyncClient."""

    def ExtractResume(self, resume: str, baml_options: dict = {}) -> dict:  # noqa: B006 - as generated
        raise NotImplementedError

    def Classify(self, text: str, labels: list[str] | None = None, baml_options: dict = {}) -> str:  # noqa: B006
        raise NotImplementedError

    def with_options(self, **kwargs: Any) -> FakeGeneratedClient:
        raise NotImplementedError

    @property
    def stream(self) -> Any:
        return self


@pytest.mark.parametrize("spec", [FakeGeneratedClient(), FakeGeneratedClient], ids=["instance", "class"])
def test_spec_rejects_unknown_functions_and_wrong_arguments(events, spec):
    fake = FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher), spec=spec)
    assert fake.function_names == ["Classify", "ExtractResume"]
    with pytest.raises(AttributeError, match=r"no BAML function 'ExtractResum'\. Did you mean 'ExtractResume'\?"):
        fake.ExtractResum
    assert not hasattr(fake.stream, "Nope")
    with pytest.raises(ValueError, match="no BAML function 'Extract'"):
        fake.respond("Extract", 1)
    fake.respond("ExtractResume", "r", reusable=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'text'.*ExtractResume takes \\(resume: 'str'\\)"):
        fake.ExtractResume(text="x")
    with pytest.raises(TypeError, match="missing a required argument: 'resume'"):
        fake.ExtractResume()
    with pytest.raises(TypeError, match="too many positional arguments"):
        fake.ExtractResume("a", {}, "c")
    assert events.items == []  # argument errors happen before the call
    assert fake.ExtractResume("cv") == "r"  # positional arguments are named by the spec
    assert fake.stream.ExtractResume("cv").get_final_response() == "r"
    fake.respond("Classify", "spam")
    assert fake.Classify("buy now") == "spam"
    assert fake.calls[0].arguments == {"resume": "cv"}
    assert fake.calls[-1].arguments == {"text": "buy now", "labels": None}  # defaults applied
    validate_stream(events.items)


def test_spec_from_a_module_of_functions(fake):
    module = types.ModuleType("my_baml_functions")
    exec(
        "def Summarize(text: str, words: int = 50) -> str: ...\n"
        "def _private(): ...\n",
        module.__dict__,
    )
    spec_fake = FakeBamlClient(spec=module)
    assert spec_fake.function_names == ["Summarize"]
    spec_fake.respond("Summarize", "short")
    assert spec_fake.Summarize("long text") == "short"
    assert spec_fake.calls[0].arguments == {"text": "long text", "words": 50}
    with pytest.raises(AttributeError, match="Summarize"):
        spec_fake.Summarise
    with pytest.raises(TypeError, match="no client `b` and no public functions"):
        FakeBamlClient(spec=types.ModuleType("empty"))


def test_spec_from_a_module_with_b():
    module = types.ModuleType("baml_client_like")
    module.b = FakeGeneratedClient()
    fake = FakeBamlClient(spec=module)
    assert fake.function_names == ["Classify", "ExtractResume"]
    with pytest.raises(AttributeError, match="FakeGeneratedClient has no BAML function 'Other'"):
        fake.Other


def test_spec_with_a_generated_client(generated_client, events):
    b, async_b = generated_client
    Resume = generated_client.types.Resume
    fake = FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher), spec=b)
    assert fake.function_names == ["ExtractResume", "SayHello", "SayHelloQuickly", "SayHelloWithRetry"]
    fake.respond("ExtractResume", Resume(name="Ada", skills=["math"]), usage=(10, 5), model="gpt-4o-mini")
    fake.fail("SayHello", faults.rate_limited())
    fake.respond("SayHello", "hi", partials=["h"], latency="1s")
    resume = fake.ExtractResume("Ada, math", baml_options={"tags": {"t": "1"}})
    assert resume.name == "Ada"
    with pytest.raises(errors.BamlClientHttpError):
        fake.SayHello(name="x")
    stream = fake.stream.SayHello("x")
    assert list(stream) == ["h"] and stream.get_final_response() == "hi"
    with pytest.raises(TypeError, match="unexpected keyword argument 'resum'"):
        fake.ExtractResume(resum="x")
    with pytest.raises(AttributeError, match="Did you mean 'SayHello'"):
        fake.SayHelo
    assert fake.calls[0].arguments == {"resume": "Ada, math"}
    assert fake.calls[0].options == {"tags": {"t": "1"}}
    validate_stream(events.items)
    assert [kind for kind, _, _ in events.ends()] == ["stop", "exception", "stop"]

    afake = AsyncFakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher), spec=generated_client.async_module)
    afake.respond("SayHello", "hey")
    assert asyncio.run(afake.SayHello("y")) == "hey"
    with pytest.raises(TypeError, match="missing a required argument: 'name'"):
        asyncio.run(afake.SayHello())


# ---------------------------------------------------------------------------- concurrency


def check_durations(fake: Any, events: Events) -> None:
    """Every call's events are paired and its duration is exactly its scripted latency."""
    validate_stream(events.items)
    spans = events.by_span()
    assert len(spans) == len(fake.calls)
    for call in fake.calls:
        end = spans[call.span_context]
        kind = "stop" if call.outcome.kind == "respond" else "exception"
        measurements, metadata = end[kind]
        assert measurements["duration"] == call.outcome.latency_ns == call.duration_ns
        start_measurements, _ = end["start"]
        assert measurements["monotonic_time"] - start_measurements["monotonic_time"] == call.outcome.latency_ns
        if kind == "exception":
            assert metadata["reason"] is call.error
        else:
            assert measurements["input_tokens"] == call.outcome.usage.input_tokens
    assert fake.unused() == []


def script_many(fake: Any, count: int, rng: random.Random) -> None:
    for i in range(count):
        latency = f"{rng.randrange(0, 5_000) * MS + i}ns"  # all different
        if i % 5 == 0:
            fake.fail("Work", faults.rate_limited(retry_after="1s"), latency=latency)
        else:
            fake.respond("Work", i, usage=(i, 1), latency=latency, partials=["p"] * (i % 3))


def test_eight_threads_on_one_fake(events):
    fake = FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher))
    # a slow handler lets other threads run while a call is open, so calls overlap
    events.dispatcher.attach("slow", PREFIX + ("start",), lambda *_: time.sleep(0.0002))
    rng = random.Random(8)
    script_many(fake, 8 * 40, rng)
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def worker(n: int) -> None:
        barrier.wait()
        for j in range(40):
            try:
                if (n + j) % 2:
                    stream = fake.stream.Work(n=n, j=j)
                    list(stream)
                    stream.get_final_response()
                else:
                    fake.Work(n=n, j=j)
            except errors.BamlClientHttpError:
                pass
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(fake.calls) == 320
    check_durations(fake, events)
    assert max_overlap(events) > 1


def max_overlap(events: Events) -> int:
    """The most calls open at once, read from the order of the events."""
    open_calls = most = 0
    for name, _, _ in events.items:
        open_calls += 1 if name[-1] == "start" else -1
        most = max(most, open_calls)
    return most


def test_two_hundred_asyncio_tasks_on_one_fake(events):
    afake = AsyncFakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher))
    script_many(afake, 200, random.Random(200))

    async def one(n: int) -> None:
        try:
            if n % 2:
                stream = afake.stream.Work(n=n)
                [p async for p in stream]
                await stream.get_final_response()
            else:
                await afake.Work(n=n)
        except errors.BamlClientHttpError:
            pass

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in range(200)))

    asyncio.run(main())
    assert len(afake.calls) == 200
    check_durations(afake, events)
    assert max_overlap(events) > 100  # the calls really overlapped


def test_concurrent_async_calls_overlap_in_virtual_time() -> None:
    from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock
    from pytest_baml_telemetry.capture import EventCapture

    dispatcher = Dispatcher()
    clock = VirtualClock()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher, clock=clock), clock=clock).as_async()
    for seconds in (2, 1, 3, 1):
        fake.respond("Summarize", "ok", latency=f"{seconds}s")

    async def main() -> None:
        await asyncio.gather(*(fake.Summarize(text="x") for _ in range(4)))

    with EventCapture(dispatcher=dispatcher) as capture:
        asyncio.run(main())
    assert clock.elapsed_ns == 3_000_000_000  # the longest call, not the sum
    assert sorted(c.duration for c in capture.calls) == [1_000_000_000, 1_000_000_000, 2_000_000_000, 3_000_000_000]
    assert len({e.measurements["monotonic_time"] for e in capture.starts}) == 1  # all started together


def test_resource_and_action_reach_every_event() -> None:
    from pytest_baml_telemetry.capture import EventCapture

    dispatcher = Dispatcher()
    clock = VirtualClock()

    class ResumeService:
        pass

    fake = FakeBamlClient(
        emitter=Emitter(dispatcher=dispatcher, clock=clock), clock=clock, resource=ResumeService, action="screen"
    )
    fake.respond("ExtractResume", {"name": "Ada"})
    fake.respond("Summarize", "short", partials=["sh"])
    with EventCapture(dispatcher=dispatcher) as capture:
        fake.ExtractResume(resume="x")
        stream = fake.stream.Summarize(text="x")
        list(stream)
        stream.get_final_response()
    assert {(e.metadata["resource"], e.metadata["action"]) for e in capture.events} == {(ResumeService, "screen")}
    with pytest.raises(TypeError, match=r"action=5"):
        FakeBamlClient(action=5)
