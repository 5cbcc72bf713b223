"""Every provider FakeLLMServer speaks x every outcome, through the REAL runtime (issue 14).

The app of ``tests/baml_src_matrix`` declares one client per provider (real hosts, keys from
the environment, ``http { request_timeout_ms 300 }``), a retry policy, a fallback across
providers and a round-robin; ``server.route(instrument(b, emitter=...))`` routes it in one
call. Each cell scripts one outcome (a success, a stream, an HTTP error, a malformed body, a
cut stream, a hang, an answer that does not parse) and checks what baml-py 0.226.3 gives
back (the result, or the exact ``baml_py.errors`` class with its ``status_code``,
``client_name`` and ``message``) and the events ``instrument`` emits: start, then stop or
exception, with ``model``, ``provider``, ``client_name``, ``num_attempts`` and ``request_id``,
and tokens as the billing rule says (``collector_log.bill_failure``: an HTTP status >= 400
is 0/0, a timeout or a cut stream unknown, an answer that did not parse its usage).

What differs by provider was measured, not assumed (see :data:`PROVIDERS`): openai-generic,
azure-openai and ollama streams carry no usage (baml-py asks for it only with provider
openai); aws-bedrock goes through the AWS SDK, which retries a throttling/5xx answer and a
cut body itself (3 requests, one baml attempt, so such failures are scripted three times),
reports a 400 ``ValidationException`` as status 401, words its errors as Rust ``Debug``
dumps and ignores ``request_timeout_ms`` (a hang runs its full length, then the dropped
connection is status 2, or 500 on a stream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from baml_py import errors

from pytest_baml_telemetry import Dispatcher, Emitter, instrument
from pytest_baml_telemetry.capture import EventCapture
from pytest_baml_telemetry.fake import fault_messages as texts

pytestmark = pytest.mark.usefixtures("_quiet_baml")

MATRIX_SRC = Path(__file__).parent / "baml_src_matrix"
CONTENT = "hello there friend"
USAGE = (30, 4, 2)
INVALID_USAGE = (12, 3, 1)
NOT_BILLED = (0, 0, 0)
UNKNOWN = (None, None, None)


@dataclass(frozen=True)
class Provider:
    """One leaf client of the matrix app and what baml-py 0.226.3 does with it (measured)."""

    client: str
    provider: str
    wire: str  # RecordedRequest.provider: the wire format that served it
    model: str  # the model the stop event names (Azure: the deployment)
    stream_usage: bool = True  # a stream's usage reaches the Collector
    body_id: str | None = None  # request_id prefix read from a served body ("breq_": baml's own id)
    stream_id: str | None = None  # the same for a stream (from its first event)
    sdk: bool = False  # aws-bedrock: the AWS SDK's errors, retries and timeouts

    def __str__(self) -> str:
        return self.provider


PROVIDERS = [
    Provider("OpenAI", "openai", "openai", "gpt-4o-mini", body_id="chatcmpl-", stream_id="chatcmpl-"),
    Provider("Generic", "openai-generic", "openai", "llama-3.1-8b", stream_usage=False, body_id="chatcmpl-",
             stream_id="chatcmpl-"),
    Provider("Azure", "azure-openai", "openai", "gpt4o-mini-deployment", stream_usage=False, body_id="chatcmpl-",
             stream_id="chatcmpl-"),
    Provider("Ollama", "ollama", "openai", "llama3", stream_usage=False, body_id="chatcmpl-", stream_id="chatcmpl-"),
    Provider("Responses", "openai-responses", "openai-responses", "gpt-4.1-mini", body_id="resp_", stream_id="resp_"),
    Provider("Claude", "anthropic", "anthropic", "claude-3-5-haiku-20241022", body_id="msg_", stream_id="msg_"),
    Provider("Gemini", "google-ai", "google-ai", "gemini-1.5-flash", body_id="respfake", stream_id="respfake"),
    Provider("Bedrock", "aws-bedrock", "aws-bedrock", "anthropic.claude-3-haiku-20240307-v1:0", sdk=True),
]
"""``body_id``/``stream_id``: the prefix of the provider's id instrument reports (Anthropic's and the
Responses API's stream ids are nested in their first event, Gemini's is ``responseId``: the fake
server's are ``respfake...``); None: baml's own ``breq_`` id. Bedrock's is always the
``x-amzn-RequestId`` header (a UUID), also on errors: see :data:`AWS_REQUEST_ID`. Measured."""

AWS_REQUEST_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(MATRIX_SRC, tmp_path_factory.mktemp("provider_matrix")))


@pytest.fixture
def routed(app, server):
    """(the routed, instrumented sync client, its capture)."""
    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    yield server.route(instrument(app.b, emitter=Emitter(dispatcher=dispatcher))), capture
    capture.detach()


def _wire(provider: Provider) -> Any:
    import importlib

    name = {"openai": "openai", "openai-responses": "openai_responses", "anthropic": "anthropic",
            "google-ai": "google", "aws-bedrock": "bedrock"}[provider.wire]
    return importlib.import_module(f"pytest_baml_telemetry.wire.{name}")


def error_body(provider: Provider, status: int) -> Any:
    """The error body the server sends for ``fail(status)`` in this provider's format."""
    from http.server import BaseHTTPRequestHandler

    wire = _wire(provider)
    phrase = BaseHTTPRequestHandler.responses.get(status, ("",))[0]  # the server's (none for 529)
    return wire.error_body(f"FakeLLMServer scripted failure: HTTP {status} {phrase}".rstrip(), *wire.error_type(status))


