"""The report's per-test rows: :func:`rows_by_test` (calls, errors, tokens and cost per test id).

Built from :attr:`Aggregator.tests <pytest_baml_telemetry.budgets.aggregate.Aggregator.tests>`
(kept per test window and merged from xdist workers). A number in a row is always exact:
a token count is ``None`` when some call of the test had that count unknown, a cost is
``None`` when some call of the test is unpriced or has unknown tokens — never 0 for unknown.
"""

from __future__ import annotations

from typing import Any

from ..budgets.aggregate import TEST_COUNTERS, Aggregator
from ..budgets.prices import PriceTable

__all__ = ["rows_by_test"]

_I = {name: i for i, name in enumerate(TEST_COUNTERS)}


def rows_by_test(aggregator: Aggregator, prices: PriceTable | None = None) -> list[dict[str, Any]]:
    """One row per test id that made calls, sorted by test id::

        {"test_id": str, "calls": int, "ok": int, "errors": int,
         "input_tokens": int | None, "output_tokens": int | None,
         "cached_input_tokens": int | None, "total_tokens": int | None,
         "unknown_token_calls": int, "cost_usd": float | None,
         "cost_status": "priced" | "partial" | "unpriced" | "no usage",
         "functions": [str]}
    """
    rows = []
    for test_id in sorted(aggregator.tests):
        series = aggregator.tests[test_id]
        sums = [0] * len(TEST_COUNTERS)
        usd = 0.0
        unpriced = False
        for key, counts in series.items():
            for i, v in enumerate(counts):
                sums[i] += v
            ok, inp, out = counts[_I["ok"]], counts[_I["input_tokens"]], counts[_I["output_tokens"]]
            unknown = counts[_I["unknown_calls"]]
            if not (ok or inp or out or unknown):  # only failures known not to be billed: $0
                continue
            model = key[1]
            price = prices.price(model, aggregator.series_provider(key)) if prices is not None and model else None
            if price is None:
                unpriced = True
            else:
                usd += price.cost(inp, out, counts[_I["cached_input_tokens"]])
        ok, errors = sums[_I["ok"]], sums[_I["errors"]]
        unknown_in, unknown_out = sums[_I["unknown_input"]], sums[_I["unknown_output"]]
        known_in: int | None = None if unknown_in else sums[_I["input_tokens"]]
        known_out: int | None = None if unknown_out else sums[_I["output_tokens"]]
        unknown_calls = sums[_I["unknown_calls"]]
        if unpriced:
            status, cost = "unpriced", None
        elif unknown_calls:
            status, cost = "partial", None
        elif ok == 0 and not sums[_I["input_tokens"]] and not sums[_I["output_tokens"]]:
            status, cost = "no usage", 0.0
        else:
            status, cost = "priced", usd
        rows.append(
            {
                "test_id": test_id,
                "calls": ok + errors,
                "ok": ok,
                "errors": errors,
                "input_tokens": known_in,
                "output_tokens": known_out,
                "cached_input_tokens": None if unknown_in else sums[_I["cached_input_tokens"]],
                "total_tokens": None if known_in is None or known_out is None else known_in + known_out,
                "unknown_token_calls": unknown_calls,
                "cost_usd": cost,
                "cost_status": status,
                "functions": sorted({k[0] for k in series}),
            }
        )
    return rows
