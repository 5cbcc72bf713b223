"""JSON for CI (issue 16): the report's ``run`` metadata and per-test ``tests`` rows.

Real pytest sessions with the ``baml_fake`` fixture write ``--baml-report-json``; the rows
must be the same with and without pytest-xdist, and an unknown count stays null, never 0.
"""

from __future__ import annotations

import json
import platform
import textwrap
from datetime import datetime
from importlib.metadata import version

import pytest
from helpers import no_crash

import pytest_baml_telemetry
from pytest_baml_telemetry.budgets.aggregate import Aggregator

APP = textwrap.dedent(
    """
    import pytest
    from pytest_baml_telemetry import faults
    from pytest_baml_telemetry.fake import Usage

    def test_two_calls(baml_fake):
        baml_fake.respond("SayHello", "hi", usage=Usage(100, 20, cached_input_tokens=40),
                          model="gpt-4o", provider="openai", latency="100ms", reusable=True)
        baml_fake.SayHello(name="a")
        baml_fake.SayHello(name="b")

    def test_unknown_tokens(baml_fake):
        baml_fake.respond("SayHello", "hi", usage=Usage(None, 7), model="gpt-4o", latency="10ms")
        baml_fake.respond("Classify", "ok", usage=Usage(3, 1), model="gpt-4o", latency="10ms")
        baml_fake.SayHello(name="c")
        baml_fake.Classify(text="x")

    def test_unpriced(baml_fake):
        baml_fake.respond("SayHello", "hi", usage=Usage(5, 5), model="mystery-1", latency="10ms")
        baml_fake.SayHello(name="d")

    def test_failure(baml_fake):
        baml_fake.fail("SayHello", faults.http_error(500), model="gpt-4o", latency="10ms")
        with pytest.raises(Exception):
            baml_fake.SayHello(name="e")

    def test_no_calls():
        pass
    """
)

PRICES = '[models."gpt-4o"]\ninput_per_mtok = 2.5\noutput_per_mtok = 10.0\ncached_input_per_mtok = 1.25\n'


@pytest.fixture(autouse=True)
def _app(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makefile(".toml", prices=PRICES)
    pytester.makepyfile(test_app=APP)


def run_report(pytester: pytest.Pytester, *args: str) -> dict:
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--baml-report-json=report.json", "--baml-prices=prices.toml", *args
    )
    no_crash(result)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    return json.loads((pytester.path / "report.json").read_text())


def by_id(data: dict) -> dict[str, dict]:
    return {row["test_id"]: row for row in data["tests"]}


def test_run_metadata(pytester: pytest.Pytester) -> None:
    before = datetime.now().astimezone()
    data = run_report(pytester, "-o", "openai_api_key=sk-very-secret-1", "--baml-report")
    after = datetime.now().astimezone()
    assert data["schema"] == "pytest-baml-telemetry/report/v1"  # the same version, extended
    run = data["run"]
    started, finished = datetime.fromisoformat(run["started"]), datetime.fromisoformat(run["finished"])
    assert before <= started <= finished <= after
    assert run["python"] == platform.python_version()
    assert run["python_implementation"] == platform.python_implementation()
    assert run["baml_py"] == version("baml-py")
    assert run["plugin"] == pytest_baml_telemetry.__version__
    assert run["xdist_workers"] == 0
    args = run["pytest_args"]
    assert "--baml-report-json=report.json" in args and "--baml-report" in args
    assert "openai_api_key=***" in args
    text = (pytester.path / "report.json").read_text()
    assert "sk-very-secret-1" not in text


def test_per_test_rows(pytester: pytest.Pytester) -> None:
    rows = by_id(run_report(pytester))
    assert set(rows) == {
        "test_app.py::test_two_calls", "test_app.py::test_unknown_tokens",
        "test_app.py::test_unpriced", "test_app.py::test_failure",
    }  # a test without calls has no row
    two = rows["test_app.py::test_two_calls"]
    assert two == {
        "test_id": "test_app.py::test_two_calls", "calls": 2, "ok": 2, "errors": 0,
        "input_tokens": 200, "output_tokens": 40, "cached_input_tokens": 80, "total_tokens": 240,
        "unknown_token_calls": 0,
        "cost_usd": pytest.approx((120 * 2.5 + 80 * 1.25 + 40 * 10.0) / 1e6),
        "cost_status": "priced", "functions": ["SayHello"],
    }
    unknown = rows["test_app.py::test_unknown_tokens"]
    # one call's input tokens are unknown: the test's input count and cost are null, never 0
    assert unknown["input_tokens"] is None and unknown["cached_input_tokens"] is None
    assert unknown["total_tokens"] is None and unknown["cost_usd"] is None
    assert unknown["output_tokens"] == 8 and unknown["unknown_token_calls"] == 1
    assert unknown["cost_status"] == "partial" and unknown["functions"] == ["Classify", "SayHello"]
    unpriced = rows["test_app.py::test_unpriced"]
    assert unpriced["cost_usd"] is None and unpriced["cost_status"] == "unpriced"
    assert unpriced["input_tokens"] == 5
    failure = rows["test_app.py::test_failure"]
    assert failure["calls"] == 1 and failure["errors"] == 1 and failure["ok"] == 0


