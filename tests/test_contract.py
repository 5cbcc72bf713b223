"""The event contract: event names, validate_event, validate_stream, convert_time_unit and Usage."""

from __future__ import annotations

import traceback
from types import SimpleNamespace
from typing import Any

import pytest

from pytest_baml_telemetry import (
    CALL_EXCEPTION,
    CALL_START,
    CALL_STOP,
    HANDLER_FAILURE,
    ContractViolation,
    StreamAbandoned,
    Usage,
    convert_time_unit,
    validate_event,
    validate_stream,
)
from pytest_baml_telemetry.contract import (
    CALL_KINDS,
    EVENT_SPECS,
    call_event_name,
    check_token,
    event_kind,
    format_event_name,
    parse_event_name,
    split_call_event,
)


def stack() -> traceback.StackSummary:
    try:
        raise ValueError("x")
    except ValueError as exc:
        return traceback.extract_tb(exc.__traceback__)


def start(span: Any = 1, *, name: tuple[str, ...] = CALL_START, function_name: str = "ExtractResume", streaming: bool = False) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    return (
        name,
        {"system_time": 1_767_225_600_000_000_000, "monotonic_time": 1_000},
        {
            "resource": None,
            "action": None,
            "function_name": function_name,
            "arguments": {"resume": "text"},
            "client_module": "baml_client",
            "streaming": streaming,
            "telemetry_span_context": span,
        },
    )


def stop(span: Any = 1, *, name: tuple[str, ...] = CALL_STOP, function_name: str = "ExtractResume", streaming: bool = False, tokens: tuple[Any, Any] = (10, 5)) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    i, o = tokens
    return (
        name,
        {
            "duration": 250,
            "monotonic_time": 1_250,
            "input_tokens": i,
            "output_tokens": o,
            "total_tokens": None if i is None or o is None else i + o,
        },
        {
            "resource": None,
            "action": None,
            "function_name": function_name,
            "client_module": "baml_client",
            "streaming": streaming,
            "model": "gpt-4o-mini",
            "result": {"name": "Ada"},
            "telemetry_span_context": span,
        },
    )


def exception(span: Any = 1, *, name: tuple[str, ...] = CALL_EXCEPTION, function_name: str = "ExtractResume", streaming: bool = False, kind: str = "error") -> tuple[Any, dict[str, Any], dict[str, Any]]:
    return (
        name,
        {"duration": 250, "monotonic_time": 1_250},
        {
            "resource": None,
            "action": None,
            "function_name": function_name,
            "client_module": None,
            "streaming": streaming,
            "kind": kind,
            "reason": ValueError("boom"),
            "stacktrace": stack(),
            "telemetry_span_context": span,
        },
    )


def failure() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    return (
        HANDLER_FAILURE,
        {"system_time": 1, "monotonic_time": 2},
        {
            "event_name": CALL_STOP,
            "handler_id": "h",
            "handler_config": None,
            "kind": "error",
            "reason": RuntimeError("handler"),
            "stacktrace": stack(),
        },
    )


VALID = {
    "start": start,
    "stop": stop,
    "exception": exception,
    "handler_failure": failure,
}


# --------------------------------------------------------------------------- validate_event: accepts


class TestValidEvents:
    @pytest.mark.parametrize("kind", sorted(VALID))
    def test_every_kind(self, kind: str) -> None:
        validate_event(*VALID[kind]())

    @pytest.mark.parametrize("tokens", [(10, 5), (0, 0), (None, None), (10, None), (None, 5)])
    def test_stop_tokens(self, tokens: tuple[Any, Any]) -> None:
        validate_event(*stop(tokens=tokens))

    def test_stop_optional_fields(self) -> None:
        name, m, md = stop(streaming=True)
        m.update(cached_input_tokens=4, time_to_first_chunk=120)
        md.update(provider="openai", client_name="GPT4o", num_attempts=2, request_id="req_1")
        validate_event(name, m, md)
        m.update(cached_input_tokens=None, time_to_first_chunk=None)
        md.update(provider=None, client_name=None, num_attempts=None, request_id=None)
        validate_event(name, m, md)

    @pytest.mark.parametrize("kind", ["error", "exit", "throw"])
    def test_exception_kinds(self, kind: str) -> None:
        validate_event(*exception(kind=kind))

    def test_exception_reason_any_base_exception(self) -> None:
        name, m, md = exception(kind="exit")
        md["reason"] = StreamAbandoned("ExtractResume")
        validate_event(name, m, md)
        md["reason"] = KeyboardInterrupt()
        validate_event(name, m, md)

    def test_any_prefix_and_extra_keys(self) -> None:
        name, m, md = start(name=("my_app", "llm", "call", "start"))
        m["extra"] = "anything"
        md["extra"] = object()
        validate_event(name, m, md)
        validate_event(*stop(name=("my_app", "call", "stop")))

    def test_list_name_and_hashable_span(self) -> None:
        name, m, md = start(span=("node", 3))
        validate_event(list(name), m, md)

    def test_event_kind(self) -> None:
        assert event_kind(CALL_START) == "start"
        assert event_kind(("x", "call", "exception")) == "exception"
        assert event_kind(HANDLER_FAILURE) == "handler_failure"
        assert event_kind(("call", "stop")) is None
        assert event_kind("ash_baml.call.stop") is None


