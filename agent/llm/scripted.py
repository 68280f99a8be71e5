"""A model that replays a script: a list of turns, or a function of the history. For tests and benchmarks."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import LLMError
from agent.llm import OnRetry, OnText
from agent.llm.tokens import estimate_tokens
from agent.messages import Message, ModelResponse, ToolCall, Usage


@dataclass
class Turn:
    """One scripted assistant reply."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage | None = None
    """Reported usage; computed from the request when None."""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"text": self.text, "tool_calls": [c.to_dict() for c in self.tool_calls]}
        if self.usage is not None:
            d["usage"] = self.usage.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        calls = []
        for i, c in enumerate(d.get("tool_calls") or []):
            if "function" in c:
                calls.append(ToolCall.from_dict(c))
            else:  # short form {"name": ..., "arguments": {...} | "raw json"}
                args = c.get("arguments", {})
                calls.append(
                    ToolCall(c.get("id") or f"call_{i}", c["name"], args if isinstance(args, str) else json.dumps(args))
                )
        u = d.get("usage")
        usage = (
            Usage(
                u.get("prompt_tokens", 0),
                u.get("completion_tokens", 0),
                u.get("cached_tokens", 0),
                u.get("cost_usd", 0.0),
            )
            if u
            else None
        )
        return cls(d.get("text", ""), calls, usage)


_counter = 0


def say(text: str) -> Turn:
    """A turn that only answers."""
    return Turn(text=text)


def call(name: str, _text: str = "", _id: str | None = None, **arguments: Any) -> Turn:
    """A turn that calls one tool with keyword arguments."""
    return calls((name, arguments), text=_text, ids=[_id] if _id else None)


def calls(*items: tuple[str, dict[str, Any] | str], text: str = "", ids: Sequence[str] | None = None) -> Turn:
    """A turn that calls several tools; arguments given as a str are sent verbatim (malformed JSON tests)."""
    global _counter
    out = []
    for i, (name, args) in enumerate(items):
        _counter += 1
        cid = ids[i] if ids else f"call_{_counter}"
        out.append(ToolCall(cid, name, args if isinstance(args, str) else json.dumps(args)))
    return Turn(text=text, tool_calls=out)


Script = Sequence["Turn | str | BaseException"] | Callable[[list[Message]], "Turn | str"]


class ScriptedModel:
    """Replays `script` one turn per call; records every request in `requests`.

    A `str` item is a text answer, an exception item is raised (e.g. ContextOverflowError), and a
    callable script is asked for each reply with the history it was sent.
    """

    def __init__(
        self,
        script: Script,
        *,
        name: str = "scripted",
        context_window: int = 128_000,
        usd_per_1k_tokens: float = 0.0,
        chunk_chars: int = 16,
    ) -> None:
        self.name = name
        self.context_window = context_window
        self._script = script
        self._index = 0
        self.usd_per_1k_tokens = usd_per_1k_tokens
        self.chunk_chars = chunk_chars
        self.requests: list[list[Message]] = []
        self.tool_specs: list[list[dict[str, Any]]] = []

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
        return estimate_tokens(messages, tools)

    def _next(self, messages: list[Message]) -> Turn:
        if callable(self._script):
            item: Turn | str | BaseException = self._script(messages)
        else:
            if self._index >= len(self._script):
                raise LLMError(f"scripted model ran out of turns after {self._index}", kind="bad_request")
            item = self._script[self._index]
            self._index += 1
        if isinstance(item, BaseException):
            raise item
        return Turn(text=item) if isinstance(item, str) else item

    @property
    def remaining(self) -> int:
        return 0 if callable(self._script) else len(self._script) - self._index

    async def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        stream: bool = False,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
    ) -> ModelResponse:
        self.requests.append(list(messages))
        self.tool_specs.append(tools)
        turn = self._next(messages)
        if stream and on_text and turn.text:
            for i in range(0, len(turn.text), self.chunk_chars):
                await on_text(turn.text[i : i + self.chunk_chars])
        usage = turn.usage
        if usage is None:
            prompt = self.count_tokens(messages, tools)
            completion = len(turn.text) // 4 + sum(len(c.arguments) // 4 + 4 for c in turn.tool_calls)
            usage = Usage(prompt, completion, 0, (prompt + completion) / 1000 * self.usd_per_1k_tokens)
        message = Message("assistant", turn.text, tool_calls=list(turn.tool_calls))
        return ModelResponse(message, usage, "tool_calls" if turn.tool_calls else "stop", self.name)
