"""Value strategies: the pieces events and outcomes are made of.

Names (functions, models, prefixes, identifiers), span contexts, call arguments and
results (JSON-like values), token counts and usages, stack traces, exception reasons and
faults (from the one fault registry, ``fake.faults.FAULTS``: a new fault is drawn once it is there).
Each strategy the package re-exports can be called with no arguments; keywords narrow it
and are checked when the strategy is built. The other names here (``identifiers``,
``JSON_VALUES``, ``error_reasons``, ...) are building blocks for the package's other modules.
"""

from __future__ import annotations

import asyncio
import string
import traceback
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from .. import _validate
from ..contract import DEFAULT_PREFIX, EventName, StreamAbandoned, Usage
from ..fake.faults import FAULTS, Fault, FaultArgument
from ._validation import MAX_TOKENS, as_strategy, check_bool, check_count, checked, owner
from ._validation import usage as check_usage

__all__ = [
    "CLIENT_MODULES",
    "FAULT_NAMES",
    "FUNCTION_NAMES",
    "JSON_VALUES",
    "MODELS",
    "OPTIONAL_STR",
    "RESOURCES",
    "SimulatedInterrupt",
    "arguments",
    "error_reasons",
    "event_prefixes",
    "exception_reasons",
    "exit_reasons",
    "fault_values",
    "function_names",
    "identifiers",
    "models",
    "span_contexts",
    "stacktraces",
    "token_counts",
    "usage_option",
    "usages",
]

FUNCTION_NAMES = ("ExtractResume", "ClassifyTicket", "SummarizeThread", "AnswerQuestion", "TranslateText")
"""BAML function names :func:`function_names` prefers (it also draws other identifiers)."""

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash", "llama-3.1-8b-instruct")
"""Model names :func:`models` prefers (it also draws other names and ``None``)."""

_IDENT_FIRST = string.ascii_letters
_IDENT_REST = string.ascii_letters + string.digits + "_"


def identifiers(*, capitalized: bool = False, max_size: int = 16) -> SearchStrategy[str]:
    """ASCII identifiers of up to ``max_size`` characters (``capitalized``: starting upper-case)."""
    first = st.sampled_from(string.ascii_uppercase if capitalized else _IDENT_FIRST + "_")
    rest = st.text(alphabet=_IDENT_REST, max_size=max_size - 1)
    return st.builds(lambda a, b: a + b, first, rest)


def function_names() -> SearchStrategy[str]:
    """BAML function names: mostly :data:`FUNCTION_NAMES`, also other identifiers."""
    return st.one_of(st.sampled_from(FUNCTION_NAMES), identifiers(capitalized=True))


def models(*, allow_none: bool = True) -> SearchStrategy[str | None]:
    """Model names: mostly :data:`MODELS`, also other non-empty names and (``allow_none``) ``None``."""
    check_bool(allow_none, "models", "allow_none")
    names = st.one_of(st.sampled_from(MODELS), st.text(min_size=1, max_size=24))
    return st.one_of(st.none(), names) if allow_none else names


def event_prefixes() -> SearchStrategy[EventName]:
    """Event prefixes: ``("ash_baml",)`` or other tuples of 1-3 identifiers."""
    return st.one_of(
        st.just(DEFAULT_PREFIX),
        st.lists(identifiers(max_size=10), min_size=1, max_size=3).map(tuple),
    )


def span_contexts() -> SearchStrategy[Any]:
    """``telemetry_span_context`` values: hashable, never ``None`` (ints, strings, tuples)."""
    return st.one_of(
        st.integers(min_value=1, max_value=2**63 - 1),
        st.text(min_size=1, max_size=16),
        st.tuples(st.text(alphabet=string.hexdigits, min_size=1, max_size=8), st.integers(0, 2**32)),
    )


JSON_VALUES: SearchStrategy[Any] = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**53), max_value=2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=24),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=8), children, max_size=3),
    ),
    max_leaves=5,
)
"""JSON-like values (call arguments, results, handler configs)."""


def arguments() -> SearchStrategy[dict[str, Any]]:
    """A call's ``arguments``: a dict of argument names to JSON-like values."""
    return st.dictionaries(identifiers(max_size=12), JSON_VALUES, max_size=4)


RESOURCES = st.one_of(st.none(), st.text(min_size=1, max_size=16), st.sampled_from([dict, Usage, StreamAbandoned]))
OPTIONAL_STR = st.one_of(st.none(), st.text(max_size=16))
CLIENT_MODULES = st.one_of(st.none(), st.just("baml_client"), identifiers(max_size=16))
"""``resource``, ``action`` (and other optional strings) and ``client_module`` metadata values."""


def token_counts(*, max_tokens: int = 1_000_000, allow_unknown: bool = True) -> SearchStrategy[int | None]:
    """One token count: an int in ``0..max_tokens``, or (``allow_unknown``) ``None``."""
    check_count(max_tokens, "token_counts", "max_tokens", maximum=MAX_TOKENS)
    check_bool(allow_unknown, "token_counts", "allow_unknown")
    ints = st.integers(min_value=0, max_value=max_tokens)
    return st.one_of(st.none(), ints) if allow_unknown else ints


