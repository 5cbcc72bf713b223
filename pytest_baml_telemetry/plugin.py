"""pytest wiring: options, markers, hooks and fixtures. Behaviour lives in the other modules.

The run's state is a :class:`~pytest_baml_telemetry.session.TelemetrySession` (made only
when an option or a ``baml_budget`` marker needs it); marker help and option merging are
in :mod:`~pytest_baml_telemetry.markers`. Importing this module stays cheap: everything
else is imported where it is used.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .capture import EventCapture
    from .clock import VirtualClock
    from .session import TelemetrySession, TestBudgets
from .markers import EVENTS_DEFAULTS as _EVENTS_DEFAULTS
from .markers import FAKE_DEFAULTS as _FAKE_DEFAULTS
from .markers import LLM_SERVER_DEFAULTS as _LLM_SERVER_DEFAULTS
from .markers import MARKERS, cassette_marker_options, merge_marker_options

__all__ = ["MARKERS", "marker_options"]

_EVENTS_KEY = pytest.StashKey["tuple[Any, dict[str, Any]]"]()
_SESSION_KEY = pytest.StashKey["TelemetrySession"]()


def marker_options(node: pytest.Item, name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the keyword options of every ``name`` marker on ``node``, closest scope winning.

    Unknown options and positional arguments raise ``TypeError`` naming them.
    """
    return merge_marker_options(node.iter_markers(name), name, defaults)


_OPTIONS = (
    # (option, ini key, help)
    ("--baml-report", "baml_report", "show the BAML telemetry report (calls, latency, tokens, cost, budgets)"),
    ("--baml-report-json", "baml_report_json", "write the BAML telemetry report as JSON to PATH"),
    ("--baml-report-html", "baml_report_html", "write the BAML telemetry report as one self-contained HTML file to PATH"),
    ("--baml-budgets", "baml_budgets", "TOML file of session budgets ([[budget]] tables)"),
    (
        "--baml-prices",
        "baml_prices",
        'price sources, comma-separated, later ones winning: genai-prices and/or TOML files '
        '([models."<model>"] with input_per_mtok, ...)',
    ),
    ("--baml-block-network", "baml_block_network", "block every BAML request to a host that is not loopback for the whole run"),
    ("--baml-compare", "baml_compare", "compare with an earlier --baml-report-json report (a baseline) at PATH"),
    (
        "--baml-compare-fail",
        "baml_compare_fail",
        "SPEC: fail on regressions from the baseline beyond tolerances, KEY:N%% or KEY:VALUE, comma-separated "
        "(p95:10%%,cost:5%%,p99:50ms)",
    ),
)


_ALIASES = ("baml_telemetry", __name__)
"""The names this plugin is loaded under: its entry point and its module (``-p``, ``pytest_plugins``)."""


def pytest_plugin_registered(plugin: Any, plugin_name: str, manager: pytest.PytestPluginManager) -> None:
    """Once registered, block this plugin's other name, so loading it twice (the entry point
    and ``-p pytest_baml_telemetry.plugin`` or ``pytest_plugins = [...]``) loads it once."""
    if plugin is sys.modules[__name__]:
        for alias in _ALIASES:
            if alias != plugin_name and manager.get_plugin(alias) is None and not manager.is_blocked(alias):
                manager.set_blocked(alias)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("baml-telemetry", "BAML telemetry")
    for option, ini, text in _OPTIONS:
        if option in ("--baml-report", "--baml-block-network"):
            group.addoption(option, action="store_true", default=None, help=text)
            parser.addini(ini, f"{text} (bool)", type="bool", default=False)
        else:
            spec = option == "--baml-compare-fail"
            group.addoption(option, metavar="SPEC" if spec else "PATH", default=None, help=text)
            ini_text = text.replace("%%", "%")  # argparse formats option help with %; ini help is shown as is
            parser.addini(ini, ini_text if spec else f"{ini_text} (path, relative to the ini file)", default="")
    _add_cassette_options(group, parser)


