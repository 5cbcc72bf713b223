"""Scripted failures for :class:`~pytest_baml_telemetry.fake.client.FakeBamlClient`.

Each function here returns a :class:`Fault`: a small description of an error
(which ``baml_py.errors`` class, which attributes, how long the call takes before it
fails). ``FakeBamlClient.fail(function_name, fault)`` scripts it; when a call uses it, the
fake builds a *fresh* instance of the **real** ``baml_py.errors`` class with the
attributes and the message layout real baml-py 0.226.3 gives it (written down from the
runtime on ``FakeLLMServer``; the texts are in :mod:`.fault_messages` and
``tests/test_parity_faults.py`` compares both paths), so
``except BamlClientHttpError as e: e.status_code`` behaves as in production::

    fake.fail("ExtractResume", faults.rate_limited())
    fake.fail("ExtractResume", faults.timeout(after="30s"))
    fake.fail("ExtractResume", faults.validation_error(raw_output="not json", usage=(120, 8)))
    fake.fail("ExtractResume", faults.attempts(faults.rate_limited(), faults.http_error(503)))

What real baml-py 0.226.3 sets:

=============================  ==========================================================
``BamlClientHttpError``        ``client_name``, ``status_code``, ``message``
                               (``"Request failed with status code: 429 Too Many Requests.
                               <body>"``; on a stream ``"..., \\n<body>"``),
                               ``detailed_message`` (``'LLM client "C" failed with status
                               code: RateLimited (429)\\nMessage: <message>'``). Its own
                               codes: 2 (a cut connection, a stream event that is not
                               JSON) and 200 (a body that is not JSON).
``BamlTimeoutError``           ``client_name``, ``message`` (``"Request timed out"``; idle:
                               ``"Timeout: No data received within Nms (idle_timeout)"``)
                               and *no* ``detailed_message``
``BamlValidationError``        ``prompt``, ``message``, ``raw_output``, ``detailed_message``
                               (``"Parsing error: <message>\\nPrompt: <prompt>\\nRaw
                               Response: <raw_output>"``)
``BamlClientFinishReasonError`` ``message`` (``"Finish reason not allowed"``), ``prompt``,
                               ``raw_output``, ``finish_reason``, ``detailed_message``
                               ending ``"\\nFinish Reason: <reason>"``
``BamlAbortError``             only its message: ``"Operation was aborted"`` (aborted before
                               the call), ``"AbortError"`` (aborted in flight)
=============================  ==========================================================

After several attempts (a ``retry_policy``, a ``fallback`` client) the error is the last
attempt's, its ``detailed_message`` ``"N failed attempts:\\n\\nAttempt 0: ..."``.
baml-py ignores ``Retry-After``: no error carries it (``rate_limited(retry_after=)`` is
kept on the fault as ``fault.retry_after``, the header a server would send).
``http_error(..., provider=...)`` / ``rate_limited(provider=...)`` shape an error status as
that provider's client reports it: its own error body, and for ``"aws-bedrock"`` the AWS
SDK's ``ServiceError(...)`` message with a 400 read as 401 (:func:`.fault_messages.provider_error`).

Besides the exception, a fault says what the fake client reports about the call:
``usage`` (``Usage(0, 0, 0)`` when known not to be billed: an HTTP status >= 400, a
refused connection, a connect timeout, an abort before the call; ``None`` when unknown;
``usage=`` where the provider answered), ``num_attempts``, ``client_name`` and
``attempt_latencies_ns``.

``FAULTS`` is the one registry of faults: one :class:`FaultKind` entry per fault (its name,
its builder, and the example arguments property-based tests draw it with). A new fault is
a builder function here plus its entry in ``FAULTS``; ``make``, ``fail(fn, "name")`` and
the strategies all read it from there.

``baml_py`` is imported only when an exception is built.
"""

from __future__ import annotations

