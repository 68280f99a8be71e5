"""Prompt templates: the Jinja files in this folder, rendered strictly."""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

import jinja2

from agent.errors import ConfigError

logger = logging.getLogger(__name__)

_HERE = Path(__file__).resolve().parent


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,
    )


def available() -> list[str]:
    """Names of the templates in this folder."""
    return sorted(p.name for p in _HERE.glob("*.j2"))


def render(name: str, **vars: Any) -> str:
    """Render the template `name` (e.g. "compact.md.j2") with `vars`; every variable it uses must be given."""
    try:
        template = _environment().get_template(name)
    except jinja2.TemplateNotFound:
        raise ConfigError(
            f"prompt template {name!r} does not exist in agent/prompts/; available: {', '.join(available())}"
        ) from None
    try:
        return template.render(**vars)
    except jinja2.UndefinedError as e:
        raise ConfigError(f"prompt template {name!r} uses a variable that was not given: {e.message}") from None


__all__ = ["available", "render"]
