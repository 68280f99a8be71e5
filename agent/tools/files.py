"""File tools confined to the workspace: `read`, `write`, `edit`, and the path check they share with search."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, BinaryIO

from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool

logger = logging.getLogger(__name__)

LINE_CHARS = 2000
"""Longer lines are cut in `read` output."""
_LINE_BYTES = LINE_CHARS * 4
_SNIFF_BYTES = 8192


def resolve_path(ctx: ToolContext, path: str, *, write: bool) -> Path:
    """Resolve `path` (relative to the workspace) and refuse anything outside it, symlinks followed.

    Read-only callers may also reach the session folder, where long tool outputs are spilled.
    """
    root = ctx.workdir.resolve()
    try:
        target = (root / Path(path)).resolve()
    except (OSError, ValueError) as e:
        raise ToolError(f"bad path {path!r}: {e}") from None
    allowed = [root] if write else [root, ctx.session_dir.resolve()]
    if any(target.is_relative_to(r) for r in allowed):
        return target
    raise ToolError(f"{path!r} is outside the workspace; use a path inside {root} (relative paths start there)")


def display_path(ctx: ToolContext, path: Path) -> str:
    """`path` relative to the workspace when it is inside it, else absolute."""
    root = ctx.workdir.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def is_binary(path: Path) -> bool:
    """Whether the file looks binary (a NUL byte near the start)."""
    with path.open("rb") as f:
        return b"\0" in f.read(_SNIFF_BYTES)


def _existing_file(ctx: ToolContext, path: str, *, write: bool) -> Path:
    target = resolve_path(ctx, path, write=write)
    if target.is_dir():
        raise ToolError(f"{path} is a folder; list it with search(glob=...) or bash `ls`")
    if not target.exists():
        raise ToolError(f"{path} does not exist; find files with search(glob=...)")
    return target


# ---- read -------------------------------------------------------------------------------------


def _iter_lines(f: BinaryIO) -> Iterator[tuple[bytes, int]]:
    """Yield (first bytes of the line, its full size), holding at most _LINE_BYTES of any line."""
    while part := f.readline(_LINE_BYTES):
        head, size = part, len(part)
        while not part.endswith(b"\n") and (part := f.readline(_LINE_BYTES)):
            size += len(part)
        yield head, size


def _count_rest(f: BinaryIO) -> int:
    count, last = 0, b"\n"
    while chunk := f.read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


def _show_line(head: bytes, size: int) -> str:
    text = head.decode("utf-8", errors="replace").rstrip("\r\n")
    if len(text) > LINE_CHARS or size > len(head):
        return f"{text[:LINE_CHARS]} … [line cut: {size:,} bytes]"
    return text


def _read(target: Path, shown: str, offset: int, limit: int) -> str:
    if is_binary(target):
        size = target.stat().st_size
        raise ToolError(f"{shown} looks binary ({size:,} bytes); inspect it with bash (e.g. `file`, `xxd | head`)")
    out: list[str] = []
    n = 0
    with target.open("rb") as f:
        for n, (head, size) in enumerate(_iter_lines(f), start=1):
            if n >= offset:
                out.append(f"{n:6}\t{_show_line(head, size)}")
            if n >= offset + limit - 1:
                break
        total = n + _count_rest(f)
    if total == 0:
        return f"({shown} is empty)"
    if offset > total:
        raise ToolError(f"offset {offset} is past the end of {shown}, which has {total} lines")
    last = offset + len(out) - 1
    more = f"; read more with offset={last + 1}" if last < total else ""
    return "\n".join(out) + f"\n({shown}: lines {offset}-{last} of {total}{more})"


@tool(effects=[Effect.READ])
async def read(ctx: ToolContext, path: str, offset: int = 1, limit: int = 2000) -> str:
    """Read a text file with numbered lines.

    Args:
        path: Path relative to the workspace.
        offset: First line (1-based).
        limit: Number of lines.
    """
    if offset < 1 or limit < 1:
        raise ToolError("offset and limit must be at least 1")
    target = _existing_file(ctx, path, write=False)
    return await asyncio.to_thread(_read, target, display_path(ctx, target), offset, limit)


# ---- write ------------------------------------------------------------------------------------


def atomic_write(target: Path, data: bytes) -> None:
    """Replace `target` with `data` in one step, keeping the mode of an existing file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write(target: Path, shown: str, content: str) -> str:
    existed = target.exists()
    data = content.encode("utf-8")
    atomic_write(target, data)
    lines = content.count("\n") + (bool(content) and not content.endswith("\n"))
    return f"{'Replaced' if existed else 'Created'} {shown}: {len(data):,} bytes, {lines} lines"


