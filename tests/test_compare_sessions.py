"""Baselines (issue 16): ``--baml-compare=PATH`` and ``--baml-compare-fail=SPEC`` in real sessions.

A first run writes the baseline (``--baml-report-json``); a second run, its latency
scripted higher through ``BAML_TEST_LATENCY``, compares with it. Tolerances follow
pytest-benchmark's ``--benchmark-compare-fail``: ``KEY:N%`` and ``KEY:VALUE``.
"""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers import no_crash

APP = textwrap.dedent(
    """
    import os
    import pytest
    from pytest_baml_telemetry import faults
    from pytest_baml_telemetry.fake import Usage

    LATENCY = os.environ.get("BAML_TEST_LATENCY", "100ms")
    TOKENS = int(os.environ.get("BAML_TEST_TOKENS", "100"))
    ONLY = os.environ.get("BAML_TEST_ONLY", "")

    @pytest.mark.parametrize("i", range(4))
    def test_hello(baml_fake, i):
        baml_fake.respond("SayHello", "hi", usage=Usage(TOKENS, 10), model="gpt-4o",
                          provider="openai", latency=LATENCY)
        baml_fake.SayHello(name="a")

    def test_stream(baml_fake):
        baml_fake.respond("Stream", "hello", partials=["h", "he"], latency=LATENCY,
                          usage=Usage(5, 5), model="gpt-4o")
        s = baml_fake.stream.Stream(name="x")
        list(s)
        s.get_final_response()

    def test_errors(baml_fake):
        if os.environ.get("BAML_TEST_FAIL"):
            baml_fake.fail("Flaky", faults.http_error(500), model="gpt-4o", latency="10ms")
            with pytest.raises(Exception):
                baml_fake.Flaky(name="b")
        baml_fake.respond("Flaky", "ok", usage=Usage(1, 1), model="gpt-4o", latency="10ms")
        baml_fake.Flaky(name="c")

    def test_one_side(baml_fake):
        name = ONLY or "Old"
        baml_fake.respond(name, "ok", usage=Usage(1, 1), model="gpt-4o", latency="10ms")
        getattr(baml_fake, name)(name="d")
    """
)

PRICES = '[models."gpt-4o"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\n'


