"""instrument(b)'s fast paths (issue 17) give exactly what the slow ones did: who is asked whether
anyone listens, concurrent calls from threads, the response-body scan, the Usage built without
validation, and the benchmark's targets."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytest_baml_telemetry import Dispatcher, Emitter, Usage, instrument
from pytest_baml_telemetry.capture import EventCapture

pytestmark = pytest.mark.usefixtures("_quiet_baml")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def errors():
    from baml_py import errors

    return errors


def _counting_collectors(client) -> list:
    """Make ``client`` (an instrumented proxy, before any call) count the Collectors it creates."""
    import baml_py

    made: list = []
    settings = object.__getattribute__(client, "_pbt_settings")

    def factory(name):
        collector = baml_py.Collector(name)
        made.append(collector)
        return collector

    settings.collector_type = factory
    return made


# ------------------------------------------------------------------ who listens


def test_a_handler_on_an_event_the_emitter_does_not_emit_attaches_no_collector(generated_client, server, errors):
    dispatcher = Dispatcher()
    stops_only = Emitter(dispatcher=dispatcher, events=("start", "stop"))
    failures: list = []
    dispatcher.attach("exc", stops_only.exception_event, lambda e, m, md, c: failures.append(md))
    b = instrument(generated_client.b, emitter=stops_only).with_options(
        client_registry=server.client_registry("TestClient")
    )
    made = _counting_collectors(b)
    server.respond("hi", usage=(1, 1)).fail(500)
    assert b.SayHello("x") == "hi"
    with pytest.raises(errors.BamlClientHttpError):
        b.SayHello("y")
    assert made == [] and failures == []  # the exception handler hears nothing from this emitter

    stops: list = []
    dispatcher.attach("stop", stops_only.stop_event, lambda e, m, md, c: stops.append((m, md)))
    server.respond("heard", usage=(7, 2))
    assert b.SayHello("z") == "heard"
    assert len(made) == 1
    ((measurements, metadata),) = stops
    assert (measurements["input_tokens"], measurements["output_tokens"], metadata["model"]) == (7, 2, "gpt-4o-mini")


def test_an_exception_only_emitter_reads_the_collector_for_failures_only(generated_client, server, errors):
    dispatcher = Dispatcher()
    failures_only = Emitter(dispatcher=dispatcher, events=("start", "exception"))
    dispatcher.attach("stop", failures_only.stop_event, lambda e, m, md, c: None)
    b = instrument(generated_client.b, emitter=failures_only).with_options(
        client_registry=server.client_registry("TestClient")
    )
    made = _counting_collectors(b)
    server.respond("hi", usage=(1, 1))
    assert b.SayHello("x") == "hi"
    assert made == []  # a stop handler, but this emitter emits no stop

    failures: list = []
    dispatcher.attach("exc", failures_only.exception_event, lambda e, m, md, c: failures.append(md))
    server.fail(500)
    with pytest.raises(errors.BamlClientHttpError):
        b.SayHello("y")
    assert len(made) == 1
    ((md),) = failures
    assert (md["model"], md["client_name"], md["num_attempts"]) == ("gpt-4o-mini", "TestClient", 1)


def test_the_emitters_dispatcher_is_asked_at_each_call(generated_client, server):
    emitter = Emitter(dispatcher=Dispatcher())
    b = instrument(generated_client.b, emitter=emitter).with_options(client_registry=server.client_registry("TestClient"))
    made = _counting_collectors(b)
    server.respond("quiet", usage=(1, 1)).respond("heard", usage=(5, 4))
    assert b.SayHello("x") == "quiet"
    assert made == []
    emitter.dispatcher = Dispatcher()  # replaced after instrument(): the next call asks the new one
    capture = EventCapture(dispatcher=emitter.dispatcher).attach()
    assert b.SayHello("y") == "heard"
    (call,) = capture.calls
    assert len(made) == 1 and (call.input_tokens, call.output_tokens) == (5, 4)
    capture.detach()


# ------------------------------------------------------------------ concurrency


def test_concurrent_calls_from_threads_pair_and_keep_their_own_tokens(generated_client, server, tel):
    emitter, capture = tel
    threads, per_thread = 6, 4
    total = threads * per_thread
    for i in range(total):
        server.respond(f"hello {i}", usage=(i + 1, 2 * i + 1))
    b = instrument(generated_client.b, emitter=emitter).with_options(client_registry=server.client_registry("TestClient"))
    results: list = []
    failures: list = []
    barrier = threading.Barrier(threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for k in range(per_thread):
                results.append(b.SayHello(f"t{t}-{k}"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    assert sorted(results) == sorted(f"hello {i}" for i in range(total))
    assert len(capture.starts) == len(capture.stops) == total
    assert capture.handler_failures == []
    spans = {s.metadata["telemetry_span_context"] for s in capture.starts}
    assert spans == {s.metadata["telemetry_span_context"] for s in capture.stops} and len(spans) == total
    names = {s.metadata["telemetry_span_context"]: s.metadata["arguments"]["name"] for s in capture.starts}
    assert sorted(names.values()) == sorted(f"t{t}-{k}" for t in range(threads) for k in range(per_thread))
    for stop in capture.stops:  # the server's order is not the calls' order: match by content
        i = int(stop.metadata["result"].split()[1])
        assert (stop.measurements["input_tokens"], stop.measurements["output_tokens"]) == (i + 1, 2 * i + 1)
        assert stop.metadata["request_id"].startswith("chatcmpl-fake")
    server.assert_all_used()


# ------------------------------------------------------------------ the response-body scan


class _Body:
    def __init__(self, text):
        self._text = text

    def text(self):
        return self._text


def _log_with(response_text: str, usage=(10, 5, None)):
    attempt = SimpleNamespace(
        provider="openai",
        client_name="C",
        http_request=SimpleNamespace(body=_Body('{"model":"asked","messages":[]}'), id="breq_1"),
        http_response=SimpleNamespace(body=_Body(response_text)),
        timing=SimpleNamespace(start_time_utc_ms=0),
    )
    counts = None if usage is None else SimpleNamespace(
        input_tokens=usage[0], output_tokens=usage[1], cached_input_tokens=usage[2]
    )
    return SimpleNamespace(usage=counts, calls=[attempt], selected_call=attempt)


def _read(log):
    from pytest_baml_telemetry.collector_log import read_collector_log

    call = Emitter(dispatcher=Dispatcher()).call("F")
    read_collector_log(log, call)
    return call


def _expected(text: str) -> tuple[str, str | None]:
    """(request_id, response_model or None) as a full JSON parse gives them."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return "breq_1", None
    ident, model = data.get("id"), data.get("model")
    return (ident if isinstance(ident, str) and ident else "breq_1"), (model if isinstance(model, str) else None)


