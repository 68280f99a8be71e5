"""Streamed replies: server-sent events split from bytes, and chat chunks assembled into one reply.

Both work in time linear in what streams: a 1 MB tool argument sent as 170,000 six-character deltas costs
170,000 small appends and one join, never a copy of what has arrived so far.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def field_of(obj: Any, name: str) -> Any:
    """`obj[name]` for a dict (the direct client's JSON), `obj.name` for an object (litellm's chunks)."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _attribute(obj: Any, name: str) -> Any:
    return getattr(obj, name, None)


class SSEDecoder:
    """Splits a `text/event-stream` body into the `data` of each event (lines end in LF or CRLF)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0
        """Bytes of `_buf` already searched for a newline."""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[str]:
        """Take the next bytes; returns the data of every event they complete."""
        buf = self._buf
        buf += chunk
        events: list[str] = []
        start = 0
        while (end := buf.find(b"\n", max(start, self._scanned))) >= 0:
            line = bytes(buf[start:end]).removesuffix(b"\r")
            start = end + 1
            self._line(line, events)
        if start:
            del buf[:start]
        self._scanned = len(buf)
        return events

    def close(self) -> list[str]:
        """The event left open when the body ended without a blank line."""
        events: list[str] = []
        if self._buf:
            self._line(bytes(self._buf).removesuffix(b"\r"), events)
            self._buf.clear()
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[str]) -> None:
        if not line:
            if self._data:
                events.append(b"\n".join(self._data).decode("utf-8", errors="replace"))
                self._data = []
            return
        name, _, value = line.partition(b":")
        if name == b"data":
            self._data.append(value.removeprefix(b" "))
        # comments (": keep-alive"), `event:`, `id:` and `retry:` lines carry nothing we use


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class Assembly:
    """Collects one streamed reply: text, reasoning, tool calls by index, finish reason, usage."""

    def __init__(self) -> None:
        self.started = False
        """A chunk arrived (a failure from here on is a broken stream)."""
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self._calls: list[_Call] = []
        self._slots: dict[int, int] = {}
        self.finish: str | None = None
        self.usage: Any = None
        self.shown = False
        """Text was already passed to on_text."""

    def add(self, chunk: Any) -> str:
        """Take one `chat.completion.chunk` (dict or object); returns its text delta."""
        self.started = True
        get = dict.get if isinstance(chunk, dict) else _attribute  # chosen once: this runs for every chunk
        if error := get(chunk, "error"):
            raise stream_error(error)
        self.usage = get(chunk, "usage") or self.usage
        text = ""
        for choice in get(chunk, "choices") or ():
            delta = get(choice, "delta") or {}
            text += get(delta, "content") or ""
            if reasoning := get(delta, "reasoning_content") or get(delta, "reasoning"):
                self.reasoning.append(reasoning)
            for fragment in get(delta, "tool_calls") or ():
                self._tool_fragment(get, fragment)
            self.finish = get(choice, "finish_reason") or self.finish
        if text:
            self.text.append(text)
        return text

    @property
    def empty(self) -> bool:
        """Nothing usable arrived: no finish reason, no text, no call."""
        return self.finish is None and not self.text and not self._calls

    def calls(self) -> list[tuple[str, str, str]]:
        """(id, name, arguments) of each call, in order."""
        return [(c.id, c.name, "".join(c.arguments)) for c in self._calls]

    def _tool_fragment(self, get: Callable[[Any, str], Any], fragment: Any) -> None:
        index, call_id = get(fragment, "index"), get(fragment, "id")
        index = index if isinstance(index, int) else None
        slot = self._slots.get(index) if index is not None else (len(self._calls) - 1 if not call_id else None)
        if slot is not None and slot >= 0 and call_id and self._calls[slot].id not in ("", call_id):
            slot = None  # a provider that reuses index 0 for every call
        if slot is None or slot < 0:
            self._calls.append(_Call())
            slot = len(self._calls) - 1
            if index is not None:
                self._slots[index] = slot
        call, fn = self._calls[slot], get(fragment, "function")
        call.id = call.id or (call_id or "")
        if fn is not None:
            call.name = call.name or (get(fn, "name") or "")
            if arguments := get(fn, "arguments"):
                call.arguments.append(arguments)


class StreamError(Exception):
    """An error object the server sent inside a stream that had started."""

    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status_code = status


def stream_error(error: Any) -> Exception:
    """The exception for an `{"error": {...}}` chunk, for `classify` to sort (context overflow, rate limit...)."""
    if not isinstance(error, dict):
        return StreamError(str(error)[:600], None)
    code = error.get("code")
    status = code if isinstance(code, int) else None
    return StreamError(str(error.get("message") or error)[:600], status)


__all__ = ["Assembly", "SSEDecoder", "StreamError", "field_of", "stream_error"]
