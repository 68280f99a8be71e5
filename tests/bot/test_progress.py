"""RunProgress against the fake GitHub over HTTP: debounced edits (injected clock), the final state, 5xx, loops."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from agent.events import Event, EventType, StopReason
from agent.messages import Usage
from agent.run import Outcome
from bot.progress import RunProgress, ThreadComment
from bot.render import FinalReport
from bot.runloop import RunLoop
from tests.bot.conftest import REPO
from tests.bot.fake_github import FakeGitHub, Fault
from tests.bot.kit import Clock, services, started_run

Key = tuple[rsa.RSAPrivateKey, str]


def step_events(i: int) -> list[Event]:
    """What the loop emits for one step: a tool call, its states, its output, the usage so far."""
    cid = f"call_{i}"
    total = {"prompt_tokens": 1000 * i, "completion_tokens": 50 * i, "cached_tokens": 0, "cost_usd": 0.001 * i}
    return [
        Event(EventType.TOOL_CALL, {"call_id": cid, "name": "bash", "arguments": {}, "summary": f"step {i}"}),
        Event(EventType.TOOL_STATE_CHANGE, {"call_id": cid, "name": "bash", "state": "running"}),
        Event(
            EventType.TOOL_OUTPUT,
            {
                "call_id": cid,
                "name": "bash",
                "output": f"ok {i}",
                "is_error": False,
                "truncated": False,
                "spill_path": None,
                "duration_s": 0.1,
                "data": {},
            },
        ),
        Event(EventType.USAGE, {"call": total, "total": total, "context_tokens": 0, "context_window": 0}),
    ]


async def settle(progress: RunProgress) -> None:
    """Let a scheduled edit start and finish (real HTTP), without moving the clock."""
    await asyncio.sleep(0)
    while not progress.idle:  # noqa: ASYNC110 - the condition changes in other tasks and threads
        await asyncio.sleep(0.001)


def done(final: str = "All 100 steps done.") -> FinalReport:
    return FinalReport(Outcome("s1", StopReason.DONE, final, 100, Usage(1000, 100, 0, 0.01)))


async def test_edits_are_debounced_and_the_final_state_is_written(github: FakeGitHub, app_key: Key, tmp_path: Path):
    async with services(github, app_key[1], tmp_path) as s:
        run = await started_run(s)
        clock = Clock()
        progress = RunProgress(run, ThreadComment(s, run), interval=5.0, clock=clock, wall=clock, sleep=clock.sleep)
        before = github.count("PATCH")
        for i in range(100):  # 100 steps, one every second of the injected clock
            for event in step_events(i):
                progress.on_event(event)
            await settle(progress)
            clock.now += 1.0
        await settle(progress)
        mid_run = github.count("PATCH") - before
        assert 2 <= mid_run <= 1 + 100 // 5  # at most one edit per 5 s, and the comment did move
        body = github.thread_comments(REPO, 1)[0]["body"]
        assert "⚙️ **Working**" in body and "step 9" in body
        await progress.close(done())
        body = github.thread_comments(REPO, 1)[0]["body"]
        assert body.startswith("✅ **Done**") and "All 100 steps done." in body and "ok 99" in body
        assert body.endswith(run.marker) and github.count("PATCH") - before == progress.edits == mid_run + 1


async def test_a_5xx_during_an_edit_is_written_later_and_the_final_state_survives_one(
    github: FakeGitHub, app_key: Key, tmp_path: Path
):
    async with services(github, app_key[1], tmp_path, max_attempts=2) as s:
        run = await started_run(s)
        clock = Clock()
        progress = RunProgress(run, ThreadComment(s, run), interval=5.0, clock=clock, wall=clock, sleep=clock.sleep)
        github.faults.append(Fault("PATCH", r"/issues/comments/\d+$", 502, times=2))  # both of the client's tries
        for event in step_events(1):
            progress.on_event(event)
        await settle(progress)
        assert progress.edits == 0 and "step 1" not in github.thread_comments(REPO, 1)[0]["body"]
        clock.now += 5.0  # the next edit is due: the newest state goes out then
        await settle(progress)
        assert progress.edits == 1 and "step 1" in github.thread_comments(REPO, 1)[0]["body"]

        github.faults.append(Fault("PATCH", r"/issues/comments/\d+$", 503, times=4))  # two failed final writes

        async def tick() -> None:
            while True:
                clock.now += 1.0
                await asyncio.sleep(0.001)

        ticker = asyncio.create_task(tick())
        await progress.close(done("finished despite GitHub"))
        ticker.cancel()
        assert "finished despite GitHub" in github.thread_comments(REPO, 1)[0]["body"]
        assert [c.status for c in github.calls if c.method == "PATCH"][-5:] == [503, 503, 503, 503, 200]


async def test_a_run_on_its_own_loop_edits_through_the_servers_client(github: FakeGitHub, app_key: Key, tmp_path: Path):
    """The client and the store belong to this loop; the run's events arrive on the run loop's thread."""
    async with services(github, app_key[1], tmp_path) as s:
        run = await started_run(s)
        run.comment_id = None  # as after a restart: the comment is found by its marker, not posted twice
        run_loop = RunLoop()
        try:

            async def on_the_run_loop() -> int:
                progress = await RunProgress.open(s, run, interval=0.0)
                ready = {"session_id": "sess-1", "model": "m", "tools": [], "resumed": False, "workdir": "w"}
                progress.on_event(Event(EventType.READY, {**ready, "mcp_failures": {}}))
                for event in step_events(7):
                    progress.on_event(event)
                await progress.close(done("from the run loop"))
                assert progress.page_url.startswith("https://bot.example.com/runs/")
                return progress.edits

            edits = await run_loop.run(on_the_run_loop())
        finally:
            await asyncio.to_thread(run_loop.stop)
        comments = github.thread_comments(REPO, 1)
        assert len(comments) == 1 and "from the run loop" in comments[0]["body"] and edits >= 1
        stored = await s.store.get_run(run.id)
        assert stored is not None and stored.session_id == "sess-1"  # the run page can find the trace
        assert "/runs/" in comments[0]["body"] and "token=" in comments[0]["body"]


async def test_an_old_run_edits_less_often_but_a_card_shows_at_once(github: FakeGitHub, app_key: Key, tmp_path: Path):
    async with services(github, app_key[1], tmp_path) as s:
        run = await started_run(s)
        clock = Clock()
        progress = RunProgress(
            run, ThreadComment(s, run), interval=5.0, max_interval=60.0, clock=clock, wall=clock, sleep=clock.sleep
        )
        clock.now += 300  # five minutes into the run: edits come at most once a minute
        for event in step_events(1):
            progress.on_event(event)
        await settle(progress)
        assert progress.edits == 1
        clock.now += 30
        for event in step_events(2):
            progress.on_event(event)
        await settle(progress)
        assert progress.edits == 1  # not due yet
        progress.on_event(
            Event(
                EventType.APPROVAL_REQUIRED,
                {
                    "call_id": "c9",
                    "name": "publish",
                    "summary": "alice/model",
                    "reason": "publish needs approval",
                    "effects": ["publish"],
                    "arguments": {},
                    "cost_usd": None,
                },
            )
        )
        await settle(progress)
        assert progress.edits == 2 and "Approval needed" in github.thread_comments(REPO, 1)[0]["body"]
        await progress.close(done())


async def test_a_resumed_run_shows_what_it_did_before_the_restart(github: FakeGitHub, app_key: Key, tmp_path: Path):
    from agent.trace import TraceWriter, session_dir

    async with services(github, app_key[1], tmp_path) as s:
        s.data_dir = tmp_path / "data"
        run = await started_run(s)
        assert run.started_at is not None
        run.session_id = "sess-2"
        trace = TraceWriter(session_dir("sess-2", s.data_dir) / "trace.jsonl")
        earlier = Event(EventType.TOOL_CALL, {"call_id": "old", "name": "bash", "arguments": {}, "summary": "old run"})
        earlier.ts = run.started_at - 100  # a previous run of the same thread's session
        trace.event(earlier)
        plan = [{"content": "publish the model", "status": "in_progress"}]
        for e in [Event(EventType.PLAN_UPDATED, {"plan": plan}), *step_events(3)]:
            trace.event(e)
        card = {"call_id": "c9", "name": "publish", "summary": "alice/model", "reason": "publish needs approval"}
        trace.event(
            Event(EventType.APPROVAL_REQUIRED, {**card, "effects": ["publish"], "arguments": {}, "cost_usd": 1.0})
        )
        trace.close()
        progress = await RunProgress.open(s, run, interval=0.0)
        assert github.count("PATCH") == 0  # restoring writes nothing
        progress.on_event(Event(EventType.PROCESSING, {}))  # the resumed session goes on
        await settle(progress)
        body = github.thread_comments(REPO, 1)[0]["body"]
        assert "✋ **Waiting for approval**" in body and "Approval needed:** `publish` alice/model" in body
        assert "publish the model** (in progress)" in body and "ok 3" in body and "old run" not in body
        await progress.close(done())
