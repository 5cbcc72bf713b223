"""Session state of the plugin: the session aggregator, budgets, prices and the report.

One :class:`TelemetrySession` lives on the pytest config. It records every call (when a
report or session budget asks for it), runs per-test budgets (:class:`TestBudgets`),
merges what pytest-xdist workers send home, evaluates session budgets on the controller
and renders the report. It knows nothing of pytest's hooks: ``plugin.py`` calls it and
turns the messages it returns into failures and terminal sections.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .budgets.aggregate import Aggregator
from .budgets.budget import Budget, budget_from_marker, load_budgets
from .budgets.config import BudgetConfigError
from .budgets.prices import PriceTable
from .budgets.verdicts import Verdict, evaluate, failure_message
from .contract import CALL_EXCEPTION, CALL_STOP
from .dispatcher import Dispatcher, default_dispatcher

__all__ = ["InvalidBudgetMarker", "TelemetrySession", "TestBudgets", "WORKER_KEY"]

WORKER_KEY = "baml_telemetry"
"""The key of the payload an xdist worker sends home in ``workeroutput``."""
_ids = itertools.count(1)


def _shown(path: Path) -> Path:
    """``path`` relative to the current directory when it is below it (shorter messages)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


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

    def finish(self) -> str | None:
        """Detach, evaluate the budgets; return the failure message, or ``None`` when all pass."""
        self.session.dispatcher.detach(self.handler_id)
        verdicts: list[Verdict] = []
        for budget in self.budgets:
            verdicts.extend(evaluate(budget, self.aggregator, self.session.prices, scope=self.nodeid))
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
        budgets: Sequence[Budget] = (),
        prices: PriceTable | None = None,
        is_worker: bool = False,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.report = report
        self.report_json = report_json
        self.budgets = list(budgets)
        self.prices = prices
        self.is_worker = is_worker
        self.dispatcher = dispatcher or default_dispatcher
        self.aggregator = Aggregator()
        self.test_verdicts: list[Verdict] = []
        self.session_verdicts: list[Verdict] = []
        self.handler_id = f"pytest-baml-telemetry-session-{next(_ids)}"
        self.recording = bool(report or report_json or self.budgets)
        self.evaluated = False

    @classmethod
    def from_options(
        cls,
        *,
        report: bool,
        report_json: str | None,
        budgets_path: str | None,
        prices_path: str | None,
        root: Path,
        is_worker: bool,
    ) -> TelemetrySession:
        """Build from option values; raise ``BudgetConfigError`` naming a bad file or path."""
        json_path = None
        if report_json:
            json_path = (root / report_json).resolve()
            if json_path.is_dir():
                raise BudgetConfigError(
                    f"--baml-report-json={report_json!r}: {str(json_path)!r} is a directory; expected a file path"
                )
            if not json_path.parent.is_dir():
                what = "is not a directory" if json_path.parent.exists() else "does not exist"
                raise BudgetConfigError(
                    f"--baml-report-json={report_json!r}: the directory {str(json_path.parent)!r} {what}"
                )
        budgets = load_budgets(_shown(root / budgets_path)) if budgets_path else []
        prices = PriceTable.load(_shown(root / prices_path)) if prices_path else None
        return cls(report=report, report_json=json_path, budgets=budgets, prices=prices, is_worker=is_worker)

    # ------------------------------------------------------------------ recording

    def start(self) -> None:
        if self.recording:
            self.dispatcher.attach_many(self.handler_id, [CALL_STOP, CALL_EXCEPTION], self.aggregator.handle)

    def stop(self) -> None:
        self.dispatcher.detach(self.handler_id)

    def set_test(self, nodeid: str | None) -> None:
        self.aggregator.current_test_id = nodeid

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
            "verdicts": [v.to_dict() for v in self.test_verdicts],
        }

    def merge_worker(self, payload: dict[str, Any]) -> None:
        self.aggregator.merge(Aggregator.from_payload(payload["agg"]))
        self.test_verdicts.extend(Verdict.from_dict(v) for v in payload["verdicts"])

    # ------------------------------------------------------------------ session end

    def evaluate_session(self) -> list[Verdict]:
        if not self.evaluated:
            self.evaluated = True
            for budget in self.budgets:
                self.session_verdicts.extend(evaluate(budget, self.aggregator, self.prices, scope="session"))
        return self.session_verdicts

    @property
    def session_failed(self) -> bool:
        return any(not v.passed for v in self.session_verdicts)

    def finish(self) -> bool:
        """At the end of the run (not on a worker): evaluate session budgets, write the JSON
        report; return whether a session budget failed."""
        self.evaluate_session()
        self.write_json()
        return self.session_failed

    def report_data(self) -> dict[str, Any]:
        from .report import build_report

        return build_report(self.aggregator, self.prices, [*self.session_verdicts, *self.test_verdicts])

    def report_lines(self) -> list[str]:
        from .report import render_terminal

        return render_terminal(self.report_data())

    def write_json(self) -> None:
        if self.report_json is not None:
            from .report import write_json

            write_json(self.report_data(), self.report_json)

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
        return sections
