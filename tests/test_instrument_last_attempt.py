"""A failed call's event describes its last attempt, though baml-py lists attempts in no fixed
order and times them to the millisecond (measured on a fallback; found by the provider matrix)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pytest_baml_telemetry.collector_log import read_collector_log
from pytest_baml_telemetry.emitter import Emitter
from pytest_baml_telemetry.fake import faults


def _attempt(client: str, provider: str, start_ms: int) -> SimpleNamespace:
    return SimpleNamespace(
        client_name=client, provider=provider, http_request=None, http_response=None,
        timing=SimpleNamespace(start_time_utc_ms=start_ms, duration_ms=0),
    )


def _log(attempts: list[SimpleNamespace]) -> SimpleNamespace:
    return SimpleNamespace(usage=None, calls=attempts, selected_call=None, tags=None)


def _read(log: SimpleNamespace, error: BaseException | None) -> dict:
    call = Emitter().call("AskAnyProvider")
    read_collector_log(log, call, error)
    return call.extra


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [3, 2, 1, 0], [2, 3, 0, 1], [1, 3, 2, 0]])
def test_the_errors_client_names_the_last_attempt_whatever_the_order_and_ties(order):
    attempts = [_attempt("Claude", "anthropic", 10), _attempt("Gemini", "google-ai", 11),
                _attempt("Responses", "openai-responses", 12), _attempt("OpenAI", "openai", 12)]  # same ms
    error = faults.http_error(429).build(client_name="OpenAI")
    assert error.client_name == "OpenAI"
    extra = _read(_log([attempts[i] for i in order]), error)
    assert (extra["client_name"], extra["provider"], extra["num_attempts"]) == ("OpenAI", "openai", 4)


def test_without_an_error_client_the_latest_start_is_the_last():
    attempts = [_attempt("B", "openai", 20), _attempt("A", "anthropic", 10)]
    extra = _read(_log(attempts), None)
    assert extra["client_name"] == "B"


def test_retries_of_one_client_read_its_latest_attempt():
    attempts = [_attempt("Smart", "openai", 30), _attempt("Fast", "openai", 40), _attempt("Smart", "openai", 35)]
    extra = _read(_log(attempts), faults.http_error(500).build(client_name="Smart"))
    assert extra["client_name"] == "Smart"
