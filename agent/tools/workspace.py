"""The workspace family: shell, files, search and the plan; everything an agent needs inside a checkout."""

from __future__ import annotations

from agent.tools.families import Family
from agent.tools.files import edit, read, write
from agent.tools.plan import plan
from agent.tools.search import search
from agent.tools.shell import bash

FAMILY = Family("workspace", (bash, read, write, edit, search, plan))

__all__ = ["FAMILY"]
