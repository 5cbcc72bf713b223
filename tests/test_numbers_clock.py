"""Durations are range-checked where they are taken: no bare OverflowError (issue 11)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from pytest_baml_telemetry.clock import (
    VirtualClock,
    format_duration_ns,
    parse_duration,
    parse_duration_ns,
    parse_timeout,
)
from pytest_baml_telemetry.contract import MAX_NATIVE

TOO_LONG = [
    1e300,
    1e10,  # 317 years
    float("inf"),
    10**400,
    10**5000,  # too long for repr(): the message still names it
    "9" * 400 + "s",
    "99999999999h",
    timedelta(days=999_999_999),
]


@pytest.mark.parametrize("value", TOO_LONG, ids=lambda v: type(v).__name__)
def test_parse_duration_ns_refuses_durations_beyond_max_native(value):
    with pytest.raises(ValueError, match=r"^respond\(latency\)=.* is too long; expected a duration of at most"):
        parse_duration_ns(value, name="respond(latency)")
    with pytest.raises(ValueError, match="too long"):
        parse_duration(value, name="x")


@pytest.mark.parametrize("value", [float("nan"), float("-inf"), -1, -(10**400), "-1s"])
def test_parse_duration_ns_refuses_nan_and_negative(value):
    with pytest.raises(ValueError, match=r"^after="):
        parse_duration_ns(value, name="after")


def test_the_message_names_the_value():
    with pytest.raises(ValueError) as info:
        parse_duration_ns(1e300, name="timeout(after)")
    assert "timeout(after)=1e+300" in str(info.value) and "292 years" in str(info.value)
    with pytest.raises(ValueError) as info:
        parse_duration_ns(10**400, name="k")
    assert "k=<int of about 401 digits>" in str(info.value)


def test_parse_duration_ns_accepts_up_to_max_native():
    assert parse_duration_ns(MAX_NATIVE // 10**9) == MAX_NATIVE // 10**9 * 10**9
    assert parse_duration_ns(timedelta(days=365 * 292)) == 365 * 292 * 86_400 * 10**9
    assert parse_duration_ns("850ms") == 850_000_000
    assert parse_duration_ns(0.25) == 250_000_000
    with pytest.raises(ValueError, match="too long"):
        parse_duration_ns(MAX_NATIVE // 10**9 + 1)


@pytest.mark.parametrize("value", TOO_LONG, ids=lambda v: type(v).__name__)
def test_parse_timeout_makes_huge_values_infinite(value):
    assert parse_timeout(value, name="timeout") == math.inf


def test_parse_timeout_keeps_finite_values_and_refuses_bad_ones():
    assert parse_timeout("850ms", name="timeout") == 0.85
    assert parse_timeout(2, name="timeout") == 2.0
    assert parse_timeout(0, name="timeout") == 0.0
    for bad in (float("nan"), -1, "-2s"):
        with pytest.raises(ValueError, match=r"^wait_for\(timeout\)="):
            parse_timeout(bad, name="wait_for(timeout)")
    for bad in (True, None, "soon"):
        with pytest.raises((TypeError, ValueError), match=r"^wait_for\(timeout\)="):
            parse_timeout(bad, name="wait_for(timeout)")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", TOO_LONG[:4], ids=lambda v: type(v).__name__)
def test_virtual_clock_advance_and_sleep_are_range_checked(value):
    clock = VirtualClock()
    with pytest.raises(ValueError, match=r"VirtualClock\.advance\(duration\)=.*too long"):
        clock.advance(value)
    with pytest.raises(ValueError, match=r"VirtualClock\.sleep\(duration\)=.*too long"):
        clock.sleep(value)
    assert clock.elapsed_ns == 0


def test_virtual_clock_readings_never_leave_the_int64_range():
    clock = VirtualClock()
    clock.advance("200h")
    with pytest.raises(ValueError, match=r"keeps the clock within 9223372036854775807 ns"):
        clock.advance(9e9)  # under MAX_NATIVE on its own, over it added to the readings
    with pytest.raises(ValueError, match="keeps the clock within"):
        clock.advance_ns(MAX_NATIVE)
    assert clock.elapsed_ns == 200 * 3600 * 10**9  # a refused step does not move the clock
    assert clock.time_ns() <= MAX_NATIVE and clock.monotonic_ns() <= MAX_NATIVE
    with pytest.raises(ValueError, match="start_time"):
        VirtualClock(start_time=MAX_NATIVE + 1)
    edge = VirtualClock(start_time=0, start_monotonic=0)
    assert edge.advance_ns(MAX_NATIVE) == MAX_NATIVE


def test_format_duration_ns_never_scientific():
    assert format_duration_ns(720_000 * 10**9) == "720000s"
    assert format_duration_ns(2_500_000_000) == "2.5s"
    assert "e+" not in format_duration_ns(MAX_NATIVE)
