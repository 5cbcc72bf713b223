"""The report tells the whole truth: lost workers, interrupted runs, xfail, atomic writes, bad paths."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from helpers import no_crash, user_test_header

HEADER = "import os, shutil, signal\n" + user_test_header("Good", "m")


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def make(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))



def report(pytester: pytest.Pytester, name: str = "report.json") -> dict:
    return json.loads((pytester.path / name).read_text())


BUDGET = "[[budget]]\nname = 'few'\nmax_calls = 100\n"


def test_a_worker_that_dies_makes_the_report_incomplete(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets=BUDGET)
    make(
        pytester,
        """
        @pytest.mark.parametrize("i", range(6))
        def test_calls(i):
            call()

        def test_dies():
            call()
            os._exit(1)
        """,
    )
    result = pytester.runpytest_subprocess(
        "-p", "xdist", "-n", "2", "--baml-report", "--baml-budgets=budgets.toml", "--baml-report-json=report.json"
    )
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    assert result.ret != pytest.ExitCode.OK
    data = report(pytester)
    summary = data["summary"]
    assert summary["complete"] is False and summary["passed"] is False
    (reason,) = summary["incomplete"]
    assert reason.startswith("xdist worker gw") and "was lost" in reason
    (budget,) = data["budgets"]
    assert budget["unverifiable"] is True and budget["verdicts"][0]["status"] == "unverifiable"
    assert "INCOMPLETE: the data does not cover the whole run:" in out
    result.stdout.fnmatch_lines(["  session: budget 'few'*", "    UNVERIFIABLE max_calls*"])


def test_an_interrupted_run_never_writes_passed_true(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets=BUDGET)
    make(
        pytester,
        """
        def test_a():
            call()

        @pytest.mark.baml_budget(max_calls=5)
        def test_interrupted():
            call()
            os.kill(os.getpid(), signal.SIGINT)

        def test_never_runs():
            call()
        """,
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--baml-report", "--baml-budgets=budgets.toml", "--baml-report-json=report.json"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "INTERNALERROR" not in result.stdout.str()
    data = report(pytester)
    summary = data["summary"]
    assert summary["complete"] is False and summary["passed"] is False
    assert summary["incomplete"] == ["the run was interrupted (KeyboardInterrupt); not every test ran"]
    status = {b["scope"]: b["verdicts"][0]["status"] for b in data["budgets"]}
    assert status == {"session": "unverifiable", "test_user.py::test_interrupted": "unverifiable"}
    result.stdout.fnmatch_lines(["*INCOMPLETE*", "*the run was interrupted*"])


@pytest.mark.parametrize("xdist", [[], ["-p", "xdist", "-n", "2"]], ids=["single", "xdist"])
def test_passed_agrees_with_the_exit_status_and_xfail_is_expected(pytester: pytest.Pytester, xdist: list) -> None:
    make(
        pytester,
        """
        @pytest.mark.xfail(reason="known to be slow")
        @pytest.mark.baml_budget(max_calls=0)
        def test_known_broken():
            call()

        @pytest.mark.baml_budget(max_calls=1)
        def test_fine():
            call()
        """,
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", "--baml-report", "--baml-report-json=report.json", *xdist
    )
    no_crash(result)
    result.assert_outcomes(passed=1, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    data = report(pytester)
    assert data["summary"]["passed"] is True and data["summary"]["complete"] is True
    assert data["summary"]["budgets_failed"] == 0 and data["summary"]["budgets_expected"] == 1
    broken = next(b for b in data["budgets"] if b["scope"].endswith("test_known_broken"))
    assert broken["expected"] is True and broken["passed"] is False
    assert broken["verdicts"][0]["expected"] is True and broken["verdicts"][0]["status"] == "xfailed"
    result.stdout.fnmatch_lines(["*budgets: 2 checked, 0 failed, 1 xfailed*", "  test_user.py::test_known_broken: budget *", "    XFAIL max_calls*"])


def test_a_broken_budget_fails_json_terminal_and_exit_status_alike(pytester: pytest.Pytester) -> None:
    make(pytester, "@pytest.mark.baml_budget(max_calls=0)\ndef test_broken():\n    call()\n")
    result = pytester.runpytest_subprocess("--baml-report", "--baml-report-json=report.json")
    no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert report(pytester)["summary"]["passed"] is False
    result.stdout.fnmatch_lines(["  test_user.py::test_broken: budget *", "    FAIL max_calls: 1 call exceeds the limit 0 calls"])


def test_a_failed_write_is_a_clear_error_after_the_summary(pytester: pytest.Pytester) -> None:
    out_dir = pytester.mkdir("out")
    make(
        pytester,
        f"""
        def test_removes_the_report_directory():
            call()
            shutil.rmtree({str(out_dir)!r})
        """,
    )
    result = pytester.runpytest_subprocess("--baml-report", "--baml-report-json=out/report.json")
    out = no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = result.stdout.lines
    summary = next(i for i, line in enumerate(lines) if " passed in " in line)
    error = next(i for i, line in enumerate(lines) if line.startswith("ERROR: --baml-report-json: could not write"))
    assert error > summary
    assert "FileNotFoundError" in lines[error] and "out/report.json" in lines[error]
    assert "BAML telemetry report" in out


def test_a_failed_write_leaves_the_previous_report_intact(pytester: pytest.Pytester) -> None:
    previous = '{"previous": true}\n'
    (pytester.path / "report.json").write_text(previous)
    pytester.makeconftest(
        """
        import errno, os

        def _full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        os.fsync = _full  # the disk is full when the report is written
        """
    )
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest_subprocess("--baml-report-json=report.json")
    no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 passed*", "ERROR: --baml-report-json: could not write*No space left on device*"])
    assert (pytester.path / "report.json").read_text() == previous
    assert sorted(p.name for p in pytester.path.iterdir() if p.name.startswith(".report")) == []


def test_the_report_is_replaced_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_baml_telemetry.budgets.aggregate import Aggregator
    from pytest_baml_telemetry.report import build_report, write_json

    path = tmp_path / "r.json"
    path.write_text("old")
    seen = []
    real = os.replace

    def spy(src: str, dst: object) -> None:
        seen.append((os.path.dirname(src), path.read_text()))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", spy)
    write_json(build_report(Aggregator()), path)
    monkeypatch.undo()
    assert seen == [(str(tmp_path), "old")]  # written beside it, the old file untouched until the swap
    assert json.loads(path.read_text())["summary"]["complete"] is True


# ---------------------------------------------------------------------------------- start-up checks

PATH_OPTIONS = [("--baml-budgets", "baml_budgets"), ("--baml-prices", "baml_prices"), ("--baml-report-json", "baml_report_json")]


def _bad_path(pytester: pytest.Pytester, case: str, option: str) -> tuple[str, str]:
    """Make the bad path of ``case``; return (the value to pass, the message pattern)."""
    root = pytester.path
    if case == "fifo":
        os.mkfifo(root / "pipe")
        return "pipe", "*pipe*is a FIFO*" if option.endswith("json") else "*pipe*is not a file: it is a FIFO*"
    if case == "device":
        return "/dev/null", "*/dev/null*is a device*" if option.endswith("json") else "*/dev/null*is not a file: it is a device*"
    if case == "directory":
        (root / "adir").mkdir()
        return "adir", "*adir*is a directory*" if option.endswith("json") else "*adir*is not a file: it is a directory*"
    if case == "too long":
        return "x" * 300 + ".toml", "*xxxx*longer than the OS allows*"
    if case == "symlink loop":
        os.symlink(root / "loop", root / "loop")
        return "loop", "*loop*symlink loop*"
    raise AssertionError(case)


CASES = ["fifo", "device", "directory", "too long", "symlink loop"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("option", "ini"), PATH_OPTIONS)
@pytest.mark.parametrize("via", ["option", "ini"])
def test_bad_paths_are_usage_errors_naming_them(
    pytester: pytest.Pytester, case: str, option: str, ini: str, via: str
) -> None:
    value, message = _bad_path(pytester, case, option)
    make(pytester, "def test_a():\n    call()\n")
    if via == "ini":
        pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini} = {value}\n")
        args: list[str] = []
    else:
        args = [f"{option}={value}"]
    result = pytester.runpytest_subprocess(*args, timeout=60)  # a FIFO must never hang
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{option}*{message.lstrip('*')}"])
    no_crash(result)


@pytest.mark.parametrize("other", ["--baml-budgets", "--baml-prices"])
def test_the_report_path_must_not_be_an_input_file(pytester: pytest.Pytester, other: str) -> None:
    pytester.makefile(".toml", same=BUDGET if other == "--baml-budgets" else '[models."m"]\ninput_per_mtok = 1\noutput_per_mtok = 1\n')
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest_subprocess(f"{other}=same.toml", "--baml-report-json=./sub/../same.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baml-report-json*same.toml*would overwrite it*"])
    no_crash(result)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read and write files whatever their permissions")
def test_unreadable_input_and_unwritable_report_directory(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", budgets=BUDGET)
    os.chmod(pytester.path / "budgets.toml", 0)
    ro = pytester.mkdir("ro")
    os.chmod(ro, 0o500)
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest_subprocess("--baml-budgets=budgets.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*budgets.toml*not readable*"])
    result = pytester.runpytest_subprocess("--baml-report-json=ro/report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ro*not writable*"])


def test_a_report_directory_that_refuses_new_files_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """Works as root too: the check creates a file, so a directory that refuses one is caught."""
    pytester.makeconftest(
        """
        import errno, tempfile

        def _refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        tempfile.mkstemp = _refuse
        """
    )
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest_subprocess("--baml-report-json=report.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--baml-report-json*the directory*is not writable: Permission denied*"])
    no_crash(result)


# ---------------------------------------------------------------------------------- the report reads well


def test_paths_given_in_the_ini_file_are_normalised_outside_the_current_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.mkdir("app")
    sub = pytester.mkdir("elsewhere")
    pytester.makefile(".toml", budgets="[[budget]]\nmax_calls = 0\n")
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nbaml_budgets = app/../budgets.toml\n"
        "baml_report_json = app/../report.json\n"
    )
    make(pytester, "def test_a():\n    call()\n")
    monkeypatch.chdir(sub)
    result = pytester.runpytest_subprocess("--baml-report", str(pytester.path / "test_user.py"))
    out = no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "app/.." not in out and "app/.." not in (pytester.path / "report.json").read_text()
    assert f"from {pytester.path / 'budgets.toml'} [[budget]] #1" in out


def test_paths_are_normalised_and_each_budget_is_named_once(pytester: pytest.Pytester) -> None:
    pytester.mkdir("app")
    pytester.makefile(".toml", budgets="[[budget]]\nname = 'tight'\nmax_calls = 0\np95 = '1s'\n")
    pytester.makefile(".toml", prices='[models."m"]\ninput_per_mtok = 1\noutput_per_mtok = 1\n')
    make(pytester, "def test_a():\n    call()\n")
    result = pytester.runpytest_subprocess(
        "--baml-report", "--baml-budgets=app/../budgets.toml", "--baml-prices=./app/../prices.toml",
        "--baml-report-json=app/../report.json",
    )
    out = no_crash(result)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = (pytester.path / "report.json").read_text()
    assert "app/.." not in out and "app/.." not in text and "./" not in text
    data = json.loads(text)
    assert data["price_table"] == "prices.toml"
    assert data["budgets"][0]["source"] == "budgets.toml [[budget]] #1"
    label = "  session: budget 'tight' [[]all calls] from budgets.toml [[][[]budget]] #1"
    result.stdout.fnmatch_lines(
        [label, "    PASS p95 = 10ms <= 1s over 1 call", "    FAIL max_calls: 1 call exceeds the limit 0 calls",
         "           calls by function: Good [[]m]: 1"]
    )
    assert out.count("from budgets.toml [[budget]] #1\n") == 1  # the long source once in the report
