"""``pytest-baml-telemetry check``: the same verdicts and report as the pytest session that
exported the events, exit statuses, bad input named by line, cut-short logs, bounded memory."""

from __future__ import annotations

import importlib.metadata
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter
from pytest_baml_telemetry.cli import check, main
from pytest_baml_telemetry.exporters import JsonlExporter

PRICES = """
[models."gpt-4o-mini"]
input_per_mtok = 0.15
output_per_mtok = 0.6
cached_input_per_mtok = 0.075

[models."gpt-4o"]
input_per_mtok = 2.5
output_per_mtok = 10.0
"""

BUDGETS = """
[[budget]]
name = "latency"
p50 = "300ms"
p95 = "900ms"
max_error_rate = 0.5

[[budget]]
name = "calls"
max_calls = 10

[[budget]]
name = "resume cost"
function = "ExtractResume"
max_cost_usd = 0.01
max_total_tokens = 100000

[[budget]]
name = "summaries"
function = "Summarize"
model = "gpt-4o"
max_errors = 1
p99 = "50ms"
"""

CONFTEST = """
import os
import pytest
from pytest_baml_telemetry.exporters import JsonlExporter

@pytest.fixture(scope="session", autouse=True)
def _export_events():
    path = os.path.join(os.environ["EVENTS_DIR"], "events.jsonl")
    with JsonlExporter(path) as exporter:
        yield
    assert exporter.failed == 0
"""

TESTS = """
import pytest
from pytest_baml_telemetry import Usage
from pytest_baml_telemetry.fake import faults

@pytest.mark.parametrize("i", range(12))
def test_resumes(baml_fake, i):
    baml_fake.respond("ExtractResume", {"name": "Ann"}, usage=Usage(100 + i, 10 * i, i), model="gpt-4o-mini",
                      latency=f"{(i * 97) % 800 + 1}ms")
    baml_fake.ExtractResume(resume="cv")

@pytest.mark.parametrize("i", range(4))
def test_summaries(baml_fake, i):
    if i % 2:
        baml_fake.fail("Summarize", faults.rate_limited(), model="gpt-4o", latency="3ms")
        with pytest.raises(Exception):
            baml_fake.Summarize(text="t")
    else:
        baml_fake.respond("Summarize", "short", usage=Usage(50, 5), model="gpt-4o", latency=f"{i + 1}ms")
        baml_fake.Summarize(text="t")
"""


def _run_cli(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_baml_telemetry.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=120, input=None if stdin is None else stdin.decode(),
    )


def _verdicts(report: dict[str, Any]) -> dict[tuple[str, str], tuple[Any, ...]]:
    out = {}
    for budget in report["budgets"]:
        assert budget["scope"] == "session"
        for v in budget["verdicts"]:
            out[(budget["budget"], v["key"])] = (v["measured"], v["limit"], v["passed"], v["status"], v["calls"])
    return out


def _rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return report["rows"]


