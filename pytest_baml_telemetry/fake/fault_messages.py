"""The texts baml-py 0.226.3 puts in its errors, as :mod:`.faults` reproduces them.

Each function returns one ``message`` or ``detailed_message`` layout, written down from
the real runtime (a generated client on ``FakeLLMServer``; ``tests/test_parity_faults.py``
and, per provider, ``tests/test_provider_matrix_parity.py`` re-check them): how a status code is named, the plain and the streaming form of an HTTP
error, the ``LLMErrorResponse`` text of an unparseable body, the per-attempt lines of a
call that failed after several attempts. No ``baml_py`` import here.
"""

from __future__ import annotations

import http
import json
from typing import Any

__all__ = [
    "ABORTED_BEFORE",
    "ABORTED_IN_FLIGHT",
    "FINISH_REASON_NOT_ALLOWED",
    "READ_BODY_CUT",
    "REQUEST_TIMED_OUT",
    "STREAM_CUT",
    "attempts_detail",
    "aws_service_error",
    "provider_error",
    "body_text",
    "code_name",
    "http_detail",
    "http_message",
    "idle_timeout_message",
    "llm_error_response",
    "reason_phrase",
    "rust_duration",
    "serde_parse_error",
    "total_timeout_message",
]

REQUEST_TIMED_OUT = "Request timed out"
"""``BamlTimeoutError.message`` of a request or connect timeout."""

ABORTED_BEFORE = "Operation was aborted"
"""``BamlAbortError`` message of a call whose controller was aborted before it started."""

ABORTED_IN_FLIGHT = "AbortError"
"""``BamlAbortError`` message of a call aborted while in flight (also ``AbortController(timeout_ms=)``)."""

FINISH_REASON_NOT_ALLOWED = "Finish reason not allowed"
"""``BamlClientFinishReasonError.message``."""

STREAM_CUT = (
    "Stream transport error: reqwest::Error { kind: Decode, source: reqwest::Error { kind: Body, source: "
    'hyper::Error(Body, Custom { kind: UnexpectedEof, error: "unexpected EOF during chunk size line" }) } }'
)
"""``message`` of a stream whose connection broke mid-body (``status_code`` 2)."""

READ_BODY_CUT = (
    "Could not read response body: reqwest::Error { kind: Decode, source: reqwest::Error { kind: Body, source: "
    "hyper::Error(Body, Custom { kind: UnexpectedEof, error: IncompleteBody }) } }"
)
"""``message`` of a non-streaming call whose response body broke off (``status_code`` 2)."""

# How the runtime names a status code in ``detailed_message``: these five by name, every
# other one "Unspecified error code: N" (2 and 200 included, outside a stream).
_CODE_NAMES = {
    401: "InvalidAuthentication (401)",
    403: "NotSupported (403)",
    408: "Timeout (408)",
    429: "RateLimited (429)",
    500: "ServerError (500)",
    503: "ServiceUnavailable (503)",
}

# reqwest's (the ``http`` crate's) reason phrases where Python's differ.
_PHRASES = {
    413: "Payload Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    418: "I'm a teapot",
}


def code_name(status_code: int, *, bad_response: bool = False) -> str:
    """The status code as ``detailed_message`` names it.

    ``bad_response``: an error found while reading a stream (a cut connection, an SSE event
    that is not JSON), which the runtime calls ``"BadResponse 2"``.
    """
    if bad_response:
        return f"BadResponse {status_code}"
    return _CODE_NAMES.get(status_code, f"Unspecified error code: {status_code}")


def reason_phrase(status_code: int) -> str:
    """The reason phrase reqwest prints after a status code (``"<unknown status code>"`` if none)."""
    phrase = _PHRASES.get(status_code)
    if phrase is not None:
        return phrase
    try:
        return http.HTTPStatus(status_code).phrase
    except ValueError:
        return "<unknown status code>"


def body_text(body: Any, *, streaming: bool) -> str:
    """A response body as the runtime quotes it: outside a stream a JSON body is re-encoded
    compactly; in a stream it is quoted as sent (a dict here is sent as ``json.dumps`` does)."""
    if isinstance(body, str):
        return body
    if streaming:
        return json.dumps(body)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def http_message(status_code: int, body: str, *, streaming: bool) -> str:
    """``message`` of an HTTP error status: ``"Request failed with status code: 429 Too Many
    Requests. {body}"``, on a stream ``"..., \\n{body}"``."""
    head = f"Request failed with status code: {status_code} {reason_phrase(status_code)}"
    return f"{head}, \n{body}" if streaming else f"{head}. {body}"


