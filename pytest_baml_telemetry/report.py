"""The telemetry report: per (function, model) rows, totals and budget verdicts.

:func:`build_report` turns an :class:`~pytest_baml_telemetry.budgets.Aggregator` (plus
an optional price table and budget verdicts) into a plain dict; :func:`render_terminal`
draws it as aligned text lines (durations in ms) and :func:`to_json` /
:func:`write_json` give it as JSON. Both show the same data. The report holds only
function and model names, numbers and test ids: never arguments, results, prompts or
anything from HTTP traffic (the aggregator does not store them).

JSON schema ``"pytest-baml-telemetry/report/v1"``::

    {
      "schema": "pytest-baml-telemetry/report/v1",
      "percentile_method": "nearest-rank",   # exact: value at rank ceil(p/100*n)
      "duration_unit": "ns",                 # every *_ns field is an int of nanoseconds
      "price_table": str | null,             # where prices came from (a path), if any
      "rows": [                              # one per (function, model), sorted
        {
          "function": str, "model": str | null,
          "calls": int, "ok": int, "errors": int, "error_rate": float | null,
          "p50_ns": int | null, "p90_ns": ..., "p95_ns": ..., "p99_ns": ...,
          "min_ns": int | null, "max_ns": int | null, "mean_ns": float | null,
          "total_duration_ns": int,
          "input_tokens": int, "output_tokens": int, "cached_input_tokens": int,
          "total_tokens": int,               # input + output (known tokens only)
          "unknown_token_calls": int,        # successful calls with unknown tokens
          "cost_usd": float | null,          # null when the model is unpriced
          "cost_status": "priced" | "partial" | "unpriced" | "no usage"
        }, ...
      ],
      "totals": { same numeric fields over every call (no "function"/"model"),
                  "cost_usd": float (sum over priced rows),
                  "unpriced_models": [str], "cost_complete": bool },
      "budgets": [                           # one per (scope, budget), session first
        {
          "scope": "session" | "<test node id>",
          "budget": str,                     # label: name, filters and source
          "name": str | null, "source": str | null,
          "function": str | [str] | null, "model": str | [str] | null,
          "passed": bool,
          "verdicts": [
            {"key": str, "measured": int | float | null, "limit": int | float,
             "unit": "ns" | "calls" | "errors" | "ratio" | "tokens" | "usd",
             "passed": bool, "calls": int, "headline": str, "message": str,
             "worst_calls": [{"duration_ns": int, "function": str, "model": str | null,
                              "test_id": str | null, "ok": bool,
                              "input_tokens": int | null, "output_tokens": int | null}]}
          ]
        }, ...
      ],
      "summary": {"calls": int, "budgets": int, "budgets_failed": int, "passed": bool}
    }

``cost_status``: ``"priced"`` every call is priced; ``"partial"`` some successful calls
had unknown tokens and are not in ``cost_usd``; ``"unpriced"`` the model has no price
(``cost_usd`` is null, never 0); ``"no usage"`` nothing to price (only failed calls
without tokens), ``cost_usd`` is 0.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Union

from .budgets import (
    LIMIT_KEYS,
    Aggregator,
    Budget,
    CallStats,
    PriceTable,
    Verdict,
)
from .budgets import (
    format_usd as _fmt_usd,
)
from .budgets import (
    iter_verdicts as _iter_verdicts,
)
from .budgets import (
    model_label as _model_label,
)

__all__ = ["REPORT_SCHEMA", "build_report", "render_terminal", "to_json", "write_json"]

REPORT_SCHEMA = "pytest-baml-telemetry/report/v1"
_PERCENTILES = (50, 90, 95, 99)


def _numbers(stats: CallStats) -> dict[str, Any]:
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
    total = stats.total_duration_ns
    out["mean_ns"] = (total / calls) if calls else None
    out["total_duration_ns"] = total
    out["input_tokens"] = stats.input_tokens
    out["output_tokens"] = stats.output_tokens
    out["cached_input_tokens"] = stats.cached_input_tokens
    out["total_tokens"] = stats.total_tokens
    out["unknown_token_calls"] = stats.unknown_token_calls()
    return out


def build_report(
    source: Aggregator | CallStats,
    prices: PriceTable | None = None,
    verdicts: Iterable[Verdict | Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The report data (a JSON-able dict in the schema above).

    ``source`` is the session :class:`Aggregator` (after merging xdist workers'
    payloads) or a view of it; ``verdicts`` are :class:`Verdict` objects or their
    :meth:`~Verdict.to_dict` form (as sent home by xdist workers), from session and
    per-test budgets. The result does not depend on the order calls or verdicts came in.
    """
    if isinstance(source, Aggregator):
        stats = source.stats()
    elif isinstance(source, CallStats):
        stats = source
    else:
        raise TypeError(f"build_report(source={source!r}): expected an Aggregator or CallStats")
    if prices is not None and not isinstance(prices, PriceTable):
        raise TypeError(f"build_report(prices={prices!r}): expected a PriceTable or None")

    rows = []
    total_cost = 0.0
    unpriced: set[str] = set()
    cost_complete = True
    for function_name, model, group in stats.groups():
        row: dict[str, Any] = {"function": function_name, "model": model}
        row.update(_numbers(group))
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

    totals = _numbers(stats)
    totals["cost_usd"] = total_cost
    totals["unpriced_models"] = sorted(unpriced)
    totals["cost_complete"] = cost_complete

    groups: dict[tuple[str, Budget], list[Verdict]] = {}
    for v in _iter_verdicts(verdicts):
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
                "verdicts": [_verdict_json(v) for v in vs],
            }
        )
    failed = sum(1 for b in budgets if not b["passed"])
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
            "passed": failed == 0,
        },
    }


