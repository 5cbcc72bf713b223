"""Scripted results and partials are validated into the generated types (issue 13: "Typed results").

On the typed app (``tests/baml_src_typed``) in both client modes: a dict becomes
``types.Person``, a str the ``Priority`` member, a value already typed is kept as it is; a
wrong shape raises ``TypeError`` at ``respond`` naming the function, the declared type and
each bad field; stream partials are validated against ``stream_types`` (``StreamState`` for
``@stream.with_state``); a computed result is validated at the call.
"""

from __future__ import annotations

import asyncio
import re
import types as pytypes

import pytest

from pytest_baml_telemetry import FakeBamlClient

PLAN = {"title": "Trip", "commands": [{"action": "book", "target": "flight"}], "status": "done"}
PARTIALS = [
    {"commands": [], "status": {"value": None, "state": "Pending"}},
    {"title": "Trip", "commands": [{"action": "book", "target": "flight"}], "status": {"value": "do", "state": "Incomplete"}},
]


@pytest.fixture(params=["sync", "async"])
def app(request, typed_client, typed_async_client):
    """``(fake, package)``: a fake spec'd on the typed app in that client mode."""
    package = typed_client.module if request.param == "sync" else typed_async_client.module
    return FakeBamlClient(spec=package.b), package


def call(fake, name, **kwargs):
    out = getattr(fake, name)(**kwargs)
    return asyncio.run(out) if asyncio.iscoroutine(out) else out


def stream_all(fake, name, **kwargs):
    stream = getattr(fake.stream, name)(**kwargs)
    if hasattr(stream, "__aiter__"):
        async def main():
            seen = [p async for p in stream]
            return seen, await stream.get_final_response()

        return asyncio.run(main())
    return list(stream), stream.get_final_response()


def test_a_dict_becomes_the_declared_class_and_a_str_the_enum(app):
    fake, package = app
    outcome = fake.respond("ExtractPerson", {"name": "Ada", "tags": ["x"], "priority": "HIGH", "address": {"city": "Oslo"}})
    assert type(outcome.result) is package.types.Person  # coerced at respond, not at the call
    person = call(fake, "ExtractPerson", text="Ada")
    assert type(person) is package.types.Person and person.priority is package.types.Priority.HIGH
    assert type(person.address) is package.types.Address and person.address.zip is None
    fake.respond("Classify", "LOW")
    assert call(fake, "Classify", text="x", labels=["LOW"]) is package.types.Priority.LOW
    fake.respond("Summarize", "short")
    assert call(fake, "Summarize", texts=["a"]) == "short"


def test_a_value_of_the_declared_type_is_kept_as_it_is(app):
    fake, package = app
    person = package.types.Person(name="Ada", tags=[], priority="LOW")
    fake.respond("ExtractPerson", person)
    assert call(fake, "ExtractPerson", text="x") is person
    text = "already a str"
    fake.respond("Summarize", text)
    assert call(fake, "Summarize", texts=["a"]) is text


def test_a_wrong_shape_fails_at_respond_naming_function_type_and_fields(app):
    fake, _ = app
    with pytest.raises(TypeError) as info:
        fake.respond("ExtractPerson", {"name": 1, "tags": "x", "address": {"zip": "1"}})
    message = str(info.value)
    assert message.startswith("respond('ExtractPerson'): {'name': 1,")
    assert "does not match ExtractPerson's declared return type types.Person" in message
    for part in ("name: Input should be a valid string (got 1)", "tags: Input should be a valid list (got 'x')",
                 "priority: Field required", "address.city: Field required"):
        assert part in message, part
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no pydantic chain dump
    assert fake.unused() == []  # nothing was queued


@pytest.mark.parametrize(
    ("function", "value", "expected"),
    [
        ("ExtractPerson", None, "declared return type types.Person: (the value): Input should be a valid dictionary or instance of Person (got None)"),
        ("Classify", "NOPE", "declared return type types.Priority: (the value): Input should be 'LOW', 'MEDIUM' or 'HIGH' (got 'NOPE')"),
        ("Summarize", 3, "declared return type str: (the value): Input should be a valid string (got 3)"),
        ("MakePlan", {**PLAN, "commands": [{"action": "a"}]}, "types.Plan: commands[0].target: Field required"),
    ],
)
def test_none_and_other_wrong_values_fail(app, function, value, expected):
    fake, _ = app
    with pytest.raises(TypeError, match=f"respond\\('{function}'\\): .*" + re.escape(expected)):
        fake.respond(function, value)


def test_another_generated_class_is_not_accepted(app):
    fake, package = app
    with pytest.raises(TypeError, match="instance of Person"):
        fake.respond("ExtractPerson", package.stream_types.Person(tags=[]))  # a partial type where a final one is declared
    with pytest.raises(TypeError, match="instance of Person"):
        fake.respond("ExtractPerson", package.types.Address(city="Oslo"))


