"""The generated client's types, for a fake built with ``spec=``: results, partials, arguments.

:class:`FunctionTypes` reads each function's real annotations (``typing.get_type_hints`` on
the generated ``b.X`` and ``b.stream.X``) the first time they are needed, so a fake that
never scripts or calls a function pays nothing for it:

- results: ``respond(fn, value)`` validates ``value`` with a pydantic ``TypeAdapter`` of the
  declared return type (a dict becomes ``types.Person``, ``"LOW"`` becomes ``Priority.LOW``);
  a value already of that type is kept as it is. A wrong shape raises ``TypeError`` naming
  the function, the declared type and each bad field path (pydantic's ``loc``);
- partials: validated the same way against the stream type, the first type argument of
  ``b.stream.X``'s ``BamlSyncStream[stream_types.X, types.X]`` (or ``BamlStream[...]``);
- arguments: each call's bound arguments are checked as baml-py 0.226.3's runtime checks
  them before any HTTP request, by a checker compiled once per function; a bad one gives
  the runtime's ``BamlInvalidArgumentError`` message (``"Invalid argument: "`` then one
  ``"  Error: <param>: <detail>\\n"`` per problem, the value shown as the runtime's Rust
  ``Debug`` form, e.g. ``String("a")``, ``Number(3)``, ``Array [...]``). Details match the
  runtime for strings, ints, floats, bools, lists, maps, enums and classes (a class's field
  errors first, then ``Missing required field`` in declaration order, also for a required
  field whose own value had the wrong type; the runtime lists several field errors of one
  class in no fixed order, the fake in declaration order); for unions and optionals the
  runtime prints its internal type tree, which is shown here as a readable
  ``(int | null)``. A value the runtime cannot convert (a tuple, bytes, an arbitrary
  object, a dict with a non-str key) is ``Missing required parameter: <param>``.

:func:`spec_is_async` tells an async generated client (coroutine methods) from a sync one.

Rules: nothing here runs unless a spec has annotations; the argument check is one compiled
closure per parameter on the call path; nothing imports pydantic before a result is coerced.
"""

from __future__ import annotations

import enum
import inspect
import math
import re
import types
import typing
from collections.abc import Callable
from typing import Any

from .._validate import short_repr
from ..instrument import is_instrumented

__all__ = ["FunctionTypes", "baml_debug", "spec_is_async", "type_label"]

Check = Callable[[Any], "list[str] | None"]
"""A compiled argument check: ``None`` when the value is fine, else the runtime's details."""

_I64_MIN, _U64_MAX = -(2**63), 2**64 - 1


def spec_is_async(spec: Any) -> bool:
    """Whether ``spec`` (a generated client ``b``, its class or module, or ``instrument(b)``)
    is async: its public functions are coroutine functions. Never raises."""
    try:
        if is_instrumented(spec):
            spec = spec.__wrapped__
        if isinstance(spec, types.ModuleType):
            if hasattr(spec, "b"):
                spec = spec.b
            else:
                functions = [
                    obj for name, obj in vars(spec).items()
                    if not name.startswith("_") and inspect.isfunction(obj)
                    and getattr(obj, "__module__", None) == spec.__name__
                ]
                return bool(functions) and all(inspect.iscoroutinefunction(fn) for fn in functions)
        cls = spec if isinstance(spec, type) else type(spec)
        methods = [
            attr for klass in cls.__mro__ if klass is not object
            for name, attr in vars(klass).items()
            if not name.startswith("_") and name != "with_options" and inspect.isfunction(attr)
        ]
        return bool(methods) and any(inspect.iscoroutinefunction(fn) for fn in methods)
    except Exception:  # a spec ClientSpec will refuse with its own message
        return False


# ---------------------------------------------------------------------------- labels