# ------------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Outcome:
    """What a cell scripts, how it calls, and what it expects back."""

    id: str
    streaming: bool = False
    function: str = "Ask"
    times: int = 1  # scripted this many times (the AWS SDK's own retries)


def _script(server: Any, provider: Provider, outcome: Outcome) -> None:
    client = provider.client
    for _ in range(outcome.times):
        kind = outcome.id.split("_")[0]
        if kind in ("success", "stream"):
            server.respond(CONTENT, usage=USAGE, chunks=3, client=client)
        elif kind == "http":
            server.fail(int(outcome.id.split("_")[1]), client=client)
        elif kind == "malformed":
            server.malformed(client=client)
        elif kind == "cut":
            server.fail_stream(2, client=client)
        elif kind == "hang":
            server.hang(0.5 if provider.sdk else 1.0, client=client)  # bedrock: no timeout, the hang ends it
        elif kind == "invalid":
            server.respond("not json", usage=INVALID_USAGE, client=client)
        else:  # pragma: no cover
            raise AssertionError(outcome)


def _call(b: Any, provider: Provider, outcome: Outcome) -> tuple[Any, list[Any]]:
    name = f"{outcome.function}{provider.client}"
    argument = "q" if outcome.function == "Ask" else "Ann, 41"
    if not outcome.streaming:
        return getattr(b, name)(argument), []
    stream = getattr(b.stream, name)(argument)
    partials = list(stream)
    return stream.get_final_response(), partials


@dataclass(frozen=True)
class Expected:
    error: type[BaseException] | None
    status: int | None = None
    message: str | None = None  # exactly
    starts: str = ""  # or: the message starts with this and contains each of `contains`
    contains: tuple[str, ...] = ()
    tokens: tuple[int | None, int | None, int | None] = UNKNOWN
    requests: int = 1
    request_id: str = "breq_"


