"""Who may ask: the collaborator permission API (never `author_association`), cached briefly per repository and user."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.github import GitHub

WRITE = frozenset({"admin", "maintain", "write"})


class Permissions:
    """Answers "may this user trigger or command the bot here?" from GitHub, caching each answer for `ttl` seconds.

    Concurrent questions about the same user share one API call.
    """

    def __init__(self, github: GitHub, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.github = github
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[asyncio.Future[bool], float]] = {}

    async def can_write(self, installation: int, repo: str, user: str) -> bool:
        key = (repo.lower(), user.lower())
        hit = self._cache.get(key)
        now = self._clock()
        if hit is not None and (not hit[0].done() or now - hit[1] < self.ttl):
            return await asyncio.shield(hit[0])
        if len(self._cache) > 10_000:
            self._cache = {k: v for k, v in self._cache.items() if not v[0].done()}
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._cache[key] = (future, now)
        try:
            future.set_result(await self.github.permission(installation, repo, user) in WRITE)
        except BaseException as e:
            self._cache.pop(key, None)  # a failure is not cached
            if isinstance(e, asyncio.CancelledError):
                future.cancel()
            else:
                future.set_exception(e)
                future.exception()  # mark it retrieved: waiters re-raise it themselves
            raise
        return future.result()


__all__ = ["WRITE", "Permissions"]
