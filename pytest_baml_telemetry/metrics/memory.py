"""An in-memory metrics reporter for tests, and the ``baml_metrics`` fixture body.

``InMemoryReporter([...definitions...])`` aggregates the events it receives while
attached; read the results with :meth:`~InMemoryReporter.value`,
:meth:`~InMemoryReporter.values`, :meth:`~InMemoryReporter.count` and assert on them with
:meth:`~InMemoryReporter.assert_value`, :meth:`~InMemoryReporter.assert_count` and
:meth:`~InMemoryReporter.assert_buckets`.

What ``value(name, **tags)`` gives, by metric type:

* ``counter`` — the number of events counted (an int);
* ``sum`` — the total (``0`` before any event);
* ``last_value`` — the value of the most recent event (``None`` before any event);
* ``summary`` — a :class:`MetricStats` with ``count``, ``sum``, ``min``, ``max``, ``mean``,
  the recorded ``values`` and ``percentile(p)`` (nearest-rank);
* ``distribution`` — a :class:`MetricStats` with ``count``, ``sum``, ``min``, ``max``,
  ``mean`` and ``buckets``: a mapping of each upper bound to the number of values in
  ``(previous bound, bound]`` (``Telemetry.Metrics`` semantics, not cumulative), plus the
  ``float("inf")`` bucket (also readable as ``"+Inf"``) for values above the last bound.

Tags left out of ``value(...)`` are aggregated over: with ``tags=["function_name",
"model"]``, ``value(name, function_name="X")`` covers every model of ``X`` and
``value(name)`` covers everything.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..matching import satisfies
from ..stats import percentile
from .definitions import Metric, MetricName, Observation
from .reporter import MetricsReporter

__all__ = ["Buckets", "InMemoryReporter", "MetricStats", "make_metrics_fixture"]

_INF = float("inf")
_STATS_FIELDS = ("count", "sum", "min", "max", "mean", "buckets", "values")


class Buckets(Mapping):
    """Bucket counts of a distribution: upper bound → number of values in ``(previous, bound]``.

    The last key is ``float("inf")``; ``buckets["+Inf"]`` reads it too, and a ``dict``
    written with a ``"+Inf"`` key compares equal. :meth:`cumulative` gives Prometheus-style
    ``le`` counts.
    """

    __slots__ = ("_bounds", "_counts")

    def __init__(self, bounds: Iterable[float], counts: Iterable[int]) -> None:
        self._bounds = tuple(bounds) + (_INF,)
        self._counts = tuple(counts)
        if len(self._counts) != len(self._bounds):
            raise ValueError(f"Buckets: {len(self._bounds)} bounds (with +Inf) but {len(self._counts)} counts")

    def __getitem__(self, key: Any) -> int:
        if key == "+Inf":
            return self._counts[-1]
        for bound, count in zip(self._bounds, self._counts):
            if bound == key:
                return count
        raise KeyError(f"no bucket with upper bound {key!r}; bounds: {list(self._bounds[:-1])} and +Inf")

    def __iter__(self) -> Iterator[float]:
        return iter(self._bounds)

    def __len__(self) -> int:
        return len(self._bounds)

    @staticmethod
    def _normalize(other: Mapping) -> dict:
        return {(_INF if k == "+Inf" else k): v for k, v in other.items()}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(zip(self._bounds, self._counts)) == self._normalize(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def cumulative(self) -> dict[float, int]:
        """``{bound: values <= bound}``, ending with ``inf: total``."""
        return dict(zip(self._bounds, itertools.accumulate(self._counts)))

    def __repr__(self) -> str:
        items = ", ".join(f"{'+Inf' if b == _INF else repr(b)}: {c}" for b, c in zip(self._bounds, self._counts))
        return f"Buckets({{{items}}})"


@dataclass(frozen=True)
class MetricStats:
    """Statistics of a summary or distribution (a snapshot).

    ``min``/``max``/``mean`` are ``None`` when ``count`` is 0. ``buckets`` is set for a
    distribution, ``values`` (in arrival order) for a summary.
    """

    count: int
    sum: float
    min: float | None
    max: float | None
    buckets: Buckets | None = None
    values: tuple[float, ...] | None = None

    @property
    def mean(self) -> float | None:
        return None if self.count == 0 else self.sum / self.count

    def percentile(self, p: float) -> float | None:
        """Nearest-rank percentile of a summary's values; ``None`` when empty."""
        if self.values is None:
            raise TypeError("percentile() needs the values of a summary; a distribution keeps only bucket counts")
        return percentile(sorted(self.values), p)

    def __repr__(self) -> str:
        parts = [f"count={self.count}", f"sum={self.sum!r}", f"min={self.min!r}", f"max={self.max!r}"]
        if self.buckets is not None:
            parts.append(f"buckets={self.buckets!r}")
        return f"MetricStats({', '.join(parts)})"


