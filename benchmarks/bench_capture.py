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

At scale (issue 17), on captures of 10k, 100k and 1M emitter-shaped events (start + stop
per call, fresh dicts per event, 100 function names):

* throughput of ``execute`` into a capture filled to 10k and to 1M events (target
  >= 1M ev/s at both), against ``list.append`` of the same number of tuples;
* ``assert_emitted`` and ``assert_call``, each with a match (1 % of the calls match)
  and failing (no match: the closest-event diff), against the way a capture answered
  before issue 17 (records rebuilt per query, each matched one at a time), paired in
  each round; targets at 1M: < 300 ms with a match, < 1 s with the diff; and linear: the
  100k / 10k time ratio within 12x;
* the same at 1M as a speed-up over the pre-issue-17 way, against the speed-up the issue's
  own figures ask for (1.7 s -> 300 ms: 5.7x with a match; 4.5 s -> 1 s: 4.5x with the diff),
  which holds however loaded the shared machine is (the absolute rows do not);
* bytes per captured event beyond the event's own dicts (tracemalloc; the dicts are kept
  alive elsewhere too), target <= 300 B, against a list of the same tuples; and once more
  after ``events`` was read (the records it keeps), for information.

``--quick`` uses 10k / 100k / 300k events and fewer rounds (the 1M rows run in full mode).
The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
import tracemalloc
import zlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_baml_telemetry.capture import EventCapture, expect  # noqa: E402
from pytest_baml_telemetry.captured import CapturedEvent, pair_calls  # noqa: E402
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


# --------------------------------------------------------------------------- at scale

START, STOP = ("ash_baml", "call", "start"), ("ash_baml", "call", "stop")
FUNCTIONS = [f"Fn{i}" for i in range(100)]
TARGET_MATCH_S, TARGET_DIFF_S, TARGET_LINEAR = 0.300, 1.0, 12.0
TARGET_BYTES = 300
# The issue's own figures at 1M (before -> target) as the speed-up they ask for, which does not
# depend on how loaded the machine is: 1.7 s -> 300 ms with a match, 4.5 s -> 1 s with the diff.
SPEEDUP_MATCH, SPEEDUP_DIFF = 1.7 / 0.300, 4.5 / 1.0


def emitter_events(n: int) -> list[tuple[Any, dict[str, Any], dict[str, Any]]]:
    """``n`` events shaped as the emitter sends them: start + stop per call, fresh dicts each."""
    out: list[tuple[Any, dict[str, Any], dict[str, Any]]] = []
    for i in range(n // 2):
        fn = FUNCTIONS[i % len(FUNCTIONS)]
        out.append((START, {"system_time": 1, "monotonic_time": i}, {
            "resource": None, "action": None, "function_name": fn, "arguments": {"resume": "text"},
            "client_module": None, "streaming": False, "telemetry_span_context": i,
        }))
        out.append((STOP, {
            "duration": 1200, "monotonic_time": i + 1, "input_tokens": 120, "output_tokens": 40,
            "total_tokens": 160, "cached_input_tokens": None,
        }, {
            "resource": None, "action": None, "function_name": fn, "client_module": None, "streaming": False,
            "model": "gpt-4o", "provider": "openai", "client_name": "GPT4o", "num_attempts": 1,
            "request_id": None, "result": 1, "telemetry_span_context": i,
        }))
    return out


def filled(events: list[Any]) -> EventCapture:
    dispatcher = Dispatcher("bench-capture-scale")
    capture = EventCapture(dispatcher=dispatcher).attach()
    execute = dispatcher.execute
    for name, m, md in events:
        execute(name, m, md)
    capture.detach()
    return capture


def fill_rate(n: int) -> tuple[float, float]:
    """Events/s of ``execute`` into a capture filled to ``n``, and of ``list.append`` (paired)."""
    name, m, md = EVENT, MEASUREMENTS, METADATA
    kept: list[Any] = []
    append = kept.append
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n):
        append((name, m, md))
    base = n / (time.perf_counter() - t0)
    del kept
    dt, held = run_execute(n)
    if held != n:
        raise SystemExit(f"execute at {n:,}: kept {held} events: events were lost")
    return n / dt, base


