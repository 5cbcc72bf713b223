"""Argument checks shared by every public entry point (and by configuration loading).

One rule for every check: it returns the value (normalised where said) or raises
``TypeError`` for a value of the wrong type and ``ValueError`` for one of the right type
but out of range. The message is ``"{where}: expected {what}"``; ``where`` is written by the
caller and names the call and the bad value (``"Emitter(enabled=1)"``), so every message
says what was given and what was expected. ``short_repr`` is the one repr-shortener.

The predicates (``is_int``, ``is_count``, ``is_number``) never raise: use them where a
value is tested rather than checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from numbers import Integral, Real
from typing import Any, NoReturn, TypeGuard, TypeVar

__all__ = [
    "is_int",
    "is_count",
    "is_number",
    "short_repr",
    "fail",
    "check_bool",
    "check_int",
    "check_count",
    "check_number",
    "check_str",
    "check_choice",
    "check_mapping",
    "check_callable",
    "reject_unknown",
    "call_check",
]

T = TypeVar("T")


# --------------------------------------------------------------------------- predicates


def is_int(value: Any) -> TypeGuard[int]:
    """An ``int`` (or other ``Integral``) that is not a ``bool``."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_count(value: Any) -> TypeGuard[int]:
    """An int >= 0 that is not a ``bool``."""
    return isinstance(value, Integral) and not isinstance(value, bool) and int(value) >= 0


def is_number(value: Any) -> TypeGuard[Real]:
    """A real number (int, float, Fraction, ...) that is not a ``bool``."""
    return isinstance(value, Real) and not isinstance(value, bool)


# --------------------------------------------------------------------------- messages


def short_repr(value: Any, limit: int = 200) -> str:
    """``repr(value)`` cut to ``limit`` characters (ending in ``...``); never raises."""
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not hide the real message
        text = f"<unrepresentable {type(value).__name__}: {exc!r}>"
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def fail(exc_type: type[Exception], where: str, expected: str) -> NoReturn:
    """Raise ``exc_type(f"{where}: expected {expected}")`` with no chained context."""
    raise exc_type(f"{where}: expected {expected}") from None


# --------------------------------------------------------------------------- checks


def check_bool(value: Any, where: str) -> bool:
    """``True`` or ``False`` (not ``0``/``1``, not a truthy object)."""
    if value is True or value is False:
        return value
    fail(TypeError, where, "True or False")


def _bounds(what: str, minimum: Any, maximum: Any, optional: bool, unbounded: str | None = None) -> str:
    if minimum is not None and maximum is not None:
        text = f"{what} from {minimum} to {maximum}"
    elif minimum is not None:
        text = f"{what} >= {minimum}"
    elif maximum is not None:
        text = f"{what} <= {maximum}"
    else:
        text = unbounded or what
    return text + " or None" if optional else text


def check_int(
    value: Any,
    where: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    optional: bool = False,
    expected: str | None = None,
) -> Any:
    """An int (not a bool) within ``[minimum, maximum]``, returned as ``int``; ``None`` too if ``optional``."""
    if value is None and optional:
        return None
    if expected is None:
        expected = _bounds("an int", minimum, maximum, optional)
    if not is_int(value):
        fail(TypeError, where, expected)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        fail(ValueError, where, expected)
    return int(value)


def check_count(value: Any, where: str, *, optional: bool = False, expected: str | None = None) -> Any:
    """An int >= 0 (``None`` too if ``optional``)."""
    return check_int(value, where, minimum=0, optional=optional, expected=expected)


def check_number(
    value: Any,
    where: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    positive: bool = False,
    optional: bool = False,
    expected: str | None = None,
) -> Any:
    """A finite real number (not a bool) within the bounds; ``positive`` excludes 0."""
    if value is None and optional:
        return None
    if expected is None:
        if positive:
            expected = "a number > 0" + (" or None" if optional else "")
        else:
            expected = _bounds("a number", minimum, maximum, optional, unbounded="a finite number")
    if not is_number(value):
        fail(TypeError, where, expected)
    try:
        f = float(value)
    except OverflowError:  # an int or Fraction too large for a float: out of every range
        fail(ValueError, where, expected)
    if (
        not math.isfinite(f)
        or (positive and f <= 0)
        or (minimum is not None and f < minimum)
        or (maximum is not None and f > maximum)
    ):
        fail(ValueError, where, expected)
    return value


def check_str(value: Any, where: str, *, empty: bool = False, optional: bool = False, expected: str | None = None) -> Any:
    """A ``str``, non-empty unless ``empty``; ``None`` too if ``optional``."""
    if value is None and optional:
        return None
    if expected is None:
        expected = "a str" if empty else "a non-empty str"
        if optional:
            expected += " or None"
    if not isinstance(value, str):
        fail(TypeError, where, expected)
    if not empty and not value:
        fail(ValueError, where, expected)
    return value


def check_choice(value: Any, choices: Collection[T], where: str, *, expected: str | None = None) -> T:
    """One of ``choices`` (compared with ``==``; unhashable values are refused, not raised on)."""
    try:
        ok = value in choices
    except TypeError:
        ok = False
    if not ok:
        fail(ValueError, where, expected or "one of " + ", ".join(repr(c) for c in choices))
    return value


def check_mapping(value: Any, where: str, *, optional: bool = False, expected: str | None = None) -> Any:
    """A ``Mapping`` (``None`` too if ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        fail(TypeError, where, expected or ("a mapping or None" if optional else "a mapping"))
    return value


def check_callable(value: Any, where: str, *, optional: bool = False, expected: str | None = None) -> Any:
    """A callable (``None`` too if ``optional``)."""
    if value is None and optional:
        return None
    if not callable(value):
        fail(TypeError, where, expected or ("a callable or None" if optional else "a callable"))
    return value


def reject_unknown(given: Collection[str], known: Collection[str], where: str) -> None:
    """Raise ``TypeError`` naming the first of ``given`` not in ``known`` and listing ``known``."""
    unknown = [k for k in given if k not in known]
    if unknown:
        fail(TypeError, f"{where}: unknown option {unknown[0]!r}", "one of " + ", ".join(sorted(known)))


def call_check(check: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``check`` and re-raise its TypeError/ValueError without the inner traceback."""
    try:
        return check(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise type(exc)(str(exc)) from None


def short_number_repr(value: Any, limit: int = 80) -> str:
    """``short_repr``, but an int too long to print (``10**5000``) reads ``<int of about 5001 digits>``."""
    if isinstance(value, int) and value.bit_length() > 200:
        return f"<int of about {int(value.bit_length() * 0.30103) + 1} digits>"
    return short_repr(value, limit)
