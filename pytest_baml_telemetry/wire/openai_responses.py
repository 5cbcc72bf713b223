"""The OpenAI Responses wire format (``POST /v1/responses``).

Request bodies as baml-py's ``openai-responses`` client sends them (``model``, ``input`` items
of ``input_text`` parts, ``"stream": true``), ``response`` bodies (``output`` with one
``message`` of ``output_text`` parts, ``status`` ``completed`` or ``incomplete`` with
``incomplete_details.reason``, ``usage`` with ``input_tokens``, ``output_tokens``,
``total_tokens``, ``input_tokens_details.cached_tokens`` and
``output_tokens_details.reasoning_tokens``), the named server-sent events of a stream
(``response.created``, ``response.in_progress``, ``response.output_item.added``,
``response.content_part.added``, one ``response.output_text.delta`` per piece,
``response.output_text.done``, ``response.content_part.done``, ``response.output_item.done``,
then ``response.completed`` — or ``response.incomplete`` — with the whole response and its
usage). Errors are OpenAI's (:func:`pytest_baml_telemetry.wire.openai.error_body`), and so is
the ``x-request-id`` header. Standard library (and ``_validate``) only: the fake server's
child process imports it without the package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._validate import is_count
from .common import UsageLike, sse_data, usage_counts
from .openai import ERROR_TYPES, error_body, error_type, request_id

__all__ = [
    "PATHS",
    "STREAM_CONTENT_TYPE",
    "REQUEST_ID_HEADER",
    "OPENING_EVENTS",
    "ERROR_TYPES",
    "INCOMPLETE_REASONS",
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

PATHS = frozenset({"/v1/responses", "/responses"})
"""The paths served: baml-py posts to ``{base_url}/responses``, ``base_url`` ending in ``/v1``."""
STREAM_CONTENT_TYPE = "text/event-stream"
REQUEST_ID_HEADER = "x-request-id"
OPENING_EVENTS = 4
"""``response.created``, ``response.in_progress``, ``response.output_item.added`` and
``response.content_part.added`` come before the first ``response.output_text.delta``."""

INCOMPLETE_REASONS: dict[str, str] = {"length": "max_output_tokens", "max_output_tokens": "max_output_tokens", "content_filter": "content_filter"}
"""Scripted finish reasons that end a response ``incomplete``, with its ``incomplete_details.reason``;
any other (``stop``, ...) ends it ``completed``."""

# --------------------------------------------------------------------------- requests


def is_chat_path(path: str) -> bool:
    """Whether ``path`` (without its query) creates a response."""
    return path in PATHS


def path_model(path: str) -> str | None:
    """The model a path names: never (the body does)."""
    return None


def request_model(body: Any) -> str | None:
    """The ``model`` a request body asks for (``None`` when absent or not a str)."""
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


def request_messages(body: Any) -> list[Any]:
    """The ``input`` items of a request body (a str input is one user message; empty when absent)."""
    items = body.get("input") if isinstance(body, dict) else None
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return list(items) if isinstance(items, list) else []


def request_stream(body: Any, path: str = "") -> bool:
    """Whether a request body asks for a stream (``"stream": true``)."""
    return isinstance(body, dict) and body.get("stream") is True


def request_include_usage(body: Any) -> bool:
    """The Responses API always sends the usage (in ``response.completed``)."""
    return True


def new_id(tag: str) -> str:
    """A response id, ``resp_{tag}``."""
    return f"resp_{tag}"


def finish_reason(name: str) -> str:
    """The scripted finish reason as it is: :func:`completion_body` turns it into a ``status``."""
    return name


# --------------------------------------------------------------------------- responses (written)


def usage_to_wire(usage: UsageLike | None) -> dict[str, Any] | None:
    """A Responses ``usage`` object for a usage description (``None``: none): ``input_tokens``,
    ``input_tokens_details.cached_tokens`` (0 unless given), ``output_tokens``,
    ``output_tokens_details.reasoning_tokens`` (0) and ``total_tokens``."""
    counts = usage_counts(usage)
    if counts is None or counts == (None, None, None):
        return None
    inp, out, cached = counts
    return {
        "input_tokens": inp or 0,
        "input_tokens_details": {"cached_tokens": cached or 0},
        "output_tokens": out or 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": (inp or 0) + (out or 0),
    }


def _item(id: str, text: str | None, status: str) -> dict[str, Any]:
    content = [] if text is None else [{"type": "output_text", "text": text, "annotations": []}]
    return {"type": "message", "id": f"msg_{id}", "status": status, "role": "assistant", "content": content}


def _response(id: str, model: str, created: int, status: str, output: list[Any], usage: dict[str, Any] | None, reason: str | None) -> dict[str, Any]:
    return {
        "id": id,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None if reason is None else {"reason": reason},
        "model": model,
        "output": output,
        "usage": usage,
    }


def completion_body(
    content: str,
    *,
    id: str,
    model: str,
    created: int = 0,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``response`` body whose one ``message`` says ``content``: ``status`` ``completed``, or
    ``incomplete`` for a finish reason of :data:`INCOMPLETE_REASONS`."""
    reason = INCOMPLETE_REASONS.get(finish_reason)
    status = "completed" if reason is None else "incomplete"
    return _response(id, model, created, status, [_item(id, content, status)], usage, reason)


