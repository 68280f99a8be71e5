"""Token counts without a tokenizer: what the loop and the model clients use to size a prompt."""

from __future__ import annotations

import json
from typing import Any

from agent.messages import Message


def estimate_tokens(messages: list[Message], tools: list[dict[str, Any]] | None = None) -> int:
    """A provider-free estimate: about four characters a token."""
    chars = sum(len(m.content) + sum(len(c.arguments) + len(c.name) for c in m.tool_calls) + 8 for m in messages)
    if tools:
        chars += len(json.dumps(tools))
    return chars // 4 + 1


__all__ = ["estimate_tokens"]
