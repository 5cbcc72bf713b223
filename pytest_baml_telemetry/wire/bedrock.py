"""The AWS Bedrock Converse wire format (``POST /model/{modelId}/converse`` and ``/converse-stream``).

Request bodies as baml-py's ``aws-bedrock`` client (the AWS SDK for Rust) sends them
(``messages`` of ``content`` blocks, ``inferenceConfig``; the model id, URL-encoded, in the
path; a SigV4 ``authorization`` header), Converse bodies (``output.message.content`` text
blocks, ``stopReason``, ``usage`` with ``inputTokens``, ``outputTokens``, ``totalTokens``,
``cacheReadInputTokens``, ``cacheWriteInputTokens``, ``metrics.latencyMs``), AWS JSON errors
(the type in the ``x-amzn-ErrorType`` header — :func:`error_headers` — and a ``message``
body) and the ``x-amzn-RequestId`` header.

A stream (``/converse-stream``) is ``application/vnd.amazon.eventstream``: binary frames
(:func:`encode_frame`: a prelude with the total and header lengths and its CRC32, headers
``:event-type``, ``:content-type``, ``:message-type``, the JSON payload, a CRC32 of the whole
frame). Its events: ``messageStart``, one ``contentBlockDelta`` per piece,
``contentBlockStop``, ``messageStop`` (``stopReason``) and ``metadata`` (``usage``,
``metrics``). :func:`decode_frames` reads frames back. Standard library (and ``_validate``)
only: the fake server's child process imports it without the package.
"""

from __future__ import annotations

import json
import re
import struct
import urllib.parse
import zlib
from collections.abc import Mapping
from typing import Any

from .._validate import is_count
from .common import UsageLike, usage_counts

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
    "encode_frame",
    "encode_event",
    "decode_frames",
    "malformed_events",
    "error_type",
    "error_headers",
    "error_body",
    "response_text",
    "response_usage",
    "response_id",
    "response_model",
    "event_pieces",
]

_PATH = re.compile(r"^/model/([^/?#]+)/(converse|converse-stream)$")
PATHS = ("/model/{modelId}/converse", "/model/{modelId}/converse-stream")
STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
REQUEST_ID_HEADER = "x-amzn-RequestId"
OPENING_EVENTS = 1
"""``messageStart`` comes before the first ``contentBlockDelta``."""

ERROR_TYPES: dict[int, str] = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
"""``status -> error type`` as Bedrock Runtime names them; others: ``ValidationException`` (4xx)
or ``InternalServerException``."""

FINISH_REASONS: dict[str, str] = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "content_filtered"}
"""A scripted finish reason in OpenAI's words -> Bedrock's ``stopReason`` (others are sent as given:
``end_turn``, ``max_tokens``, ``stop_sequence``, ``guardrail_intervened``, ...)."""

# --------------------------------------------------------------------------- requests


def is_chat_path(path: str) -> bool:
    """Whether ``path`` (without its query) is a model's ``converse`` or ``converse-stream``."""
    return _PATH.match(path) is not None


def path_model(path: str) -> str | None:
    """The model id of ``/model/{modelId}/converse`` (URL-decoded), else ``None``."""
    match = _PATH.match(path)
    return urllib.parse.unquote(match.group(1)) if match else None


def request_model(body: Any) -> str | None:
    """The model a body names: never (the path does: :func:`path_model`)."""
    return None


def request_messages(body: Any) -> list[Any]:
    """The ``messages`` of a request body (empty when absent); ``system`` is apart."""
    messages = body.get("messages") if isinstance(body, dict) else None
    return list(messages) if isinstance(messages, list) else []


def request_stream(body: Any, path: str = "") -> bool:
    """Whether the request streams: its path is ``/converse-stream``."""
    match = _PATH.match(path)
    return match is not None and match.group(2) == "converse-stream"


def request_include_usage(body: Any) -> bool:
    """Bedrock always streams usage (the ``metadata`` event)."""
    return True


def request_id(prefix: str, index: int) -> str:
    """A deterministic ``x-amzn-RequestId`` header value (a UUID's look)."""
    digits = f"{zlib.crc32(prefix.encode()):08x}{index:024x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:32]}"


def new_id(tag: str) -> str:
    """An id for the answer (Converse bodies carry none; the fake keeps it for symmetry)."""
    return tag


def finish_reason(name: str) -> str:
    """The ``stopReason`` sent for a scripted finish reason (see :data:`FINISH_REASONS`)."""
    return FINISH_REASONS.get(name, name)


# --------------------------------------------------------------------------- responses (written)


def usage_to_wire(usage: UsageLike | None) -> dict[str, Any] | None:
    """A Converse ``usage`` object for a usage description (``None``: none): ``inputTokens``,
    ``outputTokens``, ``totalTokens`` and, when a cached count is given, ``cacheReadInputTokens``
    and ``cacheWriteInputTokens`` (0)."""
    counts = usage_counts(usage)
    if counts is None or counts == (None, None, None):
        return None
    inp, out, cached = counts
    wire: dict[str, Any] = {"inputTokens": inp or 0, "outputTokens": out or 0, "totalTokens": (inp or 0) + (out or 0)}
    if cached is not None:
        wire["cacheReadInputTokens"] = cached
        wire["cacheWriteInputTokens"] = 0
    return wire


_NO_USAGE = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}


def completion_body(
    content: str,
    *,
    id: str = "",
    model: str = "",
    created: int = 0,
    finish_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Converse body whose message is one text block ``content`` (``usage``: a wire usage
    object; ``None`` sends zeros, as the API always has a usage)."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": content}]}},
        "stopReason": finish_reason,
        "usage": dict(usage or _NO_USAGE),
        "metrics": {"latencyMs": 1},
    }


