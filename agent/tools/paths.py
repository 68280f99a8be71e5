"""Paths of the file tools: resolved inside the workspace (or, for reading, the session folder), opened without
following a symlink swapped in after the check, shown relative to the workspace. Shared by files, search, shell."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from agent.errors import ToolError
from agent.tools.base import ToolContext

NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC
"""Flags that open a name without following a symlink (and close it on exec)."""


def resolve_path(ctx: ToolContext, path: str, *, write: bool) -> Path:
    """Resolve `path` (relative to the workspace) and refuse anything outside it, symlinks followed.

    Read-only callers may also reach the session folder, where long tool outputs are spilled; nothing may
    write there, even when the session folder lies inside the workspace.
    """
    root, session = ctx.workdir.resolve(), ctx.session_dir.resolve()
    try:
        target = (root / Path(path)).resolve()
    except (OSError, ValueError) as e:
        raise ToolError(f"bad path {path!r}: {e}") from None
    if write and target.is_relative_to(session):
        raise ToolError(f"{path!r} is in the session folder, which is read-only; write inside the workspace")
    allowed = [root] if write else [root, session]
    if any(target.is_relative_to(r) for r in allowed):
        return target
    raise ToolError(f"{path!r} is outside the workspace; use a path inside {root} (relative paths start there)")


def _base(ctx: ToolContext, target: Path) -> Path:
    root = ctx.workdir.resolve()
    return root if target.is_relative_to(root) else ctx.session_dir.resolve()


def open_folder(base: Path, folder: Path, *, create: bool = False) -> int:
    """A descriptor of `folder` (resolved, inside `base`), opened one name at a time from `base` without following
    symlinks, so that a folder swapped for a symlink after `resolve_path` checked it cannot lead outside."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in folder.relative_to(base).parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, dir_fd=fd)
            parent, fd = fd, -1
            try:
                fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | NOFOLLOW, dir_fd=parent)
            finally:
                os.close(parent)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    return fd


def open_inside(ctx: ToolContext, target: Path) -> BinaryIO:
    """Open a resolved path from `resolve_path` for reading: no symlink on the way, and only a regular file
    (a FIFO would block forever, a device never ends)."""
    folder = open_folder(_base(ctx, target), target.parent)
    try:
        fd = os.open(target.name, os.O_RDONLY | os.O_NONBLOCK | NOFOLLOW, dir_fd=folder)
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ToolError(f"{display_path(ctx, target)} is not a regular file (a FIFO, socket or device); use bash")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


@contextlib.contextmanager
def os_errors(path: str) -> Iterator[None]:
    """Turn OS failures (name too long, permission denied, changed under us) into errors the model reads."""
    try:
        yield
    except OSError as e:
        raise ToolError(f"{path}: {e.strerror or e}") from None


def display_path(ctx: ToolContext, path: Path) -> str:
    """`path` relative to the workspace when it is inside it, else absolute."""
    root = ctx.workdir.resolve()
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


__all__ = ["display_path", "open_folder", "open_inside", "os_errors", "resolve_path"]
