"""The capture fixtures in real pytest sessions (pytester)."""

from __future__ import annotations

import textwrap

import pytest

HEADER = textwrap.dedent(
    """
    import asyncio, threading
    import pytest
    from dirty_equals import IsInt, IsPositiveInt, IsStr
    from pytest_baml_telemetry import CALL_START, CALL_STOP, Emitter, attach, execute
    from pytest_baml_telemetry.clock import VirtualClock

    def call(name="ExtractResume", *, usage=(120, 30), model="gpt-4o-mini", fail=None, emitter=None):
        emitter = emitter or Emitter()
        with emitter.call(name, arguments={"resume": "Ada"}) as c:
            if usage:
                c.set_usage(*usage)
            c.set_model(model)
            if fail:
                raise fail
            c.set_result({"name": "Ada"})

    def unpaired_start(span="orphan"):
        execute(CALL_START, {"system_time": 1, "monotonic_time": 1}, {
            "resource": None, "action": None, "function_name": "Orphan", "arguments": {},
            "client_module": None, "streaming": False, "telemetry_span_context": span})
    """
)


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def match(result: pytest.RunResult, lines: list[str]) -> None:
    """fnmatch_lines where only ``*`` is a wildcard (brackets are literal)."""
    result.stdout.fnmatch_lines([line.replace("[", "[[]") for line in lines])