import difflib
import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._validate import check_count, check_str, fail, is_int, short_repr
from ..clock import DurationLike, parse_duration_ns
from ..contract import Usage
from . import fault_messages as texts
from .fault_model import (
    DEFAULT_CLIENT_NAME,
    NOT_BILLED,
    Fault,
    FaultArgument,
    FaultKind,
    build_cancelled,
    build_finish_reason,
    build_http,
    build_message_only,
    build_timeout,
    build_validation,
    error_classes,
    sum_usage,
)

__all__ = [
    "DEFAULT_CLIENT_NAME",
    "Fault",
    "FAULTS",
    "FaultArgument",
    "FaultKind",
    "abort",
    "attempts",
    "cancelled",
    "client_error",
    "coerce_error",
    "connection_refused",
    "finish_reason_error",
    "http_error",
    "invalid_argument",
    "make",
    "malformed",
    "rate_limited",
    "stream_failure",
    "timeout",
    "validation_error",
]

_BAML_STATUS_CODES = (2, 200)
"""Status codes baml-py itself puts on ``BamlClientHttpError``: 2 (transport), 200 (unparseable body)."""

_TIMEOUT_KINDS = ("request", "connect", "idle", "total")


def _after_ns(after: DurationLike | None, fault: str) -> int | None:
    if after is None:
        return None
    return parse_duration_ns(after, name=f"faults.{fault}(): after")


# The isinstance guard keeps the message (and its repr) off the path of a valid value.
def _opt_str(value: Any, name: str, fault: str) -> str | None:
    if value is not None and not isinstance(value, str):
        check_str(value, f"faults.{fault}({name}={value!r})", empty=True, optional=True)
    return value


def _str(value: Any, name: str, fault: str) -> str:
    if not isinstance(value, str):
        check_str(value, f"faults.{fault}({name}={value!r})", empty=True)
    return value


def _shown(*positional: Any, **keywords: Any) -> str:
    """The arguments a fault was built with, for its repr (``None`` values left out)."""
    parts = [repr(p) for p in positional if p is not None]
    for key, value in keywords.items():
        if value is None:
            continue
        parts.append(f"{key}={short_repr(value, 60)}")
    return ", ".join(parts)


# ---------------------------------------------------------------------- faults


def http_error(
    status_code: int,
    *,
    retry_after: DurationLike | None = None,
    message: str | None = None,
    body: str | Mapping[str, Any] | list[Any] | None = None,
    after: DurationLike | None = None,
    client_name: str | None = None,
    provider: str | None = None,
) -> Fault:
    """A ``BamlClientHttpError`` with ``status_code``: an HTTP status (100..599) or one of the
    codes baml-py itself uses, 2 (the connection broke while reading the body) and 200 (a
    body that is not JSON, as :func:`malformed`).

    ``body`` is the response body the provider sent (a dict/list, or a str; default an
    OpenAI-style error), quoted in ``message`` as baml-py does: ``"Request failed with
    status code: 500 Internal Server Error. {body}"``, on a stream ``"..., \\n{body}"``.
    ``message`` replaces the whole message. ``retry_after`` (a duration) is only kept as
    ``fault.retry_after``: baml-py ignores the header, so the error never carries it.
    ``after`` is the latency before the failure. ``client_name`` defaults to the call's
    client (``with_options(client=...)``) or ``"FakeClient"``. A status >= 400 is not
    billed (``usage`` 0/0).

    ``provider`` (a provider ``FakeLLMServer`` speaks) shapes an error status >= 400 as that
    provider's client reports it (measured with baml-py 0.226.3): the default body is the
    provider's own error body (Anthropic's ``{"type": "error", ...}``, Google's, ...); with
    ``"aws-bedrock"`` the message is the AWS SDK's ``ServiceError(...)`` dump and a 400
    (``ValidationException``) is reported as status 401 (a ``body`` is then ``{"message": ...}``).
    """
    return _http_error("http_error", status_code, retry_after, message, body, after, client_name, provider)


