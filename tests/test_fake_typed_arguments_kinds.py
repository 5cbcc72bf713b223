"""Argument checks for every kind of parameter, against the real runtime (issue 13).

``tests/baml_src_typed_arguments`` declares a function taking a class (with a nested class,
a list of them and an optional field), a map, an int, a float, a union, an enum, a literal
union and an optional list. For each value below the real generated client (baml-py 0.226.3,
base_url unreachable) either raises ``BamlInvalidArgumentError`` — and the fake must raise
the same message (exactly; for unions, whose runtime message prints baml's internal type
tree, the same text around it) — or goes on to the network (``BamlClientHttpError``) — and
the fake must accept the arguments.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from baml_py.errors import BamlClientHttpError, BamlInvalidArgumentError

from pytest_baml_telemetry import FakeBamlClient

SRC = Path(__file__).parent / "baml_src_typed_arguments"
UNION = re.compile(r"Expected one of .*?, got `")
INNER = {"n": 1, "f": 1.5, "flag": True}
GOOD = {"o": {"name": "x", "inner": INNER, "inners": []}, "m": {"a": 1}, "n": 1, "f": 1.0, "u": 1, "p": "LOW", "lit": "a", "ol": None}

CASES = {
    "good": {},
    "an int for a float": {"f": 1},
    "the int bounds": {"n": -(2**63)},
    "u64 max": {"n": 2**64 - 1},
    "a u64 shown as the i64 the runtime reads": {"o": {"name": 2**63, "inner": INNER, "inners": []}},
    "a str for the union": {"u": "x"},
    "an extra field": {"o": {"name": "x", "inner": INNER, "inners": [], "extra": 1}},
    "an optional list of classes": {"ol": [{"name": "y", "inner": INNER, "inners": [INNER]}]},
    "a float for an int": {"n": 1.5},
    "a str for an int": {"n": "1"},
    "a bool for an int": {"n": True},
    "a bool for a float": {"f": True},
    "a float past u64": {"n": 2**64},
    "nan": {"n": float("nan")},
    "floats as JSON numbers": {"o": {"name": [1e-5, 6.103515625e-05, 1e15, 1e16, 1e-7, -0.0, 3.0], "inner": INNER, "inners": []}},
    "an unknown enum value": {"p": "X"},
    "a number for an enum": {"p": 1},
    "a bad map value": {"m": {"a": "x"}},
    "a list for a map": {"m": ["a"]},
    "a non-str map key": {"m": {1: 1}},
    "a missing field": {"o": {"inner": INNER, "inners": []}},
    "a wrong field": {"o": {"name": 1, "inner": INNER, "inners": []}},
    "a nested wrong field": {"o": {"name": "x", "inner": {**INNER, "n": "s"}, "inners": []}},
    "a wrong field in a list": {"o": {"name": "x", "inner": INNER, "inners": [{**INNER, "flag": 1}]}},
    "two wrong fields": {"o": {"name": 1, "inner": INNER, "inners": 3}},  # listed in no fixed order by the runtime
    "wrong fields at two levels": {"o": {"name": 1, "inner": {"n": "s", "f": "x", "flag": 1}, "inners": 3, "note": 2}},
    "a str for a class": {"o": "x"},
    "another class": {"o": {"n": 1, "f": 1.5, "flag": True}},
    "several wrong": {"n": "1", "f": "2", "p": "nope"},
}
UNION_CASES = {
    "a float for the union": ({"u": 1.5}, "u", "Number(1.5)"),
    "a literal outside": ({"lit": "c"}, "lit", 'String("c")'),
    "a str in the optional list": ({"ol": ["x"]}, "ol", 'Array [\n    String("x"),\n]'),
    "a wrong optional field": ({"o": {"name": "x", "inner": INNER, "inners": [], "note": 1}}, "o", "Number(1)"),
}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(SRC, tmp_path_factory.mktemp("typed_arguments")))


def arguments(change):
    return {**GOOD, **change}


def real_outcome(b, args):
    try:
        b.TakeThings(**args)
    except BamlInvalidArgumentError as exc:
        return exc
    except BamlClientHttpError:  # passed the argument check; refused at the unreachable base_url
        return None
    raise AssertionError("the real call returned")  # pragma: no cover


@pytest.mark.parametrize("case", list(CASES))
def test_the_fake_checks_each_kind_as_the_runtime_does(kinds, case):
    args = arguments(CASES[case])
    real = real_outcome(kinds.b, args)
    fake = FakeBamlClient(spec=kinds.b)
    fake.respond("TakeThings", "ok")
    if real is None:
        assert fake.TakeThings(**args) == "ok"
    else:
        with pytest.raises(BamlInvalidArgumentError) as got:
            fake.TakeThings(**args)
        assert same_errors(str(got.value), str(real))
        assert fake.unused() != []


def same_errors(fake: str, real: str) -> bool:
    """The same message; where the runtime lists a class's field errors in no fixed order
    (a Rust HashMap), the same lines, the top class's ``Missing required field`` ones in order."""
    if fake == real:
        return True
    fake, real = (UNION.sub("Expected one of <union>, got `", m) for m in (fake, real))  # see the union test
    prefix = "Invalid argument: "
    if not (fake.startswith(prefix) and real.startswith(prefix)):
        return False
    lines = [m[len(prefix):].splitlines() for m in (fake, real)]
    # each class lists its own missing fields in declaration order, after its field errors;
    # where nested classes' blocks land among the outer fields varies like the rest
    missing = [[line for line in ls if "Missing required field" in line and line.endswith("class Outer")] for ls in lines]
    return sorted(lines[0]) == sorted(lines[1]) and missing[0] == missing[1]


