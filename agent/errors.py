"""Every error the agent raises, split by who must act.

AgentError                    a run failed; the loop reports it as an `error` event
├── ConfigError               the operator's mistake: bad config file, flag or model id
├── LLMError                  the model call failed (carries `kind`, `retryable`, `hint`)
│   ├── ContextOverflowError  the prompt no longer fits: compact, then retry
│   └── AuthError             missing or wrong credentials: stop and name the variable
├── CompactionError           the history could not be brought under the limit
└── SessionError              a trace cannot be read or resumed
ToolError                     a tool failed in a way the model should see and handle
"""

from __future__ import annotations


class AgentError(Exception):
    """A run failed."""


class ConfigError(AgentError):
    """The configuration, a flag or a model id is wrong; the message says which and how to fix it."""


class LLMError(AgentError):
    """A model call failed.

    `kind` is one of: rate_limit, overloaded, timeout, connection, context_overflow, auth,
    bad_request, not_found, stream, unknown.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "unknown",
        retryable: bool = False,
        hint: str = "",
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.hint = hint
        self.retry_after = retry_after
        self.status = status

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class ContextOverflowError(LLMError):
    """The request is larger than the model's context window."""

    def __init__(self, message: str, **kw: object) -> None:
        kw.setdefault("kind", "context_overflow")
        super().__init__(message, **kw)  # type: ignore[arg-type]


class AuthError(LLMError):
    """The provider rejected the credentials."""

    def __init__(self, message: str, **kw: object) -> None:
        kw.setdefault("kind", "auth")
        super().__init__(message, **kw)  # type: ignore[arg-type]


class CompactionError(AgentError):
    """Compaction could not bring the history under the context limit."""


class SessionError(AgentError):
    """A session trace is missing, corrupt or cannot be resumed."""


class ToolError(Exception):
    """A tool failed; the message becomes the observation the model sees."""