def _http_error(
    owner: str, status_code: Any, retry_after: Any, message: Any, body: Any, after: Any, client_name: Any,
    provider: Any = None,
) -> Fault:
    """:func:`http_error` for ``faults.<owner>()``, which its error messages name."""
    where = f"faults.{owner}(status_code={status_code!r})"
    if not is_int(status_code):
        fail(TypeError, where, "an int HTTP status code in 100..599, or 2 or 200 (baml-py's own codes)")
    if not (100 <= status_code <= 599 or status_code in _BAML_STATUS_CODES):
        fail(ValueError, where, "an HTTP status code in 100..599, or 2 or 200 (baml-py's own codes)")
    _opt_str(message, "message", owner)
    _opt_str(client_name, "client_name", owner)
    if body is not None and not isinstance(body, (str, Mapping, list)):
        fail(TypeError, f"faults.{owner}(body={short_repr(body)})", "a str, a dict, a list or None")
    retry_ns = None if retry_after is None else parse_duration_ns(retry_after, name=f"faults.{owner}(): retry_after")
    after_ns = _after_ns(after, owner)
    shown = _shown(
        status_code, retry_after=retry_after, message=message, body=body, after=after, client_name=client_name, provider=provider
    )
    if provider is not None:
        from .server_clients import check_provider

        check_provider(provider, f"faults.{owner}(provider={short_repr(provider)})")
        if message is None and status_code >= 400:  # the provider's body; Bedrock: its SDK's status and message
            status_code, body, message = texts.provider_error(owner, status_code, body, provider, retry_ns)
    if status_code == 200 and message is None:
        fault = _malformed(owner, "this is not JSON {" if body is None else body, None, after_ns, client_name, status_code)
        fault.name, fault._shown = "http_error", shown
        return fault
    attributes: dict[str, Any] = {"client_name": client_name, "status_code": status_code, "message": message}
    stream: dict[str, Any] = {}
    if status_code == 2:
        if message is None:
            attributes["message"] = texts.READ_BODY_CUT
            stream = {"message": texts.STREAM_CUT, "code_name": texts.code_name(2, bad_response=True)}
    elif message is None:
        if body is None:
            phrase = texts.reason_phrase(status_code)
            body = {"error": {"message": phrase, "type": "scripted_by_fake_baml_client"}}
        plain = body
        if isinstance(body, str):
            try:
                plain = json.loads(body)
            except ValueError:  # not JSON: outside a stream the runtime reports the parse failure
                plain = None
        if plain is None:
            attributes.update(
                message=None, raw_response=body, parse_error=texts.serde_parse_error(body), latency_ns=after_ns
            )
        else:
            attributes["message"] = texts.http_message(status_code, texts.body_text(plain, streaming=False), streaming=False)
        stream = {"message": texts.http_message(status_code, texts.body_text(body, streaming=True), streaming=True)}
    return Fault(
        "http_error",
        "BamlClientHttpError",
        attributes,
        build_http,
        after_ns=after_ns,
        usage=NOT_BILLED if status_code >= 400 else None,
        stream_attributes=stream or None,
        retry_after=None if retry_ns is None else retry_ns / 1_000_000_000,
        shown=shown,
    )


def rate_limited(
    *,
    retry_after: DurationLike | None = None,
    message: str | None = None,
    body: str | Mapping[str, Any] | list[Any] | None = None,
    after: DurationLike | None = None,
    client_name: str | None = None,
    provider: str | None = None,
) -> Fault:
    """A 429 ``BamlClientHttpError`` (see :func:`http_error`, also for ``provider``). ``retry_after``
    shapes only a scripted server response (``fault.retry_after``); the raised error never carries it."""
    fault = _http_error("rate_limited", 429, retry_after, message, body, after, client_name, provider)
    fault.name = "rate_limited"
    fault._shown = _shown(
        retry_after=retry_after, message=message, body=body, after=after, client_name=client_name, provider=provider
    )
    return fault


