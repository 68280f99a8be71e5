"""The exception table: what litellm, openai, httpx and aiohttp raise, and what the agent makes of it."""

from __future__ import annotations

import email.utils
from collections.abc import Callable

import aiohttp
import httpx
import litellm
import openai
import pytest
from litellm.exceptions import MidStreamFallbackError

from agent.errors import AuthError, ContextOverflowError, LLMError
from agent.llm.classify import RETRY_AFTER_CAP, classify, key_env_for, parse_retry_after

M, P = "openai/gpt-4o-mini", "openai"
REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")


def response(status: int, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, request=REQUEST)


CASES: list[tuple[str, Callable[[], BaseException], str, bool]] = [
    ("rate limit", lambda: litellm.RateLimitError("slow down", P, M, response=response(429)), "rate_limit", True),
    ("503", lambda: litellm.ServiceUnavailableError("down", P, M, response=response(503)), "overloaded", True),
    ("500", lambda: litellm.InternalServerError("oops", P, M, response=response(500)), "overloaded", True),
    ("502", lambda: litellm.BadGatewayError("gateway", P, M, response=response(502)), "overloaded", True),
    ("anthropic 529", lambda: litellm.APIError(529, "Overloaded", "anthropic", "anthropic/claude"), "overloaded", True),
    ("overloaded text", lambda: RuntimeError("upstream model is overloaded"), "overloaded", True),
    ("timeout", lambda: litellm.Timeout("timed out", M, P), "timeout", True),
    ("httpx timeout", lambda: httpx.ReadTimeout("read timed out"), "timeout", True),
    ("asyncio timeout", lambda: TimeoutError(), "timeout", True),
    ("aiohttp timeout", lambda: aiohttp.ServerTimeoutError("timeout"), "timeout", True),
    ("connection", lambda: litellm.APIConnectionError("refused", P, M), "connection", True),
    ("httpx connect", lambda: httpx.ConnectError("refused"), "connection", True),
    ("aiohttp disconnect", lambda: aiohttp.ServerDisconnectedError(), "connection", True),
    (
        "openai connection error mapped to 500",
        lambda: litellm.InternalServerError("Connection error.", P, M),
        "connection",
        True,
    ),
    ("mid-stream", lambda: MidStreamFallbackError("broke", M, P), "stream", True),
    ("aiohttp payload", lambda: aiohttp.ClientPayloadError("Response payload is not completed"), "stream", True),
    ("not found", lambda: litellm.NotFoundError("no such model", M, P, response=response(404)), "not_found", False),
    (
        "unknown provider",
        lambda: litellm.BadRequestError("LLM Provider NOT provided. Pass in the LLM provider", M, None),
        "not_found",
        False,
    ),
    ("bad request", lambda: litellm.BadRequestError("temperature must be <= 2", M, P), "bad_request", False),
    (
        "unprocessable",
        lambda: litellm.UnprocessableEntityError("bad schema", M, P, response=response(422)),
        "bad_request",
        False,
    ),
    ("payment", lambda: litellm.BadRequestError("out of credits", M, P, response=response(402)), "bad_request", False),
    ("anything else", lambda: ValueError("surprise"), "unknown", False),
]


