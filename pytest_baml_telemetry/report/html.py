"""The report drawn as one self-contained HTML page: :func:`render_html` and :func:`write_html`.

The page draws the data of :func:`~pytest_baml_telemetry.report.build_report` (and the
:func:`~pytest_baml_telemetry.report.model.latency_histograms` of the same source) and
nothing else: the table of the terminal report per function and model, one latency
histogram per row as inline SVG with p50/p95/p99 markers, tokens and cost (unknown ones
shown as unknown, never $0), the budget verdicts, the baseline deltas when the data
carries a ``compare`` section, the ``run`` metadata and the per-test rows when it has them. No network: inline CSS and SVG, no script (a
Content-Security-Policy of ``default-src 'none'`` keeps it so), no external URL. Every
value is HTML-escaped: function names, models and test ids are user data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from os import PathLike
from typing import Any, Union

from ..budgets.text import format_usd, model_label
from .json import check_report, write_atomic

__all__ = ["render_html", "write_html"]

_STATUS = {
    "passed": ("PASS", "pass"),
    "failed": ("FAIL", "fail"),
    "unverifiable": ("UNVERIFIABLE", "unverifiable"),
    "xfailed": ("XFAIL (expected)", "expected"),
}

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde;padding-bottom:4px}
table{border-collapse:collapse;margin:6px 0}th,td{padding:4px 10px;border-bottom:1px solid #e4e6ee;text-align:right;
white-space:nowrap}th{background:#f3f4f8;font-weight:600}td.name,th.name{text-align:left}
tr.total td{font-weight:600;border-top:2px solid #99a}.unknown{color:#a15c00;font-style:italic}
.badge{display:inline-block;min-width:44px;padding:1px 6px;border-radius:4px;font-weight:700;font-size:12px;text-align:center}
.pass{background:#dff3e3;color:#175c2a}.fail{background:#fbe0e0;color:#8a1414}
.unverifiable{background:#fff0cc;color:#7a5200}.expected{background:#e6e9f5;color:#343e73}
.summary{font-size:16px;padding:8px 12px;border-radius:6px;display:inline-block}
.note{color:#555;margin:2px 0}.warn{color:#8a1414;font-weight:600}
figure{display:inline-block;margin:8px 16px 8px 0;vertical-align:top}figcaption{font-weight:600;margin-bottom:2px}
pre{margin:2px 0;white-space:pre-wrap;font:12px/1.35 ui-monospace,Menlo,Consolas,monospace;color:#333}
.budget{margin:10px 0}.budget-label{font-weight:600}.up{color:#8a1414}.down{color:#175c2a}
svg text{font:11px system-ui,sans-serif;fill:#333;stroke:none}svg .bar{fill:#6b8fd6}svg .axis{stroke:#888}
svg .marker{stroke-width:1.5;stroke-dasharray:4 3}svg line.p50{stroke:#2a7a3b}svg text.p50{fill:#2a7a3b}
svg line.p95{stroke:#c06000}svg text.p95{fill:#c06000}svg line.p99{stroke:#b01818}svg text.p99{fill:#b01818}
"""


def _e(value: Any) -> str:
    """``value`` as escaped HTML text (quotes too: safe in attributes)."""
    return escape(str(value), quote=True)


def _ms(ns: float | None) -> str:
    return "-" if ns is None else f"{ns / 1_000_000:,.1f}"


def _unknown(text: str = "unknown", title: str = "") -> str:
    t = f' title="{_e(title)}"' if title else ""
    return f'<span class="unknown"{t}>{_e(text)}</span>'


def _tokens(value: int, unknown: int, calls: int) -> str:
    if unknown and unknown >= calls:
        return _unknown(title=f"{unknown:,} calls with unknown tokens")
    if unknown:
        return f'{value:,}<span class="unknown" title="{unknown:,} calls with unknown tokens (not counted)">*</span>'
    return f"{value:,}"


