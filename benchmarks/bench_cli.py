"""The production bridge: ``JsonlExporter`` per event and ``pytest-baml-telemetry check`` over a log.

Run:  python benchmarks/bench_cli.py [--quick] [--events N]

Writes a log of ``--events`` events (default 1,000,000; 100,000 with ``--quick``) with the
real :class:`~pytest_baml_telemetry.exporters.JsonlExporter` attached to an emitter (half
start events, the rest stops with usage and one exception in twenty, over eight
functions and three models), into a temporary directory. Then measures:

* ``JsonlExporter`` per event (default options: no arguments or results, secrets masked),
  against a baseline in the same process, ``json.dumps`` of the same measurements and
  metadata plus one unbuffered append (what any JSON-lines logger does at least);
* ``check`` over the whole log (``cli.check`` with a budgets file and a price table, the
  report printed to a buffer, in a fresh subprocess), against a baseline that reads the
  same file line by line and ``json.loads`` each line and nothing else (the floor for any
  Python reader), and the peak resident memory of that subprocess above the same check over
  the log's first 1,000 lines (``ru_maxrss``, Linux KiB): what streaming keeps.

No target is set for these figures (the issue asks that 1,000,000 events be streamed, not
loaded: the memory figure shows it); the last line is ``RESULT {json}`` for
``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_baml_telemetry import Dispatcher, Emitter  # noqa: E402
from pytest_baml_telemetry.exporters import JsonlExporter  # noqa: E402

FUNCTIONS = [f"Function{i}" for i in range(8)]
MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet"]
PRICES = """
[models."gpt-4o"]
input_per_mtok = 2.5
output_per_mtok = 10.0
[models."gpt-4o-mini"]
input_per_mtok = 0.15
output_per_mtok = 0.6
"""
BUDGETS = """
[[budget]]
name = "latency"
p95 = "2s"
p99 = "5s"
max_error_rate = 0.1

