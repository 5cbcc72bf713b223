"""The network guard: while a test runs under it, no BAML HTTP request leaves the machine.

baml-py's HTTP runs in Rust (reqwest), out of reach of Python socket patches, but it honours
the proxy variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, either
case), which the generated client passes from ``os.environ`` on every call. The guard is a
tiny proxy on 127.0.0.1 (a daemon thread, stdlib only): while it is *engaged* the proxy
variables point at it and ``NO_PROXY`` lists ``127.0.0.1,localhost,::1`` (so the fake server
is reached directly), and it refuses every request to a host that is not loopback — a
``CONNECT`` (https) gets ``403`` and never a tunnel, a plain ``http://`` request gets ``403``
with a JSON body naming the host, the client and the fix (baml-py's error message carries
it). Every refusal is recorded (:class:`BlockedRequest`) so that the plugin fails the test at
teardown naming client, host and fix: a green run never hides a blocked call (for a
``CONNECT`` baml-py only says ``TunnelUnsuccessful``, status 2).

When read (measured with baml-py 0.226.3): a client declared in .baml reads the proxy
variables once, at its first request in the process, and keeps them; a ``ClientRegistry``
client reads them on every call. Hence a declared client first used while the guard was
engaged keeps sending to the guard, which then *forwards* (tunnels ``CONNECT``, relays plain
requests) whenever it is not blocking (a test marked ``baml_allow_network``, or no guard);
and a declared client whose first request came before the guard was engaged (an earlier
test without the guard, import time) never sees the guard — ``--baml-block-network``
engages it at start-up for the whole run, so that every client is covered.

``vertex-ai`` exchanges a Google OAuth token before its request, without the proxy: while
the guard blocks, ``GOOGLE_APPLICATION_CREDENTIALS`` names a file that does not exist, and
whose name says why, so a vertex-ai client without inline ``credentials`` fails on this
machine; :meth:`NetworkGuard.refusal_url` is the endpoint ``route`` points vertex-ai clients at.
"""

from __future__ import annotations

import ipaddress
import json
import os
import select
import socket
import threading
from collections.abc import Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

__all__ = [
    "LOOPBACK_NO_PROXY", "PROXY_VARIABLES", "VERTEX_CREDENTIALS_NAME", "BlockedRequest", "NetworkGuard",
    "blocked_report", "end_test_scope", "engage_for_test", "get_guard", "guess_clients", "is_loopback", "guard_made", "set_test_scope", "stop_guard",
]

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy")
NO_PROXY_VARIABLES = ("NO_PROXY", "no_proxy")
LOOPBACK_NO_PROXY = "127.0.0.1,localhost,::1"
VERTEX_CREDENTIALS_NAME = "pytest-baml-telemetry-network-guard--vertex-ai-cannot-be-faked-offline.json"
ROUTE_HINT = (
    "route every client of your generated client at the fake server with `b = baml_llm_server.route(b)` "
    "(sync, async or instrument(b)), or let this test reach the network with @pytest.mark.baml_allow_network"
)
_REFUSAL_PATH = "/pytest-baml-telemetry-guard/"
_MAX_HEAD = 65536


class BlockedRequest(NamedTuple):
    """A request the guard refused: ``method`` (``CONNECT`` for https), ``host``, ``port``, the
    ``url`` when the request showed it (plain http), the ``clients`` that send there (the one
    known, or those the loaded generated clients declare for that host), a ``note``."""

    method: str
    host: str
    port: int
    url: str | None = None
    clients: tuple[str, ...] = ()
    note: str | None = None

    def describe(self) -> str:
        """One line: what was refused and which client sent it (or may have)."""
        target = self.url or f"{self.host}:{self.port}"
        if self.clients:
            who = "client " + " or ".join(repr(c) for c in self.clients)
        else:
            who = "a client no loaded baml_client declares for this host (a ClientRegistry entry, or not a BAML request: httpx, requests and urllib honour the proxy variables too)"
        return f"{self.method} {target} — {who}" + (f": {self.note}" if self.note else "")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 with or without brackets) is this machine."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_target(target: str, default_port: int) -> tuple[str, int]:
    host, sep, port = target.rpartition(":")
    if not sep or "]" in port or not port.isdigit():
        return target.strip("[]"), default_port
    return host.strip("[]"), int(port)