def type_label(hint: Any) -> str:
    """A short readable name of a type: ``types.Person``, ``list[str]``, ``int | None``."""
    if hint is type(None) or hint is None:
        return "None"
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(type_label(a) for a in typing.get_args(hint))
    if origin is typing.Literal:
        return f"Literal[{', '.join(map(repr, typing.get_args(hint)))}]"
    if origin is not None:
        args = ", ".join(type_label(a) for a in typing.get_args(hint))
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{args}]"
    if isinstance(hint, type):
        module = hint.__module__
        if module == "builtins":
            return hint.__qualname__
        return f"{module.rsplit('.', 1)[-1]}.{hint.__qualname__}"
    return str(hint).replace("typing.", "")


def _pydantic_problems(exc: Any) -> str:
    """``path: message (got value)`` for each error of a pydantic ``ValidationError``."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = error.get("loc") or ()
        path = ""
        for item in loc:
            path += f"[{item}]" if isinstance(item, int) else (f".{item}" if path else str(item))
        where = path or "(the value)"
        got = "" if error.get("type") == "missing" else f" (got {short_repr(error.get('input'), 60)})"
        parts.append(f"{where}: {error.get('msg')}{got}")
    return "; ".join(parts)


# ---------------------------------------------------------------------------- per function


class FunctionTypes:
    """The annotations of a generated client's functions, read and compiled on first use.

    ``call_target`` has the functions as methods (``b`` or its class), ``stream_target`` is
    ``b.stream`` (or its class; ``None``: unknown, partials are not checked).
    """

    def __init__(self, call_target: Any, stream_target: Any) -> None:
        self._call_cls = call_target if isinstance(call_target, type) else type(call_target)
        self._stream_cls = (
            None if stream_target is None else stream_target if isinstance(stream_target, type) else type(stream_target)
        )
        self._results: dict[str, tuple[Any, Any]] = {}  # name -> (hint, TypeAdapter | None)
        self._partials: dict[str, tuple[Any, Any]] = {}
        self._arguments: dict[str, Callable[[dict[str, Any]], str | None]] = {}

    @staticmethod
    def _hints(cls: type | None, name: str) -> dict[str, Any]:
        fn = None if cls is None else getattr(cls, name, None)
        if fn is None:
            return {}
        try:
            return typing.get_type_hints(fn)
        except Exception:  # an annotation that does not resolve: that function goes unchecked
            return {}

    def _adapter(self, cache: dict[str, tuple[Any, Any]], name: str, streaming: bool) -> tuple[Any, Any]:
        found = cache.get(name)
        if found is None:
            hint: Any = None
            if streaming:
                ret = self._hints(self._stream_cls, name).get("return")
                args = typing.get_args(ret) if ret is not None else ()
                hint = args[0] if len(args) == 2 else None
            else:
                hint = self._hints(self._call_cls, name).get("return")
            adapter = None
            if hint is not None and hint is not Any:
                from pydantic import TypeAdapter

                try:
                    adapter = TypeAdapter(hint)
                except Exception:  # a type pydantic cannot validate: left unchecked
                    adapter = None
            found = cache[name] = (hint, adapter)
        return found

    def coerce_result(self, function: str, value: Any, owner: str) -> Any:
        """``value`` as ``function``'s declared return type (``TypeError`` if it cannot be)."""
        hint, adapter = self._adapter(self._results, function, streaming=False)
        return _coerce(adapter, hint, value, f"{owner}: {short_repr(value, 80)} does not match {function}'s declared return type")

    def coerce_partials(self, function: str, values: tuple[Any, ...], owner: str) -> tuple[Any, ...]:
        """Each partial as ``function``'s stream type (``TypeError`` naming the first bad one)."""
        if not values:
            return values
        hint, adapter = self._adapter(self._partials, function, streaming=True)
        if adapter is None:
            return values
        return tuple(
            _coerce(adapter, hint, v, f"{owner}: partials[{i}] {short_repr(v, 80)} does not match {function}'s stream type")
            for i, v in enumerate(values)
        )

    def argument_check(self, function: str) -> Callable[[dict[str, Any]], str | None]:
        """The compiled check of ``function``'s arguments: ``None`` if they are fine, else
        the message of the runtime's ``BamlInvalidArgumentError``."""
        check = self._arguments.get(function)
        if check is None:
            hints = self._hints(self._call_cls, function)
            compiled: list[tuple[str, Check]] = []
            for param, hint in hints.items():
                if param in ("return", "baml_options"):
                    continue
                one = _compile(hint, {})
                if one is not None:
                    compiled.append((param, one))
            check = self._arguments[function] = _fast_check(hints, _arguments_check(tuple(compiled)))
        return check


