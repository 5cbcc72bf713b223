"""Reading a ``baml_py.FunctionLog`` (what a ``Collector`` holds) into a telemetry call.

:func:`read_collector_log` fills a :class:`~.emitter.Call` with usage, the requested
``model`` and the extra metadata (attempts, provider, client name, the served model and
the provider's response id) after each instrumented call. It runs once per call, right
after the HTTP exchange: it reads each part of the log once, and only what is emitted,
with inline fast paths for the JSON layouts baml and OpenAI-style providers write
(:func:`top_level_strings` is the general case they fall back to). It never parses the
bodies as JSON when a fast path applies; it does not import ``baml_py``.

:func:`bill_failure` applies the billing rule to a failed call after its log was read.
:func:`release_later` lets a collector go once it was read, off the call's path.
"""

from __future__ import annotations

import collections
import json
import os
import re
import threading
import time
import urllib.parse
from typing import Any

from .contract import Usage
from .emitter import Call
from .wire import anthropic as _anthropic_wire
from .wire import google as _google_wire
from .wire import openai_responses as _responses_wire

__all__ = ["read_collector_log", "top_level_strings", "bill_failure", "release_later", "NOT_BILLED"]

NOT_BILLED = Usage(0, 0, 0)
"""The usage of a failure known not to be billed (an HTTP status >= 400, a refused connection)."""


def _selected_or_last(log: Any, failed_client: Any = None) -> tuple[Any, int]:
    """The attempt whose response was used, and the number of attempts.

    When none was used (the call failed), the last attempt: baml-py 0.226.3 lists a log's
    attempts in no fixed order (measured: a fallback's four attempts came back shuffled) and
    times them to the millisecond only, so the error's ``client_name`` (``failed_client``, the
    client of the attempt that failed last) picks among them first, then the latest start.
    """
    calls = log.calls
    attempts = len(calls) if calls else 0
    if attempts == 1:  # the only attempt: selected_call would be it (or None when it failed)
        return calls[0], 1
    selected = log.selected_call
    if selected is None and attempts:
        calls = list(calls)
        if isinstance(failed_client, str):
            same = [c for c in calls if getattr(c, "client_name", None) == failed_client]
            calls = same or calls
        try:
            selected = max(calls, key=lambda c: c.timing.start_time_utc_ms)
        except Exception:
            selected = calls[-1]
    return selected, attempts


_PATTERNS: dict[str, tuple[str, str]] = {
    key: (f'"{key}":"', f'"{key}": "') for key in ("id", "model")
}


def _key_patterns(key: str) -> tuple[str, str]:
    """``'"key":"'`` and ``'"key": "'``: how compact and spaced JSON writers lay out a string value."""
    patterns = _PATTERNS.get(key)
    if patterns is None:
        if not isinstance(key, str):
            raise TypeError(f"top_level_strings(keys=...): key {key!r} is not a str; expected JSON object keys")
        quoted = json.dumps(key)
        patterns = (quoted + ':"', quoted + ': "')
        if len(_PATTERNS) < 64:
            _PATTERNS[key] = patterns
    return patterns


