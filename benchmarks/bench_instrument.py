"""What ``instrument()`` adds to a real baml-py call over loopback.

Run:  python benchmarks/bench_instrument.py [--quick] [--calls N] [--warmup W] [--latency-ms MS]

A client is generated from ``tests/baml_src`` with the installed ``baml-cli``
(``baml_gen.generate_client``, into a temporary directory) and pointed at a
:class:`FakeLLMServer` on 127.0.0.1 through a client registry. The same function,
``ExtractResume`` (a structured result parsed by baml, with usage), is called on three
clients:

* ``plain``: the generated client ``b.with_options(client_registry=...)`` (the baseline);
* ``handler``: ``instrument(b, emitter=...)`` whose emitter's dispatcher has one no-op
  handler attached to the start, stop and exception events: the realistic case (every
  consumer, EventCapture, the OpenTelemetry bridge, a metrics exporter, is at least one
  handler), in which baml's Collector is attached and read on every call;
* ``no handler``: the same with nothing attached, in which ``instrument()`` attaches no
  Collector and reads nothing (nobody would see the values), only pairing start and stop.

The three are called in rounds, one call of each per round, the order rotating through
all six permutations, for ``--calls`` rounds after ``--warmup`` rounds, so that drift and
other load on the machine hit all alike. Every call is timed on its own; reported per
client are the median, the trimmed mean (10 % cut at each end) and the minimum, the ratio
of medians to the plain client, and the median per-round difference (the microseconds
instrumentation adds). Responses are scripted on the server in batches outside the timed
region. ``BAML_LOG=off`` silences baml-py's per-call log lines.

Two series are run: the server answering at once (the strictest case: the whole call is
loopback plus baml's own work) and the server waiting ``--latency-ms`` (default 20) before
answering, as any real provider does, to show what the same absolute overhead is worth on
a realistic call (a fifth of the rounds, a tenth with ``--quick``; ``--latency-ms 0`` skips it).

Before timing, a few calls of the ``handler`` client are captured with an
:class:`EventCapture` and checked (tokens, model, request id), so the timed path is the one
that reads the Collector.

Targets (SPEC section 8, issue 17), both with one handler attached and both ratios of medians:
instrumentation adds at most 3 % to the call whose server answers at once (ratio <= 1.03) and
at most 0.5 % to the call whose server waits 20 ms (ratio <= 1.005). Each is printed with
PASS/FAIL, beside the median of the per-round ratios (each ``handler`` call against the
``plain`` call of the same round: a paired figure less moved by drift); the exit status is 1
when either fails. ``--latency-ms`` other than 20 reports that series without a target.
The ``no handler`` figures are informational.
The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ["BAML_LOG"] = "off"  # before baml_py is imported; baml-py also re-reads it per call

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_baml_telemetry.baml_gen import generate_client, import_generated  # noqa: E402
from pytest_baml_telemetry.capture import EventCapture  # noqa: E402
from pytest_baml_telemetry.dispatcher import Dispatcher  # noqa: E402
from pytest_baml_telemetry.emitter import Emitter  # noqa: E402
from pytest_baml_telemetry.fake.server import FakeLLMServer  # noqa: E402
from pytest_baml_telemetry.instrument import instrument  # noqa: E402

TARGET_RATIO = 1.03  # server answering at once: at most +3 %
TARGET_LATENCY_RATIO = 1.005  # server waiting TARGET_LATENCY_MS: at most +0.5 %
TARGET_LATENCY_MS = 20.0
BAML_SRC = ROOT / "tests" / "baml_src"
CONTENT = '{"name": "Ada Lovelace", "skills": ["mathematics", "programming", "poetry"]}'
RESUME = "Ada Lovelace. Skills: mathematics, programming, poetry."
USAGE = (120, 40)
BATCH = 100  # rounds scripted at a time
CLIENTS = ("plain", "handler", "no handler")
LABELS = {
    "plain": "plain b (baseline)",
    "handler": "instrument(b), 1 no-op handler",
    "no handler": "instrument(b), no handler",
}
ORDERS = list(itertools.permutations(CLIENTS))


def noop_handler(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
    """The cheapest possible consumer: receives every call event and does nothing."""


def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    ordered = sorted(values)
    k = int(len(ordered) * cut)
    kept = ordered[k : len(ordered) - k] or ordered
    return statistics.fmean(kept)


def run_rounds(
    clients: dict[str, Any], server: FakeLLMServer, rounds: int, first: int, latency_ms: float = 0.0
) -> dict[str, list[float]]:
    """``rounds`` rounds of one call per client (rotating order); per-call seconds by client."""
    times: dict[str, list[float]] = {name: [] for name in clients}
    clock = time.perf_counter
    latency = f"{latency_ms}ms" if latency_ms else None
    done = 0
    while done < rounds:
        batch = min(BATCH, rounds - done)
        for _ in range(len(clients) * batch):
            server.respond(CONTENT, usage=USAGE, latency=latency)
        for k in range(batch):
            for name in ORDERS[(first + done + k) % len(ORDERS)]:
                function = clients[name].ExtractResume
                t0 = clock()
                result = function(RESUME)
                dt = clock() - t0
                if result.name != "Ada Lovelace":
                    raise SystemExit(f"unexpected result {result!r}: the fake server was not used as scripted")
                times[name].append(dt)
        done += batch
    return times


def summarize(times: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    plain = times["plain"]
    med_p, tm_p = statistics.median(plain), trimmed_mean(plain)
    out: dict[str, dict[str, float]] = {}
    for name, values in times.items():
        med, tm = statistics.median(values), trimmed_mean(values)
        out[name] = {
            "median": med,
            "trimmed_mean": tm,
            "min": min(values),
            "ratio": med / med_p,
            "trimmed_ratio": tm / tm_p,
            "median_added": statistics.median(v - p for p, v in zip(plain, values)),
            "paired_ratio": statistics.median(v / p for p, v in zip(plain, values)),
        }
    return out


def _row(
    name: str, r: dict[str, dict[str, float]], title: str, target: str = "", status: str = ""
) -> dict[str, str]:
    x, p = r[name], r["plain"]
    return {
        "benchmark": f"{LABELS[name]}, {title}",
        "measured": f"{x['median'] * 1e3:.3f} ms/call",
        "baseline": f"{p['median'] * 1e3:.3f} ms/call (plain b)",
        "ratio": (
            f"{x['ratio']:.4f} ({(x['ratio'] - 1) * 100:+.2f}%, {x['median_added'] * 1e6:+.0f} us; "
            f"median of pairs {(x['paired_ratio'] - 1) * 100:+.2f}%)"
        ),
        "target": target,
        "status": status,
    }


def verdict_rows(
    fast: dict[str, dict[str, float]], slow: dict[str, dict[str, float]] | None, latency_ms: float
) -> tuple[list[dict[str, str]], bool, bool]:
    """The RESULT rows and whether each target is met: ``(rows, at_once_ok, latency_ok)``.

    The ``handler`` client's ratio of medians against ``plain``: at most ``TARGET_RATIO`` with
    the server answering at once, at most ``TARGET_LATENCY_RATIO`` with ``TARGET_LATENCY_MS`` of
    latency (another latency, or none, has no target: ``latency_ok`` is then true).
    """
    ok = fast["handler"]["ratio"] <= TARGET_RATIO
    latency_target = slow is not None and latency_ms == TARGET_LATENCY_MS
    slow_ok = slow["handler"]["ratio"] <= TARGET_LATENCY_RATIO if slow is not None and latency_target else True
    rows = [
        _row("handler", fast, "server answers at once", "≤ +3 %", "PASS" if ok else "FAIL"),
        _row("no handler", fast, "server answers at once"),
    ]
    if slow is not None:
        title = f"{latency_ms:g} ms server latency"
        if latency_target:
            rows.append(_row("handler", slow, title, "≤ +0.5 %", "PASS" if slow_ok else "FAIL"))
        else:
            rows.append(_row("handler", slow, title))
        rows.append(_row("no handler", slow, title))
    return rows, ok, slow_ok


def check_capture(client: Any, server: FakeLLMServer, dispatcher: Dispatcher, calls: int = 5) -> None:
    """The ``handler`` client's events carry what the Collector holds (so the timed path reads it)."""
    capture = EventCapture(dispatcher=dispatcher).attach()
    try:
        for _ in range(calls):
            server.respond(CONTENT, usage=USAGE, model="gpt-4o-mini-2024-07-18")
            client.ExtractResume(RESUME)
        got = capture.calls
        bad = [
            c
            for c in got
            if not c.ok
            or c.end is None
            or c.input_tokens != USAGE[0]
            or c.output_tokens != USAGE[1]
            or c.model != "gpt-4o-mini"
            or c.end.metadata.get("response_model") != "gpt-4o-mini-2024-07-18"
            or not str(c.end.metadata.get("request_id", "")).startswith("chatcmpl-")
        ]
        if len(got) != calls or bad:
            raise SystemExit(
                f"instrumentation captured {len(got)} call(s) for {calls} instrumented calls, {len(bad)} of them "
                f"without the expected tokens/model/request id: {bad[:1]!r}"
            )
    finally:
        capture.detach()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a rough figure)")
    parser.add_argument("--calls", type=int, default=None, help="timed rounds (default 1,500; 300 with --quick)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default 50; 20 with --quick)")
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=TARGET_LATENCY_MS,
        help=f"server latency of the second series (default {TARGET_LATENCY_MS:g}, the one with a target; 0 skips it)",
    )
    opts = parser.parse_args(argv)
    rounds = opts.calls or (300 if opts.quick else 1500)
    warmup = opts.warmup if opts.warmup is not None else (20 if opts.quick else 50)
    latency_ms = opts.latency_ms
    latency_rounds = max(10, rounds // (10 if opts.quick else 5))
    if rounds < 10 or warmup < 0 or latency_ms < 0:
        parser.error(
            f"--calls={rounds}, --warmup={warmup}, --latency-ms={latency_ms}: "
            "expected --calls >= 10, --warmup >= 0, --latency-ms >= 0"
        )

    with tempfile.TemporaryDirectory(prefix="pbt-bench-baml-") as tmp:
        generated = import_generated(generate_client(BAML_SRC, tmp))
        listened = Dispatcher("bench-instrument-handler")
        listened.attach_many(
            "bench-noop", [("ash_baml", "call", kind) for kind in ("start", "stop", "exception")], noop_handler
        )
        silent = Dispatcher("bench-instrument-silent")
        with FakeLLMServer() as server:
            registry = server.client_registry("TestClient")
            clients = {
                "plain": generated.b.with_options(client_registry=registry),
                "handler": instrument(generated.b, emitter=Emitter(dispatcher=listened)).with_options(
                    client_registry=registry
                ),
                "no handler": instrument(generated.b, emitter=Emitter(dispatcher=silent)).with_options(
                    client_registry=registry
                ),
            }
            check_capture(clients["handler"], server, listened)
            run_rounds(clients, server, warmup, 0)
            fast = summarize(run_rounds(clients, server, rounds, warmup))
            slow = None
            if latency_ms:
                slow = summarize(run_rounds(clients, server, latency_rounds, 0, latency_ms))
            left = server.pending
    if left:
        raise SystemExit(f"{len(left)} scripted responses were not requested: the benchmark lost calls")

    rows, ok, slow_ok = verdict_rows(fast, slow, latency_ms)
    ratio = fast["handler"]["ratio"]
    latency_target = slow is not None and latency_ms == TARGET_LATENCY_MS

    print(
        f"Python {sys.version.split()[0]} on {sys.platform}; ExtractResume over loopback, "
        f"{rounds:,} rounds of one call per client"
        + (f" (+ {latency_rounds:,} rounds with {latency_ms:g} ms server latency)" if slow else "")
    )
    print(f"{'client':<48} {'median':>10} {'trimmed':>10} {'min':>10} {'ratio':>8} {'added/round':>12}")
    print("-" * 102)
    series = [("server answers at once", fast)]
    if slow is not None:
        series.append((f"server latency {latency_ms:g} ms", slow))
    for title, r in series:
        print(f"[{title}]")
        for name in CLIENTS:
            x = r[name]
            added = "" if name == "plain" else f"{x['median_added'] * 1e6:+9.1f} us"
            print(
                f"  {LABELS[name]:<46} {x['median'] * 1e6:>7.0f} us {x['trimmed_mean'] * 1e6:>7.0f} us "
                f"{x['min'] * 1e6:>7.0f} us {x['ratio']:>8.4f} {added:>12}"
            )

    def pct(r: float) -> str:
        return f"{(r - 1) * 100:+.2f}%"

    print()
    h = fast["handler"]
    print(
        f"{'PASS' if ok else 'FAIL'}  instrument() with one handler adds {pct(ratio)} "
        f"({h['median_added'] * 1e6:+.0f} us; median of pairs {pct(h['paired_ratio'])}) to a real baml-py call over "
        f"loopback, server answering at once (ratio of medians; target <= +{(TARGET_RATIO - 1) * 100:.0f}%)"
    )
    if slow is not None:
        s_h = slow["handler"]
        verdict = ("PASS" if slow_ok else "FAIL") if latency_target else "    "
        target_text = f"target <= +{(TARGET_LATENCY_RATIO - 1) * 100:.1f}%" if latency_target else "no target"
        print(
            f"{verdict}  with {latency_ms:g} ms server latency: {pct(s_h['ratio'])} ({s_h['median_added'] * 1e6:+.0f} us; "
            f"median of pairs {pct(s_h['paired_ratio'])}) ({target_text})"
        )
    nh = fast["no handler"]
    print(
        f"      with no handler attached: {pct(nh['ratio'])} ({nh['median_added'] * 1e6:+.0f} us) at once"
        + (f", {pct(slow['no handler']['ratio'])} with {latency_ms:g} ms latency" if slow else "; no latency series")
    )

    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "instrument",
                "rounds": rounds,
                "loopback": fast,
                "latency_ms": latency_ms,
                "latency_rounds": latency_rounds if slow else 0,
                "with_latency": slow,
                "rows": rows,
            }
        )
    )
    return 0 if ok and slow_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