def _coerce(adapter: Any, hint: Any, value: Any, message: str) -> Any:
    if adapter is None:
        return value
    if isinstance(hint, type) and isinstance(value, hint) and not (hint is int and isinstance(value, bool)):
        return value  # already the declared type: kept as it is (no copy)
    from pydantic import ValidationError

    try:
        validated = adapter.validate_python(value)
    except ValidationError as exc:
        problems = _pydantic_problems(exc)
        raise TypeError(f"{message} {type_label(hint)}: {problems}") from None
    try:
        if type(validated) is type(value) and validated == value:
            return value  # e.g. a list already of the declared items: the caller's own object
    except Exception:  # an __eq__ that raises: the validated copy is fine
        pass
    return validated


def _arguments_check(compiled: tuple[tuple[str, Check], ...]) -> Callable[[dict[str, Any]], str | None]:
    if not compiled:
        return lambda arguments: None

    def check(arguments: dict[str, Any]) -> str | None:
        problems = None
        for param, one in compiled:
            if param in arguments:
                found = one(arguments[param])
                if found is not None:
                    if not _convertible(arguments[param]):
                        found = [f"Missing required parameter: {param}"]
                    problems = (problems or []) + [f"  Error: {param}: {detail}\n" for detail in found]
        return None if problems is None else "Invalid argument: " + "".join(problems)

    return check


# ---------------------------------------------------------------------------- the call path


def _fast_check(hints: dict[str, Any], explain: Callable[[dict[str, Any]], str | None]) -> Callable[[dict[str, Any]], str | None]:
    """One function, generated from the declared types, that returns ``None`` when every
    argument fits (plain ``isinstance`` tests and loops, no call per value) and otherwise
    hands the arguments to ``explain`` for the runtime's message. Types it cannot spell out
    inline (enums of other kinds, classes, unions) call their compiled check."""
    consts: dict[str, Any] = {"_explain": explain, "_MIN": _I64_MIN, "_MAX": _U64_MAX}
    lines = ["def check(a):"]
    for param, hint in hints.items():
        if param in ("return", "baml_options") or not param.isidentifier():
            continue
        body = _inline(hint, "v", 2, consts, 0)
        if body is None:
            continue
        lines += [f"    if {param!r} in a:", f"        v = a[{param!r}]", *body]
    if len(lines) == 1:
        return lambda arguments: None
    lines.append("    return None")
    namespace = dict(consts)
    exec("\n".join(lines), namespace)  # noqa: S102 - our own source, built from type hints
    check: Callable[[dict[str, Any]], str | None] = namespace["check"]
    return check


