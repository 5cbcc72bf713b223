"""JsonlExporter: the line format, what is left out by default, values that are not JSON,
secrets, the redact hook, and failed writes (counted, logged, recorded in the log, never detached)."""

from __future__ import annotations

import datetime
import enum
import json
import logging
import math
import os
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from pytest_baml_telemetry import CALL_START, CALL_STOP, HANDLER_FAILURE, Dispatcher, Emitter
from pytest_baml_telemetry.exporters import EXPORTER_LOST, MASK, JsonlExporter, is_secret_name, jsonable, mask_secrets

KEY = "sk-proj-Zx81QwErTy77uIoPaSdF"


def lines(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="ascii")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def setup(tmp_path: Path):
    dispatcher = Dispatcher()
    return dispatcher, Emitter(dispatcher=dispatcher), tmp_path / "events.jsonl"


def _call(emitter: Emitter, **extra: Any) -> None:
    with emitter.call("ExtractResume", arguments={"resume": "Ann, Rust", "api_key": KEY}, resource="Svc") as call:
        call.set_usage(input_tokens=120, output_tokens=30, cached_input_tokens=20)
        call.set_model("gpt-4o-mini")
        call.set_result({"name": "Ann"})
        if extra:
            call.set(**extra)


def test_one_line_per_event_in_the_documented_format(setup) -> None:
    dispatcher, emitter, path = setup
    with JsonlExporter(path, dispatcher=dispatcher) as exporter:
        assert exporter.attached and exporter.dispatcher is dispatcher
        _call(emitter)
    assert exporter.closed and not exporter.attached
    start, stop = lines(path)
    assert set(start) == {"v", "time", "event", "measurements", "metadata"}
    assert (start["v"], start["event"], stop["event"]) == (1, list(CALL_START), list(CALL_STOP))
    when = datetime.datetime.strptime(start["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert abs(when.timestamp() - start["measurements"]["system_time"] / 1e9) < 0.5  # UTC wall clock
    assert set(start["measurements"]) == {"system_time", "monotonic_time"}
    assert stop["measurements"]["input_tokens"] == 120 and stop["measurements"]["cached_input_tokens"] == 20
    assert stop["metadata"]["model"] == "gpt-4o-mini" and stop["metadata"]["resource"] == "Svc"
    assert start["metadata"]["telemetry_span_context"] == stop["metadata"]["telemetry_span_context"]
    assert exporter.stats() == {"path": str(path), "written": 2, "dropped": 0, "failed": 0, "last_error": None}


def test_arguments_results_messages_and_stacktraces_are_left_out_by_default(setup) -> None:
    dispatcher, emitter, path = setup
    with JsonlExporter(path, dispatcher=dispatcher):
        _call(emitter)
        with pytest.raises(ValueError), emitter.call("SayHello", arguments={"name": "Bob"}):
            raise ValueError("the model answered: Bob's secret diary")
    start, stop, start2, exc = lines(path)
    assert "arguments" not in start["metadata"] and "result" not in stop["metadata"]
    assert exc["metadata"]["reason"] == {"type": "ValueError"}
    assert "stacktrace" not in exc["metadata"] and exc["metadata"]["kind"] == "error"
    assert "diary" not in path.read_text() and "Bob" not in path.read_text()


def test_opting_in_keeps_them_with_keys_still_masked(setup) -> None:
    dispatcher, emitter, path = setup
    exporter = JsonlExporter(
        path, dispatcher=dispatcher, include_arguments=True, include_results=True,
        include_error_messages=True, include_stacktrace=True,
    ).attach()
    _call(emitter)
    with pytest.raises(RuntimeError), emitter.call("SayHello"):
        raise RuntimeError(f"401 Incorrect API key provided: {KEY}")
    exporter.close()
    start, stop, _, exc = lines(path)
    assert start["metadata"]["arguments"] == {"resume": "Ann, Rust", "api_key": MASK}
    assert stop["metadata"]["result"] == {"name": "Ann"}
    assert exc["metadata"]["reason"] == {"type": "RuntimeError", "message": "401 Incorrect API key provided: ***"}
    trace = exc["metadata"]["stacktrace"]
    assert trace and all(isinstance(t, str) and ":" in t and " in " for t in trace)
    assert any(__file__ in t for t in trace)
    assert KEY not in path.read_text()


def test_a_status_code_is_kept_from_the_reason() -> None:
    from baml_py import errors

    exc = errors.BamlClientHttpError("TestClient", "Request failed: 429", 429, "detail")
    assert exc.status_code == 429
    exporter_dict = JsonlExporter(os.devnull).event_dict(("a", "call", "exception"), {"duration": 1}, {"reason": exc})
    assert exporter_dict["metadata"]["reason"] == {"type": "BamlClientHttpError", "status_code": 429}


class Priority(enum.Enum):
    HIGH = "HIGH"
    LOW = 2


class Boom:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_values_that_are_not_json_are_written_as_documented() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Resume(pydantic.BaseModel):
        name: str
        skills: list[str]

    model = Resume(name="Ann", skills=["Rust"])
    value = {
        "nan": math.nan, "inf": math.inf, "-inf": -math.inf, "float": 1.5, "big": 10**30,
        "enum": Priority.HIGH, "enum2": Priority.LOW, "bytes": b"\x00\x01\x02", "tuple": (1, "a"),
        "set": {3, 1, 2}, "date": datetime.date(2026, 12, 1), "path": Path("/tmp/x"),
        "class": Dispatcher, "model": model, "boom": Boom(), 7: "int key", "deep": [[[[1]]]],
    }
    out = jsonable(value)
    json.dumps(out, allow_nan=False)  # strictly JSON
    assert out["nan"] == "NaN" and out["inf"] == "Infinity" and out["-inf"] == "-Infinity"
    assert (out["float"], out["big"], out["enum"], out["enum2"]) == (1.5, 10**30, "HIGH", 2)
    assert (out["bytes"], out["tuple"], out["set"]) == ("<3 bytes>", [1, "a"], [1, 2, 3])
    assert (out["date"], out["path"]) == ("2026-12-01", "/tmp/x")
    assert out["class"] == "pytest_baml_telemetry.dispatcher.Dispatcher"
    assert out["model"] == repr(model) and out["boom"] == "<Boom: repr() raised>"
    assert out["7"] == "int key" and out["deep"] == [[[[1]]]]
    assert jsonable(model, dump_models=True) == {"name": "Ann", "skills": ["Rust"]}
    nested: Any = []
    for _ in range(40):
        nested = [nested]
    assert "<nested too deep>" in json.dumps(jsonable(nested))
    assert jsonable(object(), max_repr=12).endswith("...") and len(jsonable(object(), max_repr=12)) == 12


def test_a_nan_measurement_is_a_string_so_the_line_stays_json(setup) -> None:
    dispatcher, _, path = setup
    with JsonlExporter(path, dispatcher=dispatcher):
        dispatcher.execute(CALL_STOP, {"duration": math.nan}, {"function_name": "F"})
    (line,) = lines(path)
    assert line["measurements"]["duration"] == "NaN"


@pytest.mark.parametrize(
    "text, shown",
    [
        (f"key {KEY} end", "key *** end"),
        ("sk-ant-api03-abcdefghijklmnop", "***"),
        ("Authorization: Bearer abc.def-ghi_jkl", "Authorization: Bearer ***"),
        ("AKIAIOSFODNN7EXAMPLE", "***"),
        ("AIzaSyA-1234567890abcdefghijklmnopqrstu", "***"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123", "***"),
        ("xoxb-1234567890-abcdef", "***"),
        ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig_nature", "***"),
        ("https://x.test/v1?api_key=abcd1234&model=m", "https://x.test/v1?api_key=***&model=m"),
        ('{"password": "hunter22"}', '{"password": "***"}'),
        ("a task-list of Skills", "a task-list of Skills"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("chatcmpl-fake7540x0", "chatcmpl-fake7540x0"),
    ],
)
def test_text_that_looks_like_a_key_is_masked(text: str, shown: str) -> None:
    assert mask_secrets(text) == shown


@pytest.mark.parametrize(
    "name, secret",
    [
        ("api_key", True), ("Authorization", True), ("x-goog-api-key", True), ("session_id", True),
        ("access_token", True), ("password", True), ("private", True),
        ("input_tokens", False), ("max_tokens", False), ("cached_input_tokens", False),
        ("telemetry_span_context", False), ("function_name", False), ("request_id", False), ("model", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_extra_metadata_under_a_secret_name_is_masked(setup) -> None:
    dispatcher, emitter, path = setup
    with JsonlExporter(path, dispatcher=dispatcher):
        _call(emitter, auth_header=f"Bearer {KEY}", tenant="acme", note=f"used {KEY}")
    _, stop = lines(path)
    assert (stop["metadata"]["auth_header"], stop["metadata"]["tenant"], stop["metadata"]["note"]) == (MASK, "acme", "used ***")
    assert KEY not in path.read_text()


def test_the_redact_hook_sees_the_line_and_may_change_or_drop_it(setup) -> None:
    dispatcher, emitter, path = setup
    seen: list[dict[str, Any]] = []

    def redact(event: dict[str, Any]) -> dict[str, Any] | None:
        seen.append(event)
        if event["event"][-1] == "start":
            return None
        event["metadata"]["resource"] = "tenant-7"
        event["metadata"]["leak"] = f"oops {KEY}"
        event["measurements"]["weird"] = math.inf
        return event

    with JsonlExporter(path, dispatcher=dispatcher, redact=redact) as exporter:
        _call(emitter)
    assert [e["event"][-1] for e in seen] == ["start", "stop"]
    assert "arguments" not in seen[0]["metadata"]  # the hook gets the safe dict
    (stop,) = lines(path)
    assert stop["metadata"]["resource"] == "tenant-7" and stop["metadata"]["leak"] == "oops ***"
    assert stop["measurements"]["weird"] == "Infinity"
    assert (exporter.written, exporter.dropped, exporter.failed) == (1, 1, 0)


def test_a_raising_or_wrong_redact_is_counted_not_detached(setup, caplog) -> None:
    dispatcher, emitter, path = setup
    failures: list[Any] = []
    dispatcher.attach("failures", HANDLER_FAILURE, lambda *a: failures.append(a))
    answers = iter([ValueError("bad hook"), ["not", "a dict"]])

    def redact(event: dict[str, Any]) -> Any:
        answer = next(answers, event)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with caplog.at_level(logging.WARNING, "pytest_baml_telemetry.exporters"):
        exporter = JsonlExporter(path, dispatcher=dispatcher, redact=redact).attach()
        _call(emitter)  # start: raises; stop: a list
        _call(emitter)  # both written
        exporter.close()
    assert failures == [] and exporter.failed == 2
    assert "expected a dict or None" in str(exporter.last_error)
    records = lines(path)
    assert [r["event"] for r in records] == [list(EXPORTER_LOST), list(CALL_START), list(CALL_STOP)]
    assert records[0]["measurements"] == {"count": 2}
    assert any("could not write an event" in r.message for r in caplog.records)
    assert any("2 event(s) could not be written" in r.message and r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_counted_and_logged_and_the_exporter_stays_attached(caplog) -> None:
    dispatcher = Dispatcher()
    emitter = Emitter(dispatcher=dispatcher)
    failures: list[Any] = []
    dispatcher.attach("failures", HANDLER_FAILURE, lambda *a: failures.append(a))
    exporter = JsonlExporter("/dev/full", dispatcher=dispatcher).attach()
    with caplog.at_level(logging.WARNING, "pytest_baml_telemetry.exporters"):
        for _ in range(3):
            _call(emitter)
        assert exporter.attached and failures == []
        assert exporter.failed == 6 and exporter.written == 0
        assert isinstance(exporter.last_error, OSError) and exporter.last_error.errno == 28
        assert "No space left" in exporter.stats()["last_error"]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # once, not per event
        exporter.close()
    assert any(r.levelno == logging.ERROR and "6 event(s)" in r.message and "does not record it" in r.message for r in caplog.records)


class FlakyFile:
    """A file whose first ``fail`` writes raise ENOSPC."""

    def __init__(self, real: Any, fail: int) -> None:
        self.real, self.fail = real, fail

    def write(self, data: Any) -> int:
        if self.fail:
            self.fail -= 1
            raise OSError(28, "No space left on device")
        return self.real.write(data)

    def fileno(self) -> int:
        return self.real.fileno()

    def close(self) -> None:
        self.real.close()


def test_events_lost_to_a_failed_write_are_recorded_in_the_log_when_writing_works_again(setup) -> None:
    dispatcher, emitter, path = setup
    exporter = JsonlExporter(path, dispatcher=dispatcher).attach()
    exporter._file = FlakyFile(exporter._file, fail=3)
    for _ in range(3):
        _call(emitter)
    exporter.flush(fsync=True)
    exporter.close()
    records = lines(path)
    kinds = [r["event"][-1] for r in records]
    assert kinds == ["lost", "stop", "start", "stop"]  # lost: the first call and the second's start
    assert records[0]["measurements"] == {"count": 3}
    assert "No space left" in records[0]["metadata"]["reason"]
    assert exporter.stats()["failed"] == 3 and exporter.written == 4


def test_a_closed_exporter_counts_what_it_is_handed(setup) -> None:
    dispatcher, emitter, path = setup
    exporter = JsonlExporter(path, dispatcher=dispatcher)
    exporter.close()
    exporter.close()  # idempotent
    dispatcher.attach("by-hand", CALL_STOP, exporter.handle)
    _call(emitter)
    assert exporter.failed == 1 and "is closed" in str(exporter.last_error)
    assert path.read_text() == ""


def test_only_the_chosen_kinds_are_exported(setup) -> None:
    dispatcher, emitter, path = setup
    with JsonlExporter(path, dispatcher=dispatcher, events=["stop", "exception"]):
        _call(emitter)
    assert [r["event"][-1] for r in lines(path)] == ["stop"]


@pytest.mark.parametrize(
    "kwargs, exc, message",
    [
        ({"path": 5}, TypeError, "JsonlExporter(path=5): expected a file path"),
        ({"include_arguments": 1}, TypeError, "include_arguments=1"),
        ({"redact": "no"}, TypeError, "redact='no'"),
        ({"max_repr": 0}, ValueError, "max_repr=0"),
        ({"events": "stop"}, TypeError, "events='stop'"),
        ({"events": ["stop", "end"]}, ValueError, "'end'"),
        ({"events": []}, ValueError, "at least one event kind"),
        ({"prefix": ()}, ValueError, "prefix"),
    ],
)
def test_bad_arguments_name_the_value(tmp_path: Path, kwargs: dict[str, Any], exc: type, message: str) -> None:
    kwargs = {"path": tmp_path / "e.jsonl", **kwargs}
    path = kwargs.pop("path")
    with pytest.raises(exc) as info:
        JsonlExporter(path, **kwargs)
    assert message in str(info.value)


def test_a_path_that_cannot_be_opened_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cannot open '.*missing/e\.jsonl' for appending"):
        JsonlExporter(tmp_path / "missing" / "e.jsonl")


def test_it_appends_to_an_existing_log(setup) -> None:
    dispatcher, emitter, path = setup
    for _ in range(2):
        with JsonlExporter(path, dispatcher=dispatcher):
            _call(emitter)
    assert len(lines(path)) == 4


def test_the_default_attach_is_the_default_dispatcher(tmp_path: Path) -> None:
    from pytest_baml_telemetry import list_handlers

    with JsonlExporter(tmp_path / "e.jsonl") as exporter:
        ids = {h["id"] for h in list_handlers(("ash_baml",))}
        assert exporter.handler_id in ids
    assert exporter.handler_id not in {h["id"] for h in list_handlers(("ash_baml",))}
    assert repr(exporter).endswith("closed: 0 written, 0 failed>")


def test_stack_summaries_unknown_reasons_and_thread_names() -> None:
    exporter = JsonlExporter(os.devnull, include_stacktrace=True)
    summary = traceback.StackSummary.from_list([("f.py", 3, "fn", "x = 1")])
    d = exporter.event_dict(("a", "call", "exception"), {}, {"stacktrace": summary, "reason": "text", "t": threading.Lock})
    assert d["metadata"]["stacktrace"] == ["f.py:3 in fn"] and d["metadata"]["reason"] == "text"
    exporter.close()
