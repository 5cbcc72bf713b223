"""A budget: limits (one per key of :data:`~pytest_baml_telemetry.budgets.limits.LIMITS`) over
the calls in scope, optionally filtered by function and model, and where it came from.

Budgets come from ``Budget(...)``, a ``baml_budget`` marker (:func:`budget_from_marker`)
or a ``[[budget]]`` table of a budget file (:func:`load_budgets`). A budget loaded from a
file carries its :class:`BudgetOrigin` (path and table number) as data; ``source`` is the
label made from it. Bad input: unknown keys raise ``TypeError`` listing the valid ones,
bad values ``ValueError`` naming the key and the value; a file problem is a
:class:`~pytest_baml_telemetry.budgets.config.BudgetConfigError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

from .._validate import check_bool, check_str, short_repr
from .config import BudgetConfigError, StrPath, load_toml
from .limits import BUDGET_KEYS, LIMIT_KEYS, LIMITS
from .view import Filter, matches_filter, normalize_filter

__all__ = ["Budget", "BudgetOrigin", "budget_from_marker", "load_budgets"]

@dataclass(frozen=True)
class BudgetOrigin:
    """Where a budget of a budget file came from: the file and its 1-based ``[[budget]]`` number."""

    path: str
    index: int

    @property
    def label(self) -> str:
        """``"<path> [[budget]] #<index>"``: how messages name it."""
        return f"{self.path} [[budget]] #{self.index}"


def _unknown_keys(bad: list[str]) -> TypeError:
    bad = sorted(bad)
    return TypeError(
        f"unknown budget key{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
        f"valid keys are {', '.join(BUDGET_KEYS)}"
    )


def _value(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``check``; a bad value of a budget key is a ``ValueError`` whatever its type."""
    try:
        return check(*args, **kwargs)
    except TypeError as e:
        raise ValueError(str(e)) from None


class Budget:
    """Limits over the calls in scope (a test, or the session), optionally filtered.

    Latency keys (``p50``, ``p90``, ``p95``, ``p99``, ``max_latency``) take ``"800ms"``,
    ``"2s"``, a ``timedelta`` or seconds and are stored in ns; percentiles are exact
    nearest-rank over every call in scope, failed calls included. ``max_calls``,
    ``max_errors``, ``max_input_tokens``, ``max_output_tokens``, ``max_total_tokens``
    are ints (token limits are sums over the calls in scope); ``max_error_rate`` is a
    fraction 0..1; ``max_cost_usd`` is USD. A limit passes when measured <= limit.
    ``function``/``model`` filter the calls (a str or a list of str). Token and cost
    limits fail when calls have unknown tokens unless ``allow_unknown_tokens=True``.
    ``name`` and ``source`` (where the budget came from; or ``origin``, a
    :class:`BudgetOrigin`, from which ``source`` is made) only label messages.
    Each limit key reads as an attribute (``budget.p95``, ``None`` when not set).

    Unknown keywords raise ``TypeError`` listing the valid ones; bad values raise
    ``ValueError`` naming the key and the value; a budget must set at least one limit.
    Budgets are immutable and hashable.
    """

    __slots__ = ("_limits", "function", "model", "allow_unknown_tokens", "name", "source", "origin")

    _limits: dict[str, int | float]
    function: Filter
    model: Filter
    allow_unknown_tokens: bool
    name: str | None
    source: str | None
    origin: BudgetOrigin | None

    def __init__(
        self,
        *,
        function: str | Iterable[str] | None = None,
        model: str | Iterable[str] | None = None,
        allow_unknown_tokens: bool = False,
        name: str | None = None,
        source: str | None = None,
        origin: BudgetOrigin | None = None,
        **limits: Any,
    ) -> None:
        unknown = [k for k in limits if k not in LIMITS]
        if unknown:
            raise _unknown_keys(unknown)
        if all(v is None for v in limits.values()):
            raise ValueError(f"budget sets no limit; expected at least one of {', '.join(LIMIT_KEYS)}")
        parsed = {k: _value(e.parse, limits[k]) for k, e in LIMITS.items() if limits.get(k) is not None}
        put = object.__setattr__
        put(self, "_limits", parsed)
        put(self, "function", _value(normalize_filter, function, "function"))
        put(self, "model", _value(normalize_filter, model, "model"))
        where = f"allow_unknown_tokens={short_repr(allow_unknown_tokens)}"
        put(self, "allow_unknown_tokens", _value(check_bool, allow_unknown_tokens, where))
        for key, value in (("name", name), ("source", source)):
            _value(check_str, value, f"{key}={short_repr(value)}", empty=True, optional=True, expected="a label (str) or None")
        if origin is not None:
            if not isinstance(origin, BudgetOrigin):
                raise ValueError(f"origin={short_repr(origin)}: expected a BudgetOrigin(path, index) or None")
            if source is not None:
                raise ValueError(f"source={source!r} and origin={origin!r}: expected one of them (source is made from origin)")
            source = origin.label
        put(self, "name", name)
        put(self, "source", source)
        put(self, "origin", origin)

    def __getattr__(self, key: str) -> Any:
        if key in LIMITS:
            return self._limits.get(key)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {key!r}")

    def __delattr__(self, key: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {key!r}")

    def _key(self) -> tuple:
        return (tuple(self._limits.items()), self.function, self.model, self.allow_unknown_tokens, self.name, self.source)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Budget):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.to_mapping(), self.source, self.origin))

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, source: str | None = None, origin: BudgetOrigin | None = None
    ) -> Budget:
        """From a TOML table or any mapping with the budget keys (``source``/``origin`` label it)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"budget {short_repr(data)} is not a table/mapping of budget keys")
        bad = [k for k in data if not isinstance(k, str) or k not in BUDGET_KEYS]
        if bad:
            raise _unknown_keys(bad)
        return cls(**data, source=source, origin=origin)

    def limits(self) -> dict[str, int | float]:
        """The limits this budget sets, ``{key: limit}`` in evaluation order (ns for latency)."""
        return dict(self._limits)

    def to_mapping(self) -> dict[str, Any]:
        """The keys that are set, JSON/TOML-able; ``from_mapping`` of it gives an equal budget.

        Latency limits are written as ``"<n>ns"`` strings so they round-trip exactly.
        """
        out: dict[str, Any] = {k: LIMITS[k].config(v) for k, v in self._limits.items()}
        for k, f in (("function", self.function), ("model", self.model)):
            if f is not None:
                out[k] = f if isinstance(f, str) else list(f)
        if self.allow_unknown_tokens:
            out["allow_unknown_tokens"] = True
        if self.name is not None:
            out["name"] = self.name
        return out

    def matches(self, function_name: str, model: str | None) -> bool:
        """Whether a call of ``function_name`` on ``model`` is in this budget's scope."""
        return matches_filter(function_name, self.function) and matches_filter(model, self.model)

    @property
    def label(self) -> str:
        """How messages name this budget: name, filters and source."""
        parts = []
        if self.function is not None:
            parts.append(f"function={self.function!r}")
        if self.model is not None:
            parts.append(f"model={self.model!r}")
        filters = f"[{', '.join(parts)}]" if parts else "[all calls]"
        head = f"budget {self.name!r} {filters}" if self.name else f"budget {filters}"
        return f"{head} from {self.source}" if self.source else head

    def __repr__(self) -> str:
        args = [
            f"{k}={LIMITS[k].shown(self._limits[k])!r}" if k in LIMITS else f"{k}={v!r}"
            for k, v in self.to_mapping().items()
        ]
        if self.source is not None:
            args.append(f"source={self.source!r}")
        return f"Budget({', '.join(args)})"


