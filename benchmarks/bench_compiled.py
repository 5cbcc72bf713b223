"""The dispatcher and emitter figures with the optional compiled build (mypyc), in a temporary copy.

Run:  python benchmarks/bench_compiled.py [--quick] [--keep]

Copies the package and ``bench_dispatch.py`` to a temporary directory, builds the compiled
modules there (``python -m pytest_baml_telemetry.compiled build``: needs mypy and a C
compiler; the checkout itself is left pure), and runs ``bench_dispatch.py`` against that
copy in a subprocess, where it measures against its baselines in the same process as
always and checks the compiled targets: ``execute`` with no handler at most 1.6x a plain
call, an emitter call with one handler at least 14x cheaper than an OpenTelemetry span.
Its rows come back labelled "(compiled)". When the build cannot be made the row says why
(status ERROR). The last line is ``RESULT {json}`` for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def result_of(output: str) -> dict | None:
    for line in reversed(output.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer loops in bench_dispatch.py")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    opts = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="pbt-bench-compiled-"))
    try:
        shutil.copytree(
            ROOT / "pytest_baml_telemetry",
            tmp / "pytest_baml_telemetry",
            ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", ".compiled-files"),
        )
        (tmp / "benchmarks").mkdir()
        shutil.copy2(ROOT / "benchmarks" / "bench_dispatch.py", tmp / "benchmarks" / "bench_dispatch.py")
        built = subprocess.run(
            [sys.executable, "-m", "pytest_baml_telemetry.compiled", "build"], cwd=tmp, capture_output=True, text=True
        )
        if built.returncode != 0:
            why = (built.stderr or built.stdout).strip().splitlines()[-1:] or ["no output"]
            row = {"benchmark": "compiled build", "measured": f"not built: {why[0]}"[:200], "status": "ERROR"}
            print(row["measured"], file=sys.stderr)
            print("RESULT " + json.dumps({"rows": [row]}))
            return 1
        print(built.stdout.strip())
        bench = subprocess.run(
            [sys.executable, str(tmp / "benchmarks" / "bench_dispatch.py"), *(["--quick"] if opts.quick else [])],
            cwd=tmp,
            capture_output=True,
            text=True,
        )
        print("\n".join(line for line in bench.stdout.splitlines() if not line.startswith("RESULT ")))
        data = result_of(bench.stdout)
        if data is None or data.get("build") != "compiled":
            tail = (bench.stderr or bench.stdout).strip().splitlines()[-1:] or ["no output"]
            row = {"benchmark": "compiled build", "measured": f"bench_dispatch.py did not run compiled: {tail[0]}"[:200],
                   "status": "ERROR"}
            print("RESULT " + json.dumps({"rows": [row]}))
            return 1
        print("RESULT " + json.dumps({"build": "compiled", "rows": data["rows"]}))
        return bench.returncode
    finally:
        if opts.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
