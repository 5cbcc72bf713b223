"""What a fake is scripted to do, and the record of what it was asked to do.

``respond`` and ``fail`` queue *outcomes* per function name (:func:`respond_outcome` and
:func:`fail_outcome` check their arguments and build them). Calls of a function use its
outcomes in the order they were scripted, each once. A ``reusable=True`` outcome is used
for its turn and for every later call of that function: it stays at the head of its
queue forever, so it must be the last one scripted for its function (scripting another
after it raises ``ValueError``: it could never be used). A call with nothing left raises
:class:`NothingScriptedError` (an ``AssertionError``) listing what is scripted for which
function. ``unused()`` lists outcomes never used (a reusable outcome used at least once
counts as used); ``assert_all_used()`` raises :class:`UnusedOutcomesError` listing them.

Rules: a :class:`Script` is shared by a fake and all its derivatives and is safe to use
from several threads (one lock around its queues and records); every outcome remembers
where it was scripted (``file:line`` of the first caller outside the fake).
"""

from __future__ import annotations

import copy
import difflib
import functools
import os
import sys
import threading
import types
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from .._validate import check_bool, check_str, fail, short_repr
from ..clock import DurationLike, format_duration_ns, parse_duration_ns
from ..contract import Usage
from .faults import Fault, coerce_error
from .parsing import RawAnswer, parse_raw
from .timeline import Plan, schedule

if TYPE_CHECKING:
    from .spec import ClientSpec

__all__ = [
    "FakeCall",
    "NothingScriptedError",
    "SCALAR_TYPES",
    "Script",
    "ScriptedOutcome",
    "UnusedOutcomesError",
    "check_function_name",
    "check_metadata",
    "fail_outcome",
    "plan_call",
    "respond_outcome",
    "snapshot",
]

_HERE = os.path.dirname(os.path.abspath(__file__))
# Frames in these files are the fake's own; ``where`` reports the first caller outside them.
_OWN_FILES = frozenset(os.path.normcase(os.path.join(_HERE, name)) for name in ("script.py", "client.py"))


class NothingScriptedError(AssertionError):
    """A fake was called for a function with no scripted outcome left."""


class UnusedOutcomesError(AssertionError):
    """``assert_all_used()``: some scripted outcomes were never used."""


def where() -> str | None:
    """``file:line`` of the first caller outside the fake (where a script was written), the
    file relative to the working directory (the path work is cached per file and directory:
    every ``respond`` and ``fail`` asks)."""
    cwd = os.getcwd()
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not _is_own(filename, cwd):
            return f"{_shown(filename, cwd)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=512)
def _is_own(filename: str, cwd: str) -> bool:
    """Whether ``filename`` (relative ones taken from ``cwd``) is one of the fake's own files."""
    return os.path.normcase(os.path.abspath(os.path.join(cwd, filename))) in _OWN_FILES


@functools.lru_cache(maxsize=512)
def _shown(filename: str, cwd: str) -> str:
    """``filename`` relative to ``cwd`` (as given when it cannot be, e.g. on another drive)."""
    try:
        return os.path.relpath(filename, cwd)
    except ValueError:
        return filename


def check_function_name(function_name: Any, what: str) -> str:
    """The BAML function name given to ``respond``/``fail`` (a str that is an identifier)."""
    shown = f"{what}(function_name={function_name!r})"
    check_str(function_name, shown, empty=True, expected="the BAML function's name, a str")
    if not function_name.isidentifier():
        fail(ValueError, shown, "a BAML function name (an identifier)")
    return function_name


# ---------------------------------------------------------------------------- records


