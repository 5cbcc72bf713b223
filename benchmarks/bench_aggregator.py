"""Benchmark the budget/report aggregator.

Run:  python benchmarks/bench_aggregator.py [--calls 1000000] [--quick]

Prints a small table:

* ns per ``Aggregator.record()`` and per ``record_event()`` against a baseline measured
  in the same process (``list.append`` of a tuple of the same fields), as a ratio;
* for ``--calls`` calls (default 1,000,000): the time to compute every percentile of
  the report plus the report itself (build, terminal lines, JSON text), the memory the
  aggregator holds after recording them and the peak while computing the report
  (``tracemalloc``).

Targets (SPEC section 8 / issue 6): record() <= 2 us; 1,000,000 calls -> percentiles +
report < 1 s and < 64 MB.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import time
import timeit
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_baml_telemetry.budgets import Aggregator, Budget, PriceTable, evaluate  # noqa: E402
from pytest_baml_telemetry.report import build_report, render_terminal, to_json  # noqa: E402

FUNCTIONS = [f"Function{i}" for i in range(8)]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet"]
PRICES = PriceTable(
    {
        "gpt-4o": {"input_per_mtok": 2.5, "output_per_mtok": 10.0, "cached_input_per_mtok": 1.25},
        "gpt-4o-mini": {"input_per_mtok": 0.15, "output_per_mtok": 0.6},
    }
)
BUDGETS = [
    Budget(p95="2s", p99="5s", max_error_rate=0.1, name="latency"),
    Budget(max_total_tokens=10**12, max_cost_usd=10**6, allow_unknown_tokens=True, model="gpt-4o"),
]


def make_calls(n: int, seed: int = 1) -> list[tuple]:
    """Realistic-looking calls: log-normal latencies, 5% errors, 1% unknown tokens."""
    rnd = random.Random(seed)
    tests = [f"tests/test_mod{i // 20}.py::test_{i}" for i in range(2000)]
    calls = []
    for _ in range(n):
        ok = rnd.random() > 0.05
        unknown = rnd.random() < 0.01
        calls.append(
            (
                rnd.choice(FUNCTIONS),
                rnd.choice(MODELS),
                int(rnd.lognormvariate(19.5, 0.8)),  # ~300 ms median, in ns
                ok,
                None if (unknown or not ok) else rnd.randint(50, 4000),
                None if (unknown or not ok) else rnd.randint(5, 800),
                None if not ok else rnd.choice((None, 0, 128)),
                rnd.choice(tests),
            )
        )
    return calls


def per_call_ns(calls: list[tuple], repeat: int) -> dict[str, float]:
    sample = calls[:10_000]

    def baseline() -> None:
        out: list = []
        append = out.append
        for f, m, d, ok, i, o, c, t in sample:
            append((f, m, d, ok, i, o, c, t))

    def record() -> None:
        agg = Aggregator()
        rec = agg.record
        for f, m, d, ok, i, o, c, t in sample:
            rec(f, m, d, ok, i, o, c, t)

    events = []
    for f, m, d, ok, i, o, c, t in sample:
        if ok:
            events.append((("ash_baml", "call", "stop"),
                           {"duration": d, "monotonic_time": 0, "input_tokens": i, "output_tokens": o,
                            "total_tokens": None if i is None or o is None else i + o,
                            "cached_input_tokens": c},
                           {"function_name": f, "model": m}, t))
        else:
            events.append((("ash_baml", "call", "exception"), {"duration": d, "monotonic_time": 0},
                           {"function_name": f, "kind": "error"}, t))

    def record_event() -> None:
        agg = Aggregator()
        rec = agg.record_event
        for name, meas, meta, t in events:
            rec(name, meas, meta, t)

    out = {}
    for label, fn in (("baseline", baseline), ("record", record), ("record_event", record_event)):
        best = min(timeit.repeat(fn, number=1, repeat=repeat))
        out[label] = best / len(sample) * 1e9
    return out


def fill(calls: list[tuple]) -> Aggregator:
    agg = Aggregator()
    rec = agg.record
    for c in calls:
        rec(*c)
    return agg


def report(agg: Aggregator) -> tuple[dict, list[str], str]:
    verdicts = [v for b in BUDGETS for v in evaluate(b, agg, PRICES)]
    data = build_report(agg, PRICES, verdicts)
    lines = render_terminal(data)
    text = json.dumps(to_json(data))
    return data, lines, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7

    calls = make_calls(args.calls)
    ns = per_call_ns(calls, repeat)

    # time: record everything, then percentiles + report (no tracing)
    gc.collect()
    t0 = time.perf_counter()
    agg = fill(calls)
    t_fill = time.perf_counter() - t0
    t0 = time.perf_counter()
    data, lines, text = report(agg)
    t_report = time.perf_counter() - t0
    assert data["totals"]["calls"] == args.calls
    del agg, data, lines, text
    gc.collect()

    # memory: what the aggregator holds, and the peak while reporting (traced run)
    tracemalloc.start()
    agg = fill(calls)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    report(agg)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    payload_mb = len(json.dumps(agg.to_payload())) / 1e6

    rows = [
        ("baseline list.append(tuple)", f"{ns['baseline']:.0f} ns/call", "1.0x", ""),
        ("Aggregator.record()", f"{ns['record']:.0f} ns/call", f"{ns['record'] / ns['baseline']:.1f}x",
         "target <= 2000 ns"),
        ("Aggregator.record_event()", f"{ns['record_event']:.0f} ns/call",
         f"{ns['record_event'] / ns['baseline']:.1f}x", ""),
        (f"record {args.calls:,} calls", f"{t_fill:.3f} s", "", ""),
        (f"percentiles + report, {args.calls:,} calls", f"{t_report:.3f} s", "", "target < 1 s"),
        ("memory held by the aggregator", f"{held / 2**20:.1f} MiB", "", "target < 64 MB"),
        ("peak memory while reporting", f"{peak / 2**20:.1f} MiB", "", "target < 64 MB"),
        ("xdist payload (JSON, base64)", f"{payload_mb:.1f} MB", "", ""),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("measure", "value", "ratio", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, head)]
    print(f"Python {sys.version.split()[0]} on {sys.platform}")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join((r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].rjust(widths[2]), r[3])).rstrip())


if __name__ == "__main__":
    main()
