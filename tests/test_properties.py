"""Property tests: whatever happens to the calls, the emitted stream keeps the contract; and
the contract validator rejects every single mutation of a valid event."""

from __future__ import annotations

import asyncio
import gc
import random
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry import (
    ContractViolation,
    Dispatcher,
    Emitter,
    StreamAbandoned,
    Usage,
    VirtualClock,
    validate_event,
    validate_stream,
)
from pytest_baml_telemetry.contract import EVENT_SPECS, HANDLER_FAILURE, KINDS

# --------------------------------------------------------------------------- call outcomes

OUTCOMES = [
    "ok",  # returns; usage may be unknown, partial or full
    "error",  # raises an Exception
    "base",  # raises a BaseException that is not an Exception
    "cancel",  # cancelled (async: a real task.cancel(); sync: CancelledError raised)
    "stream_ok",
    "stream_closed",
    "stream_dropped",
    "stream_fails_iterating",
    "stream_fails_final",
]

# what each outcome must end with: ("stop", None) or ("exception", kind)
EXPECTED_END = {
    "ok": ("stop", None),
    "error": ("exception", "error"),
    "base": ("exception", "exit"),
    "cancel": ("exception", "exit"),
    "stream_ok": ("stop", None),
    "stream_closed": ("exception", "exit"),
    "stream_dropped": ("exception", "exit"),
    "stream_fails_iterating": ("exception", "error"),
    "stream_fails_final": ("exception", "error"),
}


class Interrupted(BaseException):
    pass


tokens = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))
usages = st.one_of(st.none(), st.builds(Usage, tokens, tokens, tokens))
latencies = st.integers(min_value=0, max_value=5_000_000_000)
base_exceptions = st.sampled_from([KeyboardInterrupt, SystemExit, GeneratorExit, Interrupted])

call_plans = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(OUTCOMES),
        "mode": st.sampled_from(["sync", "async"]),
        "form": st.sampled_from(["with", "wrap"]),
        "usage": usages,
        "latency": latencies,
        "chunks": st.integers(min_value=0, max_value=3),
        "base": base_exceptions,
    }
)


class SyncChunks:
    def __init__(self, clock: VirtualClock, chunks: int, latency: int, fail_iter: bool, fail_final: bool) -> None:
        self.clock, self.chunks, self.latency = clock, chunks, latency
        self.fail_iter, self.fail_final = fail_iter, fail_final

    def __iter__(self) -> Iterator[int]:
        for i in range(self.chunks):
            self.clock.advance_ns(self.latency)
            yield i
        if self.fail_iter:
            raise ConnectionError("stream broke")

    def get_final_response(self) -> str:
        if self.fail_final:
            raise ValueError("unparseable final response")
        return "final"


class AsyncChunks(SyncChunks):
    async def __aiter__(self) -> Any:  # type: ignore[override]
        for i in range(self.chunks):
            await asyncio.sleep(0)
            self.clock.advance_ns(self.latency)
            yield i
        if self.fail_iter:
            raise ConnectionError("stream broke")

    async def get_final_response(self) -> str:  # type: ignore[override]
        await asyncio.sleep(0)
        return SyncChunks.get_final_response(self)


def run_sync(emitter: Emitter, clock: VirtualClock, plan: dict[str, Any], n: int) -> None:
    outcome, usage = plan["outcome"], plan["usage"]
    name = f"F{n}"
    if outcome.startswith("stream"):
        raw = SyncChunks(clock, plan["chunks"], plan["latency"], outcome == "stream_fails_iterating", outcome == "stream_fails_final")
        stream = emitter.stream(raw, name, arguments={"n": n}, before_end=lambda c, e: c.set_usage(usage) if usage else None)
        try:
            if outcome in ("stream_closed", "stream_dropped"):
                if plan["chunks"]:  # read one partial (with no partial at all, the loop would complete it)
                    for _ in stream:
                        break
                if outcome == "stream_closed":
                    stream.close()
                else:
                    del stream
            else:
                list(stream)
                stream.get_final_response()
        except (ConnectionError, ValueError):
            assert outcome in ("stream_fails_iterating", "stream_fails_final")
        return

    def body(call: Any = None) -> str:
        clock.advance_ns(plan["latency"])
        if call is not None and usage is not None:
            call.set_usage(usage)
        if outcome == "error":
            raise RuntimeError("llm failed")
        if outcome == "base":
            raise plan["base"]()
        if outcome == "cancel":
            raise asyncio.CancelledError()
        return "result"

    try:
        if plan["form"] == "with":
            with emitter.call(name, arguments={"n": n}) as call:
                call.set_result(body(call))
        else:
            emitter.wrap(body, function_name=name)()
    except (RuntimeError, asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit, Interrupted):
        assert outcome in ("error", "base", "cancel")


