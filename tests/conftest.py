from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import baml_py  # noqa: F401  - loaded once here: pytester's in-process runs must not re-import the
import baml_py.errors  # noqa: F401  PyO3 extension, which can be initialised only once per process
import pytest

import pytest_baml_telemetry

# Import every module of the package now, so that pytester's in-process sessions (which
# drop the modules they imported when they end) never mix two copies of one class.
for _module in pkgutil.walk_packages(pytest_baml_telemetry.__path__, "pytest_baml_telemetry."):
    if not _module.name.endswith("_server_child"):
        try:
            importlib.import_module(_module.name)
        except ImportError:  # an optional extra that is not installed
            pass

BAML_SRC = Path(__file__).parent / "baml_src"


@pytest.fixture(scope="session")
def generated_client(tmp_path_factory: pytest.TempPathFactory):
    """A real ``baml_client`` generated from ``tests/baml_src`` with the installed ``baml-cli``.

    Generated once per session (per xdist worker) into a temporary directory, never
    committed, so its version always matches the installed baml-py. Returns a
    ``GeneratedClient``: ``.b`` (sync), ``.async_b``, ``.module``, ``.types``,
    ``.path``; it also unpacks as ``b, async_b = generated_client``.
    """
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    out = generate_client(BAML_SRC, tmp_path_factory.mktemp("generated_baml_client"))
    return import_generated(out)


TYPED_SRC = Path(__file__).parent / "baml_src_typed"


@pytest.fixture(scope="session")
def typed_client(tmp_path_factory: pytest.TempPathFactory):
    """The typed app of ``tests/baml_src_typed`` (classes, an enum, lists, optional fields, a
    plan streamed with ``@stream.done``/``@stream.with_state``), generated in sync mode: its
    package's ``b`` is a ``BamlSyncClient``. A ``GeneratedClient`` as ``generated_client``."""
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(TYPED_SRC, tmp_path_factory.mktemp("typed_sync")))


@pytest.fixture(scope="session")
def typed_async_client(tmp_path_factory: pytest.TempPathFactory):
    """The same typed app generated with ``default_client_mode async``: its package's ``b``
    (``typed_async_client.module.b``) is a ``BamlAsyncClient``."""
    import shutil

    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    src = tmp_path_factory.mktemp("typed_async_src") / "baml_src"
    shutil.copytree(TYPED_SRC, src)
    generators = src / "generators.baml"
    text = generators.read_text(encoding="utf-8")
    assert "default_client_mode sync" in text
    generators.write_text(text.replace("default_client_mode sync", "default_client_mode async"), encoding="utf-8")
    client = import_generated(generate_client(src, tmp_path_factory.mktemp("typed_async")))
    assert type(client.module.b).__name__ == "BamlAsyncClient", type(client.module.b)
    return client


# ------------------------------------------------------------------ shared fixtures
# (``module_server``/``server``: test_fake_server.py and test_instrument.py;
# ``_quiet_baml``/``tel``: test_instrument.py and test_modular.py)


@pytest.fixture(scope="module")
def module_server():
    """One running ``FakeLLMServer`` per test module (started on first use)."""
    from pytest_baml_telemetry.fake.server import FakeLLMServer

    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def server(module_server):
    """A running server, reset before each test."""
    module_server.reset()
    yield module_server
    module_server.reset()


@pytest.fixture
def _quiet_baml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Silence baml-py's ``[BAML INFO]`` lines (it copies ``os.environ`` per call).

    Not autouse: a module that wants it says ``pytestmark = pytest.mark.usefixtures("_quiet_baml")``.
    """
    monkeypatch.setenv("BAML_LOG", "off")


@pytest.fixture
def tel():
    """(emitter, capture) on a private dispatcher; every test's events must be valid."""
    from pytest_baml_telemetry import Dispatcher, Emitter
    from pytest_baml_telemetry.capture import EventCapture

    dispatcher = Dispatcher()
    capture = EventCapture(dispatcher=dispatcher).attach()
    yield Emitter(dispatcher=dispatcher), capture
    capture.detach()