_RECORD_MODES = ("none", "once", "new_episodes", "all")
_STARTED = time.time()
"""When this process loaded the plugin: in ``all`` mode a cassette written since is added to (shared cassettes)."""


def _add_cassette_options(group: Any, parser: pytest.Parser) -> None:
    """``--baml-record-mode`` / ini ``baml_record_mode``: how ``@pytest.mark.baml_cassette`` records."""
    text = (
        "how baml_cassette cassettes record: none (replay only, the default: an unmatched request fails), "
        "once (record a missing cassette), new_episodes (record what does not match), all (re-record)"
    )
    group.addoption("--baml-record-mode", dest="baml_record_mode", choices=_RECORD_MODES, default=None, help=text)
    parser.addini("baml_record_mode", text, default="none")


def _record_mode(config: pytest.Config) -> str:
    """The record mode of this run (the command line, else the ini key); ``UsageError`` for a bad ini value."""
    value = config.getoption("baml_record_mode", None) or config.getini("baml_record_mode") or "none"
    if value not in _RECORD_MODES:
        raise pytest.UsageError(f"ini baml_record_mode={value!r}: expected one of {', '.join(_RECORD_MODES)}")
    return str(value)


def _option(config: pytest.Config, option: str, ini: str) -> tuple[Any, Path]:
    """The command-line value (relative to the invocation dir) or the ini value (relative to the ini file)."""
    value = config.getoption(ini)
    if value is not None:
        return value, Path(config.invocation_params.dir)
    root = config.inipath.parent if config.inipath else config.rootpath
    return config.getini(ini), root


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")
    block_network, _ = _option(config, "--baml-block-network", "baml_block_network")
    config.pluginmanager.register(_GuardHooks(whole_run=bool(block_network)), "baml_telemetry_guard")
    report, _ = _option(config, "--baml-report", "baml_report")
    report_json, json_root = _option(config, "--baml-report-json", "baml_report_json")
    report_html, html_root = _option(config, "--baml-report-html", "baml_report_html")
    budgets, budgets_root = _option(config, "--baml-budgets", "baml_budgets")
    prices, prices_root = _option(config, "--baml-prices", "baml_prices")
    compare, compare_root = _option(config, "--baml-compare", "baml_compare")
    compare_fail, _ = _option(config, "--baml-compare-fail", "baml_compare_fail")
    if not (report or report_json or report_html or budgets or prices or compare or compare_fail):
        return  # nothing to record: the session state is made on first use (a baml_budget marker)
    from .budgets.config import BudgetConfigError
    from .session import TelemetrySession

    try:
        session = TelemetrySession.from_options(
            report=bool(report),
            report_json=str(json_root / report_json) if report_json else None,
            report_html=str(html_root / report_html) if report_html else None,
            budgets_path=str(budgets_root / budgets) if budgets else None,
            prices=prices or None,
            prices_root=prices_root,
            root=Path.cwd(),
            is_worker=hasattr(config, "workerinput"),
            compare=str(compare_root / compare) if compare else None,
            compare_fail=compare_fail or None,
            args=list(config.invocation_params.args),
        )
    except BudgetConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    session.start()
    config.stash[_SESSION_KEY] = session
    if session.recording:
        config.pluginmanager.register(_RecordingHooks(session), "baml_telemetry_recording")


def _session(config: pytest.Config) -> TelemetrySession:
    """The run's :class:`~pytest_baml_telemetry.session.TelemetrySession`, made on first use."""
    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        from .session import TelemetrySession

        session = TelemetrySession(is_worker=hasattr(config, "workerinput"))
        config.stash[_SESSION_KEY] = session
    return session


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION_KEY, None)
    if session is not None:
        session.stop()
        if session.write_error is not None and not session.is_worker:
            # after pytest's summary line: the last thing the user reads
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                reporter.write_line(f"ERROR: {session.write_error}", red=True, bold=True)
            else:
                print(f"ERROR: {session.write_error}", file=sys.stderr)


