"""The Hypothesis strategies of ``pytest_baml_telemetry.strategies``, and the properties
they exist for: valid data passes the contract, broken data fails it naming what broke,
fake-client outcomes always keep the pairing, and the trackers and the aggregator add up."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry import (
    HANDLER_FAILURE,
    ContractViolation,
    Dispatcher,
    Emitter,
    StreamAbandoned,
    Usage,
    validate_event,
    validate_stream,
)
from pytest_baml_telemetry import strategies as bst
from pytest_baml_telemetry.budgets import Aggregator
from pytest_baml_telemetry.contract import EVENT_SPECS, format_event_name
from pytest_baml_telemetry.fake import AsyncFakeBamlClient, FakeBamlClient
from pytest_baml_telemetry.trackers import CostTracker

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ends_of(stream: list[Any]) -> list[Any]:
    return [e for e in stream if e.name != HANDLER_FAILURE and e.name[-1] in ("stop", "exception")]


# --------------------------------------------------------------------------- the module itself


def test_importing_the_package_does_not_import_strategies_or_hypothesis() -> None:
    code = (
        "import sys, pytest_baml_telemetry; "
        "print('pytest_baml_telemetry.strategies' in sys.modules, 'hypothesis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.parametrize(
    "name",
    [
        "usages", "token_counts", "outcomes", "start_events", "stop_events", "exception_events",
        "handler_failure_events", "events", "event_streams", "invalid_events", "invalid_streams",
        "function_names", "models", "event_prefixes", "span_contexts", "arguments", "exception_reasons",
    ],
)
def test_every_strategy_is_callable_without_arguments(name: str) -> None:
    strategy = getattr(bst, name)()
    assert isinstance(strategy, st.SearchStrategy)
    assert name in bst.__all__


@pytest.mark.parametrize(
    "make, bad",
    [
        (lambda: bst.usages(max_tokens=-1), "-1"),
        (lambda: bst.usages(max_tokens="10"), "'10'"),
        (lambda: bst.usages(allow_unknown="yes"), "'yes'"),
        (lambda: bst.outcomes(kinds=["success", "explodes"]), "'explodes'"),
        (lambda: bst.outcomes(faults="boom"), "'boom'"),
        (lambda: bst.outcomes(kinds=[]), "[]"),
        (lambda: bst.outcomes(max_latency="soon"), "'soon'"),
        (lambda: bst.outcomes(usage="lots"), "'lots'"),
        (lambda: bst.event_streams(min_calls=3, max_calls=2), "max_calls=2"),
        (lambda: bst.event_streams(prefix="ash_baml.call"), "'ash_baml.call'"),
        (lambda: bst.event_streams(max_gap=-1), "-1"),
        (lambda: bst.start_events(function_name=""), "''"),
        (lambda: bst.stop_events(streaming="no"), "'no'"),
        (lambda: bst.events(kinds=("start", "finish")), "'finish'"),
        (lambda: bst.invalid_streams(defects="nope"), "'nope'"),
        (lambda: bst.invalid_streams(max_calls=0), "0"),
        (lambda: bst.exception_reasons(kind="throw"), "'throw'"),
        (lambda: bst.handler_failure_events(event_name=("a", "")), "('a', '')"),
        (lambda: bst.invalid_events(keys="colour"), "'colour'"),
        (lambda: bst.invalid_events(keys="arguments", kinds="stop"), "'arguments'"),
    ],
)
def test_bad_arguments_fail_at_once_naming_the_value(make: Any, bad: str) -> None:
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert bad in str(info.value)


@pytest.mark.parametrize(
    "make, old_class",
    [
        (lambda: bst.usages(max_tokens=-1), ValueError),
        (lambda: bst.usages(max_tokens="10"), TypeError),
        (lambda: bst.models(allow_none=1), TypeError),
        (lambda: bst.outcomes(kinds=["success", "explodes"]), ValueError),
        (lambda: bst.outcomes(usage="lots"), TypeError),
        (lambda: bst.outcomes(max_latency="soon"), ValueError),
        (lambda: bst.event_streams(min_calls=3, max_calls=2), ValueError),
        (lambda: bst.event_streams(prefix="ash_baml.call"), TypeError),
        (lambda: bst.start_events(function_name=""), TypeError),
        (lambda: bst.handler_failure_events(event_name=("a", "")), ValueError),
        (lambda: bst.invalid_streams(defects="reused_span", max_calls=1), ValueError),
        (lambda: bst.exception_reasons(kind="throw"), ValueError),
    ],
)
def test_bad_arguments_raise_invalid_argument_and_the_old_class(make: Any, old_class: type[Exception]) -> None:
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as info:
        make()
    assert isinstance(info.value, old_class)
    assert str(info.value).startswith(("strategies.", "invalid strategies.", "Usage("))


def test_fault_names_are_the_drawn_entries_of_the_fault_registry() -> None:
    from pytest_baml_telemetry.fake.faults import FAULTS

    assert bst.FAULT_NAMES == tuple(name for name, kind in FAULTS.items() if kind.drawn)
    assert "stream_failure" not in bst.FAULT_NAMES


def test_the_scenario_runner_imports_neither_hypothesis_nor_the_strategies() -> None:
    code = (
        "import sys, pytest_baml_telemetry.fake.scenario; "
        "print('pytest_baml_telemetry.strategies' in sys.modules, 'hypothesis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_outcome_run_is_the_scenario_runner() -> None:
    from pytest_baml_telemetry.fake import faults, scenario

    assert bst.OutcomeRun is scenario.OutcomeRun
    fake = FakeBamlClient()
    outcome = bst.Outcome("stream_failed", fault=faults.timeout(), partials=(1, 2), latency_ns=7)
    run = scenario.run(outcome, fake, "Fn", text="x")
    assert isinstance(run, bst.OutcomeRun) and run.partials == (1, 2) and isinstance(run.error, outcome.error_class)
    assert run.call is fake.calls[-1] and run.call.duration_ns == 7
    again = asyncio.run(scenario.arun(bst.Outcome("success", result="ok"), fake, "Fn"))
    assert again.result == "ok" and again.error is None
    fake.assert_all_used()


def test_bad_outcome_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="'explode'"):
        bst.Outcome("explode")
    with pytest.raises(TypeError, match="fault=None"):
        bst.Outcome("fault")
    with pytest.raises(ValueError, match="partials"):
        bst.Outcome("success", partials=(1,))
    with pytest.raises(ValueError, match="read=3"):
        bst.Outcome("stream_abandoned", partials=(1, 2), read=3)


# --------------------------------------------------------------------------- usages


@FAST
@given(usage=bst.usages(), registered=st.from_type(Usage))
def test_usages_are_consistent_and_registered(usage: Usage, registered: Usage) -> None:
    for u in (usage, registered):
        assert isinstance(u, Usage)
        if u.input_tokens is not None and u.cached_input_tokens is not None:
            assert u.cached_input_tokens <= u.input_tokens
        if u.input_tokens is None or u.output_tokens is None:
            assert u.total_tokens is None
        else:
            assert u.total_tokens == u.input_tokens + u.output_tokens


@FAST
@given(bst.usages(allow_unknown=False, max_tokens=50, cached=False))
def test_usages_narrowed(usage: Usage) -> None:
    assert usage.input_tokens is not None and usage.output_tokens is not None
    assert usage.input_tokens <= 50 and usage.output_tokens <= 50
    assert usage.cached_input_tokens is None


def test_usages_cover_unknown_and_cached_tokens() -> None:
    find(bst.usages(), lambda u: u.input_tokens is None and u.output_tokens is not None)
    find(bst.usages(), lambda u: u.cached_input_tokens is not None and u.input_tokens is not None and u.input_tokens > 0)


# --------------------------------------------------------------------------- valid events


@FAST
@given(event=bst.events(prefix=bst.event_prefixes()))
def test_every_generated_event_is_valid(event: bst.Event) -> None:
    name, measurements, metadata = event  # a triple
    validate_event(name, measurements, metadata)
    assert event.kind in bst.EVENT_KINDS
    if event.kind in ("exception", "handler_failure"):
        reason = metadata["reason"]
        assert metadata["kind"] == ("error" if isinstance(reason, Exception) else "exit")
    if event.kind == "stop":
        ttfc = measurements.get("time_to_first_chunk")
        if ttfc is not None:
            assert metadata["streaming"] and ttfc <= measurements["duration"]


@FAST
@given(
    start=bst.start_events(prefix=("my_app",), function_name="ExtractResume", streaming=True, span=42),
    stop=bst.stop_events(usage=Usage(10, 5, 3), model="gpt-4o", streaming=False),
    exc=bst.exception_events(kind="exit", function_name=st.sampled_from(["A", "B"])),
    failure=bst.handler_failure_events(event_name=("ash_baml", "call", "stop"), kind="error"),
)
def test_single_event_strategies_honour_their_narrowing(start: Any, stop: Any, exc: Any, failure: Any) -> None:
    for event in (start, stop, exc, failure):
        validate_event(*event)
    assert start.name == ("my_app", "call", "start")
    assert (start.metadata["function_name"], start.metadata["streaming"], start.span_context) == ("ExtractResume", True, 42)
    assert stop.measurements["input_tokens"] == 10 and stop.measurements["total_tokens"] == 15
    assert stop.measurements["cached_input_tokens"] == 3 and stop.metadata["model"] == "gpt-4o"
    assert "time_to_first_chunk" not in stop.measurements
    assert exc.metadata["kind"] == "exit" and not isinstance(exc.metadata["reason"], Exception)
    assert exc.metadata["function_name"] in ("A", "B")
    assert failure.name == HANDLER_FAILURE and isinstance(failure.metadata["reason"], Exception)
    assert failure.metadata["event_name"] == ("ash_baml", "call", "stop")


@FAST
@given(st.from_type(bst.Event))
def test_event_type_is_registered(event: Any) -> None:
    validate_event(*event)


def test_events_cover_every_kind_and_real_baml_errors() -> None:
    for kind in bst.EVENT_KINDS:
        find(bst.events(), lambda e, k=kind: e.kind == k)
    event = find(
        bst.exception_events(kind="error"),
        lambda e: type(e.metadata["reason"]).__module__.startswith("baml_py"),
    )
    validate_event(*event)


# --------------------------------------------------------------------------- valid streams


def check_stream_shape(stream: list[Any]) -> None:
    starts = {e.span_context: e for e in stream if e.kind == "start"}
    assert len(starts) == sum(1 for e in stream if e.kind == "start"), "span contexts are unique"
    ends = Counter(e.span_context for e in ends_of(stream))
    assert set(ends) == set(starts) and set(ends.values()) <= {1}, "exactly one end per start"
    times = [e.measurements["monotonic_time"] for e in stream]
    assert times == sorted(times), "monotonic time never goes back"
    for end in ends_of(stream):
        start = starts[end.span_context]
        assert end.measurements["duration"] == end.measurements["monotonic_time"] - start.measurements["monotonic_time"]
        for key in ("function_name", "streaming", "resource", "action", "client_module"):
            assert end.metadata[key] is start.metadata[key] or end.metadata[key] == start.metadata[key]


@FAST
@given(stream=bst.event_streams(max_calls=10, prefix=bst.event_prefixes(), handler_failures=True))
def test_every_generated_stream_is_valid(stream: list[Any]) -> None:
    validate_stream(stream)
    validate_stream([tuple(e) for e in stream])  # as plain triples too
    check_stream_shape(stream)
    assert len({e.name[:-2] for e in stream if e.name != HANDLER_FAILURE}) <= 1


@FAST
@given(stream=bst.event_streams(min_calls=2, max_calls=3, exceptions=False, function_name="Only", streaming=False))
def test_event_streams_narrowed(stream: list[Any]) -> None:
    validate_stream(stream)
    assert 2 <= sum(1 for e in stream if e.kind == "start") <= 3
    assert all(e.kind in ("start", "stop") for e in stream)
    assert {e.metadata["function_name"] for e in stream} == {"Only"}


def test_event_streams_interleave_calls() -> None:
    def interleaved(stream: list[Any]) -> bool:
        running = 0
        for e in stream:
            running += 1 if e.kind == "start" else -1
            if running >= 2:
                return True
        return False

    stream = find(bst.event_streams(), interleaved)
    validate_stream(stream)
    # two calls are open at once, with distinct span contexts (find's shrinking need not put
    # both starts first: asserting that made the test flaky)
    open_calls: list[Any] = []
    for e in stream:
        if e.kind == "start":
            open_calls.append(e.metadata["telemetry_span_context"])
            if len(open_calls) >= 2:
                break
        else:
            open_calls = [c for c in open_calls if c != e.metadata["telemetry_span_context"]]
    assert len(open_calls) >= 2 and len(set(open_calls)) == len(open_calls)


# --------------------------------------------------------------------------- invalid events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inv=bst.invalid_events(prefix=bst.event_prefixes()))
def test_every_invalid_event_is_rejected_naming_the_broken_key(inv: bst.InvalidEvent) -> None:
    with pytest.raises(ContractViolation) as info:
        validate_event(inv.name, inv.measurements, inv.metadata)
    message = str(info.value)
    if inv.where == "event_name":
        # the name is reported by value (ContractViolation.key is not set for a bad name)
        shown = format_event_name(inv.value) if isinstance(inv.value, tuple) else repr(inv.value)
        assert shown in message or repr(inv.value) in message or repr(tuple(inv.value or ())) in message
    else:
        assert info.value.key == inv.broken_key
        assert inv.broken_key in message


CHECKED_KEYS = sorted({f.key for spec in EVENT_SPECS.values() for f in (*spec.measurements, *spec.metadata)})


@pytest.mark.parametrize("key", [*CHECKED_KEYS, "measurements", "metadata", "event_name"])
def test_invalid_events_can_break_every_key(key: str) -> None:
    @settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(bst.invalid_events(keys=key))
    def check(inv: bst.InvalidEvent) -> None:
        assert inv.broken_key == key
        with pytest.raises(ContractViolation) as info:
            validate_event(*inv.event)
        if inv.where != "event_name":
            assert info.value.key == key

    check()


# --------------------------------------------------------------------------- invalid streams


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inv=bst.invalid_streams(prefix=bst.event_prefixes()))
def test_every_invalid_stream_is_rejected(inv: bst.InvalidStream) -> None:
    if inv.defect != "invalid_event":
        for event in inv.events:  # each event is fine on its own: only the pairing is broken
            validate_event(*event)
    with pytest.raises(ContractViolation) as info:
        validate_stream(inv.events)
    assert info.value.key == inv.broken_key, (inv.defect, str(info.value))
    assert inv.broken_key in str(info.value) or inv.broken_key == "event_name"


@pytest.mark.parametrize("defect", bst.STREAM_DEFECTS)
def test_each_stream_defect_is_planted_alone(defect: str) -> None:
    @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(bst.invalid_streams(defects=defect, max_calls=3))
    def check(inv: bst.InvalidStream) -> None:
        assert inv.defect == defect
        with pytest.raises(ContractViolation):
            validate_stream(inv.events)

    check()


# --------------------------------------------------------------------------- outcomes on the fake client


def check_runs(events: list[Any], runs: list[bst.OutcomeRun]) -> None:
    validate_stream(events)
    assert not any(e.name == HANDLER_FAILURE for e in events)
    starts = [e for e in events if e.kind == "start"]
    ends = Counter(e.span_context for e in ends_of(events))
    assert len(starts) == len(runs) and all(ends[s.span_context] == 1 for s in starts)
    end_by_span = {e.span_context: e for e in ends_of(events)}
    for run in runs:
        outcome, call = run.outcome, run.call
        assert call is not None and call.span_context is not None
        end = end_by_span[call.span_context]
        assert end.kind == outcome.expected_event, (outcome, end)
        assert end.metadata["streaming"] is outcome.streaming
        if outcome.ok:
            assert run.error is None and run.result == outcome.result
            usage = outcome.usage or Usage()
            assert end.measurements["input_tokens"] == usage.input_tokens  # unknown stays None
            assert end.measurements["output_tokens"] == usage.output_tokens
            assert end.measurements["total_tokens"] == usage.total_tokens
            assert end.metadata["model"] == outcome.model
        else:
            assert end.metadata["kind"] == outcome.expected_kind
            assert isinstance(end.metadata["reason"], outcome.reason_class)
            if outcome.kind == "stream_abandoned":
                assert run.error is None and isinstance(call.error, StreamAbandoned)
            else:
                assert isinstance(run.error, outcome.error_class) and end.metadata["reason"] is run.error
        if outcome.kind == "stream_abandoned":
            assert run.partials == outcome.partials[: outcome.read]
            assert end.measurements["duration"] <= outcome.latency_ns
        else:
            assert run.partials == outcome.partials
            assert end.measurements["duration"] == outcome.latency_ns  # exactly the scripted latency


@SLOW
@given(plan=st.lists(bst.outcomes(), max_size=6), mode=st.sampled_from(["sync", "async"]))
def test_outcomes_on_the_fake_client_always_keep_the_contract(plan: list[bst.Outcome], mode: str) -> None:
    dispatcher = Dispatcher("strategies-outcomes")
    emitter = Emitter(dispatcher=dispatcher)
    events: list[Any] = []
    dispatcher.attach_many(
        "all", [*emitter.event_names, HANDLER_FAILURE], lambda n, m, md, c: events.append(bst.Event(n, m, md))
    )
    if mode == "sync":
        fake = FakeBamlClient(emitter=emitter)
        runs = [outcome.run(fake, f"Fn{i}", text=f"call {i}") for i, outcome in enumerate(plan)]
    else:
        fake = AsyncFakeBamlClient(emitter=emitter)

        async def main() -> list[bst.OutcomeRun]:  # concurrently: calls overlap on the virtual clock
            return list(await asyncio.gather(*(o.arun(fake, f"Fn{i}", text=f"call {i}") for i, o in enumerate(plan))))

        runs = asyncio.run(main())
    check_runs(events, runs)
    fake.assert_all_used()


def test_outcomes_cover_every_kind_and_fault() -> None:
    for kind in bst.OUTCOME_KINDS:
        find(bst.outcomes(), lambda o, k=kind: o.kind == k)
    for name in bst.FAULT_NAMES:
        outcome = find(bst.outcomes(kinds="fault", faults=name), lambda o: True)
        assert outcome.fault is not None and outcome.fault.name == name
    find(bst.outcomes(kinds="success"), lambda o: o.usage is None)
    find(bst.outcomes(kinds="stream_abandoned"), lambda o: o.abandon == "drop" and 0 < o.read < len(o.partials))


def test_an_outcome_scripted_by_hand_drives_user_code() -> None:
    """``script`` alone: the code under test makes the call (here: a retry on 429)."""
    from pytest_baml_telemetry.fake import faults

    def extract_with_retry(b: Any, text: str) -> Any:
        for _ in range(3):
            try:
                return b.ExtractResume(text=text)
            except Exception as exc:
                if getattr(exc, "status_code", None) != 429:
                    raise
        raise RuntimeError("gave up")

    fake = FakeBamlClient()
    bst.Outcome("fault", fault=faults.rate_limited(), latency_ns=1_000).script(fake, "ExtractResume")
    bst.Outcome("success", result={"name": "Ada"}, usage=Usage(10, 2), latency_ns=5_000).script(fake, "ExtractResume")
    assert extract_with_retry(fake, "Ada Lovelace") == {"name": "Ada"}
    assert [c.duration_ns for c in fake.calls] == [1_000, 5_000]
    fake.assert_all_used()


@FAST
@given(st.from_type(bst.Outcome))
def test_outcome_type_is_registered(outcome: Any) -> None:
    assert isinstance(outcome, bst.Outcome)
    assert outcome.expected_event == ("stop" if outcome.ok else "exception")


# --------------------------------------------------------------------------- trackers and the aggregator

PRICES = {
    "gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "cached_input_per_mtok": 1.25},
    "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
    "claude-sonnet-4-5": {"input_per_mtok": 3.0, "output_per_mtok": 15.0, "cached_input_per_mtok": 0.3},
}
priced_or_not = st.one_of(st.none(), st.sampled_from([*PRICES, "unlisted-model"]))


def reference_cost(model: str | None, i: int | None, o: int | None, c: int | None) -> float | None:
    price = PRICES.get(model) if model is not None else None
    if price is None or i is None or o is None:
        return None
    cached = min(c or 0, i)
    cached_rate = price.get("cached_input_per_mtok", price["input_per_mtok"])
    return ((i - cached) * price["input_per_mtok"] + cached * cached_rate + o * price["output_per_mtok"]) / 1e6


@FAST
@given(stream=bst.event_streams(max_calls=12, model=priced_or_not, handler_failures=True))
def test_cost_tracker_never_makes_up_zero_and_adds_up(stream: list[Any]) -> None:
    dispatcher = Dispatcher("strategies-cost")
    tracker = CostTracker(PRICES, dispatcher=dispatcher).attach()
    for event in stream:
        dispatcher.execute(*event)
    # issue 12: failures are costed too (an exception event without tokens has unknown tokens)
    ends = [e for e in stream if e.kind in ("stop", "exception")]
    costs = [
        reference_cost(e.metadata.get("model"), e.measurements.get("input_tokens"), e.measurements.get("output_tokens"),
                       e.measurements.get("cached_input_tokens"))
        for e in ends
    ]
    total = tracker.total
    assert total.calls == len(ends)
    assert len(tracker.calls) == len(costs)
    for call, expected in zip(tracker.calls, costs):
        if expected is None:
            assert call.usd is None and call.status in ("unpriced", "unknown_tokens")  # never a made-up $0
        else:
            assert call.status == "priced" and math.isclose(call.usd, expected, rel_tol=1e-9, abs_tol=1e-15)
    if any(c is None for c in costs):
        assert tracker.total_usd is None
    else:
        assert tracker.total_usd == pytest.approx(sum(costs), rel=1e-9, abs=1e-12)
    assert total.priced_usd == pytest.approx(sum(c for c in costs if c is not None), rel=1e-9, abs=1e-12)
    assert total.input_tokens == sum(e.measurements.get("input_tokens") or 0 for e in ends)
    by_model = tracker.by_model()
    assert sum(t.calls for t in by_model.values()) == total.calls
    tracker.detach()


@FAST
@given(stream=bst.event_streams(max_calls=12, model=priced_or_not), cut=st.integers(0, 100))
def test_aggregator_totals_equal_the_sum_of_the_parts(stream: list[Any], cut: int) -> None:
    whole = Aggregator()
    for event in stream:
        whole.record_event(*event)
    ends = ends_of(stream)
    stops = [e for e in ends if e.kind == "stop"]
    stats = whole.stats()
    assert len(whole) == stats.calls == len(ends)
    assert stats.ok == len(stops) and stats.errors == len(ends) - len(stops)
    # issue 12: a failed call's tokens count as a successful one's (absent: unknown)
    assert stats.input_tokens == sum(e.measurements.get("input_tokens") or 0 for e in ends)
    assert stats.output_tokens == sum(e.measurements.get("output_tokens") or 0 for e in ends)
    assert stats.unknown_token_calls() == sum(
        1 for e in ends if e.measurements.get("input_tokens") is None or e.measurements.get("output_tokens") is None
    )
    assert list(stats.sorted_durations()) == sorted(e.measurements["duration"] for e in ends)
    groups = stats.groups()
    assert sum(g.calls for _, _, g in groups) == stats.calls
    assert sum(g.input_tokens for _, _, g in groups) == stats.input_tokens
    assert sum(g.total_duration_ns for _, _, g in groups) == stats.total_duration_ns
    # any split of the stream, merged, is the whole
    at = cut * len(stream) // 100
    first, second = Aggregator(), Aggregator()
    for event in stream[:at]:
        first.record_event(*event)
    for event in stream[at:]:
        second.record_event(*event)
    assert first.merge(second) == whole


# ------------------------------------------------------------------ no overflow (issue 11)


@pytest.mark.parametrize(
    "make",
    [
        lambda v: bst.stop_events(max_duration=v),
        lambda v: bst.exception_events(max_duration=v),
        lambda v: bst.event_streams(max_gap=v),
        lambda v: bst.outcomes(max_latency=v),
    ],
)
@pytest.mark.parametrize("value", [1e300, float("inf"), 10**400, "9" * 400 + "s"])
def test_durations_beyond_max_native_raise_invalid_argument(make: Any, value: Any) -> None:
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as info:
        make(value)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("strategies.") and "is too long" in str(info.value)


MAX_SECONDS = 9_223_372_036  # contract.MAX_NATIVE in whole seconds


@pytest.mark.parametrize("make", [bst.stop_events, bst.exception_events])
def test_end_events_with_the_longest_durations_stay_in_range(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_baml_telemetry.contract import MAX_NATIVE
    from pytest_baml_telemetry.strategies import _events

    validate_event(*find(make(max_duration=MAX_SECONDS), lambda e: e.measurements["duration"] > MAX_NATIVE // 2))
    # Hypothesis seldom draws two large values at once: check the bound of the draw itself,
    # with every integer drawn at the top of its range.
    monkeypatch.setattr(_events.st, "integers", lambda lo, hi: (lo, hi))
    for duration in (0, 10**9, MAX_NATIVE // 2, MAX_NATIVE - 2**61, MAX_NATIVE - 1, MAX_NATIVE):
        top = _events.end_monotonic(lambda bounds, label=None: bounds[1], duration)
        assert duration <= top <= MAX_NATIVE


@FAST
@given(stream=bst.event_streams(max_gap=MAX_SECONDS, max_calls=6))
def test_streams_with_the_longest_gaps_stay_in_range(stream: list[Any]) -> None:
    from pytest_baml_telemetry.contract import MAX_NATIVE

    validate_stream(stream)
    for event in stream:
        for key in ("monotonic_time", "system_time"):
            if key in event.measurements:
                assert 0 <= event.measurements[key] <= MAX_NATIVE, (key, event)


@pytest.mark.parametrize(
    "make, shown",
    [
        (lambda: bst.event_streams(max_calls=10**400), "max_calls=<int of about 401 digits>"),
        (lambda: bst.invalid_streams(max_calls=10**400), "max_calls=<int of about 401 digits>"),
        (lambda: bst.outcomes(max_partials=10**400), "max_partials=<int of about 401 digits>"),
        (lambda: bst.usages(max_tokens=10**400), "max_tokens=<int of about 401 digits>"),
        (lambda: bst.token_counts(max_tokens=2**63), "max_tokens=9223372036854775808"),
    ],
)
def test_sizes_and_token_counts_beyond_what_can_be_drawn_raise_invalid_argument(make: Any, shown: str) -> None:
    from hypothesis.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as info:  # was an OverflowError at draw time
        make()
    assert isinstance(info.value, ValueError) and shown in str(info.value)


@FAST
@given(usage=bst.usages(max_tokens=2**62 - 1, allow_unknown=False))  # strategies._validation.MAX_TOKENS
def test_the_largest_token_counts_make_valid_stop_events(usage: Usage) -> None:
    from pytest_baml_telemetry.contract import MAX_NATIVE

    assert usage.total_tokens is not None and usage.total_tokens <= MAX_NATIVE
