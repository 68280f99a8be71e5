"""The live progress comment of a thread run: agent events in, debounced edits of one comment out.

```python
progress = await RunProgress.open(s, run, redact=session.redactor.redact)   # on the run loop
outcome = await run_task(agent, task, on_event=progress.on_event)
await progress.close(FinalReport(outcome, pr_url=...))                     # the final state, always written
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, Protocol

from agent.events import Event, EventType
from agent.payloads import Ready, payload
from bot import pages
from bot.github import GitHubError
from bot.models import Run
from bot.render import FinalReport, progress
from bot.runloop import on_loop
from bot.services import Services
from bot.view import RunView

logger = logging.getLogger(__name__)

EDIT_INTERVAL = 5.0
"""Seconds between two edits of the progress comment, at least."""
MAX_INTERVAL = 60.0
"""The longest wait between edits: the interval grows with the run's age (a fifth of it) up to this."""

FINAL_ATTEMPTS = 6
"""Tries to write the final state before giving up (each one after the client's own retries)."""


class CommentWriter(Protocol):
    """Writes the whole body of the run's progress comment; raises GitHubError when GitHub refuses."""

    async def write(self, body: str) -> None: ...


class ThreadComment:
    """The run's progress comment, written with the server's GitHub client on the loop that owns it."""

    def __init__(self, s: Services, run: Run, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.s = s
        self.run = run
        self.loop = loop

    async def write(self, body: str) -> None:
        await on_loop(self.loop, self._write(body))

    async def _write(self, body: str) -> None:
        run, github, where = self.run, self.s.github, self.run.installation_id
        if run.comment_id is None:
            found = await github.find_comment(where, run.repo, run.number, run.marker)
            if found is None:
                run.comment_id = await github.create_comment(where, run.repo, run.number, body, run.marker)
                await self.s.store.set_comment(run.id, run.comment_id)
                return
            run.comment_id = int(found["id"])
            await self.s.store.set_comment(run.id, run.comment_id)
        await github.edit_comment(where, run.repo, run.comment_id, body)


class RunProgress:
    """Keeps the run's view from its events and edits the comment: at most once every `interval` seconds, less
    often as the run grows old (a fifth of its age, up to `max_interval`), except when a card appears or goes."""

    def __init__(
        self,
        run: Run,
        writer: CommentWriter,
        *,
        mention: str = "@ml-intern",
        page_url: str = "",
        redact: Callable[[str], str] | None = None,
        interval: float = EDIT_INTERVAL,
        max_interval: float = MAX_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_session: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.run = run
        self.on_session = on_session
        """Told the session id when the agent is ready (the store records it, so the run page finds the trace)."""
        self.writer = writer
        self.view = RunView(run.id, run.requester, status="running")
        self.mention = mention
        self.page_url = page_url
        self.redact = redact
        self.interval, self.max_interval = interval, max_interval
        self.edits = 0
        """Edits written so far (the final one included)."""
        self._clock, self._wall, self._sleep = clock, wall, sleep
        self._last = float("-inf")
        self._began = clock()
        self._dirty = False
        self._urgent = False
        self._poke = asyncio.Event()
        self._writing = False
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    async def open(
        cls, s: Services, run: Run, *, redact: Callable[[str], str] | None = None, interval: float = EDIT_INTERVAL
    ) -> RunProgress:
        """The progress of `run`, built on the run loop: GitHub and store calls hop to the server's loop."""
        main = s.loop
        page_url = await on_loop(main, pages.page_link(s, run.id))
        writer = ThreadComment(s, run, main)
        trace = pages.trace_path(s.data_dir, run) if s.data_dir is not None else None
        earlier = await asyncio.to_thread(pages.read_events, trace) if trace is not None else []

        async def record_session(session_id: str) -> None:
            await on_loop(main, s.store.set_session(run, session_id))

        progress = cls(
            run,
            writer,
            mention=s.me.mention,
            page_url=page_url,
            redact=redact,
            interval=interval,
            on_session=record_session,
        )
        progress.restore(earlier, since=run.started_at or 0.0)
        return progress

    def restore(self, events: Iterable[Event], since: float = 0.0) -> None:
        """Fold in what this run did before a restart (its session's events since `since`), writing nothing: the
        plan, the log and a pending card are there again when the resumed session goes on."""
        for event in events:
            if event.ts >= since:
                self.view.apply(event)

    def on_event(self, event: Event) -> None:
        """Fold an agent event into the view and schedule an edit (cheap; call it on the run's loop)."""
        card = self.view.card
        self.view.apply(event)
        self._dirty = True
        if self.view.card is not card:  # a card to answer appeared, or the answered one went: show it soon
            self._urgent = True
            self._poke.set()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): the next event or close() writes
            return
        if event.type is EventType.READY and self.on_session is not None:
            self._background(loop, self._session(payload(event, Ready)["session_id"]))
        if self._closing or (self._task is not None and not self._task.done()):
            return
        self._task = loop.create_task(self._pump(), name=f"progress-{self.run.id}")

    def _background(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _session(self, session_id: str) -> None:
        assert self.on_session is not None
        try:
            await self.on_session(session_id)
        except Exception:  # the comment goes on without the page's trace
            logger.exception("run %s: could not record its session", self.run.id, extra={"run_id": self.run.id})

    @property
    def idle(self) -> bool:
        """No edit in flight and none due now (a later one may be scheduled)."""
        due = self._dirty and self._clock() >= self._last + self._gap()
        return not self._writing and not due

    async def _nap(self, seconds: float) -> None:
        """Sleep until the next edit is due, or until something urgent comes in."""
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        poked = asyncio.ensure_future(self._poke.wait())
        try:
            await asyncio.wait({sleeper, poked}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            poked.cancel()
            self._poke.clear()

    def _gap(self) -> float:
        """Seconds the next edit waits after the last one."""
        if self._urgent:
            return self.interval
        return min(self.max_interval, max(self.interval, (self._clock() - self._began) / 5))

    def render(self, report: FinalReport | None = None) -> str:
        return progress(
            self.view, self._wall(), report=report, mention=self.mention, page_url=self.page_url, redact=self.redact
        )

    async def _pump(self) -> None:
        while self._dirty and not self._closing:
            wait = self._last + self._gap() - self._clock()
            if wait > 0:
                await self._nap(wait)
                continue
            self._dirty, self._urgent, self._last = False, False, self._clock()
            self._writing = True
            try:
                await self.writer.write(self.render())
                self.edits += 1
            except GitHubError as e:  # written again after the interval, with whatever is newest then
                self._dirty = True
                logger.warning("run %s: progress edit failed: %s", self.run.id, e, extra={"run_id": self.run.id})
            finally:
                self._writing = False

    async def stop(self) -> None:
        """Stop editing without writing a final state (the worker writes it: cancelled, interrupted)."""
        self._closing = True
        tasks = [t for t in (self._task, *self._tasks) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self, report: FinalReport) -> None:
        """Write the final state: after any edit in flight, retried with backoff if GitHub fails; never raises."""
        self._closing = True
        await asyncio.gather(*self._tasks, return_exceptions=True)
        task = self._task
        if task is not None and not task.done():
            if not self._writing:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        body = self.render(report)
        for attempt in range(FINAL_ATTEMPTS):
            try:
                await self.writer.write(body)
                self.edits += 1
                return
            except GitHubError as e:
                logger.warning("run %s: final edit failed: %s", self.run.id, e, extra={"run_id": self.run.id})
                if attempt + 1 < FINAL_ATTEMPTS:
                    await self._sleep(min(60.0, 2.0 * 2**attempt))
        logger.error("run %s: the final state could not be written", self.run.id, extra={"run_id": self.run.id})


__all__ = ["EDIT_INTERVAL", "CommentWriter", "RunProgress", "ThreadComment"]
