"""instrument(b) records a call's tags in its end event's metadata, as the fake does (issue 13)."""

from __future__ import annotations

import pytest

from pytest_baml_telemetry import instrument
from pytest_baml_telemetry.fake import FakeBamlClient

pytestmark = pytest.mark.usefixtures("_quiet_baml")


def _end_metadata(capture):
    ends = [e for e in capture.events if not e.name[-1] == "start"]
    assert len(ends) == 1, ends
    return ends[0].metadata


def test_with_options_tags_reach_the_stop_event_without_bamls_own(generated_client, server, tel):
    emitter, capture = tel
    server.respond("hi")
    b = instrument(generated_client.b, emitter=emitter).with_options(
        client_registry=server.client_registry("TestClient"), tags={"team": "search"}
    )
    assert b.SayHello("Ada") == "hi"
    assert _end_metadata(capture)["tags"] == {"team": "search"}


def test_a_calls_tags_replace_with_options_tags_as_in_baml_py(generated_client, server, tel):
    emitter, capture = tel
    server.respond("hi")
    b = instrument(generated_client.b, emitter=emitter).with_options(
        client_registry=server.client_registry("TestClient"), tags={"team": "search"}
    )
    b.SayHello("Ada", baml_options={"tags": {"run": "7"}})
    assert _end_metadata(capture)["tags"] == {"run": "7"}


def test_no_tags_no_key(generated_client, server, tel):
    emitter, capture = tel
    server.respond("hi")
    b = instrument(generated_client.b, emitter=emitter).with_options(client_registry=server.client_registry("TestClient"))
    b.SayHello("Ada")
    assert "tags" not in _end_metadata(capture)


def test_a_failed_call_carries_its_tags_too(generated_client, server, tel):
    import baml_py.errors

    emitter, capture = tel
    server.fail(400)
    b = instrument(generated_client.b, emitter=emitter).with_options(
        client_registry=server.client_registry("TestClient"), tags={"team": "search"}
    )
    with pytest.raises(baml_py.errors.BamlClientHttpError):
        b.SayHello("Ada")
    metadata = _end_metadata(capture)
    assert capture.events[-1].name[-1] == "exception"
    assert metadata["tags"] == {"team": "search"}


def test_the_fake_records_the_same_tags_as_the_real_runtime(generated_client, server, tel):
    emitter, capture = tel
    server.respond("hi")
    real = instrument(generated_client.b, emitter=emitter).with_options(
        client_registry=server.client_registry("TestClient"), tags={"team": "search"}
    )
    real.SayHello("Ada", baml_options={"tags": {"run": "7"}})
    real_tags = _end_metadata(capture)["tags"]
    capture.clear()
    fake = FakeBamlClient(emitter=emitter, spec=generated_client.b)
    fake.respond("SayHello", "hi")
    fake.with_options(tags={"team": "search"}).SayHello("Ada", baml_options={"tags": {"run": "7"}})
    assert _end_metadata(capture)["tags"] == real_tags == {"run": "7"}
