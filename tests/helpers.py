"""Helpers shared by the test modules (import them with ``from helpers import ...``).

pytest puts ``tests/`` on ``sys.path`` (rootdir-relative ``prepend`` import mode, no
``__init__.py``), so this module imports as ``helpers`` from any test file, with or
without xdist. Fixtures stay in the test modules; only plain code lives here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_baml_telemetry import Dispatcher, Emitter, VirtualClock


@dataclass
class Env:
    """A private dispatcher, a virtual clock and an emitter on both, for one test."""

    dispatcher: Dispatcher
    clock: VirtualClock
    emitter: Emitter

    def call(
        self,
        function: str = "ExtractResume",
        *,
        latency: str | int = "10ms",
        usage: tuple | None = (100, 20),
        model: str | None = "gpt-4o",
        fail: BaseException | None = None,
        streaming: bool = False,
        first_chunk_after: str | None = None,
        arguments: dict | None = None,
        result: object = None,
        **extra: object,
    ) -> None:
        """Emit one call: ``latency`` (a duration, or an int of nanoseconds) on the virtual
        clock, then ``fail`` raised inside the call (and swallowed here) or the usage and result."""
        try:
            with self.emitter.call(function, streaming=streaming, arguments=arguments) as call:
                if first_chunk_after is not None:
                    self.clock.advance(first_chunk_after)
                    call.mark_first_chunk()
                if isinstance(latency, int):
                    self.clock.advance_ns(latency)
                else:
                    self.clock.advance(latency)
                if model is not None:
                    call.set_model(model)
                if extra:
                    call.set(**extra)
                if fail is not None:
                    raise fail
                if usage is not None:
                    call.set_usage(*usage)
                if result is not None:
                    call.set_result(result)
        except BaseException as exc:
            if exc is not fail:
                raise


def make_env(name: str) -> Env:
    """An :class:`Env` on a new dispatcher called ``name``."""
    dispatcher = Dispatcher(name)
    clock = VirtualClock()
    return Env(dispatcher, clock, Emitter(dispatcher=dispatcher, clock=clock))


def user_test_header(name: str, model: str) -> str:
    """The top of a pytester test file: imports and ``call()``, one emitted call of 10 ms with usage 1/1."""
    return (
        "import pytest\n"
        "from pytest_baml_telemetry import Emitter\n"
        "from pytest_baml_telemetry.clock import VirtualClock\n\n"
        f"def call(name={name!r}, model={model!r}):\n"
        "    clock = VirtualClock()\n"
        "    with Emitter(clock=clock).call(name) as c:\n"
        "        clock.advance('10ms')\n"
        "        c.set_model(model)\n"
        "        c.set_usage(1, 1)\n"
    )


def no_crash(result: Any, *forbidden: str) -> str:
    """The run's output; fails on an INTERNALERROR, a traceback, or any of ``forbidden``."""
    out = result.stdout.str() + result.stderr.str()
    for text in ("INTERNALERROR", "Traceback", *forbidden):
        assert text not in out, out
    return out
