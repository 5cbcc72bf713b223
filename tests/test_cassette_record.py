"""Cassettes of FakeLLMServer (issue 15): record through the proxy against a local upstream,
stop the upstream, replay; every record mode; streams; retries; scrubbing; every wire format.

The upstream is a second ``FakeLLMServer`` playing the provider, reached by the clients of
``tests/baml_src_cassette`` through their own ``base_url`` (``env.CASSETTE_*_URL``): no network.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from baml_py.errors import BamlClientHttpError

from pytest_baml_telemetry.fake.cassette import Cassette, check_record_mode
from pytest_baml_telemetry.fake.server import FakeLLMServer

pytestmark = pytest.mark.usefixtures("_quiet_baml")

SRC = Path(__file__).parent / "baml_src_cassette"
KEY = "sk-live-DO-NOT-WRITE-0123456789"
AWS_ID, AWS_SECRET = "AKIALIVEKEYDONOTWRITE", "aws-secret-DO-NOT-WRITE-abcdef"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(SRC, tmp_path_factory.mktemp("cassette_app")))


def point(monkeypatch: pytest.MonkeyPatch, upstream: FakeLLMServer) -> None:
    """Every client of the app at ``upstream``, each with a live-looking key."""
    for name, url in {
        "OPENAI": upstream.base_url, "ANTHROPIC": upstream.url, "GOOGLE": upstream.url + "/v1beta",
        "AZURE": upstream.url + "/openai/deployments/dep", "BEDROCK": upstream.url,
    }.items():
        monkeypatch.setenv(f"CASSETTE_{name}_URL", url)
        monkeypatch.setenv(f"CASSETTE_{name}_KEY", KEY)
    monkeypatch.setenv("CASSETTE_AWS_KEY_ID", AWS_ID)
    monkeypatch.setenv("CASSETTE_AWS_SECRET", AWS_SECRET)


def record(app, path: Path, monkeypatch, script, calls, mode: str = "once"):
    """Script ``upstream``, run ``calls(b)`` through a recording server; the upstream is stopped after."""
    with FakeLLMServer() as upstream:
        point(monkeypatch, upstream)
        script(upstream)
        with FakeLLMServer() as server:
            server.use_cassette(path, record_mode=mode)
            out = calls(server.route(app.b))
            result = server.eject_cassette()
        seen = upstream.requests
    return out, result, seen


def replay(app, path: Path, calls, mode: str = "none", **options):
    with FakeLLMServer() as server:
        server.use_cassette(path, record_mode=mode, **options)
        try:
            out = calls(server.route(app.b))
        finally:
            result = server.eject_cassette()
    return out, result


def test_record_then_replay_with_the_upstream_gone(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    out, rec, seen = record(app, path, monkeypatch, lambda u: u.respond("hello there", usage=(12, 3)), lambda b: b.Ask("hi"))
    assert out == "hello there" and rec.recorded == 1 and rec.unmatched == []
    assert seen[0].path == "/v1/chat/completions" and seen[0].headers["authorization"] == "***"  # the key went upstream
    assert path.is_file()
    out, result = replay(app, path, lambda b: b.Ask("hi"))
    assert out == "hello there" and result.played == 1 and result.recorded == 0 and result.unmatched == []


def test_the_cassette_is_vcrpys_format_and_vcr_reads_it(app, tmp_path, monkeypatch) -> None:
    import vcr.persisters.filesystem as persister
    import vcr.serializers.yamlserializer as yamlserializer

    path = tmp_path / "c.yaml"
    record(app, path, monkeypatch, lambda u: u.respond("ok", usage=(1, 1)), lambda b: b.Ask("hi"))
    requests, responses = persister.FilesystemPersister.load_cassette(path, yamlserializer)[:2]
    assert [r.method for r in requests] == ["POST"] and requests[0].path == "/v1/chat/completions"
    assert responses[0]["status"]["code"] == 200 and b'"ok"' in responses[0]["body"]["string"]
    assert "timing" in responses[0]


def test_no_key_given_to_a_client_is_written(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"

    def calls(b):
        return [b.Ask("a"), b.AskClaude("b"), b.AskGemini("c"), b.AskAzure("d"), b.AskBedrock("e")]

    out, rec, seen = record(app, path, monkeypatch, lambda u: [u.respond("ok", usage=(1, 1)) for _ in range(5)], calls)
    assert out == ["ok"] * 5 and rec.recorded == 5
    text = path.read_text(encoding="utf-8")
    for secret in (KEY, AWS_ID, AWS_SECRET):
        assert secret not in text
    lowered = text.lower()
    for header in ("authorization", "x-api-key", "api-key:", "x-goog-api-key", "x-amz-date", "cookie"):
        assert header not in lowered, header


def test_a_stream_is_replayed_chunk_by_chunk_at_the_recorded_pace(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"

    def calls(b):
        stream = b.stream.Ask("stream me")
        return [p for p in stream], stream.get_final_response()

    script = lambda u: u.respond("one two three four", usage=(5, 4), chunks=4, chunk_delay=0.15)  # noqa: E731
    (partials, final), rec, _ = record(app, path, monkeypatch, script, calls)
    assert final == "one two three four" and len(partials) >= 3
    start = time.monotonic()
    (again, final2), _ = replay(app, path, calls)
    took = time.monotonic() - start
    assert final2 == final and again == partials
    assert took >= 0.4  # three gaps of 0.15 s, as recorded
    start = time.monotonic()
    (fast, final3), _ = replay(app, path, calls, replay_latency="none")
    assert final3 == final and fast[-1] == partials[-1] and time.monotonic() - start < took  # chunks may coalesce


def test_a_retry_records_two_interactions_and_replays_both(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    out, rec, seen = record(app, path, monkeypatch, lambda u: (u.fail(500), u.respond("after retry")), lambda b: b.Ask("hi"))
    assert out == "after retry" and rec.recorded == 2 and len(seen) == 2
    out, result = replay(app, path, lambda b: b.Ask("hi"))
    assert out == "after retry" and result.played == 2


def test_a_changed_prompt_fails_naming_the_closest_request_and_the_change(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    record(app, path, monkeypatch, lambda u: u.respond("ok"), lambda b: b.Ask("the weather in Paris"))
    with pytest.raises(BamlClientHttpError) as info:
        replay(app, path, lambda b: b.Ask("the weather in Rome"))
    assert "the prompt changed" in str(info.value)
    _, result = replay(app, path, lambda b: _swallow(b.Ask, "the weather in Rome"))
    assert result.unmatched, result
    message = result.unmatched[0]
    assert "closest recorded request is interaction #0" in message
    assert "the prompt changed: messages[0].content[0].text: recorded 'Answer: the weather in Paris' now 'Answer: the weather in Rome'" in message


def _swallow(call, *args):
    try:
        return call(*args)
    except BamlClientHttpError as exc:
        return exc


def test_fields_outside_the_model_and_prompt_are_ignored_and_match_on_is_configurable(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    record(app, path, monkeypatch, lambda u: u.respond("ok"), lambda b: b.Ask("hi"))
    text = path.read_text(encoding="utf-8").replace('"model":"gpt-4o-mini",', '"model":"gpt-4o-mini","temperature":0.7,')
    path.write_text(text, encoding="utf-8")
    out, result = replay(app, path, lambda b: b.Ask("hi"))
    assert out == "ok" and result.played == 1
    _, strict = replay(app, path, lambda b: _swallow(b.Ask, "hi"), match_on=("method", "path", "raw_body"))
    assert strict.played == 0 and "the raw_body changed" in strict.unmatched[0]
    _, loose = replay(app, path, lambda b: b.Ask("something else"), match_on=("method", "path"))
    assert loose.played == 1


def test_none_mode_with_no_cassette_says_how_to_record(app, tmp_path) -> None:
    _, result = replay(app, tmp_path / "missing.yaml", lambda b: _swallow(b.Ask, "hi"))
    assert "does not exist: record it with --baml-record-mode=once" in result.unmatched[0]
    assert not (tmp_path / "missing.yaml").exists()


def test_once_replays_an_existing_cassette_and_records_nothing(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    record(app, path, monkeypatch, lambda u: u.respond("first"), lambda b: b.Ask("hi"))
    before = path.read_text(encoding="utf-8")
    out, rec, seen = record(app, path, monkeypatch, lambda u: u.respond("second"), lambda b: (b.Ask("hi"), _swallow(b.Ask, "new")))
    assert out[0] == "first" and isinstance(out[1], BamlClientHttpError) and seen == []
    assert rec.recorded == 0 and path.read_text(encoding="utf-8") == before


def test_new_episodes_replays_what_matches_and_appends_the_rest(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    record(app, path, monkeypatch, lambda u: u.respond("first"), lambda b: b.Ask("hi"))
    out, rec, seen = record(app, path, monkeypatch, lambda u: u.respond("second"), lambda b: (b.Ask("hi"), b.Ask("new")), "new_episodes")
    assert out == ("first", "second") and rec.played == 1 and rec.recorded == 1 and len(seen) == 1
    out, result = replay(app, path, lambda b: (b.Ask("new"), b.Ask("hi")))
    assert out == ("second", "first") and result.played == 2


def test_all_re_records_everything_and_replaces_the_file(app, tmp_path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    record(app, path, monkeypatch, lambda u: (u.respond("old"), u.respond("gone")), lambda b: (b.Ask("hi"), b.Ask("dropped")))
    out, rec, seen = record(app, path, monkeypatch, lambda u: u.respond("new"), lambda b: b.Ask("hi"), "all")
    assert out == "new" and rec.recorded == 1 and len(seen) == 1
    out, result = replay(app, path, lambda b: (b.Ask("hi"), _swallow(b.Ask, "dropped")))
    assert out[0] == "new" and isinstance(out[1], BamlClientHttpError)


@pytest.mark.parametrize("function", ["Ask", "AskClaude", "AskGemini", "AskAzure", "AskResponses", "AskBedrock"])
@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_every_wire_format_records_and_replays(app, tmp_path, monkeypatch, function, stream) -> None:
    path = tmp_path / "c.yaml"

    def calls(b):
        if stream:
            s = getattr(b.stream, function)("hi")
            return [p for p in s][-1:], s.get_final_response()
        return getattr(b, function)("hi")

    out, rec, seen = record(app, path, monkeypatch, lambda u: u.respond("alpha beta gamma", usage=(7, 3)), calls)
    assert rec.recorded == 1 and len(seen) == 1
    again, result = replay(app, path, calls)
    assert again == out and result.played == 1 and result.unmatched == []


def test_bad_cassette_options_are_named(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"record_mode='sometimes'.*expected one of none, once, new_episodes, all"):
        check_record_mode("sometimes", "x")
    with pytest.raises(ValueError, match=r"match_on entry 'prompt'.*expected one of method"):
        Cassette(tmp_path / "c.yaml", match_on=("prompt",))
    with pytest.raises(TypeError, match=r"match_on='body'"):
        Cassette(tmp_path / "c.yaml", match_on="body")
    with pytest.raises(ValueError, match=r"replay_latency='slow'.*expected 'recorded' or 'none'"):
        Cassette(tmp_path / "c.yaml", replay_latency="slow")
    with FakeLLMServer() as server, pytest.raises(RuntimeError, match="no cassette is in use"):
        server.eject_cassette()


def test_the_async_client_records_and_replays_too(app, tmp_path, monkeypatch) -> None:
    import asyncio

    path = tmp_path / "c.yaml"

    async def calls(b):
        stream = b.stream.Ask("streamed")
        async for _ in stream:
            pass
        return await b.Ask("hi"), await stream.get_final_response()

    with FakeLLMServer() as upstream:
        point(monkeypatch, upstream)
        upstream.respond("plain answer").respond("streamed answer", chunks=2)
        with FakeLLMServer() as server:
            server.use_cassette(path, record_mode="once")
            recorded = asyncio.run(calls(server.route(app.async_b)))
            assert server.eject_cassette().recorded == 2
    with FakeLLMServer() as server:
        server.use_cassette(path)
        replayed = asyncio.run(calls(server.route(app.async_b)))
        result = server.eject_cassette()
    assert replayed == recorded and result.played == 2 and result.unmatched == []


def test_an_upstream_that_does_not_answer_fails_the_request_saying_so(app, tmp_path, monkeypatch) -> None:
    with FakeLLMServer() as gone:
        url = gone.base_url
    monkeypatch.setenv("CASSETTE_OPENAI_URL", url)  # nothing listens there any more
    with FakeLLMServer() as server:
        server.use_cassette(tmp_path / "c.yaml", record_mode="all")
        with pytest.raises(BamlClientHttpError, match="did not answer"):
            server.route(app.b).Ask("hi")
        result = server.eject_cassette()
    assert result.recorded == 0 and "recording request #0 failed" in result.unmatched[0]
    assert "ConnectionRefusedError" in result.unmatched[0]


def test_a_request_of_a_client_route_does_not_know_cannot_be_recorded(app, tmp_path) -> None:
    with FakeLLMServer() as server:
        server.use_cassette(tmp_path / "c.yaml", record_mode="all")
        b = app.b.with_options(client_registry=server.client_registry("Chat"))  # tagged, but not routed
        with pytest.raises(BamlClientHttpError):
            b.Ask("hi")
        result = server.eject_cassette()
        assert server.requests[0].served == "cassette_record" and server.requests[0].client == "Chat"
    assert "no upstream is known for client 'Chat'" in result.unmatched[0]


def _hold_lock(path: str, seconds: float, out: str) -> None:
    from pytest_baml_telemetry.fake.cassette import file_lock

    with file_lock(Path(path)):
        Path(out).write_text(f"{time.time()}", encoding="utf-8")
        time.sleep(seconds)
        Path(out).write_text(f"{time.time()}", encoding="utf-8")


def test_the_cassette_lock_keeps_a_second_process_out_until_the_first_is_done(tmp_path) -> None:
    import multiprocessing

    from pytest_baml_telemetry.fake.cassette import file_lock

    path, out = tmp_path / "c.yaml", tmp_path / "held"
    holder = multiprocessing.get_context("spawn").Process(target=_hold_lock, args=(str(path), 1.0, str(out)))
    holder.start()
    deadline = time.monotonic() + 30
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with file_lock(path):
        got = time.time()
    holder.join(10)
    assert got >= float(out.read_text(encoding="utf-8"))  # only after the holder's last write
