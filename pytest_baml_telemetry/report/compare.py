"""Baselines: compare this run's report with an earlier JSON report (``--baml-compare``).

:func:`load_baseline` reads and checks the earlier report, :func:`parse_tolerances`
reads ``--baml-compare-fail=p95:10%,cost:5%`` (and :func:`tolerances_from_table` the
``[compare]`` table of a budgets file), :func:`compare_reports` builds the ``compare``
section of the report and :func:`render_compare` draws it for the terminal.

The tolerances follow pytest-benchmark's ``--benchmark-compare-fail``: ``KEY:N%`` fails
when the value grew by more than N percent of the baseline (from a baseline of 0, any
growth is a regression), ``KEY:VALUE`` when it grew by more than VALUE, in the key's unit
(seconds or a duration such as ``"50ms"`` for latency, USD for ``cost``, tokens, a ratio
for ``error_rate``). Higher is worse for every key. Rows are matched by function and
model; the ones present on one side only are listed. Token sums and cost of a row with
calls of unknown tokens are unknown, never compared as a smaller number. A key with a
tolerance whose value is known on one side only (cost unpriced in this run, no streams
any more) cannot be compared: it is an *unverifiable* regression, which fails as budgets' do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validate import is_number, short_repr
from ..budgets.config import BudgetConfigError
from ..budgets.text import format_usd, model_label
from ..clock import parse_duration_ns
from .json import REPORT_SCHEMA

__all__ = [
    "COMPARE_KEYS",
    "CompareError",
    "Tolerance",
    "compare_reports",
    "load_baseline",
    "merge_tolerances",
    "parse_tolerances",
    "render_compare",
    "tolerances_from_table",
]


class CompareError(BudgetConfigError):
    """A bad ``--baml-compare`` baseline or ``--baml-compare-fail`` tolerance (a usage error)."""


# key -> (report row field, unit)
COMPARE_KEYS: dict[str, tuple[str, str]] = {
    "p50": ("p50_ns", "ns"),
    "p90": ("p90_ns", "ns"),
    "p95": ("p95_ns", "ns"),
    "p99": ("p99_ns", "ns"),
    "max_latency": ("max_ns", "ns"),
    "mean": ("mean_ns", "ns"),
    "ttfc_p50": ("ttfc_p50_ns", "ns"),
    "ttfc_p90": ("ttfc_p90_ns", "ns"),
    "ttfc_p95": ("ttfc_p95_ns", "ns"),
    "ttfc_p99": ("ttfc_p99_ns", "ns"),
    "max_ttfc": ("ttfc_max_ns", "ns"),
    "input_tokens": ("input_tokens", "tokens"),
    "output_tokens": ("output_tokens", "tokens"),
    "tokens": ("total_tokens", "tokens"),
    "cost": ("cost_usd", "usd"),
    "error_rate": ("error_rate", "ratio"),
    "calls": ("calls", "calls"),
}
"""The keys a tolerance may name: the report row field compared and its unit."""

_SHOWN = ("p50", "p95", "p99", "ttfc_p95", "tokens", "cost", "error_rate")
"""The deltas every comparison shows (tolerated keys are added)."""

_WHERE = "--baml-compare-fail (ini baml_compare_fail)"


@dataclass(frozen=True)
class Tolerance:
    """How much ``key`` may grow: ``percent`` of the baseline, or ``absolute`` in its unit (ns, USD, ...)."""

    key: str
    percent: float | None = None
    absolute: float | None = None
    text: str = ""
    """As given (``"10%"``, ``"50ms"``, ``"0.05"``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "tolerance": self.text, "percent": self.percent,
                "absolute": self.absolute, "unit": COMPARE_KEYS[self.key][1]}


