"""The baml_llm_server / baml_llm_server_session fixtures and the baml_llm_server marker, in real sessions."""

from __future__ import annotations

import textwrap

import pytest

HEADER = textwrap.dedent(
    """
    import os
    import httpx
    import pytest

    def post(server, body=None):
        return httpx.post(server.base_url + "/chat/completions", json=body or {"model": "m"}, timeout=10)
    """
)


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *args)
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text
    assert "pytest_baml_telemetry/plugin.py" not in text  # no traceback out of the plugin
    return result


def match(result: pytest.RunResult, lines: list[str]) -> None:
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


def test_unused_scripts_fail_the_test_at_teardown_listing_them(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_used(baml_llm_server):
            baml_llm_server.respond("one")
            assert post(baml_llm_server).status_code == 200

        def test_unused(baml_llm_server):
            baml_llm_server.respond("one").respond("two", usage=(1, 2)).fail(429, retry_after=1)
            assert post(baml_llm_server).status_code == 200
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    match(
        result,
        [
            "*ERROR at teardown of test_unused*",
            "*FakeLLMServer: 2 scripted response(s) never requested:",
            "*1. respond('two', usage=(1, 2, None), model=None)",
            "*2. fail(429, retry_after=1)",
            "*Remove them, or allow this with @pytest.mark.baml_llm_server(assert_all_used=False).",
        ],
    )
    assert "test_used - " not in result.stdout.str()


def test_a_failing_test_does_not_also_report_unused_scripts(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_fails(baml_llm_server):
            baml_llm_server.respond("never")
            assert False, "the test's own failure"
        """,
    )
    result.assert_outcomes(failed=1)
    assert "never requested" not in result.stdout.str()


MARK = "@pytest.mark.baml_llm_server(assert_all_used=False)"
TESTS = """
{mark}def test_unused({self}baml_llm_server):
    baml_llm_server.respond("left over")

{mark}def test_unused_session({self}baml_llm_server_session):
    baml_llm_server_session.respond("left over")
"""


@pytest.mark.parametrize(
    "body",
    [
        f"pytestmark = pytest.mark.baml_llm_server(assert_all_used=False)\n{TESTS.format(mark='', self='')}",
        f"{MARK}\nclass TestIt:\n" + textwrap.indent(TESTS.format(mark="", self="self, "), "    "),
        TESTS.format(mark=MARK + "\n", self=""),
    ],
    ids=["module", "class", "function"],
)
def test_assert_all_used_false_at_any_scope(pytester: pytest.Pytester, body: str) -> None:
    result = run(pytester, body)
    result.assert_outcomes(passed=2)
    assert "never requested" not in result.stdout.str()


def test_closest_marker_wins(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        pytestmark = pytest.mark.baml_llm_server(assert_all_used=False)

        @pytest.mark.baml_llm_server(assert_all_used=True)
        def test_checked(baml_llm_server):
            baml_llm_server.respond("left over")

        def test_unchecked(baml_llm_server):
            baml_llm_server.respond("left over")
        """,
    )
    result.assert_outcomes(passed=2, errors=1)
    match(result, ["*ERROR at teardown of test_checked*", "*1 scripted response(s) never requested*"])


@pytest.mark.parametrize(
    "marker, message",
    [
        ("baml_llm_server(assert_all_used=0)", "@pytest.mark.baml_llm_server(assert_all_used=0): expected True or False"),
        ("baml_llm_server(strict=True)", "@pytest.mark.baml_llm_server(strict=True): unknown option 'strict'; expected one of ['assert_all_used']"),
        ("baml_llm_server(False)", "@pytest.mark.baml_llm_server(False,): positional arguments are not accepted*"),
    ],
)
def test_bad_marker_options_fail_setup_with_a_clear_message(pytester: pytest.Pytester, marker: str, message: str) -> None:
    result = run(
        pytester,
        f"""
        @pytest.mark.{marker}
        def test_server(baml_llm_server):
            pass

        @pytest.mark.{marker}
        def test_session(baml_llm_server_session):
            pass

        @pytest.mark.{marker}
        def test_no_fixture():
            pass
        """,
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*" + message.replace("[", "[[]")])


def test_the_marker_is_registered_with_help(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--markers")
    match(result, ["@pytest.mark.baml_llm_server: baml_llm_server(assert_all_used=True): options of the baml_llm_server and baml_llm_server_session fixtures*"])
    strict = run(
        pytester,
        """
        @pytest.mark.baml_llm_server(assert_all_used=False)
        def test_strict(baml_llm_server):
            pass
        """,
        "--strict-markers",
    )
    strict.assert_outcomes(passed=1)


def test_session_server_is_one_process_reset_between_tests(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        PIDS = []

        @pytest.fixture
        def scripted(baml_llm_server_session):  # used through another fixture
            baml_llm_server_session.respond("from a fixture")
            yield baml_llm_server_session
            # the test's own fixtures still see its requests at teardown
            assert [r.served for r in baml_llm_server_session.requests] == ["respond"]

        def test_one(baml_llm_server_session):
            PIDS.append(baml_llm_server_session.pid)
            baml_llm_server_session.respond("one")
            assert post(baml_llm_server_session).json()["choices"][0]["message"]["content"] == "one"
            assert len(baml_llm_server_session.requests) == 1

        def test_leaves_a_script_behind(baml_llm_server_session):
            PIDS.append(baml_llm_server_session.pid)
            baml_llm_server_session.respond("left over")

        def test_starts_clean(baml_llm_server_session):
            PIDS.append(baml_llm_server_session.pid)
            assert baml_llm_server_session.requests == [] and baml_llm_server_session.pending == []

        def test_through_a_fixture(scripted):
            PIDS.append(scripted.pid)
            assert post(scripted).json()["choices"][0]["message"]["content"] == "from a fixture"

        def test_without_the_server():
            pass

        def test_same_process():
            assert len(PIDS) == 4 and len(set(PIDS)) == 1 and PIDS[0] is not None
        """,
    )
    result.assert_outcomes(passed=6, errors=1)
    match(
        result,
        [
            "*ERROR at teardown of test_leaves_a_script_behind*",
            "*FakeLLMServer: 1 scripted response(s) never requested:",
            "*1. respond('left over', usage=None, model=None)",
        ],
    )


def test_no_server_process_is_left_behind(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pathlib

        def test_a(baml_llm_server, baml_llm_server_session):
            pathlib.Path("pids").write_text(f"{baml_llm_server.pid} {baml_llm_server_session.pid}")
        """,
    )
    result.assert_outcomes(passed=1)
    import os
    import time

    pids = [int(p) for p in (pytester.path / "pids").read_text().split()]
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        time.sleep(0.05)
    assert alive == []
    assert os.getpid() not in pids


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_session_server_under_xdist_is_one_process_per_worker(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = run(
        pytester,
        """
        import pathlib

        @pytest.mark.parametrize("i", range(6))
        def test_call(baml_llm_server_session, i):
            assert baml_llm_server_session.pending == [] and baml_llm_server_session.requests == []
            baml_llm_server_session.respond(f"answer {i}")
            assert post(baml_llm_server_session).json()["choices"][0]["message"]["content"] == f"answer {i}"
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            with open(f"pids-{worker}", "a") as fh:
                fh.write(f"{baml_llm_server_session.pid}\\n")

        def test_left_over(baml_llm_server_session):
            baml_llm_server_session.respond("never")
        """,
        "-n",
        "2",
    )
    result.assert_outcomes(passed=7, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_left_over*", "FakeLLMServer: 1 scripted response(s) never requested:"])
    per_worker = [set(p.read_text().split()) for p in pytester.path.glob("pids-gw*")]
    assert per_worker and all(len(pids) == 1 for pids in per_worker)
