"""The real loop with a scripted model and the real workspace tools in a temp folder."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.errors import ContextOverflowError, LLMError, SessionError
from agent.events import Approval, Compact, EventType, Interrupt, Undo, UserInput
from agent.llm.scripted import ScriptedModel, Turn, call, calls, say
from agent.loop import EMPTY_NUDGE
from agent.messages import Message, ToolCall
from agent.tools.base import Effect, ToolContext, tool
from agent.trace import read_trace


@tool(effects=[Effect.PUBLISH, Effect.NETWORK])
async def publish(ctx: ToolContext, repo: str) -> str:
    """Push the results to the Hub.

    Args:
        repo: Target repo id.
    """
    ctx.state.setdefault("published", []).append(repo)
    return f"pushed to {repo}"


def tool_messages(h) -> list[Message]:  # type: ignore[no-untyped-def]
    return [m for m in h.session.messages if m.role == "tool"]


async def test_answer_without_tools_completes_the_turn(start_agent):
    h = await start_agent(["Hello! Nothing to do."])
    done = await h.turn("hi")
    assert done.data["stop_reason"] == "done"
    assert done.data["final"] == "Hello! Nothing to do."
    kinds = [e.type for e in h.events]
    assert kinds.index(EventType.PROCESSING) < kinds.index(EventType.ASSISTANT_MESSAGE) < kinds.index(done.type)
    assert h.of(EventType.USAGE)[0].data["total"]["prompt_tokens"] > 0
    assert [e.seq for e in h.events] == sorted(e.seq for e in h.events)


async def test_tools_run_in_the_workspace_and_results_reach_the_model(start_agent):
    h = await start_agent(
        [
            call("write", path="notes/a.txt", content="alpha\nbeta\n"),
            call("bash", command="wc -l notes/a.txt"),
            say("The file has 2 lines."),
        ]
    )
    done = await h.turn("write a file and count its lines")
    assert done.data["stop_reason"] == "done"
    assert (h.session.workdir / "notes" / "a.txt").read_text() == "alpha\nbeta\n"
    last_request = h.model.requests[-1]
    assert "2 notes/a.txt" in last_request[-1].content
    states = [e.data["state"] for e in h.of(EventType.TOOL_STATE_CHANGE) if e.data["name"] == "bash"]
    assert states == ["approved", "running", "done"]


async def test_bad_arguments_become_observations_and_the_loop_goes_on(start_agent):
    h = await start_agent(
        [
            calls(
                ("write", '{"path": "x.txt", "content": "unterminated'),
                ("nonexistent_tool", {}),
                ("read", {"path": 42}),
                ("read", "[1, 2]"),
            ),
            say("I will fix my arguments."),
        ]
    )
    done = await h.turn("go")
    assert done.data["stop_reason"] == "done"
    outputs = [m.content for m in tool_messages(h)]
    assert "not valid JSON" in outputs[0]
    assert "Unknown tool 'nonexistent_tool'" in outputs[1] and "read" in outputs[1]
    assert "invalid arguments for read" in outputs[2]
    assert "must be a JSON object" in outputs[3]
    assert not (h.session.workdir / "x.txt").exists()


async def test_a_tool_that_crashes_is_reported_to_the_model(start_agent):
    @tool(effects=[Effect.READ])
    async def broken(ctx: ToolContext) -> str:
        """Always fails."""
        raise RuntimeError("boom")

    h = await start_agent([call("broken"), say("ok")])
    h.session.toolbox.add(broken)
    await h.turn("go")
    assert "The tool crashed: RuntimeError: boom" in tool_messages(h)[0].content


async def test_max_iterations_stops_and_says_so(start_agent):
    h = await start_agent([call("bash", command=f"echo {i}") for i in range(10)], max_iterations=3)
    done = await h.turn("loop forever")
    assert done.data["stop_reason"] == "max_iterations"
    assert "max_iterations" in done.data["final"] and "3" in done.data["final"]
    assert h.of(EventType.LIMIT_REACHED)[0].data == {"limit": "max_iterations", "value": 3}
    assert len(h.model.requests) == 3


async def test_budget_stops_the_run(start_agent):
    model = ScriptedModel([call("bash", command=f"echo {i}") for i in range(10)], usd_per_1k_tokens=5.0)
    h = await start_agent(None, model=model, budget_usd=0.5)
    done = await h.turn("spend")
    assert done.data["stop_reason"] == "budget"
    assert h.session.budget.spent >= 0.5
    assert h.of(EventType.LIMIT_REACHED)[0].data["limit"] == "budget"


async def test_doom_loop_warns_then_stops(start_agent):
    same = [call("bash", command="cat missing.txt") for _ in range(6)]
    h = await start_agent(same)
    done = await h.turn("read it")
    assert done.data["stop_reason"] == "doom_loop"
    warnings = h.of(EventType.DOOM_LOOP)
    assert [w.data["stopped"] for w in warnings] == [False, True]
    guards = [m for m in h.session.messages if m.meta.get("kind") == "doom_guard"]
    assert len(guards) == 1
    # after the warning the model repeated the same call once more and was stopped before running it
    assert len(h.model.requests) == 4
    assert h.session.messages[-1].role == "tool"  # history stays valid for the next turn


async def test_interactive_approval_denied_reaches_the_model_with_feedback(start_agent):
    h = await start_agent([call("bash", command="rm -rf build"), say("Understood, not deleting.")], headless=False)
    h.submit(UserInput("clean up"))
    ask = await h.until(EventType.APPROVAL_REQUIRED)
    assert ask.data["name"] == "bash" and "execute" in ask.data["effects"]
    h.submit(Approval(ask.data["call_id"], approved=False, feedback="keep the build folder"))
    done = await h.until(EventType.TURN_COMPLETE)
    assert done.data["stop_reason"] == "done"
    result = tool_messages(h)[0].content
    assert "the user denied" in result and "keep the build folder" in result


async def test_interactive_approval_always_covers_later_calls(start_agent):
    h = await start_agent(
        [call("bash", command="echo one"), call("bash", command="echo two"), say("done")], headless=False
    )
    h.submit(UserInput("go"))
    ask = await h.until(EventType.APPROVAL_REQUIRED)
    h.submit(Approval(ask.data["call_id"], approved=True, always=True))
    await h.until(EventType.TURN_COMPLETE)
    assert len(h.of(EventType.APPROVAL_REQUIRED)) == 1
    assert [m.content.strip() for m in tool_messages(h)] == ["one", "two"]


async def test_headless_policy_denies_publish_unless_yolo(start_agent):
    h = await start_agent([call("publish", repo="me/model"), say("could not publish")])
    h.session.toolbox.add(publish)
    await h.turn("ship it")
    assert "approval policy denied" in tool_messages(h)[0].content
    assert "--yolo" in tool_messages(h)[0].content
    assert "published" not in h.session.tool_state

    y = await start_agent([call("publish", repo="me/model"), say("published")], yolo=True)
    y.session.toolbox.add(publish)
    await y.turn("ship it")
    assert y.session.tool_state["published"] == ["me/model"]


async def test_an_approval_for_a_call_not_waiting_is_a_quiet_typed_event(start_agent):
    h = await start_agent(["fine"])
    h.submit(Approval("nope", approved=True))
    ignored = await h.until(EventType.APPROVAL_IGNORED)
    assert ignored.data == {"call_id": "nope", "waiting": []}
    assert not h.of(EventType.ERROR)
    assert (await h.turn("still alive?")).data["final"] == "fine"


async def test_interrupt_kills_a_running_tool_and_keeps_history_valid(start_agent, tmp_path):
    marker = tmp_path / "ws" / "child.pid"
    script = [call("bash", command=f"sleep 60 & echo $! > {marker}; wait"), say("after")]
    h = await start_agent(script, overrides=["sandbox.mode=none"], yolo=True)  # a host pid to check
    h.submit(UserInput("wait a minute"))
    await h.until(EventType.TOOL_STATE_CHANGE)
    for _ in range(500):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.01)
    h.submit(Interrupt())
    done = await h.until(EventType.TURN_COMPLETE, within=10)
    assert done.data["stop_reason"] == "interrupted"
    assert h.of(EventType.INTERRUPTED)
    pid = int(marker.read_text())
    for _ in range(200):
        try:
            import os

            os.kill(pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the tool's child process survived the interrupt")
    assert tool_messages(h)[-1].content.startswith("Tool was not executed")
    assert (await h.turn("and now?")).data["final"] == "after"


def echoing_script(steps: int, *, overflow_at: int | None = None):  # type: ignore[no-untyped-def]
    """Call bash `steps` times with large outputs, answer summary requests, then finish."""
    state = {"calls": 0, "overflowed": False}

    def reply(messages: list[Message]) -> Turn | str:
        if len(messages) == 1:  # the compaction request
            return "Summary: echoed large blocks of x."
        if overflow_at is not None and state["calls"] == overflow_at and not state["overflowed"]:
            state["overflowed"] = True
            raise ContextOverflowError("prompt is too long: 210000 tokens > 200000 maximum")
        if state["calls"] < steps:
            state["calls"] += 1
            return call("bash", command=f"printf 'x%.0s' $(seq 4000); echo {state['calls']}")
        return "all done"

    return reply


async def test_context_overflow_compacts_then_retries(start_agent):
    h = await start_agent(echoing_script(5, overflow_at=5))
    done = await h.turn("do it")
    assert done.data["final"] == "all done"
    compacted = h.of(EventType.COMPACTED)[0].data
    assert compacted["forced"] is True and compacted["after_tokens"] < compacted["before_tokens"]
    assert any(m.meta.get("kind") == "summary" for m in h.session.messages)


async def test_history_is_compacted_automatically_near_the_window(start_agent):
    h = await start_agent(
        echoing_script(6), overrides=["context.context_window=6000", "context.keep_recent_messages=2"]
    )
    done = await h.turn("echo a lot")
    assert done.data["stop_reason"] == "done"
    compacted = h.of(EventType.COMPACTED)[0].data
    assert compacted["forced"] is False and compacted["after_tokens"] < compacted["before_tokens"]
    assert all(e.data["context_window"] == 6000 for e in h.of(EventType.USAGE))


async def test_compaction_that_cannot_fit_stops_with_a_visible_error(start_agent):
    h = await start_agent(["never reached"], overrides=["context.context_window=50"])
    done = await h.turn("x" * 4000)
    assert done.data["stop_reason"] == "error"
    assert h.of(EventType.ERROR)[0].data["kind"] == "CompactionError"


async def test_llm_errors_end_the_turn_with_their_hint(start_agent):
    h = await start_agent([LLMError("401 Unauthorized", kind="auth", hint="set HF_TOKEN")])
    done = await h.turn("hi")
    assert done.data["stop_reason"] == "error"
    err = h.of(EventType.ERROR)[0].data
    assert err["kind"] == "auth" and err["hint"] == "set HF_TOKEN"


async def test_undo_drops_the_last_turn(start_agent):
    h = await start_agent(["first answer", "second answer"])
    await h.turn("question one")
    await h.turn("question two")
    h.submit(Undo())
    undone = await h.until(EventType.UNDO_COMPLETE)
    assert undone.data["removed"] == 2
    assert [m.content for m in h.session.messages if m.role == "user"] == ["question one"]


async def test_manual_compact_summarises_whatever_the_size(start_agent):
    answers = [f"answer {i}" for i in range(5)]
    h = await start_agent([*answers, "Summary: five questions answered."], overrides=["context.keep_recent_messages=2"])
    for i in range(5):
        await h.turn(f"question {i}")
    h.submit(Compact())
    done = await h.until(EventType.COMPACTED, EventType.ERROR)
    assert done.type is EventType.COMPACTED and done.data["forced"] is True
    assert done.data["after_tokens"] < done.data["before_tokens"]
    users = [m.content for m in h.session.messages if m.role == "user"]
    assert users[0] == "question 0" and users[1].startswith("[Summary of earlier work")
    assert users[-1] == "question 4"
    assert h.model.remaining == 0  # exactly one summary call


async def test_operations_sent_during_a_turn_wait_for_it(start_agent):
    h = await start_agent([call("bash", command="sleep 0.3"), say("one"), say("two")])
    h.submit(UserInput("first"))
    h.submit(UserInput("second"))
    first = await h.until(EventType.TURN_COMPLETE)
    second = await h.until(EventType.TURN_COMPLETE)
    assert (first.data["final"], second.data["final"]) == ("one", "two")


async def test_secrets_never_reach_the_model_or_events(start_agent, monkeypatch):
    secret = "hf_" + "Q" * 34
    monkeypatch.setenv("HF_TOKEN", secret)
    h = await start_agent([call("bash", command='echo "token=$HF_TOKEN"'), say("done")])
    await h.turn(f"my token is {secret}")
    sent = json.dumps([m.to_dict() for r in h.model.requests for m in r])
    assert secret not in sent
    assert secret not in json.dumps([e.to_dict() for e in h.events])
    assert secret not in (h.session.dir / "trace.jsonl").read_text()


async def test_read_only_calls_run_concurrently(start_agent):
    h = await start_agent(
        [
            calls(("bash", {"command": "echo w > f.txt"}), ("read", {"path": "f.txt"}), ("search", {"pattern": "w"})),
            say("ok"),
        ]
    )
    await h.turn("go")
    outs = tool_messages(h)
    assert [m.name for m in outs] == ["bash", "read", "search"]
    assert "w" in outs[1].content


async def test_streamed_text_arrives_in_chunks(start_agent):
    h = await start_agent([Turn(text="a fairly long streamed answer " * 3)])
    await h.turn("stream please")
    chunks = h.of(EventType.ASSISTANT_CHUNK)
    assert len(chunks) > 1
    assert "".join(c.data["text"] for c in chunks) == h.of(EventType.ASSISTANT_MESSAGE)[0].data["text"]
    assert h.of(EventType.ASSISTANT_STREAM_END)


async def test_a_new_process_resumes_a_turn_waiting_for_approval(start_agent):
    h = await start_agent([call("bash", command="echo resumed > out.txt")], headless=False)
    h.submit(UserInput("do it"))
    ask = await h.until(EventType.APPROVAL_REQUIRED)
    # While the first process holds the session, nobody else may open it ...
    with pytest.raises(SessionError, match=r"is open in process \d+"):
        await start_agent(None, model=ScriptedModel([]), headless=False, resume=h.session.id)
    # ... until it dies without closing anything (the OS drops its lock; simulated here by releasing it).
    # Another process then opens the session from its trace, answers the approval, and the turn goes on.
    assert h.session._lock is not None
    h.session._lock.close()
    h2 = await start_agent(None, model=ScriptedModel([say("all done")]), headless=False, resume=h.session.id)
    assert h2.session.resumed
    ask2 = await h2.until(EventType.APPROVAL_REQUIRED)
    assert ask2.data["call_id"] == ask.data["call_id"]
    h2.submit(Approval(ask2.data["call_id"], approved=True, approver="maintainer"))
    done = await h2.until(EventType.TURN_COMPLETE)
    assert done.data["final"] == "all done"
    assert (h2.session.workdir / "out.txt").read_text() == "resumed\n"
    assert [m.role for m in h2.session.messages[-3:]] == ["assistant", "tool", "assistant"]


async def test_shutdown_suspends_a_waiting_turn_for_a_later_resume(start_agent):
    h = await start_agent([call("bash", command="echo later > later.txt")], headless=False)
    h.submit(UserInput("do it"))
    ask = await h.until(EventType.APPROVAL_REQUIRED)
    await h.close()
    assert h.of(EventType.TURN_COMPLETE)[-1].data["stop_reason"] == "suspended"
    h2 = await start_agent(None, model=ScriptedModel([say("ok")]), headless=False, resume=h.session.id)
    ask2 = await h2.until(EventType.APPROVAL_REQUIRED)
    assert ask2.data["call_id"] == ask.data["call_id"]
    h2.submit(Approval(ask2.data["call_id"], approved=False, feedback="not now"))
    await h2.until(EventType.TURN_COMPLETE)
    assert not (h2.session.workdir / "later.txt").exists()


async def test_structured_arguments_reach_events_as_plain_json(start_agent):
    todos = [{"content": "Look around", "status": "in_progress"}, {"content": "Report", "status": "pending"}]
    h = await start_agent([call("plan", todos=todos), say("planned")])
    await h.turn("plan it")
    assert h.of(EventType.TOOL_CALL)[0].data["arguments"] == {"todos": todos}
    assert h.of(EventType.PLAN_UPDATED)[0].data["plan"] == todos
    assert h.session.plan == todos
    json.dumps([e.to_dict() for e in h.events])


async def test_a_secret_split_across_stream_chunks_is_redacted(start_agent, monkeypatch):
    secret = "hf_" + "Z" * 34
    monkeypatch.setenv("HF_TOKEN", secret)
    model = ScriptedModel([Turn(text=f"The token is {secret} and that is all.")], chunk_chars=5)
    h = await start_agent(None, model=model)
    await h.turn("what is the token?")
    streamed = "".join(e.data["text"] for e in h.of(EventType.ASSISTANT_CHUNK))
    assert streamed == "The token is [REDACTED] and that is all."
    assert "ZZZZZ" not in json.dumps([e.to_dict() for e in h.events])


async def test_who_decided_each_call_is_recorded(start_agent):
    h = await start_agent([call("bash", command="echo a"), call("bash", command="echo b"), say("ok")], headless=False)
    h.submit(UserInput("two commands"))
    first = await h.until(EventType.APPROVAL_REQUIRED)
    h.submit(Approval(first.data["call_id"], approved=True, approver="octocat"))
    second = await h.until(EventType.APPROVAL_REQUIRED)
    h.submit(Approval(second.data["call_id"], approved=False, feedback="enough", approver="hubot"))
    await h.until(EventType.TURN_COMPLETE)
    decided = [(e.data["state"], e.data["by"]) for e in h.of(EventType.TOOL_STATE_CHANGE) if "by" in e.data]
    assert decided == [("approved", "octocat"), ("denied", "hubot")]
    trace = read_trace(h.session.dir)
    assert [e.data.get("by") for e in trace.events if e.type is EventType.TOOL_STATE_CHANGE and "by" in e.data] == [
        "octocat",
        "hubot",
    ]


async def test_calls_run_with_the_arguments_the_model_wrote_and_only_records_are_redacted(start_agent, monkeypatch):
    fixture = "hf_" + "F" * 34  # a token-shaped test fixture the task asks to write, not a secret of ours
    h = await start_agent([call("write", path="fixture.txt", content=f"TOKEN={fixture}\n"), say("written")])
    await h.turn("write the fixture")
    assert (h.session.workdir / "fixture.txt").read_text() == f"TOKEN={fixture}\n"
    assert fixture not in json.dumps([m.to_dict() for m in h.session.messages])
    assert fixture not in (h.session.dir / "trace.jsonl").read_text()
    assert fixture not in json.dumps([e.to_dict() for e in h.events])


async def test_an_empty_answer_is_asked_again_once(start_agent):
    h = await start_agent([say(""), say("the real answer")])
    done = await h.turn("answer me")
    assert (done.data["stop_reason"], done.data["final"]) == ("done", "the real answer")
    assert h.model.requests[1][-1].content == EMPTY_NUDGE


async def test_two_empty_answers_end_the_turn_with_an_error(start_agent):
    h = await start_agent([say(""), say("  ")])
    done = await h.turn("answer me")
    assert done.data["stop_reason"] == "error" and "nothing, twice" in done.data["final"]
    assert h.of(EventType.ERROR)[-1].data["kind"] == "empty_answer"


async def test_calls_sharing_an_id_get_their_own_ids_results_and_approvals(start_agent):
    twins = Turn(
        tool_calls=[
            ToolCall("same", "bash", '{"command": "echo one"}'),
            ToolCall("same", "bash", '{"command": "echo two"}'),
        ]
    )
    h = await start_agent([twins, say("both ran")], headless=False)
    h.submit(UserInput("two commands"))
    first = await h.until(EventType.APPROVAL_REQUIRED)
    second = await h.until(EventType.APPROVAL_REQUIRED)
    assert first.data["call_id"] != second.data["call_id"]
    h.submit(Approval(second.data["call_id"], approved=True))
    h.submit(Approval(first.data["call_id"], approved=True))
    assert (await h.until(EventType.TURN_COMPLETE)).data["final"] == "both ran"
    calls = h.session.messages[-4].tool_calls
    results = [m for m in h.session.messages if m.role == "tool"]
    assert len({c.id for c in calls}) == 2 and [r.tool_call_id for r in results] == [c.id for c in calls]
    assert [r.content.split("\n")[0] for r in results] == ["one", "two"]
