"""The OpenAI chat-completions wire format (``POST /v1/chat/completions``).

Request bodies as clients send them, completion bodies, usage objects (with the
``prompt_tokens_details``/``completion_tokens_details`` OpenAI always sends), the streamed
``chat.completion.chunk`` events (content chunks, a chunk with ``finish_reason``, a usage
chunk with ``"choices": []`` when there is usage, then ``data: [DONE]``; OpenAI sends the
usage chunk only to a request with ``stream_options.include_usage``: see
:func:`request_include_usage`) and error bodies with OpenAI's ``type``/``code`` names. Standard library (and ``_validate``) only: the fake server's child process imports
it without the package. Functions take checked values except :func:`usage_to_wire`,
which checks a usage description and raises naming the bad value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .._validate import is_count
from .common import DONE, UsageLike, sse_data, sse_event, usage_counts

__all__ = [
    "PATHS",
    "is_chat_path",
    "path_deployment",
    "ERROR_TYPES",
    "request_model",
    "request_messages",
    "request_stream",
    "request_include_usage",
    "request_id",
    "usage_to_wire",
    "completion_body",
    "stream_events",
    "encode_event",
    "error_type",
    "error_body",
    "response_text",
    "response_usage",
    "response_id",
    "response_model",
    "decode_event",
    "event_pieces",
    "STREAM_CONTENT_TYPE",
    "REQUEST_ID_HEADER",
    "OPENING_EVENTS",
    "path_model",
    "finish_reason",
    "new_id",
    "malformed_events",
]

STREAM_CONTENT_TYPE = "text/event-stream"
"""The ``Content-Type`` of a streamed answer (server-sent events)."""
REQUEST_ID_HEADER = "x-request-id"
"""The response header that carries the provider's request id."""
OPENING_EVENTS = 0
"""How many events of :func:`stream_events` come before the first content event (none: the
first chunk carries the role and the first piece)."""

PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})
"""The paths that serve chat completions (``/chat/completions``: a base URL without ``/v1``);
Azure OpenAI's ``/openai/deployments/{deployment}/chat/completions`` is served too (:func:`is_chat_path`)."""

_DEPLOYMENT_PATH = re.compile(r"^/openai/deployments/([^/?#]+)/chat/completions$")


def is_chat_path(path: str) -> bool:
    """Whether ``path`` (without its query) serves chat completions: :data:`PATHS` or an Azure deployment's."""
    return path in PATHS or _DEPLOYMENT_PATH.match(path) is not None


def path_deployment(path: str) -> str | None:
    """The Azure deployment name of ``/openai/deployments/{deployment}/chat/completions`` (else ``None``)."""
    match = _DEPLOYMENT_PATH.match(path)
    return match.group(1) if match else None

