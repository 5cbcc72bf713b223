"""Odd inputs to the plugin: loaded twice, bad marker options at any scope, budget filters that match nothing."""

from __future__ import annotations

import json
import textwrap

import pytest
from helpers import no_crash as helper_no_crash
from helpers import user_test_header

from pytest_baml_telemetry.budgets.aggregate import Aggregator
from pytest_baml_telemetry.budgets.budget import Budget
from pytest_baml_telemetry.budgets.verdicts import evaluate
from pytest_baml_telemetry.markers import EVENTS_DEFAULTS, merge_marker_options

HEADER = user_test_header("ChooseTools", "gpt-4o-mini")


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def make(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))


def no_crash(result: pytest.RunResult) -> str:
    return helper_no_crash(result, "already registered")


# ---------------------------------------------------------------------------------- loaded twice

BODY = """
@pytest.mark.baml_budget(max_calls=1)
def test_a(baml_events):
    call()
"""


@pytest.mark.parametrize(
    "how", ["-p", "pytest_plugins", "both"],
)
@pytest.mark.parametrize("xdist", [False, True])
def test_loading_the_plugin_twice_is_one_plugin(pytester: pytest.Pytester, how: str, xdist: bool) -> None:
    if how in ("pytest_plugins", "both"):
        pytester.makeconftest('pytest_plugins = ["pytest_baml_telemetry.plugin"]\n')
    make(pytester, BODY)
    args = ["--baml-report"]
    if how in ("-p", "both"):
        args = ["-p", "pytest_baml_telemetry.plugin", *args]
    if xdist:
        args += ["-p", "xdist", "-n", "2"]
    result = pytester.runpytest_subprocess(*args)
    no_crash(result)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert out.count("BAML telemetry report") == 1  # one report, not two
    assert out.count("  test_user.py::test_a: budget [all calls]") == 1 and out.count("    PASS max_calls") == 1


# ---------------------------------------------------------------------------------- marker options


class _Mark:
    def __init__(self, **kwargs: object) -> None:
        self.args = ()
        self.kwargs = kwargs


def test_a_farther_invalid_option_is_refused_even_when_a_closer_one_hides_it() -> None:
    with pytest.raises(TypeError, match=r"@pytest.mark.baml_events\(validate='no'\)"):
        merge_marker_options([_Mark(validate=True), _Mark(validate="no")], "baml_events", EVENTS_DEFAULTS)
    assert merge_marker_options([_Mark(validate=False), _Mark(validate=True)], "baml_events", EVENTS_DEFAULTS)[
        "validate"
    ] is False


def test_invalid_marker_options_at_any_scope_fail_the_test(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        pytestmark = pytest.mark.baml_events(validate="no")

        @pytest.mark.baml_events(validate=True)
        def test_hidden_by_a_valid_one(baml_events):
            pass
        """,
    )
    pytester.makepyfile(
        test_other="""
        import pytest

        class TestClass:
            pytestmark = pytest.mark.baml_fake(real_sleep="yes")

            @pytest.mark.baml_fake(real_sleep=False)
            def test_class_scope(self, baml_fake):
                pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    no_crash(result)
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*@pytest.mark.baml_events(validate='no'): expected*"])
    result.stdout.fnmatch_lines(["*@pytest.mark.baml_fake(real_sleep='yes'): expected*"])


# ---------------------------------------------------------------------------------- filters


def test_a_filter_that_matched_no_calls_says_so_and_a_typo_names_the_closest() -> None:
    agg = Aggregator()
    agg.record("ChooseTools", "gpt-4o-mini", 5)
    (v,) = evaluate(Budget(max_calls=3, function="ChooseTools", model="gpt-4o"), agg)
    assert v.passed and "the filter function='ChooseTools', model='gpt-4o' matched no calls" in v.notes
    (v,) = evaluate(
        Budget(max_calls=3, function="ChooseTool"), agg, known_functions={"ChooseTools"}, known_models={"gpt-4o-mini"}
    )
    assert not v.passed and v.status == "failed"
    assert "the function 'ChooseTool' of the filter is unknown to this session; did you mean 'ChooseTools'?" in v.headline
    (v,) = evaluate(Budget(max_calls=3, model="gpt4o-mini"), agg, known_functions=set(), known_models={"gpt-4o-mini"})
    assert not v.passed and "did you mean 'gpt-4o-mini'?" in v.headline
    (v,) = evaluate(Budget(max_calls=3, function="Zzz"), agg, known_functions={"ChooseTools"})
    assert not v.passed and "known functions: 'ChooseTools'" in v.headline


def test_a_typo_in_a_budget_filter_never_passes_silently(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".toml",
        budgets="[[budget]]\nname = 'tools'\nfunction = 'ChooseTool'\nmax_calls = 100\n"
        "[[budget]]\nname = 'unused model'\nmodel = 'gpt-4o'\nfunction = 'ChooseTools'\nmax_calls = 100\n",
    )
    make(
        pytester,
        """
        @pytest.mark.baml_budget(max_calls=5, function="ChoseTools")
        def test_typo():
            call()

        @pytest.mark.baml_budget(max_calls=5, function="ChooseTools")
        def test_right():
            call()
            call("Other", "gpt-4o")
        """,
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--baml-report", "--baml-budgets=budgets.toml", "--baml-report-json=report.json"
    )
    no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_typo*", "*'ChoseTools' of the filter is unknown*did you mean 'ChooseTools'?*"])
    result.stdout.fnmatch_lines(["*BAML session budgets exceeded*", "*'ChooseTool' of the filter*did you mean 'ChooseTools'?*"])
    data = json.loads((pytester.path / "report.json").read_text())
    unused = next(b for b in data["budgets"] if b["name"] == "unused model")
    assert unused["passed"] is True
    assert "the filter function='ChooseTools', model='gpt-4o' matched no calls" in unused["verdicts"][0]["message"]


def test_a_spec_d_fake_s_functions_are_known_names(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        class Client:
            def ChooseTools(self, query: str) -> list: ...
            def Summarize(self, text: str) -> str: ...

        @pytest.fixture
        def baml_fake_spec():
            return Client()
        """
    )
    make(
        pytester,
        """
        @pytest.mark.baml_budget(max_calls=0, function="Summarize")  # known from the spec: no call is fine
        def test_never_summarizes(baml_fake):
            baml_fake.respond("ChooseTools", [])
            baml_fake.ChooseTools(query="x")

        @pytest.mark.baml_budget(max_calls=0, function="Sumarize")
        def test_typo(baml_fake):
            pass
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    no_crash(result)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_typo*", "*'Sumarize' of the filter is unknown*did you mean 'Summarize'?*"])
