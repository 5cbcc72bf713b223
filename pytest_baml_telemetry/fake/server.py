"""A scripted HTTP server speaking the LLM providers' wire formats, for driving the real baml-py runtime offline.

:class:`FakeLLMServer` runs a real HTTP server on a loopback address in a child
process (``_server_child.py``: the standard library and the modules of
:mod:`pytest_baml_telemetry.wire`, one per provider format). Pointing clients at it is
:mod:`.server_clients`; the child's process and RPC are :mod:`.server_process`. It has to be a separate
process: a baml-py *sync* stream holds the GIL while it waits for the network, so
a server thread in the test process would deadlock it.

Typical use::

    with FakeLLMServer() as server:
        server.respond('{"name": "Ann", "skills": ["Rust"]}', usage=(120, 30))
        server.fail(429, retry_after=1)
        cr = server.client_registry("TestClient")
        b.with_options(client_registry=cr).ExtractResume("...")
        assert server.requests[0].headers["authorization"] == "***"

Scripts are served in order, once each: a request gets the first queued script whose
filters match it (``respond(..., client="Primary")``, ``fail(..., provider="openai")``; a
script without filters matches any request). A request is tagged with its client when the
client's base URL came from ``client_options(client=...)`` / ``client_registry(...)``
(``RecordedRequest.client``) and with the wire format it used (``RecordedRequest.provider``).
Each format is served at its provider's paths, as that provider answers (Anthropic
Messages at ``POST /v1/messages``: see :mod:`pytest_baml_telemetry.wire.anthropic`). OpenAI
chat completions at ``POST /v1/chat/completions``
(``/chat/completions`` and Azure's ``/openai/deployments/{name}/chat/completions`` too),
as OpenAI answers: a stream's usage chunk only when the request asks for it
(``stream_options.include_usage``), usage with its details, OpenAI's error
``type``/``code`` names, an ``x-request-id`` header on every response. A request that finds nothing scripted gets
an HTTP 500 whose body says so; it is recorded like every other request.
Scripting is race-free: each call returns only after the child has queued the
script. Scripts added before :meth:`FakeLLMServer.start` are sent when it starts.

How each outcome looks to baml-py 0.226 (checked): ``respond`` → a result (or a
``BamlValidationError`` when the content does not parse into the function's
return type: script that with ``respond("not json at all")`` for a function
returning a class); ``fail(status)`` → ``BamlClientHttpError`` with that
``status_code`` (retried first under a ``retry_policy``; ``Retry-After`` is sent
but baml-py ignores it); ``hang`` with a client ``http { request_timeout_ms N }``
shorter than the hang → ``BamlTimeoutError``; ``malformed()`` →
``BamlClientHttpError`` with ``status_code`` 200; ``fail_stream`` → the stream
raises a ``BamlClientError`` subclass. The same holds for every format, but for
``aws-bedrock``: its AWS SDK retries a 429/5xx itself (3 attempts, so script such a failure
three times), reports a 400 ``ValidationException`` as status 401 and a 408 as
``BamlTimeoutError``, and ignores ``request_timeout_ms`` (a hang runs its full time, then
status 2). A format without a usage-less answer (Anthropic, Bedrock) sends zeros for
``usage=None``; OpenAI, Responses and Gemini send none (unknown tokens).
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._validate import check_bool, check_count, check_int, fail, is_int, short_number_repr, short_repr
from ..clock import DurationLike, parse_duration, parse_duration_ns
from ..contract import MAX_NATIVE
from ..wire import anthropic, bedrock, common, google, openai, openai_responses
from . import server_clients
from .server_clients import AZURE_API_VERSION, FAKE_API_KEY, SUPPORTED_PROVIDERS
from .server_process import Child, reap

if TYPE_CHECKING:  # pragma: no cover
    import baml_py

__all__ = ["FakeLLMServer", "RecordedRequest", "usage_to_openai", "SUPPORTED_PROVIDERS", "FAKE_API_KEY", "AZURE_API_VERSION"]

UsageLike = common.UsageLike
usage_to_openai = openai.usage_to_wire
"""Turn a usage description into an OpenAI ``usage`` object (``None``: send none);
see :func:`pytest_baml_telemetry.wire.openai.usage_to_wire`."""


# --------------------------------------------------------------------------- helpers


def _seconds(value: DurationLike | None, name: str) -> float:
    return 0.0 if value is None else parse_duration(value, name=name)


def _check_host(host: Any) -> str:
    if not isinstance(host, str):
        fail(TypeError, f"FakeLLMServer(host={short_repr(host)})", "a str loopback address such as '127.0.0.1'")
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(
            f"FakeLLMServer(host={host!r}) refused: the fake LLM server binds only to a loopback "
            "address ('127.0.0.1', another 127.x.y.z, '::1' or 'localhost')"
        )
    return str(address)


def _handed_over(upstreams: Mapping[str, Mapping[str, Any]], cassette: Any) -> dict[str, Any]:
    """``upstreams`` as the child gets them for ``cassette``: a Bedrock entry's ``"aws"`` credentials
    only while it records (then also among the values scrubbed from what it writes), else left out."""
    out: dict[str, Any] = {}
    for name, entry in upstreams.items():
        entry = dict(entry)
        aws = entry.pop("aws", None)
        if isinstance(aws, Mapping) and cassette.records:
            entry["aws"] = dict(aws)
            cassette.secrets.update(str(aws[k]) for k in ("access_key_id", "secret_access_key", "session_token") if aws.get(k))
        out[str(name)] = entry
    return out


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the fake server received, in arrival order.

    ``headers`` has lower-cased names; every header whose name contains ``auth``,
    ``key``, ``token``, ``secret``, ``password``, ``cookie`` (and a few more, any case)
    has the value ``"***"``, and so has every such query parameter in ``path``
    (``?api-key=***&key=***``). ``json`` is the parsed
    JSON body (``None`` when it was not JSON), ``body`` the raw text. ``served``
    says what answered it: ``"respond"``, ``"fail"``, ``"hang"``, ``"malformed"``,
    ``"fail_stream"``, ``"unscripted"`` (nothing scripted: HTTP 500) or
    ``"not_found"`` (a path no wire format serves: HTTP 404, no script used); while a cassette is
    in use (:meth:`FakeLLMServer.use_cassette`) ``"cassette_replay"``, ``"cassette_record"``
    (forwarded to the client's own endpoint) or ``"cassette_unmatched"`` (HTTP 500, ``script`` says why);
    ``script`` describes the script used (with its ``[client=..., provider=...]`` filters); ``request_id`` is the ``x-request-id`` header
    the server sent back (unique within the server's life, also across :meth:`FakeLLMServer.reset`).
    """

    index: int
    method: str
    path: str
    headers: dict[str, str]
    json: Any
    body: str
    stream: bool
    served: str
    script: str | None = None
    time_ns: int = field(default=0, compare=False)
    request_id: str | None = field(default=None, compare=False)
    client: str | None = None
    """The client that sent it, from the tag of :meth:`FakeLLMServer.client_options` (``client=``);
    ``None`` for an untagged request."""
    provider: str | None = None
    """The wire format the request used (``"openai"`` for chat completions, whichever
    provider sent it); ``None`` for a path no format serves."""

    @property
    def model(self) -> str | None:
        """The model the client asked for: from the JSON body, else from the path (an Azure
        deployment, a Gemini or Bedrock model in the URL)."""
        wire = WIRES.get(self.provider or "openai", openai)
        return wire.request_model(self.json) or wire.path_model(self.path.split("?", 1)[0])

    @property
    def messages(self) -> list[Any]:
        """The messages the client sent, in its wire format (chat ``messages``, Gemini
        ``contents``, Responses ``input``; empty when absent)."""
        return WIRES.get(self.provider or "openai", openai).request_messages(self.json)