def _cost(row: Mapping[str, Any]) -> str:
    status = row["cost_status"]
    if status == "unpriced":
        return _unknown("unpriced", "this model has no price: its cost is unknown (not $0)")
    if status == "no usage":
        return "-"
    if status == "partial":
        if row["cost_usd"] == 0:
            return _unknown(title="every priced call had unknown tokens")
        return _e(format_usd(row["cost_usd"])) + _unknown("*", "some calls had unknown tokens (not counted)")
    return _e(format_usd(row["cost_usd"]))


def _total_cost(t: Mapping[str, Any]) -> str:
    text = _e(format_usd(t["cost_usd"]))
    if t["unpriced_models"]:
        if t["cost_usd"] == 0:
            return _unknown(title="unpriced models")
        return text + " + " + _unknown("unpriced")
    if not t["cost_complete"]:
        return text + _unknown("*", "some calls had unknown tokens (not counted)")
    return text


def _row(cells: Iterable[str], names: int = 2, cls: str = "") -> str:
    out = [f'<td class="name">{c}</td>' if i < names else f"<td>{c}</td>" for i, c in enumerate(cells)]
    c = f' class="{cls}"' if cls else ""
    return f"<tr{c}>{''.join(out)}</tr>"


def _numbers(n: Mapping[str, Any], ttfc: bool) -> list[str]:
    calls = n["calls"]
    unknown = n["unknown_token_calls"]
    return [
        f"{calls:,}",
        f"{n['errors']:,}",
        *(_ms(n[k]) for k in ("p50_ns", "p95_ns", "p99_ns", "max_ns")),
        *((_ms(n.get("ttfc_p95_ns")),) if ttfc else ()),
        _tokens(n["input_tokens"], unknown, calls),
        _tokens(n["output_tokens"], unknown, calls),
    ]


def _table(data: Mapping[str, Any]) -> list[str]:
    t = data["totals"]
    if not data["rows"]:
        return ['<p class="note">no BAML calls recorded</p>']
    ttfc = bool(t.get("streams"))
    header = ["function", "model", "calls", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms",
              *(("ttfc p95 ms",) if ttfc else ()), "in tokens", "out tokens", "cost"]
    head = "".join(f'<th class="name">{h}</th>' if i < 2 else f"<th>{h}</th>" for i, h in enumerate(header))
    out = ['<table id="calls">', f"<thead><tr>{head}</tr></thead><tbody>"]
    for r in data["rows"]:
        out.append(_row([_e(r["function"]), _e(model_label(r["model"])), *_numbers(r, ttfc), _cost(r)]))
    out.append(_row(["TOTAL", "", *_numbers(t, ttfc), _total_cost(t)], cls="total"))
    out.append("</tbody></table>")
    if t["unknown_token_calls"]:
        n = t["unknown_token_calls"]
        out.append(f'<p class="note">* {n:,} call{"s" if n != 1 else ""} with unknown tokens (not counted)</p>')
    if t["unpriced_models"]:
        where = f" in {data['price_table']}" if data.get("price_table") else " (no --baml-prices table)"
        out.append(f'<p class="note">unpriced models{_e(where)}: {_e(", ".join(t["unpriced_models"]))} '
                   "(cost unknown, not $0)</p>")
    out.append('<p class="note">percentiles: exact nearest-rank over all calls, failed ones included</p>')
    if ttfc:
        n = t["streams"]
        out.append(f'<p class="note">ttfc: time to first chunk, over the {n:,} successful '
                   f"stream{'s' if n != 1 else ''} ('-': no stream)</p>")
    return out


_W, _H, _L, _R, _T, _B = 560, 190, 44, 16, 40, 34  # svg size and margins


