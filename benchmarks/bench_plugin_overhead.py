"""What the plugin costs a 2,000-test suite that does not use it, and what importing it costs.

Run:  python benchmarks/bench_plugin_overhead.py [--quick] [--tests N] [--pairs P] [--isolated]

A temporary suite of ``--tests`` trivial tests (default 2,000, in modules of 100) is run
with ``python -m pytest -q`` in subprocesses, alternately without the plugin
(``-p no:baml_telemetry``) and with it (the ``baml_telemetry`` entry point, loaded as
installed), for ``--pairs`` pairs (default 15), after one warm-up run of each. Reported:
the median of the per-pair ratios with their interquartile range (the noise of paired runs
on this machine), the ratio of the fastest runs, and the same for the CPU time (user + sys)
of the child processes. The figure held against the target is the median of the per-pair
wall-clock ratios: the two runs of a pair run back to back, under the same load from the
other users of the machine, where the fastest run of each arm may come from different,
quieter moments (the ratio of the fastest runs is shown too).

``--isolated`` adds a second, diagnostic series run with
``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``: bare pytest against bare pytest plus
``-p pytest_baml_telemetry.plugin``. No other installed plugin is loaded, so the baseline
is smaller than in any real install (the package depends on respx and hypothesis, whose
pytest plugins load httpx, asyncio and more): a stricter figure.

The children get ``PYTHONDONTWRITEBYTECODE`` unset and ``PYTHONPYCACHEPREFIX`` pointed at a
temporary directory, so that bytecode is cached as on a developer's machine (nothing is
written into the source tree).

In process (issue 17): the suite is collected once with ``pytest.main(["--collect-only"])``
(real items, the plugin loaded) and the plugin's collection scan (``_any_uses_plugin``, what
``pytest_collection_modifyitems`` runs) is timed over the 2,000 items, interleaved round by
round with the scan it replaced (``get_closest_marker`` once per marker name, copied here as
the baseline); medians of the rounds, reported per 2,000 items. Over the same items the
plugin's per-test hooks that every test runs (the network guard's scope) are called directly:
with the scan and the plugin's import, an estimate of the plugin's own time in a run that is
free of the other users of the machine (the paired runs are not, on 2 shared cores).

Then ``python -X importtime`` measures, after ``pytest`` and ``asyncio`` (which a run has
already imported), ``import pytest_baml_telemetry``, ``import pytest_baml_telemetry.plugin``
and, as the baseline, the plugin plus the modules its load imported before issue 17 (the
package's eager names: clock, contract, dispatcher, emitter, instrument and the budget key
registry), the three interleaved for 5 rounds (medians), with the package modules each pulls in.

Targets: the whole run with the plugin within +3 % of the run without it (SPEC section 8; the
noise of paired runs here is about +-3 %); the collection scan <= 3 ms per 2,000 items (issue 17).
The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET_OVERHEAD = 0.03
TARGET_SCAN_MS = 3.0  # per 2,000 items
SCAN_ITEMS = 2000
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
        "wall_ratio_iqr": _iqr([b / a for a, b in zip(w0, w1)]),
        "cpu_ratio_min": min(c1) / min(c0),
        "cpu_ratio_median": statistics.median(b / a for a, b in zip(c0, c1)),
    }


# ----------------------------------------------------------------------------- the collection scan

_OLD_FIXTURES = frozenset({"baml_events", "baml_fake", "baml_llm_server", "baml_llm_server_session"})
_OLD_MARKERS = ("baml_budget", "baml_events", "baml_fake", "baml_llm_server", "baml_cassette")


def old_uses_plugin(item: Any) -> bool:
    """The scan before issue 17 (``plugin._uses_plugin`` then): one marker walk per marker name."""
    names = getattr(item, "fixturenames", ())
    return any(n in _OLD_FIXTURES for n in names) or any(item.get_closest_marker(m) is not None for m in _OLD_MARKERS)


def old_any_uses_plugin(items: list[Any]) -> bool:
    return any(old_uses_plugin(i) for i in items)


def collect_items(suite: Path) -> list[Any]:
    """The suite's items, collected in this process with the plugin loaded (``--collect-only``)."""
    import pytest

    class _Keep:
        items: list[Any] = []
        plugin_loaded = False

        def pytest_collection_finish(self, session: Any) -> None:
            self.items = list(session.items)
            manager = session.config.pluginmanager
            self.plugin_loaded = any(manager.get_plugin(n) is not None for n in ("baml_telemetry", "pytest_baml_telemetry.plugin"))

    keep = _Keep()
    with contextlib.redirect_stdout(io.StringIO()) as out, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. pytest-asyncio's about an unset ini key: not ours
        code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", "--rootdir", str(suite), str(suite)], plugins=[keep])
    if code != 0 or not keep.items:
        raise SystemExit(f"collecting {suite} failed (exit {code}):\n{out.getvalue()[-2000:]}")
    if not keep.plugin_loaded:
        raise SystemExit("the plugin was not loaded in the collecting session: the items would not be the ones it scans")
    return keep.items


