"""Prices per model and the cost of calls: :class:`ModelPrice`, :class:`PriceTable`, :func:`load_prices`.

Cost rules (part of the documented behaviour):

* **Cost** is ``(uncached_input * input_per_mtok + cached_input * cached_input_per_mtok
  + output * output_per_mtok) / 1_000_000`` USD.
* **Cached input tokens** are part of ``input_tokens`` and billed at
  ``cached_input_per_mtok``; a model without it bills them at the input price, and
  cached tokens beyond ``input_tokens`` are capped at ``input_tokens``.
* A model that is not in the table is *unpriced*: it is reported as unpriced, never as $0.
* A price is a finite number of USD per million tokens from 0 to :data:`MAX_PRICE_PER_MTOK`
  (1e9: a billion USD per million tokens, far above any real price). Anything else (``inf``,
  ``nan``, ``1e308``, ``10**400``) is refused when the table is loaded, so a cost is always
  finite: even ``MAX_COUNT`` tokens at the largest price cost about 1e22 USD.

Models are matched by exact name. Every problem is a :class:`BudgetConfigError` naming
the table (its file), the model and the key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from .._validate import fail, is_number, short_number_repr, short_repr
from .config import BudgetConfigError, StrPath, load_toml

__all__ = ["MAX_PRICE_PER_MTOK", "ModelPrice", "PriceTable", "load_prices"]

_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok")

MAX_PRICE_PER_MTOK = 1e9
"""The largest price a table accepts, in USD per million tokens (keeps every cost finite)."""


class ModelPrice(NamedTuple):
    """USD per million tokens for one model."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    """``None``: cached input tokens are billed at ``input_per_mtok``."""

    def cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int | None = None) -> float:
        """USD for these token counts (cached tokens are part of ``input_tokens``)."""
        cached = min(cached_input_tokens or 0, input_tokens)
        cached_rate = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * cached_rate
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


_PRICE_RANGE = f"USD per million tokens (a finite number from 0 to {MAX_PRICE_PER_MTOK:,.0f})"


def _check_price(value: Any, where: str, key: str) -> float:
    given = f"{where}: {key} = {short_number_repr(value)}"
    if not is_number(value):
        fail(BudgetConfigError, f"{given} is not a number", _PRICE_RANGE)
    try:
        f = float(value)
    except OverflowError:  # float(10**400)
        f = math.inf
    if not math.isfinite(f) or f < 0:
        fail(BudgetConfigError, f"{given} is not a finite number >= 0", _PRICE_RANGE)
    if f > MAX_PRICE_PER_MTOK:
        fail(BudgetConfigError, f"{given} is too large (a cost could overflow)", _PRICE_RANGE)
    return f


class PriceTable:
    """Prices per model, in USD per million tokens (the cost rules are in this module's docstring).

    ``PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}})``,
    :meth:`load` for a TOML file with ``[models."<model>"]`` tables. Models are matched
    by exact name.
    """

    def __init__(
        self,
        models: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        source: str | None = None,
    ) -> None:
        self.source = source
        where_file = f"price table {source!r}" if source else "price table"
        self._prices: dict[str, ModelPrice] = {}
        if models is None:
            return
        if not isinstance(models, Mapping):
            raise BudgetConfigError(f"{where_file}: models={short_repr(models)} is not a mapping of model name to prices")
        for model, spec in models.items():
            where = f'{where_file}, [models."{model}"]'
            if not isinstance(model, str) or not model:
                raise BudgetConfigError(f"{where_file}: model name {short_repr(model)} is not a non-empty str")
            if isinstance(spec, ModelPrice):
                spec = spec._asdict()
                if spec["cached_input_per_mtok"] is None:
                    del spec["cached_input_per_mtok"]
            if not isinstance(spec, Mapping):
                fail(
                    BudgetConfigError,
                    f"{where}: {short_repr(spec)} is not a table",
                    "input_per_mtok, output_per_mtok and optionally cached_input_per_mtok",
                )
            unknown = [k for k in spec if k not in _PRICE_KEYS]
            if unknown:
                fail(BudgetConfigError, f"{where}: unknown key {unknown[0]!r}", ", ".join(_PRICE_KEYS))
            for required in ("input_per_mtok", "output_per_mtok"):
                if required not in spec:
                    raise BudgetConfigError(f"{where}: missing key {required!r} (USD per million tokens)")
            cached = spec.get("cached_input_per_mtok")
            self._prices[model] = ModelPrice(
                _check_price(spec["input_per_mtok"], where, "input_per_mtok"),
                _check_price(spec["output_per_mtok"], where, "output_per_mtok"),
                None if cached is None else _check_price(cached, where, "cached_input_per_mtok"),
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | None = None) -> PriceTable:
        """From a parsed TOML document: ``{"models": {"<model>": {...}}}``."""
        where = f"price table {source!r}" if source else "price table"
        if not isinstance(data, Mapping):
            raise BudgetConfigError(f"{where}: {short_repr(data)} is not a table")
        unknown = [k for k in data if k != "models"]
        if unknown:
            fail(BudgetConfigError, f"{where}: unknown top-level key {unknown[0]!r}", 'only [models."<model>"] tables')
        models = data.get("models")
        if not isinstance(models, Mapping) or not models:
            fail(
                BudgetConfigError,
                f"{where}: defines no models",
                '[models."<model>"] tables with input_per_mtok and output_per_mtok',
            )
        return cls(models, source=source)

    @classmethod
    def load(cls, path: StrPath) -> PriceTable:
        """Load a TOML price file; ``BudgetConfigError`` names the file, model and key."""
        p, data = load_toml(path, "price file")
        return cls.from_mapping(data, source=str(p))

    @property
    def models(self) -> list[str]:
        return sorted(self._prices)

    def price(self, model: str | None) -> ModelPrice | None:
        """The prices of ``model``, or ``None`` when it is unpriced."""
        return None if model is None else self._prices.get(model)

    def __contains__(self, model: object) -> bool:
        return model in self._prices

    def __len__(self) -> int:
        return len(self._prices)

    def cost(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
    ) -> float | None:
        """USD for one call, or ``None`` when the model is unpriced or tokens are unknown."""
        price = self.price(model)
        if price is None or input_tokens is None or output_tokens is None:
            return None
        return price.cost(input_tokens, output_tokens, cached_input_tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PriceTable) and self._prices == other._prices

    def __repr__(self) -> str:
        return f"PriceTable({self._prices!r})"


def load_prices(path: StrPath) -> PriceTable:
    """Same as :meth:`PriceTable.load`."""
    return PriceTable.load(path)
