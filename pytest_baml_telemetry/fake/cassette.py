"""Cassettes of :class:`~.server.FakeLLMServer`: record real provider answers once, replay them offline.

A :class:`Cassette` is one vcrpy cassette file (vcrpy's format, serializer and persister,
so vcr tooling reads it; the ``cassettes`` extra installs vcrpy, imported only here and only
when a cassette is used). :meth:`FakeLLMServer.use_cassette` loads it into the server's child
process, which then replays matching requests and, as ``record_mode`` allows, forwards the
others to each client's own endpoint (told by ``route(b)``) and records them
(:mod:`._server_proxy`); :meth:`FakeLLMServer.eject_cassette` takes what was recorded and
writes it (:meth:`Cassette.save`), scrubbed, under a file lock (xdist workers never write one
cassette at once).

Record modes mean what they mean in vcrpy and pytest-recording: ``none`` (replay only; an
unmatched request fails), ``once`` (record when the cassette file is missing, else as
``none``), ``new_episodes`` (replay what matches, record the rest, appended), ``all``
(record everything anew, replacing the file; given ``run_started``, a file already rewritten
since then, by an earlier test sharing the cassette or another xdist worker, is added to).

Each response keeps, besides vcr's ``status``/``headers``/``body``, a ``timing`` entry:
``elapsed`` (seconds to the headers), ``duration`` (to the end of the body) and, for a
stream, ``chunks`` (``[offset_seconds, bytes]`` per chunk as it arrived), so a replay
streams chunk by chunk at the recorded pace (``replay_latency="recorded"``; ``"none"``: at once).

Before writing, credentials are scrubbed: every header :func:`~._server_proxy.is_credential`
flags (``Authorization``, ``x-api-key``, ``api-key``, ``x-goog-api-key``, the AWS signature
headers, cookies) is dropped, as is every such query parameter, and every value they carried
(and every key given with ``secrets=``) is replaced by ``***`` wherever else it appears.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
import urllib.parse
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._validate import check_str, fail, short_repr
from . import _server_proxy as proxy

__all__ = ["RECORD_MODES", "REPLAY_LATENCIES", "Cassette", "CassetteResult", "cassette_path", "check_record_mode", "file_lock"]

RECORD_MODES = ("none", "once", "new_episodes", "all")
REPLAY_LATENCIES = ("recorded", "none")
MASK = "***"
MIN_SECRET = 8
"""Scrubbed values shorter than this are not searched for elsewhere (they would match ordinary text)."""
_BEARER = ("bearer ", "basic ", "token ")


def check_record_mode(value: Any, where: str) -> str:
    """``value`` when it is one of :data:`RECORD_MODES`, else ``ValueError`` naming them."""
    if value not in RECORD_MODES:
        fail(ValueError, f"{where}: record_mode={short_repr(value)}", f"one of {', '.join(RECORD_MODES)}")
    return str(value)


def _vcr() -> Any:
    import importlib

    try:  # imported by name: vcrpy ships no type information
        persister = importlib.import_module("vcr.persisters.filesystem")
        serialize = importlib.import_module("vcr.serialize")
        yamlserializer = importlib.import_module("vcr.serializers.yamlserializer")
        Request = importlib.import_module("vcr.request").Request
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "FakeLLMServer cassettes need vcrpy: pip install 'pytest-baml-telemetry[cassettes]' (or vcrpy>=6)"
        ) from None
    return persister, serialize, yamlserializer, Request


def cassette_path(test_file: Path, test: str, name: str | None = None) -> Path:
    """Where the cassette of test ``test`` (``Class.test_x[param]``) of ``test_file`` lives, as in
    pytest-recording: ``cassettes/<module>/<test>.yaml`` beside the test file; a relative ``name``
    is under that directory, an absolute one is used as is (``.yaml`` added when it has no suffix)."""
    if name is None:
        name = "".join(c if c.isalnum() or c in "._-[]=," else "-" for c in test)
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = path.with_name(path.name + ".yaml")
    return path if path.is_absolute() else test_file.parent / "cassettes" / test_file.stem / path


@contextlib.contextmanager
def file_lock(path: Path, timeout: float = 120.0) -> Iterator[None]:
    """An exclusive lock on ``path`` + ``.lock`` (``fcntl.flock``; elsewhere a lock file made with ``O_EXCL``)."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"cassette lock {lock} held for more than {timeout}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            os.close(fd)
            os.unlink(lock)
        return
    with open(lock, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@dataclass
class CassetteResult:
    """What one use of a cassette did: ``played`` interactions replayed, ``recorded`` written,
    ``unmatched`` the messages of the requests it could not serve (each fails the test)."""

    path: Path
    played: int = 0
    recorded: int = 0
    unmatched: list[str] = field(default_factory=list)


class Cassette:
    """One cassette file and how it is used: ``record_mode``, ``match_on``, ``replay_latency``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        record_mode: str = "none",
        match_on: Sequence[str] = proxy.DEFAULT_MATCH_ON,
        replay_latency: str = "recorded",
        secrets: Iterable[str] = (),
        run_started: float | None = None,
    ) -> None:
        where = "FakeLLMServer.use_cassette"
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            fail(TypeError, f"{where}: path={short_repr(path)}", "a cassette file path (str or os.PathLike)")
        self.path = Path(path)
        self.record_mode = check_record_mode(record_mode, where)
        if isinstance(match_on, str) or not isinstance(match_on, Sequence) or not match_on:
            fail(TypeError, f"{where}: match_on={short_repr(match_on)}", f"a non-empty sequence of {', '.join(proxy.MATCHERS)}")
        for matcher in match_on:
            if matcher not in proxy.MATCHERS:
                fail(ValueError, f"{where}: match_on entry {short_repr(matcher)}", f"one of {', '.join(proxy.MATCHERS)}")
        self.match_on = tuple(match_on)
        if replay_latency not in REPLAY_LATENCIES:
            fail(ValueError, f"{where}: replay_latency={short_repr(replay_latency)}", "'recorded' or 'none'")
        self.replay_latency = replay_latency
        self.secrets = {check_str(s, f"{where}: secrets entry {short_repr(s)}") for s in secrets}
        self.run_started = run_started
        self.existed = self.path.is_file() and bool(self.path.read_text(encoding="utf-8").strip())

    def __repr__(self) -> str:
        return f"<Cassette {self.path} record_mode={self.record_mode!r}>"

    @property
    def records(self) -> bool:
        """Whether requests no interaction matches are forwarded and recorded."""
        return self.record_mode in ("new_episodes", "all") or (self.record_mode == "once" and not self.existed)

    # -- reading --------------------------------------------------------------------

    def load(self) -> list[dict[str, Any]]:
        """The cassette's interactions in the child's form (``[]`` for a missing file)."""
        if not self.existed:
            return []
        persister, _, yamlserializer, _ = _vcr()
        try:
            loaded = persister.FilesystemPersister.load_cassette(self.path, yamlserializer)
        except persister.CassetteNotFoundError:
            return []
        except Exception as exc:
            raise ValueError(f"FakeLLMServer.use_cassette: cannot read cassette {self.path}: {exc}") from None
        requests, responses = loaded[0], loaded[1]
        return [_to_child(request, response) for request, response in zip(requests, responses)]

    def child_config(self, upstreams: dict[str, Any]) -> dict[str, Any]:
        """The ``cassette`` command's config for the child."""
        replay = [] if self.record_mode == "all" else self.load()
        return {
            "name": str(self.path), "interactions": replay, "record": self.records, "match_on": list(self.match_on),
            "latency": self.replay_latency, "upstreams": upstreams,
            "missing": not self.existed and self.record_mode in ("none", "once"),
        }

    # -- writing --------------------------------------------------------------------

    def save(self, recorded: list[dict[str, Any]]) -> int:
        """Write the interactions ``recorded`` (the child's form), scrubbed, with what the file
        already holds unless ``record_mode="all"``; under :func:`file_lock`. Returns how many were added."""
        if not recorded:
            return 0
        persister, serialize, yamlserializer, Request = _vcr()
        secrets = set(self.secrets)
        new = [_scrub(item, secrets) for item in recorded]
        with file_lock(self.path):
            kept: list[Any] = [[], []]
            if self.path.is_file() and (self.record_mode != "all" or self._rewritten_this_run()):
                try:
                    loaded = persister.FilesystemPersister.load_cassette(self.path, yamlserializer)
                    kept = [list(loaded[0]), list(loaded[1])]
                except persister.CassetteNotFoundError:
                    pass
            requests = kept[0] + [Request(r["method"], r["uri"], r["body"], r["headers"]) for r, _ in new]
            responses = kept[1] + [response for _, response in new]
            text = serialize.serialize({"requests": requests, "responses": responses}, yamlserializer)
            for secret in sorted((s for s in secrets if len(s) >= MIN_SECRET), key=len, reverse=True):
                text = text.replace(secret, MASK)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(text, encoding="utf-8")
            os.replace(temporary, self.path)
        return len(new)


    def _rewritten_this_run(self) -> bool:
        """In ``all`` mode: whether the file was already rewritten in this run (by an earlier test
        sharing the cassette, or another xdist worker), so this test's interactions join it."""
        if self.run_started is None:
            return False
        try:
            return self.path.stat().st_mtime >= self.run_started
        except OSError:
            return False


def _to_child(request: Any, response: dict[str, Any]) -> dict[str, Any]:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    raw = response.get("body", {}).get("string") or b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    timing = response.get("timing") or {}
    return {
        "request": {"method": request.method, "uri": request.uri, "body": body or ""},
        "response": {
            "status": response.get("status") or {"code": 200, "message": "OK"},
            "headers": {k: list(v) if isinstance(v, list) else [v] for k, v in (response.get("headers") or {}).items()},
            "body_b64": base64.b64encode(raw).decode("ascii"),
            "elapsed": timing.get("elapsed", 0.0),
            "duration": timing.get("duration", 0.0),
            "chunks": timing.get("chunks"),
        },
    }


def _note_secret(value: str, secrets: set[str]) -> None:
    secrets.add(value)
    lowered = value.lower()
    for scheme in _BEARER:
        if lowered.startswith(scheme):
            secrets.add(value[len(scheme):].strip())
    if lowered.startswith("aws4-hmac-sha256"):  # Credential=AKIA.../..., Signature=...
        for part in value.split(","):
            _, _, item = part.partition("=")
            secrets.add(item.split("/", 1)[0].strip())


UNRECORDED_HEADERS = frozenset({"baml-original-url", "date", "server"})
"""Headers left out of a cassette because they vary per run (the fake's own port, the time)."""


def _response_credential(name: str) -> bool:
    """A response header that may carry a credential: cookies, auth challenges (rate-limit
    ``...-tokens`` headers are kept: they count tokens)."""
    lowered = name.lower()
    return lowered in proxy.CREDENTIAL_HEADERS or "cookie" in lowered or "auth" in lowered


def _scrub_headers(headers: dict[str, list[str]], secrets: set[str], *, response: bool = False) -> dict[str, list[str]]:
    kept = {}
    for name, values in headers.items():
        if name.lower() in UNRECORDED_HEADERS:
            continue
        if _response_credential(name) if response else proxy.is_credential(name):
            for value in values:
                _note_secret(value, secrets)
        else:
            kept[name] = list(values)
    return kept


def _scrub_uri(uri: str, secrets: set[str]) -> str:
    parts = urllib.parse.urlsplit(uri)
    if not parts.query:
        return uri
    pairs = []
    for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if proxy.is_credential(name):
            secrets.add(value)
        else:
            pairs.append((name, value))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(pairs)))


def _scrub(item: dict[str, Any], secrets: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An interaction from the child as vcr's request fields and response dict, credentials taken out."""
    request, response = item["request"], item["response"]
    scrubbed_request = {
        "method": request["method"],
        "uri": _scrub_uri(request["uri"], secrets),
        "body": request.get("body") or "",
        "headers": _scrub_headers(request.get("headers") or {}, secrets),
    }
    raw = base64.b64decode(response.get("body_b64") or "")
    body: bytes | str = raw
    with contextlib.suppress(UnicodeDecodeError):
        body = raw.decode("utf-8")
    timing: dict[str, Any] = {"elapsed": response.get("elapsed", 0.0), "duration": response.get("duration", 0.0)}
    if response.get("chunks"):
        timing["chunks"] = response["chunks"]
    vcr_response = {
        "status": response["status"],
        "headers": _scrub_headers(response.get("headers") or {}, secrets, response=True),
        "body": {"string": body},
        "timing": timing,
    }
    return scrubbed_request, vcr_response
