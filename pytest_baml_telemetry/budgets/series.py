"""One series of the aggregator: the numbers recorded for one ``(function_name, model)``.

A :class:`Series` holds numbers only (durations as ``array('q')`` of nanoseconds, the
times to first chunk of its successful streams likewise, additive :data:`COUNTERS`, the
few worst calls, a sample of test ids, the provider that served it); the aggregator
records into it and the views read it. It knows neither the aggregator nor the views.
"""

from __future__ import annotations

from array import array
from bisect import insort
from collections.abc import Callable, Iterable
from typing import Protocol

__all__ = ["COUNTERS", "Series", "SeriesKey", "SeriesSource", "key_order", "sample_add"]

SeriesKey = tuple[str, "str | None"]
"""``(function_name, model)``: what a series is recorded under."""

_CHUNK = 1 << 16  # durations are sorted in runs of at most this many (bounds peak memory)

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


class Series:
    """Everything recorded for one ``(function_name, model)``: numbers only."""

    __slots__ = (
        "function_name", "model", "provider", "buf", "runs", "ttfc", *COUNTERS,
        "unknown_tests", "error_tests", "slowest", "heaviest", "slowest_ttfc",
    )

    def __init__(self, function_name: str, model: str | None) -> None:
        self.function_name = function_name
        self.model = model
        self.buf = array("q")  # unsorted durations (ns) recorded since the last seal
        self.runs: list[array] = []  # sorted, non-empty runs of durations
        self.provider: str | None = None
        """The BAML provider that served the calls (the smallest name when several did): prices are looked up with it."""
        self.ttfc = array("q")  # time to first chunk (ns) of each successful stream that had one
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
        """Sort pending durations into runs (in chunks, to bound peak memory)."""
        buf = self.buf
        if buf:
            for i in range(0, len(buf), _CHUNK):
                self.runs.append(array("q", sorted(buf[i : i + _CHUNK])))
            self.buf = array("q")
        return self.runs

    def sorted_ttfc(self) -> array:
        """The times to first chunk, sorted in place (cheap when they already are)."""
        t = self.ttfc
        if len(t) > 1:
            t = self.ttfc = array("q", sorted(t))
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
