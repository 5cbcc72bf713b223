"""Unit tests of the HTML report (:mod:`pytest_baml_telemetry.report.html`) and the latency
histograms (:func:`pytest_baml_telemetry.report.model.latency_histograms`): user data is
escaped (a ``<script>`` function name is text, never markup, also in Chromium), unknown
tokens and unpriced models never read $0, every verdict status, the TTFC column, the
baseline deltas, atomic writes; and the Chromium check fails (never skips) without Chromium."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_report_html import chromium_binary, external_references, parse, render

from pytest_baml_telemetry.budgets import Aggregator, Budget, PriceTable, evaluate
from pytest_baml_telemetry.report import build_report
from pytest_baml_telemetry.report.html import render_html, write_html
from pytest_baml_telemetry.report.model import latency_histograms

MS = 1_000_000
EVIL = "</td></tr></table><script>alert('x')</script>"
EVIL_MODEL = '"><img src=x onerror="alert(1)">'
EVIL_TEST = "tests/test_a.py::test_one[<script>document.write(1)</script>]"
PRICES = PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}, source="prices.toml")


def evil_aggregator() -> Aggregator:
    agg = Aggregator()
    agg.current_test_id = EVIL_TEST
    for i in range(1, 11):
        agg.record(EVIL, EVIL_MODEL, i * MS, True, 10, 2)
    return agg


def evil_page() -> str:
    agg = evil_aggregator()
    verdicts = evaluate(Budget(max_calls=1, name=f"<b>{EVIL}</b>", function=EVIL), agg, PRICES, scope=EVIL_TEST)
    data = build_report(agg, PRICES, verdicts)
    return render_html(data, latency_histograms(agg))


def test_a_script_function_name_is_escaped_everywhere() -> None:
    html = evil_page()
    for raw in (EVIL, EVIL_MODEL, EVIL_TEST, "<script", "<img", "onerror=\""):
        assert raw not in html
    assert external_references(html) == []
    assert external_references(html.replace("</h1>", "</h1><img src=x>", 1)) == ["<img>", "img src="]  # it can fail
    page = parse(html)
    assert page.all("script") == [] and page.all("img") == []
    (row, total) = page.one("table", id="calls").rows()[1:]
    assert row[:3] == [EVIL, EVIL_MODEL, "10"] and total[0] == "TOTAL"
    assert page.one("figure", cls="latency").one("figcaption").words() == f"{EVIL} [{EVIL_MODEL}]"
    label = page.one("div", cls="budget-label").words()
    assert label == f'{EVIL_TEST}: budget "<b>{EVIL}</b>" [function="{EVIL}"]'  # repr quoting, as the terminal shows
    (verdict,) = page.one("table", cls="verdicts").rows()
    assert verdict[0] == "FAIL" and f"{EVIL} [{EVIL_MODEL}]" in verdict[2] and EVIL_TEST in verdict[2]


def test_chromium_shows_the_script_name_as_text_and_runs_nothing(tmp_path: Path) -> None:
    path = tmp_path / "evil.html"
    path.write_text(evil_page(), encoding="utf-8")
    page = render(path)  # no console message: nothing ran, nothing was blocked
    assert page.all("script") == [] and page.all("img") == []
    assert page.one("table", id="calls").rows()[1][:2] == [EVIL, EVIL_MODEL]


def test_unknown_tokens_and_unpriced_models_never_read_zero_dollars() -> None:
    agg = Aggregator()
    agg.record("Extract", "gpt-4o", 5 * MS, True, 1_000, 100)
    agg.record("Extract", "gpt-4o", 6 * MS, True, None, None)  # unknown tokens: the cost is partial
    agg.record("Guess", "gpt-4o", 7 * MS, True, None, None)  # only unknown tokens
    agg.record("Other", "claude-x", 8 * MS, True, 10, 10)  # unpriced
    page = parse(render_html(build_report(agg, PRICES), latency_histograms(agg)))
    rows = {r[0]: r for r in page.one("table", id="calls").rows()[1:]}
    assert rows["Extract"][-3:] == ["1,000*", "100*", "$0.0035*"]
    assert rows["Guess"][-3:] == ["unknown", "unknown", "unknown"]
    assert rows["Other"][-1] == "unpriced"
    assert rows["TOTAL"][-1] == "$0.0035 + unpriced"
    cells = [c for r in rows.values() for c in r]
    assert not any(c.startswith("$0") and c.rstrip("*") in ("$0", "$0.0") for c in cells)
    notes = [p.words() for p in page.all("p", cls="note")]
    assert "* 2 calls with unknown tokens (not counted)" in notes
    assert "unpriced models in prices.toml: claude-x (cost unknown, not $0)" in notes


def test_every_verdict_status_has_its_badge() -> None:
    agg = Aggregator()
    for i in range(1, 5):
        agg.record("F", "m", i * 100 * MS, True, 1, 1)
    verdicts = [
        *evaluate(Budget(p95="1s", name="ok"), agg),
        *evaluate(Budget(max_calls=1, name="broken"), agg),
        *evaluate(Budget(max_errors=0, name="lost"), agg, unverifiable="xdist worker gw1 was lost"),
        *(v.to_dict() | {"expected": True} for v in evaluate(Budget(max_calls=0, name="xf"), agg, scope="t.py::test_x")),
    ]
    page = parse(render_html(build_report(agg, None, verdicts)))
    badges = [(b.words(), b.attrs["class"]) for b in page.all("span", cls="badge")]
    labels = [d.words() for d in page.all("div", cls="budget-label")]
    assert [label.split(" [")[0] for label in labels] == [
        "session: budget 'broken'", "session: budget 'lost'", "session: budget 'ok'", "t.py::test_x: budget 'xf'"
    ]
    assert badges == [("FAIL", "badge fail"), ("UNVERIFIABLE", "badge unverifiable"), ("PASS", "badge pass"),
                      ("XFAIL (expected)", "badge expected")]
    assert page.one(id="budget-summary").words() == "4 checked, 2 failed, 1 unverifiable, 1 xfailed"
    assert page.one(id="summary").words() == "FAILED: 4 BAML calls, 4 budgets, 2 failed"
    assert "xdist worker gw1 was lost" in page.one("tr", cls="unverifiable").words()


def test_the_ttfc_column_and_incomplete_data() -> None:
    agg = Aggregator()
    agg.record("S", "m", 900 * MS, True, 1, 1, streaming=True, time_to_first_chunk=120 * MS)
    agg.record("S", "m", 800 * MS, True, 1, 1)
    data = build_report(agg, None, incomplete=["xdist worker gw0 was lost; its calls are missing"])
    page = parse(render_html(data, latency_histograms(agg)))
    header, row = page.one("table", id="calls").rows()[:2]
    assert header[8] == "ttfc p95 ms" and row[8] == "120.0"
    assert page.one(id="summary").words().startswith("FAILED: 2 BAML calls")
    assert "INCOMPLETE: the data does not cover the whole run:" in page.words()
    assert "xdist worker gw0 was lost; its calls are missing" in page.words()


def test_no_calls() -> None:
    page = parse(render_html(build_report(Aggregator()), latency_histograms(Aggregator())))
    assert page.one(id="summary").words() == "PASSED: 0 BAML calls, 0 budgets, 0 failed"
    assert "no BAML calls recorded" in page.words() and page.all("svg") == [] and page.all(id="calls") == []


COMPARE = {
    "baseline": "old/<report>.json",
    "baseline_run": {"started": "2026-11-30T10:00:00Z"},
    "tolerances": [{"key": "p95", "tolerance": "10%", "percent": 10.0, "absolute": None, "unit": "ns"}],
    "rows": [
        {"function": EVIL, "model": "gpt-4o", "deltas": {
            "p95": {"baseline": 100 * MS, "current": 150 * MS, "delta": 50 * MS, "percent": 50.0},
            "tokens": {"baseline": 1_000, "current": 900, "delta": -100, "percent": -10.0},
            "cost": {"baseline": 0.01, "current": None, "delta": None, "percent": None},
            "ttfc_p95": {"baseline": None, "current": None, "delta": None, "percent": None},
            "error_rate": {"baseline": 0.0, "current": 0.25, "delta": 0.25, "percent": None},
        }},
    ],
    "only_in_baseline": [{"function": "Gone", "model": None}],
    "only_in_current": [],
    "regressions": [{"function": EVIL, "model": "gpt-4o", "key": "p95", "baseline": 100 * MS, "current": 150 * MS,
                     "delta": 50 * MS, "percent": 50.0, "tolerance": "10%", "unverifiable": False,
                     "message": f"{EVIL} / gpt-4o: p95 100.0ms -> 150.0ms (+50.0%), tolerance 10%"}],
    "passed": False,
}


def test_baseline_deltas_when_the_data_compares() -> None:
    agg = Aggregator()
    agg.record(EVIL, "gpt-4o", 150 * MS, True, 900, 0)
    data = build_report(agg, PRICES) | {"compare": COMPARE}
    html = render_html(data)
    assert EVIL not in html
    page = parse(html)
    assert page.one(id="baseline").words() == "baseline: old/<report>.json (run of 2026-11-30T10:00:00Z)"
    header, row = page.one("table", id="compare-rows").rows()
    assert header == ["function", "model", "p95 Δ", "tokens Δ", "cost Δ", "ttfc_p95 Δ", "error_rate Δ"]
    assert row == [EVIL, "gpt-4o", "100.0 ms → 150.0 ms (+50.0%)", "1,000 → 900 (-10.0%)",
                   "$0.01 → unknown (not comparable)", "-", "0.0% → 25.0% (from 0)"]
    cells = page.one("table", id="compare-rows").all("span")
    assert [c.attrs.get("class") for c in cells] == ["up", "down", "unknown", "up"]
    assert page.one(id="only_in_baseline").words() == "only in the baseline: Gone [no model]"
    assert page.one("table", id="regressions").rows() == [["FAIL", COMPARE["regressions"][0]["message"]]]
    assert parse(render_html(build_report(agg))).all(id="compare") == []


def test_a_compare_section_of_another_shape_is_still_shown_escaped() -> None:
    data = build_report(Aggregator()) | {"compare": {"note": EVIL, "items": [{"function": EVIL, "p95_ns": 2 * MS}]}}
    html = render_html(data)
    assert EVIL not in html
    page = parse(html).one(id="compare")
    assert f"note: {EVIL}" in page.words()
    assert page.one("table").rows()[1:] == [[EVIL, "2.0"]]


def test_histograms_cover_every_call_and_mark_the_percentiles() -> None:
    agg = Aggregator()
    for i in range(1, 101):
        agg.record("A", "m", i * MS, i % 7 != 0, 1, 1)
    agg.record("B", None, 5 * MS, True, 1, 1)
    agg.record("B", None, 5 * MS, True, 1, 1)
    a, b = latency_histograms(agg, bins=10)
    assert (a["function"], a["model"], a["calls"], a["min_ns"], a["max_ns"]) == ("A", "m", 100, MS, 100 * MS)
    assert (a["p50_ns"], a["p95_ns"], a["p99_ns"]) == (50 * MS, 95 * MS, 99 * MS)
    assert len(a["bins"]) == 10 and sum(x["count"] for x in a["bins"]) == 100
    assert a["bins"][0]["lo_ns"] == MS and a["bins"][-1]["hi_ns"] == 100 * MS
    assert all(x["hi_ns"] == y["lo_ns"] for x, y in zip(a["bins"], a["bins"][1:]))
    assert b["bins"] == [{"lo_ns": 5 * MS, "hi_ns": 5 * MS, "count": 2}]
    assert [h["function"] for h in latency_histograms(agg)] == [r["function"] for r in build_report(agg)["rows"]]
    svg = parse(render_html(build_report(agg), [a, b])).all("svg", cls="histogram")
    assert len(svg) == 2
    assert [g.words() for g in svg[0].all("g", cls="marker-group")] == ["p50 50.0 ms", "p95 95.0 ms", "p99 99.0 ms"]
    assert len(svg[1].all("rect", cls="bar")) == 1


@pytest.mark.parametrize(
    ("bins", "error", "text"),
    [(0, ValueError, "latency_histograms(bins=0): expected an int"), ("9", TypeError, "latency_histograms(bins='9')"),
     (True, TypeError, "latency_histograms(bins=True)")],
)
def test_histogram_arguments_are_checked(bins: object, error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        latency_histograms(Aggregator(), bins=bins)  # type: ignore[arg-type]
    assert str(info.value).startswith(text)
    with pytest.raises(TypeError, match=r"latency_histograms\(source=\[\]\): expected an Aggregator or CallStats"):
        latency_histograms([])  # type: ignore[arg-type]


def test_render_refuses_what_is_not_report_data() -> None:
    with pytest.raises(ValueError, match="not report data"):
        render_html({"rows": []})


def test_write_html_replaces_the_file_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.html"
    path.write_text("old")
    seen = []
    real = os.replace

    def spy(src: str, dst: object) -> None:
        seen.append((os.path.dirname(src), path.read_text()))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", spy)
    write_html(build_report(evil_aggregator()), path, latency_histograms(evil_aggregator()))
    monkeypatch.undo()
    assert seen == [(str(tmp_path), "old")]
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_without_chromium_the_check_fails_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):
        chromium_binary()


def test_run_metadata_and_per_test_rows_are_shown_escaped() -> None:
    data = build_report(evil_aggregator(), PRICES) | {
        "run": {"started": "2026-12-01T10:00:00.000+00:00", "finished": "2026-12-01T10:01:00.000+00:00",
                "python": "3.11.7", "python_implementation": "CPython", "baml_py": "0.226.3", "plugin": "0.1.0",
                "xdist_workers": 2, "pytest_args": ["-k", EVIL, "--token=***"]},
        "tests": [{"test_id": EVIL_TEST, "calls": 10, "ok": 10, "errors": 0, "input_tokens": None, "output_tokens": 20,
                   "unknown_token_calls": 1, "cost_usd": None, "cost_status": "unpriced", "functions": [EVIL]}],
    }
    html = render_html(data)
    assert EVIL not in html and EVIL_TEST not in html
    page = parse(html)
    assert page.one(id="run").words() == (
        "started 2026-12-01T10:00:00.000+00:00, finished 2026-12-01T10:01:00.000+00:00 · CPython 3.11.7 · "
        "baml-py 0.226.3 · pytest-baml-telemetry 0.1.0 · 2 xdist workers"
    )
    assert page.one(id="args").words() == f"pytest -k {EVIL} --token=***"
    assert page.one("table", id="tests-table").rows()[1] == [EVIL_TEST, "10", "0", "unknown", "20*", "unpriced"]