class NetworkGuard:
    """The guard proxy of this process (see the module docstring); :func:`get_guard` makes it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._blocking = False
        self._engaged = 0
        self._saved: dict[str, str | None] | None = None
        self._blocked: list[BlockedRequest] = []
        self._credentials_dir: str | None = None
        self._vertex_saved: tuple[bool, str | None] | None = None

    # -- lifecycle ----------------------------------------------------------------

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (the proxy starts on first use)."""
        return f"http://127.0.0.1:{self._start()}"

    def _start(self) -> int:
        with self._lock:
            if self._sock is None:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", 0))
                sock.listen(128)
                self._sock = sock
                threading.Thread(target=self._serve, args=(sock,), name="baml-network-guard", daemon=True).start()
            return int(self._sock.getsockname()[1])

    def stop(self) -> None:
        """Release the environment and close the proxy (forwarding stops too)."""
        self.release(all_levels=True)
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    @property
    def engaged(self) -> bool:
        """Whether the proxy variables point at the guard and it refuses non-loopback hosts."""
        return self._engaged > 0

    @property
    def blocking(self) -> bool:
        return self._blocking

    def engage(self) -> None:
        """Point the proxy variables at the guard and refuse non-loopback hosts (nests)."""
        url = self.url
        with self._lock:
            self._engaged += 1
            if self._engaged > 1:
                self._blocking = True
                return
            saved: dict[str, str | None] = {}
            for name in (*PROXY_VARIABLES, *NO_PROXY_VARIABLES):
                saved[name] = os.environ.get(name)
                os.environ[name] = url if name in PROXY_VARIABLES else LOOPBACK_NO_PROXY
            self._saved = saved
            self._blocking = True
        self._set_vertex_credentials(True)

    def release(self, *, all_levels: bool = False) -> None:
        """Undo one :meth:`engage` (every one with ``all_levels``): the variables are restored."""
        with self._lock:
            if self._engaged == 0:
                return
            self._engaged = 0 if all_levels else self._engaged - 1
            if self._engaged:
                return
            self._blocking = False
            saved, self._saved = self._saved or {}, None
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        self._set_vertex_credentials(False)

    def set_blocking(self, blocking: bool) -> None:
        """While engaged, refuse (``True``) or forward (``False``: a test allowed the network)."""
        self._blocking = bool(blocking) and self.engaged
        self._set_vertex_credentials(self._blocking)

    def _set_vertex_credentials(self, on: bool) -> None:
        name = "GOOGLE_APPLICATION_CREDENTIALS"
        if on and self._vertex_saved is None:
            if self._credentials_dir is None:
                import tempfile

                self._credentials_dir = tempfile.mkdtemp(prefix="baml-guard-")
            self._vertex_saved = (name in os.environ, os.environ.get(name))
            os.environ[name] = os.path.join(self._credentials_dir, VERTEX_CREDENTIALS_NAME)
        elif not on and self._vertex_saved is not None:
            present, value = self._vertex_saved
            self._vertex_saved = None
            if present and value is not None:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)

    # -- what was refused -----------------------------------------------------------

    @property
    def blocked(self) -> list[BlockedRequest]:
        """The requests refused since the last :meth:`take_blocked` (a copy)."""
        with self._lock:
            return list(self._blocked)

    def take_blocked(self) -> list[BlockedRequest]:
        """The requests refused since the last call, forgotten."""
        with self._lock:
            blocked, self._blocked = self._blocked, []
        return blocked

    def refusal_url(self, client: str, provider: str) -> str:
        """A loopback base URL whose every request is refused (and recorded) with a message
        saying that ``client`` (of ``provider``) cannot be faked offline."""
        from urllib.parse import quote

        return f"{self.url}{_REFUSAL_PATH}{quote(client, safe='')}/{quote(provider, safe='')}"

    # -- the proxy ------------------------------------------------------------------

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < _MAX_HEAD:
                data = conn.recv(65536)
                if not data:
                    return
                head += data
            line, _, rest = head.partition(b"\r\n")
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, target = parts[0].upper(), parts[1]
            headers = _headers(rest)
            if method == "CONNECT":
                host, port = _split_target(target, 443)
                self._connect(conn, host, port)
            elif target.startswith(_REFUSAL_PATH):
                client, _, provider = target[len(_REFUSAL_PATH):].partition("/")
                self._refuse_offline(conn, method, unquote(client), unquote(provider.split("/")[0]))
            elif "://" in target:
                split = urlsplit(target)
                host, port = split.hostname or "", split.port or (443 if split.scheme == "https" else 80)
                self._plain(conn, head, method, target, host, port, headers)
            else:
                _reply(conn, 400, {"error": {"message": "pytest-baml-telemetry network guard: not a proxy request"}})
        except OSError:
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _connect(self, conn: socket.socket, host: str, port: int) -> None:
        if self._blocking and not is_loopback(host):
            self._record(BlockedRequest("CONNECT", host, port, None, guess_clients(host, port)))
            _reply(conn, 403, {"error": {"message": f"pytest-baml-telemetry network guard: {host}:{port} is blocked"}})
            return
        upstream = socket.create_connection((host, port), timeout=30)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        _relay(conn, upstream, b"")

    def _plain(
        self, conn: socket.socket, head: bytes, method: str, url: str, host: str, port: int, headers: Mapping[str, str]
    ) -> None:
        if self._blocking and not is_loopback(host):
            blocked = BlockedRequest(method, host, port, url, guess_clients(host, port, headers.get("baml-original-url")))
            self._record(blocked)
            message = (
                f"pytest-baml-telemetry network guard: blocked {blocked.describe()} "
                f"(nothing left this machine); {ROUTE_HINT}"
            )
            _reply(conn, 403, {"error": {"message": message, "type": "network_guard"}})
            return
        upstream = socket.create_connection((host, port), timeout=30)
        _relay(conn, upstream, head)

    def _refuse_offline(self, conn: socket.socket, method: str, client: str, provider: str) -> None:
        note = (
            f"provider {provider} authenticates against Google (an OAuth token exchange that ignores proxies) "
            "before any request, so it cannot be faked offline; give the function a client the fake server "
            "speaks in tests (baml_llm_server.client_registry(...)), or mark the test baml_allow_network"
        )
        self._record(BlockedRequest(method, provider, 0, f"{provider} (routed by route(b))", (client,), note))
        _reply(conn, 403, {"error": {"message": f"pytest-baml-telemetry: client {client!r}: {note}", "type": "network_guard"}})

    def _record(self, blocked: BlockedRequest) -> None:
        with self._lock:
            self._blocked.append(blocked)


