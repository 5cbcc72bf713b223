"""Judging budgets: :func:`evaluate` gives one :class:`Verdict` per limit, :func:`failure_message` the text.

:func:`evaluate` is a loop over the budget's limits: each key's entry in
:data:`~pytest_baml_telemetry.budgets.limits.LIMITS` measures and judges it. A verdict is
serialised in one place, :func:`verdict_record` (the JSON report's verdict shape);
:meth:`Verdict.to_dict` (what xdist workers send home) is that record plus the budget,
the scope and the notes, and :meth:`Verdict.from_dict` reads it back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .._validate import check_mapping, fail, short_repr
from .aggregate import Aggregator
from .budget import Budget, BudgetOrigin
from .limits import LIMITS, Measure
from .prices import PriceTable
from .view import CallStats, WorstCall

__all__ = ["Verdict", "evaluate", "failure_message", "iter_verdicts", "verdict_record"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget key over the calls in scope.

    ``measured`` and ``limit`` are in the key's unit (``unit``: ``"ns"``, ``"calls"``,
    ``"errors"``, ``"ratio"``, ``"tokens"`` or ``"usd"``); ``measured`` is ``None`` for a
    latency or rate over zero calls. ``message`` is the full human text: the headline
    (budget label, key, measured value and limit), then notes and the worst calls.

    ``unverifiable``: the calls in scope are not all known (an event could not be
    recorded, a worker was lost, the run was interrupted); such a verdict never passes.
    ``expected``: it failed inside an xfailed test (an expected failure, XFAIL).
    """

    budget: Budget
    key: str
    measured: int | float | None
    limit: int | float
    passed: bool
    headline: str
    unit: str
    calls: int
    scope: str = "session"
    notes: tuple[str, ...] = ()
    worst_calls: tuple[WorstCall, ...] = ()
    unverifiable: bool = False
    expected: bool = False

    @property
    def status(self) -> str:
        """``"passed"``, ``"failed"``, ``"unverifiable"`` or ``"xfailed"`` (failed in an xfailed test)."""
        if self.passed:
            return "passed"
        if self.expected:
            return "xfailed"
        return "unverifiable" if self.unverifiable else "failed"

    @property
    def counts_as_failure(self) -> bool:
        """Whether this verdict makes the run fail (failed or unverifiable, and not expected)."""
        return not self.passed and not self.expected

    @property
    def message(self) -> str:
        lines = [self.headline]
        lines.extend(f"  {n}" for n in self.notes)
        if self.worst_calls:
            lines.append("  worst calls:")
            lines.extend(f"    {w.describe()}" for w in self.worst_calls)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what xdist workers send home): :func:`verdict_record` plus the budget."""
        origin = self.budget.origin
        return {
            **verdict_record(self),
            "scope": self.scope,
            "budget": self.budget.to_mapping(),
            "source": self.budget.source,
            "origin": None if origin is None else [origin.path, origin.index],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Inverse of :meth:`to_dict` (``ValueError`` naming a missing field)."""
        check_mapping(data, f"Verdict.from_dict(data={short_repr(data)})")
        try:
            origin = data.get("origin")
            budget = Budget.from_mapping(
                data["budget"],
                source=None if origin else data.get("source"),
                origin=BudgetOrigin(*origin) if origin else None,
            )
            return cls(
                budget=budget,
                key=data["key"],
                measured=data["measured"],
                limit=data["limit"],
                passed=bool(data["passed"]),
                headline=data["headline"],
                unit=data["unit"],
                calls=data["calls"],
                scope=data["scope"],
                notes=tuple(data["notes"]),
                worst_calls=tuple(_worst_call(w) for w in data["worst_calls"]),
                unverifiable=bool(data.get("unverifiable", False)),
                expected=bool(data.get("expected", False)),
            )
        except KeyError as e:
            raise ValueError(f"verdict dict is missing the field {e.args[0]!r}") from None


def _worst_call(w: Mapping[str, Any]) -> WorstCall:
    return WorstCall(
        w["duration_ns"], w["function"], w["model"], w["test_id"], w["ok"], w["input_tokens"], w["output_tokens"]
    )


def verdict_record(v: Verdict) -> dict[str, Any]:
    """The one serialised form of a verdict (a verdict of the JSON report)."""
    return {
        "key": v.key,
        "measured": v.measured,
        "limit": v.limit,
        "unit": v.unit,
        "passed": v.passed,
        "status": v.status,
        "unverifiable": v.unverifiable,
        "expected": v.expected,
        "calls": v.calls,
        "headline": v.headline,
        "message": v.message,
        "worst_calls": [
            {
                "duration_ns": w.duration_ns,
                "function": w.function_name,
                "model": w.model,
                "test_id": w.test_id,
                "ok": w.ok,
                "input_tokens": w.input_tokens,
                "output_tokens": w.output_tokens,
            }
            for w in v.worst_calls
        ],
    }


