"""respx response builders: each provider's answers as ``httpx.Response`` objects, built by ``wire/``.

One set of builders per wire format, named ``<provider>_<what>``:

* ``<provider>_body(content, ...)`` — the JSON body of a successful answer (a dict);
* ``<provider>_response(content, ...)`` — an ``httpx.Response`` carrying it;
* ``<provider>_error_response(status_code, ...)`` — the provider's error body and headers;
* ``<provider>_stream_events(content, ...)`` / ``<provider>_stream_response(content, ...)`` —
  a streamed answer's events and a streamed ``httpx.Response`` framing them (it can break off).

Providers: ``openai`` (chat completions; also ``azure-openai``, ``openai-generic``, ``ollama``;
``openai_chat_response`` is ``openai_body``), ``openai_responses`` (the Responses API),
``anthropic`` (Messages), ``google`` (Gemini, ``google-ai``) and ``bedrock`` (Converse,
``aws-bedrock``: no stream builders, since baml-py 0.226.3 refuses modular streaming for it).
Common parameters: ``usage`` (a :class:`~.contract.Usage`, an ``(input, output[,
cached_input])`` tuple, a dict with those keys, or ``None``: no usage, which a provider that
always sends one sends as zeros), ``model`` (the model served), ``id`` (the provider's response
id; a fresh one when ``None``; Bedrock's goes in the ``x-amzn-RequestId`` header),
``finish_reason`` in OpenAI's words (``"stop"``, ``"length"``, ...), sent in the provider's own
(Anthropic ``end_turn``/``max_tokens``, Gemini ``STOP``/``MAX_TOKENS``, Responses ``completed``
or ``incomplete``); names of the provider's own pass as they are. Every body, event, error and
framing comes from the provider's ``wire`` module, the one the fake LLM server speaks; this
module adds httpx and argument checks (``TypeError``/``ValueError`` naming the bad value).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import httpx

from ._validate import check_count, check_int, check_str, fail, short_number_repr, short_repr
from .contract import MAX_NATIVE
from .wire import anthropic, bedrock, common, google, openai, openai_responses

__all__ = [
    "EventStream",
    "openai_body",
    "openai_chat_response",
    "openai_response",
    "openai_error_response",
    "openai_stream_events",
    "openai_stream_response",
    "openai_responses_body",
    "openai_responses_response",
    "openai_responses_error_response",
    "openai_responses_stream_events",
    "openai_responses_stream_response",
    "anthropic_body",
    "anthropic_response",
    "anthropic_error_response",
    "anthropic_stream_events",
    "anthropic_stream_response",
    "google_body",
    "google_response",
    "google_error_response",
    "google_stream_events",
    "google_stream_response",
    "bedrock_body",
    "bedrock_response",
    "bedrock_error_response",
]

_CREATED = 1_700_000_000  # a fixed "created" keeps built responses reproducible
_ids = itertools.count(1)


class _Format(NamedTuple):
    """A provider's builders' wire module and default served model."""

    wire: Any
    model: str


_OPENAI = _Format(openai, "gpt-4o-mini")
_RESPONSES = _Format(openai_responses, "gpt-4o-mini")
_ANTHROPIC = _Format(anthropic, "claude-3-5-haiku-latest")
_GOOGLE = _Format(google, "gemini-2.0-flash")
_BEDROCK = _Format(bedrock, "anthropic.claude-3-haiku-20240307-v1:0")


# --------------------------------------------------------------------------- shared steps


def _check_model(model: Any, where: str) -> str:
    if not isinstance(model, str) or not model:
        fail(TypeError, f"{where}: model={short_repr(model)}", "a non-empty str")
    return model


def _id(fmt: _Format, id: Any, where: str) -> str:
    if id is None:
        return str(fmt.wire.new_id(f"respx{next(_ids)}"))
    if not isinstance(id, str) or not id:
        fail(TypeError, f"{where}: id={short_repr(id)}", f"a non-empty str or None (a generated {fmt.wire.new_id('...')!r})")
    return id


def _finish(fmt: _Format, finish_reason: Any, where: str) -> str:
    check_str(finish_reason, f"{where}: finish_reason={short_repr(finish_reason)}")
    return str(fmt.wire.finish_reason(finish_reason))


def _headers(headers: Any, where: str) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        fail(TypeError, f"{where}: headers={short_repr(headers)}", "a mapping of str to str, or None")
    return dict(headers)


def _usage(fmt: _Format, usage: Any, where: str) -> Any:
    """The provider's usage object; a bad usage's error names the builder first."""
    try:
        return fmt.wire.usage_to_wire(usage)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _body(fmt: _Format, where: str, content: Any, usage: Any, model: Any, id: Any, finish_reason: Any) -> dict[str, Any]:
    return fmt.wire.completion_body(
        common.content_text(content, where),
        id=_id(fmt, id, where),
        model=_check_model(model, where),
        created=_CREATED,
        finish_reason=_finish(fmt, finish_reason, where),
        usage=_usage(fmt, usage, where),
    )


def _response(where: str, body: dict[str, Any], status_code: Any, headers: Any) -> httpx.Response:
    all_headers = _headers(headers, where)
    return httpx.Response(common.check_status(status_code, where), json=body, headers=all_headers)


def _error(
    fmt: _Format, where: str, status_code: Any, message: Any, retry_after: Any, error_type: Any, headers: Any
) -> httpx.Response:
    status = common.check_status(status_code, where)
    if status < 400:
        fail(ValueError, f"{where}: status_code={status_code!r} is not an error", "400..599")
    kind, code = fmt.wire.error_type(status)
    if error_type is not None:
        kind = check_str(error_type, f"{where}: error_type={short_repr(error_type)}", optional=True)
    check_str(message, f"{where}: message={short_repr(message)}", empty=True, optional=True)
    all_headers = _headers(headers, where)
    error_headers = getattr(fmt.wire, "error_headers", None)  # a format whose error type travels in a header
    if error_headers is not None:
        all_headers = {**error_headers(kind), **all_headers}
    if retry_after is not None:
        longest = MAX_NATIVE // 1_000_000_000
        check_int(
            retry_after, f"{where}: retry_after={short_number_repr(retry_after)}", minimum=0, maximum=longest,
            expected=f"whole seconds, an int from 0 to {longest}",
        )
        all_headers["Retry-After"] = str(retry_after)
    text = message if message is not None else f"scripted HTTP {status} error"
    return httpx.Response(status, json=fmt.wire.error_body(text, kind, code), headers=all_headers)


def _events(
    fmt: _Format, where: str, content: Any, chunks: Any, usage: Any, model: Any, id: Any, finish_reason: Any
) -> list[Any]:
    text = common.content_text(content, where)
    return fmt.wire.stream_events(
        common.split_content(text, common.check_chunks(chunks, text, where)),
        id=_id(fmt, id, where),
        model=_check_model(model, where),
        created=_CREATED,
        finish_reason=_finish(fmt, finish_reason, where),
        usage=_usage(fmt, usage, where),
    )


class EventStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """An httpx byte stream (sync and async) of encoded events that may break off after some.

    ``break_after=n``: after ``n`` events the body fails with ``httpx.RemoteProtocolError``
    (a connection dropped mid-stream); ``None``: every event, then the end."""

    def __init__(self, events: list[bytes], break_after: int | None = None) -> None:
        self._events = events
        self._break_after = break_after

    def _pieces(self) -> Iterator[bytes]:
        for i, event in enumerate(self._events):
            if self._break_after is not None and i >= self._break_after:
                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            yield event

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces():
            yield piece

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _stream(fmt: _Format, where: str, events: list[Any], break_after: Any, headers: Any) -> httpx.Response:
    check_count(break_after, f"{where}: break_after={short_repr(break_after)}", optional=True)
    stream = EventStream([fmt.wire.encode_event(e) for e in events], break_after)
    all_headers = {"content-type": fmt.wire.STREAM_CONTENT_TYPE, **_headers(headers, where)}
    return httpx.Response(200, headers=all_headers, stream=stream)


# --------------------------------------------------------------------------- OpenAI chat completions


def openai_body(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _OPENAI.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """An OpenAI chat-completions JSON body whose message content is ``content``.

    ``usage=None`` sends no ``usage`` field; ``id`` defaults to a fresh ``"chatcmpl-respx<n>"``;
    a dict/list ``content`` is JSON-encoded. Also for ``azure-openai``, ``openai-generic``, ``ollama``.
    """
    return _body(_OPENAI, "openai_chat_response", content, usage, model, id, finish_reason)


openai_chat_response = openai_body
"""The original name of :func:`openai_body`."""


def openai_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _OPENAI.model,
    id: str | None = None,
    finish_reason: str = "stop",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An ``httpx.Response`` carrying :func:`openai_body` (for respx routes)."""
    body = openai_body(content, usage=usage, model=model, id=id, finish_reason=finish_reason)
    return _response("openai_response", body, status_code, headers)


