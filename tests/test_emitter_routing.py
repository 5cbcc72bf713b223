"""The emitter's cached handler routing and settable sampling: caches follow every change."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_baml_telemetry.dispatcher import Dispatcher
from pytest_baml_telemetry.emitter import Emitter


def _recorder(seen: list[Any], tag: str) -> Any:
    def handler(name: Any, measurements: Any, metadata: Any, config: Any) -> None:
        seen.append((tag, name[-1], config))

    return handler


def test_a_handler_attached_between_start_and_stop_sees_the_stop() -> None:
    d = Dispatcher("t")
    em = Emitter(dispatcher=d)
    seen: list[Any] = []
    d.attach("a", em.start_event, _recorder(seen, "a"))
    with em.call("F"):
        d.attach("b", em.stop_event, _recorder(seen, "b"), {"k": 1})
    assert seen == [("a", "start", None), ("b", "stop", {"k": 1})]


def test_a_detached_handler_is_not_called_again() -> None:
    d = Dispatcher("t")
    em = Emitter(dispatcher=d)
    seen: list[Any] = []
    d.attach_many("a", list(em.event_names), _recorder(seen, "a"))
    with em.call("F"):
        assert d.detach("a")
    with em.call("F"):
        pass
    assert seen == [("a", "start", None)]


def test_a_failing_handler_is_detached_and_the_others_still_run() -> None:
    d = Dispatcher("t")
    em = Emitter(dispatcher=d)
    seen: list[Any] = []

    def broken(name: Any, measurements: Any, metadata: Any, config: Any) -> None:
        seen.append(("broken", name[-1], config))
        raise RuntimeError("boom")

    d.attach_many("broken", list(em.event_names), broken)
    d.attach_many("ok", list(em.event_names), _recorder(seen, "ok"))
    with em.call("F"):
        pass
    with em.call("G"):
        pass
    assert seen == [("broken", "start", None), ("ok", "start", None), ("ok", "stop", None), ("ok", "start", None), ("ok", "stop", None)]
    assert [h["id"] for h in d.list_handlers()] == ["ok", "ok", "ok"]


def test_a_new_dispatcher_on_the_emitter_is_followed() -> None:
    first, second = Dispatcher("1"), Dispatcher("2")
    em = Emitter(dispatcher=first)
    seen: list[Any] = []
    first.attach_many("a", list(em.event_names), _recorder(seen, "first"))
    second.attach_many("b", list(em.event_names), _recorder(seen, "second"))
    with em.call("F"):
        pass
    em.dispatcher = second
    with em.call("F"):
        pass
    assert [tag for tag, _, _ in seen] == ["first", "first", "second", "second"]


def test_events_not_emitted_get_no_handlers_from_the_cache() -> None:
    d = Dispatcher("t")
    em = Emitter(dispatcher=d, events=("stop",))
    seen: list[Any] = []
    d.attach_many("a", list(em.event_names), _recorder(seen, "a"))
    with em.call("F"):
        pass
    with pytest.raises(ValueError):
        with em.call("F"):
            raise ValueError("x")
    assert seen == [("a", "stop", None)]


def test_enabled_and_sample_rate_can_be_changed_and_are_checked() -> None:
    d = Dispatcher("t")
    em = Emitter(dispatcher=d, enabled=False)
    seen: list[Any] = []
    d.attach_many("a", list(em.event_names), _recorder(seen, "a"))
    with em.call("F"):
        pass
    em.enabled = True
    with em.call("F"):
        pass
    em.sample_rate = 0.0
    with em.call("F"):
        pass
    em.sample_rate = 0.5
    em._random = iter([0.4, 0.6]).__next__
    with em.call("F"):
        pass
    with em.call("F"):
        pass
    assert [kind for _, kind, _ in seen] == ["start", "stop", "start", "stop"]
    assert (em.enabled, em.sample_rate) == (True, 0.5)
    with pytest.raises(TypeError, match=r"Emitter.enabled = 'yes'"):
        em.enabled = "yes"  # type: ignore[assignment]
    with pytest.raises(ValueError, match=r"Emitter.sample_rate = 1.5"):
        em.sample_rate = 1.5


def test_started_follows_the_start_event() -> None:
    em = Emitter(dispatcher=Dispatcher("t"))
    call = em.call("F")
    assert not call.started and not call.ended
    with call:
        assert call.started
    assert call.ended
    with pytest.raises(RuntimeError, match="already started"):
        call.start()
    with pytest.raises(RuntimeError, match=r"stop\(\) on a call that was never started"):
        em.call("F").stop()
