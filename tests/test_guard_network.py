"""The network guard (issue 14): while tests run, a BAML request to a host that is not
loopback is refused on this machine, fast, and the test fails naming client, host and fix.

Every session runs in a pytester subprocess, so the proxy variables the guard sets never leak
into this process. The unrouted clients point at TEST-NET (203.0.113.1, never routable) and at
api.openai.com: with the guard, baml-py sends them to the guard proxy on 127.0.0.1, which sees
the ``CONNECT`` and refuses it — no connection ever leaves the machine (without the guard the
call would wait for baml's connect timeout, or reach OpenAI).
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from helpers import no_crash

from pytest_baml_telemetry import guard as guard_module
from pytest_baml_telemetry.guard import (
    LOOPBACK_NO_PROXY,
    PROXY_VARIABLES,
    VERTEX_CREDENTIALS_NAME,
    BlockedRequest,
    NetworkGuard,
    blocked_report,
    is_loopback,
)

APP = """
client<llm> Unrouted {
  provider openai
  options {
    model "gpt-4o-mini"
    api_key "sk-test-not-a-real-key"
    base_url "https://203.0.113.1/v1"
  }
}
client<llm> PlainHttp {
  provider openai
  options {
    model "gpt-4o-mini"
    api_key "sk-test-not-a-real-key"
    base_url "http://203.0.113.1/v1"
  }
}
client<llm> OpenAIDefault {
  provider openai
  options {
    model "gpt-4o-mini"
    api_key "sk-test-not-a-real-key"
  }
}
client<llm> Vertex {
  provider vertex-ai
  options {
    model "gemini-1.5-pro"
    location "us-central1"
    project_id "test-project"
  }
}
function Hello(name: string) -> string {
  client Unrouted
  prompt #"Say hello to {{ name }}."#
}
function HelloPlain(name: string) -> string {
  client PlainHttp
  prompt #"Say hello to {{ name }}."#
}
function HelloOpenAI(name: string) -> string {
  client OpenAIDefault
  prompt #"Say hello to {{ name }}."#
}
function HelloVertex(name: string) -> string {
  client Vertex
  prompt #"Say hello to {{ name }}."#
}
generator target {
  output_type "python/pydantic"
  output_dir "../"
  version "0.226.3"
  default_client_mode sync
}
"""

PROVIDERS_APP = """
client<llm> Bedrock {
  provider aws-bedrock
  options {
    model "anthropic.claude-3-haiku-20240307-v1:0"
    region "us-east-1"
    access_key_id "AKIATESTNOTAREALKEY"
    secret_access_key "test-not-a-real-secret"
  }
}
client<llm> Claude {
  provider anthropic
  options {
    model "claude-3-5-sonnet-20241022"
    api_key "sk-ant-test-not-a-real-key"
  }
}
client<llm> Responses {
  provider openai-responses
  options {
    model "gpt-4o"
    api_key "sk-test-not-a-real-key"
  }
}
function AskBedrock(q: string) -> string {
  client Bedrock
  prompt #"{{ q }}"#
}
function AskClaude(q: string) -> string {
  client Claude
  prompt #"{{ q }}"#
}
function AskResponses(q: string) -> string {
  client Responses
  prompt #"{{ q }}"#
}
""" + APP[APP.index("generator target"):]

CONFTEST = """
import os
import pytest

@pytest.fixture(scope="session")
def app():
    from pytest_baml_telemetry.baml_gen import import_generated
    return import_generated(os.environ["GUARD_TEST_APP"])

@pytest.fixture(scope="session")
def providers_app():
    from pytest_baml_telemetry.baml_gen import import_generated
    return import_generated(os.environ["GUARD_TEST_PROVIDERS_APP"])

@pytest.fixture
def guard():
    from pytest_baml_telemetry.guard import get_guard
    return get_guard()
"""


@pytest.fixture(scope="module")
def app_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pytest_baml_telemetry.baml_gen import generate_client

    src = tmp_path_factory.mktemp("guard_app") / "baml_src"
    src.mkdir()
    (src / "main.baml").write_text(APP, encoding="utf-8")
    return generate_client(src, tmp_path_factory.mktemp("guard_app_out"))


@pytest.fixture(scope="module")
def providers_app_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pytest_baml_telemetry.baml_gen import generate_client

    src = tmp_path_factory.mktemp("guard_providers_app") / "baml_src"
    src.mkdir()
    (src / "main.baml").write_text(PROVIDERS_APP, encoding="utf-8")
    return generate_client(src, tmp_path_factory.mktemp("guard_providers_app_out"))


@pytest.fixture
def run(pytester: pytest.Pytester, app_path: Path, providers_app_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("GUARD_TEST_APP", str(app_path))
    monkeypatch.setenv("GUARD_TEST_PROVIDERS_APP", str(providers_app_path))
    monkeypatch.setenv("BAML_LOG", "off")
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeconftest(CONFTEST)

    def run(source: str, *args: str, ini: str | None = None):
        if ini is not None:
            pytester.makeini(ini)
        pytester.makepyfile(test_app=source)
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-rA", *args)

    return run


def test_an_unrouted_client_never_leaves_the_machine_and_the_test_fails_naming_it(run) -> None:
    result = run(
        """