def stream_events(
    pieces: list[str],
    *,
    id: str = "",
    model: str = "",
    created: int = 0,
    finish_reason: str = "end_turn",
    usage: dict[str, Any] | None = None,
    null_usage: bool = False,
) -> list[tuple[str, Any]]:
    """The ``(event type, payload)`` events of a stream: ``messageStart``, one
    ``contentBlockDelta`` per piece, ``contentBlockStop``, ``messageStop``, ``metadata``."""
    events: list[tuple[str, Any]] = [("messageStart", {"role": "assistant"})]
    events += [("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}}) for piece in pieces]
    events += [
        ("contentBlockStop", {"contentBlockIndex": 0}),
        ("messageStop", {"stopReason": finish_reason}),
        ("metadata", {"usage": dict(usage or _NO_USAGE), "metrics": {"latencyMs": 1}}),
    ]
    return events


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return struct.pack(">B", len(raw_name)) + raw_name + struct.pack(">BH", 7, len(raw_value)) + raw_value


def encode_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream frame: ``total length | headers length | prelude CRC32 | headers |
    payload | frame CRC32`` (big-endian; string headers, value type 7)."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    head = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw_headers + payload
    return head + struct.pack(">I", zlib.crc32(head))


def encode_event(event: tuple[str, Any]) -> bytes:
    """An ``(event type, payload)`` event as a frame; a str payload is sent as it is."""
    name, payload = event
    data = payload.encode() if isinstance(payload, str) else json.dumps(payload, separators=(",", ":")).encode()
    return encode_frame({":event-type": name, ":content-type": "application/json", ":message-type": "event"}, data)


def decode_frames(data: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The ``(headers, payload)`` of each whole frame in ``data``; ``ValueError`` on a bad CRC."""
    frames = []
    pos = 0
    while len(data) - pos >= 16:
        total, headers_len, prelude_crc = struct.unpack_from(">III", data, pos)
        if zlib.crc32(data[pos : pos + 8]) != prelude_crc:
            raise ValueError(f"event-stream frame at byte {pos}: bad prelude CRC")
        if len(data) - pos < total:
            break
        frame = data[pos : pos + total]
        if zlib.crc32(frame[:-4]) != struct.unpack(">I", frame[-4:])[0]:
            raise ValueError(f"event-stream frame at byte {pos}: bad message CRC")
        headers: dict[str, str] = {}
        at = 12
        while at < 12 + headers_len:
            n = frame[at]
            name = frame[at + 1 : at + 1 + n].decode()
            at += 1 + n
            kind, size = struct.unpack_from(">BH", frame, at)
            if kind != 7:
                raise ValueError(f"event-stream header {name!r}: value type {kind} is not a string")
            headers[name] = frame[at + 3 : at + 3 + size].decode()
            at += 3 + size
        frames.append((headers, frame[12 + headers_len : -4]))
        pos += total
    return frames


def malformed_events(body: str) -> list[tuple[str, Any]]:
    """A malformed stream: a ``messageStart`` frame whose payload is ``body`` (not JSON)."""
    return [("messageStart", body)]


def error_type(status: int) -> tuple[str, str | None]:
    """``(error type, None)`` for an HTTP error status, as Bedrock Runtime names them."""
    return ERROR_TYPES.get(status, "ValidationException" if 400 <= status < 500 else "InternalServerException"), None


def error_headers(error_type: str) -> dict[str, str]:
    """The header that names an AWS JSON error's type (the SDK reads it from there)."""
    return {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}


def error_body(message: str, error_type: str, code: str | None = None) -> dict[str, Any]:
    """An AWS JSON error body: ``{"message": ...}`` (the type goes in :func:`error_headers`)."""
    return {"message": message}


# --------------------------------------------------------------------------- responses (read)


def response_text(body: Any) -> str:
    """The text blocks of ``output.message.content``, joined; ``ValueError`` when absent."""
    try:
        content = body["output"]["message"]["content"]
    except (KeyError, TypeError):
        raise ValueError(
            "the provider's response has no output.message.content (not a Bedrock Converse body?): "
            f"{json.dumps(body)[:300] if isinstance(body, (dict, list)) else repr(body)[:300]}"
        ) from None
    return "".join(b["text"] for b in content if isinstance(b, Mapping) and isinstance(b.get("text"), str))


def _token(value: Any) -> int | None:
    return value if is_count(value) else None


def response_usage(body: Any) -> tuple[int | None, int | None, int | None] | None:
    """``(input, output, cached_input)`` of a Converse body or a ``metadata`` event payload
    (``None`` without usage): ``inputTokens``, ``outputTokens``, ``cacheReadInputTokens``."""
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    return _token(usage.get("inputTokens")), _token(usage.get("outputTokens")), _token(usage.get("cacheReadInputTokens"))


def response_id(body: Mapping[str, Any]) -> str | None:
    """Converse bodies carry no id (it is the ``x-amzn-RequestId`` header): ``None``."""
    return None


def response_model(body: Mapping[str, Any]) -> str | None:
    """Converse bodies do not name the model (the path does): ``None``."""
    return None


def event_pieces(event: tuple[str, Any]) -> list[str]:
    """The text of a ``contentBlockDelta`` event (empty for other events)."""
    name, payload = event
    if name != "contentBlockDelta" or not isinstance(payload, Mapping):
        return []
    delta = payload.get("delta")
    text = delta.get("text") if isinstance(delta, Mapping) else None
    return [text] if isinstance(text, str) and text else []
