"""Keep the agent's own process out of reach of the commands it starts (stdlib only)."""

from __future__ import annotations

import sys

_PR_SET_DUMPABLE = 4


def protect_process() -> bool:
    """Make this process non-dumpable, so a process of the same (non-root) user cannot read its environment
    or memory through /proc (`/proc/$PPID/environ`) or attach a debugger to it. Root is not stopped by this
    (CAP_SYS_PTRACE). Returns whether it took effect (Linux only)."""
    if sys.platform != "linux":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0


__all__ = ["protect_process"]
