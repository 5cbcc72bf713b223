"""Fixtures for the examples that drive the REAL generated baml-py client, offline.

* ``real_baml_client`` (session): the example app's ``baml_client``, generated from
  ``examples/real_client/baml_src`` with the installed ``baml-cli`` into a temporary
  directory (never written into the source tree, never committed; its version always
  matches the installed baml-py). ``.b`` is the sync client, ``.async_b`` the async one,
  ``.types`` the generated types.
* ``llm_server``: the plugin's ``baml_llm_server_session``, a :class:`FakeLLMServer` (one
  child process per session, reset after each test; scripts a test leaves unused fail it)
  speaking the OpenAI chat-completions API on 127.0.0.1.
* ``real_b`` / ``real_async_b``: ``llm_server.route(instrument(b))``: the real client,
  emitting the call events to the default dispatcher (which the ``baml_events`` fixture
  captures), with every client its .baml files declare (``Smart`` and ``Fast``: same
  models, same retry policy, same timeouts) pointed at the fake server by one call. The
  plugin's network guard refuses anything else that would leave the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REAL_CLIENT_SRC = Path(__file__).parent / "real_client" / "baml_src"


@pytest.fixture(scope="session", autouse=True)
def _quiet_baml() -> Iterator[None]:
    """baml-py prints a ``[BAML INFO]`` block per call on stdout unless ``BAML_LOG=off``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BAML_LOG", "off")
        yield


@pytest.fixture(scope="session")
def real_baml_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    out = generate_client(REAL_CLIENT_SRC, tmp_path_factory.mktemp("example_baml_client"))
    return import_generated(out)


@pytest.fixture
def llm_server(baml_llm_server_session: Any) -> Any:
    """The plugin's session-wide fake OpenAI server: one process for the run, its scripts and
    recorded requests reset after each test; scripts a test leaves unused fail it."""
    return baml_llm_server_session


@pytest.fixture
def real_b(real_baml_client: Any, llm_server: Any) -> Any:
    """The real sync client, instrumented, every declared client routed to ``llm_server``."""
    from pytest_baml_telemetry.instrument import instrument

    return llm_server.route(instrument(real_baml_client.b))


@pytest.fixture
def real_async_b(real_baml_client: Any, llm_server: Any) -> Any:
    """The real async client, instrumented, every declared client routed to ``llm_server``."""
    from pytest_baml_telemetry.instrument import instrument

    return llm_server.route(instrument(real_baml_client.async_b))


@pytest.fixture
def fake_b(request: pytest.FixtureRequest, real_baml_client: Any, baml_clock: Any) -> Iterator[Any]:
    """A :class:`FakeBamlClient` spec'd on the example's generated client, on ``baml_clock``.

    Like the plugin's ``baml_fake`` fixture, but built with ``spec=b``: calling a function the
    ``.baml`` files do not define, or passing a wrong argument name, fails as it would on the
    real client, and positional arguments work (``fake_b.ExtractResume(text)``). Scripted
    latency advances the test's virtual ``baml_clock``. ``fake_b.as_async()`` is the async twin.
    At teardown, scripted outcomes no call used fail the test (unless it already failed).
    """
    from pytest_baml_telemetry import Emitter
    from pytest_baml_telemetry.fake import FakeBamlClient

    fake = FakeBamlClient(spec=real_baml_client.b, emitter=Emitter(clock=baml_clock), clock=baml_clock)
    failed_before = request.session.testsfailed
    yield fake
    if request.session.testsfailed == failed_before:
        unused = None
        try:
            fake.assert_all_used()
        except AssertionError as exc:
            unused = str(exc)
        if unused is not None:
            pytest.fail(unused, pytrace=False)
