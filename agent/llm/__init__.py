"""The model seam: anything with `complete()` can drive the loop (the direct OpenAI-compatible client, litellm,
the scripted model), and `model_from_config` choosing the client by route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from agent.messages import Message, ModelResponse

if TYPE_CHECKING:
    from agent.config import AgentConfig
    from agent.redact import Redactor

OnText = Callable[[str], Awaitable[None]]
"""Receives each streamed text delta."""
OnRetry = Callable[[dict[str, Any]], Awaitable[None]]
"""Told before each retry: {"attempt", "delay", "kind", "message", "streamed"}."""


class Model(Protocol):
    """A chat model that can call tools. One that holds connections also has `async aclose()`, which the session
    calls when it closes."""

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


def model_from_config(
    cfg: AgentConfig,
    *,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    env: Mapping[str, str] | None = None,
    redactor: Redactor | None = None,
) -> Model:
    """The configured model: the direct client for OpenAI-compatible routes, litellm for the rest.

    Its key comes from `env` (the session's snapshot; the process environment by default), and provider errors
    are redacted with `redactor` (the session's). A missing key, an unroutable id or a base_url that is not a
    URL fails here, before any request.
    """
    from agent.llm.routing import context_window_for, resolve_route

    route = resolve_route(cfg, env)
    window = context_window_for(route, cfg.context.context_window)
    kw: dict[str, Any] = {"name": cfg.model, "context_window": window, "redactor": redactor}
    if sleep is not None:
        kw["sleep"] = sleep
    if route.client == "openai" and cfg.llm.client == "auto":
        from agent.llm.openai_compat import OpenAICompatModel

        return OpenAICompatModel(route, cfg.llm, **kw)
    from agent.llm.litellm_model import LiteLLMModel

    return LiteLLMModel(route, cfg.llm, **kw)
