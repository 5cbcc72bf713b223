"""Costs stay finite: a price that could make a cost infinite is refused when loaded (issue 11)."""

from __future__ import annotations

import math
import textwrap

import pytest

from pytest_baml_telemetry.budgets import BudgetConfigError, PriceTable
from pytest_baml_telemetry.budgets.limits import MAX_COUNT
from pytest_baml_telemetry.budgets.prices import MAX_PRICE_PER_MTOK, ModelPrice

BAD_PRICES = [1e308, 1e10, float("inf"), float("nan"), 10**400, -(10**400), 10**5000]


@pytest.mark.parametrize("value", BAD_PRICES, ids=["1e308", "1e10", "inf", "nan", "10**400", "-10**400", "10**5000"])
@pytest.mark.parametrize("key", ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok"])
def test_a_price_that_could_overflow_is_refused_naming_model_and_key(key, value):
    spec = {"input_per_mtok": 1, "output_per_mtok": 1, key: value}
    with pytest.raises(BudgetConfigError) as info:
        PriceTable({"gpt-4o": spec})
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert '[models."gpt-4o"]' in message and f"{key} = " in message, message
    assert "a finite number from 0 to 1,000,000,000" in message


def test_the_largest_price_keeps_every_cost_finite():
    table = PriceTable({"m": {"input_per_mtok": MAX_PRICE_PER_MTOK, "output_per_mtok": MAX_PRICE_PER_MTOK}})
    cost = table.cost("m", MAX_COUNT, MAX_COUNT)
    assert cost is not None and math.isfinite(cost)
    assert math.isfinite(cost * 10**6)  # a million such calls summed: still finite
    assert table.price("m") == ModelPrice(1e9, 1e9)


@pytest.mark.parametrize(
    "line",
    ["output_per_mtok = 1e308", "output_per_mtok = inf", "output_per_mtok = nan", "output_per_mtok = 1e400"],
)
def test_a_price_file_with_such_a_price_is_a_usage_error(pytester: pytest.Pytester, line: str) -> None:
    pytester.makefile(".toml", prices=f'[models."gpt-4o"]\ninput_per_mtok = 2.5\n{line}\n')
    pytester.makepyfile(test_a=textwrap.dedent("def test_a():\n    pass\n"))
    result = pytester.runpytest_subprocess("--baml-prices=prices.toml", "-p", "no:randomly")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    result.stderr.fnmatch_lines(['*prices.toml*models."gpt-4o"*output_per_mtok*'.replace("[", "[[]")])
    assert "INTERNALERROR" not in out and "Traceback" not in out
