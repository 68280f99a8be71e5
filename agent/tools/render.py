"""Compact text for the research tools: one-line hits, numbered windows of long texts, notebooks as cells."""

from __future__ import annotations

import json
from typing import Any

LINE_CHARS = 500
"""Lines of a file window longer than this are cut."""
BUDGET = 8000
"""Characters a tool shows at most in one call (the core spills anything past its own, larger, cap)."""


def clip(text: object, limit: int) -> str:
    """`text` on one line, at most `limit` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def count(n: object) -> str:
    """12345678 → '12.3M'; non-numbers → '?'."""
    if not isinstance(n, int | float) or isinstance(n, bool):
        return "?"
    for unit, step in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= step:
            return f"{n / step:.1f}{unit}"
    return str(int(n))


def size(n: object) -> str:
    """Bytes, human-readable; '?' when unknown."""
    if not isinstance(n, int | float) or isinstance(n, bool):
        return "?"
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= step:
            return f"{n / step:.1f} {unit}"
    return f"{int(n)} B"


def day(stamp: object) -> str:
    """'2024-09-25T17:00:57.000Z' → '2024-09-25'."""
    return str(stamp)[:10] if stamp else "?"


def window(text: str, offset: int, limit: int, *, name: str, budget: int = BUDGET) -> str:
    """Lines `offset`..`offset+limit-1` of `text` (1-based), numbered, at most `budget` characters, with a footer
    saying how to read on."""
    lines = text.splitlines()
    total = len(lines)
    if total == 0:
        return f"{name} is empty"
    if offset > total:
        raise ValueError(f"offset {offset} is past the end of {name} ({total} lines)")
    width = len(str(min(total, offset + limit - 1)))
    out: list[str] = []
    used = 0
    for n, line in enumerate(lines[offset - 1 : offset - 1 + limit], start=offset):
        row = f"{n:>{width}}  {line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + '…'}"
        if out and used + len(row) > budget:
            break
        out.append(row)
        used += len(row) + 1
    body = "\n".join(out)
    end = offset + len(out) - 1
    more = f"; more with offset={end + 1}" if end < total else ""
    return f"{body}\n[{name}: lines {offset}-{end} of {total}{more}]"


def notebook(raw: str) -> str:
    """A Jupyter notebook as its cells' sources (outputs dropped); the raw text when it is not one."""
    try:
        data: Any = json.loads(raw)
        cells = data["cells"]
    except (ValueError, KeyError, TypeError):
        return raw
    parts = []
    for i, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        parts.append(f"# %% [{cell.get('cell_type', '?')}] cell {i}\n{text.rstrip()}")
    return "\n\n".join(parts)


def is_binary(body: bytes) -> bool:
    return b"\x00" in body[:8192]


__all__ = ["clip", "count", "day", "is_binary", "notebook", "size", "window"]
