"""Prompt caching: Anthropic cache breakpoints, so a long run does not pay for its whole history every step."""

from __future__ import annotations

from typing import Any


def is_anthropic(model: str) -> bool:
    """Whether cache_control breakpoints apply (Anthropic models, directly or via bedrock/vertex/openrouter)."""
    lowered = model.lower()
    return lowered.startswith("anthropic/") or "claude" in lowered


def add_cache_breakpoints(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Copies with ephemeral cache breakpoints on the system message, the last message (with text) before the
    newest user/tool message, and the last tool spec. The inputs are not modified."""
    out = [dict(m) for m in messages]
    system = next((i for i, m in enumerate(out) if m.get("role") == "system" and m.get("content")), None)
    targets = [] if system is None else [system]
    newest = max((i for i, m in enumerate(out) if m.get("role") in ("user", "tool")), default=None)
    if newest is not None:
        before = next((i for i in range(newest - 1, -1, -1) if out[i].get("content")), None)
        if before is not None and before != system:
            targets.append(before)
    for i in targets:
        out[i]["content"] = _marked(out[i]["content"])
    specs = [dict(t) for t in tools]
    if specs:
        specs[-1]["cache_control"] = {"type": "ephemeral"}
    return out, specs


def _marked(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": content}] if isinstance(content, str) else [dict(b) for b in content]
    )
    blocks[-1]["cache_control"] = {"type": "ephemeral"}
    return blocks