def _tolerance(key: str, value: Any, where: str) -> Tolerance:
    """One tolerance of ``key``; ``value`` is ``"10%"``, a number or (latency) a duration."""
    if key not in COMPARE_KEYS:
        raise CompareError(f"{where}: unknown key {key!r}; expected one of {', '.join(COMPARE_KEYS)}")
    unit = COMPARE_KEYS[key][1]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise CompareError(f"{where}: tolerance {short_repr(value)} is not 'N%' or a number")
    text = value.strip() if isinstance(value, str) else repr(value)
    if isinstance(value, str) and text.endswith("%"):
        try:
            pct = float(text[:-1])
        except ValueError:
            pct = math.nan
        if not math.isfinite(pct) or pct < 0 or not text[:-1].strip():
            raise CompareError(f"{where}: tolerance {text!r} is not a percentage; expected N% with N a number >= 0")
        return Tolerance(key, percent=pct, text=text)
    if unit == "ns":
        try:
            number: Any = float(value)  # a number of seconds (pytest-benchmark's unit), also given as text
        except ValueError:
            number = value  # a duration: "50ms"
        try:
            ns = parse_duration_ns(number, name=key)
        except (TypeError, ValueError) as exc:
            raise CompareError(
                f"{where}: tolerance {text!r} is not N% nor a duration (seconds or '50ms'): {exc}"
            ) from None
        return Tolerance(key, absolute=float(ns), text=text)
    try:
        amount = float(value)
    except ValueError:
        amount = math.nan
    if not math.isfinite(amount) or amount < 0:
        raise CompareError(f"{where}: tolerance {text!r} is not N% nor a number >= 0 (in {unit})")
    return Tolerance(key, absolute=amount, text=text)


def parse_tolerances(spec: str, where: str = _WHERE) -> list[Tolerance]:
    """``"p95:10%,cost:5%,p99:50ms"`` as tolerances; a bad piece is a :class:`CompareError` naming it."""
    if not isinstance(spec, str):
        raise CompareError(f"{where}: {short_repr(spec)} is not a str; expected KEY:N% or KEY:VALUE, comma-separated")
    pieces = spec.split(",")
    out: dict[str, Tolerance] = {}
    for i, raw in enumerate(pieces, 1):
        piece = raw.strip()
        at = f"{where}: {piece!r} (item {i} of {len(pieces)} in {spec!r})"
        if not piece:
            raise CompareError(f"{where}: item {i} of {len(pieces)} in {spec!r} is empty; expected KEY:N% or KEY:VALUE")
        key, sep, value = piece.partition(":")
        key = key.strip()
        if not sep or not value.strip():
            raise CompareError(f"{at} has no tolerance; expected KEY:N% (p95:10%) or KEY:VALUE (cost:0.01)")
        if key in out:
            raise CompareError(f"{at}: {key!r} is given twice")
        out[key] = _tolerance(key, value, at)
    return list(out.values())


def tolerances_from_table(table: Any, where: str) -> list[Tolerance]:
    """The ``[compare]`` table of a budgets file: ``p95 = "10%"``, ``cost = 0.01``, ``p99 = "50ms"``."""
    if not isinstance(table, Mapping):
        raise CompareError(f"{where}: 'compare' is a {type(table).__name__}; expected a [compare] table of KEY = tolerance")
    return [_tolerance(str(k), v, f"{where} [compare] {k}") for k, v in table.items()]


def merge_tolerances(*layers: Iterable[Tolerance]) -> list[Tolerance]:
    """Tolerances by key, a later layer's winning (the command line over the budgets file)."""
    out: dict[str, Tolerance] = {}
    for layer in layers:
        for t in layer:
            out[t.key] = t
    return list(out.values())


# ---------------------------------------------------------------------- the baseline