def test_stream_partials_are_validated_against_the_stream_types(app):
    fake, package = app
    fake.respond("MakePlan", PLAN, partials=PARTIALS, latency="1s")
    seen, final = stream_all(fake, "MakePlan", goal="trip", constraints=["cheap"])
    stream_types = package.stream_types
    assert [type(p) for p in seen] == [stream_types.Plan, stream_types.Plan]
    assert seen[0].title is None and seen[0].status == stream_types.StreamState[str | None](value=None, state="Pending")
    assert seen[1].status.state == "Incomplete" and type(seen[1].commands[0]) is package.types.Command  # @@stream.done
    assert type(final) is package.types.Plan and final.status == "done"


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ({"commands": [], "status": "done"}, r"partials\[0\] .* stream type stream_types.Plan: status: Input should be a valid dictionary or instance of StreamState"),
        ({"commands": [], "status": {"value": "x", "state": "Done"}}, r"status.state: Input should be 'Pending', 'Incomplete' or 'Complete'"),
        ({"status": {"value": None, "state": "Pending"}}, r"commands: Field required"),
        ({"commands": [{"action": "half"}], "status": {"value": None, "state": "Pending"}}, r"commands\[0\].target: Field required"),
    ],
)
def test_a_wrong_partial_fails_at_respond(app, partial, expected):
    fake, _ = app
    with pytest.raises(TypeError, match=r"respond\('MakePlan'\): " + ".*" + expected):
        fake.respond("MakePlan", PLAN, partials=[PARTIALS[0], partial][1:])


def test_a_second_bad_partial_is_named_by_its_index(app):
    fake, _ = app
    with pytest.raises(TypeError, match=r"partials\[1\] 3 does not match Summarize's stream type str"):
        fake.respond("Summarize", "final", partials=["par", 3])


def test_a_computed_result_is_validated_at_the_call(app, tel):
    emitter, capture = tel
    _, package = app
    fake = FakeBamlClient(emitter=emitter, spec=package.b)
    fake.respond("ExtractPerson", lambda text: {"name": text, "tags": [], "priority": "MEDIUM"})
    person = call(fake, "ExtractPerson", text="Ada")
    assert type(person) is package.types.Person and person.name == "Ada"
    fake.respond("ExtractPerson", lambda text: {"name": text})
    with pytest.raises(TypeError) as info:
        call(fake, "ExtractPerson", text="Bob")
    message = str(info.value)
    assert message.startswith("respond('ExtractPerson'): the callable's result: {'name': 'Bob'} does not match")
    assert "tags: Field required" in message and "priority: Field required" in message
    assert fake.calls[-1].error is info.value  # recorded on the call
    assert [e.name[-1] for e in capture.events] == ["start", "stop"]  # the bad one emitted nothing


def test_a_spec_without_types_keeps_values_as_they_are(typed_client):
    module = pytypes.ModuleType("plain_functions")

    def ExtractPerson(text: str) -> dict:  # noqa: N802 - named as a BAML function
        raise NotImplementedError

    ExtractPerson.__module__ = module.__name__
    module.ExtractPerson = ExtractPerson  # type: ignore[attr-defined]
    fake = FakeBamlClient(spec=module)
    fake.respond("ExtractPerson", "anything at all", partials=[1, None])
    assert fake.ExtractPerson(text=3) == "anything at all"  # nor are arguments checked

    class HandWritten:
        def ExtractPerson(self, text: str) -> int:  # noqa: N802
            raise NotImplementedError

    fake = FakeBamlClient(spec=HandWritten())
    fake.respond("ExtractPerson", "not an int")
    assert fake.ExtractPerson(text=None) == "not an int"


def test_types_are_read_only_when_needed(typed_client):
    from pytest_baml_telemetry.fake.spec import ClientSpec

    spec = ClientSpec(typed_client.b)
    assert spec.typed is not None
    assert spec.typed._results == {} and spec.typed._partials == {}  # nothing built up front
    first = spec.coerce_result("Classify", "LOW", "respond('Classify')")
    assert list(spec.typed._results) == ["Classify"]
    adapter = spec.typed._results["Classify"][1]
    assert spec.coerce_result("Classify", "HIGH", "respond('Classify')") is typed_client.types.Priority.HIGH
    assert spec.typed._results["Classify"][1] is adapter  # cached
    assert first is typed_client.types.Priority.LOW


def test_a_stream_failures_partials_are_validated_against_the_stream_type(typed_client):
    from pytest_baml_telemetry.fake import faults

    fake = FakeBamlClient(spec=typed_client.b)
    with pytest.raises(TypeError, match=r"fail\('MakePlan'\).*commands"):
        fake.fail("MakePlan", faults.stream_failure(partials=[{"commands": "not a list"}], after_partials=1))
    fake.fail("MakePlan", faults.stream_failure(partials=[{"title": "T", "commands": [], "status": {"value": None, "state": "Pending"}}], after_partials=1))
    stream = fake.stream.MakePlan(goal="g", constraints=[])
    partials = list(stream)
    assert [type(p) for p in partials] == [typed_client.module.stream_types.Plan]
    assert partials[0].title == "T"
