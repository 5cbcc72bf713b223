"""Maintained prices (issue 16): ``PriceTable.from_genai_prices``, layered tables and ``--baml-prices`` sources.

Expected prices are computed with genai-prices' own ``calc_price`` (its bundled data
changes between releases), so these tests check the mapping and the cost rules, not a
price list copied here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from pytest_baml_telemetry.budgets import Aggregator, Budget, BudgetConfigError, ModelPrice, PriceTable, evaluate
from pytest_baml_telemetry.budgets.genai import PROVIDERS
from pytest_baml_telemetry.budgets.prices import load_price_sources, price_source_files
from pytest_baml_telemetry.contract import CALL_STOP
from pytest_baml_telemetry.report import build_report

genai_prices = pytest.importorskip("genai_prices")  # the extra (Python >= 3.11)

OVERRIDES = textwrap.dedent(
    """
    [models."gpt-4o"]
    input_per_mtok = 1.0
    output_per_mtok = 2.0

    [models."llama3.1"]
    input_per_mtok = 0.01
    output_per_mtok = 0.02
    """
)


def usd(model: str, provider: str | None, **usage: int) -> float:
    """What genai-prices itself says the usage costs."""
    calc = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id=provider)
    return float(calc.total_price)


@pytest.fixture(scope="module")
def table() -> PriceTable:
    return PriceTable.from_genai_prices()


@pytest.fixture
def overrides(tmp_path: Path) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(OVERRIDES)
    return path


def test_a_known_openai_model_with_its_cache_read_price(table: PriceTable) -> None:
    price = table.price("gpt-4o", "openai")
    assert isinstance(price, ModelPrice)
    assert price.cached_input_per_mtok is not None and price.cached_input_per_mtok < price.input_per_mtok
    assert price.input_per_mtok == float(genai_prices.calc_price(genai_prices.Usage(input_tokens=10**6), "gpt-4o", provider_id="openai").total_price)
    # cached tokens are part of input_tokens in both conventions
    ours = table.cost("gpt-4o", 1000, 100, 400, provider="openai")
    assert ours == pytest.approx(usd("gpt-4o", "openai", input_tokens=1000, cache_read_tokens=400, output_tokens=100))
    assert table.source == f"genai-prices {genai_prices.__version__}"


def test_a_known_anthropic_model_with_cache_read_and_write_prices(table: PriceTable) -> None:
    model = "claude-3-5-sonnet-20241022"
    price = table.price(model, "anthropic")
    assert price is not None
    assert price.cached_input_per_mtok is not None and price.cache_write_per_mtok is not None
    assert price.cached_input_per_mtok < price.input_per_mtok < price.cache_write_per_mtok
    ours = price.cost(1000, 100, cached_input_tokens=400, cache_write_tokens=200)
    theirs = usd(model, "anthropic", input_tokens=1000, cache_read_tokens=400, cache_write_tokens=200, output_tokens=100)
    assert ours == pytest.approx(theirs)


@pytest.mark.parametrize(
    "baml, model",
    [
        ("openai", "gpt-4o-mini"),
        ("openai-generic", "gpt-4o-mini"),
        ("openai-responses", "gpt-4o-mini"),
        ("anthropic", "claude-3-5-haiku-20241022"),
        ("google-ai", "gemini-2.0-flash"),
        ("vertex-ai", "gemini-2.0-flash"),
        ("aws-bedrock", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
        ("azure-openai", "gpt-4o"),
    ],
)
def test_baml_providers_map_to_genai_prices_providers(table: PriceTable, baml: str, model: str) -> None:
    genai = PROVIDERS[baml]
    price = table.price(model, baml)
    assert price is not None, (baml, model)
    assert price.cost(10**6, 10**6) == pytest.approx(usd(model, genai, input_tokens=10**6, output_tokens=10**6))


def test_tables_compare_by_their_layers(table: PriceTable, overrides: Path) -> None:
    assert PriceTable.from_genai_prices() == table
    assert PriceTable.from_genai_prices(overrides) == PriceTable.from_genai_prices(PriceTable.load(overrides))
    assert PriceTable.from_genai_prices(overrides) != table != PriceTable.load(overrides)


def test_without_a_provider_genai_prices_finds_it_from_the_model(table: PriceTable) -> None:
    assert table.price("gpt-4o") == table.price("gpt-4o", "openai")
    assert "gpt-4o" in table


@pytest.mark.parametrize(
    "model, provider",
    [
        ("no-such-model-xyz", "openai"),
        ("no-such-model-xyz", None),
        ("llama3.1", "ollama"),
        ("gpt-4o", "ollama"),  # ollama is local: unpriced unless overridden
        ("gpt-4o", "no-such-provider"),  # then found from the model name
    ],
)
def test_an_unknown_model_stays_unpriced_never_zero(table: PriceTable, model: str, provider: str | None) -> None:
    price = table.price(model, provider)
    if provider == "no-such-provider":
        assert price == table.price("gpt-4o", "openai")
        return
    assert price is None
    assert table.cost(model, 10, 10, provider=provider) is None


def test_unpriced_calls_fail_a_cost_budget_and_show_unpriced_in_the_report(table: PriceTable) -> None:
    agg = Aggregator()
    meta = {"function_name": "F", "streaming": False}
    m = {"duration": 5, "monotonic_time": 1, "input_tokens": 1000, "output_tokens": 100}
    agg.handle(CALL_STOP, m, {**meta, "model": "gpt-4o", "provider": "azure-openai"})
    agg.handle(CALL_STOP, m, {**meta, "model": "llama3.1", "provider": "ollama"})
    (v,) = evaluate(Budget(max_cost_usd=100), agg, table)
    assert not v.passed and "unpriced model 'llama3.1' (1 call)" in v.headline
    rows = {r["model"]: r for r in build_report(agg, table)["rows"]}
    assert rows["llama3.1"]["cost_status"] == "unpriced" and rows["llama3.1"]["cost_usd"] is None
    assert rows["gpt-4o"]["cost_usd"] == pytest.approx(usd("gpt-4o", "azure", input_tokens=1000, output_tokens=100))
    # the provider recorded is the one prices are looked up with: gpt-4o on ollama is local
    local = Aggregator()
    local.handle(CALL_STOP, m, {**meta, "model": "gpt-4o", "provider": "ollama"})
    assert local.stats().cost(table).unpriced == {"gpt-4o": 1}


def test_overrides_win_as_a_path_or_a_table(table: PriceTable, overrides: Path) -> None:
    for given in (overrides, str(overrides), PriceTable.load(overrides)):
        t = PriceTable.from_genai_prices(overrides=given)
        assert t.price("gpt-4o", "openai") == ModelPrice(1.0, 2.0)
        assert t.price("llama3.1", "ollama") == ModelPrice(0.01, 0.02)  # a local model priced by hand
        assert t.price("gpt-4o-mini", "openai") == table.price("gpt-4o-mini", "openai")  # the rest from genai-prices
        assert t.models == ["gpt-4o", "llama3.1"]
    # later layers win: genai-prices on top of the file prices gpt-4o itself
    under = PriceTable.layered([PriceTable.load(overrides), table])
    assert under.price("gpt-4o", "openai") == table.price("gpt-4o", "openai")
    assert under.price("llama3.1", "ollama") == ModelPrice(0.01, 0.02)


@pytest.mark.parametrize("bad", [3, b"prices.toml", ["prices.toml"]])
def test_bad_overrides_are_named(bad: object) -> None:
    with pytest.raises(TypeError, match=r"from_genai_prices\(overrides=.*expected a path to a TOML price file, a PriceTable, or None"):
        PriceTable.from_genai_prices(overrides=bad)  # type: ignore[arg-type]


def test_the_option_value_with_two_sources(overrides: Path, table: PriceTable) -> None:
    t = load_price_sources("genai-prices,prices.toml", overrides.parent)
    assert t.price("gpt-4o", "openai") == ModelPrice(1.0, 2.0)
    assert t.price("claude-3-5-sonnet-20241022", "anthropic") == table.price("claude-3-5-sonnet-20241022", "anthropic")
    assert t.source is not None and t.source.startswith("genai-prices ") and t.source.endswith("prices.toml")
    reverse = load_price_sources(" prices.toml , genai-prices ", overrides.parent)
    assert reverse.price("gpt-4o", "openai") == table.price("gpt-4o", "openai")
    assert price_source_files("genai-prices,prices.toml", overrides.parent)[0].name == "prices.toml"


@pytest.mark.parametrize(
    "value, fragments",
    [
        ("genai-prices,missing.toml", ["source 2 of 2", "'missing.toml' does not exist", "'genai-prices' or a TOML price file"]),
        ("genai-price", ["--baml-prices (ini baml_prices)", "'genai-price' does not exist", "'genai-prices' or a TOML price file"]),
        ("genai-prices,,prices.toml", ["source 2 of 3 is empty", "'genai-prices,,prices.toml'"]),
        ("", ["names no price source"]),
        (" , ", ["names no price source"]),
        ("genai-prices,bad.toml", ["source 2 of 2", "bad.toml", "not valid TOML"]),
        ("genai-prices,.", ["source 2 of 2", "is a directory"]),
    ],
)
def test_a_bad_source_is_named(overrides: Path, value: str, fragments: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(overrides.parent)  # paths are shown relative to the current directory
    (overrides.parent / "bad.toml").write_text("[models\n")
    with pytest.raises(BudgetConfigError) as info:
        load_price_sources(value, overrides.parent)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_non_str_option_value_is_named() -> None:
    with pytest.raises(TypeError, match=r"--baml-prices=\['genai-prices'\]: expected"):
        load_price_sources(["genai-prices"])  # type: ignore[arg-type]


def test_the_session_loads_the_sources_and_refuses_a_report_over_one(overrides: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_baml_telemetry.session import TelemetrySession

    monkeypatch.chdir(overrides.parent)
    common = dict(report=False, budgets_path=None, root=overrides.parent, is_worker=False)
    s = TelemetrySession.from_options(report_json=None, prices="genai-prices,prices.toml", prices_root=overrides.parent, **common)
    assert s.prices is not None and s.prices.price("gpt-4o", "openai") == ModelPrice(1.0, 2.0)
    assert s.prices.price("gpt-4o-mini", "openai") is not None
    with pytest.raises(BudgetConfigError, match="is the file 'prices.toml' given as an input"):
        TelemetrySession.from_options(report_json="prices.toml", prices="genai-prices,prices.toml", **common)
    # one TOML path, as plugin.py passes it today
    one = TelemetrySession.from_options(report_json=None, prices_path="prices.toml", **common)
    assert one.prices == PriceTable.load(overrides)


def test_prices_are_looked_up_lazily_and_cached() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pytest_baml_telemetry.plugin, pytest_baml_telemetry.budgets.prices as prices
        assert "genai_prices" not in sys.modules, "importing the plugin imported genai_prices"
        t = prices.PriceTable.from_genai_prices()
        assert "genai_prices.data" not in sys.modules, "the price data was loaded before a lookup"
        assert t.price("gpt-4o", "openai") is not None
        assert "genai_prices.data" in sys.modules
        assert t.price("gpt-4o", "openai") is t.price("gpt-4o", "openai")  # cached
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_decimal_prices_become_finite_floats(table: PriceTable) -> None:
    price = table.price("gpt-4o", "openai")
    assert price is not None
    assert all(type(v) is float for v in price if v is not None)
    assert not any(isinstance(v, Decimal) for v in price)


def test_the_provider_map_is_the_documented_one() -> None:
    assert PROVIDERS == {
        "openai": "openai",
        "openai-generic": "openai",
        "openai-responses": "openai",
        "anthropic": "anthropic",
        "google-ai": "google",
        "vertex-ai": "google",
        "aws-bedrock": "aws",
        "azure-openai": "azure",
        "ollama": None,
    }
    known = {p.id for p in genai_prices.data_snapshot.get_snapshot().providers}
    assert {v for v in PROVIDERS.values() if v is not None} <= known
