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
""":func:`kth_smallest` sorts the candidates once there are at most this many (and 8 per run)."""
_MANY = 64
""":func:`kth_smallest` guesses bounds from the runs' own estimates when there are this many runs."""


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

    Each run holds a window of candidates, values between two bounds of the answer: first
    the values each run holds at its own share of ``k``, then narrower ones (a bisection,
    and with many runs the middle of the runs' own estimates, used only when the counts
    confirm them). Once few candidates are left they are sorted. Raises ``IndexError``
    unless ``1 <= k <=`` the number of values.
    """
    if len(runs) == 1:
        if k < 1:
            raise IndexError(f"kth_smallest: k={k} is not a rank from 1")
        return runs[0][k - 1]
    runs = [r for r in runs if len(r)]
    n = sum(len(r) for r in runs)
    if not 1 <= k <= n:
        raise IndexError(f"kth_smallest: k={k} is not a rank from 1 to {n}")
    # windows: (run, start, end) with run[start:end] its values in [lo, hi]; `base` values are < lo
    guess = _guess([(r, 0, len(r)) for r in runs], k, n) if len(runs) >= _MANY else None
    if guess is not None:
        lo, hi, base, windows = guess
    else:
        lo, hi = _bounds(runs, k, n)
        base = 0
        windows = []
        for r in runs:
            start = bisect_left(r, lo)
            end = bisect_right(r, hi)
            base += start
            if start < end:
                windows.append((r, start, end))
    while lo < hi:
        size = sum(end - start for _, start, end in windows)
        if size <= _FEW + 8 * len(windows):
            break
        guess = _guess(windows, k - base, size)
        if guess is not None and sum(end - start for _, start, end in guess[3]) < size:
            lo, hi, below, windows = guess
            base += below
            continue
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


def _bounds(runs: Sequence[Sequence[int]], k: int, n: int) -> tuple[int, int]:
    """Bounds of the ``k``-th smallest of ``n`` values: with q = k / n, at least k values are
    <= the largest r[ceil(q len(r)) - 1] and fewer than k are < the smallest r[max(floor(q len(r)) - 1, 0)]."""
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
    return lo, hi


Window = tuple[Sequence[int], int, int]


def _guess(windows: Sequence[Window], t: int, size: int) -> tuple[int, int, int, list[Window]] | None:
    """With many windows, narrower bounds of the ``t``-th smallest of their ``size`` values:
    the middle of the windows' own estimates, kept only if the counts show the answer
    between them. Returns ``(lo, hi, values below lo, windows)`` or ``None``."""
    if len(windows) < _MANY:
        return None
    estimates = []
    for r, start, end in windows:
        i = start + ((end - start) * t) // size
        estimates.append(r[i if i < end else end - 1])
    estimates.sort()
    half = len(estimates) // 2
    spread = 2 * math.isqrt(len(estimates)) + 1
    lo = estimates[max(half - spread, 0)]
    hi = estimates[min(half + spread, len(estimates) - 1)]
    cuts = [(r, start, bisect_left(r, lo, start, end), bisect_right(r, hi, start, end)) for r, start, end in windows]
    below = sum(a - start for _, start, a, _ in cuts)
    if not below < t <= sum(b - start for _, start, _, b in cuts):
        return None
    return lo, hi, below, [(r, a, b) for r, _, a, b in cuts if a < b]
