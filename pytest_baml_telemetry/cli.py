"""The ``pytest-baml-telemetry`` command: ``check`` budgets and print the report over an event log.

``pytest-baml-telemetry check EVENTS.jsonl [--budgets FILE] [--prices SOURCES] [--json OUT]
[--html OUT]`` reads a log written by :class:`~pytest_baml_telemetry.exporters.JsonlExporter`
(one JSON object per line; ``-`` reads standard input), records every stop and exception
event into the same :class:`~pytest_baml_telemetry.budgets.aggregate.Aggregator` the pytest
plugin uses, evaluates the budgets file as session budgets and prints the same report
(:class:`~pytest_baml_telemetry.session.TelemetrySession` does both, as in a pytest run).
``--prices`` takes what ``--baml-prices`` takes (``genai-prices,prices.toml``).

The log is streamed: read line by line, never loaded whole; what is kept is the
aggregator's numbers (8 bytes of duration per call).

Exit status: 0 when every budget holds, 1 when a budget is broken or unverifiable, 2 on bad
input (a missing file, a bad budgets or price file, a line that is not an event: named by
its line number with what was expected; an output path that cannot be written). A last
line cut short (no newline at the end and not valid JSON: a writer still writing, or one
that died) is reported and not counted; as are events the exporter recorded as lost. Both
make the data incomplete, so budgets over it are unverifiable (exit 1), never green.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from .budgets.config import BudgetConfigError

__all__ = ["CheckResult", "InputError", "check", "main", "read_events"]

_EXPECTED = (
    'expected one JSON object per line, as JsonlExporter writes: {"v": 1, "event": ["ash_baml", "call", "stop"], '
    '"measurements": {...}, "metadata": {...}}'
)
_LOST = ("pytest_baml_telemetry", "exporter", "lost")
_SLOW: Any = object()


class InputError(ValueError):
    """Bad input to ``check`` (exit status 2); the message names the file, line and what was expected."""


class CheckResult:
    """What :func:`read_events` read: counts, lost events and a cut-short last line."""

    def __init__(self) -> None:
        self.lines = 0
        self.events = 0
        self.calls = 0
        self.other = 0
        self.lost = 0
        self.truncated: str | None = None
        self.first_time: str | None = None
        """The ``time`` of the first event line (``None``: none had one)."""
        self.last_time: str | None = None
        """The ``time`` of the last event line."""
        """Why the last line was not counted (``None``: it was complete)."""

    def incomplete(self) -> list[str]:
        """Why the data is incomplete (for the report), empty when complete."""
        out = []
        if self.lost:
            out.append(f"the exporter could not write {self.lost} event(s) (recorded in the log as lost)")
        if self.truncated:
            out.append(self.truncated)
        return out


def _line_error(name: str, lineno: int, what: str) -> InputError:
    return InputError(f"{name} line {lineno}: {what}")


def _event_name(value: Any, name: str, lineno: int, cache: dict[Any, tuple[str, ...]]) -> tuple[str, ...]:
    key = tuple(value) if type(value) is list else value
    try:
        hit = cache.get(key)
    except TypeError:
        hit = None
    if hit is not None:
        return hit
    if type(value) is str:
        parts: Any = value.split(".")
    elif type(value) is list:
        parts = value
    else:
        parts = None
    if not parts or not all(type(p) is str and p for p in parts):
        raise _line_error(
            name, lineno,
            f'"event" is {json.dumps(value)[:120]}; expected the event name as a list of non-empty strings '
            '(["ash_baml", "call", "stop"]) or a dotted string',
        )
    result = tuple(parts)
    if len(cache) < 256:
        cache[key] = result
    return result


def read_events(stream: IO[bytes], name: str, record: Any, result: CheckResult | None = None) -> CheckResult:
    """Feed every event of ``stream`` (lines of JSON) to ``record(event_name, measurements,
    metadata)`` (an :meth:`Aggregator.record_event`); return the counts.

    Raises :class:`InputError` naming ``name`` and the line for a line that is not an event.
    A blank line is skipped; a last line cut short is counted in the result, not raised.
    """
    res = CheckResult() if result is None else result
    scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner: json.loads without its per-call layers
    names: dict[Any, tuple[str, ...]] = {}
    lineno = 0
    for raw in stream:
        lineno += 1
        try:
            # the fast path: a line as the exporter writes it (no leading space, one newline)
            text = raw.decode("utf-8")
            obj, end = scan(text, 0)
            if end != len(text) and text[end:].strip():
                raise ValueError("extra data")
        except (ValueError, StopIteration):
            obj = _SLOW
        if obj is _SLOW:
            try:
                obj = json.loads(raw)
            except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):
                    res.truncated = (
                        f"{name} line {lineno} (the last line) is cut short: no newline at its end and not valid "
                        f"JSON ({_why(exc)}); it is not counted"
                    )
                    break
                raise _line_error(name, lineno, f"not valid JSON ({_why(exc)}); {_EXPECTED}") from None
        if type(obj) is not dict:
            raise _line_error(name, lineno, f"a JSON {_json_type(obj)}, not an object; {_EXPECTED}")
        version = obj.get("v", 1)
        if version != 1:
            raise _line_error(name, lineno, f'"v" is {json.dumps(version)[:40]}: this version reads format 1')
        try:
            event = obj["event"]
            measurements = obj["measurements"]
            metadata = obj["metadata"]
        except KeyError as exc:
            raise _line_error(name, lineno, f"no {exc.args[0]!r} key; {_EXPECTED}") from None
        if type(measurements) is not dict or type(metadata) is not dict:
            bad = "measurements" if type(measurements) is not dict else "metadata"
            raise _line_error(
                name, lineno, f'"{bad}" is a JSON {_json_type(obj[bad])}; expected an object of the event\'s {bad}'
            )
        event_name = _event_name(event, name, lineno, names)
        res.events += 1
        when = obj.get("time")
        if when is not None:
            if res.first_time is None:
                res.first_time = str(when)
            res.last_time = when
        if event_name == _LOST:
            count = measurements.get("count")
            if type(count) is not int or count < 0:
                raise _line_error(name, lineno, f'a "lost" line whose "count" is {json.dumps(count)}; expected an int >= 0')
            res.lost += count
            continue
        try:
            recorded = record(event_name, measurements, metadata)
        except (TypeError, ValueError) as exc:
            raise _line_error(name, lineno, f"{event_name[-1]} event not recorded: {exc}") from None
        if recorded:
            res.calls += 1
        else:
            res.other += 1
    res.lines = lineno
    if res.last_time is not None:
        res.last_time = str(res.last_time)
    return res


def _why(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at column {exc.colno}"
    return str(exc).splitlines()[0][:200]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", type(None): "null", dict: "object"}.get(type(value), type(value).__name__)


# ------------------------------------------------------------------ check


def _cli_message(exc: Exception) -> str:
    """A price or budget error as the command line reads: ``--prices``, not the pytest option."""
    return str(exc).replace("--baml-prices (ini baml_prices)", "--prices").replace("--baml-prices=", "--prices=")


def _section(title: str, out: IO[str]) -> None:
    fill = max(78 - len(title), 6)
    print(f"{'=' * (fill // 2)} {title} {'=' * (fill - fill // 2)}", file=out)


def check(
    events: str,
    *,
    budgets: str | None = None,
    prices: str | None = None,
    json_out: str | None = None,
    html_out: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    stdin: IO[bytes] | None = None,
) -> int:
    """Run ``check`` (see the module doc); print to ``out``/``err``; return the exit status."""
    from .budgets.budget import load_budgets
    from .budgets.paths import check_input_file, check_output_file
    from .budgets.prices import load_price_sources, price_source_files
    from .session import TelemetrySession

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        inputs: list[Path] = []
        events_path = None
        if events != "-":
            events_path = _check_events_file(events)
            inputs.append(events_path)
        budgets_file = check_input_file(budgets, "--budgets") if budgets else None
        if budgets_file is not None:
            inputs.append(budgets_file)
        if prices:
            inputs.extend(price_source_files(prices, "."))
        json_path = check_output_file(json_out, "--json", inputs) if json_out else None
        html_path = check_output_file(html_out, "--html", [*inputs, *([json_path] if json_path else [])]) if html_out else None
        if html_path is not None and _html_writer() is None:
            raise InputError(
                "--html: the HTML report is not available in this version of pytest-baml-telemetry "
                "(pytest_baml_telemetry.report.html.write_html is missing); use --json"
            )
        budget_list = load_budgets(budgets_file) if budgets_file else []
        table = load_price_sources(prices, ".") if prices else None
    except (BudgetConfigError, InputError) as exc:
        print(f"pytest-baml-telemetry check: error: {_cli_message(exc)}", file=err)
        return 2

    session = TelemetrySession(report=True, report_json=json_path, budgets=budget_list, prices=table)
    shown = "<stdin>" if events_path is None else str(events_path)
    result = CheckResult()
    try:
        if events_path is None:
            read_events(stdin if stdin is not None else sys.stdin.buffer, shown, session.aggregator.record_event, result)
        else:
            with open(events_path, "rb") as stream:
                read_events(stream, shown, session.aggregator.record_event, result)
    except InputError as exc:
        print(f"pytest-baml-telemetry check: error: {exc}", file=err)
        return 2
    except OSError as exc:
        print(f"pytest-baml-telemetry check: error: {shown} cannot be read: {exc.strerror or exc}", file=err)
        return 2
    for reason in result.incomplete():
        print(f"pytest-baml-telemetry check: warning: {reason}", file=err)
        session.incomplete.append(reason)

    session.finish()  # session budgets, then the JSON report
    print(
        f"{shown}: {result.lines} line(s), {result.events} event(s), {result.calls} call(s) recorded"
        + (f", {result.other} start or other event(s)" if result.other else "")
        + (f"; from {result.first_time} to {result.last_time}" if result.first_time else ""),
        file=out,
    )
    for title, lines, _red in session.summary_sections():
        _section(title, out)
        for line in lines:
            print(line, file=out)
    status = 1 if session.session_failed else 0
    if session.write_error is not None:
        print(f"pytest-baml-telemetry check: error: {session.write_error.replace('--baml-report-json', '--json')}", file=err)
        status = 2
    if html_path is not None:
        writer = _html_writer()
        assert writer is not None
        try:
            writer(session, html_path)
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"pytest-baml-telemetry check: error: --html: could not write {str(html_path)!r}: {why}", file=err)
            status = 2
    return status


def _check_events_file(events: str) -> Path:
    from .budgets.paths import check_input_file

    try:
        return check_input_file(events, "EVENTS")
    except BudgetConfigError as exc:
        raise InputError(str(exc).replace("expected a TOML file", "expected a JSON-lines event log")) from None


def _html_writer() -> Any:
    """``(session, path) -> None`` writing the HTML report, or ``None`` when this version has none."""
    try:
        from .report.html import write_html
        from .report.model import latency_histograms
    except ImportError:
        return None

    def write(session: Any, path: Path) -> None:
        write_html(session.report_data(), path, latency_histograms(session.aggregator))

    return write


# ------------------------------------------------------------------ main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-baml-telemetry",
        description="Check BAML telemetry budgets and print the report over a production event log.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser(
        "check",
        allow_abbrev=False,
        help="evaluate budgets and print the report over a JSON-lines event log (JsonlExporter)",
        description=(
            "Evaluate the budgets of FILE (the --baml-budgets format) over the events of EVENTS "
            "(a JsonlExporter log, '-' for standard input) and print the report. Exit 0: every "
            "budget holds; 1: a budget is broken or unverifiable; 2: bad input."
        ),
    )
    p.add_argument("events", metavar="EVENTS.jsonl", help="the event log ('-': standard input)")
    p.add_argument("--budgets", metavar="FILE", help="TOML budgets file: [[budget]] tables, as --baml-budgets")
    p.add_argument(
        "--prices", metavar="SOURCES",
        help="price sources as --baml-prices: 'genai-prices' and/or TOML files, comma-separated, later ones winning",
    )
    p.add_argument("--json", dest="json_out", metavar="OUT", help="also write the report as JSON (schema report/v1)")
    p.add_argument("--html", dest="html_out", metavar="OUT", help="also write the report as one self-contained HTML file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The console script ``pytest-baml-telemetry``; returns the exit status."""
    opts = _parser().parse_args(list(argv) if argv is not None else None)
    if opts.command != "check":  # pragma: no cover - argparse refuses other commands
        return 2
    try:
        return check(opts.events, budgets=opts.budgets, prices=opts.prices, json_out=opts.json_out, html_out=opts.html_out)
    except KeyboardInterrupt:
        print("pytest-baml-telemetry check: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the report piped into `head`: nothing more to say
        try:
            sys.stdout.close()
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
