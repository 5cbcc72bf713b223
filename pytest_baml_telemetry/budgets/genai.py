"""The maintained price layer: :func:`genai_price_table`, prices from the ``genai-prices`` package.

The layer answers lazily, one ``(model, provider)`` at a time (each answer cached), so no
model is enumerated and ``genai_prices`` is imported only when such a table is made (its
data on the first lookup). Rules (part of the documented behaviour):

* BAML provider names map to genai-prices' providers by :data:`PROVIDERS`; ``ollama`` is
  local and stays unpriced. A provider name not in the map is tried as a genai-prices
  provider id; when genai-prices does not know it either, or the provider is unknown
  (``None``), the provider is found from the model name as genai-prices does.
* A model genai-prices does not know (or prices without an input and an output price) is
  *unpriced*, never $0.
* ``cache_read_mtok`` becomes ``cached_input_per_mtok`` and ``cache_write_mtok``
  ``cache_write_per_mtok``. A tiered price (e.g. a higher rate above 200k input tokens
  per request) is taken at its base tier: the aggregator keeps token sums, not the
  tokens of each request. Prices are those in force now.
* Without the package (it needs Python >= 3.11) making the layer is a
  :class:`~pytest_baml_telemetry.budgets.config.BudgetConfigError` naming the extra.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from .config import BudgetConfigError
from .prices import GENAI_PRICES, ModelPrice, PriceTable, model_price

__all__ = ["EXTRA", "GenaiPriceLookup", "PROVIDERS", "genai_price_table"]

EXTRA = "genai-prices"
"""The extra that installs genai-prices: ``pip install 'pytest-baml-telemetry[genai-prices]'``."""

PROVIDERS: dict[str, str | None] = {
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
"""BAML provider name -> genai-prices provider id (``None``: local, unpriced unless overridden)."""

_MAX_CACHED = 4096


def _missing_extra() -> BudgetConfigError:
    needs = ""
    if sys.version_info < (3, 11):
        v = sys.version_info
        needs = f" (genai-prices needs Python >= 3.11; this is Python {v.major}.{v.minor})"
    return BudgetConfigError(
        f"{GENAI_PRICES}: the genai-prices package is not installed{needs}; install the "
        f"{EXTRA!r} extra: pip install 'pytest-baml-telemetry[{EXTRA}]', or use a TOML price file"
    )


def _rate(value: Any) -> float | None:
    """A genai-prices price (a ``Decimal``) as a float: a tiered price at its base tier."""
    if value is None:
        return None
    base = getattr(value, "base", None)
    return float(value if base is None else base)


class GenaiPriceLookup:
    """``(model, provider) -> ModelPrice | None`` from genai-prices, each answer cached."""

    def __init__(self, version: str) -> None:
        self.version = version
        self._cache: dict[tuple[str, str | None], ModelPrice | None] = {}
        self._lock = threading.Lock()

    def __call__(self, model: str, provider: str | None) -> ModelPrice | None:
        key = (model, provider)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._find(model, provider)
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _provider_id(self, provider: str | None) -> tuple[bool, str | None]:
        """``(priced, provider id)``: ``(False, None)`` for a local provider, ``(True, None)``
        to find the provider from the model name."""
        if provider is None:
            return True, None
        if provider in PROVIDERS:
            pid = PROVIDERS[provider]
            return pid is not None, pid
        from genai_prices.data_snapshot import find_provider_by_id, get_snapshot

        known = find_provider_by_id(get_snapshot().providers, provider)
        return True, None if known is None else known.id

    def _find(self, model: str, provider: str | None) -> ModelPrice | None:
        priced, pid = self._provider_id(provider)
        if not priced:
            return None
        from genai_prices import Usage, calc_price

        try:
            calc = calc_price(Usage(input_tokens=0, output_tokens=0), model, provider_id=pid)
        except LookupError:
            return None
        p = calc.model_price
        spec = {
            "input_per_mtok": _rate(p.input_mtok),
            "output_per_mtok": _rate(p.output_mtok),
            "cached_input_per_mtok": _rate(p.cache_read_mtok),
            "cache_write_per_mtok": _rate(p.cache_write_mtok),
        }
        if spec["input_per_mtok"] is None or spec["output_per_mtok"] is None:
            return None
        try:
            return model_price(spec, f'{GENAI_PRICES} {self.version}, [models."{model}"]')
        except BudgetConfigError:  # a price this package refuses: unpriced rather than a crash at report time
            return None

    def __eq__(self, other: object) -> bool:
        """Lookups of the same genai-prices version answer alike."""
        return isinstance(other, GenaiPriceLookup) and other.version == self.version

    def __hash__(self) -> int:
        return hash((GenaiPriceLookup, self.version))

    def __repr__(self) -> str:
        return f"GenaiPriceLookup({self.version!r})"


def genai_price_table() -> PriceTable:
    """A :class:`PriceTable` answering from genai-prices (``source``: ``"genai-prices <version>"``)."""
    try:
        import genai_prices
    except ImportError:
        raise _missing_extra() from None
    version = str(getattr(genai_prices, "__version__", "?"))
    return PriceTable(source=f"{GENAI_PRICES} {version}", lookup=GenaiPriceLookup(version))
