"""YAML for config files and `-c` values that cannot blow up: aliases are checked before anything is built.

PyYAML builds an alias as a reference, so an alias bomb (each anchor listing the previous one nine times) loads
in milliseconds and then expands to billions of values in whatever walks it next, and a recursive alias
(`a: &a [*a]`) sends that walk into endless recursion. Here the composed node graph is measured first, counting
every node as many times as aliases repeat it, and refused when it is recursive or too big.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from agent.errors import ConfigError

MAX_CONFIG_BYTES = 1 << 20
"""Config files above this size are refused unread."""
MAX_NODES = 100_000
"""Values a document may expand to, aliases counted as many times as they are used."""
MAX_DEPTH = 100
"""Nesting a document may have (composing is recursive; a config is a few levels deep)."""


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing nesting deeper than MAX_DEPTH while it composes."""

    depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _TooDeep(Exception):
    """Nesting past the limit, raised from inside the parser and turned into a ConfigError."""


def load_yaml(text: str, source: str, *, quote: bool = False) -> Any:
    """The value of one YAML document; a ConfigError naming `source` if it is not YAML, recursive or too big.

    `quote`: the text is a `-c` value, so the error suggests quoting it.
    """
    loader: _Loader | None = None
    try:
        loader = _Loader(text)  # refuses control characters already
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as e:
        hint = " (quote the value to pass it as text)" if quote else ""
        raise ConfigError(f"{source} is not valid YAML{hint}: {e}") from None
    except (_TooDeep, RecursionError):
        raise ConfigError(f"{source} is nested more than {MAX_DEPTH} levels deep; a config is a few levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_expansion(root: Node, source: str) -> None:
    """Refuse a node graph that contains itself or expands past MAX_NODES; linear in the distinct nodes."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > MAX_NODES:
                raise ConfigError(
                    f"{source} expands to more than {MAX_NODES:,} values through its aliases (an alias bomb?); "
                    "write the values out instead of repeating anchors"
                )
            continue
        if key in sizes:
            continue
        if key in open_:
            raise ConfigError(f"{source} has an alias that contains itself (like `a: &a [*a]`); remove the loop")
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                raise ConfigError(f"{source} has an alias that contains itself (like `a: &a [*a]`); remove the loop")
            if id(child) not in sizes:
                stack.append((child, False))


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


__all__ = ["MAX_CONFIG_BYTES", "MAX_NODES", "load_yaml"]
