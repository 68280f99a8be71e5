"""Requests from the inbox: authorise the sender, acknowledge (👀 and the progress comment), queue the run."""

from __future__ import annotations

import asyncio
import logging

from bot import commands, render
from bot.github import GitHubError
from bot.models import InboxItem, Request
from bot.services import Services

logger = logging.getLogger(__name__)


async def process(s: Services, item: InboxItem) -> None:
    """Handle one stored request; GitHub failures are logged and counted, never raised."""
    r = item.request
    log = {"delivery_id": item.delivery_id, "repo": r.repo}
    try:
        allowed = await s.permissions.can_write(r.installation_id, r.repo, r.requester)
    except GitHubError as e:
        s.count_error("github")
        logger.warning("permission check failed for %s on %s: %s", r.requester, r.repo, e, extra=log)
        await s.store.finish_inbox(item.id, "failed")
        return
    if not allowed:
        await refuse(s, item)
        return
    if r.kind == "command":
        await s.store.finish_inbox(item.id)
        await commands.handle(s, r)
        return
    await start_run(s, r, inbox_id=item.id)


async def refuse(s: Services, item: InboxItem) -> None:
    """Someone without write access asked: one polite reply per thread, and nothing runs."""
    r = item.request
    await s.store.finish_inbox(item.id, "refused")
    logger.info("refused %s from %s on %s#%d (no write access)", r.kind, r.requester, r.repo, r.number)
    if r.kind == "command":
        await s.store.record_command(r, None, "refused: no write access")
    if await s.store.first_outsider_reply(r.repo, r.number, r.is_pr):
        try:
            await s.github.reply(r.installation_id, r.repo, r.number, render.outsider(r.requester))
        except GitHubError as e:
            s.count_error("github")
            logger.warning("could not reply to %s on %s#%d: %s", r.requester, r.repo, r.number, e)


async def start_run(s: Services, r: Request, inbox_id: int | None = None) -> int:
    """Queue a run for `r`, react 👀 and post its progress comment; returns the run id."""
    placement = await s.store.create_run(r, inbox_id)
    run = placement.run
    body = render.queued(run, placement.behind_run, placement.waiting_for_slot, s.public_url)
    results = await asyncio.gather(
        s.github.react(r.installation_id, r.repo, r.target, "eyes"), s.show(run, body), return_exceptions=True
    )
    for result in results:
        if isinstance(result, GitHubError):
            s.count_error("github")
            logger.warning("run %s: could not react: %s", run.id, result, extra={"run_id": run.id})
        elif isinstance(result, BaseException):
            raise result
    s.wake()  # a run is claimable once its comment exists (or after ACK_GRACE if posting it failed)
    logger.info("run %s queued for %s#%d by %s", run.id, r.repo, r.number, r.requester, extra={"run_id": run.id})
    return run.id


__all__ = ["process", "refuse", "start_run"]
