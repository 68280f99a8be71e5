"""Start-up: check the settings and the App's credentials, open the store, serve under uvicorn until stopped."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from agent.errors import ConfigError
from bot.auth import AppJWT, load_private_key
from bot.github import GitHub, GitHubError
from bot.models import Identity
from bot.permissions import Permissions
from bot.services import Services
from bot.settings import Settings
from bot.store import Store
from bot.worker import RunExecutor, Worker

logger = logging.getLogger(__name__)

ExecutorFactory = Callable[[Services], RunExecutor]
"""Builds the executor from the server's shared parts (its data folder, GitHub client, store)."""


async def identify(github: GitHub, api_url: str) -> Identity:
    """Who the App is (`GET /app`), with errors that say what to fix."""
    try:
        info = await github.app()
    except GitHubError as e:
        if e.status == 401:
            raise ConfigError(
                "GitHub refused the App's credentials (401): check GITHUB_APP_ID and the private key"
            ) from None
        if e.status is None:
            raise ConfigError(f"cannot reach the GitHub API at {api_url}: {e}; check GITHUB_API_URL") from None
        raise ConfigError(f"GitHub answered GET /app with an error: {e}") from None
    try:
        return Identity(int(info["id"]), str(info["slug"]))
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"GET /app at {api_url} did not return an App (id and slug); check GITHUB_API_URL") from None


def preflight(settings: Settings) -> AppJWT:
    """The checks that need no network: a real webhook secret, a readable key, the App id, the API URL."""
    settings.webhook_secret()
    settings.api_url()
    return AppJWT(settings.app_id(), load_private_key(settings.private_key_pem()))


async def build(settings: Settings, data_dir: Path, *, client: httpx.AsyncClient | None = None) -> Services:
    """Check everything the server needs before it listens; raise ConfigError naming what to set."""
    jwt = preflight(settings)
    api_url = settings.api_url()
    github = GitHub(api_url, jwt, client=client, max_attempts=3)
    try:
        me = await identify(github, api_url)
        worker_id = uuid.uuid4().hex[:16]
        store = await Store.open(settings.database(data_dir), worker_id, settings.ml_intern_max_runs)
    except BaseException:
        await github.aclose()
        raise
    github.max_attempts = 5
    return Services(
        store=store,
        github=github,
        permissions=Permissions(github, settings.ml_intern_permission_ttl),
        me=me,
        allowed_bots=settings.allowed_bots,
        public_url=settings.ml_intern_public_url.strip(),
        data_dir=data_dir,
        loop=asyncio.get_running_loop(),
    )


async def serve(
    settings: Settings,
    data_dir: Path,
    make_executor: ExecutorFactory,
    host: str,
    port: int,
    *,
    on_server: Callable[[object], None] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or `server.should_exit`); `on_server` receives the uvicorn server once built."""
    import uvicorn

    from bot.app import create_app

    s = await build(settings, data_dir)
    try:
        worker = Worker(s, make_executor(s), poll_seconds=settings.ml_intern_poll_seconds)
        app = create_app(s, worker, settings.webhook_secret(), settings.ml_intern_max_body_bytes)
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on")
        server = uvicorn.Server(config)
        if on_server is not None:
            on_server(server)
        logger.info("serving the App @%s on http://%s:%d (worker %s)", s.me.slug, host, port, s.store.worker)
        await server.serve()
    finally:
        await s.store.close()
        await s.github.aclose()


__all__ = ["ExecutorFactory", "build", "identify", "preflight", "serve"]
