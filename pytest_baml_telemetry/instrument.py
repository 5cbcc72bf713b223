"""``instrument(b)``: telemetry for a real generated baml-py client.

``instrument(b)`` returns a proxy of a generated ``b`` (``baml_client.b`` or
``baml_client.async_client.b``) on which every BAML function call, every
``b.stream.X(...)`` stream and every ``with_options(...)`` derivative (and their
derivatives) emits the full call contract through an :class:`~.emitter.Emitter`.
Everything else (``b.request``, ``b.parse``, ``b.stream_request``, ``b.parse_stream``,
type builders, ...) is passed through to the original client untouched.

How the numbers are read. Each call gets a fresh ``baml_py.Collector`` *beside* the
collectors the user passes, and the stop (or exception) event is filled from its log:

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
attempts/model/provider read as far as they are known, and the exception is re-raised
unchanged.

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
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from .emitter import Call, Emitter

__all__ = ["instrument", "InstrumentedClient", "is_instrumented", "read_collector_log", "top_level_strings"]

logger = logging.getLogger("pytest_baml_telemetry")

T = TypeVar("T")

_COLLECTOR_NAME = "pytest_baml_telemetry"
_GENERATED_NAME = re.compile(r"^_pbt_generated_(?P<package>[A-Za-z_][A-Za-z0-9_]*?)_[0-9a-f]{10}_\d+$")
_SUBMODULES = ("sync_client", "async_client")
_NOT_FUNCTIONS = frozenset({"with_options"})
_MISSING = object()


# --------------------------------------------------------------------------- introspection


class _FunctionSpec:
    """What is needed to call one generated BAML function: its parameters and sync-ness."""

    __slots__ = ("name", "signature", "is_async", "names", "name_set", "defaults", "simple")

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


def _client_module_of(client: Any) -> str | None:
    """``"baml_client"`` for ``baml_client.sync_client.BamlSyncClient`` (also when imported
    by :func:`~.baml_gen.import_generated` under a unique module name)."""
    module = getattr(type(client), "__module__", None)
    if not isinstance(module, str):
        return None
    package, _, last = module.rpartition(".")
    if package and last in _SUBMODULES:
        module = package
    head, _, rest = module.partition(".")
    match = _GENERATED_NAME.match(head)
    if match:
        module = match.group("package") + ("." + rest if rest else "")
    return module


def _selected_or_last(log: Any) -> tuple[Any, int]:
    calls = list(log.calls or ())
    selected = log.selected_call
    if selected is None and calls:
        try:
            selected = max(calls, key=lambda c: c.timing.start_time_utc_ms)
        except Exception:
            selected = calls[-1]
    return selected, len(calls)


_STRING_FIELDS = {
    key: re.compile(r'"%s"\s*:\s*"([^"\\]*)"' % key) for key in ("id", "model")
}


def top_level_strings(text: str, keys: tuple[str, ...]) -> dict[str, str]:
    """The string values of ``keys`` at the top level of the JSON object ``text``.

    Fast path for the common layout where they come before any nested value (OpenAI's
    ``{"id": ..., "model": ..., "choices": [...]}``, baml's ``{"model": ..., "messages":
    [...]}``): a key pattern can only match a real key, since quotes inside JSON strings
    are escaped. Anything else (a key after a nested value, escapes) is read with
    :func:`json.loads`. Keys that are absent or not strings are left out; text that is
    not a JSON object gives ``{}``.
    """
    cut = len(text)
    bracket = text.find("[")
    if bracket >= 0:
        cut = bracket
    brace = text.find("{", text.find("{") + 1)
    if 0 <= brace < cut:
        cut = brace
    head = text[:cut]
    found: dict[str, str] = {}
    for key in keys:
        match = _STRING_FIELDS[key].search(head)
        if match is None:  # absent, after a nested value, or with escapes: parse it all
            break
        found[key] = match.group(1)
    else:
        return found
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {key: data[key] for key in keys if isinstance(data.get(key), str)}


def _body_strings(body: Any, keys: tuple[str, ...]) -> dict[str, str]:
    try:
        text = body.text()
    except Exception:
        return {}
    return top_level_strings(text, keys) if isinstance(text, str) else {}


def read_collector_log(log: Any, call: Call) -> None:
    """Fill ``call`` (usage, model and extra metadata) from a ``baml_py.FunctionLog``.

    Sets usage (``None`` counts stay ``None``), ``model`` (requested), and the extra
    metadata ``provider``, ``client_name``, ``num_attempts``, ``request_id`` and, when
    the provider reported one, ``response_model``. Missing parts are skipped.
    """
    usage = log.usage
    if usage is not None:
        call.set_usage(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)
    selected, attempts = _selected_or_last(log)
    extra: dict[str, Any] = {"num_attempts": attempts}
    if selected is not None:
        extra["provider"] = selected.provider
        extra["client_name"] = selected.client_name
        request = selected.http_request
        request_id = None
        if request is not None:
            model = _body_strings(request.body, ("model",)).get("model")
            if model is not None:
                call.set_model(model)
            request_id = request.id
        served: Any = None
        response = getattr(selected, "http_response", None)
        if response is not None:
            served = _body_strings(response.body, ("id", "model"))
        elif hasattr(selected, "sse_responses"):
            try:
                sse = selected.sse_responses()
            except Exception:
                sse = None
            if sse:
                first = sse[0].text
                first = first() if callable(first) else first
                served = top_level_strings(first, ("id", "model")) if isinstance(first, str) else None
        if served:
            if served.get("id"):
                request_id = served["id"]
            if "model" in served:
                extra["response_model"] = served["model"]
        extra["request_id"] = request_id
    call.set(**extra)


def _read_collector(collector: Any, call: Call) -> None:
    try:
        log = collector.last
        if log is not None:
            read_collector_log(log, call)
    except Exception as exc:  # reading telemetry must never break the user's call
        logger.error("reading the baml Collector for %s failed: %r", call.function_name, exc)


# --------------------------------------------------------------------------- settings


class _Settings:
    """What every proxy of one ``instrument()`` call shares."""

    __slots__ = ("emitter", "resource", "action", "client_module", "collector_type")

    def __init__(self, emitter: Emitter, resource: Any, action: str | None, client_module: str | None) -> None:
        import baml_py

        self.emitter = emitter
        self.resource = resource
        self.action = action
        self.client_module = client_module
        self.collector_type = baml_py.Collector


def _arguments_of(bound: dict[str, Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    if bound is None:
        return {**{f"arg{i}": a for i, a in enumerate(args)}, **{k: v for k, v in kwargs.items() if k != "baml_options"}}
    arguments = dict(bound)
    arguments.pop("baml_options", None)
    return arguments


def _with_our_collector(bound: dict[str, Any], base_collectors: list[Any], ours: Any) -> dict[str, Any] | None:
    """The call's keyword arguments with ``collector=[*user collectors, ours]`` in ``baml_options``."""
    options = bound.get("baml_options")
    if options is None:
        options = {}
    if not isinstance(options, Mapping):
        return None  # let the generated code complain about it, unchanged
    if "collector" in options:
        theirs = _as_collector_list(options["collector"])
    else:
        theirs = base_collectors
    prepared = dict(bound)
    prepared["baml_options"] = {**options, "collector": [*theirs, ours]}
    return prepared