def http_detail(client_name: str, code: str, message: str) -> str:
    """``detailed_message`` of a ``BamlClientHttpError`` (``code`` from :func:`code_name`)."""
    return f'LLM client "{client_name}" failed with status code: {code}\nMessage: {message}'


def rust_duration(ns: int) -> str:
    """A duration as Rust's ``Debug`` prints it (``638.616µs``, ``1.5s``, ``0ns``)."""
    for unit, size in (("s", 1_000_000_000), ("ms", 1_000_000), ("µs", 1_000)):
        if ns >= size:
            whole, rest = divmod(ns, size)
            digits = str(rest).rjust(len(str(size)) - 1, "0").rstrip("0")
            return f"{whole}.{digits}{unit}" if digits else f"{whole}{unit}"
    return f"{ns}ns"


def serde_parse_error(body: str) -> str:
    """What serde_json says about a body that is not JSON (its common first errors)."""
    stripped = body.lstrip()
    if not stripped:
        return f"EOF while parsing a value at line 1 column {len(body)}"
    line = body[: len(body) - len(stripped)].count("\n") + 1
    column = len(body) - len(stripped) - body[: len(body) - len(stripped)].rfind("\n")
    if stripped[0] in "tfn":  # serde reads true/false/null and stops at the first wrong letter
        word = {"t": "true", "f": "false", "n": "null"}[stripped[0]]
        at = 1
        while at < len(word) and at < len(stripped) and stripped[at] == word[at]:
            at += 1
        return f"expected ident at line {line} column {column + at}"
    return f"expected value at line {line} column {column}"


def _rust_str(text: str) -> str:
    """A Rust ``Debug`` string literal (JSON's escaping is close enough for the common cases)."""
    return json.dumps(text, ensure_ascii=False)


def llm_error_response(client_name: str, status_code: int, raw_response: str, parse_error: str, latency_ns: int) -> str:
    """``message`` of a response body that did not parse: ``"LLM call failed: LLMErrorResponse
    { client: ..., message: "Failed to parse JSON: ...", code: ..., raw_response: Some(...) }"``.

    The prompt and the request options, which the fake does not render, are left empty.
    """
    code = {503: "ServiceUnavailable", 500: "ServerError", 429: "RateLimited", 401: "InvalidAuthentication"}.get(
        status_code, f"Other({status_code})"
    )
    return (
        f"LLM call failed: LLMErrorResponse {{ client: {_rust_str(client_name)}, model: None, prompt: Chat([]), "
        f"request_options: {{}}, start_time: SystemTime {{ tv_sec: 0, tv_nsec: 0 }}, latency: {rust_duration(latency_ns)}, "
        f"message: {_rust_str('Failed to parse JSON: ' + parse_error)}, code: {code}, raw_response: Some({_rust_str(raw_response)}) }}"
    )


def idle_timeout_message(limit_ms: int) -> str:
    """``BamlTimeoutError.message`` of a stream that went quiet (``idle_timeout_ms``)."""
    return f"Timeout: No data received within {limit_ms}ms (idle_timeout)"


def total_timeout_message(limit_ms: int) -> str:
    """``BamlTimeoutError.message`` of a composite client's ``total_timeout_ms``.

    baml-py 0.226.3 did not enforce ``total_timeout_ms`` on our server (the call ran until
    the server hung up); this is the runtime's own text fragment (``"Request timed out
    after "``) completed with the limit.
    """
    return f"Request timed out after {limit_ms}ms"


def attempts_detail(lines: list[str]) -> str:
    """``detailed_message`` of a call that failed after several attempts: ``"N failed
    attempts:\\n\\nAttempt 0: ..."``, each attempt's own detail indented by four spaces."""
    body = "\n".join(f"Attempt {i}: " + line.replace("\n", "\n    ") for i, line in enumerate(lines))
    return f"{len(lines)} failed attempts:\n\n{body}"


AWS_REQUEST_ID = "00000000-0000-0000-0000-000000000000"
"""The ``x-amzn-RequestId`` an :func:`aws_service_error` names (a real one differs per request)."""
HTTP_DATE = "Thu, 01 Jan 1970 00:00:00 GMT"
"""The ``date`` header an :func:`aws_service_error` shows."""

# Bedrock exceptions with fields of their own, printed (as None) between message and meta.
_AWS_EXTRA_FIELDS = {"ModelErrorException": ("original_status_code", "resource_name")}


