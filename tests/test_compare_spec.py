"""Baselines (issue 16): the ``--baml-compare-fail`` tolerances and the comparison rules, unit by unit."""

from __future__ import annotations

import math

import pytest

from pytest_baml_telemetry.budgets.config import BudgetConfigError
from pytest_baml_telemetry.report.compare import (
    CompareError,
    Tolerance,
    compare_reports,
    merge_tolerances,
    parse_tolerances,
    render_compare,
    tolerances_from_table,
)
from pytest_baml_telemetry.report.json import REPORT_SCHEMA

W = "--baml-compare-fail (ini baml_compare_fail)"


def test_pytest_benchmark_forms() -> None:
    assert parse_tolerances("p95:10%, cost:5% ,p99:0.05,max_ttfc:50ms,tokens:100,error_rate:0.02") == [
        Tolerance("p95", percent=10.0, text="10%"),
        Tolerance("cost", percent=5.0, text="5%"),
        Tolerance("p99", absolute=50_000_000.0, text="0.05"),  # a number is seconds, as pytest-benchmark's
        Tolerance("max_ttfc", absolute=50_000_000.0, text="50ms"),
        Tolerance("tokens", absolute=100.0, text="100"),
        Tolerance("error_rate", absolute=0.02, text="0.02"),
    ]
    assert parse_tolerances("p50:2.5%") == [Tolerance("p50", percent=2.5, text="2.5%")]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("p96:10%", f"{W}: 'p96:10%' (item 1 of 1 in 'p96:10%'): unknown key 'p96'; expected one of p50, p90, p95"),
        ("p95", f"{W}: 'p95' (item 1 of 1 in 'p95') has no tolerance; expected KEY:N% (p95:10%) or KEY:VALUE"),
        ("p95:", f"{W}: 'p95:' (item 1 of 1 in 'p95:') has no tolerance"),
        ("p95:10%,,cost:1%", f"{W}: item 2 of 3 in 'p95:10%,,cost:1%' is empty"),
        ("p95:10%,p95:5%", f"{W}: 'p95:5%' (item 2 of 2 in 'p95:10%,p95:5%'): 'p95' is given twice"),
        ("p95:-5%", "tolerance '-5%' is not a percentage; expected N% with N a number >= 0"),
        ("p95:nan%", "tolerance 'nan%' is not a percentage"),
        ("p95:%", "tolerance '%' is not a percentage"),
        ("p95:soon", "tolerance 'soon' is not N% nor a duration (seconds or '50ms')"),
        ("p95:-1", "tolerance '-1' is not N% nor a duration"),
        ("cost:cheap", "tolerance 'cheap' is not N% nor a number >= 0 (in usd)"),
        ("tokens:inf", "tolerance 'inf' is not N% nor a number >= 0 (in tokens)"),
    ],
)
def test_a_bad_piece_is_named(spec: str, message: str) -> None:
    with pytest.raises(CompareError) as info:
        parse_tolerances(spec)
    assert message in str(info.value)
    assert isinstance(info.value, BudgetConfigError)  # the plugin's usage error


def test_the_compare_table() -> None:
    where = "budget file 'b.toml'"
    assert tolerances_from_table({"p95": "10%", "cost": 0.5, "p99": "50ms", "tokens": 10}, where) == [
        Tolerance("p95", percent=10.0, text="10%"),
        Tolerance("cost", absolute=0.5, text="0.5"),
        Tolerance("p99", absolute=50_000_000.0, text="50ms"),
        Tolerance("tokens", absolute=10.0, text="10"),
    ]
    with pytest.raises(CompareError, match=r"budget file 'b.toml' \[compare\] p97: unknown key 'p97'"):
        tolerances_from_table({"p97": "10%"}, where)
    with pytest.raises(CompareError, match=r"\[compare\] p95: tolerance True is not 'N%' or a number"):
        tolerances_from_table({"p95": True}, where)
    with pytest.raises(CompareError, match=r"'compare' is a list; expected a \[compare\] table"):
        tolerances_from_table([1], where)
    file, cli = tolerances_from_table({"p95": "10%", "cost": 1}, where), parse_tolerances("p95:50%")
    assert merge_tolerances(file, cli) == [Tolerance("p95", percent=50.0, text="50%"), Tolerance("cost", absolute=1.0, text="1")]


def row(function: str, model: str | None = "m", **fields: float | None) -> dict:
    base = {"function": function, "model": model, "calls": 10, "p50_ns": 100, "p95_ns": 100, "p99_ns": 100,
            "ttfc_p95_ns": None, "total_tokens": 10, "cost_usd": 1.0, "error_rate": 0.0}
    base.update(fields)
    return base


