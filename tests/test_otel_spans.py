"""SpanHandler on the fake client and on generated event streams: one GenAI span per call."""

from __future__ import annotations

import asyncio
import threading
import traceback
from typing import Any

import pytest
from baml_py.errors import BamlClientHttpError, BamlValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    Dispatcher,
    Emitter,
    FakeBamlClient,
    Usage,
    VirtualClock,
    faults,
)
from pytest_baml_telemetry import strategies as bst
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.opentelemetry import METRIC_NAMES, SpanCapture, SpanHandler, semconv_latest

SECRET = "my-secret-prompt-text-4242"


@pytest.fixture
def env():
    """(fake client, span capture, event capture) on a private dispatcher and a virtual clock."""
    dispatcher = Dispatcher()
    events = EventCapture(dispatcher=dispatcher).attach()
    fake = FakeBamlClient(
        emitter=Emitter(dispatcher=dispatcher), clock=VirtualClock(), model="gpt-4o", provider="openai", client_name="Smart"
    )
    spans = SpanCapture(dispatcher=dispatcher).attach()
    yield fake, spans, events
    spans.detach()
    events.detach()


def _only(spans: SpanCapture) -> dict:
    (span,) = spans.spans
    return span


# ------------------------------------------------------------------ attributes


def test_a_success_is_one_client_span_on_the_genai_conventions(env):
    fake, spans, events = env
    fake.respond("SayHello", "hi", usage=Usage(10, 3, 2), latency="850ms")
    assert fake.SayHello(name=SECRET) == "hi"
    span = _only(spans)
    assert span["name"] == "chat gpt-4o" and span["kind"] == "CLIENT" and span["parent"] is None
    assert span["status"] == {"code": "UNSET"} and span["events"] == []
    assert span["attributes"] == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.system": "openai",
        "baml.provider": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.id": "fake-req-1",
        "gen_ai.usage.input_tokens": 10,
        "gen_ai.usage.output_tokens": 3,
        "gen_ai.usage.cache_read.input_tokens": 2,
        "baml.function_name": "SayHello",
        "baml.client_name": "Smart",
        "baml.num_attempts": 1,
        "baml.streaming": False,
    }
    spans.assert_not_recorded(SECRET, "hi")


def test_span_times_come_from_the_events(env):
    fake, spans, events = env
    fake.respond("SayHello", "hi", latency="850ms")
    fake.SayHello(name="a")
    (raw,) = spans.finished_spans
    (start,), (stop,) = events.starts, events.stops
    assert raw.start_time == start.measurements["system_time"]
    assert raw.end_time - raw.start_time == stop.measurements["duration"] == 850_000_000
    (span,) = spans.as_dicts(times="relative")
    assert (span["start_time"], span["end_time"]) == (0, 850_000_000)


def test_unknown_tokens_and_model_are_left_out_never_zero():
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher))
    fake.respond("SayHello", "hi")
    with SpanCapture(dispatcher=dispatcher) as spans:
        fake.SayHello(name="a")
    span = _only(spans)
    assert span["name"] == "chat"  # no model: the operation alone
    attrs = span["attributes"]
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
                "gen_ai.request.model", "gen_ai.provider.name", "gen_ai.system"):
        assert key not in attrs, key


@pytest.mark.parametrize(
    ("baml", "convention"),
    [("openai", "openai"), ("openai-responses", "openai"), ("anthropic", "anthropic"), ("google-ai", "gcp.gemini"),
     ("vertex-ai", "gcp.vertex_ai"), ("aws-bedrock", "aws.bedrock"), ("azure-openai", "azure.ai.openai"),
     ("openai-generic", "openai-generic"), ("ollama", "ollama")],
)
def test_provider_names_map_to_the_well_known_values(baml, convention):
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher), model="m", provider=baml)
    fake.respond("SayHello", "hi")
    with SpanCapture(dispatcher=dispatcher) as spans:
        fake.SayHello(name="a")
    spans.assert_span(attributes={"gen_ai.provider.name": convention, "baml.provider": baml})


def test_operation_name_is_configurable():
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher), model="gemini-2.0")
    fake.respond("SayHello", "hi")
    with SpanCapture(dispatcher=dispatcher, operation_name="generate_content") as spans:
        fake.SayHello(name="a")
    spans.assert_span("generate_content gemini-2.0", attributes={"gen_ai.operation.name": "generate_content"})


