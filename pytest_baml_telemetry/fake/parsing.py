"""Real parsing offline: ``respond(fn, raw="...")`` reads model text with baml-py's own parser.

:func:`parse_raw` is the one entry point the script uses. It needs a fake spec'd on a real
generated client (``spec=b``, an async ``b``, an ``instrument(b)`` or the ``baml_client``
module; a client *class* has no parser to call) and asks that client's modular API:

- the final result is ``b.parse.<fn>(raw)`` (synchronous on an async client too);
- a stream's partials are ``b.parse_stream.<fn>(text so far)`` after each chunk of the
  raw text: ``chunks=[...]`` (strings that join to ``raw``; given alone, ``raw`` is their
  join), else ``raw`` cut into one chunk per word (as ``FakeLLMServer`` streams it). An
  element of ``chunks`` that is a list or tuple of strings is several provider chunks
  arriving together: one partial for all of them. As baml-py 0.226.3 does on a slow
  stream (measured on ``FakeLLMServer``), a chunk that leaves the parsed value as it was
  yields no partial, and a chunk the partial parser refuses yields none either.

When the final text does not parse, each call raises a fresh ``BamlValidationError`` as a
real call does: ``message`` ``"Failed to parse LLM response: <the parser's reason>"``
(the modular ``b.parse`` raises a plain ``BamlError`` whose text is that reason, plus a
Rust stack backtrace the runtime's call path leaves out), ``raw_output`` the text,
``prompt`` the prompt rendered from the call's arguments (``b.request.<fn>``; each message
as ``"<role>: <text>\\n"``, as the runtime prints it; ``""`` if it cannot be rendered) and
``detailed_message`` ``"Parsing error: ...\\nPrompt: ...\\nRaw Response: ..."``. The same on
a stream, whose partials are still yielded first. The provider answered, so the call's
tokens are the scripted ``usage``.

Rules: all parsing happens when ``respond`` is called (a call only builds its error, and
renders its prompt, when the text did not parse); nothing here is on a successful call's
path.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .._validate import check_str, fail, short_repr
from ..instrument import is_instrumented
from ..wire.common import split_content
from .faults import validation_error

if TYPE_CHECKING:
    from .spec import ClientSpec

__all__ = ["RawAnswer", "parse_raw"]

_PARSE_PREFIX = "Failed to parse LLM response: "
_BACKTRACE = "\n\nStack backtrace:"


@dataclass(eq=False)
class RawAnswer:
    """What baml-py's parser made of a ``respond(raw=...)``: the final ``result`` and the stream
    ``partials``, or, when the text does not parse, ``fails`` with :meth:`error` building what
    a real call raises.

    ``groups`` is the number of chunk groups the text arrived in and ``slots[i]`` the group
    partial ``i`` came with (chunks that changed nothing yield no partial), so that
    ``latency``/``chunk_latency`` schedule chunks, not partials.
    """

    text: str
    result: Any = None
    partials: tuple[Any, ...] = ()
    fails: bool = False
    message: str = ""
    """The ``BamlValidationError``'s message when ``fails``."""
    groups: int = 0
    slots: tuple[int, ...] = ()
    client: Any = field(default=None, repr=False)
    """The real generated client whose parser read the text (renders a failed call's prompt)."""
    function: str = field(default="", repr=False)

    def error(self, streaming: bool, arguments: Mapping[str, Any] | None = None) -> BaseException:
        """A fresh ``BamlValidationError`` for a call (``streaming``: a stream's form, which
        baml-py 0.226.3 builds the same way); its prompt rendered from the call's ``arguments``."""
        prompt = "" if arguments is None else render_prompt(self.client, self.function, arguments)
        fault = validation_error(raw_output=self.text, prompt=prompt, message=self.message)
        return fault.build(streaming=streaming)


def render_prompt(client: Any, function: str, arguments: Mapping[str, Any]) -> str:
    """The prompt as the runtime prints it in a ``BamlValidationError`` (``"<role>: <text>\\n"``
    per message), rendered by the client's ``b.request.<function>``; ``""`` when it cannot be
    (never raises: the call's error must still be raised)."""
    try:
        request = getattr(getattr(client, "request"), function)
        if inspect.iscoroutinefunction(request):  # an async client: its package's sync twin renders
            package = type(client).__module__.rpartition(".")[0]
            sync = getattr(sys.modules.get(f"{package}.sync_client") or importlib.import_module(f"{package}.sync_client"), "b")
            request = getattr(sync.request, function)
        messages = request(**arguments).body.json()["messages"]
        parts = []
        for message in messages:
            content = message["content"]
            if not isinstance(content, str):
                content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
            parts.append(f"{message['role']}: {content}\n")
        return "".join(parts)
    except Exception:
        return ""


