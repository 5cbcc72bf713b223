"""A spec'd fake's metadata defaults come from the generated client (issue 12): each
function's declared client, that client's provider and model, as the real runtime reports."""

from __future__ import annotations

from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock
from pytest_baml_telemetry.fake import FakeBamlClient, faults
from pytest_baml_telemetry.fake.spec import ClientSpec, DeclaredClient, declared_clients
from pytest_baml_telemetry.instrument import instrument

PREFIX = ("ash_baml", "call")
META = ("client_name", "provider", "model", "num_attempts")


class Ends:
    def __init__(self) -> None:
        self.dispatcher = Dispatcher()
        self.items: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.dispatcher.attach_many(
            "ends", [PREFIX + ("stop",), PREFIX + ("exception",)], lambda n, m, md, _c: self.items.append((n[-1], m, md))
        )

    def meta(self) -> list[tuple[Any, ...]]:
        return [(kind, *(md.get(k) for k in META)) for kind, _, md in self.items]


@pytest.fixture
def ends() -> Ends:
    return Ends()


def test_spec_defaults_are_each_functions_declared_client(generated_client, ends):
    fake = FakeBamlClient(spec=generated_client.b, emitter=Emitter(dispatcher=ends.dispatcher), clock=VirtualClock())
    fake.respond("ExtractResume", {"name": "Ada", "skills": []})
    fake.fail("SayHelloWithRetry", faults.rate_limited())
    fake.fail("SayHelloQuickly", faults.timeout(after="500ms"))
    fake.ExtractResume("Ada")
    with pytest.raises(errors.BamlClientHttpError) as retry:
        fake.SayHelloWithRetry("Bo")
    with pytest.raises(errors.BamlTimeoutError) as quick:
        fake.SayHelloQuickly("Cy")
    assert (retry.value.client_name, quick.value.client_name) == ("RetryingClient", "FastTimeoutClient")
    assert ends.meta() == [
        ("stop", "TestClient", "openai", "gpt-4o-mini", 1),
        ("exception", "RetryingClient", "openai", "gpt-4o-mini", 1),
        ("exception", "FastTimeoutClient", "openai", "gpt-4o-mini", 1),
    ]


@pytest.mark.parametrize("which", ["b", "async_b", "module", "class"])
def test_every_kind_of_spec_reads_the_sources(generated_client, which):
    spec = {
        "b": generated_client.b,
        "async_b": generated_client.async_b,
        "module": generated_client.module,
        "class": type(generated_client.b),
    }[which]
    parsed = ClientSpec(spec)
    assert parsed.function_clients == {
        "ExtractResume": "TestClient",
        "SayHello": "TestClient",
        "SayHelloWithRetry": "RetryingClient",
        "SayHelloQuickly": "FastTimeoutClient",
    }
    assert parsed.clients["RetryingClient"] == DeclaredClient("RetryingClient", "openai", "gpt-4o-mini")


def test_explicit_metadata_wins_over_the_spec(generated_client, ends):
    fake = FakeBamlClient(
        spec=generated_client.b, emitter=Emitter(dispatcher=ends.dispatcher), clock=VirtualClock(), model="gpt-4.1"
    )
    fake.respond("SayHello", "hi", reusable=True)
    fake.SayHello("a")
    fake.with_options(client="RetryingClient").SayHello("b")  # a declared client: its provider
    fake.with_options(client="Elsewhere").SayHello("c")  # not declared: only its name is known
    fake.respond("SayHelloQuickly", "hi", provider="openai-generic", client_name="Custom")
    fake.SayHelloQuickly("d")
    assert ends.meta() == [
        ("stop", "TestClient", "openai", "gpt-4.1", 1),
        ("stop", "RetryingClient", "openai", "gpt-4.1", 1),
        ("stop", "Elsewhere", None, "gpt-4.1", 1),
        ("stop", "Custom", "openai-generic", "gpt-4.1", 1),
    ]


def test_a_fake_without_a_generated_spec_has_no_defaults(ends):
    class Plain:
        def SayHello(self, name: str) -> str:
            return name

    assert (ClientSpec(Plain()).clients, ClientSpec(Plain).function_clients) == ({}, {})
    fake = FakeBamlClient(spec=Plain(), emitter=Emitter(dispatcher=ends.dispatcher))
    fake.respond("SayHello", "hi")
    fake.SayHello("a")
    assert ends.meta() == [("stop", None, None, None, 1)]


@pytest.mark.usefixtures("_quiet_baml")
def test_the_fake_reports_what_the_real_runtime_reports(generated_client, server, ends):
    """The oracle: the real client on FakeLLMServer (the registry entry mirrors the declared
    TestClient) and the spec'd fake give the same metadata, success and failure."""
    real_ends = Ends()
    real = instrument(generated_client.b, emitter=Emitter(dispatcher=real_ends.dispatcher)).with_options(
        client_registry=server.client_registry("TestClient", model="gpt-4o-mini", provider="openai")
    )
    server.respond("Hello, Bo!", usage=(5, 3))
    server.fail(500)
    assert real.SayHello("Bo") == "Hello, Bo!"
    with pytest.raises(errors.BamlClientHttpError):
        real.SayHello("Bo")

    fake = FakeBamlClient(spec=generated_client.b, emitter=Emitter(dispatcher=ends.dispatcher))
    fake.respond("SayHello", "Hello, Bo!", usage=(5, 3))
    fake.fail("SayHello", faults.http_error(500))
    assert fake.SayHello("Bo") == "Hello, Bo!"
    with pytest.raises(errors.BamlClientHttpError):
        fake.SayHello("Bo")
    assert ends.meta() == real_ends.meta() == [
        ("stop", "TestClient", "openai", "gpt-4o-mini", 1),
        ("exception", "TestClient", "openai", "gpt-4o-mini", 1),
    ]
    assert all(isinstance(md["request_id"], str) for _, _, md in ends.items + real_ends.items)


