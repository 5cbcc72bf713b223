"""The scenarios of the upstream telemetry guide, in Python, against the REAL baml-py client.

The application (``ResumeService`` below) calls its generated ``baml_client`` — generated
from ``examples/real_client/baml_src`` by ``examples/conftest.py`` — through
``instrument(...)``. The client's ``Smart`` and ``Fast`` OpenAI clients are overridden to
talk to a local :class:`FakeLLMServer`, so the real baml-py runtime (prompt rendering,
HTTP, retries, parsing, streaming) runs, fully offline, without an API key.

Scenarios, in the guide's order:

1. a logging handler (``attach_many`` on start/stop/exception);
2. a metrics handler (call count, duration distribution, token sum, error count);
3. a cost tracker (USD per model from a price table; unknown never counted as $0);
4. a slow-call tracker (a warning above a threshold, with resource and action);
5. a percentile tracker (p50/p95/p99/max per function, nearest rank);
6. testing with telemetry (``baml_events`` / ``baml_capture`` assertions).

Each hand-written handler is followed, where the library ships one, by the same scenario
with the ready-made version (``pytest_baml_telemetry.trackers`` / ``.metrics``).

Run: ``pytest examples/test_guide_real_client.py``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import threading
from collections import Counter, defaultdict
from typing import Any

import pytest
from baml_py.errors import BamlClientHttpError
from dirty_equals import IsInstance, IsPositiveInt, IsStr

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    attach,
    attach_many,
    convert_time_unit,
    detach,
    metrics,
    trackers,
)
from pytest_baml_telemetry.instrument import instrument

ANN = "Ann Lee, ann@example.com. Ten years of Rust and SQL."
ANN_JSON = '{"name": "Ann Lee", "email": "ann@example.com", "skills": ["Rust", "SQL"]}'


# ============================================================================ the application


class ResumeService:
    """Application code: screens a candidate with two BAML functions.

    Every call it makes is instrumented with ``resource=ResumeService`` and
    ``action="screen"``, which land in the metadata of every event.
    """

    def __init__(self, b: Any) -> None:
        self.b = instrument(b, resource=ResumeService, action="screen")

    def screen(self, text: str) -> tuple[Any, str]:
        resume = self.b.ExtractResume(text)
        summary = self.b.Summarize(f"{resume.name}: {', '.join(resume.skills)}")
        return resume, summary


@pytest.fixture
def service(real_b: Any) -> ResumeService:
    return ResumeService(real_b)


@pytest.fixture
def handler_ids() -> Any:
    """Handler ids attached during a test, detached at teardown (as the app would on shutdown)."""
    ids: list[str] = []
    yield ids
    for handler_id in ids:
        detach(handler_id)


# ============================================================================ 1. logging handler

log = logging.getLogger("my_app.baml")


def log_baml_event(event_name: tuple[str, ...], measurements: dict, metadata: dict, config: Any) -> None:
    """The guide's basic handler: one log line per start, stop and exception."""
    if event_name == CALL_START:
        log.info("BAML call started: %s", metadata["function_name"])
    elif event_name == CALL_STOP:
        duration_ms = convert_time_unit(measurements["duration"], "native", "millisecond")
        log.info(
            "BAML call completed function=%s duration_ms=%d tokens=%s model=%s",
            metadata["function_name"], duration_ms, measurements["total_tokens"], metadata["model"],
        )
    else:
        duration_ms = convert_time_unit(measurements["duration"], "native", "millisecond")
        log.error(
            "BAML call failed function=%s duration_ms=%d error=%s",
            metadata["function_name"], duration_ms, type(metadata["reason"]).__name__,
        )