async def run_async(emitter: Emitter, clock: VirtualClock, plan: dict[str, Any], n: int) -> None:
    outcome, usage = plan["outcome"], plan["usage"]
    name = f"F{n}"
    if outcome.startswith("stream"):
        raw = AsyncChunks(clock, plan["chunks"], plan["latency"], outcome == "stream_fails_iterating", outcome == "stream_fails_final")
        stream = emitter.stream(raw, name, arguments={"n": n}, before_end=lambda c, e: c.set_usage(usage) if usage else None)
        try:
            if outcome == "stream_closed":
                await stream.aclose()
            elif outcome == "stream_dropped":
                del stream
            else:
                async for _ in stream:
                    pass
                await stream.get_final_response()
        except (ConnectionError, ValueError):
            assert outcome in ("stream_fails_iterating", "stream_fails_final")
        return

    async def body(call: Any = None) -> str:
        await asyncio.sleep(0)
        clock.advance_ns(plan["latency"])
        if call is not None and usage is not None:
            call.set_usage(usage)
        if outcome == "error":
            raise RuntimeError("llm failed")
        if outcome == "base":
            # KeyboardInterrupt and SystemExit inside a task stop the event loop itself (asyncio's
            # rule), so async calls raise the other BaseExceptions
            base = plan["base"]
            raise (Interrupted if base in (KeyboardInterrupt, SystemExit) else base)()
        if outcome == "cancel":
            await asyncio.sleep(3600)  # cancelled from outside
        return "result"

    async def one() -> None:
        if plan["form"] == "with":
            async with emitter.call(name, arguments={"n": n}) as call:
                call.set_result(await body(call))
        else:
            await emitter.wrap(body, function_name=name)()

    task = asyncio.ensure_future(one())
    if outcome == "cancel":
        for _ in range(2):
            await asyncio.sleep(0)
        task.cancel()
    try:
        await task
    except (RuntimeError, asyncio.CancelledError, KeyboardInterrupt, SystemExit, GeneratorExit, Interrupted):
        assert outcome in ("error", "base", "cancel")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plans=st.lists(call_plans, max_size=8), sampled=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_any_sequence_of_outcomes_keeps_the_contract(plans: list[dict[str, Any]], sampled: bool, seed: int) -> None:
    dispatcher = Dispatcher("property")
    clock = VirtualClock()
    emitter = Emitter(
        dispatcher=dispatcher,
        clock=clock,
        sample_rate=0.5 if sampled else 1.0,
        rng=random.Random(seed),
    )
    events: list[tuple[Any, Any, Any]] = []
    dispatcher.attach_many("all", [*emitter.event_names, HANDLER_FAILURE], lambda e, m, md, c: events.append((e, m, md)))

    sync_plans = [(n, p) for n, p in enumerate(plans) if p["mode"] == "sync"]
    async_plans = [(n, p) for n, p in enumerate(plans) if p["mode"] == "async"]
    for n, plan in sync_plans:
        run_sync(emitter, clock, plan, n)

    async def main() -> None:
        await asyncio.gather(*(run_async(emitter, clock, plan, n) for n, plan in async_plans))

    if async_plans:
        asyncio.run(main())
    gc.collect()

    validate_stream(events)  # every start pairs with exactly one stop or exception
    assert not any(e[0] == HANDLER_FAILURE for e in events)

    starts = {md["telemetry_span_context"]: md for name, _, md in events if name[-1] == "start"}
    ends = {md["telemetry_span_context"]: (name[-1], md, m) for name, m, md in events if name[-1] != "start"}
    assert starts.keys() == ends.keys()
    if not sampled:
        assert len(starts) == len(plans)  # nothing lost
    for span, start_md in starts.items():
        n = int(start_md["function_name"][1:])
        plan = plans[n]
        kind, end_md, end_m = ends[span]
        expected_kind, expected_exc_kind = EXPECTED_END[plan["outcome"]]
        assert kind == expected_kind, (plan, kind)
        assert start_md["streaming"] is plan["outcome"].startswith("stream")
        if kind == "exception":
            assert end_md["kind"] == expected_exc_kind, (plan, end_md["kind"])
            assert isinstance(end_md["reason"], BaseException)
            if plan["outcome"] in ("stream_closed", "stream_dropped"):
                assert isinstance(end_md["reason"], StreamAbandoned)
        else:
            # the wrapped-function form has no call object to report usage on
            streamed = plan["outcome"].startswith("stream")
            usage = (plan["usage"] if plan["form"] == "with" or streamed else None) or Usage()
            assert end_m["input_tokens"] == usage.input_tokens  # unknown stays None, never 0
            assert end_m["output_tokens"] == usage.output_tokens
            assert end_m["total_tokens"] == usage.total_tokens


