"""Performance budgets over BAML calls: the compact aggregator, exact percentiles,
price tables and budget verdicts.

This module is pure (no pytest): the plugin feeds call events into an
:class:`Aggregator`, turns markers and budget files into :class:`Budget` objects and
calls :func:`evaluate` to get one :class:`Verdict` per budget key.

Definitions (these are part of the documented behaviour):

* **Percentiles** are exact *nearest-rank* percentiles over every call in scope,
  successful or not: for ``n`` sorted durations and ``0 <= p <= 100`` the ``p``-th
  percentile is the value at 1-based rank ``ceil(p / 100 * n)`` (rank 1 when that is 0,
  so ``p=0`` is the minimum and ``p=100`` the maximum). It is always one of the
  measured values, never an interpolation. ``p`` is read as the decimal number it is
  written as (``99.9`` means 999/10, not the nearest binary float).
* **Tokens** in a budget are *sums* over the calls in scope. A successful call whose
  ``input_tokens`` or ``output_tokens`` is ``None`` has *unknown tokens*; a failed call
  (an ``exception`` event) carries no token measurements and is not counted as unknown.
  ``total_tokens`` is ``input_tokens + output_tokens``.
* **Cached input tokens** follow the OpenAI convention: they are *part of*
  ``input_tokens`` and billed at ``cached_input_per_mtok`` instead of
  ``input_per_mtok``. A model without ``cached_input_per_mtok`` bills them at the input
  price; a missing ``cached_input_tokens`` measurement means 0 cached tokens; cached
  tokens beyond ``input_tokens`` are capped at ``input_tokens``.
* **Cost** is ``(uncached_input * input_per_mtok + cached_input * cached_input_per_mtok
  + output * output_per_mtok) / 1_000_000`` USD. A model that is not in the price table
  is *unpriced*: it is reported as unpriced, never as $0.
"""

from __future__ import annotations

import base64
import math
import sys
import threading
from array import array
from bisect import insort
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from heapq import heapify, heappush, heapreplace, nlargest
from numbers import Integral, Real
from os import PathLike
from pathlib import Path
from typing import (
    Any,
    NamedTuple,
    TypeVar,
    Union,
)

from .clock import format_duration_ns, parse_duration_ns
from .stats import kth_smallest, percentile, rank

__all__ = [
    "Aggregator",
    "Budget",
    "BudgetConfigError",
    "BUDGET_KEYS",
    "CallStats",
    "Cost",
    "LIMIT_KEYS",
    "ModelPrice",
    "PAYLOAD_FORMAT",
    "PriceTable",
    "Verdict",
    "WorstCall",
    "budget_from_marker",
    "evaluate",
    "failure_message",
    "load_budgets",
    "load_prices",
    "percentile",
]

T = TypeVar("T")
StrPath = Union[str, "PathLike[str]"]

PAYLOAD_FORMAT = "pytest-baml-telemetry/aggregator/v1"
"""The ``format`` tag of :meth:`Aggregator.to_payload`."""

_CHUNK = 1 << 16  # durations are sorted in runs of at most this many (bounds peak memory)


class BudgetConfigError(ValueError):
    """A budget or price configuration (file or mapping) is malformed.

    The message names the file (when there is one), the table and the key.
    """


# --------------------------------------------------------------------------- percentiles


_rank = rank
_kth_smallest = kth_smallest


# --------------------------------------------------------------------------- aggregator


class WorstCall(NamedTuple):
    """One of the slowest (or most token-hungry) calls, for failure messages."""

    duration_ns: int
    function_name: str
    model: str | None
    test_id: str | None
    ok: bool
    input_tokens: int | None
    output_tokens: int | None

    def describe(self) -> str:
        """One human line: duration, function [model], outcome, tokens, test id."""
        tokens = (
            f"in={_fmt_opt(self.input_tokens)} out={_fmt_opt(self.output_tokens)}"
        )
        where = self.test_id if self.test_id else "(test unknown)"
        return (
            f"{format_duration_ns(self.duration_ns):>9}  {self.function_name} "
            f"[{_model_label(self.model)}]  {'ok' if self.ok else 'error'}  {tokens}  {where}"
        )


def _fmt_opt(v: int | None) -> str:
    return "?" if v is None else str(v)


def _model_label(model: str | None) -> str:
    return "no model" if model is None else model


def _sample_add(sample: list[str], test_id: str, n: int) -> None:
    """Keep ``sample`` the ``n`` smallest distinct test ids (order-independent)."""
    if test_id in sample:
        return
    if len(sample) < n:
        insort(sample, test_id)
    elif sample and test_id < sample[-1]:
        sample.pop()
        insort(sample, test_id)


class _Series:
    """Everything recorded for one (function_name, model): numbers only."""

    __slots__ = (
        "function_name",
        "model",
        "buf",
        "runs",
        "ok",
        "errors",
        "input_tokens",
        "output_tokens",
        "cached_input_tokens",
        "unknown_input",
        "unknown_output",
        "unknown_calls",
        "unknown_tests",
        "error_tests",
        "slowest",
        "heaviest",
    )

    def __init__(self, function_name: str, model: str | None) -> None:
        self.function_name = function_name
        self.model = model
        self.buf = array("q")  # unsorted durations (ns) recorded since the last seal
        self.runs: list[array] = []  # sorted, non-empty runs of durations
        self.ok = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cached_input_tokens = 0
        self.unknown_input = 0
        self.unknown_output = 0
        self.unknown_calls = 0
        self.unknown_tests: list[str] = []
        self.error_tests: list[str] = []
        # min-heaps of the N largest entries; entries are totally ordered tuples so the
        # kept set does not depend on the order calls arrive in (xdist == no xdist).
        # slowest:  (duration_ns, test_id or "", ok, input or -1, output or -1)
        # heaviest: (total_tokens, duration_ns, test_id or "", ok, input, output)
        self.slowest: list[tuple[int, str, int, int, int]] = []
        self.heaviest: list[tuple[int, int, str, int, int, int]] = []

    @property
    def calls(self) -> int:
        return self.ok + self.errors

    def seal(self) -> list[array]:
        """Sort pending durations into runs (in chunks, to bound peak memory)."""
        buf = self.buf
        if buf:
            for i in range(0, len(buf), _CHUNK):
                self.runs.append(array("q", sorted(buf[i : i + _CHUNK])))
            self.buf = array("q")
        return self.runs

    def all_durations(self) -> array:
        out = array("q")
        for r in self.runs:
            out.extend(r)
        out.extend(self.buf)
        return out

    def needs_price(self) -> bool:
        return self.ok > 0 or self.input_tokens > 0 or self.output_tokens > 0


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name}={value!r} is not an int; expected a non-negative int or None")
    if value < 0:
        raise ValueError(f"{name}={value!r} is negative; expected a non-negative int or None")
    return int(value)


