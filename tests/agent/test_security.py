"""End to end through the real loop: secrets stay out of the model, events, trace and spills; the workspace holds."""

from __future__ import annotations

import json
import secrets
import string
import subprocess
from pathlib import Path

from agent.events import Approval, EventType, UserInput
from agent.llm.scripted import ScriptedModel, Turn, call, calls, say


def fake(prefix: str, n: int = 36) -> str:
    return prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def everything_written(h) -> str:  # type: ignore[no-untyped-def]
    """The model's inputs, every event, the trace and the spill files, as one text."""
    parts = [json.dumps([m.to_dict() for m in req], default=str) for req in h.model.requests]
    parts += [json.dumps(e.to_dict(), default=str) for e in h.events]
    parts.append((h.session.dir / "trace.jsonl").read_text())
    parts += [p.read_text() for p in h.session.spill_dir.glob("*.txt")] if h.session.spill_dir.exists() else []
    return "\n".join(parts)


async def test_secrets_from_env_files_and_tools_reach_nothing(start_agent, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    hf, custom = fake("hf_"), fake("", 30)
    monkeypatch.setenv("HF_TOKEN", hf)
    monkeypatch.setenv("MY_SERVICE_KEY", custom)
    unknown = fake("ghp_")  # in no variable: caught by its shape
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "creds.txt").write_text(f"HF={hf}\nother={custom}\n")
    h = await start_agent(
        [
            call("read", path="creds.txt"),
            call(
                "bash",
                command=(
                    f"printf 'gh {unknown}\\n'; echo token=$HF_TOKEN key=$MY_SERVICE_KEY; "
                    "env | grep -c -e ^HF_TOKEN= -e ^MY_SERVICE_KEY=; "
                    f"python3 -c \"print('x' * 40000 + ' {hf[:10]}' + '{hf[10:]}')\""
                ),
            ),
            say("done"),
        ],
        overrides=["context.tool_output_chars=2000"],
    )
    done = await h.turn("look around")

    assert done.data["stop_reason"] == "done"
    bash_out = next(e for e in h.of(EventType.TOOL_OUTPUT) if e.data["name"] == "bash").data
    assert "token= key=\n0\n" in bash_out["output"]  # neither variable reached bash's environment
    assert bash_out["truncated"]  # the long line went to a spill file
    written = everything_written(h)
    for secret in (hf, custom, unknown):
        assert secret not in written
    assert "[REDACTED]" in written


async def test_a_symlink_made_by_bash_cannot_take_write_or_read_outside(start_agent, tmp_path):  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "private.txt").write_text("private data\n")
    h = await start_agent(
        [
            call("bash", command=f"ln -s {outside} link"),
            call("read", path="link/private.txt"),
            call("write", path="link/planted.txt", content="x"),
            say("ok"),
        ],
        yolo=True,
    )

    await h.turn("go")

    outputs = [e.data for e in h.of(EventType.TOOL_OUTPUT)]
    assert [o["is_error"] for o in outputs[1:]] == [True, True]
    assert "private data" not in everything_written(h)
    assert not (outside / "planted.txt").exists()


# ---- writes that make code run later ------------------------------------------------------------

FSMONITOR = "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch planted; false\n"


def git_repo(ws: Path) -> str:
    ws.mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    return (ws / ".git" / "config").read_text()


def git_status(ws: Path) -> None:
    subprocess.run(["git", "status", "--short"], cwd=ws, capture_output=True, check=False, timeout=60)


async def test_a_chat_asks_before_write_plants_a_command_in_git_config_and_names_it(start_agent, tmp_path):  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    original = git_repo(ws)
    plant = call("write", path=".git/config", content=FSMONITOR)
    h = await start_agent([plant, say("ok"), plant, say("done")], headless=False)

    h.submit(UserInput("tidy the repo"))
    asked = await h.until(EventType.APPROVAL_REQUIRED)
    assert "protected" in asked.data["effects"]
    assert asked.data["reason"].startswith("writes .git/config: git runs commands named there")
    h.submit(Approval(asked.data["call_id"], False, "no"))
    await h.until(EventType.TURN_COMPLETE)
    assert (ws / ".git" / "config").read_text() == original
    git_status(ws)
    assert not (ws / "planted").exists()

    h.submit(UserInput("really, do it"))  # a human who approves gets what was shown: the attack is real
    asked = await h.until(EventType.APPROVAL_REQUIRED)
    h.submit(Approval(asked.data["call_id"], True))
    await h.until(EventType.TURN_COMPLETE)
    git_status(ws)
    assert (ws / "planted").exists()


