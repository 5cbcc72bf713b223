"""The fake client's stream sources, read by the emitter's stream wrapper.

:class:`FakeSyncStream` and :class:`FakeAsyncStream` play a call's :class:`Plan` the way
``baml_py.BamlSyncStream`` / ``baml_py.BamlStream`` would: iterating yields the partials,
each at its scripted offset on the call's timeline, and ``get_final_response()`` returns
the result or raises the scripted error. As in baml-py, iterating a failed stream ends
quietly. A stream whose abort controller is aborted (before a partial, or before the
final response) ends its iteration there and ``get_final_response()`` raises the
in-flight ``BamlAbortError`` at once. The events themselves are emitted by
``Emitter.stream`` around these objects.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .timeline import CallClock, Plan, Timeline

__all__ = ["FakeAsyncStream", "FakeStream", "FakeSyncStream"]


class FakeStream:
    """What the sync and async fake streams share: the plan and how far it was read."""

    def __init__(self, timeline: Timeline, cc: CallClock, plan: Plan) -> None:
        self._timeline = timeline
        self._cc = cc
        self._plan = plan
        self._next = 0

    def _next_partial(self) -> tuple[int, Any] | None:
        plan = self._plan
        i = self._next
        if i >= len(plan.partials):
            return None
        if plan.controller is not None and plan.controller.aborted:
            self._next = len(plan.partials)  # iteration ends quietly, as in baml-py
            return None
        self._next = i + 1
        return plan.partial_times[i], plan.partials[i]

    def _check_abort(self) -> None:
        if self._plan.controller is not None:
            error = self._plan.aborted()
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
        while True:
            step = self._next_partial()
            if step is None:
                return
            wait = self._timeline.advance(self._cc, step[0])
            if wait:
                time.sleep(wait)
            yield step[1]

    def get_final_response(self) -> Any:
        plan = self._plan
        self._next = len(plan.partials)
        self._check_abort()
        wait = self._timeline.advance(self._cc, plan.total_ns)
        if wait:
            time.sleep(wait)
        return self._final()

    def close(self) -> None:
        self._next = len(self._plan.partials)


class FakeAsyncStream(FakeStream):
    """Like ``baml_py.BamlStream``: ``async for`` partials, then ``await get_final_response()``."""

    # The async twin of FakeSyncStream: the same steps, awaited.
    async def __aiter__(self) -> Any:
        while True:
            step = self._next_partial()
            if step is None:
                return
            await asyncio.sleep(self._timeline.advance(self._cc, step[0]))
            yield step[1]

    async def get_final_response(self) -> Any:
        plan = self._plan
        self._next = len(plan.partials)
        self._check_abort()
        await asyncio.sleep(self._timeline.advance(self._cc, plan.total_ns))
        return self._final()

    async def aclose(self) -> None:
        self._next = len(self._plan.partials)
