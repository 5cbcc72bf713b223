"""The budget keys: one :class:`Limit` entry per key, registered once in :data:`LIMITS`.

An entry holds everything about its key: how a value is parsed (:meth:`Limit.parse`,
raising ``TypeError``/``ValueError`` naming the key and the value), its unit, how it is
measured over a :class:`~pytest_baml_telemetry.budgets.view.CallStats` and judged
(:meth:`Limit.check`, which also picks the worst calls to show), and how a value is
written in messages, in ``Budget.to_mapping`` and in ``repr``. :data:`LIMITS` is in
evaluation order; a limit passes when measured <= limit.

To add a budget key: write (or reuse) a :class:`Limit` subclass and :func:`register` one
instance of it below; ``Budget``, ``evaluate``, the report and the marker help read
:data:`LIMITS` (document the key in the README).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .._validate import check_int, check_number, fail, short_number_repr
from ..clock import format_duration_ns, parse_duration_ns
from ..contract import MAX_NATIVE
from .text import format_usd, model_label

if TYPE_CHECKING:
    from .prices import PriceTable
    from .view import CallStats, WorstCall

__all__ = [
    "BUDGET_KEYS",
    "Check",
    "CostLimit",
    "CountLimit",
    "ErrorRateLimit",
    "LIMITS",
    "LIMIT_KEYS",
    "LatencyLimit",
    "Limit",
    "MAX_COUNT",
    "MAX_USD",
    "Measure",
    "TokenLimit",
    "TtfcLimit",
    "register",
]


class Measure(NamedTuple):
    """What a limit is checked against: the calls in a budget's scope."""

    label: str
    """How messages name the budget (``Budget.label``)."""
    stats: CallStats
    """The calls in scope (the budget's filters applied)."""
    calls: int
    prices: PriceTable | None
    allow_unknown_tokens: bool


class Check(NamedTuple):
    """The outcome of one limit: becomes a ``Verdict``."""

    measured: int | float | None
    passed: bool
    headline: str
    notes: tuple[str, ...] = ()
    worst_calls: tuple[WorstCall, ...] = ()


MAX_COUNT = MAX_NATIVE
"""The largest count limit (calls, errors, tokens): the int64 range the aggregator counts in."""
MAX_USD = 1e15
"""The largest ``max_cost_usd``: a quadrillion USD (larger values are refused, not rounded)."""


def _s(n: int | float) -> str:
    return "" if n == 1 else "s"


def _number(value: Any, where: str, *, maximum: float, expected: str) -> float:
    """A finite number from 0 to ``maximum``; an int too large for a float is refused, not raised on."""
    try:
        return float(check_number(value, where, minimum=0, maximum=maximum, expected=expected))
    except OverflowError:  # float(10**400), float(Fraction(10**400))
        fail(ValueError, where, expected)


def _cmp(passed: bool) -> str:
    return "<=" if passed else "exceeds the limit"


def _where(tests: list[str], stats: CallStats) -> str:
    if not tests:
        return ""
    more = ", ..." if len(tests) >= stats.sample_n else ""
    return f" in {', '.join(tests)}{more}"


def _error_notes(stats: CallStats) -> tuple[str, ...]:
    parts = [
        f"{fn} [{model_label(model)}]: {count}{_where(tests, stats)}"
        for fn, model, count, tests in stats.error_sources()
    ]
    return ("failed calls: " + "; ".join(parts),) if parts else ()


def _unknown_note(stats: CallStats) -> str:
    parts = [
        f"{fn} [{model_label(model)}]: {count} call{_s(count)}{_where(tests, stats)}"
        for fn, model, count, tests in stats.unknown_token_sources()
    ]
    return "calls with unknown tokens: " + "; ".join(parts)


def _failed_calls(stats: CallStats) -> tuple[WorstCall, ...]:
    """The failed calls among the slowest kept (all the slowest when none failed)."""
    slowest = stats.slowest()
    return tuple(w for w in slowest if not w.ok) or tuple(slowest)


def _error_check(measured: int | float, passed: bool, headline: str, stats: CallStats) -> Check:
    """An error limit's outcome: when it fails, the failed calls are named and shown."""
    if passed:
        return Check(measured, True, headline)
    return Check(measured, False, headline, _error_notes(stats), _failed_calls(stats))