[[budget]]
model = "gpt-4o"
max_total_tokens = 1000000000000
max_cost_usd = 1000000
"""


def write_log(path: Path, events: int, seed: int = 1) -> float:
    """``events`` events through an emitter into ``path``; the seconds spent in the exporter's handler."""
    rnd = random.Random(seed)
    dispatcher = Dispatcher("bench-cli")
    exporter = JsonlExporter(path, dispatcher=dispatcher)
    spent = [0.0]
    handle = exporter.handle
    perf = time.perf_counter

    def timed(event_name, measurements, metadata, config):  # type: ignore[no-untyped-def]
        t0 = perf()
        handle(event_name, measurements, metadata, config)
        spent[0] += perf() - t0

    dispatcher.attach_many("timed-exporter", [("ash_baml", "call", k) for k in ("start", "stop", "exception")], timed)
    emitter = Emitter(dispatcher=dispatcher)
    for i in range(events // 2):
        try:
            with emitter.call(rnd.choice(FUNCTIONS), arguments={"text": "hello " * 20}) as call:
                call.set_model(rnd.choice(MODELS))
                call.set_usage(rnd.randint(50, 500), rnd.randint(5, 200))
                if i % 20 == 0:
                    raise RuntimeError("HTTP 429")
                call.set_result({"answer": "x" * 40})
        except RuntimeError:
            pass
    dispatcher.detach("timed-exporter")
    exporter.close()
    if exporter.failed:
        raise SystemExit(f"the exporter failed {exporter.failed} writes: {exporter.last_error}")
    return spent[0]


def baseline_writes(path: Path, lines: list[tuple[dict, dict]]) -> float:
    """``json.dumps`` + one unbuffered append per event: the floor of a JSON-lines logger."""
    with open(path, "ab", buffering=0) as f:
        t0 = time.perf_counter()
        for measurements, metadata in lines:
            f.write((json.dumps({"event": ["ash_baml", "call", "stop"], "measurements": measurements,
                                 "metadata": metadata}) + "\n").encode())
        return time.perf_counter() - t0


def baseline_reads(path: Path) -> float:
    t0 = time.perf_counter()
    loads = json.loads
    with open(path, "rb") as f:
        for raw in f:
            loads(raw)
    return time.perf_counter() - t0


_CHECK = """
import io, json, resource, sys, time
from pytest_baml_telemetry.cli import check
out, err = io.StringIO(), io.StringIO()
t0 = time.perf_counter()
status = check(sys.argv[1], budgets="budgets.toml", prices="prices.toml", out=out, err=err)
took = time.perf_counter() - t0
print(json.dumps({"status": status, "seconds": took, "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "first": out.getvalue().splitlines()[0], "err": err.getvalue()}))
"""


def run_check(root: Path, log: Path) -> tuple[int, float, int, str, str]:
    """``check`` over ``log`` in a fresh process: (status, seconds, peak KiB, first line, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", _CHECK, str(log)], cwd=root, capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"check crashed: {proc.stderr}")
    r = json.loads(proc.stdout.splitlines()[-1])
    return r["status"], r["seconds"], r["peak_kib"], r["first"], r["err"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 events instead of 1,000,000")
    parser.add_argument("--events", type=int, default=None, help="events in the log (default 1,000,000)")
    opts = parser.parse_args(argv)
    events = opts.events or (100_000 if opts.quick else 1_000_000)
    if events < 1000:
        parser.error(f"--events={events}: expected at least 1000")

    with tempfile.TemporaryDirectory(prefix="pbt-bench-cli-") as tmp:
        root = Path(tmp)
        log = root / "events.jsonl"
        (root / "budgets.toml").write_text(BUDGETS)
        (root / "prices.toml").write_text(PRICES)
        export_s = write_log(log, events)
        size = log.stat().st_size
        sample = []
        with open(log, "rb") as f:
            for _, raw in zip(range(20_000), f):
                record = json.loads(raw)
                sample.append((record["measurements"], record["metadata"]))
        base_write_s = baseline_writes(root / "baseline.jsonl", sample) * (events / len(sample))
        base_read_s = baseline_reads(log)
        small = root / "small.jsonl"
        with open(log, "rb") as f, open(small, "wb") as g:
            for _, raw in zip(range(1000), f):
                g.write(raw)
        status, check_s, peak_kib, calls, err = run_check(root, log)
        _, _, small_kib, _, _ = run_check(root, small)
        added_kib = peak_kib - small_kib
    if status not in (0, 1) or err:
        raise SystemExit(f"check exited {status}: {err}")

    per_export = export_s / events * 1e6
    per_base_write = base_write_s / events * 1e6
    print(f"Python {sys.version.split()[0]} on {sys.platform}; a log of {events:,} events ({size / 2**20:.0f} MiB)")
    print(calls)
    print(f"{'measure':<52} {'value':>14} {'baseline':>14} {'ratio':>8}")
    print("-" * 92)
    print(f"{'JsonlExporter.handle per event':<52} {per_export:>11.2f} us {per_base_write:>11.2f} us "
          f"{per_export / per_base_write:>7.2f}x")
    print(f"{f'check over {events:,} events':<52} {check_s:>12.2f} s {base_read_s:>12.2f} s "
          f"{check_s / base_read_s:>7.2f}x")
    print(f"{'check: events per second':<52} {events / check_s / 1e3:>10.0f} k/s")
    print(f"{'check: peak resident memory (ru_maxrss)':<52} {peak_kib / 1024:>10.1f} MiB "
          f"{small_kib / 1024:>10.1f} MiB   (baseline: 1,000 lines; log {size / 2**20:.0f} MiB)")

    def row(benchmark: str, measured: str, baseline: str = "", ratio: str = "") -> dict[str, str]:
        return {"benchmark": benchmark, "measured": measured, "baseline": baseline, "ratio": ratio, "target": "",
                "status": ""}

    rows = [
        row("JsonlExporter.handle per event (defaults)", f"{per_export:.2f} us",
            f"{per_base_write:.2f} us (json.dumps + append)", f"{per_export / per_base_write:.2f}x"),
        row(f"check over {events:,} events ({size / 2**20:.0f} MiB)", f"{check_s:.2f} s",
            f"{base_read_s:.2f} s (json.loads per line)", f"{check_s / base_read_s:.2f}x"),
        row(f"check: peak resident memory, {events:,} events", f"{peak_kib / 1024:.1f} MiB",
            f"{small_kib / 1024:.1f} MiB (1,000 lines); log {size / 2**20:.0f} MiB", f"+{added_kib / 1024:.1f} MiB"),
    ]
    print("RESULT " + json.dumps({"events": events, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
