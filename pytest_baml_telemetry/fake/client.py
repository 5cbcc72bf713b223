"""``FakeBamlClient``: an in-process stand-in for a generated baml-py client ``b``.

::

    fake = FakeBamlClient(emitter=emitter, spec=b)
    fake.respond("ExtractResume", Resume(name="Ada"), usage=Usage(120, 40), model="gpt-4o", latency="850ms")
    fake.fail("ExtractResume", faults.rate_limited(retry_after="2s"))

    fake.ExtractResume(resume="...")                 # like b.ExtractResume(...)
    stream = fake.stream.ExtractResume(resume="...")  # like b.stream.ExtractResume(...)
    fake.with_options(client="Fallback").ExtractResume(resume="...")

Every call goes through the reference :class:`~pytest_baml_telemetry.emitter.Emitter`, so
the full event contract is emitted with the scripted usage, model and latency.

Scripting
    ``respond`` and ``fail`` queue *outcomes* per function name. Calls of a function use
    its outcomes in the order they were scripted, each once. A ``reusable=True`` outcome
    is used for its turn and for every later call of that function: it stays at the head
    of its queue forever, so it must be the last one scripted for its function (scripting
    another after it raises ``ValueError``: it could never be used). A call with nothing
    left raises :class:`NothingScriptedError` (an ``AssertionError``) listing what is
    scripted for which function, and emits no event. ``unused()`` lists outcomes never
    used (a reusable outcome used at least once counts as used); ``assert_all_used()``
    raises ``AssertionError`` listing them.

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

Streams
    ``partials`` scripts the values a stream yields. By default they are spread evenly
    over the latency: with ``n`` partials and latency ``L``, partial ``i`` arrives at
    ``L*i/(n+1)`` and the final response (or failure) at ``L``. ``chunk_latency`` (one
    duration, or one per partial) spaces them explicitly instead; the final response
    then comes at ``latency`` if given (it must not be earlier than the last partial),
    else with the last partial. As in baml-py, iterating a failed stream ends quietly;
    ``get_final_response()`` raises.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import inspect
import os
import sys
import threading
import time
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import DurationLike, VirtualClock, format_duration_ns, parse_duration_ns
from ..contract import Usage
from ..emitter import Call, Emitter
from .faults import Fault, abort, coerce_error

__all__ = [
    "AsyncFakeBamlClient",
    "FakeBamlClient",
    "FakeCall",
    "NothingScriptedError",
    "ScriptedOutcome",
    "UnusedOutcomesError",
]

_THIS_FILE = os.path.normcase(os.path.abspath(__file__))
_MODULAR = frozenset({"request", "stream_request", "parse", "parse_stream"})
_WITH_OPTIONS_KEYS = ("tb", "client_registry", "client", "collector", "env", "tags", "on_tick")


class NothingScriptedError(AssertionError):
    """A fake was called for a function with no scripted outcome left."""


class UnusedOutcomesError(AssertionError):
    """``assert_all_used()``: some scripted outcomes were never used."""


def _short(value: Any, limit: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ must not hide the real message
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where() -> str | None:
    """``file:line`` of the first caller outside this module (where a script was written)."""
    frame: types.FrameType | None = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.normcase(os.path.abspath(filename)) != _THIS_FILE:
            try:
                shown = os.path.relpath(filename)
            except ValueError:
                shown = filename
            return f"{shown}:{frame.f_lineno}"
        frame = frame.f_back
    return None


# ---------------------------------------------------------------------------- records


@dataclass(eq=False)
class ScriptedOutcome:
    """One scripted outcome: what ``respond`` or ``fail`` queued for a function.

    ``kind`` is ``"respond"`` or ``"fail"``. ``latency_ns`` is the call's total latency
    (for a ``fail`` given a callable, decided when it is called: ``None`` here).
    ``partial_times_ns`` are the offsets at which stream partials arrive.
    ``times_used`` counts the calls that used it.
    """

    function: str
    kind: str
    result: Any = None
    error: Fault | Callable[..., Any] | None = None
    usage: Usage | None = None
    model: str | None = None
    latency_ns: int | None = 0
    partials: tuple[Any, ...] = ()
    partial_times_ns: tuple[int, ...] = ()
    reusable: bool = False
    where: str | None = None
    times_used: int = 0
    _explicit_latency: int | None = field(default=None, repr=False)

    @property
    def latency(self) -> float | None:
        """The scripted latency in seconds (``None`` when a callable decides it)."""
        return None if self.latency_ns is None else self.latency_ns / 1_000_000_000

    def describe(self) -> str:
        """A one-line description such as ``respond('X', 'hi', latency=850.0ms)``."""
        parts = [repr(self.function)]
        if self.kind == "respond":
            parts.append(_short(self.result))
            if self.usage is not None:
                parts.append(f"usage={self.usage!r}")
            if self.model is not None:
                parts.append(f"model={self.model!r}")
            if self.partials:
                parts.append(f"partials=<{len(self.partials)}>")
        else:
            parts.append(repr(self.error) if isinstance(self.error, Fault) else _short(self.error))
        if self.latency_ns:
            parts.append(f"latency={format_duration_ns(self.latency_ns)}")
        if self.reusable:
            parts.append("reusable=True")
        text = f"{self.kind}({', '.join(parts)})"
        if self.where:
            text += f" [scripted at {self.where}]"
        return text


@dataclass(eq=False)
class FakeCall:
    """One call made on a fake, as recorded in ``fake.calls``.

    ``arguments`` are the call's arguments (bound to the spec's signature when there is
    one, ``baml_options`` left out); ``options`` merges ``with_options(...)`` and the
    call's ``baml_options``. ``outcome`` is the :class:`ScriptedOutcome` used (``None``
    when nothing was scripted). ``result``/``error`` are what the call returned/raised
    (for streams: the final response, or the failure / ``StreamAbandoned``), ``duration_ns``
    its virtual duration and ``span_context`` the ``telemetry_span_context`` of its events
    (``None`` when not sampled).
    """

    function: str
    arguments: dict[str, Any]
    streaming: bool
    is_async: bool
    options: dict[str, Any]
    outcome: ScriptedOutcome | None = None
    result: Any = None
    error: BaseException | None = None
    duration_ns: int | None = None
    span_context: Any = None

    @property
    def ok(self) -> bool:
        """True when the call ended with a result (False if it failed or has not ended)."""
        return self.error is None and self.duration_ns is not None


# ---------------------------------------------------------------------------- timing


class _CallClock:
    """The clock one call's events are stamped with: a base reading plus its own elapsed time."""

    __slots__ = ("base_monotonic", "base_time", "elapsed")
    is_virtual = True

    def __init__(self, base_monotonic: int, base_time: int) -> None:
        self.base_monotonic = base_monotonic
        self.base_time = base_time
        self.elapsed = 0

    def monotonic_ns(self) -> int:
        return self.base_monotonic + self.elapsed

    def time_ns(self) -> int:
        return self.base_time + self.elapsed