# ------------------------------------------------------------------ exceptions


def test_an_http_error_sets_error_type_and_status_without_the_message(env):
    fake, spans, events = env
    fake.fail("SayHello", faults.http_error(500, message=SECRET))
    with pytest.raises(BamlClientHttpError) as info:
        fake.SayHello(name="a")
    assert SECRET in str(info.value)  # the message quotes it: the span must not
    span = _only(spans)
    assert span["status"] == {"code": "ERROR", "description": "BamlClientHttpError (status 500)"}
    assert span["attributes"]["error.type"] == "BamlClientHttpError" == type(info.value).__qualname__
    (event,) = span["events"]
    assert event == {"name": "exception", "attributes": {"exception.type": "BamlClientHttpError"}}
    (raw,) = spans.finished_spans
    stack = raw.events[0].attributes["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):") and stack.endswith("BamlClientHttpError")
    spans.assert_not_recorded(SECRET)


def test_a_validation_error_is_billed_and_its_raw_output_stays_out(env):
    fake, spans, events = env
    fake.fail("SayHello", faults.validation_error(raw_output=SECRET, usage=Usage(7, 4)))
    with pytest.raises(BamlValidationError):
        fake.SayHello(name="a")
    spans.assert_span(status="ERROR", attributes={
        "error.type": "BamlValidationError", "gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 4,
    })
    spans.assert_not_recorded(SECRET)


def test_record_content_records_arguments_result_and_message_truncated():
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher), model="m")
    fake.respond("SayHello", "x" * 100)
    fake.fail("SayHello", faults.http_error(500, message=SECRET))
    with SpanCapture(dispatcher=dispatcher, record_content=True, max_content_length=40, semconv="default") as spans:
        fake.SayHello(name=SECRET)
        with pytest.raises(BamlClientHttpError):
            fake.SayHello(name="b")
    ok, failed = spans.spans
    assert SECRET in ok["attributes"]["gen_ai.input.messages"]
    assert '"role": "user"' in ok["attributes"]["gen_ai.input.messages"]
    output = ok["attributes"]["gen_ai.output.messages"]
    assert '"role": "assistant"' in output and "x" * 40 + "...[truncated 60 chars]" in output
    assert "gen_ai.output.messages" not in failed["attributes"]
    message = failed["events"][0]["attributes"]["exception.message"]
    assert len(message) > 40 and message[:40] in str(fake.calls[-1].error) and "...[truncated " in message
    assert failed["status"]["description"].startswith("BamlClientHttpError (status 500): ")


# ------------------------------------------------------------------ semconv opt-in


def test_the_opt_in_switches_the_names(monkeypatch):
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    assert semconv_latest() is False
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
    assert semconv_latest() is True
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    assert semconv_latest() is False
    assert semconv_latest("latest") is True and semconv_latest("default") is False
    with pytest.raises(ValueError, match=r"SpanHandler\(semconv\)='newest': expected 'default', 'latest', or None"):
        SpanHandler(semconv="newest")


@pytest.mark.parametrize("latest", [False, True])
def test_span_attribute_names_follow_the_opt_in(monkeypatch, latest):
    if latest:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    else:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher), model="m", provider="anthropic")
    fake.respond("SayHello", "hi", usage=(1, 2))
    with SpanCapture(dispatcher=dispatcher, record_content=True) as spans:
        fake.SayHello(name="Ann")
    attrs = _only(spans)["attributes"]
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert ("gen_ai.system" in attrs) is not latest
    assert ("gen_ai.input.messages" in attrs) is not latest
    assert (attrs.get("gen_ai.prompt.variable.name") == "Ann") is latest
    assert "gen_ai.output.messages" in attrs


