"""pytest wiring: options, markers and fixtures. Behaviour lives in the other modules."""

from __future__ import annotations
