"""Approvals from the thread: a real agent (scripted model) whose tool needs approval, answered by `/approve`,
`/deny`, 👍 or 👎 on the progress comment (polled from the fake GitHub over HTTP), only by people with write access,
only for the current card."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.config import load_config
from agent.events import Event, EventType, Shutdown, UserInput
from agent.llm.scripted import ScriptedModel, Turn, call, say
from agent.loop import Agent
from agent.run import run_task, stop
from agent.sandbox import LocalSandbox
from agent.session import open_session
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from bot import commands
from bot.approvals import ThreadApprovals
from bot.github import Target
from bot.models import Request, Run
from bot.progress import RunProgress, ThreadComment
from bot.render import FinalReport
from bot.runloop import RunLoop
from bot.services import Services
from tests.bot.conftest import MAINTAINER, REPO
from tests.bot.fake_github import FakeGitHub
from tests.bot.kit import Clock, services, started_run

Key = tuple[rsa.RSAPrivateKey, str]


@tool(effects=[Effect.PUBLISH, Effect.NETWORK])
async def publish(ctx: ToolContext, repo: str) -> str:
    """Push the model to the Hub.

    Args:
        repo: Target repo id.
    """
    with (ctx.workdir / "published.txt").open("a") as f:
        f.write(repo + "\n")
    return f"pushed to {repo}"


@dataclass
class Live:
    """A thread run in progress: the agent, its progress comment and its approvals watcher."""

    s: Services
    run: Run
    agent: Agent
    model: ScriptedModel
    progress: RunProgress
    approvals: ThreadApprovals
    clock: Clock
    workdir: Path
    events: list[Event] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def on_event(self, event: Event) -> None:
        self.events.append(event)
        self.progress.on_event(event)
        self.approvals.on_event(event)

    async def until(self, check: Callable[[], Any], within: float = 20.0) -> Any:
        async def wait() -> Any:
            while not (value := check()):  # noqa: ASYNC110 - the condition changes in other tasks and threads
                await asyncio.sleep(0.002)
            return value

        return await asyncio.wait_for(wait(), within)

    async def card(self) -> str:
        """Wait until a card is pending and recorded (the run is `waiting_approval`); its call id."""
        call_id = await self.until(lambda: self.approvals.pending)
        while (await self.s.store.pending_approval(self.run.id)) is None:  # noqa: ASYNC110 - the condition changes in other tasks and threads
            await asyncio.sleep(0.002)
        return str(call_id)

    async def poll(self) -> None:
        """Let the watcher's next look at the reactions happen (the injected clock moves past its wait)."""
        await self.until(lambda: self.approvals.idle)
        polls = self.approvals.polls
        self.clock.now += 60
        await self.until(lambda: self.approvals.polls > polls)

    async def command(self, name: str, args: str = "", login: str = MAINTAINER, at: float = 0.0) -> str:
        target = Target("issue_comment", 9000)
        r = Request("command", 1, REPO, self.run.number, False, login, target, args, name, received_at=at)
        return await commands.handle(self.s, r)

    def published(self) -> list[str]:
        path = self.workdir / "published.txt"
        return path.read_text().split() if path.exists() else []


async def drive(agent: Agent, on_event: Callable[[Event], None], task: str | None) -> Event | None:
    """Run the loop until the task's turn (or the resumed one) completes, then shut it down."""
    runner = asyncio.create_task(agent.run())
    if task is not None:
        agent.submit(UserInput(task))
    last = None
    try:
        async for event in agent.events():
            on_event(event)
            if event.type is EventType.TURN_COMPLETE:
                last = event
                agent.submit(Shutdown())
        await runner
    finally:
        await stop(runner)
    return last


