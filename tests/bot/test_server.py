"""Start-up checks: credentials refused, an unreachable or wrong API, all as clear errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.errors import ConfigError
from bot.server import build
from bot.settings import Settings
from tests.bot.conftest import make_settings
from tests.bot.fake_github import FakeGitHub, new_key


async def test_build_identifies_the_app(settings: Settings, tmp_path: Path) -> None:
    s = await build(settings, tmp_path)
    try:
        assert (s.me.app_id, s.me.slug, s.me.login, s.me.mention) == (4242, "ml-intern", "ml-intern[bot]", "@ml-intern")
    finally:
        await s.store.close()
        await s.github.aclose()


async def test_a_key_github_does_not_know_is_a_clear_error(github: FakeGitHub, secret: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"refused the App's credentials \(401\): check GITHUB_APP_ID"):
        await build(make_settings(github, new_key()[1], secret, tmp_path), tmp_path)


async def test_an_unreachable_api_is_a_clear_error(
    github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str], secret: str, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(github, app_key[1], secret, tmp_path, github_api_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="cannot reach the GitHub API"):
        await build(settings, tmp_path)


async def test_an_api_url_that_is_not_github(
    github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str], secret: str, tmp_path: Path
) -> None:
    from agent.llm.server import ScriptedServer

    with ScriptedServer([]) as other:  # an OpenAI-compatible server, not GitHub
        settings = make_settings(github, app_key[1], secret, tmp_path, github_api_url=other.base_url)
        with pytest.raises(ConfigError, match="GET /app"):
            await build(settings, tmp_path)
