"""Unit tests for pytest_baml_telemetry.budgets (pure: no pytest wiring)."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry.budgets import (
    BUDGET_KEYS,
    LIMIT_KEYS,
    Aggregator,
    Budget,
    BudgetConfigError,
    ModelPrice,
    PriceTable,
    Verdict,
    WorstCall,
    budget_from_marker,
    evaluate,
    failure_message,
    load_budgets,
    load_prices,
    percentile,
)
from pytest_baml_telemetry.budgets import series as series_mod

MS = 1_000_000
STOP = ("ash_baml", "call", "stop")
EXC = ("ash_baml", "call", "exception")


def reference_percentile(values, p):
    """Nearest rank by its other definition: the smallest value v such that at least
    p% of the values are <= v (p read as the decimal it is written as)."""
    if not values:
        return None
    frac = Fraction(p) if isinstance(p, int) else Fraction(repr(float(p)))
    n = len(values)
    for v in sorted(values):
        if sum(1 for x in values if x <= v) * 100 >= frac * n:
            return v
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- percentile


def test_percentile_examples():
    assert percentile([1, 2, 3, 4], 50) == 2
    assert percentile([1, 2, 3, 4], 51) == 3
    assert percentile([1, 2, 3, 4], 0) == 1
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile([7], 99) == 7
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile(list(range(1, 1001)), 99.9) == 999  # decimal 99.9, not binary
    assert percentile([], 50) is None


@pytest.mark.parametrize("p", [-1, 100.5, float("nan"), 101])
def test_percentile_rejects_out_of_range(p):
    with pytest.raises(ValueError, match="percentile p="):
        percentile([1, 2], p)


@pytest.mark.parametrize("p", ["50", None, True])
def test_percentile_rejects_non_numbers(p):
    with pytest.raises(TypeError, match="percentile p="):
        percentile([1, 2], p)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**12), max_size=60),
    st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False)),
)
def test_percentile_matches_sorted_reference(values, p):
    assert percentile(sorted(values), p) == reference_percentile(values, p)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["m1", None]), st.integers(0, 10**10)),
        max_size=80,
    ),
    st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False)),
)
def test_aggregator_percentile_matches_reference_across_series_and_runs(calls, p):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(series_mod, "_CHUNK", 3)  # many sorted runs per series
        agg = Aggregator()
        for i, (fn, model, d) in enumerate(calls):
            agg.record(fn, model, d, ok=i % 3 != 0)
            if i == len(calls) // 2:
                agg.stats().percentile(50)  # seal some, leave the rest pending
        durations = [d for _, _, d in calls]
        assert agg.stats().percentile(p) == reference_percentile(durations, p)
        a_only = [d for fn, _, d in calls if fn == "A"]
        assert agg.filtered(function="A").percentile(p) == reference_percentile(a_only, p)
        assert agg.stats().max_ns == (max(durations) if durations else None)
        assert agg.stats().min_ns == (min(durations) if durations else None)


# --------------------------------------------------------------------------- aggregator


def test_record_counts_tokens_and_unknowns():
    agg = Aggregator()
    agg.record("F", "m", 10 * MS, True, 100, 20, 30, test_id="t1")
    agg.record("F", "m", 20 * MS, True, None, 5, test_id="t2")  # input unknown
    agg.record("F", "m", 30 * MS, True, 50, None, 80, test_id="t3")  # output unknown; cached capped at 50
    # issue 12: failures count their tokens as successes do
    agg.record("F", "m", 40 * MS, False, 0, 0, test_id="t4")  # failed, not billed: 0/0, known
    agg.record("F", "m", 50 * MS, False, 7, 3, 2, test_id="t5")  # failed after an answer: billed
    agg.record("F", "m", 60 * MS, False, test_id="t6")  # failed, billing unknown: unknown tokens
    s = agg.stats()
    assert (s.calls, s.ok, s.errors) == (6, 3, 3)
    assert s.error_rate == 0.5
    assert (s.input_tokens, s.output_tokens, s.total_tokens) == (157, 28, 185)
    assert s.cached_input_tokens == 82
    assert s.unknown_token_calls() == 3
    assert s.unknown_token_calls("input") == 2
    assert s.unknown_token_calls("output") == 2
    assert s.unknown_token_sources() == [("F", "m", 3, ["t2", "t3", "t6"])]
    assert s.error_sources() == [("F", "m", 3, ["t4", "t5", "t6"])]
    assert s.total_duration_ns == 210 * MS
    assert s.mean_ns == 35 * MS
    assert len(agg) == 6
    with pytest.raises(ValueError, match="kind="):
        s.unknown_token_calls("cached")


def test_record_uses_current_test_id():
    agg = Aggregator()
    agg.current_test_id = "tests/test_a.py::test_x"
    agg.record("F", None, 5)
    agg.record("F", None, 9, test_id="explicit")
    assert [w.test_id for w in agg.stats().slowest()] == ["explicit", "tests/test_a.py::test_x"]


@pytest.mark.parametrize(
    "kwargs, exc, fragment",
    [
        ({"duration_ns": -1}, ValueError, "duration_ns=-1"),
        ({"duration_ns": 1.5}, TypeError, "duration_ns=1.5"),
        ({"duration_ns": "5ms"}, TypeError, "duration_ns='5ms'"),
        ({"input_tokens": -3}, ValueError, "input_tokens=-3"),
        ({"output_tokens": "7"}, TypeError, "output_tokens='7'"),
        ({"input_tokens": True}, TypeError, "input_tokens=True"),
        ({"cached_input_tokens": -2, "input_tokens": 5}, ValueError, "cached_input_tokens=-2"),
        ({"function_name": ""}, TypeError, "function_name=''"),
        ({"model": 4}, TypeError, "model=4"),
        ({"test_id": 12}, TypeError, "test_id=12"),
    ],
)
def test_record_rejects_bad_values(kwargs, exc, fragment):
    args = {"function_name": "F", "model": "m", "duration_ns": 5, "ok": True}
    args.update(kwargs)
    agg = Aggregator()
    with pytest.raises(exc) as info:
        agg.record(**args)
    assert fragment in str(info.value)


def test_record_event_stop_exception_and_others():
    agg = Aggregator()
    assert agg.record_event(
        STOP,
        {"duration": 7 * MS, "monotonic_time": 1, "input_tokens": 10, "output_tokens": 2,
         "total_tokens": 12, "cached_input_tokens": 4},
        {"function_name": "F", "model": "gpt", "arguments": {"secret": "sk-1"}, "result": "x"},
        test_id="t",
    )
    assert agg.record_event(EXC, {"duration": 9 * MS, "monotonic_time": 2}, {"function_name": "F", "kind": "error"})
    assert agg.record_event("my.prefix.call.stop", {"duration": 1, "input_tokens": None, "output_tokens": None},
                            {"function_name": "G", "model": None})
    assert not agg.record_event(("ash_baml", "call", "start"), {"system_time": 1}, {"function_name": "F"})
    assert not agg.record_event(("telemetry", "handler", "failure"), {}, {})
    agg.handle(STOP, {"duration": 3}, {"function_name": "F", "model": "gpt"}, None)
    assert agg.keys() == [("F", "gpt"), ("F", None), ("G", None)]
    gpt = agg.filtered(function="F", model="gpt")
    assert (gpt.calls, gpt.input_tokens, gpt.cached_input_tokens, gpt.unknown_token_calls()) == (2, 10, 4, 1)
    nomodel = agg.filtered(function="F").groups()[1][2]
    # issue 12: an exception event without token measurements (an older emitter) has unknown tokens
    assert (nomodel.calls, nomodel.errors, nomodel.unknown_token_calls()) == (1, 1, 1)
    assert agg.filtered(function="G").unknown_token_calls() == 1
    # and one with tokens (the billing rule) counts them
    assert agg.record_event(
        EXC,
        {"duration": 1, "input_tokens": 30, "output_tokens": 4, "total_tokens": 34, "cached_input_tokens": 10},
        {"function_name": "H", "model": "gpt", "kind": "error"},
    )
    h = agg.filtered(function="H")
    assert (h.errors, h.input_tokens, h.output_tokens, h.cached_input_tokens, h.unknown_token_calls()) == (1, 30, 4, 10, 0)


def test_record_event_missing_keys_are_named():
    agg = Aggregator()
    with pytest.raises(ValueError, match="'duration'"):
        agg.record_event(STOP, {"monotonic_time": 1}, {"function_name": "F"})
    with pytest.raises(ValueError, match="'function_name'"):
        agg.record_event(EXC, {"duration": 1}, {"model": "m"})


def test_slowest_and_heaviest_are_bounded_and_ordered():
    agg = Aggregator(worst_n=3)
    for i in range(10):
        agg.record("F", "m", i * MS, i != 9, 10 * i, 1, test_id=f"t{i}")
    slow = agg.stats().slowest()
    assert [w.duration_ns for w in slow] == [9 * MS, 8 * MS, 7 * MS]
    assert slow[0] == WorstCall(9 * MS, "F", "m", "t9", False, 90, 1)
    assert [w.test_id for w in agg.stats().heaviest()] == ["t9", "t8", "t7"]
    assert "t9" in slow[0].describe() and "error" in slow[0].describe() and "9ms" in slow[0].describe()


def test_worst_calls_do_not_depend_on_arrival_order():
    calls = [("F", "m", 5, True, 1, 1, None, f"t{i}") for i in range(8)]  # all tied
    a, b = Aggregator(worst_n=3), Aggregator(worst_n=3)
    for c in calls:
        a.record(*c)
    for c in reversed(calls):
        b.record(*c)
    assert a == b
    assert [w.test_id for w in a.stats().slowest()] == ["t7", "t6", "t5"]


def test_filters_are_live_and_accept_lists():
    agg = Aggregator()
    view = agg.filtered(function=["A", "B"], model="m")
    assert view.calls == 0 and view.percentile(50) is None and view.max_ns is None
    agg.record("A", "m", 1)
    agg.record("B", "m", 2)
    agg.record("B", "other", 3)
    agg.record("C", "m", 4)
    assert view.calls == 2
    assert view.filtered(function="B").calls == 1
    assert view.filtered(function="C").calls == 0
    assert [(f, m, g.calls) for f, m, g in agg.stats().groups()] == [
        ("A", "m", 1), ("B", "m", 1), ("B", "other", 1), ("C", "m", 1)]
    with pytest.raises(ValueError, match="function=''"):
        agg.filtered(function="")
    with pytest.raises(TypeError, match="model=3"):
        agg.filtered(model=3)


def _random_calls(seed: int, n: int):
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        ok = rnd.random() > 0.2
        out.append(
            (
                rnd.choice(["Extract", "Summarize"]),
                rnd.choice(["gpt-4o", "claude", None]),
                rnd.randint(0, 3_000) * MS,
                ok,
                rnd.choice([None, rnd.randint(0, 500)]),
                rnd.choice([None, rnd.randint(0, 100)]),
                rnd.choice([None, rnd.randint(0, 50)]),
                rnd.choice([None, f"tests/test_{i % 7}.py::t"]),
            )
        )
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 120), st.integers(1, 4))
def test_merge_of_payloads_equals_recording_everything(seed, n, workers):
    calls = _random_calls(seed, n)
    whole = Aggregator()
    for c in calls:
        whole.record(*c)
    parts = [Aggregator() for _ in range(workers)]
    for i, c in enumerate(calls):
        parts[i % workers].record(*c)
    home = Aggregator()
    for i, part in enumerate(parts):
        payload = part.to_payload(durations_as="list" if i % 2 else "base64")
        home.merge(Aggregator.from_payload(payload))
    assert home == whole
    for p in (0, 50, 90, 95, 99, 100):
        assert home.stats().percentile(p) == whole.stats().percentile(p)
    assert home.stats().slowest() == whole.stats().slowest()
    assert home.stats().heaviest() == whole.stats().heaviest()


def test_payload_round_trips_exactly():
    agg = Aggregator()
    for c in _random_calls(3, 200):
        agg.record(*c)
    agg.stats().percentile(50)  # sealed runs + a pending buffer must both travel
    agg.record("Extract", "gpt-4o", 1, True, 1, 1)
    payload = agg.to_payload()
    import json

    again = Aggregator.from_payload(json.loads(json.dumps(payload)))
    assert again == agg
    assert again.to_payload() == payload
    assert Aggregator.from_payload(agg.to_payload(durations_as="list")) == agg
    assert again != Aggregator()


@pytest.mark.parametrize(
    "mutate, fragment",
    [
        (lambda p: p.update(format="other/v9"), "not an aggregator payload"),
        (lambda p: p.pop("series"), "missing the field 'series'"),
        (lambda p: p["series"][0].update(ok=p["series"][0]["ok"] + 1), "durations for"),
        (lambda p: p["series"][0].update(durations_b64="!!notbase64"), "malformed"),
        (lambda p: p["series"][0].update(errors=-1), "errors=-1"),
        (lambda p: p["series"][0].update(slowest=[[1, 2]]), "worst-call entry"),
    ],
)
def test_from_payload_rejects_malformed(mutate, fragment):
    agg = Aggregator()
    agg.record("F", "m", 5, True, 1, 1, test_id="t")
    payload = agg.to_payload()
    mutate(payload)
    with pytest.raises(ValueError, match=fragment):
        Aggregator.from_payload(payload)


def test_merge_rejects_bad_input_and_clear_forgets():
    agg = Aggregator()
    with pytest.raises(TypeError, match="expected an Aggregator"):
        agg.merge({"series": []})
    with pytest.raises(ValueError, match="itself"):
        agg.merge(agg)
    agg.record("F", None, 1)
    agg.clear()
    assert len(agg) == 0 and agg.keys() == []


# --------------------------------------------------------------------------- prices


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


PRICES_TOML = """
[models."gpt-4o"]
input_per_mtok = 2.5
output_per_mtok = 10
cached_input_per_mtok = 1.25

