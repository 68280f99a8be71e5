"""Slash commands in a thread, recorded on it: /approve, /deny [reason], /stop, /retry, /status, /help."""

from __future__ import annotations

import logging
from dataclasses import replace

from bot import render
from bot.github import GitHubError
from bot.models import ACTIVE, FINISHED, Request, Run
from bot.services import Services

logger = logging.getLogger(__name__)


async def handle(s: Services, r: Request) -> str:
    """Act on an authorised command, answer in the thread, record it; returns the recorded outcome."""
    runs = await s.store.thread_runs(r.repo, r.number)
    latest = runs[0] if runs else None
    outcome, reply = "", ""
    if r.command == "help":
        outcome, reply = "answered", render.help_text(s.me)
    elif r.command == "status":
        outcome, reply = "answered", render.status(runs, s.me)
    elif r.command == "stop":
        cancelled, stopping = await s.store.cancel_thread(r.repo, r.number)
        await s.say_cancelled(cancelled, f"by @{r.requester}")
        if stopping and s.stop_runs is not None:
            await s.stop_runs([run.id for run in stopping])
        count = len(cancelled) + len(stopping)
        outcome = f"stopped {count} run(s)" if count else "nothing to stop"
        reply = "" if count else "Nothing is running or queued in this thread."
    elif r.command == "retry":
        outcome, reply = await _retry(s, r, runs)
    elif r.command in ("approve", "deny"):
        outcome, reply = await _decide(s, r, latest)
    await s.store.record_command(r, latest.id if latest else None, outcome)
    await _answer(s, r, reply)
    return outcome


async def _retry(s: Services, r: Request, runs: list[Run]) -> tuple[str, str]:
    from bot.intake import start_run  # intake dispatches here

    if any(run.state == "queued" or run.state in ACTIVE for run in runs):
        return "refused: a run is active", "A run is still active in this thread; `/stop` it first or wait for it."
    previous = next((run for run in runs if run.state in FINISHED), None)
    if previous is None:
        return "nothing to retry", f"There is no earlier request to retry; mention {s.me.mention} with one."
    again = replace(r, kind="trigger", text=previous.request, command="")
    run_id = await start_run(s, again)
    return f"retried run {previous.id} as run {run_id}", ""


async def _decide(s: Services, r: Request, latest: Run | None) -> tuple[str, str]:
    run = latest if latest is not None and latest.state == "waiting_approval" else None
    pending = await s.store.pending_approval(run.id) if run else None
    if run is None or pending is None:
        return "nothing waiting for approval", "Nothing in this thread is waiting for approval."
    if r.received_at and float(pending["created_at"]) > r.received_at:  # written before this card was shown
        return "stale: an earlier card", render.stale_answer(r.command)
    approved = r.command == "approve"
    if await s.store.decide_approval(int(pending["id"]), approved, r.requester, r.text):
        s.approvals.wake(run.id)  # the live run submits it now, not at its next poll
    return ("approved" if approved else "denied") + f" {pending['call_id']}", ""


async def _answer(s: Services, r: Request, reply: str) -> None:
    try:
        await s.github.react(r.installation_id, r.repo, r.target, "eyes")
        if reply:
            await s.github.reply(r.installation_id, r.repo, r.number, reply)
    except GitHubError as e:
        s.count_error("github")
        logger.warning("could not answer /%s on %s#%d: %s", r.command, r.repo, r.number, e)


__all__ = ["handle"]
