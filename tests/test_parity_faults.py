"""Faults raise what baml-py 0.226.3 raises, and expose the metadata the fake client reads."""

from __future__ import annotations

import pytest

from pytest_baml_telemetry.contract import Usage
from pytest_baml_telemetry.fake import faults

NOT_BILLED = Usage(0, 0, 0)


@pytest.mark.parametrize(
    ("fault", "usage"),
    [
        (faults.http_error(500), NOT_BILLED),
        (faults.rate_limited(), NOT_BILLED),
        (faults.connection_refused(), NOT_BILLED),
        (faults.timeout(after="1s"), None),
        (faults.stream_failure(2), None),
        (faults.validation_error(), None),
        (faults.validation_error(usage=(12, 3)), Usage(12, 3)),
        (faults.finish_reason_error("length", usage={"input_tokens": 5, "output_tokens": 7}), Usage(5, 7)),
    ],
    ids=repr,
)
def test_fault_exposes_usage_attempts_and_client(fault, usage) -> None:
    assert fault.usage == usage
    assert fault.num_attempts == 1
    assert fault.client_name is None
    assert fault.attempt_latencies_ns == ()


def test_fault_client_name_is_the_scripted_one() -> None:
    assert faults.http_error(500, client_name="Primary").client_name == "Primary"
    assert faults.timeout(client_name="Slow").client_name == "Slow"


def test_fault_usage_rejects_a_non_usage() -> None:
    with pytest.raises(TypeError, match=r"faults.validation_error\(\): usage='x'"):
        faults.validation_error(usage="x")