@pytest.mark.parametrize("xdist", [False, True], ids=["one process", "xdist -n 2 appending to one log"])
def test_check_gives_the_pytest_sessions_verdicts_over_its_exported_events(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, xdist: bool
) -> None:
    pytester.makefile(".toml", prices=PRICES, budgets=BUDGETS)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_app=TESTS)
    monkeypatch.setenv("EVENTS_DIR", str(pytester.path))
    args = ["--baml-budgets=budgets.toml", "--baml-prices=prices.toml", "--baml-report-json=pytest.json", "-p", "no:randomly"]
    if xdist:
        args += ["-p", "xdist", "-n", "2"]
    session = pytester.runpytest_subprocess(*args)
    session.assert_outcomes(passed=16)
    assert session.ret == pytest.ExitCode.TESTS_FAILED  # the "calls" budget breaks: 16 > 10
    assert "INTERNALERROR" not in session.stdout.str() + session.stderr.str()

    cli = _run_cli("check", "events.jsonl", "--budgets", "budgets.toml", "--prices", "prices.toml", "--json", "cli.json",
                   cwd=pytester.path)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    assert "Traceback" not in cli.stderr
    pytest_report = json.loads((pytester.path / "pytest.json").read_text())
    cli_report = json.loads((pytester.path / "cli.json").read_text())
    assert _verdicts(cli_report) == _verdicts(pytest_report)
    assert len(_verdicts(cli_report)) == 8
    assert _rows(cli_report) == _rows(pytest_report)
    assert cli_report["totals"] == pytest_report["totals"]
    assert [v["passed"] for v in cli_report["budgets"]] == [True, False, True, False]
    out = cli.stdout
    assert "events.jsonl: 32 line(s), 32 event(s), 16 call(s) recorded, 16 start or other event(s)" in out
    assert "BAML telemetry report" in out and "BAML session budgets exceeded" in out
    assert "max_calls: 16 calls exceeds the limit 10 calls" in out
    if xdist:
        return
    # the terminal table is the pytest report's (same rows, same figures)
    rows = [line for line in out.splitlines() if line.startswith(("ExtractResume", "Summarize", "TOTAL"))]
    with_report = pytester.runpytest_subprocess(*args, "--baml-report")
    pytest_rows = [
        line for line in with_report.stdout.lines if line.startswith(("ExtractResume", "Summarize", "TOTAL"))
    ]
    assert rows and rows == pytest_rows[: len(rows)]


def _log(path: Path, calls: int = 3, *, fail: bool = False, model: str = "gpt-4o-mini") -> Path:
    dispatcher = Dispatcher()
    emitter = Emitter(dispatcher=dispatcher)
    with JsonlExporter(path, dispatcher=dispatcher):
        for i in range(calls):
            with emitter.call("ExtractResume") as call:
                call.set_usage(100, 10 + i)
                call.set_model(model)
        if fail:
            with pytest.raises(ValueError), emitter.call("ExtractResume"):
                raise ValueError("x")
    return path


def _check(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    opts = list(args)
    kwargs: dict[str, Any] = {}
    for flag, name in (("--budgets", "budgets"), ("--prices", "prices"), ("--json", "json_out"), ("--html", "html_out")):
        if flag in opts:
            i = opts.index(flag)
            kwargs[name] = opts[i + 1]
            del opts[i : i + 2]
    status = check(opts[0], out=out, err=err, **kwargs)
    return status, out.getvalue(), err.getvalue()


def test_exit_0_when_every_budget_holds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "e.jsonl")
    (tmp_path / "b.toml").write_text("[[budget]]\nmax_calls = 3\np95 = '10s'\n")
    status, out, err = _check("e.jsonl", "--budgets", "b.toml")
    assert (status, err) == (0, "")
    assert "PASS max_calls" in out or "budgets: 1 checked, 0 failed" in out


def test_no_budgets_prints_the_report_and_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    records = [json.loads(line) for line in _log(tmp_path / "e.jsonl", fail=True).read_text().splitlines()]
    status, out, err = _check("e.jsonl")
    assert status == 0 and err == ""
    assert out.splitlines()[0].endswith(f"; from {records[0]['time']} to {records[-1]['time']}")
    assert "ExtractResume" in out and "TOTAL" in out and "unpriced" in out


def test_prices_take_the_same_sources_as_baml_prices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "e.jsonl")
    (tmp_path / "p.toml").write_text(PRICES)
    (tmp_path / "over.toml").write_text('[models."gpt-4o-mini"]\ninput_per_mtok = 1000\noutput_per_mtok = 0\n')
    (tmp_path / "b.toml").write_text("[[budget]]\nmax_cost_usd = 0.1\n")
    assert _check("e.jsonl", "--budgets", "b.toml", "--prices", "p.toml")[0] == 0
    status, out, _ = _check("e.jsonl", "--budgets", "b.toml", "--prices", "p.toml,over.toml")  # later ones win
    assert status == 1 and "max_cost_usd" in out
    status, _, err = _check("e.jsonl", "--prices", "p.toml,,over.toml")
    assert status == 2 and "--prices" in err and "source 2 of 3 is empty" in err and "--baml-prices" not in err