def usages(*, max_tokens: int = 1_000_000, allow_unknown: bool = True, cached: bool = True) -> SearchStrategy[Usage]:
    """:class:`~pytest_baml_telemetry.Usage` values.

    Each count is an int in ``0..max_tokens`` or, with ``allow_unknown`` (the default),
    ``None`` (unknown, as when a provider reports no usage). ``cached_input_tokens`` is
    ``None`` or an int, never more than ``input_tokens`` when both are known;
    ``cached=False`` always leaves it ``None``.
    """
    check_count(max_tokens, "usages", "max_tokens", maximum=MAX_TOKENS)
    check_bool(allow_unknown, "usages", "allow_unknown")
    check_bool(cached, "usages", "cached")
    counts = token_counts(max_tokens=max_tokens, allow_unknown=allow_unknown)

    @st.composite
    def draw_usage(draw: st.DrawFn) -> Usage:
        i = draw(counts, label="input_tokens")
        o = draw(counts, label="output_tokens")
        c = None
        if cached and draw(st.booleans(), label="has cached_input_tokens"):
            c = draw(st.integers(min_value=0, max_value=max_tokens if i is None else i), label="cached_input_tokens")
        return Usage(i, o, c)

    return draw_usage()


def usage_option(usage: Any, function: str) -> SearchStrategy[Usage | None]:
    """The ``usage=`` keyword of ``function``: a usage (checked now), a strategy, or ``None``
    for :func:`usages` or unknown."""
    return as_strategy(usage, st.one_of(st.none(), usages()), lambda v: check_usage(v, function))


def stacktraces() -> SearchStrategy[traceback.StackSummary]:
    """``traceback.StackSummary`` values of up to four frames."""
    frame = st.tuples(
        st.sampled_from(["app/service.py", "app/llm.py", "baml_client/sync_client.py", "<stdin>"]),
        st.integers(min_value=1, max_value=5000),
        identifiers(max_size=12),
        st.sampled_from(["return b.ExtractResume(text)", "raise error", "", "await stream.get_final_response()"]),
    )
    return st.lists(frame, max_size=4).map(traceback.StackSummary.from_list)


class SimulatedInterrupt(BaseException):
    """A ``BaseException`` that is not an ``Exception`` (like ``KeyboardInterrupt``), safe to
    raise anywhere, in threads and event loops: its call's exception event has kind ``"exit"``."""


FAULT_NAMES = tuple(name for name, kind in FAULTS.items() if kind.drawn)
"""The faults :func:`outcomes` draws: every fault of ``fake.faults.FAULTS`` but
``stream_failure``, which the ``"stream_failed"`` outcomes use to wrap them."""


def _argument_values(argument: FaultArgument) -> SearchStrategy[Any]:
    examples = st.sampled_from(argument.examples)
    return st.one_of(st.none(), examples) if argument.optional else examples


_FAULT_ARGUMENTS = {
    name: tuple((argument.name, _argument_values(argument)) for argument in FAULTS[name].arguments) for name in FAULT_NAMES
}


def fault_values(names: Sequence[str] = FAULT_NAMES) -> SearchStrategy[Fault]:
    """Faults of ``names`` (of :data:`FAULT_NAMES`), built with the example arguments ``FAULTS`` lists."""

    @st.composite
    def draw_fault(draw: st.DrawFn) -> Fault:
        name = draw(st.sampled_from(names), label="fault")
        return FAULTS[name](**{key: draw(values, label=key) for key, values in _FAULT_ARGUMENTS[name]})

    return draw_fault()


def error_reasons() -> SearchStrategy[BaseException]:
    """``Exception`` reasons: plain Python errors and real ``baml_py.errors`` ones (built from faults)."""
    plain = st.sampled_from([ValueError, RuntimeError, TimeoutError, ConnectionError, KeyError]).flatmap(
        lambda cls: st.text(max_size=20).map(cls)
    )
    # baml_py is imported only when such a reason is drawn; cancelled() builds a BaseException
    baml = fault_values().map(lambda fault: fault.build()).filter(lambda error: isinstance(error, Exception))
    return st.one_of(plain, baml)


def exit_reasons(function_name: str = "") -> SearchStrategy[BaseException]:
    """``BaseException`` reasons that are not ``Exception``: cancellation, interrupts, abandoned streams."""
    return st.one_of(
        st.builds(asyncio.CancelledError),
        st.builds(KeyboardInterrupt),
        st.builds(SystemExit, st.integers(0, 2)),
        st.builds(SimulatedInterrupt),
        st.just(function_name).map(StreamAbandoned),
    )


def exception_reasons(*, kind: str | None = None) -> SearchStrategy[tuple[str, BaseException]]:
    """``(kind, reason)`` pairs that agree: ``"error"`` with an ``Exception`` (plain Python
    errors and real ``baml_py.errors`` ones), ``"exit"`` with another ``BaseException``
    (cancellation, interrupts, :class:`~pytest_baml_telemetry.StreamAbandoned`)."""
    checked(_validate.check_choice, kind, (None, "error", "exit"), owner("exception_reasons", "kind", kind), expected="'error', 'exit' or None")
    error = error_reasons().map(lambda r: ("error", r))
    exit_ = exit_reasons().map(lambda r: ("exit", r))
    if kind == "error":
        return error
    if kind == "exit":
        return exit_
    return st.one_of(error, exit_)

