"""A capture that keeps plain tuples and makes records when asked still answers as before.

``events`` keeps the records it made (extended as events arrive, emptied by ``clear``) but
hands out a fresh list each time; assertions over thousands of events name the same
closest events, marks and counts; threads and asyncio tasks emitting at once lose nothing.
"""

from __future__ import annotations

import asyncio
import re
import threading

import pytest

from pytest_baml_telemetry.capture import EventCapture, expect
from pytest_baml_telemetry.captured import CapturedCall, CapturedEvent
from pytest_baml_telemetry.dispatcher import Dispatcher

START, STOP, EXC = ("ash_baml", "call", "start"), ("ash_baml", "call", "stop"), ("ash_baml", "call", "exception")


@pytest.fixture
def capture() -> EventCapture:
    return EventCapture(dispatcher=Dispatcher("scale")).attach()


def emit_calls(capture: EventCapture, n: int, function: str = "F", model: str = "gpt", first_span: int = 0) -> None:
    execute = capture.dispatcher.execute
    for i in range(first_span, first_span + n):
        execute(START, {"monotonic_time": i}, {"function_name": function, "telemetry_span_context": i})
        execute(STOP, {"duration": 1_000_000, "input_tokens": i % 7}, {"function_name": function, "telemetry_span_context": i, "model": model})


def test_events_are_records_in_order_and_a_fresh_list_each_time(capture: EventCapture) -> None:
    emit_calls(capture, 3)
    first = capture.events
    assert all(type(e) is CapturedEvent for e in first)
    assert [e.kind for e in first] == ["start", "stop"] * 3
    first.clear()  # the caller's list: the capture keeps its events
    again = capture.events
    assert len(again) == 6 and again is not capture.events
    assert again == capture.events


def test_events_made_once_are_extended_by_new_events_and_dropped_by_clear(capture: EventCapture) -> None:
    emit_calls(capture, 2)
    before = capture.events
    emit_calls(capture, 1, function="G", first_span=10)
    after = capture.events
    assert after[:4] == before and [e.function_name for e in after[4:]] == ["G", "G"]
    assert after[0] is before[0]  # kept, not made again
    capture.clear()
    assert capture.events == [] and len(capture) == 0
    emit_calls(capture, 1, function="H", first_span=20)
    assert [e.function_name for e in capture.events] == ["H", "H"]  # nothing left over from before clear()
    assert capture.find("stop", metadata={"function_name": "F"}) == []


def test_views_filter_by_kind_and_find_returns_records(capture: EventCapture) -> None:
    emit_calls(capture, 4)
    capture.dispatcher.execute(EXC, {"duration": 1}, {"function_name": "F", "telemetry_span_context": 99, "kind": "error", "reason": ValueError("x")})
    assert [e.metadata["telemetry_span_context"] for e in capture.starts] == [0, 1, 2, 3]
    assert len(capture.stops) == 4 and len(capture.exceptions) == 1 and capture.handler_failures == []
    found = capture.find("stop", measurements={"input_tokens": 2})
    assert [type(e) for e in found] == [CapturedEvent] and found[0].span_context == 2
    assert [e.span_context for e in capture.begun_before_test] == [99]


def test_a_failed_assert_emitted_over_many_events_names_the_closest_and_counts_the_rest(capture: EventCapture) -> None:
    emit_calls(capture, 1500)  # more than one block of scoring
    execute = capture.dispatcher.execute
    execute(STOP, {"duration": 1, "input_tokens": 5}, {"function_name": "Late", "telemetry_span_context": 5000, "model": "claude"})
    with pytest.raises(AssertionError) as info:
        capture.assert_emitted("stop", metadata={"function_name": "Late", "model": "claude", "telemetry_span_context": 1})
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0] == (
        "expected ash_baml.call.stop with metadata={'function_name': 'Late', 'model': 'claude', "
        "'telemetry_span_context': 1} at least once, found 0 matching of 3001 captured event(s)"
    )
    # the late near-miss (two of three keys) ranks first, marked as begun before; then two with one key, in order
    assert lines[2] == "  #3000 ash_baml.call.stop(function_name='Late', span=5000) [begun before this test: its start was not captured]"
    assert lines[3] == "      metadata['telemetry_span_context']: expected 1, got 5000"
    assert lines[4].startswith("  #3 ash_baml.call.stop(function_name='F', span=1)")
    assert "... and 1498 more ash_baml.call.stop event(s)" in text
    assert lines[-1] == (
        "captured: 1500 x ash_baml.call.start, 1501 x ash_baml.call.stop "
        "(1 end event(s) of calls begun before this test: their start was not captured)"
    )


def test_assert_emitted_with_count_lists_the_first_matches_by_their_index(capture: EventCapture) -> None:
    emit_calls(capture, 300)
    assert len(capture.assert_emitted("stop", measurements={"input_tokens": 3})) == 43
    with pytest.raises(AssertionError) as info:
        capture.assert_emitted("stop", measurements={"input_tokens": 3}, count=2)
    lines = str(info.value).splitlines()
    assert lines[1:3] == ["matching events:", "  #7 ash_baml.call.stop(function_name='F', span=3)"]
    assert lines[6] == "  #63 ash_baml.call.stop(function_name='F', span=31)" and lines[7] == "  ... and 38 more"


