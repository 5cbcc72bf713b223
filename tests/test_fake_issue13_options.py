"""Issue 13: the real client's options on the fake are honoured as baml-py does, or refused.

Measured on baml-py 0.226.3 with the generated client on FakeLLMServer (the last test here
re-checks it): a call's ``baml_options={"tags": ...}`` replaces ``with_options(tags=...)``
(a shallow merge) and the Collector log's ``tags`` holds them (plus the runtime's own
``baml.*`` keys); ``on_tick`` on the sync client raises ``ValueError`` for calls and streams.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import Dispatcher, Emitter
from pytest_baml_telemetry.fake import FakeBamlClient


@pytest.fixture
def captured() -> tuple[FakeBamlClient, list[tuple[str, dict[str, Any]]]]:
    dispatcher = Dispatcher()
    items: list[tuple[str, dict[str, Any]]] = []
    dispatcher.attach_many(
        "capture13o",
        [("ash_baml", "call", kind) for kind in ("start", "stop", "exception")],
        lambda name, _m, md, _c: items.append((name[-1], md)),
    )
    return FakeBamlClient(emitter=Emitter(dispatcher=dispatcher)), items


def test_tags_go_into_the_end_events_metadata(captured):
    fake, items = captured
    fake.respond("A", 1)
    fake.respond("A", 2)
    fake.fail("A", "timeout")
    fake.respond("A", 4, partials=[3])
    fake.respond("A", 5)
    tagged = fake.with_options(tags={"team": "x"})
    tagged.A()
    tagged.A(baml_options={"tags": {"req": "1"}})  # replaces, as baml-py's shallow merge does
    with pytest.raises(errors.BamlTimeoutError):
        tagged.A()
    stream = tagged.stream.A()
    list(stream)
    stream.get_final_response()
    fake.A()
    ends = [md for kind, md in items if kind != "start"]
    assert [md.get("tags") for md in ends] == [{"team": "x"}, {"req": "1"}, {"team": "x"}, {"team": "x"}, None]
    assert "tags" not in ends[-1]


@pytest.mark.parametrize("key", ["tb", "collector", "client_registry", "env"])
def test_options_the_fake_cannot_honour_raise_not_implemented(captured, key):
    import baml_py

    fake, items = captured
    value = {"tb": object(), "collector": baml_py.Collector("c"), "env": {"K": "v"},
             "client_registry": baml_py.ClientRegistry()}[key]
    with pytest.raises(NotImplementedError, match=f"with_options\\({key}="):
        fake.with_options(**{key: value})
    fake.respond("A", 1)
    with pytest.raises(NotImplementedError, match=f"baml_options=\\{{'{key}'"):
        fake.A(baml_options={key: value})
    with pytest.raises(NotImplementedError, match=key):
        fake.stream.A(baml_options={key: value})
    assert items == []  # refused before any event
    assert fake.A() == 1  # the outcome was not used up


def test_on_tick_raises_what_the_sync_client_raises_and_is_refused_on_async(captured):
    fake, _ = captured
    fake.respond("A", 1)
    ticking = fake.with_options(on_tick=lambda *a: None)
    with pytest.raises(ValueError, match="on_tick is not supported for sync streams"):
        ticking.A()
    with pytest.raises(ValueError, match="on_tick is not supported for sync streams"):
        fake.stream.A(baml_options={"on_tick": lambda *a: None})
    with pytest.raises(NotImplementedError, match="on_tick"):
        asyncio.run(ticking.as_async().A())
    assert fake.A() == 1


def test_bad_call_tags_name_the_value(captured):
    fake, _ = captured
    fake.respond("A", 1)
    with pytest.raises(TypeError, match="'x'"):
        fake.A(baml_options={"tags": "x"})


def test_real_runtime_tags_and_on_tick(generated_client, monkeypatch):
    """What the fake copies, checked on the real runtime."""
    import baml_py

    from pytest_baml_telemetry.fake.server import FakeLLMServer

    monkeypatch.setenv("BAML_LOG", "off")
    with FakeLLMServer() as server:
        server.respond("hello")
        collector = baml_py.Collector("c")
        b = generated_client.b.with_options(
            client_registry=server.client_registry("TestClient"), collector=collector, tags={"team": "x"}
        )
        b.SayHello(name="x", baml_options={"tags": {"req": "1"}})
        tags = collector.last.tags
        assert tags["req"] == "1" and "team" not in tags
        with pytest.raises(ValueError, match="on_tick is not supported for sync streams"):
            b.SayHello(name="x", baml_options={"on_tick": lambda *a: None})
