"""`ml-intern serve` as real processes: killed with runs queued and restarted; two processes sharing PostgreSQL."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from agent.llm.server import ScriptedServer
from tests.bot.conftest import REPO, comment_event, env_for, post_delivery
from tests.bot.fake_github import SLUG, FakeGitHub
from tests.bot.proc import ServerProcess, server_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="runs execute in bubblewrap (.ci/run installs it)"),
]


def model_args(srv: ScriptedServer) -> list[str]:
    return ["--model", "scripted", "--base-url", srv.base_url]


def bodies(github: FakeGitHub, number: int) -> list[str]:
    return [c["body"] for c in github.thread_comments(REPO, number) if "<!-- ml-intern:run:" in c["body"]]


def test_a_killed_server_resumes_its_queue_and_resolves_its_running_run(
    github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str], secret: str, tmp_path: Path
) -> None:
    gate = threading.Event()

    def answer(body: dict[str, Any]) -> str:
        gate.wait(60)
        return "answered after the restart"

    env = server_env(tmp_path, env_for(github, app_key[1], secret, ML_INTERN_MAX_RUNS="1"))
    with ScriptedServer(answer) as model:
        first = ServerProcess(env, tmp_path, *model_args(model)).wait_ready()
        for n in (1, 2, 3):
            r = post_delivery(
                first.url, secret, "issue_comment", comment_event(f"@{SLUG} job {n}", comment_id=n, number=n)
            )
            assert r.status_code == 202
        working = github.wait_until(lambda: [n for n in (1, 2, 3) if any("Working" in b for b in bodies(github, n))])
        waiting = [n for n in (1, 2, 3) if n not in working]
        assert len(working) == 1  # the global limit is one run
        github.wait_until(lambda: all(any("Queued" in b for b in bodies(github, n)) for n in waiting))
        # the comments are posted, then their ids stored: kill after that (a run whose id was never stored waits
        # ACK_GRACE before another process takes it, which is longer than this test waits)
        db = sqlite3.connect(tmp_path / "home" / "bot" / "bot.sqlite3")
        stored = "SELECT COUNT(*) FROM runs WHERE comment_id IS NOT NULL"
        github.wait_until(lambda: db.execute(stored).fetchone()[0] == 3)
        db.close()
        first.kill()  # no clean shutdown: the working run stays `running` in the database
        gate.set()
        second = ServerProcess(env, tmp_path, *model_args(model)).wait_ready()
        try:
            github.wait_until(lambda: bodies(github, working[0])[0].startswith("⚠️ Interrupted"))
            github.wait_until(lambda: all(bodies(github, n)[0].startswith("✅") for n in waiting))
            assert "answered after the restart" in bodies(github, waiting[0])[0]
            assert [len(bodies(github, n)) for n in (1, 2, 3)] == [1, 1, 1]
            retry = comment_event("/retry", comment_id=9, number=working[0])
            post_delivery(second.url, secret, "issue_comment", retry)
            github.wait_until(lambda: any(b.startswith("✅") for b in bodies(github, working[0])))
        finally:
            assert second.stop() in (0, -signal.SIGTERM), second.log.read_text()  # uvicorn re-raises the signal
    assert "Traceback" not in second.log.read_text()


def test_two_processes_share_postgres(
    github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str], secret: str, tmp_path: Path, postgres_url: str
) -> None:
    import psycopg

    def answer(body: dict[str, Any]) -> str:
        time.sleep(0.3)  # long enough for both processes to hold runs at once
        return "shared"

    env = server_env(tmp_path, env_for(github, app_key[1], secret, DATABASE_URL=postgres_url, ML_INTERN_MAX_RUNS="8"))
    with ScriptedServer(answer) as model:
        procs = [ServerProcess(env, tmp_path, *model_args(model)) for _ in range(2)]
        try:
            for p in procs:
                p.wait_ready()
            same = comment_event(f"@{SLUG} once", comment_id=100, number=100)
            with ThreadPoolExecutor(8) as pool:
                codes = list(
                    pool.map(
                        lambda i: (
                            post_delivery(procs[i % 2].url, secret, "issue_comment", same, delivery="dup").status_code
                        ),
                        range(8),
                    )
                )
            assert sorted(codes) == [200] * 7 + [202]
            for n in range(8):
                payload = comment_event(f"@{SLUG} job {n}", comment_id=200 + n, number=200 + n)
                assert post_delivery(procs[n % 2].url, secret, "issue_comment", payload).status_code == 202
            numbers = [100, *range(200, 208)]
            github.wait_until(lambda: all(any(b.startswith("✅") for b in bodies(github, n)) for n in numbers), 60)
            assert [len(bodies(github, n)) for n in numbers] == [1] * 9
            assert len(model.requests) == 9
            with psycopg.connect(postgres_url) as conn:
                rows = conn.execute("SELECT worker, attempts, state FROM runs").fetchall()
            assert len(rows) == 9 and {r[1] for r in rows} == {1} and {r[2] for r in rows} == {"done"}
            assert len({r[0] for r in rows}) == 2, "both processes should have claimed runs"
        finally:
            for p in procs:
                p.stop()
        for p in procs:
            assert "Traceback" not in p.log.read_text(), p.log.read_text()


def test_a_run_waiting_for_approval_survives_a_killed_server(
    github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str], secret: str, tmp_path: Path
) -> None:
    from agent.llm.scripted import call, say

    def answer(body: dict[str, Any]) -> Any:
        steps = sum(1 for m in body["messages"] if m.get("role") == "assistant")
        return (
            call("write", path=".github/ml-intern.yml", content="max_iterations: 5\n")
            if steps == 0
            else say("Resumed after the restart.")
        )

    env = server_env(tmp_path, env_for(github, app_key[1], secret))
    with ScriptedServer(answer) as model:
        first = ServerProcess(env, tmp_path, *model_args(model)).wait_ready()
        post_delivery(first.url, secret, "issue_comment", comment_event(f"@{SLUG} tune the settings", comment_id=1))
        github.wait_until(lambda: any("Approval needed" in b for b in bodies(github, 1)), 60)
        db = sqlite3.connect(tmp_path / "home" / "bot" / "bot.sqlite3")
        github.wait_until(lambda: db.execute("SELECT state FROM runs").fetchone()[0] == "waiting_approval")
        db.close()
        first.kill()
        edits = github.count("PATCH", r"/issues/comments/")
        second = ServerProcess(env, tmp_path, *model_args(model)).wait_ready()
        try:
            github.wait_until(lambda: github.count("PATCH", r"/issues/comments/") > edits, 60)  # the card, live again
            github.wait_until(lambda: any("Approval needed" in b for b in bodies(github, 1)), 60)
            post_delivery(second.url, secret, "issue_comment", comment_event("/approve", comment_id=2))
            github.wait_until(lambda: any(b.startswith("✅") for b in bodies(github, 1)), 60)
            assert "Resumed after the restart." in bodies(github, 1)[0]
            assert len(model.requests) == 2  # the request was not asked again
        finally:
            second.stop()
    assert "Traceback" not in second.log.read_text(), second.log.read_text()