def _function_wrapper(
    settings: _Settings, spec: _FunctionSpec, function: Callable[..., Any], base_collectors: list[Any]
) -> Callable[..., Any]:
    name = spec.name

    if spec.is_async:

        async def async_call(*args: Any, **kwargs: Any) -> Any:
            emitter = settings.emitter
            bound = spec.bind(args, kwargs)
            call = emitter.call(
                name,
                arguments=_arguments_of(bound, args, kwargs),
                resource=settings.resource,
                action=settings.action,
                client_module=settings.client_module,
            )
            if not call.sampled:
                return await function(*args, **kwargs)
            collector = settings.collector_type(_COLLECTOR_NAME)
            prepared = None if bound is None or not spec.simple else _with_our_collector(bound, base_collectors, collector)
            async with call:
                try:
                    if prepared is None:
                        result = await function(*args, **kwargs)
                    else:
                        result = await function(**prepared)
                except BaseException:
                    _read_collector(collector, call)
                    raise
                _read_collector(collector, call)
                call.set_result(result)
                return result

        async_call.__name__ = async_call.__qualname__ = name
        async_call.__doc__ = getattr(function, "__doc__", None)
        async_call.__wrapped__ = function  # type: ignore[attr-defined]
        return async_call

    def sync_call(*args: Any, **kwargs: Any) -> Any:
        emitter = settings.emitter
        bound = spec.bind(args, kwargs)
        call = emitter.call(
            name,
            arguments=_arguments_of(bound, args, kwargs),
            resource=settings.resource,
            action=settings.action,
            client_module=settings.client_module,
        )
        if not call.sampled:
            return function(*args, **kwargs)
        collector = settings.collector_type(_COLLECTOR_NAME)
        prepared = None if bound is None or not spec.simple else _with_our_collector(bound, base_collectors, collector)
        with call:
            try:
                if prepared is None:
                    result = function(*args, **kwargs)
                else:
                    result = function(**prepared)
            except BaseException:
                _read_collector(collector, call)
                raise
            _read_collector(collector, call)
            call.set_result(result)
            return result

    sync_call.__name__ = sync_call.__qualname__ = name
    sync_call.__doc__ = getattr(function, "__doc__", None)
    sync_call.__wrapped__ = function  # type: ignore[attr-defined]
    return sync_call


