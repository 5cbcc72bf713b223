"""Partial matching of expected values against actual ones, and the diff of a near miss.

The one matching engine of the package: :mod:`~pytest_baml_telemetry.capture` matches
events and calls with it, :mod:`~pytest_baml_telemetry.metrics.memory` metric values.

Rules:

* :func:`value_matches` — an expected value matches when it *is* the actual value, or
  ``==`` it (so ``pytest.approx`` and ``dirty-equals`` matchers such as ``IsInt`` work),
  or is a type the value is an instance of, or is a mapping the value matches partially,
  or is a predicate returning a truthy value. An ``==`` or a predicate that raises is a
  mismatch, never an error.
* :func:`satisfies` — the narrow rule for single values: ``==``, else a predicate (a type
  is not a predicate here).
* :func:`matches` — every key of the expected mapping is in the actual mapping with a
  matching value; other keys of the actual mapping are ignored.
* :func:`closest` ranks candidates by how many expected keys they match and renders the
  differences (:func:`differences`); :func:`describe` is the short text of an expected or
  actual value in those messages.
* :func:`select`, :func:`flags`, :func:`scores`, :func:`best` and :func:`leaders` apply the same rules to
  many candidates at once (a capture of a million events): one pass per expected key, with
  a plain literal (a str, an int, ...) compared inline. They give what :func:`matches`,
  :func:`score` and :func:`closest`'s ranking give one candidate at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import islice, repeat
from operator import add, eq, truth
from typing import Any, TypeVar

from ._validate import short_repr

__all__ = [
    "MISSING",
    "Section",
    "best",
    "closest",
    "describe",
    "describe_mapping",
    "differences",
    "flags",
    "leaders",
    "matches",
    "satisfies",
    "score",
    "scores",
    "select",
    "value_matches",
]

T = TypeVar("T")

MISSING: Any = object()
"""The value of a key an actual mapping does not have."""

Section = tuple[str, "Mapping[str, Any] | None", Mapping[str, Any]]
"""``(where, expected, actual)``: one mapping of a candidate, named ``where`` in a diff."""


def _equal(expected: Any, actual: Any) -> bool:
    try:
        return bool(expected == actual)
    except Exception:
        return False


def _holds(predicate: Any, actual: Any) -> bool:
    try:
        return bool(predicate(actual))
    except Exception:
        return False


def value_matches(expected: Any, actual: Any) -> bool:
    """Whether ``actual`` matches ``expected``: identity, ``==``, type, partial mapping or predicate."""
    if expected is actual or _equal(expected, actual):
        return True
    if isinstance(expected, type):
        return not isinstance(actual, type) and isinstance(actual, expected)
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and matches(expected, actual)
    return callable(expected) and _holds(expected, actual)


def satisfies(expected: Any, actual: Any) -> bool:
    """Whether ``expected == actual``, or ``expected`` is a predicate (not a type) true of ``actual``."""
    if _equal(expected, actual):
        return True
    return callable(expected) and not isinstance(expected, type) and _holds(expected, actual)


def matches(expected: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> bool:
    """True when every key of ``expected`` is in ``actual`` with a matching value."""
    if not expected:
        return True
    for key, want in expected.items():
        got = actual.get(key, MISSING)
        if got is MISSING or not value_matches(want, got):
            return False
    return True


def score(expected: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> int:
    """How many keys of ``expected`` ``actual`` matches."""
    return sum(1 for k, v in (expected or {}).items() if k in actual and value_matches(v, actual[k]))


# --------------------------------------------------------------------------- messages


def describe(value: Any, limit: int = 120) -> str:
    """A short text for ``value``: a type by its name, a function as "a value satisfying f"."""
    if isinstance(value, type):
        text = value.__name__
    else:
        text = short_repr(value, limit)
        if callable(value) and text.startswith("<function"):
            text = f"a value satisfying {getattr(value, '__qualname__', text)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_mapping(mapping: Mapping[str, Any]) -> str:
    """``{'key': described value, ...}``."""
    return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in mapping.items()) + "}"


def differences(where: str, expected: Mapping[str, Any] | None, actual: Mapping[str, Any]) -> list[str]:
    """One line per expected key that ``actual`` lacks or does not match."""
    out = []
    for key, want in (expected or {}).items():
        got = actual.get(key, MISSING)
        if got is MISSING:
            out.append(f"{where}[{key!r}]: expected {describe(want)}, but the key is missing")
        elif not value_matches(want, got):
            out.append(f"{where}[{key!r}]: expected {describe(want)}, got {describe(got)}")
    return out


def closest(
    candidates: Sequence[T], sections: Callable[[T], Sequence[Section]], limit: int = 3
) -> tuple[list[tuple[T, list[str]]], int]:
    """The ``limit`` candidates matching the most expected keys, each with its differences.

    ``sections(candidate)`` gives the ``(where, expected, actual)`` mappings to compare.
    Ties keep the candidates' order. Returns ``(shown, how many more were not shown)``.
    """
    ranked = sorted(candidates, key=lambda c: -sum(score(e, a) for _, e, a in sections(c)))
    shown = [(c, [d for where, e, a in sections(c) for d in differences(where, e, a)]) for c in ranked[:limit]]
    return shown, max(len(ranked) - limit, 0)


# --------------------------------------------------------------------------- many candidates at once

_PLAIN = frozenset({str, int, float, bool, bytes, complex, type(None)})
"""Types whose values match only by identity or ``==`` (not a type, mapping or predicate)."""


def select(candidates: list[Any], at: int, expected: Mapping[str, Any] | None) -> list[Any]:
    """The candidates whose item ``at`` (a mapping) :func:`matches` ``expected``, in order.

    One pass per expected key over the candidates still in (the keys in order, as
    :func:`matches` checks them); a plain literal is compared inline.
    """
    out = candidates
    for key, want in (expected or {}).items():
        if not out:
            break
        if _plain(want):
            try:
                out = [c for c in out if want == c[at].get(key, MISSING)]
                continue
            except Exception:  # an actual value whose == raises: the rules below say it does not match
                pass
        out = [c for c in out if (got := c[at].get(key, MISSING)) is not MISSING and value_matches(want, got)]
    return out


def flags(want: Any, values: Iterable[Any]) -> list[bool]:
    """``value_matches(want, value)`` for each value (:data:`MISSING` never matches)."""
    values = values if isinstance(values, list) else list(values)
    if _plain(want):
        try:
            return list(map(truth, map(eq, repeat(want), values)))
        except Exception:
            pass
    return [got is not MISSING and value_matches(want, got) for got in values]


def scores(candidates: Sequence[Any], sections: Iterable[tuple[int, Mapping[str, Any] | None]]) -> list[int]:
    """For each candidate, how many expected keys it matches: :func:`score` summed over the
    ``(at, expected)`` sections (item ``at`` of a candidate is the actual mapping)."""
    total = [0] * len(candidates)
    for at, expected in sections:
        for key, want in (expected or {}).items():
            if _plain(want):
                try:
                    total = list(map(add, total, [1 if want == c[at].get(key, MISSING) else 0 for c in candidates]))
                    continue
                except Exception:  # as in select()
                    pass
            hits = [(got := c[at].get(key, MISSING)) is not MISSING and value_matches(want, got) for c in candidates]
            total = list(map(add, total, hits))
    return total


def _plain(want: Any) -> bool:
    """Whether ``want`` matches exactly when ``want == actual`` (identity implies it: no NaN)."""
    return type(want) in _PLAIN and want == want


def leaders(candidates: Sequence[Any], sections: Sequence[tuple[int, Mapping[str, Any] | None]], limit: int, ceiling: int) -> list[int]:
    """The positions of the ``limit`` candidates with the highest :func:`scores`, ties in order.

    ``ceiling`` is the highest score any candidate can have (the number of expected keys,
    less one when the caller knows none matches them all): the candidates are scored a
    block at a time, and once ``limit`` of them reach it the rest cannot rank higher and
    are not scored.
    """
    points: list[int] = []
    size = 256
    while len(points) < len(candidates):
        points.extend(scores(candidates[len(points) : len(points) + size], sections))
        if points.count(ceiling) >= limit:
            break
        size *= 2
    return best(points, limit)


def best(points: Sequence[int], limit: int) -> list[int]:
    """The positions of the ``limit`` highest ``points``, ties in order (as :func:`closest` ranks)."""
    picked: list[int] = []
    for level in sorted(set(points), reverse=True):
        if len(picked) >= limit:
            break
        picked.extend(islice((i for i, p in enumerate(points) if p == level), limit - len(picked)))
    return picked
