"""Tests cannot poison each other: an end whose start came before the capture attached.

A thread left over from one test finishing its call during the next, or an abandoned
stream collected later, delivers a stop or exception without its start to the next
test's capture. It is kept and marked, never a pairing failure, and named when an
assertion trips over it; a real unpaired end (a second end of a captured call) still fails.
"""

from __future__ import annotations

import textwrap

import pytest

from pytest_baml_telemetry import Emitter
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.captured import ends_begun_before
from pytest_baml_telemetry.dispatcher import Dispatcher

LEFTOVER = textwrap.dedent(
    """
    import threading
    import pytest
    from pytest_baml_telemetry import Emitter

    release = threading.Event()
    started = threading.Event()
    threads = []

    def slow_call(fail):
        with Emitter().call("Leftover", arguments={}) as c:
            started.set()
            release.wait(10)
            if fail:
                raise ValueError("late failure")
            c.set_usage(1, 2)

    def test_a_starts_calls_in_threads():
        for fail in (False, True):
            t = threading.Thread(target=lambda f=fail: _run(f), daemon=True)
            threads.append(t)
            started.clear()
            t.start()
            assert started.wait(10)
        # test A ends while both calls are still running

    def _run(fail):
        try:
            slow_call(fail)
        except ValueError:
            pass

    def test_b_sees_them_end(baml_events):
        with Emitter().call("Mine", arguments={}) as c:
            c.set_usage(3, 4)
        release.set()
        for t in threads:
            t.join(10)
        assert [e.function_name for e in baml_events.begun_before_test] == ["Leftover", "Leftover"]
        assert sorted(e.kind for e in baml_events.begun_before_test) == ["exception", "stop"]  # threads end in any order
        assert [c.function_name for c in baml_events.calls] == ["Mine"]
        baml_events.assert_call("Mine", ok=True)
        assert len(baml_events.stops) == 2  # kept

    def test_c_assertion_names_it(baml_events):
        release.clear()
        threads.clear()
        t = threading.Thread(target=lambda: _run(False), daemon=True)
        threads.append(t)
        started.clear()
        t.start()
        assert started.wait(10)
        baml_events.clear()  # as if the capture attached now: the start is no longer captured
        release.set()
        t.join(10)
        baml_events.assert_call("Leftover", ok=True)
    """
)


def test_a_leftover_thread_never_fails_the_next_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=LEFTOVER)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    assert "contract violation" not in out, out
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected a call of 'Leftover' with ok=True, found 0*",
            "*not counted as calls of 'Leftover' (their start came before this test):*",
            "*#0 ash_baml.call.stop(function_name='Leftover'*) ?begun before this test: its start was not captured?",
        ]
    )
    assert "test_c_assertion_names_it" in out and "test_b_sees_them_end" not in out.split("short test summary")[-1]


def _capture() -> tuple[Dispatcher, EventCapture, Emitter]:
    dispatcher = Dispatcher()
    return dispatcher, EventCapture(dispatcher=dispatcher), Emitter(dispatcher=dispatcher)


def test_an_end_begun_before_attach_passes_the_check_and_is_marked() -> None:
    dispatcher, capture, emitter = _capture()
    with emitter.call("Early", arguments={}):
        capture.attach()
    with emitter.call("Mine", arguments={}):
        pass
    capture.check()  # the pairing check passes
    assert [e.function_name for e in capture.begun_before_test] == ["Early"]
    assert [c.function_name for c in capture.calls] == ["Mine"]
    with pytest.raises(AssertionError) as info:
        capture.assert_emitted("stop", count=1)
    text = str(info.value)
    assert "#0 ash_baml.call.stop(function_name='Early'" in text and "[begun before this test" in text
    assert "#2 ash_baml.call.stop(function_name='Mine'" in text
    assert "1 end event(s) of calls begun before this test" in text
    with pytest.raises(AssertionError, match=r"(?s)#0 ash_baml.call.stop\(function_name='Early'.*begun before this test"):
        capture.assert_not_emitted("stop", metadata={"function_name": "Early"})
    with pytest.raises(AssertionError, match="begun before this test"):
        capture.assert_sequence("stop", "exception")


def test_a_second_end_of_a_captured_call_still_fails_the_check() -> None:
    dispatcher, capture, emitter = _capture()
    capture.attach()
    with emitter.call("Mine", arguments={}):
        pass
    start, stop = capture.events
    dispatcher.execute(stop.name, dict(stop.measurements), dict(stop.metadata))
    assert capture.begun_before_test == []
    with pytest.raises(AssertionError, match=r"\(event 2\).*a second end for a call that already ended"):
        capture.check()


def test_an_end_begun_before_keeps_its_fields_checked_and_event_numbers() -> None:
    dispatcher, capture, emitter = _capture()
    with emitter.call("Early", arguments={}):
        capture.attach()
        with emitter.call("Mine", arguments={}):
            pass
        dispatcher.execute(("ash_baml", "call", "start"), {"system_time": 1, "monotonic_time": 1}, {
            "resource": None, "action": None, "function_name": "Open", "arguments": {},
            "client_module": None, "streaming": False, "telemetry_span_context": "open"})
    assert ends_begun_before(capture.events) == frozenset({3})
    with pytest.raises(AssertionError, match=r"\(event 2\) for 'Open'.*has no stop or exception"):
        capture.check()
    capture.clear()
    dispatcher.execute(("ash_baml", "call", "stop"), {"duration": -1, "monotonic_time": 1}, {})
    with pytest.raises(AssertionError, match="contract violation"):
        capture.check()


ABANDONED = textwrap.dedent(
    """
    import gc
    from pytest_baml_telemetry import Emitter, StreamAbandoned

    class Source:
        def __iter__(self):
            yield "partial"

        def get_final_response(self):
            return "final"

    kept = []

    def test_a_abandons_a_stream():
        stream = Emitter().stream(Source(), "Streamed", arguments={})
        next(iter(stream))
        kept.append(stream)  # dropped only during the next test

    def test_b_collects_it(baml_events):
        kept.clear()
        gc.collect()
        (late,) = baml_events.begun_before_test
        assert late.kind == "exception" and isinstance(late.metadata["reason"], StreamAbandoned)
        assert baml_events.calls == []
    """
)


def test_an_abandoned_stream_collected_in_the_next_test_never_fails_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=ABANDONED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "contract violation" not in out, out
    result.assert_outcomes(passed=2)
