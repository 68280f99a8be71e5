"""HTTP for the research families: one async client per service, its token sent only to the service's own hosts.

A `Remote` follows redirects itself, one hop at a time, and attaches the token to a hop only when that hop's origin
is one of its trusted origins (the Hub and its configured endpoint for `HubHTTP`; the GitHub API for the GitHub
client). A URL the model chose, a CDN the Hub redirects to, arXiv: none of them ever sees a credential. Bodies are
read up to a byte cap; rate limits and overloads are retried with backoff (every call here is a GET, so retrying is
safe); everything else that goes wrong becomes a `ToolError` the model can act on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urljoin, urlsplit

from agent.env import EnvSnapshot
from agent.errors import ToolError

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

MAX_BYTES = 2 << 20
"""Bodies are read up to this many bytes unless a caller asks for less."""
TIMEOUT = 30.0
MAX_WAIT = 20.0
"""A server that asks to wait longer than this (Retry-After) is not waited for: the model is told instead."""
RETRY_STATUSES = frozenset({429, 502, 503, 504})
HUB = "https://huggingface.co"
VIEWER = "https://datasets-server.huggingface.co"
ARXIV = "https://export.arxiv.org"


def origin(url: str) -> str:
    """`scheme://host[:port]` of `url`, lower-cased; '' when it is not an http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    port = f":{parts.port}" if parts.port and parts.port != {"http": 80, "https": 443}[parts.scheme] else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


@dataclass
class Reply:
    """A response, its body read (up to a cap)."""

    status: int
    url: str
    headers: dict[str, str]
    body: bytes
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise ToolError(f"{origin(self.url)} sent a malformed answer (not JSON); try again later") from None

    def error_message(self) -> str:
        """The service's own error text: `X-Error-Message`, or `error` / `message` of a JSON body."""
        if msg := self.headers.get("x-error-message"):
            return msg
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return self.text.strip()[:300]
        if isinstance(data, dict):
            return str(data.get("error") or data.get("message") or "")[:300]
        return ""


