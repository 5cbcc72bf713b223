from __future__ import annotations

from pathlib import Path

import pytest

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
