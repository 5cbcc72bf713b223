"""Fake metadata (issue 12): model, provider, client_name, num_attempts and request_id on
the fake's stop and exception events, from respond/fail, the fake's defaults and attempts."""

from __future__ import annotations

from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock, validate_stream
from pytest_baml_telemetry.budgets.aggregate import Aggregator
from pytest_baml_telemetry.fake import FakeBamlClient, faults

MS = 1_000_000
PREFIX = ("ash_baml", "call")
META = ("model", "provider", "client_name", "num_attempts", "request_id")


class Ends:
    """The stop / exception events of a fresh dispatcher, as (kind, measurements, metadata)."""

    def __init__(self) -> None:
        self.dispatcher = Dispatcher()
        self.items: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.all: list[Any] = []
        self.dispatcher.attach_many(
            "ends",
            [PREFIX + (kind,) for kind in ("start", "stop", "exception")],
            lambda name, m, md, _c: self.all.append((name, m, md)),
        )

    def ends(self) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        validate_stream(self.all)
        return [(name[-1], m, md) for name, m, md in self.all if name[-1] != "start"]

    def meta(self) -> list[tuple[Any, ...]]:
        return [(kind, *(md.get(k) for k in META)) for kind, _, md in self.ends()]


@pytest.fixture
def ends() -> Ends:
    return Ends()


def make(ends: Ends, **kwargs: Any) -> FakeBamlClient:
    return FakeBamlClient(emitter=Emitter(dispatcher=ends.dispatcher), clock=VirtualClock(), **kwargs)


def test_every_call_reports_the_fakes_defaults_and_a_fake_request_id(ends):
    fake = make(ends, model="gpt-4o", provider="openai", client_name="Main")
    fake.respond("Hello", "hi")
    fake.fail("Hello", faults.rate_limited())
    fake.Hello(name="a")
    with pytest.raises(errors.BamlClientHttpError) as info:
        fake.Hello(name="b")
    assert info.value.client_name == "Main"  # the error names the client the event names
    assert ends.meta() == [
        ("stop", "gpt-4o", "openai", "Main", 1, "fake-req-1"),
        ("exception", "gpt-4o", "openai", "Main", 1, "fake-req-2"),
    ]


def test_without_defaults_the_keys_are_there_and_none(ends):
    fake = make(ends)
    fake.respond("Hello", "hi")
    fake.fail("Hello", "timeout")
    fake.Hello()
    with pytest.raises(errors.BamlTimeoutError) as info:
        fake.Hello()
    assert info.value.client_name == "FakeClient"  # the error always names a client, as baml-py's do
    for _kind, _m, md in ends.ends():
        assert all(key in md for key in META), md
    assert ends.meta() == [
        ("stop", None, None, None, 1, "fake-req-1"),
        ("exception", None, None, None, 1, "fake-req-2"),
    ]


def test_respond_and_fail_override_the_defaults(ends):
    fake = make(ends, model="gpt-4o", provider="openai", client_name="Main")
    fake.respond("Hello", "hi", model="claude-3-5-haiku", provider="anthropic", client_name="Claude")
    fake.fail("Hello", faults.http_error(500), model="gpt-4o-mini", client_name="Mini")
    fake.fail("Hello", faults.timeout(client_name="Slow"), client_name="Ignored")
    fake.Hello()
    with pytest.raises(errors.BamlClientHttpError) as http:
        fake.Hello()
    with pytest.raises(errors.BamlTimeoutError) as slow:
        fake.Hello()
    assert (http.value.client_name, slow.value.client_name) == ("Mini", "Slow")
    assert ends.meta() == [
        ("stop", "claude-3-5-haiku", "anthropic", "Claude", 1, "fake-req-1"),
        ("exception", "gpt-4o-mini", "openai", "Mini", 1, "fake-req-2"),
        ("exception", "gpt-4o", "openai", "Slow", 1, "fake-req-3"),  # the fault's own client is the error's
    ]
    assert "model='claude-3-5-haiku'" in fake.calls[0].outcome.describe()


def test_with_options_client_names_the_client(ends):
    fake = make(ends, client_name="Main")
    fake.respond("Hello", "hi", reusable=True)
    fake.with_options(client="Fallback").Hello()
    fake.Hello()
    assert [md["client_name"] for _, _, md in ends.ends()] == ["Fallback", "Main"]


def test_streams_and_async_calls_carry_the_same_metadata(ends):
    fake = make(ends, model="gpt-4o", provider="openai", client_name="Main")
    fake.respond("Hello", "hi", partials=["h"], usage=(3, 1))
    fake.fail("Hello", faults.stream_failure(1, error=faults.http_error(500)))
    fake.respond("Hello", "hi")
    stream = fake.stream.Hello()
    assert list(stream) == ["h"]
    assert stream.get_final_response() == "hi"
    failing = fake.stream.Hello()
    list(failing)
    with pytest.raises(errors.BamlClientHttpError):
        failing.get_final_response()
    import asyncio

    assert asyncio.run(fake.as_async().Hello()) == "hi"
    assert ends.meta() == [
        ("stop", "gpt-4o", "openai", "Main", 1, "fake-req-1"),
        ("exception", "gpt-4o", "openai", "Main", 1, "fake-req-2"),
        ("stop", "gpt-4o", "openai", "Main", 1, "fake-req-3"),
    ]


