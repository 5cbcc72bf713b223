"""The reference emitter: every call form, every outcome, every option."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import random
import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    Dispatcher,
    Emitter,
    StreamAbandoned,
    Usage,
    VirtualClock,
    validate_stream,
)
from pytest_baml_telemetry.emitter import AsyncStream, Call, SyncStream

MS = 1_000_000


class Events:
    """Every event of a dispatcher, as ``(event_name, measurements, metadata)`` triples."""

    def __init__(self, dispatcher: Dispatcher, names: Any) -> None:
        self.items: list[tuple[Any, Any, Any]] = []
        dispatcher.attach_many("events", list(names), self)

    def __call__(self, event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
        self.items.append((event_name, measurements, metadata))

    @property
    def kinds(self) -> list[str]:
        return [name[-1] for name, _, _ in self.items]

    def of(self, kind: str) -> list[tuple[Any, Any, Any]]:
        return [e for e in self.items if e[0][-1] == kind]

    def only(self, kind: str) -> tuple[Any, Any, Any]:
        found = self.of(kind)
        assert len(found) == 1, self.kinds
        return found[0]

    def validate(self) -> None:
        validate_stream(self.items)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def dispatcher() -> Dispatcher:
    return Dispatcher("emitter-test")


@pytest.fixture
def emitter(dispatcher: Dispatcher, clock: VirtualClock) -> Emitter:
    return Emitter(dispatcher=dispatcher, clock=clock)


@pytest.fixture
def events(dispatcher: Dispatcher, emitter: Emitter) -> Events:
    return Events(dispatcher, emitter.event_names)


# --------------------------------------------------------------------------- call(): sync and async


class TestCallSync:
    def test_success(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        resource = object()
        with emitter.call(
            "ExtractResume",
            arguments={"resume": "Ada"},
            resource=resource,
            action="extract",
            client_module="baml_client",
        ) as call:
            assert isinstance(call, Call)
            clock.advance("250ms")
            call.set_result({"name": "Ada"})
            call.set_usage(input_tokens=120, output_tokens=30, cached_input_tokens=20)
            call.set_model("gpt-4o-mini")
            call.set(provider="openai", client_name="GPT4oMini", num_attempts=1, request_id="req-1")
        assert events.kinds == ["start", "stop"]
        (sn, sm, smd), (pn, pm, pmd) = events.items
        assert sn == CALL_START and pn == CALL_STOP
        assert sm == {"system_time": 1_767_225_600_000_000_000, "monotonic_time": 1_000_000_000}
        assert smd == {
            "resource": resource,
            "action": "extract",
            "function_name": "ExtractResume",
            "arguments": {"resume": "Ada"},
            "client_module": "baml_client",
            "streaming": False,
            "telemetry_span_context": smd["telemetry_span_context"],
        }
        assert pm == {
            "duration": 250 * MS,
            "monotonic_time": 1_000_000_000 + 250 * MS,
            "input_tokens": 120,
            "output_tokens": 30,
            "total_tokens": 150,
            "cached_input_tokens": 20,
        }
        assert pmd == {
            "resource": resource,
            "action": "extract",
            "function_name": "ExtractResume",
            "client_module": "baml_client",
            "streaming": False,
            "model": "gpt-4o-mini",
            "result": {"name": "Ada"},
            "telemetry_span_context": smd["telemetry_span_context"],
            "provider": "openai",
            "client_name": "GPT4oMini",
            "num_attempts": 1,
            "request_id": "req-1",
        }
        events.validate()

    def test_defaults(self, emitter: Emitter, events: Events) -> None:
        with emitter.call("F"):
            pass
        (_, _, smd), (_, pm, pmd) = events.items
        assert smd["arguments"] == {} and smd["resource"] is None and smd["action"] is None
        assert smd["client_module"] is None and smd["streaming"] is False
        assert pm["duration"] == 0
        assert (pm["input_tokens"], pm["output_tokens"], pm["total_tokens"]) == (None, None, None)
        assert pmd["model"] is None and pmd["result"] is None
        events.validate()

    def test_arguments_are_copied(self, emitter: Emitter, events: Events) -> None:
        args = {"a": 1}
        with emitter.call("F", arguments=args):
            args["b"] = 2
        assert events.items[0][2]["arguments"] == {"a": 1}

    def test_unique_span_contexts(self, emitter: Emitter, events: Events) -> None:
        for _ in range(5):
            with emitter.call("F"):
                pass
        spans = [md["telemetry_span_context"] for _, _, md in events.of("start")]
        assert len(set(spans)) == 5
        events.validate()

    def test_exception_error(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        error = ValueError("boom")

        def fail() -> None:
            raise error

        with pytest.raises(ValueError) as info:
            with emitter.call("F", arguments={"x": 1}, action="act") as call:
                clock.advance("40ms")
                call.set_model("m")
                fail()
        assert info.value is error
        assert events.kinds == ["start", "exception"]
        name, m, md = events.items[1]
        assert name == CALL_EXCEPTION
        assert m == {
            "duration": 40 * MS, "monotonic_time": 1_000_000_000 + 40 * MS,
            "input_tokens": None, "output_tokens": None, "total_tokens": None, "cached_input_tokens": None,
        }
        assert md["kind"] == "error" and md["reason"] is error
        assert isinstance(md["stacktrace"], traceback.StackSummary)
        assert [f.name for f in md["stacktrace"]][-1] == "fail"
        assert md["action"] == "act" and md["function_name"] == "F" and md["streaming"] is False
        assert md["model"] == "m"
        assert "result" not in md
        events.validate()

    @pytest.mark.parametrize("exc_type", [KeyboardInterrupt, SystemExit, asyncio.CancelledError, GeneratorExit])
    def test_exit_kinds_propagate(self, emitter: Emitter, events: Events, exc_type: type) -> None:
        with pytest.raises(exc_type):
            with emitter.call("F"):
                raise exc_type()
        _, _, md = events.only("exception")
        assert md["kind"] == "exit" and isinstance(md["reason"], exc_type)
        events.validate()

    def test_handler_failure_does_not_break_the_call(self, dispatcher: Dispatcher, emitter: Emitter, events: Events) -> None:
        dispatcher.attach("bad", CALL_STOP, lambda *a: 1 / 0)
        with emitter.call("F") as call:
            call.set_result(3)
        assert events.kinds == ["start", "stop"]
        assert dispatcher.list_handlers(("ash_baml", "call", "stop")) == [
            h for h in dispatcher.list_handlers() if h["id"] == "events" and h["event_name"] == CALL_STOP
        ]

    def test_reusing_a_call_is_refused(self, emitter: Emitter, events: Events) -> None:
        call = emitter.call("F")
        with call:
            pass
        with pytest.raises(RuntimeError, match="already started"):
            with call:
                pass
        events.validate()

    def test_stop_without_start_is_refused(self, emitter: Emitter, events: Events) -> None:
        call = emitter.call("F")
        with pytest.raises(RuntimeError, match="never started"):
            call.stop()
        with pytest.raises(RuntimeError, match="never started"):
            call.exception(ValueError())
        assert events.items == []

    def test_manual_start_stop(self, emitter: Emitter, events: Events) -> None:
        call = emitter.call("F").start()
        call.set_result(1)
        call.stop()
        call.stop()  # once
        call.exception(ValueError())  # already ended: nothing
        assert events.kinds == ["start", "stop"]
        assert call.ended
        events.validate()

    def test_manual_exception_with_given_stack(self, emitter: Emitter, events: Events) -> None:
        call = emitter.call("F").start()
        stack = traceback.StackSummary.from_list([("f.py", 1, "g", "x")])
        call.exception(TimeoutError("late"), stack)
        _, _, md = events.only("exception")
        assert md["stacktrace"] is stack and md["kind"] == "error"

    def test_exception_never_raised_has_an_empty_stack(self, emitter: Emitter, events: Events) -> None:
        call = emitter.call("F").start()
        call.exception(TimeoutError("never raised"))
        _, _, md = events.only("exception")
        assert isinstance(md["stacktrace"], traceback.StackSummary) and len(md["stacktrace"]) == 0
        events.validate()


class TestCallAsync:
    @pytest.mark.asyncio
    async def test_success(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        async with emitter.call("F", arguments={"q": 1}) as call:
            await asyncio.sleep(0)
            clock.advance("5ms")
            call.set_result("r")
            call.set_usage(Usage(3, 4))
        (_, _, smd), (_, pm, pmd) = events.items
        assert smd["arguments"] == {"q": 1}
        assert pm["duration"] == 5 * MS and pm["total_tokens"] == 7
        assert pmd["result"] == "r"
        events.validate()

    @pytest.mark.asyncio
    async def test_error(self, emitter: Emitter, events: Events) -> None:
        with pytest.raises(LookupError):
            async with emitter.call("F"):
                raise LookupError("x")
        assert events.only("exception")[2]["kind"] == "error"

    @pytest.mark.asyncio
    async def test_cancellation(self, emitter: Emitter, events: Events) -> None:
        entered = asyncio.Event()

        async def body() -> None:
            async with emitter.call("Slow"):
                entered.set()
                await asyncio.sleep(30)

        task = asyncio.create_task(body())
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _, _, md = events.only("exception")
        assert md["kind"] == "exit" and isinstance(md["reason"], asyncio.CancelledError)
        events.validate()

    @pytest.mark.asyncio
    async def test_concurrent_calls_pair(self, emitter: Emitter, events: Events) -> None:
        async def one(i: int) -> None:
            async with emitter.call(f"F{i % 3}", arguments={"i": i}) as call:
                await asyncio.sleep(0)
                if i % 4 == 0:
                    raise ValueError(i)
                call.set_result(i)

        results = await asyncio.gather(*(one(i) for i in range(40)), return_exceptions=True)
        assert sum(isinstance(r, ValueError) for r in results) == 10
        assert events.kinds.count("start") == 40
        assert events.kinds.count("exception") == 10
        events.validate()


def test_threads_pair(emitter: Emitter, events: Events) -> None:
    def work(n: int) -> None:
        for i in range(100):
            try:
                with emitter.call(f"T{n}") as call:
                    if i % 5 == 0:
                        raise KeyError(i)
                    call.set_result(i)
            except KeyError:
                pass

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(events.items) == 800
    assert events.kinds.count("exception") == 80
    events.validate()


# --------------------------------------------------------------------------- wrap()


class TestWrap:
    def test_function(self, emitter: Emitter, events: Events) -> None:
        @emitter.wrap
        def ExtractResume(resume: str, *, strict: bool = False) -> dict[str, Any]:
            """Docstring."""
            return {"resume": resume, "strict": strict}

        assert ExtractResume.__name__ == "ExtractResume" and ExtractResume.__doc__ == "Docstring."
        assert ExtractResume("Ada", strict=True) == {"resume": "Ada", "strict": True}
        assert ExtractResume(resume="Bob") == {"resume": "Bob", "strict": False}
        starts = events.of("start")
        assert [md["arguments"] for _, _, md in starts] == [{"resume": "Ada", "strict": True}, {"resume": "Bob"}]
        assert starts[0][2]["function_name"] == "ExtractResume"
        assert starts[0][2]["client_module"] == __name__
        assert [md["result"] for _, _, md in events.of("stop")] == [
            {"resume": "Ada", "strict": True},
            {"resume": "Bob", "strict": False},
        ]
        events.validate()

    def test_positional_arguments_are_named(self, emitter: Emitter, events: Events) -> None:
        def f(a: int, b: int, *rest: int) -> int:
            return a + b + sum(rest)

        wrapped = emitter.wrap(f)
        assert wrapped(1, 2, 3, 4) == 10
        assert events.items[0][2]["arguments"] == {"a": 1, "b": 2, "rest": (3, 4)}

    def test_arguments_that_do_not_bind(self, emitter: Emitter, events: Events) -> None:
        wrapped = emitter.wrap(lambda a: a)
        with pytest.raises(TypeError):
            wrapped(1, 2, extra=3)
        assert events.items[0][2]["arguments"] == {"arg0": 1, "arg1": 2, "extra": 3}
        assert events.only("exception")[2]["kind"] == "error"
        events.validate()

    def test_builtin_without_signature(self, emitter: Emitter, events: Events) -> None:
        wrapped = emitter.wrap(max, function_name="Max")
        assert wrapped(3, 9) == 9
        assert events.items[0][2]["function_name"] == "Max"
        assert events.items[1][2]["result"] == 9

    def test_with_options(self, emitter: Emitter, events: Events) -> None:
        resource = object()

        @emitter.wrap(function_name="Classify", resource=resource, action="classify", client_module="baml_client")
        def classify(text: str) -> str:
            return "spam"

        assert classify("buy now") == "spam"
        _, _, md = events.items[0]
        assert (md["function_name"], md["resource"], md["action"], md["client_module"]) == (
            "Classify",
            resource,
            "classify",
            "baml_client",
        )

    def test_error(self, emitter: Emitter, events: Events) -> None:
        @emitter.wrap
        def broken() -> None:
            raise OSError("disk")

        with pytest.raises(OSError, match="disk"):
            broken()
        _, _, md = events.only("exception")
        assert md["kind"] == "error" and isinstance(md["reason"], OSError)
        assert md["stacktrace"][-1].name == "broken"

    @pytest.mark.asyncio
    async def test_coroutine(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        @emitter.wrap
        async def Summarize(text: str, limit: int = 10) -> str:
            await asyncio.sleep(0)
            clock.advance("30ms")
            return text[:limit]

        assert inspect.iscoroutinefunction(Summarize)
        assert await Summarize("hello world", 5) == "hello"
        (_, _, smd), (_, pm, pmd) = events.items
        assert smd["arguments"] == {"text": "hello world", "limit": 5}
        assert pm["duration"] == 30 * MS and pmd["result"] == "hello"
        events.validate()

    @pytest.mark.asyncio
    async def test_coroutine_error_and_cancel(self, emitter: Emitter, events: Events) -> None:
        @emitter.wrap
        async def fails() -> None:
            raise ValueError("nope")

        @emitter.wrap
        async def hangs() -> None:
            await asyncio.sleep(30)

        with pytest.raises(ValueError):
            await fails()
        task = asyncio.ensure_future(hangs())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        kinds = [md["kind"] for _, _, md in events.of("exception")]
        assert kinds == ["error", "exit"]
        events.validate()

    def test_bad_targets(self, emitter: Emitter) -> None:
        with pytest.raises(TypeError, match="42"):
            emitter.wrap(42)
        with pytest.raises(TypeError, match="function_name="):
            emitter.wrap(lambda: None, function_name="")


# --------------------------------------------------------------------------- streams


class FakeSyncStream:
    """A baml-py-like sync stream: iterate partials, then get_final_response()."""

    def __init__(self, clock: VirtualClock, partials: list[Any], final: Any, *, fail_at: int | None = None, final_error: BaseException | None = None) -> None:
        self.clock = clock
        self.partials = partials
        self.final = final
        self.fail_at = fail_at
        self.final_error = final_error
        self.closed = False
        self.custom_attribute = "passed through"

    def __iter__(self) -> Iterator[Any]:
        for i, p in enumerate(self.partials):
            self.clock.advance("100ms")
            if self.fail_at == i:
                raise ConnectionError(f"dropped at chunk {i}")
            yield p

    def get_final_response(self) -> Any:
        self.clock.advance("50ms")
        if self.final_error is not None:
            raise self.final_error
        return self.final

    def close(self) -> None:
        self.closed = True


class FakeAsyncStream:
    def __init__(self, clock: VirtualClock, partials: list[Any], final: Any, *, fail_at: int | None = None, final_error: BaseException | None = None) -> None:
        self.clock = clock
        self.partials = partials
        self.final = final
        self.fail_at = fail_at
        self.final_error = final_error
        self.closed = False

    async def __aiter__(self) -> Any:
        for i, p in enumerate(self.partials):
            await asyncio.sleep(0)
            self.clock.advance("100ms")
            if self.fail_at == i:
                raise ConnectionError(f"dropped at chunk {i}")
            yield p

    async def get_final_response(self) -> Any:
        self.clock.advance("50ms")
        if self.final_error is not None:
            raise self.final_error
        return self.final

    async def aclose(self) -> None:
        self.closed = True


def set_usage(call: Call, error: BaseException | None) -> None:
    if error is None:
        call.set_usage(10, 20)
        call.set_model("gpt-4o")


class TestSyncStream:
    def test_completed(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        raw = FakeSyncStream(clock, ["A", "Ad", "Ada"], {"name": "Ada"})
        stream = emitter.stream(raw, "StreamResume", arguments={"resume": "x"}, before_end=set_usage)
        assert isinstance(stream, SyncStream)
        assert events.kinds == ["start"]  # at creation
        assert events.items[0][2]["streaming"] is True
        clock.advance("20ms")
        assert list(stream) == ["A", "Ad", "Ada"]
        assert events.kinds == ["start", "stop"]  # the loop completing reads the final response
        assert stream.get_final_response() == {"name": "Ada"}
        assert events.kinds == ["start", "stop"]
        _, m, md = events.only("stop")
        assert m["time_to_first_chunk"] == 120 * MS
        assert m["duration"] == (20 + 300 + 50) * MS
        assert (m["input_tokens"], m["output_tokens"], m["total_tokens"]) == (10, 20, 30)
        assert md["result"] == {"name": "Ada"} and md["streaming"] is True and md["model"] == "gpt-4o"
        assert stream.custom_attribute == "passed through"
        assert stream.call.ended
        events.validate()

    def test_final_response_without_iterating(self, emitter: Emitter, events: Events) -> None:
        stream = emitter.stream(FakeSyncStream(VirtualClock(), ["a"], "done"), "F")
        assert stream.get_final_response() == "done"
        assert stream.get_final_response() == "done"
        _, m, _ = events.only("stop")
        assert m["time_to_first_chunk"] is None  # no chunk was seen
        events.validate()

    def test_break_then_final_response_is_not_abandoned(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeSyncStream(clock, ["a", "b", "c"], "abc"), "F")
        for _partial in stream:
            break
        assert events.kinds == ["start"]
        assert stream.get_final_response() == "abc"
        assert events.kinds == ["start", "stop"]
        del stream
        gc.collect()
        assert events.kinds == ["start", "stop"]

    def test_failing_iteration(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeSyncStream(clock, ["a", "b"], "ab", fail_at=1), "F", before_end=set_usage)
        seen = []
        with pytest.raises(ConnectionError, match="chunk 1") as info:
            for p in stream:
                seen.append(p)
        assert seen == ["a"]
        _, m, md = events.only("exception")
        assert md["kind"] == "error" and md["reason"] is info.value and md["streaming"] is True
        assert m["duration"] == 200 * MS
        with pytest.raises(ConnectionError):
            stream.get_final_response()
        assert events.kinds == ["start", "exception"]
        events.validate()

    def test_failing_final_response(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        error = TimeoutError("final")
        stream = emitter.stream(FakeSyncStream(clock, ["a"], None, final_error=error), "F")
        assert list(stream) == ["a"]  # iteration itself does not raise, like baml-py
        _, _, md = events.only("exception")
        assert md["reason"] is error and md["kind"] == "error"
        with pytest.raises(TimeoutError):
            stream.get_final_response()
        events.validate()

    def test_interrupt_while_iterating(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeSyncStream(clock, ["a"], None, final_error=KeyboardInterrupt()), "F")
        with pytest.raises(KeyboardInterrupt):
            stream.get_final_response()
        assert events.only("exception")[2]["kind"] == "exit"

    def test_closed(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        raw = FakeSyncStream(clock, ["a", "b"], "ab")
        stream = emitter.stream(raw, "F")
        it = iter(stream)
        assert next(it) == "a"
        stream.close()
        assert raw.closed
        _, m, md = events.only("exception")
        assert md["kind"] == "exit"
        assert isinstance(md["reason"], StreamAbandoned)
        assert md["reason"].function_name == "F"
        assert "closed before its final response" in str(md["reason"])
        assert m["duration"] == 100 * MS
        stream.close()
        del it, stream
        gc.collect()
        assert events.kinds == ["start", "exception"]  # once
        events.validate()

    def test_dropped(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeSyncStream(clock, ["a", "b"], "ab"), "Dropped")
        for _partial in stream:
            break
        del stream
        gc.collect()
        _, _, md = events.only("exception")
        assert md["kind"] == "exit" and isinstance(md["reason"], StreamAbandoned)
        assert "dropped before its final response" in str(md["reason"])
        events.validate()

    def test_dropped_without_iterating(self, emitter: Emitter, events: Events) -> None:
        emitter.stream(FakeSyncStream(VirtualClock(), [], None), "Never")
        gc.collect()
        assert events.kinds == ["start", "exception"]
        events.validate()

    def test_not_a_stream(self, emitter: Emitter, events: Events) -> None:
        with pytest.raises(TypeError, match="42"):
            emitter.stream(42, "F")
        assert events.items == []


class TestAsyncStream:
    @pytest.mark.asyncio
    async def test_completed(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeAsyncStream(clock, ["x", "xy"], "xyz"), "AsyncF", before_end=set_usage)
        assert isinstance(stream, AsyncStream)
        assert events.kinds == ["start"]
        clock.advance("10ms")
        assert [p async for p in stream] == ["x", "xy"]
        assert await stream.get_final_response() == "xyz"
        _, m, md = events.only("stop")
        assert m["time_to_first_chunk"] == 110 * MS and m["duration"] == 260 * MS
        assert m["total_tokens"] == 30 and md["result"] == "xyz" and md["streaming"] is True
        events.validate()

    @pytest.mark.asyncio
    async def test_final_response_only(self, emitter: Emitter, events: Events) -> None:
        stream = emitter.stream(FakeAsyncStream(VirtualClock(), [], "z"), "F")
        assert await stream.get_final_response() == "z"
        assert await stream.get_final_response() == "z"
        assert events.kinds == ["start", "stop"]

    @pytest.mark.asyncio
    async def test_failing(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeAsyncStream(clock, ["a", "b"], "ab", fail_at=0), "F")
        with pytest.raises(ConnectionError):
            async for _ in stream:
                pass
        _, _, md = events.only("exception")
        assert md["kind"] == "error" and isinstance(md["reason"], ConnectionError)
        with pytest.raises(ConnectionError):
            await stream.get_final_response()
        events.validate()

    @pytest.mark.asyncio
    async def test_failing_final(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeAsyncStream(clock, ["a"], None, final_error=ValueError("parse")), "F")
        with pytest.raises(ValueError, match="parse"):
            await stream.get_final_response()
        assert events.only("exception")[2]["kind"] == "error"

    @pytest.mark.asyncio
    async def test_cancelled_while_awaiting_final(self, emitter: Emitter, events: Events) -> None:
        class Hanging(FakeAsyncStream):
            async def get_final_response(self) -> Any:
                await asyncio.sleep(30)

        stream = emitter.stream(Hanging(VirtualClock(), [], None), "F")
        task = asyncio.ensure_future(stream.get_final_response())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        _, _, md = events.only("exception")
        assert md["kind"] == "exit" and isinstance(md["reason"], asyncio.CancelledError)
        events.validate()

    @pytest.mark.asyncio
    async def test_aclose(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        raw = FakeAsyncStream(clock, ["a", "b"], "ab")
        stream = emitter.stream(raw, "F")
        await stream.aclose()
        assert raw.closed
        _, _, md = events.only("exception")
        assert md["kind"] == "exit" and isinstance(md["reason"], StreamAbandoned)
        await stream.aclose()
        stream.close()
        assert events.kinds == ["start", "exception"]
        events.validate()

    @pytest.mark.asyncio
    async def test_sync_close(self, emitter: Emitter, events: Events) -> None:
        stream = emitter.stream(FakeAsyncStream(VirtualClock(), ["a"], "a"), "F")
        stream.close()
        assert isinstance(events.only("exception")[2]["reason"], StreamAbandoned)

    @pytest.mark.asyncio
    async def test_dropped(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        stream = emitter.stream(FakeAsyncStream(clock, ["a", "b"], "ab"), "F")
        async for _ in stream:
            break
        del stream
        for _ in range(3):  # the event loop finalizes the abandoned async generator
            await asyncio.sleep(0)
            gc.collect()
        _, _, md = events.only("exception")
        assert md["kind"] == "exit" and isinstance(md["reason"], StreamAbandoned)
        assert "dropped" in str(md["reason"])
        events.validate()

    @pytest.mark.asyncio
    async def test_dropped_without_iterating(self, emitter: Emitter, events: Events) -> None:
        emitter.stream(FakeAsyncStream(VirtualClock(), ["a"], "a"), "F")
        gc.collect()
        assert events.kinds == ["start", "exception"]
        events.validate()

    def test_detected_by_async_final_response(self, emitter: Emitter, events: Events) -> None:
        class OnlyFinal:
            async def get_final_response(self) -> str:
                return "f"

        stream = emitter.stream(OnlyFinal(), "F")
        assert isinstance(stream, AsyncStream)
        assert asyncio.run(stream.get_final_response()) == "f"
        assert events.kinds == ["start", "stop"]


# --------------------------------------------------------------------------- options


def test_prefix(dispatcher: Dispatcher, clock: VirtualClock) -> None:
    emitter = Emitter(("my_app", "llm"), dispatcher=dispatcher, clock=clock)
    assert emitter.event_names == (
        ("my_app", "llm", "call", "start"),
        ("my_app", "llm", "call", "stop"),
        ("my_app", "llm", "call", "exception"),
    )
    events = Events(dispatcher, emitter.event_names)
    default = Events.__new__(Events)
    default.items = []
    dispatcher.attach_many("default", [CALL_START, CALL_STOP, CALL_EXCEPTION], default)
    with emitter.call("F"):
        pass
    with pytest.raises(ValueError):
        with emitter.call("G"):
            raise ValueError
    assert [n for n, _, _ in events.items] == [
        ("my_app", "llm", "call", "start"),
        ("my_app", "llm", "call", "stop"),
        ("my_app", "llm", "call", "start"),
        ("my_app", "llm", "call", "exception"),
    ]
    assert default.items == []
    events.validate()
    assert Emitter(["list", "prefix"], dispatcher=dispatcher).prefix == ("list", "prefix")


def test_default_dispatcher_and_prefix() -> None:
    from pytest_baml_telemetry.dispatcher import default_dispatcher

    emitter = Emitter()
    assert emitter.dispatcher is default_dispatcher
    assert emitter.event_names == (CALL_START, CALL_STOP, CALL_EXCEPTION)


def test_disabled(dispatcher: Dispatcher, clock: VirtualClock) -> None:
    emitter = Emitter(dispatcher=dispatcher, clock=clock, enabled=False)
    events = Events(dispatcher, emitter.event_names)
    with emitter.call("F") as call:
        call.set_result(1)
        call.set_usage(1, 2)
    with pytest.raises(KeyError):
        with emitter.call("F"):
            raise KeyError
    assert emitter.wrap(lambda: 5)() == 5
    stream = emitter.stream(FakeSyncStream(clock, ["a"], "a"), "S")
    assert list(stream) == ["a"] and stream.get_final_response() == "a"
    emitter.stream(FakeSyncStream(clock, ["a"], "a"), "Dropped")
    gc.collect()
    assert events.items == []
    # re-enabled: the next call emits
    emitter.enabled = True
    with emitter.call("F"):
        pass
    assert events.kinds == ["start", "stop"]


@pytest.mark.parametrize(
    ("chosen", "expected"),
    [
        (("start", "stop", "exception"), ["start", "stop", "start", "exception"]),
        (("stop",), ["stop"]),
        (["exception"], ["exception"]),
        (("start",), ["start", "start"]),
        ((), []),
        (("stop", "exception"), ["stop", "exception"]),
    ],
)
def test_events_filter(dispatcher: Dispatcher, clock: VirtualClock, chosen: Any, expected: list[str]) -> None:
    emitter = Emitter(dispatcher=dispatcher, clock=clock, events=chosen)
    assert emitter.events == frozenset(chosen)
    events = Events(dispatcher, emitter.event_names)
    with emitter.call("F"):
        pass
    with pytest.raises(ValueError):
        with emitter.call("F"):
            raise ValueError
    assert events.kinds == expected


class ScriptedRng:
    def __init__(self, values: list[float]) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.values.pop(0)


class TestSampling:
    def test_decided_once_per_call(self, dispatcher: Dispatcher, clock: VirtualClock) -> None:
        rng = ScriptedRng([0.1, 0.9, 0.49, 0.5, 0.0])
        emitter = Emitter(dispatcher=dispatcher, clock=clock, sample_rate=0.5, rng=rng)
        events = Events(dispatcher, emitter.event_names)
        for i in range(4):
            try:
                with emitter.call(f"F{i}"):
                    if i % 2:
                        raise ValueError
            except ValueError:
                pass
        assert rng.calls == 4  # once per call, not per event
        assert [(md["function_name"], n[-1]) for n, _, md in events.items] == [
            ("F0", "start"),
            ("F0", "stop"),
            ("F2", "start"),
            ("F2", "stop"),
        ]
        stream = emitter.stream(FakeSyncStream(clock, ["a"], "a"), "S")  # rng 0.0: sampled
        list(stream)
        assert rng.calls == 5
        assert events.kinds[-2:] == ["start", "stop"]
        events.validate()

    def test_unsampled_stream_emits_nothing_at_all(self, dispatcher: Dispatcher, clock: VirtualClock) -> None:
        emitter = Emitter(dispatcher=dispatcher, clock=clock, sample_rate=0.5, rng=ScriptedRng([0.7]))
        events = Events(dispatcher, emitter.event_names)
        stream = emitter.stream(FakeSyncStream(clock, ["a"], "a"), "S")
        stream.close()
        del stream
        gc.collect()
        assert events.items == []

    @pytest.mark.parametrize(("rate", "emitted"), [(0.0, False), (0, False), (1.0, True), (1, True)])
    def test_bounds_do_not_consult_the_rng(self, dispatcher: Dispatcher, rate: float, emitted: bool) -> None:
        rng = ScriptedRng([])
        emitter = Emitter(dispatcher=dispatcher, sample_rate=rate, rng=rng)
        events = Events(dispatcher, emitter.event_names)
        with emitter.call("F"):
            pass
        assert rng.calls == 0
        assert len(events.items) == (2 if emitted else 0)

    def test_random_instance_and_statistics(self, dispatcher: Dispatcher) -> None:
        emitter = Emitter(dispatcher=dispatcher, sample_rate=0.25, rng=random.Random(1234))
        events = Events(dispatcher, emitter.event_names)
        for _ in range(2000):
            with emitter.call("F"):
                pass
        starts = events.kinds.count("start")
        assert events.kinds.count("stop") == starts
        assert 400 < starts < 600
        events.validate()


class TestRedact:
    def test_arguments_and_result(self, dispatcher: Dispatcher, clock: VirtualClock) -> None:
        seen: list[tuple[str, Any]] = []

        def redact(key: str, value: Any) -> Any:
            seen.append((key, value))
            if key == "arguments":
                return {k: ("***" if k == "api_key" else v) for k, v in value.items()}
            return "<result>"

        emitter = Emitter(dispatcher=dispatcher, clock=clock, redact=redact)
        events = Events(dispatcher, emitter.event_names)
        args = {"api_key": "sk-secret", "q": "hi"}
        with emitter.call("F", arguments=args) as call:
            call.set_result({"secret": "answer"})
        assert args == {"api_key": "sk-secret", "q": "hi"}  # the caller's dict is untouched
        assert events.items[0][2]["arguments"] == {"api_key": "***", "q": "hi"}
        assert events.items[1][2]["result"] == "<result>"
        assert seen == [("arguments", {"api_key": "sk-secret", "q": "hi"}), ("result", {"secret": "answer"})]
        assert "sk-secret" not in repr(events.items) and "answer" not in repr(events.items)

    def test_exception_events_have_no_result_to_redact(self, dispatcher: Dispatcher) -> None:
        keys: list[str] = []
        emitter = Emitter(dispatcher=dispatcher, redact=lambda k, v: keys.append(k) or v)
        dispatcher.attach_many("listener", list(emitter.event_names), lambda *a: None)
        with pytest.raises(ValueError):
            with emitter.call("F"):
                raise ValueError
        assert keys == ["arguments"]

    def test_nothing_is_built_or_redacted_when_nobody_listens(self, dispatcher: Dispatcher) -> None:
        keys: list[str] = []
        emitter = Emitter(dispatcher=dispatcher, redact=lambda k, v: keys.append(k) or v)
        with emitter.call("F", arguments={"a": 1}) as call:
            call.set_result("r")
        assert keys == []

    def test_wrap_and_stream_are_redacted(self, dispatcher: Dispatcher, clock: VirtualClock) -> None:
        emitter = Emitter(
            dispatcher=dispatcher, clock=clock, redact=lambda k, v: {"redacted": k} if k == "arguments" else f"<{k}>"
        )
        events = Events(dispatcher, emitter.event_names)
        emitter.wrap(lambda secret: secret.upper())("pw")
        list(emitter.stream(FakeSyncStream(clock, ["s"], "secret"), "S", arguments={"pw": 1}))
        assert [md.get("arguments", md.get("result")) for _, _, md in events.items] == [
            {"redacted": "arguments"},
            "<result>",
            {"redacted": "arguments"},
            "<result>",
        ]
        events.validate()

    def test_arguments_stay_a_mapping(self, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture) -> None:
        emitter = Emitter(dispatcher=dispatcher, redact=lambda k, v: "***")
        events = Events(dispatcher, emitter.event_names)
        with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
            with emitter.call("F", arguments={"pw": "hunter2"}) as call:
                call.set_result("ok")
        assert events.items[0][2]["arguments"] == {
            "<redacted>": "<redaction failed: redact returned a str, expected a mapping>"
        }
        assert events.items[1][2]["result"] == "***"  # any value is fine for the result
        assert "not a mapping" in caplog.text and "hunter2" not in caplog.text
        events.validate()

    def test_failing_redactor_never_leaks(self, dispatcher: Dispatcher, caplog: pytest.LogCaptureFixture) -> None:
        def redact(key: str, value: Any) -> Any:
            raise RuntimeError("redactor bug")

        emitter = Emitter(dispatcher=dispatcher, redact=redact)
        events = Events(dispatcher, emitter.event_names)
        with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
            with emitter.call("F", arguments={"pw": "hunter2"}) as call:
                call.set_result("hunter2")
        assert events.items[0][2]["arguments"] == {"<redacted>": "<redaction failed: RuntimeError>"}
        assert events.items[1][2]["result"] == "<redaction failed: RuntimeError>"
        assert "hunter2" not in caplog.text and "hunter2" not in repr(events.items)
        assert "redact('arguments'" in caplog.text
        events.validate()


def test_clock_injection(dispatcher: Dispatcher) -> None:
    class Fixed:
        def __init__(self) -> None:
            self.mono = 500

        def time_ns(self) -> int:
            return 42

        def monotonic_ns(self) -> int:
            self.mono += 7
            return self.mono

    emitter = Emitter(dispatcher=dispatcher, clock=Fixed())
    events = Events(dispatcher, emitter.event_names)
    with emitter.call("F"):
        pass
    (_, sm, _), (_, pm, _) = events.items
    assert sm == {"system_time": 42, "monotonic_time": 507}
    assert pm["monotonic_time"] == 514 and pm["duration"] == 7


class TestPerCallClock:
    """``clock=`` on call() and stream() times that one call; the emitter's clock is untouched."""

    def test_call_uses_its_clock(self, emitter: Emitter, events: Events, clock: VirtualClock) -> None:
        own = VirtualClock(start_time=10_000, start_monotonic=5_000)
        with emitter.call("F", clock=own):
            own.advance_ns(300)
            clock.advance_ns(99)  # the emitter's clock does not time this call
        (_, sm, _), (_, pm, _) = events.items
        assert sm == {"system_time": 10_000, "monotonic_time": 5_000}
        assert pm["monotonic_time"] == 5_300 and pm["duration"] == 300
        assert emitter.clock is clock
        with emitter.call("G"):
            clock.advance_ns(4)
        assert events.items[-1][1]["duration"] == 4  # later calls use the emitter's clock again

    def test_exception_uses_its_clock(self, emitter: Emitter, events: Events) -> None:
        own = VirtualClock(start_monotonic=0)
        with pytest.raises(ValueError), emitter.call("F", clock=own):
            own.advance_ns(25)
            raise ValueError("boom")
        _, m, _ = events.only("exception")
        assert m == {"duration": 25, "monotonic_time": 25, "input_tokens": None, "output_tokens": None, "total_tokens": None, "cached_input_tokens": None}

    def test_stream_uses_its_clock(self, emitter: Emitter, events: Events) -> None:
        own = VirtualClock(start_monotonic=0)
        stream = emitter.stream(FakeSyncStream(own, ["a", "b"], "ab"), "S", clock=own)
        assert list(stream) == ["a", "b"]
        _, m, _ = events.only("stop")
        assert m["time_to_first_chunk"] == 100 * MS
        assert m["duration"] == (100 + 100 + 50) * MS

    @pytest.mark.asyncio
    async def test_async_call_uses_its_clock(self, emitter: Emitter, events: Events) -> None:
        own = VirtualClock(start_monotonic=0)
        async with emitter.call("F", clock=own):
            own.advance_ns(8)
        assert events.only("stop")[1]["duration"] == 8

    def test_bad_clock(self, emitter: Emitter) -> None:
        with pytest.raises(TypeError, match=r"F: clock=<object object at .*>: expected an object with time_ns\(\) and monotonic_ns\(\)"):
            emitter.call("F", clock=object())  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^F: clock=1: expected an object"):
            emitter.stream(FakeSyncStream(VirtualClock(), [], None), "F", clock=1)  # type: ignore[arg-type]
        assert emitter.clock is not None


