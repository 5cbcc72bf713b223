"""The report reads well (issue 11): amounts in fixed point, "1 call" not "1 calls"."""

from __future__ import annotations

import re

import pytest

from pytest_baml_telemetry.budgets import Aggregator, Budget, PriceTable, evaluate
from pytest_baml_telemetry.budgets.text import format_usd
from pytest_baml_telemetry.trackers import CostTracker

MS = 1_000_000


@pytest.mark.parametrize(
    ("usd", "text"),
    [
        (0, "$0"),
        (0.0000325, "$0.0000325"),
        (0.000001234, "$0.000001234"),
        (2.5e-9, "$0.0000000025"),
        (0.0099994, "$0.009999"),
        (0.01, "$0.01"),
        (0.3937, "$0.3937"),
        (0.1 + 0.2, "$0.3"),
        (12.5, "$12.5"),
        (1234.5, "$1,234.50"),
        (1e15, "$1,000,000,000,000,000.00"),
        (1e-13, "<$0.000000000001"),
        (-0.0000325, "-$0.0000325"),
    ],
)
def test_format_usd_is_fixed_point_with_sensible_precision(usd: float, text: str) -> None:
    assert format_usd(usd) == text


@pytest.mark.parametrize("exponent", range(-12, 16))
def test_format_usd_never_writes_scientific_notation(exponent: int) -> None:
    for mantissa in (1, 3.25, 9.99999):
        text = format_usd(mantissa * 10.0**exponent)
        assert re.fullmatch(r"<?\$[0-9,]+(\.[0-9]+)?", text), text


PRICES = PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}})


def one_call(ok: bool = True) -> Aggregator:
    agg = Aggregator()
    agg.record("F", "gpt-4o", 100 * MS, ok, 1, 1)
    return agg


@pytest.mark.parametrize(
    ("budget", "ok", "expected"),
    [
        (Budget(max_calls=0), True, "max_calls: 1 call exceeds the limit 0 calls"),
        (Budget(max_calls=1), True, "max_calls: 1 call <= 1 call"),
        (Budget(max_errors=0), False, "max_errors: 1 failed call of 1 exceeds the limit 0 errors"),
        (Budget(max_errors=1), False, "<= 1 error"),
        (Budget(max_error_rate=0.5), False, "(1/1 call failed)"),
        (Budget(p95="1s"), True, "over 1 call"),
        (Budget(max_input_tokens=1), True, "max_input_tokens: 1 input token <= 1 token over 1 call"),
        (Budget(max_output_tokens=0), True, "max_output_tokens: 1 output token exceeds the limit 0 tokens over 1 call"),
        (Budget(max_total_tokens=5), True, "2 total tokens <= 5 tokens over 1 call"),
        (Budget(max_cost_usd=1), True, "max_cost_usd: $0.0000125 <= $1 over 1 call"),
    ],
)
def test_budget_headlines_use_singular_nouns_and_fixed_point(budget: Budget, ok: bool, expected: str) -> None:
    (verdict,) = evaluate(budget, one_call(ok), PRICES)
    assert expected in verdict.headline, verdict.headline
    assert not re.search(r"\b1 (calls|errors|tokens|input tokens|output tokens)\b", verdict.headline)
    assert "e-0" not in verdict.headline


def test_cost_tracker_texts_read_well() -> None:
    tracker = CostTracker({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}})
    tracker.record("F", "gpt-4o", 1, 1)
    assert tracker.total.describe() == "$0.0000125 over 1 call"
    tracker.record("F", "llama", 1, 1)
    assert tracker.total.describe() == "unknown: 1 call to unpriced model 'llama' (the 1 priced call costs $0.0000125)"
