"""What the progress comment shows, kept up to date from the agent's events (pure state, no I/O)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from agent.events import Event, EventType, ToolState
from agent.format import RETRY_REASONS
from agent.payloads import (
    ApprovalRequired,
    AssistantMessage,
    Error,
    LimitReached,
    PlanUpdatedData,
    Ready,
    Retry,
    ToolCallData,
    ToolOutput,
    ToolStateChange,
    UsageData,
    payload,
)

MAX_LOG = 400
"""Steps kept in memory; the comment shows as many of the newest as fit."""


@dataclass
class Step:
    """One tool call in the log: what it was, and how it ended."""

    call_id: str
    name: str
    summary: str
    state: str = "running"
    """running, waiting, denied, done or failed."""
    result: str = ""
    duration_s: float | None = None
    decision: str = ""
    """Who let it run, when a person did."""


@dataclass
class Card:
    """A call waiting for a person's decision."""

    call_id: str
    name: str
    summary: str
    reason: str
    cost_usd: float | None
    effects: list[str]
    shown_at: float
    """When it was asked (the event's time): reactions older than this do not answer it."""


@dataclass
class RunView:
    """The run as the comment shows it."""

    run_id: int
    requester: str
    status: str = "queued"
    """queued, running or waiting_approval while the run lives (the end comes from the final report)."""
    started_at: float | None = None
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    plan: list[dict[str, str]] = field(default_factory=list)
    current: str = ""
    log: deque[Step] = field(default_factory=lambda: deque(maxlen=MAX_LOG))
    steps: int = 0
    """Tool calls so far, including those no longer kept in `log`."""
    cards: list[Card] = field(default_factory=list)
    """Calls waiting for a decision, oldest first: the first is the one answers apply to."""
    error: str = ""

    @property
    def card(self) -> Card | None:
        return self.cards[0] if self.cards else None

    def step(self, call_id: str) -> Step | None:
        for s in reversed(self.log):
            if s.call_id == call_id:
                return s
        return None

    def apply(self, event: Event) -> None:
        """Fold one agent event into the view."""
        handler = _HANDLERS.get(event.type)
        if handler is not None:
            handler(self, event)
        if self.started_at is None and event.type is not EventType.READY:
            self.started_at = event.ts


def _ready(v: RunView, e: Event) -> None:
    v.model = payload(e, Ready)["model"]
    v.started_at = v.started_at or e.ts
    if v.status == "queued":
        v.status = "running"


def _processing(v: RunView, e: Event) -> None:
    v.status = "waiting_approval" if v.cards else "running"
    v.current = "thinking"


def _message(v: RunView, e: Event) -> None:
    text = payload(e, AssistantMessage)["text"].strip()
    if text:
        v.current = text.splitlines()[0]


def _tool_call(v: RunView, e: Event) -> None:
    d = payload(e, ToolCallData)
    v.log.append(Step(d["call_id"], d["name"], d["summary"]))
    v.steps += 1
    v.current = f"{d['name']}: {d['summary']}"


def _state(v: RunView, e: Event) -> None:
    d = payload(e, ToolStateChange)
    state = ToolState(d["state"])
    step = v.step(d["call_id"])
    if state in (ToolState.APPROVED, ToolState.DENIED):
        v.cards = [c for c in v.cards if c.call_id != d["call_id"]]
        v.status = "waiting_approval" if v.cards else "running"
    if step is None:
        return
    if state is ToolState.WAITING:
        step.state = "waiting"
    elif state is ToolState.DENIED:
        step.state, step.result = "denied", f"denied by {d.get('by') or 'policy'}"
    elif state is ToolState.APPROVED and d.get("by") not in (None, "", "policy"):
        step.state, step.decision = "running", f"approved by {d.get('by')}"
    elif state is ToolState.RUNNING:
        step.state = "running"


def _approval(v: RunView, e: Event) -> None:
    d = payload(e, ApprovalRequired)
    v.cards = [c for c in v.cards if c.call_id != d["call_id"]]
    v.cards.append(Card(d["call_id"], d["name"], d["summary"], d["reason"], d["cost_usd"], d["effects"], e.ts))
    v.status = "waiting_approval"


def _output(v: RunView, e: Event) -> None:
    d = payload(e, ToolOutput)
    step = v.step(d["call_id"])
    if step is None or step.state == "denied":
        return
    lines = [line for line in d["output"].splitlines() if line.strip()]
    step.state = "failed" if d["is_error"] else "done"
    step.result = lines[0] if lines else "(no output)"
    step.duration_s = d["duration_s"]


def _plan(v: RunView, e: Event) -> None:
    v.plan = [dict(item) for item in payload(e, PlanUpdatedData)["plan"]]


def _usage(v: RunView, e: Event) -> None:
    v.usage = dict(payload(e, UsageData)["total"])


def _retry(v: RunView, e: Event) -> None:
    d = payload(e, Retry)
    v.current = f"retrying the model call ({RETRY_REASONS.get(d['kind'], d['kind'])})"


def _limit(v: RunView, e: Event) -> None:
    v.current = f"stopping: {payload(e, LimitReached)['limit'].replace('_', ' ')} reached"


def _error(v: RunView, e: Event) -> None:
    v.error = payload(e, Error)["message"]


def _turn_complete(v: RunView, e: Event) -> None:
    v.current = ""


_HANDLERS = {
    EventType.READY: _ready,
    EventType.PROCESSING: _processing,
    EventType.ASSISTANT_MESSAGE: _message,
    EventType.TOOL_CALL: _tool_call,
    EventType.TOOL_STATE_CHANGE: _state,
    EventType.APPROVAL_REQUIRED: _approval,
    EventType.TOOL_OUTPUT: _output,
    EventType.PLAN_UPDATED: _plan,
    EventType.USAGE: _usage,
    EventType.RETRY: _retry,
    EventType.LIMIT_REACHED: _limit,
    EventType.ERROR: _error,
    EventType.TURN_COMPLETE: _turn_complete,
}


__all__ = ["MAX_LOG", "Card", "RunView", "Step"]