def _malformed(owner: str, body: Any, parse_error: Any, after_ns: int | None, client_name: Any, code: int) -> Fault:
    if not isinstance(body, str):
        body = json.dumps(body) if isinstance(body, (Mapping, list)) else body
        _str(body, "body", owner)
    _opt_str(parse_error, "parse_error", owner)
    error = texts.serde_parse_error(body) if parse_error is None else parse_error
    return Fault(
        "malformed",
        "BamlClientHttpError",
        {
            "client_name": client_name, "status_code": code, "message": None, "raw_response": body,
            "parse_error": error, "latency_ns": after_ns,
        },
        build_http,
        after_ns=after_ns,
        stream_attributes={
            "status_code": 2, "message": f"Failed to parse SSE data as JSON: {error}",
            "code_name": texts.code_name(2, bad_response=True),
        },
    )


def malformed(
    body: str = "this is not JSON {",
    *,
    parse_error: str | None = None,
    after: DurationLike | None = None,
    client_name: str | None = None,
) -> Fault:
    """A response that is not JSON (``FakeLLMServer.malformed``): a ``BamlClientHttpError``
    with ``status_code`` 200 and ``"LLM call failed: LLMErrorResponse { ... }"``; on a stream
    ``status_code`` 2 and ``"Failed to parse SSE data as JSON: ..."``.

    ``parse_error`` replaces the JSON parser's complaint (default: what serde_json says
    about ``body``, e.g. ``"expected ident at line 1 column 2"``). Billing unknown.
    """
    _str(body, "body", "malformed")
    if parse_error is None:
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            fail(ValueError, f"faults.malformed(body={short_repr(body)}) is valid JSON", "a body that does not parse")
    fault = _malformed("malformed", body, parse_error, _after_ns(after, "malformed"), _opt_str(client_name, "client_name", "malformed"), 200)
    fault._shown = _shown(
        None if body == "this is not JSON {" else body, parse_error=parse_error, after=after, client_name=client_name
    )
    return fault


