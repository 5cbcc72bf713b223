"""The httpx path: baml's modular API (``b.request`` + httpx + ``b.parse``) with telemetry.

Code that sends LLM requests itself — ``req = b.request.X(...)``, an httpx POST,
``b.parse.X(text)`` — is invisible to baml-py's Collector, and respx sees it (baml-py's
own HTTP is in Rust and respx does not). This module gives that path the same contract:

* :func:`call_modular` / :func:`acall_modular` run one BAML function through the modular
  API with an ``httpx.Client`` / ``httpx.AsyncClient`` and emit start, then stop or
  exception, in every wire format: the request baml built names it (:func:`wire_format`:
  the URL path — ``/chat/completions``, an Azure deployment's, ``/responses``,
  ``/v1/messages``, ``models/{model}:generateContent``, ``/model/{id}/converse`` — after any
  base-URL prefix; ``provider=`` names the client's provider, for ``openai-generic`` and
  ``ollama``, whose paths are OpenAI's). The format's ``wire`` module reads the text, the
  tokens (cached included), the served model (``response_model``) and the provider's
  response id (``request_id``; Bedrock's from its ``x-amzn-RequestId`` header); ``model`` is
  the model requested (the body's, else the URL's: Gemini, Bedrock, Azure), ``provider``
  the format's provider name. ``stream=True`` uses ``b.stream_request`` and reads the
  server-sent events (``time_to_first_chunk``; the usage when the stream ends, a count a
  later event lacks kept from an earlier one).
* :func:`record_response` (:func:`record_openai_response` for OpenAI bodies) fills a call of
  :meth:`Emitter.call` from a response, for code that does its own sending.
* Response builders for respx routes, per provider (:mod:`.modular_responses`, re-exported
  here): ``openai_*``, ``openai_responses_*``, ``anthropic_*``, ``google_*``, ``bedrock_*``
  (``_body``, ``_response``, ``_error_response``, ``_stream_events``, ``_stream_response``).

Errors. A non-2xx response raises ``httpx.HTTPStatusError`` (``raise_for_status``, body
read so that ``exc.response.text`` is available); transport errors (``httpx.ReadTimeout``,
``httpx.ConnectError``, a broken stream's ``httpx.RemoteProtocolError``) and parse errors
(``b.parse`` raises ``baml_py.errors.BamlError``) propagate as they are. In every case an
exception event carries the very exception, which is then re-raised unchanged. Its tokens
follow the billing rule: 0/0 for an error status >= 400 or an ``httpx.ConnectError`` (not
billed), the answer's usage for a parse error after a 2xx answer, ``None`` for a timeout
or a broken stream (billing unknown, as baml-py's Collector reports it).

baml-py 0.226.3 (measured): ``b.stream_request`` refuses ``aws-bedrock`` ("AWS Bedrock modular
streaming is not supported"), and ``b.request`` of an ``aws-bedrock`` client is unsigned and
goes to ``https://bedrock-runtime.{region}.amazonaws.com`` whatever its ``endpoint_url``.

Example with respx::

    route = respx.post("https://api.anthropic.com/v1/messages")
    route.side_effect = [anthropic_error_response(429), anthropic_response('{"name": "Ann"}', usage=(120, 30, 20))]
    with httpx.Client() as http:
        with pytest.raises(httpx.HTTPStatusError):
            call_modular(b, "ExtractResume", arguments={"resume": "..."}, http_client=http)
        resume = call_modular(b, "ExtractResume", arguments={"resume": "..."}, http_client=http)
"""

from __future__ import annotations

