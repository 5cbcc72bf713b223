"""Recording ``aws-bedrock`` clients through the proxy with re-signing (issue 15), offline.

The upstream is a tiny stdlib HTTP server that plays AWS: it recomputes each request's SigV4
signature with botocore's reference signer for its OWN host (the credentials, region and
service ``bedrock`` it expects) and answers 403 ``InvalidSignatureException`` when the
``Authorization`` differs, else a Converse answer. The SDK
inside baml-py signs for the FakeLLMServer's host, so these recordings pass only because the
proxy re-signs each request for the upstream (a control test shows the unsigned forward refused).
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import pytest
from baml_py.errors import BamlClientHttpError

from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.wire import bedrock

botocore_auth = pytest.importorskip("botocore.auth")
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

pytestmark = pytest.mark.usefixtures("_quiet_baml")

AKID, SECRET = "AKIASIGV4LIVEDONOTWRITE", "sigv4-secret-DO-NOT-WRITE-0123456789abcdef"
TOKEN = "sigv4-session-token-DO-NOT-WRITE-FQoGZXIvYXdzEXAMPLE"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
BAML = """
client<llm> Declared {
  provider aws-bedrock
  options {
    model "MODEL_ID"
    region "us-west-2"
    endpoint_url env.SIGV4_URL
    access_key_id env.SIGV4_KEY_ID
    secret_access_key env.SIGV4_SECRET
    session_token env.SIGV4_TOKEN
  }
}

client<llm> FromEnv {
  provider aws-bedrock
  options {
    model "MODEL_ID"
    endpoint_url env.SIGV4_URL
  }
}

function AskDeclared(question: string) -> string {
  client Declared
  prompt #"Answer: {{ question }}"#
}

function AskFromEnv(question: string) -> string {
  client FromEnv
  prompt #"Answer: {{ question }}"#
}

generator target {
  output_type "python/pydantic"
  output_dir "../"
  version "0.226.3"
  default_client_mode sync
}
""".replace("MODEL_ID", MODEL)
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/[^/]+/[^/]+/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    src = tmp_path_factory.mktemp("sigv4_src")
    (src / "main.baml").write_text(BAML, encoding="utf-8")
    return import_generated(generate_client(src, tmp_path_factory.mktemp("sigv4_app")))


class AwsLike:
    """A local Bedrock that checks SigV4 for its own host: ``expect`` = (credentials, region)."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self.credentials, self.region = credentials, region
        self.seen: list[tuple[int, str]] = []  # (status, path) per request
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                ok = owner.verify(self.command, self.path, dict(self.headers.items()), body)
                with owner.lock:
                    owner.seen.append((200 if ok else 403, self.path))
                if not ok:
                    data = json.dumps({"message": "The request signature we calculated does not match the signature you provided."}).encode()
                    self.send_response(403)
                    self.send_header("x-amzn-ErrorType", "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                usage = {"inputTokens": 7, "outputTokens": 2, "totalTokens": 9}
                self.send_response(200)
                self.send_header("x-amzn-RequestId", "req-sigv4-1")
                data = json.dumps(bedrock.completion_body("signed answer", usage=usage)).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def verify(self, method: str, path: str, headers: dict[str, str], body: bytes) -> bool:
        """botocore's signature of this request for this server's host equals the one received."""
        lowered = {k.lower(): v for k, v in headers.items()}
        match = _AUTH.match(lowered.get("authorization", ""))
        if match is None or "x-amz-date" not in lowered:
            return False
        signed = [n for n in match.group(1).split(";") if n not in ("host", "x-amz-date", "x-amz-security-token")]
        request = AWSRequest(method=method, url=self.url + path, data=body, headers={n: lowered.get(n, "") for n in signed})
        when = datetime.datetime.strptime(lowered["x-amz-date"], "%Y%m%dT%H%M%SZ")
        if abs((datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) - when).total_seconds()) > 300:
            return False
        with self.lock, mock.patch.object(botocore_auth, "get_current_datetime", return_value=when):
            botocore_auth.SigV4Auth(self.credentials, "bedrock", self.region).add_auth(request)
        if lowered.get("x-amz-security-token") != self.credentials.token:
            return False
        return request.headers["Authorization"] == lowered["authorization"]

    def __enter__(self) -> AwsLike:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def declared(monkeypatch: pytest.MonkeyPatch):
    """The ``Declared`` client's credentials in its options (``env.SIGV4_*``), region us-west-2."""
    with AwsLike(Credentials(AKID, SECRET, TOKEN), "us-west-2") as upstream:
        monkeypatch.setenv("SIGV4_URL", upstream.url)
        monkeypatch.setenv("SIGV4_KEY_ID", AKID)
        monkeypatch.setenv("SIGV4_SECRET", SECRET)
        monkeypatch.setenv("SIGV4_TOKEN", TOKEN)
        yield upstream


