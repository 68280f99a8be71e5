"""The real model: any litellm model id, with timeouts, retries, streaming, usage, cost and prompt caching.

Routing is in `agent/llm/routing.py`, cache breakpoints in `agent/llm/caching.py`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from agent.config import AgentConfig, LLMConfig
from agent.errors import LLMError
from agent.llm import OnRetry, OnText
from agent.llm.caching import add_cache_breakpoints, is_anthropic
from agent.llm.classify import RETRY_AFTER_CAP, classify
from agent.llm.routing import DEFAULT_CONTEXT_WINDOW, Route, context_window_for, litellm_module, resolve_route
from agent.llm.tokens import estimate_tokens
from agent.messages import Message, ModelResponse, ToolCall, Usage

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def read_usage(usage: Any, cost: float) -> Usage:
    """Our Usage from litellm's (OpenAI cached_tokens, or Anthropic cache_read_input_tokens)."""
    if usage is None:
        return Usage(cost_usd=cost)
    cached = _get(_get(usage, "prompt_tokens_details"), "cached_tokens") or _get(usage, "cache_read_input_tokens")
    return Usage(
        int(_get(usage, "prompt_tokens") or 0), int(_get(usage, "completion_tokens") or 0), int(cached or 0), cost
    )


class _Assembly:
    """Collects one streamed reply: text, reasoning, tool calls by index, finish reason, usage."""

    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[dict[str, str]] = []
        self.slots: dict[int, int] = {}
        self.finish: str | None = None
        self.usage: Any = None
        self.shown = False
        """Text was already passed to on_text."""

    def add(self, chunk: Any) -> str:
        """Take one chunk; returns its text delta."""
        self.chunks.append(chunk)
        self.usage = getattr(chunk, "usage", None) or self.usage
        text = ""
        for choice in getattr(chunk, "choices", None) or []:
            delta = choice.delta
            text += delta.content or ""
            if reasoning := getattr(delta, "reasoning_content", None):
                self.reasoning.append(reasoning)
            for fragment in delta.tool_calls or []:
                self._tool_fragment(fragment)
            self.finish = choice.finish_reason or self.finish
        self.text.append(text)
        return text

    def _tool_fragment(self, fragment: Any) -> None:
        index = fragment.index if isinstance(fragment.index, int) else None
        slot = self.slots.get(index) if index is not None else (len(self.calls) - 1 if not fragment.id else None)
        if slot is not None and slot >= 0 and fragment.id and self.calls[slot]["id"] not in ("", fragment.id):
            slot = None  # a provider that reuses index 0 for every call
        if slot is None or slot < 0:
            self.calls.append({"id": "", "name": "", "arguments": ""})
            slot = len(self.calls) - 1
            if index is not None:
                self.slots[index] = slot
        call, fn = self.calls[slot], fragment.function
        call["id"] = call["id"] or (fragment.id or "")
        if fn is not None:
            call["name"] = call["name"] or (fn.name or "")
            call["arguments"] += fn.arguments or ""


def _gave_up(err: LLMError, retries: int) -> LLMError:
    message = f"{err.args[0]} (gave up after {retries} {'retry' if retries == 1 else 'retries'})"
    return LLMError(
        message, kind=err.kind, retryable=True, hint=err.hint, retry_after=err.retry_after, status=err.status
    )


def _tool_call(id_: str | None, name: str | None, arguments: str | None) -> ToolCall:
    return ToolCall(id_ or f"call_{uuid.uuid4().hex[:16]}", name or "", arguments or "{}")