def load_baseline(path: Path, where: str = "--baml-compare (ini baml_compare)") -> dict[str, Any]:
    """The earlier report at ``path``; :class:`CompareError` naming it when it is missing,
    not JSON, not a report of this plugin or of another schema version, or its rows are malformed."""
    shown = f"{where}: baseline {str(path)!r}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CompareError(f"{shown} does not exist; expected a JSON report written by --baml-report-json") from None
    except IsADirectoryError:
        raise CompareError(f"{shown} is a directory; expected a JSON report written by --baml-report-json") from None
    except UnicodeDecodeError as exc:
        raise CompareError(f"{shown} is not UTF-8 text ({exc.reason}); expected a JSON report") from None
    except OSError as exc:
        raise CompareError(f"{shown} cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CompareError(f"{shown} is not JSON ({exc}); expected a JSON report written by --baml-report-json") from None
    if not isinstance(data, dict) or "schema" not in data:
        raise CompareError(f"{shown} is not a pytest-baml-telemetry report (it has no 'schema' tag); expected schema {REPORT_SCHEMA!r}")
    if data["schema"] != REPORT_SCHEMA:
        raise CompareError(f"{shown} has schema {data['schema']!r}; expected schema {REPORT_SCHEMA!r}")
    rows = data.get("rows")
    if not isinstance(rows, list):
        raise CompareError(f"{shown}: 'rows' is {short_repr(rows)}; expected a list of rows")
    fields = {f for f, _ in COMPARE_KEYS.values()}
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("function"), str):
            raise CompareError(f"{shown}: rows[{i}] has no 'function' name")
        if not (row.get("model") is None or isinstance(row.get("model"), str)):
            raise CompareError(f"{shown}: rows[{i}].model = {short_repr(row.get('model'))}; expected a str or null")
        for f in fields:
            v = row.get(f)
            if v is not None and (not is_number(v) or isinstance(v, bool) or not math.isfinite(v) or v < 0):
                raise CompareError(f"{shown}: rows[{i}].{f} = {short_repr(v)}; expected a number >= 0 or null")
    data["_path"] = str(path)
    return data


# ---------------------------------------------------------------------- comparing


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ns":
        return f"{value / 1_000_000:,.1f}ms"
    if unit == "usd":
        return format_usd(value)
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _delta(base: float | None, cur: float | None) -> dict[str, Any]:
    d: dict[str, Any] = {"baseline": base, "current": cur, "delta": None, "percent": None}
    if base is not None and cur is not None:
        d["delta"] = cur - base
        if base:
            d["percent"] = (cur / base - 1) * 100
        elif cur == base:
            d["percent"] = 0.0
    return d


_TOKEN_KEYS = frozenset({"input_tokens", "output_tokens", "tokens", "cost"})


def _value(row: Mapping[str, Any], key: str) -> float | None:
    """The compared value of ``key`` in a report row; token sums and cost that leave out calls
    with unknown tokens (or an unpriced model) are unknown (``None``), never a smaller number."""
    if key in _TOKEN_KEYS and row.get("unknown_token_calls"):
        return None
    if key == "cost" and row.get("cost_status") in ("partial", "unpriced"):
        return None
    return row.get(COMPARE_KEYS[key][0])


def _label(function: str, model: str | None) -> str:
    return f"{function} / {model_label(model)}"


def compare_reports(
    current: Mapping[str, Any], baseline: Mapping[str, Any], tolerances: Iterable[Tolerance] = ()
) -> dict[str, Any]:
    """The ``compare`` section: per function and model the deltas, the rows on one side only,
    and the regressions beyond ``tolerances``::

        {"baseline": str, "baseline_run": {...} | null,
         "tolerances": [{"key", "tolerance", "percent", "absolute", "unit"}],
         "rows": [{"function", "model", "deltas": {KEY: {"baseline", "current", "delta",
                   "percent"}}}],            # percent null: from 0, or a side unknown
         "only_in_baseline": [{"function", "model"}], "only_in_current": [...],
         "regressions": [{"function", "model", "key", "baseline", "current", "delta",
                          "percent", "tolerance", "unverifiable", "message"}],
         "passed": bool}
    """
    tolerances = list(tolerances)
    keys = list(dict.fromkeys([*_SHOWN, *(t.key for t in tolerances)]))
    base_rows = {(r["function"], r.get("model")): r for r in baseline.get("rows", ())}
    cur_rows = {(r["function"], r["model"]): r for r in current["rows"]}
    order = sorted(set(base_rows) | set(cur_rows), key=lambda k: (k[0], k[1] is None, k[1] or ""))
    rows, regressions = [], []
    for key in order:
        b, c = base_rows.get(key), cur_rows.get(key)
        if b is None or c is None:
            continue
        deltas = {k: _delta(_value(b, k), _value(c, k)) for k in keys}
        rows.append({"function": key[0], "model": key[1], "deltas": deltas})
        for t in tolerances:
            reg = _check(t, deltas[t.key], key)
            if reg is not None:
                regressions.append(reg)
    return {
        "baseline": baseline.get("_path"),
        "baseline_run": baseline.get("run") if isinstance(baseline.get("run"), dict) else None,
        "tolerances": [t.to_dict() for t in tolerances],
        "rows": rows,
        "only_in_baseline": [{"function": f, "model": m} for f, m in order if (f, m) not in cur_rows],
        "only_in_current": [{"function": f, "model": m} for f, m in order if (f, m) not in base_rows],
        "regressions": regressions,
        "passed": not regressions,
    }


