"""Cassettes in the FakeLLMServer child: the recording proxy, replay, and request matching.

Standard library only: the child (``_server_child.py``) imports it the way it imports the
wire formats (:func:`~._server_child.import_package_module`), the parent
(:mod:`.cassette`) imports it as a plain module for the matchers and the scrubbing lists.

While a cassette is loaded (:class:`ChildCassette`, the ``cassette`` command), every request
goes through :meth:`ChildCassette.decide`: the first recorded interaction not played yet that
matches it on ``match_on`` (vcr's matcher names: ``method``, ``scheme``, ``host``, ``port``,
``path``, ``query``, ``uri``, ``body``, ``raw_body``) is replayed (:func:`replay`: the recorded
status and headers, the body chunk by chunk at its recorded offsets unless the latency is
``"none"``); an unmatched request is forwarded to its client's upstream (:func:`forward`,
streaming each chunk through as it arrives) and recorded when the cassette records, else
answered with an HTTP 500 naming the closest recorded request and what differs
(:func:`difference`: "the prompt changed: ...").

``body`` compares the normalised JSON body (:func:`normalise_body`): only :data:`BODY_KEYS`
(the model, the prompt in each provider's words, whether it streams); the rest
(temperature, max tokens, ids that vary per run) is ignored. ``raw_body`` compares the text.

The upstream of a request is its client's (by the ``/_c/{client}`` tag): the parent sends
``{client: {"base": url, "prefix": path, "query": {...}}}`` (from ``route(b)``); the path
after the tag loses ``prefix`` (what the fake's own base URL adds, ``/v1`` for OpenAI) and
is appended to ``base``; ``query`` replaces query parameters (Azure's ``api-version``).
A Bedrock client's entry may hold ``"aws"`` (``access_key_id``, ``secret_access_key``,
``session_token``, ``region``: sent only while the cassette records): its URL is then a
:class:`SignedURL` and :func:`forward` re-signs the request for the upstream host
(:func:`._sigv4.sign`; the SDK signed it for the fake's host). The credentials go upstream
only: the interaction keeps the headers the client sent.
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from . import _sigv4

MATCHERS = ("method", "scheme", "host", "port", "path", "query", "uri", "body", "raw_body")
"""The ``match_on`` names understood (vcr's, plus ``raw_body`` for the exact body text)."""
DEFAULT_MATCH_ON = ("method", "path", "body")
BODY_KEYS = (
    "model", "messages", "prompt", "input", "contents", "system", "systemInstruction", "system_instruction",
    "instructions", "stream",
)
"""The JSON body keys the ``body`` matcher compares; every other key is ignored."""
PROMPT_KEYS = frozenset({"messages", "prompt", "input", "contents", "system", "systemInstruction", "system_instruction", "instructions"})
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "content-length", "host", "accept-encoding",
})
"""Headers not forwarded as they are (the connection's own; ``accept-encoding`` becomes ``identity``)."""
CREDENTIAL_HEADERS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-security-token",
    "x-amz-content-sha256", "x-amz-date", "cookie", "set-cookie", "openai-organization", "openai-project",
})
"""Headers scrubbed from a cassette before it is written (plus every name :func:`is_credential` flags)."""
CREDENTIAL_PARTS = ("auth", "key", "token", "secret", "password", "passwd", "cookie", "credential", "signature", "session")
CREDENTIAL_QUERY = frozenset({"sig", "code", "pwd", "x-amz-signature", "x-amz-credential"})
UPSTREAM_TIMEOUT = 600.0


def is_credential(name: str) -> bool:
    """Whether a header or query parameter ``name`` may carry a credential (any case)."""
    lowered = name.lower()
    return lowered in CREDENTIAL_HEADERS or lowered in CREDENTIAL_QUERY or any(p in lowered for p in CREDENTIAL_PARTS)