def _stream_wrapper(
    settings: _Settings, spec: _FunctionSpec, function: Callable[..., Any], base_collectors: list[Any]
) -> Callable[..., Any]:
    name = spec.name

    def stream_call(*args: Any, **kwargs: Any) -> Any:
        emitter = settings.emitter
        bound = spec.bind(args, kwargs)
        arguments = _arguments_of(bound, args, kwargs)
        collector = settings.collector_type(_COLLECTOR_NAME)
        prepared = None if bound is None or not spec.simple else _with_our_collector(bound, base_collectors, collector)
        try:
            if prepared is None:
                raw = function(*args, **kwargs)
            else:
                raw = function(**prepared)
        except BaseException:
            # the stream could not even be created: still one start and one exception
            with emitter.call(
                name,
                arguments=arguments,
                resource=settings.resource,
                action=settings.action,
                client_module=settings.client_module,
                streaming=True,
            ) as call:
                _read_collector(collector, call)
                raise

        def before_end(call: Call, error: BaseException | None) -> None:
            _read_collector(collector, call)

        return emitter.stream(
            raw,
            name,
            arguments=arguments,
            resource=settings.resource,
            action=settings.action,
            client_module=settings.client_module,
            before_end=before_end,
        )

    stream_call.__name__ = stream_call.__qualname__ = name
    stream_call.__doc__ = getattr(function, "__doc__", None)
    stream_call.__wrapped__ = function  # type: ignore[attr-defined]
    return stream_call


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
    if isinstance(client, types.ModuleType):
        hint = " (pass its `b`, e.g. baml_client.b or baml_client.async_client.b)" if hasattr(client, "b") else ""
        raise TypeError(f"instrument({client!r}): expected a generated baml-py client object, not a module{hint}")
    module = getattr(type(client), "__module__", "") or ""
    if module.startswith("pytest_baml_telemetry"):
        raise TypeError(
            f"instrument({client!r}): this is a pytest-baml-telemetry fake, which emits telemetry already; "
            "instrument() is for a real generated client (baml_client.b)"
        )
    if not callable(getattr(client, "with_options", None)) or not hasattr(type(client), "stream"):
        raise TypeError(
            f"instrument({client!r}): {type(client).__name__} is not a generated baml-py client; expected "
            "baml_client.b (sync) or baml_client.async_client.b (async), or a with_options(...) derivative"
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
        client = client.__wrapped__
    _check_client(client)
    if emitter is None:
        emitter = Emitter()
    elif not isinstance(emitter, Emitter):
        raise TypeError(f"instrument(emitter={emitter!r}): expected a pytest_baml_telemetry.Emitter or None")
    if action is not None and not isinstance(action, str):
        raise TypeError(f"instrument(action={action!r}): expected a str or None")
    if client_module is None:
        client_module = _client_module_of(client)
    elif not isinstance(client_module, str) or not client_module:
        raise TypeError(f"instrument(client_module={client_module!r}): expected a non-empty str or None")
    options = _option_dict(client) or {}
    settings = _Settings(emitter, resource, action, client_module)
    return InstrumentedClient(client, settings, _as_collector_list(options.get("collector")))  # type: ignore[return-value]
