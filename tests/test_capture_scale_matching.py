"""The bulk matching a large capture relies on gives what the one-at-a-time rules give.

``select``/``flags``/``scores``/``best``/``leaders`` (matching) against ``matches``,
``value_matches``, ``score`` and ``closest``'s ranking; ``ends_begun_before`` against the
event-by-event walk it replaced; ``named_calls``/``call_values`` against ``pair_calls`` and
``CapturedCall.as_mapping``. Values cover plain literals (NaN among them), types,
predicates, nested mappings, values whose ``==`` raises, and missing keys.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_baml_telemetry.captured import (
    CALL_ATTRS,
    CallIndex,
    CapturedEvent,
    call_starts,
    call_values,
    ends_begun_before,
    ends_begun_before_of,
    event_kinds,
    named_calls,
    of_names,
    pair_call,
    pair_calls,
)
from pytest_baml_telemetry.contract import event_kind
from pytest_baml_telemetry.matching import (
    MISSING,
    best,
    closest,
    flags,
    leaders,
    matches,
    score,
    scores,
    select,
    value_matches,
)


class Raises:
    """An actual value whose ``==`` raises: a mismatch, never an error."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no comparing me")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "Raises()"


def is_two(value: Any) -> bool:
    return value == 2


KEYS = ["a", "b", "c"]
ACTUAL = st.sampled_from([0, 1, 2, 2.0, True, "x", None, math.nan, (1, 2), {"n": 1}, [1], Raises()])
EXPECTED = st.sampled_from([0, 1, 2, "x", None, math.nan, (1, 2), int, str, is_two, {"n": 1}, {"n": int}, True, 2.0])
MAPPINGS = st.dictionaries(st.sampled_from(KEYS), ACTUAL, max_size=3)
WANTED = st.one_of(st.none(), st.dictionaries(st.sampled_from(KEYS), EXPECTED, max_size=3))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.tuples(MAPPINGS, MAPPINGS), max_size=12), first=WANTED, second=WANTED)
def test_select_and_scores_agree_with_the_one_at_a_time_rules(rows: list[Any], first: Any, second: Any) -> None:
    candidates = [("name", m, md) for m, md in rows]
    picked = select(select(candidates, 1, first), 2, second)
    assert picked == [c for c in candidates if matches(first, c[1]) and matches(second, c[2])]
    assert all(p is c for p, c in zip(picked, [c for c in candidates if matches(first, c[1]) and matches(second, c[2])]))
    points = scores(candidates, [(1, first), (2, second)])
    assert points == [score(first, c[1]) + score(second, c[2]) for c in candidates]
    for limit in (1, 3, 20):
        ranked, _ = closest(candidates, lambda c: (("m", first, c[1]), ("md", second, c[2])), limit)
        assert [candidates[i] for i in best(points, limit)] == [c for c, _ in ranked]
        keys = len(first or ()) + len(second or ())
        assert leaders(candidates, [(1, first), (2, second)], limit, keys) == best(points, limit)


@settings(max_examples=200, deadline=None)
@given(want=EXPECTED, values=st.lists(st.one_of(ACTUAL, st.just(MISSING)), max_size=10))
def test_flags_is_value_matches_and_missing_never_matches(want: Any, values: list[Any]) -> None:
    assert flags(want, values) == [v is not MISSING and value_matches(want, v) for v in values]
    assert flags(want, iter(values)) == flags(want, values)


def test_nan_matches_itself_by_identity_as_before() -> None:
    nan = math.nan
    rows = [("e", {"v": nan}, {}), ("e", {"v": float("nan")}, {}), ("e", {"v": 1.0}, {})]
    assert select(rows, 1, {"v": nan}) == [rows[0]]
    assert scores(rows, [(1, {"v": nan})]) == [1, 0, 0]
    assert flags(nan, [nan, 1.0]) == [True, False]


def test_an_actual_value_whose_eq_raises_does_not_match_and_the_rest_still_do() -> None:
    rows = [("e", {"v": Raises()}, {}), ("e", {"v": "x"}, {}), ("e", {}, {})]
    assert select(rows, 1, {"v": "x"}) == [rows[1]]
    assert scores(rows, [(1, {"v": "x"})]) == [0, 1, 0]
    assert flags("x", [Raises(), "x"]) == [False, True]


def test_leaders_stops_scoring_once_enough_reach_the_ceiling_and_finds_a_late_best() -> None:
    seen: list[int] = []

    def spy(value: Any) -> bool:
        seen.append(value)
        return value % 2 == 0

    rows = [("e", {"k": i, "j": 0}, {}) for i in range(5000)]
    # ceiling 1 (two keys, none matches both): the first three even k are the leaders
    assert leaders(rows, [(1, {"k": spy, "j": 1})], 3, 1) == [0, 2, 4]
    assert len(seen) < len(rows)  # the rest could not rank higher: not scored
    # a better candidate late in the list is still found: nothing reaches the ceiling early
    late = [("e", {"k": 1, "j": 0}, {}) for _ in range(3000)] + [("e", {"k": 2, "j": 0}, {})]
    assert leaders(late, [(1, {"k": 2, "j": 1})], 3, 1) == [3000, 0, 1]


# --------------------------------------------------------------------------- ends begun before