def normalise_body(text: str | None) -> Any:
    """The part of a request body the ``body`` matcher compares: the :data:`BODY_KEYS` of a
    JSON object, the parsed value of other JSON, else the text itself."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        return {k: value[k] for k in BODY_KEYS if k in value}
    return value


def _query(uri: str) -> list[tuple[str, str]]:
    return sorted(urllib.parse.parse_qsl(urllib.parse.urlsplit(uri).query, keep_blank_values=True))


def _part(request: dict[str, Any], matcher: str) -> Any:
    """What ``matcher`` compares of ``request`` (``method``, ``uri``, ``body``: text)."""
    if matcher == "method":
        return request["method"].upper()
    if matcher == "body":
        return normalise_body(request.get("body"))
    if matcher == "raw_body":
        return request.get("body") or ""
    if matcher == "uri":
        return request["uri"]
    if matcher == "query":
        return _query(request["uri"])
    parts = urllib.parse.urlsplit(request["uri"])
    if matcher == "scheme":
        return parts.scheme
    if matcher == "host":
        return parts.hostname
    if matcher == "port":
        return parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    return parts.path  # "path"


def differing(a: dict[str, Any], b: dict[str, Any], match_on: tuple[str, ...]) -> list[str]:
    """The matchers of ``match_on`` on which requests ``a`` and ``b`` differ."""
    return [m for m in match_on if _part(a, m) != _part(b, m)]


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_difference(recorded: Any, now: Any, where: str) -> tuple[str, Any, Any]:
    """The first place (``messages[0].content``) where two JSON values differ, and both values there."""
    if isinstance(recorded, dict) and isinstance(now, dict):
        for key in list(recorded) + [k for k in now if k not in recorded]:
            if recorded.get(key, _MISSING) != now.get(key, _MISSING):
                return _first_difference(recorded.get(key, _MISSING), now.get(key, _MISSING), f"{where}.{key}" if where else key)
    elif isinstance(recorded, list) and isinstance(now, list):
        for i, (x, y) in enumerate(zip(recorded, now)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
        if len(recorded) != len(now):
            return f"{where} (length)", len(recorded), len(now)
    if isinstance(recorded, str) and isinstance(now, str):
        i = next((i for i, (x, y) in enumerate(zip(recorded, now)) if x != y), min(len(recorded), len(now)))
        start = max(0, i - 30)
        lead = "..." if start else ""
        return where, lead + recorded[start: i + 50], lead + now[start: i + 50]
    return where, recorded, now


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


_MISSING = _Missing()


def difference(recorded: dict[str, Any], now: dict[str, Any], match_on: tuple[str, ...]) -> str:
    """How request ``now`` differs from ``recorded`` on ``match_on``, in words:
    "the prompt changed: messages[0].content: recorded '...' now '...'"."""
    parts = []
    for matcher in differing(recorded, now, match_on):
        if matcher != "body":
            parts.append(f"the {matcher} changed: recorded {_short(_part(recorded, matcher))} now {_short(_part(now, matcher))}")
            continue
        old, new = normalise_body(recorded.get("body")), normalise_body(now.get("body"))
        if not (isinstance(old, dict) and isinstance(new, dict)):
            parts.append(f"the body changed: recorded {_short(old)} now {_short(new)}")
            continue
        for key in [k for k in BODY_KEYS if old.get(k, _MISSING) != new.get(k, _MISSING)]:
            what = "prompt" if key in PROMPT_KEYS else key
            where, a, b = _first_difference(old.get(key, _MISSING), new.get(key, _MISSING), key)
            parts.append(f"the {what} changed: {where}: recorded {_short(a)} now {_short(b)}")
    return "; ".join(parts) or "nothing differs (the recorded interaction was already played)"


class SignedURL(str):
    """An upstream URL whose request :func:`forward` signs with SigV4: ``aws`` holds the
    credentials and region. A plain string to everything else (``json`` writes only the text)."""

    aws: dict[str, Any]


def _signing(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The ``_sigv4.sign`` keyword arguments of an upstream entry's ``"aws"`` credentials, if complete."""
    aws = entry.get("aws")
    if not isinstance(aws, dict) or not aws.get("access_key_id") or not aws.get("secret_access_key"):
        return None
    return {
        "access_key_id": str(aws["access_key_id"]), "secret_access_key": str(aws["secret_access_key"]),
        "session_token": str(aws["session_token"]) if aws.get("session_token") else None,
        "region": str(aws.get("region") or "us-east-1"),
    }


