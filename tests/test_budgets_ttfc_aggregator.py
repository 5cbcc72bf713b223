"""The aggregator's time to first chunk (issue 16): recorded per stream, merged, sent home, judged."""

from __future__ import annotations

import json
import random

import pytest

from pytest_baml_telemetry.budgets import Aggregator, Budget, evaluate
from pytest_baml_telemetry.contract import CALL_EXCEPTION, CALL_STOP, MAX_NATIVE

MS = 1_000_000


def stop(ttfc: int | None = None, *, streaming: bool = True, duration: int = 500 * MS, provider: str | None = "openai") -> tuple:
    m = {"duration": duration, "monotonic_time": 1, "input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    if streaming:
        m["time_to_first_chunk"] = ttfc
    meta = {"function_name": "Chat", "model": "gpt-4o", "streaming": streaming, "provider": provider}
    return CALL_STOP, m, meta


def test_stop_events_of_streams_record_their_ttfc_and_others_do_not():
    agg = Aggregator()
    for event in (stop(100 * MS), stop(300 * MS), stop(None), stop(streaming=False)):
        agg.handle(*event)
    # a failed stream: its exception event has no time to first chunk and is no stream
    agg.handle(CALL_EXCEPTION, {"duration": 5, "monotonic_time": 1}, {"function_name": "Chat", "model": "gpt-4o", "streaming": True})
    s = agg.stats()
    assert (s.calls, s.streams, s.ttfc_count) == (5, 3, 2)
    assert s.ttfc_percentile(50) == 100 * MS and s.ttfc_percentile(100) == 300 * MS and s.ttfc_max_ns == 300 * MS
    assert not agg.not_recorded


def test_ttfc_views_over_no_streams_are_none():
    agg = Aggregator()
    agg.record("F", "m", 5)
    s = agg.stats()
    assert (s.streams, s.ttfc_count, s.ttfc_percentile(95), s.ttfc_max_ns) == (0, 0, None, None)
    with pytest.raises(ValueError):
        s.ttfc_percentile(101)  # still validated


@pytest.mark.parametrize("workers", [2, 3])
def test_merged_payloads_equal_recording_everything(workers):
    rng = random.Random(workers)
    events = []
    for _ in range(60):
        kind = rng.choice(["stream", "none", "plain"])
        events.append(stop(rng.randrange(0, 10**9), provider=rng.choice(["openai", "azure-openai", None]))
                      if kind == "stream" else stop(None) if kind == "none" else stop(streaming=False))
    whole = Aggregator()
    parts = [Aggregator() for _ in range(workers)]
    for i, e in enumerate(events):
        whole.handle(*e)
        parts[i % workers].handle(*e)
    home = Aggregator()
    for i, p in enumerate(parts):
        payload = json.loads(json.dumps(p.to_payload(durations_as="list" if i % 2 else "base64")))
        home.merge(Aggregator.from_payload(payload))
    assert home == whole
    assert home.stats().ttfc_percentile(95) == whole.stats().ttfc_percentile(95)
    assert home.stats().streams == whole.stats().streams
    assert home.stats().slowest_first_chunks() == whole.stats().slowest_first_chunks()
    assert len(whole.stats().slowest_first_chunks()) == 5
    # the provider kept is the smallest name seen, whatever the order
    assert home.select()[0].provider == whole.select()[0].provider == "azure-openai"


def test_payload_round_trips_ttfc_and_provider_and_reads_a_payload_without_them():
    agg = Aggregator()
    agg.handle(*stop(7 * MS))
    payload = agg.to_payload()
    item = payload["series"][0]
    assert item["provider"] == "openai" and item["streams"] == 1 and "ttfc_b64" in item
    again = Aggregator.from_payload(json.loads(json.dumps(payload)))
    assert again == agg and again.stats().ttfc_max_ns == 7 * MS
    for key in ("provider", "ttfc_b64", "streams"):  # an older worker's payload: no streams
        del item[key]
    old = Aggregator.from_payload(payload)
    assert old.stats().streams == 0 and old.select()[0].provider is None


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda i: i.update(ttfc=[-1], streams=1), "negative time to first chunk"),
        (lambda i: i.update(ttfc=[1, 2], streams=1), "2 times to first chunk for 1 streams"),
        (lambda i: i.update(streams=5), "for 5 streams of 1 successful calls"),
        (lambda i: i.update(provider=3), "provider=3"),
        (lambda i: i.update(slowest_ttfc=[[1, 2]]), "slowest_ttfc entry [1, 2] is not [time in ns, test id]"),
    ],
)
def test_a_malformed_stream_payload_is_named(mutate, fragment):
    agg = Aggregator()
    agg.handle(*stop(7 * MS))
    payload = agg.to_payload(durations_as="list")
    mutate(payload["series"][0])
    with pytest.raises(ValueError, match="aggregator payload") as info:
        Aggregator.from_payload(payload)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "value, exc, fragment",
    [
        (1.5, TypeError, "time_to_first_chunk=1.5"),
        (-1, ValueError, "time_to_first_chunk=-1"),
        (MAX_NATIVE + 1, ValueError, "MAX_NATIVE"),
        ("1s", TypeError, "time_to_first_chunk='1s'"),
    ],
)
def test_a_bad_ttfc_is_refused_naming_it_and_leaves_nothing_half_recorded(value, exc, fragment):
    agg = Aggregator()
    with pytest.raises(exc, match="expected") as info:
        agg.record("F", "m", 5, streaming=True, time_to_first_chunk=value)
    assert fragment in str(info.value)
    assert len(agg) == 0 and agg.keys() == []
    with pytest.raises(TypeError, match="provider=5"):
        agg.record("F", "m", 5, provider=5)  # type: ignore[arg-type]
    assert len(agg) == 0
    # through the dispatcher handler it is counted, never raised (budgets become unverifiable)
    agg.handle(*stop(value))
    assert agg.not_recorded.count == 1 and len(agg) == 0


