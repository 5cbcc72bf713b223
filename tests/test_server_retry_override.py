"""A client_registry override replaces the declared client whole: its retry_policy is dropped
unless given again, or unless the leaf client of a retrying client is overridden (baml-py 0.226.3),
and the README's real-client example, run as written, shows it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from pytest_baml_telemetry.baml_gen import generate_client, import_generated
from pytest_baml_telemetry.instrument import instrument

ROOT = Path(__file__).resolve().parents[1]

LEAF_BAML = """
retry_policy Twice {
  max_retries 1
  strategy {
    type constant_delay
    delay_ms 10
  }
}

client<llm> Leaf {
  provider openai
  options {
    model "gpt-4o"
    api_key "sk-test-not-a-real-key"
    base_url "http://127.0.0.1:9/v1"
  }
}

client<llm> Resilient {
  provider fallback
  retry_policy Twice
  options {
    strategy [Leaf]
  }
}

function Hello(name: string) -> string {
  client Resilient
  prompt #"Say hello to {{ name }}."#
}

generator target {
  output_type "python/pydantic"
  output_dir "../"
  version "0.226.3"
  default_client_mode sync
}
"""

pytestmark = pytest.mark.usefixtures("_quiet_baml")


@pytest.fixture(scope="module", params=["fallback", "round-robin"])
def leaf_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    src = tmp_path_factory.mktemp("leaf_src")
    (src / "main.baml").write_text(LEAF_BAML.replace("provider fallback", f"provider {request.param}"))
    return import_generated(generate_client(src, tmp_path_factory.mktemp("leaf_client")))


def _instrumented(b, server, tel, client_name, **kwargs):
    emitter, capture = tel
    registry = server.client_registry(client_name, **kwargs)
    return instrument(b, emitter=emitter).with_options(client_registry=registry), capture


def test_override_without_retry_policy_drops_the_declared_one(generated_client, server, tel):
    from baml_py import errors

    server.fail(429).respond("unused")
    b, capture = _instrumented(generated_client.b, server, tel, "RetryingClient")
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.SayHelloWithRetry("Zoe")  # declared with RetryingClient (retry_policy QuickRetry)
    assert info.value.status_code == 429
    (exc,) = capture.exceptions
    assert exc.metadata["num_attempts"] == 1
    assert server.pending == ["respond('unused', usage=None, model=None)"]


def test_override_with_the_retry_policy_given_again_retries(generated_client, server, tel):
    server.fail(429).respond("finally", usage=(11, 2))
    b, capture = _instrumented(generated_client.b, server, tel, "RetryingClient", retry_policy="QuickRetry")
    assert b.SayHelloWithRetry("Zoe") == "finally"
    (stop,) = capture.stops
    assert (stop.metadata["num_attempts"], stop.measurements["input_tokens"]) == (2, 11)
    assert [r.served for r in server.requests] == ["fail", "respond"]


def test_overriding_the_leaf_of_a_retrying_client_keeps_its_retry_policy(leaf_client, server, tel):
    server.fail(429).respond("hi", usage=(3, 1))
    b, capture = _instrumented(leaf_client.b, server, tel, "Leaf")
    assert b.Hello("x") == "hi"
    (stop,) = capture.stops
    assert stop.metadata["num_attempts"] == 2 and server.pending == []


def test_overriding_the_retrying_client_itself_drops_its_retry_policy(leaf_client, server, tel):
    from baml_py import errors

    server.fail(429).respond("unused")
    b, _ = _instrumented(leaf_client.b, server, tel, "Resilient")
    with pytest.raises(errors.BamlClientHttpError) as info:
        b.Hello("x")
    assert info.value.status_code == 429 and len(server.pending) == 1


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The real baml-py client offline: instrument() and FakeLLMServer", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the section has a python example"
    return match.group(1)


CONFTEST = """
import sys
import pytest
from pytest_baml_telemetry.baml_gen import generate_client

@pytest.fixture(autouse=True)
def _client_on_path(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("BAML_LOG", "off")
    out = generate_client({src!r}, tmp_path_factory.mktemp("client"))
    monkeypatch.syspath_prepend(str(out))
"""


@pytest.mark.parametrize("as_written", [True, False])
def test_the_readme_real_client_example_runs(pytester: pytest.Pytester, as_written: bool) -> None:
    example = _readme_example()
    routed = "baml_llm_server.route(instrument(b))"
    assert routed in example
    if not as_written:  # a hand-written registry entry for Smart, as before route(): it drops Smart's retry policy
        example = example.replace(
            routed, 'instrument(b).with_options(client_registry=baml_llm_server.client_registry("Smart", model="gpt-4o"))'
        )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST.format(src=str(ROOT / "examples" / "real_client" / "baml_src")))
    pytester.makepyfile(test_readme_example=textwrap.dedent(example))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "INTERNALERROR" not in result.stdout.str()
    if as_written:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*BamlClientHttpError*429*"])