class Limit:
    """One budget key. Subclasses set :attr:`unit` and implement :meth:`parse` and :meth:`check`."""

    unit: str = ""
    """The unit of ``measured`` and ``limit`` in a verdict: ns, calls, errors, ratio, tokens or usd."""

    def __init__(self, key: str) -> None:
        self.key = key

    def parse(self, value: Any) -> int | float:
        """The limit as stored (``TypeError``/``ValueError`` naming ``key=value`` when bad)."""
        raise NotImplementedError

    def format(self, value: int | float) -> str:
        """The limit (or a measured value) as messages show it."""
        return str(value)

    def config(self, value: int | float) -> Any:
        """The limit as ``Budget.to_mapping`` writes it (``parse`` of it gives it back)."""
        return value

    def shown(self, value: int | float) -> Any:
        """The limit as ``repr(budget)`` shows it."""
        return value

    def check(self, limit: int | float, m: Measure) -> Check:
        """Measure the calls of ``m`` and judge them against ``limit``."""
        raise NotImplementedError

    def no_calls(self, limit: int | float, m: Measure) -> Check:
        """A latency or rate over zero calls passes and says so."""
        return Check(None, True, f"{m.label}: {self.key} over no calls passes (limit {self.format(limit)})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key!r})"


class LatencyLimit(Limit):
    """A latency percentile (``percentile``) or the maximum (``percentile=None``), in ns.

    Takes ``"800ms"``, ``"2s"``, a ``timedelta`` or seconds. The worst calls are the slowest.
    """

    unit = "ns"

    def __init__(self, key: str, percentile: int | None) -> None:
        super().__init__(key)
        self.percentile = percentile

    def parse(self, value: Any) -> int:
        return parse_duration_ns(value, name=self.key)

    def format(self, value: int | float) -> str:
        return format_duration_ns(value)

    def config(self, value: int | float) -> str:
        return f"{value}ns"

    def shown(self, value: int | float) -> str:
        return format_duration_ns(value)

    def measure(self, stats: CallStats) -> int | None:
        return stats.max_ns if self.percentile is None else stats.percentile(self.percentile)

    def check(self, limit: int | float, m: Measure) -> Check:
        measured = self.measure(m.stats) if m.calls else None
        if measured is None:
            return self.no_calls(limit, m)
        passed = measured <= limit
        headline = (
            f"{m.label}: {self.key} = {format_duration_ns(measured)} "
            f"{_cmp(passed)} {self.format(limit)} over {m.calls:,} call{_s(m.calls)}"
        )
        return Check(measured, passed, headline, (), () if passed else tuple(m.stats.slowest()))


class TtfcLimit(LatencyLimit):
    """A time-to-first-chunk percentile (``ttfc_p95``) or the maximum (``max_ttfc``), in ns.

    Measured over the successful streams in scope whose first chunk came (other calls are
    not counted). Over zero calls it passes as a latency limit does; over calls none of
    which is such a stream it cannot be checked and fails, naming why: a TTFC budget
    never passes without a time to first chunk.
    """

    def measure(self, stats: CallStats) -> int | None:
        return stats.ttfc_max_ns if self.percentile is None else stats.ttfc_percentile(self.percentile)

    def check(self, limit: int | float, m: Measure) -> Check:
        if not m.calls:
            return self.no_calls(limit, m)
        stats = m.stats
        known, streams = stats.ttfc_count, stats.streams
        others = m.calls - streams
        notes: list[str] = []
        if others:
            notes.append(
                f"{others:,} call{_s(others)} that {'is' if others == 1 else 'are'} not a successful stream "
                "not counted (time to first chunk is measured on successful streams only)"
            )
        if streams > known:
            n = streams - known
            notes.append(f"{n:,} stream{_s(n)} without a first chunk not counted")
        measured = self.measure(stats) if known else None
        if measured is None:
            why = "no call in scope is a successful stream" if not streams else f"none of the {streams:,} streams had a first chunk"
            headline = (
                f"{m.label}: {self.key} cannot be checked: {why} ({m.calls:,} call{_s(m.calls)}, "
                f"limit {self.format(limit)}; stream with b.stream.<Function>(...))"
            )
            return Check(None, False, headline, tuple(notes))
        passed = measured <= limit
        headline = (
            f"{m.label}: {self.key} = {format_duration_ns(measured)} "
            f"{_cmp(passed)} {self.format(limit)} over {known:,} stream{_s(known)}"
        )
        if not passed:
            slow = [
                f"{format_duration_ns(t)} {fn} [{model_label(md)}] {test or '(test unknown)'}"
                for t, test, fn, md in stats.slowest_first_chunks()
            ]
            if slow:
                notes.append("slowest first chunks: " + "; ".join(slow))
        return Check(measured, passed, headline, tuple(notes))


class CountLimit(Limit):
    """A whole number of ``noun`` (``"call"``, ``"error"``, ``"token"``): an int >= 0."""

    def __init__(self, key: str, noun: str) -> None:
        super().__init__(key)
        self.noun = noun
        self.unit = noun + "s"

    def parse(self, value: Any) -> int:
        where = f"{self.key}={short_number_repr(value)}"
        expected = f"a whole number of {self.noun}s (an int from 0 to {MAX_COUNT})"
        return int(check_int(value, where, minimum=0, maximum=MAX_COUNT, expected=expected))

    def format(self, value: int | float) -> str:
        return f"{value:,} {self.noun}{_s(int(value))}"


class CallsLimit(CountLimit):
    """``max_calls``: the number of calls in scope. The worst calls are the slowest."""

    def check(self, limit: int | float, m: Measure) -> Check:
        calls = m.calls
        passed = calls <= limit
        headline = f"{m.label}: {self.key}: {calls:,} call{_s(calls)} {_cmp(passed)} {self.format(limit)}"
        if passed:
            return Check(calls, True, headline)
        by_function = ", ".join(f"{fn} [{model_label(md)}]: {g.calls}" for fn, md, g in m.stats.groups())
        return Check(calls, False, headline, ("calls by function: " + by_function,), tuple(m.stats.slowest()))


class ErrorsLimit(CountLimit):
    """``max_errors``: the number of failed calls. The worst calls are the failed ones."""

    def check(self, limit: int | float, m: Measure) -> Check:
        errors = m.stats.errors
        passed = errors <= limit
        headline = (
            f"{m.label}: {self.key}: {errors:,} failed call{_s(errors)} of {m.calls:,} "
            f"{_cmp(passed)} {self.format(limit)}"
        )
        return _error_check(errors, passed, headline, m.stats)


class ErrorRateLimit(Limit):
    """``max_error_rate``: failed calls / calls, a fraction from 0 to 1."""

    unit = "ratio"

    def parse(self, value: Any) -> float:
        where = f"{self.key}={short_number_repr(value)}"
        return _number(value, where, maximum=1, expected="a fraction of calls from 0 to 1, such as 0.05")

    def format(self, value: int | float) -> str:
        return f"{value:.2%}"

    def check(self, limit: int | float, m: Measure) -> Check:  # ErrorsLimit.check's shape; a rate needs calls
        if m.calls == 0:
            return self.no_calls(limit, m)
        errors = m.stats.errors
        measured = errors / m.calls
        passed = measured <= limit
        headline = (
            f"{m.label}: {self.key} = {measured:.2%} ({errors:,}/{m.calls:,} call{_s(m.calls)} failed) "
            f"{_cmp(passed)} {self.format(limit)}"
        )
        return _error_check(measured, passed, headline, m.stats)


class TokenLimit(CountLimit):
    """A sum of ``kind`` tokens (``"input"``, ``"output"`` or ``"any"`` = total) over the calls.

    Calls with unknown tokens of that kind make it fail unless ``allow_unknown_tokens``.
    The worst calls are the heaviest.
    """

    _WHAT = {"input": "input tokens", "output": "output tokens", "any": "total tokens"}

    def __init__(self, key: str, kind: str) -> None:
        super().__init__(key, "token")
        self.kind = kind
        self.what = self._WHAT[kind]

    def _tokens(self, n: int) -> str:
        """``"1 input token"``, ``"1,200 input tokens"``."""
        return f"{n:,} {self.what}" if n != 1 else f"1 {self.what[:-1]}"

    def measure(self, stats: CallStats) -> int:
        if self.kind == "input":
            return stats.input_tokens
        return stats.output_tokens if self.kind == "output" else stats.total_tokens

    def check(self, limit: int | float, m: Measure) -> Check:
        measured = self.measure(m.stats)
        unknown = m.stats.unknown_token_calls(self.kind)
        within = measured <= limit
        passed = within and (unknown == 0 or m.allow_unknown_tokens)
        fl = self.format(limit)
        notes: tuple[str, ...] = ()
        if unknown and not m.allow_unknown_tokens:
            unknown_what = "tokens" if self.kind == "any" else self.what
            headline = (
                f"{m.label}: {self.key} cannot be checked: {unknown:,} call{_s(unknown)} "
                f"with unknown {unknown_what} (known: {self._tokens(measured)}, limit {fl}; "
                "set allow_unknown_tokens=True to ignore them)"
            )
            notes = (_unknown_note(m.stats),)
        else:
            headline = (
                f"{m.label}: {self.key}: {self._tokens(measured)} "
                f"{_cmp(within)} {fl} over {m.calls:,} call{_s(m.calls)}"
            )
            if unknown:
                notes = (f"{unknown:,} call{_s(unknown)} with unknown tokens not counted (allow_unknown_tokens=True)",)
        return Check(measured, passed, headline, notes, () if passed else tuple(m.stats.heaviest()))


class CostLimit(Limit):
    """``max_cost_usd``: USD from the price table. Unpriced models and unknown tokens make it fail."""

    unit = "usd"

    def parse(self, value: Any) -> float:
        where = f"{self.key}={short_number_repr(value)}"
        return _number(value, where, maximum=MAX_USD, expected=f"USD such as 0.50 (a number from 0 to {MAX_USD:,.0f})")

    def format(self, value: int | float) -> str:
        return format_usd(value)

    def check(self, limit: int | float, m: Measure) -> Check:
        cost = m.stats.cost(m.prices)
        fl = self.format(limit)
        within = cost.usd <= limit
        unknown = cost.unknown_token_calls
        unknown_bad = unknown > 0 and not m.allow_unknown_tokens
        passed = within and not cost.unpriced and not unknown_bad
        notes: list[str] = []
        if cost.unpriced:
            models = ", ".join(f"{md!r} ({n} call{_s(n)})" for md, n in cost.unpriced.items())
            headline = (
                f"{m.label}: {self.key} cannot be checked: unpriced model{_s(len(cost.unpriced))} "
                f"{models} (priced part: {format_usd(cost.usd)}, limit {fl})"
            )
            if m.prices is None:
                notes.append("no price table is loaded (--baml-prices / ini baml_prices)")
            else:
                src = f" {m.prices.source}" if m.prices.source else ""
                notes.append(f'add [models."<model>"] with input_per_mtok and output_per_mtok to the price table{src}')
        elif unknown_bad:
            headline = (
                f"{m.label}: {self.key} cannot be checked: {unknown:,} call{_s(unknown)} with unknown tokens "
                f"(known: {format_usd(cost.usd)}, limit {fl}; set allow_unknown_tokens=True to ignore them)"
            )
        else:
            headline = f"{m.label}: {self.key}: {format_usd(cost.usd)} {_cmp(within)} {fl} over {m.calls:,} call{_s(m.calls)}"
        if unknown and not unknown_bad:
            notes.append(f"{unknown:,} call{_s(unknown)} with unknown tokens not counted (allow_unknown_tokens=True)")
        if unknown_bad:
            notes.append(_unknown_note(m.stats))
        return Check(cost.usd, passed, headline, tuple(notes), () if passed else tuple(m.stats.heaviest()))


LIMITS: dict[str, Limit] = {}
"""Every budget key that sets a limit -> its entry, in evaluation order."""


def register(limit: Limit) -> Limit:
    """Add ``limit`` to :data:`LIMITS` (each key once)."""
    if limit.key in LIMITS:
        raise ValueError(f"budget key {limit.key!r} is registered twice")
    LIMITS[limit.key] = limit
    return limit


register(LatencyLimit("p50", 50))
register(LatencyLimit("p90", 90))
register(LatencyLimit("p95", 95))
register(LatencyLimit("p99", 99))
register(LatencyLimit("max_latency", None))
register(TtfcLimit("ttfc_p50", 50))
register(TtfcLimit("ttfc_p90", 90))
register(TtfcLimit("ttfc_p95", 95))
register(TtfcLimit("ttfc_p99", 99))
register(TtfcLimit("max_ttfc", None))
register(CallsLimit("max_calls", "call"))
register(ErrorsLimit("max_errors", "error"))
register(ErrorRateLimit("max_error_rate"))
register(TokenLimit("max_input_tokens", "input"))
register(TokenLimit("max_output_tokens", "output"))
register(TokenLimit("max_total_tokens", "any"))
register(CostLimit("max_cost_usd"))

LIMIT_KEYS: tuple[str, ...] = tuple(LIMITS)
"""The keys of a budget that set a limit, in evaluation order."""
BUDGET_KEYS: tuple[str, ...] = (*LIMIT_KEYS, "function", "model", "allow_unknown_tokens", "name")
"""Every key a budget (marker, ``Budget(...)`` or ``[[budget]]`` table) accepts: the limits, filters and label."""
