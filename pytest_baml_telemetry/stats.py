"""Exact nearest-rank percentiles: the one implementation budgets, trackers, metrics and the report use.

For ``n`` sorted values and ``0 <= p <= 100`` the ``p``-th percentile is the value at
1-based rank ``ceil(p / 100 * n)`` (rank 1 when that is 0, so ``p=0`` is the minimum and
``p=100`` the maximum). It is always one of the values, never an interpolation. ``p`` is
read as the decimal it is written as (``99.9`` means 999/10, not the nearest binary float).
Time units live in :data:`pytest_baml_telemetry.contract.TIME_UNITS` (one table).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from numbers import Integral
from typing import TypeVar

from ._validate import is_number

__all__ = ["rank", "percentile", "kth_smallest"]

T = TypeVar("T")

_FEW = 4096
""":func:`kth_smallest` sorts the candidates once there are at most this many."""


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
    """The ``k``-th smallest (1-based) value over several sorted runs of ints (empty runs allowed).

    The answer lies between the values each run holds at its own share of ``k``; a bisection
    over that range narrows each run's window of candidates until few are left, which are
    then sorted. Raises ``IndexError`` unless ``1 <= k <=`` the number of values.
    """
    if len(runs) == 1:
        if k < 1:
            raise IndexError(f"kth_smallest: k={k} is not a rank from 1")
        return runs[0][k - 1]
    runs = [r for r in runs if len(r)]
    n = sum(len(r) for r in runs)
    if not 1 <= k <= n:
        raise IndexError(f"kth_smallest: k={k} is not a rank from 1 to {n}")
    # Bounds: with q = k / n, at least k values are <= the largest r[ceil(q len(r)) - 1] and
    # fewer than k are < the smallest r[max(floor(q len(r)) - 1, 0)].
    lo = runs[0][-1]
    hi = runs[0][0]
    for r in runs:
        m = len(r)
        below = k * m // n
        a = r[below - 1 if below > 1 else 0]
        if a < lo:
            lo = a
        upto = -(-k * m // n)
        if upto:
            b = r[upto - 1]
            if b > hi:
                hi = b
    # windows: (run, start, end) with run[start:end] its values in [lo, hi]; `base` values are < lo
    base = 0
    windows: list[tuple[Sequence[int], int, int]] = []
    for r in runs:
        start = bisect_left(r, lo)
        end = bisect_right(r, hi)
        base += start
        if start < end:
            windows.append((r, start, end))
    while lo < hi and sum(end - start for _, start, end in windows) > _FEW:
        mid = (lo + hi) // 2
        cuts = [(r, start, end, bisect_right(r, mid, start, end)) for r, start, end in windows]
        upto = base + sum(cut - start for _, start, _, cut in cuts)  # values <= mid
        if upto >= k:
            hi = mid
            windows = [(r, start, cut) for r, start, _, cut in cuts if start < cut]
        else:
            lo = mid + 1
            base = upto
            windows = [(r, cut, end) for r, _, end, cut in cuts if cut < end]
    if lo == hi:
        return lo
    few: list[int] = []
    for r, start, end in windows:
        few.extend(r[start:end])
    few.sort()
    return few[k - base - 1]