def test_the_limit_notes_streams_without_a_first_chunk_and_fails_without_any():
    agg = Aggregator()
    agg.handle(*stop(100 * MS))
    agg.handle(*stop(None))
    (v,) = evaluate(Budget(ttfc_p95="150ms"), agg)
    assert v.passed and v.measured == 100 * MS and v.unit == "ns"
    assert "1 stream without a first chunk not counted" in v.notes
    only_none = Aggregator()
    only_none.handle(*stop(None))
    (v,) = evaluate(Budget(max_ttfc="1s"), only_none)
    assert not v.passed and v.measured is None
    assert "max_ttfc cannot be checked: none of the 1 streams had a first chunk" in v.headline
    (v,) = evaluate(Budget(ttfc_p50="1s"), Aggregator())
    assert v.passed and "over no calls passes" in v.headline


def test_ttfc_budgets_round_trip_through_the_budget_mapping():
    b = Budget(ttfc_p50="100ms", ttfc_p90=0.2, ttfc_p95="300ms", ttfc_p99="1s", max_ttfc="2s", name="chat")
    assert Budget.from_mapping(b.to_mapping()) == b
    assert (b.ttfc_p50, b.max_ttfc) == (100 * MS, 2000 * MS)
    with pytest.raises((TypeError, ValueError), match="ttfc_p95"):
        Budget(ttfc_p95=-1)


def test_the_slowest_first_chunks_are_named_with_their_tests():
    agg = Aggregator(worst_n=2)
    for ttfc, test in ((100, "t::a"), (300, "t::b"), (200, "t::c"), (50, None)):
        agg.current_test_id = test
        agg.handle(*stop(ttfc * MS))
    assert agg.stats().slowest_first_chunks() == [(300 * MS, "t::b", "Chat", "gpt-4o"), (200 * MS, "t::c", "Chat", "gpt-4o")]
    (v,) = evaluate(Budget(ttfc_p95="250ms"), agg)
    assert not v.passed
    assert "slowest first chunks: 300ms Chat [gpt-4o] t::b; 200ms Chat [gpt-4o] t::c" in v.notes
