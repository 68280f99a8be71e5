"""The run page: a real session's trace as escaped HTML behind a per-run token (hashed in the store), served by
the app; opened in a real headless Chromium where one is installed."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.config import load_config
from agent.events import Approval, EventType
from agent.llm.scripted import ScriptedModel, call, say
from agent.loop import Agent
from agent.run import run_task
from agent.sandbox import LocalSandbox
from agent.session import open_session
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from bot import pages
from bot.app import create_app
from bot.models import Run
from bot.services import Services
from bot.worker import Outcome, Worker
from tests.bot.fake_github import FakeGitHub
from tests.bot.kit import services, started_run

Key = tuple[rsa.RSAPrivateKey, str]
HOSTILE = "<script>document.title='pwned'</script><img src=https://evil.example/p.png> @octocat"
SECRET = "hf_" + "q" * 34


@tool(effects=[Effect.PUBLISH])
async def publish(ctx: ToolContext, repo: str) -> str:
    """Push the model to the Hub.

    Args:
        repo: Target repo id.
    """
    return f"pushed to {repo}\n{HOSTILE}\ntoken was {SECRET}"


class _Idle:
    async def execute(self, run: Run) -> Outcome:
        raise AssertionError("no run executes in these tests")


@dataclass
class Site:
    s: Services
    run: Run
    url: str
    """The page's link, with its token."""
    client: httpx.AsyncClient


async def traced_run(s: Services, run: Run, home: Path) -> None:
    """A real agent session for the run: a tool call approved by a person, hostile tool output, an answer."""
    model = ScriptedModel([call("publish", repo="alice/model"), say("Published </pre> the model.")])
    session = await open_session(
        load_config(use_user_file=False),
        workdir=home,
        headless=False,
        model=model,
        home=home,
        families=[Family("pub", (publish,))],
        sandbox=LocalSandbox(),
    )
    agent = Agent(session)

    def approve(event):  # type: ignore[no-untyped-def]
        if event.type is EventType.APPROVAL_REQUIRED:
            agent.submit(Approval(event.data["call_id"], True, approver="Codertocat"))

    try:
        await run_task(agent, f"publish it {HOSTILE}", approve)
    finally:
        await session.close()
    await s.store.set_session(run, session.id)


@pytest.fixture
async def site(github: FakeGitHub, app_key: Key, tmp_path: Path) -> AsyncIterator[Site]:
    async with services(github, app_key[1], tmp_path) as s:
        s.data_dir = tmp_path / "data"
        s.data_dir.mkdir()
        run = await started_run(s, text=f"please {HOSTILE}")
        await traced_run(s, run, s.data_dir)
        url = await pages.page_link(s, run.id)
        app = create_app(s, Worker(s, _Idle()), b"x" * 32, 1 << 20)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=s.public_url) as client:
            yield Site(s, run, url, client)


async def test_the_page_shows_the_trace_escaped_and_redacted(site: Site) -> None:
    r = await site.client.get(site.url)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "<code>publish</code>" in html and "pushed to alice/model" in html and "approved by Codertocat" in html
    assert "Published &lt;/pre&gt; the model." in html and "turn ended: done" in html
    assert "&lt;script&gt;" in html and "<script" not in html and "<img" not in html
    assert SECRET not in html
    assert (
        "script-src" not in r.headers["content-security-policy"]
        and "default-src 'none'" in r.headers["content-security-policy"]
    )
    assert r.headers["referrer-policy"] == "no-referrer" and r.headers["cache-control"] == "no-store"


async def test_a_wrong_or_missing_token_gets_nothing(site: Site) -> None:
    token = site.url.split("token=")[1]
    stored = await site.s.store.page_token_hash(site.run.id)
    assert stored is not None and token not in stored  # only the hash is kept
    base = site.url.split("?")[0]
    other = await started_run(site.s, number=2)
    other_url = await pages.page_link(site.s, other.id)
    for url in (base, f"{base}?token=", f"{base}?token={token[:-1]}x", f"{base}?token={other_url.split('=')[1]}"):
        r = await site.client.get(url)
        assert r.status_code == 404 and r.json() == {"error": "not found"}
    r = await site.client.get(f"{site.s.public_url}/runs/999?token={token}")
    assert r.status_code == 404


async def test_a_new_link_replaces_the_old_one(site: Site) -> None:
    newer = await pages.page_link(site.s, site.run.id)
    assert (await site.client.get(site.url)).status_code == 404
    assert (await site.client.get(newer)).status_code == 200


async def test_without_a_public_url_there_is_no_link(site: Site) -> None:
    site.s.public_url = ""
    assert await pages.page_link(site.s, site.run.id) == ""


# ---- in a real browser ----------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def dump_dom(url: str) -> str:
    """The page's DOM after Chromium loaded it (headless, no profile, nothing fetched besides the page)."""
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        args = [
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-sync",
            "--disable-component-update",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ]
        if os.geteuid() == 0:
            args.insert(0, "--no-sandbox")  # Chromium refuses to run its sandbox as root
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return out.decode()


@contextlib.asynccontextmanager
async def uvicorn_server(site: Site) -> AsyncIterator[str]:
    import uvicorn

    app = create_app(site.s, Worker(site.s, _Idle()), b"x" * 32, 1 << 20)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for it
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (Debian: apt-get install chromium); .ci/run installs it")
async def test_the_page_in_a_headless_browser(site: Site) -> None:
    async with uvicorn_server(site) as base:
        path = site.url.removeprefix(site.s.public_url)
        dom = await dump_dom(base + path)
        assert 'id="steps"' in dom and "pushed to alice/model" in dom and "approved by Codertocat" in dom
        assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
        assert "<title>Run 1 · Codertocat/Hello-World#1 · ML Intern</title>" in dom and "pwned</title>" not in dom
        assert "<img" not in dom and SECRET not in dom
        wrong = await dump_dom(base + path[:-1] + ("A" if not path.endswith("A") else "B"))
        assert "not found" in wrong and "pushed to" not in wrong and "Hello-World" not in wrong
