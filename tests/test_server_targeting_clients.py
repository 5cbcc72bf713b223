"""FakeLLMServer scripts aimed at one client or one wire format, on the real baml-py runtime.

Two clients in one ClientRegistry (TestClient for SayHello, RetryingClient for
SayHelloWithRetry), each tagged by ``client_registry``: a script given ``client=`` serves only
that client's requests, untargeted scripts still serve in order, and the records, the unused
scripts and the "nothing scripted" 500 name the filters.
"""

from __future__ import annotations

import httpx
import pytest

from pytest_baml_telemetry.fake.server import FakeLLMServer


@pytest.fixture
def two_clients(generated_client, server: FakeLLMServer):
    registry = server.client_registry("TestClient")
    server.client_registry("RetryingClient", registry=registry, retry_policy="QuickRetry")
    return generated_client.b.with_options(client_registry=registry)


def test_client_options_tags_the_base_url(server: FakeLLMServer):
    assert server.client_options(client="Primary")["base_url"] == f"{server.url}/_c/Primary/v1"
    assert server.client_options(client="P", provider="ollama")["base_url"] == f"{server.url}/_c/P/v1"
    azure = server.client_options(client="Az", provider="azure-openai", model="dep")
    assert azure["base_url"] == f"{server.url}/_c/Az/openai/deployments/dep"
    assert server.client_options()["base_url"] == server.base_url  # untagged as before


def test_a_script_for_one_client_waits_for_that_client(two_clients, server: FakeLLMServer):
    server.respond("for the retrying client", client="RetryingClient")
    server.respond("for anyone")
    # SayHello (TestClient) skips the script for RetryingClient and takes the untargeted one
    assert two_clients.SayHello("Ann") == "for anyone"
    assert two_clients.SayHelloWithRetry("Bo") == "for the retrying client"
    first, second = server.requests
    assert (first.client, first.provider, first.served, first.path) == ("TestClient", "openai", "respond", "/v1/chat/completions")
    assert first.script == "respond('for anyone', usage=None, model=None)"
    assert (second.client, second.script) == ("RetryingClient", "respond('for the retrying client', usage=None, model=None) [client='RetryingClient']")
    assert server.pending == []


def test_untargeted_scripts_serve_in_order_across_clients(two_clients, server: FakeLLMServer):
    server.respond("one").respond("two").respond("three")
    assert two_clients.SayHelloWithRetry("a") == "one"
    assert two_clients.SayHello("b") == "two"
    assert two_clients.SayHelloWithRetry("c") == "three"
    assert [r.client for r in server.requests] == ["RetryingClient", "TestClient", "RetryingClient"]


def test_every_script_kind_takes_the_filters(two_clients, server: FakeLLMServer):
    from baml_py import errors

    server.fail(429, client="RetryingClient").fail(429, client="RetryingClient")
    server.fail(503, client="TestClient", provider="openai")
    server.respond("recovered", client="RetryingClient")
    with pytest.raises(errors.BamlClientHttpError) as info:
        two_clients.SayHello("x")
    assert (info.value.status_code, info.value.client_name) == (503, "TestClient")
    assert two_clients.SayHelloWithRetry("y") == "recovered"  # two 429s retried, then the answer
    assert [r.served for r in server.requests] == ["fail", "fail", "fail", "respond"]

    server.reset()
    server.malformed(client="TestClient").fail_stream(client="RetryingClient", provider="openai")
    server.hang(0.01, client="Nobody")
    with pytest.raises(errors.BamlClientHttpError) as info:
        two_clients.SayHello("x")
    assert info.value.status_code == 200  # the malformed body
    assert server.pending == ["fail_stream(after_chunks=1) [client='RetryingClient', provider='openai']", "hang(0.01s) [client='Nobody']"]


def test_a_request_no_script_matches_gets_a_500_naming_the_filters(two_clients, server: FakeLLMServer):
    from baml_py import errors

    server.respond("only for the other one", client="RetryingClient")
    with pytest.raises(errors.BamlClientHttpError) as info:
        two_clients.SayHello("x")
    assert info.value.status_code == 500
    (req,) = server.requests
    assert (req.served, req.client, req.script) == ("unscripted", "TestClient", None)
    message = info.value.message
    assert "nothing scripted for request #0" in message and "client 'TestClient'" in message
    assert "1 queued script(s) are for other requests: respond('only for the other one', usage=None, model=None) [client='RetryingClient']" in message
    with pytest.raises(AssertionError, match=r"1 scripted response\(s\) never requested: respond\('only for the other one'.*\[client='RetryingClient'\]"):
        server.assert_all_used()


