"""Opening, resuming and closing sessions."""

from __future__ import annotations

import base64
import json

import pytest
import respx

from agent.config import load_config
from agent.errors import ConfigError, SessionError
from agent.events import Approval, EventType, UserInput
from agent.llm.scripted import ScriptedModel, call, say
from agent.messages import Message
from agent.session import open_session
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from agent.trace import list_sessions

HUB = "https://hub.test"


async def test_a_new_session_writes_its_meta_and_system_prompt(tmp_path):
    cfg = load_config(use_user_file=False)
    s = await open_session(cfg, workdir=tmp_path, headless=True, model=ScriptedModel([]), home=tmp_path / "h")
    await s.close()
    records = [json.loads(line) for line in (s.dir / "trace.jsonl").read_text().splitlines()]
    meta = records[0]
    assert meta["t"] == "meta" and meta["id"] == s.id and meta["workdir"] == str(tmp_path.resolve())
    assert meta["version"] and meta["headless"] is True
    system = records[1]["m"]
    assert system["role"] == "system" and str(tmp_path.resolve()) in system["content"]
    assert "unattended" in system["content"]


async def test_workdir_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="not a folder"):
        await open_session(
            load_config(use_user_file=False),
            workdir=tmp_path / "missing",
            headless=True,
            model=ScriptedModel([]),
            home=tmp_path,
        )


async def test_resuming_an_unknown_session_says_how_to_list_them(tmp_path):
    with pytest.raises(SessionError, match="--list-sessions"):
        await open_session(
            load_config(use_user_file=False),
            workdir=tmp_path,
            headless=True,
            model=ScriptedModel([]),
            resume="nope",
            home=tmp_path,
        )


async def test_resume_restores_history_usage_and_plan(start_agent):
    todos = [{"content": "one", "status": "in_progress"}]
    from agent.llm.scripted import call

    h = await start_agent([call("plan", todos=todos), say("first done")])
    await h.turn("make a plan")
    await h.close()
    h2 = await start_agent(None, model=ScriptedModel([say("second done")]), resume=h.session.id[:15])
    assert h2.session.plan == todos
    assert h2.session.usage.prompt_tokens == h.session.usage.prompt_tokens
    done = await h2.turn("continue")
    assert done.data["final"] == "second done"
    sent = h2.model.requests[0]
    assert [m.content for m in sent if m.role == "user"] == ["make a plan", "continue"]
    assert h2.of(EventType.READY)[0].data["resumed"] is True


async def test_closing_uploads_the_trace_when_enabled(start_agent, monkeypatch):
    token = "hf_" + "u" * 34
    monkeypatch.setenv("HF_TOKEN", token)
    monkeypatch.setenv("HF_ENDPOINT", HUB)
    h = await start_agent([say("done")], overrides=["traces.enabled=true", "traces.repo=alice/traces"])
    await h.turn(f"hello, my token is {token}")
    with respx.mock(base_url=HUB, assert_all_mocked=True) as hub:
        hub.post("/api/repos/create").respond(200, json={"url": f"{HUB}/datasets/alice/traces", "name": "alice/traces"})
        hub.post("/api/datasets/alice/traces/preupload/main").respond(
            200,
            json={
                "files": [{"path": f"sessions/{h.session.id}.jsonl", "uploadMode": "regular", "shouldIgnore": False}]
            },
        )
        commit = hub.post("/api/datasets/alice/traces/commit/main").respond(
            200,
            json={
                "success": True,
                "commitOid": "c52ce5e45984b9378ef6247fe7a45ed72b096b24",
                "commitUrl": f"{HUB}/datasets/alice/traces/commit/c52ce5e45984b9378ef6247fe7a45ed72b096b24",
            },
        )
        await h.close()
    assert h.session.trace_url == f"{HUB}/datasets/alice/traces/blob/main/sessions/{h.session.id}.jsonl"
    ops = [json.loads(line) for line in commit.calls.last.request.content.decode().splitlines()]
    (file_op,) = [op["value"] for op in ops if op["key"] == "file"]
    uploaded = base64.b64decode(file_op["content"]).decode()
    assert file_op["path"] == f"sessions/{h.session.id}.jsonl"
    assert "hello, my token is [REDACTED]" in uploaded and token not in uploaded