# The way a capture answered before issue 17: records rebuilt for every query, matched one by one.
def before_emitted(capture: EventCapture, event: str, metadata: dict[str, Any]) -> None:
    events = [CapturedEvent(*raw) for raw in list(capture._raw)]
    matcher = expect(event, metadata=metadata)
    found = [e for e in events if matcher.matches(e)]
    if not found:  # the closest-event ranking of the time: every candidate scored, then sorted
        from pytest_baml_telemetry.matching import closest

        closest([e for e in events if e.name == matcher.name], lambda e: (("metadata", matcher.metadata, e.metadata),))


def before_call(capture: EventCapture, function_name: str, expected: dict[str, Any]) -> None:
    from pytest_baml_telemetry.matching import closest, matches

    events = [CapturedEvent(*raw) for raw in list(capture._raw)]
    named = [c for c in pair_calls(events) if c.function_name == function_name]
    found = [c for c in named if matches(expected, c.as_mapping())]
    if not found:
        closest(named, lambda c: (("call", expected, c.as_mapping()),))


QUERIES: dict[str, tuple[Callable[[EventCapture], Any], Callable[[EventCapture], Any], bool]] = {
    # name: (today's call, the pre-issue-17 way, whether it fails with the diff)
    "assert_emitted match": (
        lambda c: c.assert_emitted("stop", metadata={"function_name": "Fn7", "model": "gpt-4o"}),
        lambda c: before_emitted(c, "stop", {"function_name": "Fn7", "model": "gpt-4o"}),
        False,
    ),
    "assert_emitted diff": (
        lambda c: c.assert_emitted("stop", metadata={"function_name": "Fn7", "model": "claude"}),
        lambda c: before_emitted(c, "stop", {"function_name": "Fn7", "model": "claude"}),
        True,
    ),
    "assert_call match": (
        lambda c: c.assert_call("Fn7", ok=True, model="gpt-4o"),
        lambda c: before_call(c, "Fn7", {"ok": True, "model": "gpt-4o"}),
        False,
    ),
    "assert_call diff": (
        lambda c: c.assert_call("Fn7", ok=True, model="claude"),
        lambda c: before_call(c, "Fn7", {"ok": True, "model": "claude"}),
        True,
    ),
}


_FLUSH = bytearray(96 << 20)  # larger than the CPU's caches


def timed(fn: Callable[[], Any], fails: bool) -> float:
    """Seconds of one ``fn()``, started with the CPU caches flushed: a capture of 10k events fits
    in them and one of 100k does not, so without this the 100k / 10k ratio measured the caches."""
    zlib.crc32(_FLUSH)
    t0 = time.perf_counter()
    try:
        fn()
    except AssertionError:
        if not fails:
            raise
    else:
        if fails:
            raise SystemExit("a query meant to fail (the closest-event diff) passed")
    return time.perf_counter() - t0


