"""The one module that talks to GitHub: REST calls as the App or an installation, with retries and rate limits.

Built on `httpx.AsyncClient` rather than PyGithub: the server is async, and the retry policy must be ours
(PyGithub retries POST on 5xx, which double-posts, and never retries 429).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from bot.auth import AppJWT, InstallationToken, TokenCache, parse_expiry

logger = logging.getLogger(__name__)

MAX_BODY_CHARS = 65_536
"""GitHub refuses issue and comment bodies longer than this."""
MAX_PAGES = 20
"""Pages of comments read when looking for a marker (100 a page)."""
_RETRYABLE_STATUS = {500, 502, 503, 504}

TargetKind = Literal["issue", "issue_comment", "review_comment"]
Sleep = Callable[[float], Awaitable[None]]


class GitHubError(Exception):
    """A GitHub call failed; the message names the call and GitHub's reason, never a credential."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Target:
    """Something the bot reacts to: an issue (or PR), an issue comment, or a PR review comment."""

    kind: TargetKind
    id: int
    """The issue number for `issue`, else the comment id."""


def bound_body(body: str) -> str:
    """Cut a comment body to what GitHub accepts, saying so."""
    if len(body) <= MAX_BODY_CHARS:
        return body
    note = "\n\n… (cut: GitHub comments hold at most 65,536 characters)"
    return body[: MAX_BODY_CHARS - len(note) - 64] + note


def rate_limit_wait(response: httpx.Response, now: float) -> float | None:
    """Seconds to wait before retrying a rate-limited response, or None if it is not a rate limit."""
    if response.status_code not in (403, 429):
        return None
    headers = response.headers
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            return 60.0
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        try:
            return max(0.0, float(headers["x-ratelimit-reset"]) - now)
        except ValueError:
            return 60.0
    if response.status_code == 429 or "rate limit" in response.text.lower():
        return 60.0  # a secondary limit without headers: wait at least a minute
    return None


