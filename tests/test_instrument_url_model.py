"""instrument(b) reads the model from the request URL where the provider's body does not
name it (google-ai, aws-bedrock, azure-openai), measured on the real runtime (issue 14)."""

from __future__ import annotations

import pytest

from pytest_baml_telemetry import instrument
from pytest_baml_telemetry.collector_log import model_in_url

pytestmark = pytest.mark.usefixtures("_quiet_baml")


@pytest.mark.parametrize(
    ("provider", "model"),
    [("google-ai", "gemini-2.0-flash"), ("aws-bedrock", "anthropic.claude-3-haiku-20240307-v1:0"), ("azure-openai", "my-gpt4o"), ("openai", "gpt-4o-mini")],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["call", "stream"])
def test_the_stop_event_names_the_requested_model(generated_client, server, tel, provider, model, streaming):
    emitter, capture = tel
    server.respond("hi", usage=(3, 1))
    b = instrument(generated_client.b, emitter=emitter).with_options(
        client_registry=server.client_registry("TestClient", provider=provider, model=model)
    )
    if streaming:
        stream = b.stream.SayHello("Ada")
        list(stream)
        assert stream.get_final_response() == "hi"
    else:
        assert b.SayHello("Ada") == "hi"
    stop = capture.events[-1]
    assert stop.name[-1] == "stop"
    assert stop.metadata["model"] == model
    assert stop.metadata["provider"] == provider


@pytest.mark.parametrize(
    ("url", "model"),
    [
        ("http://127.0.0.1:1/_c/G/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", "gemini-2.0-flash"),
        ("https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3%3A0/converse", "anthropic.claude-3:0"),
        ("https://x.openai.azure.com/openai/deployments/gpt4/chat/completions?api-version=2024-10-21", "gpt4"),
        ("https://api.openai.com/v1/chat/completions", None),
        ("https://x/model/m/converse-streamer", None),
        (None, None),
        (b"/models/m:generateContent", None),
    ],
)
def test_model_in_url(url, model):
    assert model_in_url(url) == model