_GUARDED_FIXTURES = frozenset({"baml_fake", "baml_llm_server", "baml_llm_server_session"})


class _GuardHooks:
    """The network guard (:mod:`~pytest_baml_telemetry.guard`) around each test: engaged for a
    test that uses the plugin's fakes (or calls ``route``), for every test with
    ``--baml-block-network``; ``@pytest.mark.baml_allow_network`` lets a test through. What
    it refused during a test fails that test at teardown."""

    def __init__(self, *, whole_run: bool) -> None:
        self.whole_run = whole_run
        self.outside: list[Any] = []  # refused outside any test (collection, late teardowns)
        self._guard: Any = None  # the guard module, imported at the first test (every setup and teardown use it)
        if whole_run:  # before any test (and collection) sends its first request
            from .guard import get_guard

            get_guard().engage()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Requests refused outside any test fail the run (a green run never hides one)."""
        from . import guard

        self.outside.extend(guard.get_guard().take_blocked() if guard.guard_made() else [])
        if self.outside and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.outside:
            from .guard import blocked_report

            terminalreporter.section("BAML network guard", red=True, bold=True)
            terminalreporter.write_line("outside any test (collection, or a fixture torn down after its last test):", red=True)
            terminalreporter.write_line(blocked_report(self.outside), red=True)

    def pytest_unconfigure(self) -> None:
        if self.whole_run:  # the proxy thread is a daemon: it ends with the process
            from .guard import get_guard

            get_guard().release()

    def _guard_module(self) -> Any:
        if self._guard is None:
            from . import guard

            self._guard = guard
        return self._guard

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        guard = self._guard or self._guard_module()
        allowed = item.get_closest_marker("baml_allow_network") is not None
        refused = guard.set_test_scope(item.nodeid, allowed=allowed)
        if refused:
            self.outside.extend(refused)
        if self.whole_run:
            guard.get_guard().set_blocking(not allowed)
        elif not allowed and not _GUARDED_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            guard.engage_for_test()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: Any) -> Iterator[None]:
        guard = self._guard or self._guard_module()
        try:
            result = yield
        finally:
            blocked = guard.end_test_scope()
            if self.whole_run:
                guard.get_guard().set_blocking(True)
        if blocked:
            pytest.fail(guard.blocked_report(blocked), pytrace=False)
        return result


def _mark_xfailed(config: pytest.Config, report: pytest.TestReport) -> None:
    """A test that failed as expected (xfail): its broken budgets are expected failures."""
    if report.skipped and hasattr(report, "wasxfail"):
        state = config.stash.get(_SESSION_KEY, None)
        if state is not None:
            state.mark_xfailed(report.nodeid)


class _RecordingHooks:
    """Registered only when the session records calls: labels calls with the running test."""

    def __init__(self, session: Any) -> None:
        self.session = session

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: Any) -> Iterator[Any]:
        self.session.set_test(item.nodeid)
        try:
            return (yield)
        finally:
            self.session.set_test(None)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.skipped and hasattr(report, "wasxfail"):
            self.session.mark_xfailed(report.nodeid)


_FIXTURES = frozenset({"baml_events", "baml_fake", "baml_llm_server", "baml_llm_server_session"})
_MARKERS = ("baml_budget", "baml_events", "baml_fake", "baml_llm_server", "baml_cassette")
_CHECKED_MARKERS = (
    ("baml_events", _EVENTS_DEFAULTS),
    ("baml_fake", _FAKE_DEFAULTS),
    ("baml_llm_server", _LLM_SERVER_DEFAULTS),
)


_MARKER_NAMES = frozenset(_MARKERS)


def _uses_plugin(item: pytest.Item) -> bool:
    """Whether ``item`` requests one of the plugin's fixtures or carries one of its markers, on
    itself or on a parent (class, module, package: ``pytestmark``, or added by a hook)."""
    return _any_uses_plugin((item,))


def _any_uses_plugin(items: Iterable[pytest.Item], memo: dict[Any, bool] | None = None) -> bool:
    """Whether some item of ``items`` uses the plugin (:func:`_uses_plugin`): the scan of
    ``pytest_collection_modifyitems``.

    One walk up each item's nodes, as ``item.iter_markers()`` walks them, testing each marker's
    name against all of the plugin's at once; a parent's answer is kept in ``memo`` (keyed by the
    node, for one scan) so that the tests of a module or class look at its markers once.
    """
    if memo is None:
        memo = {}
    fixtures, names = _FIXTURES, _MARKER_NAMES
    for item in items:
        if not fixtures.isdisjoint(getattr(item, "fixturenames", ())):
            return True
        own = item.own_markers
        if own and any(getattr(mark, "name", None) in names for mark in own):
            return True
        parent = item.parent
        if parent is not None:
            found = memo.get(parent)
            if found is None:
                found = _node_marked(parent, memo)
            if found:
                return True
    return False


def _node_marked(node: Any, memo: dict[Any, bool]) -> bool:
    """Whether ``node`` or one of its parents carries one of the plugin's markers (memoised)."""
    found = memo.get(node)
    if found is None:
        found = any(getattr(mark, "name", None) in _MARKER_NAMES for mark in node.own_markers) or (
            node.parent is not None and _node_marked(node.parent, memo)
        )
        memo[node] = found
    return found


