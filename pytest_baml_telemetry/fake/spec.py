"""Building the fake against a real generated client: its function names and signatures.

:class:`ClientSpec` reads the public methods of a generated baml-py client ``b`` (or its
class, or the ``baml_client`` module; ``b.stream``'s signatures where they differ), so a
fake built with ``spec=b`` refuses unknown functions with a "did you mean" hint and binds
each call's arguments as the real method would, with the same error text CPython gives
plus the real signature.

The spec also gives the fake its metadata defaults: each function's declared client, that
client's provider and model. A generated ``baml_client`` carries its .baml sources
(``inlinedbaml.get_baml_files()``); baml-py's runtime validates them but exposes neither
its clients nor which client a function declares, so :func:`declared_clients` reads the
``client<llm> Name { provider ... options { model ... } }`` and ``function F(...) -> T {
client Name ... }`` blocks itself (comments and ``#"..."#`` prompts skipped). A
``fallback`` or ``round-robin`` client stands for the first client of its ``strategy``
(the one that answers when nothing fails); a shorthand ``client "openai/gpt-4o"`` is its
own provider and model; a model that is not a literal (``env.MODEL``) is unknown.

An instrumented client (``instrument(b)``) is read as the ``b`` it wraps.

Rules: only the spec's public functions are fakeable; ``baml_options`` is accepted where
the real method takes it and never part of the recorded arguments.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
import types
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..instrument import is_instrumented

__all__ = ["ClientSpec", "DeclaredClient", "declared_clients"]


class DeclaredClient(NamedTuple):
    """A ``client<llm>`` block of the spec's .baml sources: its name, provider and model
    (``None`` when not a literal, e.g. ``model env.MODEL``)."""

    name: str
    provider: str | None
    model: str | None


class ClientSpec:
    """The functions and signatures of a real generated client used as ``spec``."""

    clients: dict[str, DeclaredClient]
    function_clients: dict[str, str]

    def __init__(self, spec: Any) -> None:
        self.source = spec
        if is_instrumented(spec):
            spec = spec.__wrapped__  # instrument(b): the fake follows the real b
        files = _baml_files(spec)
        self.clients, self.function_clients = ({}, {}) if files is None else declared_clients(files)
        target = spec
        if isinstance(spec, types.ModuleType):
            if hasattr(spec, "b"):
                target = spec.b
                self.label = type(target).__qualname__
            else:
                self.label = spec.__name__
                functions = {
                    name: obj
                    for name, obj in vars(spec).items()
                    if not name.startswith("_")
                    and inspect.isfunction(obj)
                    and getattr(obj, "__module__", None) == spec.__name__
                }
                if not functions:
                    raise TypeError(
                        f"spec={spec!r}: the module has no client `b` and no public functions; expected a "
                        "generated baml_client module, its `b`, or the client class"
                    )
                self.signatures = {name: inspect.signature(fn) for name, fn in functions.items()}
                self.stream_signatures = dict(self.signatures)
                return
        elif isinstance(spec, type):
            self.label = spec.__qualname__
        else:
            self.label = type(spec).__qualname__
        self.signatures = self._methods(target)
        if not self.signatures:
            raise TypeError(
                f"spec={spec!r}: found no public methods to fake; expected a generated baml client (b), "
                "its class, or its module"
            )
        self.stream_signatures = dict(self.signatures)
        if not isinstance(target, type):
            stream = getattr(target, "stream", None)
            if stream is not None and not callable(stream):
                for name, sig in self._methods(stream).items():
                    if name in self.signatures:
                        self.stream_signatures[name] = sig

    def client_of(self, function: str, client: str | None) -> DeclaredClient | None:
        """The client a call of ``function`` uses: ``client`` if given (``None`` if the
        sources do not declare it), else the one the function declares."""
        if client is None:
            client = self.function_clients.get(function)
            if client is None:
                return None
        return self.clients.get(client)

    @staticmethod
    def _methods(target: Any) -> dict[str, inspect.Signature]:
        cls = target if isinstance(target, type) else type(target)
        found: dict[str, inspect.Signature] = {}
        for klass in reversed(cls.__mro__):
            if klass is object:
                continue
            for name, attr in vars(klass).items():
                if name.startswith("_") or name == "with_options":
                    continue
                func = attr.__func__ if isinstance(attr, (staticmethod, classmethod)) else attr
                if not inspect.isfunction(func):
                    found.pop(name, None)
                    continue
                if isinstance(target, type):
                    sig = inspect.signature(func)
                    if not isinstance(attr, staticmethod):
                        params = list(sig.parameters.values())[1:]
                        sig = sig.replace(parameters=params)
                else:
                    sig = inspect.signature(getattr(target, name))
                found[name] = sig
        return found

    def unknown(self, name: str) -> str:
        """The message for a function ``name`` the spec lacks, with close names."""
        close = difflib.get_close_matches(name, self.signatures, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        return (
            f"{self.label} has no BAML function {name!r}.{hint} "
            f"Its functions: {', '.join(sorted(self.signatures))}"
        )

    def bind(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], streaming: bool) -> dict[str, Any]:
        """A call's arguments by name, as the real method binds them (``TypeError`` if it would not)."""
        sig = (self.stream_signatures if streaming else self.signatures)[name]
        if "baml_options" not in sig.parameters:
            kwargs.pop("baml_options", None)
        try:
            params = sig.parameters
            if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
                for key in kwargs:  # reported first, as CPython does for a real call
                    if key not in params or params[key].kind is inspect.Parameter.POSITIONAL_ONLY:
                        raise TypeError(f"got an unexpected keyword argument {key!r}")
            bound = sig.bind(*args, **kwargs)
        except TypeError as exc:
            shown = sig.replace(
                parameters=[p for p in sig.parameters.values() if p.name != "baml_options"],
                return_annotation=inspect.Signature.empty,
            )
            where = f"{self.label}.stream.{name}" if streaming else f"{self.label}.{name}"
            raise TypeError(f"{name}() {exc}; the real {where} takes {shown}") from None
        bound.apply_defaults()
        arguments: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            if key == "baml_options":
                continue
            kind = sig.parameters[key].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                arguments.update(value)
            else:
                arguments[key] = value
        return arguments


