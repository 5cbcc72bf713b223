"""How budget messages and the report write a model and an amount of USD (stdlib only, cheap to import)."""

from __future__ import annotations

__all__ = ["format_usd", "model_label"]


def model_label(model: str | None) -> str:
    """How messages and the report name a model (``"no model"`` for calls without one)."""
    return "no model" if model is None else model


def format_usd(value: float) -> str:
    """``$0``, ``$0.0123``, ``$1,234.5``: USD as messages and the report show it."""
    if value == 0:
        return "$0"
    if value >= 0.01:
        return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1000 else f"${value:,.2f}"
    return f"${value:.6g}"
