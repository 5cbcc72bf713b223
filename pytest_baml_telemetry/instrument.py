"""``instrument(b)``: telemetry for a real generated baml-py client.

``instrument(b)`` returns a proxy of a generated ``b`` (``baml_client.b`` or
``baml_client.async_client.b``) on which every BAML function call, every
``b.stream.X(...)`` stream and every ``with_options(...)`` derivative (and their
derivatives) emits the full call contract through an :class:`~.emitter.Emitter`.
Everything else (``b.request``, ``b.parse``, ``b.stream_request``, ``b.parse_stream``,
type builders, ...) is passed through to the original client untouched.

How the numbers are read. Each call gets a fresh ``baml_py.Collector`` *beside* the
collectors the user passes (when someone listens: see "Cost" below), and the stop (or
exception) event is filled from its log by :func:`~.collector_log.read_collector_log`:

* ``input_tokens``/``output_tokens``/``cached_input_tokens``: the log's usage, ``None``
  when the provider sent no usage (never a made-up 0);
* ``model``: the ``"model"`` of the selected attempt's HTTP request body (the model the
  request asked for); ``response_model`` (extra metadata): the model the provider said
  it served (``chatcmpl`` body or first SSE chunk), when there is one;
* ``provider``, ``client_name``: of the selected attempt (the last attempt on failure);
* ``num_attempts``: the number of HTTP attempts (``len(log.calls)``; retries count);
* ``request_id``: the provider's response id (e.g. ``"chatcmpl-..."``) when a response
  was served, else baml's own HTTP request id (``"breq_..."``).

Failures emit an exception event whose ``reason`` is the very exception baml-py raised
(``BamlClientHttpError``, ``BamlTimeoutError``, ``BamlValidationError``, ...), with the
attempts/model/provider/client name/request id read as far as they are known, and the
exception is re-raised unchanged. Its tokens follow the billing rule
(:func:`~.collector_log.bill_failure`): the Collector's usage when the provider answered
(a validation or finish-reason error, also after retries; ``response_model`` too), 0/0
for an HTTP status >= 400 or a refused connection (not billed), ``None`` for a timeout, a
cut stream, a malformed answer or an abort (billing unknown).

Collectors. baml-py merges options by dict update, so a per-call
``baml_options={"collector": c}`` *replaces* the collector given to ``with_options``.
The proxy keeps exactly that behaviour for the user's collectors and only adds its own:
per call it passes ``collector=[*the user's collectors, ours]`` where "the user's" are
the per-call ones when ``baml_options`` has a ``"collector"`` key, else those of
``with_options``. User collectors therefore receive exactly the logs they would have
received without instrumentation.

Idempotence. ``instrument`` never stacks: instrumenting an instrumented client
re-instruments the underlying original with the new arguments, so a call emits one
start and one stop/exception however often ``instrument`` was applied. The original
``b`` is never modified (two proxies of the same ``b`` each emit for their own calls);
``proxy.__wrapped__`` is the original.

Cost. When no handler is attached to the emitter's stop or exception event (among
the kinds it emits) at the time a call (or stream) begins, nobody could see what the
Collector holds: the call then gets no Collector of ours (its arguments and options go
to the generated function untouched) and only its start and stop (or exception) events
are emitted, without usage, model or extra metadata. A handler attached while such a
call is in flight therefore gets a stop event without them. Otherwise the log is read
once, attribute by attribute, and only for what is emitted: the request and response
bodies are scanned for their top-level ``"model"``/``"id"`` strings instead of being
parsed as JSON (see :func:`~.collector_log.top_level_strings`), usage is taken from baml's counts as
they are, and the arguments are bound by a small function compiled once per generated
function (so that binding is done by the interpreter). Once read, our collector is handed to
a background thread that frees it (:func:`~.collector_log.release_later`): freeing a log and
its bodies is then not on the call's path. Whether anyone listens is asked of the emitter's
dispatcher at each call (two ``handlers_for`` look-ups of names fixed when ``instrument()``
runs, since an emitter's events are).
"""

from __future__ import annotations

import inspect
import keyword
import logging
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from ._validate import fail, short_repr
from .collector_log import bill_failure, read_collector_log, release_later, top_level_strings
from .emitter import Call, Emitter

__all__ = ["instrument", "InstrumentedClient", "is_instrumented", "read_collector_log", "top_level_strings"]

logger = logging.getLogger("pytest_baml_telemetry")

T = TypeVar("T")

_COLLECTOR_NAME = "pytest_baml_telemetry"
_NOT_FUNCTIONS = frozenset({"with_options"})
_MISSING = object()


# --------------------------------------------------------------------------- introspection


