"""Production export of the call events: :class:`JsonlExporter`, one JSON line per event.

The exporter is an :class:`~pytest_baml_telemetry.attachable.AttachableHandler` (attach it
like the trackers) that appends every start, stop and exception event to a file as one line
of JSON, the event log that ``pytest-baml-telemetry check`` reads back (:mod:`.cli`)::

    {"v": 1, "time": "2026-12-01T13:01:10.123456Z", "event": ["ash_baml", "call", "stop"],
     "measurements": {"duration": 3692717, "input_tokens": 10, ...},
     "metadata": {"function_name": "ExtractResume", "model": "gpt-4o-mini", ...}}

``v`` is the line format (:data:`LINE_FORMAT`), ``time`` the UTC wall clock when the event
was handled (microseconds), ``event`` the event name as a list of its parts (exact, even for
parts holding dots). Measurements and metadata are the event's own, made JSON-safe.

**Safe by default.** ``arguments`` and ``result`` are dropped (``include_arguments=True`` /
``include_results=True`` keep them); an exception's ``reason`` is written as
``{"type": "<class name>"}`` plus its ``status_code`` when it has an int one (its message,
which may carry the provider's answer or the model's raw output, only with
``include_error_messages=True``); ``stacktrace`` only with ``include_stacktrace=True`` (as
``"file:line in function"`` strings). Secrets are never written, whatever is opted in:

* a value under a key whose name looks like a credential (:func:`is_secret_name`: it holds
  ``auth``, ``key``, ``token``, ``secret``, ``password``, ``cookie``, ``credential``,
  ``signature``, ``session``, ... in any case, as the fake server masks headers; token
  *counts* such as ``input_tokens``/``max_tokens`` are not credentials) is written ``"***"``;
* any text that looks like a key (:func:`mask_secrets`: ``sk-...``, ``Bearer ...``, AWS
  ``AKIA...``, Google ``AIza...``, GitHub, Slack and JWT tokens, ``api_key=...``) has that
  part replaced by ``***``, in every string written (error messages and reprs too).

``redact(event_dict) -> event_dict | None`` is called with each line's dict (already
JSON-safe and masked) and returns what to write instead, or ``None`` to drop the event; what
it returns is made JSON-safe and masked again.

**Values that are not JSON** are written deliberately: a float ``nan``/``inf``/``-inf`` as
the strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` (JSON has no such numbers; ``check``
then refuses such a duration rather than misread it); an :class:`~enum.Enum` as its value;
``bytes`` as ``"<N bytes>"`` (never their content); tuples and lists as lists, sets as
sorted lists; mapping keys as ``str``; ``datetime``/``date`` in ISO 8601; a class or
function as ``"module.QualName"``; a pydantic model (and anything else) as its ``repr``
(cut at ``max_repr`` characters), or, with ``dump_models=True``, a pydantic model as its
``model_dump(mode="json")``. Nesting deeper than 32 levels is written ``"<nested too deep>"``.

**Concurrency.** Each line is built outside the lock, then written under one lock with a
single ``write`` to a file opened for appending, unbuffered: a line is never interleaved
with another (threads, asyncio tasks, which run their handlers synchronously, and other
processes appending small lines to the same file). ``flush()`` (``fsync=True`` to force
it to disk) and ``close()``; ``with JsonlExporter(path) as exporter:`` attaches it to the
default dispatcher and closes it at the end. Rotation is left to the log system.

**Failures are never silent.** The dispatcher detaches a handler that raises, so the
exporter never raises: a failed write (disk full, a closed file), a value that cannot be
encoded or a raising ``redact`` is counted (:attr:`JsonlExporter.failed`, with
:attr:`JsonlExporter.last_error`), logged on the ``pytest_baml_telemetry.exporters`` logger
(a warning at the first failure, an error from :meth:`JsonlExporter.close`), and, as soon
as a write succeeds again, recorded in the log itself as a ``["pytest_baml_telemetry",
"exporter", "lost"]`` line with the ``count`` of events lost, which ``check`` reports (its
budgets are then unverifiable).
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import logging
import math
import os
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from typing import Any, Union

from ._validate import check_bool, check_callable, check_choice, check_int, fail, short_repr
from .attachable import AttachableHandler
from .contract import DEFAULT_PREFIX, EventName, call_event_name
from .dispatcher import Dispatcher

__all__ = [
    "EXPORTER_LOST",
    "LINE_FORMAT",
    "MASK",
    "JsonlExporter",
    "is_secret_name",
    "jsonable",
    "mask_secrets",
]

_log = logging.getLogger("pytest_baml_telemetry.exporters")

LINE_FORMAT = 1
"""The ``v`` of every line :class:`JsonlExporter` writes."""

EXPORTER_LOST: EventName = ("pytest_baml_telemetry", "exporter", "lost")
"""The event of a line saying how many events could not be written before it."""

MASK = "***"
"""What a secret is written as."""

_KINDS = ("start", "stop", "exception")

# ------------------------------------------------------------------ secrets

_SECRET_PARTS = (
    "auth", "key", "token", "secret", "password", "passwd", "pwd", "cookie", "credential",
    "signature", "session", "bearer", "private",
)
_SAFE_NAMES = frozenset({
    "telemetry_span_context", "function_name", "client_module", "client_name", "request_id",
    "num_attempts", "response_model", "cached_input_tokens", "input_tokens", "output_tokens", "total_tokens",
    "time_to_first_chunk", "monotonic_time", "system_time",
})
_name_cache: dict[str, bool] = {}

_SECRET_TEXT = re.compile(
    r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_\-]{6,}"  # OpenAI, Anthropic (sk-ant-...)
    r"|(?P<bearer>(?i:bearer)\s+)[A-Za-z0-9._~+/=\-]{6,}"  # an Authorization header value
    r"|(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])"  # AWS access key id
    r"|AIza[0-9A-Za-z_\-]{30,}"  # Google API key
    r"|(?:gh[pousr]_|github_pat_)[A-Za-z0-9_]{20,}"  # GitHub
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"  # Slack
    r"|eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"  # a JWT
    r"|(?P<key>(?i:api[_\-]?key|x-api-key|secret|password|passwd|access[_\-]?token|auth[_\-]?token)"
    r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]{4,}"  # key=value in a message or a URL: the value
)


def is_secret_name(name: str) -> bool:
    """Whether a value under the key ``name`` may be a credential (any case).

    True when the lower-cased name holds one of ``auth``, ``key``, ``token``, ``secret``,
    ``password``, ``passwd``, ``pwd``, ``cookie``, ``credential``, ``signature``,
    ``session``, ``bearer``, ``private``; false for the event contract's own keys and for
    token counts (names ending in ``tokens``: ``input_tokens``, ``max_tokens``).
    """
    cached = _name_cache.get(name)
    if cached is not None:
        return cached
    lowered = name.lower()
    secret = (
        lowered not in _SAFE_NAMES
        and not lowered.endswith("tokens")
        and any(part in lowered for part in _SECRET_PARTS)
    )
    if len(_name_cache) < 4096:
        _name_cache[name] = secret
    return secret


def _mask_match(m: re.Match[str]) -> str:
    """The masked form of one match: a ``Bearer``/``key=`` prefix is kept, the secret is not."""
    return (m.group("bearer") or m.group("key") or "") + MASK


def mask_secrets(text: str) -> str:
    """``text`` with every part that looks like a credential replaced by ``***``."""
    if len(text) < 10:
        return text
    return _SECRET_TEXT.sub(_mask_match, text)


# ------------------------------------------------------------------ JSON-safe values

_MAX_DEPTH = 32


class _Options:
    __slots__ = ("dump_models", "max_repr")

    def __init__(self, dump_models: bool, max_repr: int) -> None:
        self.dump_models = dump_models
        self.max_repr = max_repr


def _repr(value: Any, limit: int) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<{type(value).__qualname__}: repr() raised>"
    text = mask_secrets(text)  # before cutting: a cut key could escape the patterns
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _convert(value: Any, opts: _Options, depth: int) -> Any:
    t = type(value)
    if t is str:
        return mask_secrets(value)
    if value is None or t is bool or t is int:
        return value
    if t is float:
        return _float(value)
    if depth > _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, enum.Enum):
        return _convert(value.value, opts, depth + 1)
    if isinstance(value, Mapping):
        return _mapping(value, opts, depth + 1)
    if isinstance(value, (list, tuple)):
        return [_convert(v, opts, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [_convert(v, opts, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>" if not isinstance(value, memoryview) else f"<{value.nbytes} bytes>"
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _float(float(value))
    if isinstance(value, str):
        return mask_secrets(str(value))
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__") and hasattr(value, "__module__"):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', type(value).__qualname__)}"
    if isinstance(value, PathLike):
        path = os.fspath(value)
        return mask_secrets(path) if isinstance(path, str) else f"<{len(path)} bytes>"
    if opts.dump_models and hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):
        try:
            dumped = value.model_dump(mode="json")
        except Exception:
            return _repr(value, opts.max_repr)
        return _convert(dumped, opts, depth + 1)
    return _repr(value, opts.max_repr)


def _mapping(value: Mapping[Any, Any], opts: _Options, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in value.items():
        key = k if type(k) is str else str(_convert(k, opts, depth))
        out[key] = MASK if is_secret_name(key) and v is not None else _convert(v, opts, depth)
    return out


def jsonable(value: Any, *, dump_models: bool = False, max_repr: int = 1000) -> Any:
    """``value`` as :class:`JsonlExporter` writes it: JSON-safe and masked (see the module doc)."""
    return _convert(value, _Options(dump_models, max_repr), 0)


# ------------------------------------------------------------------ the exporter


_last_second: list[tuple[int, str]] = [(-1, "")]
"""The last second :func:`_iso` formatted, with its text (one strftime per second, not per
event); replaced as one tuple, so a thread never pairs one second with another's text."""


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    last = _last_second[0]
    if last[0] != seconds:
        last = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
        _last_second[0] = last
    return f"{last[1]}.{rest // 1000:06d}Z"


_encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode
"""One encoder for every line (``json.dumps`` with options builds a new one per call)."""


def _describe(exc: BaseException) -> str:
    return mask_secrets(f"{type(exc).__name__}: {exc}")


class JsonlExporter(AttachableHandler):
    """A handler that appends one JSON line per call event to ``path`` (see the module doc).

    ``events`` are the kinds exported (default start, stop and exception). The file is
    opened for appending at construction (``OSError`` naming the path if it cannot be).
    :attr:`written`, :attr:`dropped` (by ``redact``) and :attr:`failed` count the events.
    """

    def __init__(
        self,
        path: Union[str, PathLike[str]],
        *,
        include_arguments: bool = False,
        include_results: bool = False,
        include_error_messages: bool = False,
        include_stacktrace: bool = False,
        redact: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
        dump_models: bool = False,
        max_repr: int = 1000,
        events: Iterable[str] = _KINDS,
        dispatcher: Dispatcher | None = None,
        prefix: EventName = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        if not isinstance(path, (str, PathLike)):
            fail(TypeError, f"JsonlExporter(path={short_repr(path)})", "a file path (str or os.PathLike)")
        where = "JsonlExporter"
        self.include_arguments = check_bool(include_arguments, f"{where}(include_arguments={short_repr(include_arguments)})")
        self.include_results = check_bool(include_results, f"{where}(include_results={short_repr(include_results)})")
        self.include_error_messages = check_bool(
            include_error_messages, f"{where}(include_error_messages={short_repr(include_error_messages)})"
        )
        self.include_stacktrace = check_bool(include_stacktrace, f"{where}(include_stacktrace={short_repr(include_stacktrace)})")
        self.redact = check_callable(
            redact, f"{where}(redact={short_repr(redact)})", optional=True,
            expected="a callable (event_dict) -> event_dict or None, or None",
        )
        check_bool(dump_models, f"{where}(dump_models={short_repr(dump_models)})")
        max_repr = check_int(max_repr, f"{where}(max_repr={short_repr(max_repr)})", minimum=10, maximum=10**7)
        self._opts = _Options(dump_models, max_repr)
        if isinstance(events, str) or not isinstance(events, Iterable):
            fail(TypeError, f"{where}(events={short_repr(events)})", f"a list of event kinds from {list(_KINDS)}")
        kinds = tuple(dict.fromkeys(check_choice(k, _KINDS, f"{where}(events=[..., {short_repr(k)}])") for k in events))
        if not kinds:
            fail(ValueError, f"{where}(events=[])", f"at least one event kind from {list(_KINDS)}")
        self._kinds = kinds
        self.path = os.fspath(path)
        try:
            self._file: Any = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise type(exc)(exc.errno, f"JsonlExporter: cannot open {self.path!r} for appending: {exc.strerror or exc}") from None
        self._write_lock = threading.Lock()
        self.written = 0
        """Lines written (events, and the lines recording lost ones)."""
        self.dropped = 0
        """Events ``redact`` dropped (returned ``None`` for)."""
        self.failed = 0
        """Events that could not be written (a failed write, encoding or ``redact``)."""
        self.last_error: BaseException | None = None
        """The last failure's exception (``None`` when nothing failed)."""
        self._unreported = 0
        self._unreported_reason = ""
        self._closed = False

    # ------------------------------------------------------------------ attaching

    def _event_names(self, prefix: EventName) -> list[EventName]:
        return [call_event_name(prefix, kind) for kind in self._kinds]

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ lines

    def _reason(self, exc: Any) -> Any:
        if not isinstance(exc, BaseException):
            return _convert(exc, self._opts, 1)
        out: dict[str, Any] = {"type": type(exc).__name__}
        status = getattr(exc, "status_code", None)
        if type(status) is int:
            out["status_code"] = status
        if self.include_error_messages:
            try:
                message = str(exc)
            except Exception:
                message = "<str() raised>"
            message = mask_secrets(message)
            out["message"] = message if len(message) <= self._opts.max_repr else message[: self._opts.max_repr - 3] + "..."
        return out

    def _stacktrace(self, value: Any) -> Any:
        if isinstance(value, traceback.StackSummary):
            return [mask_secrets(f"{f.filename}:{f.lineno} in {f.name}") for f in value]
        return _convert(value, self._opts, 1)

    def event_dict(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> dict[str, Any]:
        """The dict of one line before ``redact`` (JSON-safe, masked, without what is not opted in)."""
        opts = self._opts
        meta: dict[str, Any] = {}
        for key, value in metadata.items():
            if type(key) is not str:
                key = str(_convert(key, opts, 1))
            if key == "arguments":
                if not self.include_arguments:
                    continue
            elif key == "result":
                if not self.include_results:
                    continue
            elif key == "reason":
                meta[key] = self._reason(value)
                continue
            elif key == "stacktrace":
                if self.include_stacktrace:
                    meta[key] = self._stacktrace(value)
                continue
            if value is None:
                meta[key] = None
            elif _name_cache.get(key) if key in _name_cache else is_secret_name(key):
                meta[key] = MASK
            else:
                t = type(value)
                meta[key] = value if t is bool or t is int else _convert(value, opts, 1)
        return {
            "v": LINE_FORMAT,
            "time": _iso(time.time_ns()),
            "event": list(event_name),
            "measurements": _mapping(measurements, opts, 1),
            "metadata": meta,
        }

    def _line(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> bytes | None:
        record: Any = self.event_dict(event_name, measurements, metadata)
        if self.redact is not None:
            record = self.redact(record)
            if record is None:
                return None
            if not isinstance(record, Mapping):
                raise TypeError(f"JsonlExporter redact returned {short_repr(record)}; expected a dict or None")
            record = _mapping(record, self._opts, 0)
        return (_encode(record) + "\n").encode("ascii")

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        """Write one event (never raises: a failure is counted, logged and recorded in the log)."""
        try:
            line = self._line(event_name, measurements, metadata)
        except Exception as exc:
            self._failed(exc)
            return
        if line is None:
            with self._write_lock:
                self.dropped += 1
            return
        self._write(line)

    def _write(self, line: bytes) -> None:
        with self._write_lock:
            try:
                if self._closed:
                    raise ValueError(f"JsonlExporter({self.path!r}) is closed")
                if self._unreported:
                    self._write_all(self._lost_line())
                    self.written += 1
                    self._unreported = 0
                self._write_all(line)
                self.written += 1
                return
            except Exception as exc:
                error = exc
        self._failed(error)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            if not n:
                raise OSError(f"write to {self.path!r} wrote nothing")
            view = view[n:]

    def _lost_line(self) -> bytes:
        record = {
            "v": LINE_FORMAT,
            "time": _iso(time.time_ns()),
            "event": list(EXPORTER_LOST),
            "measurements": {"count": self._unreported},
            "metadata": {"reason": self._unreported_reason, "path": self.path},
        }
        return (_encode(record) + "\n").encode("ascii")

    def _failed(self, exc: Exception) -> None:
        with self._write_lock:
            first = self._unreported == 0
            self.failed += 1
            self._unreported += 1
            self._unreported_reason = _describe(exc)
            self.last_error = exc
        if first:
            _log.warning(
                "JsonlExporter(%r) could not write an event (%s); failures are counted and the log will "
                "record how many events were lost", self.path, _describe(exc),
            )

    # ------------------------------------------------------------------ life cycle

    @property
    def closed(self) -> bool:
        return self._closed

    def flush(self, *, fsync: bool = False) -> None:
        """Every line is already handed to the OS when ``handle`` returns; ``fsync=True`` also
        asks the OS to put it on disk."""
        with self._write_lock:
            if not self._closed and fsync:
                os.fsync(self._file.fileno())

    def stats(self) -> dict[str, Any]:
        """``{"path", "written", "dropped", "failed", "last_error"}`` (the error as text)."""
        with self._write_lock:
            return {
                "path": self.path,
                "written": self.written,
                "dropped": self.dropped,
                "failed": self.failed,
                "last_error": None if self.last_error is None else _describe(self.last_error),
            }

    def close(self) -> None:
        """Detach, record lost events in the log if any, close the file (idempotent).

        Logs an error when events could not be written.
        """
        self.detach()
        with self._write_lock:
            if self._closed:
                return
            if self._unreported:
                try:
                    self._write_all(self._lost_line())
                    self.written += 1
                    self._unreported = 0
                except Exception:  # noqa: S110 - counted already; reported below
                    pass
            self._closed = True
            try:
                self._file.close()
            except OSError as exc:
                self.last_error = exc
        if self.failed:
            _log.error(
                "JsonlExporter(%r): %d event(s) could not be written (last: %s)%s",
                self.path, self.failed, _describe(self.last_error) if self.last_error else "?",
                "" if not self._unreported else "; the log does not record it",
            )

    def __repr__(self) -> str:
        state = "closed" if self._closed else "attached" if self.attached else "detached"
        return f"<JsonlExporter {self.path!r} {state}: {self.written} written, {self.failed} failed>"