def _svg(h: Mapping[str, Any], index: int) -> str:
    """One histogram as inline SVG: bars, axes, and a dashed marker per percentile."""
    bins = h["bins"]
    lo, hi = h["min_ns"], h["max_ns"]
    title = f"latency of {h['function']} [{model_label(h['model'])}]: {h['calls']:,} calls"
    out = [f'<svg class="histogram" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" role="img" '
           f'aria-labelledby="hist-title-{index}"><title id="hist-title-{index}">{_e(title)}</title>']
    if not bins:
        out.append(f'<text x="{_L}" y="{_T + 20}">no calls</text></svg>')
        return "".join(out)
    plot_w, plot_h = _W - _L - _R, _H - _T - _B
    span = hi - lo

    def x(ns: float) -> float:
        return _L + (plot_w * (ns - lo) / span if span else plot_w / 2)

    top = max(b["count"] for b in bins) or 1
    base = _T + plot_h
    for b in bins:
        x0, x1 = (x(b["lo_ns"]), x(b["hi_ns"])) if span else (_L, _L + plot_w)
        bh = plot_h * b["count"] / top
        out.append(
            f'<rect class="bar" x="{x0:.1f}" y="{base - bh:.1f}" width="{max(x1 - x0 - 1, 1):.1f}" height="{bh:.1f}">'
            f'<title>{_e(_ms(b["lo_ns"]))}–{_e(_ms(b["hi_ns"]))} ms: {b["count"]:,} calls</title></rect>'
        )
    out.append(f'<line class="axis" x1="{_L}" y1="{base}" x2="{_L + plot_w}" y2="{base}"/>')
    out.append(f'<line class="axis" x1="{_L}" y1="{_T}" x2="{_L}" y2="{base}"/>')
    out.append(f'<text x="{_L - 4}" y="{_T + 4}" text-anchor="end">{top:,}</text>')
    out.append(f'<text x="{_L - 4}" y="{base}" text-anchor="end">0</text>')
    out.append(f'<text x="{_L}" y="{base + 14}">{_e(_ms(lo))} ms</text>')
    out.append(f'<text x="{_L + plot_w}" y="{base + 14}" text-anchor="end">{_e(_ms(hi))} ms</text>')
    out.append(f'<text x="{_L + plot_w / 2}" y="{_H - 4}" text-anchor="middle">latency (ms), calls per bin</text>')
    for row, p in enumerate(("p50", "p95", "p99")):
        v = h.get(f"{p}_ns")
        if v is None:
            continue
        mx = x(v)
        anchor = "end" if mx > _L + plot_w * 0.7 else "start"
        dx = -3 if anchor == "end" else 3
        out.append(
            f'<g class="marker-group" data-percentile="{p}">'
            f'<line class="marker {p}" x1="{mx:.1f}" y1="{_T - 2 - 12 * (2 - row)}" x2="{mx:.1f}" y2="{base}"/>'
            f'<text class="{p}" x="{mx + dx:.1f}" y="{_T - 4 - 12 * (2 - row)}" text-anchor="{anchor}">'
            f"{p} {_e(_ms(v))} ms</text></g>"
        )
    out.append("</svg>")
    return "".join(out)


def _histograms(histograms: Iterable[Mapping[str, Any]]) -> list[str]:
    out = []
    for i, h in enumerate(histograms):
        cap = f"{_e(h['function'])} <span class=\"note\">[{_e(model_label(h['model']))}]</span>"
        out.append(f'<figure class="latency"><figcaption>{cap}</figcaption>{_svg(h, i)}</figure>')
    return out


def _verdict(v: Mapping[str, Any], label: str) -> str:
    status = v.get("status") or ("passed" if v["passed"] else "failed")
    mark, cls = _STATUS.get(status, (status.upper(), "fail"))
    text = v["headline"] if v["passed"] else v["message"]
    first, *rest = str(text).split("\n")
    if first.startswith(label + ": "):
        first = first[len(label) + 2 :]
    more = f"<pre>{_e(chr(10).join(rest))}</pre>" if rest else ""
    return (f'<tr class="verdict {cls}"><td><span class="badge {cls}">{_e(mark)}</span></td>'
            f'<td class="name">{_e(v["key"])}</td><td class="name">{_e(first)}{more}</td></tr>')


