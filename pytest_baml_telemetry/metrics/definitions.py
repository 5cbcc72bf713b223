"""Metric definitions with the semantics of Elixir's ``Telemetry.Metrics``.

A definition says *what* to aggregate; a reporter (in-memory, Prometheus, ...) does the
aggregating. ``summary("ash_baml.call.stop.duration", unit=("native", "millisecond"),
tags=["function_name"])`` reads the ``duration`` measurement of
``("ash_baml","call","stop")`` events, converts it from nanoseconds to milliseconds, and
keeps one series per ``function_name``.

Rules (as in ``Telemetry.Metrics``):

* ``name`` — ``"a.b.c.measurement"`` or a sequence of strings. Unless ``event_name`` /
  ``measurement`` are given, the event name is every segment but the last and the
  measurement the last one.
* ``measurement`` — a key of the measurements, or a function of ``(measurements)`` or
  ``(measurements, metadata)`` (chosen by how many positional arguments it takes)
  returning the value.
* ``tags`` — metadata keys that split the metric into series; ``tag_values`` — a
  function ``metadata -> mapping`` applied before the tags are read.
* ``keep`` / ``drop`` — predicates on ``(metadata)`` or ``(metadata, measurements)``
  choosing which events count (at most one of the two).
* ``unit`` — a label such as ``"millisecond"``, or a ``(from, to)`` pair of time units
  (``"native"``, ``"nanosecond"``, ``"microsecond"``, ``"millisecond"``, ``"second"``) or
  of byte units (``"byte"``, ``"kilobyte"``, ``"megabyte"``): the value is multiplied by
  the ratio ``convert(1, from, to)``, which is an int when converting to a finer unit
  and a float (``1 / convert(1, to, from)``) otherwise, so ``("native", "millisecond")``
  turns ``1_500_000`` into ``1.5``.
* ``reporter_options`` — a mapping for reporters, e.g. ``{"buckets": [100, 200, 300]}``
  for a distribution (strictly increasing numbers; a value ``v`` falls in the first
  bucket whose bound is ``>= v``, and above the last bound in the ``+Inf`` bucket).

A ``counter`` counts events; its measurement is ignored unless given explicitly with
``measurement=``, in which case events where it is missing or ``None`` are skipped.

An event whose measurement is missing, ``None`` or NaN, or not a number, or whose metadata
lacks one of the tags, is **skipped** for that metric: reporters log a warning once per
metric and reason and count the skips (``reporter.skipped(name)``); it is never silently
dropped. An event rejected by ``keep``/``drop`` is not a skip: that is the point of them.

This module only describes metrics; the reporters' common part is
:mod:`~pytest_baml_telemetry.metrics.reporter`. Names are checked with
``contract.parse_event_name``, time units come from ``contract.TIME_UNITS``.
"""

from __future__ import annotations

import inspect
import math
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union, final

from .._lazy import lazy_exports
from .._validate import check_callable, check_mapping, check_str, fail, is_number, short_repr
from ..contract import TIME_UNITS, parse_event_name

__all__ = [
    "METRIC_TYPES",
    "Metric",
    "MetricName",
    "Observation",
    "Skip",
    "MetricsReporter",  # noqa: F822 - lazily re-exported from .reporter (see __getattr__)
    "UnknownMetricError",  # noqa: F822
    "counter",
    "distribution",
    "format_metric_name",
    "last_value",
    "normalize_metric_name",
    "sum",
    "summary",
]

METRIC_TYPES = ("counter", "sum", "last_value", "summary", "distribution")

MetricName = Union[str, Sequence[str]]

_BYTE_UNITS: dict[str, int] = {"byte": 1, "kilobyte": 1_000, "megabyte": 1_000_000}


class Observation(NamedTuple):
    """What an event contributes to a metric: the (converted) value and the tag values."""

    value: Any
    tags: tuple[Any, ...]


@final  # so ``type(outcome) is Skip`` narrows (MetricsReporter.handle)
class Skip(NamedTuple):
    """An event the metric could not use, and why (e.g. ``"measurement 'input_tokens' is None"``)."""

    reason: str


# --------------------------------------------------------------------------- names


def normalize_metric_name(name: Any, *, what: str = "metric name") -> tuple[str, ...]:
    """``"a.b.c"`` or ``["a", "b", "c"]`` → ``("a", "b", "c")``; raise on an empty or malformed name.

    Parsed by :func:`pytest_baml_telemetry.contract.parse_event_name` (a metric name is an
    event name plus a measurement); the message shows the name as given.
    """
    if isinstance(name, (str, list, tuple)):
        return parse_event_name(name, what=what if isinstance(name, tuple) else f"{what} {name!r}")
    raise TypeError(
        f"{what} {name!r} ({type(name).__name__}): expected a dotted string such as "
        "'ash_baml.call.stop.duration' or a sequence of strings"
    )


