"""The bad-input catalogue: malformed inputs at every public entry point.

Each case calls one entry point with one bad value and must get a ``TypeError`` /
``ValueError`` (or the documented subclass) whose message names the bad value, never a
bare Python internal error. The pytester part runs real sessions with bad options,
markers and scripts and checks that none of them ends in an INTERNALERROR.

A case marked ``xfail(strict=True)`` is a known bug in a module owned elsewhere; the
``reason`` says what is wrong. When it is fixed the case XPASSes and fails: drop the mark.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import pytest_baml_telemetry as pbt
from pytest_baml_telemetry import (
    Dispatcher,
    Emitter,
    Usage,
    VirtualClock,
    convert_time_unit,
    metrics,
    validate_event,
    validate_stream,
)
from pytest_baml_telemetry.budgets import (
    Aggregator,
    Budget,
    BudgetConfigError,
    PriceTable,
    budget_from_marker,
    load_budgets,
    load_prices,
    percentile,
)
from pytest_baml_telemetry.capture import EventCapture, expect
from pytest_baml_telemetry.clock import parse_duration_ns
from pytest_baml_telemetry.contract import ContractViolation
from pytest_baml_telemetry.dispatcher import HandlerExistsError
from pytest_baml_telemetry.fake import FakeBamlClient, faults
from pytest_baml_telemetry.fake.server import FakeLLMServer
from pytest_baml_telemetry.instrument import instrument
from pytest_baml_telemetry.metrics import UnknownMetricError
from pytest_baml_telemetry.modular import openai_chat_response, openai_error_response
from pytest_baml_telemetry.report import build_report
from pytest_baml_telemetry.trackers import (
    CostTracker,
    LatencyTracker,
    LoggingHandler,
    SlowCallTracker,
)

# Messages that are Python talking about its own internals instead of about the input.
INTERNAL = re.compile(
    "|".join(
        [
            r"object is not subscriptable",
            r"object is not callable",
            r"object is not iterable",
            r"object has no attribute",
            r"missing \d+ required positional argument",
            r"unsupported operand type",
            r"not supported between instances of",
            r"unhashable type",
            r"invalid literal for int\(\)",
            r"could not convert string to float",
            r"^'?NoneType'?",
        ]
    )
)


# --------------------------------------------------------------------------- helpers


def _handler(event: Any, measurements: Any, metadata: Any, config: Any) -> None:
    pass


def _attach_twice() -> None:
    d = Dispatcher()
    d.attach("dup", ("a",), _handler)
    d.attach("dup", ("b",), _handler)


def _call() -> Any:
    """An open call object of an emitter on a private dispatcher."""
    return Emitter(dispatcher=Dispatcher()).call("ExtractResume")


def _capture() -> EventCapture:
    return EventCapture(dispatcher=Dispatcher())


def _fake(spec: Any = None) -> FakeBamlClient:
    return FakeBamlClient(emitter=Emitter(dispatcher=Dispatcher()), spec=spec)


class ResumeClient:
    """Stands in for a generated client class (``spec=``): one BAML function."""

    def ExtractResume(self, resume: str) -> Any: ...


class CallManager:
    def __init__(self) -> None:
        self.__baml_options: dict[str, Any] = {}


class GeneratedLikeClient:
    """Has the shape ``instrument()`` checks for in a generated client (``with_options``, ``stream``)."""

    stream = None

    def __init__(self) -> None:
        self.__options = CallManager()

    def with_options(self, **options: Any) -> GeneratedLikeClient:
        return self


def _spec_call_unknown() -> None:
    _fake(ResumeClient).ExtractResme(resume="x")


def _spec_wrong_argument() -> None:
    fake = _fake(ResumeClient)
    fake.respond("ExtractResume", {}, reusable=True)
    fake.ExtractResume(cv="x")


def _fake_callable_returning(value: Any) -> None:
    fake = _fake()
    fake.fail("ExtractResume", lambda **arguments: value)
    fake.ExtractResume(resume="x")


def _after_reusable() -> None:
    fake = _fake()
    fake.respond("ExtractResume", 1, reusable=True)
    fake.respond("ExtractResume", 2)


def _toml(directory: Path, text: str | bytes, name: str = "config.toml") -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


class _Marker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs


GOOD_PRICE = 'input_per_mtok = 1.0\noutput_per_mtok = 2.0\n'


def bad(
    case_id: str,
    call: Callable[[Path], Any],
    exc: type[BaseException] | tuple[type[BaseException], ...],
    names: str,
    *,
    bug: str | None = None,
) -> Any:
    """One catalogue entry: ``call(tmp_path)`` must raise ``exc`` with ``names`` in its message."""
    marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
    return pytest.param(call, exc, names, id=case_id, marks=marks)


# --------------------------------------------------------------------------- the catalogue

CASES = [
    # ---- dispatcher: event names, measurements, metadata, handler ids and functions
    bad("execute-name-dotted-str", lambda t: Dispatcher().execute("ash_baml.call.stop", {}), TypeError, "'ash_baml.call.stop'"),
    bad("execute-name-empty", lambda t: Dispatcher().execute((), {}), ValueError, "()"),
    bad("execute-name-int-part", lambda t: Dispatcher().execute(("ash_baml", 3), {}), TypeError, "('ash_baml', 3)"),
    bad("execute-name-empty-part", lambda t: Dispatcher().execute(("ash_baml", ""), {}), ValueError, "('ash_baml', '')"),
    bad("execute-name-none", lambda t: Dispatcher().execute(None, {}), TypeError, "None"),
    bad("execute-measurements-list", lambda t: Dispatcher().execute(("a",), [1, 2]), TypeError, "[1, 2]"),
    bad("execute-measurements-none", lambda t: Dispatcher().execute(("a",), None), TypeError, "measurements=None"),
    bad("execute-metadata-str", lambda t: Dispatcher().execute(("a",), {}, "meta"), TypeError, "'meta'"),
    bad("attach-id-unhashable", lambda t: Dispatcher().attach(["h"], ("a",), _handler), TypeError, "['h']"),
    bad("attach-function-not-callable", lambda t: Dispatcher().attach("h", ("a",), 42), TypeError, "function=42"),
    bad("attach-name-dotted-str", lambda t: Dispatcher().attach("h", "a.b", _handler), TypeError, "'a.b'"),
    bad("attach-duplicate-id", lambda t: _attach_twice(), HandlerExistsError, "'dup'"),
    bad("attach_many-single-name", lambda t: Dispatcher().attach_many("h", ("a", "b"), _handler), TypeError, "('a', 'b')"),
    bad("attach_many-empty", lambda t: Dispatcher().attach_many("h", [], _handler), ValueError, "event_names=[]"),
    bad("attach_many-str", lambda t: Dispatcher().attach_many("h", "a.b", _handler), TypeError, "'a.b'"),
    bad("attach_many-int", lambda t: Dispatcher().attach_many("h", 5, _handler), TypeError, "event_names=5"),
    bad("attach_many-bad-member", lambda t: Dispatcher().attach_many("h", [("a",), 7], _handler), TypeError, "7"),
    bad("list_handlers-str-prefix", lambda t: Dispatcher().list_handlers("ash_baml"), TypeError, "'ash_baml'"),
    bad("list_handlers-int-prefix", lambda t: Dispatcher().list_handlers(5), TypeError, "5"),
    bad("span-prefix-str", lambda t: Dispatcher().span("s", {}, lambda: (1, {})), TypeError, "'s'"),
    bad("span-metadata-str", lambda t: Dispatcher().span(("s",), "meta", lambda: (1, {})), TypeError, "'meta'"),
    bad("span-function-outcome", lambda t: Dispatcher().span(("s",), {}, lambda: 5), TypeError, "returned 5"),
    # ---- contract helpers
    bad("convert_time_unit-unit", lambda t: convert_time_unit(1, "native", "fortnight"), ValueError, "'fortnight'"),
    bad("convert_time_unit-value", lambda t: convert_time_unit("1", "native", "second"), TypeError, "'1'"),
    bad("validate_event-dotted", lambda t: validate_event("a.b", {}, {}), ContractViolation, "'a.b'"),
    bad("validate_event-metadata-none", lambda t: validate_event(pbt.CALL_STOP, {}, None), ContractViolation, "None"),
    bad("validate_stream-item", lambda t: validate_stream([5]), TypeError, "5"),
    bad(
        "validate_stream-not-iterable",
        lambda t: validate_stream(5),
        TypeError,
        "events=5",
    ),
    bad("usage-negative", lambda t: Usage(input_tokens=-1), ValueError, "input_tokens=-1"),
    bad("usage-str", lambda t: Usage(output_tokens="12"), TypeError, "output_tokens='12'"),
    # ---- emitter options
    bad("emitter-prefix-str", lambda t: Emitter("ash_baml"), TypeError, "'ash_baml'"),
    bad("emitter-prefix-empty", lambda t: Emitter(()), ValueError, "()"),
    bad("emitter-events-str", lambda t: Emitter(events="start"), TypeError, "'start'"),
    bad("emitter-events-unknown", lambda t: Emitter(events=("start", "finish")), ValueError, "'finish'"),
    bad("emitter-events-int", lambda t: Emitter(events=5), TypeError, "events=5"),
    bad("emitter-sample_rate-high", lambda t: Emitter(sample_rate=2.0), ValueError, "2.0"),
    bad("emitter-sample_rate-str", lambda t: Emitter(sample_rate="0.5"), TypeError, "'0.5'"),
    bad("emitter-sample_rate-nan", lambda t: Emitter(sample_rate=float("nan")), ValueError, "nan"),
    bad("emitter-rng", lambda t: Emitter(rng=42), TypeError, "rng=42"),
    bad("emitter-clock", lambda t: Emitter(clock="now"), TypeError, "'now'"),
    bad("emitter-redact", lambda t: Emitter(redact="***"), TypeError, "'***'"),
    bad("emitter-enabled", lambda t: Emitter(enabled="no"), TypeError, "'no'"),
    bad("emitter-dispatcher", lambda t: Emitter(dispatcher="default"), TypeError, "'default'"),
    bad("emitter-call-function-empty", lambda t: Emitter(dispatcher=Dispatcher()).call(""), TypeError, "''"),
    bad("emitter-call-arguments", lambda t: Emitter(dispatcher=Dispatcher()).call("F", arguments=[1]), TypeError, "[1]"),
    bad("emitter-call-action", lambda t: Emitter(dispatcher=Dispatcher()).call("F", action=5), TypeError, "action=5"),
    bad(
        "emitter-call-streaming-str",
        lambda t: Emitter(dispatcher=Dispatcher()).call("F", streaming="yes"),
        TypeError,
        "'yes'",
    ),
    bad("emitter-stream-not-a-stream", lambda t: Emitter(dispatcher=Dispatcher()).stream(5, "F"), TypeError, "5"),
    bad("emitter-wrap-not-callable", lambda t: Emitter(dispatcher=Dispatcher()).wrap(5), TypeError, "5"),
    # ---- Call setters
    bad("set_usage-negative", lambda t: _call().set_usage(-1, 2), ValueError, "input_tokens=-1"),
    bad("set_usage-bool", lambda t: _call().set_usage(True, 2), TypeError, "input_tokens=True"),
    bad("set_usage-str", lambda t: _call().set_usage(1, "2"), TypeError, "output_tokens='2'"),
    bad("set_usage-float", lambda t: _call().set_usage(1.5, 2), TypeError, "1.5"),
    bad("set_usage-cached-negative", lambda t: _call().set_usage(1, 2, -3), ValueError, "cached_input_tokens=-3"),
    bad("set_model-int", lambda t: _call().set_model(4), TypeError, "set_model(4)"),
    bad("set-model-kw-int", lambda t: _call().set(model=4), TypeError, "4"),
    bad("set-owned-key", lambda t: _call().set(function_name="X"), ValueError, "function_name"),
    bad("call-stop-before-start", lambda t: _call().stop(), RuntimeError, "never started"),
    # ---- capture options and assertions
    bad("capture-event-unknown", lambda t: _capture().assert_emitted("finish"), ValueError, "'finish'"),
    bad("capture-event-int-part", lambda t: _capture().assert_not_emitted(("x", 1)), TypeError, "('x', 1)"),
    bad("capture-count-negative", lambda t: _capture().assert_emitted("stop", count=-1), ValueError, "count=-1"),
    bad("capture-count-str", lambda t: _capture().assert_emitted("stop", count="1"), ValueError, "count='1'"),
    bad("capture-measurements-str", lambda t: _capture().assert_emitted("stop", measurements="x"), TypeError, "'x'"),
    bad("capture-metadata-list", lambda t: _capture().assert_emitted("stop", metadata=[1]), TypeError, "[1]"),
    bad("capture-expect-and-kwargs", lambda t: _capture().assert_emitted(expect("stop"), measurements={}), TypeError, "expect(...)"),
    bad("capture-assert_call-attribute", lambda t: _capture().assert_call("F", okay=True), TypeError, "'okay'"),
    bad("capture-wait_for-timeout", lambda t: _capture().wait_for("stop", timeout="x"), ValueError, "timeout='x'"),
    bad("capture-wait_for-timeout-negative", lambda t: _capture().wait_for("stop", timeout=-1), ValueError, "timeout=-1"),
    bad("capture-wait_for-count", lambda t: _capture().wait_for("stop", count=0), ValueError, "count=0"),
    bad("capture-ctor-event", lambda t: EventCapture(["nope"], dispatcher=Dispatcher()), ValueError, "'nope'"),
    bad("capture-ctor-empty", lambda t: EventCapture([], dispatcher=Dispatcher()), ValueError, "event_names=[]"),
    bad("capture-ctor-prefix", lambda t: EventCapture(prefix="x"), TypeError, "'x'"),
    bad("capture-ctor-dispatcher", lambda t: EventCapture(dispatcher=1), TypeError, "dispatcher=1"),
    bad("capture-ctor-context", lambda t: EventCapture(dispatcher=Dispatcher(), context="yes"), TypeError, "'yes'"),
    bad("capture-sequence-empty", lambda t: _capture().assert_sequence(), ValueError, "assert_sequence()"),
    # ---- fake client scripts
    bad("fake-respond-latency-negative", lambda t: _fake().respond("F", 1, latency=-1), ValueError, "latency=-1"),
    bad("fake-respond-latency-word", lambda t: _fake().respond("F", 1, latency="soon"), ValueError, "'soon'"),
    bad("fake-respond-usage-str", lambda t: _fake().respond("F", 1, usage="lots"), TypeError, "'lots'"),
    bad("fake-respond-usage-negative", lambda t: _fake().respond("F", 1, usage=(1, -2)), ValueError, "-2"),
    bad("fake-respond-usage-float", lambda t: _fake().respond("F", 1, usage=(1.0, 2)), TypeError, "1.0"),
    bad("fake-respond-usage-key", lambda t: _fake().respond("F", 1, usage={"prompt": 1}), TypeError, "'prompt'"),
    bad(
        "fake-respond-usage-mixed-keys",
        lambda t: _fake().respond("F", 1, usage={1: 2, "x": 3}),
        TypeError,
        "'x'",
    ),
    bad("fake-respond-usage-bool", lambda t: _fake().respond("F", 1, usage=True), TypeError, "usage=True"),
    bad("fake-respond-reusable", lambda t: _fake().respond("F", 1, reusable="yes"), TypeError, "'yes'"),
    bad("fake-respond-model", lambda t: _fake().respond("F", 1, model=4), TypeError, "model=4"),
    bad("fake-respond-function-name", lambda t: _fake().respond("not valid", 1), ValueError, "'not valid'"),
    bad("fake-respond-function-int", lambda t: _fake().respond(3, 1), TypeError, "function_name=3"),
    bad("fake-respond-partials-str", lambda t: _fake().respond("F", 1, partials="abc"), TypeError, "'abc'"),
    bad("fake-respond-chunk-without-partials", lambda t: _fake().respond("F", 1, chunk_latency="1s"), ValueError, "'1s'"),
    bad("fake-respond-after-reusable", lambda t: _after_reusable(), ValueError, "reusable=True"),
    bad("fake-fail-unknown-fault", lambda t: _fake().fail("F", "explode"), ValueError, "'explode'"),
    bad("fake-fail-fault-needs-args", lambda t: _fake().fail("F", "http_error"), TypeError, "status_code"),
    bad("fake-fail-not-an-error", lambda t: _fake().fail("F", 42), TypeError, "error=42"),
    bad("fake-fail-latency-negative", lambda t: _fake().fail("F", "timeout", latency="-2s"), ValueError, "'-2s'"),
    bad("fake-fail-latency-bool", lambda t: _fake().fail("F", "timeout", latency=True), TypeError, "latency=True"),
    bad("fake-fail-reusable", lambda t: _fake().fail("F", "timeout", reusable=1), TypeError, "reusable=1"),
    bad("fake-fail-two-latencies", lambda t: _fake().fail("F", faults.timeout(after="1s"), latency="2s"), ValueError, "'2s'"),
    bad("fake-fail-callable-returns-none", lambda t: _fake_callable_returning(None), TypeError, "returned None"),
    bad("fake-fail-callable-returns-int", lambda t: _fake_callable_returning(42), TypeError, "42"),
    bad("fake-spec-respond-unknown", lambda t: _fake(ResumeClient).respond("ExtractResme", 1), ValueError, "'ExtractResme'"),
    bad("fake-spec-call-unknown", lambda t: _spec_call_unknown(), AttributeError, "'ExtractResme'"),
    bad("fake-spec-wrong-argument", lambda t: _spec_wrong_argument(), TypeError, "'cv'"),
    bad("fake-ctor-emitter", lambda t: FakeBamlClient(emitter="e"), TypeError, "'e'"),
    bad("fake-ctor-clock", lambda t: FakeBamlClient(clock=5), TypeError, "clock=5"),
    bad("fake-ctor-real_sleep", lambda t: FakeBamlClient(real_sleep="yes"), TypeError, "'yes'"),
    bad("fake-ctor-spec", lambda t: FakeBamlClient(spec=5), TypeError, "spec=5"),
    bad("fake-with_options-client", lambda t: _fake().with_options(client=5), TypeError, "client=5"),
    bad("fake-call-baml_options", lambda t: _fake().ExtractResume(baml_options=5), TypeError, "baml_options=5"),
    bad("fake-call-positional-without-spec", lambda t: _fake().ExtractResume("cv"), TypeError, "'cv'"),
    # ---- faults
    bad("fault-http-status-99", lambda t: faults.http_error(99), ValueError, "status_code=99"),
    bad("fault-http-status-600", lambda t: faults.http_error(600), ValueError, "status_code=600"),
    bad("fault-http-status-str", lambda t: faults.http_error("500"), TypeError, "'500'"),
    bad("fault-http-status-bool", lambda t: faults.http_error(True), TypeError, "status_code=True"),
    bad("fault-http-retry_after-negative", lambda t: faults.http_error(500, retry_after=-1), ValueError, "retry_after=-1"),
    bad("fault-http-message-int", lambda t: faults.http_error(500, message=5), TypeError, "message=5"),
    bad("fault-rate_limited-retry_after-word", lambda t: faults.rate_limited(retry_after="later"), ValueError, "'later'"),
    bad("fault-timeout-after-word", lambda t: faults.timeout(after="soon"), ValueError, "'soon'"),
    bad("fault-timeout-message-int", lambda t: faults.timeout(message=5), TypeError, "message=5"),
    bad("fault-validation-raw_output", lambda t: faults.validation_error(raw_output=5), TypeError, "raw_output=5"),
    bad("fault-make-unknown", lambda t: faults.make("boom"), ValueError, "'boom'"),
    bad("fault-make-missing-args", lambda t: faults.make("http_error"), TypeError, "status_code"),
    bad("fault-stream-negative", lambda t: faults.stream_failure(-1), ValueError, "after_partials=-1"),
    bad("fault-stream-disagree", lambda t: faults.stream_failure(2, partials=[1]), ValueError, "after_partials=2"),
    bad("fault-stream-nested", lambda t: faults.stream_failure(1, error=faults.stream_failure(1)), ValueError, "stream_failure(1"),
    # ---- fake LLM server scripts (validated eagerly, before the server starts)
    bad("server-respond-latency-negative", lambda t: FakeLLMServer().respond("x", latency=-1), ValueError, "latency=-1"),
    bad("server-respond-usage-str", lambda t: FakeLLMServer().respond("x", usage="many"), TypeError, "'many'"),
    bad("server-respond-usage-half", lambda t: FakeLLMServer().respond("x", usage=(1, None)), ValueError, "(1, None)"),
    bad("server-respond-usage-negative", lambda t: FakeLLMServer().respond("x", usage=(-1, 2)), ValueError, "-1"),
    bad("server-respond-content-int", lambda t: FakeLLMServer().respond(5), TypeError, "content=5"),
    bad("server-respond-chunks-zero", lambda t: FakeLLMServer().respond("a b", chunks=0), ValueError, "chunks=0"),
    bad("server-respond-model-int", lambda t: FakeLLMServer().respond("x", model=5), TypeError, "model=5"),
    bad("server-fail-status-99", lambda t: FakeLLMServer().fail(99), ValueError, "status_code=99"),
    bad("server-fail-status-str", lambda t: FakeLLMServer().fail("500"), TypeError, "'500'"),
    bad("server-fail-retry_after-negative", lambda t: FakeLLMServer().fail(429, retry_after=-5), ValueError, "retry_after=-5"),
    bad("server-fail-retry_after-word", lambda t: FakeLLMServer().fail(429, retry_after="soon"), ValueError, "'soon'"),
    bad("server-fail-latency-negative", lambda t: FakeLLMServer().fail(500, latency=-1), ValueError, "latency=-1"),
    bad("server-fail-body-int", lambda t: FakeLLMServer().fail(500, body=5), TypeError, "body=5"),
    bad("server-hang-negative", lambda t: FakeLLMServer().hang(-1), ValueError, "-1"),
    bad("server-hang-word", lambda t: FakeLLMServer().hang("forever"), ValueError, "'forever'"),
    bad("server-malformed-valid-json", lambda t: FakeLLMServer().malformed("{}"), ValueError, "'{}'"),
    bad("server-ctor-host", lambda t: FakeLLMServer(host="0.0.0.0"), ValueError, "'0.0.0.0'"),
    bad("server-ctor-port", lambda t: FakeLLMServer(port=70000), ValueError, "port=70000"),
    bad("server-ctor-startup_timeout", lambda t: FakeLLMServer(startup_timeout=0), ValueError, "startup_timeout=0"),
    # ---- modular (httpx / respx) helpers
    bad("modular-error-response-not-error", lambda t: openai_error_response(200), ValueError, "status_code=200"),
    bad("modular-chat-response-content", lambda t: openai_chat_response(5), TypeError, "content=5"),
    # ---- budgets: Budget(...), markers
    bad("budget-unknown-key", lambda t: Budget(p42="1s"), TypeError, "'p42'"),
    bad("budget-no-limit", lambda t: Budget(function="F"), ValueError, "no limit"),
    bad("budget-max_calls-negative", lambda t: Budget(max_calls=-1), ValueError, "max_calls=-1"),
    bad("budget-max_calls-str", lambda t: Budget(max_calls="5"), ValueError, "max_calls='5'"),
    bad("budget-max_calls-float", lambda t: Budget(max_calls=1.5), ValueError, "max_calls=1.5"),
    bad("budget-max_total_tokens-bool", lambda t: Budget(max_total_tokens=True), ValueError, "max_total_tokens=True"),
    bad("budget-p95-word", lambda t: Budget(p95="fast"), ValueError, "p95='fast'"),
    bad("budget-p95-negative", lambda t: Budget(p95=-1), ValueError, "p95=-1"),
    bad("budget-p99-list", lambda t: Budget(p99=[1]), ValueError, "p99=[1]"),
    bad("budget-max_latency-nan", lambda t: Budget(max_latency=float("nan")), ValueError, "max_latency=nan"),
    bad("budget-max_latency-negative-timedelta", lambda t: Budget(max_latency=timedelta(seconds=-1)), ValueError, "max_latency="),
    bad("budget-max_error_rate-high", lambda t: Budget(max_error_rate=1.5), ValueError, "max_error_rate=1.5"),
    bad("budget-max_cost_usd-negative", lambda t: Budget(max_cost_usd=-0.01), ValueError, "max_cost_usd=-0.01"),
    bad("budget-max_cost_usd-str", lambda t: Budget(max_cost_usd="1$"), ValueError, "'1$'"),
    bad("budget-function-int", lambda t: Budget(max_calls=1, function=5), ValueError, "function=5"),
    bad("budget-function-empty", lambda t: Budget(max_calls=1, function=""), ValueError, "function=''"),
    bad("budget-model-list-of-int", lambda t: Budget(max_calls=1, model=[1]), ValueError, "model=[1]"),
    bad("budget-allow_unknown_tokens", lambda t: Budget(max_calls=1, allow_unknown_tokens="yes"), ValueError, "'yes'"),
    bad("budget-marker-positional", lambda t: budget_from_marker(_Marker("1s", max_calls=1)), TypeError, "'1s'"),
    bad("budget-marker-unknown", lambda t: budget_from_marker(_Marker(max_callz=1)), TypeError, "'max_callz'"),
    bad("budget-from_mapping-list", lambda t: Budget.from_mapping([1]), ValueError, "[1]"),
    # ---- budget files
    bad("budgets-file-missing", lambda t: load_budgets(t / "nope.toml"), BudgetConfigError, "nope.toml"),
    bad("budgets-file-directory", lambda t: load_budgets(t), BudgetConfigError, "is not a file"),
    bad("budgets-file-malformed", lambda t: load_budgets(_toml(t, "[[budget]\nmax_calls = 1\n")), BudgetConfigError, "not valid TOML"),
    bad("budgets-file-unknown-key", lambda t: load_budgets(_toml(t, "[[budget]]\nmax_callz = 1\n")), BudgetConfigError, "'max_callz'"),
    bad("budgets-file-negative", lambda t: load_budgets(_toml(t, "[[budget]]\nmax_calls = -1\n")), BudgetConfigError, "max_calls=-1"),
    bad("budgets-file-top-level-key", lambda t: load_budgets(_toml(t, "budgets = 1\n")), BudgetConfigError, "'budgets'"),
    bad("budgets-file-empty", lambda t: load_budgets(_toml(t, "")), BudgetConfigError, "no [[budget]]"),
    bad("budgets-file-single-table", lambda t: load_budgets(_toml(t, "[budget]\nmax_calls = 1\n")), BudgetConfigError, "'budget' is a dict"),
    bad("budgets-file-not-tables", lambda t: load_budgets(_toml(t, "budget = [1, 2]\n")), BudgetConfigError, "budget 1"),
    bad("budgets-file-duration-word", lambda t: load_budgets(_toml(t, "[[budget]]\np95 = 'quick'\n")), BudgetConfigError, "'quick'"),
    bad("budgets-file-toml-time", lambda t: load_budgets(_toml(t, "[[budget]]\np95 = 00:00:01\n")), BudgetConfigError, repr(dtime(0, 0, 1))),
    bad("budgets-file-no-limit", lambda t: load_budgets(_toml(t, "[[budget]]\nfunction = 'F'\n")), BudgetConfigError, "#1"),
    bad("budgets-file-not-utf8", lambda t: load_budgets(_toml(t, b"\xff\xfe[[budget]]\n")), BudgetConfigError, "config.toml"),
    # ---- price files and tables
    bad("prices-file-malformed", lambda t: load_prices(_toml(t, '[models."gpt"\ninput_per_mtok = 1\n')), BudgetConfigError, "not valid TOML"),
    bad("prices-file-unknown-key", lambda t: load_prices(_toml(t, '[models."gpt"]\n' + GOOD_PRICE + "bogus = 3\n")), BudgetConfigError, "'bogus'"),
    bad("prices-file-negative", lambda t: load_prices(_toml(t, '[models."gpt"]\ninput_per_mtok = -1\noutput_per_mtok = 2\n')), BudgetConfigError, "input_per_mtok = -1"),
    bad("prices-file-missing-key", lambda t: load_prices(_toml(t, '[models."gpt"]\ninput_per_mtok = 1\n')), BudgetConfigError, "'output_per_mtok'"),
    bad("prices-file-str-price", lambda t: load_prices(_toml(t, '[models."gpt"]\ninput_per_mtok = "1"\noutput_per_mtok = 2\n')), BudgetConfigError, "'1'"),
    bad("prices-file-bool-price", lambda t: load_prices(_toml(t, '[models."gpt"]\ninput_per_mtok = true\noutput_per_mtok = 2\n')), BudgetConfigError, "True"),
    bad("prices-file-cached-negative", lambda t: load_prices(_toml(t, '[models."gpt"]\n' + GOOD_PRICE + "cached_input_per_mtok = -0.5\n")), BudgetConfigError, "-0.5"),
    bad("prices-file-top-level-key", lambda t: load_prices(_toml(t, "[prices]\nx = 1\n")), BudgetConfigError, "'prices'"),
    bad("prices-file-model-not-table", lambda t: load_prices(_toml(t, "[models]\ngpt = 1\n")), BudgetConfigError, '"gpt"'),
    bad("prices-file-no-models", lambda t: load_prices(_toml(t, "models = {}\n")), BudgetConfigError, "no models"),
    bad("prices-file-missing", lambda t: load_prices(t / "prices.toml"), BudgetConfigError, "prices.toml"),
    bad("prices-table-nan", lambda t: PriceTable({"m": {"input_per_mtok": float("nan"), "output_per_mtok": 1}}), BudgetConfigError, "nan"),
    bad("prices-table-empty-model", lambda t: PriceTable({"": {"input_per_mtok": 1, "output_per_mtok": 1}}), BudgetConfigError, "''"),
    # ---- aggregator and percentiles
    bad("aggregator-duration-negative", lambda t: Aggregator().record("F", None, -5), ValueError, "duration_ns=-5"),
    bad("aggregator-duration-float", lambda t: Aggregator().record("F", None, 1.5), TypeError, "1.5"),
    bad("aggregator-tokens-str", lambda t: Aggregator().record("F", None, 5, True, "3", 1), TypeError, "'3'"),
    bad("aggregator-function-empty", lambda t: Aggregator().record("", None, 5), TypeError, "''"),
    bad("aggregator-worst_n", lambda t: Aggregator(worst_n=-1), ValueError, "worst_n=-1"),
    bad("aggregator-event-measurements-none", lambda t: Aggregator().record_event(pbt.CALL_STOP, None, {}), TypeError, "measurements=None"),
    bad("aggregator-event-metadata-none", lambda t: Aggregator().record_event(pbt.CALL_STOP, {"duration": 1}, None), TypeError, "metadata=None"),
    bad("aggregator-event-name-int", lambda t: Aggregator().record_event(5, {}, {}), TypeError, "event_name=5"),
    bad("aggregator-event-no-duration", lambda t: Aggregator().record_event(pbt.CALL_STOP, {}, {"function_name": "F"}), ValueError, "'duration'"),
    bad("aggregator-payload", lambda t: Aggregator.from_payload({"format": "nope"}), ValueError, "'nope'"),
    bad("percentile-out-of-range", lambda t: percentile([1], 101), ValueError, "p=101"),
    bad("report-source", lambda t: build_report("x"), TypeError, "'x'"),
    # ---- durations
    bad("duration-negative", lambda t: parse_duration_ns(-1), ValueError, "-1"),
    bad("duration-unknown-unit", lambda t: parse_duration_ns("5 parsecs"), ValueError, "'5 parsecs'"),
    bad("duration-negative-str", lambda t: parse_duration_ns("-5s"), ValueError, "'-5s'"),
    bad("duration-list", lambda t: parse_duration_ns([1]), TypeError, "[1]"),
    bad("duration-bool", lambda t: parse_duration_ns(True), TypeError, "True"),
    bad("duration-inf", lambda t: parse_duration_ns(float("inf")), ValueError, "inf"),
    bad("duration-none", lambda t: parse_duration_ns(None), TypeError, "None"),
    bad("duration-negative-timedelta", lambda t: parse_duration_ns(timedelta(seconds=-1)), ValueError, "timedelta"),
    bad("duration-named", lambda t: parse_duration_ns("soon", name="latency"), ValueError, "latency='soon'"),
    bad("virtual-clock-advance", lambda t: VirtualClock().advance("soon"), ValueError, "'soon'"),
    bad("virtual-clock-start", lambda t: VirtualClock(start_time=-1), ValueError, "start_time=-1"),
    bad(
        "virtual-clock-real_sleep-str",
        lambda t: VirtualClock(real_sleep="no"),
        TypeError,
        "'no'",
    ),
    # ---- metric definitions and reporters
    bad("metric-name-empty", lambda t: metrics.counter(""), ValueError, "''"),
    bad("metric-name-double-dot", lambda t: metrics.sum("a..b"), ValueError, "'a..b'"),
    bad("metric-name-int", lambda t: metrics.sum(5), TypeError, "5"),
    bad("metric-name-one-segment", lambda t: metrics.sum("duration"), ValueError, "'duration'"),
    bad("metric-name-int-segment", lambda t: metrics.counter(["a", 1]), TypeError, "['a', 1]"),
    bad("metric-unit-unknown", lambda t: metrics.summary("a.b.c", unit=("native", "fortnight")), ValueError, "'fortnight'"),
    bad("metric-unit-mixed", lambda t: metrics.summary("a.b.c", unit=("native", "byte")), ValueError, "('native', 'byte')"),
    bad("metric-unit-int", lambda t: metrics.summary("a.b.c", unit=5), TypeError, "unit=5"),
    bad("metric-unit-empty", lambda t: metrics.counter("a.b.c", unit=""), ValueError, "unit=''"),
    bad("metric-keep-and-drop", lambda t: metrics.counter("a.b.c", keep=bool, drop=bool), ValueError, "keep="),
    bad("metric-keep-not-callable", lambda t: metrics.counter("a.b.c", keep=True), TypeError, "keep=True"),
    bad("metric-buckets-empty", lambda t: metrics.distribution("a.b.c", reporter_options={"buckets": []}), ValueError, "[]"),
    bad("metric-buckets-decreasing", lambda t: metrics.distribution("a.b.c", reporter_options={"buckets": [3, 1]}), ValueError, "[3, 1]"),
    bad("metric-buckets-str", lambda t: metrics.distribution("a.b.c", reporter_options={"buckets": "1,2"}), TypeError, "'1,2'"),
    bad("metric-buckets-nan", lambda t: metrics.distribution("a.b.c", reporter_options={"buckets": [1, float("nan")]}), ValueError, "nan"),
    bad("metric-buckets-str-item", lambda t: metrics.distribution("a.b.c", reporter_options={"buckets": [1, "2"]}), TypeError, "'2'"),
    bad("metric-tags-str", lambda t: metrics.counter("a.b.c", tags="function_name"), TypeError, "'function_name'"),
    bad("metric-tags-duplicate", lambda t: metrics.counter("a.b.c", tags=["model", "model"]), ValueError, "'model'"),
    bad("metric-tag_values", lambda t: metrics.counter("a.b.c", tag_values=5), TypeError, "tag_values=5"),
    bad("metric-reporter_options-list", lambda t: metrics.counter("a.b.c", reporter_options=[1]), TypeError, "[1]"),
    bad("metric-event_name-empty", lambda t: metrics.counter("a.b.c", event_name=""), ValueError, "''"),
    bad("metric-measurement-list", lambda t: metrics.sum("a.b.c", measurement=[1]), TypeError, "[1]"),
    bad("reporter-metrics-str", lambda t: metrics.InMemoryReporter("x"), TypeError, "'x'"),
    bad("reporter-metrics-member", lambda t: metrics.InMemoryReporter([1]), TypeError, "1"),
    bad(
        "reporter-duplicate-names",
        lambda t: metrics.InMemoryReporter([metrics.counter("a.b.c"), metrics.sum("a.b.c")]),
        ValueError,
        "'a.b.c'",
    ),
    bad("reporter-value-unknown", lambda t: metrics.InMemoryReporter([metrics.counter("a.b.c")]).value("x.y"), UnknownMetricError, "'x.y'"),
    # ---- trackers and instrument()
    bad("tracker-latency-max_samples", lambda t: LatencyTracker(max_samples=0), ValueError, "max_samples=0"),
    bad("tracker-slow-threshold", lambda t: SlowCallTracker(threshold="soon"), ValueError, "'soon'"),
    bad("tracker-cost-prices", lambda t: CostTracker(prices="x"), TypeError, "'x'"),
    bad("tracker-logging-level", lambda t: LoggingHandler(level="LOUD"), ValueError, "'LOUD'"),
    bad("tracker-prefix", lambda t: LatencyTracker(prefix="x"), TypeError, "'x'"),
    bad("instrument-module", lambda t: instrument(re), TypeError, "module 're'"),
    bad("instrument-object", lambda t: instrument(object()), TypeError, "is not a generated baml-py client"),
    bad("instrument-a-fake", lambda t: instrument(_fake()), TypeError, "FakeBamlClient"),
    bad("instrument-emitter", lambda t: instrument(GeneratedLikeClient(), emitter="e"), TypeError, "emitter='e'"),
    bad("instrument-action", lambda t: instrument(GeneratedLikeClient(), action=5), TypeError, "action=5"),
    bad(
        "package-instrument-is-the-function",
        lambda t: pbt.instrument(object()),
        TypeError,
        "is not a generated baml-py client",
    ),
    # ---- numbers beyond every range: a ValueError naming the key and the value, never OverflowError
    bad("duration-1e300", lambda t: parse_duration_ns(1e300), ValueError, "1e+300"),
    bad("duration-huge-str", lambda t: parse_duration_ns("9" * 30 + "s"), ValueError, "999999"),
    bad("duration-huge-int", lambda t: parse_duration_ns(10**400), ValueError, "digits"),
    bad("duration-inf", lambda t: parse_duration_ns(float("inf")), ValueError, "inf"),
    bad("virtual-clock-advance-1e300", lambda t: VirtualClock().advance(1e300), ValueError, "1e+300"),
    bad("fake-respond-latency-1e300", lambda t: _fake().respond("F", 1, latency=1e300), ValueError, "1e+300"),
    bad("fault-timeout-after-1e300", lambda t: faults.timeout(after=1e300), ValueError, "1e+300"),
    bad("server-respond-latency-10**30", lambda t: FakeLLMServer().respond("x", latency=10**30), ValueError, "latency"),
    bad("server-hang-1e300", lambda t: FakeLLMServer().hang(1e300), ValueError, "1e+300"),
    bad("server-fail-body-not-utf8", lambda t: FakeLLMServer().fail(500, body=b"\xff"), ValueError, "body"),
    bad("tracker-slow-threshold-1e300", lambda t: SlowCallTracker(threshold=1e300), ValueError, "1e+300"),
    bad("budget-p95-10**400", lambda t: Budget(p95=10**400), ValueError, "p95"),
    bad("budget-cost-10**400", lambda t: Budget(max_cost_usd=10**400), ValueError, "max_cost_usd"),
    bad("budget-error-rate-10**400", lambda t: Budget(max_error_rate=10**400), ValueError, "max_error_rate"),
    bad(
        "price-infinite-cost",
        lambda t: PriceTable.from_mapping({"models": {"gpt-4o": {"input_per_mtok": 1e308, "output_per_mtok": 1.0}}}),
        ValueError,
        "input_per_mtok",
    ),
    bad("strategy-max-duration-1e300", lambda t: _strategies().stop_events(max_duration=1e300), ValueError, "1e+300"),
    # ---- refused where they are passed
    bad("metric-tags-not-str", lambda t: metrics.counter("ash_baml.call.stop.duration", tags=[1]), TypeError, "tag 1"),
    bad("fake-script-stream", lambda t: _fake().respond("stream", 1), ValueError, "'stream'"),
    bad("fake-script-with_options", lambda t: _fake().respond("with_options", 1), ValueError, "'with_options'"),
    bad("fake-script-respond", lambda t: _fake().fail("respond", faults.timeout()), ValueError, "'respond'"),
    bad("fake-script-dunder", lambda t: _fake().respond("__call__", 1), ValueError, "'__call__'"),
    bad("fake-with_options-collector", lambda t: _fake().with_options(collector=5), TypeError, "collector=5"),
    bad("fake-with_options-registry", lambda t: _fake().with_options(client_registry="x"), TypeError, "'x'"),
    # ---- issue 12/13 arguments
    bad("fake-failed-attempts-int", lambda t: _fake().respond("F", 1, failed_attempts=5), TypeError, "failed_attempts=5"),
    bad("fake-failed-attempts-item", lambda t: _fake().respond("F", 1, failed_attempts=[3]), TypeError, "failed_attempts[0]=3"),
    bad("fake-model-int", lambda t: FakeBamlClient(model=3), TypeError, "model=3"),
    bad("server-usage-chunk-str", lambda t: FakeLLMServer().respond("x", usage_chunk="yes"), TypeError, "usage_chunk='yes'"),
    bad("fault-timeout-kind", lambda t: faults.timeout(after="1s", kind="later"), ValueError, "'later'"),
    bad("fault-attempts-none", lambda t: faults.attempts(), TypeError, "got 0"),
]


def _strategies() -> Any:
    from pytest_baml_telemetry import strategies

    return strategies


def test_the_catalogue_is_large() -> None:
    assert len(CASES) >= 60


@pytest.mark.parametrize(("call", "exc", "names"), CASES)
def test_bad_input_is_refused_naming_the_value(
    call: Callable[[Path], Any], exc: type[BaseException], names: str, tmp_path: Path
) -> None:
    with pytest.raises(BaseException) as info:
        call(tmp_path)
    error = info.value
    message = str(error)
    assert isinstance(error, exc), f"expected {exc}, got {type(error).__name__}: {message}"
    assert names in message, f"the message does not name {names!r}: {message}"
    assert not INTERNAL.search(message), f"a bare Python internal error: {message}"
    assert len(message) > len(names) + 10, f"the message only echoes the value: {message}"


# --------------------------------------------------------------------------- pytester

INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

OK_TEST = "def test_ok():\n    pass\n"


def _no_internal_error(result: pytest.RunResult) -> str:
    out = result.stdout.str() + "\n" + result.stderr.str()
    assert "INTERNALERROR" not in out, out
    assert result.ret != pytest.ExitCode.INTERNAL_ERROR, out
    return out


# (id, files, command-line arguments, words the error must name)
OPTION_CASES = [
    pytest.param({}, ["--baml-budgets=missing.toml"], ["missing.toml", "does not exist"], id="budgets-missing"),
    pytest.param(
        {"budgets.toml": "[[budget]\nmax_calls = 1\n"}, ["--baml-budgets=budgets.toml"], ["budgets.toml", "not valid TOML"],
        id="budgets-malformed",
    ),
    pytest.param(
        {"budgets.toml": "[[budget]]\nmax_callz = 1\n"}, ["--baml-budgets=budgets.toml"], ["'max_callz'"],
        id="budgets-unknown-key",
    ),
    pytest.param(
        {"budgets.toml": "[[budget]]\np95 = 'fast'\n"}, ["--baml-budgets=budgets.toml"], ["p95='fast'"],
        id="budgets-bad-duration",
    ),
    pytest.param({"sub/x.txt": ""}, ["--baml-budgets=sub"], ["sub", "is not a file"], id="budgets-directory"),
    pytest.param(
        {"prices.toml": '[models."gpt"\ninput_per_mtok = 1\n'}, ["--baml-prices=prices.toml"], ["prices.toml", "not valid TOML"],
        id="prices-malformed",
    ),
    pytest.param(
        {"prices.toml": '[models."gpt"]\ninput_per_mtok = -1\noutput_per_mtok = 2\n'}, ["--baml-prices=prices.toml"],
        ["input_per_mtok = -1"],
        id="prices-negative",
    ),
    pytest.param(
        {"prices.toml": '[models."gpt"]\ninput_per_mtok = 1\n'}, ["--baml-prices=prices.toml"], ["'output_per_mtok'"],
        id="prices-missing-key",
    ),
    pytest.param({}, ["--baml-prices=nope.toml"], ["nope.toml"], id="prices-missing"),
    pytest.param({}, ["--baml-report-json=nodir/report.json"], ["nodir"], id="report-json-missing-dir"),
    pytest.param(
        {"afile": "x"}, ["--baml-report-json=afile/report.json"], ["afile"], id="report-json-under-a-file"
    ),
    pytest.param(
        {"out/keep.txt": ""},
        ["--baml-report-json=out"],
        ["out"],
        id="report-json-is-a-directory",
    ),
    pytest.param(
        {"budgets.toml": "[[budget]]\np95 = 1e300\n"}, ["--baml-budgets=budgets.toml"], ["budgets.toml", "p95=1e+300"],
        id="budgets-p95-1e300",
    ),
    pytest.param(
        {"budgets.toml": "[[budget]]\nmax_cost_usd = 1e400\n"}, ["--baml-budgets=budgets.toml"], ["max_cost_usd=inf"],
        id="budgets-cost-inf",
    ),
    pytest.param(
        {"prices.toml": '[models."gpt"]\ninput_per_mtok = inf\noutput_per_mtok = 2\n'}, ["--baml-prices=prices.toml"],
        ["prices.toml", "input_per_mtok = inf"],
        id="prices-infinite",
    ),
    pytest.param(
        {"budgets.toml": "[[budget]]\nmax_calls = 1\n"},
        ["--baml-budgets=budgets.toml", "--baml-report-json=budgets.toml"],
        ["budgets.toml"],
        id="report-json-is-the-budgets-file",
    ),
]


@pytest.mark.parametrize(("files", "args", "words"), OPTION_CASES)
def test_bad_option_is_a_usage_error(
    pytester: pytest.Pytester, files: dict[str, str], args: list[str], words: list[str]
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_ok=OK_TEST)
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    result = pytester.runpytest(*args)
    out = _no_internal_error(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    for word in words:
        assert word in out, f"{word!r} not named in:\n{out}"


@pytest.mark.parametrize(
    ("ini_line", "words"),
    [
        pytest.param("baml_budgets = missing.toml", ["missing.toml"], id="ini-budgets-missing"),
        pytest.param("baml_prices = missing.toml", ["missing.toml"], id="ini-prices-missing"),
        pytest.param("baml_report_json = nodir/r.json", ["nodir"], id="ini-report-json-missing-dir"),
        pytest.param("baml_report = maybe", ["'maybe'"], id="ini-report-not-bool"),
    ],
)
def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester, ini_line: str, words: list[str]) -> None:
    pytester.makeini(INI + ini_line + "\n")
    pytester.makepyfile(test_ok=OK_TEST)
    result = pytester.runpytest()
    out = _no_internal_error(result)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, out
    for word in words:
        assert word in out, f"{word!r} not named in:\n{out}"


# (test source, outcome, words the report must name)
IN_TEST_CASES = [
    pytest.param(
        "@pytest.mark.baml_budget(p95=10**400)\ndef test_it():\n    pass\n", "failed", ["baml_budget", "p95="],
        id="budget-marker-p95-10**400",
    ),
    pytest.param(
        "pytestmark = pytest.mark.baml_events(validate='no')\n\n"
        "@pytest.mark.baml_events(validate=True)\ndef test_it(baml_events):\n    pass\n",
        "errors",
        ["validate='no'"],
        id="events-marker-bad-option-hidden-by-a-closer-one",
    ),
    pytest.param(
        "@pytest.mark.baml_budget(max_callz=1)\ndef test_it():\n    pass\n", "failed", ["'max_callz'"],
        id="budget-marker-unknown-key",
    ),
    pytest.param(
        "@pytest.mark.baml_budget('1s')\ndef test_it():\n    pass\n", "failed", ["'1s'"], id="budget-marker-positional"
    ),
    pytest.param(
        "@pytest.mark.baml_budget(p95='fast')\ndef test_it():\n    pass\n", "failed", ["p95='fast'"],
        id="budget-marker-bad-duration",
    ),
    pytest.param(
        "@pytest.mark.baml_budget(max_calls=-1)\ndef test_it():\n    pass\n", "failed", ["max_calls=-1"],
        id="budget-marker-negative",
    ),
    pytest.param(
        "@pytest.mark.baml_budget(max_calls=1, function=5)\ndef test_it():\n    pass\n", "failed", ["function=5"],
        id="budget-marker-bad-filter",
    ),
    pytest.param(
        "@pytest.mark.baml_budget()\ndef test_it():\n    pass\n", "failed", ["no limit"], id="budget-marker-empty"
    ),
    pytest.param(
        "@pytest.mark.baml_events(colour=True)\ndef test_it(baml_events):\n    pass\n", "errors", ["colour"],
        id="events-marker-unknown-option",
    ),
    pytest.param(
        "@pytest.mark.baml_events(validate='yes')\ndef test_it(baml_events):\n    pass\n", "errors", ["'yes'"],
        id="events-marker-not-bool",
    ),
    pytest.param(
        "@pytest.mark.baml_events('strict')\ndef test_it(baml_events):\n    pass\n", "errors", ["'strict'"],
        id="events-marker-positional",
    ),
    pytest.param(
        "@pytest.mark.baml_fake(strict=True)\ndef test_it(baml_fake):\n    pass\n", "errors", ["strict"],
        id="fake-marker-unknown-option",
    ),
    pytest.param(
        "@pytest.mark.baml_fake(assert_all_used='no')\ndef test_it(baml_fake):\n    pass\n", "errors", ["'no'"],
        id="fake-marker-not-bool",
    ),
    pytest.param(
        "@pytest.mark.baml_fake(real_sleep=1)\ndef test_it(baml_clock):\n    pass\n", "errors", ["real_sleep=1"],
        id="fake-marker-real_sleep-not-bool",
    ),
    pytest.param(
        "pytestmark = pytest.mark.baml_budget(p99='soon')\n\ndef test_it():\n    pass\n", "failed", ["p99='soon'"],
        id="budget-module-marker",
    ),
    pytest.param(
        "def test_it(baml_fake):\n    baml_fake.respond('ExtractResume', {}, latency='soon')\n", "failed", ["'soon'"],
        id="fake-script-bad-latency",
    ),
    pytest.param(
        "from pytest_baml_telemetry.fake import faults\n\n"
        "def test_it(baml_fake):\n    baml_fake.fail('ExtractResume', faults.http_error(600))\n",
        "failed",
        ["status_code=600"],
        id="fake-script-bad-status",
    ),
    pytest.param(
        "def test_it(baml_fake):\n    baml_fake.fail('ExtractResume', 'explode')\n", "failed", ["'explode'"],
        id="fake-script-unknown-fault",
    ),
    pytest.param(
        "def test_it(baml_fake):\n    baml_fake.respond('ExtractResume', {}, usage=(1, 'many'))\n", "failed", ["'many'"],
        id="fake-script-bad-usage",
    ),
    pytest.param(
        "def test_it(baml_capture):\n    baml_capture(['nope'])\n", "failed", ["'nope'"], id="capture-factory-bad-event"
    ),
    pytest.param(
        "def test_it(baml_events):\n    baml_events.assert_emitted('stop', count=-1)\n", "failed", ["count=-1"],
        id="capture-bad-count",
    ),
    pytest.param(
        "def test_it(baml_metrics):\n    baml_metrics(['not a metric'])\n", "failed", ["'not a metric'"],
        id="metrics-factory-bad-definition",
    ),
    pytest.param(
        "@pytest.mark.baml_events(colour=True)\ndef test_it():\n    pass\n",
        "errors",
        ["colour"],
        id="events-marker-unknown-option-without-fixture",
    ),
    pytest.param(
        "@pytest.mark.baml_fake(assert_all_usd=False)\ndef test_it():\n    pass\n",
        "errors",
        ["assert_all_usd"],
        id="fake-marker-unknown-option-without-fixture",
    ),
]


@pytest.mark.parametrize(("source", "outcome", "words"), IN_TEST_CASES)
def test_bad_marker_or_script_fails_the_test_not_the_session(
    pytester: pytest.Pytester, source: str, outcome: str, words: list[str]
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_user="import pytest\n\n" + source)
    result = pytester.runpytest("--strict-markers")
    out = _no_internal_error(result)
    counts = {"passed": 0, "failed": 0, "errors": 0}
    counts[outcome] = 1
    result.assert_outcomes(**counts)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    for word in words:
        assert word in out, f"{word!r} not named in:\n{out}"
