"""``FakeBamlClient``: an in-process stand-in for a generated baml-py client ``b``.

::

    fake = FakeBamlClient(emitter=emitter, spec=b)
    fake.respond("ExtractResume", Resume(name="Ada"), usage=Usage(120, 40), model="gpt-4o", latency="850ms")
    fake.fail("ExtractResume", faults.rate_limited(retry_after="2s"))

    fake.ExtractResume(resume="...")                 # like b.ExtractResume(...)
    stream = fake.stream.ExtractResume(resume="...")  # like b.stream.ExtractResume(...)
    fake.with_options(client="Fallback").ExtractResume(resume="...")

Every call goes through the reference :class:`~pytest_baml_telemetry.emitter.Emitter`, so
the full event contract is emitted with the scripted usage, model and latency. This module
is the public face; the ideas behind it live next to it: scripting and the call records in
:mod:`.script`, the per-call path (bind, take the outcome, plan, run through the emitter) in
:mod:`.calls`, virtual time in :mod:`.timeline`, the stream objects in :mod:`.streams`
and ``spec=`` (building against a real generated client) in :mod:`.spec`, its types
(results, partials and arguments checked as the real client checks them) in :mod:`.typing_spec`.

Scripting
    ``respond`` and ``fail`` queue *outcomes* per function name, used in order, each once;
    a ``reusable=True`` outcome serves every later call and must be the last scripted for
    its function. A call with nothing left raises :class:`NothingScriptedError` (an
    ``AssertionError``) and emits no event; ``unused()`` and ``assert_all_used()`` report
    outcomes never used.

Time
    Scripted latency advances a virtual clock instead of sleeping. Each call runs on its
    own timeline: it starts at the shared clock's reading when it begins and its events
    are stamped from that base plus the latency scripted so far, so every call's
    ``duration`` is exactly its scripted latency even when calls overlap in threads or
    asyncio tasks. The shared clock is moved forward to the end of each call's timeline
    (``max(now, call start + latency)``): sequential calls see time pass as in production,
    concurrent calls overlap as they would. A clock that cannot be advanced (no
    ``advance_ns``, e.g. the system clock) is only read. With ``real_sleep=True`` (or a
    ``VirtualClock(real_sleep=True)``) the fake also sleeps for real. Async calls always
    ``await asyncio.sleep(0)`` at least once, so concurrent tasks interleave.

Metadata
    Every stop and exception event carries ``model``, ``provider``, ``client_name``,
    ``num_attempts`` and ``request_id`` (``"fake-req-<n>"``, counted per fake). Each is the
    outcome's (``respond``/``fail(model=, provider=, client_name=)``), else the fake's
    (``FakeBamlClient(model=, provider=, client_name=)``), else the spec's: the client the
    function declares in the generated client's .baml sources (or the one named by
    ``with_options(client=...)``, the outcome or the fault), its provider and model; else
    ``None``. ``num_attempts`` is 1, ``len(failed_attempts) + 1`` for a ``respond`` with
    ``failed_attempts``, the fault's for ``faults.attempts(...)``. A failure's tokens are
    its fault's ``usage``. A call aborted before it started reports none of these.

Aborts
    ``baml_options={"abort_controller": c}``: a controller aborted before the call raises
    baml-py's ``BamlAbortError("Operation was aborted")`` and uses no outcome. One aborted
    while the call is in flight (by another task or thread, or by the code reading a
    stream) is noticed where the call's time next advances (after an async call's first
    yield, at its end, before each stream partial and the final response) and raises the
    in-flight ``BamlAbortError("AbortError")``, tokens unknown; a stream's iteration then
    ends quietly and ``get_final_response()`` raises, as in baml-py.

Streams
    ``partials`` scripts the values a stream yields. By default they are spread evenly
    over the latency: with ``n`` partials and latency ``L``, partial ``i`` arrives at
    ``L*i/(n+1)`` and the final response (or failure) at ``L``. ``chunk_latency`` (one
    duration, or one per partial) spaces them explicitly instead; the final response
    then comes at ``latency`` if given (it must not be earlier than the last partial),
    else with the last partial. As in baml-py, iterating a failed stream ends quietly;
    ``get_final_response()`` raises. A stream runs on its consumer's time too: the virtual
    time the code reading it spends between reads (its own fake calls, a
    ``clock.advance(...)``) is part of the stream's duration, as on a real stream (see
    :mod:`.timeline`). With ``merge=True`` a read gets the latest partial already due, the
    ones before it merged away, as baml-py does with a fast model or a slow reader.

Rules: a call does no more than bind its arguments, take its outcome, plan it and run
it through the emitter; the per-call work stays on that path and nothing else is added.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._validate import check_bool, check_callable, check_mapping, check_str
from ..clock import DurationLike, VirtualClock
from ..contract import Usage
from ..emitter import Emitter
from .call_options import UNSUPPORTED_OPTIONS, check_baml_options
from .calls import FunctionCaller
from .script import (
    FakeCall,
    NothingScriptedError,
    Script,
    ScriptedOutcome,
    UnusedOutcomesError,
    check_function_name,
    check_metadata,
    fail_outcome,
    respond_outcome,
)
from .spec import ClientSpec
from .timeline import Timeline
from .typing_spec import spec_is_async

__all__ = [
    "AsyncFakeBamlClient",
    "FakeBamlClient",
    "FakeCall",
    "NothingScriptedError",
    "ScriptedOutcome",
    "UnusedOutcomesError",
]

_MODULAR = frozenset({"request", "stream_request", "parse", "parse_stream"})
_WITH_OPTIONS_KEYS = ("tb", "client_registry", "client", "collector", "env", "tags", "on_tick")


# ---------------------------------------------------------------------------- shared state


class _Shared:
    """What a fake and all its derivatives (``with_options``, ``as_async``) share."""

    __slots__ = (
        "emitter", "timeline", "script", "spec", "client_module", "resource", "action", "model", "provider",
        "client_name", "request_ids", "_defaults",
    )

    def __init__(
        self,
        emitter: Emitter,
        timeline: Timeline,
        spec: ClientSpec | None,
        client_module: str | None,
        resource: Any,
        action: str | None,
        metadata: tuple[str | None, str | None, str | None],
    ) -> None:
        self.emitter = emitter
        self.timeline = timeline
        self.script = Script(_FAKE_METHODS)
        self.spec = spec
        self.client_module = client_module
        self.resource = resource
        self.action = action
        self.model, self.provider, self.client_name = metadata
        self.request_ids = itertools.count(1)  # next() is atomic: ids stay unique across threads
        self._defaults: dict[tuple[str, str | None], tuple[str | None, str | None, str | None]] = {}

    def defaults(self, function: str, client: str | None) -> tuple[str | None, str | None, str | None]:
        """``(client_name, provider, model)`` of a call of ``function`` whose call or outcome names
        ``client`` (``None``: none): the fake's own defaults first, then what the spec declares."""
        key = (function, client)
        found = self._defaults.get(key)
        if found is None:
            spec = self.spec
            client_name = client or self.client_name
            declared = None if spec is None else spec.client_of(function, client_name)
            if declared is not None:
                client_name = declared.name
            found = self._defaults[key] = (
                client_name,
                self.provider or (declared.provider if declared is not None else None),
                self.model or (declared.model if declared is not None else None),
            )
        return found