def format_metric_name(name: Sequence[str]) -> str:
    """``("a", "b")`` → ``"a.b"``."""
    return ".".join(name)


# --------------------------------------------------------------------------- callables


def _positional_arity(fn: Callable[..., Any], allowed: tuple[int, ...], what: str) -> int:
    """How many positional arguments to pass to ``fn``: the largest of ``allowed`` it accepts."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return allowed[0]  # builtins without a signature (e.g. operator.itemgetter): one argument
    positional = [
        p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    has_varargs = any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values())
    required = [p for p in positional if p.default is p.empty]
    required_kw = [
        p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    if required_kw:
        raise TypeError(
            f"{what}={fn!r} has required keyword-only parameters {[p.name for p in required_kw]}; expected a "
            f"function taking {' or '.join(map(str, allowed))} positional argument(s)"
        )
    for n in sorted(allowed, reverse=True):
        if len(required) <= n and (len(positional) >= n or has_varargs):
            return n
    raise TypeError(
        f"{what}={fn!r} takes {len(required)} required positional argument(s); expected a function taking "
        f"{' or '.join(map(str, allowed))} positional argument(s)"
    )


def _describe_exc(exc: BaseException) -> str:
    text = str(exc)
    if len(text) > 120:
        text = text[:117] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --------------------------------------------------------------------------- units


def _unit_ratio(unit: Any) -> tuple[str | None, tuple[str, str] | None, int, int]:
    """Return ``(unit label, conversion pair, numerator, denominator)``."""
    if unit is None:
        return None, None, 1, 1
    if isinstance(unit, str):
        if not unit:
            raise ValueError("unit='' is empty; expected a unit name such as 'millisecond' or a (from, to) pair")
        return unit, None, 1, 1
    if isinstance(unit, (tuple, list)):
        if len(unit) != 2:
            raise ValueError(
                f"unit={unit!r}: expected a unit name or a (from, to) pair such as ('native', 'millisecond')"
            )
        src, dst = unit
        for label, u in (("from", src), ("to", dst)):
            if not isinstance(u, str):
                raise TypeError(f"unit={unit!r}: the {label} unit {u!r} is not a str")
        for table in (TIME_UNITS, _BYTE_UNITS):
            if src in table and dst in table:
                a, b = table[src], table[dst]
                # Telemetry.Metrics: ratio = convert(1, from, to), or 1 / convert(1, to, from) when that is 0
                if a >= b:
                    return dst, (src, dst), a // b, 1
                return dst, (src, dst), 1, b // a
        known = sorted(TIME_UNITS) + sorted(_BYTE_UNITS)
        for u in (src, dst):
            if u not in TIME_UNITS and u not in _BYTE_UNITS:
                raise ValueError(f"unit={unit!r}: unknown unit {u!r}; expected one of {known}")
        raise ValueError(
            f"unit={unit!r}: cannot convert between a time unit and a byte unit; expected both of "
            f"{sorted(TIME_UNITS)} or both of {sorted(_BYTE_UNITS)}"
        )
    raise TypeError(
        f"unit={unit!r} ({type(unit).__name__}): expected a unit name such as 'millisecond' or a (from, to) "
        "pair such as ('native', 'millisecond')"
    )


# --------------------------------------------------------------------------- options


def _check_buckets(buckets: Any, owner: str) -> tuple[float, ...]:
    where = f"{owner}: reporter_options['buckets']"
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, (Sequence, range)):
        fail(TypeError, f"{where}={short_repr(buckets)}", "a non-empty list of strictly increasing numbers")
    values = tuple(buckets)
    if not values:
        fail(ValueError, f"{where}=[]", "at least one bucket bound")
    for b in values:
        if not is_number(b):
            fail(TypeError, f"{where} has {b!r}", "numbers only")
        if not math.isfinite(b):
            fail(ValueError, f"{where} has {b!r}", "finite bounds (the +Inf bucket is implicit)")
    for a, b in zip(values, values[1:]):
        if not b > a:
            fail(ValueError, f"{where}={list(values)!r} has {a!r} then {b!r}", "strictly increasing bounds")
    return values


# --------------------------------------------------------------------------- the metric


@dataclass(frozen=True, eq=False)
class Metric:
    """One metric definition. Build it with :func:`counter`, :func:`sum`, :func:`last_value`,
    :func:`summary` or :func:`distribution`.

    ``measurement`` is the key or function given (or inferred from the name);
    ``unit`` is the unit of the reported values (the target of a conversion);
    ``unit_conversion`` is the ``(from, to)`` pair when there is one.
    """

    type: str
    name: tuple[str, ...]
    event_name: tuple[str, ...]
    measurement: Any
    tags: tuple[str, ...] = ()
    tag_values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    keep: Callable[..., Any] | None = None
    drop: Callable[..., Any] | None = None
    unit: str | None = None
    unit_conversion: tuple[str, str] | None = None
    description: str | None = None
    reporter_options: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    measurement_explicit: bool = False
    # conversion ratio as an exact fraction, and the arities of the callables
    _ratio: tuple[int, int] = (1, 1)
    _measurement_arity: int = 0
    _filter_arity: int = 0

    # ------------------------------------------------------------------ naming

    @property
    def dotted_name(self) -> str:
        """The name as ``"a.b.c"``."""
        return format_metric_name(self.name)

    @property
    def buckets(self) -> tuple[float, ...] | None:
        """``reporter_options["buckets"]`` (validated), or ``None``."""
        return self.reporter_options.get("buckets")

    def __repr__(self) -> str:
        extra = []
        if self.tags:
            extra.append(f"tags={list(self.tags)!r}")
        if self.unit:
            extra.append(f"unit={self.unit_conversion or self.unit!r}")
        if self.buckets:
            extra.append(f"buckets={list(self.buckets)!r}")
        more = (", " + ", ".join(extra)) if extra else ""
        return (
            f"{self.type}({self.dotted_name!r}, event_name={'.'.join(self.event_name)!r}, "
            f"measurement={self.measurement!r}{more})"
        )

    # ------------------------------------------------------------------ evaluation

    def convert(self, value: Any) -> Any:
        """Apply the unit conversion to a value."""
        num, den = self._ratio
        if den == 1:
            return value if num == 1 else value * num
        return value * num / den

    def kept(self, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> bool:
        """Whether ``keep``/``drop`` let this event through (exceptions propagate)."""
        if self.keep is not None:
            args = (metadata, measurements) if self._filter_arity == 2 else (metadata,)
            return bool(self.keep(*args))
        if self.drop is not None:
            args = (metadata, measurements) if self._filter_arity == 2 else (metadata,)
            return not self.drop(*args)
        return True

    def observe(self, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> Observation | Skip | None:
        """What this event contributes: an :class:`Observation`, a :class:`Skip` with the
        reason, or ``None`` when ``keep``/``drop`` filtered it out.

        Errors raised by the user's functions (measurement, keep/drop, tag_values) become
        skips whose reason names the function and the error.
        """
        if self.keep is not None or self.drop is not None:
            try:
                if not self.kept(measurements, metadata):
                    return None
            except Exception as exc:
                which = "keep" if self.keep is not None else "drop"
                return Skip(f"{which} raised {_describe_exc(exc)}")
        value: Any = 1
        if self.type != "counter" or self.measurement_explicit:
            m = self.measurement
            if self._measurement_arity:
                try:
                    if self._measurement_arity == 2:
                        raw = m(measurements, metadata)
                    else:
                        raw = m(measurements)
                except Exception as exc:
                    return Skip(f"measurement function {getattr(m, '__qualname__', m)!s} raised {_describe_exc(exc)}")
                if raw is None:
                    return Skip(f"measurement function {getattr(m, '__qualname__', m)!s} returned None")
                where = "measurement function result"
            else:
                try:
                    raw = measurements[m]
                except KeyError:
                    return Skip(f"measurement {m!r} is missing from the event")
                except Exception as exc:  # an unhashable key, an odd mapping
                    return Skip(f"measurement {m!r} could not be read: {_describe_exc(exc)}")
                if raw is None:
                    return Skip(f"measurement {m!r} is None (unknown)")
                where = f"measurement {m!r}"
            if isinstance(raw, float) and raw != raw:
                return Skip(f"{where} is NaN (unknown)")
            if self.type != "counter":
                if not is_number(raw):
                    return Skip(f"{where} is not a number (got {type(raw).__name__})")
                value = self.convert(raw)
        tags: tuple[Any, ...] = ()
        if self.tags:
            source: Any = metadata
            if self.tag_values is not None:
                try:
                    source = self.tag_values(metadata)
                except Exception as exc:
                    return Skip(f"tag_values raised {_describe_exc(exc)}")
                if not isinstance(source, Mapping):
                    return Skip(f"tag_values returned a {type(source).__name__}, not a mapping")
            values = []
            for tag in self.tags:
                try:
                    v = source[tag]
                except KeyError:
                    return Skip(f"tag {tag!r} is missing from the metadata")
                try:
                    hash(v)
                except TypeError:
                    return Skip(f"tag {tag!r} has an unhashable value (a {type(v).__name__})")
                values.append(v)
            tags = tuple(values)
        return Observation(value, tags)


# --------------------------------------------------------------------------- builders


def _build(
    metric_type: str,
    name: Any,
    *,
    event_name: Any,
    measurement: Any,
    tags: Any,
    tag_values: Any,
    keep: Any,
    drop: Any,
    unit: Any,
    description: Any,
    reporter_options: Any,
) -> Metric:
    metric_name = normalize_metric_name(name)
    owner = f"{metric_type}({format_metric_name(metric_name)!r})"
    if event_name is None:
        if len(metric_name) < 2:
            raise ValueError(
                f"{owner}: a one-segment name gives no event name; pass event_name=..., or use a name such as "
                "'ash_baml.call.stop.duration' (event 'ash_baml.call.stop', measurement 'duration')"
            )
        event = metric_name[:-1]
    else:
        event = normalize_metric_name(event_name, what=f"{owner}: event_name")
    explicit = measurement is not None
    if measurement is None:
        measurement = metric_name[-1]
    measurement_arity = 0
    if callable(measurement):
        measurement_arity = _positional_arity(measurement, (1, 2), f"{owner}: measurement")
    else:
        try:
            hash(measurement)
        except TypeError:
            raise TypeError(
                f"{owner}: measurement={measurement!r} is neither a measurement key nor a function of "
                "(measurements) or (measurements, metadata)"
            ) from None
    if isinstance(tags, (str, bytes)):
        raise TypeError(f"{owner}: tags={tags!r} is a string; expected a list of metadata keys such as [{tags!r}]")
    try:
        tag_tuple = tuple(tags)
    except TypeError:
        raise TypeError(f"{owner}: tags={tags!r} is not a list; expected a list of metadata keys") from None
    for tag in tag_tuple:
        if not isinstance(tag, str) or not tag:
            fail(
                TypeError if not isinstance(tag, str) else ValueError,
                f"{owner}: tag {short_repr(tag)} in tags={short_repr(list(tag_tuple))}",
                "metadata keys, each a non-empty str such as 'function_name'",
            )
    dupes = sorted({repr(t) for t in tag_tuple if tag_tuple.count(t) > 1})
    if dupes:
        raise ValueError(f"{owner}: tags={list(tag_tuple)!r} repeats {', '.join(dupes)}")
    if tag_values is not None:
        check_callable(tag_values, f"{owner}: tag_values={tag_values!r}", expected="a function metadata -> mapping")
        _positional_arity(tag_values, (1,), f"{owner}: tag_values")
    if keep is not None and drop is not None:
        raise ValueError(f"{owner}: keep={keep!r} and drop={drop!r} are both set; expected at most one of them")
    filter_arity = 0
    for label, fn in (("keep", keep), ("drop", drop)):
        if fn is not None:
            check_callable(fn, f"{owner}: {label}={fn!r}", expected="a predicate of (metadata) or (metadata, measurements)")
            filter_arity = _positional_arity(fn, (1, 2), f"{owner}: {label}")
    try:
        unit_label, conversion, num, den = _unit_ratio(unit)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{owner}: {exc}") from None
    check_str(description, f"{owner}: description={description!r}", empty=True, optional=True)
    where = f"{owner}: reporter_options={short_repr(reporter_options)}"
    expected = "a mapping such as {'buckets': [100, 200, 300]}, or None"
    options: dict[str, Any] = dict(check_mapping(reporter_options, where, optional=True, expected=expected) or {})
    for key in options:
        check_str(key, f"{owner}: reporter_options key {key!r}", empty=True, expected="a str")
    if "buckets" in options:
        options["buckets"] = _check_buckets(options["buckets"], owner)
    return Metric(
        type=metric_type,
        name=metric_name,
        event_name=event,
        measurement=measurement,
        tags=tag_tuple,
        tag_values=tag_values,
        keep=keep,
        drop=drop,
        unit=unit_label,
        unit_conversion=conversion,
        description=description,
        reporter_options=types.MappingProxyType(options),
        measurement_explicit=explicit,
        _ratio=(num, den),
        _measurement_arity=measurement_arity,
        _filter_arity=filter_arity,
    )


_SIGNATURE_DOC = """

    ``name`` is ``"event.name.measurement"`` (a string or a sequence of strings).
    Options: ``event_name``, ``measurement`` (key or function of (measurements) or
    (measurements, metadata)), ``tags``, ``tag_values``, ``keep`` / ``drop``, ``unit``
    (a label or a ``(from, to)`` pair), ``description``, ``reporter_options``.
    See :mod:`pytest_baml_telemetry.metrics.definitions`.