async def test_a_failed_upload_does_not_break_closing(start_agent, monkeypatch, caplog):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    h = await start_agent([say("done")], overrides=["traces.enabled=true"])
    await h.turn("hi")
    await h.close()
    assert h.session.trace_url is None
    assert "not uploaded" in caplog.text and "HF_TOKEN" in caplog.text


async def test_the_model_key_is_redacted_and_kept_out_of_subprocesses(tmp_path, monkeypatch):
    from types import SimpleNamespace

    key = "k3y-" + "q7" * 12
    monkeypatch.setenv("ODDLY_NAMED", key)  # a name the redactor would not guess
    model = ScriptedModel([])
    model.route = SimpleNamespace(api_key=key)  # type: ignore[attr-defined]  # what LiteLLMModel carries
    cfg = load_config(overrides={"llm": {"api_key_env": "ODDLY_NAMED"}}, use_user_file=False)
    s = await open_session(cfg, workdir=tmp_path, headless=True, model=model, home=tmp_path / "h")
    await s.close()
    assert "ODDLY_NAMED" not in s.env
    assert s.redactor.redact(f"the key is {key}") == "the key is [REDACTED]"


@tool(effects=[Effect.SPEND], estimate_cost=lambda args: 3.0)
async def train(ctx: ToolContext, steps: int) -> str:
    """Train on rented hardware (tests only).

    Args:
        steps: Training steps.
    """
    return f"trained {steps} steps"


async def test_resume_keeps_always_grants_and_tool_spend(start_agent):
    paid = [Family("paid", (train,))]
    h = await start_agent([call("train", steps=1), say("trained")], headless=False, families=paid, budget_usd=5)
    h.submit(UserInput("train"))
    ask = await h.until(EventType.APPROVAL_REQUIRED)
    h.submit(Approval(ask.data["call_id"], approved=True, always=True, approver="octocat"))
    await h.until(EventType.TURN_COMPLETE)
    await h.close()

    script = [call("train", steps=2), say("stopped")]
    h2 = await start_agent(
        None, model=ScriptedModel(script), headless=False, families=paid, budget_usd=5, resume=h.session.id
    )
    assert h2.session.budget.tools_usd == 3.0 and "train" in h2.session.policy.always
    await h2.turn("train again")  # always granted, but $3 more does not fit the $2 left: denied without asking
    assert not h2.of(EventType.APPROVAL_REQUIRED)
    denied = [e for e in h2.of(EventType.TOOL_STATE_CHANGE) if e.data["state"] == "denied"]
    assert len(denied) == 1 and "budget" in h2.of(EventType.TOOL_OUTPUT)[-1].data["output"]


async def test_a_headless_resume_does_not_run_a_call_that_waited_for_a_person(start_agent):
    h = await start_agent([call("bash", command="echo ran > ran.txt")], headless=False)
    h.submit(UserInput("do it"))
    await h.until(EventType.APPROVAL_REQUIRED)
    await h.close()  # the person never answered

    h2 = await start_agent(None, model=ScriptedModel([say("it needs approval")]), headless=True, resume=h.session.id)
    await h2.until(EventType.TURN_COMPLETE)
    assert not (h2.session.workdir / "ran.txt").exists()
    decided = [e.data for e in h2.of(EventType.TOOL_STATE_CHANGE) if e.data["state"] == "denied"]
    assert decided[0]["by"] == "headless resume"
    told = h2.model.requests[0][-1]
    assert told.role == "tool" and "waiting for a person's approval" in told.content


async def test_the_session_hands_its_sandbox_to_tools_and_the_policy(tmp_path):
    from agent.sandbox import LocalSandbox

    local = LocalSandbox()
    cfg = load_config(use_user_file=False)
    s = await open_session(cfg, workdir=tmp_path, headless=True, model=ScriptedModel([]), home=tmp_path, sandbox=local)
    await s.close()

    assert s.sandbox is local and s.tool_context("c1", None).sandbox is local
    assert s.policy.unsandboxed  # headless, and commands would run as the user


async def test_a_required_sandbox_that_cannot_run_stops_the_session_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-bwrap-here"))
    cfg = load_config(overrides={"sandbox": {"mode": "bubblewrap"}}, use_user_file=False)

    with pytest.raises(ConfigError, match="apt-get install bubblewrap"):
        await open_session(cfg, workdir=tmp_path, headless=False, model=ScriptedModel([]), home=tmp_path / "h")
    assert not (tmp_path / "h" / "sessions").exists() or not any((tmp_path / "h" / "sessions").iterdir())


