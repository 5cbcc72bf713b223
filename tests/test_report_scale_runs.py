"""Issue 17 (report over 10M calls): durations sorted once into runs, sums kept as they are sealed.

The fast paths (:func:`~pytest_baml_telemetry.budgets.series.sort_run` reading int64 bits
as doubles, :func:`~pytest_baml_telemetry.stats.kth_smallest` narrowing windows, the
aggregator's kept sums in the report) are checked against straightforward references.
"""

from __future__ import annotations

import base64
import json
import random
from array import array
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry import stats as stats_mod
from pytest_baml_telemetry.budgets import Aggregator, PriceTable
from pytest_baml_telemetry.budgets import series as series_mod
from pytest_baml_telemetry.budgets.series import sort_run
from pytest_baml_telemetry.contract import MAX_NATIVE
from pytest_baml_telemetry.report import build_report
from pytest_baml_telemetry.stats import kth_smallest, rank

FLOAT_LIMIT = 0x7F00 << 48  # from here on a run is sorted as ints
EDGES = [
    0, 1, 2, 3, 2**30 - 1, 2**30, 2**31, 2**52 - 1, 2**52, 2**52 + 1, 2**53 - 1, 2**53, 2**53 + 1,
    2**62, FLOAT_LIMIT - 2, FLOAT_LIMIT - 1, FLOAT_LIMIT, 0x7FF0 << 48, (0x7FF0 << 48) + 1, MAX_NATIVE - 1, MAX_NATIVE,
]
values = st.one_of(st.integers(0, MAX_NATIVE), st.integers(0, 10**10), st.sampled_from(EDGES))


def reference_percentile(durations, p):
    """Nearest rank by its other definition: the smallest v with at least p% of the values <= v."""
    if not durations:
        return None
    frac = Fraction(p) if isinstance(p, int) else Fraction(repr(float(p)))
    for v in sorted(durations):
        if sum(1 for x in durations if x <= v) * 100 >= frac * len(durations):
            return v
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- sort_run


@settings(max_examples=300, deadline=None)
@given(st.lists(values, max_size=200))
def test_sort_run_sorts_every_int64_value_exactly(items):
    run = array("q", items)
    assert sort_run(run) is run
    assert run.tolist() == sorted(items)
    run.append(5)  # no buffer is left exported: the array can grow again
    assert len(run) == len(items) + 1


@pytest.mark.parametrize(
    "items",
    [
        [2**52 + 1, 1, 2**52, 0, 2**52 - 1, 2**53 + 1, FLOAT_LIMIT - 1, 7],  # the doubles' order
        [FLOAT_LIMIT, 3, 0x7FF0 << 48, 1, (0x7FF0 << 48) + 1, MAX_NATIVE, 2],  # infinities and NaNs as doubles
        [MAX_NATIVE, 0, MAX_NATIVE - 1, FLOAT_LIMIT - 1],
    ],
)
def test_sort_run_on_both_sides_of_the_float_limit(items):
    run = array("q", items)
    sort_run(run)
    assert run.tolist() == sorted(items)


def test_sort_run_leaves_short_runs_alone():
    assert sort_run(array("q")).tolist() == []
    assert sort_run(array("q", [9])).tolist() == [9]


