"""Play one scripted outcome on a fake client as a caller would, and report what was seen.

A public helper, usable without Hypothesis (this module imports neither Hypothesis nor
``baml_py``)::

    from pytest_baml_telemetry.fake import FakeBamlClient, Step, faults, run_outcome

    fake = FakeBamlClient()
    seen = run_outcome(Step("stream_completed", result="hi", partials=("h",)), fake, "Greet", name="Ada")
    assert seen.partials == ("h",) and seen.result == "hi" and seen.call.ok
    seen = run_outcome(Step("fault", fault=faults.timeout(after="30s")), fake, "Greet", name="Ada")
    assert seen.call.duration_ns == 30_000_000_000 and seen.error is not None

An outcome (a :class:`Step`, ``pytest_baml_telemetry.strategies.Outcome`` — what its
Hypothesis strategies draw — or anything shaped like them: see :class:`OutcomeLike`) says
what one BAML call does. :func:`script` queues it on a ``FakeBamlClient``; :func:`run` /
:func:`arun` also make the call (reading a stream's partials, closing or dropping an
abandoned stream) and return an :class:`OutcomeRun`. The outcome's own error is caught and
returned; any other exception propagates. ``pytest_baml_telemetry.fake`` exports them as
``script_outcome``, ``run_outcome`` and ``arun_outcome`` (``fake.script`` is the scripting
module's name).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from .._validate import check_choice, check_count, check_str, fail
from . import faults
from .client import AsyncFakeBamlClient
from .faults import Fault, coerce_error

__all__ = ["STEP_KINDS", "OutcomeLike", "OutcomeRun", "Step", "arun", "run", "script"]

STEP_KINDS = ("success", "fault", "base_exception", "stream_completed", "stream_abandoned", "stream_failed")
"""The kinds of :class:`Step` (the same as ``strategies.OUTCOME_KINDS``)."""


class OutcomeLike(Protocol):
    """What :func:`script`, :func:`run` and :func:`arun` read of an outcome."""

    @property
    def kind(self) -> str: ...
    @property
    def result(self) -> Any: ...
    @property
    def usage(self) -> Any: ...
    @property
    def model(self) -> str | None: ...
    @property
    def latency_ns(self) -> int: ...
    @property
    def fault(self) -> Fault | None: ...
    @property
    def partials(self) -> tuple[Any, ...]: ...
    @property
    def read(self) -> int: ...
    @property
    def abandon(self) -> str: ...
    @property
    def streaming(self) -> bool: ...
    @property
    def error_class(self) -> type[BaseException] | None: ...


@dataclass(frozen=True)
class Step:
    """What one BAML call does, for :func:`script`, :func:`run` and :func:`arun`.

    ``kind`` is one of :data:`STEP_KINDS`: ``"success"`` returns ``result`` (with ``usage``
    and ``model``); ``"fault"`` / ``"base_exception"`` raise ``fault`` (a fault, a fault name
    such as ``"timeout"``, an exception class or instance); ``"stream_completed"`` yields
    ``partials`` then returns ``result``; ``"stream_abandoned"`` is a stream of which the
    caller reads ``read`` partials, then closes it (``abandon="close"``) or drops it
    (``"drop"``); ``"stream_failed"`` yields ``partials`` then fails with ``fault``.
    ``latency_ns`` is the call's virtual duration (default: the fault's ``after``, else 0).
    """

    kind: str = "success"
    result: Any = None
    usage: Any = None
    model: str | None = None
    latency_ns: int = 0
    fault: Any = None
    partials: tuple[Any, ...] = ()
    read: int = 0
    abandon: str = "close"

    def __post_init__(self) -> None:
        check_choice(self.kind, STEP_KINDS, f"Step(kind={self.kind!r})", expected=f"one of {STEP_KINDS}")
        check_str(self.model, f"Step(model={self.model!r})", empty=True, optional=True)
        check_count(self.latency_ns, f"Step(latency_ns={self.latency_ns!r})")
        needs_fault = self.kind in ("fault", "base_exception", "stream_failed")
        if needs_fault:
            fault = coerce_error(self.fault, name=f"Step(kind={self.kind!r}, fault=...)")
            object.__setattr__(self, "fault", fault)
            if fault.after_ns is not None and not self.latency_ns:  # faults.timeout(after="30s")
                object.__setattr__(self, "latency_ns", fault.after_ns)
        elif self.fault is not None:
            raise ValueError(f"Step(kind={self.kind!r}, fault={self.fault!r}): this kind raises nothing")
        if isinstance(self.partials, (str, bytes)):
            fail(TypeError, f"Step(partials={self.partials!r})", "a tuple or list of partial values")
        object.__setattr__(self, "partials", tuple(self.partials))
        if self.partials and not self.streaming:
            raise ValueError(f"Step(kind={self.kind!r}, partials=<{len(self.partials)}>): only streams have partials")
        check_count(self.read, f"Step(read={self.read!r})")
        if self.read > len(self.partials) or (self.read and self.kind != "stream_abandoned"):
            fail(ValueError, f"Step(kind={self.kind!r}, read={self.read!r})",
                 f"0, or for a stream_abandoned step at most its {len(self.partials)} partials")
        check_choice(self.abandon, ("close", "drop"), f"Step(abandon={self.abandon!r})", expected="'close' or 'drop'")

    @property
    def streaming(self) -> bool:
        """Whether the call is a stream (``fake.stream.Fn(...)``)."""
        return self.kind.startswith("stream_")

    @property
    def error_class(self) -> type[BaseException] | None:
        """The class of the exception the caller sees (``None`` when it sees none)."""
        return None if self.fault is None else self.fault.error_class


class OutcomeRun(NamedTuple):
    """What :meth:`Outcome.run` / :meth:`Outcome.arun` saw.

    ``result`` is what the call (or ``get_final_response()``) returned, ``error`` what it
    raised (``None`` if nothing; an abandoned stream raises nothing), ``partials`` the
    partial values read from a stream, ``call`` the fake's
    :class:`~pytest_baml_telemetry.fake.FakeCall` record of the call (its ``error`` of an
    abandoned stream is the :class:`~pytest_baml_telemetry.StreamAbandoned` reason).
    """

    outcome: Any
    result: Any
    error: BaseException | None
    partials: tuple[Any, ...]
    call: Any


def script(outcome: OutcomeLike, fake: Any, function_name: str) -> Any:
    """Queue ``outcome`` for ``function_name`` on ``fake``; return the scripted outcome.

    Uses ``fake.respond`` or ``fake.fail``; the call's latency is exactly
    ``outcome.latency_ns``. What the *caller* does to a stream (read N partials, close or
    drop it) is up to the code under test, or to :func:`run`.
    """
    latency = f"{outcome.latency_ns}ns"
    if outcome.kind in ("success", "stream_completed", "stream_abandoned"):
        return fake.respond(
            function_name,
            outcome.result,
            usage=outcome.usage,
            model=outcome.model,
            latency=latency,
            partials=list(outcome.partials) if outcome.streaming else None,
        )
    fault = outcome.fault
    if outcome.kind == "stream_failed":
        fault = faults.stream_failure(partials=list(outcome.partials), error=outcome.fault)
    after_ns = getattr(outcome.fault, "after_ns", None)
    if after_ns is not None and outcome.latency_ns in (0, after_ns):
        return fake.fail(function_name, fault)  # the fault's own after= is the latency
    return fake.fail(function_name, fault, latency=latency)


def _expected_error(outcome: OutcomeLike, error: BaseException) -> bool:
    cls = outcome.error_class
    return cls is not None and isinstance(error, cls)


def _record(fake: Any, scripted: Any) -> Any:
    for call in reversed(fake.calls):
        if call.outcome is scripted:
            return call
    return None


def _finish(outcome: OutcomeLike, fake: Any, scripted: Any, result: Any, error: BaseException | None, read: list[Any]) -> OutcomeRun:
    call = _record(fake, scripted)
    if outcome.kind == "stream_abandoned" and call is not None and call.duration_ns is None:
        gc.collect()  # a dropped stream in a reference cycle ends when it is collected
    return OutcomeRun(outcome, result, error, tuple(read), call)


def run(outcome: OutcomeLike, fake: Any, function_name: str, **arguments: Any) -> OutcomeRun:
    """Script ``outcome`` on ``fake``, make the call as a caller would, and report.

    ``fake`` is a ``FakeBamlClient`` (an ``AsyncFakeBamlClient`` is used through its
    sync twin). Non-streaming outcomes call ``fake.<function_name>(**arguments)``;
    streams call ``fake.stream.<function_name>(...)``, read the partials, and call
    ``get_final_response()`` (or close/drop the stream for ``"stream_abandoned"``).
    The outcome's own error is caught and returned in :attr:`OutcomeRun.error`; any
    other exception propagates.
    """
    sync_fake = fake.as_sync() if isinstance(fake, AsyncFakeBamlClient) else fake
    scripted = script(outcome, sync_fake, function_name)
    result: Any = None
    error: BaseException | None = None
    read: list[Any] = []
    # the async twin of this block is in arun(): the same steps with await
    try:
        if not outcome.streaming:
            result = sync_fake.function(function_name)(**arguments)
        else:
            stream = getattr(sync_fake.stream, function_name)(**arguments)
            if outcome.kind == "stream_abandoned":
                it = iter(stream)
                for _ in range(outcome.read):
                    read.append(next(it))
                it.close()
                if outcome.abandon == "close":
                    stream.close()
                else:
                    del it, stream
            else:
                read.extend(stream)
                result = stream.get_final_response()
    except BaseException as exc:
        if not _expected_error(outcome, exc):
            raise
        error = exc
    return _finish(outcome, sync_fake, scripted, result, error, read)


async def arun(outcome: OutcomeLike, fake: Any, function_name: str, **arguments: Any) -> OutcomeRun:
    """The async form of :func:`run` (a sync ``FakeBamlClient`` is used through its async twin)."""
    async_fake = fake if isinstance(fake, AsyncFakeBamlClient) else fake.as_async()
    scripted = script(outcome, async_fake, function_name)
    result: Any = None
    error: BaseException | None = None
    read: list[Any] = []
    try:
        if not outcome.streaming:
            result = await async_fake.function(function_name)(**arguments)
        else:
            stream = getattr(async_fake.stream, function_name)(**arguments)
            if outcome.kind == "stream_abandoned":
                it = stream.__aiter__()
                for _ in range(outcome.read):
                    read.append(await it.__anext__())
                await it.aclose()
                if outcome.abandon == "close":
                    await stream.aclose()
                else:
                    del it, stream
            else:
                async for partial in stream:
                    read.append(partial)
                result = await stream.get_final_response()
    except BaseException as exc:
        if not _expected_error(outcome, exc):
            raise
        error = exc
    return _finish(outcome, async_fake, scripted, result, error, read)