@pytest.mark.parametrize("latest", [False, True])
def test_the_metrics_reporter_follows_the_same_opt_in(monkeypatch, latest):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from pytest_baml_telemetry.metrics.opentelemetry import OpenTelemetryReporter

    if latest:
        monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    else:
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    reader = InMemoryMetricReader()
    dispatcher = Dispatcher()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher), model="m", provider="openai")
    fake.respond("SayHello", "hi", usage=(5, 2), partials=["h", "hi"], latency="1s")
    with OpenTelemetryReporter(MeterProvider(metric_readers=[reader]), dispatcher=dispatcher) as reporter:
        assert reporter.latest is latest
        list(fake.stream.SayHello(name="a"))
    points = {}
    data: Any = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                points[metric.name] = [(dict(p.attributes), p.sum) for p in metric.data.data_points]
    names = METRIC_NAMES[latest]
    expected = {names["duration"][0], names["time_to_first_chunk"][0], *names["tokens"]}
    assert set(points) == expected
    if latest:
        assert [s for _, s in points["gen_ai.client.inference.operation.input_tokens"]] == [5]
        assert [s for _, s in points["gen_ai.client.inference.operation.output_tokens"]] == [2]
        assert all("gen_ai.token.type" not in a for a, _ in points["gen_ai.client.inference.operation.input_tokens"])
    else:
        by_type = {a["gen_ai.token.type"]: s for a, s in points["gen_ai.client.token.usage"]}
        assert by_type == {"input": 5, "output": 2}


# ------------------------------------------------------------------ streams


def test_a_stream_span_carries_streaming_and_time_to_first_chunk(env):
    fake, spans, events = env
    fake.respond("SayHello", "hello", partials=["he", "hell", "hello"], latency="900ms", usage=(3, 1))
    stream = fake.stream.SayHello(name="a")
    assert list(stream)[-1] == "hello"
    assert stream.get_final_response() == "hello"
    (stop,) = events.stops
    ttfc = stop.measurements["time_to_first_chunk"]
    assert isinstance(ttfc, int) and 0 < ttfc < stop.measurements["duration"]
    spans.assert_span("chat gpt-4o", attributes={
        "baml.streaming": True, "gen_ai.request.stream": True, "gen_ai.response.time_to_first_chunk": ttfc / 1e9,
    })


def test_an_abandoned_stream_is_one_error_span(env):
    fake, spans, events = env
    fake.respond("SayHello", "hello", partials=["he", "hello"])
    stream = fake.stream.SayHello(name="a")
    next(iter(stream))
    stream.close()
    spans.assert_span(status="ERROR", attributes={"error.type": "StreamAbandoned", "baml.streaming": True})
    assert "gen_ai.response.time_to_first_chunk" not in _only(spans)["attributes"]


def test_a_non_stream_span_has_no_stream_attribute(env):
    fake, spans, events = env
    fake.respond("SayHello", "hi")
    fake.SayHello(name="a")
    attrs = _only(spans)["attributes"]
    assert attrs["baml.streaming"] is False and "gen_ai.request.stream" not in attrs


# ------------------------------------------------------------------ parents


def test_parent_is_the_callers_span_in_each_thread(env):
    fake, spans, events = env
    fake.respond("SayHello", "hi", reusable=True)
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        with spans.tracer.start_as_current_span(f"worker-{i}"):
            barrier.wait()
            fake.SayHello(name=str(i))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = [s for s in spans.spans if s["kind"] == "CLIENT"]
    assert len(calls) == 4
    assert sorted(s["parent_name"] for s in calls) == [f"worker-{i}" for i in range(4)]
    for i in range(4):
        span = spans.assert_span(parent_name=f"worker-{i}", count=1)
        assert span["name"] == "chat gpt-4o"


def test_parent_is_the_callers_span_in_each_asyncio_task(env):
    fake, spans, events = env
    afake = fake.as_async()
    fake.respond("SayHello", "hi", reusable=True, latency="100ms")

    async def task(i: int) -> None:
        with spans.tracer.start_as_current_span(f"task-{i}"):
            await afake.SayHello(name=str(i))

    async def main() -> None:
        with spans.tracer.start_as_current_span("root"):
            await asyncio.gather(*(task(i) for i in range(5)))

    asyncio.run(main())
    for i in range(5):
        spans.assert_span("chat gpt-4o", parent_name=f"task-{i}", count=1)
    spans.assert_span("task-3", parent_name="root")


def test_the_parent_is_captured_at_start_not_at_the_end(env):
    fake, spans, events = env
    fake.respond("SayHello", "hello", partials=["h", "hello"])
    with spans.tracer.start_as_current_span("opened the stream"):
        stream = fake.stream.SayHello(name="a")
    with spans.tracer.start_as_current_span("read it later"):
        list(stream)
    spans.assert_span("chat gpt-4o", parent_name="opened the stream")


# ------------------------------------------------------------------ pairing and robustness


