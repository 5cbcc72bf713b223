"""Session state of the plugin: the session aggregator, budgets, prices and the report.

One :class:`TelemetrySession` lives on the pytest config. It records every call (when a
report or session budget asks for it), runs per-test budgets (:class:`TestBudgets`),
merges what pytest-xdist workers send home, evaluates session budgets on the controller,
compares with a baseline report (``--baml-compare``) and renders the report (with its
``run`` metadata, per-test rows and ``compare`` section). It knows nothing of pytest's hooks: ``plugin.py`` calls it and
turns the messages it returns into failures and terminal sections.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .budgets.aggregate import Aggregator
from .budgets.budget import Budget, budget_from_marker, load_budgets
from .budgets.config import load_toml
from .budgets.paths import check_input_file, check_output_file
from .budgets.prices import PriceTable, load_price_sources, price_source_files
from .budgets.verdicts import Verdict, evaluate, failure_message
from .contract import CALL_EXCEPTION, CALL_STOP
from .dispatcher import Dispatcher, default_dispatcher

__all__ = ["InvalidBudgetMarker", "TelemetrySession", "TestBudgets", "WORKER_KEY"]

WORKER_KEY = "baml_telemetry"
"""The key of the payload an xdist worker sends home in ``workeroutput``."""
_ids = itertools.count(1)


class InvalidBudgetMarker(ValueError):
    """A ``baml_budget`` marker is malformed; the message is the whole failure text of the test."""


class TestBudgets:
    """The budgets of one running test: a private aggregator attached while the test body runs."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, session: TelemetrySession, nodeid: str, budgets: list[Budget]) -> None:
        self.session = session
        self.nodeid = nodeid
        self.budgets = budgets
        self.aggregator = Aggregator()
        self.aggregator.current_test_id = nodeid
        self.handler_id = f"pytest-baml-telemetry-test-{next(_ids)}"
        self.message: str | None = None
        """The failure text once :meth:`finish` ran (``None``: every budget passed)."""
        session.dispatcher.attach_many(self.handler_id, [CALL_STOP, CALL_EXCEPTION], self.aggregator.handle)

    def finish(self, *, interrupted: bool = False, known_functions: Iterable[str] = ()) -> str | None:
        """Detach, evaluate the budgets; return the failure message, or ``None`` when all pass.

        The budgets are unverifiable when an event of this test could not be recorded or
        the test was ``interrupted``. A filter naming a function or model this test and the
        session never saw (nor ``known_functions``, a spec'd fake's) fails with close names.
        """
        self.session.dispatcher.detach(self.handler_id)
        agg = self.aggregator
        reasons = [agg.not_recorded.describe()] if agg.not_recorded else []
        if interrupted:
            reasons.append("the test was interrupted")
        functions, models = self.session.known_names(agg)
        functions.update(known_functions)
        verdicts: list[Verdict] = []
        for budget in self.budgets:
            verdicts.extend(
                evaluate(
                    budget, agg, self.session.prices, scope=self.nodeid,
                    unverifiable="; ".join(reasons) or None, known_functions=functions, known_models=models,
                )
            )
        self.session.test_verdicts.extend(verdicts)
        self.message = failure_message(verdicts)
        return self.message

    def failure(self, other: str | None) -> str | None:
        """The test's failure text: ``other`` (e.g. the event checks) and the exceeded budgets."""
        if not self.message:
            return other
        return f"{other}\n\n{self.message}" if other else f"BAML budget exceeded:\n{self.message}"