@dataclass(eq=False)
class ScriptedOutcome:
    """One scripted outcome: what ``respond`` or ``fail`` queued for a function.

    ``kind`` is ``"respond"`` or ``"fail"``. ``model``, ``provider`` and ``client_name``
    override the fake's defaults for this outcome (``None``: the default).
    ``failed_attempts`` are the faults of the attempts a ``respond`` succeeded after.
    ``latency_ns`` is the call's total latency, the failed attempts' included (for a
    ``fail`` given a callable, decided when it is called: ``None`` here).
    ``partial_times_ns`` are the offsets at which stream partials arrive.
    ``times_used`` counts the calls that used it. A ``respond`` whose ``result`` (or
    ``usage``) is a callable is ``computed``: it is called with the call's arguments.
    The calls of a fixed ``respond`` share one plan per client (:func:`plan_call`); setting
    a field after scripting drops it, so later calls see the new value.
    """

    function: str
    kind: str
    result: Any = None
    error: Fault | Callable[..., Any] | None = None
    usage: Any = None
    """A :class:`Usage`, ``None`` (unknown), or for a computed ``respond`` a callable returning one."""
    model: str | None = None
    provider: str | None = None
    client_name: str | None = None
    failed_attempts: tuple[Fault, ...] = ()
    latency_ns: int | None = 0
    partials: tuple[Any, ...] = ()
    partial_times_ns: tuple[int, ...] = ()
    reusable: bool = False
    where: str | None = None
    times_used: int = 0
    computed: bool = False
    """True when ``result`` or ``usage`` is a callable asked at each call (see :func:`plan_call`)."""
    raw: RawAnswer | None = None
    """For ``respond(raw=...)``: the model text as baml-py's own parser read it (see :mod:`.parsing`)."""
    merge: bool = False
    """Stream partials queued when the consumer reads are merged into one, as baml-py does."""
    _explicit_latency: int | None = field(default=None, repr=False)
    _plans: ClassVar[dict[str | None, Plan] | None] = None  # not a field: a fixed respond's plans per client (plan_call)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name != "times_used" and self._plans is not None:  # a field changed: the plans made from it are stale
            object.__setattr__(self, "_plans", None)

    @property
    def latency(self) -> float | None:
        """The scripted latency in seconds (``None`` when a callable decides it)."""
        return None if self.latency_ns is None else self.latency_ns / 1_000_000_000

    def describe(self) -> str:
        """A one-line description such as ``respond('X', 'hi', latency=850.0ms)``."""
        parts = [repr(self.function)]
        if self.kind == "respond":
            parts.append(short_repr(self.result, 60))
            if self.usage is not None:
                parts.append(f"usage={self.usage!r}")
            if self.raw is not None:
                parts.append(f"raw={short_repr(self.raw.text, 40)}")
            if self.partials:
                parts.append(f"partials=<{len(self.partials)}>")
            if self.merge:
                parts.append("merge=True")
            if self.failed_attempts:
                parts.append(f"failed_attempts={list(self.failed_attempts)!r}")
        else:
            parts.append(repr(self.error) if isinstance(self.error, Fault) else short_repr(self.error, 60))
        for key in ("model", "provider", "client_name"):
            value = getattr(self, key)
            if value is not None:
                parts.append(f"{key}={value!r}")
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
    one, ``baml_options`` left out), a snapshot taken when the call was made (deep copies
    of mutable values: later changes by the app do not show); ``options`` merges ``with_options(...)`` and the
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


SCALAR_TYPES = frozenset({str, int, float, bool, type(None), bytes, complex})


