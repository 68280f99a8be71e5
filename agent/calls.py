"""The model's tool calls across a session: ids made unique, calls waiting for a person (asked, answered early
after a resume, or stale), and what the model is told of a call a crash cut."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from agent.events import Approval, Event, EventType
from agent.messages import ToolCall
from agent.payloads import ApprovalIgnored, ApprovalRequired
from agent.tools.base import Effect, Tool

Emit = Callable[[EventType, Mapping[str, Any]], Event]


def cut_call_note(output: list[str]) -> str:
    """What the model is told of a call that was running when the process stopped (crash, kill)."""
    seen = "\n".join(output) if output else "(none)"
    return (
        "State unknown: the session stopped (killed or crashed) while this call was running. It may have finished, "
        "partly run, or still be running; its effects are not known. Check them (files, processes, pushes, jobs) "
        f"before repeating it.\nLast output seen:\n{seen}"
    )


def unique_call_ids(calls: list[ToolCall], seen: set[str]) -> list[ToolCall]:
    """The calls with ids that are present and unique in the session (`seen`, updated): approvals, results and
    providers all pair a call with its result by id, so a repeated or missing id gets a fresh one."""
    out = []
    for i, c in enumerate(calls):
        if not c.id or c.id in seen:
            c = replace(c, id=f"{c.id or 'call'}~{len(seen)}-{i}")
        seen.add(c.id)
        out.append(c)
    return out


class Approvals:
    """The calls waiting for a person. A call is asked with `ask`; an `Approval` operation answers it (`resolve`);
    after a resume, an answer may come before its call is asked again and is kept for it; an answer for a call that
    is not waiting is a quiet `approval_ignored` event."""

    def __init__(self, emit: Emit, *, headless: bool) -> None:
        self._emit = emit
        self._headless = headless
        self._waiting: dict[str, asyncio.Future[Approval]] = {}
        self._expected: set[str] = set()
        """Calls restored waiting for approval and not asked again yet: an answer for them is kept."""
        self._early: dict[str, Approval] = {}

    @property
    def expected(self) -> frozenset[str]:
        """Calls restored waiting for a person: a person decides them, whatever the policy says."""
        return frozenset(self._expected)

    def expect(self, call_ids: set[str]) -> None:
        """A resumed session will ask these calls again."""
        self._expected = set(call_ids)

    async def ask(
        self,
        call: ToolCall,
        tool: Tool,
        args: dict[str, Any],
        reason: str,
        cost: float | None,
        effects: frozenset[Effect],
    ) -> Approval:
        """Show the approval card and wait for the answer (the one kept for it, or a refusal when headless)."""
        future: asyncio.Future[Approval] = asyncio.get_running_loop().create_future()
        self._waiting[call.id] = future
        self._emit(
            EventType.APPROVAL_REQUIRED,
            ApprovalRequired(
                call_id=call.id,
                name=tool.name,
                summary=tool.describe_call(args),
                reason=reason,
                effects=sorted(str(e) for e in effects),
                arguments=args,
                cost_usd=cost,
            ),
        )
        self._expected.discard(call.id)
        if (early := self._early.pop(call.id, None)) is not None:
            return early
        if self._headless:  # only a call restored waiting for a person gets here: nobody can answer
            return Approval(
                call.id,
                approved=False,
                feedback="this call was waiting for a person's approval when the session stopped, and this resumed "
                "run is headless, so nobody can approve it; do not repeat it, and say in your answer that it needs "
                "approval (resume the session interactively, or submit an approval for this call id)",
                approver="headless resume",
            )
        try:
            return await future
        finally:
            self._waiting.pop(call.id, None)

    def resolve(self, op: Approval) -> None:
        """Answer the call `op` names, keep the answer for a restored call, or ignore it (quietly, with an event)."""
        future = self._waiting.get(op.call_id)
        if future is not None and not future.done():
            future.set_result(op)
        elif op.call_id in self._expected:  # a resumed session, answered before its call is asked again
            self._early[op.call_id] = op
        else:  # answered already, or never asked (a stale `/approve` in a thread): nothing to do
            waiting = sorted(self._waiting)
            self._emit(EventType.APPROVAL_IGNORED, ApprovalIgnored(call_id=op.call_id, waiting=waiting))


__all__ = ["Approvals", "cut_call_note", "unique_call_ids"]
