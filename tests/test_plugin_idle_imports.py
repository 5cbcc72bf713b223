"""Issue 17, plugin idle: ``import pytest_baml_telemetry`` and loading the plugin import no module
a test has not asked for yet; every public name still imports (lazily), ``instrument`` stays
the function whichever is imported first, and the marker help's budget keys are the real ones.

The checks of what is imported run in a fresh interpreter: this process imported every module
of the package (``conftest.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pytest_baml_telemetry
from pytest_baml_telemetry import _lazy, markers

ROOT = Path(__file__).resolve().parents[1]

# Modules a plain import or an idle plugin must not load (packages: any of their modules).
HEAVY = (
    "pytest_baml_telemetry.fake",
    "pytest_baml_telemetry.budgets",
    "pytest_baml_telemetry.report",
    "pytest_baml_telemetry.wire",
    "pytest_baml_telemetry.opentelemetry",
    "pytest_baml_telemetry.strategies",
    "pytest_baml_telemetry.metrics",
    "pytest_baml_telemetry.session",
    "pytest_baml_telemetry.capture",
    "pytest_baml_telemetry.instrument",
    "pytest_baml_telemetry.dispatcher",
    "pytest_baml_telemetry.emitter",
    "opentelemetry",
    "baml_py",
    "hypothesis",
    "httpx",
)


def fresh(code: str, *args: str) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON value, returned."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.pop("PYTEST_ADDOPTS", None)
    proc = subprocess.run(
        [sys.executable, *args, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def loaded(modules: list[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def test_a_plain_import_loads_only_the_facade() -> None:
    modules = fresh(
        """
        import json, sys
        before = set(sys.modules)
        import pytest_baml_telemetry
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    assert loaded(modules) == []
    ours = sorted(m for m in modules if m.startswith("pytest_baml_telemetry"))
    assert ours == ["pytest_baml_telemetry", "pytest_baml_telemetry._lazy"]


def test_loading_the_plugin_imports_only_what_registering_it_needs() -> None:
    modules = fresh(
        """
        import json, sys
        import pytest
        before = set(sys.modules)
        import pytest_baml_telemetry.plugin
        print(json.dumps(sorted(set(sys.modules) - before)))
        """
    )
    assert loaded(modules) == []
    ours = sorted(m for m in modules if m.startswith("pytest_baml_telemetry"))
    assert ours == [
        "pytest_baml_telemetry",
        "pytest_baml_telemetry._lazy",
        "pytest_baml_telemetry._validate",
        "pytest_baml_telemetry.markers",
        "pytest_baml_telemetry.plugin",
    ]
    assert [m for m in modules if not m.startswith("pytest_baml_telemetry")] == []  # nothing beyond pytest's own


def test_a_run_that_does_not_use_the_plugin_loads_none_of_its_heavy_modules(pytester: pytest.Pytester) -> None:
    """A whole run (the plugin loaded from its entry point, in a child process): only the network
    guard's scope tracking joins the modules that loading the plugin imports."""
    pytester.makepyfile(
        test_plain="import pytest\n\n@pytest.mark.parametrize('x', range(3))\ndef test_a(x):\n    pass\n",
        conftest=textwrap.dedent(
            """
            import json, sys
            from pathlib import Path

            def pytest_sessionfinish(session):
                Path("modules.json").write_text(json.dumps(sorted(sys.modules)))
            """
        ),
    )
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    modules = json.loads((pytester.path / "modules.json").read_text())
    assert "pytest_baml_telemetry.plugin" in modules  # the plugin was loaded
    heavy = tuple(h for h in HEAVY if h not in ("baml_py", "hypothesis", "httpx"))  # other installed plugins load those
    assert loaded(modules, heavy) == []


def test_every_public_name_resolves_in_a_fresh_interpreter() -> None:
    found = fresh(
        """
        import importlib, json
        import pytest_baml_telemetry as p
        out = {}
        for name in p.__all__:
            value = getattr(p, name)
            home = importlib.import_module(p._LAZY[name], "pytest_baml_telemetry")
            out[name] = [getattr(home, name) is value, type(value).__name__]
        print(json.dumps(out))
        """
    )
    assert sorted(found) == sorted(pytest_baml_telemetry.__all__)
    assert {name for name, (same, _kind) in found.items() if not same} == set()
    assert found["instrument"][1] == "function"
    assert found["FakeLLMServer"][1] == "type"


def test_every_public_name_imports_with_from_import() -> None:
    names = ", ".join(pytest_baml_telemetry.__all__)
    result = fresh(f"import json\nfrom pytest_baml_telemetry import {names}\nprint(json.dumps(instrument.__module__))")
    assert result == "pytest_baml_telemetry.instrument"