# --------------------------------------------------------------------------- mutations of valid events

identifiers = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
prefixes = st.lists(identifiers, min_size=1, max_size=3).map(tuple)
anything = st.one_of(st.none(), st.integers(), st.text(max_size=5), st.dictionaries(identifiers, st.integers(), max_size=2))
opt_str = st.one_of(st.none(), st.text(max_size=10))
spans = st.one_of(st.integers(), st.text(min_size=1, max_size=8), st.tuples(st.integers(), st.integers()))
nonneg = st.integers(min_value=0, max_value=10**12)
any_int = st.integers(min_value=-(10**12), max_value=10**19)


def _stack() -> traceback.StackSummary:
    try:
        raise ValueError("x")
    except ValueError as exc:
        return traceback.extract_tb(exc.__traceback__)


STACK = _stack()
reasons = st.sampled_from([ValueError("v"), TimeoutError("t"), KeyboardInterrupt(), StreamAbandoned("F")])


def common_meta() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "resource": anything,
            "action": opt_str,
            "function_name": st.text(min_size=1, max_size=12),
            "client_module": opt_str,
            "streaming": st.booleans(),
            "telemetry_span_context": spans,
        }
    )


@st.composite
def valid_events(draw: st.DrawFn) -> tuple[str, tuple[str, ...], dict[str, Any], dict[str, Any]]:
    kind = draw(st.sampled_from(["start", "stop", "exception", "handler_failure"]))
    prefix = draw(prefixes)
    if kind == "handler_failure":
        name = HANDLER_FAILURE
        m = {"system_time": draw(any_int), "monotonic_time": draw(any_int)}
        md = {
            "event_name": prefix + ("call", "stop"),
            "handler_id": draw(st.one_of(identifiers, st.integers())),
            "handler_config": draw(anything),
            "kind": draw(st.sampled_from(sorted(KINDS))),
            "reason": draw(reasons),
            "stacktrace": STACK,
        }
        return kind, name, m, md
    name = prefix + ("call", kind)
    md = draw(common_meta())
    if kind == "start":
        m = {"system_time": draw(any_int), "monotonic_time": draw(any_int)}
        md["arguments"] = draw(st.dictionaries(identifiers, anything, max_size=3))
    elif kind == "stop":
        i, o = draw(tokens), draw(tokens)
        m = {
            "duration": draw(nonneg),
            "monotonic_time": draw(any_int),
            "input_tokens": i,
            "output_tokens": o,
            "total_tokens": None if i is None or o is None else i + o,
        }
        if draw(st.booleans()):
            m["cached_input_tokens"] = draw(tokens)
        if draw(st.booleans()):
            m["time_to_first_chunk"] = draw(st.one_of(st.none(), nonneg))
        md["model"] = draw(opt_str)
        md["result"] = draw(anything)
        for key in ("provider", "client_name", "request_id"):
            if draw(st.booleans()):
                md[key] = draw(opt_str)
        if draw(st.booleans()):
            md["num_attempts"] = draw(st.one_of(st.none(), nonneg))
    else:
        m = {"duration": draw(nonneg), "monotonic_time": draw(any_int)}
        md["kind"] = draw(st.sampled_from(sorted(KINDS)))
        md["reason"] = draw(reasons)
        md["stacktrace"] = STACK
    return kind, name, m, md


