"""Odd inputs to the fakes and the metrics are refused where they are passed, naming them.

Non-string metric tags; a scripted name the fake can never call (its own methods,
``_``-names, baml's modular API); ``with_options(collector=, client_registry=)`` of the
wrong type (baml-py's runtime panics on them); ``FakeLLMServer`` durations beyond the
native range and a body that is not UTF-8. A NaN measurement is a skip with a reason.
"""

from __future__ import annotations

import math

import baml_py
import pytest
from helpers import make_env

from pytest_baml_telemetry.fake import FakeBamlClient
from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.metrics import InMemoryReporter, counter, distribution, sum, summary

# --------------------------------------------------------------------------- metric tags


@pytest.mark.parametrize(
    ("tags", "error", "named"),
    [
        ([1], TypeError, "tag 1 in tags=[1]"),
        (["function_name", 2.5], TypeError, "tag 2.5 in tags=['function_name', 2.5]"),
        ([("model",)], TypeError, "tag ('model',)"),
        ([b"model"], TypeError, "tag b'model'"),
        ([None], TypeError, "tag None"),
        ([""], ValueError, "tag ''"),
    ],
)
@pytest.mark.parametrize("build", [counter, sum, summary, distribution])
def test_non_string_tags_are_refused_naming_the_tag(build, tags, error, named) -> None:
    with pytest.raises(error, match="expected metadata keys, each a non-empty str") as info:
        build("ash_baml.call.stop.duration", tags=tags)
    assert named in str(info.value)


def test_string_tags_are_accepted() -> None:
    assert counter("ash_baml.call.stop.count", tags=("function_name", "model")).tags == ("function_name", "model")


def test_a_nan_measurement_is_skipped_with_a_reason() -> None:
    env = make_env("nan-metric")
    name = "ash_baml.call.stop.duration"
    metrics = [summary(name), sum("ash_baml.call.stop.total"), counter("calls.known", event_name="ash_baml.call.stop", measurement="total")]
    reporter = InMemoryReporter(metrics, dispatcher=env.dispatcher).attach()
    stop = ("ash_baml", "call", "stop")
    env.dispatcher.execute(stop, {"duration": math.nan, "total": float("nan")}, {})
    env.dispatcher.execute(stop, {"duration": 5, "total": 2.5}, {})
    assert reporter.skipped(name) == ["measurement 'duration' is NaN (unknown)"]
    assert reporter.skipped("ash_baml.call.stop.total") == ["measurement 'total' is NaN (unknown)"]
    assert reporter.skipped("calls.known") == ["measurement 'total' is NaN (unknown)"]
    assert reporter.value(name).count == 1 and reporter.value(name).sum == 5
    assert reporter.value("ash_baml.call.stop.total") == 2.5
    assert reporter.value("calls.known") == 1


def test_a_nan_from_a_measurement_function_is_skipped() -> None:
    env = make_env("nan-metric-fn")
    reporter = InMemoryReporter([summary("x.y", event_name="ash_baml.call.stop", measurement=lambda m: math.nan)], dispatcher=env.dispatcher).attach()
    env.dispatcher.execute(("ash_baml", "call", "stop"), {}, {})
    assert reporter.skipped("x.y") == ["measurement function result is NaN (unknown)"]


# --------------------------------------------------------------------------- scripted names


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("stream", "fake.stream is the fake's own 'stream'"),
        ("with_options", "fake.with_options is the fake's own"),
        ("respond", "fake.respond is the fake's own"),
        ("fail", "fake.fail is the fake's own"),
        ("calls", "fake.calls is the fake's own"),
        ("__init__", "'__init__' starts with '_'"),
        ("__call__", "'__call__' starts with '_'"),
        ("_private", "'_private' starts with '_'"),
        ("request", "baml's modular API (b.request)"),
        ("parse_stream", "baml's modular API"),
    ],
)
@pytest.mark.parametrize("how", ["respond", "fail"])
def test_a_name_the_fake_can_never_call_is_refused(name: str, why: str, how: str) -> None:
    fake = FakeBamlClient()
    script = (lambda: fake.respond(name, "x")) if how == "respond" else (lambda: fake.fail(name, "timeout"))
    with pytest.raises(ValueError, match="expected a BAML function the fake can call") as info:
        script()
    assert f"{how}({name!r}, ...)" in str(info.value) and why in str(info.value)
    assert fake.unused() == []


