"""The direct client for OpenAI-compatible servers: the Hugging Face router, any `base_url`, OpenAI itself.

One httpx request per attempt, the body encoded once per call, the reply read as server-sent events (or JSON)
in time linear in its size. The retry loop, timeouts and error kinds are `base.py`'s, shared with litellm, so
the user sees the same behaviour and errors on both paths. Nothing here imports litellm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import ssl
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from agent.errors import LLMError
from agent.llm import OnText, prices
from agent.llm.base import RetryingModel, read_usage, tool_call
from agent.llm.caching import add_cache_breakpoints, is_anthropic
from agent.llm.stream import Assembly, SSEDecoder, StreamError, stream_error
from agent.llm.tokens import estimate_tokens
from agent.messages import Message, ModelResponse, Usage

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""A reply larger than this is refused (a runaway or hostile server), streamed or not."""
MAX_ERROR_BYTES = 64 * 1024
"""Of an error response, only this much is read."""
_REASONING_MODELS = re.compile(r"^(o\d|gpt-5)")
"""OpenAI models that take no temperature (what litellm's drop_params drops for them)."""
_BAD_RESPONSE_HINT = "the endpoint does not answer like an OpenAI-compatible server; check base_url and the model id"


class APIStatusError(Exception):
    """An HTTP error answer, with what `classify` reads: status, the error object's message, headers."""

    def __init__(self, status: int, message: str, headers: httpx.Headers) -> None:
        super().__init__(message)
        self.status_code = status
        self.headers = headers


def _error_message(status: int, raw: bytes) -> str:
    """The message of an error body: OpenAI's {"error": {"message"}}, {"error": "..."}, {"message"}, {"detail"}
    or the text itself."""
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        found = (
            (error.get("message") if isinstance(error, dict) else error) or data.get("message") or data.get("detail")
        )
        if found:
            return str(found)
    text = raw.decode("utf-8", errors="replace").strip()
    return text[:600] or f"HTTP {status}"


class MessageEncoder:
    """The JSON of each history message, kept between calls, so a step encodes only the messages that are new.

    A message is re-encoded when it is not the same object as before or any of its strings changed (the strings
    are kept and compared: unchanged ones are the same objects, so the check costs nothing).
    """

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Message, tuple[Any, ...], bytes]] = {}

    def encode(self, messages: list[Message]) -> bytes:
        """`[...]`: the messages as the request's JSON array."""
        cache, kept, parts = self._cache, {}, []
        for m in messages:
            key = (m.role, m.content, m.tool_call_id, m.name, *((c.id, c.name, c.arguments) for c in m.tool_calls))
            hit = cache.get(id(m))
            if hit is None or hit[0] is not m or hit[1] != key:
                hit = (m, key, json.dumps(m.to_llm(), separators=(",", ":")).encode())
            kept[id(m)] = hit
            parts.append(hit[2])
        self._cache = kept  # only what this history still holds
        return b"[" + b",".join(parts) + b"]"


