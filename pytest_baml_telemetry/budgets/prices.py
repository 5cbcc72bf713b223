"""Prices per model and the cost of calls: :class:`ModelPrice`, :class:`PriceTable`, :func:`load_prices`,
:func:`load_price_sources`.

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

**Layers.** :meth:`PriceTable.from_genai_prices` answers from the maintained
``genai-prices`` package (:mod:`.genai`), lazily per ``(provider, model)``: nothing is
enumerated, so :attr:`PriceTable.models` lists only the models of TOML layers.
:meth:`PriceTable.layered` stacks tables, later ones winning; :func:`load_price_sources`
reads the ``--baml-prices`` value (``genai-prices,prices.toml``). Every lookup goes
through the one interface :meth:`PriceTable.price` ``(model, provider=None)``.
``cache_write_per_mtok`` is kept for cache-write tokens; the event contract has no such
measurement yet, so recorded costs bill cache reads (``cached_input_tokens``) only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from .._validate import fail, is_number, short_number_repr, short_repr
from .config import BudgetConfigError, StrPath, load_toml

__all__ = [
    "GENAI_PRICES",
    "MAX_PRICE_PER_MTOK",
    "ModelPrice",
    "PriceLookup",
    "PriceTable",
    "load_price_sources",
    "load_prices",
    "model_price",
    "price_source_files",
]

_PRICE_KEYS = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok")

GENAI_PRICES = "genai-prices"
"""The ``--baml-prices`` source naming the maintained ``genai-prices`` table."""

PriceLookup = Callable[[str, "str | None"], "ModelPrice | None"]
"""``(model, provider) -> ModelPrice | None``: a lazily answering layer (the genai-prices one)."""

MAX_PRICE_PER_MTOK = 1e9
"""The largest price a table accepts, in USD per million tokens (keeps every cost finite)."""


class ModelPrice(NamedTuple):
    """USD per million tokens for one model."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    """``None``: cached input tokens (cache reads) are billed at ``input_per_mtok``."""
    cache_write_per_mtok: float | None = None
    """``None``: cache-write tokens are billed at ``input_per_mtok``."""

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        cached_input_tokens: int | None = None,
        cache_write_tokens: int | None = None,
    ) -> float:
        """USD for these token counts (cached and cache-write tokens are part of ``input_tokens``)."""
        cached = min(cached_input_tokens or 0, input_tokens)
        written = min(cache_write_tokens or 0, input_tokens - cached)
        cached_rate = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        write_rate = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        return (
            (input_tokens - cached - written) * self.input_per_mtok
            + cached * cached_rate
            + written * write_rate
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


def model_price(spec: Mapping[str, Any], where: str) -> ModelPrice:
    """A :class:`ModelPrice` from checked prices (``input_per_mtok``, ``output_per_mtok`` and the
    optional cache prices); ``where`` names the table and model in a :class:`BudgetConfigError`."""
    cached = spec.get("cached_input_per_mtok")
    written = spec.get("cache_write_per_mtok")
    return ModelPrice(
        _check_price(spec["input_per_mtok"], where, "input_per_mtok"),
        _check_price(spec["output_per_mtok"], where, "output_per_mtok"),
        None if cached is None else _check_price(cached, where, "cached_input_per_mtok"),
        None if written is None else _check_price(written, where, "cache_write_per_mtok"),
    )


class PriceTable:
    """Prices per model, in USD per million tokens (the cost rules are in this module's docstring).

    ``PriceTable({"gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10}})``,
    :meth:`load` for a TOML file with ``[models."<model>"]`` tables, :meth:`from_genai_prices`
    for the maintained genai-prices table, :meth:`layered` to stack tables (later ones
    winning). Models of a TOML table are matched by exact name; ``lookup`` (a
    :data:`PriceLookup`) answers the models the table does not list, per ``(model, provider)``.
    """

    def __init__(
        self,
        models: Mapping[str, ModelPrice | Mapping[str, Any]] | None = None,
        *,
        source: str | None = None,
        lookup: PriceLookup | None = None,
    ) -> None:
        self.source = source
        if lookup is not None and not callable(lookup):
            fail(TypeError, f"PriceTable(lookup={short_repr(lookup)})", "a callable (model, provider) -> ModelPrice | None, or None")
        self._lookup = lookup
        self._layers: tuple[PriceTable, ...] = ()
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
                spec = {k: v for k, v in spec._asdict().items() if v is not None}
            if not isinstance(spec, Mapping):
                fail(
                    BudgetConfigError,
                    f"{where}: {short_repr(spec)} is not a table",
                    "input_per_mtok, output_per_mtok and optionally cached_input_per_mtok, cache_write_per_mtok",
                )
            unknown = [k for k in spec if k not in _PRICE_KEYS]
            if unknown:
                fail(BudgetConfigError, f"{where}: unknown key {unknown[0]!r}", ", ".join(_PRICE_KEYS))
            for required in ("input_per_mtok", "output_per_mtok"):
                if required not in spec:
                    raise BudgetConfigError(f"{where}: missing key {required!r} (USD per million tokens)")
            self._prices[model] = model_price(spec, where)

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

    @classmethod
    def layered(cls, tables: Sequence[PriceTable], *, source: str | None = None) -> PriceTable:
        """One table asking ``tables`` from the last to the first: a later table wins for
        every model it prices. ``source`` defaults to the tables' sources joined by commas."""
        if isinstance(tables, (str, bytes)) or not isinstance(tables, Sequence) or not tables:
            fail(TypeError, f"PriceTable.layered(tables={short_repr(tables)})", "a non-empty list of PriceTable")
        for t in tables:
            if not isinstance(t, PriceTable):
                fail(TypeError, f"PriceTable.layered(tables=[..., {short_repr(t)}, ...])", "a PriceTable")
        if len(tables) == 1 and source is None:
            return tables[0]
        table = cls(source=source if source is not None else ",".join(t.source or "<table>" for t in tables))
        table._layers = tuple(reversed(tables))
        return table

    @classmethod
    def from_genai_prices(cls, overrides: StrPath | PriceTable | None = None) -> PriceTable:
        """The maintained prices of the ``genai-prices`` package, with ``overrides`` on top.

        ``overrides`` is a TOML price file (``[models."<model>"]`` tables) or a
        :class:`PriceTable`; a model it prices wins. Prices are looked up lazily per
        ``(provider, model)``, BAML provider names mapped to genai-prices' providers
        (:data:`~pytest_baml_telemetry.budgets.genai.PROVIDERS`); a model genai-prices does
        not know, and ``ollama`` (local), stay unpriced unless ``overrides`` prices them.
        Needs the ``genai-prices`` extra (Python >= 3.11): without it a
        :class:`BudgetConfigError` names the extra.
        """
        from .genai import genai_price_table

        base = genai_price_table()
        if overrides is None:
            return base
        if isinstance(overrides, PriceTable):
            top = overrides
        elif isinstance(overrides, (str, Path)) or hasattr(overrides, "__fspath__"):
            top = cls.load(overrides)
        else:
            fail(
                TypeError,
                f"PriceTable.from_genai_prices(overrides={short_repr(overrides)})",
                "a path to a TOML price file, a PriceTable, or None",
            )
        return cls.layered([base, top])

    @property
    def models(self) -> list[str]:
        """The models listed by name (of every TOML layer; a lazy layer lists none)."""
        if self._layers:
            return sorted({m for t in self._layers for m in t.models})
        return sorted(self._prices)

    def price(self, model: str | None, provider: str | None = None) -> ModelPrice | None:
        """The prices of ``model`` (served by the BAML ``provider``, when known), or ``None``
        when it is unpriced. A TOML table ignores ``provider``; a lazy layer uses it."""
        if model is None:
            return None
        if self._layers:
            for t in self._layers:
                found = t.price(model, provider)
                if found is not None:
                    return found
            return None
        found = self._prices.get(model)
        if found is None and self._lookup is not None:
            return self._lookup(model, provider)
        return found

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.price(model) is not None

    def __len__(self) -> int:
        return len(self.models)

    def cost(
        self,
        model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cached_input_tokens: int | None = None,
        *,
        provider: str | None = None,
    ) -> float | None:
        """USD for one call, or ``None`` when the model is unpriced or tokens are unknown."""
        price = self.price(model, provider)
        if price is None or input_tokens is None or output_tokens is None:
            return None
        return price.cost(input_tokens, output_tokens, cached_input_tokens)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PriceTable)
            and self._prices == other._prices
            and self._lookup == other._lookup
            and self._layers == other._layers
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._layers:
            return f"PriceTable.layered({list(reversed(self._layers))!r})"
        if self._lookup is not None:
            return f"PriceTable({self._prices!r}, source={self.source!r}, lookup={self._lookup!r})"
        return f"PriceTable({self._prices!r})"


def load_prices(path: StrPath) -> PriceTable:
    """Same as :meth:`PriceTable.load`."""
    return PriceTable.load(path)


def _sources(value: Any) -> list[str]:
    """The sources of a ``--baml-prices`` value (``BudgetConfigError`` for an empty one)."""
    if not isinstance(value, str):
        fail(TypeError, f"--baml-prices={short_repr(value)}", "comma-separated price sources (a str)")
    parts = [p.strip() for p in value.split(",")]
    if not any(parts):
        raise BudgetConfigError(
            f"--baml-prices={value!r} names no price source; expected {GENAI_PRICES!r} and/or TOML price files, "
            "separated by commas"
        )
    for i, part in enumerate(parts, 1):
        if not part:
            raise BudgetConfigError(
                f"{_where(i, len(parts))} is empty in {value!r}; expected {GENAI_PRICES!r} or a TOML price file "
                "between the commas"
            )
    return parts


def _where(i: int, n: int) -> str:
    return "--baml-prices (ini baml_prices)" + (f", source {i} of {n}" if n > 1 else "")


def _source_file(part: str, root: StrPath, where: str) -> Path:
    from .paths import check_input_file

    try:
        return check_input_file(Path(root) / part, where)
    except BudgetConfigError as exc:
        raise BudgetConfigError(f"{exc} (a price source is {GENAI_PRICES!r} or a TOML price file)") from None


def price_source_files(value: str, root: StrPath = ".") -> list[Path]:
    """The TOML files among the sources of a ``--baml-prices`` value, checked (readable
    regular files, normalised): the inputs a report path must not overwrite."""
    parts = _sources(value)
    return [
        _source_file(part, root, _where(i, len(parts)))
        for i, part in enumerate(parts, 1)
        if part.lower() != GENAI_PRICES
    ]


def load_price_sources(value: str, root: StrPath = ".") -> PriceTable:
    """The ``--baml-prices`` value as one table: comma-separated sources, later ones winning.

    A source is ``genai-prices`` (the maintained table, :meth:`PriceTable.from_genai_prices`)
    or a path to a TOML price file, relative to ``root``: ``"genai-prices,prices.toml"``.
    A bad source is a :class:`BudgetConfigError` naming it (and its position).
    """
    parts = _sources(value)
    tables: list[PriceTable] = []
    for i, part in enumerate(parts, 1):
        where = _where(i, len(parts))
        if part.lower() == GENAI_PRICES:
            try:
                tables.append(PriceTable.from_genai_prices())
            except BudgetConfigError as exc:
                raise BudgetConfigError(f"{where}: {exc}") from None
            continue
        path = _source_file(part, root, where)
        try:
            tables.append(PriceTable.load(path))
        except BudgetConfigError as exc:
            raise BudgetConfigError(f"{where}: {exc}") from None
    return PriceTable.layered(tables)
