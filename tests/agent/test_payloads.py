"""Every event the loop emits carries exactly the keys its typed payload declares."""

from __future__ import annotations

import pytest

from agent.events import Approval, Compact, EventType, UserInput
from agent.llm.scripted import call, say
from agent.payloads import PAYLOADS, TurnComplete, UsageData, payload


def test_every_event_type_has_a_payload() -> None:
    assert set(PAYLOADS) == set(EventType)


async def test_a_session_emits_payloads_of_the_declared_shape(start_agent) -> None:  # type: ignore[no-untyped-def]
    script = [
        call("plan", todos=[{"content": "look", "status": "in_progress"}]),
        call("bash", command="echo one; echo two"),
        call("write", path="a.txt", content="x"),
        call("nope"),
        say("done"),
        say("summary of the work"),
    ]
    h = await start_agent(script, headless=False, max_iterations=9)
    h.submit(UserInput("work"))
    ask = await h.until(EventType.APPROVAL_REQUIRED)
    h.submit(Approval(ask.data["call_id"], approved=True, approver="octocat"))
    await h.until(EventType.TURN_COMPLETE)
    h.submit(Approval("stale", approved=True))
    await h.until(EventType.APPROVAL_IGNORED)
    h.submit(Compact())
    await h.until(EventType.COMPACTED)
    await h.close()
    seen = {e.type for e in h.events}
    assert len(seen) >= 16
    for event in h.events:
        shape = PAYLOADS[event.type]
        keys = set(event.data)
        assert shape.__required_keys__ <= keys <= shape.__required_keys__ | shape.__optional_keys__, event  # type: ignore[attr-defined]


async def test_front_ends_read_payloads_by_kind(start_agent) -> None:  # type: ignore[no-untyped-def]
    h = await start_agent([say("hello")])
    done = await h.turn("hi")
    assert payload(done, TurnComplete)["final"] == "hello"
    with pytest.raises(TypeError, match="carries TurnComplete, not UsageData"):
        payload(done, UsageData)