def _rust_bytes(data: bytes) -> str:
    """A Rust ``Debug`` byte string literal: ``b"{\\"message\\": ...}"``."""
    escapes = {0x22: '\\"', 0x5C: "\\\\", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
    return 'b"' + "".join(
        escapes.get(byte) or (chr(byte) if 0x20 <= byte < 0x7F else f"\\x{byte:02x}") for byte in data
    ) + '"'


def _indent(lines: list[str], depth: int) -> list[str]:
    return [" " * (4 * depth) + line for line in lines]


def aws_service_error(error_type: str, text: str, status_code: int, body: bytes, headers: list[tuple[str, str]]) -> str:
    """``message`` of an aws-bedrock error answer: the AWS SDK's ``ServiceError`` as Rust's
    pretty ``Debug`` prints it (measured with baml-py 0.226.3 on ``FakeLLMServer``): the
    modelled exception (``error_type``, its ``text``), then the raw response (its status,
    ``headers`` in the order sent, ``body``)."""
    quoted = _rust_str(text)
    source = [f"{error_type}(", f"    {error_type} {{", "        message: Some(", f"            {quoted},", "        ),"]
    source += [f"        {field}: None," for field in _AWS_EXTRA_FIELDS.get(error_type, ())]
    source += [
        "        meta: ErrorMetadata {", "            code: Some(", f"                {_rust_str(error_type)},", "            ),",
        "            message: Some(", f"                {quoted},", "            ),", "            extras: Some(", "                {",
        f'                    "aws_request_id": {_rust_str(dict(headers).get("x-amzn-requestid", AWS_REQUEST_ID))},',
        "                },", "            ),", "        },", "    },", "),",
    ]
    shown_headers: list[str] = []
    for name, value in headers:
        shown_headers += [f"{_rust_str(name)}: HeaderValue {{", "    _private: H1(", f"        {_rust_str(value)},", "    ),", "},"]
    raw = [
        "raw: Response {", "    status: StatusCode(", f"        {status_code},", "    ),", "    headers: Headers {", "        headers: {",
        *_indent(shown_headers, 3), "        },", "    },", "    body: SdkBody {", "        inner: Once(", "            Some(",
        f"                {_rust_bytes(body)},", "            ),", "        ),", "        retryable: true,", "    },",
        "    extensions: Extensions {", "        extensions_02x: Extensions,", "        extensions_1x: Extensions,", "    },", "},",
    ]
    source[0] = "source: " + source[0]
    return "\n".join(["ServiceError(", "    ServiceError {", *_indent(source, 2), *_indent(raw, 2), "    },", ")"])


_WIRE_MODULES = {"openai": "openai", "openai-responses": "openai_responses", "anthropic": "anthropic",
                 "google-ai": "google", "aws-bedrock": "bedrock"}


def provider_error(owner: str, status_code: int, body: Any, provider: str, retry_ns: int | None) -> tuple[int, Any, str | None]:
    """``(status_code, body, message)`` of an error status >= 400 as ``provider``'s client reports
    it (``faults.http_error(provider=...)``; measured with baml-py 0.226.3 on ``FakeLLMServer``).

    Every provider quotes its own error body (``body`` if given, else the provider's error
    body for the status: ``message`` stays ``None``, built as for OpenAI). aws-bedrock's AWS
    SDK words the error as :func:`aws_service_error` and reports a 400 ``ValidationException``
    as 401; its 408 (``ModelTimeoutException``) is a ``BamlTimeoutError`` (``faults.timeout()``).
    """
    import importlib

    from .server_clients import WIRE_FORMATS

    module = importlib.import_module(f"pytest_baml_telemetry.wire.{_WIRE_MODULES[WIRE_FORMATS[provider]]}")
    kind, code = module.error_type(status_code)
    if body is None:
        body = module.error_body(reason_phrase(status_code), kind, code)
    if provider != "aws-bedrock":
        return status_code, body, None
    where = f"faults.{owner}(status_code={status_code}, provider='aws-bedrock')"
    if status_code == 408:
        raise ValueError(f"{where}: baml-py raises a Bedrock ModelTimeoutException as BamlTimeoutError: use faults.timeout()")
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        raise TypeError(f"{where}: body={body!r}: expected an AWS error body, {{'message': str}}")
    payload = json.dumps(body).encode()
    headers = [("server", "FakeLLMServer/1.0"), ("date", HTTP_DATE), ("x-amzn-requestid", AWS_REQUEST_ID)]
    if retry_ns is not None:
        headers.append(("retry-after", str(-(-retry_ns // 1_000_000_000))))
    headers += [(k.lower(), v) for k, v in module.error_headers(kind).items()]
    headers += [("content-type", "application/json"), ("content-length", str(len(payload)))]
    reported = 401 if status_code == 400 else status_code
    return reported, None, aws_service_error(kind, body["message"], status_code, payload, headers)