def test_per_test_rows_survive_xdist(pytester: pytest.Pytester) -> None:
    plain = run_report(pytester)
    (pytester.path / "report.json").unlink()
    spread = run_report(pytester, "-p", "xdist", "-n", "2")
    assert spread["run"]["xdist_workers"] == 2
    assert spread["tests"] == plain["tests"]
    assert spread["totals"]["calls"] == plain["totals"]["calls"] == 6


# ---------------------------------------------------------------------- the aggregator's windows


def test_windows_attribute_calls_to_tests_and_round_trip() -> None:
    agg = Aggregator()
    agg.begin_test("t::a")
    agg.record("F", "m", 10, input_tokens=3, output_tokens=4)
    agg.begin_test("t::b")  # closes t::a's window
    agg.record("F", "m", 10, ok=False)
    agg.record("G", None, 10, input_tokens=1, output_tokens=1)
    agg.end_test()
    agg.record("F", "m", 10, input_tokens=9, output_tokens=9)  # outside any test: totals only
    assert agg.tests == {
        "t::a": {("F", "m"): [1, 0, 3, 4, 0, 0, 0, 0]},
        "t::b": {("F", "m"): [0, 1, 0, 0, 0, 1, 1, 1], ("G", None): [1, 0, 1, 1, 0, 0, 0, 0]},
    }
    back = Aggregator.from_payload(json.loads(json.dumps(agg.to_payload())))
    assert back.tests == agg.tests and back == agg
    merged = Aggregator().merge(agg).merge(back)
    assert merged.tests["t::a"][("F", "m")] == [2, 0, 6, 8, 0, 0, 0, 0]


def test_a_payload_without_tests_and_a_bad_tests_row() -> None:
    agg = Aggregator()
    agg.record("F", "m", 10, input_tokens=1, output_tokens=1)
    payload = agg.to_payload()
    del payload["tests"]  # an older worker
    assert Aggregator.from_payload(payload).tests == {}
    payload["tests"] = [["t::a", "F", "m", 1, 0, 1, 1, 0, 0, 0, -1]]
    with pytest.raises(ValueError, match=r"aggregator payload tests: row .* is not \[test id, function, model, 8 counts >= 0\]"):
        Aggregator.from_payload(payload)
    with pytest.raises(TypeError, match=r"Aggregator.begin_test\(test_id=3\): expected a test node id"):
        agg.begin_test(3)  # type: ignore[arg-type]


def test_a_window_left_open_keeps_its_calls_when_the_session_stops() -> None:
    from pytest_baml_telemetry.session import TelemetrySession

    session = TelemetrySession(report=True)
    session.start()
    session.set_test("t::interrupted")
    session.aggregator.record("F", "m", 10, input_tokens=1, output_tokens=2)
    session.stop()  # no set_test(None): the run was interrupted
    assert session.aggregator.tests == {"t::interrupted": {("F", "m"): [1, 0, 1, 2, 0, 0, 0, 0]}}
    assert [r["test_id"] for r in session.report_data()["tests"]] == ["t::interrupted"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--api-key", "sk-1", "-x"], ["--api-key", "***", "-x"]),
        (["--token=abc"], ["--token=***"]),
        (["--auth-header", "--baml-report"], ["--auth-header", "--baml-report"]),  # a flag, no value
        (["-o", "openai_api_key=sk", "-o", "timeout=3"], ["-o", "openai_api_key=***", "-o", "timeout=3"]),
        (["-oanthropic_token=x"], ["-oanthropic_token=***"]),
        (["--override-ini=my_secret=x"], ["--override-ini=my_secret=***"]),
        (["OPENAI_API_KEY=sk-2", "NAME=ok"], ["OPENAI_API_KEY=***", "NAME=ok"]),
        (["--proxy=https://u:pw@host:8080/x"], ["--proxy=https://u:***@host:8080/x"]),
        (["-k", "key and not token"], ["-k", "key and not token"]),  # a -k expression is not a secret
        (["--baml-prices=./app/../prices.toml", "./tests/../t/test_a.py::test_b"],
         ["--baml-prices=prices.toml", "t/test_a.py::test_b"]),
    ],
)
def test_pytest_args_are_masked_and_normalised(args: list[str], expected: list[str]) -> None:
    from pytest_baml_telemetry.report.run import run_metadata

    assert run_metadata(started=None, finished=None, xdist_workers=0, args=args)["pytest_args"] == expected