class _Series:
    __slots__ = ("count", "total", "min", "max", "last", "seq", "values", "buckets")

    def __init__(self, metric: Metric) -> None:
        self.count = 0
        self.total: Any = 0
        self.min: Any = None
        self.max: Any = None
        self.last: Any = None
        self.seq = 0
        self.values: list[Any] | None = [] if metric.type == "summary" else None
        bounds = metric.buckets or ()
        self.buckets: list[int] | None = [0] * (len(bounds) + 1) if metric.type == "distribution" else None


def _value_matches(expected: Any, actual: Any) -> bool:
    """:func:`~pytest_baml_telemetry.matching.satisfies`, and a mapping of stats fields for a summary/distribution."""
    if isinstance(actual, MetricStats) and isinstance(expected, Mapping):
        for key, want in expected.items():
            if key not in _STATS_FIELDS:
                raise TypeError(
                    f"cannot compare a summary/distribution on {key!r}; expected keys among {list(_STATS_FIELDS)}"
                )
            if not _value_matches(want, getattr(actual, key)):
                return False
        return True
    return satisfies(expected, actual)


def _tags_text(tags: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}={v!r}" for k, v in tags.items()) + "}" if tags else "{}"


class InMemoryReporter(MetricsReporter):
    """Aggregates metric definitions in memory while attached. Thread-safe.

    ``InMemoryReporter(metrics, dispatcher=None)``; ``attach()`` / ``detach()`` or
    ``with reporter:``. See the module docstring for what :meth:`value` returns.
    Metric names are given as in the definitions (``"ash_baml.call.stop.duration"`` or a
    sequence); an unknown name raises :class:`~pytest_baml_telemetry.metrics.UnknownMetricError`
    (a ``KeyError``) listing the known ones.
    """

    def __init__(self, metrics: Iterable[Metric] | Metric, *, dispatcher: Any = None) -> None:
        super().__init__(metrics, dispatcher=dispatcher)
        self._lock = threading.RLock()  # reentrant: user predicates in value(...) may read the reporter
        self._seq = itertools.count(1)
        self._series: dict[tuple[str, ...], dict[tuple[Any, ...], _Series]] = {m.name: {} for m in self.metrics}

    # ------------------------------------------------------------------ recording

    def _record(self, metric: Metric, observation: Observation) -> None:
        value = observation.value
        with self._lock:
            table = self._series[metric.name]
            series = table.get(observation.tags)
            if series is None:
                series = table[observation.tags] = _Series(metric)
            series.count += 1
            series.seq = next(self._seq)
            kind = metric.type
            if kind == "counter":
                return
            series.last = value
            series.total += value
            if series.min is None or value < series.min:
                series.min = value
            if series.max is None or value > series.max:
                series.max = value
            if series.values is not None:
                series.values.append(value)
            if series.buckets is not None:
                series.buckets[bisect.bisect_left(metric.buckets or (), value)] += 1

    def record(self, metric_name: MetricName | Metric, value: Any = 1, **tags: Any) -> None:
        """Record a value by hand (for tests of reporters themselves); ``tags`` must name every tag."""
        metric = self.metric(metric_name)
        missing = [t for t in metric.tags if t not in tags]
        extra = [t for t in tags if t not in metric.tags]
        if missing or extra:
            raise TypeError(
                f"record({metric.dotted_name!r}): expected exactly the tags {list(metric.tags)!r}; "
                f"missing {missing!r}, unexpected {extra!r}"
            )
        self._record(metric, Observation(metric.convert(value), tuple(tags[t] for t in metric.tags)))

    # ------------------------------------------------------------------ reading

    def _select(self, metric: Metric, tags: Mapping[str, Any]) -> list[tuple[tuple[Any, ...], _Series]]:
        unknown = [t for t in tags if t not in metric.tags]
        if unknown:
            raise TypeError(
                f"metric {metric.dotted_name!r} has no tag {unknown[0]!r}; its tags are {list(metric.tags)!r}"
            )
        index = [(metric.tags.index(name), want) for name, want in tags.items()]
        with self._lock:
            return [
                (key, series)
                for key, series in self._series[metric.name].items()
                if all(_value_matches(want, key[i]) for i, want in index)
            ]

    @staticmethod
    def _combine(metric: Metric, chosen: list[_Series]) -> Any:
        kind = metric.type
        if kind == "counter":
            return sum(s.count for s in chosen)
        if kind == "sum":
            return sum((s.total for s in chosen), 0)
        if kind == "last_value":
            return max(chosen, key=lambda s: s.seq).last if chosen else None
        count = sum(s.count for s in chosen)
        total = sum((s.total for s in chosen), 0)
        mins = [s.min for s in chosen if s.min is not None]
        maxs = [s.max for s in chosen if s.max is not None]
        buckets = values = None
        if kind == "distribution":
            bounds = metric.buckets or ()
            counts = [0] * (len(bounds) + 1)
            for s in chosen:
                for i, n in enumerate(s.buckets or ()):
                    counts[i] += n
            buckets = Buckets(bounds, counts)
        else:
            # arrival order across series
            values = tuple(v for s in chosen for v in (s.values or ()))
        return MetricStats(
            count=count,
            sum=total,
            min=min(mins) if mins else None,
            max=max(maxs) if maxs else None,
            buckets=buckets,
            values=values,
        )

    def value(self, metric_name: MetricName | Metric, **tags: Any) -> Any:
        """The metric's value over the series matching ``tags`` (see the module docstring)."""
        metric = self.metric(metric_name)
        with self._lock:
            return self._combine(metric, [s for _, s in self._select(metric, tags)])

    def count(self, metric_name: MetricName | Metric, **tags: Any) -> int:
        """How many events the metric recorded (any metric type) over the matching series."""
        metric = self.metric(metric_name)
        with self._lock:
            return sum(s.count for _, s in self._select(metric, tags))

    def values(self, metric_name: MetricName | Metric) -> list[tuple[dict[Any, Any], Any]]:
        """``[(tags, value), ...]`` for every tag combination seen, in order of first appearance."""
        metric = self.metric(metric_name)
        with self._lock:
            return [
                (dict(zip(metric.tags, key)), self._combine(metric, [s]))
                for key, s in self._series[metric.name].items()
            ]

    def tag_sets(self, metric_name: MetricName | Metric) -> list[dict[Any, Any]]:
        """The tag combinations seen, in order of first appearance."""
        metric = self.metric(metric_name)
        with self._lock:
            keys = list(self._series[metric.name])
        return [dict(zip(metric.tags, key)) for key in keys]

    # ------------------------------------------------------------------ assertions

    def _failure(self, metric: Metric, what: str, expected: Any, actual: Any, tags: Mapping[str, Any]) -> AssertionError:
        lines = [
            f"metric {metric.dotted_name!r} ({metric.type}){' for ' + _tags_text(tags) if tags else ''}: "
            f"expected {what} {expected!r}, got {actual!r}"
        ]
        seen = self.values(metric)
        if seen and metric.tags:
            lines.append(f"tag sets seen ({len(seen)}):")
            for tag_set, value in seen[:20]:
                shown = value.count if isinstance(value, MetricStats) and what == "count" else value
                lines.append(f"  {_tags_text(tag_set)} -> {shown!r}")
            if len(seen) > 20:
                lines.append(f"  ... and {len(seen) - 20} more")
        elif not seen:
            lines.append("the metric recorded no event")
        skipped = self.skip_counts().get(metric.dotted_name)
        if skipped:
            lines.append("skipped events:")
            lines.extend(f"  {n} x {reason}" for reason, n in skipped.items())
        if not self.attached and not seen:
            lines.append("(the reporter is not attached)")
        return AssertionError("\n".join(lines))

    def assert_value(self, metric_name: MetricName, expected: Any, **tags: Any) -> None:
        """Assert ``value(metric_name, **tags)`` matches ``expected``.

        ``expected`` may be a value (compared with ``==``, so ``pytest.approx`` and
        ``dirty-equals`` work), a predicate, or for a summary/distribution a mapping of some
        of ``count``, ``sum``, ``min``, ``max``, ``mean``, ``buckets``, ``values``. The
        failure message lists the tag sets seen and any skipped events.
        """
        metric = self.metric(metric_name)
        actual = self.value(metric, **tags)
        if not _value_matches(expected, actual):
            raise self._failure(metric, "value", expected, actual, tags)

    def assert_count(self, metric_name: MetricName, expected: Any, **tags: Any) -> None:
        """Assert the number of recorded events (any metric type) matches ``expected``."""
        metric = self.metric(metric_name)
        actual = self.count(metric, **tags)
        if not _value_matches(expected, actual):
            raise self._failure(metric, "count", expected, actual, tags)

    def assert_buckets(self, metric_name: MetricName, expected: Mapping[Any, int], **tags: Any) -> None:
        """Assert a distribution's bucket counts (non-cumulative; ``"+Inf"`` or ``float('inf')``
        for the last bucket) equal ``expected``."""
        metric = self.metric(metric_name)
        if metric.type != "distribution":
            raise TypeError(f"metric {metric.dotted_name!r} is a {metric.type}, not a distribution; it has no buckets")
        actual = self.value(metric, **tags).buckets
        if not _value_matches(expected, actual):
            raise self._failure(metric, "buckets", expected, actual, tags)

    # ------------------------------------------------------------------ misc

    def metric(self, name: MetricName | Metric) -> Metric:
        if isinstance(name, Metric):
            name = name.name
        return super().metric(name)

    def clear(self) -> None:
        """Forget every recorded value and skip."""
        with self._lock:
            for table in self._series.values():
                table.clear()
        self._clear_skips()

    def report(self) -> str:
        """Every metric and series as text (handy in a failure message)."""
        lines = []
        for metric in self.metrics:
            seen = self.values(metric)
            if not seen:
                lines.append(f"{metric.dotted_name} ({metric.type}): no events")
                continue
            for tag_set, value in seen:
                label = f" {_tags_text(tag_set)}" if metric.tags else ""
                lines.append(f"{metric.dotted_name} ({metric.type}){label}: {value!r}")
        for name, reasons in self.skip_counts().items():
            for reason, n in reasons.items():
                lines.append(f"{name}: skipped {n} event(s): {reason}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<InMemoryReporter {self.handler_id} {state} metrics={[m.dotted_name for m in self.metrics]}>"


def make_metrics_fixture(*, dispatcher: Any = None) -> Iterator[Callable[..., InMemoryReporter]]:
    """The body of the ``baml_metrics`` fixture: yields a factory, detaches at teardown.

    ``reporter = baml_metrics([summary(...), counter(...)])`` (or
    ``baml_metrics(summary(...), counter(...))``, optionally ``dispatcher=...``) builds an
    :class:`InMemoryReporter`, attaches it and returns it; every reporter made is detached
    when the generator is closed. Use it as ``yield from make_metrics_fixture()``.
    """
    made: list[InMemoryReporter] = []
    default = dispatcher

    def baml_metrics(metrics: Iterable[Metric] | Metric, *more: Metric, dispatcher: Any = None) -> InMemoryReporter:
        definitions: list[Any] = [metrics] if isinstance(metrics, Metric) else list(metrics) if _iterable(metrics) else [metrics]
        definitions.extend(more)
        reporter = InMemoryReporter(definitions, dispatcher=dispatcher if dispatcher is not None else default)
        reporter.attach()
        made.append(reporter)
        return reporter

    try:
        yield baml_metrics
    finally:
        for reporter in reversed(made):
            reporter.detach()


def _iterable(value: Any) -> bool:
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, Mapping))