def real_client(owner: str, spec: ClientSpec | None) -> Any:
    """The real generated client ``b`` whose parser ``raw=`` uses (clear errors otherwise)."""
    if spec is None:
        raise TypeError(
            f"{owner}: raw= parses the text with baml-py's own parser, which needs the fake built on the "
            "real generated client: FakeBamlClient(spec=b) (b from baml_client, sync or async, or the "
            "baml_client module); without spec= give the parsed value as result= instead"
        )
    source = spec.source
    if is_instrumented(source):
        source = source.__wrapped__
    if isinstance(source, types.ModuleType):
        if not hasattr(source, "b"):
            raise TypeError(
                f"{owner}: raw= needs a generated client to parse with, but the spec module "
                f"{source.__name__!r} has no `b`; build the fake with spec=b (baml_client.b)"
            )
        source = source.b
    if isinstance(source, type):
        raise TypeError(
            f"{owner}: raw= needs an instance of the generated client to parse with, but the fake was "
            f"spec'd on the class {source.__qualname__}; build it with spec=b (the client object, e.g. "
            "baml_client.b) or spec=baml_client (the module)"
        )
    if getattr(source, "parse", None) is None or getattr(source, "parse_stream", None) is None:
        raise TypeError(
            f"{owner}: raw= needs baml's modular API (b.parse / b.parse_stream) on the spec "
            f"{short_repr(source, 60)}; build the fake with spec=b, a client generated by baml-cli"
        )
    return source


def _groups(owner: str, raw: str | None, chunks: Sequence[Any] | None) -> tuple[str, list[str]]:
    """The raw text and the text of each chunk group (a group: one str, or a list of them)."""
    if raw is not None:
        check_str(raw, f"{owner}: raw={short_repr(raw, 60)}", empty=True, expected="the model's raw text, a str")
    if chunks is None:
        assert raw is not None
        return raw, split_content(raw, None)
    shown = f"{owner}: chunks={short_repr(chunks, 60)}"
    expected = "a list of str (each a provider chunk), or of lists of str (chunks arriving together)"
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Sequence):
        fail(TypeError, shown, f"a non-empty list: {expected}")
    if not chunks:
        fail(ValueError, shown, f"a non-empty list: {expected}")
    groups: list[str] = []
    for i, item in enumerate(chunks):
        if isinstance(item, str):
            groups.append(item)
            continue
        if isinstance(item, (list, tuple)) and item and all(isinstance(c, str) for c in item):
            groups.append("".join(item))
            continue
        fail(TypeError, f"{owner}: chunks[{i}]={short_repr(item, 60)}", f"a str or a non-empty list of str ({expected})")
    joined = "".join(groups)
    if raw is None:
        return joined, groups
    if joined != raw:
        raise ValueError(
            f"{owner}: chunks join to {short_repr(joined, 60)}, not to raw={short_repr(raw, 60)}; expected "
            "chunks that are the raw text cut into pieces (or give chunks alone)"
        )
    return raw, groups


def _reason(exc: BaseException) -> str:
    """The parser's reason, as the runtime's call path quotes it (without the Rust backtrace)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    cut = text.find(_BACKTRACE)
    return (text if cut < 0 else text[:cut]).rstrip()


def parse_raw(
    owner: str,
    spec: ClientSpec | None,
    function: str,
    *,
    raw: str | None,
    chunks: Sequence[Any] | None,
    result: Any,
    partials: Sequence[Any] | None,
) -> RawAnswer:
    """Check ``respond(raw=, chunks=)`` and parse the text with the spec's ``b.parse``/``b.parse_stream``.

    ``partials`` given with ``raw`` (and no ``chunks``) are the stream's, as scripted; the
    final result is still parsed from ``raw``.
    """
    if result is not None:
        raise ValueError(
            f"{owner}: result={short_repr(result, 60)} and raw= were both given; expected one: raw= is "
            "parsed into the result by baml-py's parser"
        )
    if partials is not None and chunks is not None:
        raise ValueError(
            f"{owner}: partials= and chunks= were both given; expected one: chunks= are parsed into the "
            "stream's partials by baml-py's partial parser"
        )
    text, groups = _groups(owner, raw, chunks)
    client = real_client(owner, spec)
    parse = getattr(client.parse, function, None)
    parse_stream = getattr(client.parse_stream, function, None)
    if parse is None or parse_stream is None:
        raise ValueError(f"{owner}: the spec's client has no parser for {function!r} (b.parse.{function})")
    from baml_py.errors import BamlError

    answer = RawAnswer(text, client=client, function=function)
    try:
        answer.result = parse(text)
    except BamlError as exc:
        answer.fails = True
        answer.message = _PARSE_PREFIX + _reason(exc)
    if partials is not None:
        if isinstance(partials, (str, bytes)) or not isinstance(partials, Sequence):
            raise TypeError(f"{owner}: partials={short_repr(partials, 60)}: expected a list of partial values")
        values = tuple(partials)
        if spec is not None:
            values = spec.coerce_partials(function, values, owner)
        answer.partials, answer.groups, answer.slots = values, len(values), tuple(range(len(values)))
        return answer
    found: list[Any] = []
    slots: list[int] = []
    so_far = ""
    for i, group in enumerate(groups):
        so_far += group
        try:
            value = parse_stream(so_far)
        except BamlError:
            continue  # baml-py yields only the events that parsed
        if found and value == found[-1]:
            continue  # nothing changed: no partial
        found.append(value)
        slots.append(i)
    answer.partials, answer.groups, answer.slots = tuple(found), len(groups), tuple(slots)
    return answer
