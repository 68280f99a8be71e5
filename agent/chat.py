"""The interactive chat: read a line, run the turn while rendering its events, answer approvals, slash commands."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.run import FAILED, OK, TERMINATED, drain, on_signal, stop

if TYPE_CHECKING:
    from agent.events import Event
    from agent.loop import Agent
    from agent.reader import LineReader
    from agent.ui import ConsoleRenderer

logger = logging.getLogger(__name__)


COMMANDS = {
    "/help": "this list",
    "/model [id]": "show the model, or switch to another litellm model id",
    "/plan": "show the plan",
    "/compact": "summarise the history now to free context",
    "/undo": "drop the last turn from the history (files stay as they are)",
    "/cost": "tokens and cost of this run",
    "/sessions": "list saved sessions",
    "/quit": "leave (also /exit or Ctrl+D)",
}
APPROVE_PROMPT = "approve? [y]es / [n]o / [a]lways for this tool › "
WHY_PROMPT = "why not? (optional, the model reads it) › "


class _Cancelled(Exception):
    """Ctrl+C while waiting for a line."""


class Chat:
    """The interactive loop: read a line, run the turn while rendering its events, answer approvals."""

    def __init__(self, agent: Agent, ui: ConsoleRenderer, reader: LineReader) -> None:
        self.agent, self.ui, self.reader = agent, ui, reader
        self._waiters: list[tuple[frozenset[str], asyncio.Future[Event]]] = []
        self._quit = asyncio.Event()
        self._wake = asyncio.Event()
        self._busy = False
        self._prompt_open = False
        """A prompt is on screen and the cursor is after it."""
        self._interrupting = False
        self._terminated = False
        """SIGTERM arrived: the chat ends with exit code 143."""
        self._last_sigint = float("-inf")
        self._runner: asyncio.Task[None] | None = None

    async def run(self) -> int:
        """Chat until /quit, Ctrl+D or Ctrl+C at the prompt; 1 if the agent loop died."""
        from agent.events import Shutdown

        self._runner = asyncio.create_task(self.agent.run())
        consumer = asyncio.create_task(self._consume(self._runner))
        try:
            with on_signal(self._on_sigint), on_signal(self._on_sigterm, signal.SIGTERM):
                with contextlib.suppress(_Cancelled):
                    await self._converse()
                self.agent.submit(Shutdown())
                try:
                    await consumer
                except Exception as e:
                    logger.debug("agent loop failed", exc_info=True)
                    self.ui.error(
                        f"the agent loop stopped: {type(e).__name__}: {e}", "this is a bug; the trace has details"
                    )
                    return FAILED
        finally:  # whatever happened, nothing may write to the session once the caller closes it
            await stop(consumer)
            await stop(self._runner)
        self.ui.info(f"session saved · continue with: ml-intern --resume {self.agent.session_id}")
        return TERMINATED if self._terminated else OK

    async def _converse(self) -> None:
        await self._until("ready", busy=False)
        if self.agent.busy:  # a resumed session first finishes the turn it was in
            await self._until("turn_complete")
        if self._quit.is_set():
            return
        self.ui.info("type a task · /help for commands · Ctrl+C interrupts · Ctrl+D quits")
        while not self._quit.is_set() and await self._handle(await self._read("› ")):
            pass

    async def _consume(self, runner: asyncio.Task[None]) -> None:
        try:
            async for event in drain(self.agent, runner):
                if event.type == "approval_required":
                    if not self._interrupting:  # approvals queued before an interrupt are moot
                        self.ui.render(event)
                        await self._approve(event.data)
                    continue
                self.ui.render(event)
                if event.type == "turn_complete":
                    self._interrupting = False
                for waiter in [w for w in self._waiters if event.type in w[0]]:
                    self._waiters.remove(waiter)
                    if not waiter[1].done():
                        waiter[1].set_result(event)
        finally:  # the loop is gone: stop waiting for turns and for input
            self._quit.set()
            self._wake.set()

    async def _until(self, *types: str, busy: bool = True) -> Event | None:
        """Wait for one of these events (None when quitting); Ctrl+C meanwhile interrupts the turn if `busy`."""
        future: asyncio.Future[Event] = asyncio.get_running_loop().create_future()
        self._waiters.append((frozenset(types), future))
        quitting: asyncio.Future[Any] = asyncio.ensure_future(self._quit.wait())
        self._busy = busy
        try:
            await asyncio.wait({future, quitting}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._busy = False
            quitting.cancel()
        return future.result() if future.done() else None

    async def _read(self, prompt: str, *, remember: bool = True) -> str | None:
        """A line from the user, None at end of input; raises _Cancelled on Ctrl+C."""
        self._wake.clear()
        line = asyncio.ensure_future(self.reader.read(prompt, remember=remember))
        woken = asyncio.ensure_future(self._wake.wait())
        self._prompt_open = True
        try:
            await asyncio.wait({line, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
        if not line.done():
            line.cancel()
            self._end_prompt_line()
            raise _Cancelled
        if line.result() is None:  # Ctrl+D
            self._end_prompt_line()
        self._prompt_open = False
        return line.result()

    def _end_prompt_line(self) -> None:
        """Move below a prompt the user did not answer with Enter (Ctrl+C, Ctrl+D)."""
        if self._prompt_open:
            self._prompt_open = False
            self.ui.print()

    def _on_sigint(self) -> None:
        from agent.events import Interrupt

        now = asyncio.get_running_loop().time()
        double, self._last_sigint = now - self._last_sigint < 1.0, now
        if self._quit.is_set() and self._runner is not None:  # already leaving, and stuck: stop hard
            self._runner.cancel()
        elif self._busy and not double:
            self._interrupting = True
            self.agent.submit(Interrupt())
            if self._prompt_open:  # at an approval question: keep it, and the ^C after it, on screen
                self._end_prompt_line()
                self.ui.warn("interrupting… (Ctrl+C again to quit)")
            else:
                self.ui.warn_over_ctrl_c("interrupting… (Ctrl+C again to quit)")
        else:
            self._quit.set()
        self._wake.set()

    def _on_sigterm(self) -> None:
        """Asked to stop (a service manager, CI, `kill`): interrupt the turn (its tools die with it) and quit;
        the session stays resumable."""
        from agent.events import Interrupt

        self._interrupting = self._terminated = True
        self.agent.submit(Interrupt())
        self._quit.set()
        self._wake.set()

    async def _approve(self, data: dict[str, Any]) -> None:
        from agent.events import Approval

        call_id = str(data.get("call_id", ""))
        while True:
            try:
                line = await self._read(APPROVE_PROMPT, remember=False)
            except _Cancelled:
                return  # the turn is being interrupted
            if line is None:  # input closed: leave, the call stays pending for `--resume`
                self._quit.set()
                return
            word, _, rest = line.strip().partition(" ")
            if word.lower() in ("y", "yes", "a", "always"):
                self.agent.submit(Approval(call_id, True, always=word.lower().startswith("a")))
                return
            if word.lower() in ("n", "no"):
                try:
                    why = rest.strip() or (await self._read(WHY_PROMPT, remember=False) or "")
                except _Cancelled:
                    return
                self.agent.submit(Approval(call_id, False, why.strip()))
                return
            self.ui.info("answer y (yes), n (no, then optionally why) or a (always allow this tool)")

    async def _handle(self, line: str | None) -> bool:
        """Act on one line; False to quit."""
        from agent.events import UserInput

        if line is None:
            return False
        line = line.strip()
        word, _, rest = line.partition(" ")
        if word.startswith("/") and not Path(word).exists():  # "/data/x.csv has NaNs" is a message
            return await self._command(word.lower(), rest.strip())
        if line:
            self.agent.submit(UserInput(line))
            await self._until("turn_complete")
        return True

    async def _command(self, name: str, arg: str) -> bool:
        from agent.events import Compact, Undo

        if name in ("/quit", "/exit"):
            return False
        if name == "/compact":
            self.agent.submit(Compact())
            await self._until("compacted", "error", "interrupted")
        elif name == "/undo":
            self.agent.submit(Undo())
            await self._until("undo_complete", "error")
        elif name in ("/help", "/model", "/plan", "/cost", "/sessions"):
            getattr(self, f"_cmd_{name[1:]}")(arg)
        else:
            import difflib

            close = difflib.get_close_matches(name, [c.split()[0] for c in COMMANDS] + ["/exit"], n=1)
            self.ui.warn(
                f"unknown command {name}"
                + (f"; did you mean {close[0]}?" if close else "")
                + " (/help lists the commands)"
            )
        return True

    def _cmd_help(self, _: str) -> None:
        self.ui.table("commands", COMMANDS.items())
        self.ui.info("Ctrl+C interrupts a running turn; at the prompt it quits. Anything else is a message.")

    def _cmd_model(self, model_id: str) -> None:
        from agent.errors import AgentError

        if model_id:
            try:
                self.agent.set_model(model_id)
            except AgentError as e:
                message = str(e.args[0]) if e.args else str(e)
                self.ui.error(message, str(getattr(e, "hint", "") or ""), title="cannot switch model")
                return
        self.ui.info(f"model: {self.agent.model_name}")

    def _cmd_plan(self, _: str) -> None:
        self.ui.plan(self.agent.plan)

    def _cmd_cost(self, _: str) -> None:
        self.ui.cost(self.agent.usage.to_dict())
        budget = self.agent.budget
        if budget.limit_usd is not None:
            self.ui.info(f"budget: ${budget.spent:.4f} of ${budget.limit_usd:.2f} spent")

    def _cmd_sessions(self, _: str) -> None:
        show_sessions(self.ui, self.agent.session_id, self.agent.session.dir.parent.parent)


def show_sessions(ui: ConsoleRenderer, current: str = "", home: Path | None = None) -> None:
    from agent.trace import list_sessions

    sessions = list_sessions(home)
    if not sessions:
        ui.info("no saved sessions yet")
        return
    rows = [
        (("* " if s.id == current else "  ") + s.id, s.created[:16].replace("T", " "), str(s.messages), s.preview)
        for s in sessions
    ]
    ui.table("sessions (resume with ml-intern --resume ID)", rows, ["id", "created", "msgs", "first message"])
