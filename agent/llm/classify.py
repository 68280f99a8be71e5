"""Map exceptions from litellm, openai, httpx and aiohttp onto agent.errors, with a retry decision and a hint."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.errors import AuthError, ContextOverflowError, LLMError

if TYPE_CHECKING:
    from agent.redact import Redactor

RETRY_AFTER_CAP = 300.0
"""Longest server-requested wait we honour, in seconds."""

_CONTEXT = re.compile(
    r"context[_ ]length|maximum context|context window|prompt is too long|input is too long|too many (input )?tokens"
    r"|reduce the length of the (messages|prompt)|exceeds? the (model's )?(max(imum)? )?(context|input)",
    re.IGNORECASE,
)
_PROVIDER_MISSING = re.compile(r"LLM Provider NOT provided", re.IGNORECASE)
_NOISE = re.compile(r"^\s*(?:litellm\.\w+:\s*|\w*(?:Error|Exception)\s*(?:-|:)\s*)")

_UNKNOWN_HINT = "an unexpected failure in the model client; the log has the details"

KEY_ENV = {
    "huggingface": "HF_TOKEN",
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "text-completion-openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "azure": "AZURE_API_KEY",
    "bedrock": "AWS_ACCESS_KEY_ID",
    "vertex_ai": "GOOGLE_APPLICATION_CREDENTIALS",
}
"""The environment variable each provider's key usually lives in."""


