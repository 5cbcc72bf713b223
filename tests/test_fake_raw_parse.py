"""Issue 13, real parsing offline: ``respond(fn, raw="...")`` goes through baml-py's own parser.

The oracle is the real generated typed client (``tests/baml_src_typed``) called against
``FakeLLMServer``: a model answer that does not parse must raise the same
``BamlValidationError`` (class, message, raw_output, prompt, detailed_message, str) from
the fake as from the real runtime, on both client modes.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import instrument
from pytest_baml_telemetry.fake import AsyncFakeBamlClient, FakeBamlClient

pytestmark = pytest.mark.usefixtures("_quiet_baml")

PERSON = '{"name": "Ada", "age": 36, "tags": ["math"], "priority": "HIGH", "address": {"city": "London"}}'
NOT_JSON = "not json at all"


def attrs(exc: BaseException) -> dict[str, Any]:
    return {
        "class": type(exc),
        "message": exc.message,  # type: ignore[attr-defined]
        "raw_output": exc.raw_output,  # type: ignore[attr-defined]
        "prompt": exc.prompt,  # type: ignore[attr-defined]
        "detailed_message": exc.detailed_message,  # type: ignore[attr-defined]
        "str": str(exc),
        "args": exc.args,
    }


def real_error(server, b, *, stream: bool = False, is_async: bool = False) -> BaseException:
    server.respond(NOT_JSON)
    client = b.with_options(client_registry=server.client_registry("TypedClient"))

    async def arun() -> None:
        if stream:
            s = client.stream.ExtractPerson("Ada")
            [p async for p in s]
            await s.get_final_response()
        else:
            await client.ExtractPerson("Ada")

    with pytest.raises(errors.BamlValidationError) as info:
        if is_async:
            asyncio.run(arun())
        elif stream:
            s = client.stream.ExtractPerson("Ada")
            list(s)
            s.get_final_response()
        else:
            client.ExtractPerson("Ada")
    return info.value


# ---------------------------------------------------------------------------- results


def test_raw_is_parsed_into_the_declared_type_sync(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("ExtractPerson", raw=PERSON)
    person = fake.ExtractPerson("Ada")
    assert isinstance(person, typed_client.types.Person)
    assert person == typed_client.b.parse.ExtractPerson(PERSON)
    assert person.priority is typed_client.types.Priority.HIGH
    assert person.address.city == "London" and person.address.zip is None


@pytest.mark.parametrize("which", ["async_b", "async_module"])
def test_raw_is_parsed_into_the_declared_type_async(typed_client, typed_async_client, which):
    b = typed_client.async_b if which == "async_b" else typed_async_client.module.b
    fake = AsyncFakeBamlClient(spec=b)
    fake.respond("Classify", raw="The answer is MEDIUM")
    fake.respond("ExtractPerson", raw=f"Here you go:\n```json\n{PERSON}\n```")
    label = asyncio.run(fake.Classify("x", labels=["LOW", "MEDIUM"]))
    person = asyncio.run(fake.ExtractPerson("Ada"))
    types = typed_client.types if which == "async_b" else typed_async_client.types
    assert label is types.Priority.MEDIUM
    assert isinstance(person, types.Person) and person.name == "Ada"


def test_raw_on_a_module_spec_uses_its_b(typed_client):
    fake = FakeBamlClient(spec=typed_client.module)
    fake.respond("Summarize", raw="short")
    assert fake.Summarize(["a"], 3) == "short"


def test_raw_on_an_instrumented_spec_uses_the_real_b(typed_client):
    fake = FakeBamlClient(spec=instrument(typed_client.b))
    fake.respond("ExtractPerson", raw=PERSON)
    assert isinstance(fake.ExtractPerson("Ada"), typed_client.types.Person)


# ---------------------------------------------------------------------------- failures


@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_a_failed_parse_raises_what_the_real_sync_call_raises(server, typed_client, stream):
    real = real_error(server, typed_client.b, stream=stream)
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("ExtractPerson", raw=NOT_JSON, reusable=True)
    with pytest.raises(errors.BamlValidationError) as first:
        if stream:
            s = fake.stream.ExtractPerson("Ada")
            list(s)
            s.get_final_response()
        else:
            fake.ExtractPerson("Ada")
    assert attrs(first.value) == attrs(real)
    assert first.value.message.startswith("Failed to parse LLM response: ")
    assert "Stack backtrace" not in str(first.value)
    with pytest.raises(errors.BamlValidationError) as second:
        fake.ExtractPerson("Ada")
    assert second.value is not first.value  # a fresh instance per call
    assert attrs(second.value) == attrs(real)


@pytest.mark.parametrize("which", ["async_b", "async_module"])
@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_a_failed_parse_raises_what_the_real_async_call_raises(server, typed_client, typed_async_client, which, stream):
    b = typed_client.async_b if which == "async_b" else typed_async_client.module.b
    real = real_error(server, b, stream=stream, is_async=True)
    fake = AsyncFakeBamlClient(spec=b)
    fake.respond("ExtractPerson", raw=NOT_JSON)

    async def run() -> None:
        if stream:
            s = fake.stream.ExtractPerson("Ada")
            [p async for p in s]
            await s.get_final_response()
        else:
            await fake.ExtractPerson("Ada")

    with pytest.raises(errors.BamlValidationError) as info:
        asyncio.run(run())
    assert attrs(info.value) == attrs(real)


def test_a_failed_parse_streams_the_partials_the_real_stream_yields(server, typed_client):
    server.respond(NOT_JSON)
    real = typed_client.b.with_options(client_registry=server.client_registry("TypedClient")).stream.ExtractPerson("Ada")
    real_partials = list(real)
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("ExtractPerson", raw=NOT_JSON)
    s = fake.stream.ExtractPerson("Ada")
    assert list(s) == real_partials and len(real_partials) == 1
    with pytest.raises(errors.BamlValidationError):
        s.get_final_response()


def test_a_failed_parse_bills_the_scripted_usage(typed_client, tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter, spec=typed_client.b)
    fake.respond("ExtractPerson", raw=NOT_JSON, usage=(120, 8), latency="2s")
    with pytest.raises(errors.BamlValidationError):
        fake.ExtractPerson("Ada")
    (call,) = capture.calls
    assert call.ok is False and call.kind == "error"
    assert (call.input_tokens, call.output_tokens) == (120, 8)
    assert call.duration == 2_000_000_000
    assert isinstance(call.error, errors.BamlValidationError)


def test_a_failed_parse_on_a_stream_bills_the_scripted_usage(typed_client, tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter, spec=typed_client.b)
    fake.respond("ExtractPerson", raw=NOT_JSON, usage=(30, 4), latency="1s")
    stream = fake.stream.ExtractPerson("Ada")
    assert len(list(stream)) == 1
    with pytest.raises(errors.BamlValidationError):
        stream.get_final_response()
    (call,) = capture.calls
    assert call.ok is False and call.streaming
    assert (call.input_tokens, call.output_tokens) == (30, 4)
    assert call.duration == 1_000_000_000


# ---------------------------------------------------------------------------- bad input


def test_raw_without_a_spec_says_what_to_pass():
    fake = FakeBamlClient()
    with pytest.raises(TypeError, match=r"respond\('ExtractPerson'\): raw= .*FakeBamlClient\(spec=b\)"):
        fake.respond("ExtractPerson", raw=PERSON)
    with pytest.raises(TypeError, match=r"spec=b"):
        fake.respond("ExtractPerson", chunks=["{", "}"])


def test_raw_on_a_class_spec_says_it_needs_an_instance(typed_client):
    fake = FakeBamlClient(spec=type(typed_client.b))
    with pytest.raises(TypeError, match=r"spec'd on the class BamlSyncClient; build it with spec=b"):
        fake.respond("ExtractPerson", raw=PERSON)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"raw": PERSON, "result": {"name": "Ada"}}, ValueError, r"result=\{'name': 'Ada'\} and raw= were both given"),
        ({"raw": PERSON, "chunks": [PERSON], "partials": [None]}, ValueError, "partials= and chunks= were both given"),
        ({"raw": PERSON, "chunks": ['{"name"', "}"]}, ValueError, r"chunks join to '\{\"name\"\}', not to raw="),
        ({"raw": 42}, TypeError, r"raw=42: expected the model's raw text, a str"),
        ({"raw": b"{}"}, TypeError, r"raw=b'\{\}': expected the model's raw text"),
        ({"chunks": "{}"}, TypeError, r"chunks='\{\}': expected a non-empty list"),
        ({"chunks": []}, ValueError, r"chunks=\[\]: expected a non-empty list"),
        ({"chunks": ["{", 3]}, TypeError, r"chunks\[1\]=3: expected a str or a non-empty list of str"),
        ({"chunks": ["{", []]}, TypeError, r"chunks\[1\]=\[\]: expected a str or a non-empty list of str"),
        ({"chunks": ["{", ["a", None]]}, TypeError, r"chunks\[1\]=\['a', None\]"),
    ],
)
def test_bad_raw_arguments_are_named(typed_client, kwargs, exc, match):
    fake = FakeBamlClient(spec=typed_client.b)
    with pytest.raises(exc, match=match):
        fake.respond("ExtractPerson", **kwargs)
    assert fake.unused() == []  # nothing was queued


def test_raw_with_explicit_partials_keeps_them(typed_client):
    fake = FakeBamlClient(spec=typed_client.b)
    fake.respond("Summarize", raw="all done", partials=["all"])
    s = fake.stream.Summarize(["a"], None)
    assert list(s) == ["all"]
    assert s.get_final_response() == "all done"
