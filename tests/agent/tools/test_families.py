"""Tool families: selection by name from the config, lazy imports, and dependencies injected through the context."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import pytest

from agent.config import load_config
from agent.env import EnvSnapshot
from agent.errors import ConfigError
from agent.events import Event, EventType, Shutdown, ToolLog, UserInput
from agent.llm.scripted import ScriptedModel, call, say
from agent.loop import Agent
from agent.session import open_session
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.deps import Deps
from agent.tools.families import Family, select


def names(families: list[Family]) -> list[str]:
    return [t.name for f in families for t in f.tools]


def test_a_family_name_selects_all_its_tools() -> None:
    assert names(select(["workspace"])) == ["bash", "read", "write", "edit", "search", "plan"]


def test_family_dot_tool_and_bare_names_select_single_tools() -> None:
    assert names(select(["workspace.read", "search"])) == ["read", "search"]


def test_a_whole_family_wins_over_single_tools_of_it() -> None:
    assert names(select(["workspace.read", "workspace"])) == ["bash", "read", "write", "edit", "search", "plan"]


@pytest.mark.parametrize(
    ("entry", "says"),
    [("nope", "unknown tool 'nope'"), ("nope.read", "unknown tool family 'nope'"), ("workspace.x", "has no tool 'x'")],
)
def test_unknown_entries_name_what_exists(entry: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as e:
        select([entry])
    assert "workspace" in str(e.value)


def test_loading_config_imports_no_tool_family() -> None:
    code = (
        "import sys, agent.config; agent.config.load_config(use_user_file=False); "
        "print(sorted(m for m in sys.modules if m.startswith('agent.tools.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['agent.tools.base', 'agent.tools.deps']"


@dataclass
class Counter:
    """A dependency that records how it was built and closed."""

    token: str | None
    built: list[str] = field(default_factory=list)
    closed: bool = False

    @classmethod
    def from_env(cls, env: EnvSnapshot) -> Self:
        return cls(env.first("DEMO_TOKEN"))

    async def aclose(self) -> None:
        self.closed = True


async def test_deps_are_built_once_from_the_snapshot_and_closed() -> None:
    deps = Deps(EnvSnapshot({"DEMO_TOKEN": "t-123"}))
    first = deps.get(Counter)
    assert first is deps.get(Counter)
    assert first.token == "t-123"
    await deps.aclose()
    assert first.closed


async def test_injected_deps_win_and_are_left_open() -> None:
    given = Counter("injected")
    deps = Deps(EnvSnapshot({"DEMO_TOKEN": "from-env"}), [given])
    assert deps.get(Counter) is given
    await deps.aclose()
    assert not given.closed


@tool(effects=[Effect.READ])
async def whoami(ctx: ToolContext) -> str:
    """Say which token the demo client holds (tests only)."""
    ctx.emit(ToolLog(ctx.call_id, "looking"))
    return f"client built: {ctx.deps.get(Counter).token is not None}"


async def test_open_session_takes_families_deps_and_prompt_vars(tmp_path: Path) -> None:
    env = EnvSnapshot({"DEMO_TOKEN": "t-secret-value-1234", "PATH": "/usr/bin"})
    (tmp_path / "ws").mkdir()
    session = await open_session(
        load_config(use_user_file=False),
        workdir=tmp_path / "ws",
        headless=True,
        model=ScriptedModel([call("whoami"), say("done")]),
        home=tmp_path / "home",
        families=[Family("demo", (whoami,), needs=(Counter,))],
        env=env,
        prompt_vars={"repository": "acme/classifier", "thread": "issue #7", "requester": "octocat"},
    )
    try:
        assert session.toolbox.names() == ["whoami"]
        assert "DEMO_TOKEN" not in session.env  # subprocesses never get it
        assert "acme/classifier; the request came from issue #7, written by @octocat" in session.messages[0].content
        seen = await run_turn(Agent(session), "who am i")
        built = session.deps.get(Counter)
    finally:
        await session.close()
    assert [e.data["output"] for e in seen if e.type is EventType.TOOL_OUTPUT] == ["client built: True"]
    assert [e.data["line"] for e in seen if e.type is EventType.TOOL_LOG] == ["looking"]
    assert built.closed


async def run_turn(agent: Agent, text: str) -> list[Event]:
    runner = asyncio.create_task(agent.run())
    agent.submit(UserInput(text))
    seen = []
    async for ev in agent.events():
        seen.append(ev)
        if ev.type is EventType.TURN_COMPLETE:
            agent.submit(Shutdown())
    await runner
    return seen
