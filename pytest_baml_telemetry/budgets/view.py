"""Reading the aggregator: :class:`CallStats` (a live, filtered view), :class:`Cost`, :class:`WorstCall`.

A view holds no numbers of its own: every property reads the aggregator's series again,
so calls recorded later are included. Views never record and never raise on an empty set
of calls (a percentile, mean or rate over no calls is ``None``).

**Percentiles** are exact *nearest-rank* percentiles over every call in scope, successful
or not (:mod:`pytest_baml_telemetry.stats`): for ``n`` sorted durations the ``p``-th
percentile is the value at 1-based rank ``ceil(p / 100 * n)`` (rank 1 when that is 0, so
``p=0`` is the minimum and ``p=100`` the maximum). It is always one of the measured
values, never an interpolation; ``p`` is read as the decimal it is written as.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from .._validate import check_choice, fail, short_repr
from ..clock import format_duration_ns
from ..stats import kth_smallest, rank
from .series import Series, SeriesKey, SeriesSource
from .text import model_label

if TYPE_CHECKING:
    from .prices import PriceTable

__all__ = [
    "CallStats",
    "Cost",
    "Filter",
    "WorstCall",
    "matches_filter",
    "normalize_filter",
]

Filter = Union[str, "tuple[str, ...]", None]
"""A function or model filter: ``None`` (anything), a str (equal) or a tuple of str (any of)."""


_UNKNOWN = {"any": "unknown_calls", "input": "unknown_input", "output": "unknown_output"}
"""``unknown_token_calls(kind)`` -> the counter of a series it sums."""


def _fmt_opt(v: int | None) -> str:
    return "?" if v is None else str(v)


class WorstCall(NamedTuple):
    """One of the slowest (or most token-hungry) calls, for failure messages."""

    duration_ns: int
    function_name: str
    model: str | None
    test_id: str | None
    ok: bool
    input_tokens: int | None
    output_tokens: int | None

    def describe(self) -> str:
        """One human line: duration, function [model], outcome, tokens, test id."""
        tokens = f"in={_fmt_opt(self.input_tokens)} out={_fmt_opt(self.output_tokens)}"
        where = self.test_id if self.test_id else "(test unknown)"
        return (
            f"{format_duration_ns(self.duration_ns):>9}  {self.function_name} "
            f"[{model_label(self.model)}]  {'ok' if self.ok else 'error'}  {tokens}  {where}"
        )


def normalize_filter(value: Any, name: str) -> Filter:
    """A ``function``/``model`` filter as stored: a str, a tuple of str, or ``None``."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            fail(ValueError, f"{name}={value!r} is empty", "a non-empty str, a list of them, or None")
        return value
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = tuple(value)
        if not items or not all(isinstance(v, str) and v for v in items):
            fail(
                ValueError,
                f"{name}={short_repr(value)} is not a non-empty list of non-empty str",
                "a str, a list of str, or None",
            )
        return items
    fail(TypeError, f"{name}={short_repr(value)} ({type(value).__name__})", "a str, a list of str, or None")


def matches_filter(value: str | None, filt: Filter) -> bool:
    """Whether ``value`` (a function or model name) passes the filter."""
    if filt is None:
        return True
    if isinstance(filt, str):
        return value == filt
    return value in filt


class Cost(NamedTuple):
    """Cost of a set of calls: ``usd`` over the priced ones, and what could not be priced."""

    usd: float
    unpriced: dict[str, int]
    """Unpriced model (``"no model"`` for calls without one) -> number of calls."""
    unknown_token_calls: int
    """Calls (successful or failed) whose input or output tokens are unknown (excluded from ``usd``)."""

    @property
    def complete(self) -> bool:
        """Whether ``usd`` covers every call."""
        return not self.unpriced and not self.unknown_token_calls


