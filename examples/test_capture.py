"""Capturing BAML telemetry and asserting on it, as a user writes it.

These examples use the reference ``Emitter`` directly; the fake-client examples show the
same assertions on calls made through ``FakeBamlClient`` and the real baml-py client.
"""

import asyncio
import threading

import pytest
from dirty_equals import IsPositiveInt, IsStr

from pytest_baml_telemetry import Emitter
from pytest_baml_telemetry.capture import expect

emitter = Emitter()


def extract_resume(text: str) -> dict:
    """Application code: one BAML-like call wrapped in the reference emitter."""
    with emitter.call("ExtractResume", arguments={"resume": text}, client_module="baml_client") as call:
        result = {"name": text.split()[0]}
        call.set_usage(input_tokens=120, output_tokens=30)
        call.set_model("gpt-4o-mini")
        call.set_result(result)
        return result


@emitter.wrap(function_name="Summarize")
async def summarize(text: str) -> str:
    if not text:
        raise ValueError("nothing to summarize")
    await asyncio.sleep(0)
    return text[:10]


def test_assert_emitted_with_partial_matching(baml_events):
    extract_resume("Ada Lovelace")

    baml_events.assert_emitted(
        "stop",
        measurements={"input_tokens": 120, "total_tokens": IsPositiveInt},
        metadata={"function_name": "ExtractResume", "model": IsStr(regex=r"gpt-4o.*")},
    )
    baml_events.assert_emitted("ash_baml.call.start", metadata={"arguments": {"resume": "Ada Lovelace"}}, count=1)
    baml_events.assert_not_emitted("exception")


def test_assert_call_on_paired_calls(baml_events):
    extract_resume("Grace Hopper")

    call = baml_events.assert_call("ExtractResume", ok=True, model="gpt-4o-mini", total_tokens=150)
    assert call.result == {"name": "Grace"}
    assert call.duration_ms >= 0


def test_ordering(baml_events):
    extract_resume("Alan Turing")
    extract_resume("Barbara Liskov")

    baml_events.assert_sequence(
        expect("start", metadata={"arguments": {"resume": "Alan Turing"}}),
        "stop",
        expect("start", metadata={"arguments": {"resume": "Barbara Liskov"}}),
    )


@pytest.mark.asyncio
async def test_async_calls_and_errors(baml_events):
    assert await summarize("a long text to summarize") == "a long tex"
    with pytest.raises(ValueError):
        await summarize("")

    baml_events.assert_call("Summarize", ok=True, arguments={"text": "a long text to summarize"})
    baml_events.assert_call("Summarize", ok=False, error=ValueError, kind="error")


def test_wait_for_a_background_thread(baml_events):
    worker = threading.Thread(target=extract_resume, args=("Edsger Dijkstra",))
    worker.start()
    baml_events.wait_for("stop", metadata={"function_name": "ExtractResume"}, timeout="2s")
    worker.join()


@pytest.mark.asyncio
async def test_await_for_an_asyncio_task(baml_events):
    task = asyncio.create_task(summarize("background work"))
    await baml_events.await_for("stop", metadata={"function_name": "Summarize"}, timeout="1s")
    await task


def test_snapshot_of_everything(baml_events, baml_clock):
    clocked = Emitter(clock=baml_clock)
    with clocked.call("Classify", arguments={"text": "hi"}) as call:
        baml_clock.advance("850ms")
        call.set_result("greeting")

    assert baml_events.as_dicts() == [
        {
            "event": "ash_baml.call.start",
            "measurements": {"system_time": 0, "monotonic_time": 0},
            "metadata": {
                "resource": None, "action": None, "function_name": "Classify", "arguments": {"text": "hi"},
                "client_module": None, "streaming": False, "telemetry_span_context": 1,
            },
        },
        {
            "event": "ash_baml.call.stop",
            "measurements": {
                "duration": 850_000_000, "monotonic_time": 0,
                "input_tokens": None, "output_tokens": None, "total_tokens": None, "cached_input_tokens": None,
            },
            "metadata": {
                "resource": None, "action": None, "function_name": "Classify", "client_module": None,
                "streaming": False, "model": None, "provider": None, "client_name": None, "num_attempts": None,
                "request_id": None, "result": "greeting", "telemetry_span_context": 1,
            },
        },
    ]


def test_capture_your_own_events(baml_capture):
    from pytest_baml_telemetry import execute

    cache = baml_capture(["my_app.cache.hit", "my_app.cache.miss"])
    execute(("my_app", "cache", "miss"), {"count": 1}, {"key": "resume:ada"})
    cache.assert_emitted("my_app.cache.miss", metadata={"key": IsStr(regex=r"resume:.*")})
