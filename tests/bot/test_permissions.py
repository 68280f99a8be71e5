"""Who may ask: write, maintain and admin only, from the permission API, cached for a while, one call at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.auth import AppJWT, load_private_key
from bot.github import GitHub, GitHubError
from bot.permissions import Permissions
from tests.bot.conftest import REPO
from tests.bot.fake_github import APP_ID, FakeGitHub, Fault


@pytest.fixture
async def gh(github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str]) -> AsyncIterator[GitHub]:
    async def no_sleep(seconds: float) -> None:
        return None

    client = GitHub(github.api_url, AppJWT(str(APP_ID), load_private_key(app_key[1].encode())), sleep=no_sleep)
    yield client
    await client.aclose()


async def test_levels(github: FakeGitHub, gh: GitHub) -> None:
    perms = Permissions(gh, ttl=300)
    for user, level in {"a": "admin", "m": "maintain", "w": "write", "t": "triage", "r": "read"}.items():
        github.permissions[(REPO, user)] = level
    assert [await perms.can_write(1, REPO, u) for u in "amwtr"] == [True, True, True, False, False]
    assert not await perms.can_write(1, REPO, "stranger")


async def test_answers_are_cached_then_asked_again(github: FakeGitHub, gh: GitHub) -> None:
    now = [0.0]
    perms = Permissions(gh, ttl=300, clock=lambda: now[0])
    github.permissions[(REPO, "w")] = "write"
    results = await asyncio.gather(*(perms.can_write(1, REPO, "w") for _ in range(10)))
    assert results == [True] * 10 and github.count("GET", "/permission$") == 1
    github.permissions[(REPO, "w")] = "read"  # access removed
    now[0] = 299
    assert await perms.can_write(1, REPO, "W")
    now[0] = 301
    assert not await perms.can_write(1, REPO, "w")
    assert github.count("GET", "/permission$") == 2


async def test_a_failed_lookup_is_not_cached(github: FakeGitHub, gh: GitHub) -> None:
    perms = Permissions(gh, ttl=300)
    github.faults.append(Fault("GET", "/permission$", 500, times=5))
    with pytest.raises(GitHubError):
        await perms.can_write(1, REPO, "Codertocat")
    assert await perms.can_write(1, REPO, "Codertocat")
