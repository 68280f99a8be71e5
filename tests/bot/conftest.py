"""Bot test fixtures: an App key made at run time, the fake GitHub, settings, and the real server over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.config import AgentConfig, load_config
from agent.llm import Model
from agent.llm.scripted import ScriptedModel, say
from bot.live import server_executor
from bot.services import Services
from bot.settings import Settings
from bot.thread import ThreadExecutor
from bot.webhooks import sign
from tests.bot.fake_github import APP_ID, FIXTURES, FakeGitHub, new_key
from tests.bot.pg import postgres_url

__all__ = ["postgres_url"]

REPO = "Codertocat/Hello-World"
MAINTAINER = "Codertocat"


@pytest.fixture(scope="session")
def app_key() -> tuple[rsa.RSAPrivateKey, str]:
    return new_key()


@pytest.fixture
def github(app_key: tuple[rsa.RSAPrivateKey, str], tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(app_key[0].public_key()) as fake:
        fake.permissions[(REPO, MAINTAINER)] = "admin"
        fake.add_repo(REPO, bare_repo(tmp_path / "remote", {"README.md": "# Hello\n"}))
        yield fake


def git(*args: str, cwd: Path | None = None) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd or "/"), "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout


def bare_repo(root: Path, files: dict[str, str], branch: str = "main") -> Path:
    """A bare repository with one commit of `files` on `branch` (what the fake GitHub serves)."""
    seed, bare = root / "seed", root / "Hello-World.git"
    seed.mkdir(parents=True)
    for name, text in files.items():
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        (seed / name).write_text(text)
    git("init", "-q", "-b", branch, cwd=seed)
    git("add", "-A", cwd=seed)
    git("-c", "user.name=Codertocat", "-c", "user.email=c@example.com", "commit", "-q", "-m", "init", cwd=seed)
    git("clone", "-q", "--bare", str(seed), str(bare))
    return bare


@pytest.fixture
def secret() -> str:
    return secrets.token_hex(16)


@pytest.fixture
def settings(github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str], secret: str, tmp_path: Path) -> Settings:
    return make_settings(github, app_key[1], secret, tmp_path)


def make_settings(github: FakeGitHub, pem: str, secret: str, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "github_app_id": str(APP_ID),
        "github_app_private_key": pem,
        "github_webhook_secret": secret,
        "github_api_url": github.api_url,
        "database_url": f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        "ml_intern_poll_seconds": 0.2,
    }
    values.update(extra)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def event(name: str, **changes: Any) -> dict[str, Any]:
    """A recorded webhook body, as an App receives it (with an installation), with top-level changes."""
    payload: dict[str, Any] = json.loads((FIXTURES / "events" / f"{name}.json").read_text())
    payload.setdefault("installation", {"id": 1, "node_id": "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uMQ=="})
    payload.update(changes)
    return payload


def comment_event(
    body: str, *, comment_id: int = 555, number: int = 1, login: str = MAINTAINER, **more: Any
) -> dict[str, Any]:
    payload = event("issue_comment.created.with-installation")
    payload["comment"] = dict(payload["comment"], id=comment_id, body=body)
    payload["comment"]["user"] = dict(payload["comment"]["user"], login=login)
    payload["issue"] = dict(payload["issue"], number=number)
    payload["sender"] = dict(payload["sender"], login=login)
    payload.update(more)
    return payload


def model_answering(text: str = "Here is the answer.") -> Callable[[], Model]:
    return lambda: ScriptedModel(lambda messages: say(text))


class _Gated(ScriptedModel):
    """A scripted model that holds every call until `gate` opens: a run that stays `running` for as long as needed."""

    def __init__(self, gate: threading.Event, text: str) -> None:
        super().__init__(lambda messages: say(text))
        self.gate = gate

    async def complete(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.to_thread(self.gate.wait, 30)
        return await super().complete(*args, **kwargs)


def gated(gate: threading.Event, text: str) -> Callable[[], Model]:
    return lambda: _Gated(gate, text)


def post_delivery(
    url: str,
    secret: str,
    name: str,
    payload: Any,
    *,
    delivery: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a delivery the way GitHub does: the event and delivery headers, signed over the exact bytes sent."""
    data = body if body is not None else json.dumps(payload).encode()
    sent = {
        "X-GitHub-Event": name,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret.encode(), data),
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
    }
    sent.update(headers or {})
    return httpx.post(f"{url}/webhook", content=data, headers=sent, timeout=30)


def env_for(github: FakeGitHub, pem: str, secret: str, **more: str) -> dict[str, str]:
    """The server's settings as the environment variables the README documents."""
    return {
        "GITHUB_APP_ID": str(APP_ID),
        "GITHUB_APP_PRIVATE_KEY": pem,
        "GITHUB_WEBHOOK_SECRET": secret,
        "GITHUB_API_URL": github.api_url,
        "ML_INTERN_POLL_SECONDS": "0.2",
        **more,
    }


@dataclass
class Server:
    """The real app under uvicorn in a thread of its own, with its own event loop."""

    settings: Settings
    data_dir: Path
    model_factory: Callable[[], Model]
    agent_config: AgentConfig | None = None
    url: str = ""
    server: Any = None
    thread: threading.Thread | None = None
    error: list[BaseException] = field(default_factory=list)

    def start(self) -> Server:
        from bot.server import serve

        started = threading.Event()

        def on_server(server: Any) -> None:
            self.server = server

        def run() -> None:
            config = load_config(use_user_file=False)

            def make(s: Services) -> ThreadExecutor:
                return server_executor(self.settings, self.agent_config or config, s, self.model_factory)

            async def main() -> None:
                task = asyncio.create_task(
                    serve(self.settings, self.data_dir, make, "127.0.0.1", 0, on_server=on_server)
                )
                while not (self.server is not None and self.server.started) and not task.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                started.set()
                await task

            try:
                asyncio.run(main())
            except BaseException as e:
                self.error.append(e)
            finally:
                started.set()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(30)
        if self.error:
            raise self.error[0]
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(30)
            self.thread = None

    def deliver(
        self,
        name: str,
        payload: Any,
        *,
        delivery: str | None = None,
        secret: str | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        key = secret if secret is not None else self.settings.webhook_secret().decode()
        return post_delivery(self.url, key, name, payload, delivery=delivery, body=body, headers=headers)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30)


@pytest.fixture
def serve(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`serve(model_factory=..., settings=...)`: start the real server; stopped at the end of the test."""
    if shutil.which("bwrap") is None:
        pytest.skip("runs execute in the bubblewrap sandbox: apt-get install bubblewrap (.ci/run installs it)")
    servers: list[Server] = []

    def start(model_factory: Callable[[], Model] | None = None, **kw: Any) -> Server:
        s = Server(
            kw.get("settings", settings),
            kw.get("data_dir", tmp_path / "data"),
            model_factory or model_answering(),
            kw.get("agent_config"),
        )
        servers.append(s.start())
        return s

    yield start
    for s in servers:
        s.stop()
