"""How budget messages and the report write a model and an amount of USD (stdlib only, cheap to import)."""

from __future__ import annotations

import math

__all__ = ["format_usd", "model_label"]

_SMALLEST_USD = 1e-12
"""Below this (a millionth of a millionth of a dollar) an amount prints as ``<$0.000000000001``."""


def model_label(model: str | None) -> str:
    """How messages and the report name a model (``"no model"`` for calls without one)."""
    return "no model" if model is None else model


def format_usd(value: float) -> str:
    """USD as messages and the report show it, always in fixed point (never ``3.25e-05``).

    ``$0``; up to four decimals from a cent (``$0.0123``, ``$12.5``); whole cents from
    $1,000 (``$1,234.50``); four significant digits below a cent (``$0.0000325``,
    ``$0.000001234``); ``<$0.000000000001`` for a positive amount smaller than that.
    """
    if value == 0:
        return "$0"
    if value < 0:
        return "-" + format_usd(-value)
    if not math.isfinite(value):  # never from a loaded price table; shown, not raised on
        return f"${value}"
    if value >= 1000:
        return f"${value:,.2f}"
    if value >= 0.01:
        text = f"${value:,.4f}".rstrip("0").rstrip(".")
        return text
    if value < _SMALLEST_USD:
        return "<$0.000000000001"
    decimals = 3 - math.floor(math.log10(value))  # four significant digits
    return f"${value:.{decimals}f}".rstrip("0").rstrip(".")