def evaluate(
    budget: Budget,
    source: Aggregator | CallStats,
    prices: PriceTable | None = None,
    *,
    scope: str = "session",
    unverifiable: str | None = None,
    known_functions: Collection[str] | None = None,
    known_models: Collection[str | None] | None = None,
) -> list[Verdict]:
    """Check ``budget`` against the calls of ``source``: one :class:`Verdict` per limit set.

    ``source`` is an :class:`Aggregator` or a :class:`CallStats` view; the budget's
    ``function``/``model`` filters are applied to it. ``scope`` labels the verdicts
    (``"session"`` or a test id). Latency and error-rate limits over zero calls pass and
    say "no calls"; ``max_cost_usd`` fails naming any unpriced model; token and cost
    limits fail naming calls with unknown tokens unless ``allow_unknown_tokens``.

    ``unverifiable`` (a reason) makes every verdict unverifiable: it fails, saying why.
    A filter that matched no calls says so in a note; with ``known_functions`` /
    ``known_models`` (the names the session saw), a filter naming an unknown one fails
    with the closest known names ("did you mean ...?"): a typo never passes silently.
    """
    if not isinstance(budget, Budget):
        fail(TypeError, f"evaluate(budget={short_repr(budget)})", "a Budget")
    if not isinstance(source, (Aggregator, CallStats)):
        fail(TypeError, f"evaluate(source={short_repr(source)})", "an Aggregator or CallStats")
    if prices is not None and not isinstance(prices, PriceTable):
        fail(TypeError, f"evaluate(prices={short_repr(prices)})", "a PriceTable or None")
    stats = source.filtered(function=budget.function, model=budget.model)
    m = Measure(budget.label, stats, stats.calls, prices, budget.allow_unknown_tokens)
    typos = _unknown_names(budget, known_functions, known_models)
    extra: tuple[str, ...] = ()
    if m.calls == 0 and (budget.function is not None or budget.model is not None):
        extra = (f"the filter {_filters(budget)} matched no calls",)
    out: list[Verdict] = []
    for key, limit in budget.limits().items():
        entry = LIMITS[key]
        c = entry.check(limit, m)
        headline, notes, passed = c.headline, (*extra, *c.notes), c.passed
        if typos:
            headline = f"{budget.label}: {key}: {typos[0]}"
            notes = (*typos[1:], *notes)
            passed = False
        if unverifiable is not None:
            shown = c.headline[len(budget.label) + 2:] if c.headline.startswith(budget.label + ": ") else c.headline
            headline = f"{budget.label}: {key} is unverifiable: {unverifiable}"
            notes = (f"over the calls recorded: {shown}", *notes)
            passed = False
        out.append(
            Verdict(
                budget=budget,
                key=key,
                measured=c.measured,
                limit=limit,
                passed=passed,
                headline=headline,
                unit=entry.unit,
                calls=m.calls,
                scope=scope,
                notes=notes,
                worst_calls=c.worst_calls,
                unverifiable=unverifiable is not None,
            )
        )
    return out


def _filters(budget: Budget) -> str:
    parts = []
    if budget.function is not None:
        parts.append(f"function={budget.function!r}")
    if budget.model is not None:
        parts.append(f"model={budget.model!r}")
    return ", ".join(parts)


def _names(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _unknown_names(
    budget: Budget, functions: Collection[str] | None, models: Collection[str | None] | None
) -> list[str]:
    """One line per filter name the session never saw, with the closest known names."""
    lines = []
    for what, wanted, known in (("function", budget.function, functions), ("model", budget.model, models)):
        if known is None:
            continue
        names = sorted(k for k in known if isinstance(k, str))
        for name in _names(wanted):
            if name in known:
                continue
            import difflib  # only when a filter names nothing known (keeps the plugin import light)

            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            if close:
                hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
            elif names:
                hint = f"known {what}s: {', '.join(map(repr, names[:10]))}{', ...' if len(names) > 10 else ''}"
            else:
                hint = "no BAML calls were recorded"
            lines.append(f"the {what} {name!r} of the filter is unknown to this session; {hint}")
    return lines


def failure_message(verdicts: Iterable[Verdict]) -> str | None:
    """The text to fail a test (or the session) with, or ``None`` when all passed.

    Groups failed verdicts by budget: each failed key's headline and notes, then the
    worst calls once per budget (latency ones first).
    """
    failed = [v for v in verdicts if v.counts_as_failure]
    if not failed:
        return None
    groups: dict[tuple[Budget, str], list[Verdict]] = {}
    for v in failed:
        groups.setdefault((v.budget, v.scope), []).append(v)
    blocks = []
    for group in groups.values():
        lines = []
        seen_notes: set[str] = set()
        worst: list[WorstCall] = []
        for v in group:
            lines.append(v.headline)
            for n in v.notes:
                if n not in seen_notes:
                    seen_notes.add(n)
                    lines.append(f"  {n}")
            for w in v.worst_calls:
                if w not in worst:
                    worst.append(w)
        if worst:
            lines.append("  worst calls:")
            lines.extend(f"    {w.describe()}" for w in worst)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def iter_verdicts(items: Iterable[Any]) -> Iterator[Verdict]:
    """Each item as a :class:`Verdict`: verdicts as they are, dicts through :meth:`Verdict.from_dict`."""
    for v in items:
        if isinstance(v, Verdict):
            yield v
        elif isinstance(v, Mapping):
            yield Verdict.from_dict(v)
        else:
            raise TypeError(f"{short_repr(v)} is not a Verdict or a verdict dict")
