"""The line reader: stdin lines without blocking the event loop."""

from __future__ import annotations

import asyncio
import io
import sys

import pytest

from agent.reader import LineReader


async def test_line_reader_reads_lines_then_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("first\nsecond\n"))
    reader = LineReader()
    assert await reader.read("") == "first"
    assert await reader.read("") == "second"
    assert await reader.read("") is None


async def test_an_abandoned_read_is_picked_up_by_the_next(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    r, w = os.pipe()
    with os.fdopen(r) as stdin_r, os.fdopen(w, "w") as stdin_w:
        monkeypatch.setattr(sys, "stdin", stdin_r)
        reader = LineReader()
        first = asyncio.ensure_future(reader.read(""))
        await asyncio.sleep(0)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        stdin_w.write("typed once\n")
        stdin_w.flush()
        assert await reader.read("again › ") == "typed once"
    assert capsys.readouterr().out.endswith("again › ")
