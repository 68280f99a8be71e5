"""Reading the user's lines without blocking the event loop (readline editing and history on a terminal)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sys
import threading

logger = logging.getLogger(__name__)


class LineReader:
    """Reads stdin lines in a daemon thread so events keep flowing; an abandoned read is reused by the next one.

    On a terminal, lines are read with readline: arrow keys edit the line and recall earlier messages.
    """

    def __init__(self) -> None:
        self._pending: concurrent.futures.Future[str | None] | None = None
        self._remember = True
        self._editing: bool | None = None

    async def read(self, prompt: str, *, remember: bool = True) -> str | None:
        """The next line without its newline, or None at end of input; `remember=False` keeps it out of the
        history (answers to approval questions)."""
        self._remember = remember
        if self._pending is None:
            self._line_editing()
            self._pending = concurrent.futures.Future()
            threading.Thread(target=self._work, args=(prompt, self._pending), daemon=True).start()
        elif prompt:  # still waiting on an abandoned read: show the new prompt ourselves
            sys.stdout.write(prompt)
            sys.stdout.flush()
        pending = self._pending
        try:
            return await asyncio.shield(asyncio.wrap_future(pending))
        finally:
            if pending.done():
                self._pending = None

    def _line_editing(self) -> bool:
        """Load readline once, when both ends are a terminal (`input()` uses it once it is imported)."""
        if self._editing is None:
            self._editing = False
            if sys.stdin.isatty() and sys.stdout.isatty():
                try:
                    import readline  # noqa: F401
                except ImportError:  # pragma: no cover - Windows
                    pass
                else:
                    self._editing = True
        return self._editing

    def _work(self, prompt: str, future: concurrent.futures.Future[str | None]) -> None:
        before = self._history_length()
        try:
            line = input(prompt)
        except EOFError:
            future.set_result(None)
            return
        except BaseException as e:  # pragma: no cover - stdin closed under us
            logger.debug("reading stdin failed: %r", e)
            future.set_result(None)
            return
        if not self._remember and self._history_length() > before:
            import readline

            readline.remove_history_item(before)
        future.set_result(line)

    def _history_length(self) -> int:
        if not self._editing:
            return 0
        import readline

        return readline.get_current_history_length()


__all__ = ["LineReader"]
