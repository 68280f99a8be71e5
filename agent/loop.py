"""The agent loop: operations in, events out. One turn = model call, tool calls, repeat until an answer."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, replace
from typing import Any

from agent.approvals import Budget
from agent.calls import Approvals, cut_call_note, unique_call_ids
from agent.context import close_dangling_tool_calls, compact, should_compact, undo_last_turn
from agent.doom_loop import GUARD_KIND, DoomLoop, detect, since_last_guard
from agent.errors import AgentError, ContextOverflowError, LLMError
from agent.events import (
    Approval,
    Compact,
    Event,
    EventType,
    Interrupt,
    Operation,
    Shutdown,
    StopReason,
    Undo,
    UserInput,
)
from agent.execute import Executor
from agent.llm.tokens import estimate_tokens
from agent.messages import Message, MessageKind, ModelResponse, ToolCall, Usage
from agent.payloads import (
    AssistantMessage,
    Compacted,
    DoomLoopData,
    Error,
    LimitReached,
    Ready,
    Text,
    TurnComplete,
    UndoComplete,
    UsageData,
)
from agent.redact import StreamRedactor
from agent.session import Session

logger = logging.getLogger(__name__)


class _Stop(Exception):
    """Ends a turn early with a reason the front end can act on."""

    def __init__(self, reason: StopReason, final: str) -> None:
        super().__init__(final)
        self.reason, self.final, self.iterations = reason, final, 0


@dataclass
class _Turn:
    iterations: int = 0
    guard: DoomLoop | None = None
    nudged: bool = False
    """The model was already asked once for an answer after an empty one."""


EMPTY_NUDGE = "Your last answer was empty. Continue the task, or give your final answer."


class Agent:
    """Runs one session: `submit()` operations, read `events()`, drive with `run()`."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._ops: asyncio.Queue[Operation] = asyncio.Queue()
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._backlog: deque[Operation] = deque()
        self._approvals = Approvals(self.emit, headless=session.headless)
        self._seen_ids: set[str] | None = None
        """Every tool-call id of the session so far (built from the history once, then kept up to date)."""
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

    def emit(self, kind: EventType, data: Mapping[str, Any]) -> Event:
        """Record an event (numbered, redacted, traced) and hand it to the front end; `data` is its payload
        (`agent.payloads`)."""
        event = self.session.record(Event(kind, dict(data)))
        self._events.put_nowait(event)
        return event

    @property
    def busy(self) -> bool:
        """A turn (or a compaction) is running."""
        return self._task is not None and not self._task.done()

    # ---- what front ends read and change, without reaching into the session ----

    @property
    def session_id(self) -> str:
        return self.session.id

    @property
    def model_name(self) -> str:
        return self.session.model.name

    def set_model(self, model_id: str) -> None:
        """Use another model from the next call on (raises ConfigError/AuthError for a bad id or missing key)."""
        self.session.set_model(model_id)

    @property
    def plan(self) -> list[dict[str, Any]]:
        """The plan's items (`content`, `status`), as the `plan` tool last set them."""
        return self.session.plan

    @property
    def usage(self) -> Usage:
        """Tokens and cost of the session so far (model calls, including compaction)."""
        return self.session.usage

    @property
    def budget(self) -> Budget:
        """The session's budget: its limit, and what model calls and tool estimates spent."""
        return self.session.budget

    async def run(self) -> None:
        """Process operations until Shutdown."""
        s = self.session
        self.emit(
            EventType.READY,
            Ready(
                session_id=s.id,
                model=s.model.name,
                tools=s.toolbox.names(),
                resumed=s.resumed,
                workdir=str(s.workdir),
                mcp_failures=s.mcp_failures,
            ),
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
            self._approvals.resolve(op)
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
            self.emit(EventType.UNDO_COMPLETE, UndoComplete(removed=removed))

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

    def _start(self, body: Coroutine[Any, Any, tuple[StopReason, str, int] | None], *, turn: bool) -> None:
        self._task = asyncio.create_task(self._guarded(body, turn))

    async def _cancel(self) -> None:
        if self._task is not None and self.busy:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _guarded(self, body: Coroutine[Any, Any, tuple[StopReason, str, int] | None], turn: bool) -> None:
        """Run a turn (or a compaction) and always end it with one closing event."""
        reason, final, iterations = StopReason.DONE, "", 0
        try:
            outcome = await body
            if outcome:
                reason, final, iterations = outcome
        except asyncio.CancelledError:
            if self._suspending:
                reason, final = StopReason.SUSPENDED, "Suspended by shutdown; resume the session to continue."
            else:
                self.session.replace_history(close_dangling_tool_calls(self.session.messages))
                self.emit(EventType.INTERRUPTED, {})
                reason, final = StopReason.INTERRUPTED, "Interrupted."
        except _Stop as stop:
            reason, final, iterations = stop.reason, stop.final, stop.iterations
        except AgentError as e:
            self.emit(EventType.ERROR, _error_data(e))
            reason, final = StopReason.ERROR, str(e)
        except Exception as e:
            logger.exception("turn failed")
            self.emit(
                EventType.ERROR,
                Error(
                    message=f"internal error: {type(e).__name__}: {e}",
                    kind="internal",
                    hint="this is a bug in ML Intern; the trace has the details",
                ),
            )
            reason, final = StopReason.ERROR, str(e)
        if turn:
            self.emit(
                EventType.TURN_COMPLETE,
                TurnComplete(
                    stop_reason=reason, final=final, iterations=iterations, usage=self.session.usage.to_dict()
                ),
            )

    # ---- a turn -------------------------------------------------------------------------------

    async def _turn(self, pending: list[ToolCall] | None = None) -> tuple[StopReason, str, int]:
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
                calls = unique_call_ids(response.message.tool_calls, self._call_ids())
                message = s.add(replace(response.message, tool_calls=calls))
                self.emit(
                    EventType.ASSISTANT_MESSAGE,
                    AssistantMessage(text=message.content, tool_calls=[c.to_dict() for c in message.tool_calls]),
                )
                if not calls and not message.content.strip():
                    self._empty_answer(t)
                    continue
                if not calls:
                    return StopReason.DONE, message.content, t.iterations
                await self._act(calls, t)  # what the model wrote, not the redacted copy kept in the history
        except _Stop as stop:
            stop.iterations = t.iterations
            raise

    def _call_ids(self) -> set[str]:
        if self._seen_ids is None:
            self._seen_ids = {c.id for m in self.session.messages for c in m.tool_calls}
        return self._seen_ids

    def _empty_answer(self, t: _Turn) -> None:
        """An answer with neither text nor calls: ask once for a real one, then stop with an error."""
        if t.nudged:
            self.emit(
                EventType.ERROR,
                Error(
                    message="the model answered with nothing, twice",
                    kind="empty_answer",
                    hint="try again, or another model (--model); the trace has the requests",
                ),
            )
            raise _Stop(StopReason.ERROR, "Stopped: the model answered with nothing, twice.")
        t.nudged = True
        self.session.add(Message.user(EMPTY_NUDGE, kind=MessageKind.NUDGE))

    def _check_limits(self, t: _Turn) -> None:
        s = self.session
        if s.budget.exhausted:
            spent, limit = s.budget.spent, s.budget.limit_usd
            self.emit(EventType.LIMIT_REACHED, LimitReached(limit="budget", value=limit, spent=round(spent, 4)))
            raise _Stop(
                StopReason.BUDGET,
                f"Stopped: the budget of ${limit:.2f} is spent (${spent:.2f}). Raise --budget to continue.",
            )
        if t.iterations >= s.config.max_iterations:
            n = s.config.max_iterations
            self.emit(EventType.LIMIT_REACHED, LimitReached(limit="max_iterations", value=n))
            raise _Stop(
                StopReason.MAX_ITERATIONS,
                f"Stopped after {n} model calls (max_iterations) before the task was "
                "finished. Send a message to continue, or raise --max-iterations.",
            )

    async def _act(self, calls: list[ToolCall], t: _Turn) -> None:
        s = self.session
        if t.guard is not None and any(t.guard.matches(c) for c in calls):
            s.replace_history(close_dangling_tool_calls(s.messages))
            self.emit(EventType.DOOM_LOOP, DoomLoopData(description=t.guard.description, stopped=True))
            raise _Stop(
                StopReason.DOOM_LOOP,
                f"Stopped: the agent kept repeating itself after a warning ({t.guard.description}).",
            )
        await Executor(s, self.emit, self._approvals.ask, self._approvals.expected).run(calls)
        found = detect(s.messages, since=since_last_guard(s.messages))
        if found is None:
            return
        if t.guard is not None:
            self.emit(EventType.DOOM_LOOP, DoomLoopData(description=found.description, stopped=True))
            raise _Stop(StopReason.DOOM_LOOP, f"Stopped: the agent kept repeating itself ({found.description}).")
        t.guard = found
        s.add(Message.user(found.guard_message(), kind=GUARD_KIND))
        self.emit(EventType.DOOM_LOOP, DoomLoopData(description=found.description, stopped=False))

    async def _call_model(self) -> ModelResponse:
        s, streamed = self.session, False
        specs = s.toolbox.specs()
        clean = StreamRedactor(s.redactor)  # a secret split across chunks is still caught

        async def on_text(delta: str) -> None:
            nonlocal streamed
            streamed = True
            if text := clean.feed(delta):
                self.emit(EventType.ASSISTANT_CHUNK, Text(text=text))

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
                self.emit(EventType.ASSISTANT_CHUNK, Text(text=text))
            self.emit(EventType.ASSISTANT_STREAM_END, {})
        s.usage = s.usage + response.usage
        s.budget.model_usd += response.usage.cost_usd
        self._known = (response.usage.prompt_tokens + response.usage.completion_tokens, len(s.messages) + 1)
        self.emit(
            EventType.USAGE,
            UsageData(
                call=response.usage.to_dict(),
                total=s.usage.to_dict(),
                context_tokens=response.usage.prompt_tokens,
                context_window=self._window(),
            ),
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
            Compacted(
                before_tokens=done.before_tokens,
                after_tokens=done.after_tokens,
                removed=done.removed,
                forced=force,
                usage=done.usage.to_dict(),
            ),
        )

    def _resume_pending(self) -> None:
        """A restarted session continues the turn that was waiting for approvals or cut by a crash."""
        s = self.session
        calls, s.unanswered_calls = s.unanswered_calls, []
        if not calls:
            return
        waiting = {str(a.get("call_id")) for a in s.pending_approvals}
        self._approvals.expect({c.id for c in calls if c.id in waiting})
        self._take_early_answers()
        rerun = [c for c in calls if c.id in waiting]
        for c in calls:
            if c.id in s.cut_calls:
                s.add(Message.tool(c, cut_call_note(s.cut_calls[c.id]), error=True, state="unknown"))
            elif c.id not in waiting:
                s.add(Message.tool(c, "Not executed: the session stopped before this call started.", error=True))
        if rerun:
            self._start(self._turn(pending=rerun), turn=True)

    def _take_early_answers(self) -> None:
        """Approvals submitted before the loop started answer the restored calls, whatever runs first."""
        queued: list[Operation] = []
        while not self._ops.empty():
            queued.append(self._ops.get_nowait())
        for op in queued:
            if isinstance(op, Approval):
                self._approvals.resolve(op)
            else:
                self._ops.put_nowait(op)


def _error_data(e: AgentError) -> Error:
    if isinstance(e, LLMError):
        return Error(message=str(e.args[0]) if e.args else str(e), kind=e.kind, hint=e.hint)
    return Error(message=str(e), kind=type(e).__name__, hint="")
