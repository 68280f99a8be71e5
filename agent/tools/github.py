"""The github family: code search and file reading in public repositories, to learn from working examples."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Self

from agent.env import EnvSnapshot
from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.families import Family
from agent.tools.remote import Remote, Reply, origin
from agent.tools.render import clip, is_binary, notebook, size, window

API = "https://api.github.com"
REPO = re.compile(r"^[\w.-]{1,100}/[\w.-]{1,100}$")
ENTRIES_SHOWN = 200


@dataclass
class GitHubHTTP(Remote):
    """The GitHub REST API; `GITHUB_TOKEN` is sent to the API host only (`GITHUB_API_URL`, default api.github.com)."""

    api: str = API

    @classmethod
    def from_env(cls, env: EnvSnapshot) -> Self:
        return cls.create(token=env.first("GITHUB_TOKEN", "GH_TOKEN"), api=(env.get("GITHUB_API_URL") or API))

    @classmethod
    def create(cls, *, token: str | None = None, api: str = API, **kw: Any) -> Self:
        api = api.rstrip("/")
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        trusted = frozenset({origin(api)})
        return cls(cls.new_client(), token, trusted, "GitHub", "GITHUB_TOKEN", extra_headers=headers, api=api, **kw)

    def explain(self, reply: Reply) -> str:
        if reply.status in (403, 429) and reply.headers.get("x-ratelimit-remaining") == "0":
            reset = reply.headers.get("x-ratelimit-reset", "?")
            more = "" if self.token else "; set GITHUB_TOKEN for 5,000 requests an hour"
            return f"GitHub rate limit reached (resets at epoch {reset}){more}; use what you have meanwhile"
        if reply.status == 401:
            return "GitHub rejected GITHUB_TOKEN (bad credentials); ask the user to check it"
        if reply.status == 422:
            return f"GitHub rejected the query: {reply.error_message()}; simplify it"
        if reply.status == 404:
            return "not found on GitHub: check owner/repo, the path and the ref (private repos are not readable)"
        return super().explain(reply)


def check_repo(repo: str) -> str:
    repo = repo.strip().removeprefix("https://github.com/").strip("/")
    if not REPO.match(repo) or any(part in (".", "..") for part in repo.split("/")):
        raise ToolError(f"{repo!r} is not a GitHub repository; use owner/name, e.g. 'huggingface/trl'")
    return repo


@tool(effects=[Effect.READ, Effect.NETWORK])
async def github_search_code(ctx: ToolContext, query: str, repo: str = "", path: str = "", limit: int = 10) -> str:
    """Search code in public GitHub repos (needs GITHUB_TOKEN); one line per file.

    Args:
        query: e.g. "SFTConfig packing language:python".
        repo: owner/name.
        path: e.g. examples/.
    """
    gh = ctx.deps.get(GitHubHTTP)
    if not gh.token:
        raise ToolError("GitHub code search needs sign-in but no GITHUB_TOKEN is set; read files with github_read")
    q = " ".join([query.strip(), *(f"{k}:{v.strip()}" for k, v in (("repo", repo), ("path", path)) if v)])
    if not query.strip():
        raise ToolError("query is empty")
    per_page = max(1, min(limit, 30))
    params = {"q": q, "per_page": per_page}
    reply = await gh.get(f"{gh.api}/search/code", params, headers={"Accept": "application/vnd.github.text-match+json"})
    data = reply.json()
    items = data.get("items") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ToolError("GitHub sent an unexpected answer for code search; try again later")
    partial = " (incomplete)" if data.get("incomplete_results") else ""
    lines = [f"{data.get('total_count', '?')} files match{partial}"]
    for item in items[:per_page]:
        if not isinstance(item, dict):
            continue
        full = (item.get("repository") or {}).get("full_name", "?")
        matches = item.get("text_matches") or []
        fragment = clip(matches[0].get("fragment", ""), 160) if matches and isinstance(matches[0], dict) else ""
        lines.append(f"{full} {item.get('path')}" + (f" · {fragment}" if fragment else ""))
    return "\n".join(lines)


@tool(effects=[Effect.READ, Effect.NETWORK])
async def github_read(
    ctx: ToolContext, repo: str, path: str = "", ref: str = "", offset: int = 1, limit: int = 250
) -> str:
    """Read a file of a public GitHub repo from line `offset` (notebooks as cells), or list a folder.

    Args:
        repo: owner/name.
        ref: Branch, tag or commit.
    """
    gh, repo = ctx.deps.get(GitHubHTTP), check_repo(repo)
    path = path.strip().strip("/")
    if ".." in path.split("/"):
        raise ToolError("path must stay inside the repository")
    data = (await gh.get(f"{gh.api}/repos/{repo}/contents/{path}", {"ref": ref} if ref else None)).json()
    if isinstance(data, list):
        entries = sorted(
            (e for e in data if isinstance(e, dict)), key=lambda e: (e.get("type") != "dir", str(e.get("path")))
        )
        lines = [f"{repo}/{path}: {len(entries)} entries"]
        lines += [
            f"  {e.get('path')}/" if e.get("type") == "dir" else f"  {e.get('path')}  {size(e.get('size'))}"
            for e in entries[:ENTRIES_SHOWN]
        ]
        return "\n".join(lines)
    if not isinstance(data, dict) or data.get("type") != "file":
        raise ToolError(f"{path or '/'} is not a file or folder (a submodule or symlink?)")
    raw = await _content(gh, data)
    if is_binary(raw):
        return f"{path} is a binary file ({size(data.get('size'))}); not shown"
    text = raw.decode("utf-8", errors="replace")
    text = notebook(text) if path.endswith(".ipynb") else text
    try:
        return window(text, max(offset, 1), max(1, min(limit, 1000)), name=f"{repo}/{path}")
    except ValueError as e:
        raise ToolError(str(e)) from None


async def _content(gh: GitHubHTTP, data: dict[str, Any]) -> bytes:
    """A file's bytes: inline base64, or (files over 1 MB) fetched raw from the API."""
    if data.get("encoding") == "base64" and data.get("content"):
        try:
            return base64.b64decode(str(data["content"]).replace("\\n", "").replace("\n", ""))
        except (binascii.Error, ValueError):
            raise ToolError("GitHub sent a malformed file body; try again later") from None
    url = data.get("url")
    if not isinstance(url, str) or origin(url) != origin(gh.api):
        raise ToolError("GitHub did not send this file's content; it may be too large")
    reply = await gh.get(url, headers={"Accept": "application/vnd.github.raw+json"}, max_bytes=2 << 20)
    return reply.body


FAMILY = Family("github", (github_search_code, github_read), needs=(GitHubHTTP,))

__all__ = ["FAMILY", "GitHubHTTP", "github_read", "github_search_code"]
