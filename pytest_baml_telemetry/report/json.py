'''The report as JSON: :data:`REPORT_SCHEMA`, :func:`to_json` and :func:`write_json`.

JSON schema ``"pytest-baml-telemetry/report/v1"``::

    {
      "schema": "pytest-baml-telemetry/report/v1",
      "percentile_method": "nearest-rank",   # exact: value at rank ceil(p/100*n)
      "duration_unit": "ns",                 # every *_ns field is an int of nanoseconds
      "price_table": str | null,             # where prices came from (a path), if any
      "rows": [                              # one per (function, model), sorted
        {
          "function": str, "model": str | null,
          "calls": int, "ok": int, "errors": int, "error_rate": float | null,
          "p50_ns": int | null, "p90_ns": ..., "p95_ns": ..., "p99_ns": ...,
          "min_ns": int | null, "max_ns": int | null, "mean_ns": float | null,
          "total_duration_ns": int,
          "input_tokens": int, "output_tokens": int, "cached_input_tokens": int,
          "total_tokens": int,               # input + output (known tokens only)
          "unknown_token_calls": int,        # calls (ok or failed) with unknown tokens
          "streams": int,                    # successful streaming calls
          "ttfc_p50_ns": int | null, "ttfc_p90_ns": ..., "ttfc_p95_ns": ..., "ttfc_p99_ns": ...,
          "ttfc_max_ns": int | null,         # time to first chunk of those streams (null: none)
          "cost_usd": float | null,          # null when the model is unpriced
          "cost_status": "priced" | "partial" | "unpriced" | "no usage"
        }, ...
      ],
      "totals": { same numeric fields over every call (no "function"/"model"),
                  "cost_usd": float (sum over priced rows),
                  "unpriced_models": [str], "cost_complete": bool },
      "budgets": [                           # one per (scope, budget), session first
        {
          "scope": "session" | "<test node id>",
          "budget": str,                     # label: name, filters and source
          "name": str | null, "source": str | null,
          "function": str | [str] | null, "model": str | [str] | null,
          "passed": bool,
          "expected": bool,                  # broken inside an xfailed test (XFAIL)
          "unverifiable": bool,              # some verdict could not be verified
          "verdicts": [
            {"key": str, "measured": int | float | null, "limit": int | float,
             "unit": "ns" | "calls" | "errors" | "ratio" | "tokens" | "usd",
             "passed": bool, "status": "passed" | "failed" | "unverifiable" | "xfailed",
             "unverifiable": bool, "expected": bool,
             "calls": int, "headline": str, "message": str,
             "worst_calls": [{"duration_ns": int, "function": str, "model": str | null,
                              "test_id": str | null, "ok": bool,
                              "input_tokens": int | null, "output_tokens": int | null}]}
          ]
        }, ...
      ],
      "summary": {"calls": int, "budgets": int,
                  "budgets_failed": int,         # failed or unverifiable, xfailed ones excluded
                  "budgets_expected": int, "budgets_unverifiable": int,
                  "not_recorded": int,           # call events the recorders could not record
                  "complete": bool,              # false: a lost xdist worker, an interrupted run
                  "incomplete": [str],           # why not complete
                  "passed": bool},               # no budget failed and the data is complete
      "not_recorded": {"count": int, "reasons": {str: int},
                       "first": {"event": str, "function": ..., "model": ..., "test_id": str | null,
                                 "measurements": {...}, "reason": str} | null},
      "run": {                                 # written by the plugin (report/run.py)
        "started": str, "finished": str | null,  # UTC, ISO 8601
        "python": str, "python_implementation": str,
        "baml_py": str | null, "plugin": str,    # versions (null: baml-py not installed)
        "xdist_workers": int,                    # workers that sent data home (0: no xdist)
        "pytest_args": [str]                     # secret values masked as "***", paths normalised
      },
      "tests": [                               # one per test id that made calls, sorted (report/by_test.py)
        {"test_id": str, "calls": int, "ok": int, "errors": int,
         "input_tokens": int | null, "output_tokens": int | null,   # null: some call's count unknown
         "cached_input_tokens": int | null, "total_tokens": int | null,
         "unknown_token_calls": int,
         "cost_usd": float | null,               # null: unpriced or partly unknown, never 0 for unknown
         "cost_status": "priced" | "partial" | "unpriced" | "no usage",
         "functions": [str]}, ...
      ],
      "compare": {                             # only with --baml-compare (report/compare.py)
        "baseline": str, "baseline_run": {...} | null,   # the baseline's path and "run"
        "tolerances": [{"key": str, "tolerance": str, "percent": float | null,
                        "absolute": float | null, "unit": str}],
        "rows": [{"function": str, "model": str | null,  # in both runs
                  "deltas": {KEY: {"baseline": num | null, "current": num | null,
                                   "delta": num | null, "percent": float | null}}}],
        "only_in_baseline": [{"function": str, "model": str | null}], "only_in_current": [...],
        "regressions": [{"function", "model", "key", "baseline", "current", "delta", "percent",
                         "tolerance": str, "unverifiable": bool, "message": str}],
        "passed": bool
      }
    }

With ``compare``, ``summary`` also has ``"regressions": int`` and ``summary.passed`` is
false when there is one. The ``run``, ``tests`` and ``compare`` sections extend v1 (a
reader of v1 that ignores unknown keys reads them unchanged); an older v1 report without
them is still a valid baseline.

An *unverifiable* verdict never passes: an event in its scope could not be recorded
(session: any; per test: one of that test), or (session budgets) a worker was lost or
the run interrupted.

``cost_status``: ``"priced"`` every call is priced (failed calls too: a failure the
provider answered is billed, never $0); ``"partial"`` some calls, successful or failed,
had unknown tokens and are not in ``cost_usd``; ``"unpriced"`` the model has no price
(``cost_usd`` is null, never 0); ``"no usage"`` nothing to price (only failed calls known
not to be billed, 0/0 tokens), ``cost_usd`` is 0. A verdict's fields are written by
:func:`pytest_baml_telemetry.budgets.verdict_record`.
'''

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from os import PathLike
from pathlib import Path
from typing import Any, Union

