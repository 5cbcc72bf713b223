"""Streaming latency budgets (issue 16): ``ttfc_p50`` ... ``max_ttfc`` in real pytest sessions.

Streams come from the fake client (``baml_fake.stream.SayHello(...)``): with ``n`` partials
and latency ``L`` the first chunk arrives at ``L / (n + 1)`` (measured: a 300ms stream with
two partials has ``time_to_first_chunk`` = 100ms in its stop event), so every TTFC is known.
"""

from __future__ import annotations

import json
import textwrap

import pytest

HEADER = textwrap.dedent(
    """
    import pytest
    from pytest_baml_telemetry import faults
    from pytest_baml_telemetry.fake import Usage

    def stream(fake, latency="300ms", partials=2, model="gpt-4o"):
        # the first chunk comes at latency / (partials + 1)
        fake.respond("SayHello", "hello", partials=["h"] * partials, latency=latency,
                     usage=Usage(10, 5), model=model, provider="openai")
        s = fake.stream.SayHello(name="x")
        list(s)
        assert s.get_final_response() == "hello"

    def call(fake, latency="100ms", model="gpt-4o"):
        fake.respond("SayHello", "hi", latency=latency, usage=Usage(10, 5), model=model)
        fake.SayHello(name="y")

    def failed_stream(fake):
        fake.fail("SayHello", faults.http_error(500), latency="50ms")
        s = fake.stream.SayHello(name="z")
        list(s)
        with pytest.raises(Exception):
            s.get_final_response()
    """
)

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)


def make(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))


def run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, str]:
    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out, out
    return result, out


# three streams with first chunks at 100ms, 200ms and 300ms
THREE = "stream(baml_fake, '300ms'); stream(baml_fake, '600ms'); stream(baml_fake, '900ms')"
KEY_CASES = [
    ("ttfc_p50='200ms'", THREE, True),
    ("ttfc_p50='199ms'", THREE, False),
    ("ttfc_p90='300ms'", THREE, True),
    ("ttfc_p90='299ms'", THREE, False),
    ("ttfc_p95=0.3", THREE, True),
    ("ttfc_p95=0.25", THREE, False),
    ("ttfc_p99='300ms'", THREE, True),
    ("ttfc_p99='250ms'", THREE, False),
    ("max_ttfc='300ms'", THREE, True),
    ("max_ttfc='299ms'", THREE, False),
]


@pytest.mark.parametrize(("kwargs", "calls", "passes"), KEY_CASES, ids=[f"{k}-{'pass' if p else 'fail'}" for k, _, p in KEY_CASES])
def test_each_ttfc_key_passes_and_fails(pytester: pytest.Pytester, kwargs: str, calls: str, passes: bool) -> None:
    make(
        pytester,
        f"""
        @pytest.mark.baml_budget({kwargs})
        def test_it(baml_fake):
            {calls}
        """,
    )
    result, out = run(pytester)
    key = kwargs.split("=")[0]
    if passes:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        measured = "200ms" if key == "ttfc_p50" else "300ms"  # rank 2 of 3, else rank 3
        result.stdout.fnmatch_lines(["*BAML budget exceeded:*", f"*{key} = {measured} exceeds the limit * over 3 streams*"])
        assert "ERROR at teardown" not in out


def test_ttfc_p50_is_the_exact_nearest_rank_value(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        f"""
        @pytest.mark.baml_budget(ttfc_p50="1ms")
        def test_it(baml_fake):
            {THREE}
        """,
    )
    result, _ = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ttfc_p50 = 200ms exceeds the limit 1ms over 3 streams*"])


def test_non_stream_calls_are_not_counted_and_said_so(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.baml_budget(ttfc_p95="150ms")
        def test_mixed(baml_fake):
            stream(baml_fake, "300ms")          # first chunk at 100ms
            call(baml_fake, "5s")               # a slow call that is no stream
            failed_stream(baml_fake)            # a failed stream carries no first chunk

        @pytest.mark.baml_budget(ttfc_p95="50ms")
        def test_mixed_fails(baml_fake):
            stream(baml_fake, "300ms")
            call(baml_fake, "5s")
        """,
    )
    result, out = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ttfc_p95 = 100ms exceeds the limit 50ms over 1 stream*",
            "*1 call that is not a successful stream not counted*",
        ]
    )


def test_a_ttfc_budget_over_calls_without_streams_fails_never_silently(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.baml_budget(ttfc_p95="10s", max_ttfc="10s")
        def test_no_streams(baml_fake):
            call(baml_fake); call(baml_fake)

        @pytest.mark.baml_budget(ttfc_p95="10s")
        def test_only_failed_streams(baml_fake):
            failed_stream(baml_fake)
        """,
    )
    result, out = run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*ttfc_p95 cannot be checked: no call in scope is a successful stream (2 calls, limit 10s*",
            "*max_ttfc cannot be checked: no call in scope is a successful stream (2 calls*",
            "*ttfc_p95 cannot be checked: no call in scope is a successful stream (1 call, limit 10s*",
        ]
    )