class TestTokens:
    def test_unknown_is_none_never_zero(self, emitter: Emitter, events: Events) -> None:
        with emitter.call("F"):
            pass
        with emitter.call("F") as call:
            call.set_usage(input_tokens=5)
        with emitter.call("F") as call:
            call.set_usage(output_tokens=0)
        with emitter.call("F") as call:
            call.set_usage(0, 0)
        stops = [m for _, m, _ in events.of("stop")]
        assert [(m["input_tokens"], m["output_tokens"], m["total_tokens"]) for m in stops] == [
            (None, None, None),
            (5, None, None),
            (None, 0, None),
            (0, 0, 0),
        ]
        assert all(m["cached_input_tokens"] is None for m in stops)
        events.validate()

    def test_usage_object(self, emitter: Emitter, events: Events) -> None:
        with emitter.call("F") as call:
            call.set_usage(Usage(input_tokens=7, output_tokens=3, cached_input_tokens=2))
        _, m, _ = events.only("stop")
        assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (7, 3, 10, 2)

    @pytest.mark.parametrize(
        ("kwargs", "exc", "shown"),
        [
            ({"input_tokens": -1}, ValueError, "input_tokens=-1"),
            ({"output_tokens": 2.5}, TypeError, "output_tokens=2.5"),
            ({"cached_input_tokens": True}, TypeError, "cached_input_tokens=True"),
            ({"input_tokens": "12"}, TypeError, "input_tokens='12'"),
        ],
    )
    def test_bad_usage(self, emitter: Emitter, kwargs: dict[str, Any], exc: type, shown: str) -> None:
        with emitter.call("F") as call:
            with pytest.raises(exc, match=shown.replace("(", r"\(")):
                call.set_usage(**kwargs)