__all__ = ["REPORT_SCHEMA", "check_report", "to_json", "write_atomic", "write_json"]

REPORT_SCHEMA = "pytest-baml-telemetry/report/v1"
"""The ``schema`` tag of report data."""


def check_report(data: Any) -> Mapping[str, Any]:
    """``data`` when it is report data (its ``schema`` tag is :data:`REPORT_SCHEMA`), else ``ValueError``."""
    if not isinstance(data, Mapping) or data.get("schema") != REPORT_SCHEMA:
        got = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise ValueError(f"not report data (schema={got!r}); expected schema {REPORT_SCHEMA!r}")
    return data


def to_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe deep copy of report ``data`` (raises ``ValueError`` if it is not one)."""
    return json.loads(json.dumps(check_report(data), allow_nan=False))


def write_json(data: Mapping[str, Any], path: Union[str, PathLike[str]]) -> None:
    """Write report ``data`` to ``path`` as indented JSON (UTF-8, trailing newline), atomically (:func:`write_atomic`)."""
    write_atomic(json.dumps(to_json(data), indent=2, allow_nan=False) + "\n", path)


def write_atomic(text: str, path: Union[str, PathLike[str]]) -> None:
    """Write ``text`` to ``path`` (UTF-8) atomically: a temporary file in the same directory,
    then ``os.replace``, so a reader never sees a half-written report, and a failed write
    (``OSError``: disk full, directory gone) leaves the previous file as it was. An existing
    file keeps its permissions.
    """
    target = Path(path)
    try:
        mode = os.stat(target).st_mode & 0o777
    except OSError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name[:40]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
