"""Everything the bot writes on GitHub: the progress comment in each state, replies, help (pure functions)."""

from __future__ import annotations

from bot.github import bound_body
from bot.models import Identity, Run

MAX_RESULT_CHARS = 60_000
"""The agent's answer is cut to this, leaving room for the rest of the comment."""

HELP = """\
**{mention}** answers requests in issues and pull requests. Write `{mention} <what you need>` in a comment \
(or in a new issue) and I reply here. Only people with write access to this repository can ask.

Commands, each on a line of its own in a reply:

| command | what it does |
|---|---|
| `/status` | the state of the latest run in this thread |
| `/stop` | stop the running run and cancel queued ones |
| `/retry` | run the latest finished request again |
| `/approve` | approve the action the run is waiting for |
| `/deny [reason]` | refuse it (the reason is passed on) |
| `/help` | this message |"""

OUTSIDER = """\
Hi @{user}, thanks for the mention! I can only take requests from people with write access to this \
repository, so I won't act on this one. A maintainer can ask me on your behalf."""

_ICONS = {
    "queued": "⏳",
    "running": "⚙️",
    "waiting_approval": "✋",
    "done": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "interrupted": "⚠️",
}


def _footer(run: Run, public_url: str) -> str:
    link = f" · [run page]({public_url.rstrip('/')}/runs/{run.id})" if public_url else ""
    return f"\n\n<sub>run {run.id} · requested by @{run.requester}{link}</sub>\n{run.marker}"


def queued(run: Run, behind_run: int | None, waiting_for_slot: bool, public_url: str = "") -> str:
    """The first comment: the run is queued (and why) or about to start."""
    if behind_run is not None:
        why = f"Queued: run {behind_run} in this thread goes first."
    elif waiting_for_slot:
        why = "Queued: every worker is busy; this run starts when one is free."
    else:
        why = "Starting…"
    return f"⏳ {why}" + _footer(run, public_url)


def working(run: Run, public_url: str = "") -> str:
    return "⚙️ Working on it…" + _footer(run, public_url)


def done(run: Run, answer: str, public_url: str = "") -> str:
    text = answer.strip() or "(the agent finished without an answer)"
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + "\n\n… (answer cut)"
    return bound_body(f"✅ Done.\n\n{text}" + _footer(run, public_url))


def failed(run: Run, reason: str, public_url: str = "") -> str:
    return (
        f"❌ The run failed: {reason[:2000]}\n\nReply `/retry` to run it again, or mention me with a new request."
        + _footer(run, public_url)
    )


def cancelled(run: Run, by: str, public_url: str = "") -> str:
    return f"🚫 Cancelled {by}." + _footer(run, public_url)


def interrupted(run: Run, public_url: str = "") -> str:
    return "⚠️ Interrupted: the server stopped while this run was working. Reply `/retry` to run it again." + _footer(
        run, public_url
    )


def status(runs: list[Run], me: Identity) -> str:
    """The reply to `/status`."""
    if not runs:
        return f"No runs in this thread yet. Mention {me.mention} with a request to start one."
    latest = runs[0]
    lines = [f"{_ICONS.get(latest.state, '')} Run {latest.id}: **{latest.state.replace('_', ' ')}**"]
    queued_after = [r.id for r in runs[1:] if r.state == "queued"]
    if queued_after:
        lines.append("Also queued: " + ", ".join(f"run {i}" for i in sorted(queued_after)))
    return "\n".join(lines)


def help_text(me: Identity) -> str:
    return HELP.format(mention=me.mention)


def outsider(user: str) -> str:
    return OUTSIDER.format(user=user)


__all__ = ["cancelled", "done", "failed", "help_text", "interrupted", "outsider", "queued", "status", "working"]
