"""Text from the model, tools, traces or configs made safe to show on a terminal: nothing in it acts on it."""

from __future__ import annotations

import logging
import re

_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
"""What a terminal would act on instead of showing: C0 and C1 controls (ESC starts every escape sequence), DEL,
bidi overrides and marks (which reorder what is shown), and lone surrogates (which cannot be written)."""
SURROGATE = re.compile(r"[\ud800-\udfff]")
"""A lone surrogate (malformed model output such as `\\udcff`): UTF-8 cannot encode it."""


def printable(text: str) -> str:
    """`text` safe to show on a terminal: what it would act on becomes a visible mark (␛[8m, ␍, <U+202E>)."""
    return _UNSAFE.sub(_mark, text.replace("\r\n", "\n")) if text else text


def _mark(m: re.Match[str]) -> str:
    code = ord(m.group())
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: ␀ … ␟
    if code == 0x7F:
        return "␡"
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else f"<U+{code:04X}>"


class PrintableFilter(logging.Filter):
    """A logging filter (for terminal handlers, after redaction) that makes messages and tracebacks `printable`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text, record.exc_info = printable(record.exc_text), None
        return True


__all__ = ["SURROGATE", "PrintableFilter", "printable"]