def report(*rows: dict) -> dict:
    return {"schema": REPORT_SCHEMA, "rows": list(rows)}


def test_percentages_absolutes_and_the_boundary() -> None:
    base = report(row("F", p95_ns=100, cost_usd=1.0))
    now = report(row("F", p95_ns=110, cost_usd=1.05))
    # exactly at the tolerance passes (pytest-benchmark fails on "> threshold")
    assert compare_reports(now, base, parse_tolerances("p95:10%,cost:5%"))["passed"] is True
    out = compare_reports(now, base, parse_tolerances("p95:9%,cost:0.04"))
    assert [(r["key"], r["unverifiable"]) for r in out["regressions"]] == [("p95", False), ("cost", False)]
    assert out["regressions"][0]["message"] == "F / m: p95 0.0ms -> 0.0ms (+10.0%), tolerance 9%"
    assert out["regressions"][1]["message"] == "F / m: cost $1 -> $1.05 (+$0.05), tolerance 0.04"
    faster = compare_reports(report(row("F", p95_ns=50)), base, parse_tolerances("p95:0%"))
    assert faster["passed"] is True and faster["rows"][0]["deltas"]["p95"]["percent"] == -50.0


def test_from_zero_and_unknown_values() -> None:
    base = report(row("F", error_rate=0.0, cost_usd=1.0, ttfc_p95_ns=None))
    now = report(row("F", error_rate=0.1, cost_usd=None, ttfc_p95_ns=None))
    out = compare_reports(now, base, parse_tolerances("error_rate:1000%,cost:5%,ttfc_p95:1%"))
    regs = {r["key"]: r for r in out["regressions"]}
    assert set(regs) == {"error_rate", "cost"}  # no TTFC on either side: nothing to compare
    assert regs["error_rate"]["message"] == "F / m: error_rate 0.0% -> 10.0% (from 0), tolerance 1000%"
    assert regs["error_rate"]["percent"] is None and math.isclose(regs["error_rate"]["delta"], 0.1)
    assert regs["cost"]["unverifiable"] is True
    assert regs["cost"]["message"] == "F / m: cost cannot be compared: unknown in this run (baseline $1, now n/a); tolerance 5%"
    lines = render_compare(out)
    assert "  UNVERIFIABLE F / m: cost cannot be compared: unknown in this run (baseline $1, now n/a); tolerance 5%" in lines
    zero = compare_reports(report(row("F", error_rate=0.0)), base, parse_tolerances("error_rate:0%"))
    assert zero["passed"] is True and zero["rows"][0]["deltas"]["error_rate"]["percent"] == 0.0


def test_rows_on_one_side_are_listed_and_models_matter() -> None:
    base = report(row("F", "a"), row("G", None), row("H"))
    now = report(row("F", "b"), row("G", None), row("I"))
    out = compare_reports(now, base, parse_tolerances("p95:10%"))
    assert [(r["function"], r["model"]) for r in out["rows"]] == [("G", None)]
    assert out["only_in_baseline"] == [{"function": "F", "model": "a"}, {"function": "H", "model": "m"}]
    assert out["only_in_current"] == [{"function": "F", "model": "b"}, {"function": "I", "model": "m"}]
    lines = render_compare(out)
    assert "only in the baseline (not called in this run): F / a, H / m" in lines
    assert "only in this run (not in the baseline): F / b, I / m" in lines
    assert any(line.startswith("G  ") and "no model" in line for line in lines)


def test_partly_unknown_tokens_and_cost_are_not_compared_as_numbers() -> None:
    base = report(row("F", total_tokens=100, cost_usd=1.0, unknown_token_calls=0, cost_status="priced"))
    now = report(row("F", total_tokens=50, cost_usd=0.5, unknown_token_calls=3, cost_status="partial"))
    out = compare_reports(now, base, parse_tolerances("tokens:10%,cost:10%"))
    assert out["rows"][0]["deltas"]["tokens"] == {"baseline": 100, "current": None, "delta": None, "percent": None}
    assert [(r["key"], r["unverifiable"]) for r in out["regressions"]] == [("tokens", True), ("cost", True)]
    unpriced = compare_reports(report(row("F", cost_usd=None, cost_status="unpriced")),
                               report(row("F", cost_usd=None, cost_status="unpriced")), parse_tolerances("cost:1%"))
    assert unpriced["passed"] is True  # unpriced in both runs: nothing to compare