class TestCallSetters:
    def test_set_merges_and_keeps_the_span(self, emitter: Emitter, events: Events) -> None:
        with emitter.call("F") as call:
            call.set(provider="openai")
            call.set(num_attempts=2, provider="anthropic")
        _, _, md = events.only("stop")
        assert md["provider"] == "anthropic" and md["num_attempts"] == 2
        assert md["telemetry_span_context"] == events.items[0][2]["telemetry_span_context"]
        events.validate()

    def test_set_extra_on_exception(self, emitter: Emitter, events: Events) -> None:
        with pytest.raises(ValueError):
            with emitter.call("F") as call:
                call.set(provider="openai", request_id="r1")
                raise ValueError
        _, _, md = events.only("exception")
        assert md["provider"] == "openai" and md["request_id"] == "r1"

    @pytest.mark.parametrize(
        "key", ["function_name", "streaming", "telemetry_span_context", "kind", "reason", "stacktrace", "result", "resource", "action", "client_module", "arguments"]
    )
    def test_set_refuses_keys_the_emitter_owns(self, emitter: Emitter, events: Events, key: str) -> None:
        with emitter.call("F") as call:
            with pytest.raises(ValueError, match=repr(key)):
                call.set(**{key: "x"})
        events.validate()

    def test_set_model_through_set(self, emitter: Emitter, events: Events) -> None:
        with emitter.call("F") as call:
            call.set(model="gpt-4o")
            with pytest.raises(TypeError, match="set_model"):
                call.set(model=4)
        assert events.only("stop")[2]["model"] == "gpt-4o"

    def test_set_model_type(self, emitter: Emitter) -> None:
        with emitter.call("F") as call:
            with pytest.raises(TypeError, match=r"set_model\(4\)"):
                call.set_model(4)  # type: ignore[arg-type]
            call.set_model(None)

    def test_repr(self, emitter: Emitter, events: Events) -> None:
        call = emitter.call("F")
        assert repr(call) == "<Call F open span=None>"
        with call:
            pass
        assert repr(call).startswith("<Call F ended span=")