[models."mini"]
input_per_mtok = 0.15
output_per_mtok = 0.6
"""


def test_price_table_load_and_cost(tmp_path):
    prices = load_prices(write(tmp_path, "prices.toml", PRICES_TOML))
    assert prices.models == ["gpt-4o", "mini"]
    assert prices.price("gpt-4o") == ModelPrice(2.5, 10.0, 1.25)
    # 1M input of which 400k cached, 100k output
    assert prices.cost("gpt-4o", 1_000_000, 100_000, 400_000) == pytest.approx(
        (600_000 * 2.5 + 400_000 * 1.25 + 100_000 * 10) / 1e6
    )
    # no cached price: cached billed at the input price; cached capped at input
    assert prices.cost("mini", 1_000, 1_000, 500) == pytest.approx((1_000 * 0.15 + 1_000 * 0.6) / 1e6)
    assert prices.cost("gpt-4o", 10, 0, 50) == pytest.approx(10 * 1.25 / 1e6)
    assert prices.cost("unknown-model", 1, 1) is None
    assert prices.cost(None, 1, 1) is None
    assert prices.cost("gpt-4o", None, 1) is None
    assert "gpt-4o" in prices and len(prices) == 2
    assert prices.source == str(tmp_path / "prices.toml")
    assert PriceTable({"gpt-4o": ModelPrice(2.5, 10, 1.25), "mini": ModelPrice(0.15, 0.6)}) == prices


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[models.\"gpt\"\ninput_per_mtok = 1", ["not valid TOML"]),
        ('[models."gpt"]\ninput_per_mtok = 1\noutput_per_mtok = 2\nprice = 3\n', ['models."gpt"', "'price'"]),
        ('[models."gpt"]\ninput_per_mtok = -1\noutput_per_mtok = 2\n', ['models."gpt"', "input_per_mtok = -1"]),
        ('[models."gpt"]\ninput_per_mtok = "1"\noutput_per_mtok = 2\n', ['models."gpt"', "input_per_mtok = '1'", "not a number"]),
        ('[models."gpt"]\ninput_per_mtok = 1\noutput_per_mtok = true\n', ["output_per_mtok = True"]),
        ('[models."gpt"]\ninput_per_mtok = 1\noutput_per_mtok = 1\ncached_input_per_mtok = nan\n', ["cached_input_per_mtok = nan"]),
        ('[models."gpt"]\ninput_per_mtok = 1\n', ["missing key 'output_per_mtok'"]),
        ('currency = "EUR"\n[models."gpt"]\ninput_per_mtok = 1\noutput_per_mtok = 1\n', ["unknown top-level key 'currency'"]),
        ("", ["defines no models"]),
        ('[models]\ngpt = 3\n', ['models."gpt"', "not a table"]),
    ],
)
def test_price_file_errors_name_file_model_and_key(tmp_path, text, fragments):
    path = write(tmp_path, "prices.toml", text)
    with pytest.raises(BudgetConfigError) as info:
        PriceTable.load(path)
    msg = str(info.value)
    assert str(path) in msg
    for f in fragments:
        assert f in msg


def test_price_file_missing_or_directory(tmp_path):
    with pytest.raises(BudgetConfigError, match=r"price file '.*nope\.toml' does not exist"):
        PriceTable.load(tmp_path / "nope.toml")
    with pytest.raises(BudgetConfigError, match="is not a file"):
        PriceTable.load(tmp_path)


# --------------------------------------------------------------------------- budgets

VALID = {
    "p50": "850ms",
    "p90": 1,
    "p95": timedelta(seconds=2),
    "p99": "1m",
    "max_latency": 2.5,
    "ttfc_p50": "100ms",  # the streaming keys of issue 16
    "ttfc_p90": "150ms",
    "ttfc_p95": "200ms",
    "ttfc_p99": "300ms",
    "max_ttfc": "1s",
    "max_calls": 10,
    "max_errors": 0,
    "max_error_rate": 0.5,
    "max_input_tokens": 1000,
    "max_output_tokens": 100,
    "max_total_tokens": 1100,
    "max_cost_usd": 0.25,
}


def test_budget_normalizes_every_key():
    b = Budget(**VALID, function="F", model=["a", "b"], allow_unknown_tokens=True, name="n")
    assert (b.p50, b.p90, b.p95, b.p99, b.max_latency) == (
        850 * MS, 1_000 * MS, 2_000 * MS, 60_000 * MS, 2_500 * MS)
    assert b.max_calls == 10 and b.max_errors == 0 and b.max_error_rate == 0.5
    assert (b.max_input_tokens, b.max_output_tokens, b.max_total_tokens) == (1000, 100, 1100)
    assert b.max_cost_usd == 0.25
    assert b.function == "F" and b.model == ("a", "b")
    assert list(b.limits()) == list(LIMIT_KEYS)
    assert Budget.from_mapping(b.to_mapping()) == b
    assert b.label == "budget 'n' [function='F', model=('a', 'b')]"
    assert Budget(p50=1, source="f.toml [[budget]] #2").label == "budget [all calls] from f.toml [[budget]] #2"
    assert "p50='850ms'" in repr(b)
    assert b.matches("F", "a") and not b.matches("F", "c") and not b.matches("G", "a")
    assert hash(b) == hash(Budget.from_mapping(b.to_mapping()))


def test_budget_unknown_key_lists_valid_keys():
    with pytest.raises(TypeError) as info:
        Budget(p95="1s", p999="2s")
    msg = str(info.value)
    assert "'p999'" in msg
    for k in BUDGET_KEYS:
        assert k in msg
    with pytest.raises(TypeError, match="'max_cost'"):
        Budget.from_mapping({"max_cost": 1})


@pytest.mark.parametrize(
    "key, value",
    [
        ("p50", "fast"),
        ("p95", -1),
        ("p99", [1]),
        ("max_latency", "-2s"),
        ("max_calls", -1),
        ("max_calls", 1.5),
        ("max_calls", True),
        ("max_errors", "3"),
        ("max_error_rate", 1.5),
        ("max_error_rate", -0.1),
        ("max_error_rate", "5%"),
        ("max_input_tokens", -5),
        ("max_output_tokens", 2.0),
        ("max_total_tokens", None and 0 or "many"),
        ("max_cost_usd", -0.01),
        ("max_cost_usd", float("inf")),
        ("max_cost_usd", "1$"),
        ("allow_unknown_tokens", "yes"),
        ("function", ""),
        ("function", 3),
        ("model", [1]),
        ("name", 5),
    ],
)
def test_budget_bad_values_name_key_and_value(key, value):
    kwargs = {"max_calls": 1} if key != "max_calls" else {}
    kwargs[key] = value
    with pytest.raises(ValueError) as info:
        Budget(**kwargs)
    msg = str(info.value)
    assert key in msg
    assert repr(value) in msg


def test_budget_needs_a_limit_and_keywords():
    with pytest.raises(ValueError, match="sets no limit"):
        Budget(function="F")

    class Mark:
        args = ("800ms",)
        kwargs = {}

    with pytest.raises(TypeError, match="keyword arguments only.*'800ms'"):
        budget_from_marker(Mark())

    class Good:
        args = ()
        kwargs = {"p95": "800ms", "function": "F"}

    b = budget_from_marker(Good(), source="test_x")
    assert b.p95 == 800 * MS and b.source == "test_x"


BUDGETS_TOML = """
[[budget]]
name = "extract fast"
function = "ExtractResume"
p95 = "800ms"
max_error_rate = 0.1