def test_1_logging_handler(service, llm_server, handler_ids, caplog):
    attach_many("baml-logger", [CALL_START, CALL_STOP, CALL_EXCEPTION], log_baml_event)
    handler_ids.append("baml-logger")
    caplog.set_level(logging.INFO, logger="my_app.baml")
    llm_server.respond(ANN_JSON, usage=(250, 40))
    llm_server.fail(401)  # Summarize's client (Fast) has no retry policy

    with pytest.raises(BamlClientHttpError):
        service.screen(ANN)

    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "my_app.baml"]
    assert lines[0] == ("INFO", "BAML call started: ExtractResume")
    assert re.fullmatch(r"BAML call completed function=ExtractResume duration_ms=\d+ tokens=290 model=gpt-4o", lines[1][1])
    assert lines[2] == ("INFO", "BAML call started: Summarize")
    assert lines[3][0] == "ERROR"
    assert re.fullmatch(r"BAML call failed function=Summarize duration_ms=\d+ error=BamlClientHttpError", lines[3][1])


def test_1_logging_handler_ready_made(service, llm_server, caplog):
    caplog.set_level(logging.INFO)
    llm_server.respond(ANN_JSON, usage=(250, 40)).respond("Ann Lee knows Rust and SQL.", usage=(30, 9))
    with trackers.LoggingHandler():
        service.screen(ANN)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "ExtractResume" in text and "Summarize" in text and "gpt-4o" in text
    assert ANN not in text  # arguments are not logged unless asked for


# ============================================================================ 2. metrics handler


class BamlMetrics:
    """The guide's Telemetry.Metrics definitions, aggregated in plain dicts.

    - ``ash_baml.call.count``: counter of stops by (function_name, model, resource)
    - ``ash_baml.call.duration``: distribution (ms) of stops by the same tags
    - ``ash_baml.call.tokens.total``: sum of total_tokens by (function_name, model)
    - ``ash_baml.call.errors``: counter of exceptions by (function_name, kind)
    """

    def __init__(self) -> None:
        self.count: Counter = Counter()
        self.duration_ms: dict[tuple, list[float]] = defaultdict(list)
        self.tokens_total: Counter = Counter()
        self.errors: Counter = Counter()
        self.lock = threading.Lock()

    def handle(self, event_name: tuple[str, ...], measurements: dict, metadata: dict, config: Any) -> None:
        with self.lock:
            if event_name == CALL_STOP:
                tags = (metadata["function_name"], metadata["model"], metadata["resource"])
                self.count[tags] += 1
                self.duration_ms[tags].append(convert_time_unit(float(measurements["duration"]), "native", "millisecond"))
                if measurements["total_tokens"] is not None:  # unknown is not 0: skip it
                    self.tokens_total[(metadata["function_name"], metadata["model"])] += measurements["total_tokens"]
            elif event_name == CALL_EXCEPTION:
                self.errors[(metadata["function_name"], metadata["kind"])] += 1


def test_2_metrics_handler(service, llm_server, handler_ids):
    handler = BamlMetrics()
    attach_many("baml-metrics", [CALL_STOP, CALL_EXCEPTION], handler.handle)
    handler_ids.append("baml-metrics")
    for tokens in ((200, 30), (300, 50)):
        llm_server.respond(ANN_JSON, usage=tokens).respond("Ann Lee knows Rust and SQL.", usage=(20, 10))
    llm_server.respond(ANN_JSON, usage=(100, 20)).fail(429)

    for _ in range(2):
        service.screen(ANN)
    with pytest.raises(BamlClientHttpError):
        service.screen(ANN)

    assert handler.count[("ExtractResume", "gpt-4o", ResumeService)] == 3
    assert handler.count[("Summarize", "gpt-4o-mini", ResumeService)] == 2
    assert handler.tokens_total == {("ExtractResume", "gpt-4o"): 700, ("Summarize", "gpt-4o-mini"): 60}
    assert handler.errors == {("Summarize", "error"): 1}
    assert all(d > 0 for d in handler.duration_ms[("ExtractResume", "gpt-4o", ResumeService)])


