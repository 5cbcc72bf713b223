"""Issue 13: computed answers (``respond(fn, callable)``) and arguments recorded as sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter
from pytest_baml_telemetry.fake import FakeBamlClient, Usage

PREFIX = ("ash_baml", "call")


class Events:
    def __init__(self) -> None:
        self.dispatcher = Dispatcher()
        self.items: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.dispatcher.attach_many(
            "capture13",
            [PREFIX + (kind,) for kind in ("start", "stop", "exception")],
            lambda name, m, md, _c: self.items.append((name[-1], m, md)),
        )


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def fake(events: Events) -> FakeBamlClient:
    return FakeBamlClient(emitter=Emitter(dispatcher=events.dispatcher))


def test_a_callable_result_is_called_with_the_call_arguments(fake, events):
    seen: list[dict[str, Any]] = []

    def answer(**kwargs: Any) -> str:
        seen.append(kwargs)
        return f"hello {kwargs['name']}"

    fake.respond("Greet", answer, reusable=True)
    assert fake.Greet(name="Ada") == "hello Ada"
    assert fake.Greet(name="Bob") == "hello Bob"
    assert seen == [{"name": "Ada"}, {"name": "Bob"}]
    assert fake.calls[1].result == "hello Bob"
    assert [k for k, _, _ in events.items] == ["start", "stop", "start", "stop"]


def test_a_callable_usage_gets_the_same_arguments(fake, events):
    fake.respond("Greet", lambda name: name.upper(), usage=lambda name: (len(name), 2 * len(name)))
    assert fake.Greet(name="Ada") == "ADA"
    _, m, _ = events.items[-1]
    assert (m["input_tokens"], m["output_tokens"]) == (3, 6)
    fake.respond("Greet", "x", usage=lambda **kw: {"input_tokens": 7, "output_tokens": 1})
    fake.Greet(name="z")
    assert (events.items[-1][1]["input_tokens"], events.items[-1][1]["output_tokens"]) == (7, 1)
    fake.respond("Greet", "y", usage=lambda **kw: Usage(4, 5))
    fake.respond("Greet", "w", usage=lambda **kw: None)
    fake.Greet(name="z")
    assert events.items[-1][1]["input_tokens"] == 4
    fake.Greet(name="z")
    assert events.items[-1][1]["input_tokens"] is None


def test_a_class_result_is_still_the_result_itself(fake):
    class Resume:
        pass

    fake.respond("Greet", Resume)
    assert fake.Greet(name="Ada") is Resume


def test_an_exception_from_the_callable_is_the_calls_error(fake, events):
    def broken(**kwargs: Any) -> Any:
        raise KeyError(kwargs["name"])

    fake.respond("Greet", broken)
    with pytest.raises(KeyError, match="Ada"):
        fake.Greet(name="Ada")
    assert [k for k, _, _ in events.items] == ["start", "exception"]
    assert isinstance(fake.calls[0].error, KeyError)


def test_a_callable_on_a_stream_and_an_async_call(fake, events):
    fake.respond("Greet", lambda name: f"hi {name}", partials=["h"])
    stream = fake.stream.Greet(name="Ada")
    assert list(stream) == ["h"]
    assert stream.get_final_response() == "hi Ada"
    fake.respond("Greet", lambda name: f"async {name}")
    assert asyncio.run(fake.as_async().Greet(name="Bo")) == "async Bo"


def test_a_spec_d_fake_passes_arguments_by_parameter_name(generated_client):
    fake = FakeBamlClient(spec=generated_client.b)
    fake.respond("ExtractResume", lambda resume: {"name": resume, "skills": []})  # a Resume (validated: issue 13)
    assert fake.ExtractResume("text of a resume").name == "text of a resume"