def make(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyfile(test_user=HEADER + textwrap.dedent(body))


def test_passing_capture_and_every_assertion(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_ok(baml_events):
            call()
            try:
                call("Summarize", fail=ValueError("boom"))
            except ValueError:
                pass
            baml_events.assert_emitted("stop", measurements={"input_tokens": 120, "total_tokens": IsPositiveInt},
                                       metadata={"function_name": "ExtractResume", "model": IsStr(regex="gpt-.*")})
            baml_events.assert_emitted("ash_baml.call.exception", metadata={"kind": "error", "reason": ValueError}, count=1)
            baml_events.assert_emitted(("ash_baml", "call", "start"), count=2)
            baml_events.assert_not_emitted("stop", metadata={"function_name": "Summarize"})
            c = baml_events.assert_call("ExtractResume", ok=True, model="gpt-4o-mini", input_tokens=120,
                                         duration_ms=lambda ms: ms >= 0, result={"name": "Ada"})
            assert c.total_tokens == 150
            baml_events.assert_call("Summarize", ok=False, error=ValueError, kind="error")
            baml_events.assert_sequence("start", "stop", "start", "exception")
            assert [c.function_name for c in baml_events.calls] == ["ExtractResume", "Summarize"]
            assert len(baml_events.starts) == 2 and len(baml_events.stops) == 1 and len(baml_events.exceptions) == 1
            baml_events.clear()
            assert baml_events.events == []
        """,
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_assert_emitted_failure_shows_closest_event_and_difference(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_it(baml_events):
            call("ExtractResume", model="gpt-4o")
            call("Other", model="gpt-4o")
            baml_events.assert_emitted("stop", metadata={"function_name": "ExtractResume", "model": "claude-3"})
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result,
        [
            "E*AssertionError: expected ash_baml.call.stop with metadata={'function_name': 'ExtractResume', "
            "'model': 'claude-3'} at least once, found 0 matching of 4 captured event(s)",
            "E*closest captured events:",
            "E*#1 ash_baml.call.stop(function_name='ExtractResume', span=*)",
            "E*metadata['model']: expected 'claude-3', got 'gpt-4o'",
            "E*#3 ash_baml.call.stop(function_name='Other', span=*)",
            "E*metadata['function_name']: expected 'ExtractResume', got 'Other'",
            "E*metadata['model']: expected 'claude-3', got 'gpt-4o'",
            "E*captured: 2 x ash_baml.call.start, 2 x ash_baml.call.stop",
        ]
    )


def test_failure_output_is_bounded(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_it(baml_events):
            for i in range(300):
                call(f"F{i}")
            baml_events.assert_emitted("stop", metadata={"function_name": "Missing"})
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result, ["E*... and 297 more ash_baml.call.stop event(s)"])
    assert len([line for line in result.outlines if line.startswith("E  ")]) < 15


def test_assert_emitted_count_and_not_emitted_failures(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_count(baml_events):
            call(); call()
            baml_events.assert_emitted("stop", count=3)

        def test_not(baml_events):
            call()
            baml_events.assert_not_emitted("stop", metadata={"function_name": "ExtractResume"})

        def test_no_such_event(baml_events):
            baml_events.assert_emitted("exception")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=3)
    match(result,
        [
            "E*AssertionError: expected ash_baml.call.stop exactly 3 time(s), found 2 matching of 4 captured event(s)",
            "E*matching events:",
            "E*ash_baml.call.stop(function_name='ExtractResume', span=*)",
        ]
    )
    match(result,
        [
            "E*AssertionError: expected no ash_baml.call.stop with metadata={'function_name': 'ExtractResume'}, found 1:",
            "E*#1 ash_baml.call.stop(function_name='ExtractResume', span=*)",
        ]
    )
    match(result,
        [
            "E*AssertionError: expected ash_baml.call.exception at least once, found 0 matching of 0 captured event(s)",
            "E*no ash_baml.call.exception event was captured",
            "E*nothing was captured",
        ]
    )


def test_assert_call_and_sequence_failures(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_call(baml_events):
            call(usage=(10, 5))
            baml_events.assert_call("ExtractResume", input_tokens=99, ok=True)

        def test_call_unknown_function(baml_events):
            call()
            baml_events.assert_call("Nope")

        def test_sequence(baml_events):
            call("A"); call("B")
            baml_events.assert_sequence(
                "start",
                ("ash_baml", "call", "stop"),
                __import__("pytest_baml_telemetry.capture").capture.expect("start", metadata={"function_name": "A"}),
            )
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=3)
    match(result,
        [
            "E*AssertionError: expected a call of 'ExtractResume' with input_tokens=99, ok=True, found 0",
            "E*calls of 'ExtractResume':",
            "E*ExtractResume ok *ms model='gpt-4o-mini' tokens=10/5",
            "E*call['input_tokens']: expected 99, got 10",
        ]
    )
    match(result,
        ["E*AssertionError: expected a call of 'Nope', found 0", "E*calls captured: 1 x ExtractResume"]
    )
    match(result,
        [
            "E*AssertionError: expected 3 events in order; matched the first 2:",
            "E*ok  #0 ash_baml.call.start(function_name='A', span=*)",
            "E*ok  #1 ash_baml.call.stop(function_name='A', span=*)",
            "E*missing: ash_baml.call.start with metadata={'function_name': 'A'} after event #1",
            "E*(a matching event exists earlier, at #0: out of order)",
        ]
    )


def test_teardown_validation_fails_on_unpaired_start(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_orphan(baml_events):
            unpaired_start()
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result,
        [
            "baml_events: the telemetry captured during this test is not valid:",
            "  - contract violation: ash_baml.call.start (event 0) for 'Orphan' with "
            "telemetry_span_context='orphan' has no stop or exception; expected exactly one after each start",
            "(relax with @pytest.mark.baml_events(validate=False))",
        ]
    )
    result.stdout.no_fnmatch_line("*During handling*")


def test_teardown_validation_fails_on_contract_violation(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_bad_tokens(baml_events):
            execute(CALL_STOP, {"duration": -5, "monotonic_time": 2, "input_tokens": 1, "output_tokens": 1,
                                "total_tokens": 2},
                    {"resource": None, "action": None, "function_name": "X", "client_module": None,
                     "streaming": False, "model": None, "result": None, "telemetry_span_context": 9})
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result,
        ["  - contract violation: ash_baml.call.stop (telemetry_span_context=9): measurements['duration'] = -5: "
         "expected an int >= 0"]
    )


def test_teardown_fails_on_handler_failure(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_raising_handler(baml_events):
            attach("my-broken-handler", CALL_STOP, lambda *a: 1 / 0)
            call()   # the call itself never sees the handler's error
            baml_events.assert_emitted("handler_failure", metadata={"handler_id": "my-broken-handler"})
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    match(result,
        [
            "  - handler 'my-broken-handler' failed on ash_baml.call.stop and was detached: "
            "ZeroDivisionError: division by zero",
            "(relax with @pytest.mark.baml_events(allow_handler_failures=True))",
        ]
    )


def test_teardown_does_not_pile_on_a_failing_test(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_it(baml_events):
            unpaired_start()
            assert 1 == 2
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*baml_events: the telemetry*")


@pytest.mark.parametrize(
    "scope_code",
    [
        # function
        """
        @pytest.mark.baml_events(validate=False, allow_handler_failures=True)
        def test_relaxed(baml_events):
            unpaired_start(); attach("h", CALL_STOP, lambda *a: 1 / 0); call()
        """,
        # class
        """
        @pytest.mark.baml_events(validate=False, allow_handler_failures=True)
        class TestRelaxed:
            def test_relaxed(self, baml_events):
                unpaired_start(); attach("h", CALL_STOP, lambda *a: 1 / 0); call()
        """,
        # module
        """
        pytestmark = pytest.mark.baml_events(validate=False, allow_handler_failures=True)
        def test_relaxed(baml_events):
            unpaired_start(); attach("h", CALL_STOP, lambda *a: 1 / 0); call()
        """,
    ],
    ids=["function", "class", "module"],
)
def test_marker_relaxation_at_each_scope(pytester: pytest.Pytester, scope_code: str) -> None:
    make(pytester, scope_code)
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=1)


def test_closest_marker_wins(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        pytestmark = pytest.mark.baml_events(validate=False)

        @pytest.mark.baml_events(validate=True)
        def test_strict_again(baml_events):
            unpaired_start()

        def test_module_relaxed(baml_events):
            unpaired_start()

        class TestC:
            pytestmark = pytest.mark.baml_events(validate=True)

            @pytest.mark.baml_events(validate=False)
            def test_function_relaxed(self, baml_events):
                unpaired_start()

            def test_class_strict(self, baml_events):
                unpaired_start()
        """,
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(passed=2, failed=2)
    match(result, ["FAILED test_user.py::test_strict_again*", "FAILED test_user.py::TestC::test_class_strict*"])


def test_bad_marker_options_are_clear_errors(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.baml_events(validat=False)
        def test_typo(baml_events):
            pass

        @pytest.mark.baml_events(validate="no")
        def test_bad_value(baml_events):
            pass
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=2)
    match(result,
        ["*@pytest.mark.baml_events(validat=False): unknown option 'validat'; expected one of *"]
    )
    match(result, ["*@pytest.mark.baml_events(validate='no'): expected True or False*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_wait_for_events_from_a_thread(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_thread(baml_events):
            threading.Timer(0.05, call, kwargs={"name": "Background"}).start()
            [stop] = baml_events.wait_for("stop", metadata={"function_name": "Background"}, timeout="5s")
            assert stop.measurements["total_tokens"] == 150

        def test_timeout(baml_events):
            call("Other")
            baml_events.wait_for("stop", metadata={"function_name": "Never"}, timeout="50ms")
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    match(result,
        [
            "E*AssertionError: timed out after 0.05s waiting for 1 x ash_baml.call.stop with "
            "metadata={'function_name': 'Never'}; 0 matching of 2 captured event(s)",
            "E*closest captured events:",
            "E*#1 ash_baml.call.stop(function_name='Other', span=*)",
        ]
    )


def test_await_for_with_pytest_asyncio(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        async def emit_later():
            await asyncio.sleep(0.01)
            async with Emitter().call("AsyncFn") as c:
                c.set_usage(1, 2)

        @pytest.mark.asyncio
        async def test_async(baml_events):
            task = asyncio.create_task(emit_later())
            [stop] = await baml_events.await_for("stop", metadata={"function_name": "AsyncFn"}, timeout=2)
            await task
            assert stop.measurements["total_tokens"] == 3

        @pytest.mark.asyncio
        async def test_async_timeout(baml_events):
            await baml_events.await_for("exception", timeout="20ms")
        """,
    )
    result = pytester.runpytest("-p", "asyncio", "-o", "asyncio_default_fixture_loop_scope=function")
    result.assert_outcomes(passed=1, failed=1)
    match(result, ["E*AssertionError: timed out after 0.02s waiting for 1 x ash_baml.call.exception*"])


def test_tests_do_not_see_each_others_events(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_first(baml_events):
            call("First")
            assert [c.function_name for c in baml_events.calls] == ["First"]

        def test_second(baml_events):
            call("Second")
            assert [c.function_name for c in baml_events.calls] == ["Second"]

        def test_no_handler_left_behind():
            from pytest_baml_telemetry import list_handlers
            assert [h["id"] for h in list_handlers()] == []
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_context_capture_ignores_other_contexts(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        import contextvars

        @pytest.mark.baml_events(context=True)
        def test_context(baml_events):
            stray = threading.Thread(target=call, kwargs={"name": "Stray"})   # plain thread: a fresh context
            stray.start(); stray.join()
            ctx = contextvars.copy_context()
            owned = threading.Thread(target=ctx.run, args=(call,), kwargs={"name": "Owned"})
            owned.start(); owned.join()
            assert [c.function_name for c in baml_events.calls] == ["Owned"]
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_baml_capture_factory_and_detach_on_failure(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        from pytest_baml_telemetry import Dispatcher, list_handlers

        def test_custom(baml_capture):
            mine = baml_capture(["my_app.cache.hit", ("my_app", "cache", "miss")])
            execute(("my_app", "cache", "hit"), {"count": 1}, {"key": "a"})
            execute(("my_app", "cache", "other"), {"count": 1})
            mine.assert_emitted("my_app.cache.hit", measurements={"count": 1}, metadata={"key": "a"})
            assert len(mine.events) == 1

        def test_prefix(baml_capture):
            d = Dispatcher()
            mine = baml_capture(prefix=("my_app",), dispatcher=d)
            call("Prefixed", emitter=Emitter(("my_app",), dispatcher=d))
            mine.assert_call("Prefixed", ok=True)
            mine.assert_emitted("stop")    # short names use the capture's prefix

        def test_fails_but_detaches(baml_capture):
            baml_capture(["my_app.x"])
            assert False

        def test_nothing_left():
            assert list_handlers() == []
        """,
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, failed=1)


def test_as_dicts_normalised_for_snapshots(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_snapshot(baml_events, baml_clock):
            emitter = Emitter(clock=baml_clock)
            with emitter.call("F", arguments={"q": 1}) as c:
                baml_clock.advance("250ms")
                c.set_usage(5, 6)
                c.set_result("R")
            try:
                with emitter.call("G"):
                    raise KeyError("k")
            except KeyError:
                pass
            assert baml_events.as_dicts() == [
                {"event": "ash_baml.call.start", "measurements": {"system_time": 0, "monotonic_time": 0},
                 "metadata": {"resource": None, "action": None, "function_name": "F", "arguments": {"q": 1},
                              "client_module": None, "streaming": False, "telemetry_span_context": 1}},
                {"event": "ash_baml.call.stop",
                 "measurements": {"duration": 250_000_000, "monotonic_time": 0, "input_tokens": 5,
                                  "output_tokens": 6, "total_tokens": 11, "cached_input_tokens": None},
                 "metadata": {"resource": None, "action": None, "function_name": "F", "client_module": None,
                              "streaming": False, "model": None, "provider": None, "client_name": None,
                              "num_attempts": None, "request_id": None,  # issue 12: always carried
                              "result": "R", "telemetry_span_context": 1}},
                {"event": "ash_baml.call.start", "measurements": {"system_time": 0, "monotonic_time": 0},
                 "metadata": {"resource": None, "action": None, "function_name": "G", "arguments": {},
                              "client_module": None, "streaming": False, "telemetry_span_context": 2}},
                {"event": "ash_baml.call.exception",
                 "measurements": {"duration": 0, "monotonic_time": 0, "input_tokens": None,
                                  "output_tokens": None, "total_tokens": None, "cached_input_tokens": None},
                 "metadata": {"resource": None, "action": None, "function_name": "G", "client_module": None,
                              "streaming": False, "kind": "error", "reason": "KeyError: 'k'",
                              "model": None, "provider": None, "client_name": None, "num_attempts": None,
                              "request_id": None, "telemetry_span_context": 2}},
            ]
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)


def test_plugin_under_xdist(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        @pytest.mark.parametrize("i", range(8))
        def test_many(baml_events, i):
            call(f"F{i}")
            assert [c.function_name for c in baml_events.calls] == [f"F{i}"]

        def test_orphan(baml_events):
            unpaired_start()
        """,
    )
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "--strict-markers")
    result.assert_outcomes(passed=8, failed=1)
    match(result, ["*has no stop or exception*"])


def test_baml_events_requested_dynamically_is_still_validated(pytester: pytest.Pytester) -> None:
    make(
        pytester,
        """
        def test_dynamic(request):
            events = request.getfixturevalue("baml_events")
            unpaired_start()
            assert len(events.starts) == 1
        """,
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)  # checked at teardown: the call hook had already run
    match(result, ["*has no stop or exception*"])


def test_await_for_is_released_by_the_capture_when_an_event_arrives() -> None:
    import asyncio
    import threading

    from pytest_baml_telemetry import Dispatcher, Emitter
    from pytest_baml_telemetry.capture import EventCapture

    dispatcher = Dispatcher("await-release")
    emitter = Emitter(dispatcher=dispatcher)

    def emit() -> None:
        with emitter.call("FromThread"):
            pass

    async def main() -> float:
        with EventCapture(dispatcher=dispatcher) as capture:
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, threading.Thread(target=emit).start)
            started = loop.time()
            [stop] = await capture.await_for("stop", timeout=30)
            assert stop.function_name == "FromThread"
            assert capture._async_waiters == [] and capture._waiting == 0
            return loop.time() - started

    assert asyncio.run(main()) < 10  # woken by the event, not by the 30 s timeout
