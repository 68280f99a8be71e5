"""A pids cgroup per command: the bound on processes that holds for root, whom RLIMIT_NPROC does not limit."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count()


@dataclass
class PidsCgroup:
    """A cgroup folder where this process may create children with a `pids.max`."""

    parent: Path
    max_pids: int

    @classmethod
    def find(cls, max_pids: int, root: Path = ROOT) -> PidsCgroup | None:
        """A writable pids cgroup (v1 `pids` hierarchy, or v2 with the controller delegated), or None."""
        for parent in _candidates(root):
            try:
                probe = parent / f"ml-intern-probe-{os.getpid()}"
                probe.mkdir()
            except OSError:
                continue
            try:
                if (probe / "pids.max").exists() and os.access(probe / "cgroup.procs", os.W_OK):
                    return cls(parent, max_pids)
            finally:
                probe.rmdir()
        return None

    @contextlib.asynccontextmanager
    async def child(self) -> AsyncIterator[Path]:
        """A fresh child cgroup limited to `max_pids`; yields its `cgroup.procs` (write a pid there to join it)."""
        folder = self.parent / f"ml-intern-{os.getpid()}-{next(_counter)}"
        folder.mkdir()
        try:
            (folder / "pids.max").write_text(str(self.max_pids))
            yield folder / "cgroup.procs"
        finally:
            await _remove(folder)


def _candidates(root: Path) -> list[Path]:
    """This process's own pids cgroup in each hierarchy that may offer the controller."""
    found = []
    for line in _read("/proc/self/cgroup").splitlines():
        _, controllers, path = line.split(":", 2)
        rel = path.lstrip("/")
        if "pids" in controllers.split(","):
            found.append(root / "pids" / rel)
        elif controllers == "":  # the unified (v2) hierarchy
            found += [root / rel, root / "unified" / rel]
    return [p for p in found if p.is_dir()]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


async def _remove(folder: Path) -> None:
    """Kill what is left in a child cgroup (nothing, normally: the sandbox's PID namespace ends with it), and
    remove it once its processes are gone."""
    for _ in range(100):
        for pid in _read(str(folder / "cgroup.procs")).split():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        try:
            folder.rmdir()
            return
        except OSError:
            await asyncio.sleep(0.02)
    logger.warning("could not remove the cgroup %s (processes still in it)", folder)


__all__ = ["PidsCgroup"]