import inspect
import urllib.parse
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from . import modular_responses
from ._validate import check_callable, check_mapping, check_str, fail, short_repr
from .collector_log import NOT_BILLED
from .contract import Usage
from .emitter import Call, Emitter
from .modular_responses import (  # noqa: F401 - re-exported through __all__
    EventStream,
    anthropic_body,
    anthropic_error_response,
    anthropic_response,
    anthropic_stream_events,
    anthropic_stream_response,
    bedrock_body,
    bedrock_error_response,
    bedrock_response,
    google_body,
    google_error_response,
    google_response,
    google_stream_events,
    google_stream_response,
    openai_body,
    openai_chat_response,
    openai_error_response,
    openai_response,
    openai_responses_body,
    openai_responses_error_response,
    openai_responses_response,
    openai_responses_stream_events,
    openai_responses_stream_response,
    openai_stream_events,
    openai_stream_response,
)
from .wire import anthropic, bedrock, common, google, openai, openai_responses

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = [
    "call_modular",
    "acall_modular",
    "WireFormat",
    "FORMATS",
    "PROVIDER_FORMATS",
    "wire_format",
    "record_response",
    "record_openai_response",
    "openai_usage",
]
__all__ += modular_responses.__all__  # the response builders, re-exported

DEFAULT_MODEL = "gpt-4o-mini"


# --------------------------------------------------------------------------- wire formats


FORMATS: tuple[tuple[str, Any], ...] = (
    ("openai", openai),
    ("openai-responses", openai_responses),
    ("anthropic", anthropic),
    ("google-ai", google),
    ("aws-bedrock", bedrock),
)
"""``(provider, wire module)``: a request URL is read in the first format whose
``is_chat_path`` accepts the longest tail of its path (as the fake LLM server serves it)."""

PROVIDER_FORMATS: dict[str, Any] = {
    "openai": openai,
    "openai-generic": openai,
    "azure-openai": openai,
    "ollama": openai,
    "openai-responses": openai_responses,
    "anthropic": anthropic,
    "google-ai": google,
    "aws-bedrock": bedrock,
}
"""``provider -> wire module``, for a request whose URL path names no format."""


class WireFormat(NamedTuple):
    """How to read one request's answers: the provider's name, its ``wire`` module, and the
    tail of the URL path that format serves (``""`` when the path names none)."""

    provider: str | None
    wire: Any
    path: str


def wire_format(url: Any, provider: str | None = None) -> WireFormat:
    """The wire format of a request to ``url`` (a str or ``httpx.URL``).

    The longest tail of the URL's path that a format serves names it (a base URL may add a
    prefix, e.g. a proxy's or the fake server's ``/_c/{client}`` tag); ``provider`` (the
    client's provider, when given) is its name, else the format's (``azure-openai`` for a
    deployment's chat completions). A path no format serves is read in ``provider``'s format
    (:data:`PROVIDER_FORMATS`), else as OpenAI chat completions.
    """
    check_str(provider, f"wire_format: provider={short_repr(provider)}", optional=True)
    path = urllib.parse.urlsplit(str(url)).path if url is not None else ""
    start = 0
    while start >= 0:
        tail = path[start:]
        for name, wire in FORMATS:
            if wire.is_chat_path(tail):
                if provider is None:
                    provider = "azure-openai" if wire is openai and openai.path_deployment(tail) else name
                return WireFormat(provider, wire, tail)
        start = path.find("/", start + 1)
    return WireFormat(provider, PROVIDER_FORMATS.get(provider or "", openai), "")


# --------------------------------------------------------------------------- reading responses


def openai_usage(body: Any) -> Usage | None:
    """The :class:`Usage` of an OpenAI JSON body or usage chunk (``None`` when it has none).

    ``usage.prompt_tokens`` → input, ``completion_tokens`` → output,
    ``prompt_tokens_details.cached_tokens`` → cached input; a missing count stays ``None``.
    """
    counts = openai.response_usage(body)
    return None if counts is None else Usage(*counts)


def _record_body(call: Call, wire: Any, body: Mapping[str, Any], headers: Any) -> None:
    """Usage, ``request_id`` (the body's id, else the format's request-id header) and ``response_model``."""
    counts = wire.response_usage(body)
    if counts is not None:
        call.set_usage(Usage(*counts))
    extra: dict[str, Any] = {}
    request_id = wire.response_id(body)
    if request_id is None and headers is not None:
        request_id = headers.get(wire.REQUEST_ID_HEADER) or None
    if request_id is not None:
        extra["request_id"] = request_id
    model = wire.response_model(body)
    if model is not None:
        extra["response_model"] = model
    if extra:
        call.set(**extra)


