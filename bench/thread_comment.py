"""GitHub API requests of a 100-step thread run: the live progress comment and an approval answered with a 👍.

.venv/bin/python bench/thread_comment.py [--write-docs]

A real agent (scripted model, real loop and tools) drives RunProgress and ThreadApprovals against the fake GitHub
over HTTP. Time is virtual: each step takes STEP_SECONDS (the model "thinks"), and a maintainer reacts 👍 to the
approval card REACT_AFTER seconds after it appears, so the debounce and the polling back-off see a ten-minute run
while the benchmark takes seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from agent.tools.base import Effect, ToolContext, tool  # noqa: E402
from bench.common import Result  # noqa: E402
from bench.report import write_section  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- comment-bench:start -->", "<!-- comment-bench:end -->"
STEPS = 100
STEP_SECONDS = 6.0
APPROVAL_AT = 50
REACT_AFTER = 40.0
TARGET_REQUESTS = 40
TARGET_PER_MINUTE = 20


@tool(effects=[Effect.READ])
async def check(ctx: ToolContext, n: int) -> str:
    """Check one thing.

    Args:
        n: Which.
    """
    return f"check {n}: ok"


@tool(effects=[Effect.PUBLISH])
async def publish(ctx: ToolContext, repo: str) -> str:
    """Push the model to the Hub.

    Args:
        repo: Target repo id.
    """
    return f"pushed to {repo}"


class VirtualClock:
    """Time that moves only when the benchmark moves it; `sleep` takes its deadline when called."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleepers: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> Awaitable[None]:
        target = self.now + seconds
        self.sleepers.append(target)
        return self._until(target)

    async def _until(self, target: float) -> None:
        try:
            while self.now < target:  # noqa: ASYNC110 - another task moves the clock
                await asyncio.sleep(0.0005)
        finally:
            self.sleepers.remove(target)

    @property
    def due(self) -> bool:
        """A sleeper's deadline has passed and it has not woken yet."""
        return any(t <= self.now for t in self.sleepers)


@dataclass
class Written:
    """The progress comment's writer, noting the virtual time of each write (content-creating requests)."""

    inner: Any
    clock: VirtualClock
    at: list[float] = field(default_factory=list)

    async def write(self, body: str) -> None:
        self.at.append(self.clock())
        await self.inner.write(body)


async def quiet(clock: VirtualClock, progress: Any, approvals: Any) -> None:
    """Until everything that is due at this virtual time happened: no sleeper late, no edit in flight or owed,
    the watcher waiting (checked over several turns of the loop, so a task just woken gets to run)."""
    calm = 0
    while calm < 20:
        await asyncio.sleep(0)
        busy = clock.due or not progress.idle or not (approvals.idle or approvals.pending is None)
        calm = 0 if busy else calm + 1
        if busy:
            await asyncio.sleep(0.0005)


async def scenario(folder: Path) -> dict[str, Any]:
    from agent.config import load_config
    from agent.llm.scripted import ScriptedModel, Turn, call, say
    from agent.loop import Agent
    from agent.run import run_task
    from agent.sandbox import LocalSandbox
    from agent.session import open_session
    from agent.tools.families import Family
    from agent.tools.workspace import FAMILY as WORKSPACE
    from bot.approvals import ThreadApprovals
    from bot.progress import RunProgress, ThreadComment
    from bot.render import FinalReport
    from tests.bot.conftest import MAINTAINER
    from tests.bot.fake_github import FakeGitHub, new_key
    from tests.bot.kit import services, started_run

    clock = VirtualClock()
    script: list[Turn | str] = []
    for i in range(STEPS):
        if i == APPROVAL_AT:
            script.append(call("publish", repo="alice/distilbert-imdb"))
        elif i % 25 == 0:
            items = [{"content": f"part {k}", "status": "completed" if k * 25 < i else "pending"} for k in range(4)]
            script.append(call("plan", todos=items))
        else:
            script.append(call("check", n=i))
    script.append(say("All done."))
    state: dict[str, Any] = {}

    class Paced(ScriptedModel):
        async def complete(self, *args: Any, **kwargs: Any) -> Any:
            await quiet(clock, state["progress"], state["approvals"])
            clock.now += STEP_SECONDS
            await quiet(clock, state["progress"], state["approvals"])
            return await super().complete(*args, **kwargs)

    key, pem = new_key()
    with FakeGitHub(key.public_key()) as fake:
        fake.permissions[("Codertocat/Hello-World", MAINTAINER)] = "admin"
        async with services(fake, pem, folder) as s:
            run = await started_run(s)
            fake.calls.clear()
            session = await open_session(
                load_config(use_user_file=False),
                workdir=folder,
                headless=False,
                model=Paced(script),
                home=folder,
                families=[Family("bench", (check, publish)), WORKSPACE.only(["plan"])],
                sandbox=LocalSandbox(),
            )
            writer = Written(ThreadComment(s, run), clock)
            progress = RunProgress(run, writer, clock=clock, wall=clock, sleep=clock.sleep)
            approvals = ThreadApprovals(s, run, sleep=clock.sleep)
            state.update(progress=progress, approvals=approvals)
            agent = Agent(session)
            watcher = asyncio.create_task(approvals.run(agent))
            maintainer = asyncio.create_task(answer_card(approvals, progress, fake, run, clock, MAINTAINER))

            def on_event(event: Any) -> None:
                progress.on_event(event)
                approvals.on_event(event)

            try:
                outcome = await run_task(agent, "evaluate and publish the model", on_event)
                await progress.close(FinalReport(outcome))
            finally:
                watcher.cancel()
                maintainer.cancel()
                await asyncio.gather(watcher, maintainer, return_exceptions=True)
                await session.close()
            assert outcome.stop_reason == "done", outcome
            calls = [(c.method, c.path, c.status) for c in fake.calls]
            return {"calls": calls, "writes": writer.at, "virtual": clock.now, "polls": approvals.polls}


