"""A thread's checkout: cloned with the installation token, which is never written to disk.

Each thread gets a folder with two parts: `repo.git`, the runner's own git directory (fetches, commits and pushes
happen there, with hooks and filters off), and `work`, the working tree the agent edits. The agent's `work/.git` is
a fresh local clone made for every run, without any remote credential, so nothing the sandboxed agent writes into
it (hooks, `core.fsmonitor`, `url.*.insteadOf`) can ever run or redirect the runner's git commands.

The token reaches git only through the environment of the one subprocess that talks to GitHub
(`GIT_CONFIG_COUNT` / `http.extraheader`): never in a URL, a config file or a command line.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_GIT_OUTPUT = 4000
"""Characters of a failed git command's message kept in the error."""
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_HARDENING = (
    "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false", "-c", "credential.helper=",
    "-c", "protocol.allow=never", "-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always",
    "-c", "protocol.file.allow=always", "-c", "commit.gpgSign=false", "-c", "core.autocrlf=false",
)  # fmt: skip
"""Passed to every runner git command: no hooks, no fsmonitor, no helper, only the protocols the runner uses."""


class WorkspaceError(Exception):
    """A git step of the workspace failed; the message is safe to show (no token)."""


@dataclass
class ThreadState:
    """What a thread remembers between runs (kept next to its checkout)."""

    branch: str = ""
    session_id: str = ""
    pr_url: str = ""


