"""Operations that go into the agent and events that come out, all JSON-serialisable.

A front end (CLI, GitHub thread runner, Action) submits operations and renders events;
neither side shares anything else with the loop.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class EventType(StrEnum):
    """Every event the loop emits. The payload of each is documented in docs/ARCHITECTURE.md."""

    READY = "ready"
    PROCESSING = "processing"
    ASSISTANT_CHUNK = "assistant_chunk"
    ASSISTANT_STREAM_RESET = "assistant_stream_reset"
    ASSISTANT_STREAM_END = "assistant_stream_end"
    ASSISTANT_MESSAGE = "assistant_message"
    TOOL_CALL = "tool_call"
    TOOL_OUTPUT = "tool_output"
    TOOL_LOG = "tool_log"
    TOOL_STATE_CHANGE = "tool_state_change"
    APPROVAL_REQUIRED = "approval_required"
    APPROVAL_IGNORED = "approval_ignored"
    """An approval for a call that is not waiting (answered already, or never asked): nothing happened."""
    PLAN_UPDATED = "plan_updated"
    USAGE = "usage"
    RETRY = "retry"
    COMPACTED = "compacted"
    DOOM_LOOP = "doom_loop"
    LIMIT_REACHED = "limit_reached"
    TURN_COMPLETE = "turn_complete"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    UNDO_COMPLETE = "undo_complete"
    SHUTDOWN = "shutdown"


class StopReason(StrEnum):
    """Why a turn ended (`turn_complete.stop_reason`)."""

    DONE = "done"
    MAX_ITERATIONS = "max_iterations"
    BUDGET = "budget"
    DOOM_LOOP = "doom_loop"
    ERROR = "error"
    INTERRUPTED = "interrupted"
    SUSPENDED = "suspended"
    """The loop shut down while the turn waited or ran; the trace keeps it resumable."""


class ToolState(StrEnum):
    """Where a tool call is (`tool_state_change.state`)."""

    WAITING = "waiting"
    APPROVED = "approved"
    DENIED = "denied"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class Event:
    """One thing that happened. `seq` orders events within a session."""

    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    ts: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"type": str(self.type), "seq": self.seq, "ts": round(self.ts, 3), "data": self.data}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(EventType(d["type"]), dict(d.get("data") or {}), int(d.get("seq", 0)), float(d.get("ts", 0.0)))


# ---- events a tool may emit while it runs -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ToolLog:
    """A batch of live output lines of a running tool."""

    call_id: str
    line: str
    type: ClassVar[EventType] = EventType.TOOL_LOG


@dataclass(frozen=True, slots=True)
class PlanUpdated:
    """The plan changed: every item with its `content` and `status`."""

    plan: list[dict[str, str]]
    type: ClassVar[EventType] = EventType.PLAN_UPDATED


ToolEvent = ToolLog | PlanUpdated
"""What `ToolContext.emit` accepts: a tool cannot emit an event the loop does not know."""


def tool_event_data(event: ToolEvent) -> dict[str, Any]:
    return {f: getattr(event, f) for f in event.__dataclass_fields__ if f != "type"}


# ---- operations -------------------------------------------------------------------------------


@dataclass(slots=True)
class UserInput:
    """A new message from the user; starts a turn."""

    text: str
    op: str = "user_input"


@dataclass(slots=True)
class Approval:
    """A decision on a pending tool call (`call_id` from `approval_required`)."""

    call_id: str
    approved: bool
    feedback: str = ""
    """Why, when denied: shown to the model."""
    always: bool = False
    """Approve this tool for the rest of the session."""
    approver: str = ""
    op: str = "approval"


@dataclass(slots=True)
class Interrupt:
    """Cancel the current turn now, including running tools."""

    op: str = "interrupt"


@dataclass(slots=True)
class Compact:
    """Summarise the history now, whatever its size."""

    op: str = "compact"


@dataclass(slots=True)
class Undo:
    """Drop the last turn (the last user message and everything after it)."""

    op: str = "undo"


@dataclass(slots=True)
class Shutdown:
    """Finish the current work and stop the loop."""

    op: str = "shutdown"


Operation = UserInput | Approval | Interrupt | Compact | Undo | Shutdown

_OPS: dict[str, type[Operation]] = {
    "user_input": UserInput,
    "approval": Approval,
    "interrupt": Interrupt,
    "compact": Compact,
    "undo": Undo,
    "shutdown": Shutdown,
}


def op_to_dict(op: Operation) -> dict[str, Any]:
    return asdict(op)


def op_from_dict(d: dict[str, Any]) -> Operation:
    """Build an operation from its JSON form; raises ValueError naming what is wrong."""
    kind = d.get("op")
    cls = _OPS.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown operation {kind!r}; expected one of {', '.join(_OPS)}")
    fields = {k: v for k, v in d.items() if k != "op"}
    try:
        return cls(**fields)
    except TypeError as e:
        raise ValueError(f"bad {kind} operation: {e}") from None
