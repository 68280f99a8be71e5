"""Commands as local processes: a new process group, a timeout, bounded output, and no process left behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from agent.cuts import cut_end, cut_start
from agent.sandbox.base import CommandResult, OnOutput

logger = logging.getLogger(__name__)

HEAD_BYTES = 1_000_000
TAIL_BYTES = 1_000_000
"""At most HEAD_BYTES + TAIL_BYTES of output are kept; the middle of a longer output is dropped."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
DRAIN_SECONDS = 2.0
"""After the command ends, how long escaped processes (`setsid`) may keep the output open before we stop reading."""
_CHUNK = 65536


class OutputCapture:
    """Keeps the first HEAD_BYTES and the last TAIL_BYTES of a stream and counts the bytes in between."""

    def __init__(self, head: int = HEAD_BYTES, tail: int = TAIL_BYTES) -> None:
        self._head_limit, self._tail_limit = head, tail
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self.dropped = 0

    @property
    def held(self) -> int:
        return len(self._head) + self._tail_size

    def feed(self, chunk: bytes) -> None:
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self._tail.append(chunk)
        self._tail_size += len(chunk)
        while self._tail_size - len(self._tail[0]) >= self._tail_limit:
            old = self._tail.popleft()
            self._tail_size -= len(old)
            self.dropped += len(old)

    def text(self) -> str:
        tail = b"".join(self._tail)
        extra = max(len(tail) - self._tail_limit, 0)
        dropped = self.dropped + extra
        if not dropped:
            return (bytes(self._head) + tail).decode("utf-8", errors="replace")
        head = cut_end(self._head.decode("utf-8", errors="replace"))
        rest = cut_start(tail[extra:].decode("utf-8", errors="replace"))
        return f"{head}\n… [{dropped:,} bytes of output omitted] …\n{rest}"


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Signal a process group; False when no process is left in it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its uid (setuid program): not ours to signal
        return True
    return True


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, give it KILL_GRACE seconds to exit, then SIGKILL whatever is left."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


async def end_group(pgid: int) -> None:
    """After the command exited: SIGTERM what it left running in its group, SIGKILL it after KILL_GRACE."""
    if not _signal_group(pgid, signal.SIGTERM):
        return
    for _ in range(int(KILL_GRACE / 0.05)):
        await asyncio.sleep(0.05)
        if not _signal_group(pgid, 0):  # type: ignore[arg-type]
            return
    _signal_group(pgid, signal.SIGKILL)


async def _pump(reader: asyncio.StreamReader, capture: OutputCapture, on_output: OnOutput) -> None:
    while chunk := await reader.read(_CHUNK):
        capture.feed(chunk)
        on_output(chunk)


async def _wait(proc: asyncio.subprocess.Process, pump: asyncio.Task[None], seconds: float) -> tuple[bool, bool]:
    """Wait for the command, end its group, read the rest; returns (timed out, output still held open)."""
    timed_out = False
    try:
        async with asyncio.timeout(seconds):
            await proc.wait()
    except TimeoutError:
        timed_out = True
        await kill_group(proc)
    await end_group(proc.pid)
    done, _ = await asyncio.wait({pump}, timeout=DRAIN_SECONDS)
    if done:
        pump.result()
    return timed_out, not done


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    seconds: float,
    on_output: OnOutput,
) -> CommandResult:
    """Run argv in a new session with stdin closed, stdout and stderr on one pipe of our own (so that exiting
    and closing the output are separate events); cancelling kills the process group."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    reader = asyncio.StreamReader(limit=_CHUNK)
    capture = OutputCapture()
    transport: asyncio.ReadTransport | None = None
    pump: asyncio.Task[None] | None = None
    try:
        try:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        pump = asyncio.create_task(_pump(reader, capture, on_output))
        try:
            timed_out, held = await _wait(proc, pump, seconds)
        except asyncio.CancelledError:
            await kill_group(proc)
            raise
    finally:
        if pump is not None:
            pump.cancel()
        if transport is not None:
            transport.close()
        else:
            pipe.close()
    assert proc.returncode is not None
    return CommandResult(capture.text(), proc.returncode, timed_out, held)


class LocalSandbox:
    """Runs commands as the agent's own user, in the workspace: no isolation beyond a scrubbed environment.

    Processes a command leaves in its process group are ended with the call; one that leaves the group
    (`setsid`, a daemon) escapes it. A command can read whatever your user can, including credential files.
    """

    name = "local"
    isolated = False

    def describe(self) -> str:
        return "local (no sandbox: commands run as you)"

    async def run(
        self, command: str, *, cwd: Path, env: Mapping[str, str], seconds: float, on_output: OnOutput
    ) -> CommandResult:
        return await run_process(["bash", "-c", command], cwd=cwd, env=env, seconds=seconds, on_output=on_output)


__all__ = ["HEAD_BYTES", "TAIL_BYTES", "LocalSandbox", "OutputCapture", "kill_group", "run_process"]
