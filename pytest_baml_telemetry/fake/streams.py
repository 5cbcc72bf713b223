"""The fake client's stream sources, read by the emitter's stream wrapper.

:class:`FakeSyncStream` and :class:`FakeAsyncStream` play a call's :class:`Plan` the way
``baml_py.BamlSyncStream`` / ``baml_py.BamlStream`` would: iterating yields the partials,
each at its scripted offset on the call's timeline, and ``get_final_response()`` returns
the result or raises the scripted error. As in baml-py, iterating a failed stream ends
quietly. A stream whose abort controller is aborted (before a partial, or before the
final response) ends its iteration there and ``get_final_response()`` raises the
in-flight ``BamlAbortError`` at once. The events themselves are emitted by
``Emitter.stream`` around these objects.

Time: the consumer's own time while it holds the stream counts (see :mod:`.timeline`,
"Streams on the clock"): a partial is handed over at ``max(its offset, when it is asked
for)``, the final response at ``max(latency, when it is asked for)``.

Merging (``respond(merge=True)``, ``Plan.merge``): as baml-py does (its stream drains the
queued events and yields only the latest), when the consumer asks for the next partial it
gets the latest one whose time has come, the ones before it skipped; if none is due yet it
waits for the next one (and gets the latest due then: partials scripted at the same
instant arrive as one). Without ``merge`` every partial is yielded, one per ask.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .timeline import CallClock, Plan, Timeline, aborted

__all__ = ["FakeAsyncStream", "FakeStream", "FakeSyncStream"]


class FakeStream:
    """What the sync and async fake streams share: the plan (shared with the outcome's other
    calls: only read), the call's abort controller, how far it was read and the stream's
    consumer-time bookkeeping."""

    def __init__(self, timeline: Timeline, cc: CallClock, plan: Plan, controller: Any = None) -> None:
        self._timeline = timeline
        self._cc = cc
        self._plan = plan
        self._controller = controller
        self._next = 0
        self._clock = timeline.open_stream(cc)

    def _next_partial(self) -> tuple[float, Any] | None:
        """``(seconds to really sleep, partial)`` for the next read, or ``None`` at the end."""
        plan = self._plan
        i = self._next
        n = len(plan.partials)
        if i >= n:
            return None
        controller = self._controller
        if controller is not None and controller.aborted:
            self._next = n  # iteration ends quietly, as in baml-py
            return None
        times = plan.partial_times
        clock = self._clock
        if clock is not None:  # the consumer's time first; no wait if it is past the partial
            wait = self._timeline.stream_step(clock, times[i])
        else:
            wait = self._timeline.advance(self._cc, times[i])
        if plan.merge:
            now = self._cc.elapsed
            while i + 1 < n and times[i + 1] <= now:
                i += 1
        self._next = i + 1
        return wait, plan.partials[i]

    def _to_end(self) -> float:
        """Move to the final response (after the consumer's time); the seconds to really sleep."""
        plan = self._plan
        self._next = len(plan.partials)
        clock = self._clock
        try:
            self._check_abort()
            if clock is not None:
                return self._timeline.stream_step(clock, plan.total_ns)
            return self._timeline.advance(self._cc, plan.total_ns)
        finally:
            self._release()

    def _release(self) -> None:
        clock, self._clock = self._clock, None
        if clock is not None:
            self._timeline.close_stream(clock)

    def __del__(self) -> None:  # a stream dropped unread is no longer counted
        try:
            self._release()
        except Exception:
            pass

    def _check_abort(self) -> None:
        if self._controller is not None:
            error = aborted(self._controller)
            if error is not None:
                raise error

    def _final(self) -> Any:
        """The final response, unless the controller was aborted meanwhile or the plan fails."""
        self._check_abort()
        if self._plan.error is not None:
            raise self._plan.error
        return self._plan.result

    def __repr__(self) -> str:
        return f"<fake stream: {self._next}/{len(self._plan.partials)} partials read>"


class FakeSyncStream(FakeStream):
    """Like ``baml_py.BamlSyncStream``: iterate partials, then ``get_final_response()``."""

    def __iter__(self) -> Any:
        # _next_partial's steps, written out: one frame less per partial (the async twin calls it)
        plan = self._plan
        partials, times, n = plan.partials, plan.partial_times, len(plan.partials)
        timeline = self._timeline
        while True:
            i = self._next
            if i >= n:
                return
            controller = self._controller
            if controller is not None and controller.aborted:
                self._next = n  # iteration ends quietly, as in baml-py
                return
            clock = self._clock
            if clock is not None:  # the consumer's time first; no wait if it is past the partial
                wait = timeline.stream_step(clock, times[i])
            else:
                wait = timeline.advance(self._cc, times[i])
            if plan.merge:
                now = self._cc.elapsed
                while i + 1 < n and times[i + 1] <= now:
                    i += 1
            self._next = i + 1
            if wait:
                time.sleep(wait)
            yield partials[i]

    def get_final_response(self) -> Any:
        wait = self._to_end()
        if wait:
            time.sleep(wait)
        return self._final()

    def close(self) -> None:
        self._next = len(self._plan.partials)
        self._release()


class FakeAsyncStream(FakeStream):
    """Like ``baml_py.BamlStream``: ``async for`` partials, then ``await get_final_response()``."""

    # The async twin of FakeSyncStream: the same steps, awaited.
    async def __aiter__(self) -> Any:
        while True:
            step = self._next_partial()
            if step is None:
                return
            await asyncio.sleep(step[0])
            yield step[1]

    async def get_final_response(self) -> Any:
        await asyncio.sleep(self._to_end())
        return self._final()

    async def aclose(self) -> None:
        self._next = len(self._plan.partials)
        self._release()