class _FunctionSpec:
    """What is needed to call one generated BAML function: its parameters and sync-ness."""

    __slots__ = ("name", "signature", "is_async", "names", "name_set", "defaults", "simple", "binder")

    def __init__(self, name: str, function: Callable[..., Any]) -> None:
        self.name = name
        sig = inspect.signature(function)
        params = list(sig.parameters.values())[1:]  # drop self
        self.signature = sig.replace(parameters=params)
        self.is_async = inspect.iscoroutinefunction(function)
        self.names = tuple(p.name for p in params)
        self.name_set = frozenset(self.names)
        self.defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        # generated functions take plain (positional-or-keyword) parameters: bind them by hand
        self.simple = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        self.binder = _compile_binder(params) if self.simple else None

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """The call's arguments by name (defaults applied), or ``None`` when they do not fit."""
        names = self.names
        if not self.simple:
            try:
                bound = self.signature.bind(*args, **kwargs)
            except TypeError:
                return None
            bound.apply_defaults()
            return dict(bound.arguments)
        if len(args) > len(names):
            return None
        values = dict(zip(names, args))
        if kwargs:
            name_set = self.name_set
            for key, value in kwargs.items():
                if key not in name_set or key in values:
                    return None
                values[key] = value
        if len(values) < len(names):
            defaults = self.defaults
            for key in names:
                if key not in values:
                    if key not in defaults:
                        return None
                    values[key] = defaults[key]
        return values


def _compile_binder(params: list[inspect.Parameter]) -> Callable[..., tuple[dict[str, Any], Any]] | None:
    """A function with the generated function's parameters that returns ``(arguments, baml_options)``.

    ``arguments`` maps every parameter but ``baml_options`` to its value (defaults
    applied, in parameter order). Binding is then done by the interpreter itself; a call
    that does not fit raises ``TypeError`` (the wrapper then calls the generated function
    as it was called, so that the user sees its own error). ``None`` when the parameters
    cannot be expressed that way (no ``baml_options``, or names that are not plain
    identifiers).
    """
    names = [p.name for p in params]
    if "baml_options" not in names or not all(n.isidentifier() and not keyword.iskeyword(n) for n in names):
        return None
    entries = ", ".join(f"{n!r}: {n}" for n in names if n != "baml_options")
    source = f"def bind({', '.join(names)}):\n    return {{{entries}}}, baml_options\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, "<pytest_baml_telemetry binder>", "exec"), namespace)  # noqa: S102 - names checked above
    binder = namespace["bind"]
    defaults = tuple(p.default for p in params if p.default is not inspect.Parameter.empty)
    if defaults:
        binder.__defaults__ = defaults
    return binder


_specs_cache: dict[type, dict[str, _FunctionSpec]] = {}


def _function_specs(cls: type) -> dict[str, _FunctionSpec]:
    """The BAML functions of a generated client class (methods taking ``baml_options``)."""
    specs = _specs_cache.get(cls)
    if specs is not None:
        return specs
    specs = {}
    for klass in reversed(cls.__mro__[:-1]):
        for name, member in vars(klass).items():
            if name.startswith("_") or name in _NOT_FUNCTIONS or not inspect.isfunction(member):
                continue
            try:
                spec = _FunctionSpec(name, member)
            except (TypeError, ValueError):
                continue
            if "baml_options" in spec.signature.parameters:
                specs[name] = spec
    _specs_cache[cls] = specs
    return specs


def _option_dict(client: Any) -> Mapping[str, Any] | None:
    """The merged ``baml_options`` a generated (sub)client was built with, if readable.

    Generated classes keep a ``DoNotUseDirectlyCallManager`` in a name-mangled
    ``__options`` attribute, which keeps the dict in its own mangled ``__baml_options``.
    """
    try:
        state = vars(client)
    except TypeError:
        return None
    manager = state.get(f"_{type(client).__name__}__options", _MISSING)
    if manager is _MISSING:
        return None
    options = getattr(manager, f"_{type(manager).__name__}__baml_options", None)
    return options if isinstance(options, Mapping) else None


def _as_collector_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _read_collector(collector: Any, call: Call, error: BaseException | None = None) -> None:
    try:
        log = collector.last
        if log is not None:
            read_collector_log(log, call, error)
    except Exception as exc:  # reading telemetry must never break the user's call
        logger.error("reading the baml Collector for %s failed: %r", call.function_name, exc)


def _read_failure(collector: Any, call: Call, error: BaseException) -> None:
    """Read the log of a failed call, then apply the billing rule (:func:`~.collector_log.bill_failure`)."""
    _read_collector(collector, call, error)
    try:
        bill_failure(call, error)
    except Exception as exc:  # reading telemetry must never break the user's call
        logger.error("billing the failure of %s failed: %r", call.function_name, exc)


