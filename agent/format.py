"""Plain text for people: token counts, money, durations, usage lines, stop reasons, call arguments.

Shared by every front end (the rich terminal renderer, the GitHub comment renderer); nothing here imports rich.
"""

from __future__ import annotations

import json
from typing import Any

PLAN_MARKS = {
    "completed": ("✓", "green"),
    "in_progress": ("◐", "yellow"),
}
"""Plan item status → (mark, style); anything else is pending (○)."""
STOPPED = {
    "max_iterations": "stopped: too many steps",
    "budget": "stopped: budget reached",
    "doom_loop": "stopped: repeating itself",
    "error": "failed",
    "interrupted": "interrupted",
    "suspended": "paused: waiting for an approval (resume the session to answer it)",
}
EXPLAINED = frozenset({"max_iterations", "budget", "doom_loop"})
"""Stop reasons whose `final` text says what to do next (the others are shown by their own events)."""


def tokens(n: int | float) -> str:
    """1234 → 1.2k, 1234567 → 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1000:.1f}k" if n >= 1000 else str(int(n))


RETRY_REASONS = {
    "rate_limit": "rate limited",
    "timeout": "no answer in time",
    "stream": "the answer stream broke off",
    "connection": "cannot reach the model",
    "overloaded": "the provider is overloaded",
}
"""Retryable error kind → what the one-line retry notice says (the provider's message only with -v)."""


def usd(x: float) -> str:
    """$0, $0.0123, $0.52, $12.30: cents once they matter, more digits for small runs."""
    if not x:
        return "$0"
    return f"${x:.2f}" if x >= 0.1 else f"${x:.4f}"


def seconds(s: float) -> str:
    return f"{s:.1f}s" if s < 60 else f"{int(s // 60)}m{int(s % 60):02d}s"


def usage_line(usage: dict[str, Any], context_tokens: int = 0, context_window: int = 0) -> str:
    """`12.3k in · 1.2k out · 8.0k cached · $0.0123 · context 23%` (empty parts left out)."""
    parts = [f"{tokens(usage.get('prompt_tokens', 0))} in", f"{tokens(usage.get('completion_tokens', 0))} out"]
    if usage.get("cached_tokens"):
        parts.append(f"{tokens(usage['cached_tokens'])} cached")
    parts.append(usd(float(usage.get("cost_usd") or 0.0)))
    if context_window:
        parts.append(f"context {100 * context_tokens // context_window}%")
    return " · ".join(parts)


def short_args(arguments: Any) -> str:
    """Arguments as `key=value` pairs on one line (JSON values), or the raw text when they do not parse."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return str(arguments)
    if isinstance(arguments, dict):
        return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())
    return json.dumps(arguments, ensure_ascii=False)


__all__ = [
    "EXPLAINED",
    "PLAN_MARKS",
    "RETRY_REASONS",
    "STOPPED",
    "seconds",
    "short_args",
    "tokens",
    "usage_line",
    "usd",
]
