"""``FakeLLMServer.route(b)`` / ``client_registry_for(b)`` (issue 14) on the real runtime.

The app of ``tests/baml_src_routing`` is written as a user writes one: clients at real hosts
with keys from the environment (openai, openai-generic, azure-openai, ollama, anthropic,
google-ai), a fallback, a fallback across providers, a round-robin, constant and exponential
retry policies, and a vertex-ai client. One call routes
it; what is measured here is what baml-py 0.226.3 does with the routed client.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import baml_py
import pytest
from baml_py.errors import BamlClientHttpError

from pytest_baml_telemetry import instrument
from pytest_baml_telemetry.guard import get_guard

pytestmark = pytest.mark.usefixtures("_quiet_baml")

ROUTING_SRC = Path(__file__).parent / "baml_src_routing"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(ROUTING_SRC, tmp_path_factory.mktemp("routing_app")))


def _clients(server) -> list[str | None]:
    return [r.client for r in server.requests]


def test_every_leaf_client_keeps_its_provider_and_options(app, server) -> None:
    b = server.route(app.b)
    server.respond("from primary", client="Primary")
    server.respond("from azure", client="Azure")
    server.respond("from local", client="Local")
    assert b.AskPrimary("q") == "from primary"
    assert b.AskAzure("q") == "from azure"
    assert b.AskLocal("q") == "from local"
    primary, azure, local = server.requests
    assert (primary.client, primary.path, primary.json["model"]) == ("Primary", "/v1/chat/completions", "gpt-4o")
    assert primary.json["temperature"] == 0.2 and primary.json["max_tokens"] == 300  # declared options kept
    assert azure.client == "Azure" and azure.path.startswith("/openai/deployments/gpt4o-deployment/chat/completions")
    assert (local.client, local.json["model"]) == ("Local", "llama3")


def test_a_declared_http_timeout_is_kept(app, server) -> None:
    b = server.route(app.b)
    for _ in range(3):  # Primary: request_timeout_ms 500, retry_policy Constant (2 retries)
        server.hang(5, client="Primary")
    with pytest.raises(baml_py.errors.BamlTimeoutError):
        b.AskPrimary("q")
    assert _clients(server) == ["Primary"] * 3


def test_retry_policies_are_kept(app, server) -> None:
    b = server.route(app.b)
    server.fail(500, client="Primary").fail(503, client="Primary").respond("third time", client="Primary")
    assert b.AskPrimary("q") == "third time"  # Constant: max_retries 2
    server.reset()
    server.fail(500, client="Local").respond("second time", client="Local")
    assert b.AskLocal("q") == "second time"  # Exponential: max_retries 1
    assert _clients(server) == ["Local", "Local"]


def test_a_fallback_client_keeps_its_order_and_its_members_retry(app, server) -> None:
    b = server.route(app.b)
    for _ in range(3):  # Primary and its own retries (Constant), then Secondary
        server.fail(500, client="Primary")
    server.respond("from secondary", client="Secondary")
    assert b.AskResilient("q") == "from secondary"
    assert _clients(server) == ["Primary", "Primary", "Primary", "Secondary"]
    assert server.requests[3].json["model"] == "llama-3.1-70b"


def test_a_round_robin_client_rotates_through_its_routed_members(app, server) -> None:
    b = server.route(app.b)
    for i in range(4):
        server.respond(f"answer {i}")
    assert [b.AskRotating("q") for _ in range(4)] == [f"answer {i}" for i in range(4)]
    first, second, *_ = clients = _clients(server)
    assert {first, second} == {"Secondary", "Local"}
    assert clients == [first, second, first, second]  # rotates (a registry round-robin would pick at random)


def test_route_works_for_async_and_instrumented_clients(app, server, tel) -> None:
    emitter, capture = tel
    server.respond("async answer", usage=(11, 3), client="Primary")
    assert asyncio.run(server.route(app.async_b).AskPrimary("q")) == "async answer"
    server.respond("instrumented answer", usage=(20, 5), client="Local")
    routed = server.route(instrument(app.b, emitter=emitter))
    assert routed.AskLocal("q") == "instrumented answer"
    capture.assert_call("AskLocal", ok=True, model="llama3", input_tokens=20, output_tokens=5)
    assert capture.stops[0].metadata["client_name"] == "Local"


def test_client_registry_for_is_the_registry_route_applies(app, server) -> None:
    registry = server.client_registry_for(app.b)
    assert isinstance(registry, baml_py.ClientRegistry)
    server.respond("via the registry", client="Primary")
    assert app.b.with_options(client_registry=registry).AskPrimary("q") == "via the registry"


def test_a_vertex_ai_client_is_refused_on_this_machine_saying_why(app, server) -> None:
    b = server.route(app.b)
    get_guard().take_blocked()
    with pytest.raises(BamlClientHttpError) as info:
        b.AskGemini("q")
    assert "client 'Gemini': provider vertex-ai authenticates against Google" in str(info.value)
    assert "cannot be faked offline" in str(info.value)
    blocked = get_guard().take_blocked()  # taken here: else the plugin fails this test at teardown
    assert [(r.clients, r.host) for r in blocked] == [(("Gemini",), "vertex-ai")]
    assert server.requests == []


@pytest.mark.parametrize("bad", [object(), None, "b", baml_py.ClientRegistry()])
def test_route_refuses_what_is_not_a_generated_client(server, bad) -> None:
    for method in (server.route, server.client_registry_for):
        with pytest.raises(TypeError, match=r"FakeLLMServer.client_registry_for: client=.*: expected a generated baml client"):
            method(bad)


def _tiny_app(tmp_path: Path, source: str):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    src = tmp_path / "baml_src"
    src.mkdir()
    (src / "main.baml").write_text(source, encoding="utf-8")
    (src / "generators.baml").write_text((ROUTING_SRC / "generators.baml").read_text(encoding="utf-8"), encoding="utf-8")
    return import_generated(generate_client(src, tmp_path / "out"))


def test_a_shorthand_client_cannot_be_routed_and_route_says_who_uses_it(tmp_path: Path, server) -> None:
    app = _tiny_app(tmp_path, """
