"""Each call's arguments are checked as the real runtime checks them (issue 13: "Typed arguments").

The oracle is the real generated typed client (``typed_client``, its base_url unreachable:
baml-py 0.226.3 checks arguments before any HTTP request). It raises
``baml_py.errors.BamlInvalidArgumentError("Invalid argument: " + "  Error: <param>: <detail>\\n"...)``
when a call is made (an async call: when awaited) and when a stream is created, and
``instrument(b)`` emits start + exception for it (no tokens, no model, ``num_attempts`` 0
for a call and ``None`` for a stream). The fake must raise the same class and message, at
the same moment, with the same events, and use no scripted outcome.
"""

from __future__ import annotations

import asyncio

import pytest
from baml_py.errors import BamlInvalidArgumentError

from pytest_baml_telemetry import FakeBamlClient, instrument

# (function, arguments): refused by baml-py 0.226.3 with a message the fake reproduces exactly.
REFUSED = [
    ("MakePlan", {"goal": "x", "constraints": "not a list"}),
    ("Classify", {"text": "x", "labels": ["NOPE"]}),
    ("Classify", {"text": "x", "labels": "LOW"}),
    ("Classify", {"text": "x", "labels": [1]}),
    ("MakePlan", {"goal": 3, "constraints": "a"}),
    ("MakePlan", {"goal": "x", "constraints": ["a", 2, None, 1.5, True]}),
    ("MakePlan", {"goal": 'say "hi"\n', "constraints": [{"k": [1, {}]}, []]}),
    ("Summarize", {"texts": None}),
    ("Summarize", {"texts": ("a",)}),  # a tuple: the runtime cannot convert it and drops it
    ("ExtractPerson", {"text": None}),
    ("ExtractPerson", {"text": 2**70}),
    ("ExtractPerson", {"text": 1e-7}),
    ("ExtractPerson", {"text": float("nan")}),
]
ACCEPTED = [
    ("Classify", {"text": "x", "labels": ["LOW", "HIGH"]}),
    ("Summarize", {"texts": ["a"]}),
    ("Summarize", {"texts": [], "max_words": 3}),
    ("MakePlan", {"goal": "", "constraints": []}),
]


def real_error(b, function, arguments):
    with pytest.raises(BamlInvalidArgumentError) as info:
        getattr(b, function)(**arguments)
    return info.value


def fake_error(fake, function, arguments):
    with pytest.raises(BamlInvalidArgumentError) as info:
        out = getattr(fake, function)(**arguments)
        if asyncio.iscoroutine(out):
            asyncio.run(out)
    return info.value


@pytest.mark.parametrize(("function", "arguments"), REFUSED, ids=lambda x: x if isinstance(x, str) else None)
def test_the_fake_refuses_what_the_real_client_refuses_with_its_class_and_message(typed_client, function, arguments):
    real = real_error(typed_client.b, function, arguments)
    fake = FakeBamlClient(spec=typed_client.b)
    got = fake_error(fake, function, arguments)
    assert type(got) is type(real) is BamlInvalidArgumentError
    assert str(got) == str(real)


def test_the_parity_messages_read_as_measured(typed_client):
    """The two messages of the issue, spelled out (so that a change on either side shows)."""
    fake = FakeBamlClient(spec=typed_client.b)
    assert str(fake_error(fake, "MakePlan", {"goal": "x", "constraints": "not a list"})) == (
        'Invalid argument:   Error: constraints: Expected array, got `String("not a list")`\n'
    )
    assert str(fake_error(fake, "Classify", {"text": "x", "labels": ["NOPE"]})) == (
        "Invalid argument:   Error: labels: Invalid enum Priority: expected one of (LOW | MEDIUM | HIGH), got `NOPE`\n"
    )


def test_an_optional_parameter_reads_like_the_runtimes_union_message(typed_client):
    """For unions the runtime prints its internal type tree; the fake keeps the message's shape."""
    arguments = {"texts": ["a"], "max_words": "3"}
    real = str(real_error(typed_client.b, "Summarize", arguments))
    fake = str(fake_error(FakeBamlClient(spec=typed_client.b), "Summarize", arguments))
    prefix, suffix = "Invalid argument:   Error: max_words: Expected one of ", ', got `String("3")`\n'
    assert real.startswith(prefix) and real.endswith(suffix)
    assert fake == prefix + "(int | null)" + suffix


