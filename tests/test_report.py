"""Unit tests for pytest_baml_telemetry.report."""

from __future__ import annotations

import json

import pytest

from pytest_baml_telemetry.budgets import Aggregator, Budget, PriceTable, evaluate
from pytest_baml_telemetry.report import (
    REPORT_SCHEMA,
    build_report,
    render_terminal,
    to_json,
    write_json,
)

MS = 1_000_000
PRICES = PriceTable(
    {"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "cached_input_per_mtok": 1.25}},
    source="prices.toml",
)


def make_aggregator() -> Aggregator:
    agg = Aggregator()
    agg.current_test_id = "tests/test_a.py::test_one"
    for i in range(1, 101):  # Extract on gpt-4o: 1..100 ms, every 10th fails (not billed: 0/0)
        ok = i % 10 != 0
        agg.record("Extract", "gpt-4o", i * MS, ok, 1_000 if ok else 0, 200 if ok else 0,
                   100 if ok else 0)
    agg.record("Summarize", "claude-x", 1_500 * MS, True, 4_000, 500)  # unpriced
    agg.record("Summarize", "claude-x", 500 * MS, True, None, None)  # unknown tokens
    agg.record_event(
        ("ash_baml", "call", "exception"),
        {"duration": 30_000 * MS, "monotonic_time": 1, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
        {"function_name": "Classify", "kind": "error", "reason": RuntimeError("sk-secret-in-error"),
         "arguments": {"api_key": "sk-secret-in-args"}},
    )
    return agg


def test_rows_and_totals():
    data = build_report(make_aggregator(), PRICES)
    assert data["schema"] == REPORT_SCHEMA
    rows = {(r["function"], r["model"]): r for r in data["rows"]}
    assert list(rows) == [("Classify", None), ("Extract", "gpt-4o"), ("Summarize", "claude-x")]
    ex = rows[("Extract", "gpt-4o")]
    assert (ex["calls"], ex["ok"], ex["errors"]) == (100, 90, 10)
    assert ex["error_rate"] == 0.1
    assert (ex["p50_ns"], ex["p90_ns"], ex["p95_ns"], ex["p99_ns"]) == (50 * MS, 90 * MS, 95 * MS, 99 * MS)
    assert (ex["min_ns"], ex["max_ns"]) == (1 * MS, 100 * MS)
    assert ex["mean_ns"] == 50.5 * MS and ex["total_duration_ns"] == 5_050 * MS
    assert (ex["input_tokens"], ex["output_tokens"], ex["cached_input_tokens"]) == (90_000, 18_000, 9_000)
    assert ex["total_tokens"] == 108_000 and ex["unknown_token_calls"] == 0
    assert ex["cost_usd"] == pytest.approx((81_000 * 2.5 + 9_000 * 1.25 + 18_000 * 10) / 1e6)
    assert ex["cost_status"] == "priced"
    su = rows[("Summarize", "claude-x")]
    assert su["cost_usd"] is None and su["cost_status"] == "unpriced" and su["unknown_token_calls"] == 1
    cl = rows[("Classify", None)]
    assert cl["cost_usd"] == 0.0 and cl["cost_status"] == "no usage" and cl["errors"] == 1
    t = data["totals"]
    assert (t["calls"], t["errors"]) == (103, 11)
    assert t["max_ns"] == 30_000 * MS and t["p50_ns"] == 52 * MS
    assert t["input_tokens"] == 94_000 and t["unknown_token_calls"] == 1
    assert t["cost_usd"] == ex["cost_usd"]
    assert t["unpriced_models"] == ["claude-x"] and t["cost_complete"] is False
    assert data["summary"] == {"calls": 103, "budgets": 0, "budgets_failed": 0, "passed": True, "budgets_expected": 0, "budgets_unverifiable": 0, "not_recorded": 0, "complete": True, "incomplete": []}
    assert data["price_table"] == "prices.toml"


def test_partial_cost_and_no_price_table():
    agg = Aggregator()
    agg.record("F", "gpt-4o", 1, True, 1_000_000, 0)
    agg.record("F", "gpt-4o", 1, True, None, 5)
    (row,) = build_report(agg, PRICES)["rows"]
    assert row["cost_status"] == "partial" and row["cost_usd"] == pytest.approx(2.5 + 5 * 10 / 1e6)
    data = build_report(agg)
    assert data["rows"][0]["cost_status"] == "unpriced"
    assert data["price_table"] is None
    assert any("no --baml-prices table" in line for line in render_terminal(data))


def test_json_never_contains_arguments_results_or_secrets(tmp_path):
    agg = make_aggregator()
    agg.record_event(
        ("ash_baml", "call", "stop"),
        {"duration": 1, "input_tokens": 1, "output_tokens": 1},
        {"function_name": "Extract", "model": "gpt-4o", "arguments": {"resume": "sk-secret-arg"},
         "result": {"name": "sk-secret-result"}, "headers": {"Authorization": "Bearer sk-secret"}},
    )
    verdicts = evaluate(Budget(p95="1ms", max_cost_usd=1), agg, PRICES)
    data = build_report(agg, PRICES, verdicts)
    path = tmp_path / "report.json"
    write_json(data, path)
    text = path.read_text(encoding="utf-8")
    assert "sk-secret" not in text and "Authorization" not in text
    assert "sk-secret" not in "\n".join(render_terminal(data))
    assert json.loads(text) == to_json(data)
    assert text.endswith("\n")


def test_budget_section_and_verdict_order_independence():
    agg = make_aggregator()
    session = evaluate(Budget(p95="50ms", name="fast", function="Extract"), agg, PRICES)
    per_test = evaluate(Budget(max_calls=1000), agg, PRICES, scope="tests/test_a.py::test_one")
    data = build_report(agg, PRICES, per_test + session)
    again = build_report(agg, PRICES, [v.to_dict() for v in session + per_test])
    assert data == again
    assert [b["scope"] for b in data["budgets"]] == ["session", "tests/test_a.py::test_one"]
    fast = data["budgets"][0]
    assert fast["budget"] == "budget 'fast' [function='Extract']"
    assert fast["name"] == "fast" and fast["function"] == "Extract" and fast["passed"] is False
    (v,) = fast["verdicts"]
    assert (v["key"], v["measured"], v["limit"], v["unit"], v["passed"]) == ("p95", 95 * MS, 50 * MS, "ns", False)
    assert v["worst_calls"][0] == {
        "duration_ns": 100 * MS, "function": "Extract", "model": "gpt-4o",
        "test_id": "tests/test_a.py::test_one", "ok": False, "input_tokens": 0, "output_tokens": 0,
    }
    assert data["summary"] == {"calls": 103, "budgets": 2, "budgets_failed": 1, "passed": False, "budgets_expected": 0, "budgets_unverifiable": 0, "not_recorded": 0, "complete": True, "incomplete": []}


def test_xdist_style_merge_gives_identical_report():
    whole = make_aggregator()
    w1, w2 = Aggregator(), Aggregator()
    # replay the same calls split over two "workers"
    for i in range(1, 101):
        ok = i % 10 != 0
        (w1 if i % 2 else w2).record("Extract", "gpt-4o", i * MS, ok, 1_000 if ok else 0,
                                     200 if ok else 0, 100 if ok else 0,
                                     test_id="tests/test_a.py::test_one")
    w2.record("Summarize", "claude-x", 1_500 * MS, True, 4_000, 500, test_id="tests/test_a.py::test_one")
    w1.record("Summarize", "claude-x", 500 * MS, True, None, None, test_id="tests/test_a.py::test_one")
    w2.record("Classify", None, 30_000 * MS, False, 0, 0, test_id="tests/test_a.py::test_one")
    home = Aggregator()
    for w in (w2, w1):
        home.merge(Aggregator.from_payload(json.loads(json.dumps(w.to_payload()))))
    budget = Budget(p99="10ms", max_total_tokens=1, max_cost_usd=0.001)
    assert build_report(home, PRICES, evaluate(budget, home, PRICES)) == build_report(
        whole, PRICES, evaluate(budget, whole, PRICES))


def test_render_terminal_table():
    agg = make_aggregator()
    verdicts = evaluate(Budget(p95="50ms", name="fast"), agg) + evaluate(Budget(max_calls=500), agg)
    lines = render_terminal(build_report(agg, PRICES, verdicts))
    header, sep = lines[0], lines[1]
    assert header.split() == ["function", "model", "calls", "errors", "p50", "ms", "p95", "ms", "p99", "ms",
                              "max", "ms", "in", "tokens", "out", "tokens", "cost"]
    assert set(sep.replace(" ", "")) == {"-"}
    extract = next(line for line in lines if line.startswith("Extract "))
    assert extract.split() == ["Extract", "gpt-4o", "100", "10", "50.0", "95.0", "99.0", "100.0",
                               "90,000", "18,000", "$0.3937"]
    summarize = next(line for line in lines if line.startswith("Summarize"))
    assert summarize.split()[-3:] == ["4,000*", "500*", "unpriced"]
    classify = next(line for line in lines if line.startswith("Classify"))
    assert classify.split()[1:4] == ["no", "model", "1"] and classify.split()[-1] == "-"
    total = next(line for line in lines if line.startswith("TOTAL"))
    assert total.split()[1:3] == ["103", "11"] and total.endswith("$0.3937 + unpriced")
    # right-aligned numeric columns line up with the header
    assert extract.index("100.0") + len("100.0") == header.index("max ms") + len("max ms")
    assert "* 1 call with unknown tokens (not counted)" in lines
    assert "unpriced models in prices.toml: claude-x" in lines
    assert "budgets: 2 checked, 1 failed" in lines
    # each budget's label once, then one compact line per verdict (issue 11: "The report reads well")
    fail = lines.index("    FAIL p95 = 98ms exceeds the limit 50ms over 103 calls")
    assert lines[fail - 1] == "  session: budget 'fast' [all calls]"
    passed = next(i for i, line in enumerate(lines) if line.startswith("    PASS max_calls: 103 calls <="))
    assert lines[passed - 1] == "  session: budget [all calls]"
    assert any("30s  Classify [no model]  error" in line for line in lines)


def test_empty_report():
    data = build_report(Aggregator())
    assert data["rows"] == [] and data["totals"]["calls"] == 0 and data["totals"]["p50_ns"] is None
    assert render_terminal(data) == ["no BAML calls recorded"]
    assert to_json(data)["summary"]["passed"] is True


def test_bad_inputs():
    with pytest.raises(TypeError, match="expected an Aggregator or CallStats"):
        build_report({"rows": []})
    with pytest.raises(TypeError, match="expected a PriceTable"):
        build_report(Aggregator(), {"gpt-4o": 1})
    with pytest.raises(ValueError, match="not report data"):
        to_json({"rows": []})
    with pytest.raises(ValueError, match="not report data"):
        render_terminal({"schema": "other"})
    with pytest.raises(TypeError, match="not a Verdict"):
        build_report(Aggregator(), verdicts=[42])


def test_stacked_budgets_with_the_same_label_stay_separate():
    agg = make_aggregator()
    vs = evaluate(Budget(p50="1s"), agg, scope="t") + evaluate(Budget(max_calls=1), agg, scope="t")
    data = build_report(agg, None, vs)
    assert [(b["scope"], b["passed"], [v["key"] for v in b["verdicts"]]) for b in data["budgets"]] == [
        ("t", False, ["max_calls"]), ("t", True, ["p50"])]


def test_session_budgets_are_in_file_order_by_their_origin():
    from pytest_baml_telemetry.budgets import BudgetOrigin

    agg = make_aggregator()
    tenth = Budget(max_calls=1, origin=BudgetOrigin("b.toml", 10))
    second = Budget(max_calls=2, origin=BudgetOrigin("b.toml", 2))
    data = build_report(agg, None, evaluate(tenth, agg) + evaluate(second, agg))
    assert [b["source"] for b in data["budgets"]] == ["b.toml [[budget]] #2", "b.toml [[budget]] #10"]