def _ensure_item_hooks(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin("baml_telemetry_items"):
        config.pluginmanager.register(_ItemHooks(config), "baml_telemetry_items")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    """Register the per-test hooks only when some collected test uses the plugin."""
    if _any_uses_plugin(items):
        _ensure_item_hooks(config)


class _ItemHooks:
    """Per-test checks: marker options, ``baml_events`` validation, ``baml_budget`` budgets."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        _mark_xfailed(self.config, report)

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Check the options of every ``baml_events``/``baml_fake``/``baml_llm_server`` marker, used by a fixture or not."""
        message = None
        for name, defaults in _CHECKED_MARKERS:
            if item.get_closest_marker(name) is not None:
                try:
                    marker_options(item, name, defaults)
                except TypeError as exc:
                    message = str(exc)
                    break
        if message is None and item.get_closest_marker("baml_cassette") is not None:
            message = _cassette_setup_error(item)
        if message is not None:
            pytest.fail(message, pytrace=False)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: Any) -> Iterator[None]:
        """A test that used ``baml_llm_server_session``: check its unused scripts, then reset it."""
        server = getattr(item, "funcargs", {}).get("baml_llm_server_session")
        message = _unused_scripts(item, server) if server is not None else None
        try:
            result = yield  # the test's own fixtures still see its requests in their teardown
        finally:
            if server is not None:
                try:
                    server.reset()  # a no-op once the session fixture stopped it (the last test)
                except RuntimeError:  # the child is gone: the next test's calls say so
                    pass
        if message is not None:
            pytest.fail(message, pytrace=False)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Iterator[None]:
        tracking: TestBudgets | None = None
        markers = list(item.iter_markers("baml_budget"))
        if markers:
            from .session import InvalidBudgetMarker

            error = None
            try:
                tracking = _session(item.config).begin_test(item.nodeid, markers)
            except InvalidBudgetMarker as exc:
                error = str(exc)
            if error is not None:
                pytest.fail(error, pytrace=False)
        interrupted = False
        try:
            result = yield
        except BaseException as exc:
            item.stash[_CALL_FAILED_KEY] = True
            interrupted = isinstance(exc, KeyboardInterrupt)
            raise
        finally:
            spec_functions = _spec_functions(item)
            if spec_functions:
                state = item.config.stash.get(_SESSION_KEY, None)
                if state is not None:
                    state.known_functions.update(spec_functions)
            if tracking is not None:
                tracking.finish(interrupted=interrupted, known_functions=spec_functions)
        message = None
        entry = item.stash.get(_EVENTS_KEY, None)
        if entry is not None:
            item.stash[_CHECKED_KEY] = True
            message = _check_events(*entry)
        if tracking is not None:
            message = tracking.failure(message)
        if message is not None:
            pytest.fail(message, pytrace=False)
        return result


