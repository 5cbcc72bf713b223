"""The Google AI Gemini wire format (``POST .../models/{model}:generateContent``).

Request bodies as baml-py's ``google-ai`` client sends them (``contents`` of ``parts``, the
model in the URL, the key in ``x-goog-api-key``; a stream goes to
``:streamGenerateContent?alt=sse``), ``GenerateContentResponse`` bodies (``candidates`` with
``content.parts`` and ``finishReason``, ``usageMetadata`` with ``promptTokenCount``,
``candidatesTokenCount``, ``totalTokenCount`` and ``cachedContentTokenCount``,
``modelVersion``, ``responseId``), the server-sent events of a stream (one response per
piece, the last with ``finishReason`` and ``usageMetadata``) and Google's error bodies
(``{"error": {"code": 429, "message": ..., "status": "RESOURCE_EXHAUSTED"}}``). Standard
library (and ``_validate``) only: the fake server's child process imports it without the
package.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from .._validate import is_count
from .common import UsageLike, sse_data, sse_event, usage_counts

__all__ = [
    "PATHS",
    "STREAM_CONTENT_TYPE",
    "REQUEST_ID_HEADER",
    "OPENING_EVENTS",
    "ERROR_STATUSES",
    "FINISH_REASONS",
    "is_chat_path",
    "path_model",
    "request_model",
    "request_messages",
    "request_stream",
    "request_include_usage",
    "request_id",
    "new_id",
    "finish_reason",
    "usage_to_wire",
    "completion_body",
    "stream_events",
    "encode_event",
    "malformed_events",
    "error_type",
    "error_body",
    "response_text",
    "response_usage",
    "response_id",
    "response_model",
    "decode_event",
    "event_pieces",
]

_PATH = re.compile(r"^(?:/v1beta|/v1|/v1alpha)?/models/([^/:?#]+):(generateContent|streamGenerateContent)$")
PATHS = ("/v1beta/models/{model}:generateContent", "/v1beta/models/{model}:streamGenerateContent")
"""The paths served (``/v1`` and ``/v1alpha`` too, and without a version): baml-py posts to
``{base_url}/models/{model}:generateContent``, its default ``base_url`` ending in ``/v1beta``."""
STREAM_CONTENT_TYPE = "text/event-stream"
REQUEST_ID_HEADER = "x-request-id"
"""Gemini names a response by its body's ``responseId``; the fake also sends this header."""
OPENING_EVENTS = 0

ERROR_STATUSES: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
"""``HTTP status -> error.status`` as Google names them; others: ``FAILED_PRECONDITION`` (4xx) or ``UNKNOWN``."""

FINISH_REASONS: dict[str, str] = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}
"""A scripted finish reason in OpenAI's words -> Gemini's ``finishReason`` (others are sent as given:
``STOP``, ``MAX_TOKENS``, ``SAFETY``, ``RECITATION``, ...)."""

# --------------------------------------------------------------------------- requests


def is_chat_path(path: str) -> bool:
    """Whether ``path`` (without its query) is a model's ``generateContent``/``streamGenerateContent``."""
    return _PATH.match(path) is not None


def path_model(path: str) -> str | None:
    """The model of ``.../models/{model}:generateContent`` (else ``None``)."""
    match = _PATH.match(path)
    return match.group(1) if match else None


def request_model(body: Any) -> str | None:
    """The model a body names: never (the URL does: :func:`path_model`)."""
    return None


def request_messages(body: Any) -> list[Any]:
    """The ``contents`` of a request body (empty when absent); ``systemInstruction`` is apart."""
    contents = body.get("contents") if isinstance(body, dict) else None
    return list(contents) if isinstance(contents, list) else []


def request_stream(body: Any, path: str = "") -> bool:
    """Whether the request streams: its path is ``:streamGenerateContent``."""
    match = _PATH.match(path)
    return match is not None and match.group(2) == "streamGenerateContent"


def request_include_usage(body: Any) -> bool:
    """Gemini always streams usage (``usageMetadata``)."""
    return True


def request_id(prefix: str, index: int) -> str:
    """A deterministic request id for the ``x-request-id`` header."""
    return f"req_{prefix}{index:08x}"


def new_id(tag: str) -> str:
    """A ``responseId``."""
    return f"resp{tag}"


def finish_reason(name: str) -> str:
    """The ``finishReason`` sent for a scripted finish reason (see :data:`FINISH_REASONS`)."""
    return FINISH_REASONS.get(name, name)


# --------------------------------------------------------------------------- responses (written)


def usage_to_wire(usage: UsageLike | None) -> dict[str, Any] | None:
    """A ``usageMetadata`` object for a usage description (``None``: none): ``promptTokenCount``,
    ``candidatesTokenCount``, ``totalTokenCount``, ``promptTokensDetails`` and, when a cached
    count is given, ``cachedContentTokenCount`` (Gemini sends it only for a cached prompt)."""
    counts = usage_counts(usage)
    if counts is None or counts == (None, None, None):
        return None
    inp, out, cached = counts
    meta: dict[str, Any] = {
        "promptTokenCount": inp or 0,
        "candidatesTokenCount": out or 0,
        "totalTokenCount": (inp or 0) + (out or 0),
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": inp or 0}],
    }
    if cached is not None:
        meta["cachedContentTokenCount"] = cached
    return meta


