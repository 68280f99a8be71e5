"""The real server over real HTTP against the fake GitHub: intake, acknowledgement, runs, and every refusal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.bot.conftest import MAINTAINER, REPO, Server, comment_event, event
from tests.bot.fake_github import SLUG, FakeGitHub


def progress(github: FakeGitHub, number: int = 1) -> list[dict]:  # type: ignore[type-arg]
    return [c for c in github.thread_comments(REPO, number) if "<!-- ml-intern:run:" in c["body"]]


def test_a_mention_is_acknowledged_then_answered(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    srv = serve()
    r = srv.deliver("issue_comment", comment_event(f"@{SLUG} what does train.py do?"))
    assert r.status_code == 202, r.text
    github.wait_until(lambda: github.reactions_on("issue_comment", 555) == ["eyes"])
    done = github.wait_until(lambda: [c for c in progress(github) if c["body"].startswith("✅")])
    assert len(progress(github)) == 1
    assert "Here is the answer." in done[0]["body"]
    assert "<!-- ml-intern:run:1 -->" in done[0]["body"]
    metrics = srv.get("/metrics").json()
    assert metrics["runs"] == {"done": 1}
    assert metrics["deliveries"] == {"queued": 1}
    assert srv.get("/healthz").json() == {"ok": True, "store": "reachable"}
