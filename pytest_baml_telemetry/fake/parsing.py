"""Real parsing offline: ``respond(fn, raw="...")`` reads model text with baml-py's own parser.

(Being built for issue 13: :func:`parse_raw` is the one entry point the script uses.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import ClientSpec

__all__ = ["RawAnswer", "parse_raw"]


@dataclass(eq=False)
class RawAnswer:
    """What baml-py's parser made of a ``respond(raw=...)``: the final ``result`` and the stream
    ``partials`` (one per chunk group), or, when the text does not parse, ``fails`` with
    :meth:`error` building what a real call raises."""

    text: str
    result: Any = None
    partials: tuple[Any, ...] = ()
    fails: bool = False

    def error(self, streaming: bool) -> BaseException:
        """A fresh ``BamlValidationError`` for a call (``streaming``: a stream's form)."""
        raise NotImplementedError("respond(raw=...): parsing is being built (issue 13)")


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
    """Check ``respond(raw=, chunks=)`` and parse the text with the spec's ``b.parse``/``b.parse_stream``."""
    raise NotImplementedError(f"{owner}: raw= is being built (issue 13)")
