"""A reporter that records the OpenTelemetry GenAI client metrics from the call events.

Needs the optional ``opentelemetry-api`` / ``opentelemetry-sdk`` packages (imported when a
reporter is built). It follows the GenAI semantic conventions (development status, as of
semantic-conventions-genai, checked against its ``gen-ai-metrics.md``):

* ``gen_ai.client.operation.duration`` — histogram, unit ``s``, from every stop *and*
  exception event; failed calls carry ``error.type`` (the exception's class name, or
  ``_OTHER`` when the event has no exception). Advisory buckets
  ``[0.01, 0.02, 0.04, ..., 81.92]``.
* ``gen_ai.client.token.usage`` — histogram, unit ``{token}``, from stop and exception
  events (a failure the provider answered was billed; a failed call's records carry
  ``error.type``): one record with ``gen_ai.token.type="input"`` for the input tokens and
  one with ``"output"`` for the output tokens, each only when the count is known (the
  conventions forbid reporting unknown usage). Advisory buckets ``[1, 4, 16, ...,
  67108864]``.
* ``gen_ai.client.operation.time_to_first_chunk`` — histogram, unit ``s``, for streams
  whose stop event has ``time_to_first_chunk`` (``record_time_to_first_chunk=False``
  turns it off). Same buckets as the duration.

Attributes: ``gen_ai.operation.name`` (``operation_name``, default ``"chat"``),
``gen_ai.provider.name`` (from the event's ``provider`` metadata, with baml's provider
names mapped to the conventions' well-known values — ``"openai"``, ``"anthropic"``,
``"azure-openai"`` → ``"azure.ai.openai"``, ``"aws-bedrock"`` → ``"aws.bedrock"``,
``"vertex-ai"`` → ``"gcp.vertex_ai"``, ``"google-ai"`` → ``"gcp.gemini"``; other
names are kept as they are — else ``provider_name``; omitted when neither is known) and
``gen_ai.request.model`` (the event's ``model``, omitted when unknown). The
conventions replaced ``gen_ai.system`` by ``gen_ai.provider.name``;
``legacy_system_attribute=True`` also sets ``gen_ai.system`` for older backends.
``attributes(metadata) -> mapping`` may add attributes of your own (keep them low
in cardinality). Arguments and results are never recorded.

Naming: with ``OTEL_SEMCONV_STABILITY_OPT_IN`` containing ``gen_ai_latest_experimental``
(or ``semconv="latest"``) the instruments take the names of the GenAI conventions' own
repository, as :class:`~pytest_baml_telemetry.opentelemetry.SpanHandler` does:
``gen_ai.client.inference.duration``, ``gen_ai.client.inference.time_to_first_chunk``, and
the token histogram becomes two, ``gen_ai.client.inference.operation.input_tokens`` and
``gen_ai.client.inference.operation.output_tokens`` (without ``gen_ai.token.type``). What is
recorded, and when, does not change (``opentelemetry.METRIC_NAMES`` lists both namings).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .._validate import check_callable, fail, is_count, is_number
from ..attachable import AttachableHandler
from ..contract import DEFAULT_PREFIX, EventName, event_kind

__all__ = [
    "DURATION_BUCKETS",
    "OpenTelemetryReporter",
    "PROVIDER_NAMES",
    "TOKEN_BUCKETS",
]

_log = logging.getLogger("pytest_baml_telemetry.metrics")

DURATION_BUCKETS: tuple[float, ...] = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)
"""Recommended bucket boundaries (seconds) of ``gen_ai.client.operation.duration``."""

TOKEN_BUCKETS: tuple[int, ...] = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)
"""Recommended bucket boundaries of ``gen_ai.client.token.usage``."""

PROVIDER_NAMES: dict[str, str] = {
    "openai": "openai",
    "openai-responses": "openai",
    "anthropic": "anthropic",
    "azure-openai": "azure.ai.openai",
    "aws-bedrock": "aws.bedrock",
    "vertex-ai": "gcp.vertex_ai",
    "google-ai": "gcp.gemini",
}
"""baml-py provider names → ``gen_ai.provider.name`` well-known values."""

DURATION = "gen_ai.client.operation.duration"
TOKEN_USAGE = "gen_ai.client.token.usage"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"


class OpenTelemetryReporter(AttachableHandler):
    """Records the GenAI client metrics from the call events into an OpenTelemetry meter.

    ``OpenTelemetryReporter(meter_provider=None, *, dispatcher=None,
    prefix=("ash_baml",))``: ``meter_provider`` defaults to the global one.
    ``attach()`` / ``detach()`` or ``with reporter:``. Events it cannot use (no valid
    duration) are counted in :attr:`skipped` and logged once per reason.
    """

    _kinds = ("stop", "exception")

    def __init__(
        self,
        meter_provider: Any = None,
        *,
        dispatcher: Any = None,
        prefix: EventName = DEFAULT_PREFIX,
        operation_name: str = "chat",
        provider_name: str | None = None,
        attributes: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None,
        record_time_to_first_chunk: bool = True,
        legacy_system_attribute: bool = False,
        meter_name: str = "pytest_baml_telemetry",
        semconv: str | None = None,
    ) -> None:
        super().__init__(dispatcher=dispatcher, prefix=prefix)
        from ..opentelemetry import METRIC_NAMES, semconv_latest  # not at import: that module imports this one

        self.latest = semconv_latest(semconv, where="OpenTelemetryReporter(semconv)")
        names = METRIC_NAMES[self.latest]
        # the same optional-import guard as PrometheusReporter's, for another package and extra
        try:
            from opentelemetry import metrics as otel_metrics
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "OpenTelemetryReporter needs the optional 'opentelemetry-sdk' package: "
                "pip install 'pytest-baml-telemetry[opentelemetry]' (or opentelemetry-sdk)"
            ) from exc
        for label, value in (("operation_name", operation_name), ("meter_name", meter_name)):
            if not isinstance(value, str) or not value:
                fail(TypeError, f"OpenTelemetryReporter({label}={value!r})", "a non-empty str")
        if provider_name is not None and (not isinstance(provider_name, str) or not provider_name):
            fail(TypeError, f"OpenTelemetryReporter(provider_name={provider_name!r})", "a non-empty str or None")
        check_callable(
            attributes, f"OpenTelemetryReporter(attributes={attributes!r})", optional=True,
            expected="a function metadata -> mapping, or None",
        )
        if meter_provider is None:
            meter_provider = otel_metrics.get_meter_provider()
        elif not callable(getattr(meter_provider, "get_meter", None)):
            fail(
                TypeError, f"OpenTelemetryReporter(meter_provider={meter_provider!r})",
                "an OpenTelemetry MeterProvider (e.g. opentelemetry.sdk.metrics.MeterProvider) or None for the global one",
            )
        from .. import __version__

        self.meter_provider = meter_provider
        self.meter = meter_provider.get_meter(meter_name, __version__)
        self.operation_name = operation_name
        self.provider_name = provider_name
        self.attributes = attributes
        self.legacy_system_attribute = bool(legacy_system_attribute)
        self.record_time_to_first_chunk = bool(record_time_to_first_chunk)
        self.duration_histogram = self.meter.create_histogram(
            names["duration"][0],
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        self.token_histograms = {
            token_type: self.meter.create_histogram(
                name,
                unit="{token}",
                description=f"Number of {token_type} tokens used per operation." if self.latest else "Number of input and output tokens used.",
                explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
            )
            for token_type, name in zip(("input", "output"), names["tokens"] * (1 if self.latest else 2))
        }
        """``{"input": histogram, "output": histogram}`` (one and the same by default)."""
        self.token_histogram = self.token_histograms["input"]
        self.ttfc_histogram = (
            self.meter.create_histogram(
                names["time_to_first_chunk"][0],
                unit="s",
                description="Time to receive the first chunk of a streaming response.",
                explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
            )
            if self.record_time_to_first_chunk
            else None
        )
        self.skipped: dict[str, int] = {}
        """``{reason: events skipped}``."""
        self._skip_lock = threading.Lock()

    # ------------------------------------------------------------------ attributes

    def _attributes(self, metadata: Mapping[str, Any]) -> dict[str, Any]:
        attrs: dict[str, Any] = {"gen_ai.operation.name": self.operation_name}
        provider = metadata.get("provider")
        if isinstance(provider, str) and provider:
            provider = PROVIDER_NAMES.get(provider, provider)
        else:
            provider = self.provider_name
        if provider:
            attrs["gen_ai.provider.name"] = provider
            if self.legacy_system_attribute:
                attrs["gen_ai.system"] = provider
        model = metadata.get("model")
        if isinstance(model, str) and model:
            attrs["gen_ai.request.model"] = model
        if self.attributes is not None:
            extra = self.attributes(metadata)
            if not isinstance(extra, Mapping):
                raise TypeError(
                    f"OpenTelemetryReporter: attributes(metadata) returned {extra!r}; expected a mapping"
                )
            for key, value in extra.items():
                if value is not None:
                    attrs[str(key)] = value
        return attrs

    def _skip(self, reason: str, metadata: Mapping[str, Any]) -> None:
        with self._skip_lock:
            first = reason not in self.skipped
            self.skipped[reason] = self.skipped.get(reason, 0) + 1
        if first:
            _log.warning(
                "OpenTelemetryReporter skipped an event of %r: %s (further skips for this reason are counted in "
                "reporter.skipped, not logged)",
                metadata.get("function_name"), reason,
            )

    # ------------------------------------------------------------------ handler

    def handle(self, event_name: EventName, measurements: Mapping[str, Any], metadata: Mapping[str, Any], config: Any) -> None:
        kind = event_kind(event_name)
        duration = measurements.get("duration")
        if not is_count(duration):
            self._skip(f"{kind} event without a valid duration ({duration!r})", metadata)
            return
        attrs = self._attributes(metadata)
        failed = kind == "exception"
        if failed:
            reason = metadata.get("reason")
            attrs["error.type"] = type(reason).__qualname__ if isinstance(reason, BaseException) else "_OTHER"
        self.duration_histogram.record(duration / 1_000_000_000, attrs)
        for key, token_type in (("input_tokens", "input"), ("output_tokens", "output")):
            count = measurements.get(key)
            if count is None:
                continue
            if not is_count(count):
                self._skip(f"{key}={count!r} is not a token count", metadata)
                continue
            if self.latest:
                self.token_histograms[token_type].record(count, attrs)
            else:
                self.token_histogram.record(count, {**attrs, "gen_ai.token.type": token_type})
        if failed:
            return
        if self.ttfc_histogram is not None and metadata.get("streaming"):
            first = measurements.get("time_to_first_chunk")
            # typeshed's numbers.Real declares no __ge__, so mypy rejects a comparison every Real supports
            if is_number(first) and first >= 0:  # type: ignore[operator]
                self.ttfc_histogram.record(first / 1_000_000_000, attrs)

    def __repr__(self) -> str:
        state = "attached" if self.attached else "detached"
        return f"<OpenTelemetryReporter {self.handler_id} {state} meter={self.meter!r}>"
