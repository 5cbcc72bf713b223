"""Metric definitions (Telemetry.Metrics semantics) on the in-memory, Prometheus and
OpenTelemetry reporters, fed by the real Emitter on a virtual clock."""

from __future__ import annotations

import logging
import threading

import pytest
from dirty_equals import IsInt, IsStr
from helpers import Env, make_env

from pytest_baml_telemetry import Emitter, VirtualClock
from pytest_baml_telemetry.metrics import (
    InMemoryReporter,
    Metric,
    MetricStats,
    UnknownMetricError,
    counter,
    distribution,
    last_value,
    make_metrics_fixture,
    summary,
)
from pytest_baml_telemetry.metrics import (
    sum as sum_metric,
)

STOP_DURATION = "ash_baml.call.stop.duration"


@pytest.fixture
def env() -> Env:
    return make_env("metrics-test")


def reporter_for(env: Env, *metrics: Metric) -> InMemoryReporter:
    return InMemoryReporter(list(metrics), dispatcher=env.dispatcher).attach()


# --------------------------------------------------------------------------- definitions


def test_name_gives_event_and_measurement() -> None:
    m = summary(STOP_DURATION)
    assert m.name == ("ash_baml", "call", "stop", "duration")
    assert m.event_name == ("ash_baml", "call", "stop")
    assert m.measurement == "duration"
    assert m.type == "summary"
    assert m.dotted_name == STOP_DURATION
    assert m.tags == () and m.unit is None and m.reporter_options == {}


def test_name_as_sequence_and_explicit_event_and_measurement() -> None:
    m = counter(["ash_baml", "call", "count"], event_name="ash_baml.call.exception", measurement="duration")
    assert m.name == ("ash_baml", "call", "count")
    assert m.event_name == ("ash_baml", "call", "exception")
    assert m.measurement == "duration"
    m2 = sum_metric("tokens", event_name=("ash_baml", "call", "stop"), measurement="total_tokens")
    assert m2.event_name == ("ash_baml", "call", "stop")


def test_metric_is_frozen() -> None:
    m = counter("a.b.c")
    with pytest.raises(AttributeError):
        m.tags = ("x",)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("unit", "value", "expected"),
    [
        (("native", "millisecond"), 1_500_000, 1.5),
        (("nanosecond", "second"), 2_500_000_000, 2.5),
        (("native", "microsecond"), 1_234, 1.234),
        (("millisecond", "microsecond"), 3, 3_000),
        (("second", "millisecond"), 2, 2_000),
        (("native", "native"), 17, 17),
        (("byte", "kilobyte"), 1_500, 1.5),
        (("megabyte", "byte"), 2, 2_000_000),
        ("millisecond", 42, 42),
    ],
)
def test_unit_conversion_ratio(unit: object, value: int, expected: float) -> None:
    m = summary(STOP_DURATION, unit=unit)
    converted = m.convert(value)
    assert converted == expected
    assert type(converted) is type(expected)
    assert m.unit == (unit[1] if isinstance(unit, tuple) else unit)


@pytest.mark.parametrize(
    ("build", "error", "named"),
    [
        (lambda: counter(""), ValueError, "''"),
        (lambda: counter("a..b"), ValueError, "'a..b'"),
        (lambda: counter(".a.b"), ValueError, "'.a.b'"),
        (lambda: counter([]), ValueError, "[]"),
        (lambda: counter(123), TypeError, "123"),
        (lambda: counter(["a", 5]), TypeError, "5"),
        (lambda: counter("count"), ValueError, "'count'"),
        (lambda: counter("a.b", event_name="x..y"), ValueError, "'x..y'"),
        (lambda: counter("a.b", tags="model"), TypeError, "'model'"),
        (lambda: counter("a.b", tags=["model", "model"]), ValueError, "'model'"),
        (lambda: counter("a.b", tags=[["x"]]), TypeError, "['x']"),
        (lambda: counter("a.b", tag_values="nope"), TypeError, "'nope'"),
        (lambda: counter("a.b", tag_values=lambda a, b: a), TypeError, "tag_values"),
        (lambda: counter("a.b", keep=lambda m: True, drop=lambda m: False), ValueError, "both"),
        (lambda: counter("a.b", keep=42), TypeError, "keep=42"),
        (lambda: counter("a.b", drop=lambda a, b, c: True), TypeError, "drop"),
        (lambda: sum_metric("a.b", measurement=lambda a, b, c: 1), TypeError, "3 required"),
        (lambda: sum_metric("a.b", measurement=["x"]), TypeError, "['x']"),
        (lambda: summary("a.b", unit=5), TypeError, "unit=5"),
        (lambda: summary("a.b", unit=""), ValueError, "unit=''"),
        (lambda: summary("a.b", unit=("native", "fortnight")), ValueError, "'fortnight'"),
        (lambda: summary("a.b", unit=("parsec", "second")), ValueError, "'parsec'"),
        (lambda: summary("a.b", unit=("native", "byte")), ValueError, "('native', 'byte')"),
        (lambda: summary("a.b", unit=("native", "second", "x")), ValueError, "('native', 'second', 'x')"),
        (lambda: summary("a.b", unit=("native", 1)), TypeError, "1"),
        (lambda: summary("a.b", description=5), TypeError, "description=5"),
        (lambda: summary("a.b", reporter_options=[("buckets", [1])]), TypeError, "reporter_options"),
        (lambda: summary("a.b", reporter_options={1: 2}), TypeError, "1"),
        (lambda: distribution("a.b", reporter_options={"buckets": [10, 5]}), ValueError, "[10, 5]"),
        (lambda: distribution("a.b", reporter_options={"buckets": [1, 1]}), ValueError, "[1, 1]"),
        (lambda: distribution("a.b", reporter_options={"buckets": []}), ValueError, "[]"),
        (lambda: distribution("a.b", reporter_options={"buckets": [1, "2"]}), TypeError, "'2'"),
        (lambda: distribution("a.b", reporter_options={"buckets": [1, float("inf")]}), ValueError, "inf"),
        (lambda: distribution("a.b", reporter_options={"buckets": "1,2"}), TypeError, "'1,2'"),
        (lambda: distribution("a.b", reporter_options={"buckets": [True]}), TypeError, "True"),
    ],
)
def test_bad_definitions_raise_naming_the_value(build, error: type, named: str) -> None:
    with pytest.raises(error) as info:
        build()
    assert named in str(info.value)


