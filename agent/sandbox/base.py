"""The execution-environment seam: what runs a command for a tool, and what it reports back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

OnOutput = Callable[[bytes], None]
"""Receives the command's output as it arrives (stdout and stderr together), for live log lines."""


@dataclass
class CommandResult:
    """How a command ended."""

    output: str
    """stdout and stderr interleaved; the middle of a long output is dropped (head and tail kept)."""
    exit_code: int
    """The command's exit status; negative: killed by that signal."""
    timed_out: bool
    held: bool = False
    """A process that escaped the call kept the output open after the command ended; reading stopped."""


class Sandbox(Protocol):
    """Runs one shell command in the workspace, bounded in time and output, and leaves no process behind."""

    name: str
    """`local` or `bubblewrap`."""
    isolated: bool
    """True when commands cannot see the agent's environment, the user's home or other processes."""

    def describe(self) -> str:
        """One line for people: what commands can reach."""
        ...

    async def run(
        self, command: str, *, cwd: Path, env: Mapping[str, str], seconds: float, on_output: OnOutput
    ) -> CommandResult:
        """Run `command` with bash in `cwd` (inside the workspace) with environment `env`; cancelling kills it."""
        ...


__all__ = ["CommandResult", "OnOutput", "Sandbox"]