def test_assert_not_emitted_and_assert_sequence_over_many_events(capture: EventCapture) -> None:
    emit_calls(capture, 400)
    capture.assert_not_emitted("stop", metadata={"model": "claude"})
    with pytest.raises(AssertionError, match=r"found 400:\n  #1 ash_baml\.call\.stop"):
        capture.assert_not_emitted("stop", metadata={"model": "gpt"})
    got = capture.assert_sequence(expect("start", metadata={"telemetry_span_context": 398}), "stop")
    assert [e.span_context for e in got] == [398, 398]
    with pytest.raises(AssertionError, match=r"a matching event exists earlier, at #1: out of order"):
        capture.assert_sequence(expect("start", metadata={"telemetry_span_context": 399}), expect("stop", metadata={"telemetry_span_context": 0}))


def test_assert_call_over_many_calls(capture: EventCapture) -> None:
    emit_calls(capture, 600, function="F")
    emit_calls(capture, 5, function="G", model="claude", first_span=1000)
    call = capture.assert_call("G", ok=True, model="claude")
    assert isinstance(call, CapturedCall) and call.span_context == 1000 and call.duration_ms == 1.0
    assert capture.assert_call("F", count=600).span_context == 0
    assert capture.assert_call("F", count=0, model="claude") is None
    with pytest.raises(AssertionError) as info:
        capture.assert_call("G", ok=True, model="gpt", input_tokens=1001 % 7)
    lines = str(info.value).splitlines()
    assert lines[0] == "expected a call of 'G' with ok=True, model='gpt', input_tokens=0, found 0"
    assert lines[2] == "  G ok 1ms model='claude' tokens=0/None"  # span 1001: two of three keys (ok, input_tokens)
    assert lines[3] == "      call['model']: expected 'gpt', got 'claude'"
    assert lines[-1] == "  ... and 2 more"
    with pytest.raises(AssertionError, match=re.escape("calls captured: 600 x F, 5 x G")):
        capture.assert_call("H")


def test_assert_call_answers_about_a_function_whose_calls_are_fine_next_to_an_unhashable_span(capture: EventCapture) -> None:
    """A contract violation elsewhere (a list as span context) no longer makes assert_call raise TypeError."""
    emit_calls(capture, 2, function="F")
    capture.dispatcher.execute(START, {"monotonic_time": 1}, {"function_name": "Bad", "telemetry_span_context": ["x"]})
    assert capture.assert_call("F", ok=True).span_context == 0
    with pytest.raises(TypeError, match="unhashable"):
        capture.assert_call("Bad")  # its own span cannot be paired: as before


def test_wait_for_counts_with_the_fast_matcher(capture: EventCapture) -> None:
    emit_calls(capture, 50)
    assert len(capture.wait_for("stop", metadata={"model": "gpt"}, count=50, timeout=0.01)) == 50
    with pytest.raises(AssertionError, match=r"waiting for 1 x ash_baml\.call\.stop with metadata=\{'model': 'claude'\}; 0 matching of 100"):
        capture.wait_for("stop", metadata={"model": "claude"}, timeout=0.001)


def test_threads_and_tasks_emitting_at_once_lose_nothing_while_events_are_read(capture: EventCapture) -> None:
    execute = capture.dispatcher.execute
    per, workers = 3000, 4
    stop_reading = threading.Event()
    seen: list[int] = []

    def emit(tag: str) -> None:
        for i in range(per):
            execute(STOP, {"i": i}, {"function_name": tag, "telemetry_span_context": (tag, i)})

    def read() -> None:
        while not stop_reading.is_set():
            events = capture.events  # a consistent prefix each time: never shorter than before
            assert not seen or len(events) >= seen[-1]
            seen.append(len(events))

    async def tasks() -> None:
        async def one(tag: str) -> None:
            for i in range(per):
                execute(STOP, {"i": i}, {"function_name": tag, "telemetry_span_context": (tag, i)})
                if i % 500 == 0:
                    await asyncio.sleep(0)

        await asyncio.gather(one("task-a"), one("task-b"))

    reader = threading.Thread(target=read)
    threads = [threading.Thread(target=emit, args=(f"thread-{k}",)) for k in range(workers)]
    reader.start()
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join()
    stop_reading.set()
    reader.join()
    total = per * (workers + 2)
    assert len(capture) == total and len(capture.events) == total
    for tag in [f"thread-{k}" for k in range(workers)] + ["task-a", "task-b"]:
        mine = capture.assert_emitted("stop", metadata={"function_name": tag}, count=per)
        assert [e.measurements["i"] for e in mine] == list(range(per))  # each emitter's order kept
    assert seen  # the reader ran alongside
