"""What the plugin costs a 2,000-test suite that does not use it, and what importing it costs.

Run:  python benchmarks/bench_plugin_overhead.py [--quick] [--tests N] [--pairs P] [--isolated]

A temporary suite of ``--tests`` trivial tests (default 2,000, in modules of 100) is run
with ``python -m pytest -q`` in subprocesses, alternately without the plugin
(``-p no:baml_telemetry``) and with it (the ``baml_telemetry`` entry point, loaded as
installed), for ``--pairs`` pairs (default 15), after one warm-up run of each. Reported:
the ratio of the fastest runs, the median of the per-pair ratios, and the same for the
CPU time (user + sys) of the child processes. The figure held against the target is the
ratio of the fastest wall-clock runs (best of ``--pairs``, as ``timeit`` does: other load
on the machine only ever adds time); the medians show how noisy the machine was.

``--isolated`` adds a second, diagnostic series run with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``: bare pytest against bare pytest plus
``-p pytest_baml_telemetry.plugin``. No other installed plugin is loaded, so the baseline
is smaller than in any real install (the package depends on respx and hypothesis, whose
pytest plugins load httpx, asyncio and more): a stricter figure.

The children get ``PYTHONDONTWRITEBYTECODE`` unset and ``PYTHONPYCACHEPREFIX`` pointed at a
temporary directory, so that bytecode is cached as on a developer's machine (nothing is
written into the source tree).

Then ``python -X importtime`` measures the import of ``pytest_baml_telemetry.plugin``
(after ``pytest``, which a run has already imported) and of ``pytest_baml_telemetry.session``
(imported by the plugin's ``pytest_configure``), best of 5, with the modules that cost most.

Target (SPEC section 8): the plugin costs a 2,000-test suite that does not use it under 3 %.
The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 0.03
TESTS_PER_MODULE = 100

TEST_BODY = '''
def test_{i}():
    assert {i} + 1 == {j}
'''


def write_suite(root: Path, tests: int) -> None:
    """``tests`` trivial passing tests in modules of 100, with an empty ``pytest.ini``."""
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    for start in range(0, tests, TESTS_PER_MODULE):
        count = min(TESTS_PER_MODULE, tests - start)
        body = "".join(TEST_BODY.format(i=i, j=i + 1) for i in range(start, start + count))
        (root / f"test_mod{start // TESTS_PER_MODULE:03d}.py").write_text(body, encoding="utf-8")


def child_env(pycache: Path, isolated: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("PYTEST_ADDOPTS", None)
    if isolated:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    else:
        env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
    return env


def arm_args(with_plugin: bool, isolated: bool) -> list[str]:
    if isolated:
        return ["-p", "pytest_baml_telemetry.plugin"] if with_plugin else []
    return [] if with_plugin else ["-p", "no:baml_telemetry"]


def run_once(suite: Path, env: dict[str, str], args: list[str], tests: int) -> tuple[float, float]:
    """One pytest run; returns (wall seconds, child CPU seconds). Fails loudly if tests did not pass."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *args],
        cwd=suite,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0 or f"{tests} passed" not in proc.stdout:
        tail = "\n".join(proc.stdout.splitlines()[-15:])
        raise SystemExit(f"pytest {' '.join(args)} did not pass {tests} tests (exit {proc.returncode}):\n{tail}")
    return wall, cpu


def check_arms(suite: Path, env: dict[str, str], isolated: bool) -> None:
    """The plugin's markers are registered with it and absent without it."""
    for with_plugin in (False, True):
        out = subprocess.run(
            [sys.executable, "-m", "pytest", "--markers", *arm_args(with_plugin, isolated)],
            cwd=suite,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ).stdout
        if ("baml_budget" in out) != with_plugin:
            raise SystemExit(
                f"the {'with' if with_plugin else 'without'}-plugin arm {'does not load' if with_plugin else 'loads'} "
                f"the plugin (args {arm_args(with_plugin, isolated)}); the comparison would be meaningless"
            )


def series(suite: Path, env: dict[str, str], tests: int, pairs: int, isolated: bool) -> dict[str, Any]:
    check_arms(suite, env, isolated)
    without, with_ = arm_args(False, isolated), arm_args(True, isolated)
    run_once(suite, env, without, tests)  # warm-up: bytecode, page cache
    run_once(suite, env, with_, tests)
    w0: list[float] = []
    w1: list[float] = []
    c0: list[float] = []
    c1: list[float] = []
    for k in range(pairs):
        order = (False, True) if k % 2 == 0 else (True, False)  # alternate who goes first
        for with_plugin in order:
            wall, cpu = run_once(suite, env, with_ if with_plugin else without, tests)
            (w1 if with_plugin else w0).append(wall)
            (c1 if with_plugin else c0).append(cpu)
    return {
        "wall_without": w0,
        "wall_with": w1,
        "cpu_without": c0,
        "cpu_with": c1,
        "wall_ratio_min": min(w1) / min(w0),
        "wall_ratio_median": statistics.median(b / a for a, b in zip(w0, w1)),
        "cpu_ratio_min": min(c1) / min(c0),
        "cpu_ratio_median": statistics.median(b / a for a, b in zip(c0, c1)),
    }


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)\s*$")