SOURCES = '''
// client<llm> Commented { provider nope }
client<llm> Primary {
  provider "anthropic"
  options { model claude-3-5-haiku-latest  api_key env.ANTHROPIC_API_KEY }
}
client<llm> FromEnv { provider openai options { model env.MODEL } }
client<llm> Backup {
  provider fallback
  options { strategy [Primary, "FromEnv"] }
}
client<llm> Loop { provider round-robin options { strategy [Loop] } }
{// function Hidden() -> string { client FromEnv } //}
function ViaFallback(x: string) -> string {
  client Backup
  prompt #"
    client FromEnv { model "not-this-one" }
  "#
}
function Shorthand() -> string { client "openai/gpt-4o" prompt ##" "# } client Primary "## }
/// a docstring
function PromptFirst() -> string {
  prompt #" {{ ctx.output_format }} "#
  client FromEnv
}
'''


def test_declared_clients_reads_the_blocks_the_runtime_would():
    clients, functions = declared_clients({"clients.baml": SOURCES, "not-a-source": 3})  # type: ignore[dict-item]
    assert functions == {"ViaFallback": "Backup", "Shorthand": "openai/gpt-4o", "PromptFirst": "FromEnv"}
    assert clients["Backup"] == DeclaredClient("Primary", "anthropic", "claude-3-5-haiku-latest")  # the first that answers
    assert clients["FromEnv"] == DeclaredClient("FromEnv", "openai", None)  # env.MODEL: unknown
    assert clients["openai/gpt-4o"] == DeclaredClient("openai/gpt-4o", "openai", "gpt-4o")
    assert clients["Loop"] == DeclaredClient("Loop", "round-robin", None)  # a strategy naming itself ends
    assert "Commented" not in clients and "Hidden" not in functions


def test_an_instrumented_client_is_read_as_the_client_it_wraps(generated_client, ends):
    fake = FakeBamlClient(spec=instrument(generated_client.b), emitter=Emitter(dispatcher=ends.dispatcher))
    fake.respond("SayHelloWithRetry", "hi")
    assert fake.SayHelloWithRetry("Bo") == "hi"  # positional: bound by the real signature
    assert fake.function_names == ["ExtractResume", "SayHello", "SayHelloQuickly", "SayHelloWithRetry"]
    assert ends.meta() == [("stop", "RetryingClient", "openai", "gpt-4o-mini", 1)]


FALLBACK_SOURCES = '''
client<llm> Primary {
  provider openai
  options {
    model "gpt-4o"
    api_key "sk-test-not-a-real-key"
    base_url "URL"
  }
}

client<llm> Second {
  provider openai-generic
  options {
    model "gpt-4o-mini"
    api_key "sk-test-not-a-real-key"
    base_url "URL"
  }
}

client<llm> Backup {
  provider fallback
  options {
    strategy [Primary, Second]
  }
}

function Hello(name: string) -> string {
  client Backup
  prompt #"
    Say hello to {{ name }}.
  "#
}
'''


@pytest.mark.usefixtures("_quiet_baml")
def test_a_fallback_client_reports_the_client_that_answered(module_server, tmp_path, ends):
    """The oracle for fallback clients: baml-py reports the leaf client that answered (the
    first of the strategy, or the next one after a failure); the spec'd fake does the same."""
    import shutil
    from pathlib import Path

    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    module_server.reset()
    src = tmp_path / "baml_src"
    src.mkdir()
    shutil.copy(Path(__file__).parent / "baml_src" / "generators.baml", src)
    (src / "main.baml").write_text(FALLBACK_SOURCES.replace("URL", module_server.base_url))
    generated = import_generated(generate_client(src, tmp_path / "out"))

    real_ends = Ends()
    real = instrument(generated.b, emitter=Emitter(dispatcher=real_ends.dispatcher))
    module_server.respond("hi")
    module_server.fail(500)
    module_server.respond("hi")
    assert real.Hello("Bo") == "hi"
    assert real.Hello("Bo") == "hi"
    module_server.reset()

    fake = FakeBamlClient(spec=generated.b, emitter=Emitter(dispatcher=ends.dispatcher))
    fake.respond("Hello", "hi")
    fake.respond("Hello", "hi", client_name="Second", failed_attempts=[faults.http_error(500)])
    assert fake.Hello("Bo") == "hi"
    assert fake.Hello("Bo") == "hi"
    assert ends.meta() == real_ends.meta() == [
        ("stop", "Primary", "openai", "gpt-4o", 1),
        ("stop", "Second", "openai-generic", "gpt-4o-mini", 2),
    ]