class LiteLLMModel:
    """A litellm model behind the Model protocol; retries retryable failures itself."""

    def __init__(
        self,
        route: Route,
        llm: LLMConfig,
        *,
        name: str | None = None,
        context_window: int = DEFAULT_CONTEXT_WINDOW,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.route = route
        self.llm = llm
        self.name = name or route.model
        self.context_window = context_window
        self.caching = llm.prompt_caching and is_anthropic(route.model)
        self._sleep = sleep
        self._rng = rng or random.Random()

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
        try:
            return int(
                litellm_module().token_counter(
                    model=self.route.model, messages=[m.to_llm() for m in messages], tools=tools or None
                )
            )
        except Exception:  # any tokenizer trouble: fall back to the estimate
            return estimate_tokens(messages, tools)

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
            got = _Assembly()
            try:
                # a whole call, or for a stream the wait for each chunk (a long answer may take minutes)
                async with asyncio.timeout(self.llm.timeout) as deadline:
                    return await (self._stream(request, on_text, got, deadline) if stream else self._call(request))
            except TimeoutError as e:
                err = self._error(e, during_stream=bool(got.chunks))
            except LLMError as e:
                err = e
            if not err.retryable:
                raise err
            if attempt >= self.llm.max_retries:
                raise _gave_up(err, attempt) from err
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

    def _request(self, messages: list[Message], tools: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        msgs, specs = [m.to_llm() for m in messages], list(tools)
        if self.caching:
            msgs, specs = add_cache_breakpoints(msgs, specs)
        # _skip_mcp_handler: with tools, litellm 1.106's acompletion first imports its MCP gateway, which needs
        # mcp>=2.2 and fails under the mcp 1.x we pin; we never send MCP-gateway tools, so skip it.
        kw: dict[str, Any] = {
            "model": self.route.model,
            "messages": msgs,
            "timeout": self.llm.timeout,
            "num_retries": 0,
            "max_retries": 0,
            "_skip_mcp_handler": True,
        }
        optional = {
            "tools": specs or None,
            "api_base": self.route.api_base,
            "api_key": self.route.api_key,
            "temperature": self.llm.temperature,
            "max_tokens": self.llm.max_output_tokens,
        }
        kw.update({k: v for k, v in optional.items() if v is not None})
        if stream:
            kw.update(stream=True, stream_options={"include_usage": True})
        return kw

    def _error(self, exc: Exception, during_stream: bool = False) -> LLMError:
        return classify(exc, model=self.name, key_env=self.route.key_env, during_stream=during_stream)

    def _priced(self, usage: Usage) -> Usage:
        """Price a call litellm could not price from the configured per-million-token prices, when given."""
        prices = self.llm.usd_per_million
        if usage.cost_usd or prices is None:
            return usage
        usage.cost_usd = (usage.prompt_tokens * prices.input + usage.completion_tokens * prices.output) / 1e6
        return usage

    def _cost(self, response: Any) -> float:
        try:
            return float(litellm_module().completion_cost(completion_response=response, model=self.route.model) or 0.0)
        except Exception:  # no known price for this model
            return 0.0

    async def _call(self, request: dict[str, Any]) -> ModelResponse:
        try:
            response = await litellm_module().acompletion(**request)
        except Exception as e:
            raise self._error(e) from e
        choice = response.choices[0]
        message = choice.message
        calls = [_tool_call(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
        reasoning = getattr(message, "reasoning_content", None)
        usage = self._priced(read_usage(response.usage, self._cost(response)))
        return self._response(message.content or "", calls, choice.finish_reason, usage, reasoning)

    async def _stream(
        self, request: dict[str, Any], on_text: OnText | None, got: _Assembly, deadline: asyncio.Timeout
    ) -> ModelResponse:
        try:
            response = await litellm_module().acompletion(**request)
        except Exception as e:
            raise self._error(e) from e
        try:
            while True:
                try:
                    chunk = await anext(response)
                except StopAsyncIteration:
                    break
                except Exception as e:
                    raise self._error(e, during_stream=True) from e
                deadline.reschedule(asyncio.get_running_loop().time() + self.llm.timeout)
                text = got.add(chunk)
                if text and on_text is not None:
                    got.shown = True
                    await on_text(text)
        finally:
            await response.aclose()
        if got.finish is None and not any(got.text) and not got.calls:
            raise LLMError("the stream ended without an answer", kind="stream", retryable=True)
        built = self._built(got.chunks, request["messages"])
        usage = self._priced(
            read_usage(got.usage or getattr(built, "usage", None), self._cost(built) if built else 0.0)
        )
        calls = [_tool_call(c["id"], c["name"], c["arguments"]) for c in got.calls]
        return self._response("".join(got.text), calls, got.finish, usage, "".join(got.reasoning) or None)

    def _built(self, chunks: list[Any], messages: list[dict[str, Any]]) -> Any:
        try:
            return litellm_module().stream_chunk_builder(chunks, messages=messages)
        except Exception:  # only used for cost; a reply it cannot rebuild costs 0
            logger.debug("stream_chunk_builder failed", exc_info=True)
            return None

    def _response(
        self, text: str, calls: list[ToolCall], finish: str | None, usage: Usage, reasoning: str | None
    ) -> ModelResponse:
        if calls and finish in (None, "stop"):
            finish = "tool_calls"
        meta = {"reasoning": reasoning} if reasoning else {}
        message = Message("assistant", text, tool_calls=calls, meta=meta)
        return ModelResponse(message, usage, finish or "stop", self.name)


def model_from_config(cfg: AgentConfig, *, sleep: Sleep = asyncio.sleep) -> LiteLLMModel:
    """The configured model; a missing key or an unroutable id fails here, before any request."""
    route = resolve_route(cfg)
    window = context_window_for(route, cfg.context.context_window)
    return LiteLLMModel(route, cfg.llm, name=cfg.model, context_window=window, sleep=sleep)


__all__ = ["LiteLLMModel", "Route", "add_cache_breakpoints", "context_window_for", "model_from_config", "resolve_route"]
