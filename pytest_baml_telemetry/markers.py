"""The plugin's markers: their help lines and how a marker's options are read.

Cheap to import (the plugin imports it at start-up): it imports only ``_validate``. The
``baml_budget`` help lists the budget keys from :data:`BUDGET_KEYS_HELP`, a copy of
:data:`~pytest_baml_telemetry.budgets.limits.BUDGET_KEYS` (a test checks that they agree), so
that registering the markers does not load the budget key registry. Options of ``baml_events``/``baml_fake``/``baml_llm_server`` markers are keywords;
the closest marker wins per option; unknown options, positional arguments and non-bool
values of bool options raise ``TypeError`` naming the marker and the value, at every
scope (a bad value on the module is refused even when the test's own marker sets the option).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._validate import check_bool, short_repr

__all__ = [
    "BUDGET_KEYS_HELP", "CASSETTE_DEFAULTS", "EVENTS_DEFAULTS", "FAKE_DEFAULTS", "LLM_SERVER_DEFAULTS", "MARKERS", "cassette_marker_options",
    "merge_marker_options",
]

EVENTS_DEFAULTS: Mapping[str, Any] = {"validate": True, "allow_handler_failures": False, "context": False}
"""Options of ``@pytest.mark.baml_events`` and their defaults."""
FAKE_DEFAULTS: Mapping[str, Any] = {"assert_all_used": True, "real_sleep": False}
"""Options of ``@pytest.mark.baml_fake`` and their defaults."""
LLM_SERVER_DEFAULTS: Mapping[str, Any] = {"assert_all_used": True}
"""Options of ``@pytest.mark.baml_llm_server`` (the ``baml_llm_server`` and
``baml_llm_server_session`` fixtures) and their defaults."""

CASSETTE_DEFAULTS: Mapping[str, Any] = {"name": None, "match_on": ("method", "path", "body"), "replay_latency": "recorded"}
"""Options of ``@pytest.mark.baml_cassette`` (the cassette of the test's ``baml_llm_server``) and their defaults."""

BUDGET_KEYS_HELP: tuple[str, ...] = (
    "p50", "p90", "p95", "p99", "max_latency", "ttfc_p50", "ttfc_p90", "ttfc_p95", "ttfc_p99", "max_ttfc",
    "max_calls", "max_errors", "max_error_rate", "max_input_tokens", "max_output_tokens", "max_total_tokens",
    "max_cost_usd", "function", "model", "allow_unknown_tokens", "name",
)
"""The keys the ``baml_budget`` help lists: :data:`~pytest_baml_telemetry.budgets.limits.BUDGET_KEYS`, in its order."""


def _signature(name: str, options: Mapping[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in options.items())})"


MARKERS: dict[str, str] = {
    "baml_events": (
        f"{_signature('baml_events', EVENTS_DEFAULTS)}: options of the baml_events fixture; closest scope wins per option"
    ),
    "baml_fake": (
        f"{_signature('baml_fake', FAKE_DEFAULTS)}: options of the baml_fake fixture; closest scope wins per option"
    ),
    "baml_llm_server": (
        f"{_signature('baml_llm_server', LLM_SERVER_DEFAULTS)}: options of the baml_llm_server and "
        "baml_llm_server_session fixtures (scripts never served fail the test); closest scope wins per option"
    ),
    "baml_cassette": (
        f"{_signature('baml_cassette', CASSETTE_DEFAULTS)}: the test's baml_llm_server replays (and, as "
        "--baml-record-mode allows, records) the vcrpy cassette NAME, by default cassettes/<module>/<test>.yaml "
        "beside the test file"
    ),
    "baml_allow_network": (
        "baml_allow_network: let this test's BAML requests reach hosts that are not loopback "
        "(the network guard of --baml-block-network and of the plugin's fakes refuses them otherwise)"
    ),
    "baml_budget": (
        f"baml_budget({', '.join(f'{k}=...' for k in BUDGET_KEYS_HELP)}): "
        "a performance budget over the BAML calls of this test; several markers stack"
    ),
}
"""Marker name -> its help line (``pytest --markers``)."""


def merge_marker_options(markers: Iterable[Any], name: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the keyword options of ``markers`` (closest first), closest winning, over ``defaults``."""
    options: dict[str, Any] = {}
    for marker in markers:
        if marker.args:
            raise TypeError(
                f"@pytest.mark.{name}{marker.args!r}: positional arguments are not accepted; "
                f"expected keyword options among {sorted(defaults)}"
            )
        for key, value in marker.kwargs.items():
            if key not in defaults:
                raise TypeError(
                    f"@pytest.mark.{name}({key}={short_repr(value)}): unknown option {key!r}; "
                    f"expected one of {sorted(defaults)}"
                )
            if isinstance(defaults[key], bool):  # every marker's value, also one a closer marker hides
                check_bool(value, f"@pytest.mark.{name}({key}={short_repr(value)})")
            options.setdefault(key, value)
    return {**defaults, **options}


def cassette_marker_options(markers: Iterable[Any]) -> dict[str, Any]:
    """The options of the ``baml_cassette`` markers (closest first): the cassette name may be
    given positionally (``baml_cassette("shared")``); the closest marker wins per option.
    A bad name, ``match_on`` or ``replay_latency`` raises ``TypeError``/``ValueError`` naming it."""
    options: dict[str, Any] = {}
    for marker in markers:
        if len(marker.args) > 1:
            raise TypeError(
                f"@pytest.mark.baml_cassette{marker.args!r}: at most one positional argument (the cassette name); "
                f"expected keyword options among {sorted(CASSETTE_DEFAULTS)}"
            )
        given = dict(marker.kwargs)
        if marker.args:
            if "name" in given:
                raise TypeError("@pytest.mark.baml_cassette: the name is given twice (positionally and as name=)")
            given["name"] = marker.args[0]
        for key, value in given.items():
            if key not in CASSETTE_DEFAULTS:
                raise TypeError(
                    f"@pytest.mark.baml_cassette({key}={short_repr(value)}): unknown option {key!r}; "
                    f"expected one of {sorted(CASSETTE_DEFAULTS)}"
                )
            options.setdefault(key, value)
    merged = {**CASSETTE_DEFAULTS, **options}
    name = merged["name"]
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"@pytest.mark.baml_cassette(name={short_repr(name)}): expected a cassette file name (a non-empty str) or None")
    match_on = merged["match_on"]
    if isinstance(match_on, str) or not isinstance(match_on, (list, tuple)) or not match_on:
        raise TypeError(
            f"@pytest.mark.baml_cassette(match_on={short_repr(match_on)}): expected a non-empty list of matcher names "
            "(vcr's: method, scheme, host, port, path, query, uri, body; raw_body)"
        )
    from .fake._server_proxy import MATCHERS

    for matcher in match_on:
        if matcher not in MATCHERS:
            raise ValueError(
                f"@pytest.mark.baml_cassette(match_on={short_repr(match_on)}): match_on entry {short_repr(matcher)}: "
                f"expected one of {', '.join(MATCHERS)}"
            )
    if merged["replay_latency"] not in ("recorded", "none"):
        raise ValueError(
            f"@pytest.mark.baml_cassette(replay_latency={short_repr(merged['replay_latency'])}): expected 'recorded' or 'none'"
        )
    return merged