class TelemetrySession:
    """Everything the plugin keeps across tests (one per pytest run, per process)."""

    def __init__(
        self,
        *,
        report: bool = False,
        report_json: Path | None = None,
        report_html: Path | None = None,
        budgets: Sequence[Budget] = (),
        prices: PriceTable | None = None,
        is_worker: bool = False,
        dispatcher: Dispatcher | None = None,
        baseline: dict[str, Any] | None = None,
        tolerances: Sequence[Any] = (),
        args: Sequence[str] = (),
    ) -> None:
        from .report.run import utc_now

        self.report = report
        self.report_json = report_json
        self.report_html = report_html
        self.budgets = list(budgets)
        self.prices = prices
        self.is_worker = is_worker
        self.dispatcher = dispatcher or default_dispatcher
        self.aggregator = Aggregator()
        self.test_verdicts: list[Verdict] = []
        self.session_verdicts: list[Verdict] = []
        self.handler_id = f"pytest-baml-telemetry-session-{next(_ids)}"
        self.baseline = baseline
        """The earlier report ``--baml-compare`` names (``None``: no comparison)."""
        self.tolerances = list(tolerances)
        """The :class:`~pytest_baml_telemetry.report.compare.Tolerance` list of ``--baml-compare-fail`` and ``[compare]``."""
        self.compare_section: dict[str, Any] | None = None
        self.args = list(args)
        """The pytest arguments (masked when written to the report)."""
        self.started = utc_now()
        self.finished: str | None = None
        self.workers = 0
        """How many xdist workers sent their data home (or were lost)."""
        self.recording = bool(report or report_json or report_html or self.budgets or baseline is not None)
        self.evaluated = False
        self.incomplete: list[str] = []
        """Why the data is incomplete (a lost xdist worker, an interrupted run); empty when complete."""
        self.known_functions: set[str] = set()
        """Function names known besides the calls recorded (a spec'd fake's functions)."""
        self.xfailed: set[str] = set()
        """Node ids of the tests that failed as expected (xfail): their broken budgets are XFAIL."""
        self.write_error: str | None = None
        """Why the JSON report could not be written (shown after pytest's summary)."""

    @classmethod
    def from_options(
        cls,
        *,
        report: bool,
        report_json: str | None,
        budgets_path: str | None,
        prices_path: str | None = None,
        root: Path,
        is_worker: bool,
        prices: str | None = None,
        prices_root: Path | None = None,
        report_html: str | None = None,
        compare: str | None = None,
        compare_fail: str | None = None,
        args: Sequence[str] = (),
    ) -> TelemetrySession:
        """Build from option values; raise ``BudgetConfigError`` naming a bad file or path.

        Paths are checked first (:mod:`~pytest_baml_telemetry.paths`): the inputs must be
        readable regular files, the report path writable and not one of them.
        ``prices`` is the ``--baml-prices`` value (comma-separated sources, later ones
        winning: ``genai-prices,prices.toml``; files relative to ``prices_root``, default
        ``root``); ``prices_path`` is one TOML price file (as before). ``compare`` is the
        baseline report (relative to ``root``) and ``compare_fail`` the tolerances (a
        ``[compare]`` table of the budgets file gives more; the command line wins per key);
        a bad baseline or tolerance is a ``BudgetConfigError``
        (:class:`~pytest_baml_telemetry.report.compare.CompareError`). ``args`` are the
        pytest arguments, for the report's ``run`` metadata (masked there).
        """
        inputs: list[Path] = []
        budgets_file = prices_file = None
        if budgets_path:
            budgets_file = check_input_file(root / budgets_path, "--baml-budgets (ini baml_budgets)")
            inputs.append(budgets_file)
        if prices_path:
            prices_file = check_input_file(root / prices_path, "--baml-prices (ini baml_prices)")
            inputs.append(prices_file)
        prices_root = root if prices_root is None else root / prices_root
        price_files = price_source_files(prices, prices_root) if prices else []
        inputs.extend(price_files)
        json_path = None
        if report_json:
            json_path = check_output_file(root / report_json, "--baml-report-json (ini baml_report_json)", inputs)
        html_path = None
        if report_html:
            others = [*inputs, *([json_path] if json_path else [])]
            html_path = check_output_file(root / report_html, "--baml-report-html (ini baml_report_html)", others)
        budgets: list[Budget] = []
        file_tolerances: list[Any] = []
        if budgets_file:
            from .report.compare import tolerances_from_table

            _, data = load_toml(budgets_file, "budget file", side_tables=True)
            if "compare" in data:
                file_tolerances = tolerances_from_table(data["compare"], f"budget file {str(budgets_file)!r}")
            if "compare" not in data or len(data) > 1:  # a file of [compare] only has no budgets
                budgets = load_budgets(budgets_file)
        baseline = None
        tolerances: list[Any] = []
        if compare_fail and not compare:
            from .report.compare import CompareError

            raise CompareError(
                f"--baml-compare-fail (ini baml_compare_fail) = {compare_fail!r} needs a baseline: "
                "give --baml-compare=PATH (an earlier --baml-report-json report)"
            )
        if compare:
            from .report.compare import load_baseline, merge_tolerances, parse_tolerances

            baseline = load_baseline(root / compare)
            tolerances = merge_tolerances(file_tolerances, parse_tolerances(compare_fail) if compare_fail else [])
        tables = [PriceTable.load(prices_file)] if prices_file else []
        if prices:
            tables.append(load_price_sources(prices, prices_root))
        table = PriceTable.layered(tables) if tables else None
        return cls(
            report=report, report_json=json_path, report_html=html_path, budgets=budgets, prices=table, is_worker=is_worker,
            baseline=baseline, tolerances=tolerances, args=args,
        )

    # ------------------------------------------------------------------ recording

    def start(self) -> None:
        if self.recording:
            self.dispatcher.attach_many(self.handler_id, [CALL_STOP, CALL_EXCEPTION], self.aggregator.handle)

    def stop(self) -> None:
        self.dispatcher.detach(self.handler_id)
        self.aggregator.end_test()  # a test window left open (an interrupted run) keeps its calls

    def set_test(self, nodeid: str | None) -> None:
        """Label calls with the running test (``None``: between tests); its per-test totals are kept."""
        if nodeid is None:
            self.aggregator.end_test()
        else:
            self.aggregator.begin_test(nodeid)

    def known_names(self, *more: Aggregator) -> tuple[set[str], set[str | None]]:
        """The function and model names seen so far (recorded here, in ``more``, or known from a spec)."""
        functions = set(self.known_functions)
        models: set[str | None] = set()
        for agg in (self.aggregator, *more):
            for function, model in agg.keys():
                functions.add(function)
                models.add(model)
        return functions, models

    # ------------------------------------------------------------------ completeness

    def lost_worker(self, worker: str, error: Any = None) -> None:
        """A pytest-xdist worker ended without sending its data home (it crashed)."""
        detail = f": {str(error).strip().splitlines()[-1]}" if error else ""
        self.incomplete.append(f"xdist worker {worker} was lost{detail}; its calls are missing")
        self.workers += 1

    def interrupted(self, why: str = "KeyboardInterrupt") -> None:
        """The run was interrupted (Ctrl-C / SIGINT): not every test ran."""
        text = f"the run was interrupted ({why}); not every test ran"
        if text not in self.incomplete:
            self.incomplete.append(text)

    def mark_xfailed(self, nodeid: str) -> None:
        self.xfailed.add(nodeid)

    def unverifiable_reason(self) -> str | None:
        """Why session budgets cannot be verified (``None``: they can)."""
        reasons = list(self.incomplete)
        if self.aggregator.not_recorded:
            reasons.insert(0, self.aggregator.not_recorded.describe())
        return "; ".join(reasons) or None

    # ------------------------------------------------------------------ per-test budgets

    def begin_test(self, nodeid: str, markers: Sequence[Any]) -> TestBudgets | None:
        """Start the budgets of the ``baml_budget`` markers of a test (``None`` without markers).

        Raises :class:`InvalidBudgetMarker` with the failure text for a malformed marker.
        """
        if not markers:
            return None
        try:
            budgets = [budget_from_marker(mark) for mark in markers]
        except (TypeError, ValueError) as exc:
            raise InvalidBudgetMarker(f"invalid @pytest.mark.baml_budget on {nodeid}:\n  {exc}") from None
        return TestBudgets(self, nodeid, budgets)

    # ------------------------------------------------------------------ xdist

    def worker_payload(self) -> dict[str, Any]:
        return {
            "agg": self.aggregator.to_payload(),
            "verdicts": [v.to_dict() for v in self._test_verdicts()],
            "known_functions": sorted(self.known_functions),
            "incomplete": list(self.incomplete),
        }

    def merge_worker(self, payload: dict[str, Any]) -> None:
        self.aggregator.merge(Aggregator.from_payload(payload["agg"]))
        self.test_verdicts.extend(Verdict.from_dict(v) for v in payload["verdicts"])
        self.known_functions.update(payload.get("known_functions", ()))
        self.workers += 1
        for reason in payload.get("incomplete", ()):
            if reason not in self.incomplete:
                self.incomplete.append(reason)

    def _test_verdicts(self) -> list[Verdict]:
        """The per-test verdicts, a broken one of an xfailed test marked ``expected``."""
        return [
            dataclasses.replace(v, expected=True) if not v.passed and v.scope in self.xfailed else v
            for v in self.test_verdicts
        ]

    # ------------------------------------------------------------------ session end

    def evaluate_session(self) -> list[Verdict]:
        if not self.evaluated:
            self.evaluated = True
            functions, models = self.known_names()
            reason = self.unverifiable_reason()
            for budget in self.budgets:
                self.session_verdicts.extend(
                    evaluate(
                        budget, self.aggregator, self.prices, scope="session",
                        unverifiable=reason, known_functions=functions, known_models=models,
                    )
                )
        return self.session_verdicts

    @property
    def session_failed(self) -> bool:
        return any(v.counts_as_failure for v in self.session_verdicts)

    def finish(self) -> bool:
        """At the end of the run (not on a worker): evaluate session budgets, write the JSON
        report; return whether the run must fail (a session budget failed or is
        unverifiable, or the report could not be written: :attr:`write_error`)."""
        from .report.run import utc_now

        self.evaluate_session()
        self.finished = utc_now()
        self.write_json()
        self.write_html()
        return self.session_failed or self.compare_failed or self.write_error is not None

    @property
    def compare_failed(self) -> bool:
        """Whether the comparison with the baseline found regressions beyond the tolerances."""
        return bool(self.baseline is not None and not self.compare_data()["passed"])

    def compare_data(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``compare`` section (computed once, at the end of the run; ``data``: this run's report)."""
        if self.compare_section is None:
            from .report import build_report
            from .report.compare import compare_reports

            assert self.baseline is not None
            current = data if data is not None else build_report(self.aggregator, self.prices)
            self.compare_section = compare_reports(current, self.baseline, self.tolerances)
        return self.compare_section

    def report_data(self) -> dict[str, Any]:
        from .report import build_report
        from .report.by_test import rows_by_test
        from .report.run import run_metadata

        data = build_report(
            self.aggregator, self.prices, [*self.session_verdicts, *self._test_verdicts()], incomplete=self.incomplete
        )
        data["run"] = run_metadata(started=self.started, finished=self.finished, xdist_workers=self.workers, args=self.args)
        data["tests"] = rows_by_test(self.aggregator, self.prices)
        if self.baseline is not None:
            section = data["compare"] = self.compare_data(data)
            summary = data["summary"]
            summary["regressions"] = len(section["regressions"])
            summary["passed"] = summary["passed"] and section["passed"]
        return data

    def report_lines(self) -> list[str]:
        from .report import render_terminal

        return render_terminal(self.report_data())

    def write_json(self) -> None:
        """Write the JSON report atomically; a failure is kept in :attr:`write_error`, never raised."""
        if self.report_json is not None:
            from .report import write_json

            try:
                write_json(self.report_data(), self.report_json)
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self.write_error = (
                    f"--baml-report-json: could not write the report to {str(self.report_json)!r}: "
                    f"{type(exc).__name__}: {why}; a previous report there (if any) is left unchanged"
                )

    def write_html(self) -> None:
        """Write the HTML report atomically (:mod:`~pytest_baml_telemetry.report.html`); a failure
        is kept in :attr:`write_error` (after a JSON one), never raised."""
        if self.report_html is not None:
            from .report.html import write_html
            from .report.model import latency_histograms

            try:
                write_html(self.report_data(), self.report_html, latency_histograms(self.aggregator))
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                error = (
                    f"--baml-report-html: could not write the report to {str(self.report_html)!r}: "
                    f"{type(exc).__name__}: {why}; a previous report there (if any) is left unchanged"
                )
                self.write_error = error if self.write_error is None else f"{self.write_error}\nERROR: {error}"

    def summary_sections(self) -> list[tuple[str, list[str], bool]]:
        """The terminal summary: ``(title, lines, red)`` per section (report, failed session budgets)."""
        sections: list[tuple[str, list[str], bool]] = []
        if self.is_worker:
            return sections
        if self.report:
            sections.append(("BAML telemetry report", self.report_lines(), False))
        if self.session_failed:
            lines = (failure_message(self.session_verdicts) or "").splitlines()
            sections.append(("BAML session budgets exceeded", lines, True))
        if self.baseline is not None:
            from .report.compare import render_compare

            section = self.compare_data()
            title = "BAML baseline regressions" if not section["passed"] else "BAML baseline comparison"
            sections.append((title, render_compare(section), not section["passed"]))
        if not self.report and (self.incomplete or self.aggregator.not_recorded):  # else the report says it
            lines = [f"incomplete: {r}" for r in self.incomplete]
            if self.aggregator.not_recorded:
                lines.append(self.aggregator.not_recorded.describe())
            sections.append(("BAML telemetry incomplete", lines, True))
        return sections