def test_stdin_is_read_with_a_dash(tmp_path: Path) -> None:
    data = _log(tmp_path / "e.jsonl").read_bytes()
    (tmp_path / "b.toml").write_text("[[budget]]\nmax_calls = 2\n")
    result = _run_cli("check", "-", "--budgets", "b.toml", cwd=tmp_path, stdin=data)
    assert result.returncode == 1 and "<stdin>: 6 line(s)" in result.stdout
    assert "max_calls: 3 calls exceeds the limit 2 calls" in result.stdout


def test_a_cut_short_last_line_is_reported_and_makes_budgets_unverifiable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _log(tmp_path / "e.jsonl")
    whole = path.read_text()
    path.write_text(whole + whole.splitlines()[1][:57])
    (tmp_path / "b.toml").write_text("[[budget]]\nmax_calls = 100\n")
    status, out, err = _check("e.jsonl", "--budgets", "b.toml", "--json", "r.json")
    assert status == 1
    assert "e.jsonl line 7 (the last line) is cut short: no newline at its end and not valid JSON" in err
    assert "it is not counted" in err and "INCOMPLETE" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["complete"] is False and report["summary"]["passed"] is False
    assert report["totals"]["calls"] == 3
    assert report["budgets"][0]["unverifiable"] is True
    # a complete last line without a newline is fine
    path.write_text(whole.rstrip("\n"))
    assert _check("e.jsonl", "--budgets", "b.toml")[0] == 0


def test_events_the_exporter_lost_make_budgets_unverifiable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = _log(tmp_path / "e.jsonl")
    with path.open("a") as f:
        f.write(json.dumps({"v": 1, "event": ["pytest_baml_telemetry", "exporter", "lost"],
                            "measurements": {"count": 4}, "metadata": {"reason": "OSError: disk full"}}) + "\n")
    (tmp_path / "b.toml").write_text("[[budget]]\nmax_calls = 100\n")
    status, out, err = _check("e.jsonl", "--budgets", "b.toml")
    assert status == 1
    assert "the exporter could not write 4 event(s)" in err and "UNVERIFIABLE" in out.upper()


GOOD_STOP = {"v": 1, "event": ["ash_baml", "call", "stop"], "measurements": {"duration": 5},
             "metadata": {"function_name": "F", "model": None}}


