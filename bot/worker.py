"""The worker: takes requests from the inbox and queued runs from the store, off the request path, and executes runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from bot import intake, render
from bot.models import InboxItem, Run
from bot.runloop import RunLoop
from bot.services import Services

logger = logging.getLogger(__name__)

RECOVER_EVERY = 10
"""Polls between looks for runs left behind by dead peers."""
INTAKE_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a run ended: its answer (or the reason it failed) and the agent session it used."""

    ok: bool
    text: str
    session_id: str | None = None
    finish: Callable[[bool], Coroutine[Any, Any, None]] | None = None
    """Writes the final state into the progress comment (True) or just stops showing the run (False, when it
    ended otherwise meanwhile); the worker awaits it on the run loop once the store has recorded the end."""


class RunExecutor(Protocol):
    """Executes one claimed run. The thread runner of the next issue plugs in here."""

    async def execute(self, run: Run) -> Outcome: ...


class Worker:
    """One per server process. `wake()` makes it look for work now; otherwise it polls."""

    def __init__(self, s: Services, executor: RunExecutor, *, poll_seconds: float = 1.0) -> None:
        self.s = s
        self.executor = executor
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._main: asyncio.Task[None] | None = None
        self._runs: dict[int, asyncio.Task[None]] = {}
        self._intake: set[asyncio.Task[None]] = set()
        self._intake_slots = asyncio.Semaphore(INTAKE_CONCURRENCY)
        self._stopping: set[int] = set()
        self._run_loop: RunLoop | None = None
        s.wake = self.wake
        s.stop_runs = self.stop_runs

    def wake(self) -> None:
        self._wake.set()

    @property
    def active(self) -> int:
        return len(self._runs)

    async def start(self) -> list[Run]:
        """Resolve runs a dead process left `running`, then start working; returns the runs resolved."""
        recovered = await self.recover()
        self._run_loop = RunLoop()
        self._main = asyncio.create_task(self._loop(), name="ml-intern-worker")
        return recovered

    async def recover(self) -> list[Run]:
        runs = await self.s.store.recover()
        for run in runs:
            await self.s.show(run, render.interrupted(run, self.s.public_url), look_first=True)
        return runs

    async def stop(self) -> None:
        """Stop taking work; runs in flight end as `interrupted` and say so."""
        if self._main is not None:
            self._main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        tasks = [*self._intake, *self._runs.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._run_loop is not None:
            await asyncio.to_thread(self._run_loop.stop)

    async def stop_runs(self, run_ids: list[int]) -> None:
        """Cancel runs executing in this process (others are found by their process's poll)."""
        for run_id in run_ids:
            task = self._runs.get(run_id)
            if task is not None and run_id not in self._stopping:
                self._stopping.add(run_id)
                task.cancel()

    async def _loop(self) -> None:
        polls = 0
        while True:
            try:
                await self._take_requests()
                await self._take_runs()
                await self.stop_runs(await self.s.store.cancel_requested(list(self._runs)))
                polls += 1
                if polls % RECOVER_EVERY == 0:
                    await self.recover()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.s.count_error("worker")
                logger.exception("worker loop failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            self._wake.clear()

    async def _take_requests(self) -> None:
        while not self._intake_slots.locked():
            item = await self.s.store.claim_inbox()
            if item is None:
                return
            await self._intake_slots.acquire()
            task = asyncio.create_task(self._intake_one(item))
            self._intake.add(task)
            task.add_done_callback(self._intake.discard)

    async def _intake_one(self, item: InboxItem) -> None:
        try:
            await intake.process(self.s, item)
        except Exception:
            self.s.count_error("intake")
            logger.exception("request %s failed", item.id, extra={"delivery_id": item.delivery_id})
            await self.s.store.finish_inbox(item.id, "failed")
        finally:
            self._intake_slots.release()

    async def _take_runs(self) -> None:
        while len(self._runs) < self.s.store.max_runs:
            run = await self.s.store.claim_run()
            if run is None:
                return
            self._runs[run.id] = asyncio.create_task(self._execute(run), name=f"run-{run.id}")

    async def _execute(self, run: Run) -> None:
        log = {"run_id": run.id}
        logger.info("run %s started on %s#%d", run.id, run.repo, run.number, extra=log)
        try:
            await self.s.show(run, render.working(run, self.s.public_url), look_first=run.comment_id is None)
            assert self._run_loop is not None
            outcome = await self._run_loop.run(self.executor.execute(run))
            if outcome.session_id:
                await self.s.store.set_session(run, outcome.session_id)
            if outcome.ok:
                body = None if outcome.finish else render.done(run, outcome.text, self.s.public_url)
                await self._end(run, "done", body, result=outcome.text, finish=outcome.finish)
            else:
                body = None if outcome.finish else render.failed(run, outcome.text, self.s.public_url)
                await self._end(run, "failed", body, error=outcome.text, finish=outcome.finish)
        except asyncio.CancelledError:
            if run.id in self._stopping:
                await self._end(run, "cancelled", render.cancelled(run, "with /stop", self.s.public_url))
            elif await self.s.store.requeue_waiting(run.id):  # resumes, card and all, at the next claim
                logger.info("run %s was waiting for approval: queued again", run.id, extra=log)
            else:
                await self._end(run, "interrupted", render.interrupted(run, self.s.public_url))
        except Exception as e:
            self.s.count_error("run")
            logger.exception("run %s crashed", run.id, extra=log)
            reason = f"an internal error ({type(e).__name__})"
            await self._end(run, "failed", render.failed(run, reason, self.s.public_url), error=reason)
        finally:
            self._runs.pop(run.id, None)
            self._stopping.discard(run.id)
            self.wake()

    async def _end(
        self,
        run: Run,
        state: str,
        body: str | None,
        *,
        result: str | None = None,
        error: str | None = None,
        finish: Callable[[bool], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        """Record how the run ended, then write `body` (or the executor's `finish`) into its comment."""
        recorded = await self.s.store.finish_run(run.id, state, result=result, error=error)
        if recorded:
            run.state = state
        if finish is not None and self._run_loop is not None:
            await self._run_loop.run(finish(recorded))
        elif recorded and body is not None:
            await self.s.show(run, body)
        logger.info("run %s ended: %s", run.id, state, extra={"run_id": run.id})


__all__ = ["Outcome", "RunExecutor", "Worker"]
