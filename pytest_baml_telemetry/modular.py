"""The httpx path: baml's modular API (``b.request`` + httpx + ``b.parse``) with telemetry.

Code that sends LLM requests itself — ``req = b.request.X(...)``, an httpx POST,
``b.parse.X(text)`` — is invisible to baml-py's Collector, and respx sees it (baml-py's
own HTTP is in Rust and respx does not). This module gives that path the same contract:

* :func:`call_modular` / :func:`acall_modular` run one BAML function through the modular
  API with an ``httpx.Client`` / ``httpx.AsyncClient`` and emit start, then stop or
  exception, with tokens read from the provider's OpenAI-style JSON (``usage``), the
  requested ``model`` (from the request body, as for baml-py's own calls) and the
  provider's ``id`` as ``request_id``. ``stream=True`` uses ``b.stream_request`` and
  reads the server-sent events (``time_to_first_chunk``, usage from the final chunk).
* :func:`record_openai_response` fills a call of :meth:`Emitter.call` from a response,
  for code that does its own sending.
* Response builders for respx routes: :func:`openai_chat_response` (a dict),
  :func:`openai_response`, :func:`openai_error_response` and
  :func:`openai_stream_response` (``httpx.Response`` objects; the stream one can break
  off mid-way). ``usage=None`` sends no ``usage`` field.

Errors. A non-2xx response raises ``httpx.HTTPStatusError`` (``raise_for_status``, body
read so that ``exc.response.text`` is available); transport errors (``httpx.ReadTimeout``,
``httpx.ConnectError``, a broken stream's ``httpx.RemoteProtocolError``) and parse errors
(``b.parse`` raises ``baml_py.errors.BamlError``) propagate as they are. In every case an
exception event carries the very exception, which is then re-raised unchanged.

Example with respx::

    route = respx.post("https://api.openai.com/v1/chat/completions")
    route.side_effect = [openai_error_response(429), openai_response('{"name": "Ann"}', usage=(120, 30))]
    with httpx.Client() as http:
        with pytest.raises(httpx.HTTPStatusError):
            call_modular(b, "ExtractResume", arguments={"resume": "..."}, http_client=http)
        resume = call_modular(b, "ExtractResume", arguments={"resume": "..."}, http_client=http)
"""

from __future__ import annotations

import inspect
import itertools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .contract import Usage
from .emitter import Call, Emitter

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = [
    "call_modular",
    "acall_modular",
    "record_openai_response",
    "openai_usage",
    "openai_chat_response",
    "openai_response",
    "openai_error_response",
    "openai_stream_events",
    "openai_stream_response",
]

DEFAULT_MODEL = "gpt-4o-mini"
_ids = itertools.count(1)
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", None),
    408: ("timeout_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


# --------------------------------------------------------------------------- builders


def _content_text(content: Any, where: str) -> str:
    from .fake.server import _content_text as content_text  # one rule for both fakes

    return content_text(content, where)


def _usage(usage: Any) -> dict[str, Any] | None:
    from .fake.server import usage_to_openai

    return usage_to_openai(usage)


def _check_model(model: Any, where: str) -> str:
    if not isinstance(model, str) or not model:
        raise TypeError(f"{where}: model={model!r}: expected a non-empty str")
    return model


def _completion_id(id: str | None, where: str) -> str:
    if id is None:
        return f"chatcmpl-respx{next(_ids)}"
    if not isinstance(id, str) or not id:
        raise TypeError(f"{where}: id={id!r}: expected a non-empty str or None (a generated 'chatcmpl-...')")
    return id


def _status(status_code: Any, where: str) -> int:
    if isinstance(status_code, bool) or not isinstance(status_code, int):
        raise TypeError(f"{where}: status_code={status_code!r} is not an int; expected an HTTP status in 100..599")
    if not 100 <= status_code <= 599:
        raise ValueError(f"{where}: status_code={status_code!r} is not an HTTP status; expected an int in 100..599")
    return status_code


def openai_chat_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = DEFAULT_MODEL,
    id: str | None = None,
    finish_reason: str = "stop",
) -> dict[str, Any]:
    """An OpenAI chat-completions JSON body whose message content is ``content``.

    ``usage``: a :class:`~.contract.Usage`, an ``(input, output[, cached_input])`` tuple,
    a dict with those keys, or ``None`` to send no ``usage`` field. ``id`` defaults to a
    fresh ``"chatcmpl-respx<n>"``. A dict/list ``content`` is JSON-encoded.
    """
    where = "openai_chat_response"
    body: dict[str, Any] = {
        "id": _completion_id(id, where),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": _check_model(model, where),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _content_text(content, where), "refusal": None},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
    }
    openai = _usage(usage)
    if openai is not None:
        body["usage"] = openai
    return body


