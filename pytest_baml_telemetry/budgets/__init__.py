"""Performance budgets over BAML calls: one module per idea, re-exported here.

* :mod:`.aggregate` -- :class:`Aggregator`, the compact record of calls, and its xdist payload;
* :mod:`.view` -- :class:`CallStats` (a live, filtered view), :class:`Cost`, :class:`WorstCall`;
* :mod:`.prices` -- :class:`ModelPrice`, :class:`PriceTable`, :func:`load_prices`, :func:`load_price_sources`;
* :mod:`.genai` -- the maintained price layer from the optional ``genai-prices`` package;
* :mod:`.config` -- :class:`BudgetConfigError` and the TOML reader of budget and price files;
* :mod:`.limits` -- one entry per budget key (its parser, unit, measurement, format, worst calls);
* :mod:`.budget` -- :class:`Budget`, :func:`budget_from_marker`, :func:`load_budgets`;
* :mod:`.verdicts` -- :class:`Verdict`, :func:`evaluate`, :func:`failure_message`;
* :mod:`.text` -- how a model and USD are written.

The package is pure (no pytest): the plugin feeds call events into an :class:`Aggregator`,
turns markers and budget files into :class:`Budget` objects and calls :func:`evaluate` to
get one :class:`Verdict` per budget key. Names are imported from their module on first
use, so importing one module (the plugin reads :mod:`.limits`) does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ..stats import percentile
    from .aggregate import PAYLOAD_FORMAT, Aggregator
    from .budget import Budget, BudgetOrigin, budget_from_marker, load_budgets
    from .config import BudgetConfigError
    from .limits import BUDGET_KEYS, LIMIT_KEYS
    from .prices import ModelPrice, PriceTable, load_price_sources, load_prices
    from .text import format_usd, model_label
    from .verdicts import Verdict, evaluate, failure_message, iter_verdicts, verdict_record
    from .view import CallStats, Cost, WorstCall

__all__ = [
    "Aggregator",
    "Budget",
    "BudgetConfigError",
    "BudgetOrigin",
    "BUDGET_KEYS",
    "CallStats",
    "Cost",
    "LIMIT_KEYS",
    "ModelPrice",
    "PAYLOAD_FORMAT",
    "PriceTable",
    "Verdict",
    "WorstCall",
    "budget_from_marker",
    "evaluate",
    "failure_message",
    "format_usd",
    "iter_verdicts",
    "load_budgets",
    "load_price_sources",
    "load_prices",
    "model_label",
    "percentile",
    "verdict_record",
]

_HOME = {
    "percentile": "..stats",
    "PAYLOAD_FORMAT": ".aggregate",
    "Aggregator": ".aggregate",
    "BUDGET_KEYS": ".limits",
    "Budget": ".budget",
    "BudgetOrigin": ".budget",
    "budget_from_marker": ".budget",
    "load_budgets": ".budget",
    "BudgetConfigError": ".config",
    "LIMIT_KEYS": ".limits",
    "ModelPrice": ".prices",
    "PriceTable": ".prices",
    "load_prices": ".prices",
    "load_price_sources": ".prices",
    "format_usd": ".text",
    "model_label": ".text",
    "Verdict": ".verdicts",
    "evaluate": ".verdicts",
    "failure_message": ".verdicts",
    "iter_verdicts": ".verdicts",
    "verdict_record": ".verdicts",
    "CallStats": ".view",
    "Cost": ".view",
    "WorstCall": ".view",
}
"""Each public name -> the module that owns it."""


__getattr__ = lazy_exports(__name__, _HOME)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
