"""The real server over real HTTP against the fake GitHub: intake, acknowledgement, runs, and every refusal."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.bot.conftest import MAINTAINER, REPO, Server, comment_event, event, gated
from tests.bot.fake_github import SLUG, FakeGitHub


def progress(github: FakeGitHub, number: int = 1) -> list[dict]:  # type: ignore[type-arg]
    return [c for c in github.thread_comments(REPO, number) if "<!-- ml-intern:run:" in c["body"]]


def test_a_mention_is_acknowledged_then_answered(
    github: FakeGitHub, serve: Callable[..., Server], secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
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
    for path in ("/runs/1", "/runs/1?token=guess", "/runs/99"):  # the run page needs the run's token
        page = srv.get(path)
        assert page.status_code == 404 and page.json() == {"error": "not found"}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "run 1 ended: done" in logged
    for token in [*github.tokens, secret, "BEGIN PRIVATE KEY", "eyJ"]:  # installation tokens, secret, key, JWTs
        assert token not in logged


def test_refusals_are_answered_before_any_work(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    srv = serve()
    body = json.dumps(comment_event(f"@{SLUG} hi")).encode()
    assert srv.deliver("issue_comment", None, body=body, headers={"X-Hub-Signature-256": ""}).status_code == 401
    assert srv.deliver("issue_comment", None, body=body, secret="wrong").status_code == 401
    signed_then_tampered = srv.deliver(
        "issue_comment",
        None,
        body=body.replace(b"hi", b"yo"),
        headers={"X-Hub-Signature-256": _sig(srv, body)},
    )
    assert signed_then_tampered.status_code == 401
    assert srv.deliver("issue_comment", None, body=b"{not json").status_code == 400
    assert srv.deliver("issue_comment", None, body=b'{"a": "\xff"}').status_code == 400
    r = srv.deliver("issue_comment", None, body=b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]
    r = srv.deliver("issue_comment", None, body=body, headers={"X-GitHub-Delivery": ""})
    assert r.status_code == 400
    assert srv.deliver("star", {"action": "created"}).status_code == 200
    assert srv.deliver("ping", event("ping")).json() == {"status": "pong"}
    counters = srv.get("/metrics").json()["counters"]
    assert counters["deliveries.401"] == 3 and counters["deliveries.400"] == 4
    assert github.count("POST", "/issues/") == 0  # nothing was acknowledged, nothing ran
    assert srv.get("/metrics").json()["runs"] == {}


def _sig(srv: Server, body: bytes) -> str:
    from bot.webhooks import sign

    return sign(srv.settings.webhook_secret(), body)


def test_oversized_bodies_are_refused_with_and_without_content_length(
    github: FakeGitHub, serve: Callable[..., Server], settings: object
) -> None:
    from bot.settings import Settings

    assert isinstance(settings, Settings)
    srv = serve(settings=settings.model_copy(update={"ml_intern_max_body_bytes": 64 * 1024}))
    big = b'{"pad": "' + b"x" * (200 * 1024) + b'"}'
    r = srv.deliver("issue_comment", None, body=big)
    assert r.status_code == 413

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    import httpx

    r = httpx.post(
        f"{srv.url}/webhook",
        content=chunks(),
        headers={"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "x", "X-Hub-Signature-256": _sig(srv, big)},
    )
    assert r.status_code == 413
    assert srv.get("/metrics").json()["counters"]["deliveries.413"] == 2
    assert srv.get("/metrics").json()["deliveries"] == {}


def test_a_redelivery_yields_one_run_sequential_and_concurrent(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    srv = serve()
    payload = comment_event(f"@{SLUG} summarise the README")
    first = srv.deliver("issue_comment", payload, delivery="d-1")
    again = srv.deliver("issue_comment", payload, delivery="d-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"status": "duplicate delivery"}
    other = comment_event(f"@{SLUG} and the licence", comment_id=556, number=2)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: srv.deliver("issue_comment", other, delivery="d-2").status_code, range(8)))
    assert sorted(answers) == [200] * 7 + [202]
    github.wait_until(lambda: srv.get("/metrics").json()["runs"] == {"done": 2})
    assert len(progress(github, 1)) == 1 and len(progress(github, 2)) == 1
    assert github.reactions_on("issue_comment", 555) == ["eyes"]


def test_bots_and_the_app_itself_are_ignored(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    srv = serve()
    bot = comment_event(f"@{SLUG} do it", login="renovate[bot]")
    bot["sender"]["type"] = "Bot"
    assert srv.deliver("issue_comment", bot).json() == {"status": "ignored: sent by a bot"}
    me = comment_event(f"@{SLUG} echo", login=f"{SLUG}[bot]")
    me["comment"]["performed_via_github_app"] = {"id": 4242, "slug": SLUG}
    assert srv.deliver("issue_comment", me).json() == {"status": "ignored: sent by a bot"}
    edited_by_me = comment_event(f"@{SLUG} progress", login=MAINTAINER)
    edited_by_me["comment"]["performed_via_github_app"] = {"id": 4242}
    assert srv.deliver("issue_comment", edited_by_me).status_code == 200
    assert github.count("GET", "^/repos/") == 0 and github.count("POST", "/issues/") == 0


def test_allow_listed_bots_may_trigger(github: FakeGitHub, serve: Callable[..., Server], settings: object) -> None:
    from bot.settings import Settings

    assert isinstance(settings, Settings)
    srv = serve(settings=settings.model_copy(update={"ml_intern_allowed_bots": "dependabot[bot], renovate[bot]"}))
    github.permissions[(REPO, "renovate[bot]")] = "write"
    bot = comment_event(f"@{SLUG} please review", login="renovate[bot]")
    bot["sender"]["type"] = "Bot"
    assert srv.deliver("issue_comment", bot).status_code == 202
    github.wait_until(lambda: [c for c in progress(github) if c["body"].startswith("✅")])


def test_outsiders_get_one_polite_reply_per_thread_and_nothing_runs(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    srv = serve()
    for i in range(3):
        srv.deliver("issue_comment", comment_event(f"@{SLUG} run this {i}", comment_id=700 + i, login="stranger"))
    srv.deliver("issue_comment", comment_event("/stop", comment_id=710, login="stranger"))
    github.wait_until(lambda: srv.get("/metrics").json()["inbox_pending"] == 0)
    replies = github.thread_comments(REPO, 1)
    assert len(replies) == 1 and "@stranger" in replies[0]["body"] and "write access" in replies[0]["body"]
    assert srv.get("/metrics").json()["runs"] == {}
    assert github.reactions == []
    assert github.count("GET", "/collaborators/stranger/permission") == 1  # cached
    github.permissions[(REPO, "triager")] = "triage"
    srv.deliver("issue_comment", comment_event(f"@{SLUG} hi", comment_id=720, number=9, login="triager"))
    github.wait_until(lambda: github.thread_comments(REPO, 9))
    assert "write access" in github.thread_comments(REPO, 9)[0]["body"]


def test_triggers_in_a_new_issue_a_pr_comment_and_a_review_comment(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    srv = serve()
    review = event("pull_request_review_comment.created")
    for number in (8, review["pull_request"]["number"]):
        github.add_pull(REPO, number, f"feature-{number}")
    issue = event("issues.opened")
    issue["issue"] = dict(issue["issue"], number=7, body=f"@{SLUG} please look at the typo")
    issue["sender"] = dict(issue["sender"], login=MAINTAINER)
    assert srv.deliver("issues", issue).status_code == 202
    on_pr = comment_event(f"@{SLUG} review this", comment_id=801, number=8)
    on_pr["issue"]["pull_request"] = {"url": "u", "html_url": "h", "diff_url": "d", "patch_url": "p", "merged_at": None}
    assert srv.deliver("issue_comment", on_pr).status_code == 202
    review["comment"] = dict(review["comment"], body=f"@{SLUG} explain this line")
    assert srv.deliver("pull_request_review_comment", review).status_code == 202
    pr_number = review["pull_request"]["number"]
    github.wait_until(lambda: srv.get("/metrics").json()["runs"] == {"done": 3})
    assert github.reactions_on("issue", 7) == ["eyes"]
    assert github.reactions_on("issue_comment", 801) == ["eyes"]
    assert github.reactions_on("review_comment", review["comment"]["id"]) == ["eyes"]
    assert [len(progress(github, n)) for n in (7, 8, pr_number)] == [1, 1, 1]


def test_an_edited_comment_triggers_only_when_the_mention_is_new(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    srv = serve()
    edited = event("issue_comment.edited")
    edited["comment"] = dict(edited["comment"], body=f"@{SLUG} now with a mention")
    edited["changes"] = {"body": {"from": "no mention before"}}
    assert srv.deliver("issue_comment", edited).status_code == 202
    again = event("issue_comment.edited")
    again["comment"] = dict(again["comment"], body=f"@{SLUG} now with a mention, typo fixed")
    again["changes"] = {"body": {"from": f"@{SLUG} now with a mention"}}
    assert srv.deliver("issue_comment", again).json() == {"status": "ignored"}
    github.wait_until(lambda: srv.get("/metrics").json()["runs"] == {"done": 1})


def test_github_faults_during_the_acknowledgement_are_retried_without_duplicates(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    from tests.bot.fake_github import Fault

    srv = serve()
    github.faults += [
        Fault("GET", "/permission$", 502),
        Fault(
            "POST", "/reactions$", 403, {"retry-after": "0"}, {"message": "You have exceeded a secondary rate limit"}
        ),
        Fault("POST", r"/issues/1/comments$", 502, after=True),  # the comment lands, the answer is lost
        Fault("PATCH", r"/issues/comments/\d+$", 429, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"}),
    ]
    assert srv.deliver("issue_comment", comment_event(f"@{SLUG} go")).status_code == 202
    github.wait_until(lambda: [c for c in progress(github) if c["body"].startswith("✅")])
    assert len(progress(github)) == 1
    assert github.reactions_on("issue_comment", 555) == ["eyes"]
    assert all(f.times == 0 for f in github.faults)


def test_runs_in_one_thread_queue_behind_each_other(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    gate = threading.Event()
    srv = serve(model_factory=gated(gate, "ok"))
    srv.deliver("issue_comment", comment_event(f"@{SLUG} first", comment_id=901))
    github.wait_until(lambda: [c for c in progress(github) if "Working" in c["body"]])
    srv.deliver("issue_comment", comment_event(f"@{SLUG} second", comment_id=902))
    queued = github.wait_until(lambda: [c for c in progress(github) if "Queued: run 1" in c["body"]])
    assert "run 2" in queued[0]["body"]
    status = comment_event("/status", comment_id=903)
    srv.deliver("issue_comment", status)
    github.wait_until(
        lambda: [c for c in github.thread_comments(REPO, 1) if "Run 2" in c["body"] or "Also queued" in c["body"]]
    )
    gate.set()
    github.wait_until(lambda: srv.get("/metrics").json()["runs"] == {"done": 2})


def test_stop_cancels_queued_and_running_runs_and_retry_runs_again(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    gate = threading.Event()
    srv = serve(model_factory=gated(gate, "retried answer"))
    srv.deliver("issue_comment", comment_event(f"@{SLUG} long job", comment_id=1001))
    github.wait_until(lambda: [c for c in progress(github) if "Working" in c["body"]])
    srv.deliver("issue_comment", comment_event(f"@{SLUG} another", comment_id=1002))
    github.wait_until(lambda: [c for c in progress(github) if "Queued: run 1" in c["body"]])
    srv.deliver("issue_comment", comment_event("/stop", comment_id=1003))
    github.wait_until(lambda: srv.get("/metrics").json()["runs"] == {"cancelled": 2})
    assert sorted(c["body"].split("\n")[0] for c in progress(github)) == [
        "🚫 Cancelled by @Codertocat.",
        "🚫 Cancelled with /stop.",
    ]
    gate.set()
    srv.deliver("issue_comment", comment_event("/retry", comment_id=1004))
    done = github.wait_until(lambda: [c for c in progress(github) if c["body"].startswith("✅")])
    assert "retried answer" in done[0]["body"] and "<!-- ml-intern:run:3 -->" in done[0]["body"]
    assert github.reactions_on("issue_comment", 1003) == ["eyes"]
    srv.deliver("issue_comment", comment_event("/approve", comment_id=1005))
    github.wait_until(lambda: [c for c in github.thread_comments(REPO, 1) if "waiting for approval" in c["body"]])
    srv.deliver("issue_comment", comment_event("/help", comment_id=1006))
    github.wait_until(lambda: [c for c in github.thread_comments(REPO, 1) if "/deny [reason]" in c["body"]])


def test_a_failed_run_says_how_to_retry(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    from agent.errors import LLMError
    from agent.llm.scripted import ScriptedModel

    srv = serve(model_factory=lambda: ScriptedModel([LLMError("the provider is down", kind="bad_request")]))
    srv.deliver("issue_comment", comment_event(f"@{SLUG} go"))
    failed = github.wait_until(lambda: [c for c in progress(github) if c["body"].startswith("❌")])
    assert "/retry" in failed[0]["body"]
    assert srv.get("/metrics").json()["runs"] == {"failed": 1}


def test_a_removed_repository_cancels_its_runs(github: FakeGitHub, serve: Callable[..., Server]) -> None:
    gate = threading.Event()
    srv = serve(model_factory=gated(gate, "never shown"))
    assert srv.deliver("installation", event("installation.created")).json() == {"status": "recorded"}
    srv.deliver("issue_comment", comment_event(f"@{SLUG} one", comment_id=1101))
    github.wait_until(lambda: [c for c in progress(github) if "Working" in c["body"]])
    srv.deliver("issue_comment", comment_event(f"@{SLUG} two", comment_id=1102))
    github.wait_until(lambda: [c for c in progress(github) if "Queued" in c["body"]])
    removed = event("installation_repositories.removed")
    removed["installation"]["id"] = 1
    removed["repositories_removed"] = [{"full_name": REPO, "name": "Hello-World", "id": 1}]
    assert srv.deliver("installation_repositories", removed, delivery="r-1").json() == {"status": "recorded"}
    assert srv.deliver("installation_repositories", removed, delivery="r-1").json() == {"status": "duplicate delivery"}
    github.wait_until(lambda: srv.get("/metrics").json()["runs"] == {"cancelled": 2})
    gate.set()


def test_a_clean_shutdown_interrupts_its_runs_and_a_restart_keeps_the_queue(
    github: FakeGitHub, serve: Callable[..., Server]
) -> None:
    gate = threading.Event()
    first = serve(model_factory=gated(gate, "later"))
    first.deliver("issue_comment", comment_event(f"@{SLUG} long", comment_id=1201, number=1))
    github.wait_until(lambda: [c for c in progress(github, 1) if "Working" in c["body"]])
    first.deliver("issue_comment", comment_event(f"@{SLUG} next", comment_id=1202, number=1))
    github.wait_until(lambda: [c for c in progress(github, 1) if "Queued" in c["body"]])
    first.stop()
    assert any(c["body"].startswith("⚠️ Interrupted") for c in progress(github, 1))
    gate.set()
    second = serve(model_factory=gated(gate, "after the restart"))
    github.wait_until(lambda: second.get("/metrics").json()["runs"] == {"interrupted": 1, "done": 1})
    assert [c["body"].split("\n")[0].split(" · ")[0] for c in progress(github, 1)] == [
        "⚠️ Interrupted: the server stopped while this run was working. Reply `/retry` to run it again.",
        "✅ **Done**",
    ]