def key_env_for(model: str) -> str | None:
    """The variable that holds the API key for a litellm model id, if we know it."""
    provider = model.split("/", 1)[0] if "/" in model else ""
    if provider in KEY_ENV:
        return KEY_ENV[provider]
    if "claude" in model.lower():
        return "ANTHROPIC_API_KEY"
    if re.match(r"(gpt-|o\d|chatgpt)", model):
        return "OPENAI_API_KEY"
    return None


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the classifier looks at: class names along the MRO, the HTTP status and the message."""

    names: frozenset[str]
    status: int | None
    message: str

    def named(self, *names: str) -> bool:
        return not self.names.isdisjoint(names)


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    retryable: bool
    matches: Callable[[_Facts], bool]
    hint: str


_RULES: tuple[_Rule, ...] = (
    _Rule(
        "context_overflow",
        False,
        lambda f: (
            f.named("ContextWindowExceededError")
            or ((f.status in (None, 400, 413, 422) or f.named("BadRequestError")) and bool(_CONTEXT.search(f.message)))
        ),
        "the conversation no longer fits the model's context window; compact it",
    ),
    _Rule(
        "auth",
        False,
        lambda f: f.named("AuthenticationError", "PermissionDeniedError") or f.status in (401, 403),
        "the provider rejected the credentials",
    ),
    _Rule(
        "bad_request",
        False,
        lambda f: f.status == 402 or f.named("PaymentRequiredError"),
        "the provider wants payment: check the account's credits or billing",
    ),
    _Rule(
        "rate_limit",
        True,
        lambda f: f.named("RateLimitError") or f.status == 429,
        "the provider is rate limiting; wait a little or lower the request rate",
    ),
    _Rule(
        "timeout",
        True,
        lambda f: (
            f.named("Timeout", "APITimeoutError", "TimeoutException", "ServerTimeoutError", "TimeoutError")
            or f.status == 408
        ),
        "no answer within llm.timeout; raise it if the model is slow",
    ),
    _Rule(
        "stream",
        True,
        lambda f: f.named("MidStreamFallbackError", "ClientPayloadError"),
        "the response stream broke off",
    ),
    _Rule(
        "not_found",
        False,
        lambda f: (
            f.named("NotFoundError", "LiteLLMUnknownProvider")
            or f.status == 404
            or bool(_PROVIDER_MISSING.search(f.message))
        ),
        "the model id is probably wrong: check its spelling and provider prefix (e.g. huggingface/<org>/<model>)",
    ),
    _Rule(
        "connection",
        True,
        lambda f: (
            f.named(
                "APIConnectionError",
                "ConnectError",
                "ClientConnectionError",
                "ServerDisconnectedError",
                "RemoteProtocolError",
                "TransportError",
                "ConnectionError",
            )
            or "connection error" in f.message.lower()
        ),
        "could not reach the model endpoint; check base_url and the network",
    ),
    _Rule(
        "overloaded",
        True,
        lambda f: (
            f.named("ServiceUnavailableError", "InternalServerError", "BadGatewayError")
            or (f.status is not None and f.status >= 500)
            or "overloaded" in f.message.lower()
        ),
        "the provider is overloaded or failing; try again later or pick another provider",
    ),
    _Rule(
        "bad_request",
        False,
        lambda f: (
            f.named("BadRequestError", "UnprocessableEntityError", "UnsupportedParamsError")
            or (f.status is not None and 400 <= f.status < 500)
        ),
        "the provider rejected the request",
    ),
)


def classify(
    exc: BaseException,
    *,
    model: str = "",
    key_env: str | None = None,
    during_stream: bool = False,
    redactor: Redactor | None = None,
) -> LLMError:
    """The agent error for a failed model call.

    Args:
        exc: what litellm (or the HTTP stack under it) raised.
        model: the model id, used to name the key variable in auth hints.
        key_env: the variable the key came from, when the caller knows it.
        during_stream: the failure happened while reading a stream that had already started.
        redactor: the session's redactor (secret values and shapes); token shapes only when None.
    """
    if isinstance(exc, LLMError):
        return exc
    facts = _facts(exc)
    rule = next((r for r in _RULES if r.matches(facts)), None)
    kind, retryable, hint = (rule.kind, rule.retryable, rule.hint) if rule else ("unknown", False, _UNKNOWN_HINT)
    if during_stream and kind in ("connection", "overloaded", "unknown"):
        kind, retryable, hint = "stream", True, "the response stream broke off"
    detail = _clean(facts.message, redactor) or type(exc).__name__
    if kind == "context_overflow":
        return ContextOverflowError(detail, hint=hint, status=facts.status)
    if kind == "auth":
        env = key_env or key_env_for(model)
        hint = f"set {env} to a valid key" if env else "check the API key for this provider"
        return AuthError(
            f"{model or 'the provider'} rejected the credentials: {detail}", hint=hint, status=facts.status
        )
    retry_after = retry_after_seconds(exc) if retryable else None
    return LLMError(detail, kind=kind, retryable=retryable, hint=hint, retry_after=retry_after, status=facts.status)


def _facts(exc: BaseException) -> _Facts:
    names = frozenset(cls.__name__ for cls in type(exc).__mro__)
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if not isinstance(status, int):
        status = getattr(getattr(exc, "response", None), "status_code", None)
    body = getattr(exc, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message:
        message = str(getattr(exc, "message", "") or exc)
    return _Facts(names, status if isinstance(status, int) else None, message)


def _clean(message: str, redactor: Redactor | None = None) -> str:
    """Drop the `litellm.XError: XError: OpenAIException - ` prefixes litellm stacks up; redact what a provider
    echoed (some repeat the key they rejected)."""
    from agent.redact import Redactor

    previous = None
    while previous != message:
        previous, message = message, _NOISE.sub("", message, count=1)
    message = (redactor or Redactor()).redact(" ".join(message.split()))
    return message[:600] + " …" if len(message) > 600 else message


def _header_sources(exc: BaseException) -> Iterator[Mapping[str, Any]]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for headers in (
            getattr(current, "litellm_response_headers", None),
            getattr(current, "headers", None),
            getattr(getattr(current, "response", None), "headers", None),
        ):
            if headers:
                yield headers
        current = current.__cause__ or current.__context__


def retry_after_seconds(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (Retry-After as seconds or an HTTP date, or retry-after-ms), capped."""
    for headers in _header_sources(exc):
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        if "retry-after-ms" in lowered:
            value = _number(lowered["retry-after-ms"])
            if value is not None:
                return min(max(value / 1000, 0.0), RETRY_AFTER_CAP)
        if "retry-after" in lowered:
            value = parse_retry_after(lowered["retry-after"], now=now)
            if value is not None:
                return value
    return None


def parse_retry_after(value: str, *, now: float | None = None) -> float | None:
    """A Retry-After header value (delta seconds or HTTP date) as seconds from now, between 0 and the cap."""
    seconds = _number(value)
    if seconds is None:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def _number(value: str) -> float | None:
    try:
        return float(value.strip())
    except ValueError:
        return None


__all__ = ["KEY_ENV", "RETRY_AFTER_CAP", "classify", "key_env_for", "parse_retry_after", "retry_after_seconds"]