def _spec_functions(item: pytest.Item) -> list[str]:
    """The function names of the spec'd ``baml_fake`` of ``item`` (none without one)."""
    fake = getattr(item, "funcargs", {}).get("baml_fake")
    names = getattr(fake, "function_names", None) if fake is not None else None
    return list(names) if isinstance(names, list) else []


def _check_events(capture: EventCapture, options: dict[str, Any]) -> str | None:
    """The failure text of a ``baml_events`` capture's checks, or ``None`` when they pass."""
    try:
        capture.check(validate=options["validate"], allow_handler_failures=options["allow_handler_failures"])
    except AssertionError as exc:
        return str(exc)
    return None


_CALL_FAILED_KEY = pytest.StashKey[bool]()
_CHECKED_KEY = pytest.StashKey[bool]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_SESSION_KEY, None)
    if state is None:
        return
    state.stop()
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        state.interrupted()
    if state.is_worker:
        from .session import WORKER_KEY

        session.config.workeroutput[WORKER_KEY] = state.worker_payload()  # type: ignore[attr-defined]
        return
    if state.finish() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    state = node.config.stash.get(_SESSION_KEY, None)
    if state is None:
        return
    from .session import WORKER_KEY

    payload = getattr(node, "workeroutput", {}).get(WORKER_KEY)
    if payload is not None:
        state.merge_worker(payload)
    elif state.recording or state.budgets:
        worker = getattr(getattr(node, "gateway", None), "id", None) or getattr(node, "workerinput", {}).get("workerid", "?")
        state.lost_worker(str(worker), error)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_SESSION_KEY, None)
    if state is None:
        return
    for title, lines, red in state.summary_sections():
        markup = {"red": True, "bold": True} if red else {}
        terminalreporter.section(title, **markup)
        for line in lines:
            terminalreporter.write_line(line, **({"red": True} if red else {}))


@pytest.fixture
def baml_events(request: pytest.FixtureRequest) -> Iterator[EventCapture]:
    """The start/stop/exception events (default prefix) and handler failures of this test.

    After the test body, the capture is validated against the contract and the pairing
    of starts with stops/exceptions; a violation or a handler failure fails the test
    unless ``@pytest.mark.baml_events(validate=False)`` /
    ``(allow_handler_failures=True)`` relaxes it.
    """
    from .capture import EventCapture
    from .contract import DEFAULT_PREFIX

    _ensure_item_hooks(request.config)  # also when requested dynamically (getfixturevalue)
    options = marker_options(request.node, "baml_events", _EVENTS_DEFAULTS)
    capture = EventCapture(
        prefix=DEFAULT_PREFIX,
        context=options["context"],
        virtual_clock="baml_clock" in request.fixturenames,
    )
    capture.attach()
    request.node.stash[_EVENTS_KEY] = (capture, options)
    failed_before = request.session.testsfailed
    try:
        yield capture
    finally:
        capture.detach()
    if not request.node.stash.get(_CHECKED_KEY, False) and request.session.testsfailed == failed_before:
        # requested after the test body started (getfixturevalue): check at teardown instead
        message = _check_events(capture, options)
        if message is not None:
            pytest.fail(message, pytrace=False)


