"""Budgets, prices and the report in real pytest sessions (pytester), with and without xdist."""

from __future__ import annotations

import json
import textwrap

import pytest

HEADER = textwrap.dedent(
    """
    import pytest
    from pytest_baml_telemetry import Emitter
    from pytest_baml_telemetry.clock import VirtualClock

    CLOCK = VirtualClock()
    EMITTER = Emitter(clock=CLOCK)

    def call(name="ExtractResume", latency="100ms", *, usage=(100, 20), model="gpt-4o-mini", fail=False):
        try:
            with EMITTER.call(name) as c:
                CLOCK.advance(latency)
                c.set_model(model)
                if usage is not None:
                    c.set_usage(*usage)
                if fail:
                    raise RuntimeError("provider down")
        except RuntimeError:
            pass
    """
)

PRICES = textwrap.dedent(
    """
    [models."gpt-4o-mini"]
    input_per_mtok = 0.15
    output_per_mtok = 0.60
    cached_input_per_mtok = 0.075

    [models."gpt-4o"]
    input_per_mtok = 2.50
    output_per_mtok = 10.00
    """
)


INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)


def match(result: pytest.RunResult, lines: list[str]) -> None:
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


def make(pytester: pytest.Pytester, body: str, name: str = "test_user") -> None:
    pytester.makepyfile(**{name: HEADER + textwrap.dedent(body)})


# (marker kwargs, body of calls, passes?)
KEY_CASES = [
    ("p50='150ms'", "call(latency='100ms'); call(latency='200ms'); call(latency='120ms')", True),
    ("p50='110ms'", "call(latency='100ms'); call(latency='200ms'); call(latency='120ms')", False),
    ("p90=0.25", "[call(latency=f'{i * 10}ms') for i in range(1, 11)]", True),
    ("p90=0.05", "[call(latency=f'{i * 10}ms') for i in range(1, 11)]", False),
    ("p95='1s'", "call(latency='900ms')", True),
    ("p95='800ms'", "call(latency='900ms')", False),
    ("p99='2s'", "call(latency='1.5s')", True),
    ("p99='1s'", "call(latency='1.5s')", False),
    ("max_latency='1m'", "call(latency='30s')", True),
    ("max_latency='20s'", "call(latency='30s')", False),
    ("max_calls=2", "call(); call()", True),
    ("max_calls=2", "call(); call(); call()", False),
    ("max_errors=1", "call(fail=True); call()", True),
    ("max_errors=0", "call(fail=True); call()", False),
    ("max_error_rate=0.5", "call(fail=True); call()", True),
    ("max_error_rate=0.25", "call(fail=True); call()", False),
    ("max_input_tokens=200", "call(usage=(100, 1)); call(usage=(100, 1))", True),
    ("max_input_tokens=150", "call(usage=(100, 1)); call(usage=(100, 1))", False),
    ("max_output_tokens=40", "call(usage=(1, 20)); call(usage=(1, 20))", True),
    ("max_output_tokens=39", "call(usage=(1, 20)); call(usage=(1, 20))", False),
    ("max_total_tokens=240", "call(); call()", True),
    ("max_total_tokens=239", "call(); call()", False),
    ("max_cost_usd=0.01", "call(usage=(1000, 1000))", True),
    ("max_cost_usd=0.0005", "call(usage=(1000, 1000))", False),
]


@pytest.mark.parametrize(("kwargs", "calls", "passes"), KEY_CASES, ids=[f"{k}-{'pass' if p else 'fail'}" for k, _, p in KEY_CASES])
def test_each_budget_key(pytester: pytest.Pytester, kwargs: str, calls: str, passes: bool) -> None:
    pytester.makefile(".toml", prices=PRICES)
    make(
        pytester,
        f"""
        @pytest.mark.baml_budget({kwargs})
        def test_it():
            {calls}
        """,
    )
    result = pytester.runpytest("--baml-prices=prices.toml", "--strict-markers")
    if passes:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        key = kwargs.split("=")[0]
        match(result, ["BAML budget exceeded:", f"*{key}*"])
        # a failure in the call phase, not a teardown error
        assert "ERROR at teardown" not in result.stdout.str()


