"""Issue 13: the scenario runner (``Step``, ``run_outcome``, ``arun_outcome``, ``script_outcome``)
is public in ``pytest_baml_telemetry.fake`` and usable without Hypothesis."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from baml_py import errors

from pytest_baml_telemetry import StreamAbandoned
from pytest_baml_telemetry.fake import (
    AsyncFakeBamlClient,
    FakeBamlClient,
    OutcomeRun,
    Step,
    Usage,
    arun_outcome,
    faults,
    run_outcome,
    script_outcome,
)


def test_importing_and_running_it_does_not_import_hypothesis():
    code = (
        "import sys\n"
        "from pytest_baml_telemetry.fake import FakeBamlClient, Step, run_outcome\n"
        "seen = run_outcome(Step('success', result='hi', latency_ns=5), FakeBamlClient(), 'Greet', name='Ada')\n"
        "assert seen.result == 'hi' and seen.call.duration_ns == 5, seen\n"
        "assert 'hypothesis' not in sys.modules, 'hypothesis was imported'\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_run_each_kind_of_step():
    fake = FakeBamlClient()
    seen = run_outcome(Step("success", result={"a": 1}, usage=Usage(3, 4), model="m"), fake, "F", x=1)
    assert isinstance(seen, OutcomeRun) and seen.result == {"a": 1} and seen.error is None
    assert seen.call.arguments == {"x": 1}
    seen = run_outcome(Step("fault", fault="timeout", latency_ns=7), fake, "F")
    assert isinstance(seen.error, errors.BamlTimeoutError) and seen.call.duration_ns == 7
    seen = run_outcome(Step("stream_completed", result="ab", partials=["a"]), fake, "F")
    assert seen.partials == ("a",) and seen.result == "ab"
    seen = run_outcome(Step("stream_abandoned", result="ab", partials=("a", "b"), read=1), fake, "F")
    assert seen.partials == ("a",) and isinstance(seen.call.error, StreamAbandoned)
    seen = run_outcome(Step("stream_failed", partials=("a",), fault=faults.http_error(500)), fake, "F")
    assert seen.partials == ("a",) and isinstance(seen.error, errors.BamlClientHttpError)
    timed = Step("fault", fault=faults.timeout(after="30s"))
    assert timed.latency_ns == 30_000_000_000
    seen = run_outcome(timed, fake, "F")
    assert seen.call.duration_ns == 30_000_000_000 and isinstance(seen.error, errors.BamlTimeoutError)
    assert script_outcome(Step(result=1), fake, "G").kind == "respond"
    assert fake.G() == 1


def test_arun_on_an_async_fake():
    fake = AsyncFakeBamlClient()
    seen = asyncio.run(arun_outcome(Step("stream_completed", result="z", partials=("y",)), fake, "F"))
    assert seen.partials == ("y",) and seen.result == "z" and seen.call.is_async


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"kind": "nope"}, ValueError, "'nope'"),
        ({"kind": "fault"}, TypeError, "fault"),
        ({"kind": "success", "fault": "timeout"}, ValueError, "raises nothing"),
        ({"kind": "success", "partials": ("a",)}, ValueError, "only streams"),
        ({"kind": "stream_completed", "partials": "abc"}, TypeError, "'abc'"),
        ({"kind": "stream_abandoned", "partials": ("a",), "read": 2}, ValueError, "read=2"),
        ({"latency_ns": -1}, ValueError, "latency_ns=-1"),
        ({"abandon": "later"}, ValueError, "'later'"),
    ],
)
def test_a_bad_step_names_the_bad_value(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        Step(**kwargs)