def time_scan(items: list[Any], rounds: int, reps: int) -> dict[str, Any]:
    """Median seconds per scan of ``items``: the plugin's scan and the old one, interleaved by round."""
    from pytest_baml_telemetry import plugin

    new_scan = plugin._any_uses_plugin
    if new_scan(items) or old_any_uses_plugin(items):
        raise SystemExit("an item of the generated suite uses the plugin: the idle scan would stop early")
    new: list[float] = []
    old: list[float] = []
    for k in range(rounds):
        order = ((new_scan, new), (old_any_uses_plugin, old))
        for scan, into in order if k % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            for _ in range(reps):
                scan(items)
            into.append((time.perf_counter() - t0) / reps)
    return {
        "items": len(items),
        "new_s": statistics.median(new),
        "old_s": statistics.median(old),
        "ratio_median": statistics.median(a / b for a, b in zip(new, old)),
        "rounds": rounds,
        "reps": reps,
    }


def _iqr(values: list[float]) -> tuple[float, float]:
    """The first and third quartiles of ``values`` (both the one value when there is only one)."""
    if len(values) < 2:
        return values[0], values[0]
    q1, _q2, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def time_guard_hooks(items: list[Any], rounds: int) -> float:
    """Median seconds for the plugin's per-test hooks that every test runs (the network guard's
    scope: ``_GuardHooks.pytest_runtest_setup`` and the ``pytest_runtest_teardown`` wrapper),
    called directly over ``items``: the part of the plugin's cost that grows with the suite."""
    from pytest_baml_telemetry import plugin

    hooks = plugin._GuardHooks(whole_run=False)
    times: list[float] = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for item in items:
            hooks.pytest_runtest_setup(item)
            teardown = hooks.pytest_runtest_teardown(item, None)
            next(teardown)
            try:
                teardown.send(None)
            except StopIteration:
                pass
        times.append(time.perf_counter() - t0)
    if hooks.outside:
        raise SystemExit(f"the guard refused requests while timing its hooks: {hooks.outside}")
    return statistics.median(times)


IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)\s*$")


_EAGER_BEFORE = (
    "pytest_baml_telemetry.plugin",
    "pytest_baml_telemetry.clock",
    "pytest_baml_telemetry.contract",
    "pytest_baml_telemetry.dispatcher",
    "pytest_baml_telemetry.emitter",
    "pytest_baml_telemetry.instrument",
    "pytest_baml_telemetry.budgets.limits",
)
IMPORTS = {
    "package": "pytest_baml_telemetry",
    "plugin": "pytest_baml_telemetry.plugin",
    "eager_before": ", ".join(_EAGER_BEFORE),
}
PRE = "pytest, asyncio"


