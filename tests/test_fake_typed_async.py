"""A fake spec'd on an async generated client is async (issue 13: "Async from the spec").

``FakeBamlClient(spec=<BamlAsyncClient>)`` (the instance, its class, the package whose ``b``
is async, or ``instrument(...)`` of it) returns an ``AsyncFakeBamlClient``; the plugin's
``baml_fake`` fixture follows the user's ``baml_fake_spec``.
"""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from pytest_baml_telemetry import AsyncFakeBamlClient, Emitter, FakeBamlClient, instrument
from pytest_baml_telemetry.fake.spec import ClientSpec

PLAN = {"title": "Trip", "commands": [{"action": "book", "target": "flight"}], "status": "done"}
PENDING = {"title": None, "commands": [], "status": {"value": None, "state": "Pending"}}


def async_specs(typed_client, typed_async_client):
    b = typed_async_client.module.b
    return {
        "instance": b,
        "class": type(b),
        "package": typed_async_client.module,
        "async_b of a sync package": typed_client.async_b,
        "instrumented": instrument(b, emitter=Emitter()),
    }


def test_every_form_of_an_async_spec_makes_an_async_fake(typed_client, typed_async_client):
    for label, spec in async_specs(typed_client, typed_async_client).items():
        fake = FakeBamlClient(spec=spec)
        assert type(fake) is AsyncFakeBamlClient, label
        assert isinstance(fake, AsyncFakeBamlClient) and not isinstance(fake, FakeBamlClient), label
        assert ClientSpec(spec).is_async, label
        assert fake.function_names == ["Classify", "ExtractPerson", "MakePlan", "Summarize"], label
        assert fake.spec is spec, label
        assert repr(fake).startswith("<AsyncFakeBamlClient spec=BamlAsyncClient"), label


def test_a_sync_spec_stays_sync(typed_client):
    for spec in (typed_client.b, type(typed_client.b), typed_client.module):
        fake = FakeBamlClient(spec=spec)
        assert type(fake) is FakeBamlClient
        assert not ClientSpec(spec).is_async
    assert type(FakeBamlClient()) is FakeBamlClient  # no spec: sync, as before
    assert type(AsyncFakeBamlClient(spec=typed_client.b)) is AsyncFakeBamlClient  # asked for: async


def test_the_async_fake_is_fully_initialised_with_the_given_options(typed_async_client, tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter, spec=typed_async_client.module, model="m-1", resource="R", action="A")
    assert fake.emitter is emitter
    assert fake.as_sync().as_async().calls == []  # derivatives share the same state
    fake.respond("ExtractPerson", {"name": "Ada", "tags": [], "priority": "LOW"}, latency="2s")
    person = asyncio.run(fake.ExtractPerson(text="Ada"))
    assert person.name == "Ada"
    stop = capture.events[-1]
    assert stop.metadata["model"] == "m-1" and stop.metadata["resource"] == "R" and stop.metadata["action"] == "A"
    assert stop.measurements["duration"] == 2_000_000_000
    assert fake.clock.elapsed_ns == 2_000_000_000


def test_await_and_async_for_on_the_fake(typed_async_client, tel):
    emitter, capture = tel
    fake = FakeBamlClient(emitter=emitter, spec=typed_async_client.module.b)
    fake.respond("MakePlan", PLAN, partials=[PENDING], latency="1s")
    fake.respond("Classify", "HIGH")

    async def main():
        stream = fake.stream.MakePlan(goal="trip", constraints=["cheap"])
        seen = [partial async for partial in stream]
        final = await stream.get_final_response()
        label = await fake.Classify(text="urgent", labels=["LOW", "HIGH"])
        return seen, final, label

    seen, final, label = asyncio.run(main())
    types, stream_types = typed_async_client.module.types, typed_async_client.module.stream_types
    assert [type(p) for p in seen] == [stream_types.Plan] and seen[0].status.state == "Pending"
    assert type(final) is types.Plan and final.commands[0].target == "flight"
    assert label is types.Priority.HIGH
    assert [c.is_async for c in fake.calls] == [True, True]
    assert [e.metadata.get("streaming") for e in capture.events if e.name[-1] == "stop"] == [True, False]


def test_calling_the_async_fake_without_await_is_a_coroutine(typed_async_client):
    fake = FakeBamlClient(spec=typed_async_client.module.b)
    fake.respond("Summarize", "short")
    pending = fake.Summarize(texts=["a"])
    assert asyncio.iscoroutine(pending)
    assert asyncio.run(pending) == "short"


def test_the_baml_fake_fixture_is_async_for_an_async_baml_fake_spec(pytester: pytest.Pytester, typed_async_client, typed_client):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        textwrap.dedent(
            f"""
            import pytest
            from pytest_baml_telemetry.baml_gen import import_generated

            ASYNC = import_generated({str(typed_async_client.path.parent)!r})
            SYNC = import_generated({str(typed_client.path.parent)!r})

            @pytest.fixture
            def baml_fake_spec(request):
                return SYNC.b if "sync_spec" in request.keywords else ASYNC.module.b
            """
        )
    )
    pytester.makepyfile(
        test_user=textwrap.dedent(
            """
            import pytest
            from pytest_baml_telemetry import AsyncFakeBamlClient, FakeBamlClient

            PLAN = {"title": "T", "commands": [], "status": "done"}
            PENDING = {"commands": [], "status": {"value": None, "state": "Pending"}}

            @pytest.mark.asyncio
            async def test_async(baml_fake, baml_events):
                assert type(baml_fake) is AsyncFakeBamlClient
                baml_fake.respond("ExtractPerson", {"name": "Ada", "tags": ["x"], "priority": "MEDIUM"}, latency="1s")
                baml_fake.respond("MakePlan", PLAN, partials=[PENDING])
                person = await baml_fake.ExtractPerson(text="Ada")
                assert person.priority.value == "MEDIUM"
                stream = baml_fake.stream.MakePlan(goal="g", constraints=[])
                partials = [p async for p in stream]
                assert partials[0].status.state == "Pending"
                assert (await stream.get_final_response()).title == "T"
                baml_events.assert_call("ExtractPerson", ok=True, duration=1_000_000_000)

            @pytest.mark.asyncio
            async def test_async_unused_fails_at_teardown(baml_fake):
                baml_fake.respond("Summarize", "never used")

            @pytest.mark.sync_spec
            def test_sync(baml_fake):
                assert type(baml_fake) is FakeBamlClient
                baml_fake.respond("Summarize", "s")
                assert baml_fake.Summarize(texts=["a"]) == "s"
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=3, errors=1)
    out = result.stdout.str()
    assert "INTERNALERROR" not in out
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_async_unused_fails_at_teardown*", "*Summarize*never used*"])


def test_a_module_of_coroutine_functions_is_an_async_spec():
    import types as pytypes

    module = pytypes.ModuleType("async_functions")

    async def Greet(name: str) -> str:  # noqa: N802 - named as a BAML function
        raise NotImplementedError

    def Plain(name: str) -> str:  # noqa: N802
        raise NotImplementedError

    Greet.__module__ = module.__name__
    module.Greet = Greet  # type: ignore[attr-defined]
    fake = FakeBamlClient(spec=module)
    assert type(fake) is AsyncFakeBamlClient
    fake.respond("Greet", lambda name: f"hi {name}")
    assert asyncio.run(fake.Greet("Ada")) == "hi Ada"
    Plain.__module__ = module.__name__
    module.Plain = Plain  # type: ignore[attr-defined]
    assert type(FakeBamlClient(spec=module)) is FakeBamlClient  # mixed: not all coroutines, stays sync
