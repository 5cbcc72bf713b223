"""The scenarios of the upstream telemetry guide, in Python, against ``FakeBamlClient``.

The same application as ``test_guide_real_client.py`` (``ResumeService``), but its BAML
client is a fake: ``fake_b`` (from ``examples/conftest.py``) is a ``FakeBamlClient``
spec'd on the example's generated ``baml_client``, so unknown functions and wrong argument
names fail as they would for real. Every call emits the full event contract with the
usage, model and latency the test scripts. Latency advances the test's *virtual* clock
(``baml_clock``): a 30 s timeout takes microseconds, and every duration below is exact.

Scenarios, in the guide's order:

1. a logging handler;
2. a metrics handler (the guide's four metrics, with the ``baml_metrics`` fixture);
3. a cost tracker (prices from ``examples/prices.toml``);
4. a slow-call tracker;
5. a percentile tracker (20 concurrent async calls, exact nearest-rank percentiles);
6. testing with telemetry: events, faults (rate limit, timeout, validation error),
   streams, and a per-test ``@pytest.mark.baml_budget``.

Run: ``pytest examples/test_guide_fake_client.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from pathlib import Path
from typing import Any

import pytest
from baml_py.errors import BamlClientHttpError, BamlTimeoutError, BamlValidationError
from dirty_equals import IsInstance

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    PriceTable,
    StreamAbandoned,
    attach_many,
    convert_time_unit,
    detach,
    metrics,
    trackers,
)
from pytest_baml_telemetry.capture import expect
from pytest_baml_telemetry.fake import Usage, faults

ANN = "Ann Lee, ann@example.com. Ten years of Rust and SQL."
SUMMARY = "Ann Lee knows Rust and SQL."
PRICES = PriceTable.load(Path(__file__).with_name("prices.toml"))  # the file the README command passes
MS = 1_000_000  # nanoseconds per millisecond: durations are ints of nanoseconds


# ============================================================================ the application


class ResumeService:
    """Application code: screens a candidate with two BAML functions."""

    def __init__(self, b: Any) -> None:
        self.b = b

    def screen(self, text: str) -> tuple[Any, str]:
        resume = self.b.ExtractResume(text)
        summary = self.b.Summarize(f"{resume.name}: {', '.join(resume.skills)}")
        return resume, summary


@pytest.fixture
def ann(real_baml_client: Any) -> Any:
    """What ExtractResume returns: the generated ``Resume`` type, as the real client would."""
    return real_baml_client.types.Resume(name="Ann Lee", email="ann@example.com", skills=["Rust", "SQL"])


def script_screening(fake: Any, resume: Any, *, extract: str = "850ms", summarize: str = "300ms") -> None:
    """Script one successful ``screen()``: ExtractResume on gpt-4o, then Summarize on gpt-4o-mini."""
    fake.respond("ExtractResume", resume, usage=Usage(250, 40), model="gpt-4o", latency=extract)
    fake.respond("Summarize", SUMMARY, usage=Usage(30, 9), model="gpt-4o-mini", latency=summarize)


@pytest.fixture
def attached() -> Any:
    """``attached(handler_id, events, function)``: attach a handler for this test only."""
    ids: list[str] = []

    def attach_for_test(handler_id: str, events: list, function: Any) -> None:
        attach_many(handler_id, events, function)
        ids.append(handler_id)

    yield attach_for_test
    for handler_id in ids:
        detach(handler_id)


# ============================================================================ 1. logging handler

log = logging.getLogger("my_app.baml")


def log_baml_event(event_name: tuple[str, ...], measurements: dict, metadata: dict, config: Any) -> None:
    """The guide's basic handler: one log line per start, stop and exception."""
    if event_name == CALL_START:
        log.info("BAML call started: %s", metadata["function_name"])
        return
    duration_ms = convert_time_unit(measurements["duration"], "native", "millisecond")
    if event_name == CALL_STOP:
        log.info("BAML call completed: %s in %d ms, %s tokens, model %s",
                 metadata["function_name"], duration_ms, measurements["total_tokens"], metadata["model"])
    else:
        log.error("BAML call failed: %s after %d ms: %s",
                  metadata["function_name"], duration_ms, type(metadata["reason"]).__name__)


