"""Without the genai-prices extra (Python 3.10, or not installed): a clear error naming the extra.

The package is hidden from a child interpreter (``sys.modules["genai_prices"] = None``
makes ``import genai_prices`` raise ``ImportError`` as an absent package does).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

HIDE = 'import sys\nsys.modules["genai_prices"] = None\n'


def child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HIDE + textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_from_genai_prices_names_the_extra_not_an_import_traceback() -> None:
    out = child(
        """
        from pytest_baml_telemetry.budgets import BudgetConfigError, PriceTable
        try:
            PriceTable.from_genai_prices()
        except BudgetConfigError as exc:
            print(exc)
        """
    )
    assert out.returncode == 0, out.stderr
    message = out.stdout.strip()
    assert "the genai-prices package is not installed" in message
    assert "pip install 'pytest-baml-telemetry[genai-prices]'" in message
    assert "Traceback" not in out.stderr and "ImportError" not in message


def test_the_option_source_names_the_extra_and_a_toml_file_still_loads(tmp_path) -> None:
    (tmp_path / "prices.toml").write_text('[models."m"]\ninput_per_mtok = 1\noutput_per_mtok = 2\n')
    out = child(
        f"""
        from pytest_baml_telemetry.budgets import BudgetConfigError
        from pytest_baml_telemetry.budgets.prices import load_price_sources
        print(load_price_sources("prices.toml", {str(tmp_path)!r}).price("m"))
        try:
            load_price_sources("genai-prices,prices.toml", {str(tmp_path)!r})
        except BudgetConfigError as exc:
            print(exc)
        """
    )
    assert out.returncode == 0, out.stderr
    first, second = out.stdout.strip().splitlines()
    assert first.startswith("ModelPrice(input_per_mtok=1.0, output_per_mtok=2.0")
    assert second.startswith("--baml-prices (ini baml_prices), source 1 of 2: genai-prices: the genai-prices package is not installed")
    assert "[genai-prices]" in second


def test_on_python_310_the_message_says_why() -> None:
    out = child(
        """
        from collections import namedtuple
        from pytest_baml_telemetry.budgets import BudgetConfigError, PriceTable
        sys.version_info = namedtuple("V", "major minor micro releaselevel serial")(3, 10, 14, "final", 0)
        try:
            PriceTable.from_genai_prices()
        except BudgetConfigError as exc:
            print(exc)
        """
    )
    assert out.returncode == 0, out.stderr
    assert "(genai-prices needs Python >= 3.11; this is Python 3.10)" in out.stdout, out.stdout
