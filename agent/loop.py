"""The agent loop: operations in, events out. One turn = model call, tool calls, repeat until an answer."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

from agent.context import close_dangling_tool_calls, compact, should_compact, undo_last_turn
from agent.doom_loop import GUARD_KIND, DoomLoop, detect, since_last_guard
from agent.errors import AgentError, ContextOverflowError, LLMError
from agent.events import Approval, Compact, Event, EventType, Interrupt, Operation, Shutdown, Undo, UserInput
from agent.execute import Executor
from agent.llm.scripted import estimate_tokens
from agent.messages import Message, ModelResponse, ToolCall
from agent.redact import StreamRedactor
from agent.session import Session
from agent.tools.base import Effect, Tool

logger = logging.getLogger(__name__)


class _Stop(Exception):
    """Ends a turn early with a reason the front end can act on."""

    def __init__(self, reason: str, final: str) -> None:
        super().__init__(final)
        self.reason, self.final, self.iterations = reason, final, 0


@dataclass
class _Turn:
    iterations: int = 0
    guard: DoomLoop | None = None


class Agent:
    """Runs one session: `submit()` operations, read `events()`, drive with `run()`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._ops: asyncio.Queue[Operation] = asyncio.Queue()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._backlog: deque[Operation] = deque()
        self._waiting: dict[str, asyncio.Future[Approval]] = {}
        self._known: tuple[int, int] = (0, 0)  # (tokens, message count) reported by the last model call
        self._suspending = False

    def submit(self, op: Operation) -> None:
        self._ops.put_nowait(op)

    async def events(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            yield event
            if event.type is EventType.SHUTDOWN:
                return

    def emit(self, kind: EventType, data: dict[str, Any]) -> Event:
        event = self.session.record(Event(kind, data))
        self._events.put_nowait(event)
        return event

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run(self) -> None:
        """Process operations until Shutdown."""
        s = self.session
        self.emit(
            EventType.READY,
            {
                "session_id": s.id,
                "model": s.model.name,
                "tools": s.toolbox.names(),
                "resumed": s.resumed,
                "workdir": str(s.workdir),
                "mcp_failures": s.mcp_failures,
            },
        )
        self._resume_pending()
        try:
            while not isinstance(op := await self._next_op(), Shutdown):
                self._dispatch(op)
        finally:  # also when run() itself is cancelled: never leave a turn running on its own
            self._suspending = True  # a turn cut by shutdown keeps its pending calls for a resume
            await self._cancel()
        self.emit(EventType.SHUTDOWN, {})

    def _dispatch(self, op: Operation) -> None:
        s = self.session
        if isinstance(op, Interrupt):
            if self._task is not None and self.busy:
                self._task.cancel()
        elif isinstance(op, Approval):
            self._resolve(op)
        elif self.busy:
            self._backlog.append(op)
        elif isinstance(op, UserInput):
            s.add(Message.user(op.text))
            self._start(self._turn(), turn=True)
        elif isinstance(op, Compact):
            self._start(self._compact(force=True), turn=False)
        elif isinstance(op, Undo):
            messages, removed = undo_last_turn(s.messages)
            s.replace_history(messages)
            self._known = (0, 0)
            self.emit(EventType.UNDO_COMPLETE, {"removed": removed})

    async def _next_op(self) -> Operation:
        while True:
            if self._backlog and not self.busy:
                return self._backlog.popleft()
            get = asyncio.ensure_future(self._ops.get())
            waits: set[asyncio.Future[Any]] = {get}
            if self._task is not None and self.busy:
                waits.add(self._task)
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if get in done:
                return get.result()
            get.cancel()

    def _start(self, body: Coroutine[Any, Any, tuple[str, str, int] | None], *, turn: bool) -> None:
        self._task = asyncio.create_task(self._guarded(body, turn))

    async def _cancel(self) -> None:
        if self._task is not None and self.busy:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _guarded(self, body: Coroutine[Any, Any, tuple[str, str, int] | None], turn: bool) -> None:
        """Run a turn (or a compaction) and always end it with one closing event."""
        reason, final, iterations = "done", "", 0
        try:
            outcome = await body
            if outcome:
                reason, final, iterations = outcome
        except asyncio.CancelledError:
            if self._suspending:
                reason, final = "suspended", "Suspended by shutdown; resume the session to continue."
            else:
                self.session.replace_history(close_dangling_tool_calls(self.session.messages))
                self.emit(EventType.INTERRUPTED, {})
                reason, final = "interrupted", "Interrupted."
        except _Stop as stop:
            reason, final, iterations = stop.reason, stop.final, stop.iterations
        except AgentError as e:
            self.emit(EventType.ERROR, _error_data(e))
            reason, final = "error", str(e)
        except Exception as e:
            logger.exception("turn failed")
            self.emit(
                EventType.ERROR,
                {
                    "message": f"internal error: {type(e).__name__}: {e}",
                    "kind": "internal",
                    "hint": "this is a bug in ML Intern; the trace has the details",
                },
            )
            reason, final = "error", str(e)
        if turn:
            self.emit(
                EventType.TURN_COMPLETE,
                {
                    "stop_reason": reason,
                    "final": final,
                    "iterations": iterations,
                    "usage": self.session.usage.to_dict(),
                },
            )

    # ---- a turn -------------------------------------------------------------------------------

    async def _turn(self, pending: list[ToolCall] | None = None) -> tuple[str, str, int]:
        s, t = self.session, _Turn()
        self.emit(EventType.PROCESSING, {})
        try:
            if pending:
                await self._act(pending, t)
            while True:
                self._check_limits(t)
                await self._maybe_compact()
                response = await self._call_model()
                t.iterations += 1
                message = s.add(response.message)
                self.emit(
                    EventType.ASSISTANT_MESSAGE,
                    {"text": message.content, "tool_calls": [c.to_dict() for c in message.tool_calls]},
                )
                if not message.tool_calls:
                    return "done", message.content, t.iterations
                await self._act(message.tool_calls, t)
        except _Stop as stop:
            stop.iterations = t.iterations
            raise

    def _check_limits(self, t: _Turn) -> None:
        s = self.session
        if s.budget.exhausted:
            spent, limit = s.budget.spent, s.budget.limit_usd
            self.emit(EventType.LIMIT_REACHED, {"limit": "budget", "value": limit, "spent": round(spent, 4)})
            raise _Stop(
                "budget", f"Stopped: the budget of ${limit:.2f} is spent (${spent:.2f}). Raise --budget to continue."
            )
        if t.iterations >= s.config.max_iterations:
            n = s.config.max_iterations
            self.emit(EventType.LIMIT_REACHED, {"limit": "max_iterations", "value": n})
            raise _Stop(
                "max_iterations",
                f"Stopped after {n} model calls (max_iterations) before the task was "
                "finished. Send a message to continue, or raise --max-iterations.",
            )

    async def _act(self, calls: list[ToolCall], t: _Turn) -> None:
        s = self.session
        if t.guard is not None and any(t.guard.matches(c) for c in calls):
            s.replace_history(close_dangling_tool_calls(s.messages))
            self.emit(EventType.DOOM_LOOP, {"description": t.guard.description, "stopped": True})
            raise _Stop(
                "doom_loop", f"Stopped: the agent kept repeating itself after a warning ({t.guard.description})."
            )
        await Executor(s, self.emit, self._ask).run(calls)
        found = detect(s.messages, since=since_last_guard(s.messages))
        if found is None:
            return
        if t.guard is not None:
            self.emit(EventType.DOOM_LOOP, {"description": found.description, "stopped": True})
            raise _Stop("doom_loop", f"Stopped: the agent kept repeating itself ({found.description}).")
        t.guard = found
        s.add(Message.user(found.guard_message(), kind=GUARD_KIND))
        self.emit(EventType.DOOM_LOOP, {"description": found.description, "stopped": False})

    async def _call_model(self) -> ModelResponse:
        s, streamed = self.session, False
        specs = s.toolbox.specs()
        clean = StreamRedactor(s.redactor)  # a secret split across chunks is still caught

        async def on_text(delta: str) -> None:
            nonlocal streamed
            streamed = True
            if text := clean.feed(delta):
                self.emit(EventType.ASSISTANT_CHUNK, {"text": text})

        async def on_retry(info: dict[str, Any]) -> None:
            nonlocal streamed
            self.emit(EventType.RETRY, info)
            clean.reset()
            if streamed:
                streamed = False
                self.emit(EventType.ASSISTANT_STREAM_RESET, {})

        for attempt in (1, 2):
            try:
                response = await s.model.complete(
                    s.messages, specs, stream=s.config.stream, on_text=on_text, on_retry=on_retry
                )
                break
            except ContextOverflowError:
                if attempt == 2:
                    raise
                await self._compact(force=True, overflow=True)
        if streamed:
            if text := clean.flush():
                self.emit(EventType.ASSISTANT_CHUNK, {"text": text})
            self.emit(EventType.ASSISTANT_STREAM_END, {})
        s.usage = s.usage + response.usage
        s.budget.model_usd += response.usage.cost_usd
        self._known = (response.usage.prompt_tokens + response.usage.completion_tokens, len(s.messages) + 1)
        self.emit(
            EventType.USAGE,
            {
                "call": response.usage.to_dict(),
                "total": s.usage.to_dict(),
                "context_tokens": response.usage.prompt_tokens,
                "context_window": self._window(),
            },
        )
        return response

    # ---- context ------------------------------------------------------------------------------

    def _context_tokens(self) -> int:
        s = self.session
        tokens, count = self._known
        if tokens and count <= len(s.messages):
            return tokens + estimate_tokens(s.messages[count:])
        # no usage reported yet: estimate rather than load a tokenizer (~1 s and ~20 MiB with litellm)
        return estimate_tokens(s.messages, s.toolbox.specs())

    async def _maybe_compact(self) -> None:
        cfg = self.session.config.context
        if should_compact(self._context_tokens(), self._window(), cfg.compact_at):
            await self._compact(force=False)

    def _window(self) -> int:
        return self.session.config.context.context_window or self.session.model.context_window

    async def _compact(self, *, force: bool, overflow: bool = False) -> None:
        s, cfg = self.session, self.session.config.context
        target, keep = int(self._window() * cfg.compact_at), cfg.keep_recent_messages
        if overflow:  # the provider counted more than we did: halve what can shrink (not system + tools)
            fixed = s.model.count_tokens(s.messages[:1], s.toolbox.specs())
            target = min(target, fixed + max(self._context_tokens() - fixed, 0) // 2)
            keep = min(keep, 4)
        done = await compact(s.messages, s.model, keep_recent=keep, target_tokens=target, tools=s.toolbox.specs())
        s.replace_history(done.messages)
        s.usage = s.usage + done.usage
        s.budget.model_usd += done.usage.cost_usd
        self._known = (done.after_tokens, len(done.messages))
        self.emit(
            EventType.COMPACTED,
            {
                "before_tokens": done.before_tokens,
                "after_tokens": done.after_tokens,
                "removed": done.removed,
                "forced": force,
            },
        )

    # ---- approvals ----------------------------------------------------------------------------

    async def _ask(
        self,
        call: ToolCall,
        tool: Tool,
        args: dict[str, Any],
        reason: str,
        cost: float | None,
        effects: frozenset[Effect],
    ) -> Approval:
        future: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()
        self._waiting[call.id] = future
        self.emit(
            EventType.APPROVAL_REQUIRED,
            {
                "call_id": call.id,
                "name": tool.name,
                "summary": tool.describe_call(args),
                "reason": reason,
                "effects": sorted(str(e) for e in effects),
                "arguments": args,
                "cost_usd": cost,
            },
        )
        try:
            return await future
        finally:
            self._waiting.pop(call.id, None)

    def _resolve(self, op: Approval) -> None:
        future = self._waiting.get(op.call_id)
        if future is None or future.done():
            waiting = ", ".join(self._waiting) or "none"
            self.emit(
                EventType.ERROR,
                {
                    "message": f"no call {op.call_id!r} is waiting for approval (waiting: {waiting})",
                    "kind": "bad_request",
                    "hint": "",
                },
            )
            return
        future.set_result(op)

    def _resume_pending(self) -> None:
        """A restarted session continues the turn that was waiting for approvals or cut by a crash."""
        s = self.session
        calls, s.unanswered_calls = s.unanswered_calls, []
        if not calls:
            return
        waiting = {str(a.get("call_id")) for a in s.pending_approvals}
        rerun = [c for c in calls if c.id in waiting]
        for c in calls:
            if c.id not in waiting:
                s.add(Message.tool(c, "Tool was not executed (the session restarted while it ran).", error=True))
        if rerun:
            self._start(self._turn(pending=rerun), turn=True)


def _error_data(e: AgentError) -> dict[str, Any]:
    if isinstance(e, LLMError):
        return {"message": str(e.args[0]) if e.args else str(e), "kind": e.kind, "hint": e.hint}
    return {"message": str(e), "kind": type(e).__name__, "hint": ""}
