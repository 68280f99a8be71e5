"""Running one batch of tool calls: parse, validate, approve, execute, bound and record the results."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.approvals import Decision, Verdict
from agent.context import bound_output
from agent.errors import ToolError
from agent.events import Approval, EventType, ToolEvent, ToolState, tool_event_data
from agent.messages import Message, ToolCall
from agent.payloads import ToolCallData, ToolOutput, ToolStateChange
from agent.session import Session
from agent.tools.base import Effect, Tool, ToolResult

logger = logging.getLogger(__name__)

Emit = Callable[[EventType, Mapping[str, Any]], object]
AskHuman = Callable[[ToolCall, Tool, dict[str, Any], str, float | None, frozenset[Effect]], Awaitable[Approval]]


@dataclass
class Prepared:
    call: ToolCall
    tool: Tool | None = None
    args: dict[str, Any] | None = None
    result: ToolResult | None = None
    """Set when the call is answered without running (bad arguments, denied)."""
    effects: frozenset[Effect] = frozenset()
    """The call's effects when it was approved."""


def parse_call(session: Session, call: ToolCall) -> Prepared:
    """Resolve the tool and check the arguments; problems become results the model reads."""
    tool = session.toolbox.get(call.name)
    if tool is None:
        names = ", ".join(session.toolbox.names())
        return Prepared(call, result=ToolResult(f"Unknown tool {call.name!r}. Available tools: {names}.", True))
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as e:
        return Prepared(
            call,
            tool,
            result=ToolResult(
                f"The arguments are not valid JSON ({e.msg} at position {e.pos}). Send one JSON object matching the "
                "tool's schema; write large contents in smaller pieces.",
                True,
            ),
        )
    if not isinstance(args, dict):
        return Prepared(call, tool, result=ToolResult("The arguments must be a JSON object.", True))
    try:
        tool.validate(args)
    except ToolError as e:
        return Prepared(call, tool, result=ToolResult(str(e), True))
    return Prepared(call, tool, args)  # the JSON form: events, approvals and cost estimates need plain data


class Executor:
    """Runs the calls of one assistant message; read-only neighbours run concurrently, the rest in order."""

    def __init__(self, session: Session, emit: Emit, ask: AskHuman, must_ask: frozenset[str] = frozenset()) -> None:
        self.session = session
        self.emit = emit
        self.ask = ask
        self.must_ask = must_ask
        """Calls that were waiting for a person when the session stopped: a person decides, whatever the policy."""

    async def run(self, calls: list[ToolCall]) -> None:
        prepared = [parse_call(self.session, c) for c in calls]
        for p in prepared:
            summary = p.tool.describe_call(p.args) if p.tool and p.args is not None else p.call.name
            self.emit(
                EventType.TOOL_CALL,
                ToolCallData(
                    call_id=p.call.id,
                    name=p.call.name,
                    arguments=p.args if p.args is not None else p.call.arguments,
                    summary=summary,
                ),
            )
        await asyncio.gather(*(self._approve(p) for p in prepared))
        batch: list[Prepared] = []
        for p in prepared:
            if p.result is None and p.tool is not None and p.tool.read_only:
                batch.append(p)
                continue
            await self._run_batch(batch)
            batch = []
            await self._run_batch([p])
        await self._run_batch(batch)

    async def _approve(self, p: Prepared) -> None:
        if p.result is not None or p.tool is None or p.args is None:
            return
        session = self.session
        p.effects, why = p.tool.effects_of(session.tool_context(p.call.id, self._tool_emit), p.args)
        verdict = session.policy.decide(p.tool, p.args, session.budget, p.effects, why)
        if p.call.id in self.must_ask and verdict.decision is not Decision.DENY:
            verdict = Verdict(Decision.ASK, "this call was waiting for a person's approval when the session stopped")
        by, always = "policy", False
        if verdict.decision is Decision.ASK:
            self._state(p, ToolState.WAITING)
            answer = await self.ask(p.call, p.tool, p.args, verdict.reason, verdict.cost_usd, p.effects)
            if answer.always and answer.approved:
                session.policy.always.add(p.tool.name)
            approved, reason = answer.approved, answer.feedback
            by, always = answer.approver or "a person", answer.always and answer.approved
        else:
            approved, reason = verdict.decision is Decision.AUTO, verdict.reason
        if approved:
            if verdict.cost_usd:
                session.budget.tools_usd += verdict.cost_usd
            self._state(p, ToolState.APPROVED, by=by, always=always, cost_usd=verdict.cost_usd or 0.0)
            return
        self._state(p, ToolState.DENIED, by=by)
        who = "the user" if verdict.decision is Decision.ASK else "the approval policy"
        text = f"Not run: {who} denied this call."
        if reason:
            text += f" Reason: {reason.rstrip('.')}."
        p.result = ToolResult(text + " Do not retry it unchanged; choose another way or ask.", True)

    async def _run_batch(self, batch: list[Prepared]) -> None:
        if not batch:
            return
        results = await asyncio.gather(*(self._run_one(p) for p in batch))
        for p, (result, seconds) in zip(batch, results, strict=True):
            self._record(p, result, seconds)

    async def _run_one(self, p: Prepared) -> tuple[ToolResult, float]:
        if p.result is not None or p.tool is None or p.args is None:
            return p.result or ToolResult("Not run.", True), 0.0
        ctx = self.session.tool_context(p.call.id, self._tool_emit)
        effects, why = p.tool.effects_of(ctx, p.args)
        if effects - p.effects:  # e.g. an earlier call of the batch made a symlink into .git
            return ToolResult(f"Not run: since it was approved, it {'; '.join(why)}. Ask for it again.", True), 0.0
        self._state(p, ToolState.RUNNING)
        start = time.monotonic()
        try:
            result = await p.tool.run(ctx, p.args)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except Exception as e:  # a bug in a tool must not end the run: the model sees it
            logger.exception("tool %s crashed", p.call.name)
            result = ToolResult(f"The tool crashed: {type(e).__name__}: {e}", True)
        return result, time.monotonic() - start

    def _state(self, p: Prepared, state: ToolState, **decision: Any) -> None:
        """Say where a call is; a decision records who made it (`by`), an "always" grant and the estimated cost,
        so that a resumed session keeps them."""
        change = ToolStateChange(call_id=p.call.id, name=p.call.name, state=state)
        self.emit(EventType.TOOL_STATE_CHANGE, {**change, **decision})

    def _tool_emit(self, event: ToolEvent) -> None:
        self.emit(event.type, tool_event_data(event))

    def _record(self, p: Prepared, result: ToolResult, seconds: float) -> None:
        session = self.session
        text = session.redactor.redact(result.output)
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", p.call.id)[:64] or "call"
        shown, spill = bound_output(text, session.config.context.tool_output_chars, session.spill_dir, stem)
        session.add(Message.tool(p.call, shown, **({"error": True} if result.is_error else {})))
        self.emit(
            EventType.TOOL_OUTPUT,
            ToolOutput(
                call_id=p.call.id,
                name=p.call.name,
                output=shown,
                is_error=result.is_error,
                truncated=spill is not None,
                spill_path=str(spill) if spill else None,
                duration_s=round(seconds, 3),
                data=result.data,
            ),
        )
        if p.result is None:  # it ran (calls answered without running already have their final state)
            self._state(p, ToolState.FAILED if result.is_error else ToolState.DONE)