def test_an_untagged_request_matches_only_untargeted_scripts(server: FakeLLMServer):
    server.respond("tagged", client="A").respond("plain")
    url = server.url + "/v1/chat/completions"
    assert httpx.post(url, json={"model": "m"}, timeout=10).json()["choices"][0]["message"]["content"] == "plain"
    assert httpx.post(url, json={"model": "m"}, timeout=10).status_code == 500
    tagged = httpx.post(server.url + "/_c/A/v1/chat/completions", json={"model": "m"}, timeout=10)
    assert tagged.json()["choices"][0]["message"]["content"] == "tagged"
    assert [(r.client, r.served) for r in server.requests] == [(None, "respond"), (None, "unscripted"), ("A", "respond")]
    assert httpx.post(server.url + "/_c/A/v1/embeddings", json={}, timeout=10).status_code == 404
    assert (server.requests[-1].client, server.requests[-1].provider, server.requests[-1].path) == ("A", None, "/v1/embeddings")


def test_scripts_queued_before_start_keep_their_filters():
    server = FakeLLMServer()
    server.respond("x", client="C")
    assert server.pending == ["respond('x', usage=None, model=None) [client='C']"]
    with server:
        assert server.pending == ["respond('x', usage=None, model=None) [client='C']"]
        assert httpx.post(server.url + "/_c/C/chat/completions", json={}, timeout=10).status_code == 200


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda s: s.respond("x", client=""), ValueError, r"FakeLLMServer.respond: client=''"),
        (lambda s: s.fail(500, client=3), TypeError, r"FakeLLMServer.fail: client=3"),
        (lambda s: s.hang(1, client="a/b"), ValueError, r"client='a/b' is not a client name"),
        (lambda s: s.malformed(provider="ollama"), ValueError, r"provider='ollama' speaks the 'openai' wire format"),
        (lambda s: s.fail_stream(provider="vertex-ai"), ValueError, r"provider='vertex-ai': expected a wire format"),
        (lambda s: s.client_options(client=" A"), ValueError, r"client=' A' is not a client name"),
        (lambda s: s.client_registry("A", tag=1), TypeError, r"tag=1"),
    ],
)
def test_bad_filters_are_refused(server: FakeLLMServer, call, error, match):
    with pytest.raises(error, match=match):
        call(server)
    assert server.pending == []


@pytest.mark.parametrize("provider", ["openai", "openai-responses", "anthropic", "google-ai", "aws-bedrock"])
@pytest.mark.parametrize("streaming", [False, True])
def test_instrument_reads_tokens_provider_and_client_for_every_format(generated_client, server: FakeLLMServer, tel, provider, streaming):
    """instrument(b) over each wire format: the stop event carries the scripted tokens (cached
    included), the provider and the client, for calls and streams, and the request is tagged."""
    from pytest_baml_telemetry import instrument

    emitter, capture = tel
    registry = server.client_registry("TestClient", provider=provider, model="model-x")
    b = instrument(generated_client.b, emitter=emitter).with_options(client_registry=registry)
    server.respond("Hello there", usage=(10, 4, 3), client="TestClient", provider=provider)
    if streaming:
        assert b.stream.SayHello("x").get_final_response() == "Hello there"
    else:
        assert b.SayHello("x") == "Hello there"
    (stop,) = capture.stops
    m, md = stop.measurements, stop.metadata
    assert (m["input_tokens"], m["output_tokens"], m["cached_input_tokens"]) == (10, 4, 3)
    assert (md["provider"], md["client_name"], md["num_attempts"]) == (provider, "TestClient", 1)
    (req,) = server.requests
    assert (req.client, req.provider, req.stream) == ("TestClient", provider, streaming)


@pytest.mark.parametrize("provider", ["openai-responses", "anthropic", "google-ai", "aws-bedrock"])
def test_the_async_client_streams_every_format(generated_client, server: FakeLLMServer, provider):
    import asyncio

    import baml_py

    collector = baml_py.Collector("async")
    registry = server.client_registry("TestClient", provider=provider)
    b = generated_client.async_b.with_options(client_registry=registry, collector=collector)
    server.respond("Hello there, Ann", usage=(8, 3, 1), chunks=3, chunk_delay="20ms").respond("plain", usage=(2, 1, 0))

    async def main():
        stream = b.stream.SayHello("Ann")
        partials = [p async for p in stream]
        return partials, await stream.get_final_response(), await b.SayHello("Bo")

    partials, final, plain = asyncio.run(main())
    assert final == "Hello there, Ann" and partials[-1] == final and plain == "plain"
    usage = collector.last.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (2, 1, 0)
    assert [r.stream for r in server.requests] == [True, False]