def test_1_logging_handler(fake_b, ann, attached, caplog):
    attached("baml-logger", [CALL_START, CALL_STOP, CALL_EXCEPTION], log_baml_event)
    fake_b.respond("ExtractResume", ann, usage=Usage(250, 40), model="gpt-4o", latency="850ms")
    fake_b.fail("Summarize", faults.rate_limited(after="120ms"))
    caplog.set_level(logging.INFO, logger="my_app.baml")

    with pytest.raises(BamlClientHttpError):
        ResumeService(fake_b).screen(ANN)

    # virtual time makes the durations exact, so the whole log can be asserted
    assert caplog.messages == [
        "BAML call started: ExtractResume",
        "BAML call completed: ExtractResume in 850 ms, 290 tokens, model gpt-4o",
        "BAML call started: Summarize",
        "BAML call failed: Summarize after 120 ms: BamlClientHttpError",
    ]


def test_1_logging_handler_ready_made(fake_b, ann, caplog):
    fake_b.respond("ExtractResume", ann, usage=Usage(250, 40), model="gpt-4o", latency="850ms")
    fake_b.fail("Summarize", faults.rate_limited(after="120ms"))
    caplog.set_level(logging.INFO, logger="my_app.baml")

    with trackers.LoggingHandler("my_app.baml"), pytest.raises(BamlClientHttpError):
        ResumeService(fake_b).screen(ANN)

    assert caplog.messages == [
        "BAML call ExtractResume ok in 850.0ms, tokens 250 in + 40 out = 290, model gpt-4o",
        "BAML call Summarize failed after 120.0ms with BamlClientHttpError (status 429), model gpt-4o-mini",
    ]
    assert ANN not in caplog.text  # arguments are not logged unless include_arguments=True


# ============================================================================ 2. metrics handler


def test_2_metrics_handler(fake_b, ann, baml_metrics):
    reporter = baml_metrics([
        metrics.counter("ash_baml.call.count", event_name=CALL_STOP, tags=["function_name", "model"]),
        metrics.distribution(
            "ash_baml.call.duration",
            event_name=CALL_STOP,
            measurement="duration",
            unit=("native", "millisecond"),
            tags=["function_name", "model"],
            reporter_options={"buckets": [500, 1000, 2000]},
        ),
        metrics.sum("ash_baml.call.tokens.total", event_name=CALL_STOP, measurement="total_tokens",
                    tags=["function_name", "model"]),
        metrics.counter("ash_baml.call.errors", event_name=CALL_EXCEPTION, tags=["function_name", "kind"]),
    ])
    script_screening(fake_b, ann, extract="850ms", summarize="300ms")
    script_screening(fake_b, ann, extract="1.5s", summarize="400ms")
    fake_b.respond("ExtractResume", ann, usage=Usage(250, 40), model="gpt-4o", latency="2.5s")
    fake_b.fail("Summarize", faults.timeout(after="10s"))

    service = ResumeService(fake_b)
    service.screen(ANN)
    service.screen(ANN)
    with pytest.raises(BamlTimeoutError):
        service.screen(ANN)

    reporter.assert_value("ash_baml.call.count", 3, function_name="ExtractResume", model="gpt-4o")
    reporter.assert_value("ash_baml.call.count", 2, function_name="Summarize")
    reporter.assert_value("ash_baml.call.tokens.total", 3 * 290, function_name="ExtractResume")
    reporter.assert_value("ash_baml.call.errors", 1, function_name="Summarize", kind="error")
    # durations in ms: ExtractResume took 850, 1500 and 2500 -> one per bucket (..500] is empty
    reporter.assert_buckets("ash_baml.call.duration", {500: 0, 1000: 1, 2000: 1, "+Inf": 1},
                            function_name="ExtractResume")
    assert reporter.value("ash_baml.call.duration", function_name="Summarize").max == 400.0