# --------------------------------------------------------------------------- validate_event: rejects


def required_keys(kind: str) -> list[tuple[str, str]]:
    spec = EVENT_SPECS[kind]
    return [("measurements", f.key) for f in spec.measurements if f.required] + [
        ("metadata", f.key) for f in spec.metadata if f.required
    ]


ALL_REQUIRED = [(kind, where, key) for kind in sorted(VALID) for where, key in required_keys(kind)]


@pytest.mark.parametrize(("kind", "where", "key"), ALL_REQUIRED, ids=[f"{k}-{w}-{key}" for k, w, key in ALL_REQUIRED])
def test_each_missing_required_key(kind: str, where: str, key: str) -> None:
    name, m, md = VALID[kind]()
    del (m if where == "measurements" else md)[key]
    with pytest.raises(ContractViolation) as info:
        validate_event(name, m, md)
    text = str(info.value)
    assert ".".join(name) in text
    assert f"missing the key {key!r}" in text
    assert info.value.key == key
    assert info.value.event_name == name


def test_required_keys_match_the_spec() -> None:
    # the contract table, spelled out, so a silent change of the table fails here
    assert required_keys("start") == [
        ("measurements", "system_time"), ("measurements", "monotonic_time"),
        ("metadata", "resource"), ("metadata", "action"), ("metadata", "function_name"),
        ("metadata", "client_module"), ("metadata", "streaming"), ("metadata", "arguments"),
        ("metadata", "telemetry_span_context"),
    ]  # fmt: skip
    assert sorted(k for w, k in required_keys("stop") if w == "measurements") == [
        "duration", "input_tokens", "monotonic_time", "output_tokens", "total_tokens",
    ]  # fmt: skip
    assert sorted(k for w, k in required_keys("stop") if w == "metadata") == [
        "action", "client_module", "function_name", "model", "resource", "result", "streaming",
        "telemetry_span_context",
    ]  # fmt: skip
    assert sorted(k for w, k in required_keys("exception") if w == "metadata") == [
        "action", "client_module", "function_name", "kind", "reason", "resource", "stacktrace",
        "streaming", "telemetry_span_context",
    ]  # fmt: skip
    assert sorted(k for w, k in required_keys("handler_failure")) == [
        "event_name", "handler_config", "handler_id", "kind", "monotonic_time", "reason", "stacktrace",
        "system_time",
    ]  # fmt: skip


