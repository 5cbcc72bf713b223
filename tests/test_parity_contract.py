"""Issue 12, contract decisions: stop and exception events carry the same call metadata keys,
and exception events carry token measurements (None when unknown, the usage when set)."""

from __future__ import annotations

import traceback
from typing import Any

import pytest

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_STOP,
    ContractViolation,
    Dispatcher,
    Emitter,
    StreamAbandoned,
    Usage,
    VirtualClock,
    validate_event,
    validate_stream,
)
from pytest_baml_telemetry.contract import ALWAYS_EMITTED

CALL_KEYS = ("model", "provider", "client_name", "num_attempts", "request_id")
TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens")


class Events:
    def __init__(self, dispatcher: Dispatcher, names: Any) -> None:
        self.items: list[tuple[Any, Any, Any]] = []
        dispatcher.attach_many("events", list(names), self)

    def __call__(self, event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
        self.items.append((event_name, measurements, metadata))

    def last(self) -> tuple[Any, Any, Any]:
        return self.items[-1]


@pytest.fixture
def emitter() -> Emitter:
    return Emitter(dispatcher=Dispatcher("parity-contract"), clock=VirtualClock())


@pytest.fixture
def events(emitter: Emitter) -> Events:
    return Events(emitter.dispatcher, emitter.event_names)


def test_always_emitted_names_the_issue_keys() -> None:
    for kind in ("stop", "exception"):
        measurements, metadata = ALWAYS_EMITTED[kind]
        assert set(TOKEN_KEYS) <= set(measurements)
        assert tuple(metadata) == CALL_KEYS


def test_bare_stop_and_exception_carry_every_key_as_none(emitter: Emitter, events: Events) -> None:
    with emitter.call("F"):
        pass
    stop = events.last()
    with pytest.raises(ValueError), emitter.call("F"):
        raise ValueError("boom")
    exc = events.last()
    for name, m, md in (stop, exc):
        kind = name[-1]
        keys_m, keys_md = ALWAYS_EMITTED[kind]
        for key in keys_m:
            assert key in m, (kind, key)
        for key in TOKEN_KEYS:
            assert m[key] is None, (kind, key)
        for key in keys_md:
            assert key in md and md[key] is None, (kind, key)
        assert "response_model" not in md
    validate_stream(events.items)


def test_exception_carries_usage_set_before_it(emitter: Emitter, events: Events) -> None:
    with pytest.raises(RuntimeError), emitter.call("F") as call:
        call.set_usage(input_tokens=100, output_tokens=7, cached_input_tokens=40)
        call.set(
            model="gpt-4o", provider="openai", client_name="GPT4o", num_attempts=3, request_id="req-9",
            response_model="gpt-4o-2024-08-06",
        )
        raise RuntimeError("validation failed")
    name, m, md = events.last()
    assert name == CALL_EXCEPTION
    assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (100, 7, 107, 40)
    assert md["model"] == "gpt-4o" and md["provider"] == "openai" and md["client_name"] == "GPT4o"
    assert md["num_attempts"] == 3 and md["request_id"] == "req-9"
    assert md["response_model"] == "gpt-4o-2024-08-06"
    assert md["kind"] == "error" and isinstance(md["stacktrace"], traceback.StackSummary)
    validate_stream(events.items)


def test_exception_with_a_usage_object_and_partial_counts(emitter: Emitter, events: Events) -> None:
    with pytest.raises(RuntimeError), emitter.call("F") as call:
        call.set_usage(Usage(input_tokens=5))
        raise RuntimeError("x")
    _, m, _ = events.last()
    assert (m["input_tokens"], m["output_tokens"], m["total_tokens"], m["cached_input_tokens"]) == (5, None, None, None)


def test_not_billed_failure_carries_zero_tokens(emitter: Emitter, events: Events) -> None:
    with pytest.raises(RuntimeError), emitter.call("F") as call:
        call.set_usage(0, 0, 0)
        raise RuntimeError("429")
    _, m, _ = events.last()
    assert m["total_tokens"] == 0 and m["input_tokens"] == 0 and m["output_tokens"] == 0


def test_stop_response_model_when_set(emitter: Emitter, events: Events) -> None:
    with emitter.call("F") as call:
        call.set(response_model="gpt-4o-mini-2024-07-18", provider="openai")
    _, _, md = events.last()
    assert md["response_model"] == "gpt-4o-mini-2024-07-18" and md["provider"] == "openai"
    assert md["client_name"] is None and md["num_attempts"] is None and md["request_id"] is None


@pytest.mark.asyncio
async def test_async_exception_carries_the_keys(emitter: Emitter, events: Events) -> None:
    with pytest.raises(KeyError):
        async with emitter.call("F") as call:
            call.set_usage(1, 2)
            raise KeyError("k")
    _, m, md = events.last()
    assert m["total_tokens"] == 3
    assert all(k in md for k in CALL_KEYS)


class _Stream:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def __iter__(self) -> Any:
        yield "a"

    def get_final_response(self) -> str:
        if self.fail:
            raise RuntimeError("cut")
        return "ab"


def test_stream_failure_and_abandon_carry_the_keys(emitter: Emitter, events: Events) -> None:
    stream = emitter.stream(_Stream(fail=True), "S")
    list(stream)
    with pytest.raises(RuntimeError):
        stream.get_final_response()
    _, m, md = events.last()
    assert all(m[k] is None for k in TOKEN_KEYS) and all(md[k] is None for k in CALL_KEYS)
    stream2 = emitter.stream(_Stream(fail=False), "S")
    stream2.close()  # type: ignore[union-attr]
    name, m, md = events.last()
    assert name == CALL_EXCEPTION and isinstance(md["reason"], StreamAbandoned)
    assert all(m[k] is None for k in TOKEN_KEYS) and all(md[k] is None for k in CALL_KEYS)


def _exception_event(**measurements: Any) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    m = {"duration": 1, "monotonic_time": 2, **measurements}
    md = {
        "resource": None, "action": None, "function_name": "F", "client_module": None, "streaming": False,
        "kind": "error", "reason": ValueError("x"), "stacktrace": traceback.StackSummary.from_list([]),
        "telemetry_span_context": 1,
    }
    return CALL_EXCEPTION, m, md


def test_validate_event_keeps_an_old_exception_event_without_tokens_valid() -> None:
    validate_event(*_exception_event())


def test_validate_event_checks_exception_tokens() -> None:
    validate_event(*_exception_event(input_tokens=3, output_tokens=4, total_tokens=7, cached_input_tokens=None))
    validate_event(*_exception_event(input_tokens=None, output_tokens=None, total_tokens=None))
    with pytest.raises(ContractViolation, match="total_tokens"):
        validate_event(*_exception_event(input_tokens=3, output_tokens=4, total_tokens=8))
    with pytest.raises(ContractViolation, match="total_tokens"):
        validate_event(*_exception_event(input_tokens=None, output_tokens=4, total_tokens=4))
    with pytest.raises(ContractViolation, match="input_tokens"):
        validate_event(*_exception_event(input_tokens=-1, output_tokens=None, total_tokens=None))
    with pytest.raises(ContractViolation, match="cached_input_tokens"):
        validate_event(*_exception_event(cached_input_tokens="3"))


@pytest.mark.parametrize(
    ("key", "value"),
    [("provider", 3), ("client_name", b"x"), ("num_attempts", -1), ("request_id", 1.5), ("model", 1)],
)
def test_validate_event_types_the_call_metadata_on_exception_and_stop(key: str, value: Any) -> None:
    name, m, md = _exception_event()
    md[key] = value
    with pytest.raises(ContractViolation, match=key):
        validate_event(name, m, md)
    stop_m = {"duration": 1, "monotonic_time": 2, "input_tokens": None, "output_tokens": None, "total_tokens": None}
    stop_md = {
        "resource": None, "action": None, "function_name": "F", "client_module": None, "streaming": False,
        "model": None, "result": None, "telemetry_span_context": 1, key: value,
    }
    with pytest.raises(ContractViolation, match=key):
        validate_event(CALL_STOP, stop_m, stop_md)