# ---------------------------------------------------------------------------- the fakes


class _FakeBase:
    """Scripting, bookkeeping and call machinery shared by the sync and async fakes."""

    _is_async = False

    def __init__(
        self,
        *,
        emitter: Emitter | None = None,
        clock: Any = None,
        spec: Any = None,
        client_module: str | None = "baml_client",
        real_sleep: bool = False,
        resource: Any = None,
        action: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        client_name: str | None = None,
    ) -> None:
        owner = type(self).__name__
        if emitter is None:
            emitter = Emitter()
        elif not isinstance(emitter, Emitter):
            raise TypeError(f"{owner}(emitter={emitter!r}): expected a pytest_baml_telemetry.Emitter or None")
        if clock is None:
            clock = VirtualClock()
        elif not (callable(getattr(clock, "time_ns", None)) and callable(getattr(clock, "monotonic_ns", None))):
            raise TypeError(
                f"{owner}(clock={clock!r}): expected a VirtualClock (or an object with time_ns(), "
                "monotonic_ns() and, to be advanced, advance_ns()), or None"
            )
        check_str(client_module, f"{owner}(client_module={client_module!r})", empty=True, optional=True)
        check_bool(real_sleep, f"{owner}(real_sleep={real_sleep!r})")
        check_str(action, f"{owner}(action={action!r})", empty=True, optional=True)
        if isinstance(spec, (FakeBamlClient, AsyncFakeBamlClient)):
            raise TypeError(f"spec={spec!r}: expected a real generated client (b), its class or module, not a fake")
        check_metadata(owner, model, provider, client_name)
        self._shared = _Shared(
            emitter, Timeline(clock, real_sleep), None if spec is None else ClientSpec(spec), client_module, resource, action,
            (model, provider, client_name),
        )
        self._options: dict[str, Any] = {}

    @classmethod
    def _derived(cls, shared: _Shared, options: dict[str, Any]) -> Any:
        fake = cls.__new__(cls)
        fake._shared = shared
        fake._options = options
        return fake

    def __repr__(self) -> str:
        spec = f" spec={self._shared.spec.label}" if self._shared.spec is not None else ""
        options = f" options={sorted(self._options)}" if self._options else ""
        script = self._shared.script
        return (
            f"<{type(self).__name__}{spec}{options} scripted={len(script.outcomes)} "
            f"unused={len(script.unused())} calls={len(script.calls)}>"
        )

    # ------------------------------------------------------------------ properties

    @property
    def clock(self) -> Any:
        """The shared clock scripted latency advances."""
        return self._shared.timeline.clock

    @property
    def emitter(self) -> Emitter:
        """The emitter every call goes through."""
        return self._shared.emitter

    @property
    def spec(self) -> Any:
        """The real client (or module) this fake was spec'd on, or ``None``."""
        return None if self._shared.spec is None else self._shared.spec.source

    @property
    def options(self) -> dict[str, Any]:
        """The options given to ``with_options(...)`` for this derivative (a copy)."""
        return dict(self._options)

    @property
    def calls(self) -> list[FakeCall]:
        """Every call made on this fake and its derivatives, in order (a copy)."""
        script = self._shared.script
        with script.lock:
            return list(script.calls)

    @property
    def function_names(self) -> list[str] | None:
        """The spec's function names (``None`` for a fake without ``spec``)."""
        return None if self._shared.spec is None else sorted(self._shared.spec.signatures)

    # ------------------------------------------------------------------ scripting

    def _scripted_name(self, function_name: Any, what: str) -> str:
        name = check_function_name(function_name, what)
        never = _never_called(name)
        if never is not None:
            raise ValueError(f"{what}({name!r}, ...): expected a BAML function the fake can call; {never}")
        spec = self._shared.spec
        if spec is not None and name not in spec.signatures:
            raise ValueError(f"{what}({name!r}, ...): {spec.unknown(name)}")
        return name

    def respond(
        self,
        function_name: str,
        result: Any = None,
        *,
        raw: str | None = None,
        usage: Usage | Mapping[str, Any] | tuple[int | None, ...] | None = None,
        model: str | None = None,
        provider: str | None = None,
        client_name: str | None = None,
        latency: DurationLike | None = None,
        failed_attempts: Sequence[Any] | None = None,
        reusable: bool = False,
        partials: Sequence[Any] | None = None,
        chunk_latency: DurationLike | Sequence[DurationLike] | None = None,
        chunks: Sequence[Any] | None = None,
        merge: bool = False,
    ) -> ScriptedOutcome:
        """Queue a successful outcome for ``function_name``; return it.

        ``usage`` (a :class:`Usage`, a dict of its fields or an ``(input, output)`` pair)
        gives the tokens of the stop event; counts not given stay ``None``. ``model``,
        ``provider`` and ``client_name`` are the stop event's (default: the fake's, see
        "Metadata"). ``latency`` is the call's duration (default 0). ``failed_attempts``
        (a list of faults) are attempts that failed before this answer, as a
        ``retry_policy`` or a ``fallback`` client makes: still one stop event, with
        ``num_attempts=len(failed_attempts) + 1`` and the attempts' latencies added to
        the duration. ``partials`` are what a stream call yields before its final
        ``result``, spread over the latency or spaced by ``chunk_latency`` (see the module
        docstring). A callable ``result`` (not a class) is called at each call with the
        call's arguments as keyword arguments (bound to the spec's parameter names) and the
        call returns what it returns; a callable ``usage`` likewise returns the tokens (a
        ``Usage``, dict, tuple or ``None``). An exception either raises is the call's error.

        With a spec (a generated client), ``result`` and ``partials`` are validated into the
        function's declared types (``types`` / ``stream_types``; a wrong shape raises
        ``TypeError`` naming the field). ``raw`` is the model's text instead of a result,
        read by baml-py's own parser for the function (``b.parse``; a stream's partials from
        ``b.parse_stream`` after each chunk): text that does not parse makes the call raise
        the ``BamlValidationError`` a real call raises. ``chunks`` cuts ``raw`` into the
        pieces a provider streams (a list/tuple inside it: pieces arriving together, one
        partial); ``merge=True`` merges the partials queued when the consumer reads.
        """
        name = self._scripted_name(function_name, "respond")
        outcome = respond_outcome(
            name, result, usage=usage, model=model, provider=provider, client_name=client_name, latency=latency,
            failed_attempts=failed_attempts, reusable=reusable, partials=partials, chunk_latency=chunk_latency,
            raw=raw, chunks=chunks, merge=merge, spec=self._shared.spec,
        )
        return self._shared.script.add(outcome)

    def fail(
        self,
        function_name: str,
        error: Any,
        *,
        model: str | None = None,
        provider: str | None = None,
        client_name: str | None = None,
        latency: DurationLike | None = None,
        reusable: bool = False,
    ) -> ScriptedOutcome:
        """Queue a failing outcome for ``function_name``; return it.

        ``error`` is a fault from :mod:`~pytest_baml_telemetry.fake.faults`, a fault name
        (``"timeout"``), an exception class (baml-py's get realistic attributes), an
        exception instance (raised as it is), or a ``callable(**arguments)`` called with
        the call's arguments that returns (or raises) one of those. ``latency`` is the
        time before the failure; it defaults to the fault's ``after`` (giving both is an
        error), else 0. A :func:`~pytest_baml_telemetry.fake.faults.stream_failure` makes
        stream calls yield its partials first. ``model``, ``provider`` and ``client_name``
        are the exception event's (default: the fake's, see "Metadata"); the built error's
        ``client_name`` is the fault's own, else this one. The event's tokens are the
        fault's ``usage`` (``None``: unknown).
        """
        name = self._scripted_name(function_name, "fail")
        outcome = fail_outcome(
            name, error, model=model, provider=provider, client_name=client_name, latency=latency, reusable=reusable,
            spec=self._shared.spec,
        )
        return self._shared.script.add(outcome)

    # ------------------------------------------------------------------ bookkeeping

    def unused(self) -> list[ScriptedOutcome]:
        """Scripted outcomes no call used (a reusable one used once counts as used)."""
        return self._shared.script.unused()

    def assert_all_used(self) -> None:
        """Raise :class:`UnusedOutcomesError` (an ``AssertionError``) listing unused outcomes."""
        self._shared.script.assert_all_used()

    def reset(self) -> None:
        """Forget every scripted outcome and recorded call (the clock is left as it is)."""
        self._shared.script.reset()

    # ------------------------------------------------------------------ derivatives

    def with_options(
        self,
        tb: Any = None,
        client_registry: Any = None,
        client: str | None = None,
        collector: Any = None,
        env: Mapping[str, str | None] | None = None,
        tags: Mapping[str, str] | None = None,
        on_tick: Callable[..., Any] | None = None,
    ) -> Any:
        """A derivative sharing this fake's scripts, clock and records, as ``b.with_options``.

        The options are recorded in each call's ``options``; ``client`` also names the
        client in built errors' ``client_name``; ``tags`` go into each end event's metadata
        as ``tags`` (a call's ``baml_options={"tags": ...}`` replaces them, as in baml-py).
        ``tb``, ``collector``, ``client_registry`` and ``env`` are type-checked here and
        raise ``NotImplementedError`` naming the option (the fake cannot honour them);
        ``on_tick`` on a call raises what baml-py raises on a sync client (``ValueError``)
        and ``NotImplementedError`` on an async one (baml-py calls it with real
        ``FunctionLog``s). None of them is ever ignored silently.
        """
        check_str(client, f"with_options(client={client!r})", empty=True, optional=True, expected="the name of a BAML client, a str")
        for key, value in (("env", env), ("tags", tags)):
            if value is not None and not isinstance(value, Mapping):  # no repr of a valid mapping
                check_mapping(value, f"with_options({key}={value!r})", optional=True, expected="a dict or None")
        check_callable(on_tick, f"with_options(on_tick={on_tick!r})", optional=True)
        check_baml_options(collector, client_registry)
        for key, value in (("tb", tb), ("collector", collector), ("client_registry", client_registry), ("env", env)):
            if value is not None:
                raise NotImplementedError(f"with_options({key}=...): {type(self).__name__} {UNSUPPORTED_OPTIONS[key]}")
        given = dict(zip(_WITH_OPTIONS_KEYS, (tb, client_registry, client, collector, env, tags, on_tick)))
        options = {**self._options, **{k: v for k, v in given.items() if v is not None}}
        return type(self)._derived(self._shared, options)

    def as_async(self) -> AsyncFakeBamlClient:
        """The async twin, sharing scripts, clock, records and options."""
        return AsyncFakeBamlClient._derived(self._shared, dict(self._options))

    def as_sync(self) -> FakeBamlClient:
        """The sync twin, sharing scripts, clock, records and options."""
        return FakeBamlClient._derived(self._shared, dict(self._options))

    # ------------------------------------------------------------------ call machinery

    def function(self, name: str) -> Callable[..., Any]:
        """The fake's callable for BAML function ``name`` (also reachable as ``fake.<name>``,
        unless a method of the fake shadows it)."""
        return self._function(name, streaming=False)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _MODULAR:
            raise AttributeError(
                f"{type(self).__name__} does not fake baml's modular API (b.{name}); send those requests with "
                "httpx and mock them with respx, or call the function itself on the fake"
            )
        fn = self.__dict__[name] = self._function(name, streaming=False)  # later look-ups skip __getattr__
        return fn

    _stream_namespace: _StreamNamespace | None = None

    @property
    def stream(self) -> _StreamNamespace:
        """``fake.stream.SomeFunction(...)`` returns a stream, as ``b.stream.SomeFunction``."""
        namespace = self._stream_namespace
        if namespace is None:
            namespace = self._stream_namespace = _StreamNamespace(self)
        return namespace

    def _function(self, name: str, *, streaming: bool) -> Callable[..., Any]:
        if not isinstance(name, str) or not name.isidentifier():
            raise AttributeError(f"{name!r} is not a BAML function name")
        spec = self._shared.spec
        sig = None
        if spec is not None:
            if name not in spec.signatures:
                raise AttributeError(spec.unknown(name))
            sig = (spec.stream_signatures if streaming else spec.signatures)[name]
        caller = FunctionCaller(self._shared, self._options, name, streaming, self._is_async)  # see .calls
        if streaming:
            start_stream = caller.stream

            def stream_function(*args: Any, **kwargs: Any) -> Any:
                return start_stream(args, kwargs)

            fn = stream_function
        elif self._is_async:
            acall = caller.acall

            async def async_function(*args: Any, **kwargs: Any) -> Any:
                return await acall(args, kwargs)

            fn = async_function
        else:
            fn = caller.sync_function()
        fn.__name__ = fn.__qualname__ = name
        if sig is not None:
            fn.__signature__ = sig  # type: ignore[attr-defined]
        return fn


