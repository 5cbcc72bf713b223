"""Outcome strategies: what one call to a fake client does.

:class:`Outcome` is a value (checked like ``Usage``: ``TypeError``/``ValueError``);
:func:`outcomes` draws them. Running an outcome against a ``FakeBamlClient`` is
:mod:`pytest_baml_telemetry.fake.scenario`'s job; ``Outcome.script``/``run``/``arun``
call into it. The faults drawn are those of the one fault registry,
:data:`pytest_baml_telemetry.fake.faults.FAULTS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .. import _validate
from ..clock import DurationLike
from ..contract import StreamAbandoned, Usage
from ..fake import scenario
from ..fake.faults import Fault, coerce_error
from ..fake.scenario import OutcomeRun
from ._validation import MAX_SIZE, as_strategy, check_count, check_kinds, duration_ns
from ._values import FAULT_NAMES, JSON_VALUES, SimulatedInterrupt, fault_values, models, usage_option

__all__ = ["OUTCOME_KINDS", "Outcome", "OutcomeRun", "outcomes"]

OUTCOME_KINDS = ("success", "fault", "base_exception", "stream_completed", "stream_abandoned", "stream_failed")
"""The kinds of :class:`Outcome`."""

@dataclass(frozen=True)
class Outcome:
    """What one BAML call does, scriptable on a :class:`~pytest_baml_telemetry.FakeBamlClient`.

    ``kind`` is one of :data:`OUTCOME_KINDS`:

    - ``"success"``: returns ``result`` with ``usage`` (``None``: tokens unknown) and ``model``;
    - ``"fault"``: raises ``fault`` (a :class:`~pytest_baml_telemetry.fake.faults.Fault`;
      ``faults.cancelled()`` raises ``asyncio.CancelledError``, a ``BaseException``);
    - ``"base_exception"``: raises :class:`SimulatedInterrupt` (a ``BaseException``);
    - ``"stream_completed"``: a stream yields ``partials`` then returns ``result``;
    - ``"stream_abandoned"``: a stream of which the caller reads ``read`` partials, then
      closes it (``abandon="close"``) or drops it (``abandon="drop"``);
    - ``"stream_failed"``: a stream yields ``partials`` then fails with ``fault``.

    ``latency_ns`` is the call's scripted (virtual) duration.
    """

    kind: str
    result: Any = None
    usage: Usage | None = None
    model: str | None = None
    latency_ns: int = 0
    fault: Fault | None = None
    partials: tuple[Any, ...] = ()
    read: int = 0
    abandon: str = "close"

    def __post_init__(self) -> None:
        _validate.check_choice(self.kind, OUTCOME_KINDS, f"Outcome(kind={self.kind!r})", expected=f"one of {OUTCOME_KINDS}")
        if self.usage is not None and not isinstance(self.usage, Usage):
            _validate.fail(TypeError, f"Outcome(usage={self.usage!r})", "a Usage or None")
        _validate.check_str(self.model, f"Outcome(model={self.model!r})", empty=True, optional=True)
        _validate.check_count(self.latency_ns, f"strategies.Outcome(latency_ns={self.latency_ns!r})")
        needs_fault = self.kind in ("fault", "base_exception", "stream_failed")
        if needs_fault and not isinstance(self.fault, Fault):
            _validate.fail(TypeError, f"Outcome(kind={self.kind!r}, fault={self.fault!r})", "a faults.Fault")
        if not needs_fault and self.fault is not None:
            raise ValueError(f"Outcome(kind={self.kind!r}, fault={self.fault!r}): this kind raises nothing")
        if not isinstance(self.partials, tuple):
            _validate.fail(TypeError, f"Outcome(partials={self.partials!r})", "a tuple")
        if self.partials and not self.streaming:
            raise ValueError(f"Outcome(kind={self.kind!r}, partials=<{len(self.partials)}>): only streams have partials")
        _validate.check_count(self.read, f"strategies.Outcome(read={self.read!r})")
        if self.read > len(self.partials) or (self.read and self.kind != "stream_abandoned"):
            _validate.fail(
                ValueError,
                f"Outcome(kind={self.kind!r}, read={self.read!r})",
                f"0, or for a stream_abandoned outcome at most its {len(self.partials)} partials",
            )
        _validate.check_choice(self.abandon, ("close", "drop"), f"Outcome(abandon={self.abandon!r})", expected="'close' or 'drop'")

    def __repr__(self) -> str:
        parts = [repr(self.kind)]
        if self.kind in ("success", "stream_completed", "stream_abandoned"):
            parts.append(f"result={self.result!r}")
            parts.append(f"usage={self.usage!r}")
            if self.model is not None:
                parts.append(f"model={self.model!r}")
        if self.fault is not None:
            parts.append(f"fault={self.fault!r}")
        if self.partials:
            parts.append(f"partials={self.partials!r}")
        if self.kind == "stream_abandoned":
            parts.append(f"read={self.read}, abandon={self.abandon!r}")
        parts.append(f"latency_ns={self.latency_ns}")
        return f"Outcome({', '.join(parts)})"

    # ------------------------------------------------------------------ expectations

    @property
    def streaming(self) -> bool:
        """Whether the call is a stream (``fake.stream.Fn(...)``)."""
        return self.kind.startswith("stream_")

    @property
    def ok(self) -> bool:
        """Whether the call ends with a stop event."""
        return self.kind in ("success", "stream_completed")

    @property
    def expected_event(self) -> str:
        """``"stop"`` or ``"exception"``: the event that ends the call."""
        return "stop" if self.ok else "exception"

    @property
    def error_class(self) -> type[BaseException] | None:
        """The class of the exception the caller sees (``None`` when it sees none)."""
        return None if self.fault is None else self.fault.error_class

    @property
    def reason_class(self) -> type[BaseException] | None:
        """The class of the exception event's ``reason`` (``None`` for a stop)."""
        if self.kind == "stream_abandoned":
            return StreamAbandoned
        return self.error_class

    @property
    def expected_kind(self) -> str | None:
        """The exception event's ``kind``: ``"error"``, ``"exit"``, or ``None`` for a stop."""
        reason = self.reason_class
        if reason is None:
            return None
        return "error" if issubclass(reason, Exception) else "exit"

    # ------------------------------------------------------------------ scripting

    def script(self, fake: Any, function_name: str) -> Any:
        """Queue this outcome for ``function_name`` on ``fake``; return the scripted outcome.

        Uses ``fake.respond`` or ``fake.fail``; the call's latency is exactly
        :attr:`latency_ns`. What the *caller* does to a stream (read N partials, close or
        drop it) is up to the code under test, or to :meth:`run`.
        """
        return scenario.script(self, fake, function_name)

    def run(self, fake: Any, function_name: str, **arguments: Any) -> OutcomeRun:
        """Script this outcome on ``fake``, make the call as a caller would, and report
        (see :func:`pytest_baml_telemetry.fake.scenario.run`)."""
        return scenario.run(self, fake, function_name, **arguments)

    async def arun(self, fake: Any, function_name: str, **arguments: Any) -> OutcomeRun:
        """The async form of :meth:`run` (a sync ``FakeBamlClient`` is used through its async twin)."""
        return await scenario.arun(self, fake, function_name, **arguments)