def upstream_url(upstreams: dict[str, Any], client: str | None, target: str) -> str | None:
    """The URL ``target`` (the request's path and query, without the client tag) goes to upstream,
    from its client's entry; ``None`` when the client has none; a :class:`SignedURL` when the
    entry holds AWS credentials."""
    entry = upstreams.get(client or "")
    if entry is None:
        return None
    path, _, query = target.partition("?")
    prefix = entry.get("prefix") or ""
    if prefix and (path == prefix or path.startswith(prefix.rstrip("/") + "/")):
        path = path[len(prefix.rstrip("/")):]
    base = str(entry["base"])
    base_parts = urllib.parse.urlsplit(base)
    pairs = urllib.parse.parse_qsl(base_parts.query, keep_blank_values=True) + urllib.parse.parse_qsl(query, keep_blank_values=True)
    replace = entry.get("query") or {}
    pairs = [(k, v) for k, v in pairs if k not in replace] + sorted(replace.items())
    full = base_parts.path.rstrip("/") + path
    url = urllib.parse.urlunsplit((base_parts.scheme, base_parts.netloc, full, urllib.parse.urlencode(pairs), ""))
    signing = _signing(entry)
    if signing is None:
        return url
    signed = SignedURL(url)
    signed.aws = signing
    return signed


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ChildCassette:
    """The child's view of one loaded cassette: what to replay, what it recorded, what failed to match."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.name = str(config.get("name") or "cassette")
        self.interactions: list[dict[str, Any]] = list(config.get("interactions") or [])
        for item in self.interactions:
            item["played"] = False
        self.record = bool(config.get("record"))
        self.match_on = tuple(config.get("match_on") or DEFAULT_MATCH_ON)
        self.latency = config.get("latency", "recorded")
        self.upstreams: dict[str, Any] = dict(config.get("upstreams") or {})
        self.missing = bool(config.get("missing"))
        self.recorded: list[dict[str, Any]] = []
        self.unmatched: list[str] = []
        self.played = 0
        self.in_flight = 0  # requests being forwarded: take() waits for them
        self.lock = threading.Lock()
        self.idle = threading.Condition(self.lock)

    def decide(self, request: dict[str, Any]) -> tuple[str, Any]:
        """``("replay", interaction)``, ``("record", None)`` or ``("unmatched", message)`` for ``request``
        (``method``, ``uri``, ``body``, ``index``, ``client``)."""
        with self.lock:
            for item in self.interactions:
                if not item["played"] and not differing(item["request"], request, self.match_on):
                    item["played"] = True
                    self.played += 1
                    return "replay", item
            if self.record:
                self.in_flight += 1
                return "record", None
            message = self._unmatched_message(request)
            self.unmatched.append(message)
            return "unmatched", message

    def _unmatched_message(self, request: dict[str, Any]) -> str:
        sender = f", client {request['client']!r}" if request.get("client") else ""
        head = (
            f"cassette {self.name}: no recorded interaction matches request #{request['index']} "
            f"({request['method']} {request['uri']}{sender}) on match_on={list(self.match_on)}"
        )
        if self.missing:
            return f"{head}; the cassette does not exist: record it with --baml-record-mode=once"
        if not self.interactions:
            return f"{head}; the cassette holds no interactions: re-record it with --baml-record-mode=all"
        best = min(
            range(len(self.interactions)),
            key=lambda i: (self.interactions[i]["played"], len(differing(self.interactions[i]["request"], request, self.match_on)), i),
        )
        item = self.interactions[best]
        closest = item["request"]
        played = " (already played)" if item["played"] else ""
        return (
            f"{head}; the closest recorded request is interaction #{best}{played} ({closest['method']} {closest['uri']}): "
            f"{difference(closest, request, self.match_on)}. If the change is intended, re-record: "
            "--baml-record-mode=new_episodes (keep the rest) or --baml-record-mode=all"
        )

    def add(self, interaction: dict[str, Any] | None, failure: str | None = None) -> None:
        """A forwarded request is done: its interaction (``None``: it failed, ``failure`` says why)."""
        with self.lock:
            if interaction is not None:
                self.recorded.append(interaction)
            if failure is not None:
                self.unmatched.append(failure)
            self.in_flight -= 1
            self.idle.notify_all()

    def take(self, timeout: float = 5.0) -> dict[str, Any]:
        """What the parent writes and reports: the recorded interactions (taken), the unmatched messages.
        Waits (up to ``timeout`` seconds) for requests still being forwarded: the client may have
        its answer before the proxy has filed it."""
        with self.lock:
            self.idle.wait_for(lambda: self.in_flight <= 0, timeout)
            recorded, self.recorded = self.recorded, []
            return {"recorded": recorded, "unmatched": list(self.unmatched), "played": self.played}


Wait = Callable[[float], None]


def _write_headers(handler: Any, status: int, reason: str, headers: list[tuple[str, str]], chunked: bool, length: int) -> None:
    handler.request_id = None  # the recorded/upstream request id is the one sent
    handler.send_response(status, reason or None)
    for key, value in headers:
        if key.lower() not in HOP_BY_HOP and key.lower() not in ("server", "date"):
            handler.send_header(key, value)
    if chunked:
        handler.send_header("Transfer-Encoding", "chunked")
    elif status >= 200 and status not in (204, 304):
        handler.send_header("Content-Length", str(length))
    handler.end_headers()


def _write_chunk(handler: Any, data: bytes) -> None:
    handler.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def forward(handler: Any, url: str, method: str, body: bytes, wait: Wait) -> dict[str, Any]:
    """Send the request to ``url`` and stream the answer back to ``handler``'s client as it comes
    (each upstream read one chunk); returns the interaction (bodies base64, chunk offsets in seconds).
    A :class:`SignedURL`'s request is re-signed for its host (the interaction keeps the client's headers)."""
    parts = urllib.parse.urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=UPSTREAM_TIMEOUT)
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP}
    headers["Accept-Encoding"] = "identity"
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    signing = getattr(url, "aws", None)
    if signing is not None:
        headers = _sigv4.sign(method, str(url), headers, body, **signing)
    start = time.monotonic()
    try:
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        elapsed = time.monotonic() - start
        out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP]
        chunks: list[list[float]] | None = None
        client_ok = True
        if resp.chunked:
            chunks = []
            pieces = []
            try:
                _write_headers(handler, resp.status, resp.reason, out_headers, True, 0)
            except OSError:
                client_ok = False
            while True:
                data = resp.read1(65536)
                if not data:
                    break
                chunks.append([round(time.monotonic() - start, 6), len(data)])
                pieces.append(data)
                if client_ok:
                    try:
                        _write_chunk(handler, data)
                    except OSError:
                        client_ok = False
            payload = b"".join(pieces)
            if client_ok:
                try:
                    handler.wfile.write(b"0\r\n\r\n")
                    handler.wfile.flush()
                except OSError:
                    pass
        else:
            payload = resp.read()
            _write_headers(handler, resp.status, resp.reason, out_headers, False, len(payload))
            handler.wfile.write(payload)
        done = time.monotonic() - start
    finally:
        conn.close()
    return {
        "request": {
            "method": method,
            "uri": url,
            "headers": {k: [v] for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP},
            "body": body.decode("utf-8", "replace"),
        },
        "response": {
            "status": {"code": resp.status, "message": resp.reason},
            "headers": _grouped(out_headers),
            "body_b64": _b64(payload),
            "elapsed": round(elapsed, 6),
            "duration": round(done, 6),
            "chunks": chunks,
        },
    }


def _grouped(headers: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for key, value in headers:
        grouped.setdefault(key, []).append(value)
    return grouped


def replay(handler: Any, interaction: dict[str, Any], latency: str, wait: Wait) -> None:
    """Serve a recorded interaction: status and headers after the recorded wait for them, then
    the body (a stream chunk by chunk at the recorded offsets); ``latency="none"``: no waits."""
    response = interaction["response"]
    body = base64.b64decode(response.get("body_b64") or "")
    chunks = response.get("chunks")
    timed = latency == "recorded"
    start = time.monotonic()
    if timed:
        wait(float(response.get("elapsed") or 0.0))
    headers = [(k, v) for k, values in (response.get("headers") or {}).items() for v in values]
    status = int(response["status"]["code"])
    reason = str(response["status"].get("message") or "")
    if not chunks:
        if timed:
            wait(float(response.get("duration") or 0.0) - (time.monotonic() - start))
        _write_headers(handler, status, reason, headers, False, len(body))
        handler.wfile.write(body)
        return
    _write_headers(handler, status, reason, headers, True, 0)
    position = 0
    for offset, size in chunks:
        if timed:
            wait(float(offset) - (time.monotonic() - start))
        _write_chunk(handler, body[position: position + int(size)])
        position += int(size)
    if position < len(body):
        _write_chunk(handler, body[position:])
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()