@pytest.fixture(autouse=True)
def _app(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makefile(".toml", prices=PRICES)
    pytester.makepyfile(test_app=APP)
    for name in ("BAML_TEST_LATENCY", "BAML_TEST_TOKENS", "BAML_TEST_ONLY", "BAML_TEST_FAIL"):
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--baml-prices=prices.toml", *args)
    return result, no_crash(result)


def baseline(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, out = run(pytester, "--baml-report-json=base.json")
    assert result.ret == pytest.ExitCode.OK, out
    monkeypatch.setenv("BAML_TEST_ONLY", "New")


def report(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "now.json").read_text())


def test_a_latency_regression_fails_the_run_naming_it(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline(pytester, monkeypatch)
    monkeypatch.setenv("BAML_TEST_LATENCY", "150ms")
    result, out = run(pytester, "--baml-compare=base.json", "--baml-compare-fail=p95:10%,cost:5%",
                      "--baml-report-json=now.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "7 passed" in out  # every test passed: the comparison fails the run
    result.stdout.fnmatch_lines([
        "*BAML baseline regressions*",
        "baseline: *base.json (run of *)",
        "function*model*p50 Δ*p95 Δ*p99 Δ*ttfc_p95 Δ*tokens Δ*cost Δ*error_rate Δ*",
        "SayHello*gpt-4o*+50.0%*+50.0%*+50.0%*-*+0.0%*+0.0%*+0.0%",
        "Stream*gpt-4o*+50.0%*+50.0%*+50.0%*+50.0%*",
        "only in the baseline (not called in this run): Old / gpt-4o",
        "only in this run (not in the baseline): New / gpt-4o",
        "tolerances: p95:10%, cost:5%",
        "regressions: 2",
        "  REGRESSION SayHello / gpt-4o: p95 100.0ms -> 150.0ms (+50.0%), tolerance 10%",
        "  REGRESSION Stream / gpt-4o: p95 100.0ms -> 150.0ms (+50.0%), tolerance 10%",
    ])
    data = report(pytester)
    section = data["compare"]
    assert section["passed"] is False and data["summary"]["passed"] is False
    assert data["summary"]["regressions"] == 2
    assert [(r["function"], r["key"], r["baseline"], r["current"]) for r in section["regressions"]] == [
        ("SayHello", "p95", 100_000_000, 150_000_000), ("Stream", "p95", 100_000_000, 150_000_000),
    ]
    assert section["only_in_baseline"] == [{"function": "Old", "model": "gpt-4o"}]
    assert section["only_in_current"] == [{"function": "New", "model": "gpt-4o"}]
    hello = next(r for r in section["rows"] if r["function"] == "SayHello")
    assert hello["deltas"]["p95"] == {"baseline": 100_000_000, "current": 150_000_000,
                                      "delta": 50_000_000, "percent": pytest.approx(50.0)}
    assert hello["deltas"]["ttfc_p95"] == {"baseline": None, "current": None, "delta": None, "percent": None}
    stream = next(r for r in section["rows"] if r["function"] == "Stream")
    # the first chunk comes at latency / (partials + 1): 33ms -> 50ms
    assert stream["deltas"]["ttfc_p95"]["percent"] == pytest.approx(50.0, abs=0.1)
    assert section["tolerances"] == [
        {"key": "p95", "tolerance": "10%", "percent": 10.0, "absolute": None, "unit": "ns"},
        {"key": "cost", "tolerance": "5%", "percent": 5.0, "absolute": None, "unit": "usd"},
    ]


def test_within_tolerance_passes_and_still_shows_the_deltas(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline(pytester, monkeypatch)
    monkeypatch.setenv("BAML_TEST_LATENCY", "105ms")
    result, out = run(pytester, "--baml-compare=base.json", "--baml-compare-fail=p95:10%,p99:0.01,max_latency:6ms",
                      "--baml-report-json=now.json")
    assert result.ret == pytest.ExitCode.OK, out
    result.stdout.fnmatch_lines(["*BAML baseline comparison*", "SayHello*gpt-4o*+5.0%*", "regressions: none beyond the tolerances"])
    assert report(pytester)["compare"]["passed"] is True and report(pytester)["summary"]["passed"] is True


def test_absolute_tolerances_tokens_cost_and_error_rate(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline(pytester, monkeypatch)
    monkeypatch.setenv("BAML_TEST_LATENCY", "140ms")
    monkeypatch.setenv("BAML_TEST_TOKENS", "200")
    monkeypatch.setenv("BAML_TEST_FAIL", "1")
    result, out = run(pytester, "--baml-compare=base.json",
                      "--baml-compare-fail=p95:30ms,tokens:10%,cost:0.0001,error_rate:5%", "--baml-report-json=now.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.stdout.fnmatch_lines([
        "regressions: 5",
        "  REGRESSION Flaky / gpt-4o: error_rate 0.0% -> 50.0% (from 0), tolerance 5%",
        "  REGRESSION SayHello / gpt-4o: p95 100.0ms -> 140.0ms (+40.0ms), tolerance 30ms",
        "  REGRESSION SayHello / gpt-4o: tokens 440 -> 840 (+90.9%), tolerance 10%",
        "  REGRESSION SayHello / gpt-4o: cost $0.0014 -> $0.0024 (+$0.001), tolerance 0.0001",
        "  REGRESSION Stream / gpt-4o: p95 100.0ms -> 140.0ms (+40.0ms), tolerance 30ms",
    ])
    flaky = next(r for r in report(pytester)["compare"]["regressions"] if r["function"] == "Flaky")
    assert flaky["percent"] is None and flaky["delta"] == pytest.approx(0.5)  # from 0: no percentage, JSON-safe


def test_the_compare_table_of_the_budgets_file(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".toml", budgets='[compare]\np95 = "10%"\ncost = 0.5\n')
    baseline(pytester, monkeypatch)
    monkeypatch.setenv("BAML_TEST_LATENCY", "150ms")
    result, out = run(pytester, "--baml-compare=base.json", "--baml-budgets=budgets.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.stdout.fnmatch_lines(["tolerances: p95:10%, cost:0.5", "regressions: 2"])
    # the command line wins per key
    result, out = run(pytester, "--baml-compare=base.json", "--baml-budgets=budgets.toml", "--baml-compare-fail=p95:60%")
    assert result.ret == pytest.ExitCode.OK, out
    result.stdout.fnmatch_lines(["tolerances: p95:60%, cost:0.5", "regressions: none beyond the tolerances"])


def test_the_compare_table_next_to_budgets(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".toml", budgets="[compare]\np99 = '5%'\n\n[[budget]]\nname = 'few'\nmax_calls = 100\n")
    baseline(pytester, monkeypatch)
    monkeypatch.setenv("BAML_TEST_LATENCY", "150ms")
    result, out = run(pytester, "--baml-compare=base.json", "--baml-budgets=budgets.toml", "--baml-report")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.stdout.fnmatch_lines(["    PASS max_calls*", "*BAML baseline regressions*", "  REGRESSION SayHello / gpt-4o: p99 *"])


def test_comparing_under_xdist(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline(pytester, monkeypatch)
    monkeypatch.setenv("BAML_TEST_LATENCY", "150ms")
    result, out = run(pytester, "-p", "xdist", "-n", "2", "--baml-compare=base.json", "--baml-compare-fail=p50:10%",
                      "--baml-report-json=now.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    assert "2 workers" in out
    data = report(pytester)
    assert data["run"]["xdist_workers"] == 2
    assert [(r["function"], r["key"]) for r in data["compare"]["regressions"]] == [("SayHello", "p50"), ("Stream", "p50")]
    assert out.count("REGRESSION") == 2  # shown by the controller only
    assert len(data["tests"]) == 7


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("p96:10%", "'p96:10%' (item 1 of 1 in 'p96:10%'): unknown key 'p96'; expected one of p50, p90"),
        ("p95:10%,cost", "'cost' (item 2 of 2 in 'p95:10%,cost') has no tolerance; expected KEY:N%"),
        ("p95:ten%", "'p95:ten%' (item 1 of 1 in 'p95:ten%'): tolerance 'ten%' is not a percentage; expected N%"),
    ],
)
def test_a_bad_spec_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, spec: str, named: str) -> None:
    baseline(pytester, monkeypatch)
    result, out = run(pytester, "--baml-compare=base.json", f"--baml-compare-fail={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert f"--baml-compare-fail (ini baml_compare_fail): {named}" in out


def test_compare_fail_without_a_baseline_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result, out = run(pytester, "--baml-compare-fail=p95:10%")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "--baml-compare-fail (ini baml_compare_fail) = 'p95:10%' needs a baseline: give --baml-compare=PATH" in out


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (None, "does not exist; expected a JSON report written by --baml-report-json"),
        ("{not json", "is not JSON (Expecting property name"),
        ('{"rows": []}', "is not a pytest-baml-telemetry report (it has no 'schema' tag)"),
        ('{"schema": "pytest-baml-telemetry/report/v2", "rows": []}',
         "has schema 'pytest-baml-telemetry/report/v2'; expected schema 'pytest-baml-telemetry/report/v1'"),
        ('{"schema": "pytest-baml-telemetry/report/v1", "rows": [{"function": "F", "model": null, "p95_ns": "fast"}]}',
         "rows[0].p95_ns = 'fast'; expected a number >= 0 or null"),
    ],
)
def test_a_bad_baseline_is_a_usage_error(pytester: pytest.Pytester, content: str | None, named: str) -> None:
    if content is not None:
        (pytester.path / "base.json").write_text(content)
    result, out = run(pytester, "--baml-compare=base.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "--baml-compare (ini baml_compare): baseline " in out and "base.json" in out
    assert named in out


def test_ini_keys(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    baseline(pytester, monkeypatch)
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nbaml_compare = base.json\nbaml_compare_fail = p95:10%\n"
    )
    monkeypatch.setenv("BAML_TEST_LATENCY", "150ms")
    result, out = run(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.stdout.fnmatch_lines(["tolerances: p95:10%", "  REGRESSION SayHello / gpt-4o: p95 100.0ms -> 150.0ms (+50.0%), tolerance 10%"])


def test_a_bad_compare_table_is_a_usage_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".toml", budgets='[compare]\np95 = "fast"\n')
    baseline(pytester, monkeypatch)
    result, out = run(pytester, "--baml-compare=base.json", "--baml-budgets=budgets.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert "budget file 'budgets.toml' [compare] p95: tolerance 'fast' is not N% nor a duration" in out


def test_the_baseline_may_be_the_report_path(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    result, out = run(pytester, "--baml-report-json=report.json")
    assert result.ret == pytest.ExitCode.OK, out
    first = json.loads((pytester.path / "report.json").read_text())["run"]["started"]
    monkeypatch.setenv("BAML_TEST_LATENCY", "150ms")
    # read at start-up, then replaced by this run's report: a rolling baseline
    result, out = run(pytester, "--baml-compare=report.json", "--baml-report-json=report.json", "--baml-compare-fail=p95:10%")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["compare"]["baseline_run"]["started"] == first != data["run"]["started"]
    assert data["compare"]["regressions"]