# --------------------------------------------------------------------------- bad input


class TestBadInput:
    @pytest.mark.parametrize(("rate", "exc"), [(1.5, ValueError), (-0.1, ValueError), (float("nan"), ValueError), ("0.5", TypeError), (True, TypeError), (None, TypeError), ([0.5], TypeError)])
    def test_sample_rate(self, rate: Any, exc: type) -> None:
        with pytest.raises(exc) as info:
            Emitter(sample_rate=rate)
        assert f"sample_rate={rate!r}" in str(info.value) and "between 0.0 and 1.0" in str(info.value)

    @pytest.mark.parametrize(
        ("chosen", "exc", "shown"),
        [
            (("start", "finish"), ValueError, "'finish'"),
            (["Stop"], ValueError, "'Stop'"),
            (("start", None), ValueError, "None"),
            ("start", TypeError, "events='start'"),
            (None, TypeError, "events=None"),
            (3, TypeError, "events=3"),
        ],
    )
    def test_events(self, chosen: Any, exc: type, shown: str) -> None:
        with pytest.raises(exc) as info:
            Emitter(events=chosen)
        assert shown in str(info.value)

    @pytest.mark.parametrize(
        ("prefix", "exc", "shown"),
        [("ash_baml", TypeError, "'ash_baml'"), ((), ValueError, "()"), (("a", 1), TypeError, "1"), (None, TypeError, "None"), (("a", ""), ValueError, "('a', '')")],
    )
    def test_prefix(self, prefix: Any, exc: type, shown: str) -> None:
        with pytest.raises(exc) as info:
            Emitter(prefix)
        assert shown in str(info.value) and "emitter prefix" in str(info.value)

    @pytest.mark.parametrize("enabled", ["false", 0, None])
    def test_enabled(self, enabled: Any) -> None:
        with pytest.raises(TypeError, match=f"enabled={enabled!r}"):
            Emitter(enabled=enabled)

    def test_stream_arguments(self, dispatcher: Dispatcher) -> None:
        rng = ScriptedRng([0.1])
        emitter = Emitter(dispatcher=dispatcher, sample_rate=0.5, rng=rng)
        events = Events(dispatcher, emitter.event_names)
        with pytest.raises(TypeError, match="before_end='usage'"):
            emitter.stream(FakeSyncStream(VirtualClock(), [], None), "F", before_end="usage")
        with pytest.raises(TypeError, match=r"Emitter.stream\(1.5\)"):
            emitter.stream(1.5, "F")
        with pytest.raises(TypeError, match="function_name=''"):
            emitter.stream(FakeSyncStream(VirtualClock(), [], None), "")
        assert rng.calls == 0 and events.items == []

    def test_clock_rng_redact_dispatcher(self) -> None:
        with pytest.raises(TypeError, match=r"clock=<object object.*time_ns\(\) and monotonic_ns\(\)"):
            Emitter(clock=object())
        with pytest.raises(TypeError, match="clock='system'"):
            Emitter(clock="system")
        with pytest.raises(TypeError, match="rng=5"):
            Emitter(rng=5)
        with pytest.raises(TypeError, match="redact='\\*\\*\\*'"):
            Emitter(redact="***")
        with pytest.raises(TypeError, match="dispatcher='default'"):
            Emitter(dispatcher="default")  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("kwargs", "shown"),
        [
            ({"function_name": ""}, "function_name=''"),
            ({"function_name": None}, "function_name=None"),
            ({"function_name": "F", "arguments": [1, 2]}, "arguments=[1, 2]"),
            ({"function_name": "F", "action": 3}, "action=3"),
            ({"function_name": "F", "client_module": object}, "client_module=<class 'object'>"),
        ],
    )
    def test_call_arguments(self, emitter: Emitter, events: Events, kwargs: dict[str, Any], shown: str) -> None:
        name = kwargs.pop("function_name")
        with pytest.raises(TypeError) as info:
            emitter.call(name, **kwargs)
        assert shown in str(info.value)
        assert events.items == []

    def test_repr(self) -> None:
        assert repr(Emitter(events=("stop",), sample_rate=0.5)) == (
            "Emitter(prefix=('ash_baml',), enabled=True, events=['stop'], sample_rate=0.5)"
        )


