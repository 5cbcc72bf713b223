"""Metrics over the call events, with the semantics of Elixir's ``Telemetry.Metrics``.

Definitions: :func:`counter`, :func:`sum`, :func:`last_value`, :func:`summary`,
:func:`distribution`. Reporters: :class:`InMemoryReporter` (for tests; also the
``baml_metrics`` fixture), :class:`PrometheusReporter` (needs ``prometheus-client``) and
:class:`OpenTelemetryReporter` (needs ``opentelemetry-sdk``; records the GenAI semantic
conventions' metrics directly from the call events). The optional dependencies are
imported only when those reporters are used.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .definitions import (
    METRIC_TYPES,
    Metric,
    Observation,
    Skip,
    counter,
    distribution,
    last_value,
    sum,
    summary,
)
from .memory import InMemoryReporter, MetricStats, make_metrics_fixture
from .reporter import MetricsReporter, UnknownMetricError

_LAZY = {
    "PrometheusReporter": ".prometheus",
    "OpenTelemetryReporter": ".opentelemetry",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "METRIC_TYPES",
    "InMemoryReporter",
    "Metric",
    "MetricStats",
    "MetricsReporter",
    "Observation",
    "OpenTelemetryReporter",
    "PrometheusReporter",
    "Skip",
    "UnknownMetricError",
    "counter",
    "distribution",
    "last_value",
    "make_metrics_fixture",
    "sum",
    "summary",
]