@pytest.fixture
def baml_capture(request: pytest.FixtureRequest) -> Iterator[Callable[..., EventCapture]]:
    """A factory of captures (the analogue of ``:telemetry_test.attach_event_handlers``).

    ``baml_capture(events=None, *, prefix=("ash_baml",), dispatcher=None, context=False)``
    attaches an :class:`EventCapture` to the given event names (tuples, dotted strings or
    ``"start"``/``"stop"``/``"exception"``), or to the call events of ``prefix``; every
    capture is detached at teardown, also when the test fails.
    """
    from .capture import EventCapture
    from .contract import DEFAULT_PREFIX

    made: list[EventCapture] = []
    virtual = "baml_clock" in request.fixturenames

    def factory(events: Any = None, *, prefix: Any = DEFAULT_PREFIX, dispatcher: Any = None, context: bool = False) -> EventCapture:
        capture = EventCapture(events, prefix=prefix, dispatcher=dispatcher, context=context, virtual_clock=virtual)
        capture.attach()
        made.append(capture)
        return capture

    try:
        yield factory
    finally:
        for capture in made:
            capture.detach()


@pytest.fixture
def baml_clock(request: pytest.FixtureRequest) -> VirtualClock:
    """A :class:`VirtualClock` for this test: scripted latency advances it, nothing sleeps.

    ``@pytest.mark.baml_fake(real_sleep=True)`` makes the fakes also sleep for real.
    """
    from .clock import VirtualClock

    options = marker_options(request.node, "baml_fake", _FAKE_DEFAULTS)
    return VirtualClock(real_sleep=options["real_sleep"])


@pytest.fixture
def baml_fake_spec() -> Any:
    """The real generated client ``baml_fake`` is spec'd against (``None``: any function name).

    Override it in your ``conftest.py`` to return your ``baml_client.b`` (or the module), so
    unknown functions and wrong argument names fail as they would for real.
    """
    return None


@pytest.fixture
def baml_fake(request: pytest.FixtureRequest, baml_clock: VirtualClock, baml_fake_spec: Any) -> Iterator[Any]:
    """A :class:`~pytest_baml_telemetry.fake.FakeBamlClient` on the virtual ``baml_clock``.

    Its calls emit the contract through an emitter on the default dispatcher (so
    ``baml_events`` sees them). ``fake.as_async()`` is its async twin. It is spec'd against
    ``baml_fake_spec`` (override that fixture): an async spec (``BamlAsyncClient``) makes it an
    :class:`~pytest_baml_telemetry.fake.AsyncFakeBamlClient`. At teardown, scripted outcomes that were
    never used fail the test unless ``@pytest.mark.baml_fake(assert_all_used=False)`` is set
    at any scope.
    """
    from .emitter import Emitter
    from .fake import FakeBamlClient

    _ensure_item_hooks(request.config)  # also when requested dynamically (getfixturevalue)
    options = marker_options(request.node, "baml_fake", _FAKE_DEFAULTS)
    fake = FakeBamlClient(
        emitter=Emitter(clock=baml_clock), clock=baml_clock, spec=baml_fake_spec, real_sleep=options["real_sleep"]
    )
    yield fake
    if options["assert_all_used"] and not _failed(request.node):
        message = None
        try:
            fake.assert_all_used()
        except AssertionError as exc:
            message = str(exc)
        if message is not None:
            pytest.fail(message, pytrace=False)