# ============================================================================ 3. cost tracker


def test_3_cost_tracker(fake_b, ann):
    fake_b.respond("ExtractResume", ann, usage=Usage(1_000, 200), model="gpt-4o")
    fake_b.respond("Summarize", SUMMARY, usage=Usage(2_000, 100), model="gpt-4o-mini")

    with trackers.CostTracker(PRICES) as costs:
        ResumeService(fake_b).screen(ANN)

    # gpt-4o: 1,000 in at $2.50/M + 200 out at $10/M; gpt-4o-mini: 2,000 at $0.15/M + 100 at $0.60/M
    assert costs.by_model()["gpt-4o"].usd == pytest.approx(0.0045)
    assert costs.by_model()["gpt-4o-mini"].usd == pytest.approx(0.00036)
    assert costs.total_usd == pytest.approx(0.00486)


def test_3_cost_tracker_never_counts_unknown_as_zero(fake_b):
    fake_b.respond("Summarize", "cached", usage=Usage(1_000, 10, cached_input_tokens=800), model="gpt-4o")
    fake_b.respond("Summarize", "provider sent no usage", model="gpt-4o-mini")  # tokens unknown
    fake_b.respond("Summarize", "new model", usage=Usage(10, 10), model="gpt-preview")  # not in prices.toml

    with trackers.CostTracker(PRICES) as costs:
        for text in ("a", "b", "c"):
            fake_b.Summarize(text)

    # 200 uncached at $2.50/M + 800 cached at $1.25/M + 10 out at $10/M = $0.0016
    assert costs.calls[0].usd == pytest.approx(0.0016)
    assert [c.status for c in costs.calls] == ["priced", "unknown_tokens", "unpriced"]
    assert costs.total_usd is None  # unknown: not $0.0016, and never $0
    assert costs.total.priced_usd == pytest.approx(0.0016)
    assert costs.unpriced_models == {"gpt-preview": 1}


# ============================================================================ 4. slow-call tracker


def test_4_slow_call_tracker(fake_b, ann, baml_clock, caplog):
    fake_b.respond("ExtractResume", ann, usage=Usage(250, 40), model="gpt-4o", latency="2.5s")
    fake_b.respond("Summarize", SUMMARY, usage=Usage(30, 9), model="gpt-4o-mini", latency="300ms")
    fake_b.fail("Summarize", faults.timeout(after="30s"))

    with trackers.SlowCallTracker("2s") as slow:
        ResumeService(fake_b).screen(ANN)
        with pytest.raises(BamlTimeoutError):
            fake_b.Summarize("a text the provider never answers")

    assert [(c.function_name, c.duration_ms, c.ok) for c in slow.slow_calls] == [
        ("ExtractResume", 2500.0, True),
        ("Summarize", 30000.0, False),  # failed calls are slow calls too
    ]
    assert slow.calls_seen == 3
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]
    assert "ExtractResume (model gpt-4o) took 2.5s" in caplog.records[0].getMessage()
    assert baml_clock.elapsed_ns == 32_800 * MS  # 2.5 s + 0.3 s + 30 s of virtual time, no real waiting


# ============================================================================ 5. percentile tracker


