"""Cost of a ``FakeBamlClient`` call (sync, async, stream), against baselines in this process.

Run:  python benchmarks/bench_fake_client.py [--quick] [--calls N] [--repeat R]

For each shape of call, three things are timed, interleaved in each of ``--repeat``
rounds (the best round of each is kept), one no-op handler attached to the three call
events of every emitter:

* a plain function (or coroutine, or stream object) returning the same result: the
  baseline, what a hand-written stub costs;
* the same plain function wrapped by a bare ``Emitter`` (``with emitter.call(...)``,
  ``async with``, ``emitter.stream(...)``): the cost of the event contract alone;
* ``FakeBamlClient`` (``fake.ExtractResume(...)``, ``await async_fake.ExtractResume(...)``,
  ``fake.stream.ExtractResume(...)`` iterated to its final response), scripted once with
  a reusable outcome (usage, model, 850 ms of virtual latency, 3 partials for streams).

Async fakes always ``await asyncio.sleep(0)`` once per call (so that concurrent tasks
interleave); the async baseline and bare-emitter cases do the same, so the ratios compare
like with like. There is no target: the ratios say what the fake costs per call.
The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
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
# Each returns the seconds taken by ``n`` calls.


def sync_plain(n: int) -> float:
    f = plain_function
    t0 = time.perf_counter()
    for _ in range(n):
        f(resume="text")
    return time.perf_counter() - t0


def sync_emitter(n: int) -> float:
    call = make_emitter("bench-sync-emitter").call
    f = plain_function
    t0 = time.perf_counter()
    for _ in range(n):
        with call("ExtractResume", arguments={"resume": "text"}) as c:
            c.set_result(f(resume="text"))
    return time.perf_counter() - t0


def sync_fake(n: int) -> float:
    fake = make_fake(FakeBamlClient, streaming=False)
    f = fake.ExtractResume
    t0 = time.perf_counter()
    for _ in range(n):
        f(resume="text")
    dt = time.perf_counter() - t0
    assert len(fake.calls) == n and fake.calls[-1].result == RESULT_VALUE
    return dt


def async_plain(n: int) -> float:
    async def loop() -> float:
        f = plain_coroutine
        t0 = time.perf_counter()
        for _ in range(n):
            await f(resume="text")
        return time.perf_counter() - t0

    return asyncio.run(loop())


def async_emitter(n: int) -> float:
    async def loop() -> float:
        call = make_emitter("bench-async-emitter").call
        f = plain_coroutine
        t0 = time.perf_counter()
        for _ in range(n):
            async with call("ExtractResume", arguments={"resume": "text"}) as c:
                c.set_result(await f(resume="text"))
        return time.perf_counter() - t0

    return asyncio.run(loop())


def async_fake(n: int) -> float:
    async def loop() -> float:
        fake = make_fake(AsyncFakeBamlClient, streaming=False)
        f = fake.ExtractResume
        t0 = time.perf_counter()
        for _ in range(n):
            await f(resume="text")
        dt = time.perf_counter() - t0
        assert len(fake.calls) == n
        return dt

    return asyncio.run(loop())


def stream_plain(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        s = PlainStream(PARTIALS)
        for _partial in s:
            pass
        s.get_final_response()
    return time.perf_counter() - t0


def stream_emitter(n: int) -> float:
    emitter = make_emitter("bench-stream-emitter")
    wrap = emitter.stream
    t0 = time.perf_counter()
    for _ in range(n):
        s = wrap(PlainStream(PARTIALS), "ExtractResume", arguments={"resume": "text"})
        for _partial in s:
            pass
        s.get_final_response()
    return time.perf_counter() - t0


def stream_fake(n: int) -> float:
    fake = make_fake(FakeBamlClient, streaming=True)
    f = fake.stream.ExtractResume
    t0 = time.perf_counter()
    for _ in range(n):
        s = f(resume="text")
        for _partial in s:
            pass
        s.get_final_response()
    dt = time.perf_counter() - t0
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


def measure(calls: int, repeat: int) -> dict[str, dict[str, dict[str, float]]]:
    """ns per call for every shape and case: best and median of ``repeat`` interleaved rounds."""
    samples: dict[str, dict[str, list[float]]] = {s: {c: [] for c in cases} for s, cases in SHAPES.items()}
    for _ in range(repeat):
        for shape, cases in SHAPES.items():
            n = calls if shape != "async" else max(1, calls // 2)
            for case, fn in cases.items():
                gc.collect()
                samples[shape][case].append(fn(n) / n * 1e9)
    return {
        s: {c: {"best": min(v), "median": statistics.median(v)} for c, v in cases.items()}
        for s, cases in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (a rough figure)")
    parser.add_argument("--calls", type=int, default=None, help="calls per case and round (default 20,000)")
    parser.add_argument("--repeat", type=int, default=None, help="interleaved rounds (default 5; 3 with --quick)")
    opts = parser.parse_args(argv)
    calls = opts.calls or (4_000 if opts.quick else 20_000)
    repeat = opts.repeat or (3 if opts.quick else 5)
    if calls < 2 or repeat < 1:
        parser.error(f"--calls={calls} and --repeat={repeat}: expected --calls >= 2 and --repeat >= 1")

    results = measure(calls, repeat)

    print(f"Python {sys.version.split()[0]} on {sys.platform}; {calls:,} calls per case; best of {repeat} rounds")
    print(f"{'shape':<7} {'case':<30} {'us/call':>9} {'x baseline':>11} {'x emitter':>10}")
    print("-" * 71)
    rows = []
    for shape, cases in results.items():
        base = cases["plain"]["best"]
        emit = cases["emitter"]["best"]
        for case, label in zip(("plain", "emitter", "fake"), LABELS[shape]):
            ns = cases[case]["best"]
            print(f"{shape:<7} {label:<30} {ns / 1000:>9.2f} {ns / base:>10.1f}x {ns / emit:>9.2f}x")
        fake = cases["fake"]["best"]
        rows.append(
            {
                "benchmark": f"FakeBamlClient call, {shape}",
                "measured": f"{fake / 1000:.1f} us/call",
                "baseline": f"{base / 1000:.2f} us ({LABELS[shape][0]}); emitter alone {emit / 1000:.1f} us",
                "ratio": f"{fake / base:.0f}x plain, {fake / emit:.1f}x emitter",
                "target": "",
                "status": "",
            }
        )
    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "fake_client",
                "calls": calls,
                "repeat": repeat,
                "ns_per_call": {s: {c: v["best"] for c, v in cases.items()} for s, cases in results.items()},
                "median_ns_per_call": {s: {c: v["median"] for c, v in cases.items()} for s, cases in results.items()},
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
