"""Clocks and duration parsing shared by every option that takes a duration.

A *clock* is any object with ``time_ns()`` and ``monotonic_ns()``. :data:`SYSTEM_CLOCK`
reads the real clocks; :class:`VirtualClock` is advanced by hand (or by scripted
latency in the fakes) so that a "30 s timeout" costs microseconds of real time.

Rules: every option that takes a duration goes through :func:`parse_duration_ns`; times
are whole nanoseconds; the unit sizes come from ``contract.TIME_UNITS``.
"""

from __future__ import annotations

import math
import re
import threading
import time
from datetime import timedelta
from typing import Protocol, Union, runtime_checkable

from ._validate import check_bool, is_count, short_number_repr, short_repr
from .contract import MAX_NATIVE, TIME_UNITS

__all__ = [
    "Clock",
    "DurationLike",
    "SystemClock",
    "SYSTEM_CLOCK",
    "VirtualClock",
    "parse_duration",
    "parse_duration_ns",
    "parse_timeout",
    "format_duration_ns",
]

DurationLike = Union[str, int, float, timedelta]
"""A duration: ``"850ms"``, ``"2s"``, ``"1m"``, ``"250us"``, a ``timedelta`` or seconds."""


@runtime_checkable
class Clock(Protocol):
    """What the emitter and the fakes need from a clock."""

    def time_ns(self) -> int: ...

    def monotonic_ns(self) -> int: ...


class SystemClock:
    """The real clocks: :func:`time.time_ns` and :func:`time.monotonic_ns`."""

    __slots__ = ()
    is_virtual = False

    time_ns = staticmethod(time.time_ns)
    monotonic_ns = staticmethod(time.monotonic_ns)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()

_UNITS_NS = {
    "ns": TIME_UNITS["nanosecond"],
    "us": TIME_UNITS["microsecond"],
    "µs": TIME_UNITS["microsecond"],
    "ms": TIME_UNITS["millisecond"],
    "s": TIME_UNITS["second"],
    "m": 60 * TIME_UNITS["second"],
    "min": 60 * TIME_UNITS["second"],
    "h": 3_600 * TIME_UNITS["second"],
}
"""The units of a duration string, in nanoseconds."""
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ns|us|µs|ms|s|min|m|h)\s*$")
_EXPECTED = (
    'a duration such as "850ms", "2s", "1m", "250us", a datetime.timedelta, '
    "or a non-negative number of seconds"
)


_MAX_TEXT = f"{MAX_NATIVE / 1_000_000_000:.0f}s (about 292 years)"
"""The longest duration, as the messages write it."""


def _parse_ns(value: DurationLike, name: str, *, timeout: bool) -> int | None:
    """``value`` in whole nanoseconds, or ``None`` for "beyond ``MAX_NATIVE``" when ``timeout``.

    Every failure is a ``TypeError`` or ``ValueError`` naming ``name`` and the value; the
    conversion never overflows (a float is range-checked before it is rounded to an int).
    """
    if isinstance(value, bool):
        raise TypeError(f"{name}={value!r} is not a duration; expected {_EXPECTED}")
    ns: int | float
    if isinstance(value, timedelta):
        ns = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    elif isinstance(value, int):
        ns = value * 1_000_000_000  # exact: never overflows
    elif isinstance(value, float):
        if value != value:
            raise ValueError(f"{name}={value!r} is not a number; expected {_EXPECTED}")
        ns = value * 1_000_000_000  # may be inf: checked below, before round()
    elif isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match is None:
            raise ValueError(f"{name}={short_number_repr(value)} is not a duration; expected {_EXPECTED}")
        number, unit = match.groups()
        ns = float(number) * _UNITS_NS[unit]  # "999...9s" is inf here: checked below
    else:
        raise TypeError(
            f"{name}={short_number_repr(value)} ({type(value).__name__}) is not a duration; expected {_EXPECTED}"
        )
    if ns < 0:
        raise ValueError(f"{name}={short_number_repr(value)} is negative; expected {_EXPECTED}")
    if ns > MAX_NATIVE:
        if timeout:
            return None
        raise ValueError(f"{name}={short_number_repr(value)} is too long; expected a duration of at most {_MAX_TEXT}")
    return ns if type(ns) is int else round(ns)


def parse_duration_ns(value: DurationLike, *, name: str = "duration") -> int:
    """Return ``value`` as a whole number of nanoseconds, from 0 to ``contract.MAX_NATIVE``.

    Raises ``TypeError`` or ``ValueError`` naming ``name`` and the bad value when
    ``value`` is not a non-negative duration, is NaN or infinite, or is longer than
    ``MAX_NATIVE`` nanoseconds (about 292 years: ``1e300``, ``"999...9s"``). It never
    raises ``OverflowError``.
    """
    ns = _parse_ns(value, name, timeout=False)
    assert ns is not None
    return ns


def parse_duration(value: DurationLike, *, name: str = "duration") -> float:
    """Return ``value`` as a number of seconds (see :func:`parse_duration_ns`)."""
    return parse_duration_ns(value, name=name) / 1_000_000_000