def test_2_metrics_handler_ready_made(service, llm_server):
    reporter = metrics.InMemoryReporter(
        [
            metrics.counter("ash_baml.call.count", event_name=CALL_STOP, tags=["function_name", "model"]),
            metrics.distribution(
                "ash_baml.call.duration",
                event_name=CALL_STOP,
                measurement="duration",
                unit=("native", "millisecond"),
                tags=["function_name", "model"],
                reporter_options={"buckets": [100, 1000, 10_000]},
            ),
            metrics.sum("ash_baml.call.tokens.total", event_name=CALL_STOP, measurement="total_tokens", tags=["function_name", "model"]),
            metrics.counter("ash_baml.call.errors", event_name=CALL_EXCEPTION, tags=["function_name", "kind"]),
        ]
    )
    llm_server.respond(ANN_JSON, usage=(200, 30)).respond("Ann Lee knows Rust and SQL.", usage=(20, 10))
    llm_server.respond(ANN_JSON, usage=(100, 20)).fail(500)
    with reporter:
        service.screen(ANN)
        with pytest.raises(BamlClientHttpError):
            service.screen(ANN)
    assert reporter.value("ash_baml.call.count", function_name="ExtractResume", model="gpt-4o") == 2
    assert reporter.value("ash_baml.call.tokens.total", function_name="ExtractResume") == 350
    assert reporter.value("ash_baml.call.errors", function_name="Summarize", kind="error") == 1
    assert reporter.value("ash_baml.call.duration", function_name="ExtractResume").count == 2


# ============================================================================ 3. cost tracker

# USD per million tokens (example prices).
PRICES = {
    "gpt-4o": {"input_per_mtok": 2.50, "output_per_mtok": 10.00},
    "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.60},
}


class CostTracker:
    """Totals the cost of finished calls. Unlike the upstream guide, a call whose tokens
    are unknown or whose model has no price is *reported*, never counted as $0."""

    def __init__(self, prices: dict[str, dict[str, float]]) -> None:
        self.prices = prices
        self.total_usd = 0.0
        self.by_model: Counter = Counter()
        self.calls = 0
        self.unknown_tokens: list[str] = []  # function names
        self.unpriced: Counter = Counter()  # model -> calls
        self.lock = threading.Lock()

    def handle(self, event_name: tuple[str, ...], measurements: dict, metadata: dict, config: Any) -> None:
        model, i, o = metadata["model"], measurements["input_tokens"], measurements["output_tokens"]
        with self.lock:
            self.calls += 1
            if i is None or o is None:
                self.unknown_tokens.append(metadata["function_name"])
            elif model not in self.prices:
                self.unpriced[model] += 1
            else:
                price = self.prices[model]
                cost = (i * price["input_per_mtok"] + o * price["output_per_mtok"]) / 1_000_000
                self.total_usd += cost
                self.by_model[model] += cost


def test_3_cost_tracker(service, llm_server, real_baml_client, handler_ids):
    costs = CostTracker(PRICES)
    attach("cost-tracker", CALL_STOP, costs.handle)
    handler_ids.append("cost-tracker")
    llm_server.respond(ANN_JSON, usage=(1_000, 200)).respond("Ann Lee knows Rust and SQL.", usage=(2_000, 100))
    service.screen(ANN)
    llm_server.respond("A summary the provider sent no usage for.")  # usage=None: tokens unknown
    service.b.Summarize("no usage this time")
    preview = llm_server.client_registry("Fast", model="gpt-preview-unlisted")
    llm_server.respond("priced nowhere", usage=(10, 10))
    instrument(real_baml_client.b).with_options(client_registry=preview).Summarize("x")

    assert costs.calls == 4
    assert costs.by_model["gpt-4o"] == pytest.approx(1_000 * 2.5e-6 + 200 * 10e-6)  # $0.0045
    assert costs.by_model["gpt-4o-mini"] == pytest.approx(2_000 * 0.15e-6 + 100 * 0.6e-6)  # $0.00036
    assert costs.total_usd == pytest.approx(0.0045 + 0.00036)
    assert costs.unknown_tokens == ["Summarize"]
    assert costs.unpriced == {"gpt-preview-unlisted": 1}


