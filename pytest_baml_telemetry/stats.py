"""Exact nearest-rank percentiles: the one implementation budgets, trackers, metrics and the report use.

For ``n`` sorted values and ``0 <= p <= 100`` the ``p``-th percentile is the value at
1-based rank ``ceil(p / 100 * n)`` (rank 1 when that is 0, so ``p=0`` is the minimum and
``p=100`` the maximum). It is always one of the values, never an interpolation. ``p`` is
read as the decimal it is written as (``99.9`` means 999/10, not the nearest binary float).
Time units live in :data:`pytest_baml_telemetry.contract.TIME_UNITS` (one table).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from numbers import Integral
from typing import TypeVar

from ._validate import is_number

__all__ = ["rank", "percentile", "kth_smallest"]

T = TypeVar("T")


def rank(p: float, n: int) -> int:
    """1-based nearest rank of percentile ``p`` among ``n`` values (``n >= 1``)."""
    if not is_number(p):
        raise TypeError(f"percentile p={p!r} is not a number; expected a number from 0 to 100")
    if isinstance(p, Integral):
        ip = int(p)
        if not 0 <= ip <= 100:
            raise ValueError(f"percentile p={p!r} is out of range; expected a number from 0 to 100")
        r = -(-ip * n // 100)
    else:
        from fractions import Fraction  # only for a fractional p (keeps the plugin import light)

        fp = float(p)
        if not (0.0 <= fp <= 100.0):  # also rejects NaN
            raise ValueError(f"percentile p={p!r} is out of range; expected a number from 0 to 100")
        r = math.ceil(Fraction(repr(fp)) * n / 100)
    return r if r > 0 else 1


def percentile(sorted_values: Sequence[T], p: float) -> T | None:
    """Exact nearest-rank percentile of already sorted values; ``None`` when there are none.

    ``p=50`` of ``[1, 2, 3, 4]`` is ``2``. Raises ``TypeError``/``ValueError`` unless
    ``0 <= p <= 100`` (also when there are no values).
    """
    n = len(sorted_values)
    if n == 0:
        rank(p, 1)  # still validate p
        return None
    return sorted_values[rank(p, n) - 1]


def kth_smallest(runs: Sequence[Sequence[int]], k: int) -> int:
    """The ``k``-th smallest (1-based) value over several sorted, non-empty runs of ints."""
    if len(runs) == 1:
        return runs[0][k - 1]
    lo = min(r[0] for r in runs)
    hi = max(r[-1] for r in runs)
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(bisect_right(r, mid) for r in runs) >= k:
            hi = mid
        else:
            lo = mid + 1
    return lo
