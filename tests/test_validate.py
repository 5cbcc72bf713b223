"""The shared argument checks: each returns the value or names the bad value and what was expected."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from pytest_baml_telemetry import _validate as v
from pytest_baml_telemetry.stats import kth_smallest, percentile, rank


@pytest.mark.parametrize("value", [0, 1, 10**30])
def test_counts(value: int) -> None:
    assert v.is_count(value) and v.is_int(value) and v.is_number(value)
    assert v.check_count(value, "f(n=...)") == value


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_bools_floats_and_strings_are_not_ints(value: object) -> None:
    assert not v.is_int(value)
    with pytest.raises(TypeError, match=r"^f\(n\): expected an int >= 0$"):
        v.check_count(value, "f(n)")


def test_int_ranges_name_the_bounds() -> None:
    with pytest.raises(ValueError, match=r"^port=70000: expected an int from 0 to 65535$"):
        v.check_int(70000, "port=70000", minimum=0, maximum=65535)
    with pytest.raises(ValueError, match=r"^n=-1: expected an int >= 0 or None$"):
        v.check_count(-1, "n=-1", optional=True)
    assert v.check_count(None, "n", optional=True) is None
    with pytest.raises(ValueError, match=r"^x: expected a count$"):
        v.check_count(-1, "x", expected="a count")


def test_bools() -> None:
    assert v.check_bool(True, "x") is True
    for bad in (1, 0, "yes", None):
        with pytest.raises(TypeError, match=r"^Emitter\(enabled=.*\): expected True or False$"):
            v.check_bool(bad, f"Emitter(enabled={bad!r})")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_numbers_are_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="expected a finite number"):
        v.check_number(bad, "x")


def test_numbers_too_large_for_a_float_are_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"^x: expected a finite number$"):
        v.check_number(10**400, "x")
    with pytest.raises(ValueError, match="expected a number from 0 to 1"):
        v.check_number(Fraction(10**400, 3), "x", minimum=0, maximum=1)


def test_number_bounds() -> None:
    assert v.check_number(Fraction(1, 2), "x", minimum=0, maximum=1) == Fraction(1, 2)
    with pytest.raises(ValueError, match="expected a number > 0"):
        v.check_number(0, "x", positive=True)
    with pytest.raises(TypeError, match="expected a number from 0 to 1"):
        v.check_number(True, "x", minimum=0, maximum=1)
    with pytest.raises(ValueError, match="expected a number from 0 to 1"):
        v.check_number(1.5, "x", minimum=0, maximum=1)


def test_strings_choices_mappings_callables() -> None:
    assert v.check_str("a", "s") == "a"
    assert v.check_str("", "s", empty=True) == ""
    with pytest.raises(ValueError, match="expected a non-empty str"):
        v.check_str("", "s")
    with pytest.raises(TypeError, match="expected a str or None"):
        v.check_str(3, "s", empty=True, optional=True)
    assert v.check_choice("a", ("a", "b"), "c") == "a"
    with pytest.raises(ValueError, match=r"^c: expected one of 'a', 'b'$"):
        v.check_choice("z", ("a", "b"), "c")
    with pytest.raises(ValueError, match="expected one of"):
        v.check_choice([], {"a"}, "c")  # unhashable: refused, not a TypeError from `in`
    with pytest.raises(TypeError, match="expected a mapping or None"):
        v.check_mapping([], "m", optional=True)
    with pytest.raises(TypeError, match="expected a callable"):
        v.check_callable(3, "f")
    with pytest.raises(TypeError, match=r"^marker: unknown option 'colour': expected one of a, b$"):
        v.reject_unknown(["a", "colour"], ["b", "a"], "marker")


def test_short_repr_cuts_and_survives_broken_reprs() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert v.short_repr("x" * 10, 8) == "'xxxx..."
    assert len(v.short_repr("x" * 1000)) == 200
    assert v.short_repr(Broken()).startswith("<unrepresentable Broken")


def test_call_check_drops_the_inner_traceback() -> None:
    def check(x: object) -> object:
        raise ValueError(f"x={x!r}: expected 1")

    with pytest.raises(ValueError, match=r"x=2: expected 1") as info:
        v.call_check(check, 2)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_nearest_rank() -> None:
    values = [1, 2, 3, 4]
    assert [percentile(values, p) for p in (0, 25, 50, 75, 99.9, 100)] == [1, 1, 2, 3, 4, 4]
    assert percentile([], 50) is None
    assert rank(99.9, 1000) == 999  # the decimal as written, not the binary float
    assert kth_smallest([[1, 4, 9], [2, 3]], 3) == 3
    with pytest.raises(ValueError, match="from 0 to 100"):
        percentile([], 101)
    with pytest.raises(TypeError, match="is not a number"):
        percentile(values, True)