WIRES: dict[str, Any] = {
    "openai": openai, "openai-responses": openai_responses, "anthropic": anthropic, "google-ai": google, "aws-bedrock": bedrock,
}
"""``RecordedRequest.provider -> wire module``: how a recorded request's body is read."""


# --------------------------------------------------------------------------- server


class FakeLLMServer:
    """A scripted LLM server (each provider's wire format: see SUPPORTED_PROVIDERS) on a loopback port, in a child process.

    Use it as a context manager (started on enter, stopped on exit, also when the
    block raises) or call :meth:`start`/:meth:`stop`. ``host`` must be a loopback
    address (``ValueError`` otherwise); ``port=0`` picks a free ephemeral port.
    The child process never outlives the server object, the test process, or a
    crash of either: it is stopped by :meth:`stop`, by a finalizer at garbage
    collection or interpreter exit, and it exits by itself when its parent dies.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: DurationLike = 10.0,
        command_timeout: DurationLike = 10.0,
    ) -> None:
        self._host = _check_host(host)
        self._requested_port = check_int(
            port, f"FakeLLMServer(port={short_repr(port)})", minimum=0, maximum=65535,
            expected="an int in 0..65535 (0 = a free ephemeral port)",
        )
        self._startup_timeout = parse_duration(startup_timeout, name="startup_timeout")
        self._command_timeout = parse_duration(command_timeout, name="command_timeout")
        if self._startup_timeout <= 0 or self._command_timeout <= 0:
            raise ValueError(
                f"FakeLLMServer(startup_timeout={startup_timeout!r}, command_timeout={command_timeout!r}): "
                "both must be positive durations"
            )
        self._port: int | None = None
        self._child: Child | None = None
        self._finalizer: weakref.finalize | None = None
        self._queued: list[dict[str, Any]] = []  # scripts added before start()
        self._lock = threading.RLock()
        self._cassette: Any = None  # a .cassette.Cassette while one is in use
        self._upstreams: dict[str, dict[str, Any]] = {}  # client tag -> its own endpoint (route)

    # -- lifecycle ------------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        """Start the child process and wait until it listens; returns ``self``."""
        with self._lock:
            if self._child is not None:
                return self
            child = Child(self._host, self._requested_port)
            self._finalizer = weakref.finalize(self, reap, child.proc)
            try:
                ready = child.wait_ready(self._startup_timeout)
                self._child = child
                self._port = int(ready["port"])
                queued, self._queued = self._queued, []
                for script in queued:
                    self._call("script", script=script)
            except BaseException:
                self._child = None
                self._port = None
                finalizer, self._finalizer = self._finalizer, None
                finalizer()
                raise
            return self

    def stop(self) -> None:
        """Stop the child process (idempotent); waits until it is gone."""
        with self._lock:
            child, self._child = self._child, None
            self._port = None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer()  # runs _reap once: stdin EOF -> exit, else terminate, else kill
        if child is not None:
            for t in child.threads:
                t.join(timeout=2.0)

    close = stop

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the child process is up."""
        child = self._child
        return child is not None and child.proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The child process id while running, else ``None``."""
        child = self._child
        return child.proc.pid if child is not None else None

    @property
    def host(self) -> str:
        """The loopback address the server binds."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (``RuntimeError`` when not running)."""
        self._require_running("port")
        assert self._port is not None
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no path)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL to give a client: ``http://host:port/v1``."""
        return self.url + "/v1"

    def _require_running(self, what: str) -> Child:
        child = self._child
        if child is None:
            raise RuntimeError(
                f"FakeLLMServer.{what}: the server is not running; use `with FakeLLMServer() as server:` "
                "or call server.start() first"
            )
        return child

    def _call(self, cmd: str, **payload: Any) -> Any:
        return self._require_running(cmd).call(cmd, self._command_timeout, **payload)

    def __repr__(self) -> str:
        state = f"running at {self.base_url}, pid {self.pid}" if self._child is not None else "stopped"
        return f"<FakeLLMServer {state}>"

    # -- scripting --------------------------------------------------------------------

    def _add(self, script: dict[str, Any], client: str | None = None, provider: str | None = None) -> FakeLLMServer:
        filters = server_clients.check_filters(client, provider, f"FakeLLMServer.{script['kind']}")
        if filters:
            script.update(filters)
            script["describe"] += " [" + ", ".join(f"{k}={v!r}" for k, v in filters.items()) + "]"
        with self._lock:
            if self._child is None:
                self._queued.append(script)
                return self
        self._call("script", script=script)
        return self

    def respond(
        self,
        content: str | dict[str, Any] | list[Any],
        *,
        usage: UsageLike | None = None,
        model: str | None = None,
        latency: DurationLike | None = None,
        chunks: int | Sequence[str] | None = None,
        chunk_delay: DurationLike | None = None,
        finish_reason: str = "stop",
        usage_chunk: bool | None = None,
        client: str | None = None,
        provider: str | None = None,
    ) -> FakeLLMServer:
        """Script one successful completion whose message content is ``content``.

        ``content`` is the raw text the model "says" (a dict/list is sent JSON-encoded).
        Content that does not parse into the function's return type — e.g.
        ``respond("not json at all")`` for a function returning a class — makes
        baml-py raise ``BamlValidationError``.
        ``usage``: see :func:`usage_to_openai`; ``None`` sends no ``usage`` field.
        ``model``: the model name reported back (``None`` echoes the requested one).
        ``latency``: slept before answering. For a streaming request the content is sent
        in ``chunks`` (``None``: one per word; an int: that many pieces; a list of str
        that joins to ``content``), ``chunk_delay`` apart, then a chunk with
        ``finish_reason``, then the usage chunk, then ``[DONE]``. As OpenAI does, the usage
        chunk is sent only when the request asks for it (``stream_options.include_usage``,
        which baml-py sends) and usage is given; ``usage_chunk=True``/``False`` sends it
        always/never. Usage carries the details OpenAI always sends
        (``prompt_tokens_details.cached_tokens``, ``completion_tokens_details``).
        Other formats send their own usage objects and finish reasons (``"stop"`` is sent as
        Anthropic's ``end_turn``, ``"length"`` as ``max_tokens``, ...; ``usage_chunk`` is OpenAI's).
        ``client``/``provider`` (every scripting method takes them): serve this script only to a
        request from that client (see :meth:`client_options`) / in that wire format.
        Returns ``self`` so calls can be chained.
        """
        where = "FakeLLMServer.respond"
        text = common.content_text(content, where)
        if model is not None and not isinstance(model, str):
            fail(TypeError, f"{where}: model={short_repr(model)} is not a str", "a model name or None (echo the request)")
        if not isinstance(finish_reason, str) or not finish_reason:
            fail(TypeError, f"{where}: finish_reason={short_repr(finish_reason)}", "a non-empty str such as 'stop'")
        if usage_chunk is not None:
            check_bool(usage_chunk, f"{where}: usage_chunk={short_repr(usage_chunk)}")
        # checked as OpenAI needs it (input and output both, or no usage); sent as counts, which the
        # child turns into the usage object of the wire format that serves the request
        counts = None if usage_to_openai(usage) is None else common.usage_counts(usage)
        script = {
            "kind": "respond",
            "content": text,
            "usage": None if counts is None else list(counts),
            "model": model,
            "latency": _seconds(latency, f"{where}: latency"),
            "chunks": common.check_chunks(chunks, text, where),
            "chunk_delay": _seconds(chunk_delay, f"{where}: chunk_delay"),
            "finish_reason": finish_reason,
            "usage_chunk": usage_chunk,
            "describe": f"respond({short_repr(text, 60)}, usage={common.usage_counts(usage)!r}, model={model!r})",
        }
        return self._add(script, client, provider)

    def fail(
        self,
        status_code: int,
        *,
        retry_after: DurationLike | int | None = None,
        body: str | bytes | dict[str, Any] | list[Any] | None = None,
        latency: DurationLike | None = None,
        client: str | None = None,
        provider: str | None = None,
    ) -> FakeLLMServer:
        """Script one HTTP error with ``status_code`` (an int in 100..599).

        ``retry_after`` (int seconds or a duration, rounded up to whole seconds) is sent
        as the ``Retry-After`` header. ``body`` replaces the default error JSON of the wire
        format that serves the request (OpenAI's ``{"error": {...}}``, Anthropic's, Google's, AWS's;
        a str/bytes is sent as is, a dict/list JSON-encoded).
        """
        where = "FakeLLMServer.fail"
        common.check_status(status_code, where)
        retry: int | None = None
        if retry_after is not None:
            if is_int(retry_after):
                retry = check_int(
                    retry_after, f"{where}: retry_after={short_number_repr(retry_after)}", minimum=0,
                    maximum=MAX_NATIVE // 1_000_000_000, expected=f"whole seconds from 0 to {MAX_NATIVE // 1_000_000_000}",
                )
            else:
                retry = math.ceil(parse_duration_ns(retry_after, name=f"{where}: retry_after") / 1_000_000_000)
        body_is_json = False
        if isinstance(body, bytes):
            try:
                body = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                fail(
                    ValueError, f"{where}: body={short_repr(body, 60)} is not UTF-8 ({exc.reason} at byte {exc.start})",
                    "a str, UTF-8 bytes, a dict, a list or None",
                )
        elif isinstance(body, (dict, list)):
            body_is_json = True
        elif body is not None and not isinstance(body, str):
            fail(TypeError, f"{where}: body={short_repr(body)} ({type(body).__name__})", "str, bytes, dict, list or None")
        script = {
            "kind": "fail",
            "status": status_code,
            "retry_after": retry,
            "body": body,
            "body_is_json": body_is_json,
            "latency": _seconds(latency, f"{where}: latency"),
            "describe": f"fail({status_code}" + (f", retry_after={retry}" if retry is not None else "") + ")",
        }
        return self._add(script, client, provider)

    def hang(self, seconds: DurationLike, *, client: str | None = None, provider: str | None = None) -> FakeLLMServer:
        """Script a request that gets no answer for ``seconds``, then a dropped connection.

        Pair it with a client whose ``http { request_timeout_ms ... }`` is shorter to get
        ``BamlTimeoutError`` (without one, baml-py waits up to 300 s).
        :meth:`reset` and :meth:`stop` release a hanging request at once.
        """
        secs = parse_duration(seconds, name="FakeLLMServer.hang: seconds")
        return self._add({"kind": "hang", "seconds": secs, "latency": 0.0, "describe": f"hang({secs:g}s)"}, client, provider)

    def malformed(
        self,
        body: str = "this is not JSON {",
        *,
        latency: DurationLike | None = None,
        client: str | None = None,
        provider: str | None = None,
    ) -> FakeLLMServer:
        """Script an HTTP 200 whose body is not JSON (for a stream: an SSE event that is not JSON)."""
        where = "FakeLLMServer.malformed"
        if not isinstance(body, str):
            fail(TypeError, f"{where}: body={short_repr(body)} ({type(body).__name__}) is not a str", "a str that is not JSON")
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            raise ValueError(f"{where}: body={body!r} is valid JSON; a malformed body must not parse")
        return self._add(
            {"kind": "malformed", "body": body, "latency": _seconds(latency, f"{where}: latency"), "describe": f"malformed({short_repr(body, 60)})"},
            client, provider,
        )

    def fail_stream(
        self,
        after_chunks: int = 1,
        *,
        content: str = "This stream is cut off before it ends",
        chunks: int | Sequence[str] | None = None,
        model: str | None = None,
        latency: DurationLike | None = None,
        chunk_delay: DurationLike | None = None,
        client: str | None = None,
        provider: str | None = None,
    ) -> FakeLLMServer:
        """Script a stream that sends ``after_chunks`` content chunks, then breaks the connection.

        The chunked SSE body is never terminated, so the client sees a broken stream.
        A non-streaming request gets half of a JSON body before the connection drops.
        """
        where = "FakeLLMServer.fail_stream"
        check_count(after_chunks, f"{where}: after_chunks={short_repr(after_chunks)}")
        text = common.content_text(content, where)
        if model is not None and not isinstance(model, str):
            fail(TypeError, f"{where}: model={short_repr(model)} is not a str", "a model name or None (echo the request)")
        script = {
            "kind": "fail_stream",
            "after_chunks": after_chunks,
            "content": text,
            "chunks": common.check_chunks(chunks, text, where),
            "model": model,
            "latency": _seconds(latency, f"{where}: latency"),
            "chunk_delay": _seconds(chunk_delay, f"{where}: chunk_delay"),
            "describe": f"fail_stream(after_chunks={after_chunks})",
        }
        return self._add(script, client, provider)

    # -- inspection -------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (recorded before it is answered)."""
        raw = self._call("requests")
        return [
            RecordedRequest(
                index=r["index"],
                method=r["method"],
                path=r["path"],
                headers=r["headers"],
                json=r["json"],
                body=r["body"],
                stream=r["stream"],
                served=r["served"],
                script=r.get("script"),
                time_ns=r.get("time_ns", 0),
                request_id=r.get("request_id"),
                client=r.get("client"),
                provider=r.get("provider"),
            )
            for r in raw
        ]

    @property
    def pending(self) -> list[str]:
        """Descriptions of the scripts not used yet, in the order they will be served."""
        with self._lock:
            if self._child is None:
                return [s["describe"] for s in self._queued]
        return list(self._call("pending"))

    def assert_all_used(self) -> None:
        """Raise ``AssertionError`` listing the scripts that no request used."""
        left = self.pending
        if left:
            raise AssertionError(
                f"FakeLLMServer: {len(left)} scripted response(s) never requested: " + "; ".join(left)
            )

    def reset(self) -> None:
        """Forget all scripts and recorded requests; release hanging requests."""
        with self._lock:
            self._queued.clear()
            if self._child is None:
                return
        self._call("reset")

    # -- cassettes (record once, replay forever: see .cassette) -------------------

    def use_cassette(
        self,
        path: Any,
        *,
        record_mode: str = "none",
        match_on: Sequence[str] = ("method", "path", "body"),
        replay_latency: str = "recorded",
        secrets: Sequence[str] = (),
        run_started: float | None = None,
    ) -> Any:
        """Serve every request from the vcrpy cassette ``path`` (scripts are not used meanwhile),
        recording as ``record_mode`` allows (``none``/``once``/``new_episodes``/``all``, vcrpy's
        meanings) by forwarding to each client's own endpoint, which :meth:`route` tells the server.
        ``match_on``: vcr's matcher names (``body``: the model and the prompt of the JSON body);
        ``replay_latency="recorded"`` replays at the recorded pace, ``"none"`` at once. ``secrets``:
        more values to scrub. ``run_started`` (a ``time.time()``): in ``all`` mode, a cassette file
        written since then is added to rather than replaced (tests sharing it in one run).
        Returns the :class:`~.cassette.Cassette`; :meth:`eject_cassette` writes it."""
        from .cassette import Cassette

        cassette = Cassette(
            path, record_mode=record_mode, match_on=match_on, replay_latency=replay_latency, secrets=secrets,
            run_started=run_started,
        )
        config = cassette.child_config(_handed_over(self._upstreams, cassette))
        self._call("cassette", config=config)
        self._cassette = cassette
        return cassette

    @property
    def cassette(self) -> Any:
        """The cassette in use (:meth:`use_cassette`), else ``None``."""
        return self._cassette

    @property
    def cassette_records(self) -> bool:
        """Whether the cassette in use records (then :meth:`route` keeps the clients' own credentials)."""
        return self._cassette is not None and self._cassette.records

    def set_upstreams(self, upstreams: Mapping[str, Mapping[str, Any]]) -> None:
        """Tell the server where each client (by its tag) really connects, for recording:
        ``{client: {"base": url, "prefix": path the fake's base URL adds, "query": {...}}}``
        (:meth:`route` does it). A Bedrock entry's ``"aws"`` credentials (the server re-signs its
        requests with them) reach the child only while the cassette records, and are scrubbed
        from what it writes."""
        self._upstreams.update({str(k): dict(v) for k, v in upstreams.items()})
        if self._cassette is not None:
            self._call("upstreams", upstreams=_handed_over(upstreams, self._cassette))

    def eject_cassette(self) -> Any:
        """Stop using the cassette: write what was recorded (scrubbed) and return a
        :class:`~.cassette.CassetteResult` (``unmatched``: the requests it could not serve)."""
        from .cassette import CassetteResult

        cassette, self._cassette = self._cassette, None
        if cassette is None:
            raise RuntimeError("FakeLLMServer.eject_cassette: no cassette is in use (use_cassette(...) first)")
        for entry in self._upstreams.values():  # AWS credentials are kept for one cassette only
            entry.pop("aws", None)
        taken = self._call("cassette_take") or {}
        self._call("cassette", config=None)
        recorded = cassette.save(list(taken.get("recorded") or []))
        return CassetteResult(cassette.path, played=int(taken.get("played") or 0), recorded=recorded,
                              unmatched=list(taken.get("unmatched") or []))

    # -- pointing a real client at the server ------------------------------------

    def route(self, client: Any) -> Any:
        """``client`` (a generated ``b``, sync or async, or ``instrument(b)``) with every client its
        .baml sources declare pointed at this server; see :mod:`.routing`."""
        from .routing import route

        return route(self, client)

    def client_registry_for(self, client: Any) -> baml_py.ClientRegistry:
        """The ``baml_py.ClientRegistry`` :meth:`route` applies; see :mod:`.routing`."""
        from .routing import client_registry_for

        return client_registry_for(self, client)


    def client_options(
        self,
        *,
        model: str = "gpt-4o-mini",
        api_key: str = FAKE_API_KEY,
        options: Mapping[str, Any] | None = None,
        provider: str = "openai",
        client: str | None = None,
    ) -> dict[str, Any]:
        """Options for a baml client of ``provider`` that talks to this server.

        ``openai``/``openai-generic``/``openai-responses``: ``{"model": model, "api_key": api_key, "base_url": self.base_url}``;
        ``azure-openai``: ``{"base_url": f"{self.url}/openai/deployments/{model}", "api_version":
        AZURE_API_VERSION, "api_key": api_key}`` (``model`` is the deployment; the server
        echoes it as the model served); ``ollama``: ``{"model": model, "base_url": self.base_url}``;
        ``anthropic``: ``{"model": model, "api_key": api_key, "base_url": self.url}`` (it posts to
        ``/v1/messages``); ``google-ai``: ``{"model": model, "api_key": api_key, "base_url":
        f"{self.url}/v1beta"}``; ``aws-bedrock``: ``{"model": model, "region": "us-east-1",
        "access_key_id": FAKE_AWS_ACCESS_KEY_ID, "secret_access_key": api_key, "endpoint_url": self.url}``.
        ``options`` are added over them: put timeouts in ``options={"http": {"request_timeout_ms": 500}}``.
        ``client`` (a client name) tags the base URL (``{self.url}/_c/{client}/v1``): the
        server strips the tag and records the name as ``RecordedRequest.client``, and scripts
        given ``client=`` serve only that client's requests.
        """
        return server_clients.client_options(
            self, model=model, api_key=api_key, options=options, provider=provider, client=client
        )

    def client_registry(
        self,
        client_name: str,
        *,
        model: str = "gpt-4o-mini",
        provider: str = "openai",
        options: Mapping[str, Any] | None = None,
        retry_policy: str | None = None,
        registry: baml_py.ClientRegistry | None = None,
        primary: bool = False,
        tag: bool = True,
    ) -> baml_py.ClientRegistry:
        """A ``baml_py.ClientRegistry`` whose client ``client_name`` talks to this server.

        In baml-py 0.226 a registry entry added under the name of a client declared in
        ``.baml`` replaces that client for every function that uses it (no
        ``set_primary`` needed); pass it as ``b.with_options(client_registry=cr)``.
        The replacement does not inherit the declared client's options: give its
        ``retry_policy`` (the name of a ``retry_policy`` block) and ``http`` timeouts
        again (``options={"http": {"request_timeout_ms": 500}}``).
        ``registry`` adds to an existing registry (to override several clients);
        ``primary=True`` also makes it the client of every function. ``provider`` is one of
        :data:`SUPPORTED_PROVIDERS`; its options are :meth:`client_options`, tagged with
        ``client=client_name`` unless ``tag=False`` (so ``respond(..., client=client_name)``
        targets it).
        """
        check_bool(tag, f"FakeLLMServer.client_registry: tag={short_repr(tag)}")
        return server_clients.client_registry(
            self, client_name, model=model, provider=provider, options=options, retry_policy=retry_policy,
            registry=registry, primary=primary, tag=tag,
        )