def top_level_strings(text: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The string values of ``keys`` at the top level of the JSON object ``text``.

    Fast path for the common layout where they come before any nested value (OpenAI's
    ``{"id": ..., "model": ..., "choices": [...]}``, baml's ``{"model": ..., "messages":
    [...]}``), found with plain substring searches: the part of ``text`` before the first
    ``[`` or nested ``{`` is all top level, and when it holds no backslash every quote in
    it delimits a string, so ``"key":"`` or ``"key": "`` there can only be that key.
    Anything else (a key after a nested value, other spacing, escapes, a value that is not
    a string) is read with :func:`json.loads`. Keys that are absent or not strings are
    left out; text that is not a JSON object gives ``{}``.
    """
    cut = text.find("[")
    if cut < 0:
        cut = len(text)
    brace = text.find("{", text.find("{") + 1, cut)
    if brace >= 0:
        cut = brace
    if text.find("\\", 0, cut) < 0:
        found: dict[str, str] = {}
        for key in keys:
            compact, spaced = _key_patterns(key)
            at = text.find(compact, 0, cut)
            if at >= 0:
                start = at + len(compact)
            else:
                at = text.find(spaced, 0, cut)
                if at < 0:
                    break  # absent, not a string, laid out otherwise: parse it all
                start = at + len(spaced)
            end = text.find('"', start, cut)
            if end < 0:
                break
            found[key] = text[start:end]
        else:
            return found
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: data[key] for key in keys if isinstance(data.get(key), str)}


_ID_AND_MODEL = ("id", "model")
_MODEL = ("model",)
_URL_MODEL = re.compile(
    r"/models/(?P<google>[^/:?#]+):(?:generateContent|streamGenerateContent)"  # wire.google
    r"|/model/(?P<bedrock>[^/?#]+)/converse(?:-stream)?(?:[?#]|$)"  # wire.bedrock
    r"|/openai/deployments/(?P<azure>[^/?#]+)/chat/completions"  # wire.openai (Azure)
)


def model_in_url(url: Any) -> str | None:
    """The model a provider's request URL names, for the formats whose body does not
    (Google AI ``.../models/{model}:generateContent``, Bedrock ``/model/{modelId}/converse``,
    an Azure deployment); ``None`` for any other URL or a non-str."""
    if type(url) is not str:
        return None
    match = _URL_MODEL.search(url)
    if match is None:
        return None
    return urllib.parse.unquote(match.group(match.lastgroup or 0))


_REQUEST_HEAD = '{"model":"'  # how baml lays out the bodies of the requests it sends
_REQUEST_HEAD_LEN = len(_REQUEST_HEAD)
_new_object = object.__new__
_set_frozen = object.__setattr__
_USAGE_HAS_DICT = hasattr(_new_object(Usage), "__dict__")
"""Whether a :class:`~.contract.Usage` keeps its fields in a ``__dict__`` (a dataclass without slots)."""


_BAML_TAG_COUNT = 2
"""baml-py 0.226.3 tags every log with ``baml.language`` and ``baml.runtime``: a log with no more
tags than that has no user tags (checked before the tags are filtered, to keep the common case cheap)."""


def read_collector_log(log: Any, call: Call, error: BaseException | None = None) -> None:
    """Fill ``call`` (usage, model and extra metadata) from a ``baml_py.FunctionLog``.

    Sets usage (``None`` counts stay ``None``), ``model`` (the model the request asked
    for), and the extra metadata ``num_attempts``, ``provider``, ``client_name``,
    ``response_model`` (when the provider reported one) and ``request_id`` (the provider's
    response id, else baml's ``"breq_..."`` request id), and ``tags``: the call's own tags
    (``with_options(tags=...)``, replaced by a call's ``baml_options={"tags": ...}``, as
    baml-py does), without baml's ``baml.*`` tags, when there are any (as the fake records
    them). Missing parts are skipped. ``error`` (a failed call's) names the client whose
    attempt failed last, which picks the attempt read (see :func:`_selected_or_last`).

    Each part of the log is read once, and only what is emitted. This runs right after
    the HTTP exchange, when little of it is in the CPU caches: it is written as one
    function with inline fast paths for the layouts baml and OpenAI-style providers use
    (see :func:`top_level_strings` for the general case they fall back to).
    """
    usage = log.usage
    if usage is not None:
        i, o, c = usage.input_tokens, usage.output_tokens, usage.cached_input_tokens
        if (
            (i is None or (type(i) is int and i >= 0))
            and (o is None or (type(o) is int and o >= 0))
            and (c is None or (type(c) is int and c >= 0))
        ):  # baml's counts are plain ints: build the Usage without validating them again
            counts = _new_object(Usage)
            if _USAGE_HAS_DICT:  # a plain (frozen) dataclass: fill its __dict__, the cheapest way
                fields = counts.__dict__
                fields["input_tokens"] = i
                fields["output_tokens"] = o
                fields["cached_input_tokens"] = c
            else:
                _set_frozen(counts, "input_tokens", i)
                _set_frozen(counts, "output_tokens", o)
                _set_frozen(counts, "cached_input_tokens", c)
        else:
            counts = Usage(i, o, c)  # raises, naming the bad count
        call.usage = counts
    calls = log.calls
    if calls and len(calls) == 1:  # the only attempt: it is the selected one (or the one that failed)
        selected, attempts = calls[0], 1
    else:
        selected, attempts = _selected_or_last(log, getattr(error, "client_name", None) if error is not None else None)
    if selected is None:
        extra: dict[str, Any] = {"num_attempts": attempts}
    else:
        extra = {"num_attempts": attempts, "provider": selected.provider, "client_name": selected.client_name}
        request = selected.http_request
        if request is not None:
            try:
                text = request.body.text()
            except Exception:
                text = None
            if type(text) is str:
                # baml writes {"model":"<name>","messages":[...]}: no need to look further
                end = text.find('"', _REQUEST_HEAD_LEN) if text.startswith(_REQUEST_HEAD) else -1
                if end >= 0 and "\\" not in (model := text[_REQUEST_HEAD_LEN:end]):
                    call.model = model
                else:
                    scanned = top_level_strings(text, _MODEL).get("model")
                    if scanned is not None:
                        call.model = scanned
                    else:  # google-ai, aws-bedrock, azure-openai: the model is in the URL
                        url_model = model_in_url(getattr(request, "url", None))
                        if url_model is not None:
                            call.model = url_model
        text = None
        response = getattr(selected, "http_response", None)
        if response is not None:
            try:
                text = response.body.text()
            except Exception:
                text = None
        elif hasattr(selected, "sse_responses"):  # a stream: the first chunk has the id and model
            try:
                sse = selected.sse_responses()
            except Exception:
                sse = None
            if sse:
                text = sse[0].text
                text = text() if callable(text) else text
        request_id = None
        if type(text) is str:
            # OpenAI's layout, {"id": "...", "object": ..., "model": "...", "choices": [...]}: before the
            # first "[", with no backslash and no other "{", all is top level and no string holds a
            # quote, so '"id":' there can only be the key id (then one optional space and its string)
            cut = text.find("[")
            if cut < 0:
                cut = len(text)
            k = text.find('"id":', 0, cut) + 5
            m = text.find('"model":', 0, cut) + 8
            if k > 5 and m > 8 and text.startswith("{") and text.find("\\", 0, cut) < 0 and text.find("{", 1, cut) < 0:
                if text.startswith(" ", k):
                    k += 1
                if text.startswith(" ", m):
                    m += 1
                k_end = text.find('"', k + 1, cut) if text.startswith('"', k) else -1
                m_end = text.find('"', m + 1, cut) if text.startswith('"', m) else -1
            else:
                k_end = m_end = -1
            if k_end >= 0 and m_end >= 0:
                request_id = text[k + 1 : k_end] or None
                extra["response_model"] = text[m + 1 : m_end]
            else:
                served = top_level_strings(text, _ID_AND_MODEL)
                request_id = served.get("id") or None
                if "model" in served:
                    extra["response_model"] = served["model"]
                elif request_id is None:  # a format whose id and model are not top-level "id"/"model"
                    request_id = _served_by_format(selected.provider, text, extra)
        if request_id is None and response is not None and selected.provider == "aws-bedrock":
            request_id = _header(response, "x-amzn-requestid")  # Converse bodies carry no id
        if request_id is None and request is not None:
            request_id = request.id  # no response id: baml's own request id ("breq_...")
        extra["request_id"] = request_id
    tags = getattr(log, "tags", None)  # the call's tags (with_options or baml_options), plus baml's own "baml.*" ones
    if tags and len(tags) > _BAML_TAG_COUNT:
        user = {k: v for k, v in tags.items() if not k.startswith("baml.")}
        if user:
            extra["tags"] = user
    if call.extra is None:
        call.extra = extra
    else:
        call.extra.update(extra)


_ID_FORMATS: dict[str, Any] = {"anthropic": _anthropic_wire, "google-ai": _google_wire, "openai-responses": _responses_wire}
"""Providers whose response id and model :func:`_served_by_format` reads through their wire module."""


def _served_by_format(provider: Any, text: str, extra: dict[str, Any]) -> str | None:
    """The response id (returned) and served model (into ``extra``) of the formats that do not put
    them at the top level as ``"id"``/``"model"``: Gemini (``responseId``/``modelVersion``), and the
    first event of an Anthropic stream (``message_start``'s ``message``) or a Responses stream
    (``response.created``'s ``response``), read by their wire modules."""
    wire = _ID_FORMATS.get(provider)
    if wire is None:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if provider == "anthropic" and isinstance(body.get("message"), dict):
        body = body["message"]  # a stream's message_start event
    model = wire.response_model(body)
    if model is not None:
        extra["response_model"] = model
    return wire.response_id(body)


def _header(response: Any, name: str) -> str | None:
    """Header ``name`` (lower case) of a baml ``HTTPResponse``, if it has one as a non-empty str."""
    headers = getattr(response, "headers", None)
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str) and value:
            return value
    return None


_UNKNOWN_ATTEMPTS = (
    "timed out", "Timeout:", "Stream transport error", "Could not read response body", "AbortError", "DispatchFailure(",
)
"""Texts of baml-py 0.226.3's attempt lines (``detailed_message``) for an attempt whose billing is unknown
(``DispatchFailure(``: the AWS SDK's dropped connection, which baml-py reports as status 500 on a
Bedrock stream, measured)."""


def bill_failure(call: Call, error: BaseException) -> None:
    """The billing rule for the tokens of a failed call, applied after its log was read.

    What baml-py 0.226.3's Collector holds on a failure (measured on the fake server):
    the provider's usage when it answered (``BamlValidationError``,
    ``BamlClientFinishReasonError``, a retry that ended in one), and no counts otherwise.
    A call that failed with an HTTP status >= 400 (``BamlClientHttpError.status_code``;
    baml-py reports a refused connection as 503) was not billed: when no attempt reported
    usage its tokens become 0/0 (it costs $0). Every other failure without counts (a
    timeout, a cut stream or dropped connection, ``status_code`` 2, a malformed 200, an
    abort in flight) keeps ``None``: its billing is unknown; so does a retried call one of
    whose attempts timed out or was cut (read from ``detailed_message``). A call aborted
    before it started (``"Operation was aborted"``) sent nothing: 0/0.
    """
    usage = call.usage
    if usage is not None and (usage.input_tokens is not None or usage.output_tokens is not None):
        return  # the provider answered: its usage stands
    detail = getattr(error, "detailed_message", None)
    if isinstance(detail, str) and any(mark in detail for mark in _UNKNOWN_ATTEMPTS):
        return  # an earlier attempt timed out or was cut: it may have been billed
    if type(error).__name__ == "BamlAbortError" and str(error) == "Operation was aborted":
        call.usage = NOT_BILLED  # aborted before the call: nothing was sent
        return
    status = getattr(error, "status_code", None)
    if type(status) is int and status >= 400:
        call.usage = NOT_BILLED


# --------------------------------------------------------------------------- releasing collectors

_LATER: collections.deque[Any] = collections.deque()
_RELEASER: list[threading.Thread | None] = [None]
_RELEASER_LOCK = threading.Lock()
_MAX_LATER = 256
"""Collectors waiting beyond this are released by the caller itself (a releaser that cannot keep up)."""
_RELEASE_EVERY_S = 0.01
_IDLE_ROUNDS = 100
"""The releaser thread ends after this many rounds with nothing to release (about a second)."""


def release_later(collector: Any) -> None:
    """Let go of ``collector`` (ours, read) in a background thread instead of the caller's.

    Freeing a baml-py ``Collector`` frees its logs, request and response bodies (measured:
    5-11 us of the caller's time, right after the HTTP exchange); a daemon thread does it a few
    milliseconds later, mostly while the caller waits for its next response. Whoever else holds
    the collector keeps it as it is. The thread starts on first use and ends when idle; a
    releaser that cannot keep up (or is gone, as in a forked child) makes the caller release
    the backlog itself, so at most ``_MAX_LATER`` collectors wait.
    """
    later = _LATER
    later.append(collector)
    if _RELEASER[0] is None or len(later) > _MAX_LATER:
        _start_or_drain(later)


def _start_or_drain(later: collections.deque[Any]) -> None:
    if len(later) > _MAX_LATER:
        _drain(later)
        return
    with _RELEASER_LOCK:
        if _RELEASER[0] is not None:
            return
        thread = threading.Thread(target=_release_loop, name="pytest-baml-telemetry collectors", daemon=True)
        _RELEASER[0] = thread
    try:
        thread.start()
    except RuntimeError:  # no new threads (interpreter shutting down): release here
        _RELEASER[0] = None
        _drain(later)


def _drain(later: collections.deque[Any]) -> None:
    pop = later.popleft
    while True:
        try:
            pop()
        except IndexError:
            return


def _release_loop() -> None:
    later = _LATER
    pop = later.popleft
    idle = 0
    try:
        while idle < _IDLE_ROUNDS:
            time.sleep(_RELEASE_EVERY_S)
            if not later:
                idle += 1
                continue
            idle = 0
            while True:
                try:
                    pop()  # the collector is freed here, unless someone else holds it
                except IndexError:
                    break
                time.sleep(0)  # let a caller waiting for the GIL have it between two releases
    finally:
        _RELEASER[0] = None
    if later:  # arrived as it was ending (the caller saw it still running): start the next one
        _start_or_drain(later)


def _after_fork_in_child() -> None:
    _RELEASER[0] = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