"""


# The five builders repeat one signature on purpose: it is public and spelled out for users and type checkers.
def counter(
    name: MetricName,
    *,
    event_name: MetricName | None = None,
    measurement: Any = None,
    tags: Sequence[str] = (),
    tag_values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    keep: Callable[..., Any] | None = None,
    drop: Callable[..., Any] | None = None,
    unit: str | tuple[str, str] | None = None,
    description: str | None = None,
    reporter_options: Mapping[str, Any] | None = None,
) -> Metric:
    """Counts events (``counter("ash_baml.call.stop.count")`` counts every stop).

    The measurement is ignored, unless given with ``measurement=``: then events where it
    is missing or ``None`` are skipped (count the calls with known tokens, say).
    """
    return _build("counter", name, event_name=event_name, measurement=measurement, tags=tags,
                  tag_values=tag_values, keep=keep, drop=drop, unit=unit, description=description,
                  reporter_options=reporter_options)


def sum(  # noqa: A001 - the Telemetry.Metrics name
    name: MetricName,
    *,
    event_name: MetricName | None = None,
    measurement: Any = None,
    tags: Sequence[str] = (),
    tag_values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    keep: Callable[..., Any] | None = None,
    drop: Callable[..., Any] | None = None,
    unit: str | tuple[str, str] | None = None,
    description: str | None = None,
    reporter_options: Mapping[str, Any] | None = None,
) -> Metric:
    """Sums the measurement (``sum("ash_baml.call.stop.total_tokens")``)."""
    return _build("sum", name, event_name=event_name, measurement=measurement, tags=tags,
                  tag_values=tag_values, keep=keep, drop=drop, unit=unit, description=description,
                  reporter_options=reporter_options)


def last_value(
    name: MetricName,
    *,
    event_name: MetricName | None = None,
    measurement: Any = None,
    tags: Sequence[str] = (),
    tag_values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    keep: Callable[..., Any] | None = None,
    drop: Callable[..., Any] | None = None,
    unit: str | tuple[str, str] | None = None,
    description: str | None = None,
    reporter_options: Mapping[str, Any] | None = None,
) -> Metric:
    """Keeps the measurement of the most recent event."""
    return _build("last_value", name, event_name=event_name, measurement=measurement, tags=tags,
                  tag_values=tag_values, keep=keep, drop=drop, unit=unit, description=description,
                  reporter_options=reporter_options)


def summary(
    name: MetricName,
    *,
    event_name: MetricName | None = None,
    measurement: Any = None,
    tags: Sequence[str] = (),
    tag_values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    keep: Callable[..., Any] | None = None,
    drop: Callable[..., Any] | None = None,
    unit: str | tuple[str, str] | None = None,
    description: str | None = None,
    reporter_options: Mapping[str, Any] | None = None,
) -> Metric:
    """Statistics of the measurement: count, sum, min, max (and percentiles in memory)."""
    return _build("summary", name, event_name=event_name, measurement=measurement, tags=tags,
                  tag_values=tag_values, keep=keep, drop=drop, unit=unit, description=description,
                  reporter_options=reporter_options)


def distribution(
    name: MetricName,
    *,
    event_name: MetricName | None = None,
    measurement: Any = None,
    tags: Sequence[str] = (),
    tag_values: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
    keep: Callable[..., Any] | None = None,
    drop: Callable[..., Any] | None = None,
    unit: str | tuple[str, str] | None = None,
    description: str | None = None,
    reporter_options: Mapping[str, Any] | None = None,
) -> Metric:
    """A histogram of the measurement; bucket bounds from ``reporter_options={"buckets": [...]}``."""
    return _build("distribution", name, event_name=event_name, measurement=measurement, tags=tags,
                  tag_values=tag_values, keep=keep, drop=drop, unit=unit, description=description,
                  reporter_options=reporter_options)


for _fn in (counter, sum, last_value, summary, distribution):
    _fn.__doc__ = (_fn.__doc__ or "") + _SIGNATURE_DOC
del _fn


_MOVED = ("MetricsReporter", "SkipEvent", "UnknownMetricError")


# the reporter base moved to .reporter (which imports this module): re-exported lazily
__getattr__ = lazy_exports(__name__, dict.fromkeys(_MOVED, ".reporter"))