def test_latency_failure_names_budget_value_limit_and_worst_calls(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.baml_budget(p95="500ms", function="ExtractResume")
        def test_slow():
            call(latency="100ms"); call(latency="2s"); call(latency="1s")
            call("Other", latency="10s")     # filtered out by function=
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(
        result,
        [
            "*p95 = 2s exceeds the limit 500ms over 3 calls*",
            "*worst calls:*",
            "*2s*ExtractResume*test_user.py::test_slow*",
            "*1s*ExtractResume*",
        ],
    )
    assert "Other" not in result.stdout.str().split("worst calls:")[1].split("short test summary")[0]


def test_stacked_markers_with_filters(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.baml_budget(max_calls=1, function="Summarize")
        @pytest.mark.baml_budget(max_calls=2, function="ExtractResume")
        @pytest.mark.baml_budget(max_total_tokens=100, model="gpt-4o")
        def test_ok():
            call("ExtractResume"); call("ExtractResume"); call("Summarize")
            call("Summarize", model="gpt-4o", usage=(50, 50))

        @pytest.mark.baml_budget(max_calls=1, function="Summarize")
        @pytest.mark.baml_budget(max_calls=5, function="ExtractResume")
        def test_one_of_two_broken():
            call("ExtractResume"); call("Summarize"); call("Summarize")
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    # test_ok: the model="gpt-4o" Summarize call makes Summarize 2 calls > 1
    match(result, ["*test_ok*", "*max_calls: 2 calls exceeds the limit 1*"])
    out = result.stdout.str()
    assert "function='ExtractResume'" not in out.split("test_one_of_two_broken")[1].split("short test summary")[0]


def test_latency_over_zero_calls_passes_and_unknown_tokens_fail(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", prices=PRICES)
    make(
        pytester,
        """
        @pytest.mark.baml_budget(p99="1ms")
        def test_no_calls():
            pass

        @pytest.mark.baml_budget(max_total_tokens=1000)
        def test_unknown_tokens():
            call(usage=None)

        @pytest.mark.baml_budget(max_total_tokens=1000, allow_unknown_tokens=True)
        def test_unknown_tokens_allowed():
            call(usage=None)

        @pytest.mark.baml_budget(max_cost_usd=1.0)
        def test_unpriced_model():
            call(model="mystery-model")
        """,
    )
    result = pytester.runpytest("--baml-prices=prices.toml", "--baml-report", "-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)
    match(result, ["*test_unknown_tokens*", "*unknown tokens*"])
    match(result, ["*test_unpriced_model*", "*mystery-model*"])
    match(result, ["*p99 over no calls passes*"])


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ("p95='fast'", "*p95*'fast'*"),
        ("max_calls=-1", "*max_calls*-1*"),
        ("max_error_rate=2", "*max_error_rate*2*"),
        ("latency='1s'", "*unknown budget key 'latency'*"),
        ("'p95'", "*positional*"),
        ("p95=[1]", "*p95*[1]*"),
    ],
)
def test_bad_budget_markers_are_clear_failures(pytester: pytest.Pytester, marker: str, message: str) -> None:
    make(
        pytester,
        f"""
        @pytest.mark.baml_budget({marker})
        def test_it():
            call()
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result, ["*invalid @pytest.mark.baml_budget*", message])
    assert "INTERNALERROR" not in result.stdout.str()


SESSION_BUDGETS = textwrap.dedent(
    """
    [[budget]]
    name = "extract latency"
    function = "ExtractResume"
    p95 = "500ms"

    [[budget]]
    name = "whole suite"
    max_calls = 100
    max_cost_usd = 1.0
    """
)


def test_session_budget_file_pass_and_fail(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", prices=PRICES, budgets=SESSION_BUDGETS)
    make(
        pytester,
        """
        def test_a():
            call(latency="100ms")

        def test_b():
            call(latency="2s")
        """,
    )
    result = pytester.runpytest("--baml-budgets=budgets.toml", "--baml-prices=prices.toml")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2)
    match(result, ["*BAML session budgets exceeded*", "*extract latency*p95 = 2s exceeds the limit 500ms*"])

    make(pytester, "def test_a():\n    call(latency='100ms')\n")
    ok = pytester.runpytest("--baml-budgets=budgets.toml", "--baml-prices=prices.toml")
    assert ok.ret == pytest.ExitCode.OK


def test_session_budgets_from_ini(pytester: pytest.Pytester) -> None:
    pytester.mkdir("conf")
    pytester.path.joinpath("conf", "budgets.toml").write_text("[[budget]]\nmax_calls = 1\n")
    pytester.makeini(INI + "baml_budgets = conf/budgets.toml\nbaml_report = true\n")
    make(pytester, "def test_a():\n    call(); call()\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    match(result, ["*BAML telemetry report*", "*BAML session budgets exceeded*", "*max_calls: 2 calls exceeds the limit 1*"])


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ({}, ["--baml-budgets=missing.toml"], "*missing.toml*"),
        ({"budgets": "[[budget]]\np95 = 'soon'\n"}, ["--baml-budgets=budgets.toml"], "*budgets.toml*p95*'soon'*"),
        ({"budgets": "[[budget]\n"}, ["--baml-budgets=budgets.toml"], "*budgets.toml*"),
        ({"budgets": "[[budget]]\nmax_calls = 1\nflavour = 'x'\n"}, ["--baml-budgets=budgets.toml"], "*flavour*"),
        ({}, ["--baml-prices=nope.toml"], "*nope.toml*"),
        ({"prices": '[models."m"]\ninput_per_mtok = -1\noutput_per_mtok = 1\n'}, ["--baml-prices=prices.toml"], "*input_per_mtok*-1*"),
        ({}, ["--baml-report-json=no/such/dir/report.json"], "*no/such/dir*does not exist*"),
    ],
)
def test_bad_session_options_are_usage_errors(pytester: pytest.Pytester, files: dict, args: list, message: str) -> None:
    for name, text in files.items():
        pytester.makefile(".toml", **{name: text})
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message.replace("[", "[[]")])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_report_content_and_json_schema(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", prices=PRICES)
    make(
        pytester,
        """
        @pytest.mark.baml_budget(max_calls=10)
        def test_a():
            call("ExtractResume", "100ms", usage=(1000, 200))
            call("ExtractResume", "300ms", usage=(1000, 200))
            call("Summarize", "50ms", model="gpt-4o", usage=(10, 10), fail=True)
            call("Classify", "10ms", model="unknown-model", usage=(5, 5))
        """,
    )
    result = pytester.runpytest("--baml-report", "--baml-prices=prices.toml", "--baml-report-json=report.json")
    result.assert_outcomes(passed=1)
    match(
        result,
        [
            "*BAML telemetry report*",
            "*function*model*calls*errors*p50 ms*p95 ms*p99 ms*max ms*in tokens*out tokens*cost*",
            "*Classify*unknown-model*1*0*unpriced*",
            "*ExtractResume*gpt-4o-mini*2*0*100.0*300.0*300.0*300.0*2,000*400*",
            "*Summarize*gpt-4o*1*1*",
            "*TOTAL*4*1*",
        ],
    )
    data = json.loads(pytester.path.joinpath("report.json").read_text())
    assert data["schema"] == "pytest-baml-telemetry/report/v1"
    rows = {(r["function"], r["model"]): r for r in data["rows"]}
    er = rows[("ExtractResume", "gpt-4o-mini")]
    assert (er["calls"], er["errors"], er["p50_ns"], er["max_ns"]) == (2, 0, 100_000_000, 300_000_000)
    assert er["input_tokens"] == 2000 and er["output_tokens"] == 400
    assert er["cost_usd"] == pytest.approx(2000 * 0.15 / 1e6 + 400 * 0.60 / 1e6)
    assert rows[("Classify", "unknown-model")]["cost_usd"] is None
    assert rows[("Classify", "unknown-model")]["cost_status"] == "unpriced"
    assert data["totals"]["unpriced_models"] == ["unknown-model"]
    assert data["budgets"][0]["scope"] == "test_user.py::test_a" and data["budgets"][0]["passed"] is True
    text = json.dumps(data)
    assert "provider down" not in text  # no reasons, arguments or results


def _report_numbers(path) -> dict:
    data = json.loads(path.read_text())
    for budget in data["budgets"]:
        for verdict in budget["verdicts"]:
            verdict.pop("message", None)
            verdict.pop("headline", None)
    return {"rows": data["rows"], "totals": data["totals"], "budgets": data["budgets"], "summary": data["summary"]}


def test_xdist_report_equals_single_process(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", prices=PRICES, budgets="[[budget]]\nmax_calls = 1000\np95 = '10s'\n")
    make(
        pytester,
        """
        @pytest.mark.parametrize("i", range(12))
        def test_many(i):
            call("ExtractResume", f"{(i * 37) % 500 + 1}ms", usage=(100 + i, 10 * i))
            if i % 3 == 0:
                call("Summarize", f"{i + 1}ms", model="gpt-4o", fail=(i % 2 == 0))

        @pytest.mark.baml_budget(max_calls=1)
        def test_budgeted():
            call("Classify", "5ms")
        """,
    )
    common = ["--baml-report", "--baml-prices=prices.toml", "--baml-budgets=budgets.toml", "-p", "no:randomly"]
    single = pytester.runpytest_subprocess(*common, "--baml-report-json=single.json")
    single.assert_outcomes(passed=13)
    multi = pytester.runpytest_subprocess(*common, "-p", "xdist", "-n", "2", "--baml-report-json=multi.json")
    multi.assert_outcomes(passed=13)
    assert _report_numbers(pytester.path / "single.json") == _report_numbers(pytester.path / "multi.json")
    assert json.loads((pytester.path / "multi.json").read_text())["totals"]["calls"] == 12 + 4 + 1
    match(multi, ["*BAML telemetry report*", "*TOTAL*17*"])


def test_xdist_session_budget_failure_covers_all_workers(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets="[[budget]]\nmax_calls = 5\n")
    make(
        pytester,
        """
        @pytest.mark.parametrize("i", range(4))
        def test_two_calls_each(i):
            call(); call()
        """,
    )
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--baml-budgets=budgets.toml")
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    match(result, ["*max_calls: 8 calls exceeds the limit 5*"])


def test_plugin_is_silent_without_options(pytester: pytest.Pytester) -> None:
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "BAML" not in result.stdout.str()


def test_marker_help_lists_every_budget_key(pytester: pytest.Pytester) -> None:
    from pytest_baml_telemetry.budgets import BUDGET_KEYS

    result = pytester.runpytest("--markers")
    help_line = next(line for line in result.stdout.lines if line.startswith("@pytest.mark.baml_budget:"))
    assert all(f"{key}=..." in help_line for key in BUDGET_KEYS), help_line
