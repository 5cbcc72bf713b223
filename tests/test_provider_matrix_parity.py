"""The fake client's faults against the real runtime, provider by provider (issue 14).

``tests/test_parity_faults.py`` holds the OpenAI table; this extends it to every provider of
``tests/test_provider_matrix.py``: one outcome scripted on ``FakeLLMServer`` and called through
the routed matrix app, the matching fault scripted on ``FakeBamlClient`` (with that provider,
client and model), and both compared: the exception (class and attributes, the message's
run-to-run parts normalised) and the events (names, kinds, keys, tokens, attempts, model,
provider, client name).

Measured with baml-py 0.226.3, where a provider differs from what the faults build:

* every provider but aws-bedrock gives the OpenAI table's classes, codes and message layouts,
  its own error body quoted in the message (a fault reproduces it with ``body=``);
* aws-bedrock (the AWS SDK): an HTTP error's ``message`` is the SDK's Rust ``Debug`` dump
  (``"ServiceError(\\n    ServiceError { ..."`` with the response's headers) and a 400
  ``ValidationException`` reads as status 401 (a throttling or 5xx answer is retried by the
  SDK, still one baml attempt): ``faults.http_error(status, provider="aws-bedrock")`` builds
  that (compared whole, the date and AWS request id normalised). Not built by the faults,
  so compared by class, status, client name and events only: a malformed body (``"ServiceError(
  ... DeserializeError"``, on a stream ``"Failed to parse event: ResponseError(..."``), a cut
  stream (``"Failed to parse event: DispatchFailure(..."``), and a hang, which is no
  ``BamlTimeoutError`` but status 2 (``"DispatchFailure(..."``: ``request_timeout_ms`` is not applied).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from baml_py import errors
from test_provider_matrix import INVALID_USAGE, MATRIX_SRC, PROVIDERS, Provider, error_body

from pytest_baml_telemetry import Dispatcher, Emitter, instrument
from pytest_baml_telemetry.fake import faults
from pytest_baml_telemetry.fake.client import FakeBamlClient

pytestmark = pytest.mark.usefixtures("_quiet_baml")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(MATRIX_SRC, tmp_path_factory.mktemp("provider_matrix_parity")))

ATTRIBUTES = ("client_name", "status_code", "message", "detailed_message", "raw_output", "prompt", "finish_reason")
TOKENS = ("input_tokens", "output_tokens", "total_tokens", "cached_input_tokens")


def _normalise(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r'"[0-9a-f]{8}-0000-0000-0000-[0-9a-f]{12}"', '"<AWS request id>"', text)  # the AWS SDK's dump
    text = re.sub(r'"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT"', '"<date>"', text)
    return re.sub(r"prompt: Chat\(.*?\), request_options: \{.*?\}, start_time: SystemTime \{[^}]*\}, latency: [^,]+,",
                  "prompt: <P>, request_options: <O>, start_time: <T>, latency: <L>,", text)


def error_view(exc: BaseException, *, messages: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {"class": type(exc)}
    if messages:
        view["args"] = tuple(_normalise(a) for a in exc.args)
    for name in ATTRIBUTES if messages else ("client_name", "status_code"):
        if hasattr(exc, name):
            view[name] = _normalise(getattr(exc, name))
    return view


def _recording() -> tuple[Emitter, list[tuple[Any, dict[str, Any], dict[str, Any]]]]:
    dispatcher = Dispatcher()
    seen: list[tuple[Any, dict[str, Any], dict[str, Any]]] = []
    dispatcher.attach_many(
        "parity", [("ash_baml", "call", kind) for kind in ("start", "stop", "exception")],
        lambda name, m, md, _: seen.append((name, dict(m), dict(md))),
    )
    return Emitter(dispatcher=dispatcher), seen


def event_view(seen: list[tuple[Any, dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for name, measurements, metadata in seen:
        view: dict[str, Any] = {
            "event": name[-1],
            "measurements": sorted(measurements),
            "metadata": sorted(k for k in metadata if k not in ("response_model", "request_id_kind")),
        }
        if name[-1] != "start":
            view["tokens"] = {k: measurements.get(k) for k in TOKENS}
            for key in ("num_attempts", "kind", "model", "provider", "client_name"):
                view[key] = metadata.get(key)
            view["reason"] = type(metadata.get("reason")).__name__
        out.append(view)
    return out


@dataclass(frozen=True)
class Mode:
    id: str
    script: Callable[[Any, Provider], Any]  # (server, provider): scripts the real outcome
    fault: Callable[[Provider], faults.Fault]
    streaming: bool = False
    function: str = "Ask"


def _times(provider: Provider) -> int:
    return 3 if provider.sdk else 1  # the AWS SDK retries a throttling or 5xx answer itself


def _http(status: int, streaming: bool = False) -> Mode:
    def script(server: Any, p: Provider) -> None:
        for _ in range(_times(p) if status >= 500 or status == 429 else 1):
            server.fail(status, client=p.client)

    def fault(p: Provider) -> faults.Fault:
        return faults.http_error(status, body=error_body(p, status), provider=p.provider)

    return Mode(f"http_{status}" + ("_stream" if streaming else ""), script, fault, streaming)


MODES = [
    _http(400),
    _http(429),
    _http(500, streaming=True),
    _http(401),
    _http(503),
    _http(529),  # Anthropic's overloaded_error
    Mode("malformed", lambda s, p: s.malformed(client=p.client), lambda p: faults.malformed()),
    Mode("malformed_stream", lambda s, p: s.malformed(client=p.client), lambda p: faults.malformed(), streaming=True),
    Mode("cut_stream", lambda s, p: s.fail_stream(2, client=p.client), lambda p: faults.stream_failure(2), streaming=True),
    Mode("timeout", lambda s, p: s.hang(0.5 if p.sdk else 1.0, client=p.client),
         lambda p: faults.http_error(2) if p.sdk else faults.timeout(after="300ms")),
    Mode("invalid", lambda s, p: s.respond("not json", usage=INVALID_USAGE, client=p.client),
         lambda p: faults.validation_error(raw_output="not json", usage=INVALID_USAGE), function="Person"),
]

MESSAGE_DIFFERS = {"invalid"}
"""Modes whose message (the rendered prompt: each provider renders its roles) is not compared;
for aws-bedrock no message is (see the module docstring)."""


def _run(call: Callable[[], Any], streaming: bool) -> BaseException:
    try:
        if streaming:
            stream = call()
            list(stream)
            stream.get_final_response()
        else:
            call()
    except Exception as exc:  # noqa: BLE001 - the exception is what is compared
        return exc
    raise AssertionError("no exception")


def _arguments(mode: Mode) -> dict[str, str]:
    return {"text": "Ann, 41"} if mode.function == "Person" else {"question": "q"}


def _cells() -> list[Any]:
    cells = []
    for provider in PROVIDERS:
        for mode in MODES:
            if provider.sdk and mode.id in ("http_401", "http_503", "http_529"):
                continue  # the SDK's 5xx retries cost ~1.5 s a cell: http_429 and http_500_stream stand for them
            cells.append(pytest.param(provider, mode, id=f"{provider}-{mode.id}"))
    return cells


@pytest.mark.parametrize(("provider", "mode"), _cells())
def test_the_fault_gives_what_the_provider_gives_through_the_real_runtime(app, server, provider: Provider, mode: Mode) -> None:
    name = f"{mode.function}{provider.client}"
    emitter, seen = _recording()
    b = server.route(instrument(app.b, emitter=emitter))
    mode.script(server, provider)
    real = _run(lambda: getattr(b.stream if mode.streaming else b, name)(**_arguments(mode)), mode.streaming)

    fake_emitter, fake_seen = _recording()
    fake = FakeBamlClient(emitter=fake_emitter, client_name=provider.client, provider=provider.provider, model=provider.model)
    fake.fail(name, mode.fault(provider))
    fake_error = _run(lambda: getattr(fake.stream if mode.streaming else fake, name)(**_arguments(mode)), mode.streaming)

    messages = mode.id not in MESSAGE_DIFFERS and (not provider.sdk or mode.id.startswith("http_"))
    assert error_view(fake_error, messages=messages) == error_view(real, messages=messages)
    assert event_view(fake_seen) == event_view(seen)
    assert [e["event"] for e in event_view(seen)] == ["start", "exception"]


def test_bedrock_http_faults_carry_the_sdks_status_and_message(app, server) -> None:
    """``provider="aws-bedrock"``: a 400 reads as 401 and the message is the SDK's dump."""
    b = server.route(app.b)
    server.fail(400, client="Bedrock")
    real = _run(lambda: b.AskBedrock(question="q"), False)
    plain = faults.http_error(400).build(client_name="Bedrock")
    shaped = faults.http_error(400, provider="aws-bedrock").build(client_name="Bedrock")
    assert type(real) is type(shaped) is errors.BamlClientHttpError
    assert (real.status_code, shaped.status_code, plain.status_code) == (401, 401, 400)
    head = "ServiceError(\n    ServiceError {\n        source: ValidationException(\n            ValidationException {\n"
    assert real.message.startswith(head) and shaped.message.startswith(head)
    assert '"x-amzn-errortype": HeaderValue' in shaped.message and 'b"{\\"message\\": \\"Bad Request\\"}"' in shaped.message
    assert shaped.detailed_message.startswith('LLM client "Bedrock" failed with status code: InvalidAuthentication (401)\nMessage: ServiceError(')
    assert '"retry-after": HeaderValue' in faults.rate_limited(retry_after="2s", provider="aws-bedrock").build().message


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if not p.sdk], ids=str)
def test_a_provider_fault_quotes_that_providers_error_body(provider: Provider) -> None:
    from test_provider_matrix import _wire

    wire = _wire(provider)
    body = wire.error_body("Too Many Requests", *wire.error_type(429))
    assert faults.rate_limited(provider=provider.provider).build().args == faults.rate_limited(body=body).build().args
    assert faults.http_error(500, provider=provider.provider, body={"x": 1}).build().message.endswith('. {"x":1}')
    assert faults.http_error(2, provider=provider.provider).build().status_code == 2  # baml-py's own codes: as without


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda: faults.http_error(429, provider="cohere"), ValueError, r"faults.http_error\(provider='cohere'\): provider='cohere' is not supported"),
        (lambda: faults.rate_limited(provider="vertex-ai"), ValueError, "cannot be faked offline"),
        (lambda: faults.http_error(408, provider="aws-bedrock"), ValueError, r"ModelTimeoutException as BamlTimeoutError: use faults.timeout\(\)"),
        (lambda: faults.http_error(500, provider="aws-bedrock", body="down"), TypeError, r"body='down': expected an AWS error body"),
    ],
)
def test_bad_providers_and_bodies_are_refused_naming_them(make: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        make()
