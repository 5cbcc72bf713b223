"""Fakes for testing BAML code offline: a fake generated client and a fake LLM server.

``FakeBamlClient`` / ``AsyncFakeBamlClient`` (:mod:`.client`) stand in for a generated
client ``b`` in-process; its faults are in :mod:`.faults` (the ``FAULTS`` registry: one
entry per fault). ``pytest_baml_telemetry.fake.server.FakeLLMServer`` runs a scripted
OpenAI-compatible HTTP server in a child process so the real baml-py runtime can be tested
without a network or an API key.

Layout of the fake client: ``client`` (the public face), ``script`` (scripted outcomes and
call records), ``spec`` (building against a real client), ``timeline`` (per-call virtual
time), ``streams`` (the fake's stream objects), ``scenario`` (play one :class:`Step` on a fake:
``run_outcome`` / ``arun_outcome`` / ``script_outcome``, no Hypothesis needed). A new fault is a builder in ``faults`` plus
its ``FaultKind`` entry in ``FAULTS``.
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
from .scenario import OutcomeRun, Step
from .scenario import arun as arun_outcome
from .scenario import run as run_outcome
from .scenario import script as script_outcome

__all__ = [
    "AsyncFakeBamlClient",
    "FakeBamlClient",
    "FakeCall",
    "Fault",
    "NothingScriptedError",
    "OutcomeRun",
    "ScriptedOutcome",
    "Step",
    "UnusedOutcomesError",
    "Usage",
    "arun_outcome",
    "faults",
    "run_outcome",
    "script_outcome",
]
