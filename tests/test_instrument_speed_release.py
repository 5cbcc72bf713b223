"""Our collectors are let go off the call's path (issue 17): a background thread frees them once
read, whoever else holds one keeps it, and a releaser that is missing or behind costs a backlog
no larger than ``_MAX_LATER``."""

from __future__ import annotations

import collections
import gc
import sys
import threading
import time
import weakref

import pytest

from pytest_baml_telemetry import collector_log
from pytest_baml_telemetry.collector_log import release_later

pytestmark = pytest.mark.usefixtures("_quiet_baml")


class _Held:
    """A stand-in for a collector: something whose release a weak reference can see."""


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


@pytest.fixture
def quick_releaser(monkeypatch):
    """A releaser that wakes every millisecond and ends after 20 idle rounds; none running before or after."""
    monkeypatch.setattr(collector_log, "_RELEASE_EVERY_S", 0.001)
    monkeypatch.setattr(collector_log, "_IDLE_ROUNDS", 20)
    assert _wait_for(lambda: collector_log._RELEASER[0] is None), "a releaser from an earlier test is still running"
    yield
    assert _wait_for(lambda: collector_log._RELEASER[0] is None and not collector_log._LATER)


def test_a_released_collector_is_freed_by_the_background_thread(quick_releaser):
    held = _Held()
    gone = weakref.ref(held)
    callers = threading.get_ident()
    freed_in: list[int] = []
    weakref.finalize(held, lambda: freed_in.append(threading.get_ident()))
    release_later(held)
    del held
    gc.collect()
    assert _wait_for(lambda: gone() is None)
    assert len(freed_in) == 1 and freed_in[0] != callers  # freed by the releaser, not by the caller


def test_someone_elses_reference_keeps_the_collector(quick_releaser):
    held = _Held()
    release_later(held)
    assert _wait_for(lambda: not collector_log._LATER)
    assert isinstance(held, _Held)  # still ours to use: only the releaser's reference went


def test_the_releaser_ends_when_idle_and_the_next_release_starts_another(quick_releaser):
    release_later(_Held())
    first = collector_log._RELEASER[0]
    assert first is not None and first.daemon and first.name == "pytest-baml-telemetry collectors"
    assert _wait_for(lambda: collector_log._RELEASER[0] is None)
    first.join(timeout=5)
    assert not first.is_alive()
    held = _Held()
    gone = weakref.ref(held)
    release_later(held)
    del held
    second = collector_log._RELEASER[0]
    assert second is not None and second is not first
    assert _wait_for(lambda: gone() is None)


def test_a_missing_releaser_leaves_at_most_the_backlog_bound(monkeypatch):
    later: collections.deque = collections.deque()
    monkeypatch.setattr(collector_log, "_LATER", later)
    monkeypatch.setattr(collector_log, "_MAX_LATER", 3)
    monkeypatch.setattr(collector_log, "_RELEASER", [object()])  # "running", but never releases (a forked child)
    refs = []
    for _ in range(4):
        held = _Held()
        refs.append(weakref.ref(held))
        release_later(held)
        del held
    assert len(later) == 0  # the fourth went over the bound: the caller released all four
    assert all(r() is None for r in refs)
    for _ in range(2):
        release_later(_Held())
    assert len(later) == 2


def test_no_new_thread_means_the_caller_releases(monkeypatch):
    later: collections.deque = collections.deque()
    monkeypatch.setattr(collector_log, "_LATER", later)
    monkeypatch.setattr(collector_log, "_RELEASER", [None])

    def refuse(self):
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    held = _Held()
    gone = weakref.ref(held)
    release_later(held)
    del held
    assert gone() is None and len(later) == 0 and collector_log._RELEASER[0] is None


def test_a_forked_child_starts_its_own_releaser(monkeypatch):
    monkeypatch.setattr(collector_log, "_RELEASER", [object()])
    collector_log._after_fork_in_child()
    assert collector_log._RELEASER[0] is None


def test_an_instrumented_call_hands_its_collector_over(generated_client, server, tel, monkeypatch):
    import baml_py

    from pytest_baml_telemetry import instrument

    released: list = []
    monkeypatch.setattr(sys.modules["pytest_baml_telemetry.instrument"], "release_later", released.append)
    emitter, capture = tel
    mine = baml_py.Collector("mine")
    server.respond("hi", usage=(3, 2)).respond("again", usage=(4, 1))
    b = instrument(generated_client.b, emitter=emitter).with_options(client_registry=server.client_registry("TestClient"))
    assert b.SayHello("x") == "hi"
    assert b.SayHello("y", baml_options={"collector": mine}) == "again"
    assert len(released) == 2 and all(type(c) is baml_py.Collector for c in released)
    assert mine not in released and len(mine.logs) == 1  # the user's collector is theirs
    assert [len(c.logs) for c in released] == [1, 1]  # ours, read, handed over whole
    assert [(c.input_tokens, c.output_tokens) for c in capture.calls] == [(3, 2), (4, 1)]
