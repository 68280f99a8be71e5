"""What a thread run may reach: the sandbox (required), the environment of its session, its approval policy."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from agent.config import AgentConfig
from agent.env import EnvSnapshot
from agent.errors import ConfigError
from agent.sandbox import LocalSandbox, Sandbox, open_sandbox
from agent.tools.base import Effect

logger = logging.getLogger(__name__)

SERVER_VARIABLES = ("GITHUB_APP_", "GITHUB_WEBHOOK_", "DATABASE_URL", "ML_INTERN_", "GITHUB_TOKEN", "GH_TOKEN")
"""Prefixes of the server's own settings, never given to a session."""
NO_SANDBOX_WARNING = (
    "⚠️ This server runs thread commands without a sandbox (sandbox.mode: none in its config): commands "
    "the agent runs can read what the server's user can read."
)


def thread_sandbox(config: AgentConfig, work: Path, hidden: Sequence[Path], notes: list[str]) -> Sandbox:
    """Bubblewrap over `work`, required; `sandbox.mode: none` in the server's config is the only way around it
    (then `notes` gets a warning for the comment). `hidden` stays invisible even under a shown folder."""
    if config.sandbox.mode == "none":
        logger.warning("thread run without a sandbox (sandbox.mode: none)")
        notes.append(NO_SANDBOX_WARNING)
        return LocalSandbox()
    try:
        sandbox = open_sandbox(config.sandbox.model_copy(update={"mode": "bubblewrap"}), workdir=work, headless=True)
    except ConfigError as e:
        raise ConfigError(
            f"thread runs need the bubblewrap sandbox, and {str(e).split('; or run')[0]}. "
            "(An operator who accepts the risk can set `sandbox: {mode: none}` in the agent config.)"
        ) from None
    sandbox.hide = list(hidden)  # type: ignore[attr-defined]
    return sandbox


def thread_policy(config: AgentConfig, sandboxed: bool) -> AgentConfig:
    """Edits, commands and network in the sandbox run without asking; spend, publish, destructive and protected
    effects are asked in the thread. Without a sandbox, commands are asked too."""
    free = {Effect.WRITE, Effect.NETWORK} | ({Effect.EXECUTE} if sandboxed else set())
    ask = [e for e in config.approvals.ask if e not in free]
    for effect in (Effect.SPEND, Effect.PUBLISH, Effect.DESTRUCTIVE, Effect.PROTECTED):
        if effect not in ask and effect not in config.approvals.deny:
            ask.append(effect)
    if not sandboxed and Effect.EXECUTE not in ask:
        ask.append(Effect.EXECUTE)
    return config.model_copy(update={"approvals": config.approvals.model_copy(update={"ask": ask})})


def session_env() -> EnvSnapshot:
    """The process environment without the server's own settings (its key, secret, database)."""
    return EnvSnapshot({k: v for k, v in os.environ.items() if not k.startswith(SERVER_VARIABLES)})


__all__ = ["NO_SANDBOX_WARNING", "SERVER_VARIABLES", "session_env", "thread_policy", "thread_sandbox"]
