"""The run driver: one task to its typed outcome, for the CLI, the tests, the benchmarks and the GitHub runners."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_config
from agent.events import Approval, Event, EventType, Shutdown, StopReason
from agent.llm.scripted import ScriptedModel, call, say
from agent.loop import Agent
from agent.messages import Usage
from agent.run import Outcome, run_task
from agent.session import open_session


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (StopReason.DONE, 0),
        (StopReason.ERROR, 1),
        (StopReason.DOOM_LOOP, 1),
        (StopReason.MAX_ITERATIONS, 3),
        (StopReason.BUDGET, 3),
        (StopReason.INTERRUPTED, 130),
        (StopReason.SUSPENDED, 130),
    ],
)
def test_exit_codes(reason: StopReason, code: int) -> None:
    assert Outcome("s", reason, "", 0, Usage()).exit_code == code


async def open_agent(
    tmp_path: Path, model: ScriptedModel, *, resume: str | None = None, headless: bool = True, **config: object
) -> Agent:
    (tmp_path / "ws").mkdir(exist_ok=True)
    session = await open_session(
        load_config(overrides=dict(config), use_user_file=False),
        workdir=tmp_path / "ws",
        headless=headless,
        resume=resume,
        model=model,
        home=tmp_path / "home",
    )
    return Agent(session)


async def test_a_task_runs_to_its_outcome_and_the_loop_shuts_down(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path, ScriptedModel([call("write", path="a.txt", content="x"), say("wrote a.txt")]))
    seen: list[Event] = []
    try:
        outcome = await run_task(agent, "write a file", seen.append)
    finally:
        await agent.session.close()
    assert outcome.stop_reason is StopReason.DONE
    assert (outcome.final, outcome.iterations, outcome.session_id) == ("wrote a.txt", 2, agent.session_id)
    assert outcome.usage.prompt_tokens > 0
    assert [e.type for e in seen][-2:] == [EventType.TURN_COMPLETE, EventType.SHUTDOWN]
    assert (tmp_path / "ws" / "a.txt").read_text() == "x"


async def test_a_limit_is_the_outcome(tmp_path: Path) -> None:
    agent = await open_agent(tmp_path, ScriptedModel([call("plan", todos=[])] * 3), max_iterations=2)
    try:
        outcome = await run_task(agent, "loop")
    finally:
        await agent.session.close()
    assert (outcome.stop_reason, outcome.exit_code) == (StopReason.MAX_ITERATIONS, 3)
    assert "max_iterations" in outcome.final


async def test_a_headless_resume_runs_a_waiting_call_approved_before_its_loop_starts(tmp_path: Path) -> None:
    # a chat: the command waits for a person, who is gone when the loop shuts down
    first = await open_agent(tmp_path, ScriptedModel([call("bash", command="echo hi")]), headless=False)
    events: list[Event] = []

    def shut_down_at_the_question(event: Event) -> None:
        events.append(event)
        if event.type is EventType.APPROVAL_REQUIRED:
            first.submit(Shutdown())

    try:
        suspended = await run_task(first, "say hi", shut_down_at_the_question)
    finally:
        await first.session.close()
    assert suspended.stop_reason is StopReason.SUSPENDED
    call_id = next(e.data["call_id"] for e in events if e.type is EventType.APPROVAL_REQUIRED)

    second = await open_agent(tmp_path, ScriptedModel([say("said hi"), say("and done")]), resume=first.session_id)
    second.submit(Approval(call_id, approved=True, approver="tester"))  # answered before the loop starts
    seen: list[Event] = []
    try:
        outcome = await run_task(second, "anything else?", seen.append)
    finally:
        await second.session.close()
    completes = [e.data["final"] for e in seen if e.type is EventType.TURN_COMPLETE]
    assert completes == ["said hi", "and done"]
    assert outcome.final == "and done"
    assert any(e.type is EventType.TOOL_OUTPUT and "hi" in e.data["output"] for e in seen)