def test_failed_attempts_make_one_stop_event_with_their_latencies(ends):
    fake = make(ends)
    fake.respond(
        "Hello", "hi", latency="300ms", usage=(10, 2),
        failed_attempts=[faults.rate_limited(after="100ms"), faults.http_error(503, after="50ms"), "timeout"],
    )
    assert fake.Hello() == "hi"
    ((kind, m, md),) = ends.ends()
    assert kind == "stop"
    assert md["num_attempts"] == 4
    assert m["duration"] == 450 * MS  # 100 + 50 + 0 (a timeout without after) + the answer's 300
    assert (m["input_tokens"], m["output_tokens"]) == (10, 2)
    assert "failed_attempts=[rate_limited(after='100ms')" in fake.calls[0].outcome.describe()


def test_failed_attempts_come_before_a_streams_partials(ends):
    fake = make(ends)
    fake.respond("Hello", "hi", partials=["h"], latency="200ms", failed_attempts=[faults.http_error(500, after="1s")])
    stream = fake.stream.Hello()
    assert list(stream) == ["h"]
    stream.get_final_response()
    ((_, m, md),) = ends.ends()
    assert md["num_attempts"] == 2
    assert m["duration"] == 1200 * MS
    assert m["time_to_first_chunk"] == 1100 * MS  # the partial comes half-way through the answer


def test_a_failure_carries_the_faults_usage_and_attempts(ends):
    fake = make(ends, model="gpt-4o", client_name="Main")
    fake.fail("Hello", faults.validation_error(raw_output="nope", usage=(40, 12)))
    fake.fail(
        "Hello",
        faults.attempts(
            faults.rate_limited(after="100ms"), faults.http_error(503, after="200ms"),
            faults.http_error(500, after="50ms", client_name="Backup"),
        ),
    )
    fake.fail("Hello", faults.timeout(after="1s"))
    with pytest.raises(errors.BamlValidationError):
        fake.Hello()
    with pytest.raises(errors.BamlClientHttpError) as retried_error:
        fake.Hello()
    with pytest.raises(errors.BamlTimeoutError):
        fake.Hello()
    assert retried_error.value.client_name == "Backup"
    (_, billed, billed_md), (_, retried, retried_md), (_, timed_out, _) = ends.ends()
    assert (billed["input_tokens"], billed["output_tokens"], billed["total_tokens"]) == (40, 12, 52)
    assert billed_md["num_attempts"] == 1
    assert (retried["input_tokens"], retried["output_tokens"]) == (0, 0)  # HTTP errors: known not billed
    assert (retried_md["num_attempts"], retried_md["client_name"]) == (3, "Backup")  # the last attempt's client
    assert retried["duration"] == 350 * MS  # the attempts' latencies added up
    assert timed_out["input_tokens"] is None  # unknown, never a made-up 0


def test_a_stream_raises_the_stream_form_of_its_error(ends):
    fake = make(ends)
    fault = faults.http_error(500)
    fake.fail("Hello", fault)
    fake.fail("Hello", fault)
    with pytest.raises(errors.BamlClientHttpError) as call:
        fake.Hello()
    stream = fake.stream.Hello()
    with pytest.raises(errors.BamlClientHttpError) as streamed:
        stream.get_final_response()
    assert call.value.message == fault.build().message
    assert streamed.value.message == fault.build(streaming=True).message != call.value.message


def test_failures_are_grouped_under_the_model_they_were_made_for(ends):
    agg = Aggregator()
    ends.dispatcher.attach_many("agg", [PREFIX + ("stop",), PREFIX + ("exception",)], agg.handle)
    fake = make(ends, model="gpt-4o")
    fake.respond("Hello", "hi")
    fake.fail("Hello", "timeout")
    fake.fail("Hello", "timeout", model="gpt-4o-mini")
    fake.Hello()
    for _ in range(2):
        with pytest.raises(errors.BamlTimeoutError):
            fake.Hello()
    assert agg.keys() == [("Hello", "gpt-4o"), ("Hello", "gpt-4o-mini")]
    stats = agg.stats()
    assert stats.filtered(model="gpt-4o").error_rate == 0.5
    assert stats.filtered(model="gpt-4o-mini").error_rate == 1.0


@pytest.mark.parametrize(
    ("build", "exc", "match"),
    [
        (lambda f: f.respond("A", 1, provider=3), TypeError, r"respond\('A'\): provider=3: expected a non-empty str or None"),
        (lambda f: f.respond("A", 1, client_name=""), ValueError, r"client_name='': expected a non-empty str"),
        (lambda f: f.fail("A", "timeout", model=b"gpt"), TypeError, r"fail\('A'\): model=b'gpt'"),
        (lambda f: f.respond("A", 1, failed_attempts="timeout"), TypeError, r"failed_attempts='timeout': expected a list"),
        (lambda f: f.respond("A", 1, failed_attempts=[42]), TypeError, r"failed_attempts\[0\]=42"),
        (lambda f: FakeBamlClient(provider=""), ValueError, r"FakeBamlClient: provider='': expected a non-empty str"),
        (lambda f: FakeBamlClient(model=1.5), TypeError, r"FakeBamlClient: model=1.5"),
    ],
)
def test_bad_metadata_is_refused_naming_the_value(ends, build, exc, match):
    fake = make(ends)
    with pytest.raises(exc, match=match):
        build(fake)
    assert fake.unused() == []
