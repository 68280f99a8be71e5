"""The `bash` tool: one command in the workspace, bounded in time and memory, killed as a process group."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import time
from collections import deque
from typing import Any

from agent.errors import ToolError
from agent.events import ToolLog
from agent.tools.base import Effect, Emit, ToolContext, ToolResult, tool
from agent.tools.files import cut_end, cut_start, display_path, resolve_path

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 3600
HEAD_BYTES = 1_000_000
TAIL_BYTES = 1_000_000
"""At most HEAD_BYTES + TAIL_BYTES of output are kept; the middle of a longer output is dropped."""
KILL_GRACE = 2.0
"""Seconds between SIGTERM and SIGKILL."""
DRAIN_SECONDS = 2.0
"""After bash exits, how long its background children may keep the output pipe open before we stop reading."""
_CHUNK = 65536
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_LINE_END = re.compile(rb"\r\n?|\n")


def clean(text: str) -> str:
    """Strip ANSI escapes and keep only the last state of lines redrawn with `\\r` (progress bars)."""
    text = _ANSI.sub("", text)
    if "\r" not in text:
        return text
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


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


class LogStream:
    """Sends the latest output lines as `tool_log` events, batched, at a rate that slows as a call runs long."""

    MAX_EVENTS = 300
    KEEP_BYTES = 4096
    MAX_LINES = 20
    LINE_CHARS = 500

    def __init__(self, emit: Emit, call_id: str) -> None:
        self._emit, self._call_id = emit, call_id
        self._pending = b""
        self._cut = False
        self._events = 0
        self._last = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def _interval(self) -> float:
        return min(0.1 * 2.0 ** (self._events // 50), 30.0)

    def feed(self, chunk: bytes) -> None:
        if self._events >= self.MAX_EVENTS:
            return
        data = self._pending + chunk
        if len(data) > self.KEEP_BYTES:
            data, self._cut = data[-self.KEEP_BYTES :], True
        self._pending = data
        wait = self._last + self._interval() - time.monotonic()
        if wait <= 0:
            self._flush(final=False)
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        parts = _LINE_END.split(self._pending)
        if self._cut and len(parts) > 1:
            parts = parts[1:]  # the first part is the end of a line whose start was dropped
        rest = b"" if final else parts.pop()
        if not parts or self._events >= self.MAX_EVENTS:
            return
        lines = [self._line(p) for p in parts]
        if self._cut and rest == b"" and len(parts) == 1:  # one line, its start dropped
            lines = [cut_start(lines[0])]
        self._pending, self._cut = rest, False
        lines = [line for line in lines if line.strip("…")][-self.MAX_LINES :]
        if lines:
            self._emit(ToolLog(self._call_id, "\n".join(lines)))
            self._events += 1
            self._last = time.monotonic()

    def _line(self, raw: bytes) -> str:
        line = clean(raw.decode("utf-8", errors="replace")).rstrip()
        return cut_end(line[: self.LINE_CHARS]) if len(line) > self.LINE_CHARS else line

    def close(self) -> None:
        """Cancel the pending timer and send what is left."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._flush(final=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, give bash KILL_GRACE seconds to exit, then SIGKILL whatever is left."""
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
    finally:
        _signal_group(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _pump(reader: asyncio.StreamReader, capture: OutputCapture, log: LogStream) -> None:
    while chunk := await reader.read(_CHUNK):
        capture.feed(chunk)
        log.feed(chunk)


async def _wait(
    proc: asyncio.subprocess.Process,
    reader: asyncio.StreamReader,
    capture: OutputCapture,
    log: LogStream,
    seconds: float,
) -> tuple[bool, bool]:
    """Wait for bash and its output; returns (timed out, output pipe still held by background processes)."""
    pump = asyncio.create_task(_pump(reader, capture, log))
    try:
        timed_out = False
        try:
            async with asyncio.timeout(seconds):
                await proc.wait()
        except TimeoutError:
            timed_out = True
            await kill_group(proc)
        done, _ = await asyncio.wait({pump}, timeout=DRAIN_SECONDS)
        if done:
            pump.result()
        return timed_out, not done
    finally:
        pump.cancel()


async def _run(command: str, ctx: ToolContext, cwd: str, seconds: float) -> tuple[OutputCapture, int, bool, bool]:
    """Run bash with its output on our own pipe, so that exiting and closing the output are separate events."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    pipe = os.fdopen(read_fd, "rb", buffering=0)
    reader = asyncio.StreamReader(limit=_CHUNK)
    capture, log = OutputCapture(), LogStream(ctx.emit, ctx.call_id)
    transport: asyncio.ReadTransport | None = None
    try:
        try:
            transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
            proc = await asyncio.create_subprocess_exec(
                "bash",
                "-c",
                command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=write_fd,
                stderr=write_fd,
                cwd=cwd,
                env=ctx.env,
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        try:
            timed_out, held = await _wait(proc, reader, capture, log, seconds)
        except asyncio.CancelledError:
            await kill_group(proc)
            raise
    finally:
        if transport is not None:
            transport.close()
        else:
            pipe.close()
        log.close()
    assert proc.returncode is not None
    return capture, proc.returncode, timed_out, held


def _footer(exit_code: int, timed_out: bool, timeout: float, held: bool) -> list[str]:
    notes = []
    if held:
        notes.append("[background processes kept the output open; stopped reading. Redirect it: `cmd > log 2>&1 &`]")
    if timed_out:
        notes.append(
            f"[timed out after {timeout:g}s; the process group was killed. Raise `timeout`, or run it in "
            "the background with output to a file and check on it]"
        )
    if exit_code < 0:
        notes.append(f"[exit code {exit_code} ({signal.Signals(-exit_code).name})]")
    elif exit_code:
        notes.append(f"[exit code {exit_code}]")
    return notes


def _summarize(args: dict[str, Any]) -> str:
    lines = str(args.get("command", "")).strip().splitlines() or [""]
    more = len(lines) > 1 or len(lines[0]) > 200
    return f"$ {lines[0][:200]}{' …' if more else ''}"


@tool(effects=[Effect.EXECUTE], summarize=_summarize)
async def bash(
    ctx: ToolContext,
    command: str,
    timeout: int | None = None,  # noqa: ASYNC109 - the model-facing name; enforced with asyncio.timeout
    cwd: str | None = None,
) -> ToolResult:
    """Run a bash command in the workspace (no stdin); stdout and stderr come back together.

    Args:
        command: Shell command. Put long jobs in the background with output to a file: `cmd > log 2>&1 &`.
        timeout: Seconds before it is killed (default 120, max 3600).
        cwd: Folder to run in, relative to the workspace.
    """
    seconds = timeout if timeout is not None else ctx.state.get("bash_timeout", DEFAULT_TIMEOUT)
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise ToolError(f"timeout must be between 1 and {MAX_TIMEOUT} seconds")
    folder = resolve_path(ctx, cwd or ".", write=True)
    if not folder.is_dir():
        raise ToolError(f"cwd {display_path(ctx, folder)!r} is not an existing folder")
    capture, exit_code, timed_out, held = await _run(command, ctx, str(folder), seconds)
    text = clean(capture.text()).rstrip()
    notes = _footer(exit_code, timed_out, seconds, held)
    output = "\n".join([text, *notes] if text else notes) or "(no output)"
    return ToolResult(output, is_error=exit_code != 0, data={"exit_code": exit_code, "timed_out": timed_out})


__all__ = ["OutputCapture", "bash", "clean", "kill_group"]
