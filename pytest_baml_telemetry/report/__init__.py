"""The telemetry report: per (function, model) rows, totals and budget verdicts.

:mod:`.model` builds the data (:func:`build_report`, a plain dict); each output format is
one module that draws it: :mod:`.terminal` (:func:`render_terminal`), :mod:`.json`
(:func:`to_json`, :func:`write_json`, :data:`REPORT_SCHEMA`, the schema) and :mod:`.html`
(``render_html``, ``write_html``: one self-contained page). A new format is
one new module here that reads the same data. The sections the plugin adds to the data
have a module each: :mod:`.run` (the ``run`` metadata), :mod:`.by_test` (the per-test
``tests`` rows) and :mod:`.compare` (the ``compare`` section against a baseline report).
"""

from __future__ import annotations

from .json import REPORT_SCHEMA, to_json, write_json
from .model import build_report
from .terminal import render_terminal

__all__ = ["REPORT_SCHEMA", "build_report", "render_terminal", "to_json", "write_json"]
