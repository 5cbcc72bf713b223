"""SpanCapture (the ``baml_spans`` fixture's logic): snapshot dicts, assert_span and its diff."""

from __future__ import annotations

import pytest
from baml_py.errors import BamlClientHttpError
from helpers import make_env, no_crash

from pytest_baml_telemetry import FakeBamlClient, Usage, VirtualClock, faults
from pytest_baml_telemetry.dispatcher import default_dispatcher
from pytest_baml_telemetry.opentelemetry import SpanCapture


@pytest.fixture
def scripted():
    """A fake on the default dispatcher and a virtual clock: one success, one 429."""
    fake = FakeBamlClient(clock=VirtualClock(), model="gpt-4o", provider="openai", client_name="Smart")
    fake.respond("ExtractResume", {"name": "Ann"}, usage=Usage(10, 3), latency="850ms")
    fake.fail("SayHello", faults.rate_limited(), latency="20ms")
    return fake


def _run(fake: FakeBamlClient, spans: SpanCapture) -> None:
    with spans.tracer.start_as_current_span("test"):
        fake.ExtractResume(resume="secret resume")
        with pytest.raises(BamlClientHttpError):
            fake.SayHello(name="Bo")


def test_the_capture_attaches_to_the_default_dispatcher_and_detaches(scripted):
    with SpanCapture() as spans:
        assert spans.handler.dispatcher is default_dispatcher
        assert any(h["id"] == spans.handler.handler_id for h in default_dispatcher.list_handlers())
        _run(scripted, spans)
    assert not spans.handler.attached
    assert all(h["id"] != spans.handler.handler_id for h in default_dispatcher.list_handlers())
    assert len(spans) == 3


