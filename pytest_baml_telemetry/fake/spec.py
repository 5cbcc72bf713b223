"""Building the fake against a real generated client: its function names and signatures.

:class:`ClientSpec` reads the public methods of a generated baml-py client ``b`` (or its
class, or the ``baml_client`` module; ``b.stream``'s signatures where they differ), so a
fake built with ``spec=b`` refuses unknown functions with a "did you mean" hint and binds
each call's arguments as the real method would, with the same error text CPython gives
plus the real signature.

The spec also gives the fake its metadata defaults: each function's declared client, that
client's provider and model, read from the generated client's .baml sources by
:mod:`.sources`.

With a generated client (its .baml sources found; not a plain module of functions nor a
hand-written class) the spec also knows the
declared types (:mod:`.typing_spec`): ``coerce_result``/``coerce_partials`` validate what
``respond`` scripts, ``check_arguments`` checks each call's arguments as the runtime does,
and ``is_async`` tells an async client (``BamlAsyncClient``) from a sync one.

An instrumented client (``instrument(b)``) is read as the ``b`` it wraps.

Rules: only the spec's public functions are fakeable; ``baml_options`` is accepted where
the real method takes it and never part of the recorded arguments.
"""

from __future__ import annotations

import difflib
import inspect
import types
from collections.abc import Callable
from typing import Any

from ..instrument import is_instrumented
from .sources import DeclaredClient, baml_files, declared_clients
from .typing_spec import FunctionTypes, spec_is_async

__all__ = ["ClientSpec", "DeclaredClient", "declared_clients"]  # the last two re-exported from .sources


class ClientSpec:
    """The functions and signatures of a real generated client used as ``spec``."""

    clients: dict[str, DeclaredClient]
    function_clients: dict[str, str]
    is_async: bool
    """Whether the spec is an async client (its functions are coroutine functions)."""
    typed: FunctionTypes | None
    """The declared types (``None``: a plain module of functions or a class that is not a
    generated client (no .baml sources): nothing is type-checked)."""

    def __init__(self, spec: Any) -> None:
        self.source = spec
        if is_instrumented(spec):
            spec = spec.__wrapped__  # instrument(b): the fake follows the real b
        self.is_async = spec_is_async(spec)
        self.typed = None
        self._argument_checks: dict[str, Callable[[dict[str, Any]], str | None]] = {}
        files = baml_files(spec)
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
                self.check_arguments = _no_check  # type: ignore[method-assign]
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
        stream: Any = None
        if not isinstance(target, type):
            stream = getattr(target, "stream", None)
            if stream is not None and not callable(stream):
                for name, sig in self._methods(stream).items():
                    if name in self.signatures:
                        self.stream_signatures[name] = sig
            else:
                stream = None
        else:  # the class: its stream client is the generated module's BamlStreamClient
            stream = getattr(inspect.getmodule(target), "BamlStreamClient", None)
        if files is None:  # a hand-written stand-in: its annotations are not the generated types
            self.check_arguments = _no_check  # type: ignore[method-assign]
        else:
            self.typed = FunctionTypes(target, stream)

    def client_of(self, function: str, client: str | None) -> DeclaredClient | None:
        """The client a call of ``function`` uses: ``client`` if given (``None`` if the
        sources do not declare it), else the one the function declares."""
        if client is None:
            client = self.function_clients.get(function)
            if client is None:
                return None
        return self.clients.get(client)

    def coerce_result(self, function: str, value: Any, owner: str) -> Any:
        """``value`` validated against (and coerced into) ``function``'s declared return type:
        a dict becomes the generated class, a str the enum member; a value already of that
        type is returned as it is. A wrong shape (``None`` too, unless the type is optional)
        raises ``TypeError`` naming ``owner``, the function, the type and each bad field.
        Unchanged for a spec without types."""
        typed = self.typed
        return value if typed is None else typed.coerce_result(function, value, owner)

    def coerce_partials(self, function: str, values: tuple[Any, ...], owner: str) -> tuple[Any, ...]:
        """Stream partials validated against ``function``'s stream type (the first type
        argument of ``b.stream.X``'s ``BamlSyncStream[stream_types.X, types.X]``), as
        :meth:`coerce_result` does."""
        typed = self.typed
        return values if typed is None else typed.coerce_partials(function, values, owner)

    def check_arguments(self, function: str, arguments: dict[str, Any]) -> str | None:
        """``None`` if a call's bound ``arguments`` fit ``function``'s declared parameter
        types, else the message of the ``BamlInvalidArgumentError`` the real runtime raises
        (one compiled check per function, built on its first call)."""
        check = self._argument_checks.get(function)
        if check is None:
            check = self._argument_checks[function] = self.typed.argument_check(function)  # type: ignore[union-attr]
        return check(arguments)

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


def _no_check(function: str, arguments: dict[str, Any]) -> None:
    """A spec without types checks no argument."""
    return None
