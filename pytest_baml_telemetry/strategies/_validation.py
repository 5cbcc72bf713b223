"""Argument checks of the strategies: the shared checks of ``_validate``, raising Hypothesis's errors.

A strategy given a bad argument fails when it is built, not when it is drawn, with a
``hypothesis.errors.InvalidArgument``, as Hypothesis's own strategies do. That class is
a ``TypeError`` (wrong type); :class:`InvalidArgumentValue` is also a ``ValueError``
(right type, out of range), so code written against the plain errors keeps working. Messages are
``"strategies.<function>(<key>=<value>): expected <what>"``. Every strategy argument is
checked through here; the shared checks (``_validate``, event names, durations, usages)
via :func:`checked`, which keeps their message. ``Outcome`` is a value, not a strategy:
like ``Usage`` it is checked with ``_validate`` directly and raises the plain errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy, just

from .. import _validate
from ..clock import parse_duration_ns
from ..contract import MAX_NATIVE, EventName, Usage, check_event_name

__all__ = [
    "InvalidArgumentType",
    "InvalidArgumentValue",
    "MAX_SIZE",
    "MAX_TOKENS",
    "as_strategy",
    "check_bool",
    "check_count",
    "check_function_name",
    "check_kinds",
    "check_prefix",
    "checked",
    "duration_ns",
    "fail",
    "owner",
    "usage",
]

T = TypeVar("T")


class InvalidArgumentType(InvalidArgument, TypeError):
    """A strategy argument of the wrong type."""


class InvalidArgumentValue(InvalidArgument, ValueError):
    """A strategy argument of the right type but out of range (or contradicting another)."""


def owner(function: str, key: str, value: Any) -> str:
    """``"strategies.<function>(<key>=<value>)"``: the ``where`` of a message."""
    return f"strategies.{function}({key}={_validate.short_repr(value)})"


def fail(message: str) -> NoReturn:
    """Raise :class:`InvalidArgumentValue` with a whole message (for arguments that contradict each other)."""
    raise InvalidArgumentValue(message) from None


def checked(check: Callable[..., T], *args: Any, suffix: str = "", **kwargs: Any) -> T:
    """Run a shared check; its ``TypeError``/``ValueError`` becomes the matching class here.

    ``suffix`` is appended to the message.
    """
    try:
        return check(*args, **kwargs)
    except InvalidArgument:
        raise
    except TypeError as exc:
        raise InvalidArgumentType(f"{exc}{suffix}") from None
    except ValueError as exc:
        raise InvalidArgumentValue(f"{exc}{suffix}") from None


MAX_SIZE = 10_000
"""The largest number of calls or partials a strategy draws (Hypothesis cannot build more)."""
MAX_TOKENS = MAX_NATIVE // 2
"""The largest token count drawn: a sum of two stays within ``contract.MAX_NATIVE``."""


def check_count(value: Any, function: str, key: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An int (not a bool) ``>= minimum`` (and ``<= maximum``)."""
    where = f"strategies.{function}({key}={_validate.short_number_repr(value)})"
    return checked(_validate.check_int, value, where, minimum=minimum, maximum=maximum)


def check_bool(value: Any, function: str, key: str) -> bool:
    """``True`` or ``False``."""
    return checked(_validate.check_bool, value, owner(function, key, value))


def check_function_name(value: Any, function: str) -> str:
    """A non-empty ``str`` (an empty one is refused with the type error, as always)."""
    try:
        return _validate.check_str(value, owner(function, "function_name", value), expected="a non-empty str (or a strategy)")
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentType(str(exc)) from None


def check_prefix(value: Any, function: str) -> EventName:
    """An event prefix: a non-empty tuple (or list) of non-empty strings."""
    return checked(check_event_name, value, what=f"strategies.{function}(prefix=...)", suffix=" (or a strategy drawing prefixes)")


def check_kinds(kinds: Any, allowed: Sequence[str], function: str, key: str = "kinds") -> tuple[str, ...]:
    """Some of ``allowed`` (one name, or a collection of them); ``None`` is all of them."""
    if kinds is None:
        return tuple(allowed)
    if isinstance(kinds, str):
        kinds = (kinds,)
    try:
        chosen = tuple(kinds)
    except TypeError:
        _validate.fail(InvalidArgumentType, owner(function, key, kinds), f"a collection of {tuple(allowed)}")
    if not chosen:
        _validate.fail(InvalidArgumentValue, owner(function, key, kinds), f"at least one of {tuple(allowed)}")
    for kind in chosen:
        if kind not in allowed:
            fail(f"strategies.{function}({key}=...): unknown kind {kind!r}; expected some of {tuple(allowed)}")
    return chosen


def duration_ns(value: Any, function: str, key: str) -> int:
    """A duration (``"5s"``, a number of seconds, a ``timedelta``) as whole nanoseconds."""
    return checked(parse_duration_ns, value, name=f"strategies.{function}({key})")


def usage(value: Any, function: str) -> Usage | None:
    """What ``Usage.coerce`` accepts, as a :class:`~pytest_baml_telemetry.Usage` (or ``None``)."""
    return checked(Usage.coerce, value, name=f"strategies.{function}(usage)")


def as_strategy(value: Any, default: SearchStrategy[T], check: Callable[[Any], Any] | None = None) -> SearchStrategy[T]:
    """A keyword that takes a value or a strategy: ``None`` -> ``default``; a strategy ->
    itself; a value -> ``just(check(value))`` (checked now, not at draw time)."""
    if value is None:
        return default
    if isinstance(value, SearchStrategy):
        return value
    return just(check(value) if check is not None else value)