def timeout(
    after: DurationLike | None = None,
    *,
    kind: str = "request",
    limit: DurationLike | None = None,
    message: str | None = None,
    client_name: str | None = None,
) -> Fault:
    """A ``BamlTimeoutError`` raised ``after`` the given time (e.g. ``timeout(after="30s")``).

    ``kind`` is the limit that fired, each with baml-py's message: ``"request"``
    (``request_timeout_ms``) and ``"connect"`` (``connect_timeout_ms``): ``"Request timed
    out"`` both, so production cannot tell them apart and their billing is unknown; ``"idle"`` (``idle_timeout_ms``, a stream that
    went quiet): ``"Timeout: No data received within {ms}ms (idle_timeout)"``; ``"total"``
    (a composite client's ``total_timeout_ms``): ``"Request timed out after {ms}ms"``.
    ``{ms}`` is ``limit`` (default ``after``). Like real baml-py the error carries only
    ``client_name`` and ``message`` (no ``detailed_message``); ``message`` replaces it.
    """
    if kind not in _TIMEOUT_KINDS:
        fail(ValueError, f"faults.timeout(kind={short_repr(kind)})", f"one of {', '.join(map(repr, _TIMEOUT_KINDS))}")
    _opt_str(message, "message", "timeout")
    _opt_str(client_name, "client_name", "timeout")
    after_ns = _after_ns(after, "timeout")
    limit_ns = after_ns if limit is None else parse_duration_ns(limit, name="faults.timeout(): limit")
    shown_message = message
    if message is None:
        if kind in ("request", "connect"):
            message = texts.REQUEST_TIMED_OUT
        elif limit_ns is None:
            raise TypeError(f"faults.timeout(kind={kind!r}): give after= or limit= (the {kind}_timeout_ms that fired)")
        elif kind == "idle":
            message = texts.idle_timeout_message(limit_ns // 1_000_000)
        else:
            message = texts.total_timeout_message(limit_ns // 1_000_000)
    return Fault(
        "timeout",
        "BamlTimeoutError",
        {"client_name": client_name, "message": message},
        build_timeout,
        after_ns=after_ns,
        usage=None,  # as instrument(b) reports it: a connect timeout reads as a request timeout
        shown=_shown(
            after, kind=None if kind == "request" else kind, limit=limit, message=shown_message, client_name=client_name
        ),
    )


def connection_refused(*, after: DurationLike | None = None, client_name: str | None = None) -> Fault:
    """What baml-py raises when the provider refuses the connection (also on a stream): a
    ``BamlClientHttpError`` with ``status_code`` 503 and a ``reqwest`` error message. Not billed."""
    message = (
        'reqwest::Error { kind: Request, url: "http://127.0.0.1:9/v1/chat/completions", source: '
        'hyper_util::client::legacy::Error(Connect, ConnectError("tcp connect error", 127.0.0.1:9, '
        'Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })) }'
    )
    fault = http_error(503, message=message, after=after, client_name=client_name)
    fault.name = "connection_refused"
    fault._shown = _shown(after=after, client_name=client_name)
    return fault


def validation_error(
    *,
    raw_output: str = "",
    prompt: str = "",
    message: str | None = None,
    after: DurationLike | None = None,
    usage: Any = None,
) -> Fault:
    """A ``BamlValidationError``: the LLM answered (``raw_output``) but it did not parse.

    ``prompt`` is the rendered prompt real baml-py reports; ``message`` defaults to
    ``"Failed to parse LLM response: ..."``. ``usage`` (a ``Usage``, a dict or an
    ``(input, output)`` pair) is what the provider billed for the answer (default unknown).
    """
    _str(raw_output, "raw_output", "validation_error")
    _str(prompt, "prompt", "validation_error")
    _opt_str(message, "message", "validation_error")
    shown = _shown(raw_output=raw_output or None, prompt=prompt or None, message=message, after=after, usage=usage)
    if message is None:
        message = "Failed to parse LLM response: the raw output does not match the return type (scripted by FakeBamlClient)"
    return Fault(
        "validation_error",
        "BamlValidationError",
        {"prompt": prompt, "message": message, "raw_output": raw_output},
        build_validation,
        after_ns=_after_ns(after, "validation_error"),
        shown=shown,
        usage=Usage.coerce(usage, name="faults.validation_error(): usage"),
    )


def finish_reason_error(
    finish_reason: str | None = "length",
    *,
    raw_output: str = "",
    prompt: str = "",
    message: str | None = None,
    after: DurationLike | None = None,
    usage: Any = None,
) -> Fault:
    """A ``BamlClientFinishReasonError``: the LLM stopped for a ``finish_reason`` the client's
    ``finish_reason_allow_list`` / ``deny_list`` refuses.

    ``message`` defaults to baml-py's ``"Finish reason not allowed"``; ``detailed_message``
    ends with ``"\\nFinish Reason: {finish_reason}"``. ``usage`` is what the provider billed
    for the answer (default unknown).
    """
    _opt_str(finish_reason, "finish_reason", "finish_reason_error")
    _str(raw_output, "raw_output", "finish_reason_error")
    _str(prompt, "prompt", "finish_reason_error")
    _opt_str(message, "message", "finish_reason_error")
    shown = _shown(finish_reason, raw_output=raw_output or None, prompt=prompt or None, message=message, after=after, usage=usage)
    if message is None:
        message = texts.FINISH_REASON_NOT_ALLOWED
    return Fault(
        "finish_reason_error",
        "BamlClientFinishReasonError",
        {"prompt": prompt, "message": message, "raw_output": raw_output, "finish_reason": finish_reason},
        build_finish_reason,
        after_ns=_after_ns(after, "finish_reason_error"),
        shown=shown,
        usage=Usage.coerce(usage, name="faults.finish_reason_error(): usage"),
    )


def abort(*, after: DurationLike | None = None, message: str | None = None) -> Fault:
    """A ``BamlAbortError`` (an ``Exception``: its event ``kind`` is ``"error"``), as raised
    when a call's ``AbortController`` fires.

    Without ``after`` the controller was aborted before the call: ``"Operation was
    aborted"``, nothing sent, not billed. With ``after`` it fires in flight: baml-py's
    message is then ``"AbortError"`` (also for ``AbortController(timeout_ms=)``), billing
    unknown. ``message`` replaces the message.
    """
    _opt_str(message, "message", "abort")
    after_ns = _after_ns(after, "abort")
    default = texts.ABORTED_BEFORE if after_ns is None else texts.ABORTED_IN_FLIGHT
    return Fault(
        "abort", "BamlAbortError", {"message": default if message is None else message}, build_message_only,
        after_ns=after_ns, usage=NOT_BILLED if after_ns is None else None,
        num_attempts=None if after_ns is None else 1,  # aborted before the call: baml-py made no attempt
        shown=_shown(after=after, message=message),
    )


def client_error(message: str = "Client error (scripted by FakeBamlClient)", *, after: DurationLike | None = None) -> Fault:
    """A plain ``BamlClientError`` carrying only its message."""
    _str(message, "message", "client_error")
    return Fault(
        "client_error", "BamlClientError", {"message": message}, build_message_only,
        after_ns=_after_ns(after, "client_error"), shown=_shown(message, after=after),
    )


def invalid_argument(message: str = "Invalid argument (scripted by FakeBamlClient)", *, after: DurationLike | None = None) -> Fault:
    """A ``BamlInvalidArgumentError`` carrying only its message (raised before any request: not billed)."""
    _str(message, "message", "invalid_argument")
    return Fault(
        "invalid_argument", "BamlInvalidArgumentError", {"message": message}, build_message_only,
        after_ns=_after_ns(after, "invalid_argument"), shown=_shown(message, after=after), usage=NOT_BILLED,
    )


def cancelled(*, after: DurationLike | None = None, message: str | None = None) -> Fault:
    """An ``asyncio.CancelledError`` (a ``BaseException``: its event ``kind`` is ``"exit"``)."""
    _opt_str(message, "message", "cancelled")
    return Fault(
        "cancelled", "CancelledError", {"message": message}, build_cancelled, after_ns=_after_ns(after, "cancelled"),
        shown=_shown(after=after, message=message),
    )


def stream_failure(
    after_partials: int | None = None,
    *,
    error: Any = None,
    partials: Sequence[Any] | None = None,
    after: DurationLike | None = None,
    chunk_latency: Any = None,
) -> Fault:
    """A stream that yields some partials and then fails.

    Give the partial values with ``partials=[...]`` or only their number with
    ``after_partials=N`` (then each partial is ``None``); with both, they must agree.
    ``error`` is what is raised next (by ``get_final_response()``, as in baml-py, whose
    iteration ends quietly): a fault, an exception class or instance, or a fault name;
    default the cut connection baml-py reports, a ``BamlClientHttpError`` with
    ``status_code`` 2 and ``"Stream transport error: ..."``. ``after`` is the total latency
    and ``chunk_latency`` spaces the partials (see ``FakeBamlClient.respond``). A
    non-streaming call scripted with it just raises ``error`` (by default the non-streaming
    form, ``"Could not read response body: ..."``). Billing unknown once partials arrived.
    """
    check_count(after_partials, f"faults.stream_failure(after_partials={after_partials!r})", optional=True, expected="an int >= 0")
    if partials is not None:
        if isinstance(partials, (str, bytes)) or not isinstance(partials, Sequence):
            raise TypeError(f"faults.stream_failure(partials={partials!r}): expected a list of partial values")
        values = tuple(partials)
        if after_partials is not None and after_partials != len(values):
            raise ValueError(
                f"faults.stream_failure(after_partials={after_partials!r}, partials=<{len(values)} values>): "
                "they disagree; give one of them"
            )
    elif after_partials is None:
        raise TypeError("faults.stream_failure(): give after_partials=N or partials=[...]")
    else:
        values = (None,) * after_partials
    if chunk_latency is not None:
        gaps = chunk_latency if isinstance(chunk_latency, (list, tuple)) else [chunk_latency]
        if isinstance(chunk_latency, (list, tuple)) and len(gaps) != len(values):
            raise ValueError(
                f"faults.stream_failure(chunk_latency=...): {len(gaps)} durations for {len(values)} partials; "
                "expected one duration, or one per partial"
            )
        for gap in gaps:
            parse_duration_ns(gap, name="faults.stream_failure(): chunk_latency")
    if error is None:
        inner = http_error(2)
        inner.name = "stream_cut"
    else:
        inner = coerce_error(error, name="faults.stream_failure(error)")
        if inner.partials is not None:
            raise ValueError(f"faults.stream_failure(error={error!r}): a stream failure cannot wrap another stream failure")
    after_ns = _after_ns(after, "stream_failure")
    if after_ns is not None and inner.after_ns is not None:
        raise ValueError(
            f"faults.stream_failure(after={after!r}, error={inner!r}): both set a latency; give only one"
        )
    if after_ns is None:
        after_ns = inner.after_ns
    return Fault(
        "stream_failure",
        inner.error_class_name,
        inner.attributes,
        inner._builder,
        after_ns=after_ns,
        partials=values,
        chunk_latency=chunk_latency,
        inner=inner,
        error_class=inner._class,
        shown=_shown(len(values), error=None if error is None else inner, after=after, chunk_latency=chunk_latency),
        usage=None if values else inner.usage,
        num_attempts=inner.num_attempts,
        attempt_latencies_ns=inner.attempt_latencies_ns,
        stream_attributes=inner.stream_attributes,
    )


_NO_USAGE: Any = object()


def attempts(*faults: Any, usage: Any = _NO_USAGE) -> Fault:
    """One call that failed after several attempts (a ``retry_policy`` or a ``fallback``
    client): ``attempts(faults.rate_limited(), faults.http_error(503, client_name="B"))``.

    It raises the last attempt's error (its class and attributes, ``client_name`` of the
    last attempt) with ``detailed_message`` ``"N failed attempts:\\n\\nAttempt 0: ..."`` as
    baml-py writes it (a timeout keeps only its message). ``num_attempts`` is N,
    ``attempt_latencies_ns`` each attempt's ``after`` (the call lasts their sum).
    ``usage`` defaults to the attempts' summed usage (unknown if one is unknown); give it
    when the last attempt was answered and billed (a validation or finish-reason error).
    Each attempt is a fault, a fault name or an exception class; a stream failure may be last.
    """
    if len(faults) < 2:
        raise TypeError(f"faults.attempts(): expected two or more faults (one per attempt), got {len(faults)}")
    built = tuple(coerce_error(f, name=f"faults.attempts(attempt {i})") for i, f in enumerate(faults))
    for i, f in enumerate(built):
        if f.attempt_faults or (f.inner is not None and f.inner.attempt_faults):
            raise ValueError(f"faults.attempts(attempt {i}={f!r}): attempts cannot be nested; list every attempt once")
        if f.partials is not None and i != len(built) - 1:
            raise ValueError(f"faults.attempts(attempt {i}={f!r}): only the last attempt can be a stream failure")
    last = built[-1]
    coerced = sum_usage([f.usage for f in built]) if usage is _NO_USAGE else Usage.coerce(usage, name="faults.attempts(): usage")
    return Fault(
        "attempts",
        last.error_class_name,
        last.attributes if last.inner is None else last.inner.attributes,
        last._builder,
        partials=last.partials,
        chunk_latency=last.chunk_latency,
        error_class=last._class,
        shown=", ".join(repr(f) for f in built) + ("" if usage is _NO_USAGE else f", usage={short_repr(usage, 60)}"),
        usage=coerced,
        num_attempts=len(built),
        attempt_latencies_ns=tuple(f.after_ns or 0 for f in built),
        attempt_faults=built,
    )


# In the order the strategies draw them (the first is the one shrunk to).
FAULTS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind(timeout),
        FaultKind(http_error, [FaultArgument("status_code", (400, 401, 403, 404, 408, 500, 502, 503, 529, 2, 200))]),
        FaultKind(rate_limited, [FaultArgument("retry_after", ("1s", "2s", "30s"), optional=True)]),
        FaultKind(connection_refused),
        FaultKind(malformed),
        FaultKind(validation_error, [FaultArgument("raw_output", ("", "not json", '{"name": 1}'))]),
        FaultKind(finish_reason_error, [FaultArgument("finish_reason", ("length", "content_filter"))]),
        FaultKind(abort),
        FaultKind(client_error),
        FaultKind(invalid_argument),
        FaultKind(cancelled),
        FaultKind(stream_failure, drawn=False),
        FaultKind(attempts, drawn=False),
    )
}
"""Fault names (as accepted by :func:`make` and ``fail(fn, "name")``) to their
:class:`FaultKind` entries, each callable as the fault's builder."""