def openai_response(
    content: str | dict[str, Any] | list[Any],
    *,
    usage: Any = None,
    model: str = DEFAULT_MODEL,
    id: str | None = None,
    finish_reason: str = "stop",
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An ``httpx.Response`` carrying :func:`openai_chat_response` (for respx routes)."""
    import httpx

    body = openai_chat_response(content, usage=usage, model=model, id=id, finish_reason=finish_reason)
    return httpx.Response(_status(status_code, "openai_response"), json=body, headers=dict(headers or {}))


def openai_error_response(
    status_code: int,
    *,
    message: str | None = None,
    retry_after: int | None = None,
    error_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """An OpenAI-style error response, e.g. ``openai_error_response(429, retry_after=2)``."""
    import httpx

    where = "openai_error_response"
    status = _status(status_code, where)
    if status < 400:
        raise ValueError(f"{where}: status_code={status_code!r} is not an error; expected 400..599")
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "api_error", None))
    if error_type is not None:
        kind = error_type
    all_headers = dict(headers or {})
    if retry_after is not None:
        if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
            raise ValueError(f"{where}: retry_after={retry_after!r}: expected whole seconds, an int >= 0")
        all_headers["Retry-After"] = str(retry_after)
    text = message if message is not None else f"scripted HTTP {status} error"
    body = {"error": {"message": text, "type": kind, "param": None, "code": code}}
    return httpx.Response(status, json=body, headers=all_headers)


def _split(content: str, chunks: int | Sequence[str] | None, where: str) -> list[str]:
    if chunks is None:  # one piece per word, whitespace kept with the word before it
        pieces: list[str] = []
        word = ""
        for ch in content:
            if word and not ch.isspace() and word[-1].isspace():
                pieces.append(word)
                word = ""
            word += ch
        if word:
            pieces.append(word)
        return pieces or [""]
    if isinstance(chunks, bool):
        raise TypeError(f"{where}: chunks={chunks!r}: expected None, an int >= 1 or a list of str")
    if isinstance(chunks, int):
        if chunks < 1:
            raise ValueError(f"{where}: chunks={chunks!r} must be >= 1 (the number of streamed pieces)")
        n = min(chunks, max(len(content), 1))
        size, extra = divmod(len(content), n)
        out, pos = [], 0
        for i in range(n):
            step = size + (1 if i < extra else 0)
            out.append(content[pos : pos + step])
            pos += step
        return out
    if isinstance(chunks, Sequence) and not isinstance(chunks, (str, bytes)):
        pieces = list(chunks)
        if not pieces or not all(isinstance(p, str) for p in pieces):
            raise TypeError(f"{where}: chunks={chunks!r} must be a non-empty list of str")
        if "".join(pieces) != content:
            raise ValueError(f"{where}: chunks={chunks!r} do not join to the content {content!r}")
        return pieces
    raise TypeError(f"{where}: chunks={chunks!r}: expected None (one per word), an int >= 1 or a list of str")


def openai_stream_events(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = DEFAULT_MODEL,
    id: str | None = None,
    finish_reason: str = "stop",
) -> list[dict[str, Any] | str]:
    """The server-sent events of an OpenAI chat-completions stream, as baml-py asks for them.

    Content chunks (``chunks``: ``None`` one per word, an int: that many pieces, or a list
    of str joining to ``content``), a chunk with ``finish_reason``, the usage chunk
    (``"choices": []``; only when ``usage`` is given), then the string ``"[DONE]"``.
    """
    where = "openai_stream_events"
    text = _content_text(content, where)
    base = {"id": _completion_id(id, where), "object": "chat.completion.chunk", "created": 1_700_000_000,
            "model": _check_model(model, where)}
    events: list[dict[str, Any] | str] = []
    for i, piece in enumerate(_split(text, chunks, where)):
        delta: dict[str, Any] = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        events.append({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})
    events.append({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}]})
    openai = _usage(usage)
    if openai is not None:
        events.append({**base, "choices": [], "usage": openai})
    events.append("[DONE]")
    return events


def _sse_bytes(event: dict[str, Any] | str) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event)
    return f"data: {data}\n\n".encode()


class _SSEStream:
    """An httpx byte stream (sync and async) that may break off after some events."""

    def __init__(self, events: list[bytes], break_after: int | None) -> None:
        self._events = events
        self._break_after = break_after

    def _pieces(self) -> Iterator[bytes]:
        for i, event in enumerate(self._events):
            if self._break_after is not None and i >= self._break_after:
                import httpx

                raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")
            yield event

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces()

    async def __aiter__(self) -> Any:
        for piece in self._pieces():
            yield piece

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def openai_stream_response(
    content: str | dict[str, Any] | list[Any],
    *,
    chunks: int | Sequence[str] | None = None,
    usage: Any = None,
    model: str = DEFAULT_MODEL,
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
    import httpx

    if break_after is not None and (isinstance(break_after, bool) or not isinstance(break_after, int) or break_after < 0):
        raise ValueError(f"openai_stream_response: break_after={break_after!r}: expected an int >= 0 or None")
    events = openai_stream_events(content, chunks=chunks, usage=usage, model=model, id=id, finish_reason=finish_reason)
    stream = _SSEStream([_sse_bytes(e) for e in events], break_after)
    all_headers = {"content-type": "text/event-stream", **dict(headers or {})}
    return httpx.Response(200, headers=all_headers, stream=stream)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reading responses


def _token(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def openai_usage(body: Any) -> Usage | None:
    """The :class:`Usage` of an OpenAI JSON body or usage chunk (``None`` when it has none).

    ``usage.prompt_tokens`` → input, ``completion_tokens`` → output,
    ``prompt_tokens_details.cached_tokens`` → cached input; a missing count stays ``None``.
    """
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else None
    return Usage(_token(usage.get("prompt_tokens")), _token(usage.get("completion_tokens")), _token(cached))


def record_openai_response(call: Call, response: Any) -> None:
    """Set usage, ``request_id`` (the provider's ``id``) and ``response_model`` on ``call``.

    ``response`` is an ``httpx.Response`` or its decoded JSON body. A body that is not
    JSON (or an error body) sets nothing. ``model`` is not touched: it is the model the
    request asked for (set it from the request body, as :func:`call_modular` does).
    """
    if isinstance(response, Mapping):
        body: Any = response
    else:
        try:
            body = response.json()
        except Exception:
            return
    if not isinstance(body, Mapping):
        return
    usage = openai_usage(body)
    if usage is not None:
        call.set_usage(usage)
    extra: dict[str, Any] = {}
    if isinstance(body.get("id"), str) and body["id"]:
        extra["request_id"] = body["id"]
    if isinstance(body.get("model"), str):
        extra["response_model"] = body["model"]
    if extra:
        call.set(**extra)


def _message_text(body: Any) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise ValueError(
            f"the provider's response has no choices[0].message.content (not an OpenAI chat completion?): "
            f"{json.dumps(body)[:300] if isinstance(body, (dict, list)) else repr(body)[:300]}"
        ) from None
    return content if isinstance(content, str) else ""


class _StreamState:
    """Accumulates an OpenAI SSE stream: text, id, model, usage."""

    def __init__(self, call: Call, on_text: Callable[[str], None] | None) -> None:
        self.call = call
        self.text = ""
        self.on_text = on_text
        self.done = False
        self.seen = False

    def feed_line(self, line: str) -> None:
        if self.done or not line.startswith("data:"):
            return
        data = line[5:].strip()
        if data == "[DONE]":
            self.done = True
            return
        chunk = json.loads(data)  # a malformed event raises json.JSONDecodeError (a ValueError)
        if not isinstance(chunk, dict):
            return
        call = self.call
        if not self.seen:
            self.seen = True
            extra: dict[str, Any] = {}
            if isinstance(chunk.get("id"), str) and chunk["id"]:
                extra["request_id"] = chunk["id"]
            if isinstance(chunk.get("model"), str):
                extra["response_model"] = chunk["model"]
            call.set(**extra)
        usage = openai_usage(chunk)
        if usage is not None:
            call.set_usage(usage)
        for choice in chunk.get("choices") or ():
            piece = (choice.get("delta") or {}).get("content") if isinstance(choice, dict) else None
            if isinstance(piece, str) and piece:
                call.mark_first_chunk()
                self.text += piece
                if self.on_text is not None:
                    self.on_text(self.text)


# --------------------------------------------------------------------------- calls


def _lookup(b: Any, function_name: Any, stream: bool, want_partials: bool) -> tuple[Callable[..., Any], ...]:
    if not isinstance(function_name, str) or not function_name:
        raise TypeError(f"function_name={function_name!r}: expected the name of a BAML function, a non-empty str")
    builders = getattr(b, "stream_request" if stream else "request", None)
    parsers = getattr(b, "parse", None)
    if builders is None or parsers is None:
        raise TypeError(
            f"b={b!r}: expected a generated baml-py client with the modular API (b.request, b.parse); "
            "baml_client.b or baml_client.async_client.b"
        )
    build = getattr(builders, function_name, None)
    parse = getattr(parsers, function_name, None)
    if not callable(build) or not callable(parse):
        known = sorted(n for n in dir(parsers) if not n.startswith("_"))
        raise ValueError(f"function_name={function_name!r} is not a BAML function of this client; it has: {', '.join(known)}")
    parse_partial = getattr(b.parse_stream, function_name) if want_partials else None
    return build, parse, parse_partial  # type: ignore[return-value]


def _prepare(
    b: Any,
    function_name: str,
    arguments: Mapping[str, Any] | None,
    emitter: Emitter | None,
    client_module: str | None,
    stream: bool,
    on_partial: Callable[[Any], None] | None,
) -> tuple[Emitter, dict[str, Any], str | None, tuple[Callable[..., Any], ...]]:
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, Mapping):
        raise TypeError(f"{function_name}: arguments={arguments!r}: expected a mapping of the function's arguments")
    if emitter is None:
        emitter = Emitter()
    elif not isinstance(emitter, Emitter):
        raise TypeError(f"emitter={emitter!r}: expected a pytest_baml_telemetry.Emitter or None")
    if on_partial is not None and not callable(on_partial):
        raise TypeError(f"on_partial={on_partial!r}: expected a callable taking each partial result, or None")
    if on_partial is not None and not stream:
        raise ValueError("on_partial is only for stream=True")
    target = getattr(b, "__wrapped__", b)  # an instrument()ed client: use the original
    if client_module is None:
        from .instrument import _client_module_of

        client_module = _client_module_of(target)
    return emitter, dict(arguments), client_module, _lookup(target, function_name, stream, on_partial is not None)


def _request_parts(call: Call, request: Any) -> tuple[str, str, dict[str, str], Any]:
    body = request.body.json()
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        call.set_model(body["model"])
    call.set(num_attempts=1)
    return request.method or "POST", request.url, dict(request.headers), body


def call_modular(
    b: Any,
    function_name: str,
    *,
    arguments: Mapping[str, Any] | None = None,
    http_client: httpx.Client | None = None,
    emitter: Emitter | None = None,
    resource: Any = None,
    action: str | None = None,
    client_module: str | None = None,
    stream: bool = False,
    on_partial: Callable[[Any], None] | None = None,
) -> Any:
    """Run a BAML function through the modular API with httpx, emitting the call contract.

    ``req = b.request.<function_name>(**arguments)`` (``b.stream_request`` when
    ``stream=True``), send it with ``http_client`` (an ``httpx.Client``; a fresh one when
    ``None``), read usage / ``request_id`` / ``response_model`` from the OpenAI-style
    response, and return ``b.parse.<function_name>(text)``. With ``stream=True`` the SSE
    body is read as it arrives (``time_to_first_chunk``; usage from the final usage chunk)
    and ``on_partial`` (optional) gets ``b.parse_stream.<function_name>(text so far)``
    after each content chunk. Non-2xx answers raise ``httpx.HTTPStatusError``; every
    exception is emitted and re-raised unchanged. Use :func:`acall_modular` for an
    ``httpx.AsyncClient`` or an async ``b``.
    """
    import httpx

    if http_client is not None and not isinstance(http_client, httpx.Client):
        raise TypeError(
            f"call_modular(http_client={http_client!r}): expected an httpx.Client or None "
            "(use acall_modular for an httpx.AsyncClient)"
        )
    emitter, args, module, (build, parse, parse_partial) = _prepare(
        b, function_name, arguments, emitter, client_module, stream, on_partial
    )
    if inspect.iscoroutinefunction(build):
        raise TypeError(f"call_modular({function_name!r}): b is an async client; use `await acall_modular(...)`")
    owned = http_client is None
    client = httpx.Client() if owned else http_client
    assert client is not None
    try:
        with emitter.call(
            function_name, arguments=args, resource=resource, action=action, client_module=module, streaming=stream
        ) as call:
            request = build(**args)
            method, url, headers, body = _request_parts(call, request)
            if not stream:
                response = client.request(method, url, headers=headers, json=body)
                if response.is_success:
                    record_openai_response(call, response)
                response.raise_for_status()
                text = _message_text(response.json())
            else:
                on_text = None if parse_partial is None else (lambda t: on_partial(parse_partial(t)))  # type: ignore[misc]
                state = _StreamState(call, on_text)
                with client.stream(method, url, headers=headers, json=body) as response:
                    if not response.is_success:
                        response.read()
                        response.raise_for_status()
                    for line in response.iter_lines():
                        state.feed_line(line)
                text = state.text
            result = parse(text)
            call.set_result(result)
            return result
    finally:
        if owned:
            client.close()


async def acall_modular(
    b: Any,
    function_name: str,
    *,
    arguments: Mapping[str, Any] | None = None,
    http_client: httpx.AsyncClient | None = None,
    emitter: Emitter | None = None,
    resource: Any = None,
    action: str | None = None,
    client_module: str | None = None,
    stream: bool = False,
    on_partial: Callable[[Any], None] | None = None,
) -> Any:
    """The async form of :func:`call_modular`: an ``httpx.AsyncClient``, a sync or async ``b``.

    Task cancellation while waiting emits an exception event of kind ``"exit"`` and
    propagates the ``CancelledError``.
    """
    import httpx

    if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
        raise TypeError(
            f"acall_modular(http_client={http_client!r}): expected an httpx.AsyncClient or None "
            "(use call_modular for an httpx.Client)"
        )
    emitter, args, module, (build, parse, parse_partial) = _prepare(
        b, function_name, arguments, emitter, client_module, stream, on_partial
    )
    owned = http_client is None
    client = httpx.AsyncClient() if owned else http_client
    assert client is not None
    try:
        async with emitter.call(
            function_name, arguments=args, resource=resource, action=action, client_module=module, streaming=stream
        ) as call:
            request = build(**args)
            if inspect.isawaitable(request):
                request = await request
            method, url, headers, body = _request_parts(call, request)
            if not stream:
                response = await client.request(method, url, headers=headers, json=body)
                if response.is_success:
                    record_openai_response(call, response)
                response.raise_for_status()
                text = _message_text(response.json())
            else:
                on_text = None if parse_partial is None else (lambda t: on_partial(parse_partial(t)))  # type: ignore[misc]
                state = _StreamState(call, on_text)
                async with client.stream(method, url, headers=headers, json=body) as response:
                    if not response.is_success:
                        await response.aread()
                        response.raise_for_status()
                    async for line in response.aiter_lines():
                        state.feed_line(line)
                text = state.text
            result = parse(text)
            call.set_result(result)
            return result
    finally:
        if owned:
            await client.aclose()
