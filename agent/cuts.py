"""Cutting text short without showing part of a token: redaction needs the whole token to recognise it."""

from __future__ import annotations

import re

_LAST_WORD = re.compile(r"[\w+/=.~-]{1,256}$")
_FIRST_WORD = re.compile(r"^[\w+/=.~-]{1,256}")


def cut_end(text: str) -> str:
    """`text` cut short: drop the token-like characters at its end, so no piece of a token is shown (redaction
    needs the whole token to recognise it)."""
    return _LAST_WORD.sub("", text, count=1) + "…"


def cut_start(text: str) -> str:
    """`text` whose start was dropped: drop the token-like characters at its start (see `cut_end`)."""
    return "…" + _FIRST_WORD.sub("", text, count=1)


__all__ = ["cut_end", "cut_start"]