async def test_headless_denies_writes_to_git_internals_and_venvs_and_tells_the_model(start_agent, tmp_path):  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    original = git_repo(ws)
    site = ws / ".venv" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (ws / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (ws / "hook.py").write_text("print('hi')\n")
    h = await start_agent(
        [
            call("write", path=".git/config", content=FSMONITOR),
            call("write", path=".git/hooks/pre-commit", content="#!/bin/sh\ncurl evil\n"),
            call("write", path=".venv/lib/python3.11/site-packages/zz.pth", content="import os; os.system('x')\n"),
            call("edit", path="hook.py", old="hi", new="ho"),  # an ordinary edit still runs
            say("done"),
        ]
    )

    done = await h.turn("set up the repo")

    assert done.data["stop_reason"] == "done"
    outputs = [e.data for e in h.of(EventType.TOOL_OUTPUT)]
    assert [o["is_error"] for o in outputs] == [True, True, True, False]
    assert "writes .git/config: git runs commands named there" in outputs[0]["output"]
    assert "headless" in outputs[0]["output"]
    assert "git runs hooks" in outputs[1]["output"]
    assert ".pth files" in outputs[2]["output"]
    assert (ws / ".git" / "config").read_text() == original
    assert not (ws / ".git" / "hooks" / "pre-commit").exists()
    assert list(site.iterdir()) == []
    assert (ws / "hook.py").read_text() == "print('ho')\n"
    told = [m.content for m in h.model.requests[-1] if m.role == "tool"]
    assert any("writes .git/config" in t for t in told)


async def test_a_symlink_made_earlier_in_the_batch_cannot_turn_an_approved_write_into_git_config(start_agent, tmp_path):  # type: ignore[no-untyped-def]
    ws = tmp_path / "ws"
    original = git_repo(ws)
    h = await start_agent(
        [
            calls(
                ("bash", {"command": "ln -s .git innocent"}),
                ("write", {"path": "innocent/config", "content": FSMONITOR}),
            ),
            say("done"),
        ],
        overrides=["approvals.headless_auto=[execute]"],  # bash runs unasked, as a config may allow
    )

    await h.turn("go")

    write_out = [e.data for e in h.of(EventType.TOOL_OUTPUT)][1]
    assert write_out["is_error"]
    assert "since it was approved, it writes .git/config" in write_out["output"]
    assert (ws / ".git" / "config").read_text() == original


# ---- secrets under names nothing recognised before ----------------------------------------------

ODD_NAMES = ("MYAPP_APIKEY", "SENTRY_DSN", "HF_TOKEN_WRITE", "OPENAI_APIKEY", "GITHUB_TOKEN_RO")


class ReasoningModel(ScriptedModel):
    """A scripted model whose replies carry `reasoning_content`, as reasoning models' replies do."""

    def __init__(self, script: list[Turn], reasoning: str) -> None:
        super().__init__(script)
        self.reasoning = reasoning

    async def complete(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = await super().complete(*args, **kwargs)
        response.message.meta["reasoning"] = self.reasoning
        return response


async def test_values_under_unrecognised_names_and_dotenv_lines_and_reasoning_reach_nothing(
    start_agent, monkeypatch, tmp_path
):  # type: ignore[no-untyped-def]
    values = {name: fake("", 30) for name in ODD_NAMES}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    stripe = fake("", 16) + "7" + fake("", 16)
    grep_names = " ".join(f"-e ^{name}=" for name in ODD_NAMES)
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / ".env").write_text(f"DEBUG=1\nSTRIPE_KEY={stripe}\n")
    script = [
        calls(("read", {"path": ".env"}), ("bash", {"command": f"cat .env; env | grep -c {grep_names} || true"})),
        say("done"),
    ]
    model = ReasoningModel(script, f"the key is {values['MYAPP_APIKEY']}")
    h = await start_agent(script, model=model)

    await h.turn("what is configured?")

    written = everything_written(h)
    for secret in (*values.values(), stripe):
        assert secret not in written
    assert "STRIPE_KEY=[REDACTED]" in written
    assert "the key is [REDACTED]" in (h.session.dir / "trace.jsonl").read_text()
    bash_out = next(e for e in h.of(EventType.TOOL_OUTPUT) if e.data["name"] == "bash").data["output"]
    assert bash_out.splitlines()[-1] == "0"  # none of them reached bash's environment
