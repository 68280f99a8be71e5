"""The built-in workspace tools, by name, as selected by the config's `tools` list."""

from __future__ import annotations

import logging

from agent.errors import ConfigError
from agent.tools.base import Tool
from agent.tools.files import edit, read, write
from agent.tools.plan import plan
from agent.tools.search import search
from agent.tools.shell import bash

logger = logging.getLogger(__name__)

BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (bash, read, write, edit, search, plan)}


def workspace_tools(names: list[str]) -> list[Tool]:
    """The built-in tools named in `names`, in that order (repeats ignored)."""
    unknown = [n for n in names if n not in BUILTIN_TOOLS]
    if unknown:
        raise ConfigError(f"unknown tool {unknown[0]!r} in config `tools`; available: {', '.join(BUILTIN_TOOLS)}")
    return [BUILTIN_TOOLS[n] for n in dict.fromkeys(names)]


__all__ = ["BUILTIN_TOOLS", "workspace_tools"]