def expected(provider: Provider, outcome: Outcome) -> Expected:
    """What baml-py 0.226.3 raised (or returned) for this cell, and the billing rule's tokens."""
    kind = outcome.id
    stream = outcome.streaming
    if kind in ("success", "stream"):
        tokens = USAGE if (provider.stream_usage or not stream) else UNKNOWN
        prefix = (provider.stream_id if stream else provider.body_id) or "breq_"
        return Expected(None, tokens=tokens, request_id=prefix)
    if kind == "invalid":
        return Expected(errors.BamlValidationError, starts="Failed to parse LLM response: ",
                        tokens=INVALID_USAGE, request_id=provider.body_id or "breq_")
    if kind.startswith("http_"):
        status = int(kind.split("_")[1])
        if provider.sdk:
            from pytest_baml_telemetry.wire import bedrock

            return Expected(errors.BamlClientHttpError, 401 if status == 400 else status,
                            starts="ServiceError(", contains=(bedrock.error_type(status)[0],),
                            tokens=NOT_BILLED, requests=outcome.times)
        body = texts.body_text(error_body(provider, status), streaming=stream)
        return Expected(errors.BamlClientHttpError, status, texts.http_message(status, body, streaming=stream),
                        tokens=NOT_BILLED)
    if kind.startswith("malformed"):
        if provider.sdk:
            return (Expected(errors.BamlClientHttpError, 2, starts="Failed to parse event: ResponseError(",
                             contains=("failed to unmarshall MessageStart",)) if stream else
                    Expected(errors.BamlClientHttpError, 200, starts="ServiceError(", contains=("DeserializeError",)))
        if stream:
            return Expected(errors.BamlClientHttpError, 2, "Failed to parse SSE data as JSON: expected ident at line 1 column 2")
        return Expected(errors.BamlClientHttpError, 200, starts=f'LLM call failed: LLMErrorResponse {{ client: "{provider.client}", ',
                        contains=('message: "Failed to parse JSON: expected ident at line 1 column 2"',
                                  'raw_response: Some("this is not JSON {")'))
    if kind.startswith("cut"):
        if provider.sdk:  # a cut body outside a stream is retried by the SDK (scripted 3 times)
            return (Expected(errors.BamlClientHttpError, 2, starts="Failed to parse event: DispatchFailure(") if stream else
                    Expected(errors.BamlClientHttpError, 200, starts="ResponseError(", contains=("IncompleteBody",),
                             requests=outcome.times))
        # an OpenAI chat stream's first chunk carries its id; the others' do not (or nest it)
        cut_id = provider.stream_id if stream else None
        return Expected(errors.BamlClientHttpError, 2, texts.STREAM_CUT if stream else texts.READ_BODY_CUT,
                        request_id=cut_id or "breq_")
    if kind.startswith("hang"):
        if provider.sdk:  # request_timeout_ms is not applied: the hang ends, the connection drops
            return Expected(errors.BamlClientHttpError, 500 if stream else 2, starts="DispatchFailure(",
                            contains=("IncompleteMessage",))
        return Expected(errors.BamlTimeoutError, message=texts.REQUEST_TIMED_OUT)
    raise AssertionError(kind)  # pragma: no cover


OUTCOMES = [
    Outcome("success"),
    Outcome("stream", streaming=True),
    Outcome("http_400"),
    Outcome("http_429"),
    Outcome("http_500"),
    Outcome("http_500_stream", streaming=True),
    Outcome("malformed"),
    Outcome("malformed_stream", streaming=True),
    Outcome("cut_stream", streaming=True),
    Outcome("cut_call"),
    Outcome("hang"),
    Outcome("hang_stream", streaming=True),
    Outcome("invalid", function="Person"),
]

def _cells() -> list[Any]:
    cells = []
    for provider in PROVIDERS:
        for outcome in OUTCOMES:
            marks: list[Any] = []
            if provider.sdk:
                if outcome.id == "http_500":
                    continue  # as http_429 (each costs the SDK's ~1.5 s of backoff): keep one
                if outcome.id in ("http_429", "http_500_stream", "cut_call"):
                    outcome = Outcome(outcome.id, outcome.streaming, outcome.function, times=3)
            cells.append(pytest.param(provider, outcome, id=f"{provider.provider}-{outcome.id}", marks=marks))
    return cells