def _inline(hint: Any, var: str, depth: int, consts: dict[str, Any], level: int) -> list[str] | None:
    """Source lines checking ``var`` against ``hint`` (``None``: ``hint`` is not checked)."""
    pad = "    " * depth
    fail = f"{pad}    return _explain(a)"
    if hint is str:
        return [f"{pad}if not isinstance({var}, str):", fail]
    if hint is bool:
        return [f"{pad}if {var} is not True and {var} is not False:", fail]
    if hint is int:
        return [f"{pad}if not isinstance({var}, int) or {var} is True or {var} is False or not _MIN <= {var} <= _MAX:", fail]
    if hint is float:
        return [
            f"{pad}if not isinstance({var}, float) and (not isinstance({var}, int) or {var} is True or {var} is False"
            f" or not _MIN <= {var} <= _MAX):",
            fail,
        ]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is list and len(args) == 1:
        item = f"x{level}"
        inner = _inline(args[0], item, depth + 1, consts, level + 1)
        lines = [f"{pad}if not isinstance({var}, list):", fail]
        return lines if inner is None else [*lines, f"{pad}for {item} in {var}:", *inner]
    if origin is dict and len(args) == 2:
        item, key = f"x{level}", f"k{level}"
        inner = _inline(args[1], item, depth + 1, consts, level + 1) or []
        return [
            f"{pad}if not isinstance({var}, dict):", fail, f"{pad}for {key}, {item} in {var}.items():",
            f"{pad}    if not isinstance({key}, str):", f"{pad}        return _explain(a)", *inner,
        ]
    if (origin is typing.Union or origin is types.UnionType) and len(args) == 2 and type(None) in args:
        other = args[0] if args[1] is type(None) else args[1]
        inner = _inline(other, var, depth + 1, consts, level)
        return None if inner is None else [f"{pad}if {var} is not None:", *inner]
    name = f"_c{len(consts)}"
    if isinstance(hint, type) and issubclass(hint, enum.Enum) and issubclass(hint, str):
        consts[name] = frozenset(str(m.value) for m in hint) | frozenset(hint)
        return [f"{pad}if not isinstance({var}, str) or {var} not in {name}:", fail]
    check = _compile(hint, {})
    if check is None:
        return None
    consts[name] = check
    return [f"{pad}if {name}({var}) is not None:", fail]


# ---------------------------------------------------------------------------- argument checks


def _compile(hint: Any, classes: dict[type, Any]) -> Check | None:
    """The check of one declared type (``None``: not checked, e.g. ``Any``)."""
    if hint is str:
        return lambda v: None if isinstance(v, str) else [f"Expected type String, got `{baml_debug(v)}`"]
    if hint is bool:
        return lambda v: None if v is True or v is False else [f"Expected type Bool, got `{baml_debug(v)}`"]
    if hint is int:
        return lambda v: None if _is_baml_int(v) else [f"Expected type Int, got `{baml_debug(v)}`"]
    if hint is float:
        # any int fits: one outside the i64/u64 range reaches the runtime as a float (measured)
        return lambda v: (
            None if isinstance(v, float) or (isinstance(v, int) and v is not True and v is not False)
            else [f"Expected type Float, got `{baml_debug(v)}`"]
        )
    if hint is type(None):
        return lambda v: None if v is None else [f"Expected type Null, got `{baml_debug(v)}`"]
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is list and len(args) == 1:
        item = _compile(args[0], classes)
        return _list_check(item)
    if origin is dict and len(args) == 2:
        return _map_check(_compile(args[1], classes))
    if origin is typing.Union or origin is types.UnionType:
        members = [_compile(a, classes) for a in args]
        if any(m is None for m in members):
            return None
        return _union_check(tuple(members), "(" + " | ".join(_baml_name(a) for a in args) + ")")  # type: ignore[arg-type]
    if origin is typing.Literal:
        allowed = tuple(args)
        label = "(" + " | ".join(_baml_name(typing.Literal[a]) for a in allowed) + ")"
        return lambda v: (
            None if any(type(v) is type(a) and v == a for a in allowed)
            else [f"Expected one of {label}, got `{baml_debug(v)}`"]
        )
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_check(hint)
    if isinstance(hint, type) and hasattr(hint, "model_fields"):
        return _class_check(hint, classes)
    return None


def _is_baml_int(v: Any) -> bool:
    return isinstance(v, int) and v is not True and v is not False and _I64_MIN <= v <= _U64_MAX


class _Nested(list[str]):
    """Problems found inside a field's value (in a class, or in a list's or map's items): the
    field is not also reported as missing (measured: the runtime adds ``Missing required
    field`` only for a field whose own value had the wrong type)."""


