"""``@pytest.mark.baml_cassette`` and ``--baml-record-mode`` in real pytest sessions (issue 15):
record once against a local upstream, stop it, replay; a changed prompt fails the test saying
what changed; the default cassette path; bad options; two xdist workers writing one cassette."""

from __future__ import annotations

import textwrap

import pytest
import yaml
from test_cassette_record import KEY, app, point  # noqa: F401 - the app fixture, shared

from pytest_baml_telemetry.fake.server import FakeLLMServer

pytestmark = pytest.mark.usefixtures("_quiet_baml")


def _write_tests(pytester: pytest.Pytester, app, body: str) -> None:  # noqa: F811
    pytester.makepyfile(test_app=textwrap.dedent(f"""
        import pytest
        from pytest_baml_telemetry.baml_gen import import_generated

        APP = import_generated({str(app.path.parent)!r})
    """) + textwrap.dedent(body))


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    text = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in text and "pytest_baml_telemetry/plugin.py" not in text, text
    return result


ASK = """
    @pytest.mark.baml_cassette
    def test_ask(baml_llm_server):
        b = baml_llm_server.route(APP.b)
        assert b.Ask("{question}") == "recorded answer"
"""


def test_record_once_then_replay_with_no_upstream_and_a_prompt_change_fails(app, pytester, monkeypatch) -> None:  # noqa: F811
    _write_tests(pytester, app, ASK.format(question="hi"))
    cassette = pytester.path / "cassettes" / "test_app" / "test_ask.yaml"
    with FakeLLMServer() as upstream:
        point(monkeypatch, upstream)
        upstream.respond("recorded answer", usage=(9, 2))
        _run(pytester, "--baml-record-mode=once").assert_outcomes(passed=1)
        assert len(upstream.requests) == 1
    assert cassette.is_file() and KEY not in cassette.read_text(encoding="utf-8")
    for name in ("CASSETTE_OPENAI_KEY", "CASSETTE_OPENAI_URL"):  # CI: no key, no upstream, the default host
        monkeypatch.delenv(name)
    _run(pytester).assert_outcomes(passed=1)  # none is the default
    _write_tests(pytester, app, ASK.format(question="bye"))
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the prompt changed: messages[[]0[]].content[[]0[]].text: recorded 'Answer: hi' now 'Answer: bye'*"])
    assert result.ret == 1


def test_the_ini_key_sets_the_record_mode_and_a_named_cassette_is_shared(app, pytester, monkeypatch) -> None:  # noqa: F811
    _write_tests(pytester, app, """
        @pytest.mark.baml_cassette("shared")
        def test_one(baml_llm_server):
            assert baml_llm_server.route(APP.b).Ask("one") == "first"

        @pytest.mark.baml_cassette(name="shared")
        def test_two(baml_llm_server):
            assert baml_llm_server.route(APP.b).Ask("two") == "second"
    """)
    pytester.makeini("[pytest]\nbaml_record_mode = new_episodes\n")
    with FakeLLMServer() as upstream:
        point(monkeypatch, upstream)
        upstream.respond("first").respond("second")
        _run(pytester).assert_outcomes(passed=2)
    data = yaml.safe_load((pytester.path / "cassettes" / "test_app" / "shared.yaml").read_text(encoding="utf-8"))
    assert len(data["interactions"]) == 2
    _run(pytester, "--baml-record-mode=none").assert_outcomes(passed=2)


def test_a_request_the_app_swallows_still_fails_the_test(app, pytester) -> None:  # noqa: F811
    _write_tests(pytester, app, """
        @pytest.mark.baml_cassette
        def test_swallowed(baml_llm_server):
            try:
                baml_llm_server.route(APP.b).Ask("hi")
            except Exception:
                pass
    """)
    result = _run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*the cassette does not exist: record it with --baml-record-mode=once*"])


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("baml_cassette(match_on='body')", "*match_on='body'): expected a non-empty list of matcher names*"),
        ("baml_cassette(replay_latency='slow')", "*replay_latency='slow'): expected 'recorded' or 'none'*"),
        ("baml_cassette(speed=1)", "*unknown option 'speed'*"),
        ("baml_cassette('a', 'b')", "*at most one positional argument*"),
        ("baml_cassette(match_on=['prompt'])", "*match_on entry 'prompt'*expected one of method*"),
    ],
)
def test_bad_marker_options_fail_the_test_naming_them(app, pytester, marker, expected) -> None:  # noqa: F811
    _write_tests(pytester, app, f"""
        @pytest.mark.{marker}
        def test_x(baml_llm_server):
            pass
    """)
    result = _run(pytester)
    assert result.ret == 1
    result.stdout.fnmatch_lines([expected])


