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
* aws-bedrock (the AWS SDK): the class, ``status_code`` and ``client_name`` agree once the
  fault is scripted with the status baml-py reports (a 400 ``ValidationException`` is 401; a
  throttling or 5xx answer is retried by the SDK, still one baml attempt), but every
  ``message`` is the SDK's Rust ``Debug`` dump (``"ServiceError(\\n    ServiceError { ..."``
  with the response's headers, ``"Failed to parse event: ..."`` on a stream), which the
  faults do not build; a hang is no ``BamlTimeoutError`` but status 2 (``DispatchFailure``).
  Those cells compare class, status, client name and events only (:data:`MESSAGE_DIFFERS`).
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
        if p.sdk:
            return faults.http_error(401 if status == 400 else status)  # the status baml-py reports
        return faults.http_error(status, body=error_body(p, status))

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

    messages = not provider.sdk and mode.id not in MESSAGE_DIFFERS
    assert error_view(fake_error, messages=messages) == error_view(real, messages=messages)
    assert event_view(fake_seen) == event_view(seen)
    assert [e["event"] for e in event_view(seen)] == ["start", "exception"]


def test_bedrock_messages_are_the_sdks_and_differ_from_the_faults(app, server) -> None:
    """What the faults do not build for aws-bedrock, written down (class and status agree)."""
    bedrock = next(p for p in PROVIDERS if p.sdk)
    b = server.route(app.b)
    server.fail(400, client=bedrock.client)
    real = _run(lambda: b.AskBedrock("q"), False)
    fault = faults.http_error(401).build(client_name=bedrock.client)
    assert type(real) is type(fault) is errors.BamlClientHttpError
    assert real.status_code == fault.status_code == 401
    assert real.message.startswith("ServiceError(\n    ServiceError {\n        source: ValidationException(")
    assert fault.message.startswith("Request failed with status code: 401 Unauthorized. ")
    assert real.detailed_message.startswith('LLM client "Bedrock" failed with status code: InvalidAuthentication (401)\nMessage: ServiceError(')