def _group_order(item: tuple[tuple[str, Budget], list[Verdict]]) -> tuple:
    """Session budgets first, in file order; then per-test ones by test id (stable under xdist)."""
    scope, b = item[0]
    source = b.source or ""
    number = source.rsplit("#", 1)[-1] if "#" in source else ""
    position = (source.rsplit("#", 1)[0], int(number)) if number.isdigit() else (source, 0)
    return (scope != "session", scope, position, b.label, json.dumps(b.to_mapping(), sort_keys=True))


def _verdict_json(v: Verdict) -> dict[str, Any]:
    return {
        "key": v.key,
        "measured": v.measured,
        "limit": v.limit,
        "unit": v.unit,
        "passed": v.passed,
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


def to_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe deep copy of report ``data`` (raises ``ValueError`` if it is not one)."""
    if not isinstance(data, Mapping) or data.get("schema") != REPORT_SCHEMA:
        got = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"not report data (schema={got!r}); expected schema {REPORT_SCHEMA!r}")
    return json.loads(json.dumps(data, allow_nan=False))


def write_json(data: Mapping[str, Any], path: Union[str, PathLike[str]]) -> None:
    """Write report ``data`` to ``path`` as indented JSON (UTF-8, trailing newline)."""
    text = json.dumps(to_json(data), indent=2, allow_nan=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


# --------------------------------------------------------------------------- terminal


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1_000_000:,.1f}"


def _cost_cell(row: Mapping[str, Any]) -> str:
    status = row["cost_status"]
    if status == "unpriced":
        return "unpriced"
    if status == "no usage":
        return "-"
    cell = _fmt_usd(row["cost_usd"])
    return cell + "*" if status == "partial" else cell


def _tokens_cell(value: int, unknown: int) -> str:
    return f"{value:,}" + ("*" if unknown else "")


def _table(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return out


def render_terminal(data: Mapping[str, Any]) -> list[str]:
    """The report as aligned text lines (no trailing newlines), durations in ms.

    One row per function and model, a TOTAL row, footnotes for unknown tokens and
    unpriced models, then the budget verdicts (failed ones with their full message).
    """
    to_json(data)  # validates the schema tag
    header = ["function", "model", "calls", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms",
              "in tokens", "out tokens", "cost"]
    body = []
    for r in data["rows"]:
        body.append(
            [
                r["function"],
                _model_label(r["model"]),
                f"{r['calls']:,}",
                f"{r['errors']:,}",
                _ms(r["p50_ns"]),
                _ms(r["p95_ns"]),
                _ms(r["p99_ns"]),
                _ms(r["max_ns"]),
                _tokens_cell(r["input_tokens"], r["unknown_token_calls"]),
                _tokens_cell(r["output_tokens"], r["unknown_token_calls"]),
                _cost_cell(r),
            ]
        )
    t = data["totals"]
    lines: list[str] = []
    if not data["rows"]:
        lines.append("no BAML calls recorded")
    else:
        total_cost = _fmt_usd(t["cost_usd"])
        if t["unpriced_models"]:
            total_cost += " + unpriced"
        elif not t["cost_complete"]:
            total_cost += "*"
        body.append(
            [
                "TOTAL",
                "",
                f"{t['calls']:,}",
                f"{t['errors']:,}",
                _ms(t["p50_ns"]),
                _ms(t["p95_ns"]),
                _ms(t["p99_ns"]),
                _ms(t["max_ns"]),
                _tokens_cell(t["input_tokens"], t["unknown_token_calls"]),
                _tokens_cell(t["output_tokens"], t["unknown_token_calls"]),
                total_cost,
            ]
        )
        table = _table(header, body, left=2)
        lines.extend(table[:-1])
        lines.append(table[1])
        lines.append(table[-1])
        if t["unknown_token_calls"]:
            n = t["unknown_token_calls"]
            lines.append(f"* {n:,} successful call{'s' if n != 1 else ''} with unknown tokens (not counted)")
        if t["unpriced_models"]:
            where = f" in {data['price_table']}" if data.get("price_table") else " (no --baml-prices table)"
            lines.append(f"unpriced models{where}: {', '.join(t['unpriced_models'])}")
        lines.append("percentiles: exact nearest-rank over all calls, failed ones included")
    budgets = data["budgets"]
    if budgets:
        s = data["summary"]
        lines.append("")
        lines.append(f"budgets: {s['budgets']} checked, {s['budgets_failed']} failed")
        for b in budgets:
            for v in b["verdicts"]:
                mark = "PASS" if v["passed"] else "FAIL"
                text = v["headline"] if v["passed"] else v["message"]
                first, *rest = text.split("\n")
                lines.append(f"  {mark} {b['scope']}: {first}")
                lines.extend(f"       {x}" for x in rest)
    return lines
