"""Run every ``benchmarks/bench_*.py`` and print one markdown table of the results.

Run:  python benchmarks/run_all.py [--quick] [--only NAME ...] [--verbose]

Each script runs in its own subprocess (one after the other, never two at once, so they
do not compete for the CPU), with ``--quick`` passed on when given (fewer iterations: a
rough figure in a fraction of the time). A script reports through its last line,
``RESULT {json}`` with a ``rows`` list of ``{benchmark, measured, baseline, ratio, target,
status}``.

The table has one row per figure: benchmark | measured | baseline | ratio | target |
result (PASS / FAIL against the SPEC section 8 target, blank for figures without one,
ERROR when a script crashed or printed nothing parseable). The exit status is 1 when a
row is FAIL or ERROR. ``--verbose`` also prints every script's own output. ``--write-readme README.md`` replaces
the table of that file's "## Performance" section with this one (results written as met /
missed), leaving the text around it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ORDER = ["dispatch", "compiled", "capture", "fake_client", "aggregator", "instrument", "plugin_overhead", "server_http"]
COLUMNS = ("benchmark", "measured", "baseline", "ratio", "target", "status")
HEADINGS = ("benchmark", "measured", "baseline", "ratio", "target", "result")

Row = dict[str, str]


def discover() -> list[Path]:
    """Every ``bench_*.py`` next to this file, the known ones in a sensible order first."""
    found = {p.stem[len("bench_") :]: p for p in HERE.glob("bench_*.py")}
    known = [found.pop(name) for name in ORDER if name in found]
    return known + [found[name] for name in sorted(found)]


def row(benchmark: str, measured: str, baseline: str = "", ratio: str = "", target: str = "", status: str = "") -> Row:
    return dict(zip(COLUMNS, (benchmark, measured, baseline, ratio, target, status)))


def result_line(output: str) -> dict[str, Any] | None:
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return None


# ----------------------------------------------------------------------------- running


def run(script: Path, quick: bool, timeout: float, verbose: bool) -> list[Row]:
    cmd = [sys.executable, str(script), *(["--quick"] if quick else [])]
    print(f"running {script.name}{' --quick' if quick else ''} ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    except subprocess.TimeoutExpired:
        return [row(script.name, f"timed out after {timeout:g} s", status="ERROR")]
    took = time.perf_counter() - t0
    print(f"  {script.name}: exit {proc.returncode} after {took:.0f} s", file=sys.stderr, flush=True)
    if verbose:
        print(proc.stdout, file=sys.stderr)
    try:
        data = result_line(proc.stdout)
        if data is None or not isinstance(data.get("rows"), list):
            raise ValueError(f"{script.name} printed no RESULT line with rows")
        rows = [{k: str(r.get(k, "")) for k in COLUMNS} for r in data["rows"]]
    except (ValueError, KeyError, TypeError) as exc:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        detail = " / ".join(tail) if tail else str(exc)
        return [row(script.name, f"exit {proc.returncode}: {exc}; {detail}"[:300], status="ERROR")]
    if proc.returncode not in (0, 1) and not any(r["status"] == "ERROR" for r in rows):
        rows.append(row(script.name, f"exit status {proc.returncode}", status="ERROR"))
    return rows


def markdown(rows: list[Row]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    table = [[cell(r[k]) for k in COLUMNS] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(HEADINGS)]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(HEADINGS, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(t, widths)) + " |" for t in table]
    return "\n".join(lines)


README_RESULTS = {"PASS": "met", "FAIL": "missed", "ERROR": "ERROR", "": ""}


def write_readme(path: Path, rows: list[Row]) -> None:
    """Replace the first table under ``## Performance`` in ``path`` with ``rows``."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    try:
        heading = lines.index("## Performance")
        first = next(i for i in range(heading + 1, len(lines)) if lines[i].startswith("| benchmark"))
    except (ValueError, StopIteration):
        raise SystemExit(f"--write-readme {path}: no '## Performance' section with a '| benchmark' table") from None
    last = first
    while last < len(lines) and lines[last].startswith("|"):
        last += 1
    shown = [{**r, "status": README_RESULTS.get(r["status"], r["status"])} for r in rows]
    lines[first:last] = markdown(shown).split("\n")
    path.write_text("\n".join(lines), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script (fewer iterations)")
    parser.add_argument(
        "--only", action="append", metavar="NAME", help="run only scripts whose name contains NAME (repeatable)"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per script (default 900)")
    parser.add_argument("--verbose", action="store_true", help="also print each script's own output (to stderr)")
    parser.add_argument("--write-readme", type=Path, metavar="README", help="write the table into README's Performance section")
    opts = parser.parse_args(argv)
    scripts = discover()
    if opts.only:
        scripts = [s for s in scripts if any(n in s.stem for n in opts.only)]
        if not scripts:
            parser.error(f"--only {opts.only}: no benchmarks/bench_*.py matches; have {[s.name for s in discover()]}")
    started = time.perf_counter()
    rows: list[Row] = []
    for script in scripts:
        rows.extend(run(script, opts.quick, opts.timeout, opts.verbose))
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()} "
        f"{platform.machine()}, {os.cpu_count()} CPU(s){'; --quick' if opts.quick else ''}; "
        f"{time.perf_counter() - started:.0f} s in all"
    )
    print()
    print(markdown(rows))
    if opts.write_readme is not None:
        write_readme(opts.write_readme, rows)
        print(f"\nwrote the table into {opts.write_readme}")
    bad = [r for r in rows if r["status"] in ("FAIL", "ERROR")]
    if bad:
        print()
        print(f"{len(bad)} row(s) FAIL or ERROR: " + "; ".join(r["benchmark"] for r in bad))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