@pytest.fixture
async def start(github: FakeGitHub, app_key: Key, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    lives: list[Live] = []
    async with services(github, app_key[1], tmp_path) as s:
        run = await started_run(s)

        async def begin(script: list[Turn | str], *, resume: str | None = None, task: str | None = "go") -> Live:
            workdir = tmp_path / "ws"
            workdir.mkdir(exist_ok=True)
            model = ScriptedModel(script)
            session = await open_session(
                load_config(use_user_file=False),
                workdir=workdir,
                headless=False,
                resume=resume,
                model=model,
                home=tmp_path / "home",
                families=[Family("pub", (publish,))],
                sandbox=LocalSandbox(),
            )
            clock = Clock()
            agent = Agent(session)
            live = Live(
                s,
                run,
                agent,
                model,
                RunProgress(run, ThreadComment(s, run), interval=0.0),
                ThreadApprovals(s, run, first_poll=5.0, sleep=clock.sleep),
                clock,
                workdir,
            )
            live.tasks.append(asyncio.create_task(live.approvals.run(agent)))
            live.tasks.append(asyncio.create_task(drive(agent, live.on_event, task)))
            lives.append(live)
            return live

        yield begin
        for live in lives:
            await live.progress.close(FinalReport(failure="the test ended"))
            for t in live.tasks:
                t.cancel()
            await asyncio.gather(*live.tasks, return_exceptions=True)
            await live.agent.session.close()


PUBLISH = [call("publish", repo="alice/distilbert-imdb"), say("Published.")]


async def finished(live: Live) -> Event:
    last = await asyncio.wait_for(live.tasks[1], 30)
    assert last is not None
    return last


async def test_approve_in_the_thread_continues_the_run(start: Callable[..., Any], github: FakeGitHub) -> None:
    live = await start(PUBLISH)
    call_id = await live.card()
    assert (await live.s.store.get_run(live.run.id)).state == "waiting_approval"  # type: ignore[union-attr]
    await live.until(lambda: "Approval needed" in github.thread_comments(REPO, 1)[0]["body"])
    assert await live.command("approve") == f"approved {call_id}"
    done = await finished(live)
    assert done.data["stop_reason"] == "done" and live.published() == ["alice/distilbert-imdb"]
    decided = [e.data for e in live.events if e.type is EventType.TOOL_STATE_CHANGE and e.data["state"] == "approved"]
    assert decided[0]["by"] == MAINTAINER
    assert (await live.s.store.get_run(live.run.id)).state == "running"  # type: ignore[union-attr]
    assert live.approvals.polls == 0  # woken by the command at once, not by polling


async def test_a_thumbs_up_from_a_maintainer_approves_polled_with_etags(
    start: Callable[..., Any], github: FakeGitHub
) -> None:
    live = await start(PUBLISH)
    await live.card()
    await live.poll()  # the first look, right after the card appeared, then nothing new: the ETag matches
    await live.poll()
    reaction_gets = [c for c in github.calls if c.method == "GET" and c.path.endswith("/reactions")]
    assert [c.status for c in reaction_gets] == [200, 304] and not live.published()
    assert live.run.comment_id is not None
    github.react_as(live.run.comment_id, MAINTAINER, "+1")
    await live.poll()
    done = await finished(live)
    assert done.data["stop_reason"] == "done" and live.published() == ["alice/distilbert-imdb"]
    assert github.count("GET", "/collaborators/Codertocat/permission") == 1


async def test_a_denial_with_a_reason_reaches_the_model(start: Callable[..., Any]) -> None:
    live = await start(PUBLISH)
    await live.card()
    assert (await live.command("deny", "the model card is not ready")).startswith("denied ")
    await finished(live)
    assert live.published() == []
    tool_result = live.model.requests[-1][-1].content
    assert "denied" in tool_result and "the model card is not ready" in tool_result


async def test_a_non_writers_thumbs_up_is_ignored_and_a_maintainers_thumbs_down_denies(
    start: Callable[..., Any], github: FakeGitHub
) -> None:
    live = await start(PUBLISH)
    await live.card()
    assert live.run.comment_id is not None
    github.react_as(live.run.comment_id, "mallory", "+1")  # read access only
    github.react_as(live.run.comment_id, "someapp[bot]", "+1", user_type="Bot")
    await live.poll()
    await live.poll()
    assert not live.published() and live.approvals.pending is not None
    github.react_as(live.run.comment_id, MAINTAINER, "-1")
    await live.poll()
    await finished(live)
    assert live.published() == []
    assert "reacted 👎" in live.model.requests[-1][-1].content
    assert github.count("GET", "/collaborators/mallory/permission") == 1  # cached across polls


async def test_a_stale_or_repeated_answer_does_nothing(start: Callable[..., Any], github: FakeGitHub) -> None:
    script = [call("publish", repo="alice/a"), call("publish", repo="alice/b"), say("Both published.")]
    live = await start(script)
    first = await live.card()
    assert live.run.comment_id is not None
    github.react_as(live.run.comment_id, MAINTAINER, "+1")
    sent_for_the_first = time.time()  # a second maintainer's /approve, written while the first card showed
    await live.poll()
    second = await live.until(lambda: live.approvals.pending not in (None, first) and live.approvals.pending)
    await live.card()
    await live.poll()
    await live.poll()  # the 👍 that answered the first card does not answer the second
    assert live.published() == ["alice/a"] and live.approvals.pending == second
    assert await live.command("approve", at=sent_for_the_first) == "stale: an earlier card"
    assert "answered an earlier card" in github.thread_comments(REPO, 1)[-1]["body"]
    assert live.published() == ["alice/a"] and live.approvals.pending == second
    assert (await live.command("approve", at=time.time())).startswith("approved")
    await finished(live)
    assert live.published() == ["alice/a", "alice/b"]
    assert await live.command("approve") == "nothing waiting for approval"  # too late: nothing happens
    assert "Nothing in this thread is waiting for approval." in github.thread_comments(REPO, 1)[-1]["body"]
    assert live.published() == ["alice/a", "alice/b"]


async def test_a_pending_approval_survives_a_restart(start: Callable[..., Any], github: FakeGitHub) -> None:
    live = await start(PUBLISH)
    call_id = await live.card()
    live.agent.submit(Shutdown())  # the server stops: the turn is suspended, the card stays in the store
    await finished(live)
    for t in live.tasks:
        t.cancel()
    await live.agent.session.close()
    assert (await live.s.store.get_run(live.run.id)).state == "waiting_approval"  # type: ignore[union-attr]
    assert await live.command("approve") == f"approved {call_id}"  # answered while nothing runs
    again = await start(PUBLISH[1:], resume=live.agent.session_id, task=None)
    await finished(again)
    assert again.published() == ["alice/distilbert-imdb"]
    restored = [e for e in again.events if e.type is EventType.APPROVAL_REQUIRED]
    assert [e.data["call_id"] for e in restored] == [call_id]  # the card was live again, then answered


async def test_a_run_on_its_own_loop_is_woken_by_a_command_on_the_servers_loop(
    github: FakeGitHub, app_key: Key, tmp_path: Path
) -> None:
    """As in the server: the agent, its comment and its watcher on the run loop; `/approve` on the main loop."""
    async with services(github, app_key[1], tmp_path) as s:
        run = await started_run(s)
        run_loop = RunLoop()

        async def thread_run() -> str:
            session = await open_session(
                load_config(use_user_file=False),
                workdir=tmp_path,
                headless=False,
                model=ScriptedModel(PUBLISH),
                home=tmp_path / "home",
                families=[Family("pub", (publish,))],
                sandbox=LocalSandbox(),
            )
            agent = Agent(session)
            progress = await RunProgress.open(s, run, interval=0.0)
            approvals = ThreadApprovals(s, run)  # real sleeps: the command must wake it, not a poll
            watcher = asyncio.create_task(approvals.run(agent))
            try:
                outcome = await run_task(agent, "go", lambda e: (progress.on_event(e), approvals.on_event(e)))
                await progress.close(FinalReport(outcome))
            finally:
                watcher.cancel()
                await session.close()
            return outcome.final

        try:
            running = asyncio.ensure_future(run_loop.run(thread_run()))
            while (await s.store.pending_approval(run.id)) is None:  # noqa: ASYNC110 - set from the run loop
                await asyncio.sleep(0.005)
            r = Request("command", 1, REPO, 1, False, MAINTAINER, Target("issue_comment", 9001), "", "approve")
            assert (await commands.handle(s, r)).startswith("approved")
            assert await asyncio.wait_for(running, 20) == "Published."
        finally:
            await asyncio.to_thread(run_loop.stop)
        body = github.thread_comments(REPO, 1)[0]["body"]
        assert body.startswith("✅ **Done**") and "approved by Codertocat" in body
        assert (tmp_path / "published.txt").read_text().split() == ["alice/distilbert-imdb"]
        assert github.count("GET", "/reactions$") == 0
