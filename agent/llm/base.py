"""What every real model client shares: the timeout, the retry loop with backoff, usage, pricing and the reply.

A client (`openai_compat.py`, `litellm_model.py`) builds its request and makes one attempt, plain or streamed;
`RetryingModel.complete` bounds it in time, classifies what went wrong and retries what is worth retrying.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent.config import LLMConfig
from agent.errors import LLMError
from agent.llm import OnRetry, OnText
from agent.llm.classify import RETRY_AFTER_CAP, classify
from agent.llm.routing import DEFAULT_CONTEXT_WINDOW, Route
from agent.llm.stream import Assembly, StreamError, field_of
from agent.messages import Message, ModelResponse, ToolCall, Usage

if TYPE_CHECKING:
    from agent.redact import Redactor

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def read_usage(usage: Any, cost: float = 0.0) -> Usage:
    """Our Usage from a provider's (OpenAI cached_tokens, or Anthropic cache_read_input_tokens)."""
    if usage is None:
        return Usage(cost_usd=cost)
    details = field_of(usage, "prompt_tokens_details")
    cached = (field_of(details, "cached_tokens") if details else None) or field_of(usage, "cache_read_input_tokens")
    prompt, completion = field_of(usage, "prompt_tokens"), field_of(usage, "completion_tokens")
    return Usage(_count(prompt), _count(completion), _count(cached), cost)


def _count(value: Any) -> int:
    """A token count as reported, 0 when it is missing or not a number."""
    return int(value) if isinstance(value, int | float) and value > 0 else 0


def gave_up(err: LLMError, retries: int) -> LLMError:
    message = f"{err.args[0]} (gave up after {retries} {'retry' if retries == 1 else 'retries'})"
    return LLMError(
        message, kind=err.kind, retryable=True, hint=err.hint, retry_after=err.retry_after, status=err.status
    )


def tool_call(id_: str | None, name: str | None, arguments: str | None) -> ToolCall:
    """A call as the history keeps it: an id even when the provider sent none, `{}` for no arguments."""
    return ToolCall(id_ or f"call_{uuid.uuid4().hex[:16]}", name or "", arguments or "{}")


class RetryingModel(ABC):
    """The Model protocol over one attempt (`_call` or `_stream`) that subclasses implement."""

    def __init__(
        self,
        route: Route,
        llm: LLMConfig,
        *,
        name: str | None = None,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.redactor = redactor
        """The session's redactor, for what providers echo in their errors (patterns only when None)."""
        self.route = route
        self.llm = llm
        self.name = name or route.model
        self.context_window = context_window
        self._sleep = sleep
        self._rng = rng or random.Random()

    async def complete(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]],
        *,
        stream: bool = False,
        on_text: OnText | None = None,
        on_retry: OnRetry | None = None,
    ) -> ModelResponse:
        request = self._request(messages, tools, stream)
        attempt = 0
        while True:
            got = Assembly()
            try:
                # a whole call, or for a stream the wait for each chunk (a long answer may take minutes)
                async with asyncio.timeout(self.llm.timeout) as deadline:
                    return await (self._stream(request, on_text, got, deadline) if stream else self._call(request))
            except TimeoutError as e:
                err = self._error(e, during_stream=got.started)
            except LLMError as e:
                err = e
            if not err.retryable:
                raise err
            if attempt >= self.llm.max_retries:
                raise gave_up(err, attempt) from err
            attempt += 1
            delay = self.backoff(attempt, err.retry_after)
            logger.info(
                "model call failed (%s), retry %d/%d in %.1fs: %s",
                err.kind,
                attempt,
                self.llm.max_retries,
                delay,
                err.args[0],
            )
            if on_retry is not None:
                info = {
                    "attempt": attempt,
                    "delay": delay,
                    "kind": err.kind,
                    "message": str(err),
                    "streamed": got.shown,
                }
                await on_retry(info)
            await self._sleep(delay)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter, but never shorter than the server's Retry-After (capped)."""
        delay = self._rng.uniform(0, min(self.llm.backoff_max, self.llm.backoff_base * 2 ** (attempt - 1)))
        if retry_after is not None:
            delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
        return delay

    async def aclose(self) -> None:  # noqa: B027 (a hook: most clients hold nothing to release)
        """Release connections (nothing to release by default)."""

    @abstractmethod
    def _request(self, messages: list[Message], tools: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        """The request of this call, built once and sent on every attempt."""

    @abstractmethod
    async def _call(self, request: dict[str, Any]) -> ModelResponse:
        """One plain attempt; raises LLMError."""

    @abstractmethod
    async def _stream(
        self, request: dict[str, Any], on_text: OnText | None, got: Assembly, deadline: asyncio.Timeout
    ) -> ModelResponse:
        """One streamed attempt, each chunk through `_take`; raises LLMError."""

    async def _take(self, got: Assembly, chunk: Any, on_text: OnText | None) -> None:
        """One streamed chunk: collect it, show its text. A chunk of the wrong shape is a broken stream."""
        try:
            text = got.add(chunk)
        except (TypeError, AttributeError) as e:
            raise StreamError(f"the stream sent a chunk of an unexpected shape: {str(chunk)[:200]}", None) from e
        if text and on_text is not None:
            got.shown = True
            await on_text(text)

    def _error(self, exc: BaseException, during_stream: bool = False) -> LLMError:
        return classify(
            exc, model=self.name, key_env=self.route.key_env, during_stream=during_stream, redactor=self.redactor
        )

    def _priced(self, usage: Usage) -> Usage:
        """Price a call the price map could not price from the configured per-million-token prices, when given."""
        prices = self.llm.usd_per_million
        if usage.cost_usd or prices is None:
            return usage
        usage.cost_usd = (usage.prompt_tokens * prices.input + usage.completion_tokens * prices.output) / 1e6
        return usage

    def _reply(self, got: Assembly, usage: Usage) -> ModelResponse:
        """The response of a finished stream."""
        if got.empty:
            raise LLMError("the stream ended without an answer", kind="stream", retryable=True)
        calls = [tool_call(*c) for c in got.calls()]
        return self._response("".join(got.text), calls, got.finish, usage, "".join(got.reasoning) or None)

    def _response(
        self, text: str, calls: list[ToolCall], finish: str | None, usage: Usage, reasoning: str | None
    ) -> ModelResponse:
        if calls and finish in (None, "stop"):
            finish = "tool_calls"
        meta = {"reasoning": reasoning} if reasoning else {}
        message = Message("assistant", text, tool_calls=calls, meta=meta)
        return ModelResponse(message, usage, finish or "stop", self.name)
