"""A multi-provider app (Anthropic, OpenAI, Google AI; a fallback across them, a round-robin,
a retry policy) tested offline: ``llm_server.route(b)`` points every client its .baml files
declare at the fake server in one line, keeping providers, models, options, retries and
strategies; the fake answers each client in its own provider's wire format.

While these tests run, the plugin's network guard refuses any request that would still leave
the machine (an unrouted client), and fails the test naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

APP_SRC = Path(__file__).parent / "multi_provider" / "baml_src"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from pytest_baml_telemetry.baml_gen import generate_client, import_generated

    return import_generated(generate_client(APP_SRC, tmp_path_factory.mktemp("multi_provider")))


def test_claude_down_gemini_answers(app: Any, llm_server: Any) -> None:
    b = llm_server.route(app.b)  # the one line: every client of the app now talks to llm_server

    for _ in range(3):  # Claude and its two retries (retry_policy Patient) are overloaded
        llm_server.fail(529, client="Claude")
    llm_server.respond("Paris.", client="Gemini")

    assert b.Answer("Capital of France?") == "Paris."
    assert [(r.client, r.provider) for r in llm_server.requests] == [
        ("Claude", "anthropic"), ("Claude", "anthropic"), ("Claude", "anthropic"), ("Gemini", "google-ai"),
    ]
    assert llm_server.requests[0].json["max_tokens"] == 512  # Claude's declared options are kept


def test_the_round_robin_takes_turns(app: Any, llm_server: Any) -> None:
    b = llm_server.route(app.b)
    llm_server.respond("not urgent", client="Gpt").respond("not urgent", client="Gemini")
    llm_server.respond("urgent", client="Gpt").respond("urgent", client="Gemini")

    answers = [b.Triage(q) for q in ("a", "b", "c", "d")]

    first, second, third, fourth = (r.client for r in llm_server.requests)
    assert {first, second} == {"Gpt", "Gemini"} and (third, fourth) == (first, second)
    assert sorted(answers) == ["not urgent", "not urgent", "urgent", "urgent"]
