"""A reporter that feeds metric definitions into ``prometheus_client`` collectors.

Needs the optional ``prometheus-client`` package (imported when a reporter is built).

Mapping, for a metric named ``"ash_baml.call.stop.duration"`` (dots become
underscores, ``namespace`` is prepended, other characters not allowed in Prometheus
names become ``_``):

* ``counter`` → ``Counter`` (sample ``<name>_total``), incremented by 1 per event;
* ``sum`` → ``Counter`` incremented by the value (sample ``<name>_total``); a negative
  value is skipped with a reason. With ``reporter_options={"prometheus_type": "gauge"}``
  it is a ``Gauge`` incremented by the value instead, which allows negative values;
* ``last_value`` → ``Gauge`` set to the value;
* ``summary`` → ``Summary`` (samples ``<name>_count`` and ``<name>_sum``);
* ``distribution`` → ``Histogram`` with ``reporter_options["buckets"]`` as bucket
  bounds (``prometheus_client``'s default buckets when none are given).

Tags become labels (they must be valid label names); a label value is ``str(value)``,
and ``""`` for ``None``. ``description`` becomes the help text. The collectors are
registered into the ``registry`` passed in when the reporter is built;
:meth:`PrometheusReporter.unregister` removes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .._validate import fail
from .definitions import Metric, MetricName, Observation
from .reporter import MetricsReporter, SkipEvent

__all__ = ["PrometheusReporter", "prometheus_name"]

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_:]")
_LABEL_OK = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def prometheus_name(metric_name: Iterable[str], namespace: str | None = None) -> str:
    """``("ash_baml","call","stop","duration")`` → ``"ash_baml_call_stop_duration"``
    (with ``namespace`` prepended), other invalid characters replaced by ``_``."""
    parts = ([namespace] if namespace else []) + list(metric_name)
    name = _NAME_BAD.sub("_", "_".join(parts))
    if name[:1].isdigit():
        name = "_" + name
    return name


class PrometheusReporter(MetricsReporter):
    """Feeds metric definitions into ``prometheus_client`` collectors in ``registry``.

    ``PrometheusReporter(metrics, registry=CollectorRegistry(), dispatcher=None,
    namespace=None)``; ``attach()`` / ``detach()`` or ``with reporter:``. The collectors
    are created and registered at construction (a name already in the registry raises
    ``ValueError`` naming the metric).
    """

    def __init__(
        self,
        metrics: Iterable[Metric] | Metric,
        *,
        registry: Any,
        dispatcher: Any = None,
        namespace: str | None = None,
    ) -> None:
        super().__init__(metrics, dispatcher=dispatcher)
        try:
            import prometheus_client
            from prometheus_client.registry import CollectorRegistry
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "PrometheusReporter needs the optional 'prometheus-client' package: "
                "pip install 'pytest-baml-telemetry[prometheus]' (or prometheus-client)"
            ) from exc
        if not isinstance(registry, CollectorRegistry):
            fail(
                TypeError, f"PrometheusReporter(registry={registry!r})",
                "a prometheus_client CollectorRegistry, e.g. prometheus_client.CollectorRegistry() or prometheus_client.REGISTRY",
            )
        if namespace is not None and (not isinstance(namespace, str) or not namespace):
            fail(TypeError, f"PrometheusReporter(namespace={namespace!r})", "a non-empty str or None")
        self.registry = registry
        self.namespace = namespace
        self._collectors: dict[tuple[str, ...], Any] = {}
        self._names: dict[tuple[str, ...], str] = {}
        self._gauge_sums: set[tuple[str, ...]] = set()
        try:
            for metric in self.metrics:
                self._collectors[metric.name] = self._make(prometheus_client, metric)
        except BaseException:
            self.unregister()
            raise

    def _make(self, prom: Any, metric: Metric) -> Any:
        name = prometheus_name(metric.name, self.namespace)
        owner = f"PrometheusReporter: metric {metric.dotted_name!r}"
        labels = []
        for tag in metric.tags:
            if not isinstance(tag, str) or not _LABEL_OK.match(tag) or tag.startswith("__"):
                raise ValueError(
                    f"{owner}: tag {tag!r} is not a valid Prometheus label name; expected letters, digits and "
                    "underscores, not starting with a digit or '__' (use tag_values to rename it)"
                )
            labels.append(tag)
        reserved = {"summary": "quantile", "distribution": "le"}.get(metric.type)
        if reserved in labels:
            raise ValueError(f"{owner}: tag {reserved!r} is reserved by Prometheus for a {metric.type}")
        doc = metric.description or f"{metric.type} of {'.'.join(metric.event_name)} {metric.measurement!r}"
        options = metric.reporter_options
        kind = options.get("prometheus_type")
        if kind is not None and (metric.type != "sum" or kind not in ("counter", "gauge")):
            raise ValueError(
                f"{owner}: reporter_options['prometheus_type']={kind!r}: only a sum may choose, between "
                "'counter' (the default) and 'gauge'"
            )
        common = {"labelnames": labels, "registry": self.registry}
        try:
            if metric.type == "counter" or (metric.type == "sum" and kind != "gauge"):
                collector = prom.Counter(name, doc, **common)
            elif metric.type in ("sum", "last_value"):
                collector = prom.Gauge(name, doc, **common)
                if metric.type == "sum":
                    self._gauge_sums.add(metric.name)
            elif metric.type == "summary":
                collector = prom.Summary(name, doc, **common)
            else:
                buckets = metric.buckets
                if buckets is None:
                    collector = prom.Histogram(name, doc, **common)
                else:
                    collector = prom.Histogram(name, doc, buckets=list(buckets), **common)
        except ValueError as exc:
            raise ValueError(f"{owner} as {name!r}: {exc}") from exc
        self._names[metric.name] = name
        return collector

    def prometheus_name(self, metric_name: MetricName) -> str:
        """The Prometheus name used for ``metric_name`` (without the ``_total``/``_count`` suffixes)."""
        return self._names[self.metric(metric_name).name]

    def collector(self, metric_name: MetricName) -> Any:
        """The ``prometheus_client`` collector of ``metric_name``."""
        return self._collectors[self.metric(metric_name).name]

    def _record(self, metric: Metric, observation: Observation) -> None:
        collector = self._collectors[metric.name]
        if metric.tags:
            collector = collector.labels(*("" if v is None else str(v) for v in observation.tags))
        value = observation.value
        kind = metric.type
        if kind == "counter":
            collector.inc()
        elif kind == "sum":
            if metric.name not in self._gauge_sums and value < 0:
                raise SkipEvent(
                    "negative value for a Prometheus counter "
                    "(use reporter_options={'prometheus_type': 'gauge'} for sums that go down)"
                )
            collector.inc(value)
        elif kind == "last_value":
            collector.set(value)
        else:
            collector.observe(value)

    def unregister(self) -> None:
        """Remove this reporter's collectors from the registry (and detach it)."""
        self.detach()
        for collector in self._collectors.values():
            try:
                self.registry.unregister(collector)
            except KeyError:
                pass
        self._collectors.clear()

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<PrometheusReporter {self.handler_id} {state} metrics={list(self._names.values())}>"