def record_response(call: Call, response: Any, *, provider: str | None = None) -> None:
    """Set usage, ``request_id`` and ``response_model`` on ``call`` from an answer in any wire format.

    ``response`` is an ``httpx.Response`` (its request's URL names the format: see
    :func:`wire_format`) or its decoded JSON body (read in ``provider``'s format, OpenAI chat
    completions when ``None``). A body that is not JSON sets nothing. ``model`` and
    ``provider`` are not touched: :func:`call_modular` sets them from the request.
    """
    check_str(provider, f"record_response: provider={short_repr(provider)}", optional=True)
    headers = None
    if isinstance(response, Mapping):
        body: Any = response
        wire = PROVIDER_FORMATS.get(provider or "", openai)
    else:
        try:
            url = response.request.url
        except Exception:  # noqa: BLE001 - an httpx.Response built without a request
            url = None
        wire = wire_format(url, provider).wire if url is not None else PROVIDER_FORMATS.get(provider or "", openai)
        headers = getattr(response, "headers", None)
        try:
            body = response.json()
        except Exception:
            return
    if isinstance(body, Mapping):
        _record_body(call, wire, body, headers)


def record_openai_response(call: Call, response: Any) -> None:
    """Set usage, ``request_id`` (the provider's ``id``) and ``response_model`` on ``call``.

    ``response`` is an ``httpx.Response`` or its decoded JSON body, read as OpenAI chat
    completions (:func:`record_response` reads every format). A body that is not JSON (or an
    error body) sets nothing. ``model`` is not touched: it is the model the request asked for.
    """
    if isinstance(response, Mapping):
        body: Any = response
    else:
        try:
            body = response.json()
        except Exception:
            return
    if isinstance(body, Mapping):
        _record_body(call, openai, body, None)


class _StreamState:
    """Accumulates a server-sent-event stream of one wire format: text, id, model, usage."""

    def __init__(self, call: Call, wire: Any, on_text: Callable[[str], None] | None) -> None:
        self.call = call
        self.wire = wire
        self.text = ""
        self.on_text = on_text
        self.done = False
        self.need_id = True
        self.need_model = True
        self.counts: tuple[int | None, ...] | None = None

    def feed_line(self, line: str) -> None:
        if self.done:
            return
        wire = self.wire
        event = wire.decode_event(line)  # a malformed event raises json.JSONDecodeError (a ValueError)
        if event is None:
            return
        if type(event) is not dict:
            if event == common.DONE:
                self.done = True
            return
        call = self.call
        if self.need_id:
            request_id = wire.response_id(event)
            if request_id is not None:
                self.need_id = False
                call.set(request_id=request_id)
        if self.need_model:
            model = wire.response_model(event)
            if model is not None:
                self.need_model = False
                call.set(response_model=model)
        counts = wire.response_usage(event)
        if counts is not None:
            old = self.counts
            self.counts = counts if old is None else tuple(n if n is not None else o for n, o in zip(counts, old))
        for piece in wire.event_pieces(event):
            call.mark_first_chunk()
            self.text += piece
            if self.on_text is not None:
                self.on_text(self.text)

    def finish(self, headers: Any) -> None:
        """The stream ended whole: its usage stands; a response id from the headers if none came."""
        if self.counts is not None:
            self.call.set_usage(Usage(*self.counts))
        if self.need_id and headers is not None:
            request_id = headers.get(self.wire.REQUEST_ID_HEADER)
            if request_id:
                self.call.set(request_id=request_id)


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

    __slots__ = ("emitter", "arguments", "build", "parse", "on_text", "call_kwargs", "provider")

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
        provider: str | None,
    ) -> None:
        self.provider: str | None = check_str(
            provider, f"provider={short_repr(provider)}", optional=True,
            expected="the client's provider (a non-empty str such as 'openai-generic') or None (read from the URL)",
        )
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


