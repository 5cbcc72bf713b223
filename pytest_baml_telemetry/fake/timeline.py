"""Virtual time for the fake client: each call runs on its own timeline.

A call starts at the shared clock's reading and its events are stamped by a
:class:`CallClock` (that base plus the latency scripted so far), so every call's duration
is exactly its scripted latency even when calls overlap in threads or tasks.
:meth:`Timeline.advance` moves a call's timeline forward and the shared clock to
``max(now, call start + elapsed)``; a clock without ``advance_ns`` is only read.
:func:`schedule` turns scripted latency into the offsets of a stream's partials and of
the call's end; a :class:`Plan` is what one call does, decided when it starts.

Streams on the clock: a stream also counts the time its *consumer* spends while holding
it, as a real stream does (the model keeps streaming while the app works; what it sent
waits in the queue). Each open stream has a :class:`StreamClock`; when the stream is read
(a partial, or the final response) its call's timeline first catches up with the time the
shared clock moved since the stream was last read, then waits for the scripted offset if
that is still ahead. So a partial arrives at ``max(its scripted offset, when the consumer
asks)``, the final response at ``max(latency, when it is asked for)``, and a consumer that
reads at once sees exactly the scripted times (``time_to_first_chunk`` is the first
partial's offset).

Rule for overlapping streams: only the consumer's own time counts. The consumer is the
thread and asyncio task that last read the stream; its time is the end of the fake calls it
made since (other streams it reads included), so streams consumed concurrently (``gather``,
a thread pool) each keep their own scripted duration even though they move one shared
clock. A call starts at the shared clock's reading, as every fake call does: a tool call
made by task A after task B took the clock further starts there. A move of the clock that
is not the fake's own (``clock.advance(...)``, another fake on the same clock) cannot be
attributed: every open stream's consumer is then taken to be at the clock's reading.
A clock the fake cannot advance (no ``advance_ns``, e.g. the system clock) adds no consumer
time (it would be the test's own run time).

Rules: nothing here sleeps; ``advance`` returns the seconds to sleep for real (0 unless
``real_sleep``; consumer time is never slept again) and the caller sleeps the way its
shape needs (``time.sleep`` or ``await asyncio.sleep``). A call notices its abort
controller at the points its own time advances (:func:`aborted`): the caller checks
there. Bookkeeping for consumer time costs a call nothing while no stream is open.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from .._validate import short_repr
from ..clock import VirtualClock, format_duration_ns, parse_duration_ns
from ..contract import MAX_NATIVE, Usage
from .faults import abort

__all__ = ["CallClock", "Plan", "StreamClock", "Timeline", "aborted", "schedule"]


class CallClock:
    """The clock one call's events are stamped with: a base reading plus its own elapsed time."""

    __slots__ = ("base_monotonic", "base_time", "elapsed")
    is_virtual = True

    def __init__(self, base_monotonic: int, base_time: int) -> None:
        self.base_monotonic = base_monotonic
        self.base_time = base_time
        self.elapsed = 0

    def monotonic_ns(self) -> int:
        return self.base_monotonic + self.elapsed

    def time_ns(self) -> int:
        return self.base_time + self.elapsed


_running_loop = asyncio._get_running_loop  # None outside an event loop, without raising
_current_task = asyncio.current_task
_get_ident = threading.get_ident


def _actor() -> tuple[int, Any]:
    """Who is running: the thread and, inside an event loop, the asyncio task."""
    loop = _running_loop()
    return _get_ident(), None if loop is None else _current_task(loop)


class StreamClock:
    """An open stream's view of its consumer's time since the stream was last read: the shared
    clock's reading then (``mark``), the fake's own moves of it so far (``moved``), the
    furthest end of a fake call made by the consumer since (``reach``, absolute monotonic ns;
    0: none) and who the consumer is (``actor``: the thread and asyncio task that read it)."""

    __slots__ = ("cc", "mark", "moved", "reach", "actor")

    def __init__(self, cc: CallClock, mark: int, moved: int, actor: tuple[int, Any]) -> None:
        self.cc = cc
        self.mark = mark
        self.moved = moved
        self.reach = 0
        self.actor = actor


def _check_room(cc: CallClock, target_ns: int) -> None:
    """Refuse a target that takes the call's readings past ``contract.MAX_NATIVE``."""
    if cc.base_monotonic + target_ns > MAX_NATIVE or cc.base_time + target_ns > MAX_NATIVE:
        room = MAX_NATIVE - max(cc.base_monotonic, cc.base_time)
        raise ValueError(
            f"the scripted latency takes this call to {format_duration_ns(target_ns)} after its start, "
            f"past contract.MAX_NATIVE on the fake's clock; expected at most {format_duration_ns(room)} "
            "from where the clock stands (script a shorter latency)"
        )


