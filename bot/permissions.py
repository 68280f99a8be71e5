"""Who may ask: the collaborator permission API (never `author_association`), cached briefly per repository and user."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.github import GitHub

WRITE = frozenset({"admin", "maintain", "write"})


class Permissions:
    """Answers "may this user trigger or command the bot here?" from GitHub, caching each answer for `ttl` seconds."""

    def __init__(self, github: GitHub, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.github = github
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}

    async def can_write(self, installation: int, repo: str, user: str) -> bool:
        key = (repo.lower(), user.lower())
        hit = self._cache.get(key)
        now = self._clock()
        if hit and now - hit[1] < self.ttl:
            return hit[0]
        allowed = await self.github.permission(installation, repo, user) in WRITE
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (allowed, now)
        return allowed


__all__ = ["WRITE", "Permissions"]
