"""Issue 17, plugin idle: the collection scan registers the per-test hooks for every way a test
can use the plugin (a fixture, directly or through another fixture; a marker on the test, its
class, its module, or one a hook adds) and for no other test; the one-walk scan agrees with
``get_closest_marker`` per marker name (the scan it replaced)."""

from __future__ import annotations

import textwrap

import pytest

from pytest_baml_telemetry import plugin

PLUGIN_MARKERS = ("baml_budget", "baml_events", "baml_fake", "baml_llm_server", "baml_cassette")

# A plugin for the inner run: after collection (and the plugin's scan) it writes whether the
# per-test hooks were registered. The inner runs only collect (--collect-only), so no fixture
# runs to register them on its own: what is written is the scan's answer.
PROBE = textwrap.dedent(
    """
    from pathlib import Path

    def pytest_collection_finish(session):
        registered = session.config.pluginmanager.has_plugin("baml_telemetry_items")
        Path("probe.txt").write_text("yes" if registered else "no")
    """
)


@pytest.fixture(autouse=True)
def _ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    slow_thing: a marker of the project's own\n"
    )


def hooks_registered(pytester: pytest.Pytester, files: dict[str, str], *args: str) -> bool:
    """Collect ``files`` and return whether the collection scan registered the per-test hooks."""
    pytester.makepyfile(**{name: textwrap.dedent(body) for name, body in files.items()})
    pytester.makepyfile(idle_probe=PROBE)
    pytester.syspathinsert()
    probe = pytester.path / "probe.txt"
    probe.unlink(missing_ok=True)
    result = pytester.runpytest("--collect-only", "-q", "-p", "idle_probe", "-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    answer = probe.read_text()
    assert answer in ("yes", "no"), answer
    return answer == "yes"


def test_a_suite_that_does_not_use_the_plugin_registers_no_per_test_hooks(pytester: pytest.Pytester) -> None:
    files = {
        "test_plain": """
            import pytest

            pytestmark = pytest.mark.slow_thing

            @pytest.mark.baml_allow_network  # not a marker that needs the per-test checks
            class TestA:
                @pytest.mark.parametrize("x", [1, 2])
                def test_a(self, x, tmp_path):
                    pass

            def test_b():
                pass
        """
    }
    assert hooks_registered(pytester, files) is False


@pytest.mark.parametrize("fixture", ["baml_events", "baml_fake", "baml_llm_server", "baml_llm_server_session"])
def test_a_fixture_argument_registers_the_hooks(pytester: pytest.Pytester, fixture: str) -> None:
    files = {"test_a": f"def test_a():\n    pass\n\ndef test_b({fixture}):\n    pass\n"}
    assert hooks_registered(pytester, files) is True
    assert hooks_registered(pytester, files, "-k", "not test_b") is False  # a deselected test is not scanned


def test_a_fixture_through_another_fixture_or_usefixtures_registers_the_hooks(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def recorder(baml_events):
            return baml_events
        """
    )
    assert hooks_registered(pytester, {"test_a": "def test_a(recorder):\n    pass\n"}) is True


def test_usefixtures_registers_the_hooks(pytester: pytest.Pytester) -> None:
    files = {"test_a": "import pytest\n\n@pytest.mark.usefixtures('baml_fake')\ndef test_a():\n    pass\n"}
    assert hooks_registered(pytester, files) is True


@pytest.mark.parametrize("marker", PLUGIN_MARKERS)
def test_a_marker_on_the_test_registers_the_hooks(pytester: pytest.Pytester, marker: str) -> None:
    files = {"test_a": f"import pytest\n\ndef test_plain():\n    pass\n\n@pytest.mark.{marker}\ndef test_a():\n    pass\n"}
    assert hooks_registered(pytester, files) is True


@pytest.mark.parametrize("marker", PLUGIN_MARKERS)
def test_a_marker_only_on_the_class_registers_the_hooks(pytester: pytest.Pytester, marker: str) -> None:
    files = {
        "test_a": f"""
            import pytest

            @pytest.mark.{marker}
            class TestMarked:
                def test_a(self):
                    pass
        """
    }
    assert hooks_registered(pytester, files) is True


def test_a_marker_only_through_the_class_pytestmark_registers_the_hooks(pytester: pytest.Pytester) -> None:
    files = {
        "test_a": """
            import pytest

            class TestMarked:
                pytestmark = [pytest.mark.baml_fake(assert_all_used=False)]

                def test_a(self):
                    pass
        """
    }
    assert hooks_registered(pytester, files) is True


@pytest.mark.parametrize("marker", PLUGIN_MARKERS)
def test_a_marker_only_through_the_module_pytestmark_registers_the_hooks(pytester: pytest.Pytester, marker: str) -> None:
    files = {"test_a": f"import pytest\n\npytestmark = pytest.mark.{marker}\n\ndef test_a():\n    pass\n"}
    assert hooks_registered(pytester, files) is True


def test_a_marker_in_a_module_pytestmark_list_registers_the_hooks(pytester: pytest.Pytester) -> None:
    files = {
        "test_a": """
            import pytest

            pytestmark = [pytest.mark.filterwarnings("ignore"), pytest.mark.baml_budget(max_calls=3)]

            class TestA:
                def test_a(self):
                    pass
        """
    }
    assert hooks_registered(pytester, files) is True


@pytest.mark.parametrize("target", ["item", "item.parent", "item.session"])
def test_a_marker_added_by_a_hook_registers_the_hooks(pytester: pytest.Pytester, target: str) -> None:
    pytester.makeconftest(
        f"""
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "test_a":
                    {target}.add_marker(pytest.mark.baml_events(validate=False))
        """
    )
    files = {"test_a": "def test_a():\n    pass\n"}
    assert hooks_registered(pytester, files) is True


def test_a_class_marker_counts_for_its_own_tests_only(pytester: pytest.Pytester) -> None:
    """The scan remembers a class's answer for its tests; its neighbours are looked at on their own."""
    items = pytester.getitems(
        textwrap.dedent(
            """
            import pytest

            class TestPlain:
                def test_1(self):
                    pass

                def test_2(self):
                    pass

            @pytest.mark.baml_fake
            class TestMarked:
                def test_3(self):
                    pass

                @pytest.mark.baml_budget(max_calls=1)
                def test_4(self):
                    pass

            class TestPlainAgain:
                def test_5(self):
                    pass

            def test_6(baml_events):
                pass

            def test_7():
                pass
            """
        )
    )
    memo: dict[object, bool] = {}
    seen = {item.name: plugin._any_uses_plugin([item], memo) for item in items}
    assert seen == {
        "test_1": False, "test_2": False, "test_3": True, "test_4": True, "test_5": False, "test_6": True, "test_7": False,
    }
    assert seen == {item.name: plugin._uses_plugin(item) for item in items}  # the same without a shared memo
    # the scan it replaced: get_closest_marker once per marker name
    assert seen == {
        item.name: bool({"baml_events", "baml_fake", "baml_llm_server", "baml_llm_server_session"} & set(item.fixturenames))
        or any(item.get_closest_marker(m) is not None for m in PLUGIN_MARKERS)
        for item in items
    }
    assert plugin._any_uses_plugin(items) is True
    assert plugin._any_uses_plugin([i for i in items if not seen[i.name]]) is False
    assert plugin._any_uses_plugin([]) is False


def test_the_scan_knows_every_marker_that_needs_the_per_test_hooks() -> None:
    assert set(PLUGIN_MARKERS) == set(plugin._MARKERS) == plugin._MARKER_NAMES