def _rebuild(mapping: dict[str, Any], source: str | None, origin: BudgetOrigin | None) -> Budget:
    return Budget.from_mapping(mapping, source=None if origin else source, origin=origin)


def budget_from_marker(mark: Any, *, source: str | None = None) -> Budget:
    """A :class:`Budget` from a ``baml_budget`` marker (any object with ``args``/``kwargs``).

    Positional arguments are refused (``TypeError`` naming them): every key is a keyword.
    """
    args = tuple(getattr(mark, "args", ()))
    kwargs = dict(getattr(mark, "kwargs", {}))
    if args:
        raise TypeError(
            f"baml_budget takes keyword arguments only, got positional {', '.join(map(repr, args))}; "
            f"valid keys are {', '.join(BUDGET_KEYS)}"
        )
    return Budget.from_mapping(kwargs, source=source)


def load_budgets(path: StrPath) -> list[Budget]:
    """Load a ``--baml-budgets`` TOML file: a list of ``[[budget]]`` tables.

    Each budget's ``origin`` is ``BudgetOrigin(<file>, <n>)`` (1-based) and its ``source``
    ``"<file> [[budget]] #<n>"``. Every problem raises :class:`BudgetConfigError` naming
    the file and the table number.
    """
    p, data = load_toml(path, "budget file")
    where = f"budget file {str(p)!r}"
    unknown = [k for k in data if k != "budget"]
    if unknown:
        raise BudgetConfigError(f"{where}: unknown top-level key {unknown[0]!r}; expected only [[budget]] tables")
    tables = data.get("budget")
    if tables is None:
        raise BudgetConfigError(f"{where}: defines no [[budget]] tables")
    if not isinstance(tables, list):
        raise BudgetConfigError(
            f"{where}: 'budget' is a {type(tables).__name__}; expected a list of [[budget]] tables"
        )
    if not tables:
        raise BudgetConfigError(f"{where}: defines no [[budget]] tables")
    budgets = []
    for i, table in enumerate(tables, 1):
        try:
            budgets.append(Budget.from_mapping(table, origin=BudgetOrigin(str(p), i)))
        except (TypeError, ValueError) as e:
            raise BudgetConfigError(f"{where}, [[budget]] #{i}: {e}") from e
    return budgets