class TestBeforeEnd:
    def test_failing_before_end_is_logged_and_the_call_ends(
        self, emitter: Emitter, events: Events, caplog: pytest.LogCaptureFixture
    ) -> None:
        def broken(call: Call, error: BaseException | None) -> None:
            raise KeyError("usage")

        with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
            stream = emitter.stream(FakeSyncStream(VirtualClock(), ["a"], "a"), "F", before_end=broken)
            assert stream.get_final_response() == "a"
        assert events.kinds == ["start", "stop"]
        assert "reading usage for F failed" in caplog.text
        events.validate()

    def test_interrupt_in_before_end_still_pairs(self, emitter: Emitter, events: Events) -> None:
        def interrupted(call: Call, error: BaseException | None) -> None:
            call.set_usage(1, 1)
            raise KeyboardInterrupt

        stream = emitter.stream(FakeSyncStream(VirtualClock(), ["a"], "a"), "F", before_end=interrupted)
        with pytest.raises(KeyboardInterrupt):
            stream.get_final_response()
        assert events.kinds == ["start", "stop"]
        assert events.only("stop")[1]["total_tokens"] == 2
        del stream
        gc.collect()
        assert events.kinds == ["start", "stop"]
        events.validate()

    def test_before_end_sees_the_error(self, emitter: Emitter, events: Events) -> None:
        seen: list[Any] = []
        stream = emitter.stream(
            FakeSyncStream(VirtualClock(), ["a"], None, final_error=ValueError("v")),
            "F",
            before_end=lambda call, error: seen.append(error),
        )
        with pytest.raises(ValueError):
            stream.get_final_response()
        assert len(seen) == 1 and isinstance(seen[0], ValueError)
        assert events.only("exception")[2]["reason"] is seen[0]