# ---------------------------------------------------------------------------- the .baml sources


def _baml_files(spec: Any) -> Mapping[str, str] | None:
    """The .baml sources a generated client carries (``None``: not a generated client)."""
    if isinstance(spec, types.ModuleType):
        module = spec.__name__
    else:
        module = (spec if isinstance(spec, type) else type(spec)).__module__
    parts = module.split(".")
    for end in range(len(parts), 0, -1):  # the package holding inlinedbaml: baml_client, not baml_client.sync_client
        try:
            inlined = importlib.import_module(".".join(parts[:end]) + ".inlinedbaml")
        except Exception:  # noqa: BLE001 - not a generated package (or a broken one): no defaults
            continue
        files = getattr(inlined, "_file_map", None)
        get = getattr(inlined, "get_baml_files", None)
        if files is None and callable(get):
            files = get()
        return files if isinstance(files, Mapping) else None
    return None


_SKIPPED = re.compile(
    r'(?P<raw>(#+)"(?:.|\n)*?"\2)'  # a raw string #"..."# (prompts), any number of #
    r'|(?P<block>\{//.*?//\})'  # a block comment {// ... //}
    r'|(?P<line>//[^\n]*)'  # a line comment (// and ///)
    r'|(?P<quoted>"(?:[^"\\\n]|\\.)*")',  # a quoted string, kept
    re.DOTALL,
)
_CLIENT = re.compile(r"\bclient\s*<\s*llm\s*>\s*(\w+)\s*\{")
_FUNCTION = re.compile(r"\bfunction\s+(\w+)\s*\(")
_VALUE = r'(?:"((?:[^"\\]|\\.)*)"|([\w./:-]+))'


def _strip(source: str) -> str:
    """``source`` without comments, its raw strings emptied (their braces are prompt text)."""

    def keep(match: re.Match[str]) -> str:
        if match.group("quoted"):
            return match.group("quoted")
        return '""' if match.group("raw") else " "

    return _SKIPPED.sub(keep, source)


def _body(text: str, open_at: int) -> str:
    """The text between the brace at ``open_at`` and its matching closing brace."""
    depth = 0
    for i in range(open_at, len(text)):
        c = text[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1 : i]
    return text[open_at + 1 :]


def _top_level(body: str) -> str:
    """``body`` without its nested ``{...}`` blocks (their keys are not the block's own)."""
    out: list[str] = []
    depth = 0
    for c in body:
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def _field(body: str, key: str) -> str | None:
    """The literal value of ``key`` at the top level of a block (``None``: absent or not a literal)."""
    match = re.search(rf"(?:^|\s){key}\s+{_VALUE}", _top_level(body))
    if match is None:
        return None
    value = match.group(1) if match.group(1) is not None else match.group(2)
    return None if value.startswith("env.") else value


def _nested(body: str, key: str) -> str | None:
    """The body of the nested block ``key { ... }`` of a block."""
    depth = 0
    for match in re.finditer(rf"\b{key}\s*\{{|[{{}}]", body):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            return _body(body, match.end() - 1)
        else:
            depth += 1
    return None


def declared_clients(files: Mapping[str, str]) -> tuple[dict[str, DeclaredClient], dict[str, str]]:
    """The ``client<llm>`` blocks of ``files`` (name to :class:`DeclaredClient`, fallbacks
    resolved to their first client) and each function's declared client name."""
    raw: dict[str, tuple[str | None, str | None, list[str]]] = {}
    functions: dict[str, str] = {}
    for source in files.values():
        if not isinstance(source, str):
            continue
        text = _strip(source)
        for match in _CLIENT.finditer(text):
            body = _body(text, match.end() - 1)
            options = _nested(body, "options") or ""
            strategy = re.search(r"\bstrategy\s*\[([^\]]*)\]", _top_level(options))
            names = re.findall(_VALUE, strategy.group(1)) if strategy else []
            raw[match.group(1)] = (_field(body, "provider"), _field(options, "model"), [q or w for q, w in names])
        for match in _FUNCTION.finditer(text):
            brace = text.find("{", match.end())
            if brace < 0:
                continue
            client = _field(_body(text, brace), "client")
            if client is not None:
                functions[match.group(1)] = client

    def resolve(name: str, seen: frozenset[str]) -> DeclaredClient | None:
        if name in raw:
            provider, model, strategy = raw[name]
            if provider in ("fallback", "round-robin") and strategy and strategy[0] not in seen:
                return resolve(strategy[0], seen | {name})
            return DeclaredClient(name, provider, model)
        if "/" in name:  # shorthand: client "openai/gpt-4o"
            provider, _, model = name.partition("/")
            return DeclaredClient(name, provider, model)
        return None

    clients = {}
    for name in {*raw, *functions.values()}:
        found = resolve(name, frozenset())
        if found is not None:
            clients[name] = found
    return clients, functions
