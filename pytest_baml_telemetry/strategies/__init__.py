"""Hypothesis strategies for the BAML telemetry contract.

Property-test your own handlers, exporters and BAML-calling code against *arbitrary*
valid telemetry, and your validators against arbitrary broken telemetry::

    from hypothesis import given
    from pytest_baml_telemetry import strategies as bst

    @given(bst.event_streams())
    def test_my_cost_handler(stream):
        for name, measurements, metadata in stream:
            my_handler(name, measurements, metadata, None)
        ...

Every strategy here is a function that can be called with no arguments, as in
``hypothesis.strategies``; keyword arguments narrow it. A keyword that fixes a value
(``prefix=``, ``function_name=``, ``streaming=``, ``usage=``, ...) takes either the value
itself or a Hypothesis strategy drawing it.

Valid data

* :func:`usages` -- :class:`~pytest_baml_telemetry.Usage` with each count an int or
  ``None`` (unknown); cached input tokens never exceed known input tokens.
* :func:`outcomes` -- an :class:`Outcome`: what one call does (returns, with or without
  usage; raises any fault of :mod:`pytest_baml_telemetry.fake.faults`; is interrupted
  by a ``BaseException``; streams N partials and completes, is abandoned, or fails).
  ``outcome.script(fake, "Fn")`` queues it on a ``FakeBamlClient``;
  ``outcome.run(fake, "Fn")`` / ``await outcome.arun(fake, "Fn")`` also play the caller.
* :func:`start_events`, :func:`stop_events`, :func:`exception_events`,
  :func:`handler_failure_events`, :func:`events` -- single valid events, each an
  :data:`Event` ``(name, measurements, metadata)`` triple.
* :func:`event_streams` -- valid streams of many calls with interleaved starts and
  ends, unique span contexts, and durations equal to the difference of the monotonic
  times of each call's start and end.

Broken data (for negative tests)

* :func:`invalid_events` -- an :class:`InvalidEvent`: a valid event with exactly one
  thing broken, and ``broken_key``/``reason`` saying what.
* :func:`invalid_streams` -- an :class:`InvalidStream`: a stream of valid events with
  exactly one pairing defect (unpaired start, end without start, double end, reused
  span, function name / streaming / prefix mismatch) or one invalid event.

A bad argument raises ``hypothesis.errors.InvalidArgument`` (also a ``TypeError`` or a
``ValueError``) when the strategy is built, not when it is drawn.

Importing this module registers strategies for :class:`~pytest_baml_telemetry.Usage`,
:class:`Outcome`, :data:`Event`, :class:`InvalidEvent` and :class:`InvalidStream` with
``st.register_type_strategy``, so ``st.from_type(Usage)`` and ``st.builds(...)`` use them.
``import pytest_baml_telemetry`` does not import this module (nor Hypothesis).

This package is a facade over one module per domain: ``_values`` (names, usages, reasons,
faults), ``_events`` (single events), ``_streams`` (event streams), ``_invalid`` (broken
events and streams), ``_outcomes`` (outcomes) and ``_validation`` (argument checks). New
strategies go in their domain's module and are re-exported here. Running an outcome on a
fake client is :mod:`pytest_baml_telemetry.fake.scenario`.
"""

from __future__ import annotations

from hypothesis import strategies as st

from ..contract import Usage
from ._events import (
    EVENT_KINDS,
    Event,
    events,
    exception_events,
    handler_failure_events,
    start_events,
    stop_events,
)
from ._invalid import STREAM_DEFECTS, InvalidEvent, InvalidStream, invalid_events, invalid_streams
from ._outcomes import OUTCOME_KINDS, Outcome, OutcomeRun, outcomes
from ._streams import event_streams
from ._values import (
    FAULT_NAMES,
    FUNCTION_NAMES,
    MODELS,
    SimulatedInterrupt,
    arguments,
    event_prefixes,
    exception_reasons,
    function_names,
    models,
    span_contexts,
    token_counts,
    usages,
)

__all__ = [
    "Event",
    "EVENT_KINDS",
    "FAULT_NAMES",
    "InvalidEvent",
    "InvalidStream",
    "MODELS",
    "FUNCTION_NAMES",
    "OUTCOME_KINDS",
    "Outcome",
    "OutcomeRun",
    "SimulatedInterrupt",
    "STREAM_DEFECTS",
    "arguments",
    "event_prefixes",
    "event_streams",
    "events",
    "exception_events",
    "exception_reasons",
    "function_names",
    "handler_failure_events",
    "invalid_events",
    "invalid_streams",
    "models",
    "outcomes",
    "span_contexts",
    "start_events",
    "stop_events",
    "token_counts",
    "usages",
]

st.register_type_strategy(Usage, usages())
st.register_type_strategy(Outcome, outcomes())
st.register_type_strategy(Event, events())
st.register_type_strategy(InvalidEvent, invalid_events())
st.register_type_strategy(InvalidStream, invalid_streams())
