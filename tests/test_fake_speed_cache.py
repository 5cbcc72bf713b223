"""What the fake client resolves once (issue 17) stays right when what it depends on changes.

A fake resolves each function's per-call path once (``fake/calls.py``: emitter, clock, spec,
metadata, the derivative's options) and shares one plan among the calls of a fixed
``respond`` (``fake/script.py``: per client; setting a field of the outcome drops it). These
tests pin that nothing cached is stale: scripting after the look-up, changing an outcome,
several clients, callables and failing text asked at every call, options and arguments
recorded per call, request ids unique across threads, and the stream clock with one and
with several open streams.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock
from pytest_baml_telemetry.fake import FakeBamlClient, Usage, faults

S = 1_000_000_000
PREFIX = ("ash_baml", "call")


class Ends:
    """The stop and exception events of a fresh dispatcher, in order."""

    def __init__(self) -> None:
        self.dispatcher = Dispatcher()
        self.items: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.dispatcher.attach_many(
            "ends",
            [PREFIX + ("stop",), PREFIX + ("exception",)],
            lambda name, measurements, metadata, _config: self.items.append((name[-1], measurements, metadata)),
        )


@pytest.fixture()
def ends() -> Ends:
    return Ends()


@pytest.fixture()
def fake(ends: Ends) -> FakeBamlClient:
    return FakeBamlClient(emitter=Emitter(dispatcher=ends.dispatcher), clock=VirtualClock())


def test_a_function_looked_up_before_scripting_sees_what_is_scripted_later(fake: FakeBamlClient) -> None:
    say = fake.Say  # resolved now, nothing scripted yet
    fake.respond("Say", "one")
    fake.respond("Say", "two", reusable=True)
    assert [say(x=1), say(x=2), say(x=3)] == ["one", "two", "two"]
    fake.reset()
    fake.respond("Say", "after reset")
    assert say(x=4) == "after reset"


def test_changing_a_field_of_a_used_outcome_changes_the_later_calls(fake: FakeBamlClient, ends: Ends) -> None:
    outcome = fake.respond("Say", "hi", model="m1", usage=Usage(1, 2), latency="1s", reusable=True)
    assert fake.Say(x=1) == "hi"
    outcome.result = "bye"
    outcome.model = "m2"
    outcome.usage = Usage(3, 4)
    outcome.latency_ns = 2 * S
    assert fake.Say(x=2) == "bye"
    (_, first_m, first), (_, second_m, second) = ends.items
    assert (first["model"], first["result"], first_m["input_tokens"], first_m["duration"]) == ("m1", "hi", 1, S)
    assert (second["model"], second["result"], second_m["input_tokens"], second_m["duration"]) == ("m2", "bye", 3, 2 * S)


def test_a_shared_plan_is_per_client(fake: FakeBamlClient, ends: Ends) -> None:
    fake.respond("Say", "hi", reusable=True)
    fake.Say(x=1)
    fake.with_options(client="Fast").Say(x=2)
    fake.Say(x=3, baml_options={"client": "Slow"})
    fake.Say(x=4)
    assert [md["client_name"] for _, _, md in ends.items] == [None, "Fast", "Slow", None]
    assert [c.options for c in fake.calls] == [{}, {"client": "Fast"}, {"client": "Slow"}, {}]


def test_every_call_gets_its_own_request_id_and_the_count_of_uses(fake: FakeBamlClient, ends: Ends) -> None:
    outcome = fake.respond("Say", "hi", reusable=True)
    for i in range(3):
        fake.Say(x=i)
    assert [md["request_id"] for _, _, md in ends.items] == ["fake-req-1", "fake-req-2", "fake-req-3"]
    assert outcome.times_used == 3


def test_request_ids_stay_unique_across_threads(fake: FakeBamlClient, ends: Ends) -> None:
    fake.respond("Say", "hi", reusable=True)
    threads = [threading.Thread(target=lambda: [fake.Say(x=i) for i in range(200)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [md["request_id"] for _, _, md in ends.items]
    assert sorted(ids) == sorted(f"fake-req-{n}" for n in range(1, 801))
    assert fake.unused() == [] and len(fake.calls) == 800


def test_a_callable_result_and_usage_are_asked_at_every_call(fake: FakeBamlClient, ends: Ends) -> None:
    fake.respond("Echo", lambda text: text.upper(), usage=lambda text: Usage(len(text), 1), reusable=True)
    assert [fake.Echo(text="ab"), fake.Echo(text="abc")] == ["AB", "ABC"]
    assert [m["input_tokens"] for _, m, _ in ends.items] == [2, 3]


def test_a_failing_outcome_raises_a_fresh_error_at_every_call(fake: FakeBamlClient) -> None:
    fake.fail("Say", faults.rate_limited(), reusable=True)
    raised = []
    for i in range(2):
        with pytest.raises(Exception) as info:
            fake.Say(x=i)
        raised.append(info.value)
    assert raised[0] is not raised[1] and type(raised[0]) is type(raised[1])


def test_tags_and_an_abort_controller_are_the_calls_own(fake: FakeBamlClient, ends: Ends) -> None:
    class Controller:
        aborted = False

    fake.respond("Say", "hi", latency="1s", reusable=True)
    tagged = fake.with_options(tags={"team": "a"})
    tagged.Say(x=1)
    fake.Say(x=2)
    tagged.Say(x=3, baml_options={"tags": {"team": "b"}})
    assert [md.get("tags") for _, _, md in ends.items] == [{"team": "a"}, None, {"team": "b"}]
    controller = Controller()
    fake.Say(x=4, baml_options={"abort_controller": controller})  # not aborted: the shared plan is untouched
    controller.aborted = True
    with pytest.raises(Exception, match="Operation was aborted"):
        fake.Say(x=5, baml_options={"abort_controller": controller})
    assert fake.Say(x=6) == "hi"


def test_the_recorded_arguments_and_options_are_each_calls_own(fake: FakeBamlClient) -> None:
    fake.respond("Say", "hi", reusable=True)
    arguments = {"x": 1}
    fake.Say(**arguments)
    arguments["x"] = 2  # the caller's dict is not the record's
    derived = fake.with_options(client="Fast")
    derived.Say(x=3)
    fake.calls[1].options["client"] = "changed"  # one record's options are not the next call's
    derived.Say(x=4)
    assert [c.arguments for c in fake.calls] == [{"x": 1}, {"x": 3}, {"x": 4}]
    assert fake.calls[2].options == {"client": "Fast"} and derived.options == {"client": "Fast"}


def test_baml_options_none_and_positional_arguments_take_the_general_path(fake: FakeBamlClient) -> None:
    fake.respond("Say", "hi", reusable=True)
    assert fake.Say(x=1, baml_options=None) == "hi"
    assert fake.calls[-1].arguments == {"x": 1} and fake.calls[-1].options == {}
    with pytest.raises(TypeError, match="cannot name the positional arguments"):
        fake.Say(1)
    with pytest.raises(TypeError, match=r"baml_options=\[\]\): expected a dict of call options"):
        fake.Say(x=1, baml_options=[])


def test_one_open_stream_and_several_keep_their_consumer_time(fake: FakeBamlClient, ends: Ends) -> None:
    fake.respond("Main", "m", partials=["m1", "m2"], latency="3s", reusable=True)
    fake.respond("Tool", "t", latency="10s", reusable=True)
    alone = fake.stream.Main(x=1)
    for _ in alone:
        fake.Tool(y=1)  # the consumer's own call: counted on the stream
    alone.get_final_response()
    first, second = fake.stream.Main(x=2), fake.stream.Main(x=3)
    for _ in zip(first, second):
        fake.Tool(y=2)
    first.get_final_response()
    second.get_final_response()
    durations = [(md["function_name"], m["duration"]) for _, m, md in ends.items if md["function_name"] == "Main"]
    # each partial comes after the consumer's 10 s tool call (the first one at once): 2 tool calls on every stream
    assert durations == [("Main", 20 * S + 1 * S), ("Main", 20 * S + 1 * S), ("Main", 20 * S + 1 * S)]


def test_where_an_outcome_was_scripted_follows_the_working_directory(
    fake: FakeBamlClient, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    here = os.path.relpath(__file__)
    first = fake.respond("Say", "a")  # reported as this file and line
    line = first.where.rsplit(":", 1)[1] if first.where else ""
    assert first.where == f"{here}:{line}" and line.isdigit()
    monkeypatch.chdir(tmp_path)  # the same file, seen from another directory
    second = fake.respond("Say", "b")
    assert second.where is not None and second.where.rsplit(":", 1)[0] == os.path.relpath(__file__, tmp_path)
    assert second.where.rsplit(":", 1)[0] != here