def test_all_lists_the_public_names() -> None:
    expected = {
        "CALL_EXCEPTION", "CALL_START", "CALL_STOP", "HANDLER_FAILURE", "ContractViolation", "Dispatcher", "Emitter",
        "HandlerExistsError", "StreamAbandoned", "Usage", "VirtualClock", "attach", "attach_many", "convert_time_unit",
        "detach", "execute", "instrument", "list_handlers", "span", "validate_event", "validate_stream",
        "FakeBamlClient", "AsyncFakeBamlClient", "NothingScriptedError", "faults", "FakeLLMServer", "EventCapture",
        "expect", "Budget", "PriceTable", "Aggregator", "CostTracker", "SlowCallTracker", "LatencyTracker",
        "LoggingHandler", "log_calls", "JsonlExporter",
    }
    assert set(pytest_baml_telemetry.__all__) == expected
    assert len(pytest_baml_telemetry.__all__) == len(expected)
    assert pytest_baml_telemetry.__version__


@pytest.mark.parametrize(
    "first",
    [
        "import pytest_baml_telemetry.instrument",
        "from pytest_baml_telemetry.instrument import instrument",
        "import pytest_baml_telemetry.fake",  # imports .instrument itself
        "from pytest_baml_telemetry import instrument",
    ],
)
def test_instrument_is_the_function_whichever_is_imported_first(first: str) -> None:
    kinds = fresh(
        f"""
        import json, sys
        {first}
        import pytest_baml_telemetry as p
        from pytest_baml_telemetry import instrument
        print(json.dumps([type(p.instrument).__name__, instrument is p.instrument,
                          p.instrument is sys.modules["pytest_baml_telemetry.instrument"].instrument]))
        """
    )
    assert kinds == ["function", True, True]


def test_dir_lists_the_public_names_before_they_are_imported() -> None:
    names = fresh("import json, pytest_baml_telemetry as p\nprint(json.dumps(dir(p)))")
    assert set(pytest_baml_telemetry.__all__) <= set(names)
    assert {"__version__", "__all__"} <= set(names)
    assert names == sorted(names)


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="module 'pytest_baml_telemetry' has no attribute 'no_such_name'"):
        pytest_baml_telemetry.no_such_name  # noqa: B018
    with pytest.raises(ImportError, match="no_such_name"):
        exec("from pytest_baml_telemetry import no_such_name", {})


def test_lazy_exports_binds_a_same_named_function_not_its_submodule(tmp_path: Path) -> None:
    pkg = tmp_path / "lazyprobe_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from pytest_baml_telemetry._lazy import lazy_exports\n"
        "__getattr__ = lazy_exports(__name__, {'tool': '.tool', 'helper': '.other'})\n"
    )
    (pkg / "tool.py").write_text("def tool():\n    return 'tool'\n")
    (pkg / "other.py").write_text("def helper():\n    return 'helper'\n")
    (pkg / "plain.py").write_text("X = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import lazyprobe_pkg  # type: ignore[import-not-found]
        import lazyprobe_pkg.other  # type: ignore[import-not-found]
        import lazyprobe_pkg.plain  # type: ignore[import-not-found]
        import lazyprobe_pkg.tool  # type: ignore[import-not-found]  # binds the function, not the module

        assert lazyprobe_pkg.tool() == "tool"
        assert lazyprobe_pkg.tool is sys.modules["lazyprobe_pkg.tool"].tool
        assert lazyprobe_pkg.plain is sys.modules["lazyprobe_pkg.plain"]  # other submodules bind as usual
        assert lazyprobe_pkg.other is sys.modules["lazyprobe_pkg.other"]  # not a same-named export
        assert lazyprobe_pkg.helper() == "helper"
        lazyprobe_pkg.anything = 3  # other attributes set as usual
        assert lazyprobe_pkg.anything == 3
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == "lazyprobe_pkg" or m.startswith("lazyprobe_pkg.")]:
            del sys.modules[name]


def test_a_facade_without_same_named_exports_keeps_the_plain_module_class() -> None:
    from pytest_baml_telemetry import budgets

    assert type(budgets) is type(_lazy)
    assert type(pytest_baml_telemetry) is not type(_lazy)  # the facade with `instrument`


def test_the_marker_help_lists_the_budget_keys_of_the_registry_in_order() -> None:
    from pytest_baml_telemetry.budgets.limits import BUDGET_KEYS

    assert markers.BUDGET_KEYS_HELP == BUDGET_KEYS
    assert markers.MARKERS["baml_budget"].startswith(f"baml_budget({', '.join(f'{k}=...' for k in BUDGET_KEYS)}): ")
