"""Child-process side of :class:`pytest_baml_telemetry.fake.server.FakeLLMServer`.

Run as ``python -I -S _server_child.py --host 127.0.0.1 --port 0 --parent-pid N``.
Standard library only (no ``baml_py``, not even this package) so it starts in a
few tens of milliseconds.

Protocol with the parent (one JSON object per line):

* on start the child writes ``{"event": "ready", "host": ..., "port": ..., "pid": ...}``
  (or ``{"event": "error", "error": ...}`` and exits with status 2) to stdout;
* the parent then writes commands ``{"id": n, "cmd": ..., ...}`` to stdin and the
  child answers each with ``{"id": n, "ok": true, "result": ...}`` or
  ``{"id": n, "ok": false, "error": ...}``. Commands: ``ping``, ``script``
  (append one scripted outcome), ``requests``, ``pending``, ``reset``, ``stop``.

Because every command is answered only after it took effect, a script is queued
before the parent's ``respond()`` returns: there is no race with a request sent
right afterwards.

The child exits as soon as stdin reaches EOF (the parent closed it or died) or
its parent process changes, so it can never outlive the test run.

The HTTP side speaks the OpenAI chat-completions API on ``POST /v1/chat/completions``
(``/chat/completions`` is tolerated): JSON when the request has no ``"stream": true``,
otherwise server-sent events with chunked transfer encoding, a final chunk carrying
``finish_reason``, a usage chunk (``"choices": []``) when usage is scripted, then
``data: [DONE]``. Every request is recorded, API-key headers masked, before it is
answered.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MASK = "***"
MASKED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "openai-api-key",
        "x-goog-api-key",
        "cookie",
        "set-cookie",
    }
)
CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", None),
    408: ("timeout_error", None),
    409: ("conflict_error", None),
    422: ("invalid_request_error", None),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class State:
    """Scripts, recorded requests and the event that releases waiting handlers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scripts: collections.deque[dict[str, Any]] = collections.deque()
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.counter = 0

    def take(self, record: dict[str, Any], chat: bool) -> tuple[dict[str, Any] | None, threading.Event]:
        """Record a request and, for a chat request, pop the next script atomically."""
        with self.lock:
            record["index"] = len(self.requests)
            script = None
            if chat:
                script = self.scripts.popleft() if self.scripts else None
                record["served"] = script["kind"] if script else "unscripted"
                record["script"] = script["describe"] if script else None
            else:
                record["served"] = "not_found"
                record["script"] = None
            self.requests.append(record)
            return script, self.release

    def reset(self) -> None:
        with self.lock:
            self.scripts.clear()
            self.requests.clear()
            old, self.release = self.release, threading.Event()
        old.set()  # wake handlers sleeping in hang()/latency: they drop their connection


STATE = State()


class _Released(Exception):
    """A waiting handler was released by reset(): drop the connection."""


def _wait(release: threading.Event, seconds: float) -> None:
    if seconds > 0 and release.wait(seconds):
        raise _Released()


def _now() -> int:
    return int(time.time())


