"""One series of the aggregator: the numbers recorded for one ``(function_name, model)``.

A :class:`Series` holds numbers only (durations as ``array('q')`` of nanoseconds, the
times to first chunk of its successful streams likewise, additive :data:`COUNTERS`, the
few worst calls, a sample of test ids, the provider that served it); the aggregator
records into it and the views read it. It knows neither the aggregator nor the views.

Durations are recorded unsorted into :attr:`Series.buf` and sorted once, when first read
(:meth:`Series.seal`), into runs of at most :data:`_CHUNK` values that later reads reuse.
:func:`sort_run` sorts a run in place: non-negative int64 values below ``0x7F00 << 48``
(about 290 years in ns) order exactly as their bits read as IEEE 754 doubles do, and
CPython sorts floats about twice as fast as ints wider than 30 bits; any other run is
sorted as ints. No value is ever converted, so every figure stays exact.
"""

from __future__ import annotations

import sys
from array import array
from bisect import insort
from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["COUNTERS", "Series", "SeriesKey", "SeriesSource", "has_negative", "key_order", "sample_add", "sort_run"]

SeriesKey = tuple[str, "str | None"]
"""``(function_name, model)``: what a series is recorded under."""

_CHUNK = 1 << 12  # durations are sorted in runs of at most this many (bounds peak memory; a run is sorted within the CPU cache)

_HIGH = 7 if sys.byteorder == "little" else 0  # the index of an int64's most significant byte
_FLOAT_ORDERED = bytes(range(0x7F))
"""The most significant bytes of the int64 values whose bits, read as a double, are a finite
non-negative float ordered as the ints are (0 to ``0x7EFF_FFFF_FFFF_FFFF``)."""

COUNTERS = (
    "ok",
    "errors",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "unknown_input",
    "unknown_output",
    "unknown_calls",
    "streams",
)
"""The additive counters of a series (merged by addition, sent in the payload)."""


def key_order(key: SeriesKey) -> tuple[str, bool, str]:
    """Sort key of a series: by function, then model, the calls without a model last."""
    return (key[0], key[1] is None, key[1] or "")


def sample_add(sample: list[str], test_id: str, n: int) -> None:
    """Keep ``sample`` the ``n`` smallest distinct test ids (order-independent)."""
    if test_id in sample:
        return
    if len(sample) < n:
        insort(sample, test_id)
    elif sample and test_id < sample[-1]:
        sample.pop()
        insort(sample, test_id)


def sort_run(values: array) -> array:
    """Sort ``values`` (an ``array('q')`` the caller owns) in place and return it.

    When every value is in ``0 .. 0x7EFF_FFFF_FFFF_FFFF`` the run is sorted as the doubles
    its bits spell (the same order, no value converted); otherwise as ints.
    """
    if len(values) < 2:
        return values
    with memoryview(values) as m, m.cast("B") as raw:
        if not bytes(raw[_HIGH::8]).translate(None, _FLOAT_ORDERED):
            with raw.cast("d") as as_float:
                floats = as_float.tolist()
                floats.sort()
                as_float[:] = array("d", floats)
            return values
    values[:] = array("q", sorted(values))
    return values


_NON_NEGATIVE = bytes(range(0x80))
"""The most significant bytes of the non-negative int64 values."""


def has_negative(values: array) -> bool:
    """Whether an ``array('q')`` holds a value below 0 (read from its sign bytes, not value by value)."""
    with memoryview(values) as m, m.cast("B") as raw:
        return bool(bytes(raw[_HIGH::8]).translate(None, _NON_NEGATIVE))


class Series:
    """Everything recorded for one ``(function_name, model)``: numbers only."""

    __slots__ = (
        "function_name", "model", "provider", "buf", "runs", "run_total", "ttfc", "ttfc_sorted", *COUNTERS,
        "unknown_tests", "error_tests", "slowest", "heaviest", "slowest_ttfc",
    )

    def __init__(self, function_name: str, model: str | None) -> None:
        self.function_name = function_name
        self.model = model
        self.buf = array("q")  # unsorted durations (ns) recorded since the last seal
        self.runs: list[array] = []  # sorted, non-empty runs of durations
        self.run_total = 0  # the sum of the durations in runs (kept by seal() and merge)
        self.provider: str | None = None
        """The BAML provider that served the calls (the smallest name when several did): prices are looked up with it."""
        self.ttfc = array("q")  # time to first chunk (ns) of each successful stream that had one
        self.ttfc_sorted = 0  # len(ttfc) when it was last sorted (appending makes it unsorted)
        self.streams = 0  # successful streams (with or without a first chunk)
        self.ok = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_input_tokens = 0
        self.unknown_input = 0
        self.unknown_output = 0
        self.unknown_calls = 0
        self.unknown_tests: list[str] = []
        self.error_tests: list[str] = []
        # min-heaps of the N largest entries; entries are totally ordered tuples so the
        # kept set does not depend on the order calls arrive in (xdist == no xdist).
        # slowest:  (duration_ns, test_id or "", ok, input or -1, output or -1)
        # heaviest: (total_tokens, duration_ns, test_id or "", ok, input, output)
        self.slowest: list[tuple[int, str, int, int, int]] = []
        self.heaviest: list[tuple[int, int, str, int, int, int]] = []
        # slowest_ttfc: (time_to_first_chunk_ns, test_id or "") of the streams whose first chunk came last
        self.slowest_ttfc: list[tuple[int, str]] = []

    @property
    def calls(self) -> int:
        return self.ok + self.errors

    def seal(self) -> list[array]:
        """Sort pending durations into runs of at most :data:`_CHUNK` (once: later reads reuse them).

        Runs are cut from the end of :attr:`buf`, which shrinks as they are made, so sealing
        holds at most one run more than the durations themselves. A short last run is merged
        into the one before while they fit in a run (reads between records stay cheap).
        """
        buf = self.buf
        if buf:
            chunk = _CHUNK
            runs = self.runs
            total = self.run_total
            while buf:
                run = buf[-chunk:]
                del buf[-chunk:]
                total += sum(run)
                runs.append(sort_run(run))
            while len(runs) > 1 and len(runs[-1]) + len(runs[-2]) <= chunk:
                last = runs.pop()
                runs[-1] = sort_run(runs[-1] + last)
            self.run_total = total
            self.buf = array("q")
        return self.runs

    def sorted_ttfc(self) -> array:
        """The times to first chunk, sorted in place (once: until more are recorded)."""
        t = self.ttfc
        if len(t) != self.ttfc_sorted:
            sort_run(t)
            self.ttfc_sorted = len(t)
        return t

    def all_durations(self) -> array:
        out = array("q")
        for r in self.runs:
            out.extend(r)
        out.extend(self.buf)
        return out

    def needs_price(self) -> bool:
        """Whether costing this series needs a price: calls that succeeded, tokens, or failed
        calls with unknown tokens (a series of failures known not billed, 0/0, costs $0 unpriced)."""
        return self.ok > 0 or self.input_tokens > 0 or self.output_tokens > 0 or self.unknown_calls > 0


class SeriesSource(Protocol):
    """What a view reads series from (the :class:`~pytest_baml_telemetry.budgets.aggregate.Aggregator`)."""

    worst_n: int
    sample_n: int

    def select(self, keep: Callable[[SeriesKey], bool] | None = None) -> list[Series]: ...
    def sealed_runs(self, series: Iterable[Series]) -> list[array]: ...
    def sealed_ttfc(self, series: Iterable[Series]) -> list[array]: ...
