"""Shared fixtures: a real session in a temp workspace driven by a scripted model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.config import deep_merge, load_config, parse_override
from agent.events import Event, EventType, Operation, Shutdown, UserInput
from agent.llm.scripted import Script, ScriptedModel
from agent.loop import Agent
from agent.session import Session, open_session
from agent.tools.families import Family

END = {EventType.TURN_COMPLETE, EventType.SHUTDOWN}


@dataclass
class Harness:
    """An agent running in the background, with every event it emitted."""

    agent: Agent
    session: Session
    model: ScriptedModel
    runner: asyncio.Task[None]
    events: list[Event] = field(default_factory=list)
    _reader: asyncio.Task[None] | None = None
    _seen: int = 0
    _closed: bool = False

    def submit(self, op: Operation) -> None:
        self.agent.submit(op)

    async def until(self, *kinds: EventType, within: float = 30) -> Event:
        """Wait for the next event of one of these kinds (after those already returned)."""

        async def wait() -> Event:
            while True:
                while self._seen < len(self.events):
                    ev = self.events[self._seen]
                    self._seen += 1
                    if ev.type in kinds:
                        return ev
                await asyncio.sleep(0.005)

        return await asyncio.wait_for(wait(), within)

    async def turn(self, text: str) -> Event:
        """Send a message and wait for its turn_complete."""
        self.submit(UserInput(text))
        return await self.until(EventType.TURN_COMPLETE)

    def of(self, kind: EventType) -> list[Event]:
        return [e for e in self.events if e.type is kind]

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self.runner.done():
            self.submit(Shutdown())
            await asyncio.wait_for(self.runner, 30)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)
        await self.session.close()


Start = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_agent(tmp_path: Path) -> AsyncIterator[Start]:
    """`await start_agent(script, headless=False, **config)`: a running agent in tmp_path/"ws"."""
    harnesses: list[Harness] = []

    async def start(
        script: Script,
        *,
        headless: bool = True,
        resume: str | None = None,
        model: ScriptedModel | None = None,
        overrides: list[str] = (),
        families: list[Family] | None = None,
        **config: Any,
    ) -> Harness:
        # commands run locally, headless included: these are tests of the loop (the sandbox has its own tests)
        data: dict[str, Any] = deep_merge({"sandbox": {"mode": "none", "allow_unsandboxed": True}}, dict(config))
        for o in overrides:
            data = deep_merge(data, parse_override(o))
        cfg = load_config(overrides=data, use_user_file=False)
        ws = tmp_path / "ws"
        ws.mkdir(exist_ok=True)
        model = model or ScriptedModel(script)
        session = await open_session(
            cfg, workdir=ws, headless=headless, resume=resume, model=model, home=tmp_path / "home", families=families
        )
        agent = Agent(session)
        h = Harness(agent, session, model, asyncio.create_task(agent.run()))

        async def read() -> None:
            async for ev in agent.events():
                h.events.append(ev)

        h._reader = asyncio.create_task(read())
        await h.until(EventType.READY)
        harnesses.append(h)
        return h

    yield start
    for h in harnesses:
        await h.close()