def test_3_cost_tracker_ready_made(service, llm_server):
    llm_server.respond(ANN_JSON, usage=(1_000, 200)).respond("Ann Lee knows Rust and SQL.", usage=(2_000, 100))
    with trackers.CostTracker(PRICES) as costs:
        service.screen(ANN)
    assert costs.total_usd == pytest.approx(0.0045 + 0.00036)
    assert costs.by_model()["gpt-4o"].usd == pytest.approx(0.0045)


# ============================================================================ 4. slow-call tracker


class SlowCallTracker:
    """Warns about calls slower than a threshold, with the call's resource and action."""

    def __init__(self, threshold_ms: float) -> None:
        self.threshold_ms = threshold_ms
        self.slow: list[dict[str, Any]] = []

    def handle(self, event_name: tuple[str, ...], measurements: dict, metadata: dict, config: Any) -> None:
        duration_ms = convert_time_unit(measurements["duration"], "native", "millisecond")
        if duration_ms > self.threshold_ms:
            entry = {
                "function": metadata["function_name"],
                "duration_ms": duration_ms,
                "threshold_ms": self.threshold_ms,
                "resource": metadata["resource"],
                "action": metadata["action"],
            }
            self.slow.append(entry)
            log.warning("Slow BAML call detected: %s", entry)


