"""The GitHub client against the fake over HTTP: auth, retries, rate limits, no duplicate posts."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.auth import AppJWT, load_private_key
from bot.github import MAX_BODY_CHARS, GitHub, GitHubError, Target, bound_body, rate_limit_wait
from tests.bot.conftest import REPO
from tests.bot.fake_github import APP_ID, FakeGitHub, Fault


@pytest.fixture
async def client(
    github: FakeGitHub, app_key: tuple[rsa.RSAPrivateKey, str]
) -> AsyncIterator[tuple[GitHub, list[float]]]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    gh = GitHub(github.api_url, AppJWT(str(APP_ID), load_private_key(app_key[1].encode())), sleep=sleep)
    yield gh, slept
    await gh.aclose()


async def test_app_and_installation_auth(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, _ = client
    assert (await gh.app())["slug"] == "ml-intern"
    for _ in range(3):
        await gh.react(1, REPO, Target("issue", 5))
    assert github.count("POST", "/access_tokens$") == 1
    assert [c.auth for c in github.calls] == ["Bearer", "Bearer", "token", "token", "token"]
    assert [c.status for c in github.calls if "reactions" in c.path] == [201, 200, 200]


async def test_a_wrong_key_is_refused(github: FakeGitHub) -> None:
    from tests.bot.fake_github import new_key

    gh = GitHub(github.api_url, AppJWT(str(APP_ID), new_key()[0]))
    with pytest.raises(GitHubError) as e:
        await gh.app()
    assert e.value.status == 401 and "could not be decoded" in str(e.value)
    await gh.aclose()


async def test_an_expiring_token_is_replaced(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, _ = client
    github.token_ttl = 200  # inside the refresh margin: every call mints
    await gh.react(1, REPO, Target("issue", 5))
    await gh.react(1, REPO, Target("issue", 5))
    assert github.count("POST", "/access_tokens$") == 2
    github.token_ttl = 3600
    github.tokens.clear()  # revoked behind our back: a 401 makes the client mint again, once
    await gh.react(1, REPO, Target("issue", 5))
    assert github.count("POST", "/access_tokens$") == 3


async def test_5xx_is_retried_with_backoff(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, slept = client
    github.faults.append(Fault("GET", "/permission$", 503, times=2))
    assert await gh.permission(1, REPO, "Codertocat") == "admin"
    assert len(slept) == 2 and slept[1] > slept[0] * 0.4
    github.faults.append(Fault("GET", "/permission$", 500, times=10))
    with pytest.raises(GitHubError) as e:
        await gh.permission(1, REPO, "Codertocat")
    assert e.value.status == 500 and e.value.retryable


async def test_secondary_rate_limits_honour_retry_after_and_reset(
    github: FakeGitHub, client: tuple[GitHub, list[float]]
) -> None:
    gh, slept = client
    github.faults += [
        Fault(
            "POST", "/reactions$", 403, {"retry-after": "7"}, {"message": "You have exceeded a secondary rate limit."}
        ),
        Fault("POST", "/reactions$", 429, {"retry-after": "3"}, {"message": "Too many requests"}),
    ]
    await gh.react(1, REPO, Target("issue_comment", 9))
    assert slept == [7.0, 3.0]
    slept.clear()
    github.faults.append(Fault("GET", "/permission$", 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0"}))
    assert await gh.permission(1, REPO, "Codertocat") == "admin"
    assert slept == [0.0]
    github.faults.append(Fault("GET", "/permission$", 403, {}, {"message": "You have exceeded a secondary rate limit"}))
    slept.clear()
    await gh.permission(1, REPO, "someone")
    assert slept == [60.0]  # no header: at least a minute


async def test_a_wait_longer_than_allowed_gives_up(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, slept = client
    github.faults.append(Fault("GET", "/permission$", 429, {"retry-after": "3600"}))
    with pytest.raises(GitHubError, match="rate limited for 3600 s"):
        await gh.permission(1, REPO, "Codertocat")
    assert slept == []


async def test_a_403_that_is_not_a_rate_limit_fails_at_once(
    github: FakeGitHub, client: tuple[GitHub, list[float]]
) -> None:
    gh, slept = client
    github.faults.append(Fault("PATCH", "/comments/", 403, {}, {"message": "Resource not accessible by integration"}))
    comment = github.add_comment(REPO, 1, "x", "ml-intern[bot]", app=True)
    with pytest.raises(GitHubError, match="not accessible"):
        await gh.edit_comment(1, REPO, comment["id"], "y")
    assert slept == []


async def test_a_retried_create_does_not_post_twice(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, _ = client
    for i in range(130):  # the marker is on the second page
        github.add_comment(REPO, 1, f"chatter {i}", "someone")
    github.faults.append(Fault("POST", "/issues/1/comments$", 502, after=True))
    cid = await gh.create_comment(1, REPO, 1, "hello <!-- ml-intern:run:9 -->", "<!-- ml-intern:run:9 -->")
    mine = [c for c in github.thread_comments(REPO, 1) if "run:9" in c["body"]]
    assert [c["id"] for c in mine] == [cid]
    github.faults.append(Fault("POST", "/issues/2/comments$", 502))  # this one did not land: posted on retry
    await gh.create_comment(1, REPO, 2, "hi <!-- ml-intern:run:10 -->", "<!-- ml-intern:run:10 -->")
    assert len(github.thread_comments(REPO, 2)) == 1


async def test_a_plain_reply_is_not_retried_blindly(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, _ = client
    github.faults.append(Fault("POST", "/issues/3/comments$", 502, after=True))
    with pytest.raises(GitHubError):
        await gh.reply(1, REPO, 3, "hello")
    assert len(github.thread_comments(REPO, 3)) == 1


async def test_permission_levels(github: FakeGitHub, client: tuple[GitHub, list[float]]) -> None:
    gh, _ = client
    github.permissions[(REPO, "m")] = "maintain"
    github.permissions[(REPO, "t")] = "triage"
    assert [await gh.permission(1, REPO, u) for u in ("m", "t", "x")] == ["maintain", "triage", "read"]
    github.faults.append(Fault("GET", "/permission$", 404, body={"message": "is not a user"}))
    assert await gh.permission(1, REPO, "some-app") == "none"


async def test_connection_errors_are_retried_then_reported(app_key: tuple[rsa.RSAPrivateKey, str]) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gh = GitHub(
        f"http://127.0.0.1:{port}", AppJWT("1", load_private_key(app_key[1].encode())), sleep=sleep, max_attempts=3
    )
    with pytest.raises(GitHubError, match="ConnectError") as e:
        await gh.app()
    assert e.value.status is None and len(slept) == 2
    await gh.aclose()


def test_bodies_are_bounded() -> None:
    assert bound_body("short") == "short"
    cut = bound_body("x" * 100_000)
    assert len(cut) <= MAX_BODY_CHARS and cut.endswith("65,536 characters)")


def test_rate_limit_wait_reads_the_headers() -> None:
    def resp(status: int, headers: dict[str, str], text: str = "") -> httpx.Response:
        return httpx.Response(status, headers=headers, text=text)

    assert rate_limit_wait(resp(500, {}), 0) is None
    assert rate_limit_wait(resp(403, {}, '{"message": "Forbidden"}'), 0) is None
    assert rate_limit_wait(resp(403, {"retry-after": "5"}), 0) == 5
    assert rate_limit_wait(resp(403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "110"}), 100) == 10
    assert rate_limit_wait(resp(429, {}), 0) == 60