def _importtime(env: dict[str, str], pre: str, runs: int) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """``({module: (self us, cumulative us)}, {module: its importer})`` of the run (of ``runs``,
    after one dropped) with the smallest plugin + session cumulative time; only modules
    imported after ``pre``."""
    code = f"import {pre}; import pytest_baml_telemetry.plugin; import pytest_baml_telemetry.session"
    best: dict[str, tuple[int, int]] | None = None
    parents: dict[str, str] = {}
    for k in range(runs + 1):  # the first run may compile bytecode: dropped
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ).stderr
        lines = err.splitlines()
        last_pre = pre.split(",")[-1].strip()
        start = next((i for i, line in enumerate(lines) if line.rstrip().endswith(f"| {last_pre}")), None)
        if start is None:
            raise SystemExit(f"could not find the import of {last_pre} in the -X importtime output:\n" + err[-2000:])
        this: dict[str, tuple[int, int]] = {}
        # -X importtime prints a module after the modules it imported, indented one level more
        pending: list[tuple[int, str]] = []
        this_parents: dict[str, str] = {}
        for line in lines[start + 1 :]:
            m = IMPORT_LINE.match(line)
            if not m:
                continue
            name, depth = m.group(4), len(m.group(3))
            this[name] = (int(m.group(1)), int(m.group(2)))
            while pending and pending[-1][0] > depth:
                this_parents[pending.pop()[1]] = name
            pending.append((depth, name))
        if "pytest_baml_telemetry.plugin" not in this:
            raise SystemExit("pytest_baml_telemetry.plugin does not appear in the -X importtime output:\n" + err[-2000:])
        if k == 0:
            continue
        total = this["pytest_baml_telemetry.plugin"][1] + this.get("pytest_baml_telemetry.session", (0, 0))[1]
        if best is None or total < best["pytest_baml_telemetry.plugin"][1] + best.get(
            "pytest_baml_telemetry.session", (0, 0)
        )[1]:
            best, parents = this, this_parents
    assert best is not None
    return best, parents