def _check(t: Tolerance, d: Mapping[str, Any], key: tuple[str, str | None]) -> dict[str, Any] | None:
    base, cur = d["baseline"], d["current"]
    unit = COMPARE_KEYS[t.key][1]
    label = _label(*key)
    out = {"function": key[0], "model": key[1], "key": t.key, "baseline": base, "current": cur,
           "delta": d["delta"], "percent": d["percent"], "tolerance": t.text, "unverifiable": False}
    if base is None and cur is None:
        return None  # nothing on either side (no streams, unpriced in both runs)
    if base is None or cur is None:
        side = "this run" if cur is None else "the baseline"
        out["unverifiable"] = True
        out["message"] = (f"{label}: {t.key} cannot be compared: unknown in {side} "
                          f"(baseline {_fmt(base, unit)}, now {_fmt(cur, unit)}); tolerance {t.text}")
        return out
    grew = cur - base
    if t.percent is not None:
        pct = math.inf if base == 0 and cur > 0 else (0.0 if base == 0 else (cur / base - 1) * 100)
        if pct <= t.percent or math.isclose(pct, t.percent, rel_tol=1e-9, abs_tol=1e-9):  # at the tolerance: passes
            return None
        how = "from 0" if math.isinf(pct) else f"{pct:+.1f}%"
    else:
        assert t.absolute is not None
        if grew <= t.absolute or math.isclose(grew, t.absolute, rel_tol=1e-9, abs_tol=1e-12):
            return None
        how = f"+{_fmt(grew, unit)}"
    out["message"] = f"{label}: {t.key} {_fmt(base, unit)} -> {_fmt(cur, unit)} ({how}), tolerance {t.text}"
    return out


# ---------------------------------------------------------------------- the terminal


def _cell(d: Mapping[str, Any], unit: str) -> str:
    if d["baseline"] is None and d["current"] is None:
        return "-"
    if d["delta"] is None:
        return "n/a"
    if d["percent"] is not None:
        return f"{d['percent']:+.1f}%"
    return f"0->{_fmt(d['current'], unit)}"


def render_compare(section: Mapping[str, Any]) -> list[str]:
    """The ``compare`` section as aligned text lines: one row of deltas per function and model
    (relative to the baseline), the rows on one side only, then the regressions."""
    lines = [f"baseline: {section.get('baseline')}"]
    run = section.get("baseline_run") or {}
    if run.get("started"):
        lines[0] += f" (run of {run['started']})"
    rows = section["rows"]
    if rows:
        keys = list(rows[0]["deltas"])
        header = ["function", "model", *(f"{k} Δ" for k in keys)]
        body = [[r["function"], model_label(r["model"]),
                 *(_cell(r["deltas"][k], COMPARE_KEYS[k][1]) for k in keys)] for r in rows]
        widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        lines += [line(header), "  ".join("-" * w for w in widths), *(line(b) for b in body)]
        lines.append("Δ: change from the baseline ('-': neither run has it, 'n/a': one run does not)")
    else:
        lines.append("no function and model in both runs")
    for name, what in (("only_in_baseline", "only in the baseline (not called in this run)"),
                       ("only_in_current", "only in this run (not in the baseline)")):
        if section[name]:
            lines.append(f"{what}: " + ", ".join(_label(r["function"], r["model"]) for r in section[name]))
    tol = section["tolerances"]
    if tol:
        lines.append("tolerances: " + ", ".join(f"{t['key']}:{t['tolerance']}" for t in tol))
        regs = section["regressions"]
        lines.append(f"regressions: {len(regs)}" if regs else "regressions: none beyond the tolerances")
        lines += [f"  {'UNVERIFIABLE' if r['unverifiable'] else 'REGRESSION'} {r['message']}" for r in regs]
    return lines