# --------------------------------------------------------------------------- kth_smallest


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(values, max_size=40), min_size=1, max_size=12),
    st.data(),
    st.sampled_from([(4096, 64), (0, 2), (3, 1)]),  # as shipped; every narrowing step taken
)
def test_kth_smallest_matches_sorting_everything(runs, data, few_many):
    runs = [sorted(r) for r in runs]
    everything = sorted(v for r in runs for v in r)
    if not everything or (len(runs) == 1 and not runs[0]):
        return
    k = data.draw(st.integers(1, len(everything)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stats_mod, "_FEW", few_many[0])
        mp.setattr(stats_mod, "_MANY", few_many[1])
        assert kth_smallest(runs, k) == everything[k - 1]
        assert kth_smallest([array("q", r) for r in runs], k) == everything[k - 1]
        assert kth_smallest([tuple(r) for r in runs], k) == everything[k - 1]


def test_kth_smallest_over_many_long_runs_narrows_to_the_exact_value():
    rnd = random.Random(17)
    runs = [sorted(int(rnd.lognormvariate(19.5, 0.8)) for _ in range(rnd.randint(1, 3000))) for _ in range(150)]
    runs.append(sorted([10**15] * 5000))  # many equal values beyond the others
    runs.append(sorted(rnd.randrange(10**6) for _ in range(20_000)))  # one long run of small values
    everything = sorted(v for r in runs for v in r)
    n = len(everything)
    for k in (1, 2, 20_001, n // 2, n * 9 // 10, n * 95 // 100, n * 99 // 100, n - 5001, n - 5000, n):
        assert kth_smallest(runs, k) == everything[k - 1]


@pytest.mark.parametrize("k", [0, -1, 6])
def test_kth_smallest_refuses_a_rank_out_of_range(k):
    with pytest.raises(IndexError, match=f"k={k}"):
        kth_smallest([[1, 2], [], [3, 4, 5]], k)


# --------------------------------------------------------------------------- the aggregator's runs


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(["m", None]), values), max_size=120),
    st.lists(st.integers(0, 119), max_size=6),
    st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False)),
)
def test_seals_between_records_keep_percentiles_sums_and_runs_exact(calls, reads, p):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(series_mod, "_CHUNK", 4)
        agg = Aggregator()
        for i, (fn, model, d) in enumerate(calls):
            agg.record(fn, model, d)
            if i in reads:
                agg.stats().percentile(50)  # seal what is pending, leave later calls pending
        durations = [d for _, _, d in calls]
        stats = agg.stats()
        assert stats.percentile(p) == reference_percentile(durations, p)
        assert stats.total_duration_ns == sum(durations)
        assert stats.max_ns == (max(durations) if durations else None)
        assert stats.min_ns == (min(durations) if durations else None)
        sums: dict = {}
        for fn, model, d in calls:
            sums[(fn, model)] = sums.get((fn, model), 0) + d
        assert agg.duration_totals() == sums
        for s in agg.select():
            assert s.run_total == sum(sum(r) for r in s.runs)
            assert all(r.tolist() == sorted(r) for r in s.runs)
            assert all(len(r) <= 4 for r in s.runs)


def test_reads_between_records_do_not_pile_up_runs():
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(series_mod, "_CHUNK", 64)
        agg = Aggregator()
        rnd = random.Random(3)
        durations = []
        for _ in range(2_000):
            d = rnd.randrange(10**9)
            durations.append(d)
            agg.record("F", "m", d)
            assert agg.stats().max_ns == max(durations)  # a read after every call
        (s,) = agg.select()
        assert sum(len(r) for r in s.runs) == 2_000
        assert len(s.runs) <= 2 * 2_000 // 64 + 1  # short runs were merged as they came
        assert agg.stats().percentile(95) == reference_percentile(durations, 95)


def test_merge_and_payload_carry_the_kept_sums():
    a, b = Aggregator(), Aggregator()
    for i in range(300):
        a.record("F", "m", i * 1_000)
        b.record("F", "m", i * 7 + FLOAT_LIMIT)  # runs sorted as ints
        b.record("G", None, i)
    a.stats().percentile(50)  # a's durations sealed, b's pending
    merged = Aggregator().merge(a).merge(b)
    expected = {("F", "m"): sum(i * 1_000 for i in range(300)) + sum(i * 7 + FLOAT_LIMIT for i in range(300)),
                ("G", None): sum(range(300))}
    assert merged.duration_totals() == expected
    assert merged.stats().total_duration_ns == sum(expected.values())
    assert a.merge(b).duration_totals() == expected  # sealed runs merged into sealed runs
    back = Aggregator.from_payload(json.loads(json.dumps(merged.to_payload())))
    assert back.duration_totals() == expected
    assert back == merged


def test_ttfc_is_sorted_once_and_again_after_more_streams():
    agg = Aggregator()
    for v in (30, 10, 20):
        agg.record("F", "m", 100, time_to_first_chunk=v)
    (s,) = agg.select()
    assert agg.stats().ttfc_percentile(50) == 20
    assert s.ttfc.tolist() == [10, 20, 30] and s.ttfc_sorted == 3
    agg.record("F", "m", 100, time_to_first_chunk=5)
    agg.record("F", "m", 100, time_to_first_chunk=1)
    assert agg.stats().ttfc_percentile(0) == 1  # the new values are read
    assert agg.stats().ttfc_max_ns == 30
    other = Aggregator()
    other.record("F", "m", 100, time_to_first_chunk=99)
    agg.merge(other)
    assert agg.stats().ttfc_max_ns == 99
    assert s.ttfc.tolist() == [1, 5, 10, 20, 30, 99]


# --------------------------------------------------------------------------- the report