@pytest.mark.parametrize(
    "line, expected",
    [
        ("not json", "line 2: not valid JSON (Expecting value at column 1); expected one JSON object per line"),
        ("[1, 2]", "line 2: a JSON array, not an object; expected one JSON object per line"),
        ('{"v": 2, "event": [], "measurements": {}, "metadata": {}}', 'line 2: "v" is 2: this version reads format 1'),
        ('{"event": ["ash_baml", "call", "stop"], "metadata": {}}', "line 2: no 'measurements' key; expected"),
        ('{"event": 5, "measurements": {}, "metadata": {}}', 'line 2: "event" is 5; expected the event name as a list'),
        ('{"event": ["a", ""], "measurements": {}, "metadata": {}}', 'line 2: "event" is ["a", ""]'),
        ('{"event": "a.call.stop", "measurements": [], "metadata": {}}', 'line 2: "measurements" is a JSON array'),
        ('{"event": "a.call.stop", "measurements": {}, "metadata": {"function_name": "F"}}',
         "line 2: stop event not recorded: ('a', 'call', 'stop') event has no 'duration' measurement"),
        ('{"event": "a.call.stop", "measurements": {"duration": "NaN"}, "metadata": {"function_name": "F"}}',
         "line 2: stop event not recorded: Aggregator.record(duration_ns='NaN')"),
        ('{"event": "a.call.exception", "measurements": {"duration": -1}, "metadata": {"function_name": "F"}}',
         "line 2: exception event not recorded: Aggregator.record(duration_ns=-1): expected a non-negative int"),
        ('{"event": ["pytest_baml_telemetry", "exporter", "lost"], "measurements": {"count": "x"}, "metadata": {}}',
         'line 2: a "lost" line whose "count" is "x"; expected an int >= 0'),
        ("\xff\xfe", "line 2: not valid JSON"),
    ],
)
def test_a_bad_line_is_named_with_what_was_expected(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(json.dumps(GOOD_STOP).encode() + b"\n" + line.encode("latin-1") + b"\n{}\n")
    status, out, err = _check(str(path))
    assert status == 2 and out == ""
    assert err.startswith(f"pytest-baml-telemetry check: error: {path}") or err.startswith("pytest-baml-telemetry check: error: ")
    assert expected in err, err


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("\n" + json.dumps(GOOD_STOP) + "\n   \n" + json.dumps(GOOD_STOP) + "\n")
    status, out, _ = _check(str(path))
    assert status == 0 and "4 line(s), 2 event(s), 2 call(s) recorded" in out


@pytest.mark.parametrize(
    "args, expected",
    [
        (["missing.jsonl"], "EVENTS: 'missing.jsonl' does not exist"),
        (["."], "EVENTS: '.' is not a file: it is a directory; expected a JSON-lines event log"),
        (["e.jsonl", "--budgets", "nope.toml"], "--budgets: 'nope.toml' does not exist"),
        (["e.jsonl", "--budgets", "bad.toml"], "budget file 'bad.toml', [[budget]] #1: unknown budget key 'p96'"),
        (["e.jsonl", "--prices", "nope.toml"], "--prices: 'nope.toml' does not exist"),
        (["e.jsonl", "--json", "no/dir/r.json"], "--json: the directory 'no/dir' does not exist"),
        (["e.jsonl", "--json", "e.jsonl"], "--json: "),
        (["e.jsonl", "--html", "no/dir/r.html"], "--html: the directory 'no/dir' does not exist"),
    ],
)
def test_bad_files_exit_2_naming_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: str) -> None:
    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "e.jsonl")
    (tmp_path / "bad.toml").write_text("[[budget]]\np96 = '1s'\n")
    status, out, err = _check(*args)
    assert status == 2 and out == ""
    assert expected in err, err
    assert not (tmp_path / "r.json").exists()


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    for argv in ([], ["check"], ["nope", "x"], ["check", "e.jsonl", "--budget", "x"]):
        result = _run_cli(*argv, cwd=tmp_path)
        assert result.returncode == 2 and "usage: pytest-baml-telemetry" in result.stderr, argv
    with pytest.raises(SystemExit) as info:
        main(["check", "--help"])
    assert info.value.code == 0


def test_html_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "e.jsonl")
    (tmp_path / "b.toml").write_text("[[budget]]\nmax_calls = 2\n")
    status, _, err = _check("e.jsonl", "--budgets", "b.toml", "--html", "r.html")
    html = (tmp_path / "r.html").read_text()
    assert status == 1 and err == ""
    assert html.startswith("<!DOCTYPE html>") and "ExtractResume" in html and "max_calls" in html


def test_html_not_available_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pytest_baml_telemetry.cli as cli

    monkeypatch.chdir(tmp_path)
    _log(tmp_path / "e.jsonl")
    monkeypatch.setattr(cli, "_html_writer", lambda: None)
    status, out, err = _check("e.jsonl", "--html", "r.html")
    assert status == 2 and out == "" and "--html: the HTML report is not available" in err
    assert not (tmp_path / "r.html").exists()