def snapshot(arguments: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments as they were when it was made: ``arguments`` itself when every
    value is an immutable scalar (the common case, one type look-up per argument), else a
    copy whose values are deep copies (a value that cannot be deep-copied is copied
    shallowly, else kept as it is: recording never fails the call)."""
    for value in arguments.values():
        if type(value) not in SCALAR_TYPES:
            break
    else:
        return arguments
    copied: dict[str, Any] = {}
    for key, value in arguments.items():
        if type(value) in SCALAR_TYPES:
            copied[key] = value
            continue
        try:
            copied[key] = copy.deepcopy(value)
        except Exception:
            try:
                copied[key] = copy.copy(value)
            except Exception:
                copied[key] = value
    return copied


# ---------------------------------------------------------------------------- building outcomes


def check_metadata(owner: str, model: Any, provider: Any, client_name: Any) -> None:
    """``model``/``provider``/``client_name`` given to respond, fail or the fake: each a str or ``None``."""
    for key, value in (("model", model), ("provider", provider), ("client_name", client_name)):
        if value is not None and not isinstance(value, str) or value == "":
            check_str(value, f"{owner}: {key}={short_repr(value, 60)}", optional=True, expected="a non-empty str or None")


def _failed_attempts(owner: str, failed_attempts: Any) -> tuple[tuple[Fault, ...], int]:
    """The faults of ``respond(failed_attempts=[...])`` and the latency they add up to."""
    if failed_attempts is None:
        return (), 0
    shown = f"{owner}: failed_attempts={short_repr(failed_attempts, 60)}"
    if isinstance(failed_attempts, (str, bytes)) or not isinstance(failed_attempts, Sequence):
        fail(TypeError, shown, "a list of faults (faults.rate_limited(), faults.timeout(after='1s'), ...) or None")
    attempts = tuple(coerce_error(f, name=f"{owner}: failed_attempts[{i}]") for i, f in enumerate(failed_attempts))
    return attempts, sum(_attempt_latency_ns(f) for f in attempts)


def _fault_after_ns(fault: Fault) -> int | None:
    """How long a fault takes: its ``after``, else the sum of its attempts' latencies, else ``None``."""
    if fault.after_ns is not None:
        return fault.after_ns
    latencies = getattr(fault, "attempt_latencies_ns", None)
    return sum(latencies) if latencies else None


def _attempt_latency_ns(fault: Fault) -> int:
    return _fault_after_ns(fault) or 0


def respond_outcome(
    name: str,
    result: Any,
    *,
    usage: Usage | Mapping[str, Any] | tuple[int | None, ...] | None,
    model: str | None,
    provider: str | None = None,
    client_name: str | None = None,
    latency: DurationLike | None,
    failed_attempts: Sequence[Any] | None = None,
    reusable: bool,
    partials: Sequence[Any] | None,
    chunk_latency: DurationLike | Sequence[DurationLike] | None,
    raw: str | None = None,
    chunks: Sequence[Any] | None = None,
    merge: bool = False,
    spec: ClientSpec | None = None,
) -> ScriptedOutcome:
    """The outcome ``respond(name, result, ...)`` queues, its arguments checked.

    With ``raw`` (or ``chunks``) the result and partials are what baml-py's parser makes of
    the model text (:func:`.parsing.parse_raw`); with a ``spec`` a given ``result`` and
    ``partials`` are checked against (and coerced into) the function's declared types.
    """
    owner = f"respond({name!r})"
    check_bool(merge, f"{owner}: merge={merge!r}")
    computed_usage = callable(usage) and not isinstance(usage, type)
    coerced_usage: Any = usage if computed_usage else Usage.coerce(usage, name=f"{owner}: usage")
    check_metadata(owner, model, provider, client_name)
    check_bool(reusable, f"{owner}: reusable={reusable!r}")
    latency_ns = None if latency is None else parse_duration_ns(latency, name=f"{owner}: latency")
    attempts, attempts_ns = _failed_attempts(owner, failed_attempts)
    values: tuple[Any, ...] = ()
    answer: RawAnswer | None = None
    computed = computed_usage or (callable(result) and not isinstance(result, type))
    if raw is not None or chunks is not None:
        answer = parse_raw(owner, spec, name, raw=raw, chunks=chunks, result=result, partials=partials)
        result, values = answer.result, answer.partials
    elif partials is not None:
        if isinstance(partials, (str, bytes)) or not isinstance(partials, Sequence):
            raise TypeError(f"{owner}: partials={short_repr(partials, 60)}: expected a list of partial values")
        values = tuple(partials)
    elif chunk_latency is not None:
        raise ValueError(f"{owner}: chunk_latency={chunk_latency!r} was given without partials")
    if spec is not None and answer is None:
        if not (callable(result) and not isinstance(result, type)):
            result = spec.coerce_result(name, result, owner)
        values = spec.coerce_partials(name, values, owner)
    if answer is None:
        times, total = schedule(len(values), latency_ns, chunk_latency, owner)
    else:  # the raw text's chunks are scheduled; a chunk that changed nothing yields no partial
        times, total = schedule(answer.groups, latency_ns, chunk_latency, owner, "chunks")
        times = tuple(times[slot] for slot in answer.slots)
    if attempts_ns:  # the failed attempts come first; the answer's partials follow them
        times = tuple(t + attempts_ns for t in times)
        total += attempts_ns
    return ScriptedOutcome(
        function=name,
        kind="respond",
        result=result,
        usage=coerced_usage,
        model=model,
        provider=provider,
        client_name=client_name,
        failed_attempts=attempts,
        latency_ns=total,
        partials=values,
        partial_times_ns=times,
        reusable=reusable,
        where=where(),
        computed=computed,
        raw=answer,
        merge=merge,
    )


def fail_outcome(
    name: str,
    error: Any,
    *,
    model: str | None = None,
    provider: str | None = None,
    client_name: str | None = None,
    latency: DurationLike | None,
    reusable: bool,
    spec: ClientSpec | None = None,
) -> ScriptedOutcome:
    """The outcome ``fail(name, error, ...)`` queues, its arguments checked (with a ``spec``,
    a ``stream_failure``'s partials validated against the function's stream type)."""
    owner = f"fail({name!r})"
    check_metadata(owner, model, provider, client_name)
    check_bool(reusable, f"{owner}: reusable={reusable!r}")
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
        effective = latency_ns if latency_ns is not None else _fault_after_ns(fault)
        values = fault.partials or ()
        if spec is not None and values:
            values = spec.coerce_partials(name, tuple(values), owner)
        times, total = schedule(len(values), effective, fault.chunk_latency, owner)
    # The same record as respond_outcome builds, with a failure's fields instead of a result's.
    return ScriptedOutcome(
        function=name,
        kind="fail",
        error=fault,
        model=model,
        provider=provider,
        client_name=client_name,
        latency_ns=total,
        partials=values,
        partial_times_ns=times,
        reusable=reusable,
        where=where(),
        _explicit_latency=latency_ns,
    )


Defaults = Callable[[str, "str | None"], "tuple[str | None, str | None, str | None]"]
"""``defaults(function, client)``: the ``(client_name, provider, model)`` a call of
``function`` reports when its outcome does not say, ``client`` being the client the call
(or its fault) names, if any."""


def plan_call(
    outcome: ScriptedOutcome,
    arguments: dict[str, Any],
    client: str | None,
    defaults: Defaults,
    streaming: bool = False,
    spec: ClientSpec | None = None,
) -> Plan:
    """What a call using ``outcome`` does: a fresh error is built (or the callable asked) now.

    ``client`` is the call's ``with_options(client=...)``; ``defaults`` gives the metadata
    the outcome leaves open; a ``streaming`` call's error takes the form baml-py raises on a
    stream. A ``respond`` whose answer is fixed (no callable, no ``raw`` that fails to parse)
    has one plan per ``client``, made at its first call and shared by the later ones (plans
    are never changed; setting a field of the outcome drops them).
    """
    if outcome.kind == "respond":
        if not outcome.computed and (outcome.raw is None or not outcome.raw.fails):
            plans = outcome._plans
            if plans is None:
                plans = {}
                object.__setattr__(outcome, "_plans", plans)  # not through __setattr__, which drops them
            plan = plans.get(client)
            if plan is None:
                plan = plans[client] = _respond_plan(outcome, outcome.result, outcome.usage, None, client, defaults)
            return plan
        if outcome.computed:
            result, usage, raised = _compute(outcome, arguments)
            if raised is None and spec is not None and result is not outcome.result:
                result = spec.coerce_result(outcome.function, result, f"respond({outcome.function!r}): the callable's result")
        else:
            result, usage, raised = outcome.result, outcome.usage, None
        if outcome.raw is not None and outcome.raw.fails:
            raised = outcome.raw.error(streaming, arguments)  # a fresh error per call, as baml-py raises it
        return _respond_plan(outcome, result, usage, raised, client, defaults)
    error = outcome.error
    if isinstance(error, Fault):
        return _failure_plan(outcome, error, client, defaults, streaming, outcome.partials,
                             outcome.partial_times_ns, outcome.latency_ns or 0)
    owner = f"fail({outcome.function!r}, {short_repr(error, 60)})"
    try:
        produced = error(**arguments)  # type: ignore[misc]
    except Exception as exc:  # the callable raising is the scripted failure, as with respx
        client_name, provider, model = defaults(outcome.function, outcome.client_name or client)
        return Plan(
            error=exc, model=outcome.model or model, provider=outcome.provider or provider, client_name=client_name,
            total_ns=outcome._explicit_latency or 0,
        )
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
    times, total = schedule(len(values), explicit if explicit is not None else _fault_after_ns(fault), fault.chunk_latency, owner)
    return _failure_plan(outcome, fault, client, defaults, streaming, values, times, total)


def _respond_plan(
    outcome: ScriptedOutcome, result: Any, usage: Any, raised: BaseException | None, client: str | None,
    defaults: Defaults,
) -> Plan:
    """The plan of a ``respond``: ``result`` (or ``raised``) with ``usage``, the outcome's metadata
    over the defaults, its attempts, partials and latency."""
    client_name, provider, model = defaults(outcome.function, outcome.client_name or client)
    return Plan(
        result, raised, usage, outcome.model or model, outcome.provider or provider, client_name,
        len(outcome.failed_attempts) + 1, outcome.partials, outcome.partial_times_ns, outcome.latency_ns or 0,
        outcome.merge,
    )


def _compute(outcome: ScriptedOutcome, arguments: dict[str, Any]) -> tuple[Any, Usage | None, BaseException | None]:
    """``(result, usage, error)`` of a computed ``respond``: its callable ``result`` and/or
    ``usage`` called with the call's arguments (as pydantic-ai's ``FunctionModel`` calls its
    function). An exception raised by either is the call's error (its tokens unknown)."""
    result, usage = outcome.result, outcome.usage
    try:
        if callable(result) and not isinstance(result, type):
            result = result(**arguments)
        if callable(usage) and not isinstance(usage, type):
            usage = Usage.coerce(usage(**arguments), name=f"respond({outcome.function!r}): usage callable returned")
    except Exception as exc:
        return None, None, exc
    return result, usage, None


def _failure_plan(
    outcome: ScriptedOutcome,
    fault: Fault,
    client: str | None,
    defaults: Defaults,
    streaming: bool,
    partials: tuple[Any, ...],
    times: tuple[int, ...],
    total: int,
) -> Plan:
    """The plan of a call failing with ``fault``: its error names the call's client, and the
    exception event carries the fault's usage (``None``: unknown) and attempts."""
    fault_client = getattr(fault, "client_name", None) or fault.attributes.get("client_name")
    client_name, provider, model = defaults(outcome.function, fault_client or outcome.client_name or client)
    return Plan(
        error=fault.build(client_name=client_name, streaming=streaming),
        usage=getattr(fault, "usage", None),
        model=outcome.model or model,
        provider=outcome.provider or provider,
        client_name=client_name,
        num_attempts=getattr(fault, "num_attempts", 1),
        partials=partials,
        partial_times=times,
        total_ns=total,
    )


# ---------------------------------------------------------------------------- the script


class Script:
    """The queues of scripted outcomes per function and the record of every call.

    ``fake_methods`` are the names of the fake's own methods, named in the hint when a
    function called on the fake looks like a misspelt method.
    """

    def __init__(self, fake_methods: Collection[str] = ()) -> None:
        self.fake_methods = fake_methods
        self.lock = threading.Lock()
        # take() runs on every call: acquire/release bound once (cheaper than `with` on the hot path)
        self._acquire = self.lock.acquire
        self._release = self.lock.release
        self.queues: dict[str, list[ScriptedOutcome]] = {}
        self.heads: dict[str, int] = {}
        self.outcomes: list[ScriptedOutcome] = []
        self.calls: list[FakeCall] = []

    def add(self, outcome: ScriptedOutcome) -> ScriptedOutcome:
        """Queue ``outcome`` after the others scripted for its function; return it."""
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
        return outcome

    def record(self, record: FakeCall) -> None:
        """Record a call that uses no outcome (an already aborted call)."""
        with self.lock:
            self.calls.append(record)

    def take(self, record: FakeCall) -> ScriptedOutcome | None:
        """Record the call and hand it its function's next outcome (``None``: nothing left)."""
        function = record.function
        self._acquire()
        try:
            self.calls.append(record)
            queue = self.queues.get(function)
            if not queue:
                return None
            head = self.heads.get(function, 0)
            if head >= len(queue):
                return None
            outcome = queue[head]
            if not outcome.reusable:
                self.heads[function] = head + 1
            object.__setattr__(outcome, "times_used", outcome.times_used + 1)  # (no plan to drop: not __setattr__)
            record.outcome = outcome
            return outcome
        finally:
            self._release()

    def describe(self) -> str:
        """Every scripted outcome, per function, with how often it was used."""
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
        """The error for a call that found no outcome left, saying what is scripted."""
        args = ", ".join(f"{k}={short_repr(v, 40)}" for k, v in record.arguments.items())
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
        methods = difflib.get_close_matches(record.function, self.fake_methods, n=1, cutoff=0.75)
        if methods and record.function not in self.fake_methods:
            hint += f" ({methods[0]!r} is a method of the fake itself.)"
        return NothingScriptedError(
            f"FakeBamlClient: {call} was called but {why}.{hint}\n{self.describe()}\n"
            f"Script it with fake.respond({record.function!r}, result) or fake.fail({record.function!r}, fault)."
        )

    def unused(self) -> list[ScriptedOutcome]:
        """Outcomes no call used."""
        with self.lock:
            return [o for o in self.outcomes if o.times_used == 0]

    def assert_all_used(self) -> None:
        """Raise :class:`UnusedOutcomesError` listing the unused outcomes, if any."""
        unused = self.unused()
        if not unused:
            return
        lines = [f"FakeBamlClient: {len(unused)} scripted outcome(s) were never used:"]
        lines += [f"  - {outcome.describe()}" for outcome in unused]
        lines.append("Remove them, or allow this with @pytest.mark.baml_fake(assert_all_used=False).")
        raise UnusedOutcomesError("\n".join(lines))

    def reset(self) -> None:
        """Forget every outcome and recorded call."""
        with self.lock:
            self.queues.clear()
            self.heads.clear()
            self.outcomes.clear()
            self.calls.clear()