class Timeline:
    """The shared clock of a fake and the per-call timelines started on it."""

    __slots__ = (
        "clock", "real_sleep", "_lock", "_acquire", "_release", "_streams", "_moved", "_advance_ns", "_monotonic_ns",
        "_returns_reading",
    )

    def __init__(self, clock: Any, real_sleep: bool) -> None:
        self.clock = clock
        self.real_sleep = real_sleep
        self._lock = threading.Lock()
        # the lock's methods bound once: acquire/release cost less than `with` on every call's path
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        self._streams: set[StreamClock] = set()  # a plain set: its emptiness is one C-level check per call
        self._moved = 0  # how far the fake's own timelines moved the clock while streams were open
        # the clock's bound methods, looked up once (a fake's clock is fixed when it is built)
        self._advance_ns = getattr(clock, "advance_ns", None)
        self._monotonic_ns = clock.monotonic_ns
        self._returns_reading = type(clock) is VirtualClock  # its advance_ns returns the new reading

    def new_clock(self) -> CallClock:
        """A call's clock, starting at the shared clock's current reading."""
        return CallClock(self.clock.monotonic_ns(), self.clock.time_ns())

    def advance(self, cc: CallClock, target_ns: int) -> float:
        """Move a call's timeline to ``target_ns``; return the seconds to really sleep."""
        delta = target_ns - cc.elapsed
        if delta <= 0:
            return 0.0
        end = cc.base_monotonic + target_ns
        if end > MAX_NATIVE or cc.base_time + target_ns > MAX_NATIVE:
            _check_room(cc, target_ns)
        cc.elapsed = target_ns
        advance_ns = self._advance_ns
        if advance_ns is not None:
            self._acquire()
            try:
                behind = end - self._monotonic_ns()  # the shared clock moves to max(now, end)
                if behind > 0:
                    advance_ns(behind)
                if self._streams:  # consumer time
                    self._note(end, behind, None)
            finally:
                self._release()
        if self.real_sleep or getattr(self.clock, "real_sleep", False):
            return delta / 1_000_000_000
        return 0.0

    def _note(self, end: int, behind: int, me: tuple[int, Any] | None, reading: StreamClock | None = None) -> None:
        """The fake moved the clock (by ``behind``, if positive) to ``end``: count it, and note
        how far the consumer ``me`` (default: whoever is running) got for the open streams it
        holds, ``reading`` (the stream being read, which starts counting afresh) aside
        (lock held)."""
        if behind > 0:
            self._moved += behind
        streams = self._streams
        if me is None:
            loop = _running_loop()
            me = (_get_ident(), None if loop is None else _current_task(loop))
        for stream in tuple(streams):  # a copy: a dropped stream may leave meanwhile
            if stream.actor == me and end > stream.reach and stream is not reading:
                stream.reach = end

    # ------------------------------------------------------------------ consumer time

    def open_stream(self, cc: CallClock) -> StreamClock | None:
        """Start counting a stream's consumer time (``None``: a clock the fake cannot advance)."""
        if self._advance_ns is None:
            return None
        me = _actor()
        with self._lock:
            stream = StreamClock(cc, self._monotonic_ns(), self._moved, me)
            self._streams.add(stream)
        return stream

    def stream_step(self, stream: StreamClock, target_ns: int) -> float:
        """One read of a stream: catch its call up with its consumer's time (the end of the
        consumer's own fake calls since the last read, or the clock's reading if it was moved
        other than by this fake; never slept for real: that time has passed), then advance it
        to ``target_ns`` if that is still ahead (the seconds to really sleep are returned), and
        count the consumer's time from here."""
        cc = stream.cc
        loop = _running_loop()  # who reads: the thread and asyncio task (_actor(), inlined)
        me = (_get_ident(), None if loop is None else _current_task(loop))
        self._acquire()
        try:
            now = self._monotonic_ns()
            base = cc.base_monotonic
            direct = (now - stream.mark) - (self._moved - stream.moved)
            reached = (now if direct > 0 else stream.reach) - base
            if reached > cc.elapsed:
                cc.elapsed = min(reached, MAX_NATIVE - max(base, cc.base_time))
            delta = target_ns - cc.elapsed
            if delta > 0:
                end = base + target_ns
                if end > MAX_NATIVE or cc.base_time + target_ns > MAX_NATIVE:
                    _check_room(cc, target_ns)
                cc.elapsed = target_ns
                behind = end - now
                if behind > 0:
                    reading = self._advance_ns(behind)  # type: ignore[misc]  # open streams have an advanceable clock
                    now = reading if self._returns_reading else self._monotonic_ns()
                    self._moved += behind
                if len(self._streams) > 1:  # the consumer's other streams (this one counts afresh below)
                    self._note(end, 0, me, stream)
            stream.mark = now
            stream.moved = self._moved
            stream.reach = 0
            stream.actor = me
        finally:
            self._release()
        if delta > 0 and (self.real_sleep or getattr(self.clock, "real_sleep", False)):
            return delta / 1_000_000_000
        return 0.0

    def close_stream(self, stream: StreamClock | None) -> None:
        """Stop counting a stream's consumer time (its final response, it was closed, or dropped)."""
        if stream is not None:
            # no lock: this also runs from a dropped stream's __del__, which the garbage collector
            # may call while this thread holds the lock; one set.discard is atomic under the GIL
            self._streams.discard(stream)


