"""Driving scripted trajectories: through the real Agent, or through a bare loop over plain lists."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, load_config
from agent.events import Event, EventType
from agent.llm import Model, OnRetry, OnText
from agent.loop import Agent
from agent.messages import Message, ModelResponse
from agent.run import run_task
from agent.session import open_session, system_prompt
from agent.tools.base import Tool, Toolbox, ToolContext
from agent.tools.families import select

TASK = "Read the notes and summarise them."


class Stopwatch:
    """Accumulated seconds spent inside wrapped calls."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        self.laps: list[float] = []
        """Seconds of each call, in order."""

    def add(self, seconds: float) -> None:
        self.seconds += seconds
        self.calls += 1
        self.laps.append(seconds)


class TimedModel:
    """A model wrapper that adds the time spent inside `complete()` to a stopwatch.

    Time the loop's own streaming callback takes (emitting chunk events) is loop work, so it is not counted.
    """

    def __init__(self, inner: Model, watch: Stopwatch) -> None:
        self.inner, self.watch = inner, watch
        self.name, self.context_window = inner.name, inner.context_window

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
        return self.inner.count_tokens(messages, tools)

    async def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        stream: bool = False,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
    ) -> ModelResponse:
        in_callback = 0.0

        async def text(delta: str) -> None:
            nonlocal in_callback
            start = time.perf_counter()
            if on_text is not None:
                await on_text(delta)
            in_callback += time.perf_counter() - start

        start = time.perf_counter()
        try:
            return await self.inner.complete(
                messages, tools, stream=stream, on_text=text if on_text else None, on_retry=on_retry
            )
        finally:
            self.watch.add(time.perf_counter() - start - in_callback)

    async def aclose(self) -> None:
        if (close := getattr(self.inner, "aclose", None)) is not None:
            await close()


def timed_tool(t: Tool, watch: Stopwatch) -> Tool:
    """The same tool, its function timed (argument validation stays outside: that is the loop's work)."""
    fn = t.fn

    async def run(ctx: ToolContext, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(ctx, **kwargs)
        finally:
            watch.add(time.perf_counter() - start)

    return dataclasses.replace(t, fn=run)


@dataclasses.dataclass
class Run:
    """One trajectory: wall time from the task to its answer, and the share spent in the model and tools."""

    wall: float
    model_s: float
    tools_s: float
    model_calls: int
    tool_calls: int
    stop_reason: str = "done"
    tool_laps: list[float] = dataclasses.field(default_factory=list)
    """Seconds of each tool call, in order."""

    @property
    def overhead(self) -> float:
        return self.wall - self.model_s - self.tools_s


def bench_config(**overrides: Any) -> AgentConfig:
    """The default config, with the workspace tools only (what the trajectories call) unless overridden."""
    return load_config(overrides={"tools": ["workspace"], **overrides}, use_user_file=False)


def selected_tools(config: AgentConfig) -> list[Tool]:
    """The tools the config's `tools` selects, as a session would offer them."""
    return [t for family in select(config.tools) for t in family.tools]


async def run_agent(model: Model, config: AgentConfig, workdir: Path, home: Path) -> tuple[Run, Agent]:
    """Run TASK through the real Agent (session, trace, events, approvals) until its turn completes."""
    model_watch, tool_watch = Stopwatch(), Stopwatch()
    session = await open_session(
        config, workdir=workdir, headless=True, model=TimedModel(model, model_watch), home=home
    )
    session.toolbox = Toolbox(timed_tool(t, tool_watch) for t in session.toolbox)
    agent = Agent(session)
    marks: dict[EventType, float] = {}

    def mark(event: Event) -> None:  # the turn runs from `ready` (the task is already queued) to `turn_complete`
        if event.type in (EventType.READY, EventType.TURN_COMPLETE):
            marks[event.type] = time.perf_counter()

    outcome = await run_task(agent, TASK, mark)
    await session.close()
    wall = marks[EventType.TURN_COMPLETE] - marks[EventType.READY]
    if outcome.stop_reason != "done":
        raise RuntimeError(f"the benchmark trajectory ended with {outcome.stop_reason!r}: {outcome.final}")
    run = Run(
        wall,
        model_watch.seconds,
        tool_watch.seconds,
        model_watch.calls,
        tool_watch.calls,
        outcome.stop_reason,
        tool_watch.laps,
    )
    return run, agent


async def run_bare(model: Model, config: AgentConfig, workdir: Path, session_dir: Path) -> Run:
    """The same model and tool calls with nothing around them: plain lists, no events, trace or checks."""
    model_watch, tool_watch = Stopwatch(), Stopwatch()
    timed = TimedModel(model, model_watch)
    tools = {t.name: timed_tool(t, tool_watch) for t in selected_tools(config)}
    specs = [t.spec() for t in tools.values()]
    ctx = ToolContext(workdir, session_dir, {}, state={"bash_timeout": config.bash_timeout})
    messages = [Message.system(system_prompt(config, workdir, True)), Message.user(TASK)]

    async def ignore(_: str) -> None:
        return None

    start = time.perf_counter()
    while True:
        response = await timed.complete(messages, specs, stream=config.stream, on_text=ignore)
        messages.append(response.message)
        if not response.message.tool_calls:
            break
        for c in response.message.tool_calls:
            out = await tools[c.name].fn(ctx, **json.loads(c.arguments))
            messages.append(Message.tool(c, out if isinstance(out, str) else out.output))
    wall = time.perf_counter() - start
    return Run(wall, model_watch.seconds, tool_watch.seconds, model_watch.calls, tool_watch.calls)