def _split(content: str, chunks: Any) -> list[str]:
    """Split streamed content: a list of pieces, a piece count, or words (default)."""
    if isinstance(chunks, list):
        return [str(c) for c in chunks]
    if isinstance(chunks, int) and chunks > 0:
        n = min(chunks, max(len(content), 1))
        size, extra = divmod(len(content), n)
        out, pos = [], 0
        for i in range(n):
            step = size + (1 if i < extra else 0)
            out.append(content[pos : pos + step])
            pos += step
        return out
    # default: one chunk per word, whitespace attached to the word before it
    out = []
    word = ""
    for ch in content:
        if word and not ch.isspace() and word[-1].isspace():
            out.append(word)
            word = ""
        word += ch
    if word or not out:
        out.append(word)
    return out


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeLLMServer/1.0"

    def version_string(self) -> str:
        return self.server_version

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
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _sse(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        payload = f"data: {text}\n\n".encode()
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
        path = self.path.split("?", 1)[0]
        headers: dict[str, str] = {}
        for key, value in self.headers.items():
            k = key.lower()
            headers[k] = MASK if k in MASKED_HEADERS else value
        stream = isinstance(body, dict) and body.get("stream") is True
        record = {
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "json": body,
            "body": text,
            "stream": stream,
            "time_ns": time.time_ns(),
        }
        chat = self.command == "POST" and path in CHAT_PATHS
        script, release = STATE.take(record, chat)
        if not chat:
            message = (
                f"FakeLLMServer: {self.command} {self.path} is not served; "
                "only POST /v1/chat/completions (OpenAI chat completions) is."
            )
            self._send(404, _error_body(message, "not_found_error", None))
            return
        if script is None:
            message = (
                f"FakeLLMServer: nothing scripted for request #{record['index']} "
                f"({self.command} {self.path}); script responses with "
                "server.respond(...) / server.fail(...) before the call."
            )
            self._send(500, _error_body(message, "fake_llm_server_unscripted", "unscripted"))
            return
        model = script.get("model")
        if model is None:
            model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else "fake-model"
        try:
            _wait(release, script.get("latency", 0.0))
            getattr(self, "_do_" + script["kind"])(script, stream, model, release, record["index"])
        except _Released:
            self._drop()

    # -- outcomes ----------------------------------------------------------------

    def _completion_id(self, index: int) -> str:
        return f"chatcmpl-fake{os.getpid()}x{index}"

    def _do_respond(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        content = script["content"]
        usage = script.get("usage")
        finish = script.get("finish_reason") or "stop"
        cid = self._completion_id(index)
        if not stream:
            out: dict[str, Any] = {
                "id": cid,
                "object": "chat.completion",
                "created": _now(),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "logprobs": None,
                        "finish_reason": finish,
                    }
                ],
            }
            if usage is not None:
                out["usage"] = usage
            self._send(200, json.dumps(out).encode())
            return
        self._stream_chunks(script, model, cid, release, limit=None)
        base = {"id": cid, "object": "chat.completion.chunk", "created": _now(), "model": model}
        self._sse({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}]})
        if usage is not None:
            self._sse({**base, "choices": [], "usage": usage})
        self._sse("[DONE]")
        self._end_sse()

    def _stream_chunks(self, script: dict[str, Any], model: str, cid: str, release: threading.Event, limit: int | None) -> None:
        pieces = _split(script["content"], script.get("chunks"))
        if limit is not None:
            pieces = pieces[:limit]
        delay = script.get("chunk_delay", 0.0)
        base = {"id": cid, "object": "chat.completion.chunk", "created": _now(), "model": model}
        self._start_sse()
        for i, piece in enumerate(pieces):
            if i:
                _wait(release, delay)
            delta: dict[str, Any] = {"content": piece}
            if i == 0:
                delta = {"role": "assistant", "content": piece}
            self._sse({**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]})

    def _do_fail(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        status = script["status"]
        extra = {}
        if script.get("retry_after") is not None:
            extra["Retry-After"] = str(script["retry_after"])
        body = script.get("body")
        content_type = "application/json"
        if body is None:
            kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "api_error", None))
            phrase = self.responses.get(status, ("",))[0]
            message = f"FakeLLMServer scripted failure: HTTP {status} {phrase}".rstrip()
            payload = _error_body(message, kind, code)
        elif script.get("body_is_json"):
            payload = json.dumps(body).encode()
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
        self._start_sse()
        self._sse(body)
        self._sse("[DONE]")
        self._end_sse()

    def _do_fail_stream(self, script: dict[str, Any], stream: bool, model: str, release: threading.Event, index: int) -> None:
        cid = self._completion_id(index)
        if stream:
            self._stream_chunks(script, model, cid, release, limit=script["after_chunks"])
            self._drop()
            return
        # a non-streaming request: announce the whole body, send part of it, hang up
        out = {
            "id": cid,
            "object": "chat.completion",
            "created": _now(),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": script["content"]}, "finish_reason": "stop"}],
        }
        payload = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self._drop()


def _error_body(message: str, kind: str, code: Any) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


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