def schedule(
    n: int, latency_ns: int | None, chunk_latency: Any, owner: str, what: str = "partials"
) -> tuple[tuple[int, ...], int]:
    """Offsets of ``n`` partials and of the end of the call.

    Without ``chunk_latency`` the partials are spread evenly over the latency (partial
    ``i`` of ``n`` at ``latency*i/(n+1)``); with it (one duration, or one per partial)
    they are spaced by it and the call ends at ``latency_ns`` if given (not before the
    last partial), else with the last partial. ``owner`` starts the error messages, which
    call the ``n`` items ``what`` (``"chunks"`` for ``respond(raw=...)``).
    """
    if chunk_latency is None:
        total = latency_ns or 0
        return tuple(total * i // (n + 1) for i in range(1, n + 1)), total
    if isinstance(chunk_latency, (list, tuple)):
        if len(chunk_latency) != n:
            raise ValueError(
                f"{owner}: chunk_latency has {len(chunk_latency)} durations for {n} {what}; "
                f"expected one duration, or one per {what[:-1]}"
            )
        gaps = [parse_duration_ns(c, name=f"{owner}: chunk_latency[{i}]") for i, c in enumerate(chunk_latency)]
    else:
        gaps = [parse_duration_ns(chunk_latency, name=f"{owner}: chunk_latency")] * n
    times: list[int] = []
    at = 0
    for gap in gaps:
        at += gap
        times.append(at)
    if at > MAX_NATIVE:
        raise ValueError(
            f"{owner}: chunk_latency={short_repr(chunk_latency, 80)} adds up to {format_duration_ns(at)}; "
            f"expected partials within {format_duration_ns(MAX_NATIVE)} (contract.MAX_NATIVE, about 292 years)"
        )
    last = times[-1] if times else 0
    if latency_ns is None:
        return tuple(times), last
    if latency_ns < last:
        raise ValueError(
            f"{owner}: latency={format_duration_ns(latency_ns)} is shorter than the partials' "
            f"chunk_latency total {format_duration_ns(last)}; the final response cannot come before its partials"
        )
    return tuple(times), latency_ns


class Plan:
    """What one call does, decided when it starts: its result or error, the end event's
    usage and metadata (``model``, ``provider``, ``client_name``, ``num_attempts``; ``None``
    when unknown), the stream partials with their offsets (``merge``: partials queued by the
    time the consumer reads are merged into one, ``respond(merge=True)``) and when the call
    ends. What differs per call even for the same outcome (its request id, abort controller
    and tags) is not part of it, so the plan of a fixed outcome is made once and shared by
    its calls (:func:`.script.plan_call`): nothing changes a plan once made.

    A plain class with slots, built positionally on the call path."""

    __slots__ = (
        "result", "error", "usage", "model", "provider", "client_name", "num_attempts", "partials", "partial_times",
        "total_ns", "merge",
    )

    def __init__(
        self,
        result: Any = None,
        error: BaseException | None = None,
        usage: Usage | None = None,
        model: str | None = None,
        provider: str | None = None,
        client_name: str | None = None,
        num_attempts: int | None = 1,
        partials: tuple[Any, ...] = (),
        partial_times: tuple[int, ...] = (),
        total_ns: int = 0,
        merge: bool = False,
    ) -> None:
        self.result = result
        self.error = error
        self.usage = usage
        self.model = model
        self.provider = provider
        self.client_name = client_name
        self.num_attempts = num_attempts
        self.partials = partials
        self.partial_times = partial_times
        self.total_ns = total_ns
        self.merge = merge

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Plan({fields})"


def aborted(controller: Any) -> BaseException | None:
    """The ``BamlAbortError`` to raise if a call's abort ``controller`` (``None``: none) was
    aborted while it was in flight (baml-py's in-flight message, as ``faults.abort(after=...)``
    builds it)."""
    if controller is None or not controller.aborted:
        return None
    return abort(after=0).build()
