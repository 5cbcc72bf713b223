"""TTFC and provider-aware prices over the REAL generated client (issue 16).

``instrument(b)`` on the real baml-py runtime, answered by ``FakeLLMServer``: a stream's
stop event carries ``time_to_first_chunk`` and the client's ``provider``; the aggregator
records them, so a ``ttfc_*`` budget and genai-prices' lookup see what production sees.
"""

from __future__ import annotations

import pytest

from pytest_baml_telemetry import instrument
from pytest_baml_telemetry.budgets import Aggregator, Budget, evaluate

pytestmark = pytest.mark.usefixtures("_quiet_baml")


def _client(generated_client, server, emitter):
    return instrument(generated_client.b, emitter=emitter).with_options(client_registry=server.client_registry("TestClient"))


def test_a_real_stream_gives_a_ttfc_budget_its_data(generated_client, server, tel):
    emitter, capture = tel
    server.respond("Hello there, Ann", usage=(9, 5, 1), chunks=3)
    b = _client(generated_client, server, emitter)
    stream = b.stream.SayHello("Ann")
    list(stream)
    assert stream.get_final_response() == "Hello there, Ann"
    server.respond("Hello there, Bo", usage=(9, 5))
    assert b.SayHello("Bo") == "Hello there, Bo"
    agg = Aggregator()
    for e in capture.events:
        agg.record_event(e.name, e.measurements, e.metadata)
    stream_stop, plain_stop = capture.stops
    ttfc = stream_stop.measurements["time_to_first_chunk"]
    assert isinstance(ttfc, int) and 0 < ttfc <= stream_stop.measurements["duration"]
    assert "time_to_first_chunk" not in plain_stop.measurements  # written on streams only
    assert stream_stop.metadata["provider"] == plain_stop.metadata["provider"] == "openai"  # measured: TestClient
    stats = agg.stats()
    assert (stats.calls, stats.streams, stats.ttfc_count, stats.ttfc_max_ns) == (2, 1, 1, ttfc)
    (v,) = evaluate(Budget(max_ttfc="1m"), agg)
    assert v.passed and v.measured == ttfc and "over 1 stream" in v.headline
    (v,) = evaluate(Budget(max_ttfc=f"{ttfc - 1}ns"), agg)
    assert not v.passed and v.measured == ttfc
    assert agg.select()[0].provider == "openai"


def test_the_recorded_provider_prices_a_real_call_from_genai_prices(generated_client, server, tel):
    genai_prices = pytest.importorskip("genai_prices")
    from pytest_baml_telemetry.budgets import PriceTable

    emitter, capture = tel
    server.respond("Hello there, Ann", usage=(1000, 100, 400))
    assert _client(generated_client, server, emitter).SayHello("Ann") == "Hello there, Ann"
    agg = Aggregator()
    for e in capture.events:
        agg.record_event(e.name, e.measurements, e.metadata)
    (stop,) = capture.stops
    model = stop.metadata["model"]
    cost = agg.stats().cost(PriceTable.from_genai_prices())
    assert cost.complete, cost
    usage = genai_prices.Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=100)
    assert cost.usd == pytest.approx(float(genai_prices.calc_price(usage, model, provider_id="openai").total_price))
