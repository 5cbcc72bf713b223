"""One call of a fake, from its arguments to its events: the per-call path of :mod:`.client`.

A :class:`FunctionCaller` is made once per BAML function of a fake (or of a derivative:
``with_options``, ``as_async``) when the function is looked up, and resolves then what no
call can change: the fake's emitter, clock (its bound methods), script, spec and event
metadata, and the derivative's options and whether they need checking. A call then only
binds its arguments, takes its outcome (read from the script at each call: scripting after
the look-up is seen), plans it (:func:`.script.plan_call`) and runs it through the emitter:
:meth:`~FunctionCaller.sync_function` (sync), :meth:`~FunctionCaller.acall` (async) and
:meth:`~FunctionCaller.stream` (a :mod:`.streams` source wrapped by ``Emitter.stream``).

Rules: nothing resolved here may change after the fake is built (a fake's emitter, clock,
spec and metadata are fixed at construction, a derivative's options at ``with_options``);
the per-call work stays on this path and nothing else is added to it. The end event's
metadata and a :class:`~pytest_baml_telemetry.contract.Usage` are written to the emitter call's
public ``model`` / ``extra`` / ``usage`` slots directly (``Call.set``'s checks would cost every
call, and these keys are known to be its own).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._validate import short_repr
from ..contract import Usage
from ..emitter import Call
from .call_options import OPTION_CHECKED, check_call_options
from .faults import abort
from .script import SCALAR_TYPES, FakeCall, plan_call, snapshot
from .streams import FakeAsyncStream, FakeStream, FakeSyncStream
from .timeline import CallClock, Plan, aborted

__all__ = ["Begun", "FunctionCaller"]

Begun = tuple[FakeCall, Plan, "str | None", Any, Any]
"""What :meth:`FunctionCaller.begin` hands the call: its record, its plan (possibly shared with
the outcome's other calls: never changed), request id, abort controller and tags."""


def describe(call: Call, plan: Plan, request_id: str | None, tags: Any) -> None:
    """The end event's metadata, the same for a success and a failure."""
    call.model = plan.model
    extra: dict[str, Any] = {
        "provider": plan.provider, "client_name": plan.client_name, "num_attempts": plan.num_attempts,
        "request_id": request_id,
    }
    if tags is not None:
        extra["tags"] = dict(tags)
    call.extra = extra


def check_abort(controller: Any) -> None:
    """Raise the in-flight ``BamlAbortError`` if the call's ``controller`` was aborted (its
    tokens unknown: the answer may have been billed)."""
    error = aborted(controller)
    if error is not None:
        raise error


def end(call: Call, plan: Plan) -> None:
    """Set the plan's usage (a failure's too: the provider may have billed it), then raise
    its error or set its result."""
    usage = plan.usage
    if usage is not None:
        if type(usage) is Usage:
            call.usage = usage  # what set_usage(Usage) does, without its frame
        else:
            call.set_usage(usage)
    if plan.error is not None:
        raise plan.error
    call.set_result(plan.result)


class FunctionCaller:
    """What every call of one BAML function on one fake (or derivative) shares, resolved once."""

    __slots__ = (
        "name", "streaming", "is_async", "shared", "script", "timeline", "clock", "emitter", "spec", "resource",
        "action", "client_module", "options", "check_options",
    )

    def __init__(self, shared: Any, options: dict[str, Any], name: str, streaming: bool, is_async: bool) -> None:
        self.name = name
        self.streaming = streaming
        self.is_async = is_async
        self.shared = shared
        self.script = shared.script
        self.timeline = shared.timeline
        self.clock = shared.timeline.clock
        self.emitter = shared.emitter
        self.spec = shared.spec
        self.resource = shared.resource
        self.action = shared.action
        self.client_module = shared.client_module
        self.options = options  # the derivative's: never changed after with_options (a copy is recorded)
        self.check_options = bool(options) and not OPTION_CHECKED.isdisjoint(options)

    # ------------------------------------------------------------------ starting a call

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The call's arguments by name (``baml_options`` left out) and its options (the
        derivative's, then the call's ``baml_options``), both checked."""
        name = self.name
        call_options = kwargs.get("baml_options")
        if call_options is not None and not isinstance(call_options, Mapping):
            raise TypeError(f"{name}(baml_options={call_options!r}): expected a dict of call options")
        spec = self.spec
        if spec is not None:
            arguments = spec.bind(name, args, dict(kwargs), self.streaming)
        else:
            if args:
                raise TypeError(
                    f"{name}(): a FakeBamlClient without spec= cannot name the positional arguments "
                    f"{short_repr(args, 60)}; pass them by keyword ({name}(resume=...)) or build the fake with spec=b"
                )
            arguments = {k: v for k, v in kwargs.items() if k != "baml_options"}
        options = {**self.options, **call_options} if call_options else dict(self.options)
        if options and not OPTION_CHECKED.isdisjoint(options):
            check_call_options(name, options, self.is_async)
        return arguments, options

    def begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Begun:
        """Bind the call (:meth:`bind`), record it, take its outcome and plan it (nothing
        emitted yet): ``(record, plan, request_id, controller, tags)``, the last three the
        call's own (``None``: none)."""
        name = self.name
        streaming = self.streaming
        spec = self.spec
        if spec is None and not args and "baml_options" not in kwargs:  # the common case, bound as bind() would
            arguments = kwargs  # this call's own dict (made by ``**kwargs``)
            own = self.options
            if own:
                options = dict(own)
                if self.check_options:
                    check_call_options(name, options, self.is_async)
            else:
                options = {}
            problem = None
        else:
            arguments, options = self.bind(args, kwargs)
            problem = None if spec is None else spec.check_arguments(name, arguments)
        for value in arguments.values():  # as sent: the app may mutate its values afterwards
            if type(value) not in SCALAR_TYPES:
                arguments = snapshot(arguments)
                break
        record = FakeCall(name, arguments, streaming, self.is_async, options)
        script = self.script
        if problem is not None:
            # As the runtime: refused before any request (no outcome used, nothing billed, tokens
            # unknown); a call raises it when awaited/made, a stream when it is created. The
            # record's error marks it for stream().
            script.record(record)
            from baml_py.errors import BamlInvalidArgumentError

            record.error = BamlInvalidArgumentError(problem)
            return record, Plan(error=record.error, num_attempts=None if streaming else 0), None, None, None
        controller = options.get("abort_controller") if options else None
        if controller is not None and getattr(controller, "aborted", False):
            script.record(record)  # as in baml-py: no attempt was made; nothing was sent, so $0
            fault = abort()
            return record, Plan(error=fault.build(), usage=fault.usage, num_attempts=None), None, None, None
        outcome = script.take(record)
        if outcome is None:
            error = script.nothing_scripted(record)
            record.error = error
            raise error
        shared = self.shared
        request_id = f"fake-req-{next(shared.request_ids)}"
        try:
            plan = plan_call(outcome, arguments, options.get("client") if options else None, shared.defaults, streaming, spec)
        except Exception as exc:  # e.g. a computed result of the wrong shape: raised here, before any event
            record.error = exc
            raise
        return record, plan, request_id, controller, options.get("tags") if options else None

    def _context(self, cc: CallClock, record: FakeCall, streaming: bool) -> Call:
        return self.emitter.call(
            record.function, arguments=record.arguments, resource=self.resource, action=self.action,
            client_module=self.client_module, streaming=streaming, clock=cc,
        )

    # ------------------------------------------------------------------ the three shapes

    def sync_function(self) -> Callable[..., Any]:
        """The function a sync fake exposes for this BAML function: a sync call, its events, its
        virtual time, its result (or scripted error). One frame per call: :meth:`begin`'s common
        case (no spec, no options, keyword arguments only) is written out in it, and what it
        reads is bound here once."""
        name = self.name
        begin = self.begin
        script = self.script
        take = script.take
        request_ids = self.shared.request_ids
        defaults = self.shared.defaults
        simple = self.spec is None and not self.options  # bound as begin() would, without its frame
        timeline = self.timeline
        advance = timeline.advance
        monotonic_ns, time_ns = self.clock.monotonic_ns, self.clock.time_ns  # the fake's clock: fixed
        emitter_call = self.emitter.call
        resource, action, client_module = self.resource, self.action, self.client_module

        def sync_function(*args: Any, **kwargs: Any) -> Any:
            if simple and not args and "baml_options" not in kwargs:
                arguments = kwargs  # this call's own dict (made by ``**kwargs``)
                for value in arguments.values():  # as sent: the app may mutate its values afterwards
                    if type(value) not in SCALAR_TYPES:
                        arguments = snapshot(arguments)
                        break
                record = FakeCall(name, arguments, False, False, {})
                outcome = take(record)
                if outcome is None:
                    error = script.nothing_scripted(record)
                    record.error = error
                    raise error
                request_id: str | None = f"fake-req-{next(request_ids)}"
                try:
                    plan = plan_call(outcome, arguments, None, defaults, False, None)
                except Exception as exc:  # e.g. a computed result of the wrong shape: before any event
                    record.error = exc
                    raise
                controller = tags = None
            else:
                record, plan, request_id, controller, tags = begin(args, kwargs)
            cc = CallClock(monotonic_ns(), time_ns())
            try:
                with emitter_call(
                    name, arguments=record.arguments, resource=resource, action=action, client_module=client_module,
                    streaming=False, clock=cc,
                ) as call:
                    record.span_context = call.span_context
                    # describe() and end(), inlined: this is every sync call's path
                    call.model = plan.model
                    extra: dict[str, Any] = {
                        "provider": plan.provider, "client_name": plan.client_name, "num_attempts": plan.num_attempts,
                        "request_id": request_id,
                    }
                    if tags is not None:
                        extra["tags"] = dict(tags)
                    call.extra = extra
                    wait = advance(cc, plan.total_ns)
                    if wait:
                        time.sleep(wait)
                    if controller is not None:
                        check_abort(controller)
                    usage = plan.usage
                    if usage is not None:
                        if type(usage) is Usage:
                            call.usage = usage
                        else:
                            call.set_usage(usage)
                    if plan.error is not None:
                        raise plan.error
                    call.set_result(plan.result)
            except BaseException as exc:
                record.error = exc
                record.duration_ns = cc.elapsed
                raise
            record.result = plan.result
            record.duration_ns = cc.elapsed
            return plan.result

        return sync_function

    # The async twin of sync_function: the same steps with `async with` and awaited sleeps.
    async def acall(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """An async call (``await``): as :meth:`sync_function`'s, yielding to the loop at least once."""
        record, plan, request_id, controller, tags = self.begin(args, kwargs)
        timeline = self.timeline
        clock = self.clock
        cc = CallClock(clock.monotonic_ns(), clock.time_ns())
        try:
            async with self._context(cc, record, False) as call:
                record.span_context = call.span_context
                describe(call, plan, request_id, tags)
                # Let the other tasks started together begin too, so that concurrent calls
                # overlap in virtual time (gather of 2 s and 1 s calls takes 2 s, not 3 s).
                await asyncio.sleep(0)
                if controller is not None:  # aborted by a task that ran meanwhile
                    check_abort(controller)
                await asyncio.sleep(timeline.advance(cc, plan.total_ns))
                if controller is not None:
                    check_abort(controller)
                end(call, plan)
        except BaseException as exc:
            record.error = exc
            record.duration_ns = cc.elapsed
            raise
        record.result = plan.result
        record.duration_ns = cc.elapsed
        return plan.result

    def stream(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A stream call: the start event now, the end event at its final response."""
        record, plan, request_id, controller, tags = self.begin(args, kwargs)
        timeline = self.timeline
        clock = self.clock
        cc = CallClock(clock.monotonic_ns(), clock.time_ns())
        if record.error is not None:  # an argument the runtime refuses: raised as the stream is created
            with self._context(cc, record, True) as call:
                record.span_context = call.span_context
                describe(call, plan, request_id, tags)
                raise record.error
        source: FakeStream = (FakeAsyncStream if self.is_async else FakeSyncStream)(timeline, cc, plan, controller)

        def before_end(call: Call, error: BaseException | None) -> None:
            record.duration_ns = cc.elapsed
            describe(call, plan, request_id, tags)
            if plan.usage is not None and (error is None or error is plan.error):
                call.set_usage(plan.usage)
            if error is None:
                call.set_result(plan.result)
                record.result = plan.result
            else:
                record.error = error

        wrapped = self.emitter.stream(
            source, record.function, arguments=record.arguments, resource=self.resource, action=self.action,
            client_module=self.client_module, before_end=before_end, clock=cc,
        )
        record.span_context = wrapped.call.span_context
        return wrapped