def stream_events(
    pieces: list[str],
    *,
    id: str,
    model: str,
    created: int = 0,
    finish_reason: str = "stop",
    usage: dict[str, Any] | None = None,
    null_usage: bool = False,
) -> list[dict[str, Any]]:
    """The events of a stream (see the module docstring), each with its ``sequence_number``.
    The content events are ``events[OPENING_EVENTS:OPENING_EVENTS + len(pieces)]``."""
    text = "".join(pieces)
    item_id = f"msg_{id}"
    part = {"type": "output_text", "text": "", "annotations": []}
    at = {"item_id": item_id, "output_index": 0, "content_index": 0}
    final = completion_body(text, id=id, model=model, created=created, finish_reason=finish_reason, usage=usage)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response(id, model, created, "in_progress", [], None, None)},
        {"type": "response.in_progress", "response": _response(id, model, created, "in_progress", [], None, None)},
        {"type": "response.output_item.added", "output_index": 0, "item": _item(id, None, "in_progress")},
        {"type": "response.content_part.added", **at, "part": part},
    ]
    events += [{"type": "response.output_text.delta", **at, "delta": piece} for piece in pieces]
    events += [
        {"type": "response.output_text.done", **at, "text": text},
        {"type": "response.content_part.done", **at, "part": {**part, "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": final["output"][0]},
        {"type": f"response.{final['status']}", "response": final},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def encode_event(event: Any) -> bytes:
    """One named server-sent event, ``event: <type>\\ndata: <compact JSON>\\n\\n``; an
    ``(name, raw_text)`` pair sends ``raw_text`` as the data as it is."""
    if isinstance(event, tuple):
        name, data = event
    else:
        name, data = event.get("type", "message"), json.dumps(event, separators=(",", ":"))
    return f"event: {name}\ndata: {data}\n\n".encode()


def malformed_events(body: str) -> list[Any]:
    """A malformed stream: a ``response.created`` event whose data is ``body`` (not JSON)."""
    return [("response.created", body)]


# --------------------------------------------------------------------------- responses (read)


def response_text(body: Any) -> str:
    """The ``output_text`` parts of the response's ``message`` items, joined; ``ValueError`` without ``output``."""
    output = body.get("output") if isinstance(body, Mapping) else None
    if not isinstance(output, list):
        raise ValueError(
            "the provider's response has no output (not an OpenAI Responses body?): "
            f"{json.dumps(body)[:300] if isinstance(body, (dict, list)) else repr(body)[:300]}"
        )
    texts = []
    for item in output:
        if isinstance(item, Mapping) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, Mapping) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return "".join(texts)


def _token(value: Any) -> int | None:
    return value if is_count(value) else None


def _body(event: Any) -> Any:
    """The response of a ``response.*`` event that carries one, else the body itself."""
    if isinstance(event, Mapping) and isinstance(event.get("response"), Mapping):
        return event["response"]
    return event


def response_usage(body: Any) -> tuple[int | None, int | None, int | None] | None:
    """``(input, output, cached_input)`` of a response or a ``response.completed`` event (``None``
    without usage): ``input_tokens``, ``output_tokens``, ``input_tokens_details.cached_tokens``."""
    body = _body(body)
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("input_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return _token(usage.get("input_tokens")), _token(usage.get("output_tokens")), _token(cached)


def response_id(body: Mapping[str, Any]) -> str | None:
    """The response id (``"resp_..."``), when it is a non-empty str."""
    value = _body(body).get("id")
    return value if isinstance(value, str) and value else None


def response_model(body: Mapping[str, Any]) -> str | None:
    """The model the provider says it served, when it is a str."""
    value = _body(body).get("model")
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
    """The text of a ``response.output_text.delta`` event (empty for other events)."""
    if event.get("type") != "response.output_text.delta":
        return []
    delta = event.get("delta")
    return [delta] if isinstance(delta, str) and delta else []