def make(name: str, *args: Any, **kwargs: Any) -> Fault:
    """Build the fault called ``name`` (``make("rate_limited", retry_after="2s")``).

    An unknown name raises ``ValueError`` listing the known ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"faults.make({name!r}): expected a fault name, one of {sorted(FAULTS)}")
    kind = FAULTS.get(name)
    if kind is None:
        close = difflib.get_close_matches(name, FAULTS, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "."
        raise ValueError(f"unknown fault {name!r}{hint} Known faults: {', '.join(sorted(FAULTS))}")
    builder = kind.build
    try:
        inspect.signature(builder).bind(*args, **kwargs)
    except TypeError as exc:
        required = [
            p.name
            for p in inspect.signature(builder).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        needs = f"; it needs {', '.join(required)} (build it with faults.{name}(...))" if required else ""
        raise TypeError(f"fault {name!r} cannot be built from these arguments: {exc}{needs}") from None
    return builder(*args, **kwargs)


def _instantiate(cls: type[BaseException]) -> BaseException:
    try:
        return cls()
    except TypeError:
        return cls(f"{cls.__name__} (scripted by FakeBamlClient)")


def _class_fault(cls: type[BaseException]) -> Fault:
    """A fault for an exception class: baml-py's own classes get realistic attributes."""
    if getattr(cls, "__module__", "").startswith("baml_py"):
        errors = error_classes()
        by_class: dict[Any, Callable[[], Fault]] = {
            errors.BamlClientHttpError: lambda: http_error(500),
            errors.BamlTimeoutError: timeout,
            errors.BamlValidationError: validation_error,
            errors.BamlClientFinishReasonError: finish_reason_error,
            errors.BamlAbortError: abort,
            errors.BamlInvalidArgumentError: invalid_argument,
            errors.BamlClientError: client_error,
            errors.BamlError: lambda: Fault(
                "BamlError", "BamlError", {"message": "BamlError (scripted by FakeBamlClient)"}, build_message_only,
                shown="",
            ),
        }
        factory = by_class.get(cls)
        if factory is not None:
            return factory()
    return Fault(cls.__qualname__, cls.__qualname__, {}, lambda c, _a: _instantiate(c), error_class=cls, shown="")


def _instance_fault(exc: BaseException) -> Fault:
    cls = type(exc)
    return Fault("exception", cls.__qualname__, {}, lambda _c, _a: exc, error_class=cls, shown=repr(exc))


def coerce_error(error: Any, *, name: str = "error") -> Fault:
    """Turn what ``fail`` accepts into a :class:`Fault` (callables excepted).

    Accepts a :class:`Fault`, a fault name (``"timeout"``), an exception class (baml-py
    classes get realistic attributes; other classes are instantiated with no arguments,
    or with a message if they require one) or an exception instance (raised as it is,
    the same object every time).
    """
    if isinstance(error, Fault):
        return error
    if isinstance(error, str):
        try:
            return make(error)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}={error!r}: {exc}") from None
    if isinstance(error, type) and issubclass(error, BaseException):
        return _class_fault(error)
    if isinstance(error, BaseException):
        return _instance_fault(error)
    raise TypeError(
        f"{name}={error!r} ({type(error).__name__}): expected a fault (faults.timeout(), "
        "faults.http_error(500), ...), a fault name, an exception class or instance, or a "
        "callable(**arguments) returning one of those"
    )