def test_a_ttfc_budget_over_zero_calls_passes_as_a_latency_budget_does(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.baml_budget(ttfc_p95="1ms", p95="1ms")
        def test_nothing(baml_fake):
            pass
        """,
    )
    result, _ = run(pytester, "--baml-report")
    result.assert_outcomes(passed=1)


def test_session_budget_from_the_budget_file_and_the_report_column(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets='[[budget]]\nname = "chat"\nttfc_p95 = "150ms"\nmax_ttfc = "250ms"\n')
    make(
        pytester,
        """
        def test_a(baml_fake):
            stream(baml_fake, "300ms")          # 100ms
        def test_b(baml_fake):
            stream(baml_fake, "900ms")          # 300ms
            call(baml_fake, "1s")
        """,
    )
    result, out = run(pytester, "--baml-budgets=budgets.toml", "--baml-report", "--baml-report-json=r.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    result.stdout.fnmatch_lines(
        [
            "*function*model*calls*errors*p50 ms*p95 ms*p99 ms*max ms*ttfc p95 ms*in tokens*out tokens*cost*",
            "SayHello*gpt-4o*3*0*900.0*1,000.0*1,000.0*1,000.0*300.0*30*15*unpriced",
            "TOTAL*3*0*900.0*1,000.0*1,000.0*1,000.0*300.0*30*15*",
            "*ttfc: time to first chunk, over the 2 successful streams*",
            "*BAML session budgets exceeded*",
            "*ttfc_p95 = 300ms exceeds the limit 150ms over 2 streams*",
            "*slowest first chunks: 300ms SayHello [[]gpt-4o] test_user.py::test_b; 100ms SayHello [[]gpt-4o] test_user.py::test_a",
        ]
    )
    data = json.loads((pytester.path / "r.json").read_text())
    (row,) = data["rows"]
    assert row["streams"] == 2 and data["totals"]["streams"] == 2
    assert (row["ttfc_p50_ns"], row["ttfc_p95_ns"], row["ttfc_max_ns"]) == (100_000_000, 300_000_000, 300_000_000)
    (budget,) = data["budgets"]
    verdicts = {v["key"]: v for v in budget["verdicts"]}
    assert verdicts["ttfc_p95"]["measured"] == 300_000_000 and verdicts["ttfc_p95"]["unit"] == "ns"
    assert verdicts["ttfc_p95"]["status"] == "failed" and verdicts["max_ttfc"]["status"] == "failed"


def test_no_ttfc_column_without_streams(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_a(baml_fake):
            call(baml_fake, "100ms")
        """,
    )
    result, out = run(pytester, "--baml-report", "--baml-report-json=r.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["function*model*calls*max ms*in tokens*"])
    report = out.split("BAML telemetry report")[1]
    assert "ttfc" not in report and "max ms  in tokens" in report, report
    data = json.loads((pytester.path / "r.json").read_text())
    assert data["rows"][0]["streams"] == 0 and data["rows"][0]["ttfc_p95_ns"] is None


def test_xdist_carries_ttfc_home(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets='[[budget]]\nttfc_p50 = "200ms"\nttfc_p99 = "250ms"\n')
    make(
        pytester,
        """
        import pytest

        @pytest.mark.parametrize("latency", ["300ms", "600ms", "900ms", "450ms"])
        def test_stream(baml_fake, latency):
            stream(baml_fake, latency)        # 100ms, 200ms, 300ms, 150ms
        """,
    )
    common = ("--baml-budgets=budgets.toml",)
    single, out1 = run(pytester, *common, "--baml-report-json=single.json")
    multi, out2 = run(pytester, *common, "-p", "xdist", "-n", "2", "--baml-report-json=multi.json")
    for result, out in ((single, out1), (multi, out2)):
        assert result.ret == pytest.ExitCode.TESTS_FAILED, out
        result.stdout.fnmatch_lines(["*ttfc_p99 = 300ms exceeds the limit 250ms over 4 streams*"])
    assert "4 passed" in out2
    a = json.loads((pytester.path / "single.json").read_text())
    b = json.loads((pytester.path / "multi.json").read_text())
    assert a["rows"] == b["rows"] and a["budgets"] == b["budgets"]
    assert a["rows"][0]["ttfc_p50_ns"] == 150_000_000 and a["rows"][0]["streams"] == 4
    statuses = {v["key"]: v["status"] for v in b["budgets"][0]["verdicts"]}
    assert statuses == {"ttfc_p50": "passed", "ttfc_p99": "failed"}


def test_marker_help_lists_the_ttfc_keys(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    (line,) = [x for x in result.stdout.lines if x.startswith("@pytest.mark.baml_budget")]
    for key in ("ttfc_p50", "ttfc_p90", "ttfc_p95", "ttfc_p99", "max_ttfc"):
        assert f"{key}=..." in line, line


@pytest.mark.parametrize("value", ["fast", -1, "1 parsec"])
def test_a_bad_ttfc_limit_fails_the_test_naming_key_and_value(pytester: pytest.Pytester, value: object) -> None:
    make(
        pytester,
        f"""
        @pytest.mark.baml_budget(ttfc_p95={value!r})
        def test_it(baml_fake):
            stream(baml_fake)
        """,
    )
    result, out = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*invalid @pytest.mark.baml_budget*", f"*ttfc_p95*{value}*"])