def _gather(problems: list[str] | None, found: list[str], prefix: str = "") -> list[str]:
    return _Nested([*(problems or ()), *(f"{prefix}{d}" for d in found)])


def _list_check(item: Check | None) -> Check:
    def check(v: Any) -> list[str] | None:
        if not isinstance(v, list):
            return [f"Expected array, got `{baml_debug(v)}`"]
        if item is None:
            return None
        problems = None
        for x in v:
            found = item(x)
            if found is not None:
                problems = _gather(problems, found)
        return problems

    return check


def _map_check(value_check: Check | None) -> Check:
    def check(v: Any) -> list[str] | None:
        if not isinstance(v, dict):
            return [f"Expected map, got `{baml_debug(v)}`"]
        problems = None
        for key, x in v.items():
            if not isinstance(key, str):
                return [f"Expected a str key, got {short_repr(key, 40)}"]  # shown as a missing parameter
            found = None if value_check is None else value_check(x)
            if found is not None:
                problems = _gather(problems, found, f"{key}: ")
        return problems

    return check


def _union_check(members: tuple[Check, ...], label: str) -> Check:
    def check(v: Any) -> list[str] | None:
        for member in members:
            if member(v) is None:
                return None
        return [f"Expected one of {label}, got `{baml_debug(v)}`"]

    return check


def _enum_check(cls: type[enum.Enum]) -> Check:
    values = frozenset(str(m.value) for m in cls)
    names = " | ".join(str(m.value) for m in cls)
    label = cls.__name__

    def check(v: Any) -> list[str] | None:
        if isinstance(v, str):
            if (v.value if isinstance(v, enum.Enum) else v) in values:
                return None
            return [f"Invalid enum {label}: expected one of ({names}), got `{v.value if isinstance(v, enum.Enum) else v}`"]
        if isinstance(v, cls):
            return None
        return [f"Invalid enum {label}: Got `{baml_debug(v)}`"]

    return check


def _class_check(cls: type, classes: dict[type, Any]) -> Check:
    """A generated class: its instance passes; a dict (or another model) is checked field by field."""
    if cls in classes:  # a recursive class: the check compiled (or being compiled) for it
        return lambda v: classes[cls](v)
    fields: list[tuple[str, Check | None, bool]] = []

    def check(v: Any) -> list[str] | None:
        if isinstance(v, cls):
            return None
        if hasattr(type(v), "model_fields") and not isinstance(v, dict):
            v = {name: getattr(v, name, None) for name in type(v).model_fields}
        if not isinstance(v, dict):
            return [f"Expected class {cls.__name__}, got `{baml_debug(v)}`"]
        wrong: list[str] = []
        missing: list[str] = []
        for name, field_check, required in fields:
            if name not in v:
                if required:
                    missing.append(name)
                continue
            found = None if field_check is None else field_check(v[name])
            if found is not None:
                wrong += found
                if required and not isinstance(found, _Nested):
                    missing.append(name)
        if not wrong and not missing:
            return None
        return _Nested(wrong + [f"Missing required field `{name}` for class {cls.__name__}" for name in missing])

    classes[cls] = check
    model_fields: Any = getattr(cls, "model_fields", {})
    for name, info in model_fields.items():
        key = getattr(info, "alias", None) or name
        fields.append((key, _compile(info.annotation, classes), bool(info.is_required())))
    return check


def _baml_name(hint: Any) -> str:
    """The runtime's name of a type in a union label (``int``, ``string``, ``null``, ...)."""
    simple = {str: "string", int: "int", float: "float", bool: "bool", type(None): "null"}
    if hint in simple:
        return simple[hint]
    if typing.get_origin(hint) is typing.Literal:
        return " | ".join(repr(a) if not isinstance(a, str) else f'"{a}"' for a in typing.get_args(hint))
    origin = typing.get_origin(hint)
    if origin is list:
        return f"{_baml_name(typing.get_args(hint)[0])}[]"
    if origin is dict:
        key, value = typing.get_args(hint)
        return f"map<{_baml_name(key)}, {_baml_name(value)}>"
    if origin is typing.Union or origin is types.UnionType:
        return " | ".join(_baml_name(a) for a in typing.get_args(hint))
    return getattr(hint, "__name__", str(hint))


