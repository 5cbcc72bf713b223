"""The recorders never go quiet: an event they cannot record is counted and makes budgets unverifiable."""

from __future__ import annotations

import json
import textwrap

import pytest

from pytest_baml_telemetry.budgets.aggregate import Aggregator
from pytest_baml_telemetry.budgets.budget import Budget
from pytest_baml_telemetry.budgets.verdicts import evaluate
from pytest_baml_telemetry.contract import CALL_EXCEPTION, CALL_STOP, MAX_NATIVE, ContractViolation, validate_event
from pytest_baml_telemetry.report import build_report, render_terminal, to_json

STOP_META = {
    "resource": None, "action": None, "function_name": "F", "client_module": None, "streaming": False,
    "model": "m", "result": None, "telemetry_span_context": 1,
}


def stop_measurements(duration: object) -> dict:
    return {"duration": duration, "monotonic_time": 5, "input_tokens": 1, "output_tokens": 1, "total_tokens": 2}


# ---------------------------------------------------------------------------------- unit


def test_handle_never_raises_and_counts_what_it_cannot_record() -> None:
    agg = Aggregator()
    agg.current_test_id = "t.py::test_x"
    agg.handle(CALL_STOP, stop_measurements(1.5e9), STOP_META)  # a float clock
    agg.handle(CALL_STOP, stop_measurements(3), {"model": "m"})  # no function_name
    agg.handle(CALL_STOP, stop_measurements(MAX_NATIVE + 1), STOP_META)  # beyond int64
    agg.handle(CALL_EXCEPTION, {"duration": 2}, "not a mapping")
    agg.handle(CALL_STOP, stop_measurements(7), STOP_META)  # still attached: a good event is recorded
    assert len(agg) == 1 and agg.keys() == [("F", "m")]  # the overflowing call left no empty series
    nr = agg.not_recorded
    assert nr.count == 4 and sum(nr.reasons.values()) == 4
    assert any("duration_ns=…): expected" in r for r in nr.reasons)  # grouped without the value
    assert "duration_ns=1500000000.0" in nr.first["reason"]  # the first one keeps it
    assert any("function_name" in r for r in nr.reasons)
    assert any("MAX_NATIVE" in r for r in nr.reasons)
    assert nr.first is not None
    assert nr.first["event"] == "ash_baml.call.stop" and nr.first["function"] == "F"
    assert nr.first["test_id"] == "t.py::test_x" and nr.first["measurements"]["duration"] == "1500000000.0"
    assert "result" not in json.dumps(nr.first)  # names and numbers only


def test_not_recorded_travels_in_the_payload_and_merges() -> None:
    w1, w2 = Aggregator(), Aggregator()
    w1.handle(CALL_STOP, stop_measurements(0.5), STOP_META)
    w2.handle(CALL_STOP, stop_measurements(1), {})
    w2.handle(CALL_STOP, stop_measurements(2), STOP_META)
    home = Aggregator()
    for w in (w1, w2):
        home.merge(Aggregator.from_payload(json.loads(json.dumps(w.to_payload()))))
    assert home.not_recorded.count == 2 and len(home) == 1
    assert home.not_recorded.first == w1.not_recorded.first


def test_record_refuses_a_duration_beyond_int64_with_a_clear_error() -> None:
    agg = Aggregator()
    agg.record("F", None, MAX_NATIVE)
    with pytest.raises(ValueError, match=r"duration_ns=9223372036854775808\): expected .*MAX_NATIVE"):
        agg.record("G", None, MAX_NATIVE + 1)
    assert agg.keys() == [("F", None)]


@pytest.mark.parametrize("key", ["duration", "time_to_first_chunk"])
def test_validate_event_refuses_what_the_recorders_cannot_hold(key: str) -> None:
    good = stop_measurements(MAX_NATIVE)
    validate_event(CALL_STOP, good, STOP_META)
    agg = Aggregator()
    assert agg.record_event(CALL_STOP, good, STOP_META)  # one rule: accepted -> recordable
    with pytest.raises(ContractViolation, match=rf"\['{key}'\] = 9223372036854775808: expected .*MAX_NATIVE"):
        validate_event(CALL_STOP, {**good, key: MAX_NATIVE + 1}, STOP_META)


def test_unrecorded_events_make_budgets_unverifiable_never_passing() -> None:
    agg = Aggregator()
    agg.handle(CALL_STOP, stop_measurements(0.5), STOP_META)
    reason = agg.not_recorded.describe()
    assert reason.startswith("1 BAML call event could not be recorded (first: ash_baml.call.stop of F")
    (v,) = evaluate(Budget(max_calls=0), agg, unverifiable=reason)
    assert (v.passed, v.unverifiable, v.status, v.counts_as_failure) == (False, True, "unverifiable", True)
    assert "max_calls is unverifiable: 1 BAML call event could not be recorded" in v.headline
    data = build_report(agg, None, [v])
    assert data["summary"]["not_recorded"] == 1 and data["summary"]["passed"] is False
    assert data["not_recorded"]["count"] == 1
    (record,) = data["budgets"][0]["verdicts"]
    assert record["status"] == "unverifiable" and record["unverifiable"] is True
    text = "\n".join(render_terminal(data))
    assert "NOT RECORDED: 1 BAML call event could not be recorded" in text
    assert "  session: budget [all calls]\n    UNVERIFIABLE max_calls is unverifiable: 1 BAML call event" in text
    to_json(data)  # JSON-safe