async def answer_card(approvals: Any, progress: Any, fake: Any, run: Any, clock: VirtualClock, login: str) -> None:
    """A maintainer who looks at the comment REACT_AFTER seconds after the card appears and reacts 👍."""
    while approvals.pending is None:  # noqa: ASYNC110 - the agent's events set it
        await asyncio.sleep(0.0005)
    shown = clock()
    while approvals.pending is not None:
        await quiet(clock, progress, approvals)
        clock.now += 1.0
        if clock() - shown >= REACT_AFTER and not fake.reactions_on("issue_comment", run.comment_id):
            fake.react_as(run.comment_id, login, "+1")


def markdown_table(results: list[Result]) -> list[str]:
    """The rows as a Markdown table (bench/report.py's table, which this does not import: its module pulls in
    the trajectory benchmark)."""
    out = ["| Measurement | Value | Target | Result | Notes |", "|---|--:|---|---|---|"]
    for r in results:
        target = f"≤ {r.target - 0.5:.0f}" if r.target is not None else "—"
        verdict = "info" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        out.append(f"| {r.group[:2]} {r.name} | {r.value:.0f} | {target} | {verdict} | {r.note} |")
    return out


def per_minute(times: list[float]) -> int:
    """The most writes in any 60-second window."""
    return max((sum(1 for u in times if t <= u < t + 60) for t in times), default=0)


def measure(folder: Path) -> tuple[list[Result], dict[str, Any]]:
    data = asyncio.run(scenario(folder))
    calls: list[tuple[str, str, int]] = data["calls"]
    total = len(calls)
    edits = sum(1 for m, p, _ in calls if m in ("PATCH", "POST") and "/access_tokens" not in p)
    polls = [s for m, p, s in calls if m == "GET" and p.endswith("/reactions")]
    minute = per_minute(data["writes"])
    run_min = data["virtual"] / 60
    results = [
        Result(
            "6. thread run",
            "GitHub requests, 100-step run",
            total,
            "",
            target=TARGET_REQUESTS + 0.5,
            digits=0,
            note=f"{run_min:.1f} min of virtual time; the installation token was minted at intake",
        ),
        Result("6. thread run", "comment edits (content-creating)", edits, "", digits=0, note="final state included"),
        Result(
            "6. thread run",
            "most content-creating requests in a minute",
            minute,
            "",
            digits=0,
            target=TARGET_PER_MINUTE + 0.5,
        ),
        Result(
            "6. thread run",
            "reaction polls (304 of them)",
            len(polls),
            "",
            digits=0,
            note=f"{polls.count(304)} answered 304 (free against the rate limit); 👍 after {REACT_AFTER:.0f} s",
        ),
    ]
    return results, data


def write_docs(results: list[Result], data: dict[str, Any]) -> None:
    kinds: dict[str, int] = {}
    for method, path, status in data["calls"]:
        what = re.sub(r"/\d+", "/{id}", path.replace("Codertocat/Hello-World", "{repo}"))
        key = f"{method} {what} → {status}"
        kinds[key] = kinds.get(key, 0) + 1
    block = "\n".join(
        [
            START,
            "## Thread runs: the progress comment and approvals",
            "",
            "`.venv/bin/python bench/thread_comment.py --write-docs` regenerates this section. A real agent (scripted "
            f"model) makes {STEPS} tool calls, {STEP_SECONDS:.0f} s apart in virtual time; call {APPROVAL_AT} needs "
            f"approval, and a maintainer reacts 👍 {REACT_AFTER:.0f} s after the card appears. RunProgress and "
            "ThreadApprovals run with their defaults (edits at least 5 s apart, the gap growing to a fifth of the "
            "run's age up to 60 s; reactions looked at after 3 s, then 1.5× longer each time up to 30 s) against the "
            "fake GitHub over HTTP; the progress comment already exists (intake posts it).",
            "",
            f"- Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            "",
            *markdown_table(results),
            "",
            "Requests by kind:",
            "",
            *[f"- `{k}`: {n}" for k, n in sorted(kinds.items())],
            END,
        ]
    )
    write_section(DOC, START, END, block)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/thread_comment.py", description=__doc__)
    parser.add_argument("--write-docs", action="store_true", help=f"write the section in {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with tempfile.TemporaryDirectory(prefix="ml-intern-bench-comment-") as folder:
        results, data = measure(Path(folder))
    for line in markdown_table(results):
        sys.stdout.write(line + "\n")
    if args.write_docs:
        write_docs(results, data)
        sys.stdout.write(f"wrote {DOC.relative_to(ROOT)}\n")
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