def _request_parts(call: Call, request: Any, provider: str | None) -> tuple[WireFormat, str, str, dict[str, str], Any]:
    body = request.body.json()
    url = request.url
    fmt = wire_format(url, provider)
    model = fmt.wire.request_model(body) or fmt.wire.path_model(fmt.path)
    if model is not None:
        call.set_model(model)
    # baml's own request id ("breq_..."), replaced by the provider's response id when one is served
    request_id = getattr(request, "id", None)
    call.set(num_attempts=1, request_id=request_id if isinstance(request_id, str) else None, provider=fmt.provider)
    return fmt, request.method or "POST", url, dict(request.headers), body


def _stream_state(call: Call, fmt: WireFormat, on_text: Callable[[str], None] | None) -> _StreamState:
    if not hasattr(fmt.wire, "decode_event"):
        raise ValueError(f"stream=True: the {fmt.provider or 'requested'} wire format has no server-sent events to read")
    return _StreamState(call, fmt.wire, on_text)


def _answer_text(call: Call, fmt: WireFormat, response: httpx.Response) -> str:
    """Record a (non-streamed) answer, raise for an error status, return the model's text.

    An error status >= 400 was not billed: its tokens are 0/0."""
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            _record_body(call, fmt.wire, body, response.headers)
    elif response.status_code >= 400:
        call.usage = NOT_BILLED
    response.raise_for_status()
    return fmt.wire.response_text(response.json())


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
    provider: str | None = None,
) -> Any:
    """Run a BAML function through the modular API with httpx, emitting the call contract.

    ``req = b.request.<function_name>(**arguments)`` (``b.stream_request`` when
    ``stream=True``), send it with ``http_client`` (an ``httpx.Client``; a fresh one when
    ``None``), read usage / ``request_id`` / ``response_model`` from the response in the
    request's wire format (:func:`wire_format`; ``provider``: the client's provider name,
    e.g. ``"ollama"``, else the format's), and return ``b.parse.<function_name>(text)``.
    With ``stream=True`` the SSE body is read as it arrives (``time_to_first_chunk``; usage
    when it ends)
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
    plan = _Plan(b, function_name, arguments, emitter, resource, action, client_module, stream, on_partial, provider)
    if inspect.iscoroutinefunction(plan.build):
        raise TypeError(f"call_modular({function_name!r}): b is an async client; use `await acall_modular(...)`")
    owned = http_client is None
    client = httpx.Client() if owned else http_client
    assert client is not None
    try:
        with plan.emitter.call(function_name, **plan.call_kwargs) as call:
            fmt, method, url, headers, body = _request_parts(call, plan.build(**plan.arguments), plan.provider)
            try:
                if not stream:
                    text = _answer_text(call, fmt, client.request(method, url, headers=headers, json=body))
                else:
                    state = _stream_state(call, fmt, plan.on_text)
                    with client.stream(method, url, headers=headers, json=body) as response:
                        if not response.is_success:
                            response.read()
                            _answer_text(call, fmt, response)
                        for line in response.iter_lines():
                            state.feed_line(line)
                        state.finish(response.headers)
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
    provider: str | None = None,
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
    plan = _Plan(b, function_name, arguments, emitter, resource, action, client_module, stream, on_partial, provider)
    owned = http_client is None
    client = httpx.AsyncClient() if owned else http_client
    assert client is not None
    try:
        async with plan.emitter.call(function_name, **plan.call_kwargs) as call:
            request = plan.build(**plan.arguments)
            if inspect.isawaitable(request):
                request = await request
            fmt, method, url, headers, body = _request_parts(call, request, plan.provider)
            try:
                if not stream:
                    text = _answer_text(call, fmt, await client.request(method, url, headers=headers, json=body))
                else:
                    state = _stream_state(call, fmt, plan.on_text)
                    async with client.stream(method, url, headers=headers, json=body) as response:
                        if not response.is_success:
                            await response.aread()
                            _answer_text(call, fmt, response)
                        async for line in response.aiter_lines():
                            state.feed_line(line)
                        state.finish(response.headers)
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
