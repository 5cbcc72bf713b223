"""The Anthropic Messages wire format (``POST /v1/messages``).

Request bodies as baml-py's ``anthropic`` client sends them (``model``, ``max_tokens``,
``messages`` of content blocks, ``"stream": true``; headers ``x-api-key`` and
``anthropic-version``), ``message`` bodies (``content`` text blocks, ``stop_reason``,
``usage`` with ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens`` and
``cache_creation_input_tokens``), the named server-sent events of a stream
(``message_start`` with the input usage, ``content_block_start``, one
``content_block_delta`` per piece, ``content_block_stop``, ``message_delta`` with
``stop_reason`` and the output usage, ``message_stop``) and error bodies
(``{"type": "error", "error": {"type": "rate_limit_error", "message": ...}}``). A response
carries a ``request-id`` header. Standard library (and ``_validate``) only: the fake
server's child process imports it without the package.

Usage as baml-py 0.226.3 reads it (checked on the real runtime): the call's input tokens are
``input_tokens`` as sent (not summed with the cache counts), its cached input tokens
``cache_read_input_tokens``; in a stream it takes the usage of ``message_delta`` only when
that usage is whole (``input_tokens`` included, as Anthropic sends it now), else it keeps
``message_start``'s. So a scripted usage ``(input, output, cached)`` is sent as
``input_tokens = input``, ``output_tokens = output``, ``cache_read_input_tokens = cached``,
``cache_creation_input_tokens = 0``, whole in ``message_delta``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._validate import is_count
from .common import UsageLike, sse_data, usage_counts

__all__ = [
    "PATHS",
    "STREAM_CONTENT_TYPE",
    "REQUEST_ID_HEADER",
    "OPENING_EVENTS",
    "ERROR_TYPES",
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

PATHS = frozenset({"/v1/messages"})
"""The path baml-py's ``anthropic`` client posts to: its ``base_url`` (no ``/v1``) + ``/v1/messages``."""
STREAM_CONTENT_TYPE = "text/event-stream"
REQUEST_ID_HEADER = "request-id"
OPENING_EVENTS = 2
"""``message_start`` and ``content_block_start`` come before the first ``content_block_delta``."""

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""``status -> error.type`` as Anthropic names them; other statuses: ``invalid_request_error``
(4xx) or ``api_error`` (5xx and anything else)."""

FINISH_REASONS: dict[str, str] = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
"""A scripted finish reason in OpenAI's words -> Anthropic's ``stop_reason`` (others are sent as given:
``end_turn``, ``max_tokens``, ``stop_sequence``, ``tool_use``, ``pause_turn``, ``refusal``)."""

# --------------------------------------------------------------------------- requests


def is_chat_path(path: str) -> bool:
    """Whether ``path`` (without its query) is the Messages endpoint."""
    return path in PATHS


def path_model(path: str) -> str | None:
    """The model a path names: never (the body does)."""
    return None


def request_model(body: Any) -> str | None:
    """The ``model`` a request body asks for (``None`` when absent or not a str)."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def request_messages(body: Any) -> list[Any]:
    """The ``messages`` of a request body (empty when absent); the ``system`` prompt is apart."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return list(messages) if isinstance(messages, list) else []


def request_stream(body: Any, path: str = "") -> bool:
    """Whether a request body asks for a stream (``"stream": true``)."""
    return isinstance(body, dict) and body.get("stream") is True


def request_include_usage(body: Any) -> bool:
    """Anthropic always streams usage (in ``message_start`` and ``message_delta``)."""
    return True


def request_id(prefix: str, index: int) -> str:
    """A deterministic ``request-id`` header value (Anthropic's look: ``req_...``)."""
    return f"req_{prefix}{index:08x}"


def new_id(tag: str) -> str:
    """A message id, ``msg_{tag}``."""
    return f"msg_{tag}"


def finish_reason(name: str) -> str:
    """The ``stop_reason`` sent for a scripted finish reason (see :data:`FINISH_REASONS`)."""
    return FINISH_REASONS.get(name, name)


# --------------------------------------------------------------------------- responses (written)


def usage_to_wire(usage: UsageLike | None) -> dict[str, Any] | None:
    """An Anthropic ``usage`` object for a usage description (``None``: no usage, sent as zeros
    where the API always has one): ``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``
    (the cached count, 0 when not given) and ``cache_creation_input_tokens`` (0)."""
    counts = usage_counts(usage)
    if counts is None or counts == (None, None, None):
        return None
    inp, out, cached = counts
    cached = cached or 0
    return {
        "input_tokens": inp or 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": out or 0,
    }


def _message(id: str, model: str, content: list[Any], stop_reason: str | None, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": usage,
    }


_NO_USAGE = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}