class FakeBamlClient(_FakeBase):
    """A sync stand-in for a generated baml-py client ``b``; see the module docstring.

    ``emitter`` (default: a new :class:`Emitter` on the default dispatcher) receives every
    call's events, stamped with the fake's clock (the emitter's own clock is not used).
    ``clock`` (default: a new :class:`VirtualClock`) is advanced by scripted latency.
    ``spec`` (a generated client ``b``, its class, or the ``baml_client`` module) makes
    unknown functions and wrong arguments fail as on the real client. ``client_module``,
    ``resource`` and ``action`` are put in every event's metadata (who the call is made
    for, as with ``instrument(b, resource=..., action=...)``). ``real_sleep=True`` also
    sleeps for real. ``model``, ``provider`` and ``client_name`` are the defaults of every
    call's metadata (see "Metadata" in the module docstring).

    Calling ``fake.SomeFunction(**arguments)`` returns the scripted result (or raises the
    scripted error); positional arguments need a ``spec``. ``baml_options=`` is accepted
    and recorded as on the real client.

    With a generated client as ``spec``, results and partials given to ``respond`` are
    validated into the declared types and each call's arguments are checked as the runtime
    checks them (``BamlInvalidArgumentError``). An async spec (a ``BamlAsyncClient``, its
    class, or a package whose ``b`` is one) makes ``FakeBamlClient(spec=...)`` return an
    :class:`AsyncFakeBamlClient` (a subclass of ``FakeBamlClient`` is built as it is).
    """

    _is_async = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        spec = kwargs.get("spec")
        if cls is FakeBamlClient and spec is not None and spec_is_async(spec):
            fake = object.__new__(AsyncFakeBamlClient)
            AsyncFakeBamlClient.__init__(fake, *args, **kwargs)  # type() skips __init__ for another class
            return fake
        return object.__new__(cls)