function Quick(q: string) -> string {
  client "openai/gpt-4o-mini"
  prompt #"{{ q }}"#
}
""")
    with pytest.raises(ValueError, match=r"shorthand client\(s\) 'openai/gpt-4o-mini' \(used by function Quick\) cannot be routed"):
        server.route(app.b)


def test_a_provider_the_server_does_not_speak_is_named(tmp_path: Path, server, monkeypatch) -> None:
    from pytest_baml_telemetry.fake import server_clients

    # the server speaks google-ai: pretend it does not, as for a provider it does not speak yet
    monkeypatch.setattr(server_clients, "SUPPORTED_PROVIDERS", tuple(p for p in server_clients.SUPPORTED_PROVIDERS if p != "google-ai"))
    app = _tiny_app(tmp_path, """
client<llm> Gem {
  provider google-ai
  options {
    model "gemini-1.5-flash"
    api_key "test-key"
  }
}
function Ask(q: string) -> string {
  client Gem
  prompt #"{{ q }}"#
}
""")
    with pytest.raises(ValueError, match=r"client 'Gem' has provider 'google-ai', which the fake server does not speak"):
        server.client_registry_for(app.b)


@pytest.mark.parametrize(
    ("function", "client", "provider", "model"),
    [
        ("AskPrimary", "Primary", "openai", "gpt-4o"),
        ("AskClaude", "Claude", "anthropic", "claude-3-5-sonnet-20241022"),
        ("AskGeminiAI", "GeminiAI", "google-ai", "gemini-1.5-flash"),  # its model is in the URL
    ],
)
def test_each_provider_is_routed_in_its_own_wire_format(app, server, tel, function, client, provider, model) -> None:
    emitter, capture = tel
    server.respond(f"hello from {client}", usage=(30, 4), client=client)
    routed = server.route(instrument(app.b, emitter=emitter))
    assert getattr(routed, function)("q") == f"hello from {client}"
    assert [(r.client, r.provider) for r in server.requests] == [(client, provider)]
    capture.assert_call(function, ok=True, input_tokens=30, output_tokens=4)
    assert capture.stops[0].metadata["client_name"] == client
    capture.assert_call(function, ok=True, model=model)


def test_a_fallback_across_providers_keeps_its_order(app, server) -> None:
    b = server.route(app.b)
    server.fail(529, client="Claude").fail(500, client="GeminiAI").respond("openai answers", client="Primary")
    assert b.AskAnyProvider("q") == "openai answers"
    assert [(r.client, r.provider) for r in server.requests] == [
        ("Claude", "anthropic"), ("GeminiAI", "google-ai"), ("Primary", "openai")
    ]
    assert server.requests[0].json["max_tokens"] == 1024  # Claude's declared option


def test_routed_options_read_env_values_now_and_drop_where_and_as_whom(server, monkeypatch) -> None:
    from pytest_baml_telemetry.fake.routing import routed_options
    from pytest_baml_telemetry.fake.server_clients import FAKE_API_KEY
    from pytest_baml_telemetry.fake.sources import ClientBlock, EnvRef

    monkeypatch.setenv("APP_MODEL", "gpt-4.1")
    monkeypatch.delenv("APP_ORG", raising=False)
    block = ClientBlock("Main", "openai", "Constant", {
        "model": EnvRef("APP_MODEL"), "temperature": 0.5, "base_url": "https://api.example.com/v1",
        "api_key": EnvRef("OPENAI_API_KEY"), "headers": {"OpenAI-Organization": EnvRef("APP_ORG"), "X-Team": "a"},
    }, ())
    options = routed_options(server, block)
    assert options == {
        "model": "gpt-4.1", "api_key": FAKE_API_KEY, "base_url": server.client_options(client="Main")["base_url"],
        "temperature": 0.5, "headers": {"X-Team": "a"},
    }
    monkeypatch.delenv("APP_MODEL")
    assert routed_options(server, block)["model"] == server.client_options()["model"]  # unset: the server's default
    azure = ClientBlock("Az", "azure-openai", None, {"resource_name": "r", "deployment_id": "dep", "model": "gpt-4o",
                                                     "api_version": "2024-02-01", "max_tokens": 7}, ())
    assert routed_options(server, azure) == {
        **server.client_options(provider="azure-openai", model="dep", client="Az"), "max_tokens": 7,
    }