SCANNED = [
    '{"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o", "choices": [{"id": "x"}]}',
    '{"id":"chatcmpl-2","object":"chat.completion","model":"gpt-4o","choices":[]}',
    '{\n  "id": "indented",\n  "model": "m",\n  "choices": []\n}',
    '{"model": "first", "id": "model-before-id"}',
    '{"id": "", "model": "m"}',
    '{"id": 7, "model": "m"}',
    '{"id": "x", "model": null}',
    '{"id": "x", "model": 4}',
    '{"object": "id", "id": "real", "model": "model", "choices": []}',
    '{"object": "model", "model": "m", "id": "x"}',
    '{"usage": {"id": "inner"}, "id": "outer", "model": "m"}',
    '{"choices": [{"model": "inner"}], "id": "outer", "model": "m"}',
    '{"id": "a\\"b", "model": "m"}',
    '{"id": "a[b", "model": "m"}',
    '{"id": "x", "choices": [{"model": "inner"}], "model": "outer"}',
    '{"id": "x", "meta": {"model": "inner"}, "model": "outer"}',
    '{"id": "x", "object": "a\\"model\\": \\"fake", "model": "real"}',
    '{"id": "x", "object": "model", "note": "\\"model\\": \\"fake\\"", "model": "real"}',
    '{"id":"x","object":"chat.completion","created":1,"model":"compact","choices":[]}',
    '["id", "model"]',
    ' {"id": "lead", "model": "m"}',
    '{"id" :"x", "model" :"m"}',
    '{"id":  "two-spaces", "model": "m"}',
    "",
]

MALFORMED = [  # what the scan made of them before issue 17's fast path too (checked side by side)
    ('{"id": "x", "model": "m"', "x", "m"),  # cut after the top-level strings: they were whole
    ('{"id": "x", "model": "m', "breq_1", None),
    ('{"id": "unclosed', "breq_1", None),
    ('{"id": "x" "model": "m"}', "x", "m"),
]


@pytest.mark.parametrize("text", SCANNED)
def test_the_response_scan_agrees_with_a_json_parse(text):
    ident, model = _expected(text)
    call = _read(_log_with(text))
    assert call.extra["request_id"] == ident
    assert call.extra.get("response_model") == model
    assert ("response_model" in call.extra) is (model is not None)
    assert call.model == "asked"


@pytest.mark.parametrize(("text", "ident", "model"), MALFORMED)
def test_malformed_bodies_read_as_before(text, ident, model):
    call = _read(_log_with(text))
    assert (call.extra["request_id"], call.extra.get("response_model")) == (ident, model)


