"""Events a recorder could not record: :class:`NotRecorded`, counted, never raised.

A recorder (the session's or a test's :class:`~pytest_baml_telemetry.budgets.aggregate.Aggregator`
attached to the dispatcher) must never raise out of its handler: the dispatcher would
detach it and every later call would go unseen. An event it cannot record (a float
duration, no ``function_name``, a duration beyond the int64 range) is counted here
instead: how many, why (per reason) and the first one (its name, function, model, test
id and measurements only: no arguments or results). Budgets over an aggregator with
unrecorded events are *unverifiable*.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._validate import check_count, check_mapping, short_repr
from ..contract import format_event_name

__all__ = ["NotRecorded"]

_MAX_REASONS = 10
"""Distinct reasons kept; more are counted under :data:`_OTHER`."""
_OTHER = "other reasons"
_VALUE = re.compile(r"\(([A-Za-z_]\w*)=[^:]*\): expected")


def _plain(value: Any) -> Any:
    """A measurement as JSON can hold it: an int, a bool or None as is, anything else as its repr."""
    if value is None or type(value) in (int, bool):
        return value
    if type(value) is str:
        return value if len(value) <= 80 else value[:77] + "..."
    return short_repr(value, 80)


class NotRecorded:
    """The events a recorder could not record: ``count``, ``reasons`` (reason -> count), ``first``."""

    __slots__ = ("count", "reasons", "first")

    def __init__(self) -> None:
        self.count = 0
        self.reasons: dict[str, int] = {}
        self.first: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return self.count > 0

    def add(self, event_name: Any, measurements: Any, metadata: Any, exc: BaseException, test_id: str | None) -> None:
        """Count one event that raised ``exc`` when recorded (never raises)."""
        self.count += 1
        try:
            text = str(exc)
            reason = f"{type(exc).__name__}: {text if len(text) <= 300 else text[:297] + '...'}"
            # grouped without the value ("record(duration_ns=…): expected ..."); the first one shows it
            self._reason(_VALUE.sub(r"(\1=…): expected", reason, count=1), 1)
            if self.first is None:
                meta = metadata if isinstance(metadata, Mapping) else {}
                meas = measurements if isinstance(measurements, Mapping) else {}
                self.first = {
                    "event": _plain(format_event_name(event_name)),
                    "function": _plain(meta.get("function_name")),
                    "model": _plain(meta.get("model")),
                    "test_id": test_id,
                    "measurements": {str(k): _plain(v) for k, v in list(meas.items())[:12]},
                    "reason": reason,
                }
        except Exception:  # a hostile mapping or exception: still counted
            self._reason("an event that cannot be described", 1)

    def _reason(self, reason: str, n: int) -> None:
        if reason in self.reasons or len(self.reasons) < _MAX_REASONS:
            self.reasons[reason] = self.reasons.get(reason, 0) + n
        else:
            self.reasons[_OTHER] = self.reasons.get(_OTHER, 0) + n

    def describe(self) -> str:
        """One line: ``3 BAML call events could not be recorded (first: ...)``."""
        n = self.count
        text = f"{n} BAML call event{'' if n == 1 else 's'} could not be recorded"
        if self.first is not None:
            f = self.first
            where = f" in {f['test_id']}" if f.get("test_id") else ""
            text += f" (first: {f['event']} of {f['function']!s}{where}: {f['reason']})"
        return text

    def merge(self, other: NotRecorded) -> None:
        self.count += other.count
        for reason, n in other.reasons.items():
            self._reason(reason, n)
        if self.first is None:
            self.first = other.first

    def to_payload(self) -> dict[str, Any]:
        """The JSON form (the report's ``not_recorded`` and the xdist payload's)."""
        return {"count": self.count, "reasons": dict(self.reasons), "first": self.first}

    @classmethod
    def from_payload(cls, data: Any) -> NotRecorded:
        """Inverse of :meth:`to_payload` (``ValueError`` naming a bad field)."""
        out = cls()
        if data is None:
            return out
        check_mapping(data, f"not_recorded={short_repr(data)}")
        out.count = check_count(data.get("count", 0), f"not_recorded.count={short_repr(data.get('count'))}")
        reasons = data.get("reasons", {})
        check_mapping(reasons, f"not_recorded.reasons={short_repr(reasons)}")
        for reason, n in reasons.items():
            out._reason(str(reason), check_count(n, f"not_recorded.reasons[{reason!r}]={short_repr(n)}"))
        first = data.get("first")
        out.first = dict(first) if isinstance(first, Mapping) else None
        return out