def test_the_console_script_is_installed() -> None:
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts.get("pytest-baml-telemetry") == "pytest_baml_telemetry.cli:main"
    script = Path(sys.executable).parent / "pytest-baml-telemetry"
    if not script.exists():
        pytest.skip(f"the package is installed without its scripts next to {sys.executable}")
    result = subprocess.run([str(script), "check", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "EVENTS.jsonl" in result.stdout and "--budgets FILE" in result.stdout


_LINE = (
    '{{"v":1,"time":"2026-12-01T13:01:10.123456Z","event":["ash_baml","call","{kind}"],'
    '"measurements":{{"duration":{d},"monotonic_time":123456789,"input_tokens":{i},"output_tokens":20,'
    '"total_tokens":{t},"cached_input_tokens":0}},"metadata":{{"resource":null,"action":null,'
    '"function_name":"F{f}","client_module":"baml_client","streaming":false,"model":"gpt-4o-mini",'
    '"provider":"openai","client_name":"TestClient","num_attempts":1,"request_id":"chatcmpl-{n}",'
    '"telemetry_span_context":{n}}}}}\n'
)


_PEAK = """
import resource, sys
from pytest_baml_telemetry.cli import main
status = main(["check", sys.argv[1]])
print("PEAK_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
raise SystemExit(status)
"""


def _write_log(path: Path, n: int) -> None:
    with path.open("w") as f:
        for k in range(n):
            f.write(_LINE.format(kind="stop" if k % 10 else "exception", d=1_000_000 + k * 37 % 900_000,
                                 i=100 + k % 50, t=120 + k % 50, f=k % 4, n=k))


def _peak_kib(path: Path) -> tuple[int, str]:
    result = subprocess.run([sys.executable, "-c", _PEAK, str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    peak = [line for line in result.stderr.splitlines() if line.startswith("PEAK_KIB ")]
    return int(peak[-1].split()[1]), result.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
def test_a_large_log_is_streamed_in_bounded_memory(tmp_path: Path) -> None:
    """The peak memory of ``check`` over 200,000 lines (about 70 MiB) is at most 16 MiB above
    its peak over 2,000 lines: the log is streamed, only the aggregator's numbers are kept.
    (The peak resident size of a fresh process, so no tracing slows the run.)"""
    small, big = tmp_path / "small.jsonl", tmp_path / "big.jsonl"
    _write_log(small, 2_000)
    n = 200_000
    _write_log(big, n)
    size = big.stat().st_size
    assert size > 60 * 2**20  # far more than the bound below
    base, _ = _peak_kib(small)
    peak, out = _peak_kib(big)
    assert f"{n} line(s), {n} event(s), {n} call(s) recorded" in out
    bound = 16 * 1024  # KiB: the aggregator's arrays (8 bytes a call) and the report, not the file
    assert peak - base < bound, f"peak {peak / 1024:.1f} MiB vs {base / 1024:.1f} MiB for a {size / 2**20:.0f} MiB log"


def test_an_interrupt_exits_130_without_a_traceback(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import pytest_baml_telemetry.cli as cli

    def interrupted(*args: Any, **kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "check", interrupted)
    assert main(["check", "e.jsonl"]) == 130
    assert capsys.readouterr().err == "pytest-baml-telemetry check: interrupted\n"


def test_a_custom_prefix_is_exported_and_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    dispatcher = Dispatcher()
    emitter = Emitter(("myapp", "llm"), dispatcher=dispatcher)
    with JsonlExporter(tmp_path / "e.jsonl", dispatcher=dispatcher, prefix=("myapp", "llm")) as exporter:
        for _ in range(2):
            with emitter.call("Classify") as call:
                call.set_usage(10, 1)
    assert exporter.written == 4
    (tmp_path / "b.toml").write_text("[[budget]]\nfunction = 'Classify'\nmax_calls = 1\n")
    status, out, _ = _check("e.jsonl", "--budgets", "b.toml")
    assert status == 1 and "2 call(s) recorded" in out and "max_calls: 2 calls exceeds the limit 1 call" in out
