"""The common part of the metric reporters: routing events to definitions, and skips.

:class:`MetricsReporter` attaches to the events its definitions read and hands each
event to every definition of that event (:meth:`Metric.observe`); what a definition
contributes goes to the subclass's ``_record(metric, observation)``. An event a
definition cannot use is a *skip*: counted per metric and reason and logged as a warning
once per metric and reason on the ``pytest_baml_telemetry.metrics`` logger, never
silently dropped. ``_record`` raises :class:`SkipEvent` for a value it cannot use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from .._validate import fail
from ..attachable import AttachableHandler
from .definitions import Metric, MetricName, Observation, Skip, format_metric_name, normalize_metric_name

__all__ = ["MetricsReporter", "SkipEvent", "UnknownMetricError"]

_log = logging.getLogger("pytest_baml_telemetry.metrics")


class UnknownMetricError(KeyError):
    """A metric name that no definition of the reporter has; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown metric"


class SkipEvent(Exception):
    """Raised by a reporter's ``_record`` when it cannot use a value; counted as a skip."""


def _check_metrics(metrics: Any, owner: str) -> tuple[Metric, ...]:
    if isinstance(metrics, Metric):
        metrics = [metrics]
    if isinstance(metrics, (str, bytes, Mapping)) or not hasattr(metrics, "__iter__"):
        fail(
            TypeError, f"{owner}(metrics={metrics!r})",
            "a list of metric definitions built with counter(), sum(), last_value(), summary() or distribution()",
        )
    out: list[Metric] = []
    seen: dict[tuple[str, ...], Metric] = {}
    for m in metrics:
        if not isinstance(m, Metric):
            fail(
                TypeError, f"{owner}: {m!r} is not a metric definition",
                "one built with counter(), sum(), last_value(), summary() or distribution() from pytest_baml_telemetry.metrics",
            )
        if m.name in seen:
            fail(ValueError, f"{owner}: two metrics are named {m.dotted_name!r} ({seen[m.name]!r} and {m!r})", "unique names")
        seen[m.name] = m
        out.append(m)
    return tuple(out)


class MetricsReporter(AttachableHandler):
    """Common part of the reporters: routes events to metric definitions and keeps skips.

    Subclasses implement ``_record(metric, observation)``. An event a metric has to skip
    (see :meth:`Metric.observe`) is counted per metric and reason, and logged as a warning
    once per metric and reason on the ``pytest_baml_telemetry.metrics`` logger.
    """

    def __init__(self, metrics: Any, *, dispatcher: Any = None) -> None:
        super().__init__(dispatcher=dispatcher)
        self.metrics: tuple[Metric, ...] = _check_metrics(metrics, type(self).__name__)
        self._by_name: dict[tuple[str, ...], Metric] = {m.name: m for m in self.metrics}
        by_event: dict[tuple[str, ...], list[Metric]] = {}
        for m in self.metrics:
            by_event.setdefault(m.event_name, []).append(m)
        self._by_event: dict[tuple[str, ...], tuple[Metric, ...]] = {k: tuple(v) for k, v in by_event.items()}
        self._skips: dict[tuple[str, ...], dict[str, int]] = {}
        self._warned: set[tuple[tuple[str, ...], str]] = set()
        self._skip_lock = threading.Lock()

    def _event_names(self, prefix: Any) -> list[tuple[str, ...]]:
        return list(self._by_event)

    def attach(self, dispatcher: Any = None) -> MetricsReporter:  # type: ignore[override]
        """Attach to ``dispatcher`` (default: the one given at construction, else the default
        dispatcher) for every event the metrics read; return ``self``."""
        super().attach(dispatcher)
        return self

    @property
    def event_names(self) -> list[tuple[str, ...]]:
        """The events the metrics read."""
        return list(self._by_event)

    def metric(self, name: MetricName) -> Metric:
        """The definition named ``name`` (dotted string or sequence); :class:`UnknownMetricError` if none."""
        try:
            key = normalize_metric_name(name)
        except (TypeError, ValueError) as exc:
            raise UnknownMetricError(f"{exc}; known metrics: {self._known()}") from None
        try:
            return self._by_name[key]
        except KeyError:
            raise UnknownMetricError(
                f"no metric named {format_metric_name(key)!r} in this {type(self).__name__}; known metrics: "
                f"{self._known()}"
            ) from None

    def _known(self) -> str:
        return ", ".join(repr(m.dotted_name) for m in self.metrics) or "(none)"

    def handle(self, event_name: Any, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        for metric in self._by_event.get(event_name, ()):
            outcome = metric.observe(measurements, metadata)
            if outcome is None:
                continue
            if type(outcome) is Skip:
                self._skip(metric, outcome.reason, event_name, metadata)
                continue
            try:
                self._record(metric, outcome)
            except SkipEvent as exc:
                self._skip(metric, str(exc), event_name, metadata)

    def _record(self, metric: Metric, observation: Observation) -> None:
        raise NotImplementedError

    def _skip(self, metric: Metric, reason: str, event_name: Any, metadata: Mapping[str, Any]) -> None:
        with self._skip_lock:
            counts = self._skips.setdefault(metric.name, {})
            counts[reason] = counts.get(reason, 0) + 1
            first = (metric.name, reason) not in self._warned
            if first:
                self._warned.add((metric.name, reason))
        if first:
            _log.warning(
                "%s: metric %r skipped an event %s (function %r): %s (further skips for this reason are counted, "
                "not logged; see reporter.skipped(%r))",
                type(self).__name__, metric.dotted_name, ".".join(event_name),
                metadata.get("function_name"), reason, metric.dotted_name,
            )

    def skipped(self, metric_name: MetricName) -> list[str]:
        """The reason of every event ``metric_name`` skipped, one entry per skipped event."""
        metric = self.metric(metric_name)
        with self._skip_lock:
            counts = dict(self._skips.get(metric.name, {}))
        return [reason for reason, n in counts.items() for _ in range(n)]

    def skip_counts(self) -> dict[str, dict[str, int]]:
        """``{metric name: {reason: skipped events}}`` for every metric that skipped something."""
        with self._skip_lock:
            return {format_metric_name(k): dict(v) for k, v in self._skips.items() if v}

    def assert_no_skips(self) -> None:
        """Raise ``AssertionError`` listing the skips, if any metric skipped an event."""
        counts = self.skip_counts()
        if counts:
            lines = [
                f"  {name}: {n} event(s): {reason}" for name, reasons in counts.items() for reason, n in reasons.items()
            ]
            raise AssertionError("metrics skipped events:\n" + "\n".join(lines))

    def _clear_skips(self) -> None:
        with self._skip_lock:
            self._skips.clear()
            self._warned.clear()
