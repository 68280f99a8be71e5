"""The records the bot passes around: who it is, a request from a thread, and a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.github import Target

ACTIVE = ("running", "waiting_approval")
FINISHED = ("done", "failed", "cancelled", "interrupted")
COMMANDS = ("approve", "deny", "stop", "retry", "status", "help")


@dataclass(frozen=True, slots=True)
class Identity:
    """The App as GitHub knows it (from `GET /app`): its id, slug, bot login and mention."""

    app_id: int
    slug: str

    @property
    def login(self) -> str:
        return f"{self.slug}[bot]"

    @property
    def mention(self) -> str:
        return f"@{self.slug}"


@dataclass(frozen=True, slots=True)
class Request:
    """Something a person asked in a thread: a trigger (`@bot …`) or a slash command."""

    kind: str
    """`trigger` or `command`."""
    installation_id: int
    repo: str
    number: int
    is_pr: bool
    requester: str
    target: Target
    """What to react to: the comment (or the issue) that asked."""
    text: str
    """The request (trigger) or the command's arguments."""
    command: str = ""
    received_at: float = field(default=0.0, compare=False)
    """When the server received it (0 when not known): a decision applies only to a card already shown then."""


@dataclass(slots=True)
class InboxItem:
    """A stored request waiting for authorisation and acknowledgement."""

    id: int
    delivery_id: str
    request: Request


@dataclass(slots=True)
class Run:
    """One run of the agent for one thread (a row of the `runs` table)."""

    id: int
    installation_id: int
    repo: str
    number: int
    is_pr: bool
    requester: str
    trigger: Target
    request: str
    state: str
    comment_id: int | None = None
    session_id: str | None = None
    worker: str | None = None
    attempts: int = 0
    cancel_requested: bool = False
    result: str | None = None
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def marker(self) -> str:
        return f"<!-- ml-intern:run:{self.id} -->"


__all__ = ["ACTIVE", "COMMANDS", "FINISHED", "Identity", "InboxItem", "Request", "Run"]
