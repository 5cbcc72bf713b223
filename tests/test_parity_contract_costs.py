"""Issue 12: failures are costed. A billed failure is never $0, a failure with None tokens
counts as unknown tokens (as a success without usage does), a 0/0 failure costs $0.

End to end on the real runtime (instrument(b) on FakeLLMServer) into the Aggregator, the
report and the CostTracker, plus the same rules on hand-made events."""

from __future__ import annotations

import pytest

from pytest_baml_telemetry import CALL_EXCEPTION, CALL_STOP, Dispatcher, Emitter
from pytest_baml_telemetry.budgets import Aggregator, Budget, PriceTable, evaluate
from pytest_baml_telemetry.instrument import instrument
from pytest_baml_telemetry.report import build_report, render_terminal
from pytest_baml_telemetry.trackers import CostTracker

PRICES = PriceTable({"gpt-4o-mini": {"input_per_mtok": 1_000_000.0, "output_per_mtok": 2_000_000.0}}, source="t")
"""$1 per input token, $2 per output token: the sums are easy to read."""


@pytest.fixture
def wired():
    dispatcher = Dispatcher("costs")
    agg = Aggregator()
    tracker = CostTracker(PRICES, dispatcher=dispatcher).attach()
    dispatcher.attach_many("agg", [CALL_STOP, CALL_EXCEPTION], agg.handle)
    yield Emitter(dispatcher=dispatcher), agg, tracker
    tracker.detach()


def _b(generated_client, server, emitter, name="TestClient", **kw):
    return instrument(generated_client.b, emitter=emitter).with_options(
        client_registry=server.client_registry(name, **kw)
    )


@pytest.mark.usefixtures("_quiet_baml")
def test_real_runtime_failures_are_costed(generated_client, server, wired):
    from baml_py import errors

    emitter, agg, tracker = wired
    server.respond("not json", usage=(3, 4)).fail(429)
    b = _b(generated_client, server, emitter)
    with pytest.raises(errors.BamlValidationError):
        b.ExtractResume("x")  # billed: 3 in, 4 out = $11
    with pytest.raises(errors.BamlClientHttpError):
        b.SayHello("x")  # not billed: $0
    stats = agg.stats()
    assert (stats.errors, stats.input_tokens, stats.output_tokens, stats.unknown_token_calls()) == (2, 3, 4, 0)
    cost = stats.cost(PRICES)
    assert cost.usd == pytest.approx(11.0) and cost.complete
    assert [(c.status, c.usd) for c in tracker.calls] == [("priced", pytest.approx(11.0)), ("priced", 0.0)]
    assert tracker.total_usd == pytest.approx(11.0)
    rows = {r["function"]: r for r in build_report(agg, PRICES)["rows"]}
    assert rows["ExtractResume"]["cost_usd"] == pytest.approx(11.0) and rows["ExtractResume"]["cost_status"] == "priced"
    assert rows["SayHello"]["cost_usd"] == 0.0 and rows["SayHello"]["cost_status"] == "no usage"
    (v,) = evaluate(Budget(max_cost_usd=10), agg, PRICES)
    assert not v.passed  # the billed failure counts towards the budget


@pytest.mark.usefixtures("_quiet_baml")
def test_real_runtime_timeout_counts_as_unknown_tokens(generated_client, server, wired):
    from baml_py import errors

    emitter, agg, tracker = wired
    server.hang(10)
    b = _b(generated_client, server, emitter, "FastTimeoutClient", options={"http": {"request_timeout_ms": 200}})
    with pytest.raises(errors.BamlTimeoutError):
        b.SayHelloQuickly("x")
    stats = agg.stats()
    assert stats.unknown_token_calls() == 1
    cost = stats.cost(PRICES)
    assert cost.unknown_token_calls == 1 and not cost.complete
    assert [c.status for c in tracker.calls] == ["unknown_tokens"] and tracker.total_usd is None
    (row,) = build_report(agg, PRICES)["rows"]
    assert row["cost_status"] == "partial"
    (v,) = evaluate(Budget(max_cost_usd=1000), agg, PRICES)
    assert not v.passed and "unknown tokens" in v.headline
    (allowed,) = evaluate(Budget(max_cost_usd=1000, allow_unknown_tokens=True), agg, PRICES)
    assert allowed.passed


def _emit(emitter: Emitter, *, ok: bool, usage: tuple | None, model: str | None = "gpt-4o-mini") -> None:
    try:
        with emitter.call("F") as call:
            call.set_model(model)
            if usage is not None:
                call.set_usage(*usage)
            if not ok:
                raise RuntimeError("failed")
    except RuntimeError:
        pass


def test_a_failure_with_unknown_tokens_is_counted_as_a_success_without_usage_is(wired):
    emitter, agg, tracker = wired
    _emit(emitter, ok=True, usage=None)
    _emit(emitter, ok=False, usage=None)
    stats = agg.stats()
    assert stats.unknown_token_calls() == 2
    assert stats.unknown_token_calls("input") == 2 and stats.unknown_token_calls("output") == 2
    assert [c.status for c in tracker.calls] == ["unknown_tokens", "unknown_tokens"]
    assert stats.cost(PRICES).unknown_token_calls == 2
    lines = render_terminal(build_report(agg, PRICES))
    assert "* 2 calls with unknown tokens (not counted)" in lines


def test_billed_failure_is_in_the_heaviest_calls_and_never_zero(wired):
    emitter, agg, tracker = wired
    _emit(emitter, ok=False, usage=(100, 50))
    (heavy,) = agg.stats().heaviest()
    assert (heavy.ok, heavy.input_tokens, heavy.output_tokens) == (False, 100, 50)
    assert tracker.total_usd == pytest.approx(200.0)
    assert agg.stats().cost(PRICES).usd == pytest.approx(200.0)


def test_failures_only_series_unpriced_model(wired):
    emitter, agg, _ = wired
    _emit(emitter, ok=False, usage=(0, 0), model="llama-local")  # not billed: no price needed
    assert agg.stats().cost(PRICES).unpriced == {}
    _emit(emitter, ok=False, usage=None, model="llama-local")  # unknown tokens: needs a price
    assert agg.stats().cost(PRICES).unpriced == {"llama-local": 2}
    _emit(emitter, ok=False, usage=(5, 1), model="other")  # billed: needs a price
    assert agg.stats().filtered(model="other").cost(PRICES).unpriced == {"other": 1}


def test_payload_round_trip_keeps_failure_tokens(wired):
    emitter, agg, _ = wired
    _emit(emitter, ok=False, usage=(7, 2))
    _emit(emitter, ok=False, usage=None)
    again = Aggregator.from_payload(agg.to_payload())
    assert again == agg
    s = again.stats()
    assert (s.input_tokens, s.output_tokens, s.unknown_token_calls(), s.errors) == (7, 2, 1, 2)