BAD_VALUES: list[tuple[str, str, str, Any]] = [
    # (kind, where, key, bad value)
    ("start", "measurements", "system_time", 1.5),
    ("start", "measurements", "system_time", True),  # bool is not an int here
    ("start", "measurements", "system_time", "1"),
    ("start", "measurements", "monotonic_time", None),
    ("start", "measurements", "monotonic_time", False),
    ("start", "metadata", "function_name", ""),
    ("start", "metadata", "function_name", None),
    ("start", "metadata", "function_name", 3),
    ("start", "metadata", "action", 3),
    ("start", "metadata", "client_module", b"baml_client"),
    ("start", "metadata", "streaming", 1),
    ("start", "metadata", "streaming", "false"),
    ("start", "metadata", "arguments", [("resume", "x")]),
    ("start", "metadata", "arguments", None),
    ("start", "metadata", "telemetry_span_context", None),
    ("start", "metadata", "telemetry_span_context", ["unhashable"]),
    ("stop", "measurements", "duration", -1),
    ("stop", "measurements", "duration", 1.0),
    ("stop", "measurements", "duration", True),
    ("stop", "measurements", "duration", None),
    ("stop", "measurements", "input_tokens", -3),
    ("stop", "measurements", "input_tokens", 2.0),
    ("stop", "measurements", "output_tokens", -1),
    ("stop", "measurements", "output_tokens", True),
    ("stop", "measurements", "total_tokens", -15),
    ("stop", "measurements", "total_tokens", "15"),
    ("stop", "measurements", "cached_input_tokens", -1),
    ("stop", "measurements", "time_to_first_chunk", -5),
    ("stop", "measurements", "time_to_first_chunk", 0.5),
    ("stop", "metadata", "model", 4),
    ("stop", "metadata", "streaming", None),
    ("stop", "metadata", "provider", 1),
    ("stop", "metadata", "num_attempts", -1),
    ("stop", "metadata", "num_attempts", False),
    ("stop", "metadata", "request_id", 7),
    ("exception", "measurements", "duration", -250),
    ("exception", "measurements", "monotonic_time", "now"),
    ("exception", "metadata", "kind", "crash"),
    ("exception", "metadata", "kind", "Error"),
    ("exception", "metadata", "kind", None),
    ("exception", "metadata", "reason", "boom"),  # a string, not the exception itself
    ("exception", "metadata", "reason", ValueError),  # the class, not an instance
    ("exception", "metadata", "stacktrace", "Traceback ..."),
    ("exception", "metadata", "stacktrace", []),
    ("exception", "metadata", "streaming", 0),
    ("handler_failure", "measurements", "system_time", 1.0),
    ("handler_failure", "metadata", "event_name", "ash_baml.call.stop"),
    ("handler_failure", "metadata", "event_name", ()),
    ("handler_failure", "metadata", "handler_id", ["unhashable"]),
    ("handler_failure", "metadata", "kind", "oops"),
    ("handler_failure", "metadata", "reason", "handler"),
    ("handler_failure", "metadata", "stacktrace", None),
]


@pytest.mark.parametrize(
    ("kind", "where", "key", "bad"), BAD_VALUES, ids=[f"{k}-{key}-{bad!r}" for k, _, key, bad in BAD_VALUES]
)
def test_each_wrong_value(kind: str, where: str, key: str, bad: Any) -> None:
    name, m, md = VALID[kind]()
    (m if where == "measurements" else md)[key] = bad
    with pytest.raises(ContractViolation) as info:
        validate_event(name, m, md)
    text = str(info.value)
    assert ".".join(name) in text, text
    assert f"{where}[{key!r}]" in text, text
    assert repr(bad)[:100] in text, text
    assert "expected" in text
    assert info.value.key == key and info.value.value is bad


@pytest.mark.parametrize("tokens", [(10, 5), (10, None), (None, 5), (None, None)])
def test_total_tokens_mismatch(tokens: tuple[Any, Any]) -> None:
    name, m, md = stop(tokens=tokens)
    m["total_tokens"] = 16 if None not in tokens else 0  # 0 is a made-up total when a part is unknown
    with pytest.raises(ContractViolation) as info:
        validate_event(name, m, md)
    assert "total_tokens" in str(info.value)
    if None in tokens:
        assert "None, because" in str(info.value)
    else:
        assert "10 + 5 = 15" in str(info.value) and "= 16" in str(info.value)


def test_total_when_part_unknown_is_rejected_even_if_consistent_looking() -> None:
    name, m, md = stop(tokens=(10, None))
    m["total_tokens"] = 10
    with pytest.raises(ContractViolation, match=r"output_tokens=None"):
        validate_event(name, m, md)


def test_message_names_span_context() -> None:
    name, m, md = stop(span="span-42")
    m["duration"] = -7
    with pytest.raises(ContractViolation, match=r"telemetry_span_context='span-42'.*\['duration'\] = -7"):
        validate_event(name, m, md)


@pytest.mark.parametrize("name", [("ash_baml", "call", "begin"), ("other", "event"), ("ash_baml",)])
def test_not_a_contract_event(name: tuple[str, ...]) -> None:
    _, m, md = start()
    with pytest.raises(ContractViolation, match="not a contract event") as info:
        validate_event(name, m, md)
    assert ".".join(name) in str(info.value)


