"""Stress: 16 threads and 1,000 asyncio tasks emitting at once through one emitter.

Everything goes through one :class:`Dispatcher` into one :class:`EventCapture` and one
budgets :class:`Aggregator`. Nothing may be lost (exact counts), every start must be
paired with its own end (``validate_stream`` and a per-call identity check), and the
aggregator's totals must equal the sum of what each thread and task did. A handler that
raises under load is detached exactly once and reported exactly once. The fake client,
driven the same way, must give every call exactly its scripted virtual duration.

The switch interval is lowered while the threads run, so they interleave often.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    HANDLER_FAILURE,
    Dispatcher,
    Emitter,
    Usage,
    VirtualClock,
    validate_stream,
)
from pytest_baml_telemetry.budgets import Aggregator
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.fake import AsyncFakeBamlClient, FakeBamlClient, faults

THREADS = 16
CALLS_PER_THREAD = 1_000
TASKS = 1_000
MODELS = ("model-a", "model-b", "model-c")


class Boom(Exception):
    """What a scripted call raises (the emitter records it as an exception event)."""


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Let threads switch every 10 µs instead of every 5 ms, to force interleaving."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_threads(target: Callable[[int], None], n: int = THREADS) -> None:
    """Run ``target(i)`` in ``n`` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,), name=f"stress-{i}") for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a stress thread hung"
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------- a plan per call


def plan(source: str, worker: int, i: int) -> dict[str, Any]:
    """What call ``i`` of ``worker`` does: deterministic, varied, sometimes failing or tokenless."""
    k = worker * 7919 + i
    fails = k % 9 == 0
    unknown = not fails and k % 11 == 0
    return {
        "function": f"{source}Fn{k % 3}",
        "model": MODELS[k % len(MODELS)],
        "fails": fails,
        "input": None if unknown else 10 + k % 50,
        "output": None if unknown else 1 + k % 17,
        "cached": k % 4 if not unknown else None,
        "key": (source, worker, i),
    }


def all_plans() -> list[dict[str, Any]]:
    plans = [plan("Thread", t, i) for t in range(THREADS) for i in range(CALLS_PER_THREAD)]
    plans += [plan("Task", 0, i) for i in range(TASKS)]
    return plans


def _record_usage(call: Any, p: dict[str, Any]) -> None:
    call.set_model(p["model"])
    call.set_usage(p["input"], p["output"], p["cached"])
    call.set_result(p["key"])


def emit_sync(emitter: Emitter, p: dict[str, Any]) -> None:
    try:
        with emitter.call(p["function"], arguments={"key": p["key"]}) as call:
            call.set_model(p["model"])
            if p["fails"]:
                raise Boom(repr(p["key"]))
            _record_usage(call, p)
    except Boom:
        pass


async def emit_async(emitter: Emitter, p: dict[str, Any]) -> None:
    try:
        async with emitter.call(p["function"], arguments={"key": p["key"]}) as call:
            call.set_model(p["model"])
            await asyncio.sleep(0)  # let the other tasks start their calls in between
            if p["fails"]:
                raise Boom(repr(p["key"]))
            _record_usage(call, p)
    except Boom:
        pass


def emit_everything(emitter: Emitter) -> None:
    """16 threads and 1,000 asyncio tasks (on this thread) at the same time."""

    def thread_body(t: int) -> None:
        for i in range(CALLS_PER_THREAD):
            emit_sync(emitter, plan("Thread", t, i))

    async def tasks() -> None:
        await asyncio.gather(*(emit_async(emitter, plan("Task", 0, i)) for i in range(TASKS)))

    worker = threading.Thread(target=run_threads, args=(thread_body,))
    worker.start()
    asyncio.run(tasks())
    worker.join(timeout=60)
    assert not worker.is_alive()


# --------------------------------------------------------------------------- the tests


