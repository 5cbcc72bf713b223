"""The plugin's ``baml_spans`` fixture: one test's spans in memory (issue 16)."""

from __future__ import annotations


def test_baml_spans_fixture_sees_a_fake_call_and_forgets_it_after(pytester):
    pytester.makepyfile(
        """
        from pytest_baml_telemetry.fake import FakeBamlClient

        def test_one(baml_spans):
            fake = FakeBamlClient(model="gpt-4o", provider="openai")
            fake.respond("SayHello", "hi", usage=(3, 1))
            with baml_spans.tracer.start_as_current_span("request"):
                assert fake.SayHello(name="Ada") == "hi"
            baml_spans.assert_span("chat gpt-4o", count=1)
            span = [s for s in baml_spans.spans if s["name"] == "chat gpt-4o"][0]
            assert span["attributes"]["gen_ai.usage.input_tokens"] == 3
            assert span["parent_name"] == "request"

        def test_two(baml_spans):
            assert [s["name"] for s in baml_spans.spans] == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=2)