def test_an_ordinary_name_is_still_scripted_and_called() -> None:
    fake = FakeBamlClient()
    fake.respond("Streamer", "ok")
    assert fake.Streamer() == "ok"


# --------------------------------------------------------------------------- with_options


@pytest.mark.parametrize(
    ("options", "named", "expected"),
    [
        ({"collector": 5}, "with_options(collector=5)", "a baml_py.Collector, a list of them, or None"),
        ({"collector": "c"}, "with_options(collector='c')", "a baml_py.Collector"),
        ({"collector": (baml_py.Collector("a"),)}, "with_options(collector=(", "a list of them"),
        ({"collector": [baml_py.Collector("a"), 3]}, "item 3", "a baml_py.Collector"),
        ({"client_registry": "x"}, "with_options(client_registry='x')", "a baml_py.ClientRegistry or None"),
        ({"client_registry": {"primary": "X"}}, "with_options(client_registry={'primary': 'X'})", "ClientRegistry"),
    ],
)
@pytest.mark.parametrize("asynchronous", [False, True])
def test_with_options_checks_collector_and_client_registry_types(options, named, expected, asynchronous) -> None:
    fake = FakeBamlClient().as_async() if asynchronous else FakeBamlClient()
    with pytest.raises(TypeError, match="expected") as info:
        fake.with_options(**options)
    assert named in str(info.value) and expected in str(info.value)


def test_with_options_accepts_the_types_baml_accepts_then_says_what_it_cannot_honour() -> None:
    # issue 13 changes this: values of the types baml-py takes pass the type check, and an option
    # the fake cannot honour is then refused with NotImplementedError naming it (never ignored)
    fake = FakeBamlClient()
    collector, registry = baml_py.Collector("c"), baml_py.ClientRegistry()
    for options in ({"collector": collector}, {"collector": [collector, baml_py.Collector("d")]}, {"collector": []},
                    {"client_registry": registry}):
        (key,) = options
        with pytest.raises(NotImplementedError, match=rf"with_options\({key}=\.\.\.\)"):
            fake.with_options(**options)


# --------------------------------------------------------------------------- the fake server


@pytest.mark.parametrize(
    ("script", "error", "named"),
    [
        (lambda s: s.respond("x", latency=10**30), ValueError, "FakeLLMServer.respond: latency=1000000000000000000000000000000 is too long"),
        (lambda s: s.respond("x", latency=1e300), ValueError, "FakeLLMServer.respond: latency=1e+300"),
        (lambda s: s.respond("x", chunk_delay="9" * 30 + "s"), ValueError, "FakeLLMServer.respond: chunk_delay='999"),
        (lambda s: s.fail(500, latency=math.inf), ValueError, "FakeLLMServer.fail: latency=inf"),
        (lambda s: s.fail(500, retry_after=10**30), ValueError, "FakeLLMServer.fail: retry_after=1000000000000000000000000000000"),
        (lambda s: s.fail(500, retry_after=1e300), ValueError, "FakeLLMServer.fail: retry_after=1e+300"),
        (lambda s: s.hang(10**30), ValueError, "FakeLLMServer.hang: seconds=1000000000000000000000000000000"),
        (lambda s: s.malformed(latency="9" * 30 + "h"), ValueError, "FakeLLMServer.malformed: latency="),
        (lambda s: s.fail_stream(latency=10**30), ValueError, "FakeLLMServer.fail_stream: latency="),
        (lambda s: s.fail(500, body=b"\xff"), ValueError, "FakeLLMServer.fail: body=b'\\xff' is not UTF-8"),
        (lambda s: s.fail(500, body=b"ok \xc3("), ValueError, "body=b'ok \\xc3(' is not UTF-8 (invalid continuation byte at byte 3)"),
    ],
)
def test_fake_server_scripts_refuse_out_of_range_values_naming_them(script, error, named) -> None:
    server = FakeLLMServer()  # not started: the check is where the value is passed
    with pytest.raises(error) as info:
        script(server)
    assert named in str(info.value)
    assert not isinstance(info.value, OverflowError)
    assert server.pending == []


def test_fake_server_accepts_the_longest_duration_and_utf8_bytes() -> None:
    server = FakeLLMServer()
    server.respond("x", latency=9_223_372_036).fail(503, body="é".encode(), retry_after=9_223_372_036)
    assert len(server.pending) == 2
