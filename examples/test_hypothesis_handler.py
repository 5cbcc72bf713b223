"""Property-testing your own telemetry code with ``pytest_baml_telemetry.strategies``.

Two things a team typically writes around BAML calls, tested against *arbitrary* inputs
instead of a few hand-picked ones:

1. a handler (here a small dict-based cost tracker) fed every valid event stream
   Hypothesis can think of: many calls in flight at once, unknown token counts,
   models missing from the price list, failed and abandoned calls;
2. application code (a batch summarizer) driven by any mix of call outcomes scripted
   on a ``FakeBamlClient``: successes, rate limits, timeouts, validation errors, ...

Run with ``pytest examples/test_hypothesis_handler.py``. (Hypothesis runs many examples
per test, so these tests build their own ``Dispatcher`` instead of using the per-test
``baml_events`` / ``baml_fake`` fixtures.)
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry import (
    CALL_STOP,
    HANDLER_FAILURE,
    Dispatcher,
    Emitter,
    validate_stream,
)
from pytest_baml_telemetry import strategies as bst
from pytest_baml_telemetry.fake import FakeBamlClient

# --------------------------------------------------------------------------- 1. a handler

PRICES = {"gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60)}  # USD per million input / output tokens


class SpendByModel:
    """The handler under test: USD per model, and the calls it could not price.

    A first version did ``measurements["input_tokens"] * price`` and Hypothesis broke it
    at once with a stop event whose tokens are unknown (``None``, never a made-up 0).
    """

    def __init__(self) -> None:
        self.usd: dict[str, float] = {}
        self.unpriced: dict[str | None, int] = {}

    def __call__(self, event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
        model = metadata.get("model")
        i, o = measurements["input_tokens"], measurements["output_tokens"]
        if model not in PRICES or i is None or o is None:
            self.unpriced[model] = self.unpriced.get(model, 0) + 1
            return
        input_price, output_price = PRICES[model]
        self.usd[model] = self.usd.get(model, 0.0) + (i * input_price + o * output_price) / 1_000_000


any_model = st.one_of(st.none(), st.sampled_from(["gpt-4o", "gpt-4o-mini", "some-new-model"]))


@settings(max_examples=75, deadline=None)
@given(stream=bst.event_streams(max_calls=10, model=any_model))
def test_spend_by_model_on_any_event_stream(stream: list[bst.Event]) -> None:
    dispatcher = Dispatcher("example")
    spend = SpendByModel()
    failures: list[Any] = []
    dispatcher.attach("spend", CALL_STOP, spend)
    dispatcher.attach("failures", HANDLER_FAILURE, lambda *event: failures.append(event))

    for name, measurements, metadata in stream:
        dispatcher.execute(name, measurements, metadata)

    assert failures == []  # the handler never raised (a raising handler gets detached)
    stops = [e for e in stream if e.kind == "stop"]
    priced = [
        e for e in stops
        if e.metadata["model"] in PRICES and None not in (e.measurements["input_tokens"], e.measurements["output_tokens"])
    ]
    assert sum(spend.unpriced.values()) == len(stops) - len(priced)  # every call counted once
    for model in PRICES:
        expected = sum(
            (e.measurements["input_tokens"] * PRICES[model][0] + e.measurements["output_tokens"] * PRICES[model][1])
            / 1_000_000
            for e in priced
            if e.metadata["model"] == model
        )
        assert math.isclose(spend.usd.get(model, 0.0), expected, rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------- 2. application code


def summarize_all(b: Any, threads: list[str]) -> list[str | None]:
    """Application code: one failed summary must not lose the others."""
    summaries: list[str | None] = []
    for text in threads:
        try:
            summaries.append(b.SummarizeThread(text=text))
        except Exception:  # baml_py.errors.* are Exceptions; cancellation is not caught
            summaries.append(None)
    return summaries


exception_faults = [name for name in bst.FAULT_NAMES if name != "cancelled"]


@settings(max_examples=50, deadline=None)
@given(plan=st.lists(bst.outcomes(kinds=("success", "fault"), faults=exception_faults), max_size=6))
def test_summarize_all_survives_any_mix_of_failures(plan: list[bst.Outcome]) -> None:
    dispatcher = Dispatcher("example")
    events: list[Any] = []
    emitter = Emitter(dispatcher=dispatcher)
    dispatcher.attach_many("all", emitter.event_names, lambda *event: events.append(event[:3]))
    fake = FakeBamlClient(emitter=emitter)
    for outcome in plan:
        outcome.script(fake, "SummarizeThread")  # queued in order, used once each

    summaries = summarize_all(fake, [f"thread {i}" for i in range(len(plan))])

    assert summaries == [outcome.result if outcome.ok else None for outcome in plan]
    validate_stream(events)  # every call emitted start + exactly one stop/exception
    assert [name[-1] for name, _, _ in events if name[-1] != "start"] == [o.expected_event for o in plan]
    fake.assert_all_used()
