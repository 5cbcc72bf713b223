"""The ready-made trackers: latency percentiles, slow calls, cost, call logging."""

from __future__ import annotations

import logging
from datetime import timedelta
from fractions import Fraction

import pytest
from helpers import Env, make_env
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock
from pytest_baml_telemetry.clock import format_duration_ns
from pytest_baml_telemetry.trackers import (
    CostTracker,
    LatencyTracker,
    LoggingHandler,
    SlowCallTracker,
    log_calls,
    nearest_rank,
)


@pytest.fixture
def env() -> Env:
    return make_env("trackers-test")


def reference_nearest_rank(values: list[int], p: int | Fraction) -> int | None:
    """Sorted-list nearest rank: the ceil(p/100 * n)-th smallest value (1-based, at least 1)."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    rank = -(-(Fraction(p) * n) // 100)  # exact ceil
    return ordered[max(1, int(rank)) - 1]


# --------------------------------------------------------------------------- latency


def test_latency_percentiles_per_function(env: Env) -> None:
    tracker = LatencyTracker().attach(env.dispatcher)
    for ms in range(1, 101):  # 1..100 ms, shuffled order does not matter
        env.call("A", latency=f"{(ms * 37) % 100 + 1}ms")
    env.call("B", latency="7ms")
    a = tracker.percentiles("A")
    assert a == {"count": 100, "min": 1.0, "p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert tracker.percentiles("B") == {
        "count": 1, "min": 7.0, "p50": 7.0, "p90": 7.0, "p95": 7.0, "p99": 7.0, "max": 7.0,
    }
    everything = tracker.percentiles(unit="nanosecond")
    assert everything["count"] == 101 and everything["max"] == 100_000_000
    assert isinstance(everything["p50"], int)
    assert tracker.percentile(50, "A", unit="second") == 0.05
    assert tracker.functions == ["A", "B"]


def test_latency_empty_and_single_sample(env: Env) -> None:
    tracker = LatencyTracker().attach(env.dispatcher)
    assert tracker.percentiles() is None
    assert tracker.percentiles("Nope") is None
    assert tracker.percentile(99) is None
    env.call("Only", latency=1_234_567)
    assert tracker.percentiles("Only", unit="nanosecond") == {
        "count": 1, "min": 1_234_567, "p50": 1_234_567, "p90": 1_234_567, "p95": 1_234_567,
        "p99": 1_234_567, "max": 1_234_567,
    }


def test_latency_ignores_errors_unless_asked(env: Env) -> None:
    ok_only = LatencyTracker().attach(env.dispatcher)
    with_errors = LatencyTracker(include_errors=True).attach(env.dispatcher)
    env.call("A", latency="10ms")
    env.call("A", latency="30s", fail=TimeoutError("timeout"))
    assert ok_only.percentiles("A")["max"] == 10.0
    assert with_errors.percentiles("A")["max"] == 30_000.0
    assert with_errors.count("A") == 2


def test_latency_max_samples_keeps_the_most_recent(env: Env) -> None:
    tracker = LatencyTracker(max_samples=3).attach(env.dispatcher)
    for ms in (100, 1, 2, 3):
        env.call(latency=f"{ms}ms")
    assert tracker.durations() == [1_000_000, 2_000_000, 3_000_000]
    with pytest.raises(ValueError, match="max_samples=0"):
        LatencyTracker(max_samples=0)


def test_latency_bad_inputs() -> None:
    tracker = LatencyTracker()
    with pytest.raises(ValueError, match="unit='hour'"):
        tracker.percentiles(unit="hour")
    tracker.record("A", 5)
    with pytest.raises(ValueError, match="p=101"):
        tracker.percentile(101)
    with pytest.raises(ValueError, match="duration_ns=-1"):
        tracker.record("A", -1)


@settings(max_examples=200, deadline=None)
@given(
    durations=st.lists(st.integers(min_value=0, max_value=10**12), min_size=0, max_size=300),
    p=st.one_of(st.integers(min_value=0, max_value=100), st.sampled_from([Fraction("99.9"), Fraction("12.5")])),
)
def test_latency_percentile_property_matches_sorted_reference(durations: list[int], p) -> None:
    tracker = LatencyTracker()
    for d in durations:
        tracker.record("F", d)
    expected = reference_nearest_rank(durations, p)
    assert tracker.percentile(float(p) if isinstance(p, Fraction) else p, "F", unit="nanosecond") == expected
    stats = tracker.percentiles("F", unit="nanosecond")
    if not durations:
        assert stats is None
    else:
        assert stats == {
            "count": len(durations),
            "min": min(durations),
            "p50": reference_nearest_rank(durations, 50),
            "p90": reference_nearest_rank(durations, 90),
            "p95": reference_nearest_rank(durations, 95),
            "p99": reference_nearest_rank(durations, 99),
            "max": max(durations),
        }


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=40))
def test_latency_from_real_events_matches_reference(durations: list[int]) -> None:
    dispatcher = Dispatcher()
    clock = VirtualClock()
    emitter = Emitter(dispatcher=dispatcher, clock=clock)
    with LatencyTracker(dispatcher=dispatcher) as tracker:
        for d in durations:
            with emitter.call("F"):
                clock.advance_ns(d)
    assert tracker.durations("F") == durations
    for key, p in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        assert tracker.percentiles("F", unit="nanosecond")[key] == reference_nearest_rank(durations, p)


def test_nearest_rank_definition() -> None:
    assert nearest_rank([], 50) is None
    assert nearest_rank([7], 0) == 7 and nearest_rank([7], 100) == 7
    assert nearest_rank([1, 2, 3, 4], 50) == 2
    assert nearest_rank([1, 2, 3, 4], 51) == 3
    assert nearest_rank(list(range(1, 101)), 99) == 99


# --------------------------------------------------------------------------- attach / detach


def test_trackers_have_unique_ids_and_detach(env: Env) -> None:
    a, b = LatencyTracker(), LatencyTracker()
    assert a.handler_id != b.handler_id
    a.attach(env.dispatcher)
    b.attach(env.dispatcher)
    env.call(latency="1ms")
    assert a.count() == b.count() == 1
    with pytest.raises(RuntimeError, match="already attached"):
        a.attach(env.dispatcher)
    assert a.detach() is True and a.detach() is False
    env.call(latency="1ms")
    assert a.count() == 1 and b.count() == 2
    b.detach()
    assert env.dispatcher.list_handlers() == []


def test_tracker_context_manager_and_prefix(env: Env) -> None:
    emitter = Emitter(("my_app",), dispatcher=env.dispatcher, clock=env.clock)
    with LatencyTracker(dispatcher=env.dispatcher, prefix=("my_app",)) as tracker:
        assert tracker.attached
        with emitter.call("F"):
            env.clock.advance("2ms")
        env.call("G")  # ash_baml prefix: not seen
    assert not tracker.attached
    assert tracker.functions == ["F"]
    tracker.attach(env.dispatcher, prefix=("ash_baml",))
    env.call("G")
    tracker.detach()
    assert tracker.functions == ["F", "G"]


def test_tracker_attaches_to_the_default_dispatcher() -> None:
    from pytest_baml_telemetry.dispatcher import default_dispatcher

    with LatencyTracker() as tracker:
        assert tracker.dispatcher is default_dispatcher
        with Emitter(clock=VirtualClock()).call("F"):
            pass
    assert tracker.count("F") == 1
    assert not any(h["id"] == tracker.handler_id for h in default_dispatcher.list_handlers())


def test_attach_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="dispatcher='x'"):
        LatencyTracker().attach("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="event prefix"):
        LatencyTracker().attach(Dispatcher(), prefix="ash_baml")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- slow calls


def test_slow_call_tracker_warns_above_threshold(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    tracker = SlowCallTracker("100ms").attach(env.dispatcher)
    with caplog.at_level(logging.WARNING, logger="pytest_baml_telemetry.trackers"):
        env.call("Fast", latency="50ms")
        env.call("Edge", latency="100ms")  # equal to the threshold: not slow
        env.call("Slow", latency="2500ms", model="gpt-4o")
        env.call("Timeout", latency="30s", model="claude", fail=TimeoutError("no answer"))
    slow = tracker.slow_calls
    assert [(c.function_name, c.model, c.duration_ns, c.ok) for c in slow] == [
        ("Slow", "gpt-4o", 2_500_000_000, True),
        ("Timeout", "claude", 30_000_000_000, False),
    ]
    assert slow[1].error_type == "TimeoutError"
    assert slow[0].duration_ms == 2500.0
    assert tracker.calls_seen == 4
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 2
    assert messages[0] == (
        f"slow BAML call: Slow (model gpt-4o) took {format_duration_ns(2_500_000_000)}, "
        f"above the {format_duration_ns(100_000_000)} threshold"
    )
    assert "Timeout (model claude)" in messages[1] and format_duration_ns(30 * 10**9) in messages[1]
    assert messages[1].endswith("(failed with TimeoutError)")
    assert caplog.records[-1].baml_function == "Timeout"
    assert "no answer" not in caplog.text  # exception messages are not logged


def test_slow_call_tracker_options(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    custom = logging.getLogger("my.slow.calls")
    tracker = SlowCallTracker(timedelta(seconds=1), logger=custom, include_errors=False).attach(env.dispatcher)
    with caplog.at_level(logging.WARNING, logger="my.slow.calls"):
        env.call("A", latency="2s")
        env.call("B", latency="2s", fail=ValueError("x"))
    assert [c.function_name for c in tracker.slow_calls] == ["A"]
    assert [r.name for r in caplog.records] == ["my.slow.calls"]
    assert SlowCallTracker(0.5).threshold_ns == 500_000_000


@pytest.mark.parametrize("bad", ["fast", -1, None, "2 parsecs"])
def test_slow_call_tracker_rejects_bad_thresholds(bad) -> None:
    with pytest.raises((TypeError, ValueError), match="threshold"):
        SlowCallTracker(bad)


def test_slow_call_tracker_rejects_non_logger() -> None:
    with pytest.raises(TypeError, match="logger='x'"):
        SlowCallTracker("1s", logger="x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- cost


PRICES = {
    "gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "cached_input_per_mtok": 1.25},
    "claude": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
}


def test_cost_tracker_totals_per_function_and_model(env: Env) -> None:
    tracker = CostTracker(PRICES).attach(env.dispatcher)
    env.call("Extract", model="gpt-4o", usage=(1_000_000, 100_000))  # 2.5 + 1.0
    env.call("Extract", model="claude", usage=(200_000, 10_000))  # 0.6 + 0.15
    env.call("Classify", model="gpt-4o", usage=(1_000_000, 0, 400_000))  # 600k*2.5 + 400k*1.25 = 1.5 + 0.5
    assert tracker.total_usd == pytest.approx(3.5 + 0.75 + 2.0)
    by_function = tracker.by_function()
    assert by_function["Extract"].usd == pytest.approx(4.25)
    assert by_function["Extract"].calls == 2
    assert by_function["Classify"].usd == pytest.approx(2.0)
    assert by_function["Classify"].cached_input_tokens == 400_000
    by_model = tracker.by_model()
    assert by_model["gpt-4o"].usd == pytest.approx(5.5)
    assert by_model["claude"].usd == pytest.approx(0.75)
    assert by_model["claude"].input_tokens == 200_000 and by_model["claude"].output_tokens == 10_000
    assert [c.status for c in tracker.calls] == ["priced"] * 3
    assert tracker.unpriced_models == {}
    assert "$6.25 over 3 calls" in tracker.report()  # issue 11: format_usd, plural; was "$6.250000 over 3 call(s)"


def test_cost_tracker_never_counts_unpriced_or_unknown_as_zero(env: Env) -> None:
    tracker = CostTracker(PRICES).attach(env.dispatcher)
    env.call("Extract", model="gpt-4o", usage=(1_000_000, 0))
    env.call("Extract", model="llama-local", usage=(500, 50))
    env.call("Extract", model="llama-local", usage=(500, 50))
    env.call("Classify", model="gpt-4o", usage=None)
    env.call("Classify", model=None, usage=(10, 10))
    env.call("Classify", model="llama-local", usage=None)  # unpriced whatever its tokens
    # issue 12: a failure is costed too; without tokens (billing unknown) it has unknown tokens
    env.call("Classify", model="gpt-4o", fail=RuntimeError("no tokens"))
    total = tracker.total
    assert total.calls == 7
    assert total.usd is None and tracker.total_usd is None
    assert total.priced_usd == pytest.approx(2.5)
    assert total.unpriced_calls == 4 and total.unknown_token_calls == 2
    assert tracker.unpriced_models == {"llama-local": 3, None: 1}
    assert tracker.unknown_token_calls == 2
    by_model = tracker.by_model()
    assert by_model["gpt-4o"].usd is None  # one gpt-4o call had unknown tokens
    assert by_model["gpt-4o"].priced_usd == pytest.approx(2.5)
    assert by_model["llama-local"].usd is None and by_model["llama-local"].priced_usd == 0.0
    text = str(by_model["llama-local"])
    assert "unknown" in text and "'llama-local'" in text and "$0" not in text.split("(")[0]
    statuses = [(c.model, c.status, c.usd) for c in tracker.calls]
    assert statuses == [
        ("gpt-4o", "priced", pytest.approx(2.5)),
        ("llama-local", "unpriced", None),
        ("llama-local", "unpriced", None),
        ("gpt-4o", "unknown_tokens", None),
        (None, "unpriced", None),
        ("llama-local", "unpriced", None),
        ("gpt-4o", "unknown_tokens", None),
    ]
    report = tracker.report()
    assert "unpriced models" in report and "unknown tokens" in report  # issue 11: plural; was "unpriced model(s)"


def test_cost_tracker_accepts_a_price_table_file_shape_and_a_cost_object(env: Env) -> None:
    from_file = CostTracker({"models": PRICES}).attach(env.dispatcher)

    class FlatPrice:
        def cost(self, model, input_tokens, output_tokens, cached_input_tokens):
            return None if model == "free?" else 0.001 * (input_tokens + output_tokens)

    custom = CostTracker(FlatPrice()).attach(env.dispatcher)
    env.call(model="gpt-4o", usage=(1_000_000, 0))
    env.call(model="free?", usage=(1, 1))
    assert from_file.by_model()["gpt-4o"].usd == pytest.approx(2.5)
    assert custom.by_model()["gpt-4o"].usd == pytest.approx(1000.0)
    assert custom.unpriced_models == {"free?": 1}


def test_cost_tracker_rejects_bad_prices() -> None:
    with pytest.raises(TypeError, match="prices=42"):
        CostTracker(42)
    with pytest.raises(ValueError, match="input_per_mtok"):
        CostTracker({"gpt-4o": {"input_per_mtok": "cheap", "output_per_mtok": 1}})

    class Broken:
        def cost(self, *args):
            return -1

    tracker = CostTracker(Broken())
    with pytest.raises(ValueError, match="returned -1"):
        tracker.record("F", "m", 1, 1)


# --------------------------------------------------------------------------- logging


def test_log_calls_one_line_per_call_without_arguments(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    handler = log_calls("my.baml", dispatcher=env.dispatcher)
    try:
        with caplog.at_level(logging.INFO, logger="my.baml"):
            env.call("Extract", latency="12500us", usage=(10, 5), arguments={"resume": "SECRET-ARG"},
                     result="SECRET-RESULT")
            env.call("Extract", latency="3ms", usage=None, model=None)
            env.call("Extract", latency="7ms", fail=ValueError("SECRET-MESSAGE"))
    finally:
        handler.detach()
    records = [r for r in caplog.records if r.name == "my.baml"]
    assert len(records) == 3
    first, second, third = (r.getMessage() for r in records)
    assert first == "BAML call Extract ok in 12.5ms, tokens 10 in + 5 out = 15, model gpt-4o"
    assert second == "BAML call Extract ok in 3.0ms, tokens unknown, model unknown"
    assert third == "BAML call Extract failed after 7.0ms with ValueError, model gpt-4o"
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO, logging.ERROR]
    assert records[0].baml_duration_ms == 12.5 and records[0].baml_total_tokens == 15
    assert "SECRET" not in caplog.text


def test_logging_handler_includes_arguments_and_results_when_asked(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    with LoggingHandler("my.baml", "DEBUG", include_arguments=True, include_result=True,
                        include_error_message=True, dispatcher=env.dispatcher):
        with caplog.at_level(logging.DEBUG, logger="my.baml"):
            env.call("Extract", arguments={"resume": "ARG"}, result={"name": "RESULT"}, streaming=True)
            env.call("Extract", arguments={"resume": "ARG2"}, fail=ValueError("MESSAGE"))
    messages = [r.getMessage() for r in caplog.records if r.name == "my.baml"]
    assert "[stream]" in messages[0]
    assert "arguments={'resume': 'ARG'}" in messages[0] and "result={'name': 'RESULT'}" in messages[0]
    assert "ValueError: MESSAGE" in messages[1] and "arguments={'resume': 'ARG2'}" in messages[1]
    assert [r.levelno for r in caplog.records if r.name == "my.baml"] == [logging.DEBUG, logging.ERROR]


def test_logging_handler_reports_status_codes(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    class HttpError(Exception):
        status_code = 429

    with LoggingHandler(dispatcher=env.dispatcher):
        with caplog.at_level(logging.INFO, logger="pytest_baml_telemetry.calls"):
            env.call("Extract", fail=HttpError("rate limited"))
    assert "with HttpError (status 429)" in caplog.text
    assert "rate limited" not in caplog.text


def test_logging_handler_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError, match="logger=5"):
        LoggingHandler(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="level='LOUD'"):
        LoggingHandler(level="LOUD")
    with pytest.raises(TypeError, match="error_level=1.5"):
        LoggingHandler(error_level=1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- no overflow (issue 11)


@pytest.mark.parametrize("bad", [1e300, float("inf"), 10**400, "9" * 400 + "s", timedelta(days=999_999_999)])
def test_slow_call_tracker_refuses_thresholds_beyond_max_native(bad) -> None:
    with pytest.raises(ValueError, match=r"^SlowCallTracker\(threshold\)=.* is too long; expected a duration of at most"):
        SlowCallTracker(bad)
    assert SlowCallTracker(9_000_000_000).threshold_ns == 9_000_000_000 * 10**9  # 285 years: allowed


STOP = ("ash_baml", "call", "stop")


def test_trackers_skip_durations_beyond_max_native_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    latency, slow = LatencyTracker(), SlowCallTracker("1s")
    with caplog.at_level(logging.WARNING):
        for tracker in (latency, slow):
            tracker.handle(STOP, {"duration": 10**400}, {"function_name": "F"}, None)
    assert latency.count() == 0 and slow.slow_calls == []
    assert caplog.text.count("no valid duration (<int of about 401 digits>)") == 2
    with pytest.raises(ValueError, match=r"LatencyTracker.record\(duration_ns=<int of about 401 digits>\)"):
        latency.record("F", 10**400)
    with pytest.raises(ValueError, match="max_samples"):
        LatencyTracker(max_samples=10**400)


def test_cost_tracker_never_overflows() -> None:
    tracker = CostTracker(PRICES)
    cost = tracker.record("F", "gpt-4o", 10**400, 5)  # beyond int64: unknown, not a cost of inf
    assert cost.status == "unknown_tokens" and cost.usd is None

    class Broken:
        def cost(self, *args):
            return 10**400

    with pytest.raises(ValueError, match=r"returned <int of about 401 digits>: expected a finite number"):
        CostTracker(Broken()).record("F", "m", 1, 1)