def _importtime(env: dict[str, str], pre: str, target: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """``import pre; import target`` under ``-X importtime``: (microseconds for everything imported
    after ``pre``, {module: (self us, cumulative us)} of those modules)."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {pre}; import {target}"],
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
    modules: dict[str, tuple[int, int]] = {}
    total = 0
    for line in lines[start + 1 :]:
        m = IMPORT_LINE.match(line)
        if not m:
            continue
        modules[m.group(4)] = (int(m.group(1)), int(m.group(2)))
        if len(m.group(3)) == 1:  # a top-level import of the -c line: its cumulative time counts once
            total += int(m.group(2))
    first = target.split(",")[0].strip()
    if first not in modules:
        raise SystemExit(f"{first} does not appear in the -X importtime output:\n" + err[-2000:])
    return total, modules


def import_times(env: dict[str, str], rounds: int) -> dict[str, Any]:
    """Import cost of the package, of the plugin, and of the plugin with what it imported before
    issue 17 (the baseline), interleaved round by round after one dropped round (bytecode)."""
    totals: dict[str, list[int]] = {key: [] for key in IMPORTS}
    pulled: dict[str, list[str]] = {}
    for k in range(rounds + 1):
        keys = list(IMPORTS) if k % 2 == 0 else list(IMPORTS)[::-1]
        for key in keys:
            total, modules = _importtime(env, PRE, IMPORTS[key])
            if k == 0:
                pulled[key] = sorted(m for m in modules if m.startswith("pytest_baml_telemetry"))
                continue
            totals[key].append(total)
    return {
        "pre": PRE,
        "us": {key: statistics.median(v) for key, v in totals.items()},
        "plugin_ratio_median": statistics.median(a / b for a, b in zip(totals["plugin"], totals["eager_before"])),
        "modules": pulled,
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
        scan_suite = suite
        if opts.tests != SCAN_ITEMS:
            scan_suite = Path(tmp) / "scan-suite"
            scan_suite.mkdir()
            write_suite(scan_suite, SCAN_ITEMS)
        scan_items = collect_items(scan_suite)
        scan = time_scan(scan_items, rounds=5 if opts.quick else 21, reps=5 if opts.quick else 20)
        guard_s = time_guard_hooks(scan_items, rounds=5 if opts.quick else 21)
        pycache = Path(tmp) / "pycache"
        env = child_env(pycache, isolated=False)
        main_series = series(suite, env, opts.tests, pairs, isolated=False)
        iso_series = None
        if opts.isolated:
            iso_series = series(suite, child_env(pycache, isolated=True), opts.tests, pairs, isolated=True)
        imports = import_times(child_env(pycache, isolated=False), rounds=3 if opts.quick else 5)

    us, mods = imports["us"], imports["modules"]
    per = SCAN_ITEMS / scan["items"]
    scan_ms, old_scan_ms = scan["new_s"] * per * 1000, scan["old_s"] * per * 1000
    scan_ok = scan_ms <= TARGET_SCAN_MS
    print(f"Python {sys.version.split()[0]} on {sys.platform}; {opts.tests:,} trivial tests; {pairs} alternating pairs")
    print()
    print(
        f"{'PASS' if scan_ok else 'FAIL'}  collection scan over {scan['items']:,} items not using the plugin: "
        f"{scan_ms:.3f} ms per {SCAN_ITEMS:,} items (the scan before: {old_scan_ms:.3f} ms; "
        f"ratio {scan['ratio_median']:.3f}; target <= {TARGET_SCAN_MS:g} ms; median of {scan['rounds']} rounds x {scan['reps']})"
    )
    guard_ms = guard_s * per * 1000
    own_ms = guard_ms + scan_ms + us["plugin"] / 1000
    base_s = statistics.median(main_series["wall_without"]) * SCAN_ITEMS / opts.tests
    print(
        f"      the plugin's per-test hooks (network guard scope), called directly: {guard_ms:.1f} ms per {SCAN_ITEMS:,} tests; "
        f"with the scan and the plugin's import: {own_ms:.1f} ms, {own_ms / 10 / base_s:.2f}% of the median run without it"
    )
    print()
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

    def ours(key: str) -> str:
        names = [m.removeprefix("pytest_baml_telemetry").lstrip(".") or "(package)" for m in mods[key]]
        return f"{len(names)} package modules: {', '.join(names)}"

    print(f"imports after {imports['pre']} (median of the rounds, -X importtime):")
    print(f"  import pytest_baml_telemetry:         {us['package'] / 1000:6.1f} ms  ({ours('package')})")
    print(f"  import pytest_baml_telemetry.plugin:  {us['plugin'] / 1000:6.1f} ms  ({ours('plugin')})")
    print(
        f"  baseline, the plugin + what it imported before issue 17: {us['eager_before'] / 1000:.1f} ms "
        f"({len(mods['eager_before'])} package modules); ratio {imports['plugin_ratio_median']:.3f}"
    )

    overhead = main_series["wall_ratio_median"] - 1.0
    fastest = main_series["wall_ratio_min"] - 1.0
    q1, q3 = (q - 1.0 for q in main_series["wall_ratio_iqr"])
    ok = overhead < TARGET_OVERHEAD
    print()
    print(
        f"{'PASS' if ok else 'FAIL'}  plugin overhead on {opts.tests:,} tests: {overhead * 100:+.1f}% "
        f"(median of {pairs} per-pair wall-clock ratios; their interquartile range {q1 * 100:+.1f}% .. {q3 * 100:+.1f}%; "
        f"fastest runs {fastest * 100:+.1f}%; CPU median {(main_series['cpu_ratio_median'] - 1) * 100:+.1f}%; "
        f"target < {TARGET_OVERHEAD * 100:.0f}%)"
    )
    rows = [
        {
            "benchmark": f"collection scan (_uses_plugin), {SCAN_ITEMS:,} items not using the plugin, in process",
            "measured": f"{scan_ms:.3f} ms per {SCAN_ITEMS:,} items",
            "baseline": f"{old_scan_ms:.3f} ms (get_closest_marker per marker name, the scan before)",
            "ratio": f"{scan['ratio_median']:.3f}",
            "target": f"<= {TARGET_SCAN_MS:g} ms per {SCAN_ITEMS:,} items",
            "status": "PASS" if scan_ok else "FAIL",
        },
        {
            "benchmark": f"plugin overhead, {opts.tests:,}-test suite not using it",
            "measured": f"{statistics.median(main_series['wall_with']):.3f} s (with plugin, median)",
            "baseline": f"{statistics.median(main_series['wall_without']):.3f} s (-p no:baml_telemetry, median)",
            "ratio": f"{main_series['wall_ratio_median']:.3f} ({overhead * 100:+.1f}%, median of {pairs} pairs; "
            f"IQR {q1 * 100:+.1f}% .. {q3 * 100:+.1f}%; fastest runs {fastest * 100:+.1f}%; "
            f"CPU {(main_series['cpu_ratio_median'] - 1) * 100:+.1f}%)",
            "target": "< +3%",
            "status": "PASS" if ok else "FAIL",
        },
        {
            "benchmark": "import pytest_baml_telemetry.plugin (after pytest, asyncio)",
            "measured": f"{us['plugin'] / 1000:.1f} ms, {len(mods['plugin'])} package modules "
            f"(the package alone: {us['package'] / 1000:.1f} ms, {len(mods['package'])})",
            "baseline": f"{us['eager_before'] / 1000:.1f} ms, {len(mods['eager_before'])} package modules "
            "(the plugin + what it imported before issue 17)",
            "ratio": f"{imports['plugin_ratio_median']:.3f}",
            "target": "",
            "status": "",
        },
    ]
    rows.insert(
        2,
        {
            "benchmark": f"the plugin's own time per {SCAN_ITEMS:,}-test run not using it, in process (estimate)",
            "measured": f"{own_ms:.1f} ms (per-test guard hooks {guard_ms:.1f} ms, scan {scan_ms:.2f} ms, "
            f"import {us['plugin'] / 1000:.1f} ms)",
            "baseline": f"{base_s:.3f} s (median run without the plugin, per {SCAN_ITEMS:,} tests)",
            "ratio": f"{own_ms / 10 / base_s:.2f}%",
            "target": "",
            "status": "",
        },
    )
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
                "scan": scan,
                "guard_hooks_s": guard_s,
                "rows": rows,
            }
        )
    )
    return 0 if ok and scan_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
