"""Child-process side of :class:`pytest_baml_telemetry.fake.server.FakeLLMServer`.

Run as ``python -I -S _server_child.py --host 127.0.0.1 --port 0 --parent-pid N``.
Standard library only (no ``baml_py``, no site-packages) so it starts in a few tens
of milliseconds. The one thing it takes from this package is the wire formats
(``pytest_baml_telemetry.wire.*``, themselves standard library only): they are imported
under a bare package entry, without running the package's ``__init__``
(:func:`import_wire`), so both sides of the fake speak the same formats.

Protocol with the parent (one JSON object per line):

* on start the child writes ``{"event": "ready", "host": ..., "port": ..., "pid": ...}``
  (or ``{"event": "error", "error": ...}`` and exits with status 2) to stdout;
* the parent then writes commands ``{"id": n, "cmd": ..., ...}`` to stdin and the
  child answers each with ``{"id": n, "ok": true, "result": ...}`` or
  ``{"id": n, "ok": false, "error": ...}``. Commands: ``ping``, ``script``
  (append one scripted outcome), ``requests``, ``pending``, ``reset``, ``stop``, and for
  cassettes (:mod:`._server_proxy`) ``cassette`` (load a config, or ``None`` to unload),
  ``upstreams`` (each client's own endpoint) and ``cassette_take`` (what was recorded).

Because every command is answered only after it took effect, a script is queued
before the parent's ``respond()`` returns: there is no race with a request sent
right afterwards.

The child exits as soon as stdin reaches EOF (the parent closed it or died) or
its parent process changes, so it can never outlive the test run.

The HTTP side serves each provider's wire format at its paths: :data:`FORMATS` is the one
dispatch table from a path to a wire module (OpenAI chat completions on ``POST
/v1/chat/completions``, ``/chat/completions`` and Azure's
``/openai/deployments/{name}/chat/completions``; OpenAI Responses on ``/v1/responses``;
Anthropic Messages on ``/v1/messages``;
Gemini on ``/v1beta/models/{model}:generateContent`` and ``:streamGenerateContent``; Bedrock
Converse on ``/model/{modelId}/converse`` and ``/converse-stream``, binary event-stream frames).
The handler asks the module for everything format-specific: whether the request streams,
the answer's body, its stream events and their framing, usage, finish reasons, error
bodies and the request-id header. A path may start with a client tag ``/_c/{client}``
(:func:`split_tag`), stripped and recorded. A request is served the first queued script
whose filters (``client``, ``provider``: the format's name) match it (:func:`matches`).
While a cassette is loaded, it serves every request instead of the scripts
(:meth:`Handler._cassette`: replayed, forwarded and recorded, or refused). Every request is recorded, credentials masked (:func:`is_secret`: every header and query
parameter whose name holds ``auth``, ``key``, ``token``, ``secret``, ``password``,
``cookie``, ...), before it is answered.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import os
import signal
import socket
import sys
import threading
import time
import types
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

_PACKAGE = "pytest_baml_telemetry"


def import_wire(name: str = "openai") -> types.ModuleType:
    """Import ``pytest_baml_telemetry.wire.<name>``, also when this file runs as a script.

    Run by :class:`~.server.FakeLLMServer` (``-I -S``: no site-packages, no script
    directory on ``sys.path``), the package is not importable, and its ``__init__``
    would import far more than the wire format. A bare module with the package's
    ``__path__`` stands in for it, so that ``wire`` and its standard-library-only
    imports load from this checkout as they are. Inside the test process the real
    package is already imported and is used as it is.
    """
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        sys.modules[_PACKAGE] = package
    return import_package_module(f"wire.{name}")


def import_package_module(name: str) -> types.ModuleType:
    """Import ``pytest_baml_telemetry.<name>`` (``wire.openai``, ``fake._server_proxy``) as
    :func:`import_wire` does: under bare package entries, without running any ``__init__``."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [root]
        sys.modules[_PACKAGE] = package
    if name.startswith("fake.") and f"{_PACKAGE}.fake" not in sys.modules:
        fake = types.ModuleType(f"{_PACKAGE}.fake")
        fake.__path__ = [os.path.join(root, "fake")]
        sys.modules[f"{_PACKAGE}.fake"] = fake
    return importlib.import_module(f"{_PACKAGE}.{name}")