# ---------------------------------------------------------------------------- values as the runtime shows them


def _convertible(v: Any) -> bool:
    """Whether baml-py's runtime can convert ``v`` to a BAML value (else it drops the argument)."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return True
    if isinstance(v, list):
        return all(_convertible(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _convertible(x) for k, x in v.items())
    if hasattr(type(v), "model_fields"):
        return all(_convertible(getattr(v, name, None)) for name in type(v).model_fields)
    if isinstance(v, enum.Enum):
        return _convertible(v.value)
    return type(v).__module__.startswith("baml_py")  # media (Image, Audio, ...)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _rust_str(s: str) -> str:
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    out = _CONTROL.sub(lambda m: "\\0" if m.group() == "\0" else f"\\u{{{ord(m.group()):x}}}", out)
    return f'"{out}"'


def _rust_float(x: float) -> str | None:
    """``x`` as the runtime prints a JSON number (serde_json, i.e. ryu: ``3.0``, ``0.00001``,
    ``1e-7``, ``1000000000000000.0``, ``1e16``); ``None`` for NaN and infinities (JSON has
    none: the runtime sees ``Null``)."""
    if math.isnan(x) or math.isinf(x):
        return None
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    mantissa, _, exp = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    frac = frac.rstrip("0")
    digits = (whole + frac).lstrip("0")
    k = int(exp or 0) - len(frac)  # x == int(digits) * 10**k
    trimmed = digits.rstrip("0")
    k += len(digits) - len(trimmed)
    digits = trimmed
    if not digits:
        return f"{sign}0.0"
    n = len(digits)
    kk = n + k
    if 0 <= k and kk <= 16:
        return f"{sign}{digits}{'0' * k}.0"
    if 0 < kk <= 16:
        return f"{sign}{digits[:kk]}.{digits[kk:]}"
    if -5 < kk <= 0:
        return f"{sign}0.{'0' * -kk}{digits}"
    if n == 1:
        return f"{sign}{digits}e{kk - 1}"
    return f"{sign}{digits[0]}.{digits[1:]}e{kk - 1}"


def baml_debug(v: Any, indent: int = 0) -> str:
    """``v`` as baml-py's runtime shows it in argument errors (Rust's pretty ``Debug``; the
    runtime's own key order is a hash map's, varying from run to run: here the dict's)."""
    pad = " " * indent
    if v is None:
        return "Null"
    if v is True or v is False:
        return "Bool(true)" if v else "Bool(false)"
    if isinstance(v, enum.Enum) and not isinstance(v, str):
        v = v.value
    if isinstance(v, str):
        return f"String({_rust_str(str(v))})"
    if isinstance(v, int):
        if _I64_MIN <= v <= _U64_MAX:  # the runtime reads 2**63 .. 2**64-1 as an i64: it wraps (measured)
            return f"Number({int(v) - 2**64 if v >= 2**63 else int(v)})"
        v = float(v)
    if isinstance(v, float):
        text = _rust_float(v)
        return "Null" if text is None else f"Number({text})"
    if hasattr(type(v), "model_fields") and not isinstance(v, dict):
        v = {name: getattr(v, name, None) for name in type(v).model_fields}
    if isinstance(v, dict):
        if not v:
            return "Object {}"
        inner = "".join(f"{pad}    {_rust_str(str(k))}: {baml_debug(x, indent + 4)},\n" for k, x in v.items())
        return f"Object {{\n{inner}{pad}}}"
    if isinstance(v, list):
        if not v:
            return "Array []"
        inner = "".join(f"{pad}    {baml_debug(x, indent + 4)},\n" for x in v)
        return f"Array [\n{inner}{pad}]"
    return short_repr(v, 80)