class OpenAICompatModel(RetryingModel):
    """A model behind an OpenAI-compatible `/chat/completions` endpoint, called over one pooled httpx client."""

    def __init__(self, *args: Any, transport: httpx.AsyncBaseTransport | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.caching = self.llm.prompt_caching and is_anthropic(self.route.model)
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._openai_itself = urlsplit(self.route.api_base or "").hostname == "api.openai.com"
        self._encoder = MessageEncoder()

    def count_tokens(self, messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
        """About four characters a token (no tokenizer is loaded; the loop corrects with reported usage)."""
        return estimate_tokens(messages, tools)

    async def aclose(self) -> None:
        """Close the connection pool."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _http(self) -> httpx.AsyncClient:
        """The pooled client of the running event loop (a client cannot move between loops)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            headers = {"User-Agent": "ml-intern", "Content-Type": "application/json"}
            if self.route.api_key:
                headers["Authorization"] = f"Bearer {self.route.api_key}"
            base = (self.route.api_base or "").rstrip("/") + "/"
            # Plain HTTP never does a TLS handshake (redirects are not followed): a context that trusts nothing
            # spares loading the CA bundle (~0.2 s at start-up), and would fail closed if TLS ever happened.
            verify: ssl.SSLContext | bool = (
                ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT) if base.startswith("http:") else True
            )
            self._client = httpx.AsyncClient(
                base_url=base,
                headers=headers,
                timeout=httpx.Timeout(self.llm.timeout),
                transport=self._transport,
                verify=verify,
            )
            self._loop = loop
        return self._client

    def _request(self, messages: list[Message], tools: list[dict[str, Any]], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.route.wire_model}
        if tools:
            body["tools"] = tools
        if self.llm.temperature is not None and not (
            self._openai_itself and _REASONING_MODELS.match(self.route.wire_model)
        ):
            body["temperature"] = self.llm.temperature
        if self.llm.max_output_tokens is not None:
            body["max_completion_tokens" if self._openai_itself else "max_tokens"] = self.llm.max_output_tokens
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        if self.caching:  # breakpoints move every step: encode it all
            msgs, specs = add_cache_breakpoints([m.to_llm() for m in messages], tools)
            whole = {**body, "messages": msgs, **({"tools": specs} if specs else {})}
            return {"content": json.dumps(whole, separators=(",", ":")).encode(), "stream": stream}
        rest = json.dumps(body, separators=(",", ":")).encode()  # {"model":...}: never empty
        return {"content": b'{"messages":' + self._encoder.encode(messages) + b"," + rest[1:], "stream": stream}

    @contextlib.asynccontextmanager
    async def _send(self, request: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        """POST the request; yields a 2xx response whose body is still to be read, raises LLMError otherwise."""
        headers = {"Accept": "text/event-stream"} if request["stream"] else {}
        try:
            async with self._http().stream(
                "POST", "chat/completions", content=request["content"], headers=headers
            ) as r:
                if 300 <= r.status_code < 400:  # never followed: the key would go where the config did not say
                    where = r.headers.get("location", "?")[:200]
                    raise LLMError(
                        f"the endpoint answered HTTP {r.status_code}, a redirect to {where}",
                        kind="bad_request",
                        status=r.status_code,
                        hint="set base_url to the address the server redirects to (redirects are not followed)",
                    )
                if r.status_code >= 400:
                    raw = await _read(r, MAX_ERROR_BYTES, refuse=False)
                    raise self._error(APIStatusError(r.status_code, _error_message(r.status_code, raw), r.headers))
                yield r
        except httpx.HTTPError as e:  # the stream's own reads are classified in _stream
            raise self._error(e) from e

    async def _call(self, request: dict[str, Any]) -> ModelResponse:
        async with self._send(request) as response:
            raw = await _read(response, MAX_RESPONSE_BYTES)
        return self._parsed(raw)

    async def _stream(
        self, request: dict[str, Any], on_text: OnText | None, got: Assembly, deadline: asyncio.Timeout
    ) -> ModelResponse:
        async with self._send(request) as response:
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                return self._parsed(await _read(response, MAX_RESPONSE_BYTES))  # a server that does not stream
            # from here httpx's read timeout (llm.timeout) bounds each silence, however long the answer runs
            deadline.reschedule(None)
            decoder, size, done = SSEDecoder(), 0, False
            try:
                # read to the end of the body even after [DONE]: a response left unread closes the connection,
                # and the next step would pay a new one (a TLS handshake, for a remote provider)
                async for raw in response.aiter_bytes():
                    size += len(raw)
                    if size > MAX_RESPONSE_BYTES:
                        raise _too_large()
                    for data in decoder.feed(raw):
                        done = done or data.strip() == "[DONE]"
                        if not done:
                            await self._take(got, _chunk(data), on_text)
                for data in decoder.close():
                    if not done and data.strip() != "[DONE]":
                        await self._take(got, _chunk(data), on_text)
            except (httpx.HTTPError, StreamError) as e:
                raise self._error(e, during_stream=got.started) from e
        return self._finished(got)

    def _finished(self, got: Assembly) -> ModelResponse:
        return self._reply(got, self._usage(got.usage))

    def _usage(self, reported: Any) -> Usage:
        usage = read_usage(reported)
        usage.cost_usd = prices.cost(self.route.model, usage)
        return self._priced(usage)

    def _parsed(self, raw: bytes) -> ModelResponse:
        """A whole `chat.completion` body."""
        try:
            data = json.loads(raw)
        except ValueError:
            raise _bad_response(f"the answer is not JSON: {raw[:200]!r}") from None
        if isinstance(data, dict) and data.get("error"):
            raise self._error(stream_error(data["error"]))
        choices = data.get("choices") if isinstance(data, dict) else None
        if not choices or not isinstance(choices, list):
            raise _bad_response(f"the answer has no choices: {raw[:200]!r}")
        try:
            message = choices[0].get("message") or {}
            calls = []
            for c in message.get("tool_calls") or []:
                fn = c.get("function") or {}
                arguments = fn.get("arguments")
                if arguments is not None and not isinstance(arguments, str):  # a few servers send the object itself
                    arguments = json.dumps(arguments)
                calls.append(tool_call(c.get("id"), fn.get("name"), arguments))
            text, reasoning = (
                _text(message.get("content")),
                message.get("reasoning_content") or message.get("reasoning"),
            )
            usage = self._usage(data.get("usage"))
            return self._response(text, calls, choices[0].get("finish_reason"), usage, reasoning)
        except (AttributeError, TypeError) as e:
            raise _bad_response(f"the answer is not a chat completion: {raw[:200]!r}") from e


async def _read(response: httpx.Response, limit: int, *, refuse: bool = True) -> bytes:
    """The body, up to `limit` bytes: refused beyond it (`refuse`), or cut there."""
    parts, size = [], 0
    async for raw in response.aiter_bytes():
        size += len(raw)
        if size > limit:
            if refuse:
                raise _too_large()
            parts.append(raw[: limit - size + len(raw)])
            break
        parts.append(raw)
    return b"".join(parts)


def _text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of content parts."""
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _chunk(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise StreamError(f"the stream sent an event that is not JSON: {data[:200]!r}", None) from None


def _too_large() -> LLMError:
    return LLMError(
        f"the answer is larger than {MAX_RESPONSE_BYTES // 2**20} MiB; refused",
        kind="bad_request",
        hint="lower llm.max_output_tokens, or check the server",
    )


def _bad_response(message: str) -> LLMError:
    return LLMError(message, kind="unknown", hint=_BAD_RESPONSE_HINT)


__all__ = ["MAX_RESPONSE_BYTES", "APIStatusError", "OpenAICompatModel"]