def walk(events: list[Any]) -> frozenset[int]:
    """The event-by-event definition: an end with no start of its prefix and span before it."""
    started: set[Any] = set()
    found = []
    for i, ev in enumerate(events):
        kind = event_kind(ev[0])
        if kind not in ("start", "stop", "exception"):
            continue
        try:
            key = (ev[0][:-1], ev[2].get("telemetry_span_context"))
            if kind == "start":
                started.add(key)
            elif key not in started:
                found.append(i)
        except TypeError:
            continue
    return frozenset(found)


NAMES = [
    ("ash_baml", "call", "start"),
    ("ash_baml", "call", "stop"),
    ("ash_baml", "call", "exception"),
    ("my_app", "call", "start"),
    ("my_app", "call", "stop"),
    ("telemetry", "handler", "failure"),
    ("custom", "thing"),
]
SPANS = st.sampled_from([0, 1, 2, 1.0, True, "s", None])
EVENT = st.tuples(
    st.sampled_from(NAMES),
    st.just({}),
    st.fixed_dictionaries({"telemetry_span_context": SPANS, "function_name": st.sampled_from(["A", "B"])}),
)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(EVENT, max_size=30), unhashable=st.booleans())
def test_ends_begun_before_is_the_event_by_event_walk(events: list[Any], unhashable: bool) -> None:
    if unhashable and events:  # a contract violation: that end is left to the check, the others still counted
        events.insert(len(events) // 2, (NAMES[1], {}, {"telemetry_span_context": ["x"]}))
    assert ends_begun_before(events) == walk(events)
    assert ends_begun_before([CapturedEvent(*e) for e in events]) == walk(events)
    assert ends_begun_before_of(CallIndex(events)) == sorted(walk(events))
    for fn in ("A", "B"):  # only one function's: its ends and the starts of their spans looked at
        assert ends_begun_before_of(CallIndex(events), fn) == [i for i in sorted(walk(events)) if events[i][2].get("function_name") == fn]


def test_ends_begun_before_with_an_unhashable_name_skips_it() -> None:
    events = [(["not", "a", "tuple"], {}, {}), (NAMES[1], {}, {"telemetry_span_context": 1})]
    assert ends_begun_before(events) == frozenset({1})


# --------------------------------------------------------------------------- calls from plain tuples


def _start(prefix: str, fn: str, span: Any, **more: Any) -> Any:
    return ((prefix, "call", "start"), {"monotonic_time": 1}, {"function_name": fn, "telemetry_span_context": span, **more})


def _stop(prefix: str, fn: str, span: Any, **more: Any) -> Any:
    m = {"duration": 2_500_000, "input_tokens": 3, "output_tokens": 4, "total_tokens": 7, "time_to_first_chunk": 9}
    return ((prefix, "call", "stop"), m, {"function_name": fn, "telemetry_span_context": span, "model": "gpt", "result": [1], **more})


def _exception(prefix: str, fn: str, span: Any) -> Any:
    md = {"function_name": fn, "telemetry_span_context": span, "kind": "error", "reason": ValueError("bad")}
    return ((prefix, "call", "exception"), {"duration": 5}, md)


CALL_EVENTS = [
    _stop("ash_baml", "A", 9),  # an end before any start: pairs with a later start of span 9 (pair_calls' rule)
    _start("ash_baml", "A", 1, arguments={"x": 1}, streaming=True),
    _start("my_app", "A", 1),
    _start("ash_baml", "B", 2),
    _stop("my_app", "A", 1),
    _exception("ash_baml", "A", 1),
    _stop("ash_baml", "A", 1),  # a second end of span 1: the first one counts
    _start("ash_baml", "A", 3),  # still running
    _start("ash_baml", "A", 9),
    _stop("ash_baml", "B", 2),
    _start("ash_baml", "A", 4),
    _stop("ash_baml", "A", 4, model=None),
]


@pytest.mark.parametrize("function_name", ["A", "B", "Z"])
def test_named_calls_and_call_values_are_what_the_records_say(function_name: str) -> None:
    events = CALL_EVENTS
    triples = named_calls(CallIndex(events), function_name)
    expected = [c for c in pair_calls([CapturedEvent(*e) for e in events]) if c.function_name == function_name]
    made = [pair_call(CapturedEvent(*s), None if e is None else CapturedEvent(*e)) for s, e, _ in triples]
    assert made == expected
    for attr in CALL_ATTRS:
        assert call_values(attr, triples) == [c.as_mapping()[attr] for c in expected], attr
    if function_name == "A":
        assert [c.ok for c in made] == [False, True, None, True, True]  # exception first; span 9 takes the stop before it


def test_the_call_index_finds_starts_and_ends_per_prefix() -> None:
    index = CallIndex(CALL_EVENTS + [(("custom", "thing"), {}, {})])
    assert index.by_prefix == {("ash_baml", "call"): ([1, 3, 7, 8, 10], [0, 5, 6, 9, 11]), ("my_app", "call"): ([2], [4])}
    assert index.kinds[("custom", "thing")] is None and event_kinds(CALL_EVENTS) == {k: v for k, v in index.kinds.items() if k != ("custom", "thing")}
    assert call_starts(index) == [CALL_EVENTS[i] for i in (1, 2, 3, 7, 8, 10)]
    with pytest.raises(TypeError):
        CallIndex([(["unhashable"], {}, {})])


def test_of_names_takes_a_name_or_a_set_of_names() -> None:
    events = CALL_EVENTS
    stop = ("ash_baml", "call", "stop")
    assert of_names(events, stop) == [e for e in events if e[0] == stop]
    assert of_names(events, {stop, ("my_app", "call", "stop")}) == [e for e in events if e[0][-1] == "stop"]
    assert of_names(events, ("nothing",)) == []