def parse_timeout(value: DurationLike, *, name: str = "timeout") -> float:
    """Return a timeout in seconds; ``math.inf`` when it is "effectively infinite".

    For a wait where waiting forever makes sense. Takes what :func:`parse_duration_ns`
    takes, and also durations longer than ``MAX_NATIVE`` nanoseconds (about 292 years) —
    ``1e300``, ``float("inf")``, ``10**400``, ``"999...9s"`` — which all give ``math.inf``.
    Negative values, NaN and values that are not durations raise ``TypeError`` or
    ``ValueError`` naming ``name`` and the value.
    """
    ns = _parse_ns(value, name, timeout=True)
    return math.inf if ns is None else ns / 1_000_000_000


def format_duration_ns(ns: int | float) -> str:
    """Format nanoseconds for humans: ``"850ms"``, ``"2s"``, ``"1.25s"``, ``"12.3us"``."""
    if ns >= 1_000_000_000:
        seconds = ns / 1_000_000_000
        return f"{seconds:.4g}s" if seconds < 10_000 else f"{seconds:.0f}s"  # never "1.2e+04s"
    if ns >= 1_000_000:
        return f"{ns / 1_000_000:.4g}ms"
    if ns >= 1_000:
        return f"{ns / 1_000:.4g}us"
    return f"{int(ns)}ns"


class VirtualClock:
    """A clock that only moves when told to.

    ``advance(duration)`` moves both the wall and monotonic readings forward. With
    ``real_sleep=True`` the fakes also sleep for real for each scripted latency, for
    code that needs wall-clock behaviour (the virtual readings still advance exactly).

    Thread-safe. The wall clock starts at ``start_time`` (default 2026-01-01T00:00:00Z)
    and the monotonic clock at ``start_monotonic``.
    """

    is_virtual = True

    def __init__(
        self,
        *,
        start_time: int = 1_767_225_600_000_000_000,
        start_monotonic: int = 1_000_000_000,
        real_sleep: bool = False,
    ) -> None:
        for label, v in (("start_time", start_time), ("start_monotonic", start_monotonic)):
            if not is_count(v) or v > MAX_NATIVE:
                raise ValueError(
                    f"VirtualClock({label}={short_repr(v)}): expected a non-negative int of nanoseconds"
                    f" <= {MAX_NATIVE}"
                )
        check_bool(real_sleep, f"VirtualClock(real_sleep={real_sleep!r})")
        self._offset = 0
        # The readings stay within contract.MAX_NATIVE (the int64 range every recorder holds).
        self._max_offset = MAX_NATIVE - max(int(start_time), int(start_monotonic))
        self._start_time = start_time
        self._start_monotonic = start_monotonic
        self.real_sleep = real_sleep
        self._lock = threading.Lock()
        # bound once: acquire/release cost less than ``with`` on the fakes' per-call path
        self._acquire = self._lock.acquire
        self._release = self._lock.release

    def time_ns(self) -> int:
        return self._start_time + self._offset

    def monotonic_ns(self) -> int:
        return self._start_monotonic + self._offset

    @property
    def elapsed_ns(self) -> int:
        """Nanoseconds the clock has been advanced in total."""
        return self._offset

    def advance(self, duration: DurationLike) -> int:
        """Move the clock forward by ``duration``; return the new monotonic reading.

        Raises ``ValueError`` naming the value for a duration :func:`parse_duration_ns`
        refuses, or one that would take a reading beyond ``contract.MAX_NATIVE``.
        """
        return self.advance_ns(parse_duration_ns(duration, name="VirtualClock.advance(duration)"))

    def advance_ns(self, ns: int) -> int:
        """Move the clock forward by ``ns`` nanoseconds; return the new monotonic reading."""
        if type(ns) is not int or ns < 0:  # the fakes' hot path: plain ints pass on one test
            if not is_count(ns):
                raise ValueError(f"VirtualClock.advance_ns({short_repr(ns)}): expected a non-negative int")
            ns = int(ns)
        self._acquire()
        try:
            offset = self._offset + ns
            if offset > self._max_offset:
                raise ValueError(
                    f"VirtualClock.advance_ns({short_repr(ns)}): expected a step that keeps the clock"
                    f" within {MAX_NATIVE} ns (contract.MAX_NATIVE, about 292 years); it has been"
                    f" advanced {format_duration_ns(self._offset)} and can move"
                    f" {format_duration_ns(self._max_offset - self._offset)} more"
                )
            self._offset = offset
            return self._start_monotonic + offset
        finally:
            self._release()

    def sleep(self, duration: DurationLike) -> None:
        """Advance by ``duration``; also sleep for real when ``real_sleep`` is set."""
        ns = parse_duration_ns(duration, name="VirtualClock.sleep(duration)")
        self.advance_ns(ns)
        if self.real_sleep and ns:
            time.sleep(ns / 1_000_000_000)

    def __repr__(self) -> str:
        return f"VirtualClock(elapsed={format_duration_ns(self._offset)})"

