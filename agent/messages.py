"""Chat messages and tool calls, in the OpenAI chat format that litellm speaks."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


class MessageKind(StrEnum):
    """What a user message the agent wrote itself is (`meta["kind"]`); people's messages have none."""

    SUMMARY = "summary"
    """The summary that compaction put in place of earlier messages."""
    DOOM_GUARD = "doom_guard"
    """The corrective note injected when the agent repeats itself."""
    NUDGE = "nudge"
    """The request for a real answer after an empty one."""


@dataclass(slots=True)
class ToolCall:
    """One function call requested by the model; `arguments` is the raw JSON text it produced."""

    id: str
    name: str
    arguments: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCall:
        fn = d.get("function") or {}
        return cls(id=str(d.get("id") or ""), name=str(fn.get("name") or ""), arguments=fn.get("arguments") or "")


@dataclass(slots=True)
class Message:
    """One entry of the history."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    """For tool results: the tool's name."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Bookkeeping never sent to the model (e.g. {"kind": MessageKind.SUMMARY}, {"error": True})."""

    def to_llm(self) -> dict[str, Any]:
        """The dict sent to the model."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
            if not self.content:
                d["content"] = None
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None and self.role == "tool":
            d["name"] = self.name
        return d

    def to_dict(self) -> dict[str, Any]:
        """The dict written to the trace (lossless)."""
        d = self.to_llm()
        if d.get("content") is None:
            d["content"] = ""
        if self.meta:
            d["meta"] = self.meta
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        return cls(
            role=d["role"],
            content=d.get("content") or "",
            tool_calls=[ToolCall.from_dict(c) for c in d.get("tool_calls") or []],
            tool_call_id=d.get("tool_call_id"),
            name=d.get("name"),
            meta=dict(d.get("meta") or {}),
        )

    @classmethod
    def system(cls, text: str) -> Message:
        return cls("system", text)

    @classmethod
    def user(cls, text: str, **meta: Any) -> Message:
        return cls("user", text, meta=meta)

    @classmethod
    def tool(cls, call: ToolCall, output: str, **meta: Any) -> Message:
        return cls("tool", output, tool_call_id=call.id, name=call.name, meta=meta)


@dataclass(slots=True)
class Usage:
    """Tokens and cost of one model call, or a sum of several."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the provider's cache (read)."""
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cost_usd + other.cost_usd,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


@dataclass(slots=True)
class ModelResponse:
    """What one model call returned."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    finish_reason: str = "stop"
    model: str = ""
