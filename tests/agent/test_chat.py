"""The interactive chat, in process: a real session and loop, a scripted model, lines fed through stdin."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from agent.chat import Chat
from agent.config import load_config
from agent.llm.scripted import Script, ScriptedModel, call, say
from agent.loop import Agent
from agent.reader import LineReader
from agent.session import open_session
from agent.ui import ConsoleRenderer

pytestmark = pytest.mark.slow  # real processes: `pytest -m "not slow"` skips them for a quick loop


async def chat(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    script: Script,
    lines: list[str],
    resume: str | None = None,
    **config: Any,
) -> tuple[int, str, ScriptedModel]:
    """Run a chat over `lines` (end of input after them); returns the exit code, the output and the model."""
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(f"{line}\n" for line in lines)))
    model = ScriptedModel(script)
    cfg = load_config(None, config, use_user_file=False)
    session = await open_session(cfg, workdir=tmp_path, headless=False, resume=resume, model=model)
    out = io.StringIO()
    try:
        code = await Chat(Agent(session), ConsoleRenderer(Console(file=out, width=100)), LineReader()).run()
    finally:
        await session.close()
    return code, out.getvalue(), model


async def test_always_approves_the_tool_for_the_rest_of_the_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = [call("write", path="a.txt", content="1"), call("write", path="b.txt", content="2"), say("Both written.")]
    code, out, _ = await chat(tmp_path, monkeypatch, script, ["write two files", "a"], approvals={"ask": ["write"]})
    assert code == 0
    assert (tmp_path / "a.txt").read_text() == "1"
    assert (tmp_path / "b.txt").read_text() == "2"
    assert out.count("approval needed · write") == 1
    assert "Both written." in out


async def test_end_of_input_at_an_approval_leaves_the_call_pending_until_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask = {"ask": ["write"]}
    code, out, _ = await chat(
        tmp_path,
        monkeypatch,
        [call("write", path="a.txt", content="1"), say("unused")],
        ["write a file"],
        approvals=ask,
    )
    assert code == 0
    assert not (tmp_path / "a.txt").exists()
    session_id = out.split("ml-intern --resume ")[1].split()[0]

    code, out, _ = await chat(tmp_path, monkeypatch, [say("Written now.")], ["y"], resume=session_id, approvals=ask)
    assert code == 0
    assert "(resumed)" in out
    assert out.index("approval needed · write") < out.index("Written now.")
    assert (tmp_path / "a.txt").read_text() == "1"


async def test_compact_summarises_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = [call("read", path="missing.txt"), say("It does not exist."), say("The user asked about missing.txt.")]
    code, out, model = await chat(
        tmp_path, monkeypatch, script, ["read missing.txt", "/compact", "/quit"], context={"keep_recent_messages": 1}
    )
    assert code == 0
    assert "compacted the history" in out
    assert "(2 messages summarised)" in out
    assert model.remaining == 0


async def test_a_bad_model_id_is_refused_and_the_old_model_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = await chat(tmp_path, monkeypatch, [], ["/model no-provider-model", "/model"])
    assert code == 0
    assert "cannot switch model" in out
    assert "unknown model 'no-provider-model'" in out
    assert "model: scripted" in out


async def test_an_existing_path_is_a_message_not_a_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    top = "/" + tmp_path.parts[1]  # a folder that exists, e.g. the temp root
    code, out, model = await chat(tmp_path, monkeypatch, [say("It is a folder.")], [f"{top} is what?", "/nope"])
    assert code == 0
    assert model.requests[0][-1].content == f"{top} is what?"
    assert "unknown command /nope" in out
    assert f"unknown command {top}" not in out


async def test_end_of_input_at_a_resumed_approval_quits_without_inviting_a_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask = {"ask": ["write"]}
    _, out, _ = await chat(tmp_path, monkeypatch, [call("write", path="a.txt", content="1")], ["write"], approvals=ask)
    session_id = out.split("ml-intern --resume ")[1].split()[0]

    code, out, _ = await chat(tmp_path, monkeypatch, [], [], resume=session_id, approvals=ask)
    assert code == 0
    assert "approval needed · write" in out
    assert "type a task" not in out
    assert "paused: waiting for an approval" in out
    assert f"continue with: ml-intern --resume {session_id}" in out


async def test_undo_with_nothing_to_undo_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = await chat(tmp_path, monkeypatch, [], ["/undo"])
    assert code == 0
    assert "nothing to undo" in out


async def test_help_lists_command_arguments(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = await chat(tmp_path, monkeypatch, [], ["/help"])
    assert code == 0
    assert "/model [id]" in out