@pytest.mark.parametrize(("make", "kind", "retryable"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_table(make: Callable[[], BaseException], kind: str, retryable: bool) -> None:
    err = classify(make(), model=M)
    assert type(err) is LLMError
    assert (err.kind, err.retryable) == (kind, retryable)
    assert err.hint


@pytest.mark.parametrize(
    "make",
    [
        lambda: litellm.ContextWindowExceededError("This model's maximum context length is 8192 tokens", M, P),
        lambda: litellm.BadRequestError("prompt is too long: 210000 tokens > 200000 maximum", "anthropic/claude", P),
        lambda: litellm.BadRequestError(
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. "
            "Please reduce the length of the messages",
            M,
            P,
        ),
        lambda: litellm.BadRequestError("context_length_exceeded", M, P),
    ],
    ids=["litellm class", "anthropic wording", "tgi wording", "openai code"],
)
def test_context_overflow(make: Callable[[], BaseException]) -> None:
    err = classify(make(), model=M)
    assert isinstance(err, ContextOverflowError)
    assert err.kind == "context_overflow" and not err.retryable


@pytest.mark.parametrize(
    ("make", "model", "key_env", "variable"),
    [
        (
            lambda: litellm.AuthenticationError("bad key", "huggingface", "x"),
            "huggingface/moonshotai/Kimi-K2.6",
            None,
            "HF_TOKEN",
        ),
        (
            lambda: litellm.AuthenticationError("bad key", "anthropic", "x"),
            "anthropic/claude-sonnet-4-5",
            None,
            "ANTHROPIC_API_KEY",
        ),
        (lambda: litellm.PermissionDeniedError("forbidden", P, M, response=response(403)), M, None, "OPENAI_API_KEY"),
        (
            lambda: litellm.BadRequestError("Incorrect API key", M, P, response=response(401)),
            "my-local-model",
            "MY_SERVER_KEY",
            "MY_SERVER_KEY",
        ),
    ],
    ids=["hf", "anthropic", "403", "401 as bad request, configured variable"],
)
def test_auth_errors_name_the_variable(
    make: Callable[[], BaseException], model: str, key_env: str | None, variable: str
) -> None:
    err = classify(make(), model=model, key_env=key_env)
    assert isinstance(err, AuthError) and not err.retryable
    assert f"set {variable}" in str(err)


@pytest.mark.parametrize(
    "make",
    [
        lambda: httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        lambda: litellm.InternalServerError("upstream reset", P, M),
        lambda: ValueError("malformed chunk"),
    ],
    ids=["httpx", "litellm 500", "unknown"],
)
def test_failures_while_reading_a_stream_are_stream_errors(make: Callable[[], BaseException]) -> None:
    err = classify(make(), model=M, during_stream=True)
    assert (err.kind, err.retryable) == ("stream", True)


def test_a_rate_limit_mid_stream_stays_a_rate_limit() -> None:
    err = classify(litellm.RateLimitError("slow", P, M, response=response(429)), during_stream=True)
    assert err.kind == "rate_limit"


def test_retry_after_seconds_from_the_response_headers() -> None:
    err = classify(litellm.RateLimitError("slow", P, M, response=response(429, **{"Retry-After": "7"})))
    assert err.retry_after == 7.0


def test_retry_after_ms_wins_when_both_are_sent() -> None:
    exc = litellm.RateLimitError("slow", P, M, response=response(429, **{"retry-after-ms": "1500", "retry-after": "2"}))
    assert classify(exc).retry_after == 1.5


def test_retry_after_from_the_wrapped_provider_error() -> None:
    try:
        try:
            raise openai.RateLimitError("slow", response=response(429, **{"Retry-After": "4"}), body=None)
        except openai.RateLimitError as inner:
            raise litellm.RateLimitError("slow", P, M) from inner
    except litellm.RateLimitError as outer:
        assert not outer.response.headers.get("retry-after")
        assert classify(outer).retry_after == 4.0


def test_no_retry_after_when_not_retryable_or_absent() -> None:
    assert classify(litellm.RateLimitError("slow", P, M, response=response(429))).retry_after is None
    assert (
        classify(litellm.BadRequestError("bad", M, P, response=response(400, **{"Retry-After": "3"}))).retry_after
        is None
    )


def test_parse_retry_after_http_date_and_cap() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("86400") == RETRY_AFTER_CAP
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("soon") is None


def test_messages_lose_litellms_prefixes() -> None:
    exc = litellm.InternalServerError("OpenAIException - the real reason", P, M)
    assert str(classify(exc)).startswith("the real reason")
    assert "litellm." not in str(classify(litellm.Timeout("Request timed out.", M, P)))


def test_agent_errors_pass_through() -> None:
    original = LLMError("already classified", kind="stream", retryable=True)
    assert classify(original) is original


@pytest.mark.parametrize(
    ("model", "variable"),
    [
        ("huggingface/Qwen/Qwen3-8B", "HF_TOKEN"),
        ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
        ("gpt-5", "OPENAI_API_KEY"),
        ("o3-mini", "OPENAI_API_KEY"),
        ("openrouter/meta-llama/llama-3-70b", "OPENROUTER_API_KEY"),
        ("gemini/gemini-2.5-pro", "GEMINI_API_KEY"),
        ("ollama/qwen3", None),
        ("my-model", None),
    ],
)
def test_key_env_for(model: str, variable: str | None) -> None:
    assert key_env_for(model) == variable


def test_a_key_echoed_by_the_provider_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-proj-" + "A1b2" * 12
    monkeypatch.setenv("OPENAI_API_KEY", key)
    err = classify(Exception(f"Incorrect API key provided: {key}. You can find your API key at ..."), model="openai/x")
    assert key not in str(err) and "[REDACTED]" in str(err)
