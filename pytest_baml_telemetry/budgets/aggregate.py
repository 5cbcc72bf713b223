"""The compact, mergeable record of BAML calls: :class:`Aggregator` and its xdist payload.

The aggregator stores numbers only, per ``(function_name, model)`` series: durations as
``array('q')`` of nanoseconds, counters, token sums, the few worst calls and a sample of
test ids. No event, argument or result is kept. :meth:`Aggregator.record` is the hot path:
its checks run only when a value is not already a plain int.

Token rules (part of the documented behaviour):

* **Tokens** are *sums* over the calls recorded, successful or failed. A call whose
  ``input_tokens`` or ``output_tokens`` is ``None`` has *unknown tokens*, whether it
  succeeded or failed (an ``exception`` event carries the tokens of the billing rule: the
  provider's usage after an answer, 0/0 for a failure known not to be billed, ``None``
  when its billing is unknown; one without token measurements has unknown tokens).
* **Cached input tokens** are *part of* ``input_tokens`` (the OpenAI convention): they
  count only when ``input_tokens`` is known, a missing measurement means 0, and cached
  tokens beyond ``input_tokens`` are capped at ``input_tokens``.

Reading goes through :class:`~pytest_baml_telemetry.budgets.view.CallStats` (``stats()``,
``filtered()``), which uses :meth:`Aggregator.select` and :meth:`Aggregator.sealed_runs`.

Per-test totals (:attr:`Aggregator.tests`) are kept per window, not per call:
:meth:`Aggregator.begin_test` notes the :data:`TEST_COUNTERS` of every series and
:meth:`Aggregator.end_test` adds the difference to the test, so recording costs nothing more.
"""

from __future__ import annotations

import base64
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from heapq import heapify, heappush, heapreplace, nlargest
from typing import TYPE_CHECKING, Any

from .._validate import check_choice, check_count, check_str, fail, is_int, short_repr
from ..contract import MAX_NATIVE, check_event_name, event_kind
from .series import COUNTERS, Series, SeriesKey, has_negative, key_order, sample_add
from .unrecorded import NotRecorded

if TYPE_CHECKING:
    from .view import CallStats

__all__ = ["Aggregator", "PAYLOAD_FORMAT", "Series", "SeriesKey", "TEST_COUNTERS", "key_order"]

PAYLOAD_FORMAT = "pytest-baml-telemetry/aggregator/v1"
"""The ``format`` tag of :meth:`Aggregator.to_payload`."""

TEST_COUNTERS = (
    "ok", "errors", "input_tokens", "output_tokens", "cached_input_tokens",
    "unknown_input", "unknown_output", "unknown_calls",
)
"""The series counters kept per test (:attr:`Aggregator.tests`), in this order."""

def _arg(call: str, name: str, value: Any) -> str:
    """How a message names a bad argument: ``Aggregator.record(duration_ns=-1)``."""
    return f"{call}({name}={short_repr(value)})"


_COUNT = "a non-negative int"
_TOKENS = "a non-negative int or None"
_TEST_ID = "a test node id (str) or None"


