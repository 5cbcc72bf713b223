"""What a scripted fault is: the :class:`Fault` object and how it builds its exception.

:mod:`.faults` creates faults (one function per failure mode, and the ``FAULTS``
registry); this module holds the object they return, the builders that turn its
attributes into a fresh ``baml_py.errors`` instance (texts from :mod:`.fault_messages`),
how several attempts combine into one error and one usage, and the shape of a
``FAULTS`` entry (:class:`FaultKind`, :class:`FaultArgument`). ``baml_py`` is imported
only when an exception is built.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..contract import Usage
from . import fault_messages as texts

__all__ = [
    "DEFAULT_CLIENT_NAME",
    "NOT_BILLED",
    "Fault",
    "FaultArgument",
    "FaultKind",
    "build_cancelled",
    "error_classes",
    "build_finish_reason",
    "build_http",
    "build_message_only",
    "build_timeout",
    "build_validation",
    "sum_usage",
]

DEFAULT_CLIENT_NAME = "FakeClient"
"""``client_name`` of built errors when neither the fault nor ``with_options(client=...)`` names one."""

NOT_BILLED = Usage(0, 0, 0)
"""The usage of a failure known not to be billed (an HTTP status >= 400, a refused connection)."""

def error_classes() -> Any:
    import baml_py.errors

    return baml_py.errors


class Fault:
    """A scripted failure: the exception to raise and the latency before it.

    Build one with the functions of this module (``timeout``, ``http_error``, ...), not
    directly. Attributes:

    - ``name``: the fault's name (``"timeout"``, ``"http_error"``, ...).
    - ``error_class_name``: the exception class (a name in ``baml_py.errors``, or a
      builtin such as ``"CancelledError"``); ``error_class`` resolves it.
    - ``attributes``: what the raised exception is built from (``status_code``,
      ``message``, ...). ``client_name`` is filled at call time when not given.
      ``stream_attributes`` replace some of them when the call is a stream.
    - ``after_ns`` / ``after``: the scripted latency before the failure (``None``: the
      one given to ``fail(latency=...)``, else 0).
    - ``partials``: for :func:`stream_failure`, the partial values a stream yields before
      failing (``None`` otherwise); ``inner`` is the fault it then raises.
    - ``usage``: the provider's token usage for the failed call: a ``Usage`` (``Usage(0, 0,
      0)`` for a failure known not to be billed: an HTTP status >= 400, a refused
      connection), or ``None`` when unknown (a timeout after the request was sent, a cut
      stream, an abort in flight, or a fault that answered without ``usage=``).
    - ``num_attempts``: how many attempts the call made (1, or N for :func:`attempts`).
    - ``client_name``: the client the (last) attempt used, or ``None`` (the call's client).
    - ``attempt_latencies_ns``: for :func:`attempts`, each attempt's latency (ns); else ``()``.
    - ``retry_after``: for :func:`http_error` / :func:`rate_limited`, the scripted
      ``Retry-After`` in seconds (never on the raised error: baml-py ignores it), else ``None``.
    """

    __slots__ = (
        "name", "error_class_name", "attributes", "after_ns", "partials", "chunk_latency", "inner", "_builder", "_class",
        "_shown", "usage", "num_attempts", "attempt_latencies_ns", "stream_attributes", "retry_after", "attempt_faults",
    )

    def __init__(
        self,
        name: str,
        error_class_name: str,
        attributes: Mapping[str, Any],
        builder: Callable[[type[BaseException], dict[str, Any]], BaseException],
        *,
        after_ns: int | None = None,
        partials: tuple[Any, ...] | None = None,
        chunk_latency: Any = None,
        inner: Fault | None = None,
        error_class: type[BaseException] | None = None,
        shown: str | None = None,
        usage: Usage | None = None,
        num_attempts: int | None = 1,
        attempt_latencies_ns: tuple[int, ...] = (),
        stream_attributes: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
        attempt_faults: tuple[Fault, ...] = (),
    ) -> None:
        self.name = name
        self.error_class_name = error_class_name
        self.attributes = dict(attributes)
        self.after_ns = after_ns
        self.partials = partials
        self.chunk_latency = chunk_latency
        self.inner = inner
        self._builder = builder
        self._class = error_class
        self._shown = shown
        self.usage = usage
        self.num_attempts = num_attempts
        self.attempt_latencies_ns = attempt_latencies_ns
        self.stream_attributes = None if stream_attributes is None else dict(stream_attributes)
        self.retry_after = retry_after
        self.attempt_faults = attempt_faults

    @property
    def client_name(self) -> str | None:
        """The client the (last) attempt used, as scripted; ``None``: the call's client."""
        value = self.attributes.get("client_name")
        return value if isinstance(value, str) else None

    @property
    def after(self) -> float | None:
        """The scripted latency in seconds, or ``None``."""
        return None if self.after_ns is None else self.after_ns / 1_000_000_000

    @property
    def error_class(self) -> type[BaseException]:
        """The exception class this fault raises (imports ``baml_py`` if needed)."""
        if self._class is not None:
            return self._class
        if self.error_class_name == "CancelledError":
            return asyncio.CancelledError
        return getattr(error_classes(), self.error_class_name)

    def build(self, *, client_name: str | None = None, streaming: bool = False) -> BaseException:
        """A fresh exception instance; ``client_name`` fills in a client the fault did not name,
        ``streaming=True`` gives the form baml-py raises on a stream (``b.stream.Fn(...)``)."""
        if self.inner is not None:
            return self.inner.build(client_name=client_name, streaming=streaming)
        if self.attempt_faults:
            return build_attempts(self.attempt_faults, client_name, streaming)
        attributes = dict(self.attributes)
        if streaming and self.stream_attributes:
            attributes.update(self.stream_attributes)
        if "client_name" in attributes and attributes["client_name"] is None:
            attributes["client_name"] = client_name or DEFAULT_CLIENT_NAME
        return self._builder(self.error_class, attributes)

    def __repr__(self) -> str:
        if self._shown is not None:
            return f"{self.name}({self._shown})"
        return f"{self.name}()"


# ---------------------------------------------------------------------- builders


def build_http(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    client, code, message = a["client_name"], a["status_code"], a["message"]
    if message is None:  # a body that did not parse: the runtime quotes its LLMErrorResponse
        message = texts.llm_error_response(client, code, a["raw_response"], a["parse_error"], a.get("latency_ns") or 0)
    detailed = texts.http_detail(client, a.get("code_name") or texts.code_name(code), message)
    return cls(client, message, code, detailed)


def build_timeout(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    return cls(a["client_name"], a["message"])


def build_validation(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    detailed = f"Parsing error: {a['message']}\nPrompt: {a['prompt']}\nRaw Response: {a['raw_output']}"
    return cls(a["prompt"], a["message"], a["raw_output"], detailed)


def build_finish_reason(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    detailed = f"Finish reason error: {a['message']}\nPrompt: {a['prompt']}\nRaw Response: {a['raw_output']}"
    if a["finish_reason"] is not None:
        detailed += f"\nFinish Reason: {a['finish_reason']}"
    return cls(a["prompt"], a["message"], a["raw_output"], a["finish_reason"], detailed)


def build_message_only(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    return cls(a["message"])


def build_cancelled(cls: type[BaseException], a: dict[str, Any]) -> BaseException:
    return cls() if a.get("message") is None else cls(a["message"])


def _attempt_line(exc: BaseException) -> str:
    """How one attempt reads in an ``"N failed attempts"`` detail."""
    if type(exc).__name__ == "BamlTimeoutError":
        return f'LLM client "{getattr(exc, "client_name", "")}" timed out: {getattr(exc, "message", "")}'
    detailed = getattr(exc, "detailed_message", None)
    if isinstance(detailed, str) and detailed:
        return detailed
    return str(exc.args[0]) if exc.args else type(exc).__name__


def build_attempts(faults: tuple[Fault, ...], client_name: str | None, streaming: bool) -> BaseException:
    errors = [f.build(client_name=client_name, streaming=streaming) for f in faults]
    last = errors[-1]
    if hasattr(last, "detailed_message"):  # a timeout has none, after retries too
        last.detailed_message = texts.attempts_detail([_attempt_line(e) for e in errors])
    return last


def sum_usage(usages: Sequence[Usage | None]) -> Usage | None:
    """The usage of several attempts: their sum, unknown (``None``) if any attempt's is."""
    if any(u is None for u in usages):
        return None
    known = [u for u in usages if u is not None]

    def total(name: str) -> int | None:
        values = [getattr(u, name) for u in known]
        return None if any(v is None for v in values) else sum(values)

    return Usage(total("input_tokens"), total("output_tokens"), total("cached_input_tokens"))


class FaultArgument:
    """One argument a fault is drawn with in property-based tests.

    ``name`` is the builder's keyword, ``examples`` the values drawn for it (in shrinking
    order) and ``optional`` says the argument may also be left out (drawn as ``None``).
    """

    __slots__ = ("name", "examples", "optional")

    def __init__(self, name: str, examples: Sequence[Any], *, optional: bool = False) -> None:
        self.name = name
        self.examples = tuple(examples)
        self.optional = optional

    def __repr__(self) -> str:
        optional = ", optional=True" if self.optional else ""
        return f"FaultArgument({self.name!r}, {self.examples!r}{optional})"


class FaultKind:
    """One entry of :data:`FAULTS`: a fault's name, its builder and how it is drawn.

    Calling the entry calls the builder (``FAULTS["timeout"](after="1s")``), and it shows
    the builder's name, docstring and signature, so ``FAULTS`` still reads as a table of
    builder functions. ``arguments`` are the :class:`FaultArgument` values the strategies
    draw (a fault with none is built with no arguments); ``drawn`` is ``False`` for a
    fault the strategies do not draw on its own (``stream_failure``, which they use to
    wrap the others).
    """

    def __init__(
        self, build: Callable[..., Fault], arguments: Sequence[FaultArgument] = (), *, drawn: bool = True
    ) -> None:
        functools.update_wrapper(self, build)
        self.name: str = build.__name__
        self.build = build
        self.arguments = tuple(arguments)
        self.drawn = drawn

    def __call__(self, *args: Any, **kwargs: Any) -> Fault:
        return self.build(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<fault {self.name!r}>"