def outcomes(
    *,
    kinds: Sequence[str] | str | None = None,
    faults: Sequence[str] | str | None = None,
    usage: Any = None,
    model: Any = None,
    max_partials: int = 4,
    max_latency: DurationLike = "60s",
) -> SearchStrategy[Outcome]:
    """:class:`Outcome` values: what one call does.

    ``kinds`` limits the kinds (default: all of :data:`OUTCOME_KINDS`; e.g.
    ``kinds=("success", "fault")`` for non-streaming calls only). ``faults`` limits the
    faults raised by ``"fault"`` and ``"stream_failed"`` outcomes (names of
    :data:`FAULT_NAMES`). ``usage`` (a :class:`Usage`, ``None``-able strategy) and
    ``model`` fix or narrow the successful calls' usage and model (default: usage from
    :func:`usages` or ``None``; model from :func:`models`). Streams have up to
    ``max_partials`` partials; latency is up to ``max_latency``.
    """
    chosen = check_kinds(kinds, OUTCOME_KINDS, "outcomes")
    fault_names = check_kinds(faults, FAULT_NAMES, "outcomes", "faults")
    check_count(max_partials, "outcomes", "max_partials", maximum=MAX_SIZE)
    latency_max = duration_ns(max_latency, "outcomes", "max_latency")
    usage_s = usage_option(usage, "outcomes")
    model_s = as_strategy(model, models())
    fault_s = fault_values(fault_names)
    results: SearchStrategy[Any] = st.one_of(JSON_VALUES, st.builds(dict, name=st.text(max_size=12), score=st.integers(0, 100)))
    partial_values: SearchStrategy[Any] = st.one_of(st.none(), st.text(max_size=12), st.builds(dict, name=st.text(max_size=8)))

    @st.composite
    def draw_outcome(draw: st.DrawFn) -> Outcome:
        kind = draw(st.sampled_from(chosen), label="kind")
        latency = draw(st.integers(min_value=0, max_value=latency_max), label="latency_ns")
        streaming = kind.startswith("stream_")
        partials: tuple[Any, ...] = ()
        if streaming:
            partials = tuple(draw(st.lists(partial_values, max_size=max_partials), label="partials"))
        if kind in ("success", "stream_completed", "stream_abandoned"):
            read = 0
            abandon = "close"
            if kind == "stream_abandoned":
                read = draw(st.integers(min_value=0, max_value=len(partials)), label="read")
                abandon = draw(st.sampled_from(("close", "drop")), label="abandon")
            return Outcome(
                kind,
                result=draw(results, label="result"),
                usage=draw(usage_s, label="usage"),
                model=draw(model_s, label="model"),
                latency_ns=latency,
                partials=partials,
                read=read,
                abandon=abandon,
            )
        if kind == "base_exception":
            fault = coerce_error(SimulatedInterrupt, name="base_exception")
        else:
            fault = draw(fault_s, label="fault")
        return Outcome(kind, latency_ns=latency, fault=fault, partials=partials)

    return draw_outcome()

