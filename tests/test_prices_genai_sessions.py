"""``--baml-prices=genai-prices,prices.toml`` in real pytest sessions (issue 16).
"""

from __future__ import annotations

import json
import textwrap

import pytest

pytest.importorskip("genai_prices")  # the extra (Python >= 3.11)

TEST = textwrap.dedent(
    """
    from pytest_baml_telemetry.fake import Usage

    def test_calls(baml_fake):
        for model, provider in [("gpt-4o", "openai"), ("gpt-4o-mini", "openai"), ("llama3.1", "ollama"),
                                ("claude-3-5-sonnet-20241022", "anthropic")]:
            baml_fake.respond("SayHello", "hi", usage=Usage(1000, 100), model=model, provider=provider)
            baml_fake.SayHello(name="x")
    """
)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makefile(".toml", prices='[models."gpt-4o"]\ninput_per_mtok = 1000\noutput_per_mtok = 1000\n')
    pytester.makepyfile(test_user=TEST)
    return pytester


def test_two_sources_later_winning_in_the_report(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("--baml-prices=genai-prices,prices.toml", "--baml-report-json=r.json", "-p", "no:randomly")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == 0 and "INTERNALERROR" not in out, out
    data = json.loads((project.path / "r.json").read_text())
    rows = {r["model"]: r for r in data["rows"]}
    assert rows["gpt-4o"]["cost_usd"] == pytest.approx(1.1)  # the file wins: 1000 USD per Mtok
    assert rows["gpt-4o-mini"]["cost_status"] == "priced" and 0 < rows["gpt-4o-mini"]["cost_usd"] < 0.01
    assert rows["claude-3-5-sonnet-20241022"]["cost_status"] == "priced"
    assert rows["llama3.1"]["cost_status"] == "unpriced" and rows["llama3.1"]["cost_usd"] is None
    assert data["totals"]["unpriced_models"] == ["llama3.1"]
    assert data["price_table"].startswith("genai-prices ") and data["price_table"].endswith("prices.toml")


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("genai-prices,nope.toml", "source 2 of 2: 'nope.toml' does not exist"),
        ("genai-prices,,prices.toml", "source 2 of 3 is empty"),
    ],
)
def test_a_bad_source_is_a_usage_error_naming_it(project: pytest.Pytester, value: str, fragment: str) -> None:
    result = project.runpytest_subprocess(f"--baml-prices={value}")
    out = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    assert fragment in out and "INTERNALERROR" not in out and "Traceback" not in out, out