@pytest.mark.parametrize("case", list(UNION_CASES))
def test_a_union_message_keeps_the_runtimes_shape(kinds, case):
    change, param, shown = UNION_CASES[case]
    real = real_outcome(kinds.b, arguments(change))
    assert real is not None
    fake = FakeBamlClient(spec=kinds.b)
    with pytest.raises(BamlInvalidArgumentError) as got:
        fake.TakeThings(**arguments(change))
    pattern = re.escape(f"Invalid argument:   Error: {param}: Expected one of ") + ".+" + re.escape(f", got `{shown}`\n")
    assert re.fullmatch(pattern, str(real), re.DOTALL), str(real)
    assert re.fullmatch(pattern, str(got.value), re.DOTALL), str(got.value)


def test_a_model_instance_is_accepted_for_its_class(kinds):
    types = kinds.types
    fake = FakeBamlClient(spec=kinds.b)
    fake.respond("TakeThings", "ok")
    outer = types.Outer(name="x", inner=types.Inner(**INNER), inners=[])
    assert fake.TakeThings(**arguments({"o": outer, "p": types.Level.HIGH})) == "ok"
    with pytest.raises(BamlInvalidArgumentError, match="Missing required field `name` for class Outer"):
        fake.TakeThings(**arguments({"o": types.Inner(**INNER)}))  # another class: its fields are read


def test_the_runtime_order_of_one_class_field_errors_is_not_fixed_but_the_fake_s_is(kinds):
    """Why ``same_errors`` sorts: several runs of the real call disagree on the order (or, if the
    runtime ever fixes it, agree, and the fake's declaration order must then match it)."""
    args = arguments(CASES["wrong fields at two levels"])
    real = {str(real_outcome(kinds.b, args)) for _ in range(12)}
    fake = FakeBamlClient(spec=kinds.b)
    seen = set()
    for _ in range(3):
        with pytest.raises(BamlInvalidArgumentError) as got:
            fake.TakeThings(**args)
        seen.add(str(got.value))
    assert len(seen) == 1
    (message,) = seen
    assert all(same_errors(message, r) for r in real)
    if len(real) == 1:
        assert real == seen
    assert message.index("`n` for class Inner") < message.index("`name` for class Outer")  # nested class first


# ---------------------------------------------------------------------------- drawn values, checked against the runtime

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TEXT = st.text(st.sampled_from('ab "\\\n\té1'), max_size=4)
SCALAR = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.sampled_from([1.5, -0.0, 1e16, 1e-7, 0.0001, 1e-5, 6.103515625e-05, 1e15, 2.5e300]) | st.floats(allow_nan=False), TEXT,
)
ANY = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=6)
INNER_ISH = st.fixed_dictionaries({"n": st.integers(-3, 3) | ANY, "f": st.floats(-2, 2) | ANY, "flag": st.booleans() | ANY})
OUTER_ISH = st.fixed_dictionaries(
    {"name": TEXT | ANY, "inner": INNER_ISH | ANY, "inners": st.lists(INNER_ISH, max_size=2) | ANY},
    optional={"note": TEXT | st.none() | ANY},
)
DRAWN = {
    "o": OUTER_ISH,
    "m": st.dictionaries(TEXT, st.integers(-3, 3), max_size=2) | ANY,
    "n": st.integers(-(2**64), 2**65) | ANY,
    "f": st.floats(allow_nan=False, allow_infinity=False, width=32) | ANY,
    "u": st.integers(0, 3) | TEXT | ANY,
    "p": st.sampled_from(["LOW", "HIGH", "MID"]) | ANY,
    "lit": st.sampled_from(["a", "b", "c"]) | ANY,
    "ol": st.none() | st.lists(OUTER_ISH, max_size=1) | ANY,
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(sorted(DRAWN)), st.none(), max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: DRAWN[k] for k in keys})
))
def test_drawn_arguments_are_accepted_or_refused_as_the_runtime_does(kinds, change):
    args = arguments(change)
    real = real_outcome(kinds.b, args)
    fake = FakeBamlClient(spec=kinds.b)
    fake.respond("TakeThings", "ok")
    try:
        fake.TakeThings(**args)
        got = None
    except BamlInvalidArgumentError as exc:
        got = exc
    if real is None:
        assert got is None, str(got)
    else:
        assert got is not None, str(real)
        assert same_errors(str(got), str(real)), (str(got), str(real))


@pytest.mark.parametrize("value", [-(2**63) - 1, 2**64, 2**70, -(2**70)])
@pytest.mark.parametrize("where", ["f", "inner"])
def test_an_int_outside_i64_in_a_float_field_is_accepted_as_the_runtime_does(kinds, value, where):
    """Found by the drawn test: such an int reaches the runtime as a float, which fits a float."""
    change = {"f": value} if where == "f" else {"o": {**GOOD["o"], "inner": {"n": 0, "f": value, "flag": False}}}
    args = arguments(change)
    assert real_outcome(kinds.b, args) is None
    fake = FakeBamlClient(spec=kinds.b)
    fake.respond("TakeThings", "ok")
    assert fake.TakeThings(**args) == "ok"