def _reference_row(durations):
    calls = len(durations)
    out = {f"p{p}_ns": reference_percentile(durations, p) for p in (50, 90, 95, 99)}
    out["min_ns"] = min(durations) if durations else None
    out["max_ns"] = max(durations) if durations else None
    out["total_duration_ns"] = sum(durations)
    out["mean_ns"] = sum(durations) / calls if calls else None
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["gpt-4o", None]), values, st.booleans()),
        max_size=150,
    ),
    st.booleans(),
)
def test_report_figures_match_a_straightforward_reference(calls, read_midway):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(series_mod, "_CHUNK", 8)
        agg = Aggregator()
        for i, (fn, model, d, ok) in enumerate(calls):
            agg.record(fn, model, d, ok, 10, 2)
            if read_midway and i == len(calls) // 2:
                build_report(agg)
        prices = PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}})
        data = build_report(agg, prices)
        by_key: dict = {}
        for fn, model, d, _ in calls:
            by_key.setdefault((fn, model), []).append(d)
        assert [(r["function"], r["model"]) for r in data["rows"]] == [
            (r["function"], r["model"]) for r in build_report(agg.stats(), prices)["rows"]
        ]
        for row in data["rows"]:
            want = _reference_row(by_key[(row["function"], row["model"])])
            assert {k: row[k] for k in want} == want
        want = _reference_row([d for _, _, d, _ in calls])
        assert {k: data["totals"][k] for k in want} == want
        # the kept sums (an Aggregator source) and the view's passes (a CallStats source) agree
        assert json.dumps(data, sort_keys=True) == json.dumps(build_report(agg.stats(), prices), sort_keys=True)


def test_report_of_a_filtered_view_sums_its_own_calls():
    agg = Aggregator()
    for i in range(50):
        agg.record("A", "m", 1_000 + i)
        agg.record("B", "m", 10**12 + i)
    data = build_report(agg.filtered(function="A"))
    assert data["totals"]["total_duration_ns"] == sum(1_000 + i for i in range(50))
    assert data["totals"]["p50_ns"] == 1_000 + rank(50, 50) - 1


# --------------------------------------------------------------------------- payloads


@pytest.mark.parametrize("bad", [-1, -(2**63), -(2**40)])
@pytest.mark.parametrize("durations_as", ["base64", "list"])
def test_from_payload_refuses_a_negative_duration_among_many(bad, durations_as):
    agg = Aggregator()
    for i in range(1_000):
        agg.record("F", "m", MAX_NATIVE - i if i % 2 else i)
    payload = agg.to_payload(durations_as=durations_as)
    assert Aggregator.from_payload(payload) == agg
    item = payload["series"][0]
    if durations_as == "list":
        d = array("q", item["durations"])
    else:
        d = array("q")
        d.frombytes(base64.b64decode(item["durations_b64"]))  # little-endian, as the tests' machines are
    d[617] = bad
    if durations_as == "list":
        item["durations"] = d.tolist()
    else:
        item["durations_b64"] = base64.b64encode(d.tobytes()).decode("ascii")
    with pytest.raises(ValueError, match="negative duration"):
        Aggregator.from_payload(payload)


def test_has_negative_reads_every_value():
    assert not series_mod.has_negative(array("q"))
    assert not series_mod.has_negative(array("q", [0, MAX_NATIVE, 1]))
    for i in range(9):
        values = array("q", range(9))
        values[i] = -1
        assert series_mod.has_negative(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B"]), values), max_size=120), st.integers(1, 30))
def test_histograms_from_the_runs_match_the_sorted_durations(calls, bins):
    from pytest_baml_telemetry.report.model import latency_histograms

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(series_mod, "_CHUNK", 5)
        agg = Aggregator()
        for fn, d in calls:
            agg.record(fn, "m", d)
        from_runs = latency_histograms(agg, bins)  # the aggregator's runs
        assert from_runs == latency_histograms(agg.stats(), bins)  # one sorted array per row
        for item in from_runs:
            durations = sorted(d for fn, d in calls if fn == item["function"])
            assert sum(b["count"] for b in item["bins"]) == len(durations) == item["calls"]
            assert (item["min_ns"], item["max_ns"]) == (durations[0], durations[-1])
            for b in item["bins"]:
                last = b is item["bins"][-1]
                assert b["count"] == sum(1 for d in durations if b["lo_ns"] <= d < b["hi_ns"] or (last and d == b["hi_ns"]))