def test_spans_are_plain_dicts_for_snapshots(scripted):
    with SpanCapture() as spans:
        _run(scripted, spans)
    common = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.system": "openai",
        "baml.provider": "openai", "gen_ai.request.model": "gpt-4o", "baml.client_name": "Smart",
        "baml.num_attempts": 1, "baml.streaming": False,
    }
    assert spans.spans == [
        {
            "name": "chat gpt-4o", "kind": "CLIENT", "parent": 2, "parent_name": "test",
            "attributes": {**common, "gen_ai.response.id": "fake-req-1", "baml.function_name": "ExtractResume",
                           "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 3},
            "status": {"code": "UNSET"}, "events": [],
        },
        {
            "name": "chat gpt-4o", "kind": "CLIENT", "parent": 2, "parent_name": "test",
            "attributes": {**common, "gen_ai.response.id": "fake-req-2", "baml.function_name": "SayHello",
                           "gen_ai.usage.input_tokens": 0, "gen_ai.usage.output_tokens": 0,
                           "gen_ai.usage.cache_read.input_tokens": 0, "error.type": "BamlClientHttpError"},
            "status": {"code": "ERROR", "description": "BamlClientHttpError (status 429)"},
            "events": [{"name": "exception", "attributes": {"exception.type": "BamlClientHttpError"}}],
        },
        {
            "name": "test", "kind": "INTERNAL", "parent": None, "parent_name": None,
            "attributes": {}, "status": {"code": "UNSET"}, "events": [],
        },
    ]


def test_relative_times_and_bad_times():
    env = make_env("capture-times")
    with SpanCapture(dispatcher=env.dispatcher) as spans:
        env.call("A", latency="10ms")
        env.call("B", latency="5ms")
    a, b = spans.as_dicts(times="relative")
    assert (a["start_time"], a["end_time"], b["start_time"], b["end_time"]) == (0, 10_000_000, 10_000_000, 15_000_000)
    absolute = spans.as_dicts(times="absolute")
    assert absolute[1]["end_time"] - absolute[0]["start_time"] == 15_000_000
    with pytest.raises(ValueError, match=r"SpanCapture.as_dicts\(times='now'\): expected False, 'relative' or 'absolute'"):
        spans.as_dicts(times="now")


def test_a_parent_outside_the_capture_is_external():
    from opentelemetry.sdk.trace import TracerProvider

    env = make_env("capture-external")
    with SpanCapture(dispatcher=env.dispatcher) as spans:
        with TracerProvider().get_tracer("other").start_as_current_span("elsewhere"):
            env.call("A")
    (span,) = spans.spans
    assert (span["parent"], span["parent_name"]) == ("external", None)


def test_assert_span_matches_partially_and_counts(scripted):
    with SpanCapture() as spans:
        _run(scripted, spans)
    found = spans.assert_span("chat gpt-4o", attributes={"baml.function_name": "SayHello"}, status="ERROR")
    assert found["attributes"]["error.type"] == "BamlClientHttpError"
    spans.assert_span("chat gpt-4o", count=2)
    spans.assert_span(kind="CLIENT", attributes={"gen_ai.usage.input_tokens": int}, count=2)
    spans.assert_span(attributes={"gen_ai.usage.input_tokens": lambda n: n > 5}, count=1)
    assert spans.assert_span("no such span", count=0) == {}
    with pytest.raises(AssertionError, match=r"exactly 1 time\(s\), found 2"):
        spans.assert_span("chat gpt-4o", count=1)


def test_assert_span_failure_shows_the_closest_spans_and_their_differences(scripted):
    with SpanCapture() as spans:
        _run(scripted, spans)
    with pytest.raises(AssertionError) as info:
        spans.assert_span("chat gpt-4o", attributes={"baml.function_name": "ExtractResume", "gen_ai.usage.input_tokens": 99})
    message = str(info.value)
    assert message.startswith("expected a span with ")
    assert "found 0" in message and "closest spans:" in message
    assert "attributes['gen_ai.usage.input_tokens']: expected 99, got 10" in message
    first, second = message.split("closest spans:")[1].split("\n  'chat gpt-4o'")[1:3]
    assert "(status UNSET)" in first and "(status ERROR)" in second  # ExtractResume, the closer one, first


def test_assert_span_on_nothing_and_bad_keys():
    spans = SpanCapture()
    with pytest.raises(AssertionError, match="no span was captured"):
        spans.assert_span("chat")
    with pytest.raises(TypeError, match=r"unknown key\(s\) \['attrs'\]: expected some of \['name'"):
        spans.assert_span(attrs={})
    with pytest.raises(ValueError, match=r"assert_span\(count=-1\): expected an int >= 0 or None"):
        spans.assert_span(count=-1)


def test_assert_not_recorded_names_where_the_text_was_found():
    env = make_env("capture-content")
    with SpanCapture(dispatcher=env.dispatcher, record_content=True) as spans:
        env.call("A", arguments={"text": "top secret"}, result="fine")
    spans.assert_not_recorded("nothing like it")
    with pytest.raises(AssertionError, match=r"'chat gpt-4o' attributes\['gen_ai.input.messages'\] contains 'top secret'"):
        spans.assert_not_recorded("top secret")


# ------------------------------------------------------------------ a real session

CONFTEST = '''
import pytest

@pytest.fixture
def baml_spans():
    """Spans of this test's BAML calls (OpenTelemetry GenAI conventions), in memory."""
    from pytest_baml_telemetry.opentelemetry import SpanCapture

    with SpanCapture() as capture:
        yield capture
'''

TESTS = '''
import pytest
from pytest_baml_telemetry import Usage, faults

def test_spans(baml_fake, baml_spans):
    baml_fake.respond("ExtractResume", {"name": "Ann"}, usage=Usage(10, 3), model="gpt-4o", latency="850ms")
    with baml_spans.tracer.start_as_current_span("request"):
        baml_fake.ExtractResume(resume="r")
    baml_spans.assert_span("chat gpt-4o", parent_name="request",
                           attributes={"gen_ai.usage.input_tokens": 10, "baml.function_name": "ExtractResume"})
    (span,) = [s for s in baml_spans.as_dicts(times="relative") if s["kind"] == "CLIENT"]
    assert span["end_time"] - span["start_time"] == 850_000_000

def test_isolated(baml_spans):
    assert baml_spans.spans == []

def test_near_miss(baml_fake, baml_spans):
    baml_fake.respond("ExtractResume", {"name": "Ann"}, usage=Usage(10, 3), model="gpt-4o")
    baml_fake.ExtractResume(resume="r")
    baml_spans.assert_span("chat gpt-4o", attributes={"gen_ai.usage.input_tokens": 11})
'''


def test_a_conftest_fixture_gives_each_test_its_spans(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_user=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    out = no_crash(result)
    assert "attributes['gen_ai.usage.input_tokens']: expected 11, got 10" in out
    assert "test_near_miss" in out


def test_the_readme_opentelemetry_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = re.findall(r"^## OpenTelemetry spans\n(.*?)^## ", text, flags=re.S | re.M)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    exec(compile(block, "README.md (OpenTelemetry spans)", "exec"), {})


def test_a_capture_refuses_a_tracer_provider_of_yours():
    from opentelemetry.sdk.trace import TracerProvider

    with pytest.raises(TypeError, match=r"SpanCapture\(tracer_provider=<.*: expected no tracer_provider"):
        SpanCapture(tracer_provider=TracerProvider())
    with pytest.raises(TypeError, match=r"SpanHandler\(record_content='yes'\): expected True or False"):
        SpanCapture(record_content="yes")
