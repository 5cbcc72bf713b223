"""Issue 13: a fake call's arguments are recorded as sent (snapshots, not live references)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter
from pytest_baml_telemetry.fake import FakeBamlClient
from pytest_baml_telemetry.fake.script import snapshot


@pytest.fixture
def captured() -> tuple[FakeBamlClient, list[tuple[str, dict[str, Any]]]]:
    dispatcher = Dispatcher()
    items: list[tuple[str, dict[str, Any]]] = []
    dispatcher.attach_many(
        "capture13r",
        [("ash_baml", "call", kind) for kind in ("start", "stop", "exception")],
        lambda name, _m, md, _c: items.append((name[-1], md)),
    )
    return FakeBamlClient(emitter=Emitter(dispatcher=dispatcher)), items


def test_the_app_mutating_a_list_after_the_call_changes_neither_event_nor_record(captured):
    fake, items = captured
    fake.respond("Chat", "ok")
    fake.respond("Chat", "ok")
    fake.respond("Chat", "ok", partials=["o"])
    history = [{"role": "user", "content": "hi"}]
    fake.Chat(messages=history)
    history.append({"role": "assistant", "content": "ok"})
    history[0]["content"] = "changed"
    fake.Chat(messages=history)
    list(fake.stream.Chat(messages=history))
    history.clear()
    first = fake.calls[0].arguments["messages"]
    assert first == [{"role": "user", "content": "hi"}]
    assert fake.calls[1].arguments["messages"] == [
        {"role": "user", "content": "changed"}, {"role": "assistant", "content": "ok"}
    ]
    assert len(fake.calls[2].arguments["messages"]) == 2
    starts = [md for kind, md in items if kind == "start"]
    assert starts[0]["arguments"]["messages"] == [{"role": "user", "content": "hi"}]
    assert len(starts[1]["arguments"]["messages"]) == 2
    assert len(starts[2]["arguments"]["messages"]) == 2  # the stream's, taken when it was created


def test_a_computed_answer_sees_the_snapshot_and_async_calls_snapshot_too(captured):
    fake, _ = captured
    fake.respond("Chat", lambda messages: len(messages))
    history = ["a"]

    async def main() -> Any:
        task = asyncio.ensure_future(fake.as_async().Chat(messages=history))
        await asyncio.sleep(0)
        history.append("b")  # the call was already made
        return await task

    assert asyncio.run(main()) == 1
    assert fake.calls[0].arguments == {"messages": ["a"]}


def test_an_argument_that_cannot_be_deep_copied_never_fails_the_call(captured):
    fake, _ = captured

    class NoDeepCopy(list):  # a mutable container whose deepcopy fails
        def __deepcopy__(self, memo: Any) -> Any:
            raise TypeError("no deep copy")

    lock = threading.Lock()  # neither deep- nor shallow-copyable
    fake.respond("Chat", "ok")
    items = NoDeepCopy([1])
    assert fake.Chat(items=items, lock=lock, name="x") == "ok"
    items.append(2)
    recorded = fake.calls[0].arguments
    assert recorded["items"] == [1] and recorded["lock"] is lock and recorded["name"] == "x"


def test_all_scalar_arguments_are_not_copied():
    arguments = {"a": "text", "b": 1, "c": None, "d": 2.5, "e": True}
    assert snapshot(arguments) is arguments
    nested = {"a": "text", "b": [1]}
    copied = snapshot(nested)
    assert copied == nested and copied is not nested and copied["b"] is not nested["b"]


def test_a_spec_d_fake_records_its_bound_arguments(generated_client):
    fake = FakeBamlClient(spec=generated_client.b)
    fake.respond("ExtractResume", {"name": "ok", "skills": []})  # a Resume: results are validated (issue 13)
    text = "resume"
    fake.ExtractResume(text)
    assert fake.calls[0].arguments == {"resume": "resume"}
