"""Opening, resuming and closing sessions."""

from __future__ import annotations

import base64
import json

import pytest
import respx

from agent.config import load_config
from agent.errors import ConfigError, SessionError
from agent.events import EventType
from agent.llm.scripted import ScriptedModel, say
from agent.messages import Message
from agent.session import open_session
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