def openai_error_response(
    status_code: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An OpenAI error (``{"error": {"message", "type", "code"}}``), e.g. ``openai_error_response(429, retry_after=2)``."""
    return _error(_OPENAI, "openai_error_response", status_code, message, retry_after, error_type, headers)


def openai_stream_events(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _OPENAI.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> list[dict[str, Any] | str]:
    """The server-sent events of an OpenAI chat-completions stream, as baml-py asks for them.

    Content chunks (``chunks``: ``None`` one per word, an int: that many pieces, or a list
    of str joining to ``content``), a chunk with ``finish_reason``, the usage chunk
    (``"choices": []``; only when ``usage`` is given), then the string ``"[DONE]"``.
    """
    return _events(_OPENAI, "openai_stream_events", content, chunks, usage, model, id, finish_reason)


def openai_stream_response(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _OPENAI.model,
    id: str | None = None,
    finish_reason: str = "stop",
    break_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A ``text/event-stream`` ``httpx.Response`` with :func:`openai_stream_events`.

    ``break_after=n`` sends only the first ``n`` events, then the body fails with
    ``httpx.RemoteProtocolError`` (a connection dropped mid-stream). The response is
    streamed, so build a fresh one per request (a respx ``side_effect`` function or list).
    """
    where = "openai_stream_response"
    events = _events(_OPENAI, where, content, chunks, usage, model, id, finish_reason)
    return _stream(_OPENAI, where, events, break_after, headers)


# --------------------------------------------------------------------------- OpenAI Responses


def openai_responses_body(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _RESPONSES.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """An OpenAI Responses body (``output`` with one ``message``); ``status`` ``incomplete``
    for ``finish_reason="length"``; ``id`` defaults to a fresh ``"resp_respx<n>"``."""
    return _body(_RESPONSES, "openai_responses_body", content, usage, model, id, finish_reason)


def openai_responses_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _RESPONSES.model,
    id: str | None = None,
    finish_reason: str = "stop",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An ``httpx.Response`` carrying :func:`openai_responses_body`."""
    body = openai_responses_body(content, usage=usage, model=model, id=id, finish_reason=finish_reason)
    return _response("openai_responses_response", body, status_code, headers)


def openai_responses_error_response(
    status_code: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An error of the Responses API (OpenAI's error body)."""
    return _error(_RESPONSES, "openai_responses_error_response", status_code, message, retry_after, error_type, headers)


def openai_responses_stream_events(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _RESPONSES.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> list[dict[str, Any]]:
    """The named events of a Responses stream: ``response.created`` ... one
    ``response.output_text.delta`` per piece ... ``response.completed`` (or ``.incomplete``) with the usage."""
    return _events(_RESPONSES, "openai_responses_stream_events", content, chunks, usage, model, id, finish_reason)


def openai_responses_stream_response(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _RESPONSES.model,
    id: str | None = None,
    finish_reason: str = "stop",
    break_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A ``text/event-stream`` response with :func:`openai_responses_stream_events` (``break_after``: see
    :func:`openai_stream_response`)."""
    where = "openai_responses_stream_response"
    events = _events(_RESPONSES, where, content, chunks, usage, model, id, finish_reason)
    return _stream(_RESPONSES, where, events, break_after, headers)


# --------------------------------------------------------------------------- Anthropic Messages


def anthropic_body(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _ANTHROPIC.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """An Anthropic ``message`` body with one text block; usage with ``cache_read_input_tokens``
    (the cached count) and ``cache_creation_input_tokens`` (0); ``id`` defaults to ``"msg_respx<n>"``."""
    return _body(_ANTHROPIC, "anthropic_body", content, usage, model, id, finish_reason)


def anthropic_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _ANTHROPIC.model,
    id: str | None = None,
    finish_reason: str = "stop",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An ``httpx.Response`` carrying :func:`anthropic_body`."""
    body = anthropic_body(content, usage=usage, model=model, id=id, finish_reason=finish_reason)
    return _response("anthropic_response", body, status_code, headers)


def anthropic_error_response(
    status_code: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An Anthropic error, ``{"type": "error", "error": {"type": "rate_limit_error", ...}}`` for a 429."""
    return _error(_ANTHROPIC, "anthropic_error_response", status_code, message, retry_after, error_type, headers)


def anthropic_stream_events(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _ANTHROPIC.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> list[dict[str, Any]]:
    """The events of an Anthropic stream: ``message_start``, ``content_block_start``, one
    ``content_block_delta`` per piece, ``content_block_stop``, ``message_delta`` (``stop_reason``, usage), ``message_stop``."""
    return _events(_ANTHROPIC, "anthropic_stream_events", content, chunks, usage, model, id, finish_reason)


def anthropic_stream_response(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _ANTHROPIC.model,
    id: str | None = None,
    finish_reason: str = "stop",
    break_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A ``text/event-stream`` response with :func:`anthropic_stream_events` (``break_after``: see
    :func:`openai_stream_response`)."""
    where = "anthropic_stream_response"
    events = _events(_ANTHROPIC, where, content, chunks, usage, model, id, finish_reason)
    return _stream(_ANTHROPIC, where, events, break_after, headers)


# --------------------------------------------------------------------------- Google AI Gemini


def google_body(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _GOOGLE.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A Gemini ``GenerateContentResponse`` (``usageMetadata`` with ``cachedContentTokenCount``
    when a cached count is given, ``modelVersion`` = ``model``, ``responseId`` = ``id``)."""
    return _body(_GOOGLE, "google_body", content, usage, model, id, finish_reason)


def google_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = _GOOGLE.model,
    id: str | None = None,
    finish_reason: str = "stop",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An ``httpx.Response`` carrying :func:`google_body`."""
    body = google_body(content, usage=usage, model=model, id=id, finish_reason=finish_reason)
    return _response("google_response", body, status_code, headers)


def google_error_response(
    status_code: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A Google error, ``{"error": {"code": 429, "message", "status": "RESOURCE_EXHAUSTED"}}`` for a 429."""
    return _error(_GOOGLE, "google_error_response", status_code, message, retry_after, error_type, headers)


def google_stream_events(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _GOOGLE.model,
    id: str | None = None,
    finish_reason: str = "stop",
) -> list[dict[str, Any]]:
    """The events of a ``streamGenerateContent?alt=sse`` stream: one response per piece, then one
    with ``finishReason`` and ``usageMetadata``."""
    return _events(_GOOGLE, "google_stream_events", content, chunks, usage, model, id, finish_reason)


def google_stream_response(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = _GOOGLE.model,
    id: str | None = None,
    finish_reason: str = "stop",
    break_after: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A ``text/event-stream`` response with :func:`google_stream_events` (``break_after``: see
    :func:`openai_stream_response`)."""
    where = "google_stream_response"
    events = _events(_GOOGLE, where, content, chunks, usage, model, id, finish_reason)
    return _stream(_GOOGLE, where, events, break_after, headers)


# --------------------------------------------------------------------------- AWS Bedrock Converse


def bedrock_body(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """A Bedrock Converse body (``output.message.content``, ``stopReason``, ``usage`` with
    ``cacheReadInputTokens`` when a cached count is given). It names neither model nor id."""
    return _body(_BEDROCK, "bedrock_body", content, usage, _BEDROCK.model, None, finish_reason)


def bedrock_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    id: str | None = None,
    finish_reason: str = "stop",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An ``httpx.Response`` carrying :func:`bedrock_body`, with ``id`` (a fresh one when ``None``)
    as its ``x-amzn-RequestId`` header, where Bedrock names a response."""
    where = "bedrock_response"
    body = _body(_BEDROCK, where, content, usage, _BEDROCK.model, None, finish_reason)
    request_id = bedrock.request_id("respx", next(_ids)) if id is None else _id(_BEDROCK, id, where)
    return _response(where, body, status_code, {bedrock.REQUEST_ID_HEADER: request_id, **_headers(headers, where)})


def bedrock_error_response(
    status_code: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An AWS JSON error: ``{"message": ...}`` with its type (``ThrottlingException`` for a 429)
    in the ``x-amzn-ErrorType`` header."""
    return _error(_BEDROCK, "bedrock_error_response", status_code, message, retry_after, error_type, headers)