def _budgets(data: Mapping[str, Any]) -> list[str]:
    budgets = data["budgets"]
    if not budgets:
        return ['<p class="note">no budgets</p>']
    s = data["summary"]
    extra = "".join(
        f", {s[k]} {what}" for k, what in (("budgets_unverifiable", "unverifiable"), ("budgets_expected", "xfailed"))
        if s.get(k)
    )
    out = [f'<p id="budget-summary">{s["budgets"]} checked, {s["budgets_failed"]} failed{_e(extra)}</p>']
    for b in budgets:
        label = str(b["budget"])
        cls = "pass" if b["passed"] else "expected" if b["expected"] else "fail"
        out.append(f'<div class="budget {cls}-budget"><div class="budget-label">{_e(b["scope"])}: {_e(label)}</div>')
        out.append('<table class="verdicts"><tbody>')
        out.extend(_verdict(v, label) for v in b["verdicts"])
        out.append("</tbody></table></div>")
    return out


def _value(key: str, value: Any) -> str:
    """A compare value: ``*_ns`` in ms, ``*_pct``/``*percent*`` in %, numbers grouped, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return _e("yes" if value else "no")
    if isinstance(value, (int, float)):
        if key.endswith("_ns"):
            return _e(f"{value / 1_000_000:+,.1f} ms" if "delta" in key else _ms(value))
        if key.endswith(("_pct", "_percent")) or "percent" in key:
            return _e(f"{value:+.1f}%")
        if key.endswith("_usd"):
            return _e(("+" if value > 0 else "") + format_usd(value))
        return _e(f"{value:,}" if isinstance(value, int) else f"{value:,.4g}")
    if isinstance(value, Mapping):
        return "; ".join(f"{_e(k)}: {_value(str(k), v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_value(key, v) for v in value)
    return _e(value)


def _records(name: str, items: list[Any]) -> list[str]:
    """A list of records (dicts) as a table, the keys of every record as columns."""
    if not all(isinstance(i, Mapping) for i in items):
        return [f'<p class="note">{_e(name)}: {_value(name, items)}</p>']
    keys: list[str] = []
    for i in items:
        keys.extend(str(k) for k in i if str(k) not in keys)
    head = "".join(f'<th class="name">{_e(k)}</th>' for k in keys)
    out = [f'<table class="compare" data-name="{_e(name)}"><caption class="name">{_e(name)}</caption>'
           f"<thead><tr>{head}</tr></thead><tbody>"]
    for i in items:
        out.append("<tr>" + "".join(f'<td class="name">{_value(k, i.get(k))}</td>' for k in keys) + "</tr>")
    out.append("</tbody></table>")
    return out


def _unit(key: str) -> str:
    """The unit of a compared key (as :mod:`.compare` names them): latency, cost, rate or a count."""
    if key in ("mean", "max_latency", "max_ttfc") or key.startswith("ttfc_") or key[:1] == "p" and key[1:].isdigit():
        return "ns"
    return {"cost": "usd", "error_rate": "ratio"}.get(key, "count")


def _amount(value: Any, unit: str) -> str:
    if value is None:
        return "unknown"
    if unit == "ns":
        return f"{value / 1_000_000:,.1f} ms"
    if unit == "usd":
        return format_usd(value)
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"


def _delta_cell(key: str, d: Any) -> str:
    """One delta: ``baseline -> current (+12.5%)``, red when it grew, green when it fell."""
    if not isinstance(d, Mapping):
        return _value(key, d)
    base, cur, delta, pct = d.get("baseline"), d.get("current"), d.get("delta"), d.get("percent")
    if base is None and cur is None:
        return "-"
    unit = _unit(key)
    text = f"{_amount(base, unit)} → {_amount(cur, unit)}"
    if delta is None:
        return f'{_e(text)} {_unknown("(not comparable)")}'
    how = f"{pct:+.1f}%" if pct is not None else "from 0"
    cls = "up" if delta > 0 else "down" if delta < 0 else ""
    return f'{_e(text)} <span class="{cls}">({_e(how)})</span>'


def _compare_section(c: Mapping[str, Any]) -> list[str]:
    """The ``compare`` section of :func:`~pytest_baml_telemetry.report.compare.compare_reports`."""
    run = c.get("baseline_run") or {}
    when = f" (run of {run['started']})" if isinstance(run, Mapping) and run.get("started") else ""
    out = [f'<p id="baseline">baseline: {_e(c.get("baseline"))}{_e(when)}</p>']
    rows = c["rows"]
    if rows:
        keys = list(rows[0]["deltas"])
        head = "".join(f'<th class="name">{h}</th>' for h in ("function", "model")) + "".join(
            f"<th>{_e(k)} Δ</th>" for k in keys
        )
        out.append(f'<table id="compare-rows"><thead><tr>{head}</tr></thead><tbody>')
        for r in rows:
            cells = [_e(r["function"]), _e(model_label(r.get("model")))]
            cells.extend(_delta_cell(k, r["deltas"].get(k)) for k in keys)
            out.append(_row(cells))
        out.append("</tbody></table>")
    for key, what in (("only_in_baseline", "only in the baseline"), ("only_in_current", "only in this run")):
        items = c.get(key) or []
        if items:
            names = ", ".join(f"{r.get('function')} [{model_label(r.get('model'))}]" for r in items)
            out.append(f'<p class="note" id="{key}">{what}: {_e(names)}</p>')
    tolerances = c.get("tolerances") or []
    if tolerances:
        shown = ", ".join(f"{t.get('key')}:{t.get('tolerance')}" for t in tolerances)
        out.append(f'<p class="note">tolerances: {_e(shown)}</p>')
    regressions = c.get("regressions") or []
    if regressions:
        out.append('<table id="regressions"><tbody>')
        for r in regressions:
            mark, cls = ("UNVERIFIABLE", "unverifiable") if r.get("unverifiable") else ("FAIL", "fail")
            out.append(f'<tr class="verdict {cls}"><td><span class="badge {cls}">{mark}</span></td>'
                       f'<td class="name">{_e(r.get("message", ""))}</td></tr>')
        out.append("</tbody></table>")
    elif tolerances:
        out.append('<p class="note" id="no-regressions"><span class="badge pass">PASS</span> no regression beyond tolerance</p>')
    return out


def _compare(section: Any) -> list[str]:
    """The baseline comparison: the shape :mod:`.compare` writes, else drawn from whatever
    shape the data gives (scalars as notes, lists of records as tables)."""
    rows = section.get("rows") if isinstance(section, Mapping) else None
    if isinstance(rows, list) and all(isinstance(r, Mapping) and isinstance(r.get("deltas"), Mapping) for r in rows):
        return _compare_section(section)
    if not isinstance(section, Mapping):
        return [f'<p class="note">{_value("compare", section)}</p>']
    out = []
    for k, v in section.items():
        if isinstance(v, list) and v:
            out.extend(_records(str(k), v))
        elif isinstance(v, Mapping) and v and all(isinstance(x, Mapping) for x in v.values()):
            out.extend(_records(str(k), [{"name": n, **x} for n, x in v.items()]))
        else:
            out.append(f'<p class="note">{_e(k)}: {_value(str(k), v)}</p>')
    return out


def _run(run: Any) -> list[str]:
    """The ``run`` metadata (when, versions, workers, the masked pytest arguments) as one line."""
    if not isinstance(run, Mapping):
        return []
    parts = []
    if run.get("started"):
        parts.append(f"started {run['started']}" + (f", finished {run['finished']}" if run.get("finished") else ""))
    python = " ".join(str(x) for x in (run.get("python_implementation"), run.get("python")) if x)
    for label, value in (("Python", python), ("baml-py", run.get("baml_py")), ("pytest-baml-telemetry", run.get("plugin"))):
        if value:
            parts.append(f"{label} {value}" if label != "Python" else value)
    if run.get("xdist_workers"):
        parts.append(f"{run['xdist_workers']} xdist workers")
    out = [f'<p class="note" id="run">{_e(" · ".join(parts))}</p>'] if parts else []
    if run.get("pytest_args"):
        out.append(f'<p class="note" id="args">pytest {_e(" ".join(str(a) for a in run["pytest_args"]))}</p>')
    return out


def _tests(tests: Any) -> list[str]:
    """The per-test rows (calls, errors, tokens, cost per test id), folded: no script needed."""
    if not isinstance(tests, list) or not tests:
        return []
    n = len(tests)
    out = [f'<details id="tests"><summary>Per test ({n:,} test{"s" if n != 1 else ""} with BAML calls)</summary>',
           '<table id="tests-table"><thead><tr><th class="name">test</th><th>calls</th><th>errors</th>'
           "<th>in tokens</th><th>out tokens</th><th>cost</th></tr></thead><tbody>"]
    for t in tests:
        unknown = t.get("unknown_token_calls") or 0
        cells = [_e(t.get("test_id")), f"{t.get('calls', 0):,}", f"{t.get('errors', 0):,}"]
        for k in ("input_tokens", "output_tokens"):
            v = t.get(k)
            cells.append(_unknown() if v is None else f"{v:,}" + (_unknown("*") if unknown else ""))
        cells.append(_cost(t) if t.get("cost_status") in ("priced", "partial", "unpriced", "no usage") else
                     (_unknown() if t.get("cost_usd") is None else _e(format_usd(t["cost_usd"]))))
        out.append(_row(cells, names=1))
    out.append("</tbody></table></details>")
    return out


def _summary(data: Mapping[str, Any]) -> list[str]:
    s = data["summary"]
    ok = s["passed"]
    cls, word = ("pass", "PASSED") if ok else ("fail", "FAILED")
    n = s["calls"]
    regressions = f", {s['regressions']} regression{'s' if s['regressions'] != 1 else ''}" if "regressions" in s else ""
    out = [f'<p id="summary" class="summary {cls}">{word}: {n:,} BAML call{"s" if n != 1 else ""}, '
           f'{s["budgets"]} budget{"s" if s["budgets"] != 1 else ""}, {s["budgets_failed"]} failed{_e(regressions)}</p>',
           *_run(data.get("run"))]
    nr = data.get("not_recorded") or {}
    if nr.get("count"):
        c = nr["count"]
        out.append(f'<p class="warn">NOT RECORDED: {c:,} BAML call event{"s" if c != 1 else ""} could not be recorded:</p>')
        out.extend(f'<p class="note">{count:,} x {_e(reason)}</p>' for reason, count in nr["reasons"].items())
    if not s.get("complete", True):
        out.append('<p class="warn">INCOMPLETE: the data does not cover the whole run:</p>')
        out.extend(f'<p class="note">{_e(r)}</p>' for r in s.get("incomplete", ()))
    return out


def render_html(data: Mapping[str, Any], histograms: Iterable[Mapping[str, Any]] = ()) -> str:
    """The report as one self-contained HTML page (a str).

    ``data`` is :func:`~pytest_baml_telemetry.report.build_report`'s (``ValueError`` if it
    is not report data); ``histograms`` is
    :func:`~pytest_baml_telemetry.report.model.latency_histograms` of the same source (none:
    no latency section). A ``compare`` section in ``data`` is drawn as the baseline deltas.
    """
    check_report(data)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>BAML telemetry report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>BAML telemetry report</h1>",
        *_summary(data),
        '<h2 id="calls-title">Calls per function and model</h2>',
        *_table(data),
        *_tests(data.get("tests")),
    ]
    hs = list(histograms)
    if hs:
        parts.append('<h2 id="latency-title">Latency</h2>')
        parts.extend(_histograms(hs))
    parts.append('<h2 id="budgets-title">Budgets</h2>')
    parts.extend(_budgets(data))
    if data.get("compare") is not None:
        parts.append('<h2 id="compare-title">Compared with the baseline</h2><div id="compare">')
        parts.extend(_compare(data["compare"]))
        parts.append("</div>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_html(
    data: Mapping[str, Any], path: Union[str, PathLike[str]], histograms: Iterable[Mapping[str, Any]] = ()
) -> None:
    """Write :func:`render_html` to ``path`` (UTF-8), atomically (see :func:`.json.write_atomic`)."""
    write_atomic(render_html(data, histograms), path)
