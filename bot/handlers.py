"""A verified delivery, decided in milliseconds: drop bots and ourselves, de-duplicate, store the request, answer."""

from __future__ import annotations

import logging

from bot.services import Services
from bot.triggers import classify, from_bot
from bot.webhooks import Delivery

logger = logging.getLogger(__name__)


async def accept(s: Services, d: Delivery) -> tuple[int, str]:
    """The HTTP status and a short reason; the agent never runs here."""
    if d.event == "ping":
        return 200, "pong"
    if d.event in ("installation", "installation_repositories"):
        if not await s.store.record_delivery(d.id, d.event, d.action, None):
            return 200, "duplicate delivery"
        await installation_event(s, d)
        return 200, "recorded"
    if from_bot(d.payload, s.me, s.allowed_bots):
        return 200, "ignored: sent by a bot"
    request = classify(d.event, d.payload, s.me)
    if request is None:  # nothing to do, so nothing to de-duplicate: not written to the store
        return 200, "ignored"
    if not await s.store.record_delivery(d.id, d.event, d.action, request):
        return 200, "duplicate delivery"
    s.wake()
    logger.info(
        "%s from %s on %s#%d",
        request.kind,
        request.requester,
        request.repo,
        request.number,
        extra={"delivery_id": d.id},
    )
    return 202, "accepted"


async def installation_event(s: Services, d: Delivery) -> None:
    """Record installations and their repositories; a removed repository's runs are cancelled."""
    inst = d.payload.get("installation") or {}
    inst_id = inst.get("id")
    if not isinstance(inst_id, int):
        return
    account = str((inst.get("account") or {}).get("login") or "")
    if d.event == "installation":
        repos = _names(d.payload.get("repositories"))
        gone = d.action in ("deleted", "suspend")
        await s.store.save_installation(
            inst_id,
            account,
            {"deleted": "deleted", "suspend": "suspended"}.get(d.action, "active"),
            [] if gone else repos,
        )
        if gone:
            await _cancel(s, await s.store.runs_of_installation(inst_id), f"because the App was {d.action}d")
        return
    await s.store.save_installation(inst_id, account, "active", _names(d.payload.get("repositories_added")))
    removed = _names(d.payload.get("repositories_removed"))
    if removed:
        await s.store.remove_repos(inst_id, removed)
        await _cancel(s, removed, "because the repository was removed from the App")


async def _cancel(s: Services, repos: list[str], why: str) -> None:
    cancelled, stopping = await s.store.cancel_repos(repos)
    if stopping and s.stop_runs is not None:
        await s.stop_runs([r.id for r in stopping])
    if cancelled or stopping:
        logger.info("cancelled %d queued and stopped %d active runs %s", len(cancelled), len(stopping), why)


def _names(repos: object) -> list[str]:
    if not isinstance(repos, list):
        return []
    return [str(r["full_name"]) for r in repos if isinstance(r, dict) and isinstance(r.get("full_name"), str)]


__all__ = ["accept", "installation_event"]
