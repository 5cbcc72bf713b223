"""FakeLLMServer.client_registry(provider=...) for every provider the server speaks, on the real runtime."""

from __future__ import annotations

import httpx
import pytest

from pytest_baml_telemetry.fake.server import AZURE_API_VERSION, FAKE_API_KEY, SUPPORTED_PROVIDERS

CHAT_PROVIDERS = ("openai", "openai-generic", "azure-openai", "ollama")
"""The providers that speak OpenAI chat completions (the others: tests/test_server_<provider>_*.py)."""


@pytest.fixture
def collector():
    import baml_py

    return baml_py.Collector("providers")


def test_every_served_provider_is_supported():
    assert SUPPORTED_PROVIDERS == CHAT_PROVIDERS + ("openai-responses", "anthropic", "google-ai", "aws-bedrock")


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_real_client_calls_through_each_provider(generated_client, server, collector, provider):
    server.respond("Hello, Ann!", usage=(11, 4, 2))
    registry = server.client_registry("TestClient", provider=provider, model="my-model")
    b = generated_client.b.with_options(client_registry=registry, collector=collector)
    assert b.SayHello("Ann") == "Hello, Ann!"
    log = collector.last
    assert (log.usage.input_tokens, log.usage.output_tokens, log.usage.cached_input_tokens) == (11, 4, 2)
    call = log.selected_call
    assert (call.provider, call.client_name) == (provider, "TestClient")
    (req,) = server.requests
    assert req.served == "respond"
    if provider == "azure-openai":
        assert req.path == f"/openai/deployments/my-model/chat/completions?api-version={AZURE_API_VERSION}"
        assert req.headers["api-key"] == "***" and "authorization" not in req.headers
        assert call.http_response.body.json()["model"] == "my-model"  # the deployment, echoed
    else:
        assert req.path == "/v1/chat/completions" and req.model == "my-model"
        if provider == "ollama":
            assert "authorization" not in req.headers
        else:
            assert req.headers["authorization"] == "***"


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
@pytest.mark.parametrize("ask", [False, True])
def test_real_client_streams_through_each_provider(generated_client, server, collector, provider, ask):
    """baml-py 0.226.3 asks for the usage chunk only with provider openai; the others send
    ``stream_options`` when the client options have it. The server answers as OpenAI does."""
    server.respond("Hello there, Bo", usage=(7, 5), chunks=3)
    options = {"stream_options": {"include_usage": True}} if ask else None
    registry = server.client_registry("TestClient", provider=provider, options=options)
    b = generated_client.b.with_options(client_registry=registry, collector=collector)
    stream = b.stream.SayHello("Bo")
    assert stream.get_final_response() == "Hello there, Bo"
    (req,) = server.requests
    asked = req.json.get("stream_options") == {"include_usage": True}
    assert req.stream is True and asked == (ask or provider == "openai")
    usage = collector.last.usage
    assert (usage.input_tokens, usage.output_tokens) == ((7, 5) if asked else (None, None))


@pytest.mark.parametrize("provider", CHAT_PROVIDERS)
def test_real_client_http_error_through_each_provider(generated_client, server, collector, provider):
    from baml_py import errors

    server.fail(429)
    registry = server.client_registry("TestClient", provider=provider)
    b = generated_client.b.with_options(client_registry=registry, collector=collector)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHello("x")
    assert (info.value.status_code, info.value.client_name) == (429, "TestClient")


def test_client_options_per_provider(server):
    assert server.client_options(provider="azure-openai", model="dep-1", options={"http": {"request_timeout_ms": 5}}) == {
        "base_url": f"{server.url}/openai/deployments/dep-1",
        "api_version": AZURE_API_VERSION,
        "api_key": FAKE_API_KEY,
        "http": {"request_timeout_ms": 5},
    }
    assert server.client_options(provider="ollama", model="llama3") == {"model": "llama3", "base_url": server.base_url}
    assert server.client_options(provider="openai-generic")["base_url"] == server.base_url


def test_azure_deployment_path_is_served_and_others_are_not(server):
    server.respond("x")
    ok = httpx.post(server.url + "/openai/deployments/d/chat/completions?api-version=1", json={}, timeout=10)
    assert ok.status_code == 200 and ok.json()["model"] == "d"
    assert httpx.post(server.url + "/openai/deployments/d/embeddings", json={}, timeout=10).status_code == 404
    assert [r.served for r in server.requests] == ["respond", "not_found"]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda s: s.client_registry("C", provider="cohere"), ValueError, r"client_registry: provider='cohere'.*azure-openai, ollama, openai-responses, anthropic"),
        (lambda s: s.client_options(provider="vertex-ai"), ValueError, r"client_options: provider='vertex-ai' cannot be faked offline"),
        (lambda s: s.client_registry("C", provider=None), ValueError, r"provider=None is not supported"),
        (lambda s: s.client_registry("C", provider="azure-openai", model="a/b"), ValueError, r"model='a/b' is not an Azure deployment"),
    ],
)
def test_bad_providers_are_refused(server, call, error, match):
    with pytest.raises(error, match=match):
        call(server)