def _counts(measurements: Any) -> tuple[Any, Any, Any]:
    return tuple(measurements.get(k) for k in ("input_tokens", "output_tokens", "cached_input_tokens"))  # type: ignore[return-value]


@pytest.mark.parametrize(("provider", "outcome"), _cells())
def test_each_provider_and_outcome_through_the_real_runtime(routed, server, provider: Provider, outcome: Outcome) -> None:
    b, capture = routed
    _script(server, provider, outcome)
    want = expected(provider, outcome)
    raised: BaseException | None = None
    try:
        result, partials = _call(b, provider, outcome)
    except Exception as exc:  # noqa: BLE001 - the exception is what is checked
        raised = exc
    # what baml-py gave back
    if want.error is None:
        assert raised is None, f"{type(raised).__name__}: {raised}"
        assert result == CONTENT
        if outcome.streaming:
            assert partials and all(CONTENT.startswith(p) for p in partials), partials
    else:
        assert type(raised) is want.error, f"{type(raised).__name__}: {raised}"
        if want.status is not None:
            assert raised.status_code == want.status  # type: ignore[union-attr]
        if want.error is not errors.BamlValidationError:
            assert raised.client_name == provider.client  # type: ignore[union-attr]
        message = raised.message  # type: ignore[union-attr]
        if want.message is not None:
            assert message == want.message
        assert message.startswith(want.starts) and all(part in message for part in want.contains), message[:600]
    # what reached the server
    requests = server.requests
    assert [(r.client, r.provider, r.stream, r.model) for r in requests] == [
        (provider.client, provider.wire, outcome.streaming, provider.model)
    ] * want.requests
    # the events
    kinds = [e.name[-1] for e in capture.events]
    assert kinds == ["start", "stop" if raised is None else "exception"]
    start, end = capture.events
    assert start.metadata["function_name"] == f"{outcome.function}{provider.client}"
    metadata = end.metadata
    assert (metadata["model"], metadata["provider"], metadata["client_name"], metadata["num_attempts"]) == (
        provider.model, provider.provider, provider.client, 1
    )
    if provider.sdk and not outcome.id.startswith("hang"):  # a hang gets no answer: baml's breq_ id
        assert isinstance(metadata["request_id"], str) and AWS_REQUEST_ID.fullmatch(metadata["request_id"]), metadata
    else:
        assert isinstance(metadata["request_id"], str) and metadata["request_id"].startswith(want.request_id), metadata["request_id"]
    if raised is not None:
        assert metadata["reason"] is raised and metadata["kind"] == "error"
    assert _counts(end.measurements) == want.tokens


# ------------------------------------------------------------------ composite clients


def test_a_fallback_across_providers_ends_on_the_first_answer(routed, server) -> None:
    b, capture = routed
    server.fail(529, client="Claude").fail(500, client="Gemini").fail(429, client="Responses")
    server.respond(CONTENT, usage=USAGE, client="OpenAI")
    assert b.AskAnyProvider("q") == CONTENT
    assert [(r.client, r.provider) for r in server.requests] == [
        ("Claude", "anthropic"), ("Gemini", "google-ai"), ("Responses", "openai-responses"), ("OpenAI", "openai"),
    ]
    stop = capture.stops[0]
    assert (stop.metadata["client_name"], stop.metadata["provider"], stop.metadata["model"], stop.metadata["num_attempts"]) == (
        "OpenAI", "openai", "gpt-4o-mini", 4
    )
    assert _counts(stop.measurements) == USAGE


