"""Which deliveries ask the bot for something: mentions as a word, outside code and quotes, and slash commands."""

from __future__ import annotations

import re
from typing import Any

from bot.github import Target
from bot.models import COMMANDS, Identity, Request

_FENCE = re.compile(r"^[ \t]*(```|~~~).*?(^[ \t]*\1[^\n]*$|\Z)", re.S | re.M)
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
_QUOTE = re.compile(r"^[ \t]*>.*$", re.M)
_COMMAND = re.compile(r"^/(" + "|".join(COMMANDS) + r")(?![\w-])[ \t]*(.*)$")
MAX_REQUEST_CHARS = 20_000
"""A request longer than this is cut (the model sees the first part)."""


def visible_text(body: str) -> str:
    """The body without fenced code, inline code spans and quoted lines."""
    body = _FENCE.sub("", body.replace("\r\n", "\n"))
    body = _QUOTE.sub("", body)
    return _INLINE_CODE.sub("", body)


def _mention_re(slug: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w@./-])@" + re.escape(slug) + r"(?![\w-])", re.I)


def mentions(body: str | None, slug: str) -> bool:
    """Whether `@slug` appears as a word outside code spans, code blocks and quoted replies."""
    return bool(body) and bool(_mention_re(slug).search(visible_text(body or "")))


def command(body: str | None, slug: str) -> tuple[str, str] | None:
    """The first slash command on a line of its own (optionally after `@slug`): (name, arguments)."""
    for line in visible_text(body or "").splitlines():
        line = _mention_re(slug).sub("", line, count=1).strip() if line.strip().lower().startswith("@") else line
        m = _COMMAND.match(line.strip())
        if m:
            return m.group(1), m.group(2).strip()[:1000]
    return None


def request_text(body: str, slug: str) -> str:
    """The request as the model reads it: the body without the mention, bounded."""
    text = _mention_re(slug).sub("", body, count=1).strip()
    return text[:MAX_REQUEST_CHARS]


def from_bot(payload: dict[str, Any], me: Identity, allowed_bots: frozenset[str]) -> bool:
    """Whether the event was caused by a bot (allowed ones excepted) or by this App itself."""
    sender = payload.get("sender") or {}
    comment = payload.get("comment") or {}
    via = comment.get("performed_via_github_app") or {}
    author = str((comment.get("user") or {}).get("login") or "").lower()
    if (
        via.get("id") == me.app_id
        or author == me.login.lower()
        or str(sender.get("login", "")).lower() == me.login.lower()
    ):
        return True
    return sender.get("type") == "Bot" and str(sender.get("login", "")).lower() not in allowed_bots


def classify(event: str, payload: dict[str, Any], me: Identity) -> Request | None:
    """The request a delivery carries, or None when it asks nothing of the bot."""
    installation = (payload.get("installation") or {}).get("id")
    repo = (payload.get("repository") or {}).get("full_name")
    action = payload.get("action")
    if not isinstance(installation, int) or not isinstance(repo, str):
        return None
    if event == "issue_comment" and action in ("created", "edited"):
        issue = payload.get("issue") or {}
        return _from_comment(payload, action, installation, repo, issue.get("number"), "pull_request" in issue, me)
    if event == "pull_request_review_comment" and action in ("created", "edited"):
        pr = payload.get("pull_request") or {}
        return _from_comment(payload, action, installation, repo, pr.get("number"), True, me, kind="review_comment")
    if event == "issues" and action == "opened":
        issue = payload.get("issue") or {}
        body = str(issue.get("body") or "")
        if not mentions(body, me.slug) or not isinstance(issue.get("number"), int):
            return None
        text = f"{issue.get('title') or ''}\n\n{request_text(body, me.slug)}".strip()
        return Request(
            "trigger",
            installation,
            repo,
            issue["number"],
            False,
            _login(payload),
            Target("issue", issue["number"]),
            text,
        )
    return None


def _from_comment(
    payload: dict[str, Any],
    action: str,
    installation: int,
    repo: str,
    number: Any,
    is_pr: bool,
    me: Identity,
    kind: str = "issue_comment",
) -> Request | None:
    comment = payload.get("comment") or {}
    body = str(comment.get("body") or "")
    if not isinstance(number, int) or not isinstance(comment.get("id"), int):
        return None
    target = Target("review_comment" if kind == "review_comment" else "issue_comment", comment["id"])
    requester = _login(payload)
    if action == "created":
        found = command(body, me.slug)
        if found:
            return Request("command", installation, repo, number, is_pr, requester, target, found[1], found[0])
    if not mentions(body, me.slug):
        return None
    if action == "edited":
        before = str(((payload.get("changes") or {}).get("body") or {}).get("from") or "")
        if mentions(before, me.slug):
            return None  # the mention was already there: that request was handled when it was written
    return Request("trigger", installation, repo, number, is_pr, requester, target, request_text(body, me.slug))


def _login(payload: dict[str, Any]) -> str:
    return str((payload.get("sender") or {}).get("login") or "")


__all__ = ["classify", "command", "from_bot", "mentions", "request_text", "visible_text"]