# --------------------------------------------------------------------------- settings


class _Settings:
    """What every proxy of one ``instrument()`` call shares.

    ``stop_name``/``exception_name`` are the emitter's stop and exception event names, or
    ``None`` when the emitter does not emit that kind (its events are fixed when it is
    built): whether a call is listened to is then at most two ``handlers_for`` look-ups.
    """

    __slots__ = ("emitter", "resource", "action", "client_module", "collector_type", "stop_name", "exception_name")

    def __init__(self, emitter: Emitter, resource: Any, action: str | None, client_module: str | None) -> None:
        import baml_py

        self.emitter = emitter
        self.resource = resource
        self.action = action
        self.client_module = client_module
        self.collector_type = baml_py.Collector
        events = emitter.events  # read-only once the emitter is built
        self.stop_name = emitter.stop_event if "stop" in events else None
        self.exception_name = emitter.exception_event if "exception" in events else None


def _listened(settings: _Settings) -> bool:
    """Whether a handler would receive the stop or exception event of a call beginning now."""
    handlers_for = settings.emitter.dispatcher.handlers_for
    stop, exception = settings.stop_name, settings.exception_name
    return bool((stop is not None and handlers_for(stop)) or (exception is not None and handlers_for(exception)))


def _arguments_of(bound: dict[str, Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if bound is None:
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **{k: v for k, v in kwargs.items() if k != "baml_options"}}
    arguments = dict(bound)
    arguments.pop("baml_options", None)
    return arguments


def _bind(spec: _FunctionSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``(arguments, baml_options)`` of a call; ``baml_options`` is ``_MISSING`` when the call
    is to go to the generated function unchanged (arguments that do not fit, unusual signature)."""
    binder = spec.binder
    if binder is not None:
        try:
            return binder(*args, **kwargs)
        except TypeError:
            return _arguments_of(None, args, kwargs), _MISSING
    return _arguments_of(spec.bind(args, kwargs), args, kwargs), _MISSING


def _with_our_collector(options: Any, base_collectors: list[Any], collector_type: Any) -> tuple[Any, Any]:
    """A fresh collector of ours and the call's ``baml_options`` carrying it beside the user's
    (``collector=[*user collectors, ours]``); ``(None, None)`` when ``options`` is not a mapping
    (the generated code then complains about it, unchanged)."""
    if options is None:
        collector = collector_type(_COLLECTOR_NAME)
        return collector, {"collector": [*base_collectors, collector]}
    if type(options) is not dict and not isinstance(options, Mapping):
        return None, None
    collector = collector_type(_COLLECTOR_NAME)
    theirs = _as_collector_list(options["collector"]) if "collector" in options else base_collectors
    return collector, {**options, "collector": [*theirs, collector]}


def _our_collector(
    settings: _Settings, options: Any, base_collectors: list[Any], collector_type: Any
) -> tuple[Any, Any]:
    """:func:`_with_our_collector` when a handler listens (:func:`_listened`) and the call's
    options were bound; ``(None, None)`` otherwise."""
    if options is _MISSING or not _listened(settings):
        return None, None
    return _with_our_collector(options, base_collectors, collector_type)


def _named(wrapper: Callable[..., Any], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    wrapper.__name__ = wrapper.__qualname__ = name
    wrapper.__doc__ = getattr(function, "__doc__", None)
    wrapper.__wrapped__ = function  # type: ignore[attr-defined]
    return wrapper


def _function_wrapper(
    settings: _Settings, spec: _FunctionSpec, function: Callable[..., Any], base_collectors: list[Any]
) -> Callable[..., Any]:
    """The instrumented twin of one generated function (sync or async, as it is).

    Per call: bind the arguments (the compiled binder), make the call object, ask whether
    anyone listens to its end (two dictionary look-ups), attach our collector only then, and
    read its last log once right after the call, before the end event is built.
    """
    name = spec.name
    emitter = settings.emitter
    resource, action, client_module = settings.resource, settings.action, settings.client_module
    collector_type = settings.collector_type

    def begin(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Call, dict[str, Any], Any, Any]:
        """The call object, its arguments, and our collector with the options carrying it (or Nones)."""
        arguments, options = _bind(spec, args, kwargs)
        call = Call(emitter, name, arguments, resource, action, client_module, False)
        if not call.sampled:
            return call, arguments, None, None
        collector, call_options = _our_collector(settings, options, base_collectors, collector_type)
        return call, arguments, collector, call_options

    if spec.is_async:

        async def async_call(*args: Any, **kwargs: Any) -> Any:
            call, arguments, collector, call_options = begin(args, kwargs)
            if not call.sampled:
                return await function(*args, **kwargs)
            async with call:
                if collector is None:
                    result = await function(*args, **kwargs)
                else:
                    try:
                        result = await function(**arguments, baml_options=call_options)
                    except BaseException as error:
                        _read_failure(collector, call, error)
                        raise
                    _read_collector(collector, call)
                    release_later(collector)
                call.result = result
            return result

        return _named(async_call, name, function)

    # the sync twin of async_call above (same steps without await): they cannot share a body
    def sync_call(*args: Any, **kwargs: Any) -> Any:
        call, arguments, collector, call_options = begin(args, kwargs)
        if not call.sampled:
            return function(*args, **kwargs)
        with call:
            if collector is None:
                result = function(*args, **kwargs)
            else:
                try:
                    result = function(**arguments, baml_options=call_options)
                except BaseException as error:
                    _read_failure(collector, call, error)
                    raise
                _read_collector(collector, call)
                release_later(collector)
            call.result = result
        return result

    return _named(sync_call, name, function)


def _stream_wrapper(
    settings: _Settings, spec: _FunctionSpec, function: Callable[..., Any], base_collectors: list[Any]
) -> Callable[..., Any]:
    name = spec.name
    emitter = settings.emitter
    resource, action, client_module = settings.resource, settings.action, settings.client_module
    collector_type = settings.collector_type

    def stream_call(*args: Any, **kwargs: Any) -> Any:
        arguments, options = _bind(spec, args, kwargs)
        collector, call_options = _our_collector(settings, options, base_collectors, collector_type)
        try:
            if collector is None:
                raw = function(*args, **kwargs)
            else:
                raw = function(**arguments, baml_options=call_options)
        except BaseException as error:
            # the stream could not even be created: still one start and one exception
            call = emitter.call(
                name, arguments=arguments, resource=resource, action=action, client_module=client_module, streaming=True
            )
            with call:
                if collector is not None:
                    _read_failure(collector, call, error)
                raise

        before_end = None
        if collector is not None:

            def before_end(call: Call, error: BaseException | None) -> None:
                if error is None:
                    _read_collector(collector, call)
                else:
                    _read_failure(collector, call, error)

        return emitter.stream(
            raw,
            name,
            arguments=arguments,
            resource=resource,
            action=action,
            client_module=client_module,
            before_end=before_end,
        )

    return _named(stream_call, name, function)


# --------------------------------------------------------------------------- proxies


class _Proxy:
    """Shared machinery: attribute passthrough, wrapped BAML functions cached per instance."""

    _pbt_wrapper_factory: Callable[..., Callable[..., Any]]

    def __init__(self, wrapped: Any, settings: _Settings, base_collectors: list[Any]) -> None:
        object.__setattr__(self, "__wrapped__", wrapped)
        object.__setattr__(self, "_pbt_settings", settings)
        object.__setattr__(self, "_pbt_collectors", base_collectors)
        object.__setattr__(self, "_pbt_specs", _function_specs(type(wrapped)))

    def __getattr__(self, name: str) -> Any:
        wrapped = object.__getattribute__(self, "__wrapped__")
        if name.startswith("_pbt_"):
            raise AttributeError(name)
        spec = self._pbt_specs.get(name)
        value = getattr(wrapped, name)
        if spec is None:
            return value
        wrapper = type(self)._pbt_wrapper_factory(self._pbt_settings, spec, value, self._pbt_collectors)
        object.__setattr__(self, name, wrapper)  # the next lookup is a plain attribute read
        return wrapper

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.__wrapped__, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.__wrapped__)))

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # isinstance(proxy, BamlSyncClient) stays true
        return type(self.__wrapped__)


class _InstrumentedStreamClient(_Proxy):
    """``b.stream`` of an instrumented client: each function returns an instrumented stream."""

    _pbt_wrapper_factory = staticmethod(_stream_wrapper)

    def __repr__(self) -> str:
        return f"<instrumented {type(self.__wrapped__).__name__} of {self._pbt_settings.client_module!r}>"


class InstrumentedClient(_Proxy):
    """A generated baml-py client whose calls, streams and derivatives emit telemetry.

    Built by :func:`instrument`. BAML functions (sync or async, as on the original),
    ``stream`` and ``with_options`` are instrumented; every other attribute is the
    original's. ``__wrapped__`` is the original client; ``isinstance`` checks against
    the generated client class still pass.
    """

    _pbt_wrapper_factory = staticmethod(_function_wrapper)

    @property
    def stream(self) -> _InstrumentedStreamClient:
        """``b.stream``: its functions return streams that emit start, then stop or exception."""
        cached = self.__dict__.get("_pbt_stream")
        if cached is None:
            cached = _InstrumentedStreamClient(self.__wrapped__.stream, self._pbt_settings, self._pbt_collectors)
            object.__setattr__(self, "_pbt_stream", cached)
        return cached

    def with_options(self, *args: Any, **kwargs: Any) -> InstrumentedClient:
        """``b.with_options(...)``, instrumented like this client."""
        derived = self.__wrapped__.with_options(*args, **kwargs)
        options = _option_dict(derived)
        if options is not None:
            collectors = _as_collector_list(options.get("collector"))
        elif "collector" in kwargs and kwargs["collector"] is not None:
            collectors = _as_collector_list(kwargs["collector"])
        else:
            collectors = self._pbt_collectors
        return InstrumentedClient(derived, self._pbt_settings, collectors)

    def __repr__(self) -> str:
        s = self._pbt_settings
        return (
            f"<instrumented {type(self.__wrapped__).__name__} of {s.client_module!r} "
            f"({len(self._pbt_specs)} functions, emitter={s.emitter!r})>"
        )


def is_instrumented(client: Any) -> bool:
    """Whether ``client`` is a proxy made by :func:`instrument`."""
    return type(client) is InstrumentedClient


def _check_client(client: Any) -> None:
    where = f"instrument({short_repr(client)})"
    if isinstance(client, types.ModuleType):
        hint = " (pass its `b`, e.g. baml_client.b or baml_client.async_client.b)" if hasattr(client, "b") else ""
        fail(TypeError, where, f"a generated baml-py client object, not a module{hint}")
    module = getattr(type(client), "__module__", "") or ""
    if module.startswith("pytest_baml_telemetry"):
        raise TypeError(
            f"{where}: this is a pytest-baml-telemetry fake, which emits telemetry already; "
            "instrument() is for a real generated client (baml_client.b)"
        )
    if not callable(getattr(client, "with_options", None)) or not hasattr(type(client), "stream"):
        fail(
            TypeError,
            f"{where}: {type(client).__name__} is not a generated baml-py client",
            "baml_client.b (sync) or baml_client.async_client.b (async), or a with_options(...) derivative",
        )
    if _option_dict(client) is None:
        warnings.warn(
            f"instrument(): cannot read the options of {type(client).__name__} (a baml-py version this "
            "module does not know?); collectors given to with_options() before instrument() will not "
            "receive logs: pass them after instrumenting, or per call",
            RuntimeWarning,
            stacklevel=3,
        )


def instrument(
    client: T,
    *,
    emitter: Emitter | None = None,
    resource: Any = None,
    action: str | None = None,
    client_module: str | None = None,
) -> T:
    """Return a proxy of a generated baml-py client that emits the call contract.

    ``client`` is ``baml_client.b``, ``baml_client.async_client.b`` or a
    ``with_options(...)`` derivative of either. ``emitter`` defaults to ``Emitter()``
    (the default dispatcher, prefix ``("ash_baml",)``). ``resource`` and ``action`` go
    into every event's metadata. ``client_module`` defaults to the generated package's
    module name (``"baml_client"``; also for a client imported by
    :func:`~.baml_gen.import_generated`).

    The proxy's BAML functions (``b.X(...)``), streams (``b.stream.X(...)``) and
    ``with_options(...)`` derivatives emit; everything else is the original's.
    Instrumenting a proxy again re-instruments the original (no double events).
    See the module documentation for what is read from baml-py's ``Collector``.
    """
    if isinstance(client, InstrumentedClient) or type(client) is InstrumentedClient:
        client = cast(Any, client).__wrapped__  # mypy keeps `client: T` here (no narrowing of a TypeVar)
    _check_client(client)
    if emitter is None:
        emitter = Emitter()
    elif not isinstance(emitter, Emitter):
        fail(TypeError, f"instrument(emitter={short_repr(emitter)})", "a pytest_baml_telemetry.Emitter or None")
    if action is not None and not isinstance(action, str):
        fail(TypeError, f"instrument(action={short_repr(action)})", "a str or None")
    if client_module is None:
        from .baml_gen import client_module_of

        client_module = client_module_of(client)
    elif not isinstance(client_module, str) or not client_module:
        fail(TypeError, f"instrument(client_module={short_repr(client_module)})", "a non-empty str or None")
    options = _option_dict(client) or {}
    settings = _Settings(emitter, resource, action, client_module)
    return InstrumentedClient(client, settings, _as_collector_list(options.get("collector")))  # type: ignore[return-value]
