"""Budget values are range-checked where they are taken (issue 11, "No overflow anywhere").

A ``ValueError`` naming the key and the value for ``Budget(...)``; exit code 4 naming the
file for a budget file; a test failure naming ``@pytest.mark.baml_budget`` for a marker.
Never an ``OverflowError``, a traceback or an INTERNALERROR.
"""

from __future__ import annotations

import textwrap
from fractions import Fraction

import pytest

from pytest_baml_telemetry.budgets import Budget
from pytest_baml_telemetry.budgets.limits import LIMITS, MAX_COUNT, MAX_USD

HUGE = 10**400

BAD = [
    ("p95", HUGE, "p95=<int of about 401 digits> is too long"),
    ("p95", 1e300, "p95=1e+300 is too long"),
    ("max_latency", "9" * 400 + "s", "max_latency='999"),
    ("p50", float("inf"), "p50=inf is too long"),
    ("p99", float("nan"), "p99=nan"),
    ("max_cost_usd", HUGE, "max_cost_usd=<int of about 401 digits>: expected USD"),
    ("max_cost_usd", 1e300, "max_cost_usd=1e+300: expected USD"),
    ("max_cost_usd", float("inf"), "max_cost_usd=inf: expected USD"),
    ("max_cost_usd", Fraction(HUGE), "max_cost_usd=Fraction("),
    ("max_error_rate", HUGE, "max_error_rate=<int of about 401 digits>: expected a fraction"),
    ("max_error_rate", -HUGE, "max_error_rate=<int of about 401 digits>: expected a fraction"),
    ("max_error_rate", float("nan"), "max_error_rate=nan: expected a fraction"),
    ("max_calls", HUGE, "max_calls=<int of about 401 digits>: expected a whole number of calls"),
    ("max_calls", 10**5000, "max_calls=<int of about 5001 digits>"),  # too long for repr()
    ("max_errors", MAX_COUNT + 1, f"max_errors={MAX_COUNT + 1}: expected"),
    ("max_total_tokens", HUGE, "max_total_tokens=<int of about 401 digits>"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[f"{k}-{type(v).__name__}" for k, v, _ in BAD])
def test_budget_refuses_out_of_range_values_naming_key_and_value(key, value, message):
    with pytest.raises(ValueError) as info:
        Budget(**{key: value})
    assert str(info.value).startswith(message), str(info.value)
    with pytest.raises(ValueError):
        LIMITS[key].parse(value)


def test_the_largest_values_are_accepted():
    b = Budget(max_calls=MAX_COUNT, max_cost_usd=MAX_USD, max_error_rate=1, p95=9_000_000_000)
    assert b.to_mapping()["max_calls"] == MAX_COUNT
    with pytest.raises(ValueError, match="max_cost_usd"):
        Budget(max_cost_usd=MAX_USD * 2)


# ------------------------------------------------------------------ real sessions

TEST_FILE = textwrap.dedent(
    """
    import pytest

    def test_a():
        pass
    """
)


@pytest.mark.parametrize(
    "toml",
    [
        "p95 = 1e300",
        "p95 = 1e400",  # inf in TOML
        "max_latency = 'inf'",
        "p99 = nan",
        "max_cost_usd = 1e400",
        "max_cost_usd = 1e300",
        "max_error_rate = 1e400",
        "max_calls = 9223372036854775808",
        "max_total_tokens = 99999999999999999999999999999999999999",
    ],
)
def test_budget_file_values_out_of_range_are_usage_errors(pytester: pytest.Pytester, toml: str) -> None:
    pytester.makefile(".toml", budgets=f"[[budget]]\nname = 'suite'\n{toml}\n")
    pytester.makepyfile(test_a=TEST_FILE)
    result = pytester.runpytest_subprocess("--baml-budgets=budgets.toml", "-p", "no:randomly")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    key = toml.split(" = ")[0]
    result.stderr.fnmatch_lines([f"*budgets.toml*{key}*"])
    assert "INTERNALERROR" not in out and "Traceback" not in out and "OverflowError" not in out


@pytest.mark.parametrize(
    ("marker", "shown"),
    [
        ("p95=10**400", "p95=<int of about 401 digits>"),
        ("p95=1e300", "p95=1e+300"),
        ("max_latency='9' * 400 + 's'", "max_latency='999"),
        ("max_cost_usd=10**400", "max_cost_usd=<int of about 401 digits>"),
        ("max_error_rate=10**400", "max_error_rate=<int of about 401 digits>"),
        ("max_calls=10**400", "max_calls=<int of about 401 digits>"),
    ],
)
def test_budget_marker_values_out_of_range_fail_the_test(pytester: pytest.Pytester, marker: str, shown: str) -> None:
    pytester.makepyfile(
        test_a=textwrap.dedent(
            f"""
            import pytest

            @pytest.mark.baml_budget({marker})
            def test_marked():
                pass

            def test_other():
                pass
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*invalid @pytest.mark.baml_budget*", f"*{shown}*".replace("[", "[[]")])
    assert "INTERNALERROR" not in out and "OverflowError" not in out
