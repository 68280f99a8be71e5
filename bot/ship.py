"""Shipping a run's work (the runner, never the model): leave protected paths out, commit, push, open a draft PR."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.github import GitHub, GitHubError
from bot.workspace import Workspace, WorkspaceError

logger = logging.getLogger(__name__)

PUSH_ATTEMPTS = 3
MAX_FILE_BYTES = 50 << 20
"""Files larger than this are left out (GitHub warns at 50 MiB and refuses 100 MiB)."""
MAX_SUMMARY_CHARS = 20_000
INSTRUCTION_FILES = ("AGENTS.md", "CLAUDE.md")
PROTECTED_NOTE = (
    "Changes to `.github/workflows/`, `.github/ml-intern.yml`, `CODEOWNERS` and agent instruction files "
    "(`AGENTS.md`, `CLAUDE.md`) are never shipped (instruction files only when the request is about them): "
    "the App cannot push workflows, and these files decide what runs and who reviews."
)


class ShipError(Exception):
    """Publishing failed; the message says what was done and what was not (no secret in it)."""


@dataclass
class Thread:
    """Where the work goes: the repository, its default branch, and (on a PR thread) the PR's head."""

    repo: str
    number: int
    is_pr: bool
    default_branch: str
    clone_url: str
    branch: str
    """The branch the run commits to."""
    pr_url: str = ""
    """A PR that already receives this branch (the PR thread itself, or an earlier run's draft PR)."""
    pr_base: str = ""
    """The base of a new PR (default: the default branch)."""


@dataclass
class ShipResult:
    """What the runner published."""

    branch: str = ""
    commit: str = ""
    pr_url: str = ""
    pr_created: bool = False
    files: list[str] = field(default_factory=list)
    left_out: list[tuple[str, str]] = field(default_factory=list)
    """(path, why) of changes that were not shipped."""

    def note(self) -> str:
        """One plain sentence for the final comment (the PR link and what was left out are shown apart)."""
        if not self.commit:
            return "No files changed, so nothing was committed and no pull request was opened."
        how = "a new draft pull request" if self.pr_created else "its pull request" if self.pr_url else "no PR yet"
        return f"Shipped {len(self.files)} file(s) to branch {self.branch} ({how})."

    def summary(self) -> str:
        """Markdown for the final comment: what shipped where, and what was left out and why."""
        if not self.commit:
            lines = ["**No changes to ship**: the run left the repository as it was, so no pull request was opened."]
        else:
            where = f"[the pull request]({self.pr_url})" if self.pr_url else f"branch `{self.branch}`"
            opened = "opened as a draft" if self.pr_created else "updated"
            lines = [f"**Shipped** {len(self.files)} file(s) to `{self.branch}` ({where}, {opened})."]
        if self.left_out:
            lines.append("\nLeft out:")
            lines += [f"- `{path}`: {why}" for path, why in self.left_out]
        return "\n".join(lines)[:MAX_SUMMARY_CHARS]


def protected_reason(path: str, request: str) -> str | None:
    """Why `path` may not be shipped, or None when it may."""
    lower = path.lower()
    if lower.startswith(".github/workflows/"):
        return "workflows are never shipped (the App has no workflows permission)"
    if lower in (".github/ml-intern.yml", ".github/ml-intern.yaml"):
        return "ML Intern's own configuration is never shipped"
    if lower.rsplit("/", 1)[-1] == "codeowners":
        return "CODEOWNERS decides who reviews and is never shipped"
    name = path.rsplit("/", 1)[-1]
    if name in INSTRUCTION_FILES and name.lower() not in request.lower():
        return "agent instruction files are shipped only when the request is about them"
    return None