def _headers(rest: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in rest.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        name, sep, value = raw.decode("latin-1").partition(":")
        if sep:
            out[name.strip().lower()] = value.strip()
    return out


def _reply(conn: socket.socket, status: int, body: Mapping[str, Any]) -> None:
    data = json.dumps(body).encode()
    reason = {400: "Bad Request", 403: "Forbidden"}.get(status, "Error")
    conn.sendall(
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n".encode() + data
    )


def _relay(conn: socket.socket, upstream: socket.socket, first: bytes) -> None:
    """Copy bytes both ways until either side closes (``first`` goes upstream first)."""
    try:
        if first:
            upstream.sendall(first)
        conn.settimeout(None)
        upstream.settimeout(None)
        pair = {conn: upstream, upstream: conn}
        while True:
            ready, _, _ = select.select(list(pair), [], [], 300)
            if not ready:
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                pair[sock].sendall(data)
    finally:
        upstream.close()


# -- naming the client behind a refused host ---------------------------------------------

PROVIDER_HOSTS: Mapping[str, str] = {
    "openai": "api.openai.com",
    "openai-responses": "api.openai.com",
    "anthropic": "api.anthropic.com",
    "google-ai": "generativelanguage.googleapis.com",
    "vertex-ai": "aiplatform.googleapis.com",
    "aws-bedrock": "amazonaws.com",
    "azure-openai": "openai.azure.com",
}
"""The host (or domain) a provider calls when its client gives no ``base_url``."""


def _loaded_sources() -> list[Mapping[str, str]]:
    """The .baml sources of every generated client imported in this process."""
    import sys

    out = []
    for name, module in list(sys.modules.items()):
        if name.endswith(".inlinedbaml") and module is not None:
            files = getattr(module, "_file_map", None)
            if isinstance(files, Mapping):
                out.append(files)
    return out


def _port(split: Any) -> int:
    try:
        return int(split.port or (443 if split.scheme == "https" else 80))
    except ValueError:
        return 0


def guess_clients(host: str, port: int, base_url: str | None = None) -> tuple[str, ...]:
    """The clients of the loaded generated clients that call ``host:port``: the ones whose
    literal ``base_url`` is ``base_url`` (when given and any is), else whose ``base_url`` has
    that host and port, or that give none and whose provider calls that host by default."""
    from .fake.sources import client_blocks

    host = host.lower()
    exact: list[str] = []
    found: list[str] = []
    for files in _loaded_sources():
        try:
            blocks = client_blocks(files)
        except Exception:  # noqa: BLE001 - naming is best effort: never hide the refusal itself
            continue
        for block in blocks.values():
            if block.strategy:
                continue
            declared = block.options.get("base_url")
            if isinstance(declared, str) and "://" in declared:
                split = urlsplit(declared)
                if base_url is not None and declared.rstrip("/") == base_url.rstrip("/"):
                    exact.append(block.name)
                elif (split.hostname or "").lower() == host and _port(split) == port:
                    found.append(block.name)
            elif declared is None:
                domain = PROVIDER_HOSTS.get(block.provider or "")
                if domain is not None and port == 443 and (host == domain or host.endswith("." + domain)):
                    found.append(block.name)
    return tuple(dict.fromkeys(exact or found))


def blocked_report(blocked: list[BlockedRequest]) -> str:
    """The teardown failure for ``blocked`` requests: each with its client, and the fix."""
    lines = [f"  {i}. {request.describe()}" for i, request in enumerate(blocked, 1)]
    return (
        f"pytest-baml-telemetry network guard: {len(blocked)} BAML request(s) to a host that is not loopback "
        "were blocked (nothing left this machine):\n" + "\n".join(lines) + f"\nTo fix: {ROUTE_HINT}."
    )


_GUARD: NetworkGuard | None = None
_GUARD_LOCK = threading.Lock()


def get_guard() -> NetworkGuard:
    """The guard of this process (made, not started, on first use)."""
    global _GUARD
    with _GUARD_LOCK:
        if _GUARD is None:
            _GUARD = NetworkGuard()
        return _GUARD


# -- the running test (set by the plugin) ------------------------------------------------

class _Scope:
    """A running test: whether it allows the network, whether it engaged the guard."""

    __slots__ = ("allowed", "engaged", "nodeid")

    def __init__(self, nodeid: str, allowed: bool) -> None:
        self.nodeid = nodeid
        self.allowed = allowed
        self.engaged = False


_SCOPES: list[_Scope] = []
"""The running tests, innermost last (a pytester session runs inside an outer test)."""


def set_test_scope(nodeid: str, *, allowed: bool) -> list[BlockedRequest]:
    """The plugin: a test starts (``allowed``: marked ``baml_allow_network``). Returns what was
    refused since the last test ended (at collection, in a fixture's teardown after it): the
    plugin reports those at the end of the run."""
    _SCOPES.append(_Scope(nodeid, allowed))
    return _GUARD.take_blocked() if _GUARD is not None else []


def engage_for_test() -> bool:
    """Engage the guard until the running test ends, unless it allows the network or no test
    runs (outside pytest, or the plugin is not loaded); ``route`` calls it. Whether engaged."""
    if not _SCOPES or _SCOPES[-1].allowed:
        return False
    scope = _SCOPES[-1]
    if not scope.engaged:
        get_guard().engage()
        scope.engaged = True
    return True


def end_test_scope() -> list[BlockedRequest]:
    """The plugin: the test ended; release what it engaged and return what was refused."""
    scope = _SCOPES.pop() if _SCOPES else None
    if _GUARD is None:
        return []
    if scope is not None and scope.engaged:
        _GUARD.release()
    return _GUARD.take_blocked()


def stop_guard() -> None:
    """Stop this process's guard, if one was made (the plugin, at the end of the run)."""
    if _GUARD is not None:
        _GUARD.stop()


def guard_made() -> bool:
    """Whether this process made its guard (nothing to report otherwise)."""
    return _GUARD is not None