def test_buckets_accept_range_and_floats() -> None:
    assert distribution("a.b", reporter_options={"buckets": range(100, 301, 100)}).buckets == (100, 200, 300)
    assert distribution("a.b", reporter_options={"buckets": (0.5, 1, 2.5)}).buckets == (0.5, 1, 2.5)


def test_reporter_rejects_bad_metric_lists() -> None:
    with pytest.raises(TypeError, match="'ash_baml.call.stop.duration' is not a metric definition"):
        InMemoryReporter(["ash_baml.call.stop.duration"])
    with pytest.raises(ValueError, match="two metrics are named 'a.b.c'"):
        InMemoryReporter([counter("a.b.c"), sum_metric("a.b.c")])
    with pytest.raises(TypeError, match="metrics='a.b.c'"):
        InMemoryReporter("a.b.c")  # type: ignore[arg-type]
    assert InMemoryReporter(counter("a.b.c")).metrics[0].dotted_name == "a.b.c"


# --------------------------------------------------------------------------- in-memory: types


def test_counter_counts_events_per_tag_set(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.stop.count", tags=["function_name", "model"]))
    env.call("ExtractResume", model="gpt-4o")
    env.call("ExtractResume", model="gpt-4o")
    env.call("ExtractResume", model="claude")
    env.call("Classify", model="gpt-4o", usage=None)  # unknown tokens still count: the measurement is irrelevant
    env.call("Classify", fail=RuntimeError("boom"))  # an exception is not a stop
    assert r.value("ash_baml.call.stop.count", function_name="ExtractResume", model="gpt-4o") == 2
    assert r.value("ash_baml.call.stop.count", function_name="ExtractResume") == 3
    assert r.value("ash_baml.call.stop.count", model="gpt-4o") == 3
    assert r.value("ash_baml.call.stop.count") == 4
    assert r.value("ash_baml.call.stop.count", function_name="Nope") == 0
    assert r.values("ash_baml.call.stop.count") == [
        ({"function_name": "ExtractResume", "model": "gpt-4o"}, 2),
        ({"function_name": "ExtractResume", "model": "claude"}, 1),
        ({"function_name": "Classify", "model": "gpt-4o"}, 1),
    ]
    assert r.skipped("ash_baml.call.stop.count") == []


def test_counter_of_exceptions_tagged_by_kind(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.exception.count", tags=["function_name", "kind"]))
    env.call("A", fail=ValueError("bad"))
    env.call("A", fail=KeyboardInterrupt())
    env.call("A")
    assert r.values("ash_baml.call.exception.count") == [
        ({"function_name": "A", "kind": "error"}, 1),
        ({"function_name": "A", "kind": "exit"}, 1),
    ]


def test_counter_with_explicit_measurement_skips_unknown_values(env: Env) -> None:
    r = reporter_for(env, counter("calls.with_tokens", event_name="ash_baml.call.stop", measurement="input_tokens"))
    env.call(usage=(1, 2))
    env.call(usage=None)
    assert r.value("calls.with_tokens") == 1
    assert r.skipped("calls.with_tokens") == ["measurement 'input_tokens' is None (unknown)"]


def test_sum_totals_and_skips_unknown_tokens_with_a_reason(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    name = "ash_baml.call.stop.total_tokens"
    r = reporter_for(env, sum_metric(name, tags=["model"]))
    assert r.value(name) == 0
    with caplog.at_level(logging.WARNING, logger="pytest_baml_telemetry.metrics"):
        env.call(usage=(100, 20))
        env.call(usage=(5, 5))
        env.call(usage=None)
        env.call(usage=None)
        env.call(usage=(1, None))
    assert r.value(name) == 130
    assert r.value(name, model="gpt-4o") == 130
    assert r.count(name) == 2
    reason = "measurement 'total_tokens' is None (unknown)"
    assert r.skipped(name) == [reason, reason, reason]
    assert r.skip_counts() == {name: {reason: 3}}
    warnings = [rec for rec in caplog.records if reason in rec.getMessage()]
    assert len(warnings) == 1  # once per metric and reason, never silent
    assert name in warnings[0].getMessage()
    with pytest.raises(AssertionError, match="3 event"):
        r.assert_no_skips()


def test_missing_measurement_is_a_skip(env: Env) -> None:
    r = reporter_for(env, sum_metric("ash_baml.call.stop.time_to_first_chunk"))
    env.call(streaming=False)  # non-streams have no time_to_first_chunk
    env.call(streaming=True, first_chunk_after="3ms")
    assert r.value("ash_baml.call.stop.time_to_first_chunk") == 3_000_000
    assert r.skipped("ash_baml.call.stop.time_to_first_chunk") == [
        "measurement 'time_to_first_chunk' is missing from the event"
    ]


def test_last_value_is_the_most_recent_across_tag_sets(env: Env) -> None:
    name = "ash_baml.call.stop.output_tokens"
    r = reporter_for(env, last_value(name, tags=["function_name"]))
    assert r.value(name) is None
    env.call("A", usage=(1, 7))
    env.call("B", usage=(1, 3))
    env.call("A", usage=(1, 9))
    assert r.value(name, function_name="A") == 9
    assert r.value(name, function_name="B") == 3
    assert r.value(name) == 9
    env.call("B", usage=(1, 4))
    assert r.value(name) == 4
    assert r.count(name, function_name="A") == 2


def test_summary_with_native_to_millisecond(env: Env) -> None:
    r = reporter_for(env, summary(STOP_DURATION, unit=("native", "millisecond"), tags=["function_name"]))
    for latency in ("1500us", "2ms", "250ms", "10ms"):
        env.call("A", latency=latency)
    env.call("B", latency="1s")
    stats = r.value(STOP_DURATION, function_name="A")
    assert isinstance(stats, MetricStats)
    assert stats.count == 4
    assert stats.sum == pytest.approx(263.5)
    assert (stats.min, stats.max) == (1.5, 250.0)
    assert stats.mean == pytest.approx(263.5 / 4)
    assert stats.values == (1.5, 2.0, 250.0, 10.0)
    assert stats.percentile(50) == 2.0
    assert stats.percentile(100) == 250.0
    assert stats.buckets is None
    everything = r.value(STOP_DURATION)
    assert everything.count == 5 and everything.max == 1000.0
    r.assert_value(STOP_DURATION, {"count": 4, "min": 1.5, "max": 250.0}, function_name="A")
    r.assert_count(STOP_DURATION, 1, function_name="B")


def test_summary_with_no_events_is_empty(env: Env) -> None:
    r = reporter_for(env, summary(STOP_DURATION))
    stats = r.value(STOP_DURATION)
    assert (stats.count, stats.sum, stats.min, stats.max, stats.mean) == (0, 0, None, None, None)
    assert stats.percentile(50) is None


def test_distribution_bucket_counts(env: Env) -> None:
    name = "ash_baml.call.stop.duration"
    r = reporter_for(
        env,
        distribution(name, unit=("native", "millisecond"), reporter_options={"buckets": [100, 200, 300]}),
    )
    for ms in (1, 100, 100.5, 200, 250, 300, 301, 5000):
        env.call(latency=f"{ms}ms")
    stats = r.value(name)
    assert stats.count == 8
    assert (stats.min, stats.max) == (1.0, 5000.0)
    assert stats.sum == pytest.approx(1 + 100 + 100.5 + 200 + 250 + 300 + 301 + 5000)
    # a value equal to a bound falls in that bound's bucket (<=), as in Telemetry.Metrics
    assert stats.buckets == {100: 2, 200: 2, 300: 2, float("inf"): 2}
    assert stats.buckets == {100: 2, 200: 2, 300: 2, "+Inf": 2}
    assert stats.buckets["+Inf"] == 2 and stats.buckets[200] == 2
    assert list(stats.buckets) == [100, 200, 300, float("inf")]
    assert stats.buckets.cumulative() == {100: 2, 200: 4, 300: 6, float("inf"): 8}
    r.assert_buckets(name, {100: 2, 200: 2, 300: 2, "+Inf": 2})
    with pytest.raises(AssertionError, match="expected buckets"):
        r.assert_buckets(name, {100: 3, 200: 2, 300: 2, "+Inf": 1})
    with pytest.raises(KeyError, match="150"):
        stats.buckets[150]


def test_distribution_without_buckets_has_only_the_inf_bucket(env: Env) -> None:
    r = reporter_for(env, distribution("ash_baml.call.stop.input_tokens"))
    env.call(usage=(3, 1))
    env.call(usage=(5, 1))
    assert r.value("ash_baml.call.stop.input_tokens").buckets == {"+Inf": 2}


def test_distribution_buckets_are_merged_across_tags(env: Env) -> None:
    name = "ash_baml.call.stop.input_tokens"
    r = reporter_for(env, distribution(name, tags=["function_name"], reporter_options={"buckets": [10]}))
    env.call("A", usage=(5, 1))
    env.call("B", usage=(50, 1))
    env.call("B", usage=(10, 1))
    assert r.value(name, function_name="B").buckets == {10: 1, "+Inf": 1}
    assert r.value(name).buckets == {10: 2, "+Inf": 1}
    with pytest.raises(TypeError, match="not a distribution"):
        InMemoryReporter([summary("x.y")]).assert_buckets("x.y", {})


# --------------------------------------------------------------------------- tags, filters, functions


def test_tag_missing_from_metadata_skips_the_event(env: Env) -> None:
    name = "ash_baml.call.stop.count"
    # issue 12: stop events always carry provider (None when unknown), so a truly missing key is used
    r = reporter_for(env, counter(name, tags=["function_name", "region"]))
    env.call("A", region="eu")
    env.call("A")  # no region metadata
    assert r.values(name) == [({"function_name": "A", "region": "eu"}, 1)]
    assert r.skipped(name) == ["tag 'region' is missing from the metadata"]


def test_provider_tag_is_none_when_unknown(env: Env) -> None:
    name = "ash_baml.call.stop.count"
    r = reporter_for(env, counter(name, tags=["function_name", "provider"]))
    env.call("A", provider="openai")
    env.call("A")  # provider unknown: the key is there, None
    assert sorted(r.values(name), key=repr) == sorted(
        [({"function_name": "A", "provider": "openai"}, 1), ({"function_name": "A", "provider": None}, 1)], key=repr
    )
    assert r.skipped(name) == []


def test_tag_values_reshape_metadata(env: Env) -> None:
    name = "ash_baml.call.stop.count"

    def tag_values(metadata: dict) -> dict:
        return {**metadata, "model": metadata["model"] or "unknown", "family": metadata["function_name"][:3]}

    r = reporter_for(env, counter(name, tags=["family", "model"], tag_values=tag_values))
    env.call("ExtractResume", model=None)
    env.call("ExtractName", model="gpt-4o")
    assert r.value(name, family="Ext", model="unknown") == 1
    assert r.value(name, family="Ext") == 2


def test_tag_values_errors_are_skips(env: Env) -> None:
    r = reporter_for(
        env,
        counter("a.one", event_name="ash_baml.call.stop", tags=["x"], tag_values=lambda m: m["nope"]),
        counter("a.two", event_name="ash_baml.call.stop", tags=["x"], tag_values=lambda m: ["not", "a", "map"]),
        counter("a.three", event_name="ash_baml.call.stop", tags=["arguments_copy"],
                tag_values=lambda m: {"arguments_copy": {"x": 1}}),
    )
    env.call()
    assert r.skipped("a.one") == ["tag_values raised KeyError: 'nope'"]
    assert r.skipped("a.two") == ["tag_values returned a list, not a mapping"]
    assert r.skipped("a.three") == ["tag 'arguments_copy' has an unhashable value (a dict)"]


def test_none_tag_values_are_kept(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.stop.count", tags=["model"]))
    env.call(model=None)
    assert r.value("ash_baml.call.stop.count", model=None) == 1


def test_keep_and_drop(env: Env) -> None:
    r = reporter_for(
        env,
        counter("streams.count", event_name="ash_baml.call.stop", keep=lambda md: md["streaming"]),
        counter("plain.count", event_name="ash_baml.call.stop", drop=lambda md: md["streaming"]),
        counter("big.count", event_name="ash_baml.call.stop",
                keep=lambda md, m: (m["input_tokens"] or 0) > 50),
    )
    env.call(streaming=True, usage=(100, 1))
    env.call(streaming=False, usage=(10, 1))
    env.call(streaming=False, usage=None)
    assert r.value("streams.count") == 1
    assert r.value("plain.count") == 2
    assert r.value("big.count") == 1
    # filtered-out events are not skips
    assert r.skip_counts() == {}


def test_keep_that_raises_is_a_skip(env: Env) -> None:
    r = reporter_for(env, counter("x.count", event_name="ash_baml.call.stop", keep=lambda md: md["missing"]))
    env.call()
    assert r.skipped("x.count") == ["keep raised KeyError: 'missing'"]


def test_measurement_function_of_measurements(env: Env) -> None:
    r = reporter_for(
        env,
        sum_metric("cached.share", event_name="ash_baml.call.stop",
                   measurement=lambda m: m["input_tokens"] - (m["cached_input_tokens"] or 0)),
    )
    env.call(usage=(100, 10, 40))
    env.call(usage=(50, 10))
    assert r.value("cached.share") == 110


def test_measurement_function_of_measurements_and_metadata(env: Env) -> None:
    prices = {"gpt-4o": 2.5, "claude": 3.0}
    r = reporter_for(
        env,
        sum_metric(
            "ash_baml.call.cost",
            event_name="ash_baml.call.stop",
            measurement=lambda m, md: m["input_tokens"] * prices[md["model"]],
            tags=["model"],
        ),
    )
    env.call(model="gpt-4o", usage=(10, 1))
    env.call(model="claude", usage=(10, 1))
    env.call(model="unknown-model", usage=(10, 1))
    assert r.value("ash_baml.call.cost", model="gpt-4o") == 25.0
    assert r.value("ash_baml.call.cost") == 55.0
    assert r.skipped("ash_baml.call.cost") == [
        IsStr(regex=r"measurement function .*<lambda> raised KeyError: 'unknown-model'")
    ]


def test_measurement_function_with_optional_second_parameter_gets_metadata(env: Env) -> None:
    seen = []

    def measure(measurements, metadata=None):
        seen.append(metadata)
        return measurements["duration"]

    r = reporter_for(env, sum_metric("d.total", event_name="ash_baml.call.stop", measurement=measure))
    env.call(latency="1ms")
    assert r.value("d.total") == 1_000_000
    assert seen[0]["function_name"] == "ExtractResume"


def test_measurement_function_none_and_non_numbers_are_skips(env: Env) -> None:
    r = reporter_for(
        env,
        sum_metric("a.none", event_name="ash_baml.call.stop", measurement=lambda m: None),
        sum_metric("a.str", event_name="ash_baml.call.stop", measurement=lambda m: "12"),
        summary("a.bool", event_name="ash_baml.call.stop", measurement=lambda m: True),
    )
    env.call()
    assert r.skipped("a.none") == [IsStr(regex=r"measurement function .*<lambda> returned None")]
    assert r.skipped("a.str") == ["measurement function result is not a number (got str)"]
    assert r.skipped("a.bool") == ["measurement function result is not a number (got bool)"]


def test_operator_itemgetter_measurement(env: Env) -> None:
    import operator

    r = reporter_for(env, sum_metric("x.tokens", event_name="ash_baml.call.stop",
                                     measurement=operator.itemgetter("output_tokens")))
    env.call(usage=(1, 7))
    assert r.value("x.tokens") == 7


def test_custom_prefix_events(env: Env) -> None:
    emitter = Emitter(("my_app", "llm"), dispatcher=env.dispatcher, clock=env.clock)
    r = reporter_for(env, counter("my_app.llm.call.stop.count"))
    with emitter.call("F"):
        pass
    env.call()  # ash_baml prefix: not counted
    assert r.value("my_app.llm.call.stop.count") == 1


# --------------------------------------------------------------------------- in-memory: API


def test_unknown_metric_name_lists_known_names(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.stop.count"), summary(STOP_DURATION))
    with pytest.raises(UnknownMetricError) as info:
        r.value("ash_baml.call.stop.cont")
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'ash_baml.call.stop.cont'" in message
    assert "'ash_baml.call.stop.count'" in message and f"'{STOP_DURATION}'" in message
    with pytest.raises(UnknownMetricError, match="known metrics"):
        r.value("")
    assert r.value(("ash_baml", "call", "stop", "count")) == 0


def test_unknown_tag_in_value_is_an_error(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.stop.count", tags=["model"]))
    with pytest.raises(TypeError, match=r"no tag 'function_name'; its tags are \['model'\]"):
        r.value("ash_baml.call.stop.count", function_name="A")


def test_assert_value_messages_list_tag_sets_and_skips(env: Env) -> None:
    name = "ash_baml.call.stop.total_tokens"
    r = reporter_for(env, sum_metric(name, tags=["function_name", "model"]))
    env.call("ExtractResume", usage=(1, 2))
    env.call("Classify", usage=None)
    r.assert_value(name, 3, function_name="ExtractResume")
    r.assert_value(name, IsInt(gt=2))
    r.assert_value(name, lambda v: v % 3 == 0)
    with pytest.raises(AssertionError) as info:
        r.assert_value(name, 3, function_name="ExtractRsume")
    message = str(info.value)
    assert "expected value 3, got 0" in message
    assert "{function_name='ExtractResume', model='gpt-4o'} -> 3" in message
    assert "1 x measurement 'total_tokens' is None (unknown)" in message


def test_assert_count_and_stats_mapping(env: Env) -> None:
    r = reporter_for(env, summary(STOP_DURATION, unit=("native", "millisecond")))
    env.call(latency="4ms")
    env.call(latency="6ms")
    r.assert_count(STOP_DURATION, 2)
    r.assert_value(STOP_DURATION, {"count": 2, "sum": 10.0, "mean": 5.0})
    with pytest.raises(AssertionError, match="expected count 3, got 2"):
        r.assert_count(STOP_DURATION, 3)
    with pytest.raises(TypeError, match="'median'"):
        r.assert_value(STOP_DURATION, {"median": 5})


def test_detached_reporter_records_nothing_and_says_so(env: Env) -> None:
    r = InMemoryReporter([counter("ash_baml.call.stop.count")], dispatcher=env.dispatcher)
    env.call()
    with pytest.raises(AssertionError, match="not attached"):
        r.assert_value("ash_baml.call.stop.count", 1)
    with r:
        assert r.attached
        env.call()
    assert not r.attached
    env.call()
    assert r.value("ash_baml.call.stop.count") == 1


def test_handler_ids_are_unique_and_double_attach_is_refused(env: Env) -> None:
    a = InMemoryReporter([counter("ash_baml.call.stop.count")], dispatcher=env.dispatcher).attach()
    b = InMemoryReporter([counter("ash_baml.call.stop.count")], dispatcher=env.dispatcher).attach()
    assert a.handler_id != b.handler_id
    env.call()
    assert a.value("ash_baml.call.stop.count") == b.value("ash_baml.call.stop.count") == 1
    with pytest.raises(RuntimeError, match="already attached"):
        a.attach()
    assert a.detach() is True
    assert a.detach() is False
    assert {h["id"] for h in env.dispatcher.list_handlers()} == {b.handler_id}


def test_reporter_attaches_only_to_the_events_its_metrics_read(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.stop.count"), counter("ash_baml.call.exception.count"))
    events = sorted(h["event_name"] for h in env.dispatcher.list_handlers())
    assert events == [("ash_baml", "call", "exception"), ("ash_baml", "call", "stop")]
    assert sorted(r.event_names) == events


def test_clear_and_report(env: Env) -> None:
    r = reporter_for(env, counter("ash_baml.call.stop.count", tags=["model"]), sum_metric("ash_baml.call.stop.total_tokens"))
    env.call(usage=None)
    text = r.report()
    assert "ash_baml.call.stop.count (counter) {model='gpt-4o'}: 1" in text
    assert "ash_baml.call.stop.total_tokens: skipped 1 event(s)" in text
    r.clear()
    assert r.value("ash_baml.call.stop.count") == 0
    assert r.skip_counts() == {}
    assert "no events" in r.report()


def test_record_by_hand_applies_the_unit() -> None:
    r = InMemoryReporter([summary("x.y", unit=("native", "millisecond"), tags=["k"])])
    r.record("x.y", 2_000_000, k="a")
    assert r.value("x.y", k="a").sum == 2.0
    with pytest.raises(TypeError, match=r"missing \['k'\]"):
        r.record("x.y", 1)


def test_concurrent_calls_lose_nothing(env: Env) -> None:
    name = "ash_baml.call.stop.count"
    r = reporter_for(env, counter(name, tags=["function_name"]), sum_metric("ash_baml.call.stop.total_tokens"))

    def work(i: int) -> None:
        for _ in range(200):
            with env.emitter.call(f"F{i % 2}") as call:
                call.set_usage(1, 2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert r.value(name) == 1200
    assert r.value(name, function_name="F0") == 600
    assert r.value("ash_baml.call.stop.total_tokens") == 3600


def test_make_metrics_fixture_attaches_and_detaches(env: Env) -> None:
    gen = make_metrics_fixture(dispatcher=env.dispatcher)
    factory = next(gen)
    first = factory([counter("ash_baml.call.stop.count")])
    second = factory(counter("ash_baml.call.stop.count"), summary(STOP_DURATION))
    assert first.attached and second.attached
    env.call()
    assert first.value("ash_baml.call.stop.count") == 1
    assert second.value(STOP_DURATION).count == 1
    gen.close()
    assert not first.attached and not second.attached
    assert env.dispatcher.list_handlers() == []
    with pytest.raises(TypeError, match="not a metric definition"):
        next(make_metrics_fixture())(["ash_baml.call.stop.count"])


def test_make_metrics_fixture_defaults_to_the_default_dispatcher() -> None:
    from pytest_baml_telemetry.dispatcher import default_dispatcher

    gen = make_metrics_fixture()
    r = next(gen)([counter("ash_baml.call.stop.count")])
    try:
        with Emitter(clock=VirtualClock()).call("F"):
            pass
        assert r.value("ash_baml.call.stop.count") == 1
        assert r.dispatcher is default_dispatcher
    finally:
        gen.close()
    assert not any(h["id"] == r.handler_id for h in default_dispatcher.list_handlers())


# --------------------------------------------------------------------------- Prometheus


@pytest.fixture
def registry():
    prometheus_client = pytest.importorskip("prometheus_client")
    return prometheus_client.CollectorRegistry()


def test_prometheus_reporter_each_type(env: Env, registry) -> None:
    from pytest_baml_telemetry.metrics import PrometheusReporter

    reporter = PrometheusReporter(
        [
            counter("ash_baml.call.stop.count", tags=["function_name", "model"]),
            sum_metric("ash_baml.call.stop.total_tokens", tags=["function_name"]),
            last_value("ash_baml.call.stop.output_tokens"),
            summary(STOP_DURATION, unit=("native", "second")),
            distribution("ash_baml.call.stop.input_tokens", reporter_options={"buckets": [10, 100]},
                         description="Input tokens per call"),
        ],
        registry=registry,
        dispatcher=env.dispatcher,
    )
    with reporter:
        env.call("A", latency="1500ms", usage=(5, 1), model="gpt-4o")
        env.call("A", latency="500ms", usage=(50, 2), model="gpt-4o")
        env.call("B", latency="2s", usage=(500, 3), model=None)
        env.call("B", usage=None, model=None)
    get = registry.get_sample_value
    assert get("ash_baml_call_stop_count_total", {"function_name": "A", "model": "gpt-4o"}) == 2
    assert get("ash_baml_call_stop_count_total", {"function_name": "B", "model": ""}) == 2
    assert get("ash_baml_call_stop_total_tokens_total", {"function_name": "A"}) == 58
    assert get("ash_baml_call_stop_total_tokens_total", {"function_name": "B"}) == 503
    assert get("ash_baml_call_stop_output_tokens") == 3
    assert get("ash_baml_call_stop_duration_count") == 4
    assert get("ash_baml_call_stop_duration_sum") == pytest.approx(1.5 + 0.5 + 2 + 0.01)
    assert get("ash_baml_call_stop_input_tokens_bucket", {"le": "10.0"}) == 1
    assert get("ash_baml_call_stop_input_tokens_bucket", {"le": "100.0"}) == 2
    assert get("ash_baml_call_stop_input_tokens_bucket", {"le": "+Inf"}) == 3
    assert get("ash_baml_call_stop_input_tokens_count") == 3
    assert reporter.skipped("ash_baml.call.stop.total_tokens") == ["measurement 'total_tokens' is None (unknown)"]
    assert reporter.prometheus_name(STOP_DURATION) == "ash_baml_call_stop_duration"
    # detached: nothing more is recorded
    env.call("A", model="gpt-4o")
    assert get("ash_baml_call_stop_count_total", {"function_name": "A", "model": "gpt-4o"}) == 2
    help_texts = {m.name: m.documentation for m in registry.collect()}
    assert help_texts["ash_baml_call_stop_input_tokens"] == "Input tokens per call"


def test_prometheus_namespace_and_default_buckets(env: Env, registry) -> None:
    from pytest_baml_telemetry.metrics import PrometheusReporter

    with PrometheusReporter([distribution(STOP_DURATION, unit=("native", "second"))], registry=registry,
                            dispatcher=env.dispatcher, namespace="myapp"):
        env.call(latency="30ms")
    assert registry.get_sample_value("myapp_ash_baml_call_stop_duration_bucket", {"le": "0.025"}) == 0
    assert registry.get_sample_value("myapp_ash_baml_call_stop_duration_bucket", {"le": "0.05"}) == 1


def test_prometheus_sum_negative_values(env: Env, registry) -> None:
    from pytest_baml_telemetry.metrics import PrometheusReporter

    delta = lambda m: -m["input_tokens"]  # noqa: E731
    reporter = PrometheusReporter(
        [
            sum_metric("a.counter", event_name="ash_baml.call.stop", measurement=delta),
            sum_metric("a.gauge", event_name="ash_baml.call.stop", measurement=delta,
                       reporter_options={"prometheus_type": "gauge"}),
        ],
        registry=registry,
        dispatcher=env.dispatcher,
    ).attach()
    env.call(usage=(4, 1))
    reporter.detach()
    assert registry.get_sample_value("a_gauge") == -4
    assert registry.get_sample_value("a_counter_total") == 0
    assert reporter.skipped("a.counter") == [IsStr(regex=r"negative value for a Prometheus counter.*'gauge'.*")]


def test_prometheus_rejects_bad_labels_duplicates_and_registries(registry) -> None:
    from pytest_baml_telemetry.metrics import PrometheusReporter

    with pytest.raises(ValueError, match="tag 'function-name' is not a valid Prometheus label"):
        PrometheusReporter([counter("a.b", tags=["function-name"])], registry=registry)
    with pytest.raises(ValueError, match="'le' is reserved"):
        PrometheusReporter([distribution("a.b", tags=["le"])], registry=registry)
    with pytest.raises(TypeError, match="registry=None"):
        PrometheusReporter([counter("a.b")], registry=None)
    with pytest.raises(ValueError, match="prometheus_type"):
        PrometheusReporter([counter("a.b", reporter_options={"prometheus_type": "gauge"})], registry=registry)
    first = PrometheusReporter([counter("x.y")], registry=registry)
    with pytest.raises(ValueError, match="metric 'x.y'"):
        PrometheusReporter([counter("x.z"), counter("x.y")], registry=registry)
    # the failed reporter unregistered what it had registered
    assert registry.get_sample_value("x_z_total") is None
    first.unregister()
    PrometheusReporter([counter("x.y")], registry=registry)


# --------------------------------------------------------------------------- OpenTelemetry


@pytest.fixture
def otel():
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    yield provider, reader
    provider.shutdown()


def otel_points(reader) -> dict:
    out: dict = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = (metric.unit, list(metric.data.data_points))
    return out


def test_opentelemetry_genai_metrics(env: Env, otel) -> None:
    from pytest_baml_telemetry.metrics import OpenTelemetryReporter
    from pytest_baml_telemetry.metrics.opentelemetry import (
        DURATION_BUCKETS,
        TOKEN_BUCKETS,
    )

    provider, reader = otel
    reporter = OpenTelemetryReporter(provider, dispatcher=env.dispatcher)
    with reporter:
        env.call("A", latency="1500ms", usage=(100, 20), model="gpt-4o", provider="openai")
        env.call("A", latency="30ms", usage=(3, None), model="gpt-4o", provider="openai")
        env.call("A", latency="5s", fail=TimeoutError("too slow"), model="gpt-4o", provider="azure-openai")
        env.call("B", latency="20ms", usage=None, model=None)
    points = otel_points(reader)
    assert set(points) == {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"}

    unit, durations = points["gen_ai.client.operation.duration"]
    assert unit == "s"
    by_attrs = {frozenset(p.attributes.items()): p for p in durations}
    ok = by_attrs[frozenset({
        ("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "gpt-4o"),
    })]
    assert ok.count == 2
    assert ok.sum == pytest.approx(1.53)
    assert tuple(ok.explicit_bounds) == DURATION_BUCKETS
    assert ok.explicit_bounds[:3] == (0.01, 0.02, 0.04) and ok.explicit_bounds[-1] == 81.92
    assert ok.bucket_counts[2] == 1  # 0.03 s in (0.02, 0.04]
    assert ok.bucket_counts[8] == 1  # 1.5 s in (1.28, 2.56]
    failed = by_attrs[frozenset({
        ("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "azure.ai.openai"),
        ("gen_ai.request.model", "gpt-4o"), ("error.type", "TimeoutError"),
    })]
    assert failed.count == 1 and failed.sum == pytest.approx(5.0)
    anonymous = by_attrs[frozenset({("gen_ai.operation.name", "chat")})]
    assert anonymous.count == 1

    unit, tokens = points["gen_ai.client.token.usage"]
    assert unit == "{token}"
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens}
    assert set(by_type) == {"input", "output"}
    assert (by_type["input"].count, by_type["input"].sum) == (2, 103)
    # unknown output tokens are not reported as 0
    assert (by_type["output"].count, by_type["output"].sum) == (1, 20)
    assert tuple(by_type["input"].explicit_bounds) == TOKEN_BUCKETS
    assert TOKEN_BUCKETS[0] == 1 and TOKEN_BUCKETS[-1] == 67108864 and len(TOKEN_BUCKETS) == 14
    assert by_type["input"].attributes["gen_ai.request.model"] == "gpt-4o"
    assert reporter.skipped == {}


def test_opentelemetry_billed_failure_reports_its_tokens(env: Env, otel) -> None:
    """Issue 12: an exception event that carries tokens (the provider answered) reports them."""
    from pytest_baml_telemetry.metrics import OpenTelemetryReporter

    provider, reader = otel
    with OpenTelemetryReporter(provider, dispatcher=env.dispatcher):
        with pytest.raises(ValueError), env.emitter.call("A") as call:
            call.set(model="gpt-4o", provider="openai")
            call.set_usage(40, 7)
            raise ValueError("validation failed")
        env.call("A", latency="5s", fail=TimeoutError("unknown billing"), model="gpt-4o")
    _, tokens = otel_points(reader)["gen_ai.client.token.usage"]
    by_type = {p.attributes["gen_ai.token.type"]: p for p in tokens}
    assert (by_type["input"].count, by_type["input"].sum) == (1, 40)  # the timeout's None is not reported
    assert (by_type["output"].count, by_type["output"].sum) == (1, 7)
    assert by_type["input"].attributes["error.type"] == "ValueError"


def test_opentelemetry_time_to_first_chunk_and_options(env: Env, otel) -> None:
    from pytest_baml_telemetry.metrics import OpenTelemetryReporter

    provider, reader = otel
    with OpenTelemetryReporter(
        provider,
        dispatcher=env.dispatcher,
        provider_name="openai",
        legacy_system_attribute=True,
        attributes=lambda md: {"baml.function_name": md["function_name"]},
    ):
        env.call("S", streaming=True, first_chunk_after="120ms", latency="1s")
        env.call("N")
    points = otel_points(reader)
    unit, ttfc = points["gen_ai.client.operation.time_to_first_chunk"]
    assert unit == "s"
    assert len(ttfc) == 1 and ttfc[0].count == 1 and ttfc[0].sum == pytest.approx(0.12)
    assert ttfc[0].attributes["baml.function_name"] == "S"
    _, durations = points["gen_ai.client.operation.duration"]
    attrs = {p.attributes["baml.function_name"]: dict(p.attributes) for p in durations}
    assert attrs["N"]["gen_ai.provider.name"] == "openai" and attrs["N"]["gen_ai.system"] == "openai"


def test_opentelemetry_rejects_bad_arguments() -> None:
    pytest.importorskip("opentelemetry")
    from pytest_baml_telemetry.metrics import OpenTelemetryReporter

    with pytest.raises(TypeError, match="meter_provider=42"):
        OpenTelemetryReporter(42)
    with pytest.raises(TypeError, match="operation_name=''"):
        OpenTelemetryReporter(operation_name="")
    with pytest.raises(TypeError, match="attributes='x'"):
        OpenTelemetryReporter(attributes="x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- fixture body in a real session


def test_make_metrics_fixture_in_a_pytest_session(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        """
        import pytest
        from pytest_baml_telemetry.metrics import make_metrics_fixture

        @pytest.fixture
        def my_metrics():
            yield from make_metrics_fixture()
        """
    )
    pytester.makepyfile(
        """
        from pytest_baml_telemetry import Emitter, VirtualClock
        from pytest_baml_telemetry.dispatcher import default_dispatcher
        from pytest_baml_telemetry.metrics import counter, summary

        IDS = []

        def test_one(my_metrics):
            reporter = my_metrics([counter("ash_baml.call.stop.count", tags=["function_name"]),
                                   summary("ash_baml.call.stop.duration", unit=("native", "millisecond"))])
            IDS.append(reporter.handler_id)
            clock = VirtualClock()
            with Emitter(clock=clock).call("F"):
                clock.advance("2ms")
            reporter.assert_value("ash_baml.call.stop.count", 1, function_name="F")
            assert reporter.value("ash_baml.call.stop.duration").max == 2.0

        def test_detached_after_teardown():
            assert IDS and not any(h["id"] == IDS[0] for h in default_dispatcher.list_handlers())

        def test_failure_message(my_metrics):
            reporter = my_metrics([counter("ash_baml.call.stop.count", tags=["function_name"])])
            with Emitter(clock=VirtualClock()).call("Real"):
                pass
            reporter.assert_value("ash_baml.call.stop.count", 1, function_name="Typo")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*expected value 1, got 0*", "*{function_name='Real'} -> 1*"])
