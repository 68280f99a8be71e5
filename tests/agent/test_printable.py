"""Text made safe for a terminal, and the logging filter that applies it."""

from __future__ import annotations

import logging
import sys

from agent.printable import PrintableFilter, printable


def test_printable_marks_what_a_terminal_would_act_on_and_keeps_the_rest() -> None:
    assert printable("a\x1b[8mb\rc\x08d\u202ee\x9bf\udcffg") == "a␛[8mb␍c␈d<U+202E>e<U+009B>f\ufffdg"
    ordinary = "tab\there\nnewline, ümlaut, 日本語, emoji 👩‍👩‍👧, zero‑width joiner kept"
    assert printable(ordinary) == ordinary
    assert printable("windows\r\nline") == "windows\nline"


def test_the_log_filter_makes_messages_and_tracebacks_printable() -> None:
    try:
        raise ValueError("\x1b]0;pwned\x07")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "model said %s", ("\x1b[2J",), exc_info)
    assert PrintableFilter().filter(record)
    assert record.getMessage() == "model said ␛[2J"
    assert record.exc_text is not None and "ValueError: ␛]0;pwned␇" in record.exc_text
    assert "\x1b" not in record.exc_text
