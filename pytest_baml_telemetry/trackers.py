"""Ready-made handlers for the call events: cost, slow calls, latency percentiles, logging.

Each tracker is an :class:`~pytest_baml_telemetry.attachable.AttachableHandler`: ``tracker.attach(dispatcher=None,
prefix=("ash_baml",))`` attaches it (to the default dispatcher unless one is given),
``tracker.detach()`` removes it, and ``with tracker:`` does both. Every instance has its
own handler id, so two trackers of the same kind never clash. ``tracker.handle`` is the
handler function itself, for code that attaches it by hand.

* :class:`CostTracker` — USD per function and per model from a price table, over
  successful and failed calls (a billed failure is never $0). A model without a price is
  reported as *unpriced* and a call with unknown tokens as *unknown tokens*; neither is
  ever counted as $0.
* :class:`SlowCallTracker` — logs a ``WARNING`` for every call slower than a threshold
  and keeps the list of slow calls.
* :class:`LatencyTracker` — exact nearest-rank percentiles (p50/p90/p95/p99/max) per
  function; ``None`` when there are no calls, correct for a single call.
* :class:`LoggingHandler` / :func:`log_calls` — one log line per finished call.

None of them logs or keeps call arguments or results unless asked to. Percentiles come
from :mod:`pytest_baml_telemetry.stats`, time units from ``contract.TIME_UNITS``.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._validate import fail, is_count, is_int, is_number, short_number_repr, short_repr
from .attachable import AttachableHandler
from .budgets.text import format_usd
from .clock import DurationLike, format_duration_ns, parse_duration_ns
from .contract import DEFAULT_PREFIX, MAX_NATIVE, TIME_UNITS, EventName, convert_time_unit, event_kind
from .dispatcher import Dispatcher
from .stats import percentile, rank

__all__ = [
    "AttachableHandler",
    "CallCost",
    "CostTotals",
    "CostTracker",
    "LatencyTracker",
    "LoggingHandler",
    "SlowCall",
    "SlowCallTracker",
    "log_calls",
    "nearest_rank",
]

_log = logging.getLogger("pytest_baml_telemetry.trackers")

# --------------------------------------------------------------------------- percentiles


nearest_rank = percentile
"""Exact nearest-rank percentile of already sorted values, ``None`` when empty (the one
definition, :func:`pytest_baml_telemetry.stats.percentile`)."""

_EXACT_UNITS = ("native", "nanosecond")


def _convert_ns(ns: int, unit: str) -> int | float:
    """``ns`` nanoseconds in ``unit``: the int itself in nanoseconds, else a float."""
    try:
        return convert_time_unit(ns if unit in _EXACT_UNITS else float(ns), "nanosecond", unit)
    except ValueError:
        fail(ValueError, f"unit={unit!r}", f"a time unit, one of {sorted(TIME_UNITS)}")


# --------------------------------------------------------------------------- latency


class LatencyTracker(AttachableHandler):
    """Durations per BAML function, with exact nearest-rank percentiles.

    Records the ``duration`` of every stop event (and of exception events too with
    ``include_errors=True``). ``max_samples`` keeps only the most recent durations per
    function (default: all of them).
    """

    PERCENTILES: tuple[tuple[str, int], ...] = (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99))

    def __init__(
        self,
        *,
        include_errors: bool = False,
        max_samples: int | None = None,
        dispatcher: Dispatcher | None = None,
        prefix: EventName = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        if max_samples is not None and (not is_count(max_samples) or not 0 < max_samples <= MAX_NATIVE):
            fail(ValueError, f"LatencyTracker(max_samples={short_number_repr(max_samples)})", "a positive int or None")
        self.include_errors = bool(include_errors)
        self.max_samples = max_samples
        self._kinds = ("stop", "exception") if include_errors else ("stop",)
        self._durations: dict[str, deque[int]] = {}
        self._lock = threading.Lock()

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        duration = measurements.get("duration")
        if not is_count(duration) or duration > MAX_NATIVE:
            _log.warning(
                "LatencyTracker: %s event of %r has no valid duration (%s); not recorded",
                event_kind(event_name), metadata.get("function_name"), short_number_repr(duration),
            )
            return
        self.record(metadata.get("function_name") or "<unknown>", duration)

    def record(self, function_name: str, duration_ns: int) -> None:
        """Record one duration (nanoseconds) for ``function_name``."""
        if not is_count(duration_ns) or duration_ns > MAX_NATIVE:
            fail(
                ValueError, f"LatencyTracker.record(duration_ns={short_number_repr(duration_ns)})",
                f"an int from 0 to {MAX_NATIVE} (nanoseconds)",
            )
        with self._lock:
            samples = self._durations.get(function_name)
            if samples is None:
                samples = self._durations[function_name] = deque(maxlen=self.max_samples)
            samples.append(duration_ns)

    @property
    def functions(self) -> list[str]:
        """The functions seen, sorted."""
        with self._lock:
            return sorted(self._durations)

    def durations(self, function_name: str | None = None) -> list[int]:
        """The recorded durations in nanoseconds (all functions when ``function_name`` is None)."""
        with self._lock:
            if function_name is None:
                return [d for samples in self._durations.values() for d in samples]
            return list(self._durations.get(function_name, ()))

    def count(self, function_name: str | None = None) -> int:
        """How many durations are recorded."""
        return len(self.durations(function_name))

    def percentile(self, p: float, function_name: str | None = None, *, unit: str = "millisecond") -> int | float | None:
        """The nearest-rank ``p``-th percentile (0..100) in ``unit``; ``None`` with no calls."""
        value = nearest_rank(sorted(self.durations(function_name)), p)
        return None if value is None else _convert_ns(value, unit)

    def percentiles(self, function_name: str | None = None, *, unit: str = "millisecond") -> dict[str, Any] | None:
        """``{"count", "min", "p50", "p90", "p95", "p99", "max"}`` in ``unit`` (default
        milliseconds, ``"nanosecond"`` gives exact ints), or ``None`` when there are no calls.

        ``function_name=None`` covers every function.
        """
        values = sorted(self.durations(function_name))
        if not values:
            _convert_ns(0, unit)  # still validate the unit
            return None
        out: dict[str, Any] = {"count": len(values), "min": _convert_ns(values[0], unit)}
        for key, p in self.PERCENTILES:
            out[key] = _convert_ns(values[rank(p, len(values)) - 1], unit)
        out["max"] = _convert_ns(values[-1], unit)
        return out

    def clear(self) -> None:
        """Forget every recorded duration."""
        with self._lock:
            self._durations.clear()

    def __repr__(self) -> str:
        return f"<LatencyTracker {self.handler_id} functions={len(self._durations)} calls={self.count()}>"


# --------------------------------------------------------------------------- slow calls


@dataclass(frozen=True)
class SlowCall:
    """One call slower than the threshold."""

    function_name: str | None
    model: str | None
    duration_ns: int
    ok: bool
    streaming: bool | None
    resource: Any = None
    action: str | None = None
    error_type: str | None = None

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1_000_000

    def describe(self) -> str:
        model = f" (model {self.model})" if self.model else " (model unknown)"
        outcome = "" if self.ok else f", failed with {self.error_type}"
        return f"{self.function_name}{model} took {format_duration_ns(self.duration_ns)}{outcome}"


class SlowCallTracker(AttachableHandler):
    """Logs a ``WARNING`` for every call whose duration is above ``threshold``.

    ``threshold`` is a duration (``"2s"``, ``"850ms"``, a ``timedelta`` or seconds); a call
    is slow when its duration is strictly greater. Failed calls count too unless
    ``include_errors=False``. The slow calls are kept in :attr:`slow_calls`.
    """

    def __init__(
        self,
        threshold: DurationLike,
        *,
        logger: logging.Logger | None = None,
        include_errors: bool = True,
        dispatcher: Dispatcher | None = None,
        prefix: EventName = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        self.threshold_ns = parse_duration_ns(threshold, name="SlowCallTracker(threshold)")
        if logger is not None and not isinstance(logger, logging.Logger):
            fail(TypeError, f"SlowCallTracker(logger={logger!r})", "a logging.Logger or None")
        self.logger = logger if logger is not None else _log
        self.include_errors = bool(include_errors)
        self._kinds = ("stop", "exception") if include_errors else ("stop",)
        self._slow: list[SlowCall] = []
        self._seen = 0
        self._lock = threading.Lock()

    @property
    def slow_calls(self) -> list[SlowCall]:
        """The slow calls so far, in order."""
        with self._lock:
            return list(self._slow)

    @property
    def calls_seen(self) -> int:
        """How many calls were checked."""
        return self._seen

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        duration = measurements.get("duration")
        with self._lock:
            self._seen += 1
        if not is_count(duration) or duration > MAX_NATIVE:
            self.logger.warning(
                "SlowCallTracker: %s event of %r has no valid duration (%s); not checked",
                event_kind(event_name), metadata.get("function_name"), short_number_repr(duration),
            )
            return
        if duration <= self.threshold_ns:
            return
        ok = event_kind(event_name) != "exception"
        reason = metadata.get("reason")
        model = metadata.get("model")
        call = SlowCall(
            function_name=metadata.get("function_name"),
            model=model if isinstance(model, str) else None,
            duration_ns=duration,
            ok=ok,
            streaming=metadata.get("streaming"),
            resource=metadata.get("resource"),
            action=metadata.get("action"),
            error_type=None if ok else type(reason).__name__ if reason is not None else "unknown error",
        )
        with self._lock:
            self._slow.append(call)
        self.logger.warning(
            "slow BAML call: %s took %s, above the %s threshold%s",
            f"{call.function_name} (model {call.model or 'unknown'})",
            format_duration_ns(duration),
            format_duration_ns(self.threshold_ns),
            "" if ok else f" (failed with {call.error_type})",
            extra={
                "baml_function": call.function_name,
                "baml_model": call.model,
                "baml_duration_ms": call.duration_ms,
                "baml_threshold_ms": self.threshold_ns / 1_000_000,
            },
        )

    def clear(self) -> None:
        with self._lock:
            self._slow.clear()
            self._seen = 0

    def __repr__(self) -> str:
        return (
            f"<SlowCallTracker {self.handler_id} threshold={format_duration_ns(self.threshold_ns)} "
            f"slow={len(self._slow)}/{self._seen}>"
        )


# --------------------------------------------------------------------------- cost


def _calls(n: int) -> str:
    """``"1 call"``, ``"1,200 calls"``."""
    return "1 call" if n == 1 else f"{n:,} calls"


@dataclass(frozen=True)
class CallCost:
    """The cost of one call: ``usd`` is ``None`` when it cannot be known, and ``status``
    says why: ``"priced"``, ``"unpriced"`` (no price for the model) or ``"unknown_tokens"``."""

    function_name: str | None
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    cached_input_tokens: int | None
    usd: float | None
    status: str


@dataclass
class CostTotals:
    """Cost of a group of calls (one function, one model, or everything).

    :attr:`usd` is the total in USD when every call in the group could be priced, else
    ``None`` (never a made-up $0); :attr:`priced_usd` is the sum over the priced calls
    only, a lower bound.
    """

    calls: int = 0
    priced_calls: int = 0
    unpriced_calls: int = 0
    unknown_token_calls: int = 0
    priced_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    unpriced_models: Counter = field(default_factory=Counter)

    @property
    def complete(self) -> bool:
        """Every call in the group has a known cost."""
        return self.priced_calls == self.calls

    @property
    def usd(self) -> float | None:
        """Total USD, or ``None`` when some call is unpriced or has unknown tokens."""
        return self.priced_usd if self.complete else None

    def _add(self, cost: CallCost) -> None:
        self.calls += 1
        if cost.input_tokens is not None:
            self.input_tokens += cost.input_tokens
        if cost.output_tokens is not None:
            self.output_tokens += cost.output_tokens
        if cost.cached_input_tokens is not None:
            self.cached_input_tokens += cost.cached_input_tokens
        if cost.status == "priced":
            self.priced_calls += 1
            self.priced_usd += cost.usd  # type: ignore[operator]
        elif cost.status == "unpriced":
            self.unpriced_calls += 1
            self.unpriced_models[cost.model] += 1
        else:
            self.unknown_token_calls += 1

    def describe(self) -> str:
        """``"$0.0123 over 3 calls"`` or why the total is unknown (amounts as ``format_usd`` writes them)."""
        if self.calls == 0:
            return "no calls"
        if self.complete:
            return f"{format_usd(self.priced_usd)} over {_calls(self.calls)}"
        parts = []
        if self.unpriced_calls:
            models = ", ".join(repr(m) for m in sorted(self.unpriced_models, key=lambda m: (m is None, str(m))))
            s = "" if len(self.unpriced_models) == 1 else "s"
            parts.append(f"{_calls(self.unpriced_calls)} to unpriced model{s} {models}")
        if self.unknown_token_calls:
            parts.append(f"{_calls(self.unknown_token_calls)} with unknown tokens")
        priced = "the 1 priced call costs" if self.priced_calls == 1 else f"the {self.priced_calls:,} priced calls cost"
        return f"unknown: {'; '.join(parts)} ({priced} {format_usd(self.priced_usd)})"

    def __str__(self) -> str:
        return self.describe()


class CostTracker(AttachableHandler):
    """Totals the USD cost of finished calls per function and per model.

    ``prices`` is a mapping ``model -> {"input_per_mtok", "output_per_mtok",
    "cached_input_per_mtok"}`` (USD per million tokens; cached input tokens are part of
    the input tokens and billed at the cached rate, or at the input rate when no cached
    rate is given), a :class:`~pytest_baml_telemetry.budgets.PriceTable`, or any object
    with ``cost(model, input_tokens, output_tokens, cached_input_tokens) -> float | None``
    (``None`` meaning unpriced). Stop and exception events are costed alike: a failure
    the provider answered carries its usage and is billed (never $0), one known not to be
    billed carries 0/0 tokens ($0), one whose billing is unknown carries ``None`` (unknown
    tokens, as a success without usage). A call to an unpriced model (status
    ``"unpriced"``, whatever its tokens) or with unknown tokens to a priced model (status
    ``"unknown_tokens"``) makes the totals it belongs to unknown (:attr:`CostTotals.usd`
    is ``None``), never $0.
    """

    _kinds = ("stop", "exception")

    def __init__(
        self,
        prices: Any,
        *,
        keep_calls: bool = True,
        dispatcher: Dispatcher | None = None,
        prefix: EventName = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        if isinstance(prices, Mapping):
            from .budgets import PriceTable

            models = prices.get("models") if set(prices) == {"models"} and isinstance(prices.get("models"), Mapping) else prices
            prices = PriceTable(models)
        elif not callable(getattr(prices, "cost", None)):
            fail(
                TypeError, f"CostTracker(prices={short_repr(prices)})",
                "a mapping of model -> {'input_per_mtok': ..., 'output_per_mtok': ..., 'cached_input_per_mtok': ...}, "
                "a PriceTable, or an object with cost(model, input_tokens, output_tokens, cached_input_tokens)",
            )
        self.prices = prices
        from .budgets import PriceTable

        # a PriceTable prices by provider too (genai-prices: an ollama "gpt-4o" is not OpenAI's)
        self._by_provider = isinstance(prices, PriceTable)
        self.keep_calls = bool(keep_calls)
        self._calls: list[CallCost] = []
        self._total = CostTotals()
        self._by_function: dict[str | None, CostTotals] = {}
        self._by_model: dict[str | None, CostTotals] = {}
        self._lock = threading.Lock()

    def _price(self, model: str | None, i: int, o: int, c: int | None, provider: str | None = None) -> float | None:
        if provider is not None and self._by_provider:
            cost = self.prices.cost(model, i, o, c, provider=provider)
        else:
            cost = self.prices.cost(model, i, o, c)
        if cost is None:
            return None
        try:
            ok = is_number(cost) and math.isfinite(cost) and float(cost) >= 0
        except OverflowError:  # math.isfinite(10**400)
            ok = False
        if not ok:
            fail(
                ValueError, f"CostTracker: prices.cost({model!r}, {i}, {o}, {c}) returned {short_number_repr(cost)}",
                "a finite number >= 0 (USD) or None for an unpriced model",
            )
        return float(cost)

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        model = metadata.get("model")
        self.record(
            metadata.get("function_name"),
            model if isinstance(model, str) else None,
            measurements.get("input_tokens"),
            measurements.get("output_tokens"),
            measurements.get("cached_input_tokens"),
            provider=provider if isinstance(provider := metadata.get("provider"), str) else None,
        )

    def record(
        self,
        function_name: str | None,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
        *,
        provider: str | None = None,
    ) -> CallCost:
        """Cost one call and add it to the totals; return its :class:`CallCost` (``provider``:
        the call's, for a :class:`PriceTable` that prices by provider)."""
        # token counts beyond the int64 range are unknown, as non-ints are (a cost stays finite)
        i = input_tokens if is_count(input_tokens) and input_tokens <= MAX_NATIVE else None
        o = output_tokens if is_count(output_tokens) and output_tokens <= MAX_NATIVE else None
        c = cached_input_tokens if is_count(cached_input_tokens) and cached_input_tokens <= MAX_NATIVE else None
        if i is None or o is None:
            # an unpriced model can never be costed, whatever its tokens: say so first
            usd = None
            status = "unpriced" if self._price(model, 0, 0, 0, provider) is None else "unknown_tokens"
        else:
            usd = self._price(model, i, o, c, provider)
            status = "unpriced" if usd is None else "priced"
        cost = CallCost(function_name, model, i, o, c, usd, status)
        with self._lock:
            if self.keep_calls:
                self._calls.append(cost)
            self._total._add(cost)
            for table, key in ((self._by_function, function_name), (self._by_model, model)):
                totals = table.get(key)
                if totals is None:
                    totals = table[key] = CostTotals()
                totals._add(cost)
        return cost

    # ------------------------------------------------------------------ results

    @property
    def calls(self) -> list[CallCost]:
        """Every costed call, in order (empty with ``keep_calls=False``)."""
        with self._lock:
            return list(self._calls)

    @property
    def total(self) -> CostTotals:
        """Totals over every call."""
        with self._lock:
            return _copy_totals(self._total)

    @property
    def total_usd(self) -> float | None:
        """Total USD, or ``None`` when some call is unpriced or has unknown tokens."""
        return self.total.usd

    def by_function(self) -> dict[str | None, CostTotals]:
        """Totals per BAML function."""
        with self._lock:
            return {k: _copy_totals(v) for k, v in self._by_function.items()}

    def by_model(self) -> dict[str | None, CostTotals]:
        """Totals per model (``None``: calls whose model is unknown)."""
        with self._lock:
            return {k: _copy_totals(v) for k, v in self._by_model.items()}

    @property
    def unpriced_models(self) -> dict[str | None, int]:
        """Models with no price, and how many calls went to each."""
        with self._lock:
            return dict(self._total.unpriced_models)

    @property
    def unknown_token_calls(self) -> int:
        """How many calls reported unknown tokens."""
        return self._total.unknown_token_calls

    def report(self) -> str:
        """A short multi-line summary, per function and per model."""
        lines = [f"BAML cost: {self.total.describe()}"]
        for title, table in (("function", self.by_function()), ("model", self.by_model())):
            for key in sorted(table, key=lambda k: (k is None, str(k))):
                lines.append(f"  {title} {key if key is not None else '<unknown>'}: {table[key].describe()}")
        return "\n".join(lines)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self._total = CostTotals()
            self._by_function.clear()
            self._by_model.clear()

    def __repr__(self) -> str:
        return f"<CostTracker {self.handler_id} {self._total.describe()}>"


def _copy_totals(t: CostTotals) -> CostTotals:
    return CostTotals(
        t.calls, t.priced_calls, t.unpriced_calls, t.unknown_token_calls, t.priced_usd,
        t.input_tokens, t.output_tokens, t.cached_input_tokens, Counter(t.unpriced_models),
    )


# --------------------------------------------------------------------------- logging


def _tokens_text(measurements: Mapping[str, Any]) -> str:
    i, o, t = (measurements.get(k) for k in ("input_tokens", "output_tokens", "total_tokens"))
    if i is None and o is None:
        return "tokens unknown"

    def show(v: Any) -> str:
        return "?" if v is None else str(v)

    return f"tokens {show(i)} in + {show(o)} out = {show(t)}"


class LoggingHandler(AttachableHandler):
    """Logs one line per finished call: function, outcome, duration in ms, tokens, model.

    Stops are logged at ``level``, exceptions at ``error_level``, with the exception's
    class name (and ``status_code`` when it has one). Arguments, results and exception
    messages (which may quote prompts or model output) are only logged when
    ``include_arguments`` / ``include_result`` / ``include_error_message`` is set; the
    arguments come from the start event, so it is attached too in that case. Each record
    also carries ``baml_function``, ``baml_model``, ``baml_duration_ms``, ``baml_ok`` and
    the token counts as ``extra`` attributes for structured logging.
    """

    def __init__(
        self,
        logger: logging.Logger | str | None = None,
        level: int | str = logging.INFO,
        *,
        error_level: int | str = logging.ERROR,
        include_arguments: bool = False,
        include_result: bool = False,
        include_error_message: bool = False,
        dispatcher: Dispatcher | None = None,
        prefix: EventName = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        if logger is None:
            logger = logging.getLogger("pytest_baml_telemetry.calls")
        elif isinstance(logger, str):
            logger = logging.getLogger(logger)
        elif not isinstance(logger, logging.Logger):
            fail(TypeError, f"LoggingHandler(logger={logger!r})", "a logging.Logger, a logger name, or None")
        self.logger = logger
        self.level = _check_level(level, "level")
        self.error_level = _check_level(error_level, "error_level")
        self.include_arguments = bool(include_arguments)
        self.include_result = bool(include_result)
        self.include_error_message = bool(include_error_message)
        self._kinds = ("start", "stop", "exception") if include_arguments else ("stop", "exception")
        self._arguments: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        kind = event_kind(event_name)
        span = metadata.get("telemetry_span_context")
        if kind == "start":
            if self.include_arguments and span is not None:
                with self._lock:
                    self._arguments[span] = metadata.get("arguments")
            return
        arguments = None
        if self.include_arguments and span is not None:
            with self._lock:
                arguments = self._arguments.pop(span, None)
        function = metadata.get("function_name")
        model = metadata.get("model")
        duration = measurements.get("duration")
        duration_ms = duration / 1_000_000 if is_number(duration) else None
        ok = kind == "stop"
        level = self.level if ok else self.error_level
        if not self.logger.isEnabledFor(level):
            return
        when = f"{duration_ms:.1f}ms" if duration_ms is not None else "an unknown time"
        parts = [f"BAML call {function}"]
        if ok:
            parts.append(f" ok in {when}, {_tokens_text(measurements)}, model {model or 'unknown'}")
        else:
            reason = metadata.get("reason")
            error = type(reason).__name__ if reason is not None else "unknown error"
            status = getattr(reason, "status_code", None)
            if status is not None:
                error += f" (status {status})"
            if self.include_error_message and reason is not None:
                error += f": {reason}"
            parts.append(f" failed after {when} with {error}, model {model or 'unknown'}")
        if metadata.get("streaming"):
            parts.append(" [stream]")
        if self.include_arguments:
            parts.append(f"; arguments={arguments!r}")
        if self.include_result and ok:
            parts.append(f"; result={metadata.get('result')!r}")
        self.logger.log(
            level,
            "".join(parts),
            extra={
                "baml_function": function,
                "baml_model": model,
                "baml_duration_ms": duration_ms,
                "baml_ok": ok,
                "baml_input_tokens": measurements.get("input_tokens"),
                "baml_output_tokens": measurements.get("output_tokens"),
                "baml_total_tokens": measurements.get("total_tokens"),
            },
        )

    def __repr__(self) -> str:
        return f"<LoggingHandler {self.handler_id} logger={self.logger.name!r}>"


def _check_level(level: Any, name: str) -> int:
    if isinstance(level, str):
        value = logging.getLevelName(level.upper())
        if isinstance(value, int):
            return value
        fail(ValueError, f"LoggingHandler({name}={level!r})", "a logging level name such as 'INFO', or an int such as logging.INFO")
    if not is_int(level):
        fail(TypeError, f"LoggingHandler({name}={level!r})", "a logging level (int or name)")
    return level


def log_calls(
    logger: logging.Logger | str | None = None,
    level: int | str = logging.INFO,
    *,
    dispatcher: Dispatcher | None = None,
    prefix: EventName = DEFAULT_PREFIX,
    **options: Any,
) -> LoggingHandler:
    """Attach a :class:`LoggingHandler` and return it (``detach()`` it, or use ``with``)."""
    handler = LoggingHandler(logger, level, dispatcher=dispatcher, prefix=prefix, **options)
    handler.attach()
    return handler
