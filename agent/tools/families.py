"""Tool families by name: a family is one module declaring `FAMILY`, imported only when a session selects it.

The config's `tools` list names families (`workspace`), single tools of a family (`workspace.read`), or bare tool
names (`read`), looked up across the families. Adding a family is one module plus one line in `FAMILY_MODULES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.errors import ConfigError
from agent.tools.base import Tool
from agent.tools.deps import Dependency

FAMILY_MODULES: dict[str, str] = {
    "workspace": "agent.tools.workspace",
    "hub": "agent.tools.hub",
    "datasets": "agent.tools.datasets",
    "papers": "agent.tools.papers",
    "docs": "agent.tools.docs",
    "github": "agent.tools.github",
}
"""Family name → the module that declares it (as `FAMILY`)."""


@dataclass(frozen=True)
class Family:
    """A set of tools that belong together, and the clients they need (built by the session, see `Deps`)."""

    name: str
    tools: tuple[Tool, ...]
    needs: tuple[type[Dependency], ...] = ()

    def tool(self, name: str) -> Tool | None:
        return next((t for t in self.tools if t.name == name), None)

    def only(self, names: Iterable[str]) -> Family:
        """This family with just the named tools."""
        wanted = list(dict.fromkeys(names))
        missing = [n for n in wanted if self.tool(n) is None]
        if missing:
            raise ConfigError(
                f"family {self.name!r} has no tool {missing[0]!r}; its tools: {', '.join(t.name for t in self.tools)}"
            )
        return Family(self.name, tuple(t for t in self.tools if t.name in wanted), self.needs)


def load_family(name: str) -> Family:
    """Import the module of family `name` and return its `FAMILY`."""
    module = FAMILY_MODULES.get(name)
    if module is None:
        raise ConfigError(f"unknown tool family {name!r} in config `tools`; families: {', '.join(FAMILY_MODULES)}")
    family = importlib.import_module(module).FAMILY
    if not isinstance(family, Family):  # pragma: no cover - a programming error in a family module
        raise TypeError(f"{module}.FAMILY is not a Family")
    return family


def select(entries: Sequence[str]) -> list[Family]:
    """The families (narrowed to the named tools) that the config's `tools` entries select, in order."""
    order: list[str] = []
    whole: set[str] = set()
    picked: dict[str, list[str]] = {}
    for entry in entries:
        family, tool = _locate(entry)
        if family not in order:
            order.append(family)
        if tool is None:
            whole.add(family)
        else:
            picked.setdefault(family, []).append(tool)
    return [load_family(n) if n in whole else load_family(n).only(picked[n]) for n in order]


def _locate(entry: str) -> tuple[str, str | None]:
    """`family`, `family.tool`, or a bare tool name → (family, tool or None)."""
    if entry in FAMILY_MODULES:
        return entry, None
    family, dot, tool = entry.partition(".")
    if dot:
        load_family(family)  # an unknown family is named as such
        return family, tool
    for name in FAMILY_MODULES:  # a bare tool name: look it up (imports the families, at session start only)
        if load_family(name).tool(entry) is not None:
            return name, entry
    raise ConfigError(
        f"unknown tool {entry!r} in config `tools`; name a family ({', '.join(FAMILY_MODULES)}), "
        "a tool of one (`family.tool`), or a tool's own name"
    )


__all__ = ["FAMILY_MODULES", "Family", "load_family", "select"]