def basic_auth(token: str) -> str:
    """The header GitHub accepts for git over HTTPS with an installation token."""
    return "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def git_env(home: Path, token: str | None = None) -> dict[str, str]:
    """The whole environment of a runner git command: nothing of the server's, the token only when given."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ASKPASS": "/bin/false",
    }
    if token:
        env.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="http.extraheader", GIT_CONFIG_VALUE_0=basic_auth(token))
    return env


class Workspace:
    """The checkout of one thread (`owner/repo#number`) under `root`."""

    def __init__(self, root: Path, repo: str, number: int) -> None:
        owner, _, name = repo.partition("/")
        if not (_SAFE_NAME.fullmatch(owner) and _SAFE_NAME.fullmatch(name)) or name in (".", ".."):
            raise WorkspaceError(f"not a repository name: {repo!r}")
        self.repo = repo
        self.number = number
        self.root = root / owner / name / str(number)
        self.git_dir = self.root / "repo.git"
        self.work = self.root / "work"
        self.home = self.root / "home"
        """An empty HOME for git: the server user's ~/.gitconfig is not read."""

    # ---- thread state -------------------------------------------------------------------------

    def load_state(self) -> ThreadState:
        path = self.root / "thread.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return ThreadState()
        return ThreadState(**{k: str(data.get(k) or "") for k in ("branch", "session_id", "pr_url")})

    def save_state(self, state: ThreadState) -> None:
        path = self.root / "thread.json"
        path.write_text(json.dumps(asdict(state)))

    # ---- git ----------------------------------------------------------------------------------

    async def git(self, *args: str, token: str | None = None, work: bool = True, git_dir: Path | None = None) -> str:
        """Run a runner git command on this thread's git directory (and working tree); returns stdout."""
        where = ["--git-dir", str(git_dir or self.git_dir)] + (["--work-tree", str(self.work)] if work else [])
        proc = await asyncio.create_subprocess_exec(
            "git",
            *_HARDENING,
            *where,
            *args,
            cwd=str(self.root),
            env=git_env(self.home, token),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await proc.communicate()
        except BaseException:  # cancelled (/stop, shutdown): git does not outlive the run
            if proc.returncode is None:
                proc.kill()
                await asyncio.shield(proc.wait())
            raise
        if proc.returncode != 0:
            message = err.decode(errors="replace").strip()[-MAX_GIT_OUTPUT:]
            if token:
                message = message.replace(token, "***")
            raise WorkspaceError(f"git {args[0]} failed ({proc.returncode}): {message}")
        return out.decode(errors="replace")

    async def remote_has(self, url: str, ref: str, token: str) -> bool:
        """Whether the remote has `ref` (e.g. `refs/heads/ml-intern/1-x`)."""
        return bool((await self.git("ls-remote", url, ref, token=token, work=False)).strip())

    async def prepare(self, url: str, token: str, *, base: str, branch: str, start: str | None = None) -> None:
        """Fetch and check out `branch` in `work`: its remote tip when it exists, else `start` (default `base`).

        `start` is a remote ref to fetch (`refs/pull/7/head`). A follow-up keeps the working tree as the last run
        left it and moves to the remote tip only when that is ahead (someone pushed to the branch).
        """
        for folder in (self.root, self.home):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.git_dir.exists():  # made aside and moved in place: a cancelled run leaves no half repository
            fresh = self.root / "repo.git.new"
            shutil.rmtree(fresh, ignore_errors=True)
            await self.git("init", "-q", "--bare", str(fresh), work=False, git_dir=fresh)
            await self.git("config", "core.bare", "false", work=False, git_dir=fresh)
            fresh.rename(self.git_dir)
        refs = {f"refs/heads/{base}": "base"}
        if await self.remote_has(url, f"refs/heads/{branch}", token):
            refs[f"refs/heads/{branch}"] = "branch"
        elif start:
            refs[start] = "start"
        specs = [f"+{ref}:refs/ml-intern/{name}" for ref, name in refs.items()]
        await self.git("fetch", "-q", "--no-tags", url, *specs, token=token, work=False)
        tip = "refs/ml-intern/" + ("branch" if "branch" in refs.values() else "start" if start else "base")
        self.work.mkdir(exist_ok=True)
        if not await self._has(f"refs/heads/{branch}"):
            await self.git("checkout", "-q", "-f", "-B", branch, tip)
        else:
            await self._follow(branch, tip)
        await self._agent_git(url)

    async def _has(self, ref: str) -> bool:
        try:
            await self.git("rev-parse", "-q", "--verify", ref, work=False)
        except WorkspaceError:
            return False
        return True

    async def _follow(self, branch: str, tip: str) -> None:
        current = (await self.git("rev-parse", f"refs/heads/{branch}", work=False)).strip()
        target = (await self.git("rev-parse", tip, work=False)).strip()
        if current != target:
            ahead = await self._is_ancestor(current, target)
            await self.git("symbolic-ref", "HEAD", f"refs/heads/{branch}", work=False)
            if ahead:
                await self.git("reset", "-q", "--keep", target)

    async def _is_ancestor(self, a: str, b: str) -> bool:
        try:
            await self.git("merge-base", "--is-ancestor", a, b, work=False)
        except WorkspaceError:
            return False
        return True

    async def _agent_git(self, url: str) -> None:
        """A fresh `work/.git` for the agent's own use (diff, log, commits in the sandbox), without credentials."""
        dot = self.work / ".git"
        if dot.is_symlink() or dot.is_file():
            dot.unlink()
        elif dot.exists():
            shutil.rmtree(dot)
        tmp = self.root / "agent-clone"
        shutil.rmtree(tmp, ignore_errors=True)
        await self.git("clone", "-q", "--no-checkout", "--no-hardlinks", str(self.git_dir), str(tmp), work=False)
        (tmp / ".git").rename(dot)
        shutil.rmtree(tmp, ignore_errors=True)
        await self.git("remote", "set-url", "origin", url, git_dir=dot, work=False)
        await self.git("reset", "-q", git_dir=dot)


def slug(text: str, limit: int = 40) -> str:
    """A branch-name slug of a request: `add-a-baseline-eval-script`."""
    words = re.findall(r"[a-z0-9]+", re.sub(r"@[\w.-]+(\[bot\])?", " ", text).lower())
    out = ""
    for word in words:
        if len(out) + len(word) + 1 > limit:
            break
        out = f"{out}-{word}" if out else word
    return out or "changes"


__all__ = ["ThreadState", "Workspace", "WorkspaceError", "basic_auth", "git_env", "slug"]