ERROR_TYPES: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("request_forbidden", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
"""``status -> (error.type, error.code)`` as OpenAI names them (a 401 is an
``invalid_request_error`` with code ``invalid_api_key``; a 429 has type ``requests`` and
code ``rate_limit_exceeded``); other statuses: ``invalid_request_error`` (4xx) or
``server_error`` (5xx and anything else), code ``None``."""

# --------------------------------------------------------------------------- requests


def request_model(body: Any) -> str | None:
    """The ``model`` a request body asks for (``None`` when absent or not a str)."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def request_messages(body: Any) -> list[Any]:
    """The chat ``messages`` of a request body (empty when absent)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return list(messages) if isinstance(messages, list) else []


def path_model(path: str) -> str | None:
    """The model a request path names: an Azure deployment (:func:`path_deployment`), else ``None``."""
    return path_deployment(path)


def request_stream(body: Any, path: str = "") -> bool:
    """Whether a request body asks for a stream (``"stream": true``); the path does not say."""
    return isinstance(body, dict) and body.get("stream") is True


def request_include_usage(body: Any) -> bool:
    """Whether a request body asks for the usage chunk of a stream (``stream_options.include_usage``)."""
    options = body.get("stream_options") if isinstance(body, dict) else None
    return isinstance(options, dict) and options.get("include_usage") is True


def request_id(prefix: str, index: int) -> str:
    """A deterministic ``x-request-id`` header value (OpenAI's look: ``req_...``)."""
    return f"req_{prefix}{index:08x}"


# --------------------------------------------------------------------------- responses (written)


def new_id(tag: str) -> str:
    """A completion id, ``chatcmpl-{tag}``."""
    return f"chatcmpl-{tag}"


def finish_reason(name: str) -> str:
    """The ``finish_reason`` sent for a scripted one: OpenAI's names (``stop``, ``length``, ...) as they are."""
    return name


def malformed_events(body: str) -> list[str]:
    """A malformed stream: ``body`` (not JSON) as one event's data, then ``[DONE]``."""
    return [body, DONE]


def usage_to_wire(usage: UsageLike | None) -> dict[str, Any] | None:
    """Turn a usage description into an OpenAI ``usage`` object (``None``: send none).

    Accepts any object with ``input_tokens``/``output_tokens`` (and optionally
    ``cached_input_tokens``) attributes, such as ``pytest_baml_telemetry.Usage`` or
    ``baml_py.Usage``; a dict with those keys; or an ``(input, output)`` /
    ``(input, output, cached_input)`` tuple. A usage whose counts are all ``None``
    sends no ``usage`` field at all; otherwise input and output are both required
    (baml-py fails on a usage without ``prompt_tokens``/``completion_tokens``) and
    ``cached_input_tokens`` is optional (``prompt_tokens_details.cached_tokens``, ``0``
    when not given). The details OpenAI always sends come with it:
    ``prompt_tokens_details`` (``cached_tokens``, ``audio_tokens``) and
    ``completion_tokens_details`` (``reasoning_tokens``, ``audio_tokens``,
    ``accepted_prediction_tokens``, ``rejected_prediction_tokens``), zeros but the cached count.
    """
    counts = usage_counts(usage)
    if counts is None or counts == (None, None, None):
        return None
    inp, out, cached = counts
    if inp is None or out is None:
        # baml-py 0.226 rejects the whole response (BamlClientHttpError, status_code 2)
        # when prompt_tokens, completion_tokens or total_tokens is missing
        raise ValueError(
            f"usage={usage!r}: input_tokens and output_tokens must both be given (or the usage be None): "
            "baml-py rejects an OpenAI response whose usage lacks prompt_tokens or completion_tokens"
        )
    return {
        "prompt_tokens": inp,
        "completion_tokens": out,
        "total_tokens": inp + out,
        "prompt_tokens_details": {"cached_tokens": cached or 0, "audio_tokens": 0},
        "completion_tokens_details": dict(_COMPLETION_DETAILS),
    }


_COMPLETION_DETAILS = {
    "reasoning_tokens": 0,
    "audio_tokens": 0,
    "accepted_prediction_tokens": 0,
    "rejected_prediction_tokens": 0,
}


def completion_body(
    content: str,
    *,
    id: str,
    model: str,
    created: int,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body whose message content is ``content`` (``usage``: a wire usage object)."""
    body: dict[str, Any] = {
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def stream_events(
    pieces: list[str],
    *,
    id: str,
    model: str,
    created: int,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    null_usage: bool = False,
) -> list[dict[str, Any] | str]:
    """The events of a stream: one chunk per piece (the first carries the role), the
    ``finish_reason`` chunk, the usage chunk (when ``usage`` is given), then ``DONE``.
    The first ``len(pieces)`` events are the content chunks. ``null_usage=True`` gives
    every chunk before the usage chunk ``"usage": null``, as OpenAI does for a request
    with ``stream_options.include_usage``."""
    base: dict[str, Any] = {"id": id, "object": "chat.completion.chunk", "created": created, "model": model}
    if null_usage:
        base["usage"] = None
    events: list[dict[str, Any] | str] = []
    for i, piece in enumerate(pieces):
        delta: dict[str, Any] = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        events.append({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}]})
    if usage is not None:
        events.append({**base, "choices": [], "usage": usage})  # overrides a null usage
    events.append(DONE)
    return events


encode_event = sse_event
"""One stream event as bytes: ``data: <compact JSON>\\n\\n`` (``DONE`` as ``data: [DONE]``)."""


def error_type(status: int) -> tuple[str, str | None]:
    """``(error.type, error.code)`` for an HTTP error status, as OpenAI names them."""
    return ERROR_TYPES.get(status, ("invalid_request_error" if 400 <= status < 500 else "server_error", None))


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


# --------------------------------------------------------------------------- responses (read)


def response_text(body: Any) -> str:
    """``choices[0].message.content`` (``""`` when it is not a str); ``ValueError`` when absent."""
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            f"the provider's response has no choices[0].message.content (not an OpenAI chat completion?): "
            f"{json.dumps(body)[:300] if isinstance(body, (dict, list)) else repr(body)[:300]}"
        ) from None
    return content if isinstance(content, str) else ""


def _token(value: Any) -> int | None:
    return value if is_count(value) else None


def response_usage(body: Any) -> tuple[int | None, int | None, int | None] | None:
    """``(input, output, cached_input)`` of a body or usage chunk (``None`` when it has no usage).

    ``usage.prompt_tokens`` → input, ``completion_tokens`` → output,
    ``prompt_tokens_details.cached_tokens`` → cached input; a missing count is ``None``.
    """
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return _token(usage.get("prompt_tokens")), _token(usage.get("completion_tokens")), _token(cached)


def response_id(body: Mapping[str, Any]) -> str | None:
    """The provider's response id (``"chatcmpl-..."``), when it is a non-empty str."""
    value = body.get("id")
    return value if isinstance(value, str) and value else None


def response_model(body: Mapping[str, Any]) -> str | None:
    """The model the provider says it served, when it is a str."""
    value = body.get("model")
    return value if isinstance(value, str) else None


def decode_event(line: str) -> dict[str, Any] | str | None:
    """One line of a stream: a chunk (a dict), ``DONE``, or ``None`` (not a data line, not an object).

    A data line that is not JSON raises ``json.JSONDecodeError`` (a ``ValueError``).
    """
    data = sse_data(line)
    if data is None:
        return None
    if data == DONE:
        return DONE
    chunk = json.loads(data)
    return chunk if isinstance(chunk, dict) else None


def event_pieces(chunk: Mapping[str, Any]) -> list[str]:
    """The non-empty content pieces of a chunk's ``choices[].delta.content``."""
    pieces = []
    for choice in chunk.get("choices") or ():
        piece = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
        if isinstance(piece, str) and piece:
            pieces.append(piece)
    return pieces
