"""The model for providers that need translation (Anthropic, Bedrock, Vertex, ...): any litellm model id.

Timeouts, retries, usage and the reply are `base.py`'s; cache breakpoints are in `caching.py`. OpenAI-compatible
servers are called directly by `openai_compat.py` instead (see `routing.py`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.llm import OnText
from agent.llm.base import RetryingModel, read_usage, tool_call
from agent.llm.caching import add_cache_breakpoints, is_anthropic
from agent.llm.routing import Route, litellm_module
from agent.llm.stream import Assembly, StreamError
from agent.llm.tokens import estimate_tokens
from agent.messages import Message, ModelResponse, Usage

logger = logging.getLogger(__name__)


class LiteLLMModel(RetryingModel):
    """A litellm model behind the Model protocol; retries retryable failures itself."""

    def __init__(self, route: Route, *args: Any, **kw: Any) -> None:
        super().__init__(route, *args, **kw)
        self.caching = self.llm.prompt_caching and is_anthropic(route.model)
        litellm_module()  # seconds of imports: here, not inside the first call's timeout

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
        try:
            return int(
                litellm_module().token_counter(
                    model=self.route.model, messages=[m.to_llm() for m in messages], tools=tools or None
                )
            )
        except Exception:  # any tokenizer trouble: fall back to the estimate
            return estimate_tokens(messages, tools)

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
        calls = [tool_call(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
        reasoning = getattr(message, "reasoning_content", None)
        usage = self._priced(read_usage(response.usage, self._cost(response)))
        return self._response(message.content or "", calls, choice.finish_reason, usage, reasoning)

    async def _stream(
        self, request: dict[str, Any], on_text: OnText | None, got: Assembly, deadline: asyncio.Timeout
    ) -> ModelResponse:
        try:
            response = await litellm_module().acompletion(**request)
        except Exception as e:
            raise self._error(e) from e
        chunks: list[Any] = []
        try:
            while True:
                try:
                    chunk = await anext(response)
                except StopAsyncIteration:
                    break
                except Exception as e:
                    raise self._error(e, during_stream=True) from e
                deadline.reschedule(asyncio.get_running_loop().time() + self.llm.timeout)  # the wait is per chunk
                chunks.append(chunk)
                try:
                    await self._take(got, chunk, on_text)
                except StreamError as e:
                    raise self._error(e, during_stream=True) from e
        finally:
            await response.aclose()
        return self._reply(got, self._priced(self._stream_usage(got, chunks, request["messages"])))

    def _stream_usage(self, got: Assembly, chunks: list[Any], messages: list[dict[str, Any]]) -> Usage:
        """The reported usage priced per token; without one, litellm rebuilds the reply to count and price it."""
        if got.usage is not None:
            usage = read_usage(got.usage)
            try:
                prompt_usd, completion_usd = litellm_module().cost_per_token(
                    model=self.route.model,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                    usage_object=got.usage,
                )
                usage.cost_usd = float(prompt_usd + completion_usd)
            except Exception:  # no known price for this model
                usage.cost_usd = 0.0
            return usage
        if got.empty:
            return Usage()
        built = self._built(chunks, messages)
        return read_usage(getattr(built, "usage", None), self._cost(built) if built else 0.0)

    def _built(self, chunks: list[Any], messages: list[dict[str, Any]]) -> Any:
        try:
            return litellm_module().stream_chunk_builder(chunks, messages=messages)
        except Exception:  # only used for usage and cost; a reply it cannot rebuild costs 0
            logger.debug("stream_chunk_builder failed", exc_info=True)
            return None


__all__ = ["LiteLLMModel"]