@pytest.fixture
def baml_llm_server(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A :class:`~pytest_baml_telemetry.fake.server.FakeLLMServer` running for this test.

    Point a real generated client at it with ``server.client_registry("MyClient")`` or its
    ``base_url``. Always stopped at teardown (no process is left behind). At teardown,
    scripts no request used fail the test, listing them, unless
    ``@pytest.mark.baml_llm_server(assert_all_used=False)`` is set at any scope.
    """
    from .fake.server import FakeLLMServer

    _ensure_item_hooks(request.config)  # also when requested dynamically (getfixturevalue)
    marker_options(request.node, "baml_llm_server", _LLM_SERVER_DEFAULTS)  # a bad option fails setup
    cassette = _cassette_request(request)
    message = None
    with FakeLLMServer() as server:
        if cassette is not None:
            server.use_cassette(cassette.pop("path"), **cassette)
        yield server
        message = _unused_scripts(request.node, server)
        if cassette is not None:
            result = server.eject_cassette()  # writes what was recorded, also when the test failed
            if result.unmatched and not _failed(request.node):
                message = "\n".join(result.unmatched) + (f"\n{message}" if message else "")
    if message is not None:
        pytest.fail(message, pytrace=False)


def _cassette_setup_error(item: pytest.Item) -> str | None:
    """Why ``@pytest.mark.baml_cassette`` on ``item`` cannot work (a bad option, no ``baml_llm_server``)."""
    try:
        cassette_marker_options(item.iter_markers("baml_cassette"))
        _record_mode(item.config)
    except (TypeError, ValueError, pytest.UsageError) as exc:
        return str(exc)
    if "baml_llm_server" not in getattr(item, "fixturenames", ()):
        return (
            "@pytest.mark.baml_cassette: the cassette is served by the baml_llm_server fixture; "
            "request it (def test_x(baml_llm_server): b = baml_llm_server.route(b) ...)"
        )
    return None


def _cassette_request(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """``use_cassette``'s arguments for the test's ``baml_cassette`` marker (``None``: no marker)."""
    node = request.node
    if node.get_closest_marker("baml_cassette") is None:
        return None
    from .fake.cassette import cassette_path

    options = cassette_marker_options(node.iter_markers("baml_cassette"))
    test = node.name if request.cls is None else f"{request.cls.__name__}.{node.name}"
    return {
        "path": cassette_path(Path(str(node.path)), test, options["name"]),
        "record_mode": _record_mode(request.config),
        "match_on": tuple(options["match_on"]),
        "replay_latency": options["replay_latency"],
        "run_started": _STARTED,
    }


@pytest.fixture(scope="session")
def baml_llm_server_session() -> Iterator[Any]:
    """One :class:`~pytest_baml_telemetry.fake.server.FakeLLMServer` for the whole session
    (per xdist worker), so a suite need not start a process per test.

    After each test that used it (as an argument, directly or through another fixture; not
    one fetched with ``request.getfixturevalue``), its scripts and recorded requests are reset; scripts that test left unused fail it at teardown, as
    with ``baml_llm_server`` (``@pytest.mark.baml_llm_server(assert_all_used=False)``
    switches that off). Stopped at the end of the session.
    """
    from .fake.server import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


def _unused_scripts(node: Any, server: Any) -> str | None:
    """The failure message for the scripts ``server`` never served (``None``: none, not checked, or the test failed)."""
    try:
        options = marker_options(node, "baml_llm_server", _LLM_SERVER_DEFAULTS)
    except TypeError:  # reported by the setup check
        return None
    if not options["assert_all_used"] or _failed(node):
        return None
    try:
        left = server.pending
    except RuntimeError as exc:  # the child died: say so rather than hide it
        return f"FakeLLMServer: cannot check for unused scripts: {exc}"
    if not left:
        return None
    listed = "".join(f"\n  {i}. {script}" for i, script in enumerate(left, 1))
    return (
        f"FakeLLMServer: {len(left)} scripted response(s) never requested:{listed}\n"
        "Remove them, or allow this with @pytest.mark.baml_llm_server(assert_all_used=False)."
    )


@pytest.fixture
def baml_metrics() -> Iterator[Any]:
    """A factory of in-memory metric reporters: ``reporter = baml_metrics([definitions...])``.

    Each reporter is attached for this test and detached at teardown;
    ``reporter.value(metric_name, **tags)`` reads a metric.
    """
    from .metrics.memory import make_metrics_fixture

    yield from make_metrics_fixture()


@pytest.fixture
def baml_spans() -> Iterator[Any]:
    """OpenTelemetry spans (GenAI conventions) of this test's BAML calls, in memory:
    ``.spans`` (plain dicts), ``assert_span(...)``, ``.tracer`` for parent spans of your own
    (needs the ``opentelemetry`` extra)."""
    from .opentelemetry import SpanCapture

    with SpanCapture() as capture:
        yield capture


def _failed(node: Any) -> bool:
    """Whether the test body of ``node`` raised (set by the per-test hooks)."""
    return node.stash.get(_CALL_FAILED_KEY, False)
