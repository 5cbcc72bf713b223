"""The baml_fake / baml_clock / baml_llm_server fixtures in real pytest sessions."""

from __future__ import annotations

import textwrap

import pytest

HEADER = textwrap.dedent(
    """
    import asyncio
    import pytest
    from baml_py.errors import BamlClientHttpError, BamlTimeoutError
    from pytest_baml_telemetry import faults, Usage
    """
)


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def make(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))


def match(result: pytest.RunResult, lines: list[str]) -> None:
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


def test_fake_calls_are_captured_with_virtual_durations(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_it(baml_fake, baml_events, baml_clock):
            baml_fake.respond("ExtractResume", {"name": "Ada"}, usage=Usage(100, 20), model="gpt-4o-mini", latency="1.5s")
            baml_fake.fail("ExtractResume", faults.timeout(after="30s"))
            assert baml_fake.ExtractResume(resume="Ada") == {"name": "Ada"}
            with pytest.raises(BamlTimeoutError):
                baml_fake.ExtractResume(resume="Bob")
            baml_events.assert_call("ExtractResume", ok=True, duration=1_500_000_000, total_tokens=120)
            baml_events.assert_call("ExtractResume", ok=False, duration=30_000_000_000, error=BamlTimeoutError)
            assert baml_clock.elapsed_ns == 31_500_000_000
            assert baml_events.as_dicts()[1]["measurements"]["duration"] == 1_500_000_000  # virtual: kept
        """,
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_unused_scripts_fail_at_teardown(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_unused(baml_fake):
            baml_fake.respond("ExtractResume", {"name": "Ada"})
            baml_fake.respond("Summarize", "short")
            baml_fake.fail("Summarize", faults.rate_limited(retry_after="2s"))
            baml_fake.Summarize(text="x")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    match(
        result,
        [
            "*FakeBamlClient: 2 scripted outcome(s) were never used:",
            "*ExtractResume*",
            "*Summarize*rate_limited*",
            "*Remove them, or allow this with @pytest.mark.baml_fake(assert_all_used=False).",
        ],
    )


def test_unused_scripts_not_reported_when_the_test_already_failed(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_fails(baml_fake):
            baml_fake.respond("ExtractResume", {"name": "Ada"})
            assert False, "the real problem"
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*never used*")


@pytest.mark.parametrize(
    "code",
    [
        """
        @pytest.mark.baml_fake(assert_all_used=False)
        def test_relaxed(baml_fake):
            baml_fake.respond("ExtractResume", {"name": "Ada"})
        """,
        """
        @pytest.mark.baml_fake(assert_all_used=False)
        class TestRelaxed:
            def test_relaxed(self, baml_fake):
                baml_fake.respond("ExtractResume", {"name": "Ada"})
        """,
        """
        pytestmark = pytest.mark.baml_fake(assert_all_used=False)
        def test_relaxed(baml_fake):
            baml_fake.respond("ExtractResume", {"name": "Ada"})
        """,
    ],
    ids=["function", "class", "module"],
)
def test_assert_all_used_relaxed_at_each_scope(pytester: pytest.Pytester, code: str) -> None:
    make(pytester, code)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_nothing_scripted_is_a_clear_error(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_it(baml_fake, baml_events):
            baml_fake.respond("Summarize", "short")
            baml_fake.ExtractResume(resume="Ada")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result, ["*ExtractResume*", "*Summarize*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_async_fake_with_pytest_asyncio(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.asyncio
        async def test_it(baml_fake, baml_events):
            baml_fake.respond("Summarize", "short", latency="200ms", reusable=True)
            b = baml_fake.as_async()
            results = await asyncio.gather(*(b.Summarize(text=str(i)) for i in range(50)))
            assert results == ["short"] * 50
            assert len(baml_events.calls) == 50
            assert {c.duration for c in baml_events.calls} == {200_000_000}
        """,
    )
    result = pytester.runpytest("-p", "asyncio")
    result.assert_outcomes(passed=1)


def test_real_sleep_option(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        import time

        @pytest.mark.baml_fake(real_sleep=True)
        def test_it(baml_fake, baml_clock):
            baml_fake.respond("Summarize", "short", latency="50ms")
            t0 = time.monotonic()
            baml_fake.Summarize(text="x")
            assert time.monotonic() - t0 >= 0.045
            assert baml_clock.elapsed_ns == 50_000_000
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_fake_under_xdist(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.parametrize("i", range(6))
        def test_it(baml_fake, baml_events, i):
            baml_fake.respond("ExtractResume", {"i": i}, latency=f"{i}s")
            assert baml_fake.ExtractResume(resume="x") == {"i": i}
            baml_events.assert_call("ExtractResume", duration=i * 1_000_000_000)
        """,
    )
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2")
    result.assert_outcomes(passed=6)


def test_baml_fake_spec_fixture_override(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        class Client:
            def ExtractResume(self, resume: str) -> dict: ...

        @pytest.fixture
        def baml_fake_spec():
            return Client()
        """
    )
    make(
        pytester,
        """
        def test_unknown_function(baml_fake):
            baml_fake.ExtractResum(resume="x")

        def test_wrong_argument(baml_fake):
            baml_fake.respond("ExtractResume", {})
            baml_fake.ExtractResume(text="x")
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=2)
    match(result, ["*ExtractResum*ExtractResume*"])
    match(result, ["*text*"])


def test_the_report_groups_failures_under_the_model_they_were_made_for(pytester: pytest.Pytester) -> None:
    """issue 12: a fake's failures carry their model (the fake's default or the outcome's)
    and tokens (a billed validation error), so the report's per-model error rates are right."""
    make(
        pytester,
        """
        from baml_py.errors import BamlValidationError
        from pytest_baml_telemetry.fake import FakeBamlClient

        def test_it(baml_fake):
            baml_fake.respond("ExtractResume", {"name": "Ada"}, model="gpt-4o", usage=(10, 5))
            baml_fake.fail("ExtractResume", faults.timeout(after="1s"), model="gpt-4o-mini")
            baml_fake.ExtractResume(resume="a")
            with pytest.raises(BamlTimeoutError):
                baml_fake.ExtractResume(resume="b")

        def test_defaults():
            fake = FakeBamlClient(model="gpt-4o")
            fake.fail("ExtractResume", faults.validation_error(raw_output="nope", usage=(30, 7)))
            with pytest.raises(BamlValidationError):
                fake.ExtractResume(resume="c")
        """,
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--baml-report", "--baml-report-json=report.json")
    result.assert_outcomes(passed=2)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    import json

    rows = {row["model"]: row for row in json.loads((pytester.path / "report.json").read_text())["rows"]}
    assert sorted(rows) == ["gpt-4o", "gpt-4o-mini"]
    assert (rows["gpt-4o"]["calls"], rows["gpt-4o"]["errors"]) == (2, 1)
    assert (rows["gpt-4o"]["input_tokens"], rows["gpt-4o"]["output_tokens"]) == (40, 12)  # the billed failure counts
    assert (rows["gpt-4o-mini"]["calls"], rows["gpt-4o-mini"]["errors"], rows["gpt-4o-mini"]["error_rate"]) == (1, 1, 1.0)
