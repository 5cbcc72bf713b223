"""FakeLLMServer on its own, and the real baml-py runtime driven against it offline."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from pytest_baml_telemetry.baml_gen import (
    BamlGenerateError,
    generate_client,
    import_generated,
)
from pytest_baml_telemetry.fake.server import (
    FakeLLMServer,
    RecordedRequest,
    usage_to_openai,
)

ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reused the pid
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _wait_dead(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _post(server: FakeLLMServer, body: dict, *, path: str = "/v1/chat/completions", headers=None) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=headers or {}, timeout=10)


# ------------------------------------------------------------------ lifecycle


def test_start_stop_and_no_process_left_behind():
    server = FakeLLMServer()
    assert not server.running and server.pid is None
    with server:
        pid = server.pid
        assert server.running and pid is not None and _alive(pid)
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        assert server.port > 0
    assert not server.running and server.pid is None
    assert not _alive(pid)
    server.stop()  # idempotent


def test_exception_inside_with_block_still_stops_the_child():
    with pytest.raises(KeyError, match="boom"):
        with FakeLLMServer() as server:
            pid = server.pid
            raise KeyError("boom")
    assert pid is not None and not _alive(pid)


def test_restart_and_explicit_start_stop():
    server = FakeLLMServer().start()
    first = server.pid
    server.stop()
    server.start()
    try:
        assert server.pid != first and server.running
        server.respond("again")
        assert _post(server, {"model": "m", "messages": []}).json()["choices"][0]["message"]["content"] == "again"
    finally:
        server.stop()
    assert not _alive(first)


def test_child_exits_when_its_parent_dies_without_cleanup():
    code = textwrap.dedent(
        """
        import os, sys
        sys.path.insert(0, sys.argv[1])
        from pytest_baml_telemetry.fake.server import FakeLLMServer
        server = FakeLLMServer().start()
        print(server.pid, flush=True)
        os._exit(0)  # no atexit, no finalizers: as if the test process was killed
        """
    )
    out = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    child_pid = int(out.stdout.strip())
    assert _wait_dead(child_pid), f"FakeLLMServer child {child_pid} outlived its parent"


def test_garbage_collected_server_stops_its_child():
    import gc

    server = FakeLLMServer().start()
    pid = server.pid
    del server
    gc.collect()
    assert pid is not None and _wait_dead(pid)


def test_calls_before_start_are_queued_and_inspection_needs_a_running_server():
    server = FakeLLMServer()
    server.respond("queued", usage=(1, 2))
    assert server.pending == ["respond('queued', usage=(1, 2, None), model=None)"]
    with pytest.raises(RuntimeError, match="not running"):
        server.base_url
    with pytest.raises(RuntimeError, match="not running"):
        server.requests
    with server:
        body = _post(server, {"model": "m", "messages": []}).json()
        assert body["choices"][0]["message"]["content"] == "queued"
        assert server.pending == []


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "", "::"])
def test_refuses_non_loopback_hosts(host):
    with pytest.raises(ValueError, match="loopback") as info:
        FakeLLMServer(host=host)
    assert repr(host) in str(info.value)


def test_loopback_hosts_are_accepted():
    assert FakeLLMServer(host="localhost").host == "127.0.0.1"
    assert FakeLLMServer(host="127.0.0.2").host == "127.0.0.2"
    assert FakeLLMServer(host="::1").host == "::1"
    with pytest.raises(TypeError, match="host=5"):
        FakeLLMServer(host=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="port=70000"):
        FakeLLMServer(port=70000)
    with pytest.raises(ValueError, match="startup_timeout"):
        FakeLLMServer(startup_timeout=-1)


@pytest.mark.parametrize("status", [99, 600, 0, -500])
def test_invalid_status_code_is_rejected(status):
    with pytest.raises(ValueError, match=rf"status_code={status}.*100\.\.599"):
        FakeLLMServer().fail(status)


@pytest.mark.parametrize("status", ["500", 500.0, True, None])
def test_non_int_status_code_is_rejected(status):
    with pytest.raises(TypeError, match="status_code="):
        FakeLLMServer().fail(status)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda s: s.respond("x", latency=-1), ValueError, r"latency=-1 is negative"),
        (lambda s: s.respond("x", latency="-5ms"), ValueError, r"latency='-5ms'"),
        (lambda s: s.respond("x", latency="soon"), ValueError, r"latency='soon'"),
        (lambda s: s.fail(500, latency=-0.5), ValueError, r"latency=-0.5"),
        (lambda s: s.hang(-1), ValueError, r"seconds=-1"),
        (lambda s: s.fail(429, retry_after=-3), ValueError, r"retry_after=-3"),
        (lambda s: s.fail(429, retry_after="later"), ValueError, r"retry_after='later'"),
        (lambda s: s.fail(500, body=42), TypeError, r"body=42"),
        (lambda s: s.respond(42), TypeError, r"content=42"),
        (lambda s: s.respond("x", model=3), TypeError, r"model=3"),
        (lambda s: s.respond("a b", chunks=0), ValueError, r"chunks=0"),
        (lambda s: s.respond("a b", chunks=["a", "c"]), ValueError, r"do not join"),
        (lambda s: s.respond("x", usage=(1, -2)), ValueError, r"output_tokens=-2"),
        (lambda s: s.respond("x", usage=(1,)), ValueError, r"usage=\(1,\)"),
        (lambda s: s.respond("x", usage="lots"), TypeError, r"usage='lots'"),
        (lambda s: s.respond("x", usage={"input": 1}), ValueError, r"unknown key\(s\) input"),
        (lambda s: s.respond("x", usage=(5, None)), ValueError, r"must both be given"),
        (lambda s: s.malformed('{"valid": "json"}'), ValueError, r"valid JSON"),
        (lambda s: s.fail_stream(after_chunks=-1), ValueError, r"after_chunks=-1"),
    ],
)
def test_bad_scripts_are_rejected_with_clear_errors(call, error, match):
    server = FakeLLMServer()
    with pytest.raises(error, match=match):
        call(server)
    assert server.pending == []


def test_usage_conversion_accepts_objects_dicts_and_tuples():
    class U:
        input_tokens = 10
        output_tokens = 4
        cached_input_tokens = 3

    completion_details = {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    expected = {
        "prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
        "completion_tokens_details": completion_details,
    }
    assert usage_to_openai(U()) == expected
    assert usage_to_openai({"input_tokens": 10, "output_tokens": 4, "cached_input_tokens": 3}) == expected
    assert usage_to_openai((10, 4, 3)) == expected
    # OpenAI always sends the details: cached_tokens 0 when no cached count is given
    assert usage_to_openai((10, 4)) == {
        "prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": completion_details,
    }
    assert usage_to_openai(None) is None
    assert usage_to_openai((None, None)) is None


# ------------------------------------------------------------ raw HTTP protocol


def test_requests_are_recorded_with_credentials_masked(server):
    server.respond("hi")
    resp = _post(
        server,
        {"model": "gpt-x", "messages": [{"role": "user", "content": "hey"}]},
        headers={"Authorization": "Bearer sk-secret", "x-api-key": "sk-2", "api-key": "sk-3", "X-Trace": "t1"},
    )
    assert resp.status_code == 200
    (req,) = server.requests
    assert isinstance(req, RecordedRequest)
    assert (req.method, req.path, req.served, req.stream) == ("POST", "/v1/chat/completions", "respond", False)
    assert req.headers["authorization"] == "***"
    assert req.headers["x-api-key"] == "***"
    assert req.headers["api-key"] == "***"
    assert req.headers["x-trace"] == "t1"
    assert "sk-secret" not in repr(server.requests)
    assert req.json == {"model": "gpt-x", "messages": [{"role": "user", "content": "hey"}]}
    assert req.model == "gpt-x" and req.messages == [{"role": "user", "content": "hey"}]


def test_nothing_scripted_gets_a_500_that_says_so_and_is_recorded(server):
    resp = _post(server, {"model": "m", "messages": []})
    assert resp.status_code == 500
    assert "nothing scripted" in resp.json()["error"]["message"]
    assert [r.served for r in server.requests] == ["unscripted"]


def test_json_response_echoes_model_and_carries_usage(server):
    server.respond("one", usage=(7, 3, 2)).respond("two", model="gpt-4o-2024-08-06")
    first = _post(server, {"model": "asked-model", "messages": []}).json()
    second = _post(server, {"model": "asked-model", "messages": []}).json()
    assert first["model"] == "asked-model"
    assert first["choices"][0]["message"] == {"role": "assistant", "content": "one", "refusal": None}
    assert first["usage"] == usage_to_openai((7, 3, 2))
    assert first["usage"]["prompt_tokens_details"]["cached_tokens"] == 2
    assert second["model"] == "gpt-4o-2024-08-06" and "usage" not in second


def test_sse_stream_sends_chunks_finish_usage_and_done(server):
    server.respond("Hello brave new world", usage=(5, 4), chunks=["Hello ", "brave new", " world"])
    with httpx.stream(
        "POST", server.base_url + "/chat/completions",
        json={"model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}}, timeout=10,
    ) as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        events = [line[len("data: "):] for line in resp.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert deltas == ["Hello ", "brave new", " world", None]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert server.requests[0].stream is True


def test_default_and_counted_chunking(server):
    server.respond("a bb ccc").respond("abcdefg", chunks=3)
    for expected in (["a ", "bb ", "ccc"], ["abc", "de", "fg"]):
        with httpx.stream("POST", server.base_url + "/chat/completions", json={"stream": True}, timeout=10) as resp:
            datas = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
        got = [json.loads(d)["choices"][0]["delta"].get("content") for d in datas[:-1]]
        assert got[:-1] == expected


def test_fail_sends_status_retry_after_and_body(server):
    server.fail(429, retry_after="1500ms").fail(503, body="upstream down").fail(418, body={"error": "teapot"})
    first = _post(server, {"model": "m"})
    assert first.status_code == 429 and first.headers["retry-after"] == "2"
    assert (first.json()["error"]["type"], first.json()["error"]["code"]) == ("requests", "rate_limit_exceeded")
    second = _post(server, {"model": "m"})
    assert (second.status_code, second.text) == (503, "upstream down")
    third = _post(server, {"model": "m"})
    assert (third.status_code, third.json()) == (418, {"error": "teapot"})


def test_malformed_and_unknown_paths(server):
    server.malformed("<html>oops")
    resp = _post(server, {"model": "m"}, path="/chat/completions")
    assert (resp.status_code, resp.text) == (200, "<html>oops")
    server.respond("kept")
    assert _post(server, {}, path="/v1/embeddings").status_code == 404
    assert server.pending == ["respond('kept', usage=None, model=None)"]
    assert [r.served for r in server.requests] == ["malformed", "not_found"]


def test_hang_drops_the_connection_and_reset_releases_it(server):
    server.hang("50ms")
    with pytest.raises(httpx.RemoteProtocolError):
        _post(server, {"model": "m"})
    server.hang(30)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.base_url + "/chat/completions", json={}, timeout=0.2)
    server.reset()  # releases the hanging handler; nothing left behind
    assert server.requests == [] and server.pending == []


def test_fail_stream_breaks_the_chunked_body(server):
    server.fail_stream(after_chunks=1, content="one two three")
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", server.base_url + "/chat/completions", json={"stream": True}, timeout=10) as resp:
            for _ in resp.iter_lines():
                pass


def test_pending_assert_all_used_and_reset(server):
    server.respond("a").fail(500)
    with pytest.raises(AssertionError, match=r"2 scripted response\(s\) never requested: respond\('a'"):
        server.assert_all_used()
    _post(server, {})
    assert server.pending == ["fail(500)"]
    server.reset()
    server.assert_all_used()
    assert server.requests == []


def test_concurrent_requests_each_get_one_script(server):
    for i in range(20):
        server.respond(f"answer {i}")

    async def run():
        async with httpx.AsyncClient(timeout=10) as client:
            rs = await asyncio.gather(*(client.post(server.base_url + "/chat/completions", json={"i": i}) for i in range(20)))
        return sorted(r.json()["choices"][0]["message"]["content"] for r in rs)

    assert asyncio.run(run()) == sorted(f"answer {i}" for i in range(20))
    assert len(server.requests) == 20 and server.pending == []


def test_client_registry_rejects_other_providers(server):
    with pytest.raises(ValueError, match="provider='vertex-ai'"):
        server.client_registry("TestClient", provider="vertex-ai")
    with pytest.raises(TypeError, match="client_name=''"):
        server.client_registry("")
    assert server.client_options(options={"http": {"request_timeout_ms": 5}}) == {
        "model": "gpt-4o-mini",
        "api_key": "sk-fake",
        "base_url": server.base_url,
        "http": {"request_timeout_ms": 5},
    }


# ------------------------------------------------- the real baml-py runtime


@pytest.fixture
def baml():
    """(baml_py, errors) imported lazily."""
    import baml_py
    from baml_py import errors

    return baml_py, errors


def _client(generated_client, server, collector, client_name="TestClient", **kwargs):
    registry = server.client_registry(client_name, **kwargs)
    return generated_client.b.with_options(client_registry=registry, collector=collector)


def test_real_client_success_with_usage(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector("t")
    server.respond('{"name": "Ann", "skills": ["Rust", "SQL"]}', usage=(120, 30, 20), model="gpt-4o-mini-2024-07-18")
    result = _client(generated_client, server, collector).ExtractResume("Ann knows Rust and SQL")
    assert isinstance(result, generated_client.types.Resume)
    assert (result.name, result.skills) == ("Ann", ["Rust", "SQL"])
    log = collector.last
    assert (log.function_name, log.log_type) == ("ExtractResume", "call")
    assert (log.usage.input_tokens, log.usage.output_tokens, log.usage.cached_input_tokens) == (120, 30, 20)
    call = log.selected_call
    assert (call.provider, call.client_name) == ("openai", "TestClient")
    assert call.http_request.body.json()["model"] == "gpt-4o-mini"
    assert call.http_response.status == 200
    assert call.http_response.body.json()["model"] == "gpt-4o-mini-2024-07-18"
    (req,) = server.requests
    assert req.headers["authorization"] == "***" and req.model == "gpt-4o-mini"
    assert "Ann knows Rust and SQL" in json.dumps(req.json)


def test_real_client_success_without_usage(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector()
    server.respond("Hello, Bob!")
    assert _client(generated_client, server, collector).SayHello("Bob") == "Hello, Bob!"
    usage = collector.last.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cached_input_tokens) == (None, None, None)


def test_real_client_429_then_success_under_retry_policy(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector()
    server.fail(429, retry_after=1).respond("finally", usage=(11, 2))
    client = _client(generated_client, server, collector, "RetryingClient", retry_policy="QuickRetry")
    assert client.SayHelloWithRetry("Zoe") == "finally"
    calls = sorted(collector.last.calls, key=lambda c: c.timing.start_time_utc_ms)
    assert [c.http_response.status for c in calls] == [429, 200]
    assert [c.selected for c in calls] == [False, True]
    assert collector.last.usage.input_tokens == 11
    assert [r.served for r in server.requests] == ["fail", "respond"]


def test_real_client_override_without_retry_policy_does_not_retry(generated_client, server, baml):
    baml_py, errors = baml
    server.fail(429).respond("unused")
    client = _client(generated_client, server, baml_py.Collector(), "RetryingClient")
    with pytest.raises(errors.BamlClientHttpError) as info:
        client.SayHelloWithRetry("Zoe")
    assert info.value.status_code == 429
    assert server.pending == ["respond('unused', usage=None, model=None)"]


def test_real_client_primary_registry_and_openai_generic(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector()
    server.respond("via primary", usage=(2, 3))
    registry = server.client_registry("Stand-in", provider="openai-generic", model="local-model", primary=True)
    # SayHelloWithRetry is declared with RetryingClient: primary=True reroutes every function
    client = generated_client.b.with_options(client_registry=registry, collector=collector)
    assert client.SayHelloWithRetry("x") == "via primary"
    call = collector.last.selected_call
    assert (call.client_name, call.provider) == ("Stand-in", "openai-generic")
    assert server.requests[0].model == "local-model"


@pytest.mark.parametrize("status", [500, 401])
def test_real_client_http_errors(generated_client, server, baml, status):
    baml_py, errors = baml
    server.fail(status)
    with pytest.raises(errors.BamlClientHttpError) as info:
        _client(generated_client, server, baml_py.Collector()).SayHello("x")
    assert info.value.status_code == status
    assert info.value.client_name == "TestClient"


def test_real_client_unscripted_request_fails_with_the_servers_message(generated_client, server, baml):
    baml_py, errors = baml
    with pytest.raises(errors.BamlClientHttpError, match="nothing scripted") as info:
        _client(generated_client, server, baml_py.Collector()).SayHello("x")
    assert info.value.status_code == 500


def test_real_client_timeout(generated_client, server, baml):
    baml_py, errors = baml
    collector = baml_py.Collector()
    server.hang(10)
    client = _client(
        generated_client, server, collector, "FastTimeoutClient", options={"http": {"request_timeout_ms": 200}}
    )
    with pytest.raises(errors.BamlTimeoutError) as info:
        client.SayHelloQuickly("x")
    assert info.value.client_name == "FastTimeoutClient"
    assert collector.last.function_name == "SayHelloQuickly"
    assert collector.last.usage.input_tokens is None


def test_real_client_validation_error(generated_client, server, baml):
    baml_py, errors = baml
    server.respond("not json at all", usage=(3, 4))
    collector = baml_py.Collector()
    with pytest.raises(errors.BamlValidationError) as info:
        _client(generated_client, server, collector).ExtractResume("x")
    assert info.value.raw_output == "not json at all"
    assert collector.last.usage.output_tokens == 4


def test_real_client_malformed_body(generated_client, server, baml):
    baml_py, errors = baml
    server.malformed()
    with pytest.raises(errors.BamlClientHttpError) as info:
        _client(generated_client, server, baml_py.Collector()).SayHello("x")
    assert info.value.status_code == 200


def test_real_client_connection_refused_after_stop(generated_client, baml):
    baml_py, errors = baml
    with FakeLLMServer() as short_lived:
        registry = short_lived.client_registry("TestClient")
    with pytest.raises(errors.BamlClientHttpError) as info:
        generated_client.b.with_options(client_registry=registry).SayHello("x")
    assert info.value.status_code == 503


def test_real_client_sync_stream_reads_final_usage_chunk(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector()
    server.respond("Hello there, Ann", usage=(9, 5, 1), chunks=3)
    stream = _client(generated_client, server, collector).stream.SayHello("Ann")
    partials = list(stream)
    assert partials and partials[-1] == "Hello there, Ann"
    assert stream.get_final_response() == "Hello there, Ann"
    log = collector.last
    assert log.log_type == "stream"
    assert (log.usage.input_tokens, log.usage.output_tokens, log.usage.cached_input_tokens) == (9, 5, 1)
    body = log.selected_call.http_request.body.json()
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.asyncio
async def test_real_client_async_stream_reads_final_usage_chunk(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector()
    server.respond('{"name": "Bo", "skills": ["Go"]}', usage=(40, 12))
    client = generated_client.async_b.with_options(client_registry=server.client_registry("TestClient"), collector=collector)
    stream = client.stream.ExtractResume("Bo: Go")
    async for _partial in stream:
        pass
    final = await stream.get_final_response()
    assert (final.name, final.skills) == ("Bo", ["Go"])
    assert (collector.last.usage.input_tokens, collector.last.usage.output_tokens) == (40, 12)


def test_real_client_failing_stream(generated_client, server, baml):
    baml_py, errors = baml
    server.fail_stream(after_chunks=2, content="one two three four")
    stream = _client(generated_client, server, baml_py.Collector()).stream.SayHello("x")
    with pytest.raises(errors.BamlClientHttpError, match="Stream transport error"):
        for _ in stream:
            pass
        stream.get_final_response()


@pytest.mark.asyncio
async def test_real_client_twenty_concurrent_async_calls(generated_client, server, baml):
    baml_py, _ = baml
    collector = baml_py.Collector()
    for i in range(20):
        server.respond(f"hello {i}", usage=(i + 1, 2 * i + 1))
    client = generated_client.async_b.with_options(client_registry=server.client_registry("TestClient"), collector=collector)
    results = await asyncio.gather(*(client.SayHello(f"n{i}") for i in range(20)))
    assert sorted(results) == sorted(f"hello {i}" for i in range(20))
    assert len(collector.logs) == 20
    assert collector.usage.input_tokens == sum(i + 1 for i in range(20))
    assert collector.usage.output_tokens == sum(2 * i + 1 for i in range(20))
    assert server.pending == []


# ---------------------------------------------------------------- baml_gen


def test_generated_client_matches_the_runtime(generated_client):
    from importlib.metadata import version

    assert generated_client.module.__version__ == version("baml-py")
    b, async_b = generated_client
    assert b is generated_client.b and async_b is generated_client.async_b
    assert not generated_client.name.startswith("baml_client")
    assert import_generated(generated_client.path.parent) is generated_client


def test_generate_client_patches_an_old_generator_and_leaves_sources_alone(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    original = 'generator g {\n  output_type "python/pydantic"\n  output_dir "../"\n  version "0.1.0"\n}\n'
    (src / "gen.baml").write_text(original)
    (src / "f.baml").write_text(
        'client<llm> C {\n  provider openai\n  options {\n    model "m"\n    api_key "k"\n  }\n}\n'
        'function Echo(x: string) -> string {\n  client C\n  prompt #"{{ x }}"#\n}\n'
    )
    out = generate_client(src, tmp_path / "out", client_package_name="echo_client")
    assert (out / "echo_client" / "__init__.py").is_file()
    assert (src / "gen.baml").read_text() == original
    client = import_generated(out, "echo_client", fresh=True)
    assert callable(client.b.Echo) and callable(client.async_b.Echo)


def test_generate_client_reports_baml_cli_errors(tmp_path):
    src = tmp_path / "broken"
    src.mkdir()
    (src / "bad.baml").write_text("function Broken( -> {\n")
    with pytest.raises(BamlGenerateError, match="baml-cli generate failed") as info:
        generate_client(src, tmp_path / "out")
    message = str(info.value)
    assert "not start with any known Baml schema keyword" in message
    assert str(src / "bad.baml") in message  # the user's path, not the staging copy
    assert "Stack backtrace" not in message
    assert info.value.returncode != 0


def test_generate_client_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        generate_client(tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(ValueError, match="no .baml files"):
        generate_client(tmp_path, tmp_path / "out")
    (tmp_path / "a.baml").write_text("")
    with pytest.raises(ValueError, match="output_type='typescript'"):
        generate_client(tmp_path, tmp_path / "out", output_type="typescript")
    with pytest.raises(ValueError, match="client_package_name='my-client'"):
        generate_client(tmp_path, tmp_path / "out", client_package_name="my-client")
    with pytest.raises(FileNotFoundError, match="no generated package"):
        import_generated(tmp_path)


def test_child_imports_only_the_wire_format_from_the_package():
    """The child runs as ``python -I -S <file>``: it must import the wire format from this
    checkout without the package's ``__init__`` and without anything from site-packages."""
    child_script = ROOT / "pytest_baml_telemetry" / "fake" / "_server_child.py"
    code = textwrap.dedent(
        """
        import runpy, sys
        runpy.run_path(sys.argv[1])  # defines everything, does not run main()
        print(" ".join(sorted(m for m in sys.modules if m.startswith(("pytest_baml_telemetry", "baml_py", "httpx")))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(child_script)],
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "pytest_baml_telemetry",
        "pytest_baml_telemetry._validate",
        "pytest_baml_telemetry.fake",
        "pytest_baml_telemetry.fake._server_proxy",
        "pytest_baml_telemetry.fake._sigv4",
        "pytest_baml_telemetry.wire",
        "pytest_baml_telemetry.wire.anthropic",
        "pytest_baml_telemetry.wire.bedrock",
        "pytest_baml_telemetry.wire.common",
        "pytest_baml_telemetry.wire.google",
        "pytest_baml_telemetry.wire.openai",
        "pytest_baml_telemetry.wire.openai_responses",
    ]


def test_server_and_respx_builders_speak_the_same_wire_format(server: FakeLLMServer):
    """The fake server and modular's respx builders share wire.openai: same events, same bytes layout."""
    from pytest_baml_telemetry.modular import openai_stream_events

    server.respond("one two three", usage=(3, 2, 1), model="m", chunks=2)
    asked = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=asked, timeout=10) as r:
        lines = [line for line in r.iter_lines() if line]
    served = [line[len("data: "):] for line in lines]
    built = openai_stream_events("one two three", usage=(3, 2, 1), model="m", chunks=2, id="x")
    assert served[-1] == built[-1] == "[DONE]"

    def comparable(event):
        # the server adds "usage": null to the chunks of a stream that asked for usage, as OpenAI does
        return {k: v for k, v in event.items() if k not in ("id", "created") and (k, v) != ("usage", None)}

    assert [comparable(json.loads(s)) for s in served[:-1]] == [comparable(e) for e in built[:-1]]
    assert served[0].startswith('{"id":"chatcmpl-fake')  # compact JSON, as the builders send
