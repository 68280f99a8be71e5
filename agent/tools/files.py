"""File tools confined to the workspace: `read`, `write` and `edit` (paths are checked by `agent/tools/paths.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, BinaryIO

from agent.cuts import cut_end, cut_start
from agent.errors import ToolError
from agent.tools.base import Effect, ToolContext, tool
from agent.tools.paths import NOFOLLOW, display_path, open_folder, open_inside, os_errors, resolve_path
from agent.tools.protect import protected_reason

logger = logging.getLogger(__name__)

LINE_CHARS = 2000
"""Longer lines are cut in `read` output."""
_LINE_BYTES = LINE_CHARS * 4
_SNIFF_BYTES = 8192
COUNT_BYTES = 256 << 20
"""`read` stops counting a file's lines after this many bytes."""
MAX_EDIT_BYTES = 64 << 20
"""`edit` loads the whole file; larger ones are left to bash."""


def utf8(text: str, what: str) -> bytes:
    """`text` as UTF-8; a lone surrogate (malformed model output) is an error the model reads, not a crash."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = text[e.start : e.end].encode("unicode_escape").decode()
        raise ToolError(f"{what} holds {bad} at {e.start}, which is not text (a lone surrogate); resend it") from None


def is_binary(path: Path) -> bool:
    """Whether the file looks binary (a NUL byte near the start)."""
    with path.open("rb") as f:
        return _sniff(f)


def _sniff(f: BinaryIO) -> bool:
    binary = b"\0" in f.read(_SNIFF_BYTES)
    f.seek(0)
    return binary


def _existing_file(ctx: ToolContext, path: str, *, write: bool) -> Path:
    target = resolve_path(ctx, path, write=write)
    with os_errors(path):
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


def _count_rest(f: BinaryIO) -> int | None:
    """Lines left in `f`, or None when there are more than COUNT_BYTES to scan (a huge file)."""
    count, last, budget = 0, b"\n", COUNT_BYTES
    while chunk := f.read(1 << 20):
        count += chunk.count(b"\n")
        last = chunk[-1:]
        budget -= len(chunk)
        if budget < 0:
            return None
    return count + (last != b"\n")


def _show_line(head: bytes, size: int) -> str:
    text = head.decode("utf-8", errors="replace").rstrip("\r\n")
    if len(text) > LINE_CHARS or size > len(head):
        return f"{cut_end(text[:LINE_CHARS])} [line cut: {size:,} bytes]"
    return text


def _read(f: BinaryIO, shown: str, offset: int, limit: int) -> str:
    if _sniff(f):
        size = os.fstat(f.fileno()).st_size
        raise ToolError(f"{shown} looks binary ({size:,} bytes); inspect it with bash (e.g. `file`, `xxd | head`)")
    out: list[str] = []
    n = 0
    for n, (head, size) in enumerate(_iter_lines(f), start=1):
        if n >= offset:
            out.append(f"{n:6}\t{_show_line(head, size)}")
        if n >= offset + limit - 1:
            break
    rest = _count_rest(f)
    if n == 0:
        return f"({shown} is empty)"
    if offset > n:
        raise ToolError(f"offset {offset} is past the end of {shown}, which has {n} lines")
    last = offset + len(out) - 1
    if rest is None:
        size = os.fstat(f.fileno()).st_size
        return (
            "\n".join(out)
            + f"\n({shown}: lines {offset}-{last} of a {size:,}-byte file; read more with offset={last + 1})"
        )
    total = n + rest
    more = f"; read more with offset={last + 1}" if last < total else ""
    return "\n".join(out) + f"\n({shown}: lines {offset}-{last} of {total}{more})"


def _read_file(ctx: ToolContext, target: Path, offset: int, limit: int) -> str:
    shown = display_path(ctx, target)
    with os_errors(shown), open_inside(ctx, target) as f:
        return _read(f, shown, offset, limit)


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
    return await asyncio.to_thread(_read_file, ctx, target, offset, limit)


# ---- write ------------------------------------------------------------------------------------


def protected_path(ctx: ToolContext, args: dict[str, Any]) -> dict[Effect, str]:
    """`protected`, with why, when the call writes a path that makes code run later (see agent/tools/protect.py)."""
    try:
        target = resolve_path(ctx, str(args.get("path", "")), write=True)
    except ToolError:
        return {}  # the call fails on its own, saying why
    why = protected_reason(ctx.workdir.resolve(), target)
    return {Effect.PROTECTED: why} if why else {}


def atomic_write(target: Path, data: bytes, base: Path | None = None) -> None:
    """Replace `target` with `data` in one step, keeping the mode of an existing file.

    Missing folders are created from `base` (default: the target's folder) without following symlinks.
    """
    base = base or target.parent
    folder = open_folder(base, target.parent, create=True)
    try:
        try:
            old = os.stat(target.name, dir_fd=folder, follow_symlinks=False)
            mode = stat.S_IMODE(old.st_mode) if stat.S_ISREG(old.st_mode) else None
        except FileNotFoundError:
            mode = None
        tmp = f".{target.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                if mode is not None:
                    os.fchmod(f.fileno(), mode)
            os.replace(tmp, target.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
    finally:
        os.close(folder)


def _write(ctx: ToolContext, target: Path, content: str) -> str:
    shown = display_path(ctx, target)
    data = utf8(content, "content")
    with os_errors(shown):
        existed = target.exists()
        atomic_write(target, data, ctx.workdir.resolve())
    lines = content.count("\n") + (bool(content) and not content.endswith("\n"))
    return f"{'Replaced' if existed else 'Created'} {shown}: {len(data):,} bytes, {lines} lines"


@tool(effects=[Effect.WRITE], summarize=lambda a: f"write {a.get('path')}", call_effects=protected_path)
async def write(ctx: ToolContext, path: str, content: str) -> str:
    """Create or overwrite a file; parent folders are created.

    Args:
        path: Path relative to the workspace.
        content: The full content.
    """
    target = resolve_path(ctx, path, write=True)
    with os_errors(path):
        if target.is_dir():
            raise ToolError(f"{path} is a folder; give a file path")
    return await asyncio.to_thread(_write, ctx, target, content)


# ---- edit -------------------------------------------------------------------------------------


def _numbered(lines: list[str], start: int, stop: int) -> str:
    return "\n".join(f"{i + 1:6}\t{_cut(lines[i])}" for i in range(max(start, 0), min(stop, len(lines))))


def _cut(line: str) -> str:
    return cut_end(line[:LINE_CHARS]) if len(line) > LINE_CHARS else line


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


def _load(ctx: ToolContext, target: Path, shown: str) -> str:
    with open_inside(ctx, target) as f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_EDIT_BYTES:
            raise ToolError(f"{shown} is {size:,} bytes, too big to edit here; use bash (e.g. `sed -i`)")
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"{shown} is not UTF-8 text; edit it with bash instead") from None


def _edit(ctx: ToolContext, target: Path, old: str, new: str, replace_all: bool) -> str:
    shown = display_path(ctx, target)
    with os_errors(shown):
        return _replace(ctx, target, shown, old, new, replace_all)


def _replace(ctx: ToolContext, target: Path, shown: str, old: str, new: str, replace_all: bool) -> str:
    text = _load(ctx, target, shown)
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
    atomic_write(target, utf8(updated, "new"), ctx.workdir.resolve())
    line = text.count("\n", 0, first)
    after = _numbered(updated.splitlines(), line - 2, line + min(new.count("\n"), 6) + 3)
    return f"Edited {shown}: {count if replace_all else 1} replacement(s).\n{after}"


def _summarize_edit(args: dict[str, Any]) -> str:
    return f"edit {args.get('path')}"


@tool(effects=[Effect.WRITE], summarize=_summarize_edit, call_effects=protected_path)
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
    return await asyncio.to_thread(_edit, ctx, target, old, new, replace_all)


__all__ = [
    "atomic_write",
    "cut_end",
    "cut_start",
    "display_path",
    "edit",
    "is_binary",
    "open_folder",
    "open_inside",
    "os_errors",
    "protected_path",
    "read",
    "resolve_path",
    "write",
]