async def test_a_call_cut_by_a_crash_is_reported_as_state_unknown_with_its_output(start_agent):
    slow = "echo started; echo half-way; sleep 30; echo finished"
    h = await start_agent([call("bash", command=slow)], headless=True, overrides=["sandbox.mode=none", "yolo=true"])
    h.submit(UserInput("run it"))
    await h.until(EventType.TOOL_LOG)
    while "half-way" not in "".join(e.data["line"] for e in h.of(EventType.TOOL_LOG)):
        await h.until(EventType.TOOL_LOG)
    assert h.session._lock is not None
    h.session._lock.close()  # the process dies here: its lock is gone, its trace stops mid-call

    h2 = await start_agent(None, model=ScriptedModel([say("checked")]), resume=h.session.id)
    await h2.turn("did it finish?")
    told = h2.model.requests[0][-2]
    assert told.role == "tool" and told.content.startswith("State unknown: the session stopped")
    assert told.content.endswith("Last output seen:\nstarted\nhalf-way")
    assert h2.session.messages[-3].meta["state"] == "unknown"


# ---- session ids, copied traces, start-up failures ----------------------------------------------


def _open(tmp_path, resume=None, home=None, model=None, **config):  # type: ignore[no-untyped-def]
    return open_session(
        load_config(overrides=config, use_user_file=False),
        workdir=tmp_path,
        headless=True,
        model=model or ScriptedModel([]),
        resume=resume,
        home=home or tmp_path / "home",
    )


@pytest.mark.parametrize("bad_id", ["../../../x", "a/b", "..", "/abs", ".hidden"])
async def test_a_trace_whose_id_would_leave_the_sessions_folder_is_refused(tmp_path, bad_id):  # type: ignore[no-untyped-def]
    crafted = tmp_path / "crafted" / "trace.jsonl"
    crafted.parent.mkdir()
    lines = [
        {"t": "meta", "ts": 1, "id": bad_id, "model": "scripted"},
        {"t": "msg", "ts": 1, "m": {"role": "system", "content": "s"}},
    ]
    crafted.write_text("".join(json.dumps(r) + "\n" for r in lines))
    before = sorted(p for p in tmp_path.rglob("*"))

    with pytest.raises(SessionError, match="is not a session id"):
        await _open(tmp_path, resume=str(crafted), home=tmp_path / "a" / "b" / "home")

    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written anywhere


async def test_a_resume_id_that_is_no_id_is_refused_and_an_empty_one_too(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(SessionError, match="is not a session id"):
        await _open(tmp_path, resume="../../etc")
    with pytest.raises(SessionError, match="give a session id"):
        await _open(tmp_path, resume="")


async def test_resuming_a_copied_trace_keeps_the_system_prompt_and_history(tmp_path):  # type: ignore[no-untyped-def]
    first = await _open(tmp_path, home=tmp_path / "laptop")
    first.add(Message.user("remember 7"))
    await first.close()
    copy = tmp_path / "shared" / "trace.jsonl"
    copy.parent.mkdir()
    copy.write_bytes((first.dir / "trace.jsonl").read_bytes())

    moved = await _open(tmp_path, resume=str(copy), home=tmp_path / "server")
    moved.add(Message.user("what was it?"))
    await moved.close()
    again = await _open(tmp_path, resume=first.id, home=tmp_path / "server")  # by id, where it now lives
    await again.close()

    assert moved.dir == tmp_path / "server" / "sessions" / first.id
    assert [m.role for m in again.messages] == ["system", "user", "user"]
    assert [m.content for m in again.messages[1:]] == ["remember 7", "what was it?"]
    assert copy.read_bytes() == (first.dir / "trace.jsonl").read_bytes()  # the copy itself is left as it was
    with pytest.raises(SessionError, match="is already in"):  # a second, different copy does not overwrite it
        await _open(tmp_path, resume=str(copy), home=tmp_path / "server")


async def test_a_session_that_fails_to_start_leaves_nothing_to_list(tmp_path):  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        await _open(tmp_path, system_prompt="nope.j2")
    with pytest.raises(ConfigError):
        await _open(tmp_path, tools=["bash", "nope"])

    assert list_sessions(tmp_path / "home") == []
    assert not any((tmp_path / "home" / "sessions").iterdir())