# wrong values per key; a key absent here accepts any value, so it can only be deleted
_bad_int = st.sampled_from([1.5, "12", True, False, None, [1]])
_bad_opt_nonneg = st.one_of(st.integers(max_value=-1), st.sampled_from([2.0, "3", True, False, [0]]))
_bad_opt_str = st.sampled_from([1, 2.5, b"bytes", ["x"], True])
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "system_time": _bad_int,
    "monotonic_time": _bad_int,
    "duration": st.one_of(st.integers(max_value=-1), _bad_int),  # negative durations included
    "input_tokens": _bad_opt_nonneg,
    "output_tokens": _bad_opt_nonneg,
    "total_tokens": _bad_opt_nonneg,
    "cached_input_tokens": _bad_opt_nonneg,
    "time_to_first_chunk": _bad_opt_nonneg,
    "num_attempts": _bad_opt_nonneg,
    "action": _bad_opt_str,
    "client_module": _bad_opt_str,
    "model": _bad_opt_str,
    "provider": _bad_opt_str,
    "client_name": _bad_opt_str,
    "request_id": _bad_opt_str,
    "function_name": st.sampled_from(["", None, 3, b"F", ("F",)]),
    "streaming": st.sampled_from([0, 1, "true", None, "False"]),
    "arguments": st.sampled_from([None, [("a", 1)], "a=1", 3]),
    "telemetry_span_context": st.sampled_from([None, [1], {"a": 1}, {1}]),
    "kind": st.one_of(st.text(max_size=6).filter(lambda s: s not in KINDS), st.sampled_from([None, 1, b"error"])),
    "reason": st.sampled_from(["boom", None, ValueError, 42, ("error",)]),
    "stacktrace": st.sampled_from([[], "Traceback ...", None, ("f.py", 1)]),
    "event_name": st.sampled_from(["a.b", (), ("a", 1), None, ("a", "")]),
    "handler_id": st.sampled_from([[1], {"a": 1}, {1}]),
}


def test_bad_value_table_covers_every_checked_key() -> None:
    anything_goes = {"resource", "result", "handler_config"}
    keys = {f.key for spec in EVENT_SPECS.values() for f in (*spec.measurements, *spec.metadata)}
    assert keys - anything_goes == set(BAD_VALUES)


@settings(max_examples=300, deadline=None)
@given(event=valid_events(), data=st.data())
def test_every_single_mutation_is_rejected(event: tuple[str, Any, dict[str, Any], dict[str, Any]], data: st.DataObject) -> None:
    kind, name, measurements, metadata = event
    validate_event(name, measurements, metadata)  # the generator makes valid events

    spec = EVENT_SPECS[kind]
    present = [("measurements", f) for f in spec.measurements if f.key in measurements] + [
        ("metadata", f) for f in spec.metadata if f.key in metadata
    ]
    mutations: list[tuple[str, str, str]] = [("delete", where, f.key) for where, f in present if f.required]
    mutations += [("retype", where, f.key) for where, f in present if f.key in BAD_VALUES]
    if kind == "stop" and measurements["input_tokens"] is not None and measurements["output_tokens"] is not None:
        mutations.append(("total", "measurements", "total_tokens"))
    if kind == "stop" and (measurements["input_tokens"] is None or measurements["output_tokens"] is None):
        mutations.append(("made_up_total", "measurements", "total_tokens"))
    action, where, key = data.draw(st.sampled_from(mutations), label="mutation")

    m, md = dict(measurements), dict(metadata)
    target = m if where == "measurements" else md
    if action == "delete":
        del target[key]
    elif action == "retype":
        target[key] = data.draw(BAD_VALUES[key], label="bad value")
    elif action == "total":
        target[key] = target[key] + data.draw(st.integers(min_value=1, max_value=100) | st.integers(min_value=-100, max_value=-1))
    else:
        target[key] = data.draw(nonneg, label="made-up total")

    with pytest.raises(ContractViolation) as info:
        validate_event(name, m, md)
    message = str(info.value)
    assert ".".join(name) in message
    assert repr(key) in message or f"[{key!r}]" in message
    assert info.value.key == key
