"""Issue 13 in a real pytest session: the ``baml_fake`` fixture spec'd on the typed app takes
``raw=`` and ``merge=True``; the merged partials fail the buggy app's test (exit code 1, the
assertion shown), the correct app's test passes, and nothing crashes the plugin."""

from __future__ import annotations

from helpers import no_crash

CONFTEST = """
import pytest
from pytest_baml_telemetry.baml_gen import import_generated

CLIENT = import_generated({path!r})

@pytest.fixture
def baml_fake_spec():
    return CLIENT.b
"""

TESTS = '''
import pytest
from baml_py.errors import BamlValidationError

CHUNKS = ['{"title": "T", "commands": [', '{"action": "book", "target": "flight"}',
          ', {"action": "pack", "target": "bag"}', '], "status": "ready"}']

def last_command_app(b):
    ran = []
    stream = b.stream.MakePlan("trip", [])
    for partial in stream:
        if partial.commands and partial.commands[-1].action not in ran:
            ran.append(partial.commands[-1].action)
    stream.get_final_response()
    return ran

def every_command_app(b):
    ran = []
    stream = b.stream.MakePlan("trip", [])
    for partial in stream:
        ran += [c.action for c in partial.commands[len(ran):]]
    stream.get_final_response()
    return ran

def test_buggy_app_with_a_fast_model(baml_fake):
    baml_fake.respond("MakePlan", chunks=CHUNKS, merge=True)
    assert last_command_app(baml_fake) == ["book", "pack"]

def test_correct_app_with_a_fast_model(baml_fake):
    baml_fake.respond("MakePlan", chunks=CHUNKS, merge=True)
    assert every_command_app(baml_fake) == ["book", "pack"]

def test_an_answer_that_does_not_parse(baml_fake, baml_events):
    baml_fake.respond("ExtractPerson", raw="not json at all", usage=(50, 5))
    with pytest.raises(BamlValidationError, match="Failed to parse LLM response"):
        baml_fake.ExtractPerson("Ada")
    (call,) = baml_events.calls
    assert (call.input_tokens, call.output_tokens) == (50, 5)
'''


def test_raw_and_merge_through_the_plugin_fixtures(pytester, typed_client):
    pytester.makeconftest(CONFTEST.format(path=str(typed_client.path.parent)))
    pytester.makepyfile(test_app=TESTS)
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--tb=short", "-q")
    out = no_crash(result)
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == 1
    assert "test_buggy_app_with_a_fast_model" in out and "assert ['pack'] == ['book', 'pack']" in out