def test_4_slow_call_tracker(service, llm_server, handler_ids, caplog):
    tracker = SlowCallTracker(threshold_ms=500)
    attach("slow-call-tracker", CALL_STOP, tracker.handle)
    handler_ids.append("slow-call-tracker")
    llm_server.respond(ANN_JSON, usage=(100, 20))  # fast
    llm_server.respond("Ann Lee knows Rust and SQL.", usage=(20, 10), latency="700ms")  # slow

    service.screen(ANN)

    assert [(s["function"], s["resource"], s["action"]) for s in tracker.slow] == [("Summarize", ResumeService, "screen")]
    assert tracker.slow[0]["duration_ms"] >= 700  # the server waited 700 ms before answering
    assert any("Slow BAML call detected" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_4_slow_call_tracker_ready_made(service, llm_server):
    llm_server.respond(ANN_JSON, usage=(100, 20)).respond("Ann Lee knows Rust and SQL.", latency="700ms")
    with trackers.SlowCallTracker("500ms") as tracker:
        service.screen(ANN)
    assert [call.function_name for call in tracker.slow_calls] == ["Summarize"]


# ============================================================================ 5. percentile tracker


def nearest_rank(sorted_values: list[float], p: float) -> float:
    """The p-th percentile by the nearest-rank method: the ceil(p/100 * n)-th smallest value."""
    return sorted_values[max(1, math.ceil(p / 100 * len(sorted_values))) - 1]


class LatencyTracker:
    """Keeps the last 1000 durations (ms) per function; p50/p95/p99/max on demand."""

    def __init__(self, keep: int = 1000) -> None:
        self.keep = keep
        self.durations: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def handle(self, event_name: tuple[str, ...], measurements: dict, metadata: dict, config: Any) -> None:
        ms = convert_time_unit(float(measurements["duration"]), "native", "millisecond")
        with self.lock:
            recent = self.durations[metadata["function_name"]]
            recent.append(ms)
            del recent[: -self.keep]

    def percentiles(self, function_name: str) -> dict[str, float] | None:
        with self.lock:
            values = sorted(self.durations.get(function_name, ()))
        if not values:
            return None
        return {
            "p50": nearest_rank(values, 50),
            "p95": nearest_rank(values, 95),
            "p99": nearest_rank(values, 99),
            "max": values[-1],
            "count": len(values),
        }


@pytest.mark.asyncio
async def test_5_percentile_tracker_over_concurrent_async_calls(real_async_b, llm_server, handler_ids):
    tracker = LatencyTracker()
    attach("latency-tracker", CALL_STOP, tracker.handle)
    handler_ids.append("latency-tracker")
    for i in range(9):
        llm_server.respond(f"summary {i}", usage=(10, 5))
    llm_server.respond("the slow one", usage=(10, 5), latency="300ms")

    results = await asyncio.gather(*(real_async_b.Summarize(f"text {i}") for i in range(10)))

    assert len(results) == 10 and "the slow one" in results
    stats = tracker.percentiles("Summarize")
    assert stats is not None and stats["count"] == 10
    assert stats["p50"] <= stats["p95"] <= stats["p99"] == stats["max"]  # of 10 values, p95 and p99 are the 10th
    assert stats["max"] >= 300
    assert tracker.percentiles("ExtractResume") is None


@pytest.mark.asyncio
async def test_5_percentile_tracker_ready_made(real_async_b, llm_server):
    for i in range(4):
        llm_server.respond(f"summary {i}", usage=(10, 5))
    with trackers.LatencyTracker() as tracker:
        await asyncio.gather(*(real_async_b.Summarize(f"text {i}") for i in range(4)))
    stats = tracker.percentiles("Summarize")
    assert stats["count"] == 4 and stats["p50"] <= stats["p99"] == stats["max"]


# ============================================================================ 6. testing with telemetry


def test_6_calls_emit_start_and_stop(service, llm_server, baml_events):
    llm_server.respond(ANN_JSON, usage=(250, 40)).respond("Ann Lee knows Rust and SQL.", usage=(30, 9))

    resume, summary = service.screen(ANN)

    assert (resume.name, summary) == ("Ann Lee", "Ann Lee knows Rust and SQL.")
    baml_events.assert_emitted("start", metadata={"function_name": "ExtractResume", "arguments": {"resume": ANN}})
    baml_events.assert_emitted(
        "stop",
        measurements={"duration": IsPositiveInt, "input_tokens": 250, "output_tokens": 40, "total_tokens": 290},
        metadata={"function_name": "ExtractResume", "model": "gpt-4o", "resource": ResumeService, "action": "screen"},
    )
    baml_events.assert_call("Summarize", ok=True, model="gpt-4o-mini", input_tokens=30, result=summary)
    baml_events.assert_sequence("start", "stop", "start", "stop")
    # the baml_events fixture also validates every event against the contract at teardown


def test_6_rate_limit_retried_by_baml_is_one_call(service, llm_server, baml_events):
    llm_server.fail(429, retry_after=1).respond(ANN_JSON, usage=(250, 40))  # Smart retries (TwoRetries)

    service.b.ExtractResume(ANN)

    (stop,) = baml_events.stops
    assert stop.metadata["num_attempts"] == 2 and stop.metadata["client_name"] == "Smart"
    baml_events.assert_not_emitted("exception")


def test_6_failures_are_exception_events(service, llm_server, baml_events):
    llm_server.fail(503)

    with pytest.raises(BamlClientHttpError) as info:
        service.b.Summarize("anything")

    baml_events.assert_emitted(
        "exception",
        metadata={"function_name": "Summarize", "kind": "error", "reason": IsInstance(BamlClientHttpError)},
    )
    baml_events.assert_call("Summarize", ok=False, error=info.value)
    assert info.value.status_code == 503


def test_6_streams_emit_too(real_b, llm_server, baml_events):
    llm_server.respond("Ann Lee is a Rust and SQL engineer.", usage=(40, 9), chunks=4)

    stream = real_b.stream.Summarize(ANN)
    partials = list(stream)
    final = stream.get_final_response()

    assert len(partials) >= 1 and final == "Ann Lee is a Rust and SQL engineer."
    baml_events.assert_emitted(
        "stop",
        measurements={"time_to_first_chunk": IsPositiveInt, "output_tokens": 9},
        metadata={"function_name": "Summarize", "streaming": True, "request_id": IsStr(regex=r"chatcmpl-.+")},
    )


def test_6_attach_event_handlers_analogue(service, llm_server, baml_capture):
    # the analogue of :telemetry_test.attach_event_handlers(self(), [start, stop])
    events = baml_capture(["ash_baml.call.start", "ash_baml.call.stop"])
    llm_server.respond("Hello, Test!", usage=(3, 3))

    service.b.Summarize("Test")

    assert [e.name for e in events.events] == [CALL_START, CALL_STOP]
    assert events.events[0].metadata["function_name"] == "Summarize"
    assert events.events[1].measurements["duration"] > 0
