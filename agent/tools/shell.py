"""The `bash` tool: one command in the workspace, run by the session's sandbox, with live log lines."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from typing import Any

from agent.cuts import cut_end, cut_start
from agent.errors import ToolError
from agent.events import ToolLog
from agent.tools.base import Effect, Emit, ToolContext, ToolResult, tool
from agent.tools.paths import display_path, resolve_path

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 3600
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_LINE_END = re.compile(rb"\r\n?|\n")


def clean(text: str) -> str:
    """Strip ANSI escapes and keep only the last state of lines redrawn with `\\r` (progress bars)."""
    text = _ANSI.sub("", text)
    if "\r" not in text:
        return text
    return "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n"))


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


def _footer(exit_code: int, timed_out: bool, timeout: float, held: bool) -> list[str]:
    notes = []
    if held:
        notes.append("[a process that left the call's process group (setsid) kept the output open; stopped reading]")
    if timed_out:
        notes.append(
            f"[timed out after {timeout:g}s; its processes were killed. Raise `timeout` (at most {MAX_TIMEOUT}) "
            "for long jobs]"
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

    Background processes end with the call.

    Args:
        command: Shell command.
        timeout: Seconds before it is killed (default 120, max 3600).
        cwd: Folder to run in, relative to the workspace.
    """
    seconds = timeout if timeout is not None else ctx.state.get("bash_timeout", DEFAULT_TIMEOUT)
    if not 1 <= seconds <= MAX_TIMEOUT:
        raise ToolError(f"timeout must be between 1 and {MAX_TIMEOUT} seconds")
    folder = resolve_path(ctx, cwd or ".", write=True)
    if not folder.is_dir():
        raise ToolError(f"cwd {display_path(ctx, folder)!r} is not an existing folder")
    log = LogStream(ctx.emit, ctx.call_id)
    try:
        done = await ctx.sandbox.run(command, cwd=folder, env=ctx.env, seconds=seconds, on_output=log.feed)
    finally:
        log.close()
    exit_code, timed_out = done.exit_code, done.timed_out
    text = clean(done.output).rstrip()
    notes = _footer(exit_code, timed_out, seconds, done.held)
    output = "\n".join([text, *notes] if text else notes) or "(no output)"
    return ToolResult(output, is_error=exit_code != 0, data={"exit_code": exit_code, "timed_out": timed_out})


__all__ = ["LogStream", "bash", "clean"]
