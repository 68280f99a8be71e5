"""The payload of each event, typed: the loop builds them, front ends read them with `payload(event, Kind)`.

At run time a payload is the plain JSON-ready dict in `Event.data` (what the trace and `--json` carry); these
`TypedDict`s let the type checker hold the loop and every front end to the same keys. (No postponed
annotations here: `NotRequired` must be evaluated for `__optional_keys__` to be right at run time.)
"""

from typing import Any, NotRequired, TypedDict, TypeVar, cast

from agent.events import Event, EventType, StopReason, ToolState


class Ready(TypedDict):
    session_id: str
    model: str
    tools: list[str]
    resumed: bool
    workdir: str
    mcp_failures: dict[str, str]


class Text(TypedDict):
    """`assistant_chunk`: a streamed piece of the answer."""

    text: str


class AssistantMessage(TypedDict):
    text: str
    tool_calls: list[dict[str, Any]]
    """In the OpenAI chat format: `{"id", "type": "function", "function": {"name", "arguments"}}`."""


class ToolCallData(TypedDict):
    call_id: str
    name: str
    arguments: Any
    """The parsed JSON arguments, or the raw text when they did not parse."""
    summary: str


class ToolStateChange(TypedDict):
    call_id: str
    name: str
    state: ToolState
    by: NotRequired[str]
    """Who decided (approved, denied): a person's login, "policy", or "headless resume"."""
    always: NotRequired[bool]
    cost_usd: NotRequired[float]


class ApprovalRequired(TypedDict):
    call_id: str
    name: str
    summary: str
    reason: str
    effects: list[str]
    arguments: Any
    cost_usd: float | None


class ApprovalIgnored(TypedDict):
    call_id: str
    waiting: list[str]
    """The calls that are waiting now."""


class ToolLogData(TypedDict):
    call_id: str
    line: str


class ToolOutput(TypedDict):
    call_id: str
    name: str
    output: str
    is_error: bool
    truncated: bool
    spill_path: str | None
    duration_s: float
    data: dict[str, Any]


class PlanUpdatedData(TypedDict):
    plan: list[dict[str, str]]


class UsageData(TypedDict):
    call: dict[str, Any]
    total: dict[str, Any]
    context_tokens: int
    context_window: int


class Retry(TypedDict):
    attempt: int
    delay: float
    kind: str
    message: str
    streamed: bool


class Compacted(TypedDict):
    before_tokens: int
    after_tokens: int
    removed: int
    forced: bool
    usage: dict[str, Any]


class DoomLoopData(TypedDict):
    description: str
    stopped: bool


class LimitReached(TypedDict):
    limit: str
    """`max_iterations` or `budget`."""
    value: float | None
    spent: NotRequired[float]


class Error(TypedDict):
    message: str
    kind: str
    hint: str


class UndoComplete(TypedDict):
    removed: int


class TurnComplete(TypedDict):
    stop_reason: StopReason
    final: str
    iterations: int
    usage: dict[str, Any]


class Empty(TypedDict):
    """`processing`, `assistant_stream_reset`, `assistant_stream_end`, `interrupted`, `shutdown`."""


PAYLOADS: dict[EventType, type] = {
    EventType.READY: Ready,
    EventType.PROCESSING: Empty,
    EventType.ASSISTANT_CHUNK: Text,
    EventType.ASSISTANT_STREAM_RESET: Empty,
    EventType.ASSISTANT_STREAM_END: Empty,
    EventType.ASSISTANT_MESSAGE: AssistantMessage,
    EventType.TOOL_CALL: ToolCallData,
    EventType.TOOL_OUTPUT: ToolOutput,
    EventType.TOOL_LOG: ToolLogData,
    EventType.TOOL_STATE_CHANGE: ToolStateChange,
    EventType.APPROVAL_REQUIRED: ApprovalRequired,
    EventType.APPROVAL_IGNORED: ApprovalIgnored,
    EventType.PLAN_UPDATED: PlanUpdatedData,
    EventType.USAGE: UsageData,
    EventType.RETRY: Retry,
    EventType.COMPACTED: Compacted,
    EventType.DOOM_LOOP: DoomLoopData,
    EventType.LIMIT_REACHED: LimitReached,
    EventType.TURN_COMPLETE: TurnComplete,
    EventType.ERROR: Error,
    EventType.INTERRUPTED: Empty,
    EventType.UNDO_COMPLETE: UndoComplete,
    EventType.SHUTDOWN: Empty,
}
"""Every event type and the shape of its payload."""

P = TypeVar("P")


def payload(event: Event, kind: type[P]) -> P:
    """`event.data` as `kind`; raises TypeError when the event is of another type (a front end's bug)."""
    expected = PAYLOADS[event.type]
    if expected is not kind:
        raise TypeError(f"a {event.type} event carries {expected.__name__}, not {kind.__name__}")
    return cast(P, event.data)


__all__ = ["PAYLOADS", "payload"]
