"""The store's records about threads, commands, installations and approvals (mixed into `store.Store`)."""

from __future__ import annotations

import time

from bot.db import Database, Row
from bot.models import Request


class Records:
    """Methods of `Store` that record what happened on threads and installations."""

    db: Database

    async def first_outsider_reply(self, repo: str, number: int, is_pr: bool) -> bool:
        """True exactly once per thread: whether to post the polite reply to someone without write access."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO threads (repo, number, is_pr) VALUES (?, ?, ?) ON CONFLICT (repo, number) DO NOTHING",
                (repo, number, int(is_pr)),
            )
            changed = await tx.execute(
                "UPDATE threads SET outsider_replied = 1 WHERE repo = ? AND number = ? AND outsider_replied = 0",
                (repo, number),
            )
        return changed == 1

    async def record_command(self, request: Request, run_id: int | None, outcome: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO commands (repo, number, name, args, requester, comment_id, run_id, outcome, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.repo,
                    request.number,
                    request.command,
                    request.text,
                    request.requester,
                    request.target.id,
                    run_id,
                    outcome,
                    time.time(),
                ),
            )

    async def commands(self, repo: str, number: int) -> list[Row]:
        async with self.db.transaction() as tx:
            return await tx.all("SELECT * FROM commands WHERE repo = ? AND number = ? ORDER BY id", (repo, number))

    async def save_installation(self, installation_id: int, account: str, state: str, repos: list[str]) -> None:
        """Record an installation and the repositories it was given."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO installations (id, account, state, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (id)"
                " DO UPDATE SET account = excluded.account, state = excluded.state, updated_at = excluded.updated_at",
                (installation_id, account, state, time.time()),
            )
            for repo in repos:
                await tx.execute(
                    "INSERT INTO installation_repos (installation_id, repo) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    (installation_id, repo),
                )

    async def remove_repos(self, installation_id: int, repos: list[str]) -> None:
        async with self.db.transaction() as tx:
            for repo in repos:
                await tx.execute(
                    "DELETE FROM installation_repos WHERE installation_id = ? AND repo = ?", (installation_id, repo)
                )

    async def installation_repos(self, installation_id: int) -> list[str]:
        async with self.db.transaction() as tx:
            rows = await tx.all(
                "SELECT repo FROM installation_repos WHERE installation_id = ? ORDER BY repo", (installation_id,)
            )
        return [r["repo"] for r in rows]

    async def installation(self, installation_id: int) -> Row | None:
        async with self.db.transaction() as tx:
            return await tx.one("SELECT * FROM installations WHERE id = ?", (installation_id,))

    async def pending_approval(self, run_id: int) -> Row | None:
        async with self.db.transaction() as tx:
            return await tx.one(
                "SELECT * FROM approvals WHERE run_id = ? AND state = 'pending' ORDER BY id LIMIT 1", (run_id,)
            )

    async def add_approval(self, run_id: int, call_id: str, summary: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO approvals (run_id, call_id, summary, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id, call_id) DO NOTHING",
                (run_id, call_id, summary, time.time()),
            )

    async def approval(self, run_id: int, call_id: str) -> Row | None:
        """The approval row of one call of a run (pending or decided)."""
        async with self.db.transaction() as tx:
            return await tx.one("SELECT * FROM approvals WHERE run_id = ? AND call_id = ?", (run_id, call_id))

    async def set_waiting(self, run_id: int, waiting: bool) -> bool:
        """Mark an active run as waiting for an approval (or running again); False if it is not active."""
        state = "waiting_approval" if waiting else "running"
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE runs SET state = ? WHERE id = ? AND state IN ('running', 'waiting_approval')", (state, run_id)
            )
        return changed == 1

    async def set_page_token(self, run_id: int, token_hash: str) -> None:
        """Store the hash of the run page's token (a new token replaces the old one)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO run_pages (run_id, token_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (run_id)"
                " DO UPDATE SET token_hash = excluded.token_hash, created_at = excluded.created_at",
                (run_id, token_hash, time.time()),
            )

    async def page_token_hash(self, run_id: int) -> str | None:
        async with self.db.transaction() as tx:
            row = await tx.one("SELECT token_hash FROM run_pages WHERE run_id = ?", (run_id,))
        return str(row["token_hash"]) if row else None

    async def decide_approval(self, approval_id: int, approved: bool, by: str, reason: str) -> bool:
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE approvals SET state = ?, decided_by = ?, reason = ?, decided_at = ?"
                " WHERE id = ? AND state = 'pending'",
                ("approved" if approved else "denied", by, reason, time.time(), approval_id),
            )
        return changed == 1


__all__ = ["Records"]