class AsyncFakeBamlClient(_FakeBase):
    """The async twin of :class:`FakeBamlClient` (``await fake.SomeFunction(...)``,
    ``async for`` over ``fake.stream.SomeFunction(...)``); same constructor and scripting.
    ``FakeBamlClient.as_async()`` gives one sharing the sync fake's scripts."""

    _is_async = True


_FAKE_METHODS = tuple(name for name in dir(_FakeBase) if not name.startswith("_"))
_FAKE_METHOD_SET = frozenset(_FAKE_METHODS)


def _never_called(name: str) -> str | None:
    """Why ``fake.<name>`` can never reach a scripted function (``None``: it can)."""
    if name.startswith("_"):
        return f"{name!r} starts with '_', and the fake looks no such name up as a BAML function"
    if name in _FAKE_METHOD_SET:
        return f"fake.{name} is the fake's own {name!r} (as on baml's generated client), never a BAML function"
    if name in _MODULAR:
        return f"{name!r} is baml's modular API (b.{name}), which the fake does not fake"
    return None


class _StreamNamespace:
    """``fake.stream``: attribute access returns a function creating a stream (kept for
    later look-ups, as the fake keeps its functions)."""

    def __init__(self, fake: _FakeBase) -> None:
        self._fake = fake

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        fn = self.__dict__[name] = self._fake._function(name, streaming=True)
        return fn

    def __repr__(self) -> str:
        return f"<stream namespace of {self._fake!r}>"