@pytest.mark.parametrize("name", [(), None, "ash_baml.call.start", ("ash_baml", 1, "start")])
def test_malformed_name(name: Any) -> None:
    _, m, md = start()
    with pytest.raises(ContractViolation) as info:
        validate_event(name, m, md)
    assert repr(name) in str(info.value) or "()" in str(info.value)


@pytest.mark.parametrize("where", ["measurements", "metadata"])
@pytest.mark.parametrize("bad", [None, [("duration", 1)], "x"])
def test_non_mapping_payload(where: str, bad: Any) -> None:
    name, m, md = stop()
    args = (name, bad, md) if where == "measurements" else (name, m, bad)
    with pytest.raises(ContractViolation) as info:
        validate_event(*args)
    assert f"{where} = {bad!r}" in str(info.value)
    assert "expected a mapping" in str(info.value)


def test_contract_violation_is_an_assertion_error() -> None:
    assert issubclass(ContractViolation, AssertionError)


def test_unrepresentable_value_still_reported() -> None:
    class BadRepr:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    name, m, md = start()
    md["function_name"] = BadRepr()
    with pytest.raises(ContractViolation, match="unrepresentable BadRepr"):
        validate_event(name, m, md)


# --------------------------------------------------------------------------- validate_stream


class TestValidateStream:
    def test_valid_interleaved_stream(self) -> None:
        events = [
            start(1),
            start(2, function_name="Other", streaming=True),
            failure(),  # handler failures are not paired
            stop(2, function_name="Other", streaming=True),
            exception(1),
            start(3),
            stop(3, tokens=(None, None)),
        ]
        validate_stream(events)
        validate_stream(iter(events))
        validate_stream([])

    def test_objects_with_attributes(self) -> None:
        events = [SimpleNamespace(name=n, measurements=m, metadata=md) for n, m, md in (start(1), stop(1))]
        validate_stream(events)

    def test_not_an_event(self) -> None:
        with pytest.raises(TypeError, match=r"item 1 = 'nope'"):
            validate_stream([start(1), "nope"])

    def test_an_invalid_event_inside(self) -> None:
        name, m, md = stop(1)
        m["duration"] = -1
        with pytest.raises(ContractViolation, match=r"\['duration'\] = -1"):
            validate_stream([start(1), (name, m, md)])

    def test_unpaired_start(self) -> None:
        with pytest.raises(ContractViolation) as info:
            validate_stream([start(1), stop(1), start(7), start(8)])
        text = str(info.value)
        assert "event 2" in text and "telemetry_span_context=7" in text and "'ExtractResume'" in text
        assert "no stop or exception" in text and "(and 1 more)" in text
        assert info.value.value == 7

    def test_stop_without_start(self) -> None:
        with pytest.raises(ContractViolation, match=r"event 0.*telemetry_span_context=5: no start before it"):
            validate_stream([stop(5)])

    def test_exception_without_start(self) -> None:
        with pytest.raises(ContractViolation, match="no start before it"):
            validate_stream([start(1), exception(2), stop(1)])

    @pytest.mark.parametrize("second", [stop, exception])
    def test_double_end(self, second: Any) -> None:
        with pytest.raises(ContractViolation, match=r"event 2.*a second end for a call that already ended"):
            validate_stream([start(1), stop(1), second(1)])

    def test_stop_and_exception_for_one_call(self) -> None:
        with pytest.raises(ContractViolation, match="already ended"):
            validate_stream([start(1), exception(1), stop(1)])

    def test_duplicate_start(self) -> None:
        with pytest.raises(ContractViolation, match=r"event 1.*=1 was already used"):
            validate_stream([start(1), start(1), stop(1)])

    def test_reused_span_after_end(self) -> None:
        with pytest.raises(ContractViolation, match="already used"):
            validate_stream([start(1), stop(1), start(1), stop(1)])

    def test_function_name_disagreement(self) -> None:
        with pytest.raises(ContractViolation) as info:
            validate_stream([start(1, function_name="A"), stop(1, function_name="B")])
        assert "metadata['function_name'] = 'B'" in str(info.value) and "'A'" in str(info.value)
        assert info.value.key == "function_name"

    def test_streaming_disagreement(self) -> None:
        with pytest.raises(ContractViolation, match=r"metadata\['streaming'\] = False.*has True"):
            validate_stream([start(1, streaming=True), exception(1, streaming=False)])

    def test_prefix_mismatch(self) -> None:
        with pytest.raises(ContractViolation, match=r"other\.call\.stop.*ash_baml\.call\.start.*same prefix"):
            validate_stream([start(1), stop(1, name=("other", "call", "stop"))])

    def test_same_span_on_two_prefixes_is_a_duplicate(self) -> None:
        with pytest.raises(ContractViolation, match="already used"):
            validate_stream([start(1), start(1, name=("other", "call", "start"))])