import os, time
import pytest
from baml_py.errors import BamlClientHttpError

def test_unrouted(app, baml_llm_server, guard):
    assert os.environ["HTTPS_PROXY"] == guard.url and os.environ["NO_PROXY"] == "127.0.0.1,localhost,::1"
    started = time.monotonic()
    with pytest.raises(BamlClientHttpError) as info:
        app.b.Hello("Ann")
    assert time.monotonic() - started < 2.0          # refused at once: baml's connect timeout is far longer
    assert info.value.status_code == 2 and "TunnelUnsuccessful" in str(info.value)
    assert [(r.method, r.host, r.port) for r in guard.blocked] == [("CONNECT", "203.0.113.1", 443)]
    with pytest.raises(BamlClientHttpError):
        app.b.HelloOpenAI("Ann")
    assert [(r.method, r.host, r.port, r.clients) for r in guard.blocked][1] == (
        "CONNECT", "api.openai.com", 443, ("OpenAIDefault",))
"""
    )
    out = no_crash(result)
    result.assert_outcomes(passed=1, errors=1)
    assert "ERROR at teardown of test_unrouted" in out
    assert "2 BAML request(s) to a host that is not loopback were blocked (nothing left this machine)" in out
    assert "CONNECT 203.0.113.1:443 — client 'Unrouted'" in out
    assert "CONNECT api.openai.com:443 — client 'OpenAIDefault'" in out
    assert "baml_llm_server.route(b)" in out and "@pytest.mark.baml_allow_network" in out


def test_every_providers_http_goes_through_the_guard(run) -> None:
    """Measured: anthropic and openai-responses (reqwest) and aws-bedrock (the AWS SDK, which
    retries a failed dispatch itself) all honour the proxy variables."""
    result = run(
        """
import time
import pytest
from baml_py.errors import BamlClientHttpError

def test_providers(providers_app, baml_llm_server, guard):
    for function in ("AskBedrock", "AskClaude", "AskResponses"):
        started = time.monotonic()
        with pytest.raises(BamlClientHttpError):
            getattr(providers_app.b, function)("q")
        assert time.monotonic() - started < 10.0
    seen = {(r.method, r.host, r.port, r.clients) for r in guard.blocked}
    assert seen == {
        ("CONNECT", "bedrock-runtime.us-east-1.amazonaws.com", 443, ("Bedrock",)),
        ("CONNECT", "api.anthropic.com", 443, ("Claude",)),
        ("CONNECT", "api.openai.com", 443, ("Responses",)),
    }
"""
    )
    out = no_crash(result)
    result.assert_outcomes(passed=1, errors=1)
    assert "CONNECT bedrock-runtime.us-east-1.amazonaws.com:443 — client 'Bedrock'" in out
    assert "CONNECT api.anthropic.com:443 — client 'Claude'" in out


def test_a_plain_http_request_gets_the_guards_message_in_baml_pys_error(run) -> None:
    result = run(
        """
import pytest
from baml_py.errors import BamlClientHttpError

@pytest.mark.baml_llm_server(assert_all_used=True)
def test_plain(app, baml_fake, guard):
    with pytest.raises(BamlClientHttpError) as info:
        app.b.HelloPlain("Ann")
    assert info.value.status_code == 403
    text = str(info.value)
    assert "pytest-baml-telemetry network guard: blocked POST http://203.0.113.1/v1/chat/completions" in text
    assert "client 'PlainHttp'" in text and "baml_llm_server.route(b)" in text
"""
    )
    out = no_crash(result)
    result.assert_outcomes(passed=1, errors=1)
    assert "POST http://203.0.113.1/v1/chat/completions — client 'PlainHttp'" in out


def test_a_vertex_ai_client_fails_on_this_machine_saying_it_cannot_be_faked(run) -> None:
    result = run(
        f"""
import pytest
from baml_py.errors import BamlClientHttpError