def completion_body(
    content: str,
    *,
    id: str,
    model: str,
    created: int = 0,
    finish_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``message`` body with one text block ``content`` (``usage``: a wire usage object;
    ``None`` sends zeros, as the API always has a usage)."""
    return _message(id, model, [{"type": "text", "text": content}], finish_reason, dict(usage or _NO_USAGE))


def stream_events(
    pieces: list[str],
    *,
    id: str,
    model: str,
    created: int = 0,
    finish_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
    null_usage: bool = False,
) -> list[dict[str, Any]]:
    """The events of a stream: ``message_start`` (the input usage, ``output_tokens`` at most 1),
    ``content_block_start``, one ``content_block_delta`` per piece, ``content_block_stop``,
    ``message_delta`` (``stop_reason``, the whole usage), ``message_stop``. The content
    events are ``events[OPENING_EVENTS:OPENING_EVENTS + len(pieces)]``."""
    usage = dict(usage or _NO_USAGE)
    start_usage = {**usage, "output_tokens": min(usage.get("output_tokens", 0), 1)}
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": _message(id, model, [], None, start_usage)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ]
    for piece in pieces:
        events.append({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}})
    events.append({"type": "content_block_stop", "index": 0})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": finish_reason, "stop_sequence": None},
            "usage": usage,
        }
    )
    events.append({"type": "message_stop"})
    return events


def encode_event(event: Any) -> bytes:
    """One named server-sent event: ``event: <type>\\ndata: <compact JSON>\\n\\n``; an
    ``(name, raw_text)`` pair sends ``raw_text`` as the data as it is."""
    if isinstance(event, tuple):
        name, data = event
    else:
        name, data = event.get("type", "message"), json.dumps(event, separators=(",", ":"))
    return f"event: {name}\ndata: {data}\n\n".encode()


def malformed_events(body: str) -> list[Any]:
    """A malformed stream: a ``message_start`` event whose data is ``body`` (not JSON)."""
    return [("message_start", body)]


def error_type(status: int) -> tuple[str, str | None]:
    """``(error.type, None)`` for an HTTP error status, as Anthropic names them (no code)."""
    kind = ERROR_TYPES.get(status, "invalid_request_error" if 400 <= status < 500 else "api_error")
    return kind, None


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    """An Anthropic error body: ``{"type": "error", "error": {"type", "message"}}`` (no code)."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


# --------------------------------------------------------------------------- responses (read)


def response_text(body: Any) -> str:
    """The text of a ``message`` body's ``text`` blocks, joined; ``ValueError`` when it has no ``content``."""
    content = body.get("content") if isinstance(body, Mapping) else None
    if not isinstance(content, list):
        raise ValueError(
            "the provider's response has no content blocks (not an Anthropic message?): "
            f"{json.dumps(body)[:300] if isinstance(body, (dict, list)) else repr(body)[:300]}"
        )
    return "".join(b["text"] for b in content if isinstance(b, Mapping) and b.get("type") == "text" and isinstance(b.get("text"), str))


def _token(value: Any) -> int | None:
    return value if is_count(value) else None


def response_usage(body: Any) -> tuple[int | None, int | None, int | None] | None:
    """``(input, output, cached_input)`` of a ``message`` body, a ``message_start`` or a
    ``message_delta`` event (``None`` when it has no usage), as baml-py reads them: input is
    ``input_tokens``, cached input ``cache_read_input_tokens``."""
    if not isinstance(body, Mapping):
        return None
    if body.get("type") == "message_start" and isinstance(body.get("message"), Mapping):
        body = body["message"]
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        return None
    return _token(usage.get("input_tokens")), _token(usage.get("output_tokens")), _token(usage.get("cache_read_input_tokens"))


def response_id(body: Mapping[str, Any]) -> str | None:
    """The message id (``"msg_..."``), when it is a non-empty str."""
    value = body.get("id")
    return value if isinstance(value, str) and value else None


def response_model(body: Mapping[str, Any]) -> str | None:
    """The model the provider says it served, when it is a str."""
    value = body.get("model")
    return value if isinstance(value, str) else None


def decode_event(line: str) -> dict[str, Any] | None:
    """One line of a stream: an event's data (a dict), or ``None`` (an ``event:`` line, not an object).

    A data line that is not JSON raises ``json.JSONDecodeError`` (a ``ValueError``).
    """
    data = sse_data(line)
    if data is None:
        return None
    event = json.loads(data)
    return event if isinstance(event, dict) else None


def event_pieces(event: Mapping[str, Any]) -> list[str]:
    """The text of a ``content_block_delta`` event's ``text_delta`` (empty for other events)."""
    if event.get("type") != "content_block_delta":
        return []
    delta = event.get("delta")
    text = delta.get("text") if isinstance(delta, Mapping) and delta.get("type") == "text_delta" else None
    return [text] if isinstance(text, str) and text else []