async def stage(ws: Workspace, request: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Stage the working tree in the runner's index, minus protected paths; returns (staged, left out)."""
    await ws.git("add", "-A", "--", ".")
    names = (await ws.git("diff", "--cached", "--name-only", "-z", "--no-renames", "HEAD")).split("\0")
    staged, left_out = [], []
    for name in filter(None, names):
        why = protected_reason(name, request) or _too_big(ws, name)
        if why is None:
            staged.append(name)
        else:
            left_out.append((name, why))
    if left_out:
        await ws.git("reset", "-q", "HEAD", "--", *(name for name, _ in left_out))
    return staged, left_out


async def commit(ws: Workspace, message: str, author: tuple[str, str], requester: str) -> str:
    """Commit the staged changes with the requester as co-author; returns the commit id."""
    name, email = author
    trailer = f"Co-authored-by: {requester} <{requester}@users.noreply.github.com>"
    await ws.git(
        "-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "-q", "--no-verify", "-m", message,
        "-m", trailer,
    )  # fmt: skip
    return (await ws.git("rev-parse", "HEAD", work=False)).strip()


async def push(ws: Workspace, thread: Thread, token: str) -> None:
    """Push HEAD to the thread's branch: never forced, never the default branch; retried on server errors."""
    if thread.branch == thread.default_branch or not thread.branch:
        raise ShipError(f"refusing to push to `{thread.branch or '?'}`, the default branch")
    last = ""
    for attempt in range(1, PUSH_ATTEMPTS + 1):
        try:
            await ws.git("push", "-q", "--no-verify", thread.clone_url, f"HEAD:refs/heads/{thread.branch}", token=token)
            return
        except WorkspaceError as e:
            last = str(e)
            if "rejected" in last or "non-fast-forward" in last:
                break
            logger.warning("push to %s failed (attempt %d): %s", thread.branch, attempt, last)
    raise ShipError(f"the push to `{thread.branch}` failed: {last}")


async def open_pr(gh: GitHub, installation: int, thread: Thread, title: str, body: str) -> tuple[str, bool]:
    """The open PR of the branch, or a new draft one; returns (url, created)."""
    owner = thread.repo.split("/")[0]
    head = f"{owner}:{thread.branch}"

    async def existing() -> httpx.Response | None:
        r = await gh.request(
            "GET", f"/repos/{thread.repo}/pulls", installation=installation, params={"head": head, "state": "open"}
        )
        pulls: list[dict[str, Any]] = r.json()
        return r if pulls else None

    found = await existing()
    if found is not None:
        return str(found.json()[0]["html_url"]), False
    payload = {
        "title": title,
        "head": thread.branch,
        "base": thread.pr_base or thread.default_branch,
        "body": body,
        "draft": True,
    }
    r = await gh.request(
        "POST", f"/repos/{thread.repo}/pulls", installation=installation, json=payload, before_retry=existing
    )
    data = r.json()
    pull = data[0] if isinstance(data, list) else data
    return str(pull["html_url"]), r.status_code == 201


async def ship(
    ws: Workspace,
    gh: GitHub,
    installation: int,
    thread: Thread,
    *,
    request: str,
    requester: str,
    author: tuple[str, str],
    report: str,
) -> ShipResult:
    """Validate and publish what the run changed; raises ShipError when publishing fails."""
    staged, left_out = await stage(ws, request)
    result = ShipResult(branch=thread.branch, left_out=left_out, pr_url=thread.pr_url)
    if not staged:
        return result
    title = _title(request)
    try:
        result.commit = await commit(ws, f"{title}\n\n{_bounded(report, 4000)}", author, requester)
    except WorkspaceError as e:
        raise ShipError(f"the commit failed: {e}") from None
    result.files = staged
    await push(ws, thread, await gh.tokens.get(installation))
    if thread.pr_url:
        return result
    closes = "" if thread.is_pr else f"Closes #{thread.number}.\n\n"
    body = (
        f"{closes}Requested by @{requester} in #{thread.number}.\n\n## What was done and how it was checked\n\n"
        f"{_bounded(report, 50_000)}\n\n{result.summary()}"
    )
    try:
        result.pr_url, result.pr_created = await open_pr(gh, installation, thread, title, body)
    except GitHubError as e:
        raise ShipError(f"the branch `{thread.branch}` was pushed, but opening the pull request failed: {e}") from None
    return result


def _too_big(ws: Workspace, name: str) -> str | None:
    try:
        size = (ws.work / name).lstat().st_size
    except OSError:  # deleted: the deletion ships
        return None
    return (
        f"larger than {MAX_FILE_BYTES >> 20} MiB (GitHub refuses big files in git)" if size > MAX_FILE_BYTES else None
    )


def _title(request: str) -> str:
    line = re.sub(r"\s+", " ", re.sub(r"@[\w.-]+(\[bot\])? ?", "", request, count=1)).strip()
    return (line[:69] + "…") if len(line) > 70 else line or "Changes by ML Intern"


def _bounded(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n\n… (cut)"


__all__ = ["PROTECTED_NOTE", "ShipError", "ShipResult", "Thread", "open_pr", "protected_reason", "push", "ship"]