if TYPE_CHECKING:
    from ..wire import anthropic, bedrock, common, google, openai, openai_responses
    from . import _server_proxy as proxy
else:
    proxy = import_package_module("fake._server_proxy")
    openai = import_wire("openai")
    common = import_wire("common")
    anthropic = import_wire("anthropic")
    google = import_wire("google")
    openai_responses = import_wire("openai_responses")
    bedrock = import_wire("bedrock")

MASK = "***"
SECRET_PARTS = ("auth", "key", "token", "secret", "password", "passwd", "cookie", "credential", "signature", "session")
"""A header or query parameter whose lower-cased name contains one of these is recorded masked."""
SECRET_NAMES = frozenset({"sig", "code", "pwd"})
"""Query parameters masked by their whole name (too short to look for inside other names)."""


def is_secret(name: str) -> bool:
    """Whether a header or query parameter called ``name`` may carry a credential (any case)."""
    lowered = name.lower()
    return lowered in SECRET_NAMES or any(part in lowered for part in SECRET_PARTS)


def mask_path(path: str) -> str:
    """``path`` with the value of every secret query parameter replaced by ``***``.

    The rest of the path is kept as sent; a parameter's name is decoded
    (``api%2Dkey``, ``api+key``) before it is looked at.
    """
    if "?" not in path:
        return path
    base, query = path.split("?", 1)
    fragment = ""
    if "#" in query:
        query, fragment = query.split("#", 1)
        fragment = "#" + fragment
    parts = []
    for item in query.split("&"):
        name, eq, _ = item.partition("=")
        if is_secret(urllib.parse.unquote_plus(name)):
            item = f"{name}={MASK}" if eq else item
        parts.append(item)
    return f"{base}?{'&'.join(parts)}{fragment}"



class State:
    """Scripts, recorded requests and the event that releases waiting handlers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scripts: collections.deque[dict[str, Any]] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.counter = 0
        self.cassette: Any = None  # a proxy.ChildCassette while a cassette is loaded

    def take(self, record: dict[str, Any], wire: Any) -> tuple[dict[str, Any] | None, threading.Event]:
        """Record a request and, for a chat request, take the first script matching it, atomically."""
        with self.lock:
            record["index"] = len(self.requests)
            self.counter += 1  # never reset: ids stay unique over resets
            record["request_id"] = (wire or openai).request_id(f"fake{os.getpid():x}x", self.counter)
            script = None
            if wire is not None:
                script = self._match(record)
                record["served"] = script["kind"] if script else "unscripted"
                record["script"] = script["describe"] if script else None
            else:
                record["served"] = "not_found"
                record["script"] = None
            self.requests.append(record)
            return script, self.release

    def _match(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Remove and return the first script whose filters (``client``, ``provider``) match ``record``."""
        for i, script in enumerate(self.scripts):
            if matches(script, record):
                del self.scripts[i]
                return script
        return None

    def reset(self) -> None:
        with self.lock:
            self.scripts.clear()
            self.requests.clear()
            old, self.release = self.release, threading.Event()
        old.set()  # wake handlers sleeping in hang()/latency: they drop their connection


