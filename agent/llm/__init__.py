"""The model seam: anything with `complete()` can drive the loop (litellm, the scripted model)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from agent.messages import Message, ModelResponse

OnText = Callable[[str], Awaitable[None]]
"""Receives each streamed text delta."""
OnRetry = Callable[[dict[str, Any]], Awaitable[None]]
"""Told before each retry: {"attempt", "delay", "kind", "message", "streamed"}."""


class Model(Protocol):
    """A chat model that can call tools."""

    name: str
    context_window: int
    """Input tokens the model accepts."""

    async def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        stream: bool = False,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
    ) -> ModelResponse:
        """One assistant turn. Raises LLMError (or a subclass) when it cannot get one."""
        ...

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
        """Prompt tokens these messages and tools cost on this model."""
        ...
