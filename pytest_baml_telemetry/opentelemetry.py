"""OpenTelemetry spans from the call events: :class:`SpanHandler`, and :class:`SpanCapture` for tests.

Needs the optional ``opentelemetry-api`` / ``opentelemetry-sdk`` packages, imported when a
handler is built (importing this module imports neither, so the plugin stays cheap).

:class:`SpanHandler` turns each call (its start and its stop or exception, paired by
``telemetry_span_context``) into one ``CLIENT`` span on the GenAI semantic conventions.
The span is built when the call ends, so its name can carry the model (the start event
does not know it), with the start event's ``system_time`` as its start and that plus the
end event's ``duration`` as its end. Its parent is the OpenTelemetry context that was
current when the call started: the start handler runs in the caller's thread and asyncio
task, and captures it there. A call whose start was not seen (the handler was attached
mid-call, or the emitter does not emit starts) gets a span ending now, lasting
``duration``, parented to the context current at its end.

Attributes (left out when unknown, never a made-up 0):

* ``gen_ai.operation.name`` (``operation_name``, default ``"chat"``); the span name is
  ``"{gen_ai.operation.name} {gen_ai.request.model}"``, or the operation alone without a model;
* ``gen_ai.provider.name``: BAML's provider mapped through
  :data:`~pytest_baml_telemetry.metrics.opentelemetry.PROVIDER_NAMES` (``openai``,
  ``anthropic``, ``azure-openai`` -> ``azure.ai.openai``, ``aws-bedrock`` -> ``aws.bedrock``,
  ``vertex-ai`` -> ``gcp.vertex_ai``, ``google-ai`` -> ``gcp.gemini``; others kept as they
  are); ``baml.provider`` is BAML's own name;
* ``gen_ai.request.model`` (``model``), ``gen_ai.response.model`` (``response_model``),
  ``gen_ai.response.id`` (``request_id``; baml-py's own ``breq_...`` request id, reported
  when no response was served, goes to ``baml.request_id`` instead);
* ``gen_ai.usage.input_tokens``, ``gen_ai.usage.output_tokens``,
  ``gen_ai.usage.cache_read.input_tokens`` (``cached_input_tokens``);
* ``gen_ai.request.stream`` (only when streaming, as the conventions say) and
  ``gen_ai.response.time_to_first_chunk`` (seconds, a stream's stop event's
  ``time_to_first_chunk``);
* ``baml.function_name``, ``baml.client_name``, ``baml.num_attempts``, ``baml.streaming``;
* on an exception: ``error.type`` (the exception's class ``__qualname__``, as the metrics
  reporter labels it), status ``ERROR`` with the class name (and HTTP status) as its
  description, and an ``exception`` span event with ``exception.type`` and
  ``exception.stacktrace`` (the frames only). The exception's message is left out, since
  baml-py's messages quote the prompt and the model's output.

Prompts, arguments and results are recorded only with ``record_content=True``, as JSON
text truncated to ``max_content_length`` characters.

Naming. By default the names of the installed ``opentelemetry-semantic-conventions``
(0.66b2). With ``OTEL_SEMCONV_STABILITY_OPT_IN`` containing ``gen_ai_latest_experimental``
(or ``semconv="latest"``), the names of the GenAI conventions' own repository
(semantic-conventions-genai, ``docs/gen-ai/client-inference.md``). What differs on spans:

* default also sets the deprecated ``gen_ai.system`` (same value as ``gen_ai.provider.name``)
  for backends that key on it; latest sets ``gen_ai.provider.name`` only;
* content (opt-in): default puts the arguments in ``gen_ai.input.messages`` (one user
  message whose text part is the arguments' JSON); latest puts each argument in
  ``gen_ai.prompt.variable.<name>``. Both put the result in ``gen_ai.output.messages``;
* cache-write tokens are ``gen_ai.usage.cache_creation.input_tokens`` by default and
  ``gen_ai.usage.cache_write.input_tokens`` in latest; the events carry no such count, so
  neither is set.

The metrics reporter follows the same switch (see :data:`METRIC_NAMES`).

:class:`SpanCapture` is an in-memory exporter for one test (the ``baml_spans`` fixture):
``.spans`` are plain dicts normalised for snapshots, ``assert_span`` matches them partially.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._validate import check_bool, check_count, fail, is_count, is_int, short_repr
from .attachable import AttachableHandler
from .contract import DEFAULT_PREFIX, MAX_NATIVE, EventName, event_kind
from .dispatcher import Dispatcher
from .matching import closest, describe, matches
from .metrics.opentelemetry import PROVIDER_NAMES

__all__ = [
    "LATEST_EXPERIMENTAL",
    "METRIC_NAMES",
    "OPT_IN_ENV",
    "SpanCapture",
    "SpanHandler",
    "semconv_latest",
]

_log = logging.getLogger("pytest_baml_telemetry.opentelemetry")

OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_EXPERIMENTAL = "gen_ai_latest_experimental"

METRIC_NAMES: dict[bool, dict[str, tuple[str, ...]]] = {
    False: {
        "duration": ("gen_ai.client.operation.duration",),
        "time_to_first_chunk": ("gen_ai.client.operation.time_to_first_chunk",),
        "tokens": ("gen_ai.client.token.usage",),
    },
    True: {
        "duration": ("gen_ai.client.inference.duration",),
        "time_to_first_chunk": ("gen_ai.client.inference.time_to_first_chunk",),
        "tokens": ("gen_ai.client.inference.operation.input_tokens", "gen_ai.client.inference.operation.output_tokens"),
    },
}
"""``{latest: {what: instrument names}}``: the GenAI client metric names by default
(``False``) and under ``gen_ai_latest_experimental`` (``True``). By default one token
histogram tells input from output by ``gen_ai.token.type``; in latest there is one
histogram per token type (without that attribute)."""

_SEMCONV_CHOICES = "'default', 'latest', or None (read OTEL_SEMCONV_STABILITY_OPT_IN)"


def semconv_latest(semconv: Any = None, *, where: str = "semconv", environ: Mapping[str, str] | None = None) -> bool:
    """Whether the latest experimental GenAI names apply.

    ``semconv`` is ``"default"``, ``"latest"``, or ``None``: then ``True`` when the
    comma-separated ``OTEL_SEMCONV_STABILITY_OPT_IN`` (of ``environ``, default
    ``os.environ``) contains ``gen_ai_latest_experimental``, as OpenTelemetry's own
    instrumentations read it.
    """
    if semconv is None:
        value = (os.environ if environ is None else environ).get(OPT_IN_ENV, "")
        return LATEST_EXPERIMENTAL in {part.strip() for part in str(value).split(",")}
    if semconv == "default":
        return False
    if semconv == "latest":
        return True
    fail(ValueError, f"{where}={short_repr(semconv)}", _SEMCONV_CHOICES)


# --------------------------------------------------------------------------- content


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models (the generated types)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:
            pass
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return repr(value)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=_jsonable, ensure_ascii=False, sort_keys=True)
    except Exception:  # a cycle, a failing model_dump, ...: the repr, never an error
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"...[truncated {len(text) - limit} chars]"


# --------------------------------------------------------------------------- handler


class _Started(NamedTuple):
    """What the start handler keeps of a call until it ends."""

    parent: Any
    system_time: int | None
    monotonic_time: int | None
    arguments: Any


_BAML_REQUEST_ID = "breq_"
"""The prefix of baml-py's own HTTP request ids, which ``instrument(b)`` reports when no
response was served (``gen_ai.response.id`` is the provider's id of a served completion)."""


def _count(value: Any) -> int | None:
    return value if is_count(value) and value <= MAX_NATIVE else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class SpanHandler(AttachableHandler):
    """Turns each call's start/stop/exception events into one OpenTelemetry span.

    ``SpanHandler(tracer_provider=None, *, record_content=False, max_content_length=4096,
    operation_name="chat", semconv=None, max_open_calls=10000, tracer_name=...,
    dispatcher=None, prefix=("ash_baml",))``: ``tracer_provider`` defaults to the global
    one. ``attach()`` / ``detach()`` or ``with handler:``. At most ``max_open_calls``
    started calls are remembered; beyond that the oldest is forgotten (its span, if it
    ends, is then parented to the context current at its end) and counted in
    :attr:`forgotten`.
    """

    _kinds = ("start", "stop", "exception")

    def __init__(
        self,
        tracer_provider: Any = None,
        *,
        record_content: bool = False,
        max_content_length: int = 4096,
        operation_name: str = "chat",
        semconv: str | None = None,
        max_open_calls: int = 10_000,
        tracer_name: str = "pytest_baml_telemetry",
        dispatcher: Dispatcher | None = None,
        prefix: EventName = DEFAULT_PREFIX,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        try:
            from opentelemetry import context as otel_context
            from opentelemetry import trace as otel_trace
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "SpanHandler needs the optional 'opentelemetry-sdk' package: "
                "pip install 'pytest-baml-telemetry[opentelemetry]' (or opentelemetry-sdk)"
            ) from exc
        self.record_content = check_bool(record_content, f"SpanHandler(record_content={short_repr(record_content)})")
        self.max_content_length = check_count(max_content_length, f"SpanHandler(max_content_length={short_repr(max_content_length)})")
        self.max_open_calls = check_count(max_open_calls, f"SpanHandler(max_open_calls={short_repr(max_open_calls)})")
        for label, value in (("operation_name", operation_name), ("tracer_name", tracer_name)):
            if not isinstance(value, str) or not value:
                fail(TypeError, f"SpanHandler({label}={short_repr(value)})", "a non-empty str")
        self.latest = semconv_latest(semconv, where="SpanHandler(semconv)")
        if tracer_provider is None:
            tracer_provider = otel_trace.get_tracer_provider()
        elif not callable(getattr(tracer_provider, "get_tracer", None)):
            fail(
                TypeError, f"SpanHandler(tracer_provider={short_repr(tracer_provider)})",
                "an OpenTelemetry TracerProvider (e.g. opentelemetry.sdk.trace.TracerProvider) or None for the global one",
            )
        from . import __version__

        self.tracer_provider = tracer_provider
        self.tracer = tracer_provider.get_tracer(tracer_name, __version__)
        self.operation_name = operation_name
        self._get_context = otel_context.get_current
        self._client_kind = otel_trace.SpanKind.CLIENT
        self._status = otel_trace.Status
        self._error_code = otel_trace.StatusCode.ERROR
        self._open: dict[Any, _Started] = {}
        self._lock = threading.Lock()
        self.forgotten = 0
        """How many started calls were forgotten (``max_open_calls`` reached)."""

    @property
    def open_calls(self) -> int:
        """How many started calls have not ended yet."""
        return len(self._open)

    # ------------------------------------------------------------------ events

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        kind = event_kind(event_name)
        key = metadata.get("telemetry_span_context")
        try:
            hash(key)
        except TypeError:
            key = None
        if kind == "start":
            if key is not None:
                self._start(key, measurements, metadata)
        elif kind == "stop" or kind == "exception":
            self._end(kind, key, measurements, metadata)

    def _start(self, key: Any, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        system_time = measurements.get("system_time")
        monotonic = measurements.get("monotonic_time")
        started = _Started(
            self._get_context(),
            system_time if is_int(system_time) and 0 <= system_time <= MAX_NATIVE else None,
            monotonic if is_int(monotonic) else None,
            metadata.get("arguments") if self.record_content else None,
        )
        with self._lock:
            if key not in self._open and len(self._open) >= self.max_open_calls:
                if not self._open:
                    self.forgotten += 1
                    return
                del self._open[next(iter(self._open))]
                self.forgotten += 1
            self._open[key] = started

    def _end(self, kind: str, key: Any, measurements: Mapping[str, Any], metadata: Mapping[str, Any]) -> None:
        started = None
        if key is not None:
            with self._lock:
                started = self._open.pop(key, None)
        duration = _count(measurements.get("duration"))
        if started is not None and started.system_time is not None:
            start = started.system_time
            end = start + (duration or 0)
            if end > MAX_NATIVE:
                end = MAX_NATIVE
            parent = started.parent
        else:
            end = time.time_ns()
            start = max(end - (duration or 0), 0)
            parent = started.parent if started is not None else self._get_context()
        attrs = self._attributes(kind, measurements, metadata, started)
        model = attrs.get("gen_ai.request.model")
        name = f"{self.operation_name} {model}" if model else self.operation_name
        span = self.tracer.start_span(name, context=parent, kind=self._client_kind, attributes=attrs, start_time=start)
        if kind == "exception":
            reason = metadata.get("reason")
            error = attrs["error.type"]
            description = error
            status_code = getattr(reason, "status_code", None)
            if is_int(status_code):
                description += f" (status {status_code})"
            event = {"exception.type": error, "exception.stacktrace": self._stacktrace(metadata.get("stacktrace"), error)}
            if self.record_content and isinstance(reason, BaseException):
                message = _truncate(_json_text(str(reason)), self.max_content_length)
                event["exception.message"] = message
                description += f": {message}"
            span.add_event("exception", event, timestamp=end)
            span.set_status(self._status(self._error_code, description))
        span.end(end_time=end)

    @staticmethod
    def _stacktrace(stack: Any, error: str) -> str:
        lines = ["Traceback (most recent call last):\n"]
        try:
            lines.extend(stack.format())
        except Exception:
            pass
        lines.append(error)
        return "".join(lines)

    def _attributes(self, kind: str, m: Mapping[str, Any], md: Mapping[str, Any], started: _Started | None) -> dict[str, Any]:
        attrs: dict[str, Any] = {"gen_ai.operation.name": self.operation_name}
        provider = _text(md.get("provider"))
        if provider is not None:
            mapped = PROVIDER_NAMES.get(provider, provider)
            attrs["gen_ai.provider.name"] = mapped
            if not self.latest:
                attrs["gen_ai.system"] = mapped
            attrs["baml.provider"] = provider
        for key, attr in (("model", "gen_ai.request.model"), ("response_model", "gen_ai.response.model")):
            value = _text(md.get(key))
            if value is not None:
                attrs[attr] = value
        request_id = _text(md.get("request_id"))
        if request_id is not None:
            # baml's own HTTP request id (no response was served) is not the completion's id
            attrs["baml.request_id" if request_id.startswith(_BAML_REQUEST_ID) else "gen_ai.response.id"] = request_id
        for key, attr in (
            ("input_tokens", "gen_ai.usage.input_tokens"),
            ("output_tokens", "gen_ai.usage.output_tokens"),
            ("cached_input_tokens", "gen_ai.usage.cache_read.input_tokens"),
        ):
            count = _count(m.get(key))
            if count is not None:
                attrs[attr] = count
        function = _text(md.get("function_name"))
        if function is not None:
            attrs["baml.function_name"] = function
        client = _text(md.get("client_name"))
        if client is not None:
            attrs["baml.client_name"] = client
        attempts = _count(md.get("num_attempts"))
        if attempts is not None:
            attrs["baml.num_attempts"] = attempts
        streaming = md.get("streaming")
        if isinstance(streaming, bool):
            attrs["baml.streaming"] = streaming
            if streaming:
                attrs["gen_ai.request.stream"] = True
                first = _count(m.get("time_to_first_chunk")) if kind == "stop" else None
                if first is not None:
                    attrs["gen_ai.response.time_to_first_chunk"] = first / 1_000_000_000
        if kind == "exception":
            reason = md.get("reason")
            attrs["error.type"] = type(reason).__qualname__ if isinstance(reason, BaseException) else "_OTHER"
        if self.record_content:
            self._content(attrs, kind, md, started)
        return attrs

    def _content(self, attrs: dict[str, Any], kind: str, md: Mapping[str, Any], started: _Started | None) -> None:
        limit = self.max_content_length
        arguments = started.arguments if started is not None else None
        if isinstance(arguments, Mapping):
            if self.latest:
                for name, value in arguments.items():
                    attrs[f"gen_ai.prompt.variable.{name}"] = _truncate(_json_text(value), limit)
            else:
                message = [{"role": "user", "parts": [{"type": "text", "content": _truncate(_json_text(dict(arguments)), limit)}]}]
                attrs["gen_ai.input.messages"] = _json_text(message)
        if kind == "stop" and "result" in md:
            output = [{"role": "assistant", "parts": [{"type": "text", "content": _truncate(_json_text(md["result"]), limit)}]}]
            attrs["gen_ai.output.messages"] = _json_text(output)

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        naming = "latest" if self.latest else "default"
        return f"<SpanHandler {self.handler_id} {state} semconv={naming} open_calls={self.open_calls}>"


# --------------------------------------------------------------------------- capture


_SPAN_KEYS = ("name", "kind", "parent", "parent_name", "attributes", "status", "events")
_TIMES = (False, "relative", "absolute")


class SpanCapture:
    """The spans of the BAML calls of one test, in memory (what the ``baml_spans`` fixture gives).

    A ``TracerProvider`` with an ``InMemorySpanExporter`` behind a ``SimpleSpanProcessor``,
    and a :class:`SpanHandler` on it (``handler_options`` are its keywords, e.g.
    ``record_content=True``, ``semconv="latest"``, ``dispatcher=``). ``attach()`` /
    ``detach()`` or ``with SpanCapture() as spans:``. :attr:`tracer` makes parent spans
    of your own on the same provider, so they are captured too.
    """

    def __init__(self, **handler_options: Any) -> None:
        if "tracer_provider" in handler_options:
            fail(
                TypeError, f"SpanCapture(tracer_provider={short_repr(handler_options['tracer_provider'])})",
                "no tracer_provider: the capture makes its own (attach a SpanHandler to yours instead)",
            )
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.handler = SpanHandler(self.tracer_provider, **handler_options)
        self.tracer = self.tracer_provider.get_tracer("pytest_baml_telemetry.tests")

    def attach(self, dispatcher: Dispatcher | None = None, prefix: EventName | None = None) -> SpanCapture:
        """Attach the handler (default: the default dispatcher); return ``self``."""
        self.handler.attach(dispatcher, prefix)
        return self

    def detach(self) -> bool:
        """Detach the handler; return ``False`` if it was not attached."""
        return self.handler.detach()

    def __enter__(self) -> SpanCapture:
        if not self.handler.attached:
            self.attach()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.detach()

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()

    @property
    def finished_spans(self) -> list[Any]:
        """The SDK's ``ReadableSpan`` objects, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    @property
    def spans(self) -> list[dict[str, Any]]:
        """The spans as plain dicts without timestamps (see :meth:`as_dicts`)."""
        return self.as_dicts()

    def as_dicts(self, *, times: Any = False) -> list[dict[str, Any]]:
        """The spans in the order they ended, as dicts for snapshots.

        Each has ``name``, ``kind`` (``"CLIENT"``), ``parent`` (the index of the parent span
        in this list, ``"external"`` for a parent that was not captured, ``None`` for a
        root), ``parent_name``, ``attributes``, ``status`` (``{"code": "UNSET"|"OK"|"ERROR"}``
        plus ``description`` when there is one) and ``events`` (``name`` and
        ``attributes``; ``exception.stacktrace`` is left out, file paths and line numbers
        change). ``times=False`` (default) leaves out timestamps; ``"relative"`` adds
        ``start_time``/``end_time`` (and events' ``timestamp``) in ns since the earliest
        captured start; ``"absolute"`` gives them as the SDK has them.
        """
        if times not in _TIMES:
            fail(ValueError, f"SpanCapture.as_dicts(times={short_repr(times)})", "False, 'relative' or 'absolute'")
        spans = self.finished_spans
        index = {span.context.span_id: i for i, span in enumerate(spans)}
        origin = min((s.start_time for s in spans if s.start_time is not None), default=0) if times == "relative" else 0
        out = []
        for span in spans:
            parent_id = span.parent.span_id if span.parent is not None else None
            parent: Any = None if parent_id is None else index.get(parent_id, "external")
            status: dict[str, Any] = {"code": span.status.status_code.name}
            if span.status.description:
                status["description"] = span.status.description
            events = []
            for event in span.events:
                entry: dict[str, Any] = {
                    "name": event.name,
                    "attributes": {k: v for k, v in (event.attributes or {}).items() if k != "exception.stacktrace"},
                }
                if times:
                    entry["timestamp"] = event.timestamp - origin
                events.append(entry)
            item: dict[str, Any] = {
                "name": span.name,
                "kind": span.kind.name,
                "parent": parent,
                "parent_name": spans[parent].name if isinstance(parent, int) else None,
                "attributes": dict(span.attributes or {}),
                "status": status,
                "events": events,
            }
            if times:
                item["start_time"] = span.start_time - origin
                item["end_time"] = span.end_time - origin
            out.append(item)
        return out

    # ------------------------------------------------------------------ assertions

    def assert_span(self, name: Any = None, *, count: int | None = None, **expected: Any) -> dict[str, Any]:
        """Assert a captured span whose dict (see :meth:`as_dicts`) matches; return the first.

        ``name`` and the keywords (``kind``, ``parent``, ``parent_name``, ``attributes``,
        ``status``, ``events``) match partially, as the event capture does: a mapping
        matches the keys it names, a type or a predicate matches what it accepts.
        ``status="ERROR"`` is short for ``status={"code": "ERROR"}``. With ``count``, exactly
        that many spans must match. On failure the message shows the closest spans and
        how they differ.
        """
        __tracebackhide__ = True
        unknown = sorted(set(expected) - set(_SPAN_KEYS))
        if unknown:
            fail(TypeError, f"SpanCapture.assert_span: unknown key(s) {unknown}", f"some of {list(_SPAN_KEYS)}")
        if count is not None and not is_count(count):
            fail(ValueError, f"SpanCapture.assert_span(count={short_repr(count)})", "an int >= 0 or None")
        want = dict(expected)
        if name is not None:
            want["name"] = name
        if isinstance(want.get("status"), str):
            want["status"] = {"code": want["status"]}
        spans = self.spans
        found = [s for s in spans if matches(want, s)]
        if found and (count is None or len(found) == count):
            return found[0]
        if count == 0 and not found:
            return {}
        desc = ", ".join(f"{k}={describe(v)}" for k, v in want.items())
        exactly = "" if count is None else f" exactly {count} time(s)"
        lines = [f"expected a span{' with ' + desc if desc else ''}{exactly}, found {len(found)}"]
        if not spans:
            lines.append("no span was captured")
        elif not found:
            top = {k: v for k, v in want.items() if k != "attributes"}
            attrs = want.get("attributes") if isinstance(want.get("attributes"), Mapping) else None

            def sections(span: dict[str, Any]) -> Any:
                parts = [("span", top, span)]
                if attrs is not None:
                    parts.append(("attributes", attrs, span["attributes"]))
                elif "attributes" in want:
                    parts.append(("span", {"attributes": want["attributes"]}, span))
                return parts

            lines.append("closest spans:")
            shown, more = closest(spans, sections)
            for span, diffs in shown:
                lines.append(f"  {span['name']!r} (status {span['status']['code']})")
                lines.extend(f"      {d}" for d in diffs)
            if more:
                lines.append(f"  ... and {more} more")
        raise AssertionError("\n".join(lines))

    def assert_not_recorded(self, *texts: str) -> None:
        """Assert that no span name, attribute or event attribute contains any of ``texts``."""
        __tracebackhide__ = True
        for text in texts:
            if not isinstance(text, str) or not text:
                fail(TypeError, f"SpanCapture.assert_not_recorded({short_repr(text)})", "non-empty strs")
        hits = []
        for span in self.finished_spans:
            places = [("name", span.name)] + [(f"attributes[{k!r}]", v) for k, v in (span.attributes or {}).items()]
            for event in span.events:
                places += [(f"event {event.name!r} [{k!r}]", v) for k, v in (event.attributes or {}).items()]
            if span.status.description:
                places.append(("status description", span.status.description))
            for where, value in places:
                shown = value if isinstance(value, str) else str(value)
                hits += [f"{span.name!r} {where} contains {text!r}" for text in texts if text in shown]
        if hits:
            raise AssertionError("recorded content that should not be:\n  " + "\n  ".join(hits))

    def __len__(self) -> int:
        return len(self.exporter.get_finished_spans())

    def __repr__(self) -> str:
        return f"<SpanCapture {len(self)} span(s) {self.handler!r}>"