def import_times(env: dict[str, str], runs: int) -> dict[str, Any]:
    """Import cost of the plugin (and of the session module its ``pytest_configure`` imports),
    with pytest already imported; with asyncio already imported (as in any environment where
    respx/httpx, pytest-asyncio or anyio is installed) and without."""
    warm, _ = _importtime(env, "pytest, asyncio", runs)
    cold, parents = _importtime(env, "pytest", runs)

    def total(t: dict[str, tuple[int, int]]) -> int:
        return t["pytest_baml_telemetry.plugin"][1] + t.get("pytest_baml_telemetry.session", (0, 0))[1]

    top = sorted(cold.items(), key=lambda kv: -kv[1][0])[:8]
    return {
        "plugin_us": warm["pytest_baml_telemetry.plugin"][1],
        "session_us": warm.get("pytest_baml_telemetry.session", (0, 0))[1],
        "total_us": total(warm),
        "total_without_asyncio_us": total(cold),
        "asyncio_us": cold.get("asyncio", (0, 0))[1],
        "asyncio_imported_by": parents.get("asyncio"),
        "top_self_us": [(name, s) for name, (s, _c) in top],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 pairs instead of 15 (a rough figure)")
    parser.add_argument("--tests", type=int, default=2000, help="tests in the generated suite (default 2,000)")
    parser.add_argument("--pairs", type=int, default=None, help="alternating pairs of runs (default 15; 3 with --quick)")
    parser.add_argument(
        "--isolated",
        action="store_true",
        help="also measure against bare pytest, with no other plugin loaded (diagnostic)",
    )
    opts = parser.parse_args(argv)
    pairs = opts.pairs or (3 if opts.quick else 15)
    if opts.tests < 1 or pairs < 1:
        parser.error(f"--tests={opts.tests} and --pairs={pairs}: expected positive numbers")

    with tempfile.TemporaryDirectory(prefix="pbt-bench-suite-") as tmp:
        suite = Path(tmp) / "suite"
        suite.mkdir()
        write_suite(suite, opts.tests)
        pycache = Path(tmp) / "pycache"
        env = child_env(pycache, isolated=False)
        main_series = series(suite, env, opts.tests, pairs, isolated=False)
        iso_series = None
        if opts.isolated:
            iso_series = series(suite, child_env(pycache, isolated=True), opts.tests, pairs, isolated=True)
        imports = import_times(child_env(pycache, isolated=False), runs=3 if opts.quick else 5)

    print(f"Python {sys.version.split()[0]} on {sys.platform}; {opts.tests:,} trivial tests; {pairs} alternating pairs")
    print(f"{'series':<58} {'without':>9} {'with':>9} {'min ratio':>10} {'median ratio':>13}")
    print("-" * 103)
    shown = [("installed plugins, -p no:baml_telemetry vs on", main_series)]
    if iso_series is not None:
        shown.append(("bare pytest vs -p pytest_baml_telemetry.plugin", iso_series))
    for label, s in shown:
        for kind in ("wall", "cpu"):
            print(
                f"{label + f' ({kind})':<58} {min(s[kind + '_without']):>8.3f}s {min(s[kind + '_with']):>8.3f}s "
                f"{s[kind + '_ratio_min']:>10.3f} {s[kind + '_ratio_median']:>13.3f}"
            )
    print()
    print(
        f"import pytest_baml_telemetry.plugin: {imports['plugin_us'] / 1000:.1f} ms, "
        f"+ .session (imported by pytest_configure): {imports['session_us'] / 1000:.1f} ms "
        "(pytest and asyncio already imported)"
    )
    if imports["asyncio_us"]:
        print(
            f"  without asyncio imported beforehand: {imports['total_without_asyncio_us'] / 1000:.1f} ms in all, "
            f"of which asyncio {imports['asyncio_us'] / 1000:.1f} ms (imported by {imports['asyncio_imported_by']})"
        )
    else:
        print(
            f"  without asyncio imported beforehand: {imports['total_without_asyncio_us'] / 1000:.1f} ms in all "
            "(the plugin does not import asyncio)"
        )
    print("  largest self times: " + ", ".join(f"{n} {us / 1000:.1f} ms" for n, us in imports["top_self_us"]))

    overhead = main_series["wall_ratio_min"] - 1.0
    ok = overhead < TARGET_OVERHEAD
    print()
    print(
        f"{'PASS' if ok else 'FAIL'}  plugin overhead on {opts.tests:,} tests: {overhead * 100:+.1f}% "
        f"(fastest runs, wall clock; median of per-pair ratios {(main_series['wall_ratio_median'] - 1) * 100:+.1f}%; "
        f"target < {TARGET_OVERHEAD * 100:.0f}%)"
    )
    rows = [
        {
            "benchmark": f"plugin overhead, {opts.tests:,}-test suite not using it",
            "measured": f"{min(main_series['wall_with']):.3f} s (with plugin)",
            "baseline": f"{min(main_series['wall_without']):.3f} s (-p no:baml_telemetry)",
            "ratio": f"{main_series['wall_ratio_min']:.3f} ({overhead * 100:+.1f}%; median of pairs "
            f"{(main_series['wall_ratio_median'] - 1) * 100:+.1f}%, CPU {(main_series['cpu_ratio_min'] - 1) * 100:+.1f}%)",
            "target": "< +3%",
            "status": "PASS" if ok else "FAIL",
        },
        {
            "benchmark": "import pytest_baml_telemetry.plugin (+ .session)",
            "measured": f"{imports['plugin_us'] / 1000:.1f} ms (+ {imports['session_us'] / 1000:.1f} ms)",
            "baseline": f"{imports['total_without_asyncio_us'] / 1000:.1f} ms in all if asyncio is not yet imported"
            + (f" (asyncio {imports['asyncio_us'] / 1000:.1f} ms, by {imports['asyncio_imported_by']})" if imports["asyncio_us"] else ""),
            "ratio": "",
            "target": "",
            "status": "",
        },
    ]
    if iso_series is not None:
        iso = iso_series["wall_ratio_min"] - 1.0
        rows.insert(
            1,
            {
                "benchmark": "plugin overhead vs bare pytest (no other plugins)",
                "measured": f"{min(iso_series['wall_with']):.3f} s",
                "baseline": f"{min(iso_series['wall_without']):.3f} s (bare pytest)",
                "ratio": f"{iso_series['wall_ratio_min']:.3f} ({iso * 100:+.1f}%; median of pairs "
                f"{(iso_series['wall_ratio_median'] - 1) * 100:+.1f}%)",
                "target": "",
                "status": "",
            },
        )
    print(
        "RESULT "
        + json.dumps(
            {
                "bench": "plugin_overhead",
                "tests": opts.tests,
                "pairs": pairs,
                "installed": main_series,
                "isolated": iso_series,
                "imports": imports,
                "rows": rows,
            }
        )
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
