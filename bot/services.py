"""The server's shared parts, built once at start-up and handed to the route, the intake and the worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot import render
from bot.approvals import ApprovalWaiters
from bot.github import GitHub, GitHubError
from bot.models import Identity, Run
from bot.permissions import Permissions
from bot.store import Store

logger = logging.getLogger(__name__)


@dataclass
class Services:
    store: Store
    github: GitHub
    permissions: Permissions
    me: Identity
    allowed_bots: frozenset[str] = frozenset()
    public_url: str = ""
    wake: Callable[[], None] = lambda: None
    """Tell this process's worker there is work (a request in the inbox, a queued run)."""
    stop_runs: Callable[[list[int]], Awaitable[None]] | None = None
    """Stop runs executing in this process (set by the worker)."""
    counters: dict[str, int] = field(default_factory=dict)
    """Since start-up: deliveries by answer, errors by where they happened (shown by /metrics)."""
    data_dir: Path | None = None
    """The server's data folder; thread runs keep their sessions (traces) under `sessions/` there."""
    loop: asyncio.AbstractEventLoop | None = None
    """The loop that owns the GitHub client and the store; code on the run loop hops to it (`runloop.on_loop`)."""
    approvals: ApprovalWaiters = field(default_factory=lambda: ApprovalWaiters())
    """Live runs of this process waiting for a decision: a recorded `/approve` or `/deny` wakes them."""

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def count_error(self, where: str) -> None:
        self.count(f"errors.{where}")

    async def show(self, run: Run, body: str, *, look_first: bool = False) -> None:
        """Write `body` into the run's progress comment (creating it, once, if it is missing); never raises.

        `look_first` searches the thread for the run's marker before creating (an earlier attempt may have posted).
        """
        try:
            if run.comment_id is None and look_first:
                found = await self.github.find_comment(run.installation_id, run.repo, run.number, run.marker)
                if found is not None:
                    run.comment_id = int(found["id"])
                    await self.store.set_comment(run.id, run.comment_id)
            if run.comment_id is None:
                run.comment_id = await self.github.create_comment(
                    run.installation_id, run.repo, run.number, body, run.marker
                )
                await self.store.set_comment(run.id, run.comment_id)
            else:
                await self.github.edit_comment(run.installation_id, run.repo, run.comment_id, body)
        except GitHubError as e:
            self.count_error("github")
            logger.warning("run %s: could not update its comment: %s", run.id, e, extra={"run_id": run.id})

    async def say_cancelled(self, runs: list[Run], by: str) -> None:
        for run in runs:
            await self.show(run, render.cancelled(run, by, self.public_url))


__all__ = ["Services"]