def test_vertex(app, baml_llm_server):
    with pytest.raises(BamlClientHttpError) as info:
        app.b.HelloVertex("Ann")
    assert {VERTEX_CREDENTIALS_NAME!r} in str(info.value)
"""
    )
    no_crash(result)
    result.assert_outcomes(passed=1)  # failed locally: nothing reached the guard, nothing to report


def test_allow_network_marker_lets_a_test_through_and_plain_tests_are_left_alone(run) -> None:
    result = run(
        """
import os
import pytest

@pytest.mark.baml_allow_network
def test_allowed(baml_llm_server):
    assert "HTTPS_PROXY" not in os.environ and "NO_PROXY" not in os.environ

def test_without_the_plugins_fixtures():
    assert "HTTPS_PROXY" not in os.environ

def test_engaged_then_released(baml_llm_server, guard):
    assert guard.engaged and os.environ["HTTP_PROXY"] == guard.url

def test_released_after(guard):
    assert not guard.engaged and "HTTP_PROXY" not in os.environ
"""
    )
    no_crash(result)
    result.assert_outcomes(passed=4)


@pytest.mark.parametrize("how", ["option", "ini", "xdist"])
def test_block_network_guards_the_whole_run(run, how: str) -> None:
    result = run(
        """
import os
import pytest
from baml_py.errors import BamlClientHttpError

def test_no_fixture(app, guard):
    assert guard.blocking and os.environ["ALL_PROXY"] == guard.url
    with pytest.raises(BamlClientHttpError):
        app.b.Hello("Ann")

@pytest.mark.baml_allow_network
def test_allowed(guard):
    assert guard.engaged and not guard.blocking   # a client that cached the proxy is forwarded

def test_blocking_again(guard):
    assert guard.blocking
""",
        *(["--baml-block-network"] if how != "ini" else []),
        *(["-p", "xdist", "-n", "2"] if how == "xdist" else []),
        ini="[pytest]\nbaml_block_network = true\n" if how == "ini" else None,
    )
    out = no_crash(result)
    result.assert_outcomes(passed=3, errors=1)
    assert "ERROR at teardown of test_no_fixture" in out and "CONNECT 203.0.113.1:443 — client 'Unrouted'" in out


def test_the_option_and_marker_are_listed(pytester: pytest.Pytester) -> None:
    out = pytester.runpytest_subprocess("--help").stdout.str()
    assert "--baml-block-network" in out and "baml_block_network" in out
    markers = pytester.runpytest_subprocess("--markers").stdout.str()
    assert "@pytest.mark.baml_allow_network" in markers


# -- the guard itself, in this process ---------------------------------------------------


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch):
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    made = NetworkGuard()
    yield made
    made.stop()


def test_engage_and_release_restore_the_environment_exactly(guard: NetworkGuard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://corporate:3128")
    monkeypatch.setenv("NO_PROXY", "internal.example")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/real/creds.json")
    before = dict(os.environ)
    guard.engage()
    guard.engage()  # nests
    assert all(os.environ[name] == guard.url for name in PROXY_VARIABLES)
    assert os.environ["NO_PROXY"] == os.environ["no_proxy"] == LOOPBACK_NO_PROXY
    assert os.environ["GOOGLE_APPLICATION_CREDENTIALS"].endswith(VERTEX_CREDENTIALS_NAME)
    assert not os.path.exists(os.environ["GOOGLE_APPLICATION_CREDENTIALS"])
    guard.release()
    assert guard.engaged and guard.blocking
    guard.release()
    assert not guard.engaged and not guard.blocking
    assert dict(os.environ) == before


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"hello through the guard"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def origin():
    server = HTTPServer(("127.0.0.2", 0), _Hello)  # loopback, yet not in NO_PROXY
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _via(guard: NetworkGuard, url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": guard.url}))
    with opener.open(url, timeout=5) as response:
        return response.read()


def test_a_loopback_host_is_relayed_even_while_blocking(guard: NetworkGuard, origin: int) -> None:
    guard.engage()
    assert _via(guard, f"http://127.0.0.2:{origin}/") == b"hello through the guard"  # 127.0.0.2: loopback
    with socket.create_connection(("127.0.0.1", int(guard.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(f"CONNECT 127.0.0.2:{origin} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
        assert data.endswith(b"hello through the guard")
    assert guard.blocked == []


def test_a_refused_request_is_recorded_and_answered_403(guard: NetworkGuard) -> None:
    guard.engage()
    with pytest.raises(urllib.error.HTTPError) as info:
        _via(guard, "http://203.0.113.1/v1/models")
    assert info.value.code == 403
    assert b"nothing left this machine" in info.value.read()
    with socket.create_connection(("127.0.0.1", int(guard.url.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"CONNECT [2001:db8::1]:8443 HTTP/1.1\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 403")
    assert [(r.method, r.host, r.port) for r in guard.take_blocked()] == [
        ("GET", "203.0.113.1", 80), ("CONNECT", "2001:db8::1", 8443)
    ]
    assert guard.blocked == []


def test_is_loopback() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]", "api.localhost"):
        assert is_loopback(host), host
    for host in ("203.0.113.1", "api.openai.com", "::ffff:203.0.113.1", "0.0.0.0", "", "localhost.example.com"):
        assert not is_loopback(host), host


def test_blocked_report_names_every_request_its_client_and_the_fix() -> None:
    text = blocked_report([
        BlockedRequest("CONNECT", "api.anthropic.com", 443, None, ("Claude",)),
        BlockedRequest("POST", "203.0.113.1", 80, "http://203.0.113.1/v1/chat/completions"),
    ])
    assert "2 BAML request(s)" in text
    assert "  1. CONNECT api.anthropic.com:443 — client 'Claude'" in text
    assert "  2. POST http://203.0.113.1/v1/chat/completions — a client no loaded baml_client declares" in text
    assert text.endswith("@pytest.mark.baml_allow_network.")


def test_the_process_guard_is_made_once() -> None:
    assert guard_module.get_guard() is guard_module.get_guard()


def test_route_engages_the_guard_for_its_test_only(run) -> None:
    result = run(
        """