def test_nothing_lost_everything_paired_totals_add_up(busy_switching: None) -> None:
    dispatcher = Dispatcher("stress")
    capture = EventCapture(dispatcher=dispatcher).attach()
    aggregator = Aggregator()
    dispatcher.attach_many("aggregator", [CALL_STOP, CALL_EXCEPTION], aggregator.handle)
    emitter = Emitter(dispatcher=dispatcher)

    emit_everything(emitter)

    plans = all_plans()
    total = len(plans)
    failed = [p for p in plans if p["fails"]]
    ok = [p for p in plans if not p["fails"]]
    assert total == THREADS * CALLS_PER_THREAD + TASKS

    # nothing lost
    names = Counter(e.name for e in capture.events)
    assert names == {CALL_START: total, CALL_STOP: len(ok), CALL_EXCEPTION: len(failed)}
    assert capture.handler_failures == []

    # everything paired, each end with its own start
    validate_stream(capture.events)
    calls = capture.calls
    assert len(calls) == total
    assert len({c.span_context for c in calls}) == total
    by_key = {}
    for c in calls:
        key = c.arguments["key"]
        assert key not in by_key, f"two calls with the arguments of {key}"
        by_key[key] = c
    for p in plans:
        c = by_key[p["key"]]
        assert c.function_name == p["function"]
        assert c.model == p["model"]
        if p["fails"]:
            assert c.ok is False and isinstance(c.error, Boom) and str(c.error) == repr(p["key"])
        else:
            assert c.ok is True and c.result == p["key"]
            assert (c.input_tokens, c.output_tokens) == (p["input"], p["output"])
            assert c.total_tokens == (None if p["input"] is None else p["input"] + p["output"])

    # the aggregator's totals are the sums of the parts
    stats = aggregator.stats()
    assert len(aggregator) == stats.calls == total
    assert stats.errors == len(failed)
    assert stats.ok == len(ok)
    assert stats.input_tokens == sum(p["input"] for p in ok if p["input"] is not None)
    assert stats.output_tokens == sum(p["output"] for p in ok if p["output"] is not None)
    assert stats.total_tokens == stats.input_tokens + stats.output_tokens
    assert stats.cached_input_tokens == sum(min(p["cached"], p["input"]) for p in ok if p["input"] is not None)
    # issue 12: a failed call (raised before set_usage: tokens None) has unknown tokens too
    assert stats.unknown_token_calls() == sum(1 for p in ok if p["input"] is None) + len(failed)
    # ... also per (function, model) pair
    expected_groups = Counter((p["function"], p["model"]) for p in plans)
    assert {(f, m): s.calls for f, m, s in stats.groups()} == dict(expected_groups)
    for function in {p["function"] for p in plans}:
        mine = [p for p in plans if p["function"] == function]
        part = aggregator.filtered(function=function)
        assert part.calls == len(mine)
        assert part.errors == sum(p["fails"] for p in mine)
        assert part.input_tokens == sum(p["input"] or 0 for p in mine if not p["fails"])
    # and its durations are the captured ones
    assert sorted(aggregator.stats().sorted_durations()) == sorted(c.duration for c in calls)