def test_a_fallback_whose_every_member_fails_reports_the_last_and_is_not_billed(routed, server) -> None:
    b, capture = routed
    for client, status in (("Claude", 529), ("Gemini", 503), ("Responses", 500), ("OpenAI", 429)):
        server.fail(status, client=client)
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.AskAnyProvider("q")
    assert (info.value.status_code, info.value.client_name) == (429, "OpenAI")
    detail = info.value.detailed_message.split("\n")
    assert detail[0] == "4 failed attempts:"
    assert [line.split(" failed")[0] for line in detail if line.startswith("Attempt ")] == [
        'Attempt 0: LLM client "Claude"', 'Attempt 1: LLM client "Gemini"', 'Attempt 2: LLM client "Responses"',
        'Attempt 3: LLM client "OpenAI"',
    ]
    (event,) = capture.exceptions
    assert (event.metadata["client_name"], event.metadata["provider"], event.metadata["num_attempts"]) == ("OpenAI", "openai", 4)
    assert _counts(event.measurements) == NOT_BILLED


def test_a_fallback_with_a_member_that_timed_out_has_unknown_billing(routed, server) -> None:
    b, capture = routed
    server.hang(1.0, client="Claude").fail(500, client="Gemini").fail(500, client="Responses").fail(500, client="OpenAI")
    with pytest.raises(errors.BamlClientHttpError):
        b.AskAnyProvider("q")
    assert "timed out" in capture.exceptions[0].metadata["reason"].detailed_message
    assert _counts(capture.exceptions[0].measurements) == UNKNOWN


def test_a_round_robin_rotates_across_providers_and_each_event_names_its_member(routed, server) -> None:
    b, capture = routed
    for i in range(6):
        server.respond(f"answer {i}", usage=(10 + i, 1))
    assert [b.AskRotating("q") for _ in range(6)] == [f"answer {i}" for i in range(6)]
    served = [(r.client, r.provider) for r in server.requests]
    assert set(served[:3]) == {("Claude", "anthropic"), ("Gemini", "google-ai"), ("Ollama", "openai")}
    assert served[3:] == served[:3]  # rotates, in a fixed order
    reported = [(e.metadata["client_name"], e.metadata["provider"], e.measurements["input_tokens"]) for e in capture.stops]
    wire = {"Claude": "anthropic", "Gemini": "google-ai", "Ollama": "ollama"}
    assert reported == [(client, wire[client], 10 + i) for i, (client, _) in enumerate(served)]


def test_a_retry_policy_retries_and_counts_its_attempts(routed, server) -> None:
    b, capture = routed
    server.fail(500, client="OpenAIRetrying").respond(CONTENT, usage=USAGE, client="OpenAIRetrying")
    assert b.AskOpenAIRetrying("q") == CONTENT
    stop = capture.stops[0]
    assert (stop.metadata["num_attempts"], stop.metadata["client_name"], stop.metadata["model"]) == (2, "OpenAIRetrying", "gpt-4o")
    assert _counts(stop.measurements) == USAGE
    capture.clear()
    server.reset()
    server.fail(429, client="OpenAIRetrying").fail(503, client="OpenAIRetrying")
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.AskOpenAIRetrying("q")
    assert info.value.status_code == 503 and info.value.detailed_message.startswith("2 failed attempts:")
    (event,) = capture.exceptions
    assert event.metadata["num_attempts"] == 2 and _counts(event.measurements) == NOT_BILLED
    assert len(server.requests) == 2


def test_the_async_client_calls_and_streams_every_provider_too(app, server) -> None:
    import asyncio

    dispatcher = Dispatcher()
    with EventCapture(dispatcher=dispatcher) as capture:
        b = server.route(instrument(app.async_b, emitter=Emitter(dispatcher=dispatcher)))
        for p in PROVIDERS:
            server.respond(f"from {p.client}", usage=USAGE, client=p.client)

        for p in PROVIDERS:
            server.respond(f"streamed from {p.client}", usage=USAGE, chunks=2, client=p.client)

        async def main() -> list[str]:
            answers = [await getattr(b, f"Ask{p.client}")("q") for p in PROVIDERS]
            for p in PROVIDERS:
                stream = getattr(b.stream, f"Ask{p.client}")("q")
                async for _ in stream:
                    pass
                answers.append(await stream.get_final_response())
            return answers

        assert asyncio.run(main()) == [f"from {p.client}" for p in PROVIDERS] + [f"streamed from {p.client}" for p in PROVIDERS]
        assert [(e.metadata["provider"], e.metadata["client_name"], _counts(e.measurements)) for e in capture.stops] == [
            (p.provider, p.client, USAGE) for p in PROVIDERS
        ] + [(p.provider, p.client, USAGE if p.stream_usage else UNKNOWN) for p in PROVIDERS]


