"""Approvals from the thread: `/approve`, `/deny [reason]`, 👍 or 👎 on the progress comment answer the current card.

GitHub sends no webhook for reactions, so while a card is pending the progress comment's reactions are polled, with
backoff and `If-None-Match` (a 304 costs no rate limit); a recorded slash command wakes the run at once.

```python
approvals = ThreadApprovals(s, run)                 # on the run loop, next to RunProgress
watcher = asyncio.create_task(approvals.run(agent))
outcome = await run_task(agent, task, on_event=lambda e: (progress.on_event(e), approvals.on_event(e)))
watcher.cancel()
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from agent.events import Approval, Event, EventType, ToolState
from agent.payloads import ApprovalRequired, ToolStateChange, payload
from bot.github import GitHubError
from bot.runloop import on_loop

if TYPE_CHECKING:
    from agent.loop import Agent
    from bot.models import Run
    from bot.services import Services

logger = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_POLL = 3.0
"""Seconds before the first look at the reactions; each look without news waits longer, up to LAST_POLL."""
LAST_POLL = 30.0
BACKOFF = 1.5
YES, NO = "+1", "-1"


class ApprovalWaiters:
    """The live runs of this process waiting for a decision; `wake(run_id)` (any thread) makes one look now."""

    def __init__(self) -> None:
        self._wakers: dict[int, Callable[[], None]] = {}

    def add(self, run_id: int, waker: Callable[[], None]) -> None:
        self._wakers[run_id] = waker

    def remove(self, run_id: int, waker: Callable[[], None]) -> None:
        if self._wakers.get(run_id) is waker:
            del self._wakers[run_id]

    def wake(self, run_id: int) -> None:
        waker = self._wakers.get(run_id)
        if waker is not None:
            waker()


@dataclass
class _Card:
    call_id: str
    summary: str
    row_id: int = 0
    shown_at: float = 0.0
    """When the card was first asked (kept across restarts): reactions older than this do not answer it."""
    waited: bool = False


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str
    reason: str = ""


class ThreadApprovals:
    """Submits the thread's answer to the run's current approval card; nothing else (stale answers do nothing)."""

    def __init__(
        self,
        s: Services,
        run: Run,
        *,
        first_poll: float = FIRST_POLL,
        last_poll: float = LAST_POLL,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.s = s
        self.run_ = run
        self.first_poll, self.last_poll = first_poll, last_poll
        self._sleep = sleep
        self._cards: list[_Card] = []
        self._changed = asyncio.Event()
        self._etag = ""
        self._reactions: list[dict[str, Any]] = []
        self._used: set[int] = set()
        """Reaction ids that already answered a card: the same 👍 never answers the next one."""
        self.polls = 0
        """Looks at the reactions so far."""
        self.idle = False
        """Waiting (for the next look, a new card or a wake-up), not working."""

    def on_event(self, event: Event) -> None:
        """Follow the cards: a new `approval_required`, a decision (from anywhere) that settles one."""
        if event.type is EventType.APPROVAL_REQUIRED:
            d = payload(event, ApprovalRequired)
            if all(c.call_id != d["call_id"] for c in self._cards):
                self._cards.append(_Card(d["call_id"], f"{d['name']}: {d['summary']}"))
                self._changed.set()
        elif event.type is EventType.TOOL_STATE_CHANGE:
            change = payload(event, ToolStateChange)
            if ToolState(change["state"]) in (ToolState.APPROVED, ToolState.DENIED):
                before = len(self._cards)
                self._cards = [c for c in self._cards if c.call_id != change["call_id"]]
                if len(self._cards) != before:
                    self._changed.set()

    @property
    def pending(self) -> str | None:
        """The call id answers apply to now."""
        return self._cards[0].call_id if self._cards else None

    async def run(self, agent: Agent) -> None:
        """Watch for answers until cancelled, submitting each decision to `agent`."""
        loop = asyncio.get_running_loop()

        def waker() -> None:
            loop.call_soon_threadsafe(self._changed.set)

        self.s.approvals.add(self.run_.id, waker)
        waiting = False
        try:
            delay = self.first_poll
            while True:
                if not self._cards:
                    if waiting:
                        waiting = not await self._main(self.s.store.set_waiting(self.run_.id, False))
                    await self._wait(None)
                    continue
                card = self._cards[0]
                if not card.row_id:
                    await self._record(card)
                    waiting, delay = True, self.first_poll
                decision = await self._decide(card)
                if decision is not None:
                    self._submit(agent, card, decision)
                    continue
                await self._wait(delay)
                card.waited = True  # reactions are looked at from now on: none can be newer than the card before
                delay = min(self.last_poll, delay * BACKOFF)
        finally:
            self.s.approvals.remove(self.run_.id, waker)

    # ---- steps --------------------------------------------------------------------------------

    async def _main(self, coro: Coroutine[Any, Any, T]) -> T:
        return await on_loop(self.s.loop, coro)

    async def _wait(self, seconds: float | None) -> None:
        """Until something changes (a card, a wake-up), or `seconds` pass."""
        self.idle = True
        try:
            if seconds is not None and self._sleep is not None:  # an injected clock: tests and benchmarks
                sleeper = asyncio.ensure_future(self._sleep(seconds))
                changed = asyncio.ensure_future(self._changed.wait())
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
                for f in (sleeper, changed):
                    f.cancel()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), seconds)
        finally:
            self.idle = False
        self._changed.clear()

    async def _record(self, card: _Card) -> None:
        """The card in the store (kept across restarts, so `/approve` finds it) and the run marked waiting."""
        store, run = self.s.store, self.run_

        async def record() -> dict[str, Any] | None:
            await store.add_approval(run.id, card.call_id, card.summary[:500])
            await store.set_waiting(run.id, True)
            return await store.approval(run.id, card.call_id)

        row = await self._main(record())
        assert row is not None
        card.row_id, card.shown_at = int(row["id"]), float(row["created_at"])

    async def _decide(self, card: _Card) -> Decision | None:
        """A decision recorded in the store (a slash command, here or in another process), else one by reaction."""
        row = await self._main(self.s.store.approval(self.run_.id, card.call_id))
        if row is not None and row["state"] in ("approved", "denied"):
            return Decision(row["state"] == "approved", str(row["decided_by"] or ""), str(row["reason"] or ""))
        by_reaction = await self._by_reaction(card) if card.waited else None
        if by_reaction is None:
            return None
        decision, reaction_id = by_reaction
        self._used.add(reaction_id)
        reason = "" if decision.approved else f"@{decision.by} reacted 👎 to the approval card"
        if await self._main(self.s.store.decide_approval(card.row_id, decision.approved, decision.by, reason)):
            return Decision(decision.approved, decision.by, reason)
        return await self._decide(card)  # a slash command got there first: its decision stands

    async def _by_reaction(self, card: _Card) -> tuple[Decision, int] | None:
        """The first 👎 (deny wins) or else 👍 since the card was asked, from someone with write access."""
        run = self.run_
        if run.comment_id is None:
            return None
        try:
            etag, items = await self._main(
                self.s.github.reactions(run.installation_id, run.repo, run.comment_id, self._etag)
            )
        except GitHubError as e:
            logger.warning("run %s: could not read reactions: %s", run.id, e, extra={"run_id": run.id})
            return None
        finally:
            self.polls += 1
        if items is not None:
            self._etag, self._reactions = etag, items
        fresh = [r for r in self._reactions if self._counts(r, card)]
        for content in (NO, YES):
            for r in fresh:
                if r["content"] == content and await self._may_answer(str(r["user"]["login"])):
                    return Decision(content == YES, str(r["user"]["login"])), int(r["id"])
        return None

    def _counts(self, reaction: dict[str, Any], card: _Card) -> bool:
        user = reaction.get("user") or {}
        if reaction.get("content") not in (YES, NO) or int(reaction.get("id") or 0) in self._used:
            return False
        if user.get("type") != "User" or str(user.get("login", "")).lower() == self.s.me.login.lower():
            return False
        try:
            made = datetime.fromisoformat(str(reaction.get("created_at")).replace("Z", "+00:00")).timestamp()
        except ValueError:
            return False
        return made >= int(card.shown_at)

    async def _may_answer(self, login: str) -> bool:
        run = self.run_
        try:
            return await self._main(self.s.permissions.can_write(run.installation_id, run.repo, login))
        except GitHubError as e:
            logger.warning("run %s: permission check for %s failed: %s", run.id, login, e, extra={"run_id": run.id})
            return False

    def _submit(self, agent: Agent, card: _Card, decision: Decision) -> None:
        self._cards = [c for c in self._cards if c.call_id != card.call_id]
        feedback = "" if decision.approved else decision.reason
        agent.submit(Approval(card.call_id, decision.approved, feedback, approver=decision.by))
        logger.info(
            "run %s: %s %s by %s",
            self.run_.id,
            "approved" if decision.approved else "denied",
            card.call_id,
            decision.by,
            extra={"run_id": self.run_.id},
        )


__all__ = ["ApprovalWaiters", "Decision", "ThreadApprovals"]
