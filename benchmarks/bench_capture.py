"""Capture throughput: events per second into an ``EventCapture``, against ``list.append``.

Run:  python benchmarks/bench_capture.py [--quick] [--events N] [--repeat R]

Every case keeps ``--events`` events (default 200,000) in memory, as a capture does, with
the garbage collector enabled (what a test run gets). The cases, interleaved in each of
``--repeat`` rounds (the best round of each is kept):

* baseline: a ``list.append((name, measurements, metadata))`` loop in this process:
  the least any in-process recorder of events can cost;
* ``Dispatcher.execute`` into an ``EventCapture`` attached to a private dispatcher (the
  dispatch plus the capture handler, payload dicts reused);
* ``Emitter.call`` (start + stop: two events per call) into an ``EventCapture``: the full
  path of an instrumented call, building fresh measurement/metadata dicts per event.

The same three are also measured with the garbage collector disabled, to show how much
of the cost is the collector walking the growing list of kept events (the figure that
shows what the capture itself costs).

Target (SPEC section 8): at least 1,000,000 captured events per second (execute path).
The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_baml_telemetry.capture import EventCapture  # noqa: E402
from pytest_baml_telemetry.dispatcher import Dispatcher  # noqa: E402
from pytest_baml_telemetry.emitter import Emitter  # noqa: E402

TARGET_EVENTS_PER_S = 1_000_000
EVENT = ("ash_baml", "call", "stop")
MEASUREMENTS = {"duration": 1200, "monotonic_time": 5, "input_tokens": 120, "output_tokens": 40}
METADATA = {"function_name": "ExtractResume", "telemetry_span_context": 1, "model": "gpt-4o"}


def run_baseline(n: int) -> tuple[float, int]:
    """``n`` appends of an event tuple to a list; returns (seconds, events kept)."""
    kept: list[Any] = []
    append = kept.append
    name, m, md = EVENT, MEASUREMENTS, METADATA
    t0 = time.perf_counter()
    for _ in range(n):
        append((name, m, md))
    dt = time.perf_counter() - t0
    return dt, len(kept)


def run_execute(n: int) -> tuple[float, int]:
    """``n`` ``execute`` calls into a capture on a private dispatcher."""
    dispatcher = Dispatcher("bench-capture")
    capture = EventCapture([EVENT], dispatcher=dispatcher).attach()
    execute = dispatcher.execute
    name, m, md = EVENT, MEASUREMENTS, METADATA
    t0 = time.perf_counter()
    for _ in range(n):
        execute(name, m, md)
    dt = time.perf_counter() - t0
    capture.detach()
    return dt, len(capture)


def run_emitter(n: int) -> tuple[float, int]:
    """``n // 2`` emitter calls (start + stop each) into a capture on a private dispatcher."""
    dispatcher = Dispatcher("bench-capture-emitter")
    emitter = Emitter(dispatcher=dispatcher)
    capture = EventCapture(dispatcher=dispatcher).attach()
    call = emitter.call
    arguments = {"resume": "text"}
    t0 = time.perf_counter()
    for _ in range(n // 2):
        with call("ExtractResume", arguments=arguments) as c:
            c.set_result(1)
    dt = time.perf_counter() - t0
    capture.detach()
    return dt, len(capture)


CASES: dict[str, Callable[[int], tuple[float, int]]] = {
    "baseline": run_baseline,
    "execute": run_execute,
    "emitter": run_emitter,
}


def measure(n: int, repeat: int, collect: bool) -> dict[str, dict[str, float]]:
    """Events/s per case: best and median of ``repeat`` interleaved rounds."""
    rates: dict[str, list[float]] = {k: [] for k in CASES}
    was_enabled = gc.isenabled()
    try:
        for _ in range(repeat):
            for label, fn in CASES.items():
                gc.collect()
                if collect:
                    gc.enable()
                else:
                    gc.disable()
                dt, kept = fn(n)
                gc.enable()
                expected = n if label != "emitter" else (n // 2) * 2
                if kept != expected:
                    raise SystemExit(f"{label}: kept {kept} events, expected {expected}: events were lost")
                rates[label].append(kept / dt)
    finally:
        if was_enabled:
            gc.enable()
        else:
            gc.disable()
    return {k: {"best": max(v), "median": statistics.median(v)} for k, v in rates.items()}


def fmt_rate(value: float) -> str:
    return f"{value / 1e6:.2f} M ev/s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and rounds (a rough figure)")
    parser.add_argument("--events", type=int, default=None, help="events kept per case and round (default 200,000)")
    parser.add_argument("--repeat", type=int, default=None, help="interleaved rounds (default 7; 3 with --quick)")
    opts = parser.parse_args(argv)
    n = opts.events or (50_000 if opts.quick else 200_000)
    repeat = opts.repeat or (3 if opts.quick else 7)
    if n < 2 or repeat < 1:
        parser.error(f"--events={n} and --repeat={repeat}: expected --events >= 2 and --repeat >= 1")

    with_gc = measure(n, repeat, collect=True)
    without_gc = measure(n, repeat, collect=False)

    print(f"Python {sys.version.split()[0]} on {sys.platform}; {n:,} events kept per case; best of {repeat} rounds")
    print(f"{'case':<44} {'gc on':>14} {'x baseline':>11} {'gc off':>14} {'x baseline':>11}")
    print("-" * 98)
    labels = {
        "baseline": "baseline list.append((name, m, md))",
        "execute": "Dispatcher.execute -> EventCapture",
        "emitter": "Emitter.call (start+stop) -> EventCapture",
    }
    for key, label in labels.items():
        on, off = with_gc[key]["best"], without_gc[key]["best"]
        print(
            f"{label:<44} {fmt_rate(on):>14} {on / with_gc['baseline']['best']:>10.2f}x "
            f"{fmt_rate(off):>14} {off / without_gc['baseline']['best']:>10.2f}x"
        )
    rate = with_gc["execute"]["best"]
    ok = rate >= TARGET_EVENTS_PER_S
    print()
    print(f"{'PASS' if ok else 'FAIL'}  captured events per second (execute, gc on): {fmt_rate(rate)} (target >= 1.00 M ev/s)")

    base = with_gc["baseline"]["best"]
    emit = with_gc["emitter"]["best"]
    rows = [
        {
            "benchmark": "capture throughput (execute -> EventCapture)",
            "measured": fmt_rate(rate),
            "baseline": f"{fmt_rate(base)} (list.append)",
            "ratio": f"{base / rate:.2f}x slower",
            "target": ">= 1.00 M ev/s",
            "status": "PASS" if ok else "FAIL",
        },
        {
            "benchmark": "capture throughput (Emitter.call -> EventCapture)",
            "measured": fmt_rate(emit),
            "baseline": f"{fmt_rate(base)} (list.append)",
            "ratio": f"{base / emit:.2f}x slower",
            "target": "",
            "status": "",
        },
    ]
    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "capture",
                "events": n,
                "repeat": repeat,
                "events_per_s_gc_on": {k: v["best"] for k, v in with_gc.items()},
                "events_per_s_gc_off": {k: v["best"] for k, v in without_gc.items()},
                "median_events_per_s_gc_on": {k: v["median"] for k, v in with_gc.items()},
                "rows": rows,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