def test_a_handler_raising_under_load_is_detached_and_reported_once(
    busy_switching: None, caplog: pytest.LogCaptureFixture
) -> None:
    dispatcher = Dispatcher("stress-failure")
    emitter = Emitter(dispatcher=dispatcher)
    # Every thread's first start event reaches the handler, which holds them all at a
    # barrier: all 16 threads raise from inside it at once, before any has detached it.
    inside = threading.Barrier(THREADS)
    entered = Counter[str]()
    lock = threading.Lock()

    def bomb(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
        with lock:
            entered[threading.current_thread().name] += 1
        inside.wait(timeout=30)
        raise RuntimeError("bomb went off")

    # attached first: the capture and the aggregator after it must still get every event
    dispatcher.attach_many("bomb", [CALL_START, CALL_STOP], bomb, config={"fuse": 1})
    capture = EventCapture(dispatcher=dispatcher).attach()
    aggregator = Aggregator()
    dispatcher.attach_many("aggregator", [CALL_STOP, CALL_EXCEPTION], aggregator.handle)

    def thread_body(t: int) -> None:
        for i in range(CALLS_PER_THREAD):
            emit_sync(emitter, plan("Thread", t, i))

    with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
        run_threads(thread_body)

    assert not inside.broken
    assert len(entered) == THREADS and set(entered.values()) == {1}, entered
    assert [h["id"] for h in dispatcher.list_handlers()].count("bomb") == 0

    failures = capture.handler_failures
    assert len(failures) == 1
    md = failures[0].metadata
    assert md["handler_id"] == "bomb"
    assert md["handler_config"] == {"fuse": 1}
    assert md["event_name"] == CALL_START
    assert md["kind"] == "error"
    assert isinstance(md["reason"], RuntimeError) and str(md["reason"]) == "bomb went off"
    detached_logs = [r for r in caplog.records if "has been detached" in r.getMessage()]
    assert len(detached_logs) == 1

    # dispatch went on: every call event reached the capture and the aggregator
    total = THREADS * CALLS_PER_THREAD
    n_failed = sum(plan("Thread", t, i)["fails"] for t in range(THREADS) for i in range(CALLS_PER_THREAD))
    names = Counter(e.name for e in capture.events)
    assert names == {CALL_START: total, CALL_STOP: total - n_failed, CALL_EXCEPTION: n_failed, HANDLER_FAILURE: 1}
    validate_stream(capture.events)
    assert aggregator.stats().calls == total
    assert aggregator.stats().errors == n_failed


def test_fake_client_durations_are_exact_under_threads_and_tasks(busy_switching: None) -> None:
    dispatcher = Dispatcher("stress-fake")
    capture = EventCapture(dispatcher=dispatcher).attach()
    aggregator = Aggregator()
    dispatcher.attach_many("aggregator", [CALL_STOP, CALL_EXCEPTION], aggregator.handle)
    clock = VirtualClock()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher), clock=clock)
    afake: AsyncFakeBamlClient = fake.as_async()

    per_thread = 100
    # Scripted outcomes, each with its own latency (in ms: 1..n). Which call takes which
    # outcome depends on the scheduling; each call must still take exactly its latency.
    for j in range(THREADS * per_thread):
        if j % 10 == 0:
            fake.fail("ThreadFn", faults.timeout(after=f"{j + 1}ms"))
        else:
            fake.respond("ThreadFn", {"n": j}, usage=Usage(j, 1), model="gpt-4o-mini", latency=f"{j + 1}ms")
    for j in range(TASKS):
        if j % 10 == 0:
            fake.fail("TaskFn", faults.rate_limited(after=f"{j + 1}ms"))
        else:
            fake.respond("TaskFn", {"n": j}, usage=Usage(j, 2), model="gpt-4o", latency=f"{j + 1}ms")

    def thread_body(t: int) -> None:
        for i in range(per_thread):
            try:
                fake.ThreadFn(thread=t, i=i)
            except Exception as exc:
                assert type(exc).__name__ == "BamlTimeoutError"

    async def task(i: int) -> None:
        try:
            await afake.TaskFn(i=i)
        except Exception as exc:
            assert type(exc).__name__ == "BamlClientHttpError" and exc.status_code == 429

    async def tasks() -> None:
        await asyncio.gather(*(task(i) for i in range(TASKS)))

    worker = threading.Thread(target=run_threads, args=(thread_body,))
    worker.start()
    asyncio.run(tasks())
    worker.join(timeout=60)
    assert not worker.is_alive()

    assert fake.unused() == []
    records = fake.calls
    total = THREADS * per_thread + TASKS
    assert len(records) == total
    assert len({r.span_context for r in records}) == total

    # each call lasted exactly its scripted latency: in the record and in its end event
    ends = {e.span_context: e for e in capture.events if e.name in (CALL_STOP, CALL_EXCEPTION)}
    assert len(ends) == total
    for r in records:
        assert r.outcome is not None
        latency = r.outcome.latency_ns
        assert r.duration_ns == latency
        end = ends[r.span_context]
        assert end.measurements["duration"] == latency
        assert (end.name == CALL_STOP) is (r.outcome.kind == "respond")
        if r.outcome.kind == "respond":
            assert end.metadata["result"] == r.outcome.result
            assert end.measurements["input_tokens"] == r.outcome.usage.input_tokens

    names = Counter(e.name for e in capture.events)
    n_fail = THREADS * per_thread // 10 + TASKS // 10
    assert names == {CALL_START: total, CALL_STOP: total - n_fail, CALL_EXCEPTION: n_fail}
    validate_stream(capture.events)

    # the aggregator saw exactly the scripted latencies and tokens
    stats = aggregator.stats()
    latencies = [(j + 1) * 1_000_000 for j in range(THREADS * per_thread)] + [(j + 1) * 1_000_000 for j in range(TASKS)]
    assert list(stats.sorted_durations()) == sorted(latencies)
    assert stats.errors == n_fail
    assert stats.input_tokens == sum(j for j in range(THREADS * per_thread) if j % 10) + sum(
        j for j in range(TASKS) if j % 10
    )
    assert aggregator.filtered(function="TaskFn").output_tokens == 2 * (TASKS - TASKS // 10)
    # the shared clock ended no earlier than the longest call
    assert clock.elapsed_ns >= max(latencies)
