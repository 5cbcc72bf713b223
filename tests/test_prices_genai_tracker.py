"""CostTracker prices by the call's provider when its table can (genai-prices, issue 16)."""

from __future__ import annotations

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter
from pytest_baml_telemetry.budgets import PriceTable
from pytest_baml_telemetry.fake import FakeBamlClient
from pytest_baml_telemetry.trackers import CostTracker

pytest.importorskip("genai_prices")  # the extra (Python >= 3.11)


def test_an_ollama_served_model_is_unpriced_while_openais_is_priced():
    dispatcher = Dispatcher()
    tracker = CostTracker(PriceTable.from_genai_prices(), dispatcher=dispatcher).attach()
    fake = FakeBamlClient(emitter=Emitter(dispatcher=dispatcher))
    fake.respond("SayHello", "hi", usage=(1000, 100), model="gpt-4o", provider="openai")
    fake.respond("SayHello", "hi", usage=(1000, 100), model="gpt-4o", provider="ollama")
    fake.SayHello(name="a")
    fake.SayHello(name="b")
    openai_call, ollama_call = tracker.calls
    assert openai_call.status == "priced" and openai_call.usd > 0
    assert ollama_call.status == "unpriced" and ollama_call.usd is None


def test_a_plain_mapping_still_prices_by_model_whatever_the_provider():
    tracker = CostTracker({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0}}, dispatcher=Dispatcher())
    cost = tracker.record("F", "gpt-4o", 1_000_000, 0, provider="ollama")
    assert cost.usd == pytest.approx(2.5)
