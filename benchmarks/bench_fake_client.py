"""Cost of a ``FakeBamlClient`` call (sync, async, stream), against baselines in this process.

Run:  python benchmarks/bench_fake_client.py [--quick] [--calls N] [--repeat R]

For each shape of call, three things are timed, interleaved in each of ``--repeat``
rounds, one no-op handler attached to the three call events of every emitter:

* a plain function (or coroutine, or stream object) returning the same result: the
  baseline, what a hand-written stub costs;
* the same plain function wrapped by a bare ``Emitter`` (``with emitter.call(...)``,
  ``async with``, ``emitter.stream(...)``): the cost of the event contract alone;
* ``FakeBamlClient`` (``fake.ExtractResume(...)``, ``await async_fake.ExtractResume(...)``,
  ``fake.stream.ExtractResume(...)`` iterated to its final response), scripted once with
  a reusable outcome (usage, model, 850 ms of virtual latency, 3 partials for streams).

Async fakes always ``await asyncio.sleep(0)`` once per call (so that concurrent tasks
interleave); the async baseline and bare-emitter cases do the same, so the ratios compare
like with like.

Time is the thread's CPU time (``time.thread_time``; ``--wall`` for ``time.perf_counter``):
the 2 cores are shared, and time spent descheduled is no cost of the code measured.
The ratio that counts is the fake against the bare emitter, paired: each round times the
emitter and the fake one after the other, and the median of the rounds' ratios is reported
(the cores are shared: a ratio of neighbours is steadier than either figure). Targets
(issue 17): a sync ``FakeBamlClient`` call at most 3x the bare emitter call (PASS/FAIL);
the async call is held to the same 3x; the stream, which also keeps its consumer's clock
(:mod:`pytest_baml_telemetry.fake.timeline`), has no target. The exit status is 1 when a
target is missed. The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_baml_telemetry.clock import VirtualClock  # noqa: E402
from pytest_baml_telemetry.contract import Usage  # noqa: E402
from pytest_baml_telemetry.dispatcher import Dispatcher  # noqa: E402
from pytest_baml_telemetry.emitter import Emitter  # noqa: E402
from pytest_baml_telemetry.fake import AsyncFakeBamlClient, FakeBamlClient  # noqa: E402

RESULT_VALUE = {"name": "Ada", "skills": ["Rust", "Erlang"]}
PARTIALS = ({"name": "A"}, {"name": "Ada"}, {"name": "Ada", "skills": ["Rust"]})
USAGE = Usage(120, 40)


def noop_handler(event_name: Any, measurements: Any, metadata: Any, config: Any) -> None:
    return None


def make_emitter(label: str) -> Emitter:
    dispatcher = Dispatcher(label)
    emitter = Emitter(dispatcher=dispatcher)
    dispatcher.attach_many("noop", list(emitter.event_names), noop_handler)
    return emitter


def make_fake(cls: type, streaming: bool) -> Any:
    clock = VirtualClock()
    fake = cls(emitter=make_emitter(f"bench-fake-{cls.__name__}"), clock=clock)
    fake.respond(
        "ExtractResume",
        RESULT_VALUE,
        usage=USAGE,
        model="gpt-4o",
        latency="850ms",
        reusable=True,
        partials=list(PARTIALS) if streaming else None,
    )
    return fake


def plain_function(resume: str) -> Any:
    """The baseline: a stub returning the same result."""
    return RESULT_VALUE


async def plain_coroutine(resume: str) -> Any:
    """The async baseline: yields to the loop once, as the async fake does."""
    await asyncio.sleep(0)
    return RESULT_VALUE


class PlainStream:
    """A baml-py-like stream over fixed partials: the stream baseline."""

    __slots__ = ("_partials",)

    def __init__(self, partials: tuple[Any, ...]) -> None:
        self._partials = partials

    def __iter__(self) -> Any:
        return iter(self._partials)

    def get_final_response(self) -> Any:
        return RESULT_VALUE


# ----------------------------------------------------------------------------- loops
# Each returns the seconds taken by ``n`` calls, read from ``clock`` (see --wall).

clock = time.thread_time


def sync_plain(n: int) -> float:
    f = plain_function
    t0 = clock()
    for _ in range(n):
        f(resume="text")
    return clock() - t0


def sync_emitter(n: int) -> float:
    call = make_emitter("bench-sync-emitter").call
    f = plain_function
    t0 = clock()
    for _ in range(n):
        with call("ExtractResume", arguments={"resume": "text"}) as c:
            c.set_result(f(resume="text"))
    return clock() - t0


def sync_fake(n: int) -> float:
    fake = make_fake(FakeBamlClient, streaming=False)
    f = fake.ExtractResume
    t0 = clock()
    for _ in range(n):
        f(resume="text")
    dt = clock() - t0
    assert len(fake.calls) == n and fake.calls[-1].result == RESULT_VALUE
    return dt


def async_plain(n: int) -> float:
    async def loop() -> float:
        f = plain_coroutine
        t0 = clock()
        for _ in range(n):
            await f(resume="text")
        return clock() - t0

    return asyncio.run(loop())


def async_emitter(n: int) -> float:
    async def loop() -> float:
        call = make_emitter("bench-async-emitter").call
        f = plain_coroutine
        t0 = clock()
        for _ in range(n):
            async with call("ExtractResume", arguments={"resume": "text"}) as c:
                c.set_result(await f(resume="text"))
        return clock() - t0

    return asyncio.run(loop())


def async_fake(n: int) -> float:
    async def loop() -> float:
        fake = make_fake(AsyncFakeBamlClient, streaming=False)
        f = fake.ExtractResume
        t0 = clock()
        for _ in range(n):
            await f(resume="text")
        dt = clock() - t0
        assert len(fake.calls) == n
        return dt

    return asyncio.run(loop())


def stream_plain(n: int) -> float:
    t0 = clock()
    for _ in range(n):
        s = PlainStream(PARTIALS)
        for _partial in s:
            pass
        s.get_final_response()
    return clock() - t0


def stream_emitter(n: int) -> float:
    emitter = make_emitter("bench-stream-emitter")
    wrap = emitter.stream
    t0 = clock()
    for _ in range(n):
        s = wrap(PlainStream(PARTIALS), "ExtractResume", arguments={"resume": "text"})
        for _partial in s:
            pass
        s.get_final_response()
    return clock() - t0


def stream_fake(n: int) -> float:
    fake = make_fake(FakeBamlClient, streaming=True)
    f = fake.stream.ExtractResume
    t0 = clock()
    for _ in range(n):
        s = f(resume="text")
        for _partial in s:
            pass
        s.get_final_response()
    dt = clock() - t0
    assert len(fake.calls) == n and fake.calls[-1].result == RESULT_VALUE
    return dt


SHAPES: dict[str, dict[str, Callable[[int], float]]] = {
    "sync": {"plain": sync_plain, "emitter": sync_emitter, "fake": sync_fake},
    "async": {"plain": async_plain, "emitter": async_emitter, "fake": async_fake},
    "stream": {"plain": stream_plain, "emitter": stream_emitter, "fake": stream_fake},
}
LABELS = {
    "sync": ("plain function", "Emitter.call around it", "FakeBamlClient call"),
    "async": ("plain coroutine (sleep(0))", "async with Emitter.call", "AsyncFakeBamlClient call"),
    "stream": ("plain stream, 3 partials", "Emitter.stream around it", "FakeBamlClient stream"),
}


TARGETS = {"sync": 3.0, "async": 3.0, "stream": None}
"""The most a fake call may cost, in bare emitter calls of the same shape (``None``: no target)."""


def measure(calls: int, repeat: int) -> dict[str, dict[str, list[float]]]:
    """ns per call for every shape and case, one sample per interleaved round."""
    samples: dict[str, dict[str, list[float]]] = {s: {c: [] for c in cases} for s, cases in SHAPES.items()}
    for _ in range(repeat):
        for shape, cases in SHAPES.items():
            n = calls if shape != "async" else max(1, calls // 2)
            for case, fn in cases.items():
                gc.collect()
                samples[shape][case].append(fn(n) / n * 1e9)
    return samples


def emitter_build() -> str:
    """``"compiled"`` when the emitter imported here is the optional mypyc build, else ``"pure"``."""
    try:
        from pytest_baml_telemetry.compiled import status
    except ImportError:  # a tree without the compiled build's command
        return "pure"
    return "compiled" if status().get("emitter") == "compiled" else "pure"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (a rough figure)")
    parser.add_argument("--calls", type=int, default=None, help="calls per case and round (default 20,000)")
    parser.add_argument("--repeat", type=int, default=None, help="interleaved rounds (default 9; 5 with --quick)")
    parser.add_argument("--wall", action="store_true", help="time with perf_counter instead of the thread's CPU time")
    opts = parser.parse_args(argv)
    global clock
    clock = time.perf_counter if opts.wall else time.thread_time
    calls = opts.calls or (4_000 if opts.quick else 20_000)
    repeat = opts.repeat or (5 if opts.quick else 9)
    if calls < 2 or repeat < 1:
        parser.error(f"--calls={calls} and --repeat={repeat}: expected --calls >= 2 and --repeat >= 1")

    samples = measure(calls, repeat)
    build = emitter_build()

    print(f"Python {sys.version.split()[0]} on {sys.platform}; {calls:,} calls per case; {repeat} paired rounds; "
          f"{build} emitter; {'wall' if opts.wall else 'thread CPU'} time")
    print(f"{'shape':<7} {'case':<30} {'us/call':>9} {'x baseline':>11} {'x emitter':>10}   (medians)")
    print("-" * 82)
    rows = []
    failed = False
    for shape, cases in samples.items():
        med = {case: statistics.median(values) for case, values in cases.items()}
        base, emit = med["plain"], med["emitter"]
        ratios = [f / e for f, e in zip(cases["fake"], cases["emitter"])]  # paired: the same round
        ratio = statistics.median(ratios)
        for case, label in zip(("plain", "emitter", "fake"), LABELS[shape]):
            ns = med[case]
            shown = f"{ratio:>9.2f}x" if case == "fake" else f"{ns / emit:>9.2f}x"
            print(f"{shape:<7} {label:<30} {ns / 1000:>9.2f} {ns / base:>10.1f}x {shown}")
        limit = TARGETS[shape]
        target = status = ""
        if limit is not None:
            target = f"<= {limit:g}x bare emitter"
            met = ratio <= limit
            failed |= not met
            status = "PASS" if met else "FAIL"
        rows.append(
            {
                "benchmark": f"FakeBamlClient call, {shape}" + (" (compiled emitter)" if build == "compiled" else ""),
                "measured": f"{med['fake'] / 1000:.1f} us/call",
                "baseline": f"{emit / 1000:.2f} us ({LABELS[shape][1]}); plain {base / 1000:.2f} us",
                "ratio": f"{ratio:.2f}x emitter (range {min(ratios):.2f}-{max(ratios):.2f}), {med['fake'] / base:.0f}x plain",
                "target": target,
                "status": status,
            }
        )
    print()
    for shape, row in zip(samples, rows):
        if row["target"]:
            print(f"{row['status']}  {shape} fake call {row['target']}: {row['ratio'].split(' (')[0]}"
                  f" ({'met' if row['status'] == 'PASS' else 'missed'})")
        else:
            print(f"      {shape} fake call: {row['ratio'].split(' (')[0]} (no target)")
    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "fake_client",
                "calls": calls,
                "repeat": repeat,
                "emitter_build": build,
                "clock": "perf_counter" if opts.wall else "thread_time",
                "median_ns_per_call": {
                    s: {c: statistics.median(v) for c, v in cases.items()} for s, cases in samples.items()
                },
                "best_ns_per_call": {s: {c: min(v) for c, v in cases.items()} for s, cases in samples.items()},
                "rows": rows,
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