def _schedule(
    n: int, latency_ns: int | None, chunk_latency: Any, owner: str
) -> tuple[tuple[int, ...], int]:
    """Offsets of ``n`` partials and of the end of the call."""
    if chunk_latency is None:
        total = latency_ns or 0
        return tuple(total * i // (n + 1) for i in range(1, n + 1)), total
    if isinstance(chunk_latency, (list, tuple)):
        if len(chunk_latency) != n:
            raise ValueError(
                f"{owner}: chunk_latency has {len(chunk_latency)} durations for {n} partials; "
                "expected one duration, or one per partial"
            )
        gaps = [parse_duration_ns(c, name=f"{owner}: chunk_latency[{i}]") for i, c in enumerate(chunk_latency)]
    else:
        gaps = [parse_duration_ns(chunk_latency, name=f"{owner}: chunk_latency")] * n
    times: list[int] = []
    at = 0
    for gap in gaps:
        at += gap
        times.append(at)
    last = times[-1] if times else 0
    if latency_ns is None:
        return tuple(times), last
    if latency_ns < last:
        raise ValueError(
            f"{owner}: latency={format_duration_ns(latency_ns)} is shorter than the partials' "
            f"chunk_latency total {format_duration_ns(last)}; the final response cannot come before its partials"
        )
    return tuple(times), latency_ns


@dataclass
class _Plan:
    """What one call does, decided when it starts."""

    result: Any = None
    error: BaseException | None = None
    usage: Usage | None = None
    model: str | None = None
    partials: tuple[Any, ...] = ()
    partial_times: tuple[int, ...] = ()
    total_ns: int = 0


# ---------------------------------------------------------------------------- spec


class _Spec:
    """The functions and signatures of a real generated client used as ``spec``."""

    def __init__(self, spec: Any) -> None:
        self.source = spec
        target = spec
        if isinstance(spec, (FakeBamlClient, AsyncFakeBamlClient)):
            raise TypeError(f"spec={spec!r}: expected a real generated client (b), its class or module, not a fake")
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
        close = difflib.get_close_matches(name, self.signatures, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        return (
            f"{self.label} has no BAML function {name!r}.{hint} "
            f"Its functions: {', '.join(sorted(self.signatures))}"
        )

    def bind(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], streaming: bool) -> dict[str, Any]:
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


# ---------------------------------------------------------------------------- shared state


class _Shared:
    """What a fake and all its derivatives (``with_options``, ``as_async``) share."""

    def __init__(
        self, emitter: Emitter, clock: Any, spec: _Spec | None, client_module: str | None, real_sleep: bool
    ) -> None:
        self.emitter = emitter
        self.clock = clock
        self.spec = spec
        self.client_module = client_module
        self.real_sleep = real_sleep
        self.resource: Any = None
        self.action: str | None = None
        self.lock = threading.Lock()
        self.clock_lock = threading.Lock()
        self.queues: dict[str, list[ScriptedOutcome]] = {}
        self.heads: dict[str, int] = {}
        self.outcomes: list[ScriptedOutcome] = []
        self.calls: list[FakeCall] = []

    # -- scripts

    def add(self, outcome: ScriptedOutcome) -> None:
        with self.lock:
            queue = self.queues.setdefault(outcome.function, [])
            if queue and queue[-1].reusable:
                raise ValueError(
                    f"{outcome.kind}({outcome.function!r}, ...): {queue[-1].describe()} is reusable, so it is "
                    f"used for every later call of {outcome.function!r} and this outcome could never be used; "
                    "script it before the reusable one (or reset() first)"
                )
            queue.append(outcome)
            self.outcomes.append(outcome)

    def take(self, record: FakeCall) -> ScriptedOutcome | None:
        with self.lock:
            self.calls.append(record)
            queue = self.queues.get(record.function)
            head = self.heads.get(record.function, 0)
            if not queue or head >= len(queue):
                return None
            outcome = queue[head]
            if not outcome.reusable:
                self.heads[record.function] = head + 1
            outcome.times_used += 1
            record.outcome = outcome
            return outcome

    def describe_scripts(self) -> str:
        with self.lock:
            queues = {name: list(q) for name, q in self.queues.items()}
        if not queues:
            return "Nothing is scripted for any function."
        lines = ["Scripted:"]
        for name in sorted(queues):
            lines.append(f"  {name}:")
            for i, outcome in enumerate(queues[name], 1):
                used = f"used {outcome.times_used}x" if outcome.times_used else "unused"
                lines.append(f"    {i}. {outcome.describe()} -- {used}")
        return "\n".join(lines)

    def nothing_scripted(self, record: FakeCall) -> NothingScriptedError:
        args = ", ".join(f"{k}={_short(v, 40)}" for k, v in record.arguments.items())
        call = f"{'stream.' if record.streaming else ''}{record.function}({args})"
        with self.lock:
            scripted = [name for name, q in self.queues.items() if q]
            queue = self.queues.get(record.function)
        if queue:
            why = f"all {len(queue)} outcome(s) scripted for {record.function!r} were used"
        else:
            why = f"nothing is scripted for {record.function!r}"
        close = difflib.get_close_matches(record.function, [n for n in scripted if n != record.function], n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        methods = difflib.get_close_matches(record.function, _FAKE_METHODS, n=1, cutoff=0.75)
        if methods and record.function not in _FAKE_METHODS:
            hint += f" ({methods[0]!r} is a method of the fake itself.)"
        return NothingScriptedError(
            f"FakeBamlClient: {call} was called but {why}.{hint}\n{self.describe_scripts()}\n"
            f"Script it with fake.respond({record.function!r}, result) or fake.fail({record.function!r}, fault)."
        )

    def unused(self) -> list[ScriptedOutcome]:
        with self.lock:
            return [o for o in self.outcomes if o.times_used == 0]

    def reset(self) -> None:
        with self.lock:
            self.queues.clear()
            self.heads.clear()
            self.outcomes.clear()
            self.calls.clear()

    # -- time

    def new_clock(self) -> _CallClock:
        return _CallClock(self.clock.monotonic_ns(), self.clock.time_ns())

    def advance(self, cc: _CallClock, target_ns: int) -> float:
        """Move a call's timeline to ``target_ns``; return the seconds to really sleep."""
        delta = target_ns - cc.elapsed
        if delta <= 0:
            return 0.0
        cc.elapsed = target_ns
        advance_ns = getattr(self.clock, "advance_ns", None)
        if advance_ns is not None:
            end = cc.base_monotonic + target_ns
            with self.clock_lock:
                behind = end - self.clock.monotonic_ns()
                if behind > 0:
                    advance_ns(behind)
        if self.real_sleep or getattr(self.clock, "real_sleep", False):
            return delta / 1_000_000_000
        return 0.0


def _check_name(function_name: Any, what: str) -> str:
    if not isinstance(function_name, str):
        raise TypeError(f"{what}(function_name={function_name!r}): expected the BAML function's name, a str")
    if not function_name.isidentifier():
        raise ValueError(f"{what}(function_name={function_name!r}): expected a BAML function name (an identifier)")
    return function_name


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
        if client_module is not None and not isinstance(client_module, str):
            raise TypeError(f"{owner}(client_module={client_module!r}): expected a str or None")
        if not isinstance(real_sleep, bool):
            raise TypeError(f"{owner}(real_sleep={real_sleep!r}): expected True or False")
        if action is not None and not isinstance(action, str):
            raise TypeError(f"{owner}(action={action!r}): expected a str or None")
        self._shared = _Shared(emitter, clock, None if spec is None else _Spec(spec), client_module, real_sleep)
        self._shared.resource = resource
        self._shared.action = action
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
        return (
            f"<{type(self).__name__}{spec}{options} scripted={len(self._shared.outcomes)} "
            f"unused={len(self._shared.unused())} calls={len(self._shared.calls)}>"
        )

    # ------------------------------------------------------------------ properties

    @property
    def clock(self) -> Any:
        """The shared clock scripted latency advances."""
        return self._shared.clock

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
        with self._shared.lock:
            return list(self._shared.calls)

    @property
    def function_names(self) -> list[str] | None:
        """The spec's function names (``None`` for a fake without ``spec``)."""
        return None if self._shared.spec is None else sorted(self._shared.spec.signatures)

    # ------------------------------------------------------------------ scripting

    def _scripted_name(self, function_name: Any, what: str) -> str:
        name = _check_name(function_name, what)
        spec = self._shared.spec
        if spec is not None and name not in spec.signatures:
            raise ValueError(f"{what}({name!r}, ...): {spec.unknown(name)}")
        return name

    def respond(
        self,
        function_name: str,
        result: Any,
        *,
        usage: Usage | Mapping[str, Any] | tuple[int | None, ...] | None = None,
        model: str | None = None,
        latency: DurationLike | None = None,
        reusable: bool = False,
        partials: Sequence[Any] | None = None,
        chunk_latency: DurationLike | Sequence[DurationLike] | None = None,
    ) -> ScriptedOutcome:
        """Queue a successful outcome for ``function_name``; return it.

        ``usage`` (a :class:`Usage`, a dict of its fields or an ``(input, output)`` pair)
        gives the tokens of the stop event; counts not given stay ``None``. ``model`` is the
        stop event's ``model``. ``latency`` is the call's duration (default 0).
        ``partials`` are what a stream call yields before its final ``result``, spread over
        the latency or spaced by ``chunk_latency`` (see the module docstring).
        """
        name = self._scripted_name(function_name, "respond")
        owner = f"respond({name!r})"
        coerced_usage = Usage.coerce(usage, name=f"{owner}: usage")
        if model is not None and not isinstance(model, str):
            raise TypeError(f"{owner}: model={model!r}: expected a str or None")
        if not isinstance(reusable, bool):
            raise TypeError(f"{owner}: reusable={reusable!r}: expected True or False")
        latency_ns = None if latency is None else parse_duration_ns(latency, name=f"{owner}: latency")
        values: tuple[Any, ...] = ()
        if partials is not None:
            if isinstance(partials, (str, bytes)) or not isinstance(partials, Sequence):
                raise TypeError(f"{owner}: partials={_short(partials)}: expected a list of partial values")
            values = tuple(partials)
        elif chunk_latency is not None:
            raise ValueError(f"{owner}: chunk_latency={chunk_latency!r} was given without partials")
        times, total = _schedule(len(values), latency_ns, chunk_latency, owner)
        outcome = ScriptedOutcome(
            function=name,
            kind="respond",
            result=result,
            usage=coerced_usage,
            model=model,
            latency_ns=total,
            partials=values,
            partial_times_ns=times,
            reusable=reusable,
            where=_where(),
        )
        self._shared.add(outcome)
        return outcome

    def fail(
        self,
        function_name: str,
        error: Any,
        *,
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
        stream calls yield its partials first.
        """
        name = self._scripted_name(function_name, "fail")
        owner = f"fail({name!r})"
        if not isinstance(reusable, bool):
            raise TypeError(f"{owner}: reusable={reusable!r}: expected True or False")
        latency_ns = None if latency is None else parse_duration_ns(latency, name=f"{owner}: latency")
        if isinstance(error, (Fault, str, BaseException)) or (isinstance(error, type) and issubclass(error, BaseException)):
            fault: Fault | Callable[..., Any] = coerce_error(error, name=f"{owner}: error")
        elif callable(error):
            fault = error
        else:
            coerce_error(error, name=f"{owner}: error")  # raises the TypeError naming what is accepted
            raise AssertionError("unreachable")  # pragma: no cover
        values: tuple[Any, ...] = ()
        times: tuple[int, ...] = ()
        total: int | None = latency_ns
        if isinstance(fault, Fault):
            if latency_ns is not None and fault.after_ns is not None:
                raise ValueError(
                    f"{owner}: latency={latency!r} and {fault!r} both set the time before the failure; give one"
                )
            effective = latency_ns if latency_ns is not None else fault.after_ns
            values = fault.partials or ()
            times, total = _schedule(len(values), effective, fault.chunk_latency, owner)
        outcome = ScriptedOutcome(
            function=name,
            kind="fail",
            error=fault,
            latency_ns=total,
            partials=values,
            partial_times_ns=times,
            reusable=reusable,
            where=_where(),
            _explicit_latency=latency_ns,
        )
        self._shared.add(outcome)
        return outcome

    # ------------------------------------------------------------------ bookkeeping

    def unused(self) -> list[ScriptedOutcome]:
        """Scripted outcomes no call used (a reusable one used once counts as used)."""
        return self._shared.unused()

    def assert_all_used(self) -> None:
        """Raise :class:`UnusedOutcomesError` (an ``AssertionError``) listing unused outcomes."""
        unused = self.unused()
        if not unused:
            return
        lines = [f"FakeBamlClient: {len(unused)} scripted outcome(s) were never used:"]
        lines += [f"  - {outcome.describe()}" for outcome in unused]
        lines.append(
            "Remove them, or allow this with @pytest.mark.baml_fake(assert_all_used=False)."
        )
        raise UnusedOutcomesError("\n".join(lines))

    def reset(self) -> None:
        """Forget every scripted outcome and recorded call (the clock is left as it is)."""
        self._shared.reset()

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
        client in built errors' ``client_name``.
        """
        if client is not None and not isinstance(client, str):
            raise TypeError(f"with_options(client={client!r}): expected the name of a BAML client, a str")
        for key, value in (("env", env), ("tags", tags)):
            if value is not None and not isinstance(value, Mapping):
                raise TypeError(f"with_options({key}={value!r}): expected a dict or None")
        if on_tick is not None and not callable(on_tick):
            raise TypeError(f"with_options(on_tick={on_tick!r}): expected a callable or None")
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
        return self._function(name, streaming=False)

    @property
    def stream(self) -> _StreamNamespace:
        """``fake.stream.SomeFunction(...)`` returns a stream, as ``b.stream.SomeFunction``."""
        return _StreamNamespace(self)

    def _function(self, name: str, *, streaming: bool) -> Callable[..., Any]:
        if not isinstance(name, str) or not name.isidentifier():
            raise AttributeError(f"{name!r} is not a BAML function name")
        spec = self._shared.spec
        sig = None
        if spec is not None:
            if name not in spec.signatures:
                raise AttributeError(spec.unknown(name))
            sig = (spec.stream_signatures if streaming else spec.signatures)[name]
        if streaming:
            def stream_function(*args: Any, **kwargs: Any) -> Any:
                return self._start_stream(name, args, kwargs)

            fn = stream_function
        elif self._is_async:
            async def async_function(*args: Any, **kwargs: Any) -> Any:
                return await self._acall(name, args, kwargs)

            fn = async_function
        else:
            def sync_function(*args: Any, **kwargs: Any) -> Any:
                return self._call(name, args, kwargs)

            fn = sync_function
        fn.__name__ = fn.__qualname__ = name
        if sig is not None:
            fn.__signature__ = sig  # type: ignore[attr-defined]
        return fn

    def _bind(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], streaming: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        call_options = kwargs.get("baml_options")
        if call_options is None:
            call_options = {}
        elif not isinstance(call_options, Mapping):
            raise TypeError(f"{name}(baml_options={call_options!r}): expected a dict of call options")
        spec = self._shared.spec
        if spec is not None:
            arguments = spec.bind(name, args, dict(kwargs), streaming)
        else:
            if args:
                raise TypeError(
                    f"{name}(): a FakeBamlClient without spec= cannot name the positional arguments "
                    f"{_short(args)}; pass them by keyword ({name}(resume=...)) or build the fake with spec=b"
                )
            arguments = {k: v for k, v in kwargs.items() if k != "baml_options"}
        return arguments, {**self._options, **call_options}

    def _begin(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], streaming: bool) -> tuple[FakeCall, _Plan]:
        arguments, options = self._bind(name, args, kwargs, streaming)
        record = FakeCall(name, arguments, streaming, self._is_async, options)
        controller = options.get("abort_controller")
        if controller is not None and getattr(controller, "aborted", False):
            with self._shared.lock:
                self._shared.calls.append(record)
            return record, _Plan(error=abort().build())
        outcome = self._shared.take(record)
        if outcome is None:
            error = self._shared.nothing_scripted(record)
            record.error = error
            raise error
        return record, self._plan(outcome, arguments, options)

    def _plan(self, outcome: ScriptedOutcome, arguments: dict[str, Any], options: dict[str, Any]) -> _Plan:
        if outcome.kind == "respond":
            return _Plan(
                result=outcome.result,
                usage=outcome.usage,
                model=outcome.model,
                partials=outcome.partials,
                partial_times=outcome.partial_times_ns,
                total_ns=outcome.latency_ns or 0,
            )
        client_name = options.get("client")
        error = outcome.error
        if isinstance(error, Fault):
            return _Plan(
                error=error.build(client_name=client_name),
                partials=outcome.partials,
                partial_times=outcome.partial_times_ns,
                total_ns=outcome.latency_ns or 0,
            )
        owner = f"fail({outcome.function!r}, {_short(error)})"
        try:
            produced = error(**arguments)  # type: ignore[misc]
        except Exception as exc:  # the callable raising is the scripted failure, as with respx
            return _Plan(error=exc, total_ns=outcome._explicit_latency or 0)
        if produced is None:
            raise TypeError(
                f"{owner}: the callable returned None; expected it to return or raise an exception "
                "(a fault, an exception class or instance)"
            )
        fault = coerce_error(produced, name=f"{owner} returned")
        explicit = outcome._explicit_latency
        if explicit is not None and fault.after_ns is not None:
            raise ValueError(f"{owner}: latency and the returned {fault!r} both set the time before the failure")
        values = fault.partials or ()
        times, total = _schedule(len(values), explicit if explicit is not None else fault.after_ns, fault.chunk_latency, owner)
        return _Plan(error=fault.build(client_name=client_name), partials=values, partial_times=times, total_ns=total)

    def _emitter_for(self, cc: _CallClock) -> Emitter:
        emitter = copy.copy(self._shared.emitter)
        emitter.clock = cc
        return emitter

    def _call_context(self, cc: _CallClock, record: FakeCall) -> Call:
        return self._emitter_for(cc).call(
            record.function,
            arguments=record.arguments,
            resource=self._shared.resource,
            action=self._shared.action,
            client_module=self._shared.client_module,
            streaming=False,
        )

    @staticmethod
    def _finish(call: Call, plan: _Plan) -> None:
        if plan.usage is not None:
            call.set_usage(plan.usage)
        if plan.model is not None:
            call.set_model(plan.model)
        call.set_result(plan.result)

    def _call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        record, plan = self._begin(name, args, kwargs, streaming=False)
        shared = self._shared
        cc = shared.new_clock()
        try:
            with self._call_context(cc, record) as call:
                record.span_context = call.span_context
                wait = shared.advance(cc, plan.total_ns)
                if wait:
                    time.sleep(wait)
                if plan.error is not None:
                    raise plan.error
                self._finish(call, plan)
        except BaseException as exc:
            record.error = exc
            record.duration_ns = cc.elapsed
            raise
        record.result = plan.result
        record.duration_ns = cc.elapsed
        return plan.result

    async def _acall(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        record, plan = self._begin(name, args, kwargs, streaming=False)
        shared = self._shared
        cc = shared.new_clock()
        try:
            async with self._call_context(cc, record) as call:
                record.span_context = call.span_context
                # Let the other tasks started together begin too, so that concurrent calls
                # overlap in virtual time (gather of 2 s and 1 s calls takes 2 s, not 3 s).
                await asyncio.sleep(0)
                await asyncio.sleep(shared.advance(cc, plan.total_ns))
                if plan.error is not None:
                    raise plan.error
                self._finish(call, plan)
        except BaseException as exc:
            record.error = exc
            record.duration_ns = cc.elapsed
            raise
        record.result = plan.result
        record.duration_ns = cc.elapsed
        return plan.result

    def _start_stream(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        record, plan = self._begin(name, args, kwargs, streaming=True)
        shared = self._shared
        cc = shared.new_clock()
        source: _FakeStreamBase = (_FakeAsyncStream if self._is_async else _FakeSyncStream)(shared, cc, plan)

        def before_end(call: Call, error: BaseException | None) -> None:
            record.duration_ns = cc.elapsed
            if error is None:
                self._finish(call, plan)
                record.result = plan.result
            else:
                record.error = error

        wrapped = self._emitter_for(cc).stream(
            source,
            name,
            arguments=record.arguments,
            resource=shared.resource,
            action=shared.action,
            client_module=shared.client_module,
            before_end=before_end,
        )
        record.span_context = wrapped.call.span_context
        return wrapped


class FakeBamlClient(_FakeBase):
    """A sync stand-in for a generated baml-py client ``b``; see the module docstring.

    ``emitter`` (default: a new :class:`Emitter` on the default dispatcher) receives every
    call's events, stamped with the fake's clock (the emitter's own clock is not used).
    ``clock`` (default: a new :class:`VirtualClock`) is advanced by scripted latency.
    ``spec`` (a generated client ``b``, its class, or the ``baml_client`` module) makes
    unknown functions and wrong arguments fail as on the real client. ``client_module``,
    ``resource`` and ``action`` are put in every event's metadata (who the call is made
    for, as with ``instrument(b, resource=..., action=...)``). ``real_sleep=True`` also
    sleeps for real.

    Calling ``fake.SomeFunction(**arguments)`` returns the scripted result (or raises the
    scripted error); positional arguments need a ``spec``. ``baml_options=`` is accepted
    and recorded as on the real client.
    """

    _is_async = False


class AsyncFakeBamlClient(_FakeBase):
    """The async twin of :class:`FakeBamlClient` (``await fake.SomeFunction(...)``,
    ``async for`` over ``fake.stream.SomeFunction(...)``); same constructor and scripting.
    ``FakeBamlClient.as_async()`` gives one sharing the sync fake's scripts."""

    _is_async = True


_FAKE_METHODS = tuple(name for name in dir(_FakeBase) if not name.startswith("_"))


class _StreamNamespace:
    """``fake.stream``: attribute access returns a function creating a stream."""

    __slots__ = ("_fake",)

    def __init__(self, fake: _FakeBase) -> None:
        self._fake = fake

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._fake._function(name, streaming=True)

    def __repr__(self) -> str:
        return f"<stream namespace of {self._fake!r}>"


# ---------------------------------------------------------------------------- streams


class _FakeStreamBase:
    """The scripted source a stream wrapper (``Emitter.stream``) reads from."""

    def __init__(self, shared: _Shared, cc: _CallClock, plan: _Plan) -> None:
        self._shared = shared
        self._cc = cc
        self._plan = plan
        self._next = 0

    def _next_partial(self) -> tuple[int, Any] | None:
        plan = self._plan
        i = self._next
        if i >= len(plan.partials):
            return None
        self._next = i + 1
        return plan.partial_times[i], plan.partials[i]

    def __repr__(self) -> str:
        return f"<fake stream: {self._next}/{len(self._plan.partials)} partials read>"


class _FakeSyncStream(_FakeStreamBase):
    """Like ``baml_py.BamlSyncStream``: iterate partials, then ``get_final_response()``."""

    def __iter__(self) -> Any:
        while True:
            step = self._next_partial()
            if step is None:
                return
            wait = self._shared.advance(self._cc, step[0])
            if wait:
                time.sleep(wait)
            yield step[1]

    def get_final_response(self) -> Any:
        self._next = len(self._plan.partials)
        wait = self._shared.advance(self._cc, self._plan.total_ns)
        if wait:
            time.sleep(wait)
        if self._plan.error is not None:
            raise self._plan.error
        return self._plan.result

    def close(self) -> None:
        self._next = len(self._plan.partials)


class _FakeAsyncStream(_FakeStreamBase):
    """Like ``baml_py.BamlStream``: ``async for`` partials, then ``await get_final_response()``."""

    async def __aiter__(self) -> Any:
        while True:
            step = self._next_partial()
            if step is None:
                return
            await asyncio.sleep(self._shared.advance(self._cc, step[0]))
            yield step[1]

    async def get_final_response(self) -> Any:
        self._next = len(self._plan.partials)
        await asyncio.sleep(self._shared.advance(self._cc, self._plan.total_ns))
        if self._plan.error is not None:
            raise self._plan.error
        return self._plan.result

    async def aclose(self) -> None:
        self._next = len(self._plan.partials)