def test_the_marker_without_the_server_fixture_says_so(app, pytester) -> None:  # noqa: F811
    _write_tests(pytester, app, """
        @pytest.mark.baml_cassette
        def test_x():
            pass
    """)
    result = _run(pytester)
    result.assert_outcomes(errors=1)  # refused at setup
    result.stdout.fnmatch_lines(["*the cassette is served by the baml_llm_server fixture*"])


def test_a_bad_record_mode_is_a_usage_error(app, pytester) -> None:  # noqa: F811
    _write_tests(pytester, app, ASK.format(question="hi"))
    result = _run(pytester, "--baml-record-mode=sometimes")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baml-record-mode: invalid choice: 'sometimes'*"])
    pytester.makeini("[pytest]\nbaml_record_mode = sometimes\n")
    result = _run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*baml_record_mode='sometimes': expected one of none, once, new_episodes, all*"])


def test_two_xdist_workers_never_write_one_cassette_at_once(app, pytester, monkeypatch) -> None:  # noqa: F811
    tests = "".join(f"""
        @pytest.mark.baml_cassette("shared")
        def test_{i}(baml_llm_server):
            assert baml_llm_server.route(APP.b).Ask("q{i}") == "answer"
    """ for i in range(8))
    _write_tests(pytester, app, tests)
    with FakeLLMServer() as upstream:
        point(monkeypatch, upstream)
        for _ in range(8):
            upstream.respond("answer")
        _run(pytester, "-p", "xdist", "-n", "2", "--baml-record-mode=new_episodes").assert_outcomes(passed=8)
    data = yaml.safe_load((pytester.path / "cassettes" / "test_app" / "shared.yaml").read_text(encoding="utf-8"))
    asked = sorted(i["request"]["body"] for i in data["interactions"])
    assert len(asked) == 8 and all(f"q{i}" in asked[i] for i in range(8))  # no worker's write was lost
    _run(pytester, "-p", "xdist", "-n", "2").assert_outcomes(passed=8)


def test_all_re_records_a_shared_cassette_once_per_run_keeping_every_test(app, pytester, monkeypatch) -> None:  # noqa: F811
    _write_tests(pytester, app, """
        @pytest.mark.baml_cassette("shared")
        def test_one(baml_llm_server):
            assert baml_llm_server.route(APP.b).Ask("one") == "new"

        @pytest.mark.baml_cassette("shared")
        def test_two(baml_llm_server):
            assert baml_llm_server.route(APP.b).Ask("two") == "new"
    """)
    shared = pytester.path / "cassettes" / "test_app" / "shared.yaml"
    with FakeLLMServer() as upstream:
        point(monkeypatch, upstream)
        for _ in range(2):
            upstream.respond("old")
        _run(pytester, "--baml-record-mode=new_episodes").assert_outcomes(failed=2)  # "old" recorded
        assert len(yaml.safe_load(shared.read_text(encoding="utf-8"))["interactions"]) == 2
        for _ in range(2):
            upstream.respond("new")
        _run(pytester, "--baml-record-mode=all").assert_outcomes(passed=2)
    interactions = yaml.safe_load(shared.read_text(encoding="utf-8"))["interactions"]
    assert len(interactions) == 2 and all("new" in i["response"]["body"]["string"] for i in interactions)
    _run(pytester).assert_outcomes(passed=2)


def test_the_marker_and_the_option_are_registered(pytester) -> None:
    markers = pytester.runpytest_subprocess("--markers").stdout.str()
    assert "@pytest.mark.baml_cassette: baml_cassette(name=None, match_on=('method', 'path', 'body'), replay_latency='recorded')" in markers
    assert pytester.parseconfig("--baml-record-mode=all").getoption("baml_record_mode") == "all"
    pytester.makeini("[pytest]\nbaml_record_mode = once\n")
    assert pytester.parseconfig().getini("baml_record_mode") == "once"