def test_the_matrix_covers_every_provider_the_server_speaks() -> None:
    from pytest_baml_telemetry.fake.server_clients import SUPPORTED_PROVIDERS

    assert sorted(p.provider for p in PROVIDERS) == sorted(SUPPORTED_PROVIDERS)


# ------------------------------------------------------------------ finish reasons

FINISH_REASONS: dict[str, tuple[str | None, str | None, str | None, str | None]] = {
    "openai": ("stop", "length", "stop", "length"),
    "openai-generic": ("stop", "length", "stop", "length"),
    "azure-openai": ("stop", "length", "stop", "length"),
    "ollama": ("stop", "length", "stop", "length"),
    "openai-responses": ("completed", "incomplete", None, "max_output_tokens"),
    "anthropic": ("end_turn", "max_tokens", "end_turn", "max_tokens"),
    "google-ai": ("STOP", "MAX_TOKENS", "STOP", "MAX_TOKENS"),
    "aws-bedrock": ("end_turn", "max_tokens", None, None),
}
"""The ``finish_reason`` baml-py 0.226.3 reads for ``respond(finish_reason="stop")`` and
``"length"``, on a call and on a stream (measured): each provider's own name. ``None``: no
finish reason reaches baml-py (a Responses stream that completed; a Bedrock stream, whose
``messageStop`` frame carries ``stopReason`` as AWS sends it), so no allow-list refuses it."""


@pytest.mark.parametrize("streaming", [False, True], ids=["call", "stream"])
@pytest.mark.parametrize("provider", PROVIDERS, ids=str)
def test_each_provider_reports_its_own_finish_reason(app, server, provider: Provider, streaming: bool) -> None:
    dispatcher = Dispatcher()
    registry = server.client_registry_for(app.b)
    options = server.client_options(provider=provider.provider, model=provider.model, client=provider.client,
                                    options={"finish_reason_allow_list": ["nothing is allowed"]})
    registry.add_llm_client(provider.client, provider.provider, options)
    with EventCapture(dispatcher=dispatcher) as capture:
        b = instrument(app.b, emitter=Emitter(dispatcher=dispatcher)).with_options(client_registry=registry)
        for index, scripted in enumerate(("stop", "length")):
            server.respond("cut short", finish_reason=scripted, usage=(10, 5), client=provider.client)
            want = FINISH_REASONS[provider.provider][index + 2 * streaming]
            if want is None:
                assert _call(b, provider, Outcome(scripted, streaming=streaming))[0] == "cut short"
                continue
            with pytest.raises(errors.BamlClientFinishReasonError) as info:
                _call(b, provider, Outcome(scripted, streaming=streaming))
            assert (info.value.finish_reason, info.value.message, info.value.raw_output) == (
                want, texts.FINISH_REASON_NOT_ALLOWED, "cut short"
            )
            event = capture.exceptions[-1]
            assert event.metadata["reason"] is info.value and event.metadata["client_name"] == provider.client
            billed = (10, 5) if provider.stream_usage or not streaming else (None, None)
            assert _counts(event.measurements)[:2] == billed  # answered: its usage stands


def test_a_bedrock_error_with_its_own_body_is_still_a_throttle(routed, server) -> None:
    b, _ = routed
    for _ in range(3):
        server.fail(429, body={"message": "slow down"}, client="Bedrock")
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.AskBedrock("q")
    assert info.value.status_code == 429
    assert "ThrottlingException" in info.value.message
    assert len(server.requests) == 3