@dataclass
class Remote:
    """An async HTTP client holding one service's token, sent only to `trusted` origins."""

    client: httpx.AsyncClient
    token: str | None = None
    trusted: frozenset[str] = frozenset()
    service: str = "the service"
    token_var: str = ""
    retries: int = 2
    backoff: float = 1.0
    extra_headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def new_client() -> httpx.AsyncClient:
        import httpx

        return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": "ml-intern"})

    def auth_headers(self, url: str) -> dict[str, str]:
        """The credential for `url`: only when its origin is trusted, never for any other host."""
        if self.token and origin(url) in self.trusted:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    async def get(
        self,
        url: str,
        params: dict[str, Any] | list[tuple[str, Any]] | None = None,
        *,
        headers: dict[str, str] | None = None,
        max_bytes: int = MAX_BYTES,
        ok: tuple[int, ...] = (),
    ) -> Reply:
        """GET `url`; a non-2xx status raises `ToolError` (from `explain`) unless it is in `ok`."""
        for attempt in range(self.retries + 1):
            reply = await self._follow(url, params, headers or {}, max_bytes)
            if reply.status not in RETRY_STATUSES or reply.status in ok:
                break
            delay = self._delay(reply, attempt)
            if attempt == self.retries or delay is None:
                break
            logger.info("%s answered %d; retrying in %.1f s", origin(reply.url), reply.status, delay)
            await asyncio.sleep(delay)
        if reply.status < 300 or reply.status in ok:
            return reply
        raise ToolError(self.explain(reply))

    async def json(self, url: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> Any:
        return (await self.get(url, params, headers={"Accept": "application/json"})).json()

    async def _follow(self, url: str, params: Any, headers: dict[str, str], max_bytes: int) -> Reply:
        import httpx

        for _ in range(6):
            try:
                request = self.client.build_request(
                    "GET", url, params=params, headers={**self.extra_headers, **headers, **self.auth_headers(url)}
                )
            except httpx.InvalidURL as e:
                raise ToolError(f"not a valid URL ({e}); check the names and paths given") from None
            try:
                response = await self.client.send(request, stream=True)
                try:
                    body, truncated = await _read(response, max_bytes)
                finally:
                    await response.aclose()
            except httpx.TimeoutException:
                raise ToolError(f"{origin(url) or url} did not answer in time; try again later") from None
            except httpx.HTTPError as e:
                raise ToolError(f"could not reach {origin(url) or url}: {type(e).__name__}: {e}") from None
            if response.status_code in (301, 302, 303, 307, 308) and "location" in response.headers:
                url = urljoin(str(response.url), response.headers["location"])
                params = params if not urlsplit(url).query and origin(url) == origin(str(request.url)) else None
                continue
            return Reply(response.status_code, str(response.url), dict(response.headers), body, truncated)
        raise ToolError(f"too many redirects from {url}")

    def _delay(self, reply: Reply, attempt: int) -> float | None:
        """Seconds to wait before retrying, from Retry-After or RateLimit headers, else backoff; None: do not wait."""
        asked = _retry_after(reply.headers)
        if asked is not None:
            return asked if asked <= MAX_WAIT else None
        return float(self.backoff * (1 << attempt) * (0.5 + random.random() / 2))

    @property
    def _anonymous(self) -> bool:
        return not self.token and bool(self.token_var)

    def explain(self, reply: Reply) -> str:
        """What went wrong and what to do, for the model."""
        where, said = origin(reply.url), reply.error_message()
        detail = f": {said}" if said else ""
        if reply.status == 429:
            wait = _retry_after(reply.headers)
            hint = f"wait {wait:.0f} s" if wait is not None else "wait a minute"
            anon = f" (no {self.token_var} is set; a token raises the limit)" if self._anonymous else ""
            return f"rate limited by {self.service}{anon}; {hint} before calling again, or work with what you have"
        if reply.status in (401, 403):
            if self._anonymous:
                return f"{where} refused access ({reply.status}){detail}. No {self.token_var} is set; ask for it"
            return f"{where} refused access ({reply.status}){detail}. The token in {self.token_var} has no access to it"
        if reply.status == 404:
            return f"not found ({where}){detail}; check the name and spelling"
        if reply.status >= 500:
            return f"{self.service} failed ({reply.status}){detail}; try again later or use another source"
        return f"{where} answered {reply.status}{detail}"

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class HubHTTP(Remote):
    """Hugging Face: the Hub (`HF_ENDPOINT`), the dataset viewer, and tokenless access to arXiv."""

    endpoint: str = HUB
    viewer: str = VIEWER
    arxiv: str = ARXIV

    @classmethod
    def from_env(cls, env: EnvSnapshot) -> Self:
        endpoint = (env.get("HF_ENDPOINT") or HUB).rstrip("/")
        viewer = (env.get("HF_DATASETS_SERVER_URL") or VIEWER).rstrip("/")
        return cls.create(
            token=env.first("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"),
            endpoint=endpoint,
            viewer=viewer,
            arxiv=(env.get("ARXIV_API_URL") or ARXIV).rstrip("/"),
        )

    @classmethod
    def create(cls, *, token: str | None = None, endpoint: str = HUB, viewer: str = VIEWER, **kw: Any) -> Self:
        """A client for these hosts; the token goes to the endpoint, the viewer and huggingface.co only."""
        trusted = frozenset(o for o in (origin(endpoint), origin(viewer), HUB) if o)
        return cls(
            cls.new_client(),
            token,
            trusted,
            "Hugging Face",
            "HF_TOKEN",
            endpoint=endpoint,
            viewer=viewer,
            **kw,
        )

    def explain(self, reply: Reply) -> str:
        code, page = reply.headers.get("x-error-code", ""), reply.url
        if code == "GatedRepo" or (reply.status == 403 and "gated" in reply.error_message().lower()):
            who = "the account of HF_TOKEN" if self.token else "an account, then set HF_TOKEN"
            return f"gated repo: request access on its Hub page with {who}; until then only its metadata is readable"
        if code == "EntryNotFound":
            return "no such file in this repo; list its files with hub_repo first"
        if code == "RevisionNotFound":
            return "no such revision (branch, tag or commit) in this repo"
        if code == "RepoNotFound" or (reply.status in (401, 404) and "/api/" in page):
            if not self.token:
                return "repo not found, or private/gated and no HF_TOKEN is set; check the id (owner/name) and type"
            return "repo not found, or private and HF_TOKEN has no access; check the id (owner/name) and type"
        return super().explain(reply)


async def _read(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            return b"".join(chunks)[:max_bytes], True
    return b"".join(chunks), False


def _retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            try:
                from datetime import UTC, datetime

                return max((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds(), 0.0)
            except (TypeError, ValueError):
                return None
    limit = headers.get("ratelimit", "")  # the Hub: `"api";r=0;t=55`
    for part in limit.split(";"):
        if part.strip().startswith("t="):
            try:
                return float(part.strip()[2:])
            except ValueError:
                return None
    return None


__all__ = ["HubHTTP", "Remote", "Reply", "origin"]
