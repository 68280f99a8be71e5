"""The `search` tool: files by glob and lines by regex, inside the workspace."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import regex as rx  # like re, but with a time limit and without holding the GIL while matching

from agent.cuts import cut_end
from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.paths import display_path, open_inside, resolve_path

logger = logging.getLogger(__name__)

SKIP_DIRS = frozenset({".git", "__pycache__", ".venv", "node_modules", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
MAX_FILE_BYTES = 2_000_000
"""Larger files are skipped by pattern search."""
MAX_RESULTS = 1000
_MATCH_CHARS = 300
_COUNT_HIDDEN_UP_TO = 1000


def glob_regex(glob: str) -> re.Pattern[str]:
    """Compile a glob: `*`, `?` and `[...]` stay within a folder, `**/` spans folders, `{a,b}` picks one."""
    return re.compile(_translate(glob.removeprefix("./")))


def _translate(glob: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(glob):
        c, step = glob[i], 1
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            step = 3
        elif glob.startswith("**", i):
            out.append(".*")
            step = 2
        elif c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (close := glob.find("]", i + 2)) != -1:
            body = glob[i + 1 : close]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            step = close + 1 - i
        elif c == "{" and (close := glob.find("}", i + 1)) != -1:
            out.append("(?:" + "|".join(_translate(alt) for alt in glob[i + 1 : close].split(",")) + ")")
            step = close + 1 - i
        else:
            out.append(re.escape(c))
        i += step
    return "".join(out)


SEARCH_SECONDS = 20.0
"""Time a pattern search may take; a pathological regex (e.g. (a+)+$) is stopped, not left to hang the agent."""


@dataclass
class _Found:
    limit: int
    deadline: float = field(default_factory=lambda: time.monotonic() + SEARCH_SECONDS)
    lines: list[str] = field(default_factory=list)
    hidden: int = 0
    too_big: int = 0

    def add(self, line: str) -> None:
        if len(self.lines) < self.limit:
            self.lines.append(line)
        else:
            self.hidden += 1

    @property
    def full(self) -> bool:
        return self.hidden >= _COUNT_HIDDEN_UP_TO


def _files(root: Path, allowed: list[Path]) -> Iterator[Path]:
    """Regular files under `root` in name order, skipping tool folders and symlinks that leave `allowed`."""
    if root.is_file():
        yield root
        return
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(names):
            p = Path(folder, name)
            if p.is_symlink() and not any(p.resolve().is_relative_to(a) for a in allowed):
                continue
            if p.is_file():
                yield p


def _match(pattern: rx.Pattern[str], text: str, found: _Found) -> bool:
    left = found.deadline - time.monotonic()
    try:
        if left <= 0:
            raise TimeoutError
        return pattern.search(text, timeout=left, concurrent=True) is not None
    except TimeoutError:
        raise ToolError(
            f"the search took over {SEARCH_SECONDS:.0f} s and was stopped: the pattern backtracks too much "
            "(nested repeats like (a+)+ are the usual cause); simplify it or narrow path/glob"
        ) from None


def _grep(ctx: ToolContext, p: Path, regex: rx.Pattern[str], found: _Found) -> None:
    try:  # opened without following symlinks from the workspace, and only if still a regular file
        with open_inside(ctx, p.resolve()) as f:
            if os.fstat(f.fileno()).st_size > MAX_FILE_BYTES:
                found.too_big += 1
                return
            data = f.read(MAX_FILE_BYTES)
    except (OSError, ValueError, ToolError):
        return
    if b"\0" in data[:8192]:
        return
    text = data.decode("utf-8", errors="replace")
    if not _match(regex, text, found):
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if _match(regex, line, found):
            shown = line.strip()
            shown = cut_end(shown[:_MATCH_CHARS]) if len(shown) > _MATCH_CHARS else shown
            found.add(f"{display_path(ctx, p)}:{n}: {shown}")


def _search(
    ctx: ToolContext,
    root: Path,
    regex: rx.Pattern[str] | None,
    names: re.Pattern[str] | None,
    by_name: bool,
    limit: int,
) -> _Found:
    allowed = [ctx.workdir.resolve(), ctx.session_dir.resolve()]
    found = _Found(limit)
    for p in _files(root, allowed):
        if names and not names.fullmatch(p.name if by_name or p == root else p.relative_to(root).as_posix()):
            continue
        if regex is None:
            found.add(display_path(ctx, p))
        else:
            _grep(ctx, p, regex, found)
        if found.full:
            break
    return found


def _report(found: _Found, what: str, where: str) -> str:
    if not found.lines:
        out = f"No {what} in {where}."
    else:
        out = "\n".join(found.lines)
        if found.hidden:
            more = f"{found.hidden}+" if found.full else str(found.hidden)
            out += f"\n… {more} more not shown; narrow the pattern, glob or path"
    if found.too_big:
        out += f"\n(skipped {found.too_big} files over {MAX_FILE_BYTES // 1_000_000} MB; use bash for those)"
    return out


@tool(effects=[Effect.READ])
async def search(
    ctx: ToolContext,
    pattern: str | None = None,
    glob: str | None = None,
    path: str = ".",
    max_results: int = 100,
    case_sensitive: bool = True,
) -> str:
    """Find files by glob and/or lines by regex (like grep -rn); skips .git, .venv, binary and huge files.

    Args:
        pattern: Regex searched line by line; omit to list files.
        glob: File filter, e.g. `*.py` (any depth) or `src/**/*.yaml`.
        path: Folder or file to search.
        max_results: Maximum results.
        case_sensitive: False to ignore case.
    """
    if not pattern and not glob:
        raise ToolError("give a pattern (regex over file contents), a glob (file names), or both")
    if not 1 <= max_results <= MAX_RESULTS:
        raise ToolError(f"max_results must be between 1 and {MAX_RESULTS}")
    regex = names = None
    try:
        if pattern:
            regex = rx.compile(pattern, rx.MULTILINE | rx.VERSION0 | (0 if case_sensitive else rx.IGNORECASE))
        if glob:
            names = glob_regex(glob)
    except (re.error, rx.error) as e:
        bad = f"regex {pattern!r}" if pattern and regex is None else f"glob {glob!r}"
        raise ToolError(f"invalid {bad}: {e}; escape special characters like ( [ . with \\") from None
    root = resolve_path(ctx, path, write=False)
    if not root.exists():
        raise ToolError(f"{path} does not exist")
    by_name = glob is not None and "/" not in glob
    found = await asyncio.to_thread(_search, ctx, root, regex, names, by_name, max_results)
    what = f"files matching {glob!r}"
    if pattern:
        what = f"lines matching {pattern!r}" + (f" in {what}" if glob else "")
    return _report(found, what, display_path(ctx, root))


__all__ = ["glob_regex", "search"]