class Aggregator:
    """Compact, mergeable record of BAML calls per ``(function_name, model)``.

    Stores numbers only: durations as ``array('q')`` of nanoseconds, counters and token
    sums, the ``worst_n`` slowest and most token-hungry calls (with test ids) and a
    sample of at most ``sample_n`` test ids with unknown tokens or errors. No event,
    argument or result is kept. Thread-safe.

    Wiring: attach :meth:`handle` to the stop and exception events (it has the
    dispatcher's handler signature), set :attr:`current_test_id` around each test, use
    :meth:`to_payload`/:meth:`from_payload`/:meth:`merge` to bring xdist workers' data
    home, and :meth:`stats`/:meth:`filtered` (or :func:`evaluate`) to read it.
    """

    def __init__(self, *, worst_n: int = 5, sample_n: int = 5) -> None:
        self.worst_n = _check_count(worst_n, "worst_n")
        self.sample_n = _check_count(sample_n, "sample_n")
        self._series: dict[tuple[str, str | None], _Series] = {}
        self._lock = threading.Lock()
        self.current_test_id: str | None = None
        """Test id recorded for calls whose ``test_id`` is not given (the plugin sets it)."""

    # ------------------------------------------------------------------ recording

    def _new_series(self, function_name: Any, model: Any) -> _Series:
        if not isinstance(function_name, str) or not function_name:
            raise TypeError(
                f"function_name={function_name!r} is not a non-empty str; expected the BAML function name"
            )
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model={model!r} is not a str or None; expected the model name")
        s = self._series[(function_name, model)] = _Series(function_name, model)
        return s

    def record(
        self,
        function_name: str,
        model: str | None,
        duration_ns: int,
        ok: bool = True,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_input_tokens: int | None = None,
        test_id: str | None = None,
    ) -> None:
        """Record one call: its duration in ns, outcome and token usage (``None`` = unknown).

        ``test_id`` defaults to :attr:`current_test_id`. ``cached_input_tokens`` count
        only when ``input_tokens`` is known (they are part of it, capped at it); a
        failed call (``ok=False``) with ``None`` tokens is not an unknown-token call. Raises ``TypeError``/``ValueError``
        naming the value for a non-int or negative duration or token count.
        """
        if type(duration_ns) is not int or duration_ns < 0:
            duration_ns = _check_count(duration_ns, "duration_ns")
        if test_id is None:
            test_id = self.current_test_id
        with self._lock:
            s = self._series.get((function_name, model))
            if s is None:
                s = self._new_series(function_name, model)
            if input_tokens is not None and (type(input_tokens) is not int or input_tokens < 0):
                input_tokens = _check_count(input_tokens, "input_tokens")
            if output_tokens is not None and (type(output_tokens) is not int or output_tokens < 0):
                output_tokens = _check_count(output_tokens, "output_tokens")
            s.buf.append(duration_ns)
            unknown = False
            if ok:
                s.ok += 1
                if input_tokens is None:
                    s.unknown_input += 1
                    unknown = True
                if output_tokens is None:
                    s.unknown_output += 1
                    unknown = True
            else:
                s.errors += 1
                if test_id is not None and self.sample_n:
                    _sample_add(s.error_tests, _check_test_id(test_id), self.sample_n)
            if input_tokens is not None:
                s.input_tokens += input_tokens
                if cached_input_tokens:
                    if type(cached_input_tokens) is not int or cached_input_tokens < 0:
                        cached_input_tokens = _check_count(cached_input_tokens, "cached_input_tokens")
                    s.cached_input_tokens += (
                        cached_input_tokens if cached_input_tokens <= input_tokens else input_tokens
                    )
            if output_tokens is not None:
                s.output_tokens += output_tokens
            if unknown:
                s.unknown_calls += 1
                if test_id is not None and self.sample_n:
                    _sample_add(s.unknown_tests, _check_test_id(test_id), self.sample_n)
            n = self.worst_n
            if n:
                # Only build an entry when it may enter the heap (the common case is a
                # single comparison against the smallest kept entry).
                w = s.slowest
                if len(w) < n or duration_ns >= w[0][0]:
                    entry = (
                        duration_ns,
                        "" if test_id is None else test_id if type(test_id) is str else _check_test_id(test_id),
                        1 if ok else 0,
                        -1 if input_tokens is None else input_tokens,
                        -1 if output_tokens is None else output_tokens,
                    )
                    if len(w) < n:
                        heappush(w, entry)
                    elif entry > w[0]:
                        heapreplace(w, entry)
                if input_tokens is not None and output_tokens is not None:
                    total = input_tokens + output_tokens
                    h = s.heaviest
                    if len(h) < n or total > h[0][0] or (total == h[0][0] and duration_ns >= h[0][1]):
                        entry2 = (
                            total,
                            duration_ns,
                            "" if test_id is None else test_id if type(test_id) is str else _check_test_id(test_id),
                            1 if ok else 0,
                            input_tokens,
                            output_tokens,
                        )
                        if len(h) < n:
                            heappush(h, entry2)
                        elif entry2 > h[0]:
                            heapreplace(h, entry2)

    def record_event(
        self,
        event_name: Sequence[str] | str,
        measurements: Mapping[str, Any],
        metadata: Mapping[str, Any],
        test_id: str | None = None,
    ) -> bool:
        """Record a call from a ``stop`` or ``exception`` event in the contract shape.

        The kind is the last element of ``event_name`` (a tuple, or a dotted string), so
        any prefix works. ``stop`` records a successful call with ``duration``,
        ``input_tokens``, ``output_tokens`` and ``cached_input_tokens`` from the
        measurements and ``function_name``/``model`` from the metadata; ``exception``
        records a failed call (``model`` may be absent). Any other event (e.g. ``start``)
        is ignored. Returns whether a call was recorded. Raises ``ValueError`` naming the
        key when a stop/exception event lacks ``duration`` or ``function_name``.
        """
        kind: str | None
        if isinstance(event_name, str):
            kind = event_name.rsplit(".", 1)[-1]
        elif isinstance(event_name, (tuple, list)):
            kind = event_name[-1] if event_name else None
        else:
            raise TypeError(
                f"event_name={event_name!r} is not an event name; expected a tuple of str such as "
                "('ash_baml', 'call', 'stop') or a dotted str"
            )
        if kind == "stop":
            ok = True
        elif kind == "exception":
            ok = False
        else:
            return False
        try:
            duration = measurements["duration"]
        except KeyError:
            raise ValueError(
                f"{event_name!r} event has no 'duration' measurement; measurements={dict(measurements)!r}"
            ) from None
        except TypeError:
            raise TypeError(
                f"{event_name!r} event: measurements={measurements!r} is not a mapping; expected a dict "
                "with 'duration' and the token counts"
            ) from None
        try:
            function_name = metadata["function_name"]
        except KeyError:
            raise ValueError(
                f"{event_name!r} event has no 'function_name' in its metadata; "
                f"metadata keys={sorted(map(str, metadata))!r}"
            ) from None
        except TypeError:
            raise TypeError(
                f"{event_name!r} event: metadata={metadata!r} is not a mapping; expected a dict with "
                "'function_name' and 'model'"
            ) from None
        get = measurements.get
        self.record(
            function_name,
            metadata.get("model"),
            duration,
            ok,
            get("input_tokens") if ok else None,
            get("output_tokens") if ok else None,
            get("cached_input_tokens") if ok else None,
            test_id,
        )
        return True

    def handle(
        self,
        event_name: Sequence[str],
        measurements: Mapping[str, Any],
        metadata: Mapping[str, Any],
        config: Any = None,
    ) -> None:
        """Dispatcher handler: ``attach_many(id, [CALL_STOP, CALL_EXCEPTION], agg.handle)``."""
        self.record_event(event_name, measurements, metadata)

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Number of calls recorded."""
        return sum(s.calls for s in list(self._series.values()))

    def keys(self) -> list[tuple[str, str | None]]:
        """The ``(function_name, model)`` pairs seen, sorted."""
        return sorted(self._series, key=_key_order)

    def stats(self) -> CallStats:
        """A live view over every call recorded."""
        return CallStats(self)

    def filtered(
        self,
        function: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
    ) -> CallStats:
        """A live view over the calls whose function and model match.

        A filter is ``None`` (anything), a str (equal) or a collection of str (any of).
        """
        return CallStats(self).filtered(function, model)

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._series.clear()

    # ------------------------------------------------------------------ merging / payload

    def merge(self, other: Aggregator) -> Aggregator:
        """Add every call of ``other`` to this aggregator; returns ``self``.

        The result is the same (``==``) as if all calls had been recorded here.
        """
        if not isinstance(other, Aggregator):
            raise TypeError(f"merge(other={other!r}): expected an Aggregator")
        if other is self:
            raise ValueError("merge(other): cannot merge an aggregator into itself")
        with other._lock:
            theirs = list(other._series.values())
            copies = [(o, [array("q", r) for r in o.runs], array("q", o.buf)) for o in theirs]
        with self._lock:
            for o, runs, buf in copies:
                s = self._series.get((o.function_name, o.model))
                if s is None:
                    s = self._new_series(o.function_name, o.model)
                s.runs.extend(runs)
                s.buf.extend(buf)
                for name in (
                    "ok",
                    "errors",
                    "input_tokens",
                    "output_tokens",
                    "cached_input_tokens",
                    "unknown_input",
                    "unknown_output",
                    "unknown_calls",
                ):
                    setattr(s, name, getattr(s, name) + getattr(o, name))
                for t in o.unknown_tests:
                    _sample_add(s.unknown_tests, t, self.sample_n)
                for t in o.error_tests:
                    _sample_add(s.error_tests, t, self.sample_n)
                s.slowest = _top(s.slowest + o.slowest, self.worst_n)
                s.heaviest = _top(s.heaviest + o.heaviest, self.worst_n)
        return self

    def to_payload(self, *, durations_as: str = "base64") -> dict[str, Any]:
        """A JSON-able dict of everything recorded (for xdist workers to send home).

        ``durations_as="base64"`` (default) sends each series' durations as base64 of
        little-endian int64 bytes (compact); ``"list"`` sends a list of ints.
        :meth:`from_payload` reads either and round-trips exactly.
        """
        if durations_as not in ("base64", "list"):
            raise ValueError(f"durations_as={durations_as!r}; expected 'base64' or 'list'")
        with self._lock:
            series = []
            for key in sorted(self._series, key=_key_order):
                s = self._series[key]
                d = s.all_durations()
                item: dict[str, Any] = {"function": s.function_name, "model": s.model}
                if durations_as == "list":
                    item["durations"] = d.tolist()
                else:
                    if sys.byteorder != "little":
                        d.byteswap()
                    item["durations_b64"] = base64.b64encode(d.tobytes()).decode("ascii")
                item.update(
                    ok=s.ok,
                    errors=s.errors,
                    input_tokens=s.input_tokens,
                    output_tokens=s.output_tokens,
                    cached_input_tokens=s.cached_input_tokens,
                    unknown_input=s.unknown_input,
                    unknown_output=s.unknown_output,
                    unknown_calls=s.unknown_calls,
                    unknown_tests=list(s.unknown_tests),
                    error_tests=list(s.error_tests),
                    slowest=[list(e) for e in sorted(s.slowest, reverse=True)],
                    heaviest=[list(e) for e in sorted(s.heaviest, reverse=True)],
                )
                series.append(item)
            return {
                "format": PAYLOAD_FORMAT,
                "worst_n": self.worst_n,
                "sample_n": self.sample_n,
                "series": series,
            }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Aggregator:
        """Rebuild an aggregator from :meth:`to_payload` output.

        Raises ``ValueError`` naming the field when the payload is not one.
        """
        if not isinstance(payload, Mapping) or payload.get("format") != PAYLOAD_FORMAT:
            got = payload.get("format") if isinstance(payload, Mapping) else type(payload).__name__
            raise ValueError(
                f"not an aggregator payload (format={got!r}); expected format {PAYLOAD_FORMAT!r}"
            )
        try:
            agg = cls(worst_n=payload["worst_n"], sample_n=payload["sample_n"])
            for i, item in enumerate(payload["series"]):
                where = f"aggregator payload series[{i}]"
                s = agg._new_series(item["function"], item["model"])
                if "durations_b64" in item:
                    d = array("q")
                    d.frombytes(base64.b64decode(item["durations_b64"], validate=True))
                    if sys.byteorder != "little":
                        d.byteswap()
                else:
                    d = array("q", item["durations"])
                if any(v < 0 for v in d):
                    raise ValueError(f"{where}: negative duration")
                s.buf = d
                for name in (
                    "ok",
                    "errors",
                    "input_tokens",
                    "output_tokens",
                    "cached_input_tokens",
                    "unknown_input",
                    "unknown_output",
                    "unknown_calls",
                ):
                    setattr(s, name, _check_count(item[name], f"{where}.{name}"))
                if len(d) != s.ok + s.errors:
                    raise ValueError(
                        f"{where}: {len(d)} durations for {s.ok + s.errors} calls (ok + errors)"
                    )
                s.unknown_tests = sorted(_check_test_id(t) for t in item["unknown_tests"])
                s.error_tests = sorted(_check_test_id(t) for t in item["error_tests"])
                s.slowest = [_entry(e, 5, where) for e in item["slowest"]]
                s.heaviest = [_entry(e, 6, where) for e in item["heaviest"]]
                heapify(s.slowest)
                heapify(s.heaviest)
        except KeyError as e:
            raise ValueError(f"aggregator payload is missing the field {e.args[0]!r}") from None
        except (TypeError, OverflowError, ValueError) as e:  # binascii.Error is a ValueError
            msg = str(e)
            raise ValueError(msg if msg.startswith("aggregator payload") else f"aggregator payload is malformed: {msg}") from e
        return agg

    def __eq__(self, other: object) -> bool:
        """Same calls (durations as a multiset), counters, samples and worst calls."""
        if not isinstance(other, Aggregator):
            return NotImplemented
        return self._canonical() == other._canonical()

    __hash__ = None  # type: ignore[assignment]

    def _canonical(self) -> dict:
        with self._lock:
            out = {}
            for key, s in self._series.items():
                out[key] = (
                    sorted(s.all_durations()),
                    s.ok,
                    s.errors,
                    s.input_tokens,
                    s.output_tokens,
                    s.cached_input_tokens,
                    s.unknown_input,
                    s.unknown_output,
                    s.unknown_calls,
                    s.unknown_tests,
                    s.error_tests,
                    sorted(s.slowest),
                    sorted(s.heaviest),
                )
            return out

    def __repr__(self) -> str:
        return f"Aggregator({len(self)} calls, {len(self._series)} function/model pairs)"


def _check_test_id(test_id: Any) -> str:
    if not isinstance(test_id, str):
        raise TypeError(f"test_id={test_id!r} is not a str; expected a test node id or None")
    return test_id


def _entry(e: Any, size: int, where: str) -> tuple:
    if not isinstance(e, (list, tuple)) or len(e) != size:
        raise ValueError(f"{where}: worst-call entry {e!r} is not a list of {size} items")
    t = tuple(e)
    if not isinstance(t[size - 4], str):
        raise ValueError(f"{where}: worst-call entry {e!r} has a non-str test id")
    for j, v in enumerate(t):
        if j != size - 4 and (isinstance(v, bool) or not isinstance(v, int)):
            raise ValueError(f"{where}: worst-call entry {e!r} has a non-int at position {j}")
    return t


def _top(entries: list, n: int) -> list:
    kept = nlargest(n, entries)
    heapify(kept)
    return kept


def _key_order(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    return (key[0], key[1] is None, key[1] or "")


def _norm_filter(value: Any, name: str) -> str | tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise ValueError(f"{name}={value!r} is empty; expected a non-empty str, a list of them, or None")
        return value
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        items = tuple(value)
        if not items or not all(isinstance(v, str) and v for v in items):
            raise ValueError(
                f"{name}={value!r} is not a non-empty list of non-empty str; "
                "expected a str, a list of str, or None"
            )
        return items
    raise TypeError(f"{name}={value!r} ({type(value).__name__}); expected a str, a list of str, or None")


def _matches(value: str | None, filt: str | tuple[str, ...] | None) -> bool:
    if filt is None:
        return True
    if isinstance(filt, str):
        return value == filt
    return value in filt


# --------------------------------------------------------------------------- stats view


class Cost(NamedTuple):
    """Cost of a set of calls: ``usd`` over the priced ones, and what could not be priced."""

    usd: float
    unpriced: dict[str, int]
    """Unpriced model (``"no model"`` for calls without one) -> number of calls."""
    unknown_token_calls: int
    """Successful calls whose input or output tokens are unknown (excluded from ``usd``)."""

    @property
    def complete(self) -> bool:
        """Whether ``usd`` covers every call."""
        return not self.unpriced and not self.unknown_token_calls


class CallStats:
    """A live, read-only view over some series of an :class:`Aggregator`.

    Durations are in nanoseconds; percentiles are exact nearest-rank (see
    :func:`percentile`) over successful and failed calls alike. The view is live: calls
    recorded later are included when a property is read again.
    """

    __slots__ = ("_agg", "_conds")

    def __init__(self, aggregator: Aggregator, conds: tuple = ()) -> None:
        self._agg = aggregator
        # each condition: ("filter", function_filter, model_filter) or ("key", (function, model))
        self._conds = conds

    def _keep(self, key: tuple[str, str | None]) -> bool:
        for c in self._conds:
            if c[0] == "key":
                if key != c[1]:
                    return False
            elif not (_matches(key[0], c[1]) and _matches(key[1], c[2])):
                return False
        return True

    def _series(self) -> list[_Series]:
        items = [(k, s) for k, s in list(self._agg._series.items()) if self._keep(k)]
        items.sort(key=lambda ks: _key_order(ks[0]))
        return [s for _, s in items]

    def filtered(
        self,
        function: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
    ) -> CallStats:
        """This view narrowed further by ``function`` and ``model`` filters.

        A filter is ``None`` (anything), a str (equal) or a collection of str (any of).
        """
        fn, md = _norm_filter(function, "function"), _norm_filter(model, "model")
        if fn is None and md is None:
            return self
        return CallStats(self._agg, (*self._conds, ("filter", fn, md)))

    def groups(self) -> list[tuple[str, str | None, CallStats]]:
        """``(function_name, model, stats)`` for each pair in the view, sorted."""
        return [
            (s.function_name, s.model, CallStats(self._agg, (("key", (s.function_name, s.model)),)))
            for s in self._series()
        ]

    # counts
    @property
    def calls(self) -> int:
        return sum(s.calls for s in self._series())

    @property
    def ok(self) -> int:
        return sum(s.ok for s in self._series())

    @property
    def errors(self) -> int:
        return sum(s.errors for s in self._series())

    @property
    def error_rate(self) -> float | None:
        """``errors / calls``, or ``None`` when there are no calls."""
        series = self._series()
        calls = sum(s.calls for s in series)
        return sum(s.errors for s in series) / calls if calls else None

    # durations
    def _runs(self) -> list[array]:
        with self._agg._lock:
            runs: list[array] = []
            for s in self._series():
                runs.extend(s.seal())
            return runs

    def percentile(self, p: float) -> int | None:
        """Exact nearest-rank ``p``-th percentile of durations in ns; ``None`` if no calls."""
        runs = self._runs()
        n = sum(len(r) for r in runs)
        if n == 0:
            _rank(p, 1)
            return None
        return _kth_smallest(runs, _rank(p, n))

    def percentiles(self, *ps: float) -> dict[float, int | None]:
        """``{p: percentile(p)}`` for each ``p``."""
        return {p: self.percentile(p) for p in ps}

    @property
    def max_ns(self) -> int | None:
        runs = self._runs()
        return max(r[-1] for r in runs) if runs else None

    @property
    def min_ns(self) -> int | None:
        runs = self._runs()
        return min(r[0] for r in runs) if runs else None

    @property
    def total_duration_ns(self) -> int:
        return sum(sum(r) for r in self._runs())

    @property
    def mean_ns(self) -> float | None:
        runs = self._runs()
        n = sum(len(r) for r in runs)
        return sum(sum(r) for r in runs) / n if n else None

    def sorted_durations(self) -> array:
        """Every duration in ns, sorted (a copy)."""
        out = array("q")
        for r in self._runs():
            out.extend(r)
        return array("q", sorted(out))

    # tokens
    @property
    def input_tokens(self) -> int:
        return sum(s.input_tokens for s in self._series())

    @property
    def output_tokens(self) -> int:
        return sum(s.output_tokens for s in self._series())

    @property
    def cached_input_tokens(self) -> int:
        return sum(s.cached_input_tokens for s in self._series())

    @property
    def total_tokens(self) -> int:
        return sum(s.input_tokens + s.output_tokens for s in self._series())

    def unknown_token_calls(self, kind: str = "any") -> int:
        """Successful calls with unknown ``"input"``, ``"output"`` or ``"any"`` tokens."""
        attr = {"any": "unknown_calls", "input": "unknown_input", "output": "unknown_output"}.get(kind)
        if attr is None:
            raise ValueError(f"kind={kind!r}; expected 'any', 'input' or 'output'")
        return sum(getattr(s, attr) for s in self._series())

    def unknown_token_sources(self) -> list[tuple[str, str | None, int, list[str]]]:
        """``(function, model, calls, sample test ids)`` for pairs with unknown-token calls."""
        return [
            (s.function_name, s.model, s.unknown_calls, list(s.unknown_tests))
            for s in self._series()
            if s.unknown_calls
        ]

    def error_sources(self) -> list[tuple[str, str | None, int, list[str]]]:
        """``(function, model, errors, sample test ids)`` for pairs with failed calls."""
        return [
            (s.function_name, s.model, s.errors, list(s.error_tests)) for s in self._series() if s.errors
        ]

    # worst calls
    def slowest(self, n: int | None = None) -> list[WorstCall]:
        """The slowest calls (at most ``worst_n`` of the aggregator), slowest first."""
        n = self._agg.worst_n if n is None else n
        entries = [(e, s) for s in self._series() for e in s.slowest]
        entries.sort(key=lambda es: es[0], reverse=True)
        return [
            WorstCall(
                e[0],
                s.function_name,
                s.model,
                e[1] or None,
                bool(e[2]),
                None if e[3] < 0 else e[3],
                None if e[4] < 0 else e[4],
            )
            for e, s in entries[:n]
        ]

    def heaviest(self, n: int | None = None) -> list[WorstCall]:
        """The calls with the most known tokens (input + output), heaviest first."""
        n = self._agg.worst_n if n is None else n
        entries = [(e, s) for s in self._series() for e in s.heaviest]
        entries.sort(key=lambda es: es[0], reverse=True)
        return [
            WorstCall(e[1], s.function_name, s.model, e[2] or None, bool(e[3]), e[4], e[5])
            for e, s in entries[:n]
        ]

    # cost
    def cost(self, prices: PriceTable | None) -> Cost:
        """Cost over the calls in view (see the module docstring for the rules)."""
        usd = 0.0
        unpriced: dict[str, int] = {}
        unknown = 0
        for s in self._series():
            if not s.needs_price():
                continue
            price = prices.price(s.model) if (prices is not None and s.model is not None) else None
            if price is None:
                label = _model_label(s.model)
                unpriced[label] = unpriced.get(label, 0) + s.calls
                continue
            unknown += s.unknown_calls
            usd += price.cost(s.input_tokens, s.output_tokens, s.cached_input_tokens)
        return Cost(usd, unpriced, unknown)

    def __repr__(self) -> str:
        return f"CallStats({self.calls} calls)"


# --------------------------------------------------------------------------- prices


def _load_toml(path: StrPath, what: str) -> tuple[Path, dict[str, Any]]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10
        import tomli as tomllib
    if not isinstance(path, (str, PathLike)):
        raise TypeError(f"{what} path {path!r} is not a str or path")
    p = Path(path)
    if not p.exists():
        raise BudgetConfigError(f"{what} {str(p)!r} does not exist")
    if not p.is_file():
        raise BudgetConfigError(f"{what} {str(p)!r} is not a file")
    try:
        with p.open("rb") as f:
            return p, tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} is not valid TOML: {e}") from e
    except UnicodeDecodeError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} is not UTF-8 text: {e}") from e
    except OSError as e:
        raise BudgetConfigError(f"{what} {str(p)!r} cannot be read: {e}") from e


_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")


class ModelPrice(NamedTuple):
    """USD per million tokens for one model."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    """``None``: cached input tokens are billed at ``input_per_mtok``."""

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int | None = None) -> float:
        """USD for these token counts (cached tokens are part of ``input_tokens``)."""
        cached = min(cached_input_tokens or 0, input_tokens)
        cached_rate = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * cached_rate
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


def _check_price(value: Any, where: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise BudgetConfigError(
            f"{where}: {key} = {value!r} is not a number; expected USD per million tokens (a number >= 0)"
        )
    f = float(value)
    if not math.isfinite(f) or f < 0:
        raise BudgetConfigError(
            f"{where}: {key} = {value!r} is not a finite number >= 0; expected USD per million tokens"
        )
    return f


class PriceTable:
    """Prices per model, in USD per million tokens (see the module docstring for cost rules).

    ``PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}})``,
    :meth:`load` for a TOML file with ``[models."<model>"]`` tables. Models are matched
    by exact name.
    """

    def __init__(
        self,
        models: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self.source = source
        where_file = f"price table {source!r}" if source else "price table"
        self._prices: dict[str, ModelPrice] = {}
        if models is None:
            return
        if not isinstance(models, Mapping):
            raise BudgetConfigError(f"{where_file}: models={models!r} is not a mapping of model name to prices")
        for model, spec in models.items():
            where = f'{where_file}, [models."{model}"]'
            if not isinstance(model, str) or not model:
                raise BudgetConfigError(f"{where_file}: model name {model!r} is not a non-empty str")
            if isinstance(spec, ModelPrice):
                spec = spec._asdict()
                if spec["cached_input_per_mtok"] is None:
                    del spec["cached_input_per_mtok"]
            if not isinstance(spec, Mapping):
                raise BudgetConfigError(
                    f"{where}: {spec!r} is not a table; expected input_per_mtok, output_per_mtok"
                    " and optionally cached_input_per_mtok"
                )
            unknown = [k for k in spec if k not in _PRICE_KEYS]
            if unknown:
                raise BudgetConfigError(
                    f"{where}: unknown key {unknown[0]!r}; expected {', '.join(_PRICE_KEYS)}"
                )
            for required in ("input_per_mtok", "output_per_mtok"):
                if required not in spec:
                    raise BudgetConfigError(f"{where}: missing key {required!r} (USD per million tokens)")
            self._prices[model] = ModelPrice(
                _check_price(spec["input_per_mtok"], where, "input_per_mtok"),
                _check_price(spec["output_per_mtok"], where, "output_per_mtok"),
                None
                if spec.get("cached_input_per_mtok") is None
                else _check_price(spec["cached_input_per_mtok"], where, "cached_input_per_mtok"),
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> PriceTable:
        """From a parsed TOML document: ``{"models": {"<model>": {...}}}``."""
        where = f"price table {source!r}" if source else "price table"
        if not isinstance(data, Mapping):
            raise BudgetConfigError(f"{where}: {data!r} is not a table")
        unknown = [k for k in data if k != "models"]
        if unknown:
            raise BudgetConfigError(
                f"{where}: unknown top-level key {unknown[0]!r}; expected only [models.\"<model>\"] tables"
            )
        models = data.get("models")
        if not isinstance(models, Mapping) or not models:
            raise BudgetConfigError(
                f'{where}: defines no models; expected [models."<model>"] tables with '
                "input_per_mtok and output_per_mtok"
            )
        return cls(models, source=source)

    @classmethod
    def load(cls, path: StrPath) -> PriceTable:
        """Load a TOML price file; ``BudgetConfigError`` names the file, model and key."""
        p, data = _load_toml(path, "price file")
        return cls.from_mapping(data, source=str(p))

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def price(self, model: str | None) -> ModelPrice | None:
        """The prices of ``model``, or ``None`` when it is unpriced."""
        return None if model is None else self._prices.get(model)

    def __contains__(self, model: object) -> bool:
        return model in self._prices

    def __len__(self) -> int:
        return len(self._prices)

    def cost(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
    ) -> float | None:
        """USD for one call, or ``None`` when the model is unpriced or tokens are unknown."""
        price = self.price(model)
        if price is None or input_tokens is None or output_tokens is None:
            return None
        return price.cost(input_tokens, output_tokens, cached_input_tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriceTable) and self._prices == other._prices

    def __repr__(self) -> str:
        return f"PriceTable({self._prices!r})"


def load_prices(path: StrPath) -> PriceTable:
    """Same as :meth:`PriceTable.load`."""
    return PriceTable.load(path)


# --------------------------------------------------------------------------- budgets

_PERCENTILE_KEYS = {"p50": 50, "p90": 90, "p95": 95, "p99": 99}
_LATENCY_KEYS = ("p50", "p90", "p95", "p99", "max_latency")
_TOKEN_KEYS = {"max_input_tokens": "input", "max_output_tokens": "output", "max_total_tokens": "any"}
LIMIT_KEYS: tuple[str, ...] = (
    *_LATENCY_KEYS,
    "max_calls",
    "max_errors",
    "max_error_rate",
    "max_input_tokens",
    "max_output_tokens",
    "max_total_tokens",
    "max_cost_usd",
)
"""The keys of a budget that set a limit, in evaluation order."""
BUDGET_KEYS: tuple[str, ...] = (*LIMIT_KEYS, "function", "model", "allow_unknown_tokens", "name")
"""Every key a budget (marker, ``Budget(...)`` or ``[[budget]]`` table) accepts."""


def _check_limit(key: str, value: Any) -> int | float:
    if key in _LATENCY_KEYS:
        try:
            return parse_duration_ns(value, name=key)
        except TypeError as e:  # a wrong type is a bad value for a budget key
            raise ValueError(str(e)) from None
    if key == "max_error_rate":
        if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= float(value) <= 1:
            raise ValueError(f"{key}={value!r} is not a number from 0 to 1; expected a fraction of calls such as 0.05")
        return float(value)
    if key == "max_cost_usd":
        if isinstance(value, bool) or not isinstance(value, Real) or not (
            math.isfinite(float(value)) and float(value) >= 0
        ):
            raise ValueError(f"{key}={value!r} is not a finite number >= 0; expected USD such as 0.50")
        return float(value)
    # counts
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
        raise ValueError(f"{key}={value!r} is not an int >= 0; expected a whole number of "
                         f"{'calls' if key == 'max_calls' else 'errors' if key == 'max_errors' else 'tokens'}")
    return int(value)


def _fmt_limit(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key in _LATENCY_KEYS:
        return format_duration_ns(value)
    if key == "max_error_rate":
        return f"{value:.2%}"
    if key == "max_cost_usd":
        return _fmt_usd(value)
    unit = "token" if key in _TOKEN_KEYS else "call" if key == "max_calls" else "error"
    return f"{value:,} {unit}{'' if value == 1 else 's'}"


def _fmt_usd(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 0.01:
        return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1000 else f"${value:,.2f}"
    return f"${value:.6g}"


@dataclass(frozen=True, init=False, repr=False)
class Budget:
    """Limits over the calls in scope (a test, or the session), optionally filtered.

    Latency keys (``p50``, ``p90``, ``p95``, ``p99``, ``max_latency``) take ``"800ms"``,
    ``"2s"``, a ``timedelta`` or seconds and are stored in ns; percentiles are exact
    nearest-rank over every call in scope, failed calls included. ``max_calls``,
    ``max_errors``, ``max_input_tokens``, ``max_output_tokens``, ``max_total_tokens``
    are ints (token limits are sums over the calls in scope); ``max_error_rate`` is a
    fraction 0..1; ``max_cost_usd`` is USD. A limit passes when measured <= limit.
    ``function``/``model`` filter the calls (a str or a list of str). Token and cost
    limits fail when calls have unknown tokens unless ``allow_unknown_tokens=True``.
    ``name`` and ``source`` (where the budget came from) only label messages.

    Unknown keywords raise ``TypeError`` listing the valid ones; bad values raise
    ``ValueError`` naming the key and the value; a budget must set at least one limit.
    """

    p50: int | None
    p90: int | None
    p95: int | None
    p99: int | None
    max_latency: int | None
    max_calls: int | None
    max_errors: int | None
    max_error_rate: float | None
    max_input_tokens: int | None
    max_output_tokens: int | None
    max_total_tokens: int | None
    max_cost_usd: float | None
    function: str | tuple[str, ...] | None
    model: str | tuple[str, ...] | None
    allow_unknown_tokens: bool
    name: str | None
    source: str | None

    def __init__(
        self,
        *,
        p50: Any = None,
        p90: Any = None,
        p95: Any = None,
        p99: Any = None,
        max_latency: Any = None,
        max_calls: int | None = None,
        max_errors: int | None = None,
        max_error_rate: float | None = None,
        max_input_tokens: int | None = None,
        max_output_tokens: int | None = None,
        max_total_tokens: int | None = None,
        max_cost_usd: float | None = None,
        function: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
        allow_unknown_tokens: bool = False,
        name: str | None = None,
        source: str | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            bad = sorted(unknown)
            raise TypeError(
                f"unknown budget key{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                f"valid keys are {', '.join(BUDGET_KEYS)}"
            )
        given = dict(
            p50=p50,
            p90=p90,
            p95=p95,
            p99=p99,
            max_latency=max_latency,
            max_calls=max_calls,
            max_errors=max_errors,
            max_error_rate=max_error_rate,
            max_input_tokens=max_input_tokens,
            max_output_tokens=max_output_tokens,
            max_total_tokens=max_total_tokens,
            max_cost_usd=max_cost_usd,
        )
        if all(v is None for v in given.values()):
            raise ValueError(f"budget sets no limit; expected at least one of {', '.join(LIMIT_KEYS)}")
        for key, value in given.items():
            object.__setattr__(self, key, None if value is None else _check_limit(key, value))
        try:
            object.__setattr__(self, "function", _norm_filter(function, "function"))
            object.__setattr__(self, "model", _norm_filter(model, "model"))
        except TypeError as e:
            raise ValueError(str(e)) from None
        if not isinstance(allow_unknown_tokens, bool):
            raise ValueError(f"allow_unknown_tokens={allow_unknown_tokens!r} is not a bool; expected True or False")
        object.__setattr__(self, "allow_unknown_tokens", allow_unknown_tokens)
        for key, value in (("name", name), ("source", source)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key}={value!r} is not a str; expected a label or None")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "source", source)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> Budget:
        """From a TOML table or any mapping with the budget keys (``source`` labels it)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"budget {data!r} is not a table/mapping of budget keys")
        bad = [k for k in data if not isinstance(k, str) or k not in BUDGET_KEYS]
        if bad:
            raise TypeError(
                f"unknown budget key{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                f"valid keys are {', '.join(BUDGET_KEYS)}"
            )
        return cls(**data, source=source)

    def limits(self) -> dict[str, int | float]:
        """The limits this budget sets, ``{key: limit}`` in evaluation order (ns for latency)."""
        return {k: getattr(self, k) for k in LIMIT_KEYS if getattr(self, k) is not None}

    def to_mapping(self) -> dict[str, Any]:
        """The keys that are set, JSON/TOML-able; ``from_mapping`` of it gives an equal budget.

        Latency limits are written as ``"<n>ns"`` strings so they round-trip exactly.
        """
        out: dict[str, Any] = {}
        for k, v in self.limits().items():
            out[k] = f"{v}ns" if k in _LATENCY_KEYS else v
        for k in ("function", "model"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v if isinstance(v, str) else list(v)
        if self.allow_unknown_tokens:
            out["allow_unknown_tokens"] = True
        if self.name is not None:
            out["name"] = self.name
        return out

    def matches(self, function_name: str, model: str | None) -> bool:
        """Whether a call of ``function_name`` on ``model`` is in this budget's scope."""
        return _matches(function_name, self.function) and _matches(model, self.model)

    @property
    def label(self) -> str:
        """How messages name this budget: name, filters and source."""
        parts = []
        if self.function is not None:
            parts.append(f"function={self.function!r}")
        if self.model is not None:
            parts.append(f"model={self.model!r}")
        filters = f"[{', '.join(parts)}]" if parts else "[all calls]"
        head = f"budget {self.name!r} {filters}" if self.name else f"budget {filters}"
        return f"{head} from {self.source}" if self.source else head

    def __repr__(self) -> str:
        args = [
            f"{k}={format_duration_ns(getattr(self, k))!r}" if k in _LATENCY_KEYS else f"{k}={v!r}"
            for k, v in self.to_mapping().items()
        ]
        if self.source is not None:
            args.append(f"source={self.source!r}")
        return f"Budget({', '.join(args)})"


def budget_from_marker(mark: Any, *, source: str | None = None) -> Budget:
    """A :class:`Budget` from a ``baml_budget`` marker (any object with ``args``/``kwargs``).

    Positional arguments are refused (``TypeError`` naming them): every key is a keyword.
    """
    args = tuple(getattr(mark, "args", ()))
    kwargs = dict(getattr(mark, "kwargs", {}))
    if args:
        raise TypeError(
            f"baml_budget takes keyword arguments only, got positional {', '.join(map(repr, args))}; "
            f"valid keys are {', '.join(BUDGET_KEYS)}"
        )
    if "source" in kwargs:
        raise TypeError(f"unknown budget key 'source'; valid keys are {', '.join(BUDGET_KEYS)}")
    return Budget(**kwargs, source=source)


def load_budgets(path: StrPath) -> list[Budget]:
    """Load a ``--baml-budgets`` TOML file: a list of ``[[budget]]`` tables.

    Each budget's ``source`` is ``"<file> [[budget]] #<n>"`` (1-based). Every problem
    raises :class:`BudgetConfigError` naming the file and the table number.
    """
    p, data = _load_toml(path, "budget file")
    where = f"budget file {str(p)!r}"
    unknown = [k for k in data if k != "budget"]
    if unknown:
        raise BudgetConfigError(
            f"{where}: unknown top-level key {unknown[0]!r}; expected only [[budget]] tables"
        )
    tables = data.get("budget")
    if tables is None:
        raise BudgetConfigError(f"{where}: defines no [[budget]] tables")
    if not isinstance(tables, list):
        raise BudgetConfigError(
            f"{where}: 'budget' is a {type(tables).__name__}; expected a list of [[budget]] tables"
        )
    if not tables:
        raise BudgetConfigError(f"{where}: defines no [[budget]] tables")
    budgets = []
    for i, table in enumerate(tables, 1):
        try:
            budgets.append(Budget.from_mapping(table, source=f"{p} [[budget]] #{i}"))
        except (TypeError, ValueError) as e:
            raise BudgetConfigError(f"{where}, [[budget]] #{i}: {e}") from e
    return budgets


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class Verdict:
    """The outcome of one budget key over the calls in scope.

    ``measured`` and ``limit`` are in the key's unit (``unit``: ``"ns"``, ``"calls"``,
    ``"errors"``, ``"ratio"``, ``"tokens"`` or ``"usd"``); ``measured`` is ``None`` for a
    latency or rate over zero calls. ``message`` is the full human text: the headline
    (budget label, key, measured value and limit), then notes and the worst calls.
    """

    budget: Budget
    key: str
    measured: int | float | None
    limit: int | float
    passed: bool
    headline: str
    unit: str
    calls: int
    scope: str = "session"
    notes: tuple[str, ...] = ()
    worst_calls: tuple[WorstCall, ...] = ()

    @property
    def message(self) -> str:
        lines = [self.headline]
        lines.extend(f"  {n}" for n in self.notes)
        if self.worst_calls:
            lines.append("  worst calls:")
            lines.extend(f"    {w.describe()}" for w in self.worst_calls)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (also what xdist workers send home); see :meth:`from_dict`."""
        return {
            "budget": self.budget.to_mapping(),
            "budget_label": self.budget.label,
            "source": self.budget.source,
            "scope": self.scope,
            "key": self.key,
            "measured": self.measured,
            "limit": self.limit,
            "unit": self.unit,
            "passed": self.passed,
            "calls": self.calls,
            "headline": self.headline,
            "notes": list(self.notes),
            "worst_calls": [list(w) for w in self.worst_calls],
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                budget=Budget.from_mapping(data["budget"], source=data.get("source")),
                key=data["key"],
                measured=data["measured"],
                limit=data["limit"],
                passed=bool(data["passed"]),
                headline=data["headline"],
                unit=data["unit"],
                calls=data["calls"],
                scope=data["scope"],
                notes=tuple(data["notes"]),
                worst_calls=tuple(WorstCall(*w) for w in data["worst_calls"]),
            )
        except KeyError as e:
            raise ValueError(f"verdict dict is missing the field {e.args[0]!r}") from None


_UNITS = {
    "max_calls": "calls",
    "max_errors": "errors",
    "max_error_rate": "ratio",
    "max_cost_usd": "usd",
    **{k: "ns" for k in _LATENCY_KEYS},
    **{k: "tokens" for k in _TOKEN_KEYS},
}


def _unknown_note(stats: CallStats) -> str:
    parts = []
    for fn, model, count, tests in stats.unknown_token_sources():
        parts.append(f"{fn} [{_model_label(model)}]: {count} call{'s' if count != 1 else ''}{_where(tests, stats)}")
    return "calls with unknown tokens: " + "; ".join(parts)


def _where(tests: list[str], stats: CallStats) -> str:
    if not tests:
        return ""
    more = ", ..." if len(tests) >= stats._agg.sample_n else ""
    return f" in {', '.join(tests)}{more}"


def evaluate(
    budget: Budget,
    source: Aggregator | CallStats,
    prices: PriceTable | None = None,
    *,
    scope: str = "session",
) -> list[Verdict]:
    """Check ``budget`` against the calls of ``source``: one :class:`Verdict` per limit set.

    ``source`` is an :class:`Aggregator` or a :class:`CallStats` view; the budget's
    ``function``/``model`` filters are applied to it. ``scope`` labels the verdicts
    (``"session"`` or a test id). Latency and error-rate limits over zero calls pass and
    say "no calls"; ``max_cost_usd`` fails naming any unpriced model; token and cost
    limits fail naming calls with unknown tokens unless ``allow_unknown_tokens``.
    """
    if not isinstance(budget, Budget):
        raise TypeError(f"evaluate(budget={budget!r}): expected a Budget")
    if not isinstance(source, (Aggregator, CallStats)):
        raise TypeError(f"evaluate(source={source!r}): expected an Aggregator or CallStats")
    if prices is not None and not isinstance(prices, PriceTable):
        raise TypeError(f"evaluate(prices={prices!r}): expected a PriceTable or None")
    stats = source.filtered(function=budget.function, model=budget.model)
    label = budget.label
    calls = stats.calls
    out: list[Verdict] = []
    for key, limit in budget.limits().items():
        fl = _fmt_limit(key, limit)
        notes: list[str] = []
        worst: list[WorstCall] = []
        measured: int | float | None
        if key in _LATENCY_KEYS:
            if calls == 0:
                measured, passed = None, True
                headline = f"{label}: {key} over no calls passes (limit {fl})"
            else:
                measured = stats.max_ns if key == "max_latency" else stats.percentile(_PERCENTILE_KEYS[key])
                assert measured is not None
                passed = measured <= limit
                headline = (
                    f"{label}: {key} = {format_duration_ns(measured)} "
                    f"{'<=' if passed else 'exceeds the limit'} {fl} over {calls:,} call{'s' if calls != 1 else ''}"
                )
                if not passed:
                    worst = stats.slowest()
        elif key == "max_calls":
            measured = calls
            passed = calls <= limit
            headline = f"{label}: max_calls: {calls:,} calls {'<=' if passed else 'exceeds the limit'} {fl}"
            if not passed:
                notes.append(
                    "calls by function: "
                    + ", ".join(f"{fn} [{_model_label(m)}]: {g.calls}" for fn, m, g in stats.groups())
                )
                worst = stats.slowest()
        elif key == "max_errors":
            measured = stats.errors
            passed = measured <= limit
            headline = (
                f"{label}: max_errors: {measured:,} failed call{'s' if measured != 1 else ''} of {calls:,} "
                f"{'<=' if passed else 'exceeds the limit'} {fl}"
            )
            if not passed:
                notes.extend(_error_notes(stats))
                worst = [w for w in stats.slowest() if not w.ok] or stats.slowest()
        elif key == "max_error_rate":
            if calls == 0:
                measured, passed = None, True
                headline = f"{label}: max_error_rate over no calls passes (limit {fl})"
            else:
                errors = stats.errors
                measured = errors / calls
                passed = measured <= limit
                headline = (
                    f"{label}: max_error_rate = {measured:.2%} ({errors:,}/{calls:,} calls failed) "
                    f"{'<=' if passed else 'exceeds the limit'} {fl}"
                )
                if not passed:
                    notes.extend(_error_notes(stats))
                    worst = [w for w in stats.slowest() if not w.ok] or stats.slowest()
        elif key in _TOKEN_KEYS:
            kind = _TOKEN_KEYS[key]
            measured = {
                "input": stats.input_tokens,
                "output": stats.output_tokens,
                "any": stats.total_tokens,
            }[kind]
            what = {"input": "input tokens", "output": "output tokens", "any": "total tokens"}[kind]
            unknown = stats.unknown_token_calls(kind)
            within = measured <= limit
            passed = within and (unknown == 0 or budget.allow_unknown_tokens)
            if unknown and not budget.allow_unknown_tokens:
                unknown_what = "tokens" if kind == "any" else what
                headline = (
                    f"{label}: {key} cannot be checked: {unknown:,} call{'s' if unknown != 1 else ''} "
                    f"with unknown {unknown_what} (known: {measured:,} {what}, limit {fl}; "
                    "set allow_unknown_tokens=True to ignore them)"
                )
                notes.append(_unknown_note(stats))
            else:
                headline = (
                    f"{label}: {key}: {measured:,} {what} "
                    f"{'<=' if within else 'exceeds the limit'} {fl} over {calls:,} call{'s' if calls != 1 else ''}"
                )
                if unknown:
                    notes.append(
                        f"{unknown:,} call{'s' if unknown != 1 else ''} with unknown tokens not counted "
                        "(allow_unknown_tokens=True)"
                    )
            if not passed:
                worst = stats.heaviest()
        else:  # max_cost_usd
            cost = stats.cost(prices)
            measured = cost.usd
            within = cost.usd <= limit
            unknown_bad = cost.unknown_token_calls > 0 and not budget.allow_unknown_tokens
            passed = within and not cost.unpriced and not unknown_bad
            if cost.unpriced:
                models = ", ".join(f"{m!r} ({n} call{'s' if n != 1 else ''})" for m, n in cost.unpriced.items())
                headline = (
                    f"{label}: max_cost_usd cannot be checked: unpriced model{'s' if len(cost.unpriced) > 1 else ''} "
                    f"{models} (priced part: {_fmt_usd(cost.usd)}, limit {fl})"
                )
                if prices is None:
                    notes.append("no price table is loaded (--baml-prices / ini baml_prices)")
                else:
                    src = f" {prices.source}" if prices.source else ""
                    notes.append(
                        f"add [models.\"<model>\"] with input_per_mtok and output_per_mtok to the price table{src}"
                    )
            elif unknown_bad:
                headline = (
                    f"{label}: max_cost_usd cannot be checked: {cost.unknown_token_calls:,} "
                    f"call{'s' if cost.unknown_token_calls != 1 else ''} with unknown tokens "
                    f"(known: {_fmt_usd(cost.usd)}, limit {fl}; set allow_unknown_tokens=True to ignore them)"
                )
            else:
                headline = (
                    f"{label}: max_cost_usd: {_fmt_usd(cost.usd)} "
                    f"{'<=' if within else 'exceeds the limit'} {fl} over {calls:,} call{'s' if calls != 1 else ''}"
                )
            if cost.unknown_token_calls and not unknown_bad:
                notes.append(
                    f"{cost.unknown_token_calls:,} call{'s' if cost.unknown_token_calls != 1 else ''} "
                    "with unknown tokens not counted (allow_unknown_tokens=True)"
                )
            if unknown_bad:
                notes.append(_unknown_note(stats))
            if not passed:
                worst = stats.heaviest()
        out.append(
            Verdict(
                budget=budget,
                key=key,
                measured=measured,
                limit=limit,
                passed=passed,
                headline=headline,
                unit=_UNITS[key],
                calls=calls,
                scope=scope,
                notes=tuple(notes),
                worst_calls=tuple(worst),
            )
        )
    return out


def _error_notes(stats: CallStats) -> list[str]:
    parts = []
    for fn, model, count, tests in stats.error_sources():
        parts.append(f"{fn} [{_model_label(model)}]: {count}{_where(tests, stats)}")
    return ["failed calls: " + "; ".join(parts)] if parts else []


def failure_message(verdicts: Iterable[Verdict]) -> str | None:
    """The text to fail a test (or the session) with, or ``None`` when all passed.

    Groups failed verdicts by budget: each failed key's headline and notes, then the
    worst calls once per budget (latency ones first).
    """
    failed = [v for v in verdicts if not v.passed]
    if not failed:
        return None
    groups: dict[tuple[Budget, str], list[Verdict]] = {}
    for v in failed:
        groups.setdefault((v.budget, v.scope), []).append(v)
    blocks = []
    for group in groups.values():
        lines = []
        seen_notes: set[str] = set()
        worst: list[WorstCall] = []
        for v in group:
            lines.append(v.headline)
            for n in v.notes:
                if n not in seen_notes:
                    seen_notes.add(n)
                    lines.append(f"  {n}")
            for w in v.worst_calls:
                if w not in worst:
                    worst.append(w)
        if worst:
            lines.append("  worst calls:")
            lines.extend(f"    {w.describe()}" for w in worst)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _iter_verdicts(items: Iterable[Any]) -> Iterator[Verdict]:
    for v in items:
        if isinstance(v, Verdict):
            yield v
        elif isinstance(v, Mapping):
            yield Verdict.from_dict(v)
        else:
            raise TypeError(f"{v!r} is not a Verdict or a verdict dict")