[[budget]]
max_cost_usd = 0.5
allow_unknown_tokens = true
"""


def test_load_budgets(tmp_path):
    path = write(tmp_path, "budgets.toml", BUDGETS_TOML)
    b1, b2 = load_budgets(path)
    assert b1 == Budget(name="extract fast", function="ExtractResume", p95="800ms", max_error_rate=0.1,
                        source=f"{path} [[budget]] #1")
    assert b2.max_cost_usd == 0.5 and b2.allow_unknown_tokens is True
    assert b2.source == f"{path} [[budget]] #2"


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("[[budget]\np95 = 1", ["not valid TOML"]),
        ('[[budget]]\np95 = "1s"\n[[budget]]\np95 = "1s"\nmax_tokens = 3\n', ["[[budget]] #2", "'max_tokens'", "valid keys"]),
        ('[[budget]]\nmax_calls = -1\n', ["[[budget]] #1", "max_calls=-1"]),
        ('[[budget]]\np95 = "soon"\n', ["[[budget]] #1", "p95='soon'"]),
        ('[[budget]]\nfunction = "F"\n', ["[[budget]] #1", "sets no limit"]),
        ("budget = 3\n", ["expected a list of [[budget]] tables"]),
        ("budget = []\n", ["defines no [[budget]] tables"]),
        ("", ["defines no [[budget]] tables"]),
        ('[budgets]\np95 = "1s"\n', ["unknown top-level key 'budgets'"]),
        ("budget = [1]\n", ["[[budget]] #1", "not a table"]),
    ],
)
def test_budget_file_errors_name_file_and_table(tmp_path, text, fragments):
    path = write(tmp_path, "budgets.toml", text)
    with pytest.raises(BudgetConfigError) as info:
        load_budgets(path)
    msg = str(info.value)
    assert str(path) in msg
    for f in fragments:
        assert f in msg


def test_budget_file_missing(tmp_path):
    with pytest.raises(BudgetConfigError, match="budget file .*missing.toml' does not exist"):
        load_budgets(tmp_path / "missing.toml")


# --------------------------------------------------------------------------- evaluate

PRICES = PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}, source="prices.toml")


def sample_aggregator() -> Aggregator:
    """10 calls of F on gpt-4o: 10..100 ms, 2 failed (not billed: 0/0 tokens), 1000 in / 100 out tokens each ok one."""
    agg = Aggregator()
    for i in range(1, 11):
        ok = i not in (3, 7)
        agg.record("F", "gpt-4o", i * 10 * MS, ok, 1000 if ok else 0, 100 if ok else 0,
                   test_id=f"tests/test_f.py::test_{i}")
    return agg


# measured values over sample_aggregator(): (key, measured, a passing limit, a failing limit)
MEASURED = [
    ("p50", 50 * MS, "50ms", "49ms"),
    ("p90", 90 * MS, "90ms", "89ms"),
    ("p95", 100 * MS, "100ms", "99ms"),
    ("p99", 100 * MS, "0.1s", "99.9ms"),
    ("max_latency", 100 * MS, 0.1, 0.0999),
    ("max_calls", 10, 10, 9),
    ("max_errors", 2, 2, 1),
    ("max_error_rate", 0.2, 0.2, 0.19),
    ("max_input_tokens", 8000, 8000, 7999),
    ("max_output_tokens", 800, 800, 799),
    ("max_total_tokens", 8800, 8800, 8799),
    ("max_cost_usd", (8000 * 2.5 + 800 * 10) / 1e6, 0.028, 0.0279),
]


@pytest.mark.parametrize("key, measured, ok_limit, bad_limit", MEASURED, ids=[m[0] for m in MEASURED])
def test_every_key_passes_and_fails(key, measured, ok_limit, bad_limit):
    agg = sample_aggregator()
    (good,) = evaluate(Budget(**{key: ok_limit}), agg, PRICES)
    assert good.key == key and good.passed is True
    assert good.measured == pytest.approx(measured)
    assert good.calls == 10 and good.worst_calls == ()
    (bad,) = evaluate(Budget(**{key: bad_limit}, name="tight"), agg, PRICES, scope="tests/x.py::t")
    assert bad.passed is False and bad.scope == "tests/x.py::t"
    assert bad.measured == pytest.approx(measured)
    assert bad.limit == Budget(**{key: bad_limit}).limits()[key]
    msg = failure_message([good, bad])
    assert msg is not None
    assert "budget 'tight' [all calls]" in msg
    assert key in msg and "exceeds the limit" in msg
    assert "worst calls:" in msg and "tests/test_f.py::test_" in msg
    assert failure_message([good]) is None


def test_latency_message_shows_measured_limit_and_slowest():
    agg = sample_aggregator()
    (v,) = evaluate(Budget(p95="80ms", function="F"), agg)
    assert v.headline == "budget [function='F']: p95 = 100ms exceeds the limit 80ms over 10 calls"
    assert v.worst_calls[0] == WorstCall(100 * MS, "F", "gpt-4o", "tests/test_f.py::test_10", True, 1000, 100)
    assert len(v.worst_calls) == 5
    assert v.message.splitlines()[1] == "  worst calls:"


def test_zero_calls_pass_and_say_no_calls():
    agg = sample_aggregator()
    vs = evaluate(Budget(p50="1ms", p99="1ms", max_latency="1ms", max_error_rate=0, max_calls=0,
                         max_total_tokens=0, max_cost_usd=0, function="Other"), agg, PRICES)
    assert all(v.passed for v in vs)
    latency = [v for v in vs if v.key in ("p50", "p99", "max_latency", "max_error_rate")]
    assert all(v.measured is None and "no calls" in v.headline for v in latency)
    assert {v.key: v.measured for v in vs}["max_cost_usd"] == 0.0


def test_filters_scope_the_verdict():
    agg = sample_aggregator()
    agg.record("G", "mini", 5_000 * MS, True, 1, 1)
    (v,) = evaluate(Budget(max_latency="1s", model="gpt-4o"), agg)
    assert v.passed and v.calls == 10
    (v,) = evaluate(Budget(max_latency="1s"), agg.filtered(function="G"))
    assert not v.passed and v.measured == 5_000 * MS


def test_unpriced_model_fails_cost_budget_naming_it():
    agg = sample_aggregator()
    agg.record("G", "claude-9", 1 * MS, True, 10, 10)
    (v,) = evaluate(Budget(max_cost_usd=100), agg, PRICES)
    assert not v.passed
    assert "unpriced model 'claude-9' (1 call)" in v.headline
    assert "prices.toml" in v.message
    (v,) = evaluate(Budget(max_cost_usd=100, allow_unknown_tokens=True), agg, None)
    assert not v.passed
    assert "'gpt-4o' (10 calls)" in v.headline and "'claude-9' (1 call)" in v.headline
    assert "no price table" in v.message
    (v,) = evaluate(Budget(max_cost_usd=100, model="gpt-4o"), agg, PRICES)
    assert v.passed


def test_unknown_tokens_fail_token_and_cost_budgets_unless_allowed():
    agg = sample_aggregator()
    agg.record("F", "gpt-4o", 1 * MS, True, 500, None, test_id="tests/test_f.py::test_stream")
    for key in ("max_output_tokens", "max_total_tokens", "max_cost_usd"):
        (v,) = evaluate(Budget(**{key: 10**9}), agg, PRICES)
        assert not v.passed, key
        assert "1 call with unknown" in v.headline
        assert "allow_unknown_tokens=True" in v.headline
        assert "tests/test_f.py::test_stream" in v.message
        (v,) = evaluate(Budget(**{key: 10**9}, allow_unknown_tokens=True), agg, PRICES)
        assert v.passed, key
        assert "not counted" in v.message
    # input tokens are known for that call: an input budget is unaffected
    (v,) = evaluate(Budget(max_input_tokens=8500), agg)
    assert v.passed and v.measured == 8500
    # allow_unknown_tokens does not hide a real overrun
    (v,) = evaluate(Budget(max_input_tokens=10, allow_unknown_tokens=True), agg)
    assert not v.passed


def test_error_budget_names_failed_tests():
    agg = sample_aggregator()
    (v,) = evaluate(Budget(max_errors=0), agg)
    assert "failed calls: F [gpt-4o]: 2 in tests/test_f.py::test_3, tests/test_f.py::test_7" in v.message
    # worst calls: the failed ones among the slowest kept
    assert [(w.test_id, w.ok) for w in v.worst_calls] == [("tests/test_f.py::test_7", False)]


def test_evaluate_rejects_bad_arguments():
    agg = sample_aggregator()
    with pytest.raises(TypeError, match="expected a Budget"):
        evaluate({"p95": 1}, agg)
    with pytest.raises(TypeError, match="expected an Aggregator or CallStats"):
        evaluate(Budget(p95=1), [1, 2])
    with pytest.raises(TypeError, match="expected a PriceTable"):
        evaluate(Budget(p95=1), agg, {"gpt-4o": 1})


def test_verdict_dict_round_trip():
    agg = sample_aggregator()
    vs = evaluate(Budget(p95="1ms", max_cost_usd=1, name="b", function=["F", "G"]), agg, PRICES, scope="t::x")
    for v in vs:
        d = v.to_dict()
        import json

        assert Verdict.from_dict(json.loads(json.dumps(d))) == v
    with pytest.raises(ValueError, match="'key'"):
        Verdict.from_dict({"budget": {"p95": 1}})


def test_many_calls_stay_compact():
    agg = Aggregator()
    for i in range(20_000):
        agg.record("F", "m", i, True, 1, 1, test_id=f"t{i}")
    s = agg._series[("F", "m")]
    assert s.buf.itemsize == 8 and len(s.buf) == 20_000
    assert len(s.slowest) == 5 and len(s.heaviest) == 5
    assert agg.stats().percentile(50) == 9_999
    assert math.isclose(agg.stats().mean_ns, 9_999.5)


def test_concurrent_records_lose_nothing():
    import threading

    agg = Aggregator()

    def work(k):
        for i in range(5_000):
            agg.record(f"F{i % 3}", "m", i, i % 4 != 0, 1, 2, test_id=f"t{k}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = agg.stats()
    assert (s.calls, s.errors, s.input_tokens, s.output_tokens) == (20_000, 5_000, 20_000, 40_000)


def test_failure_message_groups_by_budget_and_scope():
    agg = sample_aggregator()
    b = Budget(p50="1ms", max_calls=1, name="both")
    vs = [Verdict.from_dict(v.to_dict()) for v in evaluate(b, agg)]
    msg = failure_message(vs)
    assert msg.count("worst calls:") == 1
    assert msg.splitlines()[0].startswith("budget 'both' [all calls]: p50 = 50ms exceeds the limit 1ms")
    assert "max_calls: 10 calls exceeds the limit 1 call" in msg


# --------------------------------------------------------------------------- registry and origin


def test_every_limit_key_is_one_registry_entry():
    from pytest_baml_telemetry.budgets.limits import LIMITS

    assert LIMIT_KEYS == tuple(LIMITS)
    assert BUDGET_KEYS[: len(LIMIT_KEYS)] == LIMIT_KEYS
    agg = sample_aggregator()
    for key, entry in LIMITS.items():
        assert entry.key == key
        assert entry.unit in ("ns", "calls", "errors", "ratio", "tokens", "usd")
        (v,) = evaluate(Budget(**{key: VALID[key]}), agg, PRICES)
        assert v.key == key and v.unit == entry.unit
        assert entry.parse(entry.config(v.limit)) == v.limit  # to_mapping round-trips through parse
        assert getattr(Budget(**{key: VALID[key]}), key) == v.limit


def test_a_file_budget_carries_its_origin_as_data(tmp_path):
    from pytest_baml_telemetry.budgets import BudgetOrigin

    path = write(tmp_path, "budgets.toml", BUDGETS_TOML)
    b1, b2 = load_budgets(path)
    assert b1.origin == BudgetOrigin(str(path), 1) and b2.origin == BudgetOrigin(str(path), 2)
    assert b2.source == b2.origin.label == f"{path} [[budget]] #2"
    assert Budget(p50=1, source="x").origin is None
    with pytest.raises(ValueError, match="origin"):
        Budget(p50=1, source="x", origin=BudgetOrigin("f", 1))
    (v,) = evaluate(b2, sample_aggregator(), PRICES)
    assert Verdict.from_dict(v.to_dict()).budget.origin == b2.origin


def test_the_verdict_dict_is_the_report_record_plus_budget_scope_and_notes():
    from pytest_baml_telemetry.budgets import verdict_record

    (v,) = evaluate(Budget(max_errors=0), sample_aggregator())
    d = v.to_dict()
    record = verdict_record(v)
    assert {k: d[k] for k in record} == record
    assert set(d) - set(record) == {"scope", "budget", "source", "origin", "notes"}


def test_budgets_are_immutable():
    import dataclasses

    b = Budget(p95="1s")
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.p95 = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        b.p42  # noqa: B018
