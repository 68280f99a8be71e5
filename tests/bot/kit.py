"""The server's shared parts built directly (no webhook server) against the fake GitHub, and a run ready to go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path

from bot import render
from bot.auth import AppJWT, load_private_key
from bot.github import GitHub, Target
from bot.models import Identity, Request, Run
from bot.permissions import Permissions
from bot.services import Services
from bot.store import Store
from tests.bot.conftest import MAINTAINER, REPO
from tests.bot.fake_github import APP_ID, FakeGitHub

PUBLIC_URL = "https://bot.example.com"


class Clock:
    """An injected clock: `sleep` returns once the test has moved `now` past its deadline."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> Awaitable[None]:
        """The deadline is taken when called, not when first awaited."""
        return self._until(self.now + seconds)

    async def _until(self, target: float) -> None:
        while self.now < target:  # noqa: ASYNC110 - the condition changes in other tasks and threads
            await asyncio.sleep(0.001)


@asynccontextmanager
async def services(fake: FakeGitHub, pem: str, folder: Path, *, max_attempts: int = 5) -> AsyncIterator[Services]:
    """Services on the running loop: a SQLite store in `folder`, a GitHub client that never really sleeps."""

    async def no_sleep(seconds: float) -> None:
        return None

    gh = GitHub(fake.api_url, AppJWT(str(APP_ID), load_private_key(pem.encode())), sleep=no_sleep)
    gh.max_attempts = max_attempts
    store = await Store.open(f"sqlite:///{folder / 'bot.sqlite3'}", "worker-1", 4)
    s = Services(
        store,
        gh,
        Permissions(gh, 300),
        Identity(APP_ID, fake.slug),
        public_url=PUBLIC_URL,
        loop=asyncio.get_running_loop(),
    )
    try:
        yield s
    finally:
        await store.close()
        await gh.aclose()


async def started_run(s: Services, number: int = 1, text: str = "publish the model") -> Run:
    """A run queued by the maintainer, its progress comment posted, claimed: state `running`."""
    request = Request("trigger", 1, REPO, number, False, MAINTAINER, Target("issue_comment", 555), text)
    run = (await s.store.create_run(request)).run
    await s.show(run, render.queued(run, None, False))
    claimed = await s.store.claim_run()
    assert claimed is not None and claimed.id == run.id
    claimed.comment_id = run.comment_id
    return claimed