@pytest.mark.asyncio
async def test_5_percentile_tracker(fake_b):
    b = fake_b.as_async()
    latencies_ms = list(range(100, 2001, 100))  # 100, 200, ..., 2000 ms
    random.Random(5).shuffle(latencies_ms)
    for ms in latencies_ms:
        b.respond("Summarize", f"summary after {ms} ms", usage=Usage(10, 5), model="gpt-4o-mini", latency=f"{ms}ms")

    with trackers.LatencyTracker() as latency:
        await asyncio.gather(*(b.Summarize(f"text {i}") for i in range(20)))

    # nearest rank: p50 is the 10th of the 20 sorted values, p95 the 19th, p99 the 20th
    assert latency.percentiles("Summarize") == {
        "count": 20, "min": 100.0, "p50": 1000.0, "p90": 1800.0, "p95": 1900.0, "p99": 2000.0, "max": 2000.0,
    }
    assert latency.percentiles("ExtractResume") is None  # no calls: None, not an IndexError


def test_5_percentiles_of_one_call(fake_b):
    fake_b.respond("Summarize", SUMMARY, latency="1.2s")
    with trackers.LatencyTracker() as latency:
        fake_b.Summarize("once")
    assert latency.percentiles("Summarize", unit="nanosecond") == {
        "count": 1, "min": 1_200 * MS, "p50": 1_200 * MS, "p90": 1_200 * MS, "p95": 1_200 * MS,
        "p99": 1_200 * MS, "max": 1_200 * MS,
    }


# ============================================================================ 6. testing with telemetry


def test_6_a_call_emits_start_and_stop(fake_b, ann, baml_events):
    script_screening(fake_b, ann)

    resume, summary = ResumeService(fake_b).screen(ANN)

    assert (resume.name, summary) == ("Ann Lee", SUMMARY)
    baml_events.assert_emitted("start", metadata={"function_name": "ExtractResume", "arguments": {"resume": ANN}})
    baml_events.assert_emitted(
        "stop",
        measurements={"duration": 850 * MS, "input_tokens": 250, "output_tokens": 40, "total_tokens": 290},
        metadata={"function_name": "ExtractResume", "model": "gpt-4o", "result": ann},
    )
    baml_events.assert_call("Summarize", ok=True, duration_ms=300, model="gpt-4o-mini", result=SUMMARY)
    baml_events.assert_sequence(
        expect("start", metadata={"function_name": "ExtractResume"}),
        "stop",
        expect("start", metadata={"function_name": "Summarize"}),
        "stop",
    )


@pytest.mark.parametrize(
    ("fault", "error_type", "duration_ms"),
    [
        (faults.rate_limited(retry_after="2s", after="120ms"), BamlClientHttpError, 120),
        (faults.timeout(after="30s"), BamlTimeoutError, 30_000),
        (faults.validation_error(raw_output="Sorry, I cannot help with that.", after="900ms"), BamlValidationError, 900),
    ],
    ids=["rate-limit", "timeout", "validation-error"],
)
def test_6_faults_are_exception_events(fake_b, baml_events, fault, error_type, duration_ms):
    fake_b.fail("ExtractResume", fault)

    with pytest.raises(error_type) as raised:
        fake_b.ExtractResume(ANN)

    baml_events.assert_emitted(
        "exception",
        measurements={"duration": duration_ms * MS},
        metadata={"function_name": "ExtractResume", "kind": "error", "reason": IsInstance(error_type)},
    )
    baml_events.assert_not_emitted("stop")
    assert baml_events.calls[0].error is raised.value  # the very exception the caller got


def test_6_rate_limit_then_success(fake_b, ann, baml_events):
    fake_b.fail("ExtractResume", faults.rate_limited(retry_after="2s"))
    fake_b.respond("ExtractResume", ann, usage=Usage(250, 40), model="gpt-4o", latency="850ms")

    with pytest.raises(BamlClientHttpError) as first:
        fake_b.ExtractResume(ANN)
    assert first.value.status_code == 429 and not hasattr(first.value, "retry_after")  # baml-py ignores Retry-After
    assert fake_b.ExtractResume(ANN) == ann

    assert [call.ok for call in baml_events.calls] == [False, True]