# ---------------------------------------------------------------------------------- real sessions

HEADER = textwrap.dedent(
    """
    import time
    import pytest
    from pytest_baml_telemetry import Emitter
    from pytest_baml_telemetry.dispatcher import default_dispatcher
    from pytest_baml_telemetry.clock import VirtualClock

    class FloatClock:
        def time_ns(self):
            return time.time_ns()
        def monotonic_ns(self):
            return time.monotonic() * 1e9

    class HugeLatency:
        def __init__(self):
            self.t = 0
        def time_ns(self):
            return time.time_ns()
        def monotonic_ns(self):
            self.t += 2**63
            return self.t

    def good(name="Good"):
        clock = VirtualClock()
        with Emitter(clock=clock).call(name) as c:
            clock.advance("10ms")
            c.set_model("m")
            c.set_usage(1, 1)

    def float_clock():
        with Emitter(clock=FloatClock()).call("Floaty") as c:
            c.set_usage(1, 1)

    def no_function_name():
        default_dispatcher.span(("ash_baml", "call"), {"model": None}, lambda: (None, {"model": None}))

    def huge_latency():
        with Emitter(clock=HugeLatency()).call("Slow") as c:
            c.set_usage(1, 1)
    """
)


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def _no_crash(result: pytest.RunResult) -> str:
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    return out


def test_session_recorder_counts_the_three_triggers_and_stays_attached(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets="[[budget]]\nname = 'none at all'\nmax_calls = 0\n")
    pytester.makepyfile(
        test_user=HEADER
        + textwrap.dedent(
            """
            def test_triggers():
                float_clock()
                no_function_name()
                huge_latency()

            def test_after():
                good(); good(); good()
            """
        )
    )
    result = pytester.runpytest_subprocess(
        "--baml-report", "--baml-budgets=budgets.toml", "--baml-report-json=report.json", "-p", "no:randomly"
    )
    out = _no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED  # the tests passed; the session budget is unverifiable
    result.assert_outcomes(passed=2)
    data = json.loads((pytester.path / "report.json").read_text())
    assert data["summary"]["calls"] == 3  # the good calls after the bad ones were recorded
    assert data["summary"]["not_recorded"] == 3 and data["not_recorded"]["count"] == 3
    assert data["not_recorded"]["first"]["function"] == "Floaty"
    assert data["not_recorded"]["first"]["test_id"] == "test_user.py::test_triggers"
    (budget,) = data["budgets"]
    assert budget["unverifiable"] is True and budget["passed"] is False
    assert budget["verdicts"][0]["status"] == "unverifiable"
    assert data["summary"]["passed"] is False
    assert "no BAML calls recorded" not in out
    assert "NOT RECORDED: 3 BAML call events could not be recorded" in out
    result.stdout.fnmatch_lines(
        ["  session: budget 'none at all' [[]all calls] from budgets.toml [[][[]budget]] #1", "    UNVERIFIABLE max_calls*"]
    )
    result.stdout.fnmatch_lines(["*BAML session budgets exceeded*", "*max_calls is unverifiable: 3 BAML call events*"])


def test_per_test_budget_is_unverifiable_only_in_the_test_it_happened_in(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=HEADER
        + textwrap.dedent(
            """
            @pytest.mark.baml_budget(max_calls=10)
            def test_bad_event():
                good()
                float_clock()

            @pytest.mark.baml_budget(max_calls=10)
            def test_fine():
                good()
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--baml-report-json=report.json")
    _no_crash(result)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*test_bad_event*", "*max_calls is unverifiable: 1 BAML call event could not be recorded*Floaty*"]
    )
    data = json.loads((pytester.path / "report.json").read_text())
    status = {b["scope"].split("::")[1]: b["verdicts"][0]["status"] for b in data["budgets"]}
    assert status == {"test_bad_event": "unverifiable", "test_fine": "passed"}


def test_baml_events_failure_does_not_advise_allowing_handler_failures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user=HEADER
        + textwrap.dedent(
            """
            @pytest.mark.baml_budget(max_calls=10)
            def test_it(baml_events):
                float_clock()
            """
        )
    )
    result = pytester.runpytest_subprocess("--baml-report")
    out = _no_crash(result)
    result.assert_outcomes(failed=1)
    assert "allow_handler_failures" not in out
    assert "and was detached" not in out
    result.stdout.fnmatch_lines(["*contract violation*expected an int*", "*max_calls is unverifiable*"])


def test_unrecorded_reasons_group_events_that_differ_only_in_their_value() -> None:
    agg = Aggregator()
    for i in range(25):  # a float clock: every duration differs
        agg.handle(CALL_STOP, stop_measurements(1.5e9 + i), STOP_META)
    nr = agg.not_recorded
    assert nr.count == 25
    assert list(nr.reasons.values()) == [25], nr.reasons
    assert "duration_ns=1500000000.0" in nr.first["reason"]
