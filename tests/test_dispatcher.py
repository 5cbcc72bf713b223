"""The dispatcher, rule by rule.

The first part follows the test cases of Erlang telemetry, where the design comes from,
one by one: each test names the case it follows. The rest covers what the Python port
adds: handler-failure events, interrupts, payload checks, thread safety, the fast path.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import traceback
import types
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import pytest_baml_telemetry as pbt
from pytest_baml_telemetry.contract import HANDLER_FAILURE, validate_event
from pytest_baml_telemetry.dispatcher import (
    AttachedHandler,
    Dispatcher,
    HandlerExistsError,
    new_span_context,
    span_contexts,
)

EVENT = ("a", "test", "event")
EVENT1 = ("a", "first", "event")
EVENT2 = ("a", "second", "event")
EVENT3 = ("a", "third", "event")


class Recorder:
    """A handler that records every call: ``(event_name, measurements, metadata, config)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, Any, Any, Any]] = []

    def __call__(self, event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
        self.calls.append((event_name, measurements, metadata, config))

    @property
    def names(self) -> list[Any]:
        return [c[0] for c in self.calls]


def raise_on_event(event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
    raise RuntimeError("got_event")


@pytest.fixture
def d() -> Dispatcher:
    return Dispatcher("test")


@pytest.fixture
def handler_id() -> str:
    # as init_per_testcase: a fresh random id per test
    return f"handler-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- telemetry_SUITE


class TestBadEventNames:
    """bad_event_names: attach rejects what is not a non-empty sequence of names."""

    @pytest.mark.parametrize(
        ("name", "exc", "shown"),
        [
            (("some", 1), TypeError, "1"),  # ["some", event] in Erlang: a non-atom part
            (("some", None), TypeError, "None"),
            ("hello", TypeError, "'hello'"),  # hello: not a list at all
            ("a.b.c", TypeError, "'a.b.c'"),
            ((), ValueError, "()"),  # []: empty name
            (None, TypeError, "None"),
            (("a", ""), ValueError, "('a', '')"),
            (42, TypeError, "42"),
        ],
    )
    def test_attach_rejects(self, d: Dispatcher, handler_id: str, name: Any, exc: type, shown: str) -> None:
        with pytest.raises(exc) as info:
            d.attach(handler_id, name, Recorder())
        assert shown in str(info.value)
        assert "event name" in str(info.value)
        assert d.list_handlers() == []

    def test_string_name_gets_a_hint(self, d: Dispatcher, handler_id: str) -> None:
        with pytest.raises(TypeError, match=r"\('a', 'b', 'c'\)"):
            d.attach(handler_id, "a.b.c", Recorder())

    @pytest.mark.parametrize("name", [(), ("x", 3), None, "x.y", ("ok", "")])
    def test_execute_rejects(self, d: Dispatcher, name: Any) -> None:
        with pytest.raises((TypeError, ValueError)) as info:
            d.execute(name, {})
        assert repr(name) in str(info.value) or "()" in str(info.value)

    def test_execute_rejects_bad_name_every_time(self, d: Dispatcher) -> None:
        # a bad name is never cached as "seen"
        for _ in range(3):
            with pytest.raises(TypeError):
                d.execute(("x", 3), {})

    def test_attach_many_rejects_one_bad_name_and_attaches_nothing(self, d: Dispatcher, handler_id: str) -> None:
        with pytest.raises(TypeError, match="2"):
            d.attach_many(handler_id, [EVENT1, ("a", 2)], Recorder())
        assert d.list_handlers() == []

    def test_list_names_are_accepted_as_tuples(self, d: Dispatcher, handler_id: str) -> None:
        rec = Recorder()
        d.attach(handler_id, ["a", "test", "event"], rec)
        d.execute(["a", "test", "event"], {"x": 1})
        assert rec.names == [EVENT]
        assert d.list_handlers()[0]["event_name"] == EVENT


def test_duplicate_attach(d: Dispatcher, handler_id: str) -> None:
    first = Recorder()
    d.attach(handler_id, ("some", "event"), first)
    with pytest.raises(HandlerExistsError, match=handler_id) as info:
        d.attach(handler_id, ("some", "event"), Recorder())
    assert isinstance(info.value, ValueError)
    with pytest.raises(HandlerExistsError):
        d.attach_many(handler_id, [("other", "event")], Recorder())
    # the first handler is untouched
    assert [h["function"] for h in d.list_handlers()] == [first]
    d.execute(("some", "event"), {})
    assert len(first.calls) == 1


def test_invoke_handler(d: Dispatcher, handler_id: str) -> None:
    config = {"send_to": "me"}
    measurements = {"data": 3}
    metadata = {"some": "metadata"}
    rec = Recorder()
    d.attach(handler_id, EVENT, rec, config)
    d.execute(EVENT, measurements, metadata)
    assert rec.calls == [(EVENT, measurements, metadata, config)]
    # the very objects, not copies
    assert rec.calls[0][1] is measurements and rec.calls[0][2] is metadata and rec.calls[0][3] is config


def test_config_defaults_to_none(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach(handler_id, EVENT, rec)
    d.execute(EVENT, {})
    assert rec.calls[0][3] is None


def test_default_metadata(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach(handler_id, EVENT1, rec, {"send_to": "me"})
    d.execute(EVENT1, {"data": 3})
    assert rec.calls == [(EVENT1, {"data": 3}, {}, {"send_to": "me"})]
    assert type(rec.calls[0][2]) is dict


def test_old_execute_with_a_bare_number_is_rejected(d: Dispatcher, handler_id: str) -> None:
    # old_execute: Erlang still accepts a number (deprecated); the Python port wants a mapping.
    rec = Recorder()
    d.attach(handler_id, EVENT1, rec)
    with pytest.raises(TypeError, match=r"measurements=1 \(int\) is not a mapping"):
        d.execute(EVENT1, 1, {"some": "metadata"})
    assert rec.calls == []


def test_list_handlers(d: Dispatcher, handler_id: str) -> None:
    config = {"send_to": "me"}
    fun = Recorder()
    d.attach(handler_id, EVENT, fun, config)
    assert d.list_handlers(EVENT) == [{"id": handler_id, "event_name": EVENT, "function": fun, "config": config}]


def test_list_for_prefix(d: Dispatcher, handler_id: str) -> None:
    config = {"send_to": "me"}
    fun = Recorder()
    d.attach(handler_id, EVENT, fun, config)
    expected = [{"id": handler_id, "event_name": EVENT, "function": fun, "config": config}]
    for prefix in [(), ("a",), ("a", "test"), ["a", "test"], EVENT]:
        assert d.list_handlers(prefix) == expected, prefix
    assert d.list_handlers() == expected
    assert d.list_handlers(EVENT + ("something",)) == []
    assert d.list_handlers(("b",)) == []
    # a prefix is matched part by part, not as a string
    assert d.list_handlers(("a", "tes")) == []


@pytest.mark.parametrize("prefix", ["a", None, ("a", 1), ("a", "")])
def test_list_handlers_rejects_bad_prefix(d: Dispatcher, prefix: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="prefix"):
        d.list_handlers(prefix)


def test_detach_on_exception(d: Dispatcher, handler_id: str, caplog: pytest.LogCaptureFixture) -> None:
    config: list[Any] = []
    d.attach(handler_id, EVENT, raise_on_event, config)
    failures = Recorder()
    d.attach("failure_handler_id", HANDLER_FAILURE, failures, {"send_to": "me"})
    assert d.list_handlers(EVENT) == [
        {"id": handler_id, "event_name": EVENT, "function": raise_on_event, "config": config}
    ]

    with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
        d.execute(EVENT, {"some": 1}, {"some": "metadata"})  # does not raise

    assert len(failures.calls) == 1
    name, measurements, metadata, cfg = failures.calls[0]
    assert name == HANDLER_FAILURE and cfg == {"send_to": "me"}
    assert set(measurements) == {"system_time", "monotonic_time"}
    assert metadata["event_name"] == EVENT
    assert metadata["handler_id"] == handler_id
    assert metadata["handler_config"] is config
    assert metadata["kind"] == "error"  # a Python exception (Erlang: throw)
    assert isinstance(metadata["reason"], RuntimeError) and str(metadata["reason"]) == "got_event"
    assert isinstance(metadata["stacktrace"], traceback.StackSummary)
    assert metadata["stacktrace"][-1].name == "raise_on_event"  # stacktrace := [_ | _]
    validate_event(name, measurements, metadata)

    assert d.list_handlers(EVENT) == []
    # detaching returns False if the handler with the given id doesn't exist
    assert d.detach("doesn't exist") is False
    assert d.detach(handler_id) is False

    records = [r for r in caplog.records if r.name == "pytest_baml_telemetry"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert handler_id in records[0].getMessage() and "a.test.event" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[1] is metadata["reason"]


def test_no_execute_detached(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach(handler_id, EVENT, rec, {"send_to": "me"})
    assert d.detach(handler_id) is True
    d.execute(EVENT, {"data": 3}, {"some": "data"})
    assert rec.calls == []


def test_no_execute_on_prefix(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach(handler_id, EVENT, rec)
    d.execute(("a", "test"), {"data": 3}, {"some": "data"})
    d.execute(("a",), {"data": 3})
    assert rec.calls == []


def test_no_execute_on_specific(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach(handler_id, ("a", "test"), rec)
    d.execute(("a", "test", "event", "specific"), {"data": 3}, {"some": "data"})
    d.execute(("a", "test", "event"), {"data": 3})
    assert rec.calls == []
    d.execute(("a", "test"), {"data": 3})
    assert rec.names == [("a", "test")]


def test_handler_on_multiple_events(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    config = {"send_to": "me"}
    d.attach_many(handler_id, [EVENT1, EVENT2, EVENT3], rec, config)
    for event in (EVENT1, EVENT2, EVENT3):
        d.execute(event, {"data": 3}, {"some": "data"})
    assert rec.calls == [(e, {"data": 3}, {"some": "data"}, config) for e in (EVENT1, EVENT2, EVENT3)]


def test_remove_all_handler_on_failure(d: Dispatcher, handler_id: str) -> None:
    d.attach_many(handler_id, [EVENT1, EVENT2, EVENT3], raise_on_event, {"send_to": "me"})
    d.execute(EVENT1, {"data": 3}, {"some": "data"})
    for event in (EVENT1, EVENT2, EVENT3):
        assert d.list_handlers(event) == []


def test_list_handler_on_many(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach_many(handler_id, [EVENT1, EVENT2, EVENT3], rec, {"send_to": "me"})
    for event in (EVENT1, EVENT2, EVENT3):
        assert d.list_handlers(event) == [
            {"id": handler_id, "event_name": event, "function": rec, "config": {"send_to": "me"}}
        ]
    assert len(d.list_handlers(("a",))) == 3


def test_detach_from_all(d: Dispatcher, handler_id: str) -> None:
    rec = Recorder()
    d.attach_many(handler_id, [EVENT1, EVENT2, EVENT3], rec)
    assert d.detach(handler_id) is True
    for event in (EVENT1, EVENT2, EVENT3):
        assert d.list_handlers(event) == []
        d.execute(event, {})
    assert rec.calls == []
    assert d.detach(handler_id) is False


def test_off_execute(d: Dispatcher) -> None:
    # off_execute: executing with nothing attached (or after everything was cleared) is safe
    d.execute(("event", "name"), {}, {})
    d.attach("x", ("event", "name"), Recorder())
    d.clear()
    assert d.list_handlers() == []
    d.execute(("event", "name"), {}, {})


class TestSpan:
    """invoke_*_span_handlers and spans_generate_unique_default_contexts."""

    PREFIX = ("some", "action")
    START = PREFIX + ("start",)
    STOP = PREFIX + ("stop",)
    EXCEPTION = PREFIX + ("exception",)

    def attach(self, d: Dispatcher) -> Recorder:
        rec = Recorder()
        d.attach_many("span", [self.START, self.STOP, self.EXCEPTION], rec, {"send_to": "me"})
        return rec

    def test_successful_span(self, d: Dispatcher) -> None:
        rec = self.attach(d)
        start_meta = {"some": "start_metadata", "telemetry_span_context": "ctx"}
        stop_meta = {"other": "stop_metadata", "telemetry_span_context": "ctx"}
        assert d.span(self.PREFIX, start_meta, lambda: ("ok", stop_meta)) == "ok"
        assert rec.names == [self.START, self.STOP]
        (_, start_m, start_md, _), (_, stop_m, stop_md, _) = rec.calls
        assert sorted(start_m) == ["monotonic_time", "system_time"]
        assert start_md == start_meta
        assert sorted(stop_m) == ["duration", "monotonic_time"]
        assert stop_md == stop_meta
        assert stop_m["duration"] >= 0
        assert stop_m["monotonic_time"] == start_m["monotonic_time"] + stop_m["duration"]

    def test_successful_span_with_measurements(self, d: Dispatcher) -> None:
        rec = self.attach(d)
        start_meta = {"some": "start_metadata", "telemetry_span_context": "ctx"}
        stop_meta = {"other": "stop_metadata", "telemetry_span_context": "ctx"}
        result = d.span(self.PREFIX, start_meta, lambda: ("ok", {"other_thing": 100}, stop_meta))
        assert result == "ok"
        (_, start_m, _, _), (_, stop_m, stop_md, _) = rec.calls
        assert sorted(start_m) == ["monotonic_time", "system_time"]
        assert sorted(stop_m) == ["duration", "monotonic_time", "other_thing"]
        assert stop_m["other_thing"] == 100
        assert stop_md == stop_meta

    def test_extra_measurements_do_not_override_duration(self, d: Dispatcher) -> None:
        rec = self.attach(d)
        d.span(self.PREFIX, {}, lambda: (None, {"duration": -5}, {}))
        assert rec.calls[1][1]["duration"] >= 0

    def test_exception_span(self, d: Dispatcher) -> None:
        rec = self.attach(d)
        start_meta = {"some": "start_metadata", "telemetry_span_context": "ctx"}
        error = ArithmeticError("badarith")

        def boom() -> Any:
            raise error

        with pytest.raises(ArithmeticError) as info:
            d.span(self.PREFIX, start_meta, boom)
        assert info.value is error  # re-raised unchanged
        assert rec.names == [self.START, self.EXCEPTION]
        (_, start_m, _, _), (_, exc_m, exc_md, _) = rec.calls
        assert sorted(start_m) == ["monotonic_time", "system_time"]
        assert sorted(exc_m) == ["duration", "monotonic_time"]
        assert exc_m["duration"] >= 0
        assert sorted(exc_md) == ["kind", "reason", "some", "stacktrace", "telemetry_span_context"]
        assert exc_md["kind"] == "error"
        assert exc_md["reason"] is error
        assert exc_md["some"] == "start_metadata"
        assert exc_md["telemetry_span_context"] == "ctx"
        assert isinstance(exc_md["stacktrace"], traceback.StackSummary)
        assert exc_md["stacktrace"][-1].name == "boom"

    def test_base_exception_span_has_kind_exit(self, d: Dispatcher) -> None:
        rec = self.attach(d)

        def interrupted() -> Any:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            d.span(self.PREFIX, {}, interrupted)
        assert rec.calls[-1][0] == self.EXCEPTION
        assert rec.calls[-1][2]["kind"] == "exit"
        assert isinstance(rec.calls[-1][2]["reason"], KeyboardInterrupt)

    def test_unique_default_contexts(self, d: Dispatcher) -> None:
        rec = self.attach(d)
        d.span(self.PREFIX, {}, lambda: ("ok", {}))
        first = rec.calls[0][2]["telemetry_span_context"]
        assert first is not None
        assert rec.calls[1][2]["telemetry_span_context"] == first  # stop carries the start's
        d.span(self.PREFIX, {}, lambda: ("ok", {}))
        second = rec.calls[2][2]["telemetry_span_context"]
        assert second != first
        assert rec.calls[3][2]["telemetry_span_context"] == second

    def test_given_context_is_kept_on_every_event(self, d: Dispatcher) -> None:
        rec = self.attach(d)
        d.span(self.PREFIX, {"telemetry_span_context": "mine"}, lambda: ("ok", {"other": 1}))
        assert [c[2]["telemetry_span_context"] for c in rec.calls] == ["mine", "mine"]
        assert rec.calls[1][2] == {"other": 1, "telemetry_span_context": "mine"}
        with pytest.raises(ValueError):
            d.span(self.PREFIX, {"telemetry_span_context": "again"}, lambda: (_ for _ in ()).throw(ValueError()))
        assert [c[2]["telemetry_span_context"] for c in rec.calls[2:]] == ["again", "again"]

    def test_start_metadata_is_not_mutated(self, d: Dispatcher) -> None:
        self.attach(d)
        start_meta = {"some": "x"}
        d.span(self.PREFIX, start_meta, lambda: (1, {}))
        assert start_meta == {"some": "x"}

    @pytest.mark.parametrize("outcome", ["oops", ("only",), (1, 2), (1, {}, {}, {}), (1, 5, {}), None])
    def test_bad_return_shape(self, d: Dispatcher, outcome: Any) -> None:
        # as Erlang's badmatch inside the try: an exception event, then the error
        rec = self.attach(d)
        with pytest.raises(TypeError) as info:
            d.span(self.PREFIX, {}, lambda: outcome)
        assert repr(outcome) in str(info.value)
        assert "(result, stop_metadata)" in str(info.value)
        assert rec.names == [self.START, self.EXCEPTION]
        assert rec.calls[1][2]["kind"] == "error"
        assert rec.calls[1][2]["reason"] is info.value

    def test_bad_arguments(self, d: Dispatcher) -> None:
        with pytest.raises(TypeError, match="'some.action'"):
            d.span("some.action", {}, lambda: (1, {}))
        with pytest.raises(TypeError, match=r"start_metadata=\[1\]"):
            d.span(self.PREFIX, [1], lambda: (1, {}))
        with pytest.raises(TypeError, match="function=42"):
            d.span(self.PREFIX, {}, 42)


# --------------------------------------------------------------------------- Python port rules


def test_handlers_run_in_attach_order(d: Dispatcher) -> None:
    order: list[str] = []
    for name in ("c", "a", "b"):
        d.attach(name, EVENT, lambda *args, n=name: order.append(n))
    d.execute(EVENT, {})
    assert order == ["c", "a", "b"]


def test_attach_many_checks_its_names(d: Dispatcher, handler_id: str) -> None:
    with pytest.raises(TypeError, match=r"looks like a single event name"):
        d.attach_many(handler_id, EVENT, Recorder())
    with pytest.raises(TypeError, match="'a.b'"):
        d.attach_many(handler_id, "a.b", Recorder())
    with pytest.raises(TypeError, match="None"):
        d.attach_many(handler_id, None, Recorder())
    with pytest.raises(ValueError, match=r"event_names=\[\]"):
        d.attach_many(handler_id, [], Recorder())
    # duplicates are attached once
    rec = Recorder()
    d.attach_many(handler_id, [EVENT1, EVENT1, EVENT2], rec)
    d.execute(EVENT1, {})
    assert len(rec.calls) == 1
    assert [h["event_name"] for h in d.list_handlers()] == [EVENT1, EVENT2]
    # any iterable of names
    d.attach_many("gen", (e for e in [EVENT3]), rec)
    assert d.list_handlers(EVENT3)[0]["id"] == "gen"


class TestHandlerFailure:
    """A handler attached to several events fails on one of them."""

    def test_failure_on_one_of_several_events(self, d: Dispatcher, caplog: pytest.LogCaptureFixture) -> None:
        seen: list[Any] = []

        def flaky(event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
            seen.append(event_name)
            if event_name == EVENT2:
                raise ValueError(f"cannot handle {measurements['n']}")

        before, after = Recorder(), Recorder()
        failures = Recorder()
        d.attach("before", EVENT2, before)
        d.attach_many("flaky", [EVENT1, EVENT2, EVENT3], flaky, {"cfg": 1})
        d.attach("after", EVENT2, after)
        d.attach("failures", HANDLER_FAILURE, failures)

        with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
            d.execute(EVENT1, {"n": 1})
            d.execute(EVENT2, {"n": 2}, {"m": 2})  # the caller never sees the error
            d.execute(EVENT3, {"n": 3})
            d.execute(EVENT2, {"n": 4})

        assert seen == [EVENT1, EVENT2]  # detached from EVENT3 too
        assert [c[1]["n"] for c in before.calls] == [2, 4]
        assert [c[1]["n"] for c in after.calls] == [2, 4]  # the others still ran
        assert len(failures.calls) == 1  # emitted once
        _, measurements, metadata, _ = failures.calls[0]
        assert set(measurements) == {"system_time", "monotonic_time"}
        assert all(type(v) is int for v in measurements.values())
        assert metadata["event_name"] == EVENT2
        assert metadata["handler_id"] == "flaky"
        assert metadata["handler_config"] == {"cfg": 1}
        assert metadata["kind"] == "error"
        assert isinstance(metadata["reason"], ValueError) and str(metadata["reason"]) == "cannot handle 2"
        assert metadata["stacktrace"][-1].name == "flaky"
        assert set(metadata) == {"event_name", "handler_id", "handler_config", "kind", "reason", "stacktrace"}
        validate_event(HANDLER_FAILURE, measurements, metadata)
        assert [h["id"] for h in d.list_handlers()] == ["before", "after", "failures"]
        logged = [r for r in caplog.records if r.name == "pytest_baml_telemetry"]
        assert len(logged) == 1 and "'flaky'" in logged[0].getMessage() and "a.second.event" in logged[0].getMessage()
        assert "ValueError: cannot handle 2" in logged[0].getMessage()

    def test_failing_failure_handler_does_not_loop(self, d: Dispatcher) -> None:
        d.attach("bad", EVENT, raise_on_event)
        d.attach("bad-failure", HANDLER_FAILURE, raise_on_event)
        d.execute(EVENT, {})
        assert d.list_handlers() == []

    def test_reattached_id_is_not_detached_by_a_stale_failure(self, d: Dispatcher) -> None:
        # the failure detaches the record that failed, not a newer handler with the same id
        calls: list[str] = []

        def first(*args: Any) -> None:
            d.detach("h")
            d.attach("h", EVENT, lambda *a: calls.append("second"))
            raise RuntimeError("first fails after being replaced")

        d.attach("h", EVENT, first)
        d.execute(EVENT, {})
        assert [h["id"] for h in d.list_handlers()] == ["h"]
        d.execute(EVENT, {})
        assert calls == ["second"]

    @pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, asyncio.CancelledError])
    def test_interrupt_in_handler(self, d: Dispatcher, interrupt: type, caplog: pytest.LogCaptureFixture) -> None:
        def handler(*args: Any) -> None:
            raise interrupt()

        failures = Recorder()
        d.attach("interrupting", EVENT, handler, "cfg")
        d.attach("failures", HANDLER_FAILURE, failures)
        with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
            with pytest.raises(interrupt):
                d.execute(EVENT, {})
        assert d.list_handlers(EVENT) == []
        assert len(failures.calls) == 1
        metadata = failures.calls[0][2]
        assert metadata["kind"] == "exit"
        assert isinstance(metadata["reason"], interrupt)
        assert metadata["handler_id"] == "interrupting" and metadata["handler_config"] == "cfg"
        assert any("interrupting" in r.getMessage() for r in caplog.records)
        d.execute(EVENT, {})  # detached: no second interrupt

    def test_other_base_exception_is_swallowed_with_kind_exit(self, d: Dispatcher) -> None:
        class Custom(BaseException):
            pass

        failures = Recorder()
        d.attach("custom", EVENT, lambda *a: (_ for _ in ()).throw(Custom()))
        d.attach("failures", HANDLER_FAILURE, failures)
        d.execute(EVENT, {})
        assert failures.calls[0][2]["kind"] == "exit"


class TestBadInput:
    @pytest.mark.parametrize("measurements", [None, 1, [("a", 1)], "duration=1"])
    @pytest.mark.parametrize("attached", [False, True])
    def test_non_mapping_measurements(self, d: Dispatcher, measurements: Any, attached: bool) -> None:
        rec = Recorder()
        if attached:
            d.attach("h", EVENT, rec)
        d.execute(EVENT, {})  # the name is known (and cached) first
        with pytest.raises(TypeError) as info:
            d.execute(EVENT, measurements)
        assert f"measurements={measurements!r}" in str(info.value)
        assert "a.test.event" in str(info.value)
        assert len(rec.calls) == (1 if attached else 0)

    @pytest.mark.parametrize("metadata", [1, [("a", 1)], "x"])
    @pytest.mark.parametrize("attached", [False, True])
    def test_non_mapping_metadata(self, d: Dispatcher, metadata: Any, attached: bool) -> None:
        rec = Recorder()
        if attached:
            d.attach("h", EVENT, rec)
        with pytest.raises(TypeError) as info:
            d.execute(EVENT, {}, metadata)
        assert f"metadata={metadata!r}" in str(info.value)
        assert rec.calls == []

    def test_other_mappings_are_accepted(self, d: Dispatcher) -> None:
        rec = Recorder()
        d.attach("h", EVENT, rec)
        m = types.MappingProxyType({"a": 1})
        md = types.MappingProxyType({"b": 2})
        d.execute(EVENT, m, md)
        assert rec.calls == [(EVENT, m, md, None)]

    @pytest.mark.parametrize("function", [42, None, "print"])
    def test_non_callable_handler(self, d: Dispatcher, function: Any) -> None:
        with pytest.raises(TypeError) as info:
            d.attach("h", EVENT, function)
        assert repr(function) in str(info.value) and "not callable" in str(info.value)
        assert d.list_handlers() == []

    def test_unhashable_handler_id(self, d: Dispatcher) -> None:
        with pytest.raises(TypeError, match=r"handler_id=\['x'\] is not hashable"):
            d.attach(["x"], EVENT, Recorder())
        with pytest.raises(TypeError, match=r"handler_id=\{\} is not hashable"):
            d.attach_many({}, [EVENT], Recorder())
        assert d.detach(["x"]) is False
        assert d.list_handlers() == []

    def test_any_hashable_id(self, d: Dispatcher) -> None:
        d.attach(("tuple", 1), EVENT, Recorder())
        d.attach(7, EVENT1, Recorder())
        assert d.detach(("tuple", 1)) is True
        assert d.detach(7) is True


def test_detach_returns_bool(d: Dispatcher) -> None:
    d.attach("h", EVENT, Recorder())
    assert d.detach("h") is True
    assert d.detach("h") is False
    assert d.detach("never") is False


def test_repr_names_the_dispatcher(d: Dispatcher) -> None:
    d.attach("h", EVENT, Recorder())
    assert repr(d) == "<Dispatcher 'test' with 1 handler(s)>"


# --------------------------------------------------------------------------- default dispatcher


@pytest.fixture
def cleanup_default() -> Iterator[list[Any]]:
    ids: list[Any] = []
    yield ids
    for hid in ids:
        pbt.detach(hid)


def test_module_level_functions_use_the_default_dispatcher(cleanup_default: list[Any]) -> None:
    from pytest_baml_telemetry import dispatcher as dispatcher_module

    hid = f"default-{uuid.uuid4().hex}"
    many = f"default-many-{uuid.uuid4().hex}"
    cleanup_default += [hid, many]
    rec = Recorder()
    event = ("pbt_test", uuid.uuid4().hex, "event")
    pbt.attach(hid, event, rec, "cfg")
    pbt.attach_many(many, [event + ("start",), event + ("stop",)], rec)
    assert [h["id"] for h in pbt.list_handlers(event[:2])] == [hid, many, many]
    assert [h["id"] for h in dispatcher_module.default_dispatcher.list_handlers(event[:2])] == [hid, many, many]
    with pytest.raises(HandlerExistsError):
        pbt.attach(hid, event, rec)

    pbt.execute(event, {"n": 1})
    assert pbt.span(event, {"k": 1}, lambda: ("res", {"done": True})) == "res"
    assert rec.names == [event, event + ("start",), event + ("stop",)]
    assert rec.calls[0] == (event, {"n": 1}, {}, "cfg")

    assert pbt.detach(hid) is True and pbt.detach(many) is True
    assert pbt.detach(hid) is False
    assert pbt.list_handlers(event[:2]) == []
    pbt.execute(event, {"n": 2})
    assert len(rec.calls) == 3
    # an isolated dispatcher does not see the default one's handlers, nor the reverse
    iso = Dispatcher()
    iso.attach(hid, event, rec)
    pbt.execute(event, {"n": 3})
    assert len(rec.calls) == 3


# --------------------------------------------------------------------------- threads


def test_attach_detach_racing_execute_from_8_threads(d: Dispatcher) -> None:
    rounds = 400
    executors = 4
    stable_counts: dict[str, list[int]] = {"stable-1": [], "stable-2": []}
    for sid, bucket in stable_counts.items():
        d.attach_many(sid, [EVENT1, EVENT2], lambda e, m, md, cfg: cfg.append(m["i"]), bucket)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)
    failures = Recorder()
    d.attach("failures", HANDLER_FAILURE, failures)

    def executor(n: int) -> None:
        try:
            barrier.wait()
            for i in range(rounds):
                d.execute(EVENT1 if i % 2 else EVENT2, {"i": n * rounds + i}, {"t": n})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def churner(n: int) -> None:
        try:
            barrier.wait()
            for i in range(rounds):
                hid = f"churn-{n}-{i}"
                if i % 3 == 0:
                    d.attach(hid, EVENT1, raise_on_event)  # may be detached by a failure
                else:
                    d.attach_many(hid, [EVENT1, EVENT2, ("x", str(i))], lambda *a: None)
                d.list_handlers(("a",))
                d.detach(hid)
                assert d.detach(hid) is False
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=executor, args=(n,)) for n in range(executors)]
        threads += [threading.Thread(target=churner, args=(n,)) for n in range(8 - executors)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        sys.setswitchinterval(old)

    assert not any(t.is_alive() for t in threads)
    assert errors == []
    expected = sorted(range(executors * rounds))
    for sid, bucket in stable_counts.items():
        assert sorted(bucket) == expected, sid  # every event, exactly once
    # the final table is consistent: only the stable handlers (and the failure one) remain
    listed = d.list_handlers()
    assert sorted((h["id"], h["event_name"]) for h in listed) == sorted(
        [("stable-1", EVENT1), ("stable-1", EVENT2), ("stable-2", EVENT1), ("stable-2", EVENT2), ("failures", HANDLER_FAILURE)]
    )
    for event in (EVENT1, EVENT2):
        before = {sid: len(b) for sid, b in stable_counts.items()}
        d.execute(event, {"i": -1})
        assert {sid: len(b) for sid, b in stable_counts.items()} == {sid: n + 1 for sid, n in before.items()}
    # every failure event names a churn handler that raised, once per such handler at most
    failed_ids = [c[2]["handler_id"] for c in failures.calls]
    assert len(failed_ids) == len(set(failed_ids))
    assert all(hid.startswith("churn-") and int(hid.rsplit("-", 1)[1]) % 3 == 0 for hid in failed_ids)


class TestFastPath:
    """handlers_for / handler_failed: the public path of code that runs the handlers itself."""

    def test_handlers_for_follows_attach_and_detach(self, d: Dispatcher, handler_id: str) -> None:
        assert not d.handlers_for(EVENT)
        d.attach(handler_id, EVENT, raise_on_event, {"c": 1})
        d.attach("second", EVENT, Recorder())
        handlers = d.handlers_for(EVENT)
        assert handlers and all(isinstance(h, AttachedHandler) for h in handlers)
        assert [(h.id, h.event_name, h.config) for h in handlers] == [(handler_id, EVENT, {"c": 1}), ("second", EVENT, None)]
        assert not d.handlers_for(EVENT1) and not d.handlers_for(EVENT[:2])  # exact names only
        d.detach(handler_id)
        assert [h.id for h in d.handlers_for(EVENT) or ()] == ["second"]
        d.clear()
        assert not d.handlers_for(EVENT)

    def test_handlers_for_sees_names_cached_by_execute(self, d: Dispatcher, handler_id: str) -> None:
        d.execute(EVENT, {})  # caches the name with no handler
        assert d.handlers_for(EVENT) == ()
        rec = Recorder()
        d.attach(handler_id, EVENT, rec)
        assert [h.function for h in d.handlers_for(EVENT) or ()] == [rec]

    def test_handler_failed_applies_the_failure_rules(self, d: Dispatcher, handler_id: str, caplog: pytest.LogCaptureFixture) -> None:
        failures = Recorder()
        d.attach("failures", HANDLER_FAILURE, failures)
        d.attach(handler_id, EVENT, raise_on_event, "cfg")
        (handler,) = d.handlers_for(EVENT) or ()
        try:
            handler.function(EVENT, {}, {}, handler.config)
        except RuntimeError as exc:
            with caplog.at_level(logging.ERROR, logger="pytest_baml_telemetry"):
                d.handler_failed(handler, EVENT, exc)
                d.handler_failed(handler, EVENT, exc)  # reported once, whoever reports it again
        assert not d.handlers_for(EVENT)
        assert len(failures.calls) == 1
        name, measurements, metadata, _ = failures.calls[0]
        validate_event(name, measurements, metadata)
        assert (metadata["handler_id"], metadata["handler_config"], metadata["kind"]) == (handler_id, "cfg", "error")
        assert len([r for r in caplog.records if "has been detached" in r.getMessage()]) == 1

    def test_handler_failed_reraises_interrupts(self, d: Dispatcher, handler_id: str) -> None:
        d.attach(handler_id, EVENT, Recorder())
        (handler,) = d.handlers_for(EVENT) or ()
        with pytest.raises(KeyboardInterrupt):
            d.handler_failed(handler, EVENT, KeyboardInterrupt())
        assert not d.handlers_for(EVENT)

    def test_span_contexts_are_shared_with_new_span_context(self) -> None:
        a = new_span_context()
        b = next(span_contexts)
        assert isinstance(a, int) and b > a and new_span_context() > b