def test_the_response_scan_agrees_with_json_on_generated_layouts():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    words = st.text(alphabet='ab"\\[]{}:, \n\u00e9', max_size=6)
    scalars = st.none() | st.booleans() | st.integers(-3, 3) | words | st.sampled_from(["id", "model", '"id": "'])
    values = st.recursive(
        scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(words, inner, max_size=2), max_leaves=4
    )
    keys = st.sampled_from(["id", "model", "object", "choices", "created", "x", "model ", "iid"])

    @settings(max_examples=300, deadline=None, database=None)
    @given(st.dictionaries(keys, values, max_size=5), st.sampled_from([None, 0, 1, 2]), st.booleans(), st.booleans())
    def check(obj, indent, compact, ascii_only):
        separators = (",", ":") if compact and indent is None else None
        text = json.dumps(obj, indent=indent, separators=separators, ensure_ascii=ascii_only)
        ident, model = _expected(text)
        call = _read(_log_with(text))
        assert call.extra["request_id"] == ident
        assert call.extra.get("response_model") == model

    check()


# ------------------------------------------------------------------ the Usage built without validation


@pytest.mark.parametrize("has_dict", [True, False], ids=["dict-fill", "setattr"])
def test_usage_is_a_real_usage_whichever_way_it_is_built(monkeypatch, has_dict):
    from pytest_baml_telemetry import collector_log

    monkeypatch.setattr(collector_log, "_USAGE_HAS_DICT", has_dict)
    usage = _read(_log_with('{"id": "x", "model": "m"}', usage=(120, 30, 20))).usage
    assert type(usage) is Usage and usage == Usage(120, 30, 20) and hash(usage) == hash(Usage(120, 30, 20))
    assert usage.total_tokens == 150 and repr(usage) == repr(Usage(120, 30, 20))
    with pytest.raises(AttributeError):  # still frozen
        usage.input_tokens = 1  # type: ignore[misc]
    unknown = _read(_log_with('{"id": "x", "model": "m"}', usage=(None, None, None))).usage
    assert unknown == Usage() and unknown.total_tokens is None
    with pytest.raises(ValueError, match="input_tokens=-1"):
        _read(_log_with("{}", usage=(-1, 2, None)))


def test_the_usage_fill_matches_the_dataclass_layout():
    from pytest_baml_telemetry import collector_log

    assert collector_log._USAGE_HAS_DICT is hasattr(Usage(), "__dict__")


# ------------------------------------------------------------------ the benchmark's targets


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.setenv("BAML_LOG", "off")  # the script sets it at import; restored after the test
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("_bench_instrument_under_test", ROOT / "benchmarks" / "bench_instrument.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _summary(ratio: float, base: float = 1e-3) -> dict:
    def one(r: float) -> dict:
        return {"median": base * r, "trimmed_mean": base * r, "min": base * r, "ratio": r, "trimmed_ratio": r,
                "median_added": base * (r - 1), "paired_ratio": r}

    return {"plain": one(1.0), "handler": one(ratio), "no handler": one(1.0)}


@pytest.mark.parametrize(
    ("fast", "slow", "expected"),
    [
        (1.029, 1.004, ("PASS", "PASS")),
        (1.031, 1.004, ("FAIL", "PASS")),
        (1.01, 1.006, ("PASS", "FAIL")),
        (1.05, 1.01, ("FAIL", "FAIL")),
    ],
)
def test_the_benchmark_rows_carry_both_targets(bench, fast, slow, expected):
    rows, ok, slow_ok = bench.verdict_rows(_summary(fast), _summary(slow, 21e-3), 20.0)
    targeted = [r for r in rows if r["target"]]
    assert [(r["target"], r["status"]) for r in targeted] == [("≤ +3 %", expected[0]), ("≤ +0.5 %", expected[1])]
    assert "server answers at once" in targeted[0]["benchmark"] and "20 ms" in targeted[1]["benchmark"]
    assert (ok, slow_ok) == (expected[0] == "PASS", expected[1] == "PASS")
    assert all("median of pairs" in r["ratio"] for r in rows)
    assert {r["status"] for r in rows if not r["target"]} == {""}


def test_another_latency_has_no_target_and_none_skips_the_series(bench):
    rows, ok, slow_ok = bench.verdict_rows(_summary(1.01), _summary(1.5, 6e-3), 5.0)
    assert [r["target"] for r in rows] == ["≤ +3 %", "", "", ""] and ok and slow_ok
    rows, ok, slow_ok = bench.verdict_rows(_summary(1.04), None, 0.0)
    assert [r["status"] for r in rows] == ["FAIL", ""] and not ok and slow_ok
