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

The bodies are written and read by :mod:`pytest_baml_telemetry.wire.openai`, the format
the fake LLM server speaks too; this module adds httpx, the emitter and argument checks.

Errors. A non-2xx response raises ``httpx.HTTPStatusError`` (``raise_for_status``, body
read so that ``exc.response.text`` is available); transport errors (``httpx.ReadTimeout``,
``httpx.ConnectError``, a broken stream's ``httpx.RemoteProtocolError``) and parse errors
(``b.parse`` raises ``baml_py.errors.BamlError``) propagate as they are. In every case an
exception event carries the very exception, which is then re-raised unchanged. Its tokens
follow the billing rule: 0/0 for an error status >= 400 or an ``httpx.ConnectError`` (not
billed), the answer's usage for a parse error after a 2xx answer, ``None`` for a timeout
or a broken stream without a usage chunk (billing unknown).

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._validate import check_callable, check_count, check_int, check_mapping, fail, short_number_repr, short_repr
from .collector_log import NOT_BILLED
from .contract import MAX_NATIVE, Usage
from .emitter import Call, Emitter
from .wire import common, openai

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
_CREATED = 1_700_000_000  # a fixed "created" keeps built responses reproducible
_ids = itertools.count(1)


# --------------------------------------------------------------------------- builders


def _check_model(model: Any, where: str) -> str:
    if not isinstance(model, str) or not model:
        fail(TypeError, f"{where}: model={short_repr(model)}", "a non-empty str")
    return model


def _completion_id(id: str | None, where: str) -> str:
    if id is None:
        return f"chatcmpl-respx{next(_ids)}"
    if not isinstance(id, str) or not id:
        fail(TypeError, f"{where}: id={short_repr(id)}", "a non-empty str or None (a generated 'chatcmpl-...')")
    return id


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
    return openai.completion_body(
        common.content_text(content, where),
        id=_completion_id(id, where),
        model=_check_model(model, where),
        created=_CREATED,
        finish_reason=finish_reason,
        usage=openai.usage_to_wire(usage),
    )


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
    return httpx.Response(common.check_status(status_code, "openai_response"), json=body, headers=dict(headers or {}))


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
    status = common.check_status(status_code, where)
    if status < 400:
        fail(ValueError, f"{where}: status_code={status_code!r} is not an error", "400..599")
    kind, code = openai.error_type(status)
    if error_type is not None:
        kind = error_type
    all_headers = dict(headers or {})
    if retry_after is not None:
        longest = MAX_NATIVE // 1_000_000_000
        check_int(
            retry_after, f"{where}: retry_after={short_number_repr(retry_after)}", minimum=0, maximum=longest,
            expected=f"whole seconds, an int from 0 to {longest}",
        )
        all_headers["Retry-After"] = str(retry_after)
    text = message if message is not None else f"scripted HTTP {status} error"
    return httpx.Response(status, json=openai.error_body(text, kind, code), headers=all_headers)


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
    text = common.content_text(content, where)
    return openai.stream_events(
        common.split_content(text, common.check_chunks(chunks, text, where)),
        id=_completion_id(id, where),
        model=_check_model(model, where),
        created=_CREATED,
        finish_reason=finish_reason,
        usage=openai.usage_to_wire(usage),
    )


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

    check_count(break_after, f"openai_stream_response: break_after={short_repr(break_after)}", optional=True)
    events = openai_stream_events(content, chunks=chunks, usage=usage, model=model, id=id, finish_reason=finish_reason)
    stream = _SSEStream([openai.encode_event(e) for e in events], break_after)
    all_headers = {"content-type": "text/event-stream", **dict(headers or {})}
    return httpx.Response(200, headers=all_headers, stream=stream)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reading responses


def openai_usage(body: Any) -> Usage | None:
    """The :class:`Usage` of an OpenAI JSON body or usage chunk (``None`` when it has none).

    ``usage.prompt_tokens`` → input, ``completion_tokens`` → output,
    ``prompt_tokens_details.cached_tokens`` → cached input; a missing count stays ``None``.
    """
    counts = openai.response_usage(body)
    return None if counts is None else Usage(*counts)


def _record_meta(call: Call, body: Mapping[str, Any]) -> None:
    """``request_id`` and ``response_model`` from a body or the first chunk of a stream."""
    extra: dict[str, Any] = {}
    request_id = openai.response_id(body)
    if request_id is not None:
        extra["request_id"] = request_id
    model = openai.response_model(body)
    if model is not None:
        extra["response_model"] = model
    if extra:
        call.set(**extra)


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
    _record_meta(call, body)


class _StreamState:
    """Accumulates an OpenAI SSE stream: text, id, model, usage."""

    def __init__(self, call: Call, on_text: Callable[[str], None] | None) -> None:
        self.call = call
        self.text = ""
        self.on_text = on_text
        self.done = False
        self.seen = False

    def feed_line(self, line: str) -> None:
        if self.done:
            return
        chunk = openai.decode_event(line)  # a malformed event raises json.JSONDecodeError (a ValueError)
        if chunk is None:
            return
        if chunk == common.DONE:
            self.done = True
            return
        assert isinstance(chunk, dict)
        call = self.call
        if not self.seen:
            self.seen = True
            _record_meta(call, chunk)
        usage = openai_usage(chunk)
        if usage is not None:
            call.set_usage(usage)
        for piece in openai.event_pieces(chunk):
            call.mark_first_chunk()
            self.text += piece
            if self.on_text is not None:
                self.on_text(self.text)


# --------------------------------------------------------------------------- calls


def _lookup(b: Any, function_name: Any, stream: bool, want_partials: bool) -> tuple[Callable[..., Any], ...]:
    if not isinstance(function_name, str) or not function_name:
        fail(TypeError, f"function_name={short_repr(function_name)}", "the name of a BAML function, a non-empty str")
    builders = getattr(b, "stream_request" if stream else "request", None)
    parsers = getattr(b, "parse", None)
    if builders is None or parsers is None:
        fail(
            TypeError,
            f"b={short_repr(b)}",
            "a generated baml-py client with the modular API (b.request, b.parse); "
            "baml_client.b or baml_client.async_client.b",
        )
    build = getattr(builders, function_name, None)
    parse = getattr(parsers, function_name, None)
    if not callable(build) or not callable(parse):
        known = sorted(n for n in dir(parsers) if not n.startswith("_"))
        raise ValueError(
            f"function_name={function_name!r} is not a BAML function of this client; it has: {', '.join(known)}"
        )
    parse_partial = getattr(b.parse_stream, function_name) if want_partials else None
    return build, parse, parse_partial  # type: ignore[return-value]


class _Plan:
    """One modular call, checked before anything is emitted: what to build, send, parse, emit."""

    __slots__ = ("emitter", "arguments", "build", "parse", "on_text", "call_kwargs")

    def __init__(
        self,
        b: Any,
        function_name: str,
        arguments: Mapping[str, Any] | None,
        emitter: Emitter | None,
        resource: Any,
        action: str | None,
        client_module: str | None,
        stream: bool,
        on_partial: Callable[[Any], None] | None,
    ) -> None:
        if arguments is None:
            arguments = {}
        check_mapping(
            arguments,
            f"{function_name}: arguments={short_repr(arguments)}",
            expected="a mapping of the function's arguments",
        )
        if emitter is None:
            emitter = Emitter()
        elif not isinstance(emitter, Emitter):
            fail(TypeError, f"emitter={short_repr(emitter)}", "a pytest_baml_telemetry.Emitter or None")
        check_callable(
            on_partial,
            f"on_partial={short_repr(on_partial)}",
            optional=True,
            expected="a callable taking each partial result, or None",
        )
        if on_partial is not None and not stream:
            raise ValueError("on_partial is only for stream=True")
        target = getattr(b, "__wrapped__", b)  # an instrument()ed client: use the original
        if client_module is None:
            from .baml_gen import client_module_of

            client_module = client_module_of(target)
        self.build, self.parse, parse_partial = _lookup(target, function_name, stream, on_partial is not None)
        self.on_text: Callable[[str], None] | None = None
        if on_partial is not None and parse_partial is not None:
            self.on_text = lambda text: on_partial(parse_partial(text))
        self.emitter = emitter
        self.arguments = dict(arguments)
        self.call_kwargs = {
            "arguments": self.arguments,
            "resource": resource,
            "action": action,
            "client_module": client_module,
            "streaming": stream,
        }


def _request_parts(call: Call, request: Any) -> tuple[str, str, dict[str, str], Any]:
    body = request.body.json()
    model = openai.request_model(body)
    if model is not None:
        call.set_model(model)
    # baml's own request id ("breq_..."), replaced by the provider's response id when one is served
    request_id = getattr(request, "id", None)
    call.set(num_attempts=1, request_id=request_id if isinstance(request_id, str) else None)
    return request.method or "POST", request.url, dict(request.headers), body


def _answer_text(call: Call, response: httpx.Response) -> str:
    """Record a (non-streamed) answer, raise for an error status, return the message text.

    An error status >= 400 was not billed: its tokens are 0/0."""
    if response.is_success:
        record_openai_response(call, response)
    elif response.status_code >= 400:
        call.usage = NOT_BILLED
    response.raise_for_status()
    return openai.response_text(response.json())


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
        fail(
            TypeError,
            f"call_modular(http_client={short_repr(http_client)})",
            "an httpx.Client or None (use acall_modular for an httpx.AsyncClient)",
        )
    plan = _Plan(b, function_name, arguments, emitter, resource, action, client_module, stream, on_partial)
    if inspect.iscoroutinefunction(plan.build):
        raise TypeError(f"call_modular({function_name!r}): b is an async client; use `await acall_modular(...)`")
    owned = http_client is None
    client = httpx.Client() if owned else http_client
    assert client is not None
    try:
        with plan.emitter.call(function_name, **plan.call_kwargs) as call:
            method, url, headers, body = _request_parts(call, plan.build(**plan.arguments))
            try:
                if not stream:
                    text = _answer_text(call, client.request(method, url, headers=headers, json=body))
                else:
                    state = _StreamState(call, plan.on_text)
                    with client.stream(method, url, headers=headers, json=body) as response:
                        if not response.is_success:
                            response.read()
                            _answer_text(call, response)
                        for line in response.iter_lines():
                            state.feed_line(line)
                    text = state.text
            except httpx.ConnectError:
                call.usage = NOT_BILLED  # the request never reached the provider
                raise
            result = plan.parse(text)
            call.set_result(result)
            return result
    finally:
        if owned:
            client.close()


# The async twin of call_modular (same parameters and steps, each I/O step awaited): no shared body possible.
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
        fail(
            TypeError,
            f"acall_modular(http_client={short_repr(http_client)})",
            "an httpx.AsyncClient or None (use call_modular for an httpx.Client)",
        )
    plan = _Plan(b, function_name, arguments, emitter, resource, action, client_module, stream, on_partial)
    owned = http_client is None
    client = httpx.AsyncClient() if owned else http_client
    assert client is not None
    try:
        async with plan.emitter.call(function_name, **plan.call_kwargs) as call:
            request = plan.build(**plan.arguments)
            if inspect.isawaitable(request):
                request = await request
            method, url, headers, body = _request_parts(call, request)
            try:
                if not stream:
                    text = _answer_text(call, await client.request(method, url, headers=headers, json=body))
                else:
                    state = _StreamState(call, plan.on_text)
                    async with client.stream(method, url, headers=headers, json=body) as response:
                        if not response.is_success:
                            await response.aread()
                            _answer_text(call, response)
                        async for line in response.aiter_lines():
                            state.feed_line(line)
                    text = state.text
            except httpx.ConnectError:
                call.usage = NOT_BILLED  # the request never reached the provider
                raise
            result = plan.parse(text)
            call.set_result(result)
            return result
    finally:
        if owned:
            await client.aclose()