def matches(script: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether a request may be served ``script``: each filter it has equals the request's value."""
    for key in FILTERS:
        wanted = script.get(key)
        if wanted is not None and wanted != record.get(key):
            return False
    return True


FILTERS = ("client", "provider")
"""The filters a script may have; a request is recorded with a value for each."""


def split_tag(path: str) -> tuple[str | None, str]:
    """``(client, path)`` of a path that may start with a client tag ``/_c/{client}``
    (``FakeLLMServer.client_options(client=...)``); an untagged path gives ``(None, path)``."""
    if not path.startswith(CLIENT_TAG):
        return None, path
    rest = path[len(CLIENT_TAG):]
    name, slash, tail = rest.partition("/")
    client = urllib.parse.unquote(name)
    return (client or None), slash + tail if slash else "/"


CLIENT_TAG = "/_c/"

FORMATS: tuple[tuple[str, Any], ...] = (
    ("openai", openai),
    ("openai-responses", openai_responses),
    ("anthropic", anthropic),
    ("google-ai", google),
    ("aws-bedrock", bedrock),
)
"""The dispatch table, ``(provider, wire module)``: a request is served by the first format
whose ``is_chat_path(path)`` accepts its path (without the query); the provider recorded is the
format's name."""


def wire_for(method: str, path: str) -> tuple[str | None, Any]:
    """``(provider, wire module)`` serving ``method path`` (``(None, None)``: nothing serves it)."""
    if method == "POST":
        for provider, module in FORMATS:
            if module.is_chat_path(path):
                return provider, module
    return None, None


SERVED_PATHS = (
    "POST /v1/chat/completions, /chat/completions, /openai/deployments/{name}/chat/completions, /v1/responses, /v1/messages, "
    "/v1beta/models/{model}:generateContent, /v1beta/models/{model}:streamGenerateContent, "
    "/model/{modelId}/converse, /model/{modelId}/converse-stream"
)
"""What the 404 for a path no format serves lists."""


def describe_scripts(scripts: list[dict[str, Any]]) -> str:
    """The queued scripts, as the 500 for an unmatched request names them (with their filters)."""
    return "; ".join(s["describe"] for s in scripts)


STATE = State()


class _Released(Exception):
    """A waiting handler was released by reset(): drop the connection."""


def _wait(release: threading.Event, seconds: float) -> None:
    # the parent allows up to contract.MAX_NATIVE ns, a little beyond what a wait can take
    if seconds > 0 and release.wait(min(seconds, threading.TIMEOUT_MAX)):
        raise _Released()


def _now() -> int:
    return int(time.time())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLMServer/1.0"

    request_id: str | None = None
    body: Any = None
    wire: Any = openai  # the wire module serving the request (OpenAI's for a path none serves)

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without TCP_NODELAY, Nagle's algorithm and the
        # client's delayed ACK held the body ~40 ms for Python clients (httpx, http.client)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def send_response(self, code: int, message: str | None = None) -> None:
        super().send_response(code, message)
        if self.request_id is not None:
            self.send_header(self.wire.REQUEST_ID_HEADER, self.request_id)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    # -- plumbing ----------------------------------------------------------------

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json", extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if status < 200:
            # an informational status as a final answer: nothing else can follow
            self.end_headers()
            self.close_connection = True
            self._drop()
            return
        if status in (204, 304):
            self.end_headers()
            return
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drop(self) -> None:
        """Close the connection abruptly (no complete HTTP message)."""
        self.close_connection = True
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", self.wire.STREAM_CONTENT_TYPE)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, event: Any) -> None:
        """Send one stream event as one HTTP chunk."""
        payload = self.wire.encode_event(event)
        self.wfile.write(b"%X\r\n%s\r\n" % (len(payload), payload))
        self.wfile.flush()

    def _end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    # -- dispatch ----------------------------------------------------------------

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _handle(self) -> None:
        raw = self._read_body()
        text = raw.decode("utf-8", "replace")
        try:
            body = json.loads(text) if raw else None
        except ValueError:
            body = None
        client, target = split_tag(self.path)
        path = target.split("?", 1)[0]
        shown = mask_path(target)
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            k = key.lower()
            headers[k] = MASK if is_secret(k) else value
        provider, wire = wire_for(self.command, path)
        stream = (wire or openai).request_stream(body, path)
        record = {
            "method": self.command,
            "path": shown,
            "headers": headers,
            "json": body,
            "body": text,
            "stream": stream,
            "time_ns": time.time_ns(),
            "client": client,
            "provider": provider,
        }
        self.body = body
        cassette = STATE.cassette
        if cassette is not None:
            self._cassette(cassette, record, raw, client, target, wire)
            return
        script, release = STATE.take(record, wire)
        self.request_id = str(record["request_id"])
        if wire is None:
            message = (
                f"FakeLLMServer: {self.command} {shown} is not served; the served paths are "
                f"{SERVED_PATHS} (each provider's, see FakeLLMServer.client_options)."
            )
            self._send(404, _json(openai.error_body(message, "invalid_request_error")))
            return
        self.wire = wire
        if script is None:
            with STATE.lock:
                waiting = list(STATE.scripts)
            sender = f", client {client!r}" if client is not None else ""
            message = (
                f"FakeLLMServer: nothing scripted for request #{record['index']} "
                f"({self.command} {shown}{sender}, provider {provider!r}); "
                + (
                    f"{len(waiting)} queued script(s) are for other requests: {describe_scripts(waiting)}; "
                    if waiting else ""
                )
                + "script responses with server.respond(...) / server.fail(...) before the call "
                "(client=/provider= target a client or a wire format)."
            )
            self._send(500, _json(wire.error_body(message, "fake_llm_server_unscripted", "unscripted")))
            return
        model = script.get("model")
        if model is None:
            model = wire.request_model(body) or wire.path_model(path) or "fake-model"
        try:
            _wait(release, script.get("latency", 0.0))
            getattr(self, "_do_" + script["kind"])(script, stream, model, release, record["index"])
        except _Released:
            self._drop()

    def _cassette(self, cassette: Any, record: dict[str, Any], raw: bytes, client: str | None, target: str, wire: Any) -> None:
        """Serve a request from the loaded cassette: replay, forward and record, or refuse (HTTP 500)."""
        url = proxy.upstream_url(cassette.upstreams, client, target)
        asked = {"method": self.command, "uri": url or target, "body": record["body"], "client": client}
        with STATE.lock:
            record["index"] = asked["index"] = len(STATE.requests)
            release = STATE.release
            action, item = cassette.decide(asked)
            record["served"] = "cassette_" + action
            record["script"] = item if action == "unmatched" else f"cassette {cassette.name}"
            STATE.requests.append(record)
        self.request_id = None
        self.wire = wire or openai
        try:
            if action == "replay":
                proxy.replay(self, item, cassette.latency, lambda s: _wait(release, s))
            elif action == "unmatched":
                body = self.wire.error_body(f"FakeLLMServer: {item}", "fake_llm_server_cassette", "cassette_unmatched")
                self._send(500, _json(body))
            elif url is None:
                message = (
                    f"FakeLLMServer: cannot record request #{record['index']} ({self.command} {mask_path(target)}): "
                    f"no upstream is known for client {client!r}; point the client at the server with "
                    "server.route(b) (which tells the server each client's own endpoint)"
                )
                cassette.add(None, message)
                self._send(502, _json(self.wire.error_body(message, "fake_llm_server_cassette", "no_upstream")))
            else:
                self._forward(cassette, url, raw, record["index"], client, release)
        except _Released:
            self._drop()

    def _forward(self, cassette: Any, url: str, raw: bytes, index: int, client: str | None, release: threading.Event) -> None:
        """Forward a request to its upstream and file the interaction (or why it failed)."""
        interaction = failure = None
        try:
            interaction = proxy.forward(self, url, self.command, raw, lambda s: _wait(release, s))
            interaction["client"] = client
        except Exception as exc:  # refused, reset, a broken HTTP answer: the test is told, the child serves on
            failure = f"FakeLLMServer: recording request #{index} failed: {url.split('?')[0]} did not answer: {type(exc).__name__}: {exc}"
        finally:
            cassette.add(interaction, failure if interaction is None else None)
        if failure is not None:
            self._send(502, _json(self.wire.error_body(failure, "fake_llm_server_cassette", "upstream_failed")))

    # -- outcomes ----------------------------------------------------------------

    def _completion_id(self, index: int) -> str:
        return str(self.wire.new_id(f"fake{os.getpid()}x{index}"))

    def _events(self, pieces: list[str], model: str, index: int, **kw: Any) -> list[Any]:
        asked = self.wire.request_include_usage(self.body)
        return list(self.wire.stream_events(pieces, id=self._completion_id(index), model=model, created=_now(), null_usage=asked, **kw))

    def _do_respond(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        wire = self.wire
        content = script["content"]
        usage = wire.usage_to_wire(script.get("usage"))
        finish = wire.finish_reason(script.get("finish_reason") or "stop")
        if not stream:
            body = wire.completion_body(
                content, id=self._completion_id(index), model=model, created=_now(), finish_reason=finish, usage=usage
            )
            self._send(200, _json(body))
            return
        pieces = common.split_content(content, script.get("chunks"))
        send_usage = script.get("usage_chunk")
        if send_usage is None:
            send_usage = wire.request_include_usage(self.body)
        events = self._events(pieces, model, index, finish_reason=finish, usage=usage if send_usage else None)
        self._stream(events, wire.OPENING_EVENTS, wire.OPENING_EVENTS + len(pieces), script.get("chunk_delay", 0.0), release)
        self._end_sse()

    def _stream(self, events: list[Any], first: int, end: int, delay: float, release: threading.Event) -> None:
        """Start a stream and send ``events``, ``delay`` apart between the content events
        ``events[first:end]``."""
        self._start_sse()
        for i, event in enumerate(events):
            if first < i < end:
                _wait(release, delay)
            self._event(event)

    def _do_fail(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        status = script["status"]
        extra = {}
        if script.get("retry_after") is not None:
            extra["Retry-After"] = str(script["retry_after"])
        body = script.get("body")
        content_type = "application/json"
        kind, code = self.wire.error_type(status)
        # the format's error headers (Bedrock's x-amzn-ErrorType) go with a scripted body too: the
        # AWS SDK reads the error kind from them (without, a 429 is not retried as a throttle)
        extra.update(getattr(self.wire, "error_headers", _no_headers)(kind))
        if body is None:
            phrase = self.responses.get(status, ("",))[0]
            message = f"FakeLLMServer scripted failure: HTTP {status} {phrase}".rstrip()
            payload = _json(self.wire.error_body(message, kind, code))
        elif script.get("body_is_json"):
            payload = _json(body)
        else:
            payload = str(body).encode()
            content_type = "text/plain; charset=utf-8"
        self._send(status, payload, content_type, extra)

    def _do_hang(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        _wait(release, script["seconds"])
        self._drop()

    def _do_malformed(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        body = script["body"]
        if not stream:
            self._send(200, body.encode(), "application/json")
            return
        self._stream(self.wire.malformed_events(body), 0, 0, 0.0, release)  # an event whose data is not JSON
        self._end_sse()

    def _do_fail_stream(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        opening = self.wire.OPENING_EVENTS
        if stream:
            pieces = common.split_content(script["content"], script.get("chunks"))[: script["after_chunks"]]
            events = self._events(pieces, model, index)
            self._stream(events[: opening + len(pieces)], opening, opening + len(pieces), script.get("chunk_delay", 0.0), release)
            self._drop()
            return
        # a non-streaming request: announce the whole body, send part of it, hang up
        payload = _json(self.wire.completion_body(script["content"], id=self._completion_id(index), model=model, created=_now()))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self._drop()


def _no_headers(kind: str) -> dict[str, str]:
    return {}


def _json(body: Any) -> bytes:
    return json.dumps(body).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        # clients hanging up (timeouts, aborted streams) are expected: stay quiet
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


def _write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _command(msg: dict[str, Any]) -> Any:
    cmd = msg.get("cmd")
    if cmd == "ping":
        return "pong"
    if cmd == "script":
        script = msg["script"]
        with STATE.lock:
            STATE.scripts.append(script)
        return len(STATE.scripts)
    if cmd == "requests":
        with STATE.lock:
            return list(STATE.requests)
    if cmd == "pending":
        with STATE.lock:
            return [s["describe"] for s in STATE.scripts]
    if cmd == "reset":
        STATE.reset()
        return None
    if cmd == "cassette":  # load one (config) or unload (None)
        config = msg.get("config")
        STATE.cassette = None if config is None else proxy.ChildCassette(config)
        return None
    if cmd == "upstreams":
        if STATE.cassette is not None:
            with STATE.cassette.lock:
                STATE.cassette.upstreams.update(msg["upstreams"])
        return None
    if cmd == "cassette_take":
        return None if STATE.cassette is None else STATE.cassette.take()
    raise ValueError(f"unknown command {cmd!r}")


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="_server_child")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args(argv)
    try:  # Ctrl-C in the terminal reaches the whole process group: the parent decides when we stop
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        pass

    Server.address_family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    try:
        httpd = Server((args.host, args.port), Handler)
    except OSError as exc:
        _write({"event": "error", "error": f"cannot bind {args.host}:{args.port}: {exc}"})
        return 2
    port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="fake-llm-http", daemon=True).start()
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), name="fake-llm-watch", daemon=True).start()
    _write({"event": "ready", "host": args.host, "port": port, "pid": os.getpid()})

    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg: dict[str, Any] = {}
        try:
            msg = json.loads(line)
            if msg.get("cmd") == "stop":
                _write({"id": msg.get("id"), "ok": True, "result": None})
                break
            result = _command(msg)
            _write({"id": msg.get("id"), "ok": True, "result": result})
        except Exception as exc:  # report to the parent, keep serving
            _write({"id": msg.get("id"), "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    # stdin closed (parent stopped or died) or "stop": leave at once, dropping connections
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