@tool(effects=[Effect.WRITE], summarize=lambda a: f"write {a.get('path')}")
async def write(ctx: ToolContext, path: str, content: str) -> str:
    """Create or overwrite a file; parent folders are created.

    Args:
        path: Path relative to the workspace.
        content: The full content.
    """
    target = resolve_path(ctx, path, write=True)
    if target.is_dir():
        raise ToolError(f"{path} is a folder; give a file path")
    return await asyncio.to_thread(_write, target, display_path(ctx, target), content)


# ---- edit -------------------------------------------------------------------------------------


def _numbered(lines: list[str], start: int, stop: int) -> str:
    return "\n".join(f"{i + 1:6}\t{lines[i][:LINE_CHARS]}" for i in range(max(start, 0), min(stop, len(lines))))


def _closest(text: str, old: str) -> str:
    """The file lines most like the longest line of `old`, shown as windows the size of `old`."""
    lines = text.splitlines()
    old_lines = old.splitlines() or [old]
    anchor_at, anchor = max(enumerate(s.strip() for s in old_lines), key=lambda p: len(p[1]))
    matcher = SequenceMatcher(autojunk=False)
    matcher.set_seq2(anchor[:500])
    scored: list[tuple[float, int]] = []
    for i, line in enumerate(lines):
        matcher.set_seq1(line.strip()[:500])
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6 and (r := matcher.ratio()) >= 0.6:
            scored.append((r, i))
    size = min(len(old_lines), 8)
    windows = [_numbered(lines, i - anchor_at, i - anchor_at + size) for _, i in sorted(scored, reverse=True)[:2]]
    return "\n---\n".join(windows)


def _no_match(text: str, old: str, shown: str) -> str:
    msg = f"old text not found in {shown}."
    if " ".join(old.split()) in " ".join(text.split()):
        msg += " It matches if whitespace is ignored: check indentation, tabs and line breaks."
    closest = _closest(text, old) if old.strip() else ""
    if closest:
        return f"{msg} Closest lines:\n{closest}\nCopy `old` exactly from the file (`read` shows it)."
    return f"{msg} No similar lines; `read` the file to see its current content."


def _edit(target: Path, shown: str, old: str, new: str, replace_all: bool) -> str:
    try:
        text = target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not UTF-8 text; edit it with bash instead") from None
    if old not in text and "\r\n" in text and "\n" in old:
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
    count = text.count(old)
    if count == 0:
        raise ToolError(_no_match(text, old, shown))
    if count > 1 and not replace_all:
        raise ToolError(
            f"old text occurs {count} times in {shown}; include more surrounding lines to pick one, "
            "or set replace_all=true to replace every occurrence"
        )
    first = text.index(old)
    updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    atomic_write(target, updated.encode("utf-8"))
    line = text.count("\n", 0, first)
    after = _numbered(updated.splitlines(), line - 2, line + min(new.count("\n"), 6) + 3)
    return f"Edited {shown}: {count if replace_all else 1} replacement(s).\n{after}"


def _summarize_edit(args: dict[str, Any]) -> str:
    return f"edit {args.get('path')}"


@tool(effects=[Effect.WRITE], summarize=_summarize_edit)
async def edit(ctx: ToolContext, path: str, old: str, new: str, replace_all: bool = False) -> str:
    """Replace an exact piece of text in a file.

    Args:
        path: Path relative to the workspace.
        old: Exact text to replace (whitespace included); must be unique unless replace_all.
        new: Replacement text.
        replace_all: Replace every occurrence.
    """
    if not old:
        raise ToolError("old must not be empty; use write to create or overwrite a file")
    if old == new:
        raise ToolError("old and new are identical; nothing to change")
    target = _existing_file(ctx, path, write=True)
    return await asyncio.to_thread(_edit, target, display_path(ctx, target), old, new, replace_all)


__all__ = ["atomic_write", "display_path", "edit", "is_binary", "read", "resolve_path", "write"]
