"""Example: user retry code meets a scripted rate limit, then a success.

The fake answers the first call with a 429 and the second with a result. baml-py ignores
``Retry-After`` (its errors never carry it), so the retry code backs off on its own. The retry code sleeps on the *virtual* clock, so the test takes
microseconds, and the events show two calls: one exception, one stop, with exact
virtual durations.

Run with ``pytest examples/test_retry_example.py``. It uses the plugin's fixtures
``baml_fake``, ``baml_clock`` and ``baml_events``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from baml_py.errors import BamlClientHttpError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

from pytest_baml_telemetry.fake import Usage, faults

# --------------------------------------------------------------------- the user's code


def is_rate_limit(exc: BaseException) -> bool:
    return isinstance(exc, BamlClientHttpError) and exc.status_code == 429


def extract_with_loop(b: Any, text: str, *, sleep: Callable[[float], None], attempts: int = 3) -> Any:
    """A hand-written retry loop with its own back-off (baml-py's errors carry no Retry-After)."""
    for attempt in range(1, attempts + 1):
        try:
            return b.ExtractResume(resume=text)
        except BamlClientHttpError as exc:
            if not is_rate_limit(exc) or attempt == attempts:
                raise
            sleep(2.0 * attempt)
    raise AssertionError("unreachable")


def extract_with_tenacity(b: Any, text: str, *, sleep: Callable[[float], None]) -> Any:
    """The same with tenacity and a fixed wait."""
    for attempt in Retrying(
        retry=retry_if_exception(is_rate_limit),
        wait=wait_fixed(2),
        stop=stop_after_attempt(3),
        sleep=sleep,
        reraise=True,
    ):
        with attempt:
            return b.ExtractResume(resume=text)
    raise AssertionError("unreachable")


# --------------------------------------------------------------------- the tests


@pytest.mark.parametrize("retrying", [extract_with_loop, extract_with_tenacity], ids=["loop", "tenacity"])
def test_rate_limit_then_success(baml_fake, baml_clock, baml_events, retrying):
    baml_fake.fail("ExtractResume", faults.rate_limited(retry_after="2s", after="120ms"))
    baml_fake.respond("ExtractResume", {"name": "Ada"}, usage=Usage(120, 40), model="gpt-4o-mini", latency="850ms")

    result = retrying(baml_fake, "Ada Lovelace, mathematician", sleep=baml_clock.sleep)

    assert result == {"name": "Ada"}
    baml_events.assert_sequence("start", "exception", "start", "stop")  # two calls
    failed, succeeded = baml_events.calls
    assert failed.ok is False and failed.kind == "error"
    assert isinstance(failed.error, BamlClientHttpError) and failed.error.status_code == 429
    assert failed.duration == 120_000_000  # virtual nanoseconds, exact
    baml_events.assert_call("ExtractResume", ok=True, duration_ms=850, input_tokens=120, output_tokens=40,
                            model="gpt-4o-mini")

    # 120 ms failing + 2 s back-off + 850 ms succeeding
    assert baml_clock.elapsed_ns == 2_970_000_000
    first, second = (e.measurements["monotonic_time"] for e in baml_events.starts)
    assert second - first == 2_120_000_000
