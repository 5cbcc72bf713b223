"""What every provider wire format shares: content text, streamed pieces, usage, statuses, SSE.

Standard library (and ``_validate``) only: the fake server's child process imports this
module without the package (see ``wire/__init__.py``). The ``check_*`` and
``content_text``/``usage_counts`` functions check what a test scripted and raise
``TypeError``/``ValueError`` naming the bad value; the others take checked values.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Union

from .._validate import check_count, check_int, fail, is_int, short_repr

__all__ = [
    "DONE",
    "UsageLike",
    "USAGE_KEYS",
    "content_text",
    "check_chunks",
    "split_content",
    "usage_counts",
    "check_status",
    "sse_event",
    "sse_data",
]

UsageLike = Union[Mapping[str, Any], Sequence[Any], Any]
"""A ``Usage``-like object (``input_tokens``/``output_tokens``/``cached_input_tokens``
attributes), a dict with those keys, or an ``(input, output[, cached_input])`` tuple."""

USAGE_KEYS = ("input_tokens", "output_tokens", "cached_input_tokens")
DONE = "[DONE]"
"""The data of the event that ends an OpenAI-style stream."""


def content_text(content: Any, where: str) -> str:
    """Scripted content as the text the model "says": a str as is, a dict/list JSON-encoded."""
    if isinstance(content, str):
        return content
    if isinstance(content, (dict, list)):
        return json.dumps(content)
    fail(
        TypeError,
        f"{where}: content={short_repr(content)} ({type(content).__name__}) is not text",
        "a str (or a dict/list, sent JSON-encoded)",
    )


def check_chunks(chunks: Any, content: str, where: str) -> int | list[str] | None:
    """``None`` (one piece per word), an int >= 1 (that many pieces) or str pieces joining to ``content``."""
    if chunks is None:
        return None
    if is_int(chunks):
        return check_int(
            chunks, f"{where}: chunks={chunks!r}", minimum=1, expected="an int >= 1 (the number of streamed pieces)"
        )
    if isinstance(chunks, Sequence) and not isinstance(chunks, (str, bytes)):
        pieces = list(chunks)
        if not pieces or not all(isinstance(p, str) for p in pieces):
            fail(TypeError, f"{where}: chunks={short_repr(chunks)}", "a non-empty list of str")
        if "".join(pieces) != content:
            raise ValueError(
                f"{where}: chunks={short_repr(chunks)} do not join to the content {short_repr(content)}; "
                "the streamed pieces must concatenate to exactly the content"
            )
        return pieces
    fail(
        TypeError,
        f"{where}: chunks={short_repr(chunks)} ({type(chunks).__name__}) is not valid",
        "None (one chunk per word), an int >= 1 (that many pieces) or a list of str",
    )


def split_content(content: str, chunks: int | list[str] | None) -> list[str]:
    """The streamed pieces of ``content`` for checked ``chunks`` (see :func:`check_chunks`)."""
    if isinstance(chunks, list):
        return [str(c) for c in chunks]
    if isinstance(chunks, int) and chunks > 0:
        n = min(chunks, max(len(content), 1))
        size, extra = divmod(len(content), n)
        out, pos = [], 0
        for i in range(n):
            step = size + (1 if i < extra else 0)
            out.append(content[pos : pos + step])
            pos += step
        return out
    # default: one piece per word, whitespace attached to the word before it
    out = []
    word = ""
    for ch in content:
        if word and not ch.isspace() and word[-1].isspace():
            out.append(word)
            word = ""
        word += ch
    if word or not out:
        out.append(word)
    return out


def _token_count(value: Any, key: str, usage: Any) -> int | None:
    return check_count(value, f"usage {key}={value!r} in {short_repr(usage)}", optional=True)


def usage_counts(usage: UsageLike | None) -> tuple[int | None, int | None, int | None] | None:
    """``(input, output, cached_input)`` of a usage description (``None``: no usage).

    Accepts any object with ``input_tokens``/``output_tokens`` (and optionally
    ``cached_input_tokens``) attributes, such as ``pytest_baml_telemetry.Usage`` or
    ``baml_py.Usage``; a dict with those keys; or an ``(input, output)`` /
    ``(input, output, cached_input)`` tuple. Each count is an int >= 0 or ``None``.
    """
    if usage is None:
        return None
    if isinstance(usage, Mapping):
        unknown = sorted(str(k) for k in usage if k not in USAGE_KEYS)
        if unknown:
            raise ValueError(
                f"usage={short_repr(usage)} has unknown key(s) {', '.join(unknown)}; expected {', '.join(USAGE_KEYS)}"
            )
        values = [usage.get(k) for k in USAGE_KEYS]
    elif isinstance(usage, (tuple, list)):
        if len(usage) not in (2, 3):
            raise ValueError(
                f"usage={short_repr(usage)} has {len(usage)} item(s); expected (input_tokens, output_tokens) "
                "or (input_tokens, output_tokens, cached_input_tokens)"
            )
        values = list(usage) + [None] * (3 - len(usage))
    elif hasattr(usage, "input_tokens") and hasattr(usage, "output_tokens"):
        values = [getattr(usage, k, None) for k in USAGE_KEYS]
    else:
        fail(
            TypeError,
            f"usage={short_repr(usage)} ({type(usage).__name__}) is not a usage",
            "a Usage-like object with input_tokens/output_tokens attributes, a dict with those keys, "
            "an (input, output) tuple, or None",
        )
    inp, out, cached = (_token_count(v, k, usage) for v, k in zip(values, USAGE_KEYS))
    return inp, out, cached


def check_status(status_code: Any, where: str) -> int:
    """An HTTP status: an int in 100..599."""
    return check_int(
        status_code,
        f"{where}: status_code={short_repr(status_code)}",
        minimum=100,
        maximum=599,
        expected="an HTTP status, an int in 100..599",
    )


def sse_event(data: Any) -> bytes:
    """One server-sent event, ``data: <compact JSON>\\n\\n`` (a str is sent as is, e.g. ``DONE``)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def sse_data(line: str) -> str | None:
    """The data of a server-sent-event ``data:`` line (``None`` for any other line)."""
    return line[5:].strip() if line.startswith("data:") else None