import os
import pytest
from pytest_baml_telemetry.fake.server import FakeLLMServer

def test_route_without_the_plugins_fixtures(app, guard):
    assert not guard.engaged
    with FakeLLMServer() as server:
        server.route(app.b)
        assert guard.engaged and os.environ["HTTPS_PROXY"] == guard.url

def test_released_after(guard):
    assert not guard.engaged and "HTTPS_PROXY" not in os.environ

@pytest.mark.baml_allow_network
def test_route_in_an_allowed_test(app, guard):
    with FakeLLMServer() as server:
        server.route(app.b)
        assert not guard.engaged and "HTTPS_PROXY" not in os.environ
"""
    )
    no_crash(result)
    result.assert_outcomes(passed=3)


def test_test_scopes_nest_as_a_pytester_session_inside_a_test_does(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*PROXY_VARIABLES, "NO_PROXY", "no_proxy", "GOOGLE_APPLICATION_CREDENTIALS"):
        monkeypatch.delenv(name, raising=False)
    the_guard = guard_module.get_guard()
    assert not the_guard.engaged  # this test uses none of the plugin's fakes
    guard_module.set_test_scope("outer", allowed=False)
    assert guard_module.engage_for_test()
    guard_module.set_test_scope("inner", allowed=True)
    assert not guard_module.engage_for_test()  # the inner test allows the network: nothing more engaged
    guard_module.set_test_scope("inner-2", allowed=False)
    assert guard_module.engage_for_test()
    assert guard_module.end_test_scope() == [] and guard_module.end_test_scope() == []
    assert the_guard.engaged and os.environ["HTTPS_PROXY"] == the_guard.url  # the outer test's, still
    guard_module.end_test_scope()
    assert not the_guard.engaged and "HTTPS_PROXY" not in os.environ


def test_respx_mocks_still_answer_and_unmocked_httpx_is_refused(guard: NetworkGuard) -> None:
    httpx = pytest.importorskip("httpx")
    respx = pytest.importorskip("respx")
    guard.engage()
    with respx.mock:
        respx.post("https://api.openai.com/v1/chat/completions").respond(200, json={"ok": 1})
        assert httpx.post("https://api.openai.com/v1/chat/completions", json={}).json() == {"ok": 1}
    assert guard.blocked == []
    with pytest.raises(httpx.ProxyError):
        httpx.get("https://203.0.113.1/", timeout=5)
    assert [(r.method, r.host) for r in guard.take_blocked()] == [("CONNECT", "203.0.113.1")]


def test_a_request_refused_outside_any_test_fails_the_run(run) -> None:
    result = run(
        """
import os
from pytest_baml_telemetry.baml_gen import import_generated

app = import_generated(os.environ["GUARD_TEST_APP"])
try:
    app.b.Hello("at import time")      # collection: no test runs yet, --baml-block-network guards it
except Exception:
    pass

def test_nothing_wrong_here():
    pass
""",
        "--baml-block-network",
    )
    out = no_crash(result)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert "BAML network guard" in out and "outside any test" in out
    assert "CONNECT 203.0.113.1:443 — client 'Unrouted'" in out