@pytest.mark.parametrize(("function", "arguments"), ACCEPTED)
def test_what_the_runtime_accepts_the_fake_accepts(typed_client, typed_async_client, function, arguments):
    for b in (typed_client.b, typed_async_client.module.b):
        fake = FakeBamlClient(spec=b)
        fake.respond(function, {"Classify": "LOW", "Summarize": "s", "MakePlan": {"title": "t", "commands": [], "status": "s"}}[function])
        out = getattr(fake, function)(**arguments)
        if asyncio.iscoroutine(out):
            asyncio.run(out)
        assert fake.unused() == []


def test_enum_members_are_accepted(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("Classify", "LOW")
    assert fake.Classify(text="x", labels=[typed_client.types.Priority.HIGH]) is typed_client.types.Priority.LOW


def test_a_stream_raises_when_created_as_the_real_one_does(typed_client, typed_async_client):
    arguments = {"goal": "x", "constraints": "a"}
    with pytest.raises(BamlInvalidArgumentError) as real:
        typed_client.b.stream.MakePlan(**arguments)  # raised here, not at iteration
    for b in (typed_client.b, typed_async_client.module.b):
        fake = FakeBamlClient(spec=b)
        fake.respond("MakePlan", {"title": "t", "commands": [], "status": "s"})
        with pytest.raises(BamlInvalidArgumentError) as got:
            fake.stream.MakePlan(**arguments)
        assert str(got.value) == str(real.value)
        assert fake.unused() != []  # the outcome is still there for a good call
        fake.stream.MakePlan(goal="x", constraints=["a"])


def test_an_async_call_raises_when_awaited(typed_async_client):
    real_b = typed_async_client.module.b
    fake = FakeBamlClient(spec=real_b)
    for b in (real_b, fake):
        pending = b.MakePlan(goal="x", constraints="a")  # no error yet: a coroutine
        assert asyncio.iscoroutine(pending)
        with pytest.raises(BamlInvalidArgumentError, match="constraints: Expected array"):
            asyncio.run(pending)


def _events(capture):
    out = []
    for event in capture.events:
        m = dict(event.metadata)
        reason = m.pop("reason", None)
        out.append((
            event.name[-1], m.get("streaming"), m.get("arguments"), m.get("model"), m.get("provider"),
            m.get("client_name"), m.get("num_attempts"), m.get("request_id"), m.get("kind"),
            event.measurements.get("input_tokens"), event.measurements.get("output_tokens"),
            None if reason is None else (type(reason), str(reason)),
        ))
    return out


def test_the_events_match_instrument_on_the_real_client(typed_client, tel):
    emitter, capture = tel
    real = instrument(typed_client.b, emitter=emitter)
    fake = FakeBamlClient(emitter=emitter, spec=typed_client.b)
    for b in (real, fake):
        with pytest.raises(BamlInvalidArgumentError):
            b.MakePlan(goal="x", constraints="not a list")
        with pytest.raises(BamlInvalidArgumentError):
            b.stream.MakePlan(goal="x", constraints="a")
    events = _events(capture)
    assert len(events) == 8
    assert events[4:] == events[:4]
    assert [e[:2] for e in events[:4]] == [("start", False), ("exception", False), ("start", True), ("exception", True)]
    assert events[1][6] == 0 and events[3][6] is None  # num_attempts: 0 for a call, None for a stream (as measured)
    assert events[1][9] is None  # tokens unknown


def test_no_outcome_is_used_and_the_call_is_recorded_as_passed(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("MakePlan", {"title": "t", "commands": [], "status": "s"})
    constraints = "not a list"
    error = fake_error(fake, "MakePlan", {"goal": "x", "constraints": constraints})
    assert len(fake.unused()) == 1
    record = fake.calls[0]
    assert record.function == "MakePlan" and record.arguments == {"goal": "x", "constraints": "not a list"}
    assert record.error is error and record.result is None
    assert fake.MakePlan(goal="x", constraints=["ok"]).title == "t"
    assert fake.unused() == []


def test_the_check_is_compiled_once_per_function_and_absent_without_types(typed_client):
    from pytest_baml_telemetry.fake.spec import ClientSpec

    spec = ClientSpec(typed_client.b)
    assert spec.typed is not None and spec.typed._arguments == {}
    check = spec.typed.argument_check("MakePlan")
    assert spec.typed.argument_check("MakePlan") is check
    assert check({"goal": "x", "constraints": []}) is None

    class HandWritten:
        def MakePlan(self, goal: str, constraints: list[str]) -> str:  # noqa: N802
            raise NotImplementedError

    plain = ClientSpec(HandWritten)
    assert plain.typed is None and plain.check_arguments("MakePlan", {"goal": 1, "constraints": "x"}) is None
