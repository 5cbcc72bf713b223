"""The report drawn as aligned text lines for the terminal: :func:`render_terminal`.

Durations in ms, one row per function and model (a time-to-first-chunk column when the
run had streams), a TOTAL row, footnotes, then the budget
verdicts: each budget's label (name, filters, source) once, then one compact line per
verdict (key, measured value, limit), failed ones followed by their notes and worst calls. It draws the data of
:func:`~pytest_baml_telemetry.report.build_report` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..budgets.text import format_usd, model_label
from .json import to_json

__all__ = ["render_terminal"]

_MARKS = {"passed": "PASS", "failed": "FAIL", "unverifiable": "UNVERIFIABLE", "xfailed": "XFAIL"}


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1_000_000:,.1f}"


def _cost_cell(row: Mapping[str, Any]) -> str:
    status = row["cost_status"]
    if status == "unpriced":
        return "unpriced"
    if status == "no usage":
        return "-"
    cell = format_usd(row["cost_usd"])
    return cell + "*" if status == "partial" else cell


def _tokens_cell(value: int, unknown: int) -> str:
    return f"{value:,}" + ("*" if unknown else "")


def _cells(function: str, model: str, n: Mapping[str, Any], cost: str, ttfc: bool = False) -> list[str]:
    """One table row: a row of the report or its totals (``n``), with the cost cell given
    (and the time-to-first-chunk cell when ``ttfc``: the run had streams)."""
    unknown = n["unknown_token_calls"]
    return [
        function,
        model,
        f"{n['calls']:,}",
        f"{n['errors']:,}",
        *(_ms(n[k]) for k in ("p50_ns", "p95_ns", "p99_ns", "max_ns")),
        *((_ms(n.get("ttfc_p95_ns")),) if ttfc else ()),
        _tokens_cell(n["input_tokens"], unknown),
        _tokens_cell(n["output_tokens"], unknown),
        cost,
    ]


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
    t = data["totals"]
    ttfc = bool(t.get("streams"))  # the TTFC column only when the run had streams
    header = ["function", "model", "calls", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms",
              *(("ttfc p95 ms",) if ttfc else ()), "in tokens", "out tokens", "cost"]
    body = []
    for r in data["rows"]:
        body.append(_cells(r["function"], model_label(r["model"]), r, _cost_cell(r), ttfc))
    lines: list[str] = []
    if not data["rows"]:
        lines.append("no BAML calls recorded")
    else:
        total_cost = format_usd(t["cost_usd"])
        if t["unpriced_models"]:
            total_cost += " + unpriced"
        elif not t["cost_complete"]:
            total_cost += "*"
        body.append(_cells("TOTAL", "", t, total_cost, ttfc))
        table = _table(header, body, left=2)
        lines.extend(table[:-1])
        lines.append(table[1])
        lines.append(table[-1])
        if t["unknown_token_calls"]:
            n = t["unknown_token_calls"]
            lines.append(f"* {n:,} call{'s' if n != 1 else ''} with unknown tokens (not counted)")
        if t["unpriced_models"]:
            where = f" in {data['price_table']}" if data.get("price_table") else " (no --baml-prices table)"
            lines.append(f"unpriced models{where}: {', '.join(t['unpriced_models'])}")
        lines.append("percentiles: exact nearest-rank over all calls, failed ones included")
        if ttfc:
            n = t["streams"]
            lines.append(f"ttfc: time to first chunk, over the {n:,} successful stream{'s' if n != 1 else ''} ('-': no stream)")
    s = data["summary"]
    nr = data.get("not_recorded") or {}
    if nr.get("count"):
        n = nr["count"]
        lines.append(f"NOT RECORDED: {n:,} BAML call event{'s' if n != 1 else ''} could not be recorded:")
        lines.extend(f"  {count:,} x {reason}" for reason, count in nr["reasons"].items())
        first = nr.get("first")
        if first:
            where = f" in {first['test_id']}" if first.get("test_id") else ""
            lines.append(f"  first: {first['event']} function={first['function']!r} model={first['model']!r}{where}")
            lines.append(f"         measurements={first['measurements']!r}")
    if not s.get("complete", True):
        lines.append("INCOMPLETE: the data does not cover the whole run:")
        lines.extend(f"  {r}" for r in s.get("incomplete", ()))
    budgets = data["budgets"]
    if budgets:
        lines.append("")
        extra = "".join(
            f", {s[k]} {what}" for k, what in (("budgets_unverifiable", "unverifiable"), ("budgets_expected", "xfailed"))
            if s.get(k)
        )
        lines.append(f"budgets: {s['budgets']} checked, {s['budgets_failed']} failed{extra}")
        for b in budgets:
            # the budget (its long label and source) once, then one compact line per verdict
            label = b["budget"]
            lines.append(f"  {b['scope']}: {label}")
            for v in b["verdicts"]:
                mark = _MARKS.get(v.get("status", ""), "PASS" if v["passed"] else "FAIL")
                text = v["headline"] if v["passed"] else v["message"]
                first, *rest = text.split("\n")
                if first.startswith(label + ": "):
                    first = first[len(label) + 2 :]
                lines.append(f"    {mark} {first}")
                pad = " " * (len(mark) + 3)
                lines.extend(f"  {pad}{x}" for x in rest)
    return lines