def test_6_streams(fake_b, ann, baml_events):
    partials = [{"name": "Ann", "skills": []}, {"name": "Ann Lee", "skills": []}, {"name": "Ann Lee", "skills": ["Rust"]}]
    fake_b.respond("ExtractResume", ann, partials=partials, usage=Usage(250, 40), model="gpt-4o", latency="1.2s")

    stream = fake_b.stream.ExtractResume(ANN)
    # a spec'd fake validates partials into the stream types (stream_types.Resume)
    assert [p.model_dump(exclude_none=True) for p in stream] == partials
    assert stream.get_final_response() == ann

    # the 3 partials are spread evenly over the 1.2 s: the first arrives at 300 ms
    baml_events.assert_call("ExtractResume", ok=True, streaming=True, duration_ms=1200,
                            time_to_first_chunk=300 * MS, output_tokens=40)


@pytest.mark.asyncio
async def test_6_async_stream_failing_midway(fake_b, baml_events):
    b = fake_b.as_async()
    b.fail("Summarize", faults.stream_failure(partials=["Ann Lee", "Ann Lee knows"], error=faults.timeout(), after="5s"))

    stream = b.stream.Summarize(ANN)
    assert [partial async for partial in stream] == ["Ann Lee", "Ann Lee knows"]  # iteration ends quietly
    with pytest.raises(BamlTimeoutError):
        await stream.get_final_response()  # ... the final response raises, as in baml-py

    baml_events.assert_call("Summarize", ok=False, streaming=True, error=IsInstance(BamlTimeoutError), duration_ms=5000)


def test_6_abandoned_stream(fake_b, baml_events):
    fake_b.respond("Summarize", SUMMARY, partials=["Ann", "Ann Lee", "Ann Lee knows"], latency="1s")

    stream = fake_b.stream.Summarize(ANN)
    for partial in stream:
        break  # the caller stops reading after the first partial ...
    stream.close()  # ... and closes the stream: that is an exception event, kind "exit"

    baml_events.assert_emitted("exception", metadata={"kind": "exit", "reason": IsInstance(StreamAbandoned)})
    baml_events.assert_call("Summarize", ok=False, kind="exit", duration_ms=250)  # the 1st of 3 partials in 1 s


def test_6_the_fake_has_the_real_signatures(fake_b):
    # fake_b is spec'd on the generated client: typos fail as they would against the real one
    with pytest.raises(ValueError, match=re.escape("no BAML function 'Sumarize'. Did you mean 'Summarize'?")):
        fake_b.respond("Sumarize", SUMMARY)
    with pytest.raises(TypeError, match="unexpected keyword argument 'txt'"):
        fake_b.Summarize(txt=ANN)


def test_6_attach_event_handlers_analogue(baml_fake, baml_capture):
    # the analogue of :telemetry_test.attach_event_handlers(self(), [start, stop]), with the
    # plugin's own `baml_fake` fixture: no generated client needed, arguments by keyword
    events = baml_capture(["ash_baml.call.start", "ash_baml.call.stop"])
    baml_fake.respond("SayHello", "Hello, Test!", latency="40ms")

    assert baml_fake.SayHello(name="Test") == "Hello, Test!"

    start, stop = events.events
    assert (start.name, start.metadata["function_name"]) == (CALL_START, "SayHello")
    assert (stop.name, stop.measurements["duration"]) == (CALL_STOP, 40 * MS)


@pytest.mark.baml_budget(p95="1s", max_calls=2, max_errors=0, max_total_tokens=1_000)
@pytest.mark.baml_budget(function="Summarize", max_latency="500ms", max_output_tokens=50)
def test_6_screening_stays_within_budget(fake_b, ann):
    """A per-test budget: breaking any limit fails this test, naming the key, the measured
    value, the limit and the slowest calls. Budgets stack; ``function=`` narrows one."""
    script_screening(fake_b, ann, extract="850ms", summarize="300ms")

    ResumeService(fake_b).screen(ANN)
