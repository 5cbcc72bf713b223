"""The report data: :func:`build_report` turns the aggregator, prices and verdicts into a plain dict.

Every output format (:mod:`.terminal`, :mod:`.json`, :mod:`.html`) draws this dict and
nothing else, so they all show the same data; :func:`latency_histograms` reads the call
durations per row for a drawing (apart, so the report data keeps its shape). The data holds only function and model names, numbers and
test ids: never arguments, results, prompts or anything from HTTP traffic (the aggregator
does not store them). It does not depend on the order calls or verdicts came in.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._validate import check_int, fail, short_repr
from ..budgets.aggregate import Aggregator
from ..budgets.budget import Budget
from ..budgets.limits import LIMIT_KEYS
from ..budgets.prices import PriceTable
from ..budgets.unrecorded import NotRecorded
from ..budgets.verdicts import Verdict, iter_verdicts, verdict_record
from ..budgets.view import CallStats
from .json import REPORT_SCHEMA

__all__ = ["build_report", "latency_histograms"]

_PERCENTILES = (50, 90, 95, 99)


def _numbers(stats: CallStats, total: int | None = None) -> dict[str, Any]:
    """The figures of a row (``total``: the sum of its durations when known already)."""
    calls = stats.calls
    errors = stats.errors
    out: dict[str, Any] = {
        "calls": calls,
        "ok": calls - errors,
        "errors": errors,
        "error_rate": (errors / calls) if calls else None,
    }
    for p in _PERCENTILES:
        out[f"p{p}_ns"] = stats.percentile(p)
    out["min_ns"] = stats.min_ns
    out["max_ns"] = stats.max_ns
    if total is None:
        total = stats.total_duration_ns
    out["mean_ns"] = (total / calls) if calls else None
    out["total_duration_ns"] = total
    out["input_tokens"] = stats.input_tokens
    out["output_tokens"] = stats.output_tokens
    out["cached_input_tokens"] = stats.cached_input_tokens
    out["total_tokens"] = stats.total_tokens
    out["unknown_token_calls"] = stats.unknown_token_calls()
    out["streams"] = stats.streams
    for p in _PERCENTILES:
        out[f"ttfc_p{p}_ns"] = stats.ttfc_percentile(p)
    out["ttfc_max_ns"] = stats.ttfc_max_ns
    return out


def build_report(
    source: Aggregator | CallStats,
    prices: PriceTable | None = None,
    verdicts: Iterable[Verdict | Mapping[str, Any]] = (),
    *,
    incomplete: Sequence[str] = (),
    not_recorded: NotRecorded | None = None,
) -> dict[str, Any]:
    """The report data (a JSON-able dict in the schema of :mod:`pytest_baml_telemetry.report.json`).

    ``source`` is the session :class:`Aggregator` (after merging xdist workers'
    payloads) or a view of it; ``verdicts`` are :class:`Verdict` objects or their
    :meth:`~Verdict.to_dict` form (as sent home by xdist workers), from session and
    per-test budgets. The result does not depend on the order calls or verdicts came in.

    ``incomplete`` names why the data is incomplete (a lost xdist worker, an interrupted
    run): ``summary.complete`` is false and ``summary.passed`` never true.
    ``not_recorded`` (by default the aggregator's) counts the events that could not be
    recorded. A broken verdict marked ``expected`` (an xfailed test) does not fail the run.
    """
    if not_recorded is None:
        not_recorded = source.not_recorded if isinstance(source, Aggregator) else NotRecorded()
    if isinstance(source, Aggregator):
        stats = source.stats()
    elif isinstance(source, CallStats):
        stats = source
    else:
        fail(TypeError, f"build_report(source={short_repr(source)})", "an Aggregator or CallStats")
    if prices is not None and not isinstance(prices, PriceTable):
        fail(TypeError, f"build_report(prices={short_repr(prices)})", "a PriceTable or None")

    # The aggregator keeps each series' sum of durations: no pass over them for the mean.
    sums = source.duration_totals() if isinstance(source, Aggregator) else None
    rows = []
    total_cost = 0.0
    unpriced: set[str] = set()
    cost_complete = True
    for function_name, model, group in stats.groups():
        row: dict[str, Any] = {"function": function_name, "model": model}
        row.update(_numbers(group, None if sums is None else sums.get((function_name, model), 0)))
        cost = group.cost(prices)
        if cost.unpriced:
            row["cost_usd"] = None
            row["cost_status"] = "unpriced"
            unpriced.update(cost.unpriced)
            cost_complete = False
        else:
            row["cost_usd"] = cost.usd
            total_cost += cost.usd
            if cost.unknown_token_calls:
                row["cost_status"] = "partial"
                cost_complete = False
            elif group.ok == 0 and group.total_tokens == 0:
                row["cost_status"] = "no usage"
            else:
                row["cost_status"] = "priced"
        rows.append(row)

    totals = _numbers(stats, None if sums is None else sum(r["total_duration_ns"] for r in rows))
    totals["cost_usd"] = total_cost
    totals["unpriced_models"] = sorted(unpriced)
    totals["cost_complete"] = cost_complete

    groups: dict[tuple[str, Budget], list[Verdict]] = {}
    for v in iter_verdicts(verdicts):
        groups.setdefault((v.scope, v.budget), []).append(v)
    budgets = []
    for (scope, b), vs in sorted(groups.items(), key=_group_order):
        vs.sort(key=lambda v: LIMIT_KEYS.index(v.key) if v.key in LIMIT_KEYS else len(LIMIT_KEYS))
        budgets.append(
            {
                "scope": scope,
                "budget": b.label,
                "name": b.name,
                "source": b.source,
                "function": b.function if b.function is None or isinstance(b.function, str) else list(b.function),
                "model": b.model if b.model is None or isinstance(b.model, str) else list(b.model),
                "passed": all(v.passed for v in vs),
                "expected": not all(v.passed for v in vs) and not any(v.counts_as_failure for v in vs),
                "unverifiable": any(v.unverifiable for v in vs),
                "verdicts": [verdict_record(v) for v in vs],
            }
        )
    failed = sum(1 for b in budgets if not b["passed"] and not b["expected"])
    complete = not incomplete
    return {
        "schema": REPORT_SCHEMA,
        "percentile_method": "nearest-rank",
        "duration_unit": "ns",
        "price_table": None if prices is None else prices.source,
        "rows": rows,
        "totals": totals,
        "budgets": budgets,
        "summary": {
            "calls": totals["calls"],
            "budgets": len(budgets),
            "budgets_failed": failed,
            "budgets_expected": sum(1 for b in budgets if b["expected"]),
            "budgets_unverifiable": sum(1 for b in budgets if b["unverifiable"]),
            "not_recorded": not_recorded.count,
            "complete": complete,
            "incomplete": list(incomplete),
            "passed": failed == 0 and complete,
        },
        "not_recorded": not_recorded.to_payload(),
    }


def _group_order(item: tuple[tuple[str, Budget], list[Verdict]]) -> tuple:
    """Session budgets first, in file order (by origin); then per-test ones by test id (stable under xdist)."""
    scope, b = item[0]
    origin = b.origin
    position = (origin.path, origin.index) if origin is not None else (b.source or "", 0)
    return (scope != "session", scope, position, b.label, json.dumps(b.to_mapping(), sort_keys=True))


def latency_histograms(source: Aggregator | CallStats, bins: int = 24) -> list[dict[str, Any]]:
    """Per ``(function, model)`` (the rows of :func:`build_report`, same order) the call
    durations as a histogram of at most ``bins`` equal-width bins from the fastest to the
    slowest call, with the p50/p95/p99 (nearest-rank, as the report) to mark on it.

    Each item: ``{"function", "model", "calls", "min_ns", "max_ns", "p50_ns", "p95_ns",
    "p99_ns", "bins": [{"lo_ns", "hi_ns", "count"}, ...]}``; a bin holds the calls with
    ``lo_ns <= duration < hi_ns`` (the last one its ``hi_ns`` too). Read-only: it records nothing.
    """
    bins = check_int(bins, f"latency_histograms(bins={short_repr(bins)})", minimum=1, maximum=1000)
    if isinstance(source, Aggregator):
        stats = source.stats()
    elif isinstance(source, CallStats):
        stats = source
    else:
        fail(TypeError, f"latency_histograms(source={short_repr(source)})", "an Aggregator or CallStats")
    out = []
    for function_name, model, group in stats.groups():
        if isinstance(source, Aggregator):  # the sorted runs it keeps: no sort of all the durations again
            key = (function_name, model)
            runs = source.sealed_runs(source.select(key.__eq__))
        else:
            d = group.sorted_durations()
            runs = [d] if d else []
        n = sum(len(r) for r in runs)
        item: dict[str, Any] = {"function": function_name, "model": model, "calls": n}
        item["min_ns"] = min(r[0] for r in runs) if n else None
        item["max_ns"] = max(r[-1] for r in runs) if n else None
        for p in (50, 95, 99):
            item[f"p{p}_ns"] = group.percentile(p)
        item["bins"] = _bins(runs, bins)
        out.append(item)
    return out


def _bins(runs: Sequence[Sequence[int]], most: int) -> list[dict[str, int]]:
    """Equal-width bins over the values of sorted ``runs`` (integer ns edges; one bin when every value is equal)."""
    n = sum(len(r) for r in runs)
    if not n:
        return []
    lo, hi = min(r[0] for r in runs), max(r[-1] for r in runs)
    k = max(1, min(most, n, hi - lo))
    edges = [lo + (hi - lo) * i // k for i in range(k)] + [hi]
    starts = [sum(bisect_left(r, e) for r in runs) for e in edges[:-1]] + [n]
    return [{"lo_ns": edges[i], "hi_ns": edges[i + 1], "count": starts[i + 1] - starts[i]} for i in range(k)]