def _response(parts_text: str, id: str, model: str, finish: str | None, usage: dict[str, Any] | None) -> dict[str, Any]:
    # baml-py 0.226.3 refuses a response (a stream event too) without ``usageMetadata``; an
    # empty one reads as unknown usage, so a response scripted without usage sends ``{}``
    candidate: dict[str, Any] = {"content": {"parts": [{"text": parts_text}], "role": "model"}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {"candidates": [candidate], "usageMetadata": usage if usage is not None else {}}
    body["modelVersion"] = model
    body["responseId"] = id
    return body


def completion_body(
    content: str,
    *,
    id: str,
    model: str,
    created: int = 0,
    finish_reason: str = "STOP",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``GenerateContentResponse`` with one candidate whose text is ``content``."""
    return _response(content, id, model, finish_reason, usage)


def stream_events(
    pieces: list[str],
    *,
    id: str,
    model: str,
    created: int = 0,
    finish_reason: str = "STOP",
    usage: dict[str, Any] | None = None,
    null_usage: bool = False,
) -> list[dict[str, Any]]:
    """The events of a stream: one response per piece (``usageMetadata`` empty), then one with
    an empty text part, ``finishReason`` and the usage."""
    events = [_response(piece, id, model, None, None) for piece in pieces]
    events.append(_response("", id, model, finish_reason, usage))
    return events


encode_event = sse_event
"""One stream event as bytes: ``data: <compact JSON>\\n\\n``."""


def malformed_events(body: str) -> list[str]:
    """A malformed stream: one event whose data is ``body`` (not JSON)."""
    return [body]


def error_type(status: int) -> tuple[str, str | None]:
    """``(error.status, str(status))`` for an HTTP error status, as Google names them."""
    name = ERROR_STATUSES.get(status, "FAILED_PRECONDITION" if 400 <= status < 500 else "UNKNOWN")
    return name, str(status)


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    """A Google error body: ``{"error": {"code": <HTTP status>, "message", "status"}}`` (``code``
    a status as a str, else 500)."""
    number = int(code) if isinstance(code, str) and code.isdigit() else 500
    return {"error": {"code": number, "message": message, "status": error_type}}


# --------------------------------------------------------------------------- responses (read)


def response_text(body: Any) -> str:
    """The text parts of the first candidate, joined; ``ValueError`` when there is no candidate."""
    try:
        parts = body["candidates"][0]["content"]["parts"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            "the provider's response has no candidates[0].content.parts (not a Gemini response?): "
            f"{json.dumps(body)[:300] if isinstance(body, (dict, list)) else repr(body)[:300]}"
        ) from None
    return "".join(p["text"] for p in parts if isinstance(p, Mapping) and isinstance(p.get("text"), str))


def _token(value: Any) -> int | None:
    return value if is_count(value) else None


def response_usage(body: Any) -> tuple[int | None, int | None, int | None] | None:
    """``(input, output, cached_input)`` of a response or stream event (``None`` when it has no
    ``usageMetadata``): ``promptTokenCount``, ``candidatesTokenCount``, ``cachedContentTokenCount``."""
    meta = body.get("usageMetadata") if isinstance(body, Mapping) else None
    if not isinstance(meta, Mapping):
        return None
    return _token(meta.get("promptTokenCount")), _token(meta.get("candidatesTokenCount")), _token(meta.get("cachedContentTokenCount"))


def response_id(body: Mapping[str, Any]) -> str | None:
    """The ``responseId``, when it is a non-empty str."""
    value = body.get("responseId")
    return value if isinstance(value, str) and value else None


def response_model(body: Mapping[str, Any]) -> str | None:
    """The ``modelVersion`` the provider says it served, when it is a str."""
    value = body.get("modelVersion")
    return value if isinstance(value, str) else None


def decode_event(line: str) -> dict[str, Any] | None:
    """One line of a stream: a response (a dict), or ``None`` (not a data line, not an object).

    A data line that is not JSON raises ``json.JSONDecodeError`` (a ``ValueError``).
    """
    data = sse_data(line)
    if data is None:
        return None
    event = json.loads(data)
    return event if isinstance(event, dict) else None


def event_pieces(event: Mapping[str, Any]) -> list[str]:
    """The non-empty text parts of a stream event's candidates."""
    pieces = []
    for candidate in event.get("candidates") or ():
        content = candidate.get("content") if isinstance(candidate, Mapping) else None
        for part in (content.get("parts") or ()) if isinstance(content, Mapping) else ():
            text = part.get("text") if isinstance(part, Mapping) else None
            if isinstance(text, str) and text:
                pieces.append(text)
    return pieces