def test_a_recorded_bedrock_call_is_re_signed_for_the_upstream_and_replays(app, declared, tmp_path) -> None:
    path = tmp_path / "bedrock.yaml"
    with FakeLLMServer() as server:
        server.use_cassette(path, record_mode="once")
        b = server.route(app.b)
        assert b.AskDeclared("hi") == "signed answer"
        result = server.eject_cassette()
    assert declared.seen == [(200, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")]
    assert result.recorded == 1 and result.unmatched == []
    text = path.read_text(encoding="utf-8")
    for secret in (AKID, SECRET, TOKEN):
        assert secret not in text
    lowered = text.lower()
    for header in ("authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "signature="):
        assert header not in lowered, header
    declared.__exit__()  # the upstream is gone: replay from the cassette only
    with FakeLLMServer() as server:
        server.use_cassette(path, record_mode="none")
        assert server.route(app.b).AskDeclared("hi") == "signed answer"
        assert server.eject_cassette().played == 1


def test_credentials_and_region_come_from_the_standard_aws_variables(app, monkeypatch, tmp_path) -> None:
    with AwsLike(Credentials("AKIAFROMENVIRONMENT1", SECRET + "-env", TOKEN + "-env"), "eu-west-3") as upstream:
        monkeypatch.setenv("SIGV4_URL", upstream.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET + "-env")
        monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN + "-env")
        monkeypatch.setenv("AWS_REGION", "eu-west-3")
        path = tmp_path / "env.yaml"
        with FakeLLMServer() as server:
            server.use_cassette(path, record_mode="new_episodes")
            assert server.route(app.b).AskFromEnv("hi") == "signed answer"
            server.eject_cassette()
        assert [status for status, _ in upstream.seen] == [200]
    text = path.read_text(encoding="utf-8")
    for secret in ("AKIAFROMENVIRONMENT1", SECRET + "-env", TOKEN + "-env"):
        assert secret not in text


def test_without_re_signing_the_upstream_refuses_the_forwarded_request(app, declared, tmp_path) -> None:
    """Control: routed before the cassette records, the server gets no credentials and forwards
    the SDK's signature (made for the fake's host) unchanged: the AWS-like upstream says 403."""
    with FakeLLMServer() as server:
        b = server.route(app.b)  # not recording yet: no credentials handed over
        server.use_cassette(tmp_path / "unsigned.yaml", record_mode="all")
        with pytest.raises(BamlClientHttpError) as info:
            b.AskDeclared("hi")
        server.eject_cassette()
    assert info.value.status_code == 403
    assert declared.seen == [(403, "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse")]


def _payloads(call: mock.MagicMock) -> str:
    return json.dumps([c.kwargs for c in call.call_args_list])


def test_credentials_reach_the_child_only_while_a_cassette_records(app, declared, tmp_path) -> None:
    with FakeLLMServer() as server:
        server.use_cassette(tmp_path / "none.yaml", record_mode="none")
        with mock.patch.object(server, "_call", wraps=server._call) as call:
            server.route(app.b)
        assert SECRET not in _payloads(call) and AKID not in _payloads(call)
        server.eject_cassette()
        server.use_cassette(tmp_path / "rec.yaml", record_mode="all")
        with mock.patch.object(server, "_call", wraps=server._call) as call:
            server.route(app.b)
        sent = _payloads(call)
        assert SECRET in sent and AKID in sent and TOKEN in sent and '"region": "us-west-2"' in sent
        server.eject_cassette()
        assert all("aws" not in entry for entry in server._upstreams.values())  # kept for one cassette only
        with mock.patch.object(server, "_call", wraps=server._call) as call:
            server.use_cassette(tmp_path / "none.yaml", record_mode="none")
        assert SECRET not in _payloads(call)
        server.eject_cassette()
