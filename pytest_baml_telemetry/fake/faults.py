"""Scripted failures for :class:`~pytest_baml_telemetry.fake.client.FakeBamlClient`.

Each function here returns a :class:`Fault`: a small description of an error
(which ``baml_py.errors`` class, which attributes, how long the call takes before it
fails). ``FakeBamlClient.fail(function_name, fault)`` scripts it; when a call uses it, the
fake builds a *fresh* instance of the **real** ``baml_py.errors`` class with the
attributes real baml-py 0.226 sets, so ``except BamlClientHttpError as e: e.status_code``
behaves as in production::

    fake.fail("ExtractResume", faults.rate_limited(retry_after="2s"))
    fake.fail("ExtractResume", faults.timeout(after="30s"))
    fake.fail("ExtractResume", faults.validation_error(raw_output="not json", prompt="..."))

What real baml-py 0.226.3 sets (checked against the runtime talking to a local server):

=========================  ==============================================================
``BamlClientHttpError``    ``client_name``, ``status_code``, ``message``
                           (``"Request failed with status code: 429 Too Many Requests.
                           <body>"``), ``detailed_message`` (``'LLM client "C" failed with
                           status code: RateLimited (429)\\nMessage: <message>'``)
``BamlTimeoutError``       ``client_name``, ``message`` (``"Request timed out"``) and *no*
                           ``detailed_message``
``BamlValidationError``    ``prompt``, ``message``, ``raw_output``, ``detailed_message``
                           (``"Parsing error: <message>\\nPrompt: <prompt>\\nRaw Response:
                           <raw_output>"``)
``BamlAbortError``         only its message, ``"Operation was aborted"``
=========================  ==============================================================

``retry_after`` is an extension: real baml-py ignores the ``Retry-After`` header and does
not expose it. A fault scripted with ``retry_after=`` sets the attribute ``retry_after``
(seconds, a float) on the exception and appends a ``Retry-After: <whole seconds, rounded
up>`` line to ``detailed_message``, so retry code can honour it with
``getattr(exc, "retry_after", None)`` (which is ``None`` against real baml-py).

``FAULTS`` is the one registry of faults: one :class:`FaultKind` entry per fault (its name,
its builder, and the example arguments property-based tests draw it with). A new fault is
a builder function here plus its entry in ``FAULTS``; ``make``, ``fail(fn, "name")`` and
the strategies all read it from there.

``baml_py`` is imported only when an exception is built.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import http
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._validate import check_count, check_str, fail, is_int, short_repr
from ..clock import DurationLike, parse_duration_ns
from ..contract import Usage

__all__ = [
    "DEFAULT_CLIENT_NAME",
    "Fault",
    "FAULTS",
    "FaultArgument",
    "FaultKind",
    "abort",
    "cancelled",
    "client_error",
    "coerce_error",
    "connection_refused",
    "finish_reason_error",
    "http_error",
    "invalid_argument",
    "make",
    "rate_limited",
    "stream_failure",
    "timeout",
    "validation_error",
]

DEFAULT_CLIENT_NAME = "FakeClient"
"""``client_name`` of built errors when neither the fault nor ``with_options(client=...)`` names one."""

# How baml-py's runtime names status codes in ``detailed_message`` (from the 0.226.3 binary
# and checked for 401, 429, 500, 503; every other code is "Unspecified error code: N").
_CODE_NAMES = {
    401: "InvalidAuthentication (401)",
    403: "NotSupported (403)",
    408: "Timeout (408)",
    429: "RateLimited (429)",
    500: "ServerError (500)",
    503: "ServiceUnavailable (503)",
}

_NO_ARG = object()

_NOT_BILLED = Usage(0, 0, 0)
"""The usage of a failure known not to be billed (an HTTP status >= 400, a refused connection)."""


def _error_classes() -> Any:
    import baml_py.errors

    return baml_py.errors


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


class Fault:
    """A scripted failure: the exception to raise and the latency before it.

    Build one with the functions of this module (``timeout``, ``http_error``, ...), not
    directly. Attributes:

    - ``name``: the fault's name (``"timeout"``, ``"http_error"``, ...).
    - ``error_class_name``: the exception class (a name in ``baml_py.errors``, or a
      builtin such as ``"CancelledError"``); ``error_class`` resolves it.
    - ``attributes``: the attributes the raised exception gets (``status_code``,
      ``message``, ...). ``client_name`` is filled at call time when not given.
    - ``after_ns`` / ``after``: the scripted latency before the failure (``None``: the
      one given to ``fail(latency=...)``, else 0).
    - ``partials``: for :func:`stream_failure`, the partial values a stream yields before
      failing (``None`` otherwise); ``inner`` is the fault it then raises.
    - ``usage``: the provider's token usage for the failed call: a ``Usage`` (``Usage(0, 0,
      0)`` for a failure known not to be billed: an HTTP status >= 400, a refused
      connection), or ``None`` when unknown (a timeout after the request was sent, a cut
      stream, an abort in flight, or a fault that answered without ``usage=``).
    - ``num_attempts``: how many attempts the call made (1, or N for :func:`attempts`).
    - ``client_name``: the client the (last) attempt used, or ``None`` (the call's client).
    - ``attempt_latencies_ns``: for :func:`attempts`, each attempt's latency (ns); else ``()``.
    """

    __slots__ = (
        "name", "error_class_name", "attributes", "after_ns", "partials", "chunk_latency", "inner", "_builder", "_class",
        "_shown", "usage", "num_attempts", "attempt_latencies_ns", "stream_attributes",
    )

    def __init__(
        self,
        name: str,
        error_class_name: str,
        attributes: Mapping[str, Any],
        builder: Callable[[type[BaseException], dict[str, Any]], BaseException],
        *,
        after_ns: int | None = None,
        partials: tuple[Any, ...] | None = None,
        chunk_latency: Any = None,
        inner: Fault | None = None,
        error_class: type[BaseException] | None = None,
        shown: str | None = None,
        usage: Usage | None = None,
        num_attempts: int = 1,
        attempt_latencies_ns: tuple[int, ...] = (),
        stream_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.error_class_name = error_class_name
        self.attributes = dict(attributes)
        self.after_ns = after_ns
        self.partials = partials
        self.chunk_latency = chunk_latency
        self.inner = inner
        self._builder = builder
        self._class = error_class
        self._shown = shown
        self.usage = usage
        self.num_attempts = num_attempts
        self.attempt_latencies_ns = attempt_latencies_ns
        self.stream_attributes = None if stream_attributes is None else dict(stream_attributes)

    @property
    def client_name(self) -> str | None:
        """The client the (last) attempt used, as scripted; ``None``: the call's client."""
        value = self.attributes.get("client_name")
        return value if isinstance(value, str) else None

    @property
    def after(self) -> float | None:
        """The scripted latency in seconds, or ``None``."""
        return None if self.after_ns is None else self.after_ns / 1_000_000_000

    @property
    def error_class(self) -> type[BaseException]:
        """The exception class this fault raises (imports ``baml_py`` if needed)."""
        if self._class is not None:
            return self._class
        if self.error_class_name == "CancelledError":
            return asyncio.CancelledError
        return getattr(_error_classes(), self.error_class_name)

    def build(self, *, client_name: str | None = None) -> BaseException:
        """A fresh exception instance; ``client_name`` fills in a client the fault did not name."""
        attributes = dict(self.attributes)
        if "client_name" in attributes and attributes["client_name"] is None:
            attributes["client_name"] = client_name or DEFAULT_CLIENT_NAME
        return self._builder(self.error_class, attributes)

    def __repr__(self) -> str:
        if self._shown is not None:
            return f"{self.name}({self._shown})"
        return f"{self.name}()"


def _shown(*positional: Any, **keywords: Any) -> str:
    """The arguments a fault was built with, for its repr (``None`` values left out)."""
    parts = [repr(p) for p in positional if p is not None]
    for key, value in keywords.items():
        if value is None:
            continue
        parts.append(f"{key}={short_repr(value, 60)}")
    return ", ".join(parts)


# ---------------------------------------------------------------------- builders


def _build_http(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    code = a["status_code"]
    code_name = _CODE_NAMES.get(code, f"Unspecified error code: {code}")
    detailed = f'LLM client "{a["client_name"]}" failed with status code: {code_name}\nMessage: {a["message"]}'
    retry_after = a.get("retry_after")
    if retry_after is not None:
        detailed += f"\nRetry-After: {math.ceil(retry_after)}"
    exc = cls(a["client_name"], a["message"], code, detailed)
    if retry_after is not None:
        exc.retry_after = retry_after  # type: ignore[attr-defined]
    return exc


def _build_timeout(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    return cls(a["client_name"], a["message"])


def _build_validation(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    detailed = f"Parsing error: {a['message']}\nPrompt: {a['prompt']}\nRaw Response: {a['raw_output']}"
    return cls(a["prompt"], a["message"], a["raw_output"], detailed)


def _build_finish_reason(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    detailed = f"Finish reason error: {a['message']}\nPrompt: {a['prompt']}\nRaw Response: {a['raw_output']}"
    return cls(a["prompt"], a["message"], a["raw_output"], a["finish_reason"], detailed)


def _build_message_only(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    return cls(a["message"])


def _build_cancelled(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    return cls() if a.get("message") is None else cls(a["message"])


# ---------------------------------------------------------------------- faults


def http_error(
    status_code: int,
    *,
    retry_after: DurationLike | None = None,
    message: str | None = None,
    after: DurationLike | None = None,
    client_name: str | None = None,
) -> Fault:
    """A ``BamlClientHttpError`` with ``status_code`` (an int in 100..599).

    ``message`` replaces the exception's ``message`` (default: baml-py's ``"Request failed
    with status code: 500 Internal Server Error. {...}"``). ``retry_after`` (a duration)
    is exposed as ``exc.retry_after`` in seconds and as a ``Retry-After`` line of
    ``detailed_message``. ``after`` is the latency before the failure. ``client_name``
    defaults to the call's client (``with_options(client=...)``) or ``"FakeClient"``.
    """
    return _http_error("http_error", status_code, retry_after, message, after, client_name)


def _http_error(owner: str, status_code: Any, retry_after: Any, message: Any, after: Any, client_name: Any) -> Fault:
    """:func:`http_error` for ``faults.<owner>()``, which its error messages name."""
    if not is_int(status_code):
        fail(TypeError, f"faults.http_error(status_code={status_code!r})", "an int HTTP status code in 100..599")
    if not 100 <= status_code <= 599:
        fail(ValueError, f"faults.http_error(status_code={status_code!r})", "an HTTP status code in 100..599")
    _opt_str(message, "message", owner)
    _opt_str(client_name, "client_name", owner)
    retry_ns = None if retry_after is None else parse_duration_ns(retry_after, name=f"faults.{owner}(): retry_after")
    try:
        phrase = http.HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "<unknown status code>"
    shown_message = message
    if message is None:
        body = json.dumps({"error": {"message": phrase, "type": "scripted_by_fake_baml_client"}}, separators=(",", ":"))
        message = f"Request failed with status code: {status_code} {phrase}. {body}"
    return Fault(
        "http_error",
        "BamlClientHttpError",
        {
            "client_name": client_name,
            "status_code": status_code,
            "message": message,
            "retry_after": None if retry_ns is None else retry_ns / 1_000_000_000,
        },
        _build_http,
        after_ns=_after_ns(after, owner),
        usage=_NOT_BILLED if status_code >= 400 else None,
        shown=_shown(status_code, retry_after=retry_after, message=shown_message, after=after, client_name=client_name),
    )


def rate_limited(
    *,
    retry_after: DurationLike | None = None,
    message: str | None = None,
    after: DurationLike | None = None,
    client_name: str | None = None,
) -> Fault:
    """A 429 ``BamlClientHttpError`` (see :func:`http_error`), optionally with ``retry_after``."""
    fault = _http_error("rate_limited", 429, retry_after, message, after, client_name)
    fault.name = "rate_limited"
    fault._shown = _shown(retry_after=retry_after, message=message, after=after, client_name=client_name)
    return fault


def timeout(
    after: DurationLike | None = None,
    *,
    message: str = "Request timed out",
    client_name: str | None = None,
) -> Fault:
    """A ``BamlTimeoutError`` raised ``after`` the given time (e.g. ``timeout(after="30s")``).

    Like real baml-py it carries only ``client_name`` and ``message`` (no
    ``detailed_message``).
    """
    _str(message, "message", "timeout")
    _opt_str(client_name, "client_name", "timeout")
    return Fault(
        "timeout",
        "BamlTimeoutError",
        {"client_name": client_name, "message": message},
        _build_timeout,
        after_ns=_after_ns(after, "timeout"),
        shown=_shown(after, message=None if message == "Request timed out" else message, client_name=client_name),
    )


def connection_refused(*, after: DurationLike | None = None, client_name: str | None = None) -> Fault:
    """What baml-py raises when the provider refuses the connection: a
    ``BamlClientHttpError`` with ``status_code`` 503 and a ``reqwest`` error message."""
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
    shown = _shown(raw_output=raw_output or None, prompt=prompt or None, message=message, after=after)
    if message is None:
        message = "Failed to parse LLM response: the raw output does not match the return type (scripted by FakeBamlClient)"
    return Fault(
        "validation_error",
        "BamlValidationError",
        {"prompt": prompt, "message": message, "raw_output": raw_output},
        _build_validation,
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
    """A ``BamlClientFinishReasonError``: the LLM stopped for a disallowed ``finish_reason``.

    ``usage`` is what the provider billed for the answer (default unknown).
    """
    _opt_str(finish_reason, "finish_reason", "finish_reason_error")
    _str(raw_output, "raw_output", "finish_reason_error")
    _str(prompt, "prompt", "finish_reason_error")
    _opt_str(message, "message", "finish_reason_error")
    shown = _shown(finish_reason, raw_output=raw_output or None, prompt=prompt or None, message=message, after=after)
    if message is None:
        message = f"Finish reason not allowed: {finish_reason}"
    return Fault(
        "finish_reason_error",
        "BamlClientFinishReasonError",
        {"prompt": prompt, "message": message, "raw_output": raw_output, "finish_reason": finish_reason},
        _build_finish_reason,
        after_ns=_after_ns(after, "finish_reason_error"),
        shown=shown,
        usage=Usage.coerce(usage, name="faults.finish_reason_error(): usage"),
    )


def abort(*, after: DurationLike | None = None, message: str = "Operation was aborted") -> Fault:
    """A ``BamlAbortError`` (an ``Exception``: its event ``kind`` is ``"error"``), as raised
    when a call's ``AbortController`` fires; real baml-py's message is ``"Operation was aborted"``."""
    _str(message, "message", "abort")
    return Fault(
        "abort", "BamlAbortError", {"message": message}, _build_message_only, after_ns=_after_ns(after, "abort"),
        shown=_shown(after=after, message=None if message == "Operation was aborted" else message),
    )


def client_error(message: str = "Client error (scripted by FakeBamlClient)", *, after: DurationLike | None = None) -> Fault:
    """A plain ``BamlClientError`` carrying only its message."""
    _str(message, "message", "client_error")
    return Fault(
        "client_error", "BamlClientError", {"message": message}, _build_message_only,
        after_ns=_after_ns(after, "client_error"), shown=_shown(message, after=after),
    )


def invalid_argument(message: str = "Invalid argument (scripted by FakeBamlClient)", *, after: DurationLike | None = None) -> Fault:
    """A ``BamlInvalidArgumentError`` carrying only its message."""
    _str(message, "message", "invalid_argument")
    return Fault(
        "invalid_argument", "BamlInvalidArgumentError", {"message": message}, _build_message_only,
        after_ns=_after_ns(after, "invalid_argument"), shown=_shown(message, after=after),
    )


def cancelled(*, after: DurationLike | None = None, message: str | None = None) -> Fault:
    """An ``asyncio.CancelledError`` (a ``BaseException``: its event ``kind`` is ``"exit"``)."""
    _opt_str(message, "message", "cancelled")
    return Fault(
        "cancelled", "CancelledError", {"message": message}, _build_cancelled, after_ns=_after_ns(after, "cancelled"),
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
    default ``client_error("Stream failed after N partials ...")``. ``after`` is the
    total latency and ``chunk_latency`` spaces the partials (see ``FakeBamlClient.respond``).
    A non-streaming call scripted with it just raises ``error``.
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
        inner = client_error(f"Stream failed after {len(values)} partials (scripted by FakeBamlClient)")
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
        shown=_shown(len(values), error=inner, after=after, chunk_latency=chunk_latency),
    )


class FaultArgument:
    """One argument a fault is drawn with in property-based tests.

    ``name`` is the builder's keyword, ``examples`` the values drawn for it (in shrinking
    order) and ``optional`` says the argument may also be left out (drawn as ``None``).
    """

    __slots__ = ("name", "examples", "optional")

    def __init__(self, name: str, examples: Sequence[Any], *, optional: bool = False) -> None:
        self.name = name
        self.examples = tuple(examples)
        self.optional = optional

    def __repr__(self) -> str:
        optional = ", optional=True" if self.optional else ""
        return f"FaultArgument({self.name!r}, {self.examples!r}{optional})"


class FaultKind:
    """One entry of :data:`FAULTS`: a fault's name, its builder and how it is drawn.

    Calling the entry calls the builder (``FAULTS["timeout"](after="1s")``), and it shows
    the builder's name, docstring and signature, so ``FAULTS`` still reads as a table of
    builder functions. ``arguments`` are the :class:`FaultArgument` values the strategies
    draw (a fault with none is built with no arguments); ``drawn`` is ``False`` for a
    fault the strategies do not draw on its own (``stream_failure``, which they use to
    wrap the others).
    """

    def __init__(
        self, build: Callable[..., Fault], arguments: Sequence[FaultArgument] = (), *, drawn: bool = True
    ) -> None:
        functools.update_wrapper(self, build)
        self.name: str = build.__name__
        self.build = build
        self.arguments = tuple(arguments)
        self.drawn = drawn

    def __call__(self, *args: Any, **kwargs: Any) -> Fault:
        return self.build(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<fault {self.name!r}>"


# In the order the strategies draw them (the first is the one shrunk to).
FAULTS: dict[str, FaultKind] = {
    kind.name: kind
    for kind in (
        FaultKind(timeout),
        FaultKind(http_error, [FaultArgument("status_code", (400, 401, 403, 404, 408, 500, 502, 503, 529))]),
        FaultKind(rate_limited, [FaultArgument("retry_after", ("1s", "2s", "30s"), optional=True)]),
        FaultKind(connection_refused),
        FaultKind(validation_error, [FaultArgument("raw_output", ("", "not json", '{"name": 1}'))]),
        FaultKind(finish_reason_error, [FaultArgument("finish_reason", ("length", "content_filter"))]),
        FaultKind(abort),
        FaultKind(client_error),
        FaultKind(invalid_argument),
        FaultKind(cancelled),
        FaultKind(stream_failure, drawn=False),
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
        errors = _error_classes()
        by_class: dict[Any, Callable[[], Fault]] = {
            errors.BamlClientHttpError: lambda: http_error(500),
            errors.BamlTimeoutError: timeout,
            errors.BamlValidationError: validation_error,
            errors.BamlClientFinishReasonError: finish_reason_error,
            errors.BamlAbortError: abort,
            errors.BamlInvalidArgumentError: invalid_argument,
            errors.BamlClientError: client_error,
            errors.BamlError: lambda: Fault(
                "BamlError", "BamlError", {"message": "BamlError (scripted by FakeBamlClient)"}, _build_message_only,
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