def measure_queries(sizes: list[int], rounds: int, big_rounds: int) -> dict[tuple[str, int], dict[str, float]]:
    """Median seconds per query and size, today's and the pre-issue-17 way's.

    Every size's capture is held at once and each round runs every size and query in turn,
    so a change in the shared machine's load falls on all of them alike (the 100k / 10k
    ratio compares like with like), each from flushed caches (:func:`timed`); a query on
    fewer than 100k events is repeated and averaged. The largest size runs ``big_rounds``
    rounds, its pre-issue-17 way one.
    """
    captures = {n: filled(emitter_events(n)) for n in sizes}
    for n, capture in captures.items():
        if len(capture) != n:
            raise SystemExit(f"capture of {n:,}: kept {len(capture)} events")
    ours: dict[tuple[str, int], list[float]] = {}
    theirs: dict[tuple[str, int], list[float]] = {}
    big = max(sizes)
    for r in range(rounds):
        for n, capture in captures.items():
            if n == big and r >= big_rounds:
                continue
            reps = max(1, 100_000 // n)
            for label, (now, before, fails) in QUERIES.items():
                ours.setdefault((label, n), []).append(sum(timed(partial(now, capture), fails) for _ in range(reps)) / reps)
                if n < big or r == 0:
                    theirs.setdefault((label, n), []).append(timed(partial(before, capture), False))  # its diff raises nothing
    return {k: {"now": statistics.median(v), "before": statistics.median(theirs[k])} for k, v in ours.items()}


def bytes_per_event(n: int) -> dict[str, float]:
    """Bytes tracemalloc sees per event: a capture, a plain list of tuples, the capture after ``events``."""
    events = emitter_events(n)  # the dicts stay alive here: only what the holders add is measured
    result: dict[str, float] = {}
    for label in ("list", "capture", "capture+events"):
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        if label == "list":
            held: Any = [(name, m, md) for name, m, md in events]
        else:
            held = filled(events)
            if label == "capture+events":
                held.events  # noqa: B018 - the records it keeps
        result[label] = (tracemalloc.get_traced_memory()[0] - before) / n
        tracemalloc.stop()
        del held
    return result


def scale_rows(quick: bool) -> tuple[list[dict[str, str]], bool, dict[str, Any]]:
    big = 300_000 if quick else 1_000_000
    sizes = [10_000, 100_000, big]
    rows: list[dict[str, str]] = []
    ok = True

    def row(bench: str, measured: str, baseline: str, ratio: str, target: str, passed: bool | None) -> None:
        nonlocal ok
        status = "" if passed is None else ("PASS" if passed else "FAIL")
        ok = ok and passed is not False
        rows.append({"benchmark": bench, "measured": measured, "baseline": baseline, "ratio": ratio, "target": target, "status": status})
        print(f"{status or '    ':<5} {bench:<58} {measured:>12}  baseline {baseline:<28} {ratio:<16} target {target or '-'}")

    print()
    print(f"At scale: {', '.join(f'{n:,}' for n in sizes)} emitter-shaped events (gc on)")
    for n in (10_000, big):
        rates = [fill_rate(n) for _ in range(3 if n < big else (1 if quick else 2))]
        rate = statistics.median(r for r, _ in rates)
        base = statistics.median(b for _, b in rates)
        row(f"capture throughput, filled to {n:,} (execute)", fmt_rate(rate), f"{fmt_rate(base)} (list.append)",
            f"{base / rate:.2f}x slower", ">= 1.00 M ev/s", rate >= TARGET_EVENTS_PER_S)
    timings = measure_queries(sizes, rounds=3 if quick else 5, big_rounds=1 if quick else 3)
    for label, (_, _, fails) in QUERIES.items():
        target_s = TARGET_DIFF_S if fails else TARGET_MATCH_S
        for n in sizes:
            t = timings[(label, n)]
            target = f"< {target_s * 1000:.0f} ms" if n == big else ""
            row(f"{label} over {n:,} events", f"{t['now'] * 1000:.1f} ms", f"{t['before'] * 1000:.1f} ms (before)",
                f"{t['before'] / t['now']:.1f}x faster", target, (t["now"] < target_s) if n == big else None)
        t = timings[(label, big)]
        need = SPEEDUP_DIFF if fails else SPEEDUP_MATCH
        row(f"{label} over {big:,} events: speed-up", f"{t['before'] / t['now']:.1f}x", "the pre-issue-17 way",
            "", f">= {need:.1f}x (the issue's before/target)", t["before"] / t["now"] >= need)
        linear = timings[(label, 100_000)]["now"] / timings[(label, 10_000)]["now"]
        row(f"{label}: time at 100k / at 10k", f"{linear:.1f}x", "10x (linear)", "", f"<= {TARGET_LINEAR:g}x", linear <= TARGET_LINEAR)
    memory = bytes_per_event(100_000)
    row("bytes per captured event beyond its dicts", f"{memory['capture']:.0f} B", f"{memory['list']:.0f} B (list of tuples)",
        f"{memory['capture'] / memory['list']:.2f}x", f"<= {TARGET_BYTES} B", memory["capture"] <= TARGET_BYTES)
    row("bytes per captured event, after reading .events", f"{memory['capture+events']:.0f} B", f"{memory['list']:.0f} B (list of tuples)",
        f"{memory['capture+events'] / memory['list']:.2f}x", "", None)
    raw = {"sizes": sizes, "query_seconds": {f"{k[0]} @ {k[1]}": v for k, v in timings.items()}, "bytes_per_event": memory}
    return rows, ok, raw


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
    more, scale_ok, scale = scale_rows(opts.quick)
    rows.extend(more)
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
                "scale": scale,
                "rows": rows,
            }
        )
    )
    return 0 if ok and scale_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