# --------------------------------------------------------------------------- convert_time_unit


class TestConvertTimeUnit:
    @pytest.mark.parametrize(
        ("value", "src", "dst", "expected"),
        [
            (1_500_000_000, "native", "second", 1),
            (1_999_999_999, "nanosecond", "second", 1),  # ints floor
            (1_999, "nanosecond", "microsecond", 1),
            (999_999, "native", "millisecond", 0),
            (-1, "nanosecond", "microsecond", -1),  # floors toward minus infinity, as Erlang
            (3, "second", "millisecond", 3_000),
            (3, "millisecond", "native", 3_000_000),
            (7, "microsecond", "nanosecond", 7_000),
            (42, "native", "nanosecond", 42),
            (0, "second", "native", 0),
        ],
    )
    def test_ints(self, value: int, src: str, dst: str, expected: int) -> None:
        result = convert_time_unit(value, src, dst)
        assert result == expected and type(result) is int

    def test_floats_stay_floats(self) -> None:
        assert convert_time_unit(1.5, "second", "millisecond") == pytest.approx(1500.0)
        assert type(convert_time_unit(1.5, "second", "millisecond")) is float
        assert convert_time_unit(1_500.0, "nanosecond", "microsecond") == pytest.approx(1.5)
        assert convert_time_unit(2.0, "native", "native") == 2.0

    @pytest.mark.parametrize("unit", ["seconds", "ms", "", None, "Second", 1])
    def test_bad_units(self, unit: Any) -> None:
        with pytest.raises(ValueError) as info:
            convert_time_unit(1, unit, "second")
        assert f"from_unit={unit!r}" in str(info.value) and "millisecond" in str(info.value)
        with pytest.raises(ValueError) as info:
            convert_time_unit(1, "second", unit)
        assert f"to_unit={unit!r}" in str(info.value)

    def test_unhashable_unit(self) -> None:
        with pytest.raises(ValueError, match=r"from_unit=\[\]"):
            convert_time_unit(1, [], "second")

    @pytest.mark.parametrize("value", ["1", None, True, [1]])
    def test_bad_values(self, value: Any) -> None:
        with pytest.raises(TypeError, match=rf"value={value!r}".replace("[", r"\[").replace("]", r"\]")):
            convert_time_unit(value, "second", "native")


# --------------------------------------------------------------------------- Usage