def _test_id(value: Any, where: str = "test_id") -> str:
    return check_str(value, f"{where}={short_repr(value)}", empty=True, expected=_TEST_ID)


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
        self.worst_n: int = check_count(worst_n, _arg("Aggregator", "worst_n", worst_n), expected=_COUNT)
        self.sample_n: int = check_count(sample_n, _arg("Aggregator", "sample_n", sample_n), expected=_COUNT)
        self._series: dict[SeriesKey, Series] = {}
        self._lock = threading.Lock()
        self.current_test_id: str | None = None
        """Test id recorded for calls whose ``test_id`` is not given (the plugin sets it)."""
        self.not_recorded = NotRecorded()
        """The events :meth:`handle` could not record (counted, never raised)."""
        self.tests: dict[str, dict[SeriesKey, list[int]]] = {}
        """Per test id, per ``(function, model)``: the :data:`TEST_COUNTERS` of the calls made
        between :meth:`begin_test` and :meth:`end_test` (tests without calls are absent)."""
        self._window: tuple[str, dict[SeriesKey, tuple[int, ...]]] | None = None

    # ------------------------------------------------------------------ recording

    def _new_series(self, function_name: Any, model: Any) -> Series:
        if not isinstance(function_name, str) or not function_name:
            fail(TypeError, f"function_name={short_repr(function_name)}", "the BAML function name (a non-empty str)")
        check_str(model, f"model={short_repr(model)}", empty=True, optional=True, expected="the model name (a str) or None")
        s = self._series[(function_name, model)] = Series(function_name, model)
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
        provider: str | None = None,
        streaming: bool = False,
        time_to_first_chunk: int | None = None,
    ) -> None:
        """Record one call: its duration in ns, outcome and token usage (``None`` = unknown).

        ``test_id`` defaults to :attr:`current_test_id`. ``cached_input_tokens`` count
        only when ``input_tokens`` is known (they are part of it, capped at it); a
        failed call (``ok=False``) counts its tokens as a successful one does (``None``:
        unknown tokens; 0/0 for a failure that was not billed). ``provider`` (the BAML
        provider name) is what prices are looked up with. A successful ``streaming`` call
        (or one with a ``time_to_first_chunk``) counts as a stream; its time to first chunk
        in ns is kept for the ``ttfc_*`` budgets (``None``: the stream had no first chunk).
        Raises ``TypeError``/``ValueError`` naming the value for a non-int or negative
        duration, token count or time to first chunk.
        """
        # the hot path: every check below is skipped for plain non-negative ints
        if type(duration_ns) is not int or duration_ns < 0:
            duration_ns = check_count(duration_ns, _arg("Aggregator.record", "duration_ns", duration_ns), expected=_COUNT)
        if time_to_first_chunk is not None:
            streaming = True
            if type(time_to_first_chunk) is not int or not 0 <= time_to_first_chunk <= MAX_NATIVE:
                time_to_first_chunk = _ttfc(time_to_first_chunk)
        if provider is not None and type(provider) is not str:
            check_str(provider, _arg("Aggregator.record", "provider", provider), expected="the BAML provider name (a str) or None")
        if test_id is None:
            test_id = self.current_test_id
        with self._lock:
            s = self._series.get((function_name, model))
            if s is None:
                s = self._new_series(function_name, model)
            if input_tokens is not None and (type(input_tokens) is not int or input_tokens < 0):
                input_tokens = check_count(input_tokens, _arg("Aggregator.record", "input_tokens", input_tokens), expected=_TOKENS)
            if output_tokens is not None and (type(output_tokens) is not int or output_tokens < 0):
                output_tokens = check_count(output_tokens, _arg("Aggregator.record", "output_tokens", output_tokens), expected=_TOKENS)
            try:
                s.buf.append(duration_ns)
            except OverflowError:  # beyond int64: refused as validate_event refuses it
                if not s.calls:
                    del self._series[(function_name, model)]
                fail(
                    ValueError,
                    _arg("Aggregator.record", "duration_ns", duration_ns),
                    f"a duration in ns of at most contract.MAX_NATIVE = {MAX_NATIVE}",
                )
            unknown = False
            if provider is not None and provider != s.provider:
                _set_provider(s, provider)
            if ok:
                s.ok += 1
                if streaming:
                    s.streams += 1
                    if time_to_first_chunk is not None:
                        s.ttfc.append(time_to_first_chunk)
                        if self.worst_n:
                            _keep_slow_ttfc(s.slowest_ttfc, time_to_first_chunk, test_id, self.worst_n)
            else:
                s.errors += 1
                if test_id is not None and self.sample_n:
                    sample_add(s.error_tests, _test_id(test_id), self.sample_n)
            if input_tokens is None:
                s.unknown_input += 1
                unknown = True
            if output_tokens is None:
                s.unknown_output += 1
                unknown = True
            if input_tokens is not None:
                s.input_tokens += input_tokens
                if cached_input_tokens:
                    if type(cached_input_tokens) is not int or cached_input_tokens < 0:
                        cached_input_tokens = check_count(
                            cached_input_tokens,
                            _arg("Aggregator.record", "cached_input_tokens", cached_input_tokens),
                            expected=_TOKENS,
                        )
                    s.cached_input_tokens += (
                        cached_input_tokens if cached_input_tokens <= input_tokens else input_tokens
                    )
            if output_tokens is not None:
                s.output_tokens += output_tokens
            if unknown:
                s.unknown_calls += 1
                if test_id is not None and self.sample_n:
                    sample_add(s.unknown_tests, _test_id(test_id), self.sample_n)
            n = self.worst_n
            if n:
                # Only build an entry when it may enter the heap (the common case is a
                # single comparison against the smallest kept entry).
                w = s.slowest
                if len(w) < n or duration_ns >= w[0][0]:
                    entry = (
                        duration_ns,
                        "" if test_id is None else test_id if type(test_id) is str else _test_id(test_id),
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
                            "" if test_id is None else test_id if type(test_id) is str else _test_id(test_id),
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

        The kind is read as :func:`~pytest_baml_telemetry.contract.event_kind` reads it
        (the ``("call", "stop")`` suffix), so any prefix works; ``event_name`` is a tuple,
        a list or a dotted string. ``stop`` records a successful call with ``duration``,
        ``input_tokens``, ``output_tokens`` and ``cached_input_tokens`` from the
        measurements and ``function_name``/``model``/``provider`` from the metadata; a stop
        event with a ``time_to_first_chunk`` measurement (``None``: no chunk came) is a
        stream's, as the reference emitter writes it on streams only; ``exception``
        records a failed call with its tokens the same way (``model`` and the token
        measurements may be absent: absent tokens are unknown). Any other event (e.g. ``start``)
        is ignored. Returns whether a call was recorded. Raises ``ValueError`` naming the
        key when a stop/exception event lacks ``duration`` or ``function_name``.
        """
        kind = _KINDS.get(event_name) if type(event_name) is tuple else None  # the hot path: a known name
        if kind is None:
            kind = _kind(event_name)
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
        meta = metadata.get
        ttfc = get("time_to_first_chunk", _NO_STREAM)
        if ttfc is _NO_STREAM:
            self.record(
                function_name,
                meta("model"),
                duration,
                ok,
                get("input_tokens"),
                get("output_tokens"),
                get("cached_input_tokens"),
                test_id,
                meta("provider"),
            )
        else:  # a stream: the reference emitter writes time_to_first_chunk (None: no chunk) on streams only
            self.record(
                function_name,
                meta("model"),
                duration,
                ok,
                get("input_tokens"),
                get("output_tokens"),
                get("cached_input_tokens"),
                test_id,
                meta("provider"),
                True,
                ttfc,
            )
        return True

    def handle(
        self,
        event_name: Sequence[str],
        measurements: Mapping[str, Any],
        metadata: Mapping[str, Any],
        config: Any = None,
    ) -> None:
        """Dispatcher handler: ``attach_many(id, [CALL_STOP, CALL_EXCEPTION], agg.handle)``.

        Never raises: an event :meth:`record_event` refuses is counted in
        :attr:`not_recorded` (how many, why, the first one) instead, so the recorder stays
        attached; budgets over this aggregator are then unverifiable.
        """
        try:
            self.record_event(event_name, measurements, metadata)
        except Exception as exc:
            self.not_recorded.add(event_name, measurements, metadata, exc, self.current_test_id)

    # ------------------------------------------------------------------ per-test windows

    def _counts(self) -> dict[SeriesKey, tuple[int, ...]]:
        return {k: tuple(getattr(s, n) for n in TEST_COUNTERS) for k, s in self._series.items()}

    def begin_test(self, test_id: str) -> None:
        """Label calls with ``test_id`` (:attr:`current_test_id`) and open its per-test window
        (a window still open is closed first)."""
        check_str(test_id, _arg("Aggregator.begin_test", "test_id", test_id), expected="a test node id (str)")
        self.end_test()
        with self._lock:
            self._window = (test_id, self._counts())
        self.current_test_id = test_id

    def end_test(self) -> None:
        """Close the window :meth:`begin_test` opened: add its calls to :attr:`tests`."""
        with self._lock:
            window, self._window = self._window, None
            if window is None:
                return
            test_id, before = window
            zero = (0,) * len(TEST_COUNTERS)
            for key, now in self._counts().items():
                then = before.get(key, zero)
                if now != then:
                    row = self.tests.setdefault(test_id, {}).setdefault(key, [0] * len(TEST_COUNTERS))
                    for i, (a, b) in enumerate(zip(now, then)):
                        row[i] += a - b
        self.current_test_id = None

    def series_provider(self, key: SeriesKey) -> str | None:
        """The provider of the series ``key`` (``None``: unknown, or no such series)."""
        s = self._series.get(key)
        return None if s is None else s.provider

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        """Number of calls recorded."""
        return sum(s.calls for s in list(self._series.values()))

    def keys(self) -> list[SeriesKey]:
        """The ``(function_name, model)`` pairs seen, sorted."""
        return sorted(self._series, key=key_order)

    def select(self, keep: Callable[[SeriesKey], bool] | None = None) -> list[Series]:
        """The series whose key ``keep`` accepts (all when ``None``), sorted by key (for views)."""
        items = [(k, s) for k, s in list(self._series.items()) if keep is None or keep(k)]
        items.sort(key=lambda ks: key_order(ks[0]))
        return [s for _, s in items]

    def sealed_runs(self, series: Iterable[Series]) -> list[array]:
        """The sorted duration runs of ``series`` (pending durations are sorted first)."""
        with self._lock:
            runs: list[array] = []
            for s in series:
                runs.extend(s.seal())
            return runs

    def sealed_ttfc(self, series: Iterable[Series]) -> list[array]:
        """The sorted times to first chunk of ``series`` (the non-empty ones)."""
        with self._lock:
            return [t for t in (s.sorted_ttfc() for s in series) if t]

    def duration_totals(self) -> dict[SeriesKey, int]:
        """The sum of the durations in ns per ``(function_name, model)`` (kept as runs are sealed:
        no pass over the durations once they are)."""
        with self._lock:
            out = {}
            for key, s in self._series.items():
                s.seal()
                out[key] = s.run_total
            return out

    def stats(self) -> CallStats:
        """A live view over every call recorded."""
        from .view import CallStats

        return CallStats(self)

    def filtered(self, function: str | Iterable[str] | None = None, model: str | Iterable[str] | None = None) -> CallStats:
        """A live view over the calls whose function and model match: ``stats().filtered(function, model)``."""
        return self.stats().filtered(function, model)

    def clear(self) -> None:
        """Forget every call."""
        with self._lock:
            self._series.clear()
            self.not_recorded = NotRecorded()
            self.tests = {}
            self._window = None

    # ------------------------------------------------------------------ merging / payload

    def merge(self, other: Aggregator) -> Aggregator:
        """Add every call of ``other`` to this aggregator; returns ``self``.

        The result is the same (``==``) as if all calls had been recorded here.
        """
        if not isinstance(other, Aggregator):
            fail(TypeError, f"merge(other={short_repr(other)})", "an Aggregator")
        if other is self:
            raise ValueError("merge(other): cannot merge an aggregator into itself")
        with other._lock:
            theirs = list(other._series.values())
            copies = [
                (o, [array("q", r) for r in o.runs], o.run_total, array("q", o.buf), array("q", o.ttfc)) for o in theirs
            ]
            their_tests = [(t, key, list(row)) for t, rows in other.tests.items() for key, row in rows.items()]
        with self._lock:
            for o, runs, run_total, buf, ttfc in copies:
                s = self._series.get((o.function_name, o.model))
                if s is None:
                    s = self._new_series(o.function_name, o.model)
                s.runs.extend(runs)
                s.run_total += run_total
                s.buf.extend(buf)
                s.ttfc.extend(ttfc)
                if o.provider is not None and o.provider != s.provider:
                    _set_provider(s, o.provider)
                for name in COUNTERS:
                    setattr(s, name, getattr(s, name) + getattr(o, name))
                for t in o.unknown_tests:
                    sample_add(s.unknown_tests, t, self.sample_n)
                for t in o.error_tests:
                    sample_add(s.error_tests, t, self.sample_n)
                s.slowest = _top(s.slowest + o.slowest, self.worst_n)
                s.heaviest = _top(s.heaviest + o.heaviest, self.worst_n)
                s.slowest_ttfc = _top(s.slowest_ttfc + o.slowest_ttfc, self.worst_n)
            self.not_recorded.merge(other.not_recorded)
            for t, key, row in their_tests:
                mine = self.tests.setdefault(t, {}).setdefault(key, [0] * len(TEST_COUNTERS))
                for i, v in enumerate(row):
                    mine[i] += v
        return self

    def to_payload(self, *, durations_as: str = "base64") -> dict[str, Any]:
        """A JSON-able dict of everything recorded (for xdist workers to send home).

        ``durations_as="base64"`` (default) sends each series' durations as base64 of
        little-endian int64 bytes (compact); ``"list"`` sends a list of ints.
        :meth:`from_payload` reads either and round-trips exactly.
        """
        check_choice(durations_as, ("base64", "list"), f"Aggregator.to_payload(durations_as={short_repr(durations_as)})")
        with self._lock:
            series = []
            for key in sorted(self._series, key=key_order):
                s = self._series[key]
                d = s.all_durations()
                item: dict[str, Any] = {"function": s.function_name, "model": s.model, "provider": s.provider}
                if durations_as == "list":
                    item["durations"] = d.tolist()
                    item["ttfc"] = s.ttfc.tolist()
                else:
                    item["durations_b64"] = _b64(d)
                    item["ttfc_b64"] = _b64(array("q", s.ttfc))
                item.update({name: getattr(s, name) for name in COUNTERS})
                item.update(
                    unknown_tests=list(s.unknown_tests),
                    error_tests=list(s.error_tests),
                    slowest=[list(e) for e in sorted(s.slowest, reverse=True)],
                    heaviest=[list(e) for e in sorted(s.heaviest, reverse=True)],
                    slowest_ttfc=[list(e) for e in sorted(s.slowest_ttfc, reverse=True)],
                )
                series.append(item)
            return {
                "format": PAYLOAD_FORMAT,
                "worst_n": self.worst_n,
                "sample_n": self.sample_n,
                "series": series,
                "not_recorded": self.not_recorded.to_payload(),
                # per test: [test_id, function, model, *TEST_COUNTERS], one row per series used
                "tests": [
                    [t, key[0], key[1], *row]
                    for t in sorted(self.tests)
                    for key, row in sorted(self.tests[t].items(), key=lambda kr: key_order(kr[0]))
                ],
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
                d = _unb64(item["durations_b64"]) if "durations_b64" in item else array("q", item["durations"])
                if has_negative(d):
                    raise ValueError(f"{where}: negative duration")
                s.buf = d
                # a payload without the stream fields (an older worker) has no streams
                t = _unb64(item["ttfc_b64"]) if "ttfc_b64" in item else array("q", item.get("ttfc", ()))
                if has_negative(t):
                    raise ValueError(f"{where}: negative time to first chunk")
                s.ttfc = t
                provider = item.get("provider")
                s.provider = check_str(provider, f"{where}.provider={short_repr(provider)}", empty=True, optional=True)
                for name in COUNTERS:
                    value = item.get(name, 0) if name == "streams" else item[name]
                    setattr(s, name, check_count(value, f"{where}.{name}={short_repr(value)}"))
                if len(d) != s.ok + s.errors:
                    raise ValueError(
                        f"{where}: {len(d)} durations for {s.ok + s.errors} calls (ok + errors)"
                    )
                if len(t) > s.streams or s.streams > s.ok:
                    raise ValueError(
                        f"{where}: {len(t)} times to first chunk for {s.streams} streams of {s.ok} successful calls"
                    )
                s.unknown_tests = sorted(_test_id(t, f"{where}.unknown_tests[]") for t in item["unknown_tests"])
                s.error_tests = sorted(_test_id(t, f"{where}.error_tests[]") for t in item["error_tests"])
                s.slowest = [_entry(e, 5, where) for e in item["slowest"]]
                s.heaviest = [_entry(e, 6, where) for e in item["heaviest"]]
                s.slowest_ttfc = [_ttfc_entry(e, where) for e in item.get("slowest_ttfc", ())]
                heapify(s.slowest)
                heapify(s.heaviest)
                heapify(s.slowest_ttfc)
            agg.not_recorded = NotRecorded.from_payload(payload.get("not_recorded"))
            for row in payload.get("tests", ()):  # an older worker sends none
                _test_row(agg, row)
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
            return {
                key: (
                    sorted(s.all_durations()),
                    sorted(s.ttfc),
                    s.provider,
                    *(getattr(s, name) for name in COUNTERS),
                    s.unknown_tests,
                    s.error_tests,
                    sorted(s.slowest),
                    sorted(s.heaviest),
                    sorted(s.slowest_ttfc),
                )
                for key, s in self._series.items()
            } | {("tests", t): sorted(rows.items(), key=lambda kr: key_order(kr[0])) for t, rows in self.tests.items()}

    def __repr__(self) -> str:
        return f"Aggregator({len(self)} calls, {len(self._series)} function/model pairs)"


_NO_STREAM: Any = object()
"""The ``time_to_first_chunk`` of an event that has none (not a stream)."""

_KINDS: dict[tuple[str, ...], str] = {}
"""Event name -> :func:`~pytest_baml_telemetry.contract.event_kind` of it, for the few names seen."""


def _kind(event_name: Any) -> str | None:
    """The kind of an event name not in :data:`_KINDS` (remembered when it is a tuple)."""
    name = event_name if type(event_name) is tuple else _event_name(event_name)
    kind = event_kind(name)
    if kind is not None and type(event_name) is tuple and len(_KINDS) < 64:
        _KINDS[event_name] = kind
    return kind


def _event_name(event_name: Any) -> tuple[str, ...]:
    """A dotted str or a list as an event-name tuple (the slow path of :meth:`Aggregator.record_event`)."""
    if isinstance(event_name, str):
        event_name = tuple(event_name.split("."))
    try:
        return check_event_name(event_name)
    except (TypeError, ValueError):
        fail(
            TypeError,
            f"Aggregator.record_event(event_name={short_repr(event_name)})",
            "an event name: a tuple of str such as ('ash_baml', 'call', 'stop') or a dotted str",
        )


def _b64(d: array) -> str:
    """``array('q')`` as base64 of little-endian int64 bytes (``d`` may be byte-swapped)."""
    if sys.byteorder != "little":
        d.byteswap()
    return base64.b64encode(d.tobytes()).decode("ascii")


def _unb64(text: Any) -> array:
    d = array("q")
    d.frombytes(base64.b64decode(text, validate=True))
    if sys.byteorder != "little":
        d.byteswap()
    return d


def _ttfc(value: Any) -> int:
    """A time to first chunk that is not a plain int in range (the slow path of :meth:`Aggregator.record`)."""
    where = _arg("Aggregator.record", "time_to_first_chunk", value)
    value = check_count(value, where, expected="a time in ns (an int >= 0) or None")
    if value > MAX_NATIVE:
        fail(ValueError, where, f"a time in ns of at most contract.MAX_NATIVE = {MAX_NATIVE}")
    return int(value)


def _keep_slow_ttfc(heap: list[tuple[int, str]], ttfc: int, test_id: Any, n: int) -> None:
    """Keep in ``heap`` the ``n`` streams whose first chunk came last (with their test ids)."""
    if len(heap) < n or ttfc >= heap[0][0]:
        entry = (ttfc, "" if test_id is None else test_id if type(test_id) is str else _test_id(test_id))
        if len(heap) < n:
            heappush(heap, entry)
        elif entry > heap[0]:
            heapreplace(heap, entry)


def _ttfc_entry(e: Any, where: str) -> tuple[int, str]:
    """One slowest-first-chunk entry of a payload: ``[ttfc_ns, test_id]``."""
    if not isinstance(e, (list, tuple)) or len(e) != 2 or not is_int(e[0]) or e[0] < 0 or not isinstance(e[1], str):
        raise ValueError(f"{where}: slowest_ttfc entry {short_repr(e)} is not [time in ns, test id]")
    return (int(e[0]), e[1])


def _set_provider(s: Series, provider: str) -> None:
    """Keep the smallest provider name a series was served by (the same with and without xdist)."""
    if s.provider is None or provider < s.provider:
        s.provider = provider


def _entry(e: Any, size: int, where: str) -> tuple:
    """One worst-call heap entry of a payload: ints, with the test id (a str) at ``size - 4``."""
    if not isinstance(e, (list, tuple)) or len(e) != size:
        raise ValueError(f"{where}: worst-call entry {short_repr(e)} is not a list of {size} items")
    t = tuple(e)
    if not isinstance(t[size - 4], str):
        raise ValueError(f"{where}: worst-call entry {short_repr(e)} has a non-str test id")
    for j, v in enumerate(t):
        if j != size - 4 and not is_int(v):
            raise ValueError(f"{where}: worst-call entry {short_repr(e)} has a non-int at position {j}")
    return t


def _test_row(agg: Aggregator, row: Any) -> None:
    """Add one ``[test_id, function, model, *TEST_COUNTERS]`` payload row to ``agg.tests``."""
    n = len(TEST_COUNTERS)
    if (
        not isinstance(row, (list, tuple)) or len(row) != 3 + n or not isinstance(row[0], str)
        or not isinstance(row[1], str) or not (row[2] is None or isinstance(row[2], str))
        or not all(is_int(v) and v >= 0 for v in row[3:])
    ):
        raise ValueError(
            f"aggregator payload tests: row {short_repr(row)} is not [test id, function, model, {n} counts >= 0]"
        )
    mine = agg.tests.setdefault(row[0], {}).setdefault((row[1], row[2]), [0] * n)
    for i, v in enumerate(row[3:]):
        mine[i] += int(v)


def _top(entries: list, n: int) -> list:
    kept = nlargest(n, entries)
    heapify(kept)
    return kept