def test_a_stop_without_its_start_still_makes_a_span_ending_now():
    dispatcher = Dispatcher()
    with SpanCapture(dispatcher=dispatcher) as spans:
        dispatcher.execute(CALL_STOP, {"duration": 5_000, "monotonic_time": 9, "input_tokens": None, "output_tokens": None,
                                       "total_tokens": None}, {"function_name": "F", "streaming": False,
                                                               "telemetry_span_context": 1, "model": None})
    (raw,) = spans.finished_spans
    assert raw.end_time - raw.start_time == 5_000 and raw.name == "chat"
    assert spans.handler.open_calls == 0


def test_calls_that_never_end_are_bounded():
    dispatcher = Dispatcher()
    with SpanCapture(dispatcher=dispatcher, max_open_calls=2) as spans:
        for span in range(3):
            dispatcher.execute(CALL_START, {"system_time": 10, "monotonic_time": 10},
                               {"function_name": "F", "streaming": False, "arguments": {}, "telemetry_span_context": span})
        assert spans.handler.open_calls == 2 and spans.handler.forgotten == 1
        dispatcher.execute(CALL_EXCEPTION, {"duration": 1, "monotonic_time": 11},
                           {"function_name": "F", "streaming": False, "telemetry_span_context": 2, "kind": "error",
                            "reason": ValueError("x"), "stacktrace": traceback.StackSummary.from_list([])})
    assert spans.handler.open_calls == 1
    spans.assert_span("chat", status="ERROR", attributes={"error.type": "ValueError"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"record_content": 1}, r"SpanHandler\(record_content=1\): expected True or False"),
        ({"max_content_length": -1}, r"SpanHandler\(max_content_length=-1\): expected"),
        ({"operation_name": ""}, r"SpanHandler\(operation_name=''\): expected a non-empty str"),
        ({"tracer_provider": object()}, r"SpanHandler\(tracer_provider=<object.*: expected an OpenTelemetry TracerProvider"),
    ],
)
def test_bad_arguments_name_the_value(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        SpanHandler(**kwargs)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bst.event_streams(max_calls=6, handler_failures=True), st.integers(0, 4), st.booleans(), st.booleans())
def test_every_valid_stream_makes_one_ended_span_per_call(stream, skip, record_content, latest):
    stream = stream[skip:]  # attached mid-stream: some ends come without their start
    dispatcher = Dispatcher()
    capture = SpanCapture(dispatcher=dispatcher, record_content=record_content, semconv="latest" if latest else "default")
    capture.attach()
    for name, measurements, metadata in stream:
        dispatcher.execute(name, measurements, metadata)
    assert capture.handler.attached  # it never raised (a raising handler is detached)
    ends = [e for e in stream if e.kind in ("stop", "exception")]
    spans = capture.finished_spans
    assert len(spans) == len(ends)
    starts = {e.span_context: e for e in stream if e.kind == "start"}
    for end, span in zip(ends, spans):
        assert span.end_time is not None and span.end_time - span.start_time == end.measurements["duration"]
        if end.span_context in starts:
            assert span.start_time == starts[end.span_context].measurements["system_time"]
        assert (span.status.status_code.name == "ERROR") is (end.kind == "exception")
        assert span.attributes["baml.function_name"] == end.metadata["function_name"]
        for key in ("input_tokens", "output_tokens"):
            assert span.attributes.get(f"gen_ai.usage.{key}") == end.measurements.get(key)
    assert capture.handler.open_calls == 0
    capture.detach()


def test_importing_the_module_or_the_plugin_does_not_import_opentelemetry():
    import subprocess
    import sys

    code = (
        "import sys, pytest_baml_telemetry, pytest_baml_telemetry.plugin, pytest_baml_telemetry.opentelemetry\n"
        "print(sorted(m for m in sys.modules if m == 'opentelemetry' or m.startswith('opentelemetry.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert out.strip() == "[]", out


def test_the_metrics_reporter_checks_its_semconv_argument():
    from opentelemetry.sdk.metrics import MeterProvider

    from pytest_baml_telemetry.metrics.opentelemetry import OpenTelemetryReporter

    with pytest.raises(ValueError, match=r"OpenTelemetryReporter\(semconv\)='v2': expected 'default', 'latest', or None"):
        OpenTelemetryReporter(MeterProvider(), semconv="v2")
    assert OpenTelemetryReporter(MeterProvider(), semconv="latest").latest is True