class TestUsage:
    def test_defaults_are_unknown_not_zero(self) -> None:
        u = Usage()
        assert (u.input_tokens, u.output_tokens, u.cached_input_tokens, u.total_tokens) == (None, None, None, None)

    def test_total(self) -> None:
        assert Usage(10, 5).total_tokens == 15
        assert Usage(0, 0).total_tokens == 0
        assert Usage(10).total_tokens is None
        assert Usage(output_tokens=5).total_tokens is None
        assert Usage(10, 5, cached_input_tokens=4).total_tokens == 15

    @pytest.mark.parametrize(
        ("kwargs", "exc", "shown"),
        [
            ({"input_tokens": -1}, ValueError, "input_tokens=-1"),
            ({"output_tokens": True}, TypeError, "output_tokens=True"),
            ({"cached_input_tokens": 1.5}, TypeError, "cached_input_tokens=1.5"),
            ({"input_tokens": "10"}, TypeError, "input_tokens='10'"),
        ],
    )
    def test_validation(self, kwargs: dict[str, Any], exc: type, shown: str) -> None:
        with pytest.raises(exc) as info:
            Usage(**kwargs)
        assert shown in str(info.value) and "None (unknown)" in str(info.value)

    def test_frozen_and_equal(self) -> None:
        assert Usage(1, 2) == Usage(input_tokens=1, output_tokens=2)
        with pytest.raises(AttributeError):
            Usage(1, 2).input_tokens = 3  # type: ignore[misc]

    def test_coerce(self) -> None:
        u = Usage(1, 2)
        assert Usage.coerce(u) is u
        assert Usage.coerce(None) is None
        assert Usage.coerce({"input_tokens": 3, "output_tokens": 4}) == Usage(3, 4)
        assert Usage.coerce({"cached_input_tokens": 1}) == Usage(cached_input_tokens=1)
        assert Usage.coerce((3, 4)) == Usage(3, 4)
        assert Usage.coerce((3, 4, 1)) == Usage(3, 4, 1)
        assert Usage.coerce((None, 4)) == Usage(output_tokens=4)

    @pytest.mark.parametrize(
        ("value", "exc", "shown"),
        [
            ({"prompt_tokens": 3}, TypeError, "['prompt_tokens']"),
            ("10/5", TypeError, "usage='10/5' (str)"),
            (15, TypeError, "usage=15 (int)"),
            ((1,), TypeError, "usage=(1,)"),
            ([1, 2], TypeError, "usage=[1, 2]"),
            ({"input_tokens": -3}, ValueError, "input_tokens=-3"),
            ((1, True), TypeError, "output_tokens=True"),
        ],
    )
    def test_coerce_rejects(self, value: Any, exc: type, shown: str) -> None:
        with pytest.raises(exc) as info:
            Usage.coerce(value)
        assert shown in str(info.value)

    def test_coerce_names_the_option(self) -> None:
        with pytest.raises(TypeError, match=r"respond\(usage=\)='x'"):
            Usage.coerce("x", name="respond(usage=)")


def test_stream_abandoned_is_a_base_exception() -> None:
    reason = StreamAbandoned("ExtractResume", "was dropped before its final response")
    assert isinstance(reason, BaseException) and not isinstance(reason, Exception)
    assert str(reason) == "stream of ExtractResume was dropped before its final response"
    assert reason.function_name == "ExtractResume"
    assert str(StreamAbandoned()) == "stream of a BAML function closed before its final response"


class TestEventNames:
    """The one event-name parser: check, parse (dotted strings), classify, split, build, format."""

    def test_parse_event_name(self) -> None:
        assert parse_event_name("ash_baml.call.stop") == CALL_STOP
        assert parse_event_name(["a", "b"]) == ("a", "b")
        assert parse_event_name(("a",)) == ("a",)
        with pytest.raises(ValueError, match=r"^invalid event \('a', '', 'b'\): has an empty part"):
            parse_event_name("a..b", what="event")
        with pytest.raises(ValueError, match="has an empty part"):
            parse_event_name("")
        with pytest.raises(TypeError, match="expected a non-empty tuple of non-empty strings"):
            parse_event_name(3)

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            (CALL_START, (("ash_baml",), "start")),
            (("my", "app", "call", "exception"), (("my", "app"), "exception")),
            (("ash_baml", "call", "finish"), None),
            (("call", "stop"), None),
            (("ash_baml", "stop"), None),
            (HANDLER_FAILURE, None),
            ("ash_baml.call.stop", None),
            (None, None),
        ],
    )
    def test_split_call_event(self, name: Any, expected: Any) -> None:
        assert split_call_event(name) == expected
        kind = event_kind(name) if isinstance(name, tuple) else None
        assert (kind if kind in CALL_KINDS else None) == (expected and expected[1])

    def test_call_event_name(self) -> None:
        assert [call_event_name(("ash_baml",), k) for k in CALL_KINDS] == [CALL_START, CALL_STOP, CALL_EXCEPTION]
        assert format_event_name(call_event_name(("x", "y"), "stop")) == "x.y.call.stop"

    def test_check_token(self) -> None:
        assert check_token("input_tokens", None, "f") is None
        assert check_token("input_tokens", 3, "f") == 3
        with pytest.raises(TypeError, match=r"^f\(input_tokens=True\): expected an int >= 0 or None \(unknown\)$"):
            check_token("input_tokens", True, "f")
        with pytest.raises(ValueError, match=r"^f\(input_tokens=-1\): expected an int >= 0 or None \(unknown\)$"):
            check_token("input_tokens", -1, "f")
