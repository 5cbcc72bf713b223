"""Fakes for testing BAML code offline: a fake generated client and a fake LLM server.

``pytest_baml_telemetry.fake.server.FakeLLMServer`` runs a scripted OpenAI-compatible
HTTP server in a child process so the real baml-py runtime can be tested without a
network or an API key.
"""

# The fake client and its faults are light (baml_py is imported only when an error is
# built); the server module is left to be imported on use.
from ..contract import Usage
from . import faults
from .client import (
    AsyncFakeBamlClient,
    FakeBamlClient,
    FakeCall,
    NothingScriptedError,
    ScriptedOutcome,
    UnusedOutcomesError,
)
from .faults import Fault

__all__ = [
    "AsyncFakeBamlClient",
    "FakeBamlClient",
    "FakeCall",
    "Fault",
    "NothingScriptedError",
    "ScriptedOutcome",
    "UnusedOutcomesError",
    "Usage",
    "faults",
]