class GitHub:
    """REST client for the App. Installation calls pass `installation=ID`; App calls leave it out."""

    def __init__(
        self,
        api_url: str,
        jwt: AppJWT,
        *,
        client: httpx.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        max_attempts: int = 5,
        max_wait: float = 120.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._jwt = jwt
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
        self._sleep = sleep
        self._clock = clock
        self.max_attempts = max_attempts
        self.max_wait = max_wait
        self.tokens = TokenCache(self._mint, clock)

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- transport ----------------------------------------------------------------------------

    async def _headers(self, installation: int | None) -> dict[str, str]:
        auth = f"Bearer {self._jwt.token()}" if installation is None else f"token {await self.tokens.get(installation)}"
        return {
            "Authorization": auth,
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "ml-intern",
        }

    async def request(
        self,
        method: str,
        path: str,
        *,
        installation: int | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        before_retry: Callable[[], Awaitable[httpx.Response | None]] | None = None,
    ) -> httpx.Response:
        """One call with retries on 5xx, connection errors and rate limits; raises GitHubError on failure.

        A POST is retried after a 5xx or a lost connection only if `before_retry` is given: it runs first
        and may return the response of a create that did land (so nothing is posted twice).
        """
        url = path if path.startswith("http") else f"{self.api_url}{path}"
        refreshed = False
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                sent = await self._headers(installation)
                sent.update(headers or {})
                response = await self._client.request(method, url, headers=sent, json=json, params=params)
            except httpx.TransportError as e:
                if last or (method == "POST" and before_retry is None):
                    raise GitHubError(f"{method} {path}: {type(e).__name__}", retryable=True) from None
                found = await self._backoff(attempt, before_retry if method == "POST" else None)
                if found is not None:
                    return found
                continue
            status = response.status_code
            if status < 300 or status == 304:
                return response
            if status == 401 and installation is not None and not refreshed:
                self.tokens.forget(installation)  # revoked or expired early: mint a new one once
                refreshed = True
                continue
            wait = rate_limit_wait(response, self._clock())
            if wait is not None and not last:
                if wait > self.max_wait:
                    raise GitHubError(f"{method} {path}: rate limited for {wait:.0f} s", status=status, retryable=True)
                logger.warning("GitHub rate limit on %s %s: waiting %.1f s", method, path, wait)
                await self._sleep(wait)
                continue
            if status in _RETRYABLE_STATUS and not last and (method != "POST" or before_retry is not None):
                found = await self._backoff(attempt, before_retry if method == "POST" else None)
                if found is not None:
                    return found
                continue
            raise GitHubError(
                f"{method} {path}: {status} {_message(response)}",
                status=status,
                retryable=status in _RETRYABLE_STATUS or wait is not None,
            )
        raise GitHubError(f"{method} {path}: gave up after {self.max_attempts} attempts", retryable=True)

    async def _backoff(
        self, attempt: int, check: Callable[[], Awaitable[httpx.Response | None]] | None
    ) -> httpx.Response | None:
        delay = min(30.0, 0.5 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
        logger.info("GitHub call failed; retrying in %.1f s (attempt %d)", delay, attempt)
        await self._sleep(delay)
        return await check() if check is not None else None

    async def _mint(self, installation: int) -> InstallationToken:
        r = await self.request("POST", f"/app/installations/{installation}/access_tokens", before_retry=_nothing)
        data = r.json()
        return InstallationToken(str(data["token"]), parse_expiry(str(data["expires_at"])))

    # ---- the calls the bot makes ---------------------------------------------------------------

    async def app(self) -> dict[str, Any]:
        """The App itself (`GET /app`): id, slug, name."""
        result: dict[str, Any] = (await self.request("GET", "/app")).json()
        return result

    async def permission(self, installation: int, repo: str, user: str) -> str:
        """A user's permission on a repository: admin, maintain, write, triage, read or none."""
        try:
            r = await self.request("GET", f"/repos/{repo}/collaborators/{user}/permission", installation=installation)
        except GitHubError as e:
            if e.status == 404:  # not a user (an App) or unknown
                return "none"
            raise
        data = r.json()
        role = str(data.get("role_name") or "")
        return role if role in ("maintain", "triage") else str(data.get("permission") or "none")

    async def react(self, installation: int, repo: str, target: Target, content: str = "eyes") -> None:
        """Add a reaction (idempotent: GitHub answers 200 if it is already there)."""
        paths = {
            "issue": f"/repos/{repo}/issues/{target.id}/reactions",
            "issue_comment": f"/repos/{repo}/issues/comments/{target.id}/reactions",
            "review_comment": f"/repos/{repo}/pulls/comments/{target.id}/reactions",
        }
        await self.request(
            "POST", paths[target.kind], installation=installation, json={"content": content}, before_retry=_nothing
        )

    async def comments(self, installation: int, repo: str, number: int) -> list[dict[str, Any]]:
        """The comments of an issue or PR, oldest first (at most MAX_PAGES pages)."""
        out: list[dict[str, Any]] = []
        url: str | None = f"/repos/{repo}/issues/{number}/comments"
        params: dict[str, Any] | None = {"per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            r = await self.request("GET", url, installation=installation, params=params)
            out.extend(r.json())
            url, params = r.links.get("next", {}).get("url"), None
        return out

    async def find_comment(self, installation: int, repo: str, number: int, marker: str) -> dict[str, Any] | None:
        """The bot's comment holding `marker`, if one was posted."""
        for comment in await self.comments(installation, repo, number):
            if marker in str(comment.get("body") or ""):
                return comment
        return None

    async def create_comment(self, installation: int, repo: str, number: int, body: str, marker: str) -> int:
        """Post a comment that holds `marker`, once: a retried create first looks for the marker."""

        async def landed() -> httpx.Response | None:
            found = await self.find_comment(installation, repo, number, marker)
            return httpx.Response(200, json=found) if found else None

        r = await self.request(
            "POST",
            f"/repos/{repo}/issues/{number}/comments",
            installation=installation,
            json={"body": bound_body(body)},
            before_retry=landed,
        )
        return int(r.json()["id"])

    async def reply(self, installation: int, repo: str, number: int, body: str) -> int:
        """Post a one-off comment (no marker): a failed create is not retried blindly."""
        r = await self.request(
            "POST",
            f"/repos/{repo}/issues/{number}/comments",
            installation=installation,
            json={"body": bound_body(body)},
        )
        return int(r.json()["id"])

    async def edit_comment(self, installation: int, repo: str, comment_id: int, body: str) -> None:
        await self.request(
            "PATCH",
            f"/repos/{repo}/issues/comments/{comment_id}",
            installation=installation,
            json={"body": bound_body(body)},
        )

    async def reactions(
        self, installation: int, repo: str, comment_id: int, etag: str = ""
    ) -> tuple[str, list[dict[str, Any]] | None]:
        """The reactions on an issue comment (first 100) and the list's ETag; None when unchanged since `etag`
        (a 304, which costs no rate limit)."""
        r = await self.request(
            "GET",
            f"/repos/{repo}/issues/comments/{comment_id}/reactions",
            installation=installation,
            params={"per_page": 100},
            headers={"If-None-Match": etag} if etag else None,
        )
        if r.status_code == 304:
            return etag, None
        items: list[dict[str, Any]] = r.json()
        return r.headers.get("etag", ""), items


async def _nothing() -> None:
    """A POST that is safe to repeat (a reaction, a token): retry without looking."""
    return None


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase
    return str(data.get("message", ""))[:200] if isinstance(data, dict) else response.reason_phrase


__all__ = ["MAX_BODY_CHARS", "GitHub", "GitHubError", "Target", "bound_body", "rate_limit_wait"]