class CallStats:
    """A live, read-only view over some series of an :class:`~pytest_baml_telemetry.budgets.aggregate.Aggregator`.

    Durations are in nanoseconds; percentiles are exact nearest-rank (see
    :func:`~pytest_baml_telemetry.stats.percentile`) over successful and failed calls
    alike. The view is live: calls recorded later are included when a property is read again.
    """

    __slots__ = ("_agg", "_conds")

    def __init__(self, aggregator: SeriesSource, conds: tuple = ()) -> None:
        self._agg = aggregator
        # each condition: ("filter", function_filter, model_filter) or ("key", (function, model))
        self._conds = conds

    def _keep(self, key: SeriesKey) -> bool:
        for c in self._conds:
            if c[0] == "key":
                if key != c[1]:
                    return False
            elif not (matches_filter(key[0], c[1]) and matches_filter(key[1], c[2])):
                return False
        return True

    def _series(self) -> list[Series]:
        return self._agg.select(self._keep)

    @property
    def worst_n(self) -> int:
        """How many worst calls the aggregator keeps per series."""
        return self._agg.worst_n

    @property
    def sample_n(self) -> int:
        """How many test ids the aggregator keeps per series as a sample."""
        return self._agg.sample_n

    def filtered(
        self,
        function: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
    ) -> CallStats:
        """This view narrowed further by ``function`` and ``model`` filters.

        A filter is ``None`` (anything), a str (equal) or a collection of str (any of).
        """
        fn, md = normalize_filter(function, "function"), normalize_filter(model, "model")
        if fn is None and md is None:
            return self
        return CallStats(self._agg, (*self._conds, ("filter", fn, md)))

    def groups(self) -> list[tuple[str, str | None, CallStats]]:
        """``(function_name, model, stats)`` for each pair in the view, sorted."""
        return [
            (s.function_name, s.model, CallStats(self._agg, (("key", (s.function_name, s.model)),)))
            for s in self._series()
        ]

    # counts
    @property
    def calls(self) -> int:
        return sum(s.calls for s in self._series())

    @property
    def ok(self) -> int:
        return sum(s.ok for s in self._series())

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self._series())

    @property
    def error_rate(self) -> float | None:
        """``errors / calls``, or ``None`` when there are no calls."""
        series = self._series()
        calls = sum(s.calls for s in series)
        return sum(s.errors for s in series) / calls if calls else None

    # durations
    def _runs(self) -> list[array]:
        return self._agg.sealed_runs(self._series())

    def percentile(self, p: float) -> int | None:
        """Exact nearest-rank ``p``-th percentile of durations in ns; ``None`` if no calls."""
        runs = self._runs()
        n = sum(len(r) for r in runs)
        if n == 0:
            rank(p, 1)  # still validate p
            return None
        return kth_smallest(runs, rank(p, n))

    def percentiles(self, *ps: float) -> dict[float, int | None]:
        """``{p: percentile(p)}`` for each ``p``."""
        return {p: self.percentile(p) for p in ps}

    @property
    def max_ns(self) -> int | None:
        runs = self._runs()
        return max(r[-1] for r in runs) if runs else None

    @property
    def min_ns(self) -> int | None:
        runs = self._runs()
        return min(r[0] for r in runs) if runs else None

    @property
    def total_duration_ns(self) -> int:
        return sum(sum(r) for r in self._runs())

    @property
    def mean_ns(self) -> float | None:
        runs = self._runs()
        n = sum(len(r) for r in runs)
        return sum(sum(r) for r in runs) / n if n else None

    def sorted_durations(self) -> array:
        """Every duration in ns, sorted (a copy)."""
        out = array("q")
        for r in self._runs():
            out.extend(r)
        return array("q", sorted(out))

    # time to first chunk (successful streams only)
    @property
    def streams(self) -> int:
        """Successful streaming calls (with or without a first chunk)."""
        return sum(s.streams for s in self._series())

    @property
    def ttfc_count(self) -> int:
        """Successful streams whose time to first chunk is known."""
        return sum(len(s.ttfc) for s in self._series())

    def ttfc_percentile(self, p: float) -> int | None:
        """Exact nearest-rank ``p``-th percentile of the times to first chunk in ns; ``None`` if none."""
        runs = self._agg.sealed_ttfc(self._series())
        n = sum(len(r) for r in runs)
        if n == 0:
            rank(p, 1)  # still validate p
            return None
        return kth_smallest(runs, rank(p, n))

    def slowest_first_chunks(self, n: int | None = None) -> list[tuple[int, str | None, str, str | None]]:
        """``(ttfc_ns, test_id, function, model)`` of the streams whose first chunk came last, slowest first."""
        n = self._agg.worst_n if n is None else n
        entries = [(e, s) for s in self._series() for e in s.slowest_ttfc]
        entries.sort(key=lambda es: es[0], reverse=True)
        return [(e[0], e[1] or None, s.function_name, s.model) for e, s in entries[:n]]

    @property
    def ttfc_max_ns(self) -> int | None:
        """The longest time to first chunk in ns; ``None`` if none."""
        runs = self._agg.sealed_ttfc(self._series())
        return max(r[-1] for r in runs) if runs else None

    # tokens
    @property
    def input_tokens(self) -> int:
        return sum(s.input_tokens for s in self._series())

    @property
    def output_tokens(self) -> int:
        return sum(s.output_tokens for s in self._series())

    @property
    def cached_input_tokens(self) -> int:
        return sum(s.cached_input_tokens for s in self._series())

    @property
    def total_tokens(self) -> int:
        return sum(s.input_tokens + s.output_tokens for s in self._series())

    def unknown_token_calls(self, kind: str = "any") -> int:
        """Calls, successful or failed, with unknown ``"input"``, ``"output"`` or ``"any"`` tokens."""
        attr = _UNKNOWN[check_choice(kind, _UNKNOWN, f"unknown_token_calls(kind={short_repr(kind)})")]
        return sum(getattr(s, attr) for s in self._series())

    def unknown_token_sources(self) -> list[tuple[str, str | None, int, list[str]]]:
        """``(function, model, calls, sample test ids)`` for pairs with unknown-token calls."""
        return [
            (s.function_name, s.model, s.unknown_calls, list(s.unknown_tests))
            for s in self._series()
            if s.unknown_calls
        ]

    def error_sources(self) -> list[tuple[str, str | None, int, list[str]]]:
        """``(function, model, errors, sample test ids)`` for pairs with failed calls."""
        return [
            (s.function_name, s.model, s.errors, list(s.error_tests)) for s in self._series() if s.errors
        ]

    # worst calls (slowest and heaviest read two heaps whose entries differ in layout)
    def slowest(self, n: int | None = None) -> list[WorstCall]:
        """The slowest calls (at most ``worst_n`` of the aggregator), slowest first."""
        n = self._agg.worst_n if n is None else n
        entries = [(e, s) for s in self._series() for e in s.slowest]
        entries.sort(key=lambda es: es[0], reverse=True)
        return [
            WorstCall(
                e[0],
                s.function_name,
                s.model,
                e[1] or None,
                bool(e[2]),
                None if e[3] < 0 else e[3],
                None if e[4] < 0 else e[4],
            )
            for e, s in entries[:n]
        ]

    def heaviest(self, n: int | None = None) -> list[WorstCall]:
        """The calls with the most known tokens (input + output), heaviest first."""
        n = self._agg.worst_n if n is None else n
        entries = [(e, s) for s in self._series() for e in s.heaviest]
        entries.sort(key=lambda es: es[0], reverse=True)
        return [
            WorstCall(e[1], s.function_name, s.model, e[2] or None, bool(e[3]), e[4], e[5])
            for e, s in entries[:n]
        ]

    # cost
    def cost(self, prices: PriceTable | None) -> Cost:
        """Cost over the calls in view (the rules are in :mod:`~pytest_baml_telemetry.budgets.prices`)."""
        usd = 0.0
        unpriced: dict[str, int] = {}
        unknown = 0
        for s in self._series():
            if not s.needs_price():
                continue
            price = prices.price(s.model, s.provider) if (prices is not None and s.model is not None) else None
            if price is None:
                label = model_label(s.model)
                unpriced[label] = unpriced.get(label, 0) + s.calls
                continue
            unknown += s.unknown_calls
            usd += price.cost(s.input_tokens, s.output_tokens, s.cached_input_tokens)
        return Cost(usd, unpriced, unknown)

    def __repr__(self) -> str:
        return f"CallStats({self.calls} calls)"
