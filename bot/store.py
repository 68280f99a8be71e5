"""The store: deliveries, the request inbox and runs (threads, commands, installations and approvals in records.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from bot.db import Database, Row, open_database
from bot.github import Target
from bot.models import ACTIVE, InboxItem, Request, Run
from bot.records import Records

logger = logging.getLogger(__name__)

_RUN_COLUMNS = (
    "id, installation_id, repo, number, is_pr, requester, trigger_kind, trigger_id, request, state, comment_id,"
    " session_id, worker, attempts, cancel_requested, result, error, created_at, started_at, finished_at"
)
_ACTIVE_SQL = "('running', 'waiting_approval')"
ACK_GRACE = 30.0
"""Seconds a queued run without a progress comment waits for its acknowledgement before a worker takes it anyway."""


def _run(row: Row) -> Run:
    return Run(
        id=int(row["id"]),
        installation_id=int(row["installation_id"]),
        repo=row["repo"],
        number=int(row["number"]),
        is_pr=bool(row["is_pr"]),
        requester=row["requester"],
        trigger=Target(row["trigger_kind"], int(row["trigger_id"])),
        request=row["request"],
        state=row["state"],
        comment_id=int(row["comment_id"]) if row["comment_id"] is not None else None,
        session_id=row["session_id"],
        worker=row["worker"],
        attempts=int(row["attempts"]),
        cancel_requested=bool(row["cancel_requested"]),
        result=row["result"],
        error=row["error"],
        created_at=float(row["created_at"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def _item(row: Row) -> InboxItem:
    target = Target(row["target_kind"], int(row["target_id"]))
    request = Request(
        row["kind"],
        int(row["installation_id"]),
        row["repo"],
        int(row["number"]),
        bool(row["is_pr"]),
        row["requester"],
        target,
        row["text"],
        row["command"],
        float(row["created_at"]),
    )
    return InboxItem(int(row["id"]), row["delivery_id"], request)


@dataclass(slots=True)
class Placement:
    """Where a new run stands: behind another run of its thread, behind the global limit, or starting."""

    run: Run
    behind_run: int | None
    waiting_for_slot: bool


class Store(Records):
    """Every piece of state the server keeps. Methods are transactions; none holds a lock across awaits elsewhere."""

    def __init__(self, db: Database, worker: str, max_runs: int) -> None:
        self.db = db
        self.worker = worker
        self.max_runs = max_runs

    @classmethod
    async def open(cls, url: str, worker: str, max_runs: int) -> Store:
        return cls(await open_database(url, worker), worker, max_runs)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> bool:
        async with self.db.transaction() as tx:
            return await tx.one("SELECT 1 AS ok") is not None

    # ---- deliveries and the inbox ---------------------------------------------------------------

    async def record_delivery(self, delivery_id: str, event: str, action: str, request: Request | None) -> bool:
        """Record a delivery (and its request, atomically); False if this delivery id was seen before."""
        now = time.time()
        outcome = "queued" if request else "ignored"
        async with self.db.transaction() as tx:
            inserted = await tx.execute(
                "INSERT INTO deliveries (id, event, action, outcome, received_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO NOTHING",
                (delivery_id, event, action, outcome, now),
            )
            if inserted != 1:
                return False
            if request is not None:
                r = request
                await tx.execute(
                    "INSERT INTO inbox (delivery_id, kind, command, installation_id, repo, number, is_pr, requester,"
                    " target_kind, target_id, text, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        delivery_id,
                        r.kind,
                        r.command,
                        r.installation_id,
                        r.repo,
                        r.number,
                        int(r.is_pr),
                        r.requester,
                        r.target.kind,
                        r.target.id,
                        r.text,
                        now,
                    ),
                )
        return True

    async def claim_inbox(self) -> InboxItem | None:
        """Take the oldest new request; each is taken by exactly one worker."""
        async with self.db.transaction() as tx:
            lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
            row = await tx.one(f"SELECT * FROM inbox WHERE state = 'new' ORDER BY id LIMIT 1{lock}")
            if row is None:
                return None
            await tx.execute("UPDATE inbox SET state = 'claimed', worker = ? WHERE id = ?", (self.worker, row["id"]))
        return _item(row)

    async def finish_inbox(self, item_id: int, state: str = "done") -> None:
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE inbox SET state = ? WHERE id = ?", (state, item_id))

    # ---- runs -----------------------------------------------------------------------------------

    async def create_run(self, request: Request, inbox_id: int | None = None) -> Placement:
        """A queued run for a trigger (closing its inbox item in the same transaction), and its place in the queue."""
        r = request
        now = time.time()
        async with self.db.transaction() as tx:
            if inbox_id is not None:
                await tx.execute("UPDATE inbox SET state = 'done' WHERE id = ?", (inbox_id,))
            await tx.execute(
                "INSERT INTO threads (repo, number, is_pr) VALUES (?, ?, ?) ON CONFLICT (repo, number) DO NOTHING",
                (r.repo, r.number, int(r.is_pr)),
            )
            row = await tx.one(
                "INSERT INTO runs (installation_id, repo, number, is_pr, requester, trigger_kind, trigger_id, request,"
                " state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?) RETURNING " + _RUN_COLUMNS,
                (
                    r.installation_id,
                    r.repo,
                    r.number,
                    int(r.is_pr),
                    r.requester,
                    r.target.kind,
                    r.target.id,
                    r.text,
                    now,
                ),
            )
            assert row is not None
            ahead = await tx.one(
                "SELECT id FROM runs WHERE repo = ? AND number = ? AND id < ? AND (state = 'queued' OR state IN "
                + _ACTIVE_SQL
                + ") ORDER BY id LIMIT 1",
                (r.repo, r.number, row["id"]),
            )
            busy = await tx.one(  # active runs, and queued ones that will start first
                f"SELECT COUNT(*) AS n FROM runs WHERE state IN {_ACTIVE_SQL} OR (state = 'queued' AND id < ?)",
                (row["id"],),
            )
        waiting = busy is not None and int(busy["n"]) >= self.max_runs
        return Placement(_run(row), int(ahead["id"]) if ahead else None, waiting)

    async def claim_run(self) -> Run | None:
        """Start the oldest queued run whose thread is idle, if fewer than `max_runs` runs are active anywhere."""
        async with self.db.transaction() as tx:
            await self.db.claim_lock(tx)
            busy = await tx.one(f"SELECT COUNT(*) AS n FROM runs WHERE state IN {_ACTIVE_SQL}")
            if busy is not None and int(busy["n"]) >= self.max_runs:
                return None
            lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
            row = await tx.one(
                "SELECT id FROM runs r WHERE state = 'queued' AND (comment_id IS NOT NULL OR created_at < ?)"
                " AND NOT EXISTS (SELECT 1 FROM runs o WHERE"
                " o.repo = r.repo AND o.number = r.number AND (o.state IN " + _ACTIVE_SQL + " OR"
                " (o.state = 'queued' AND o.id < r.id))) ORDER BY id LIMIT 1" + lock,
                (time.time() - ACK_GRACE,),
            )
            if row is None:
                return None
            claimed = await tx.one(
                "UPDATE runs SET state = 'running', worker = ?, attempts = attempts + 1, started_at = ?"
                " WHERE id = ? AND state = 'queued' RETURNING " + _RUN_COLUMNS,
                (self.worker, time.time(), row["id"]),
            )
        return _run(claimed) if claimed else None

    async def get_run(self, run_id: int) -> Run | None:
        async with self.db.transaction() as tx:
            row = await tx.one(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,))
        return _run(row) if row else None

    async def thread_runs(self, repo: str, number: int) -> list[Run]:
        """The thread's runs, newest first."""
        async with self.db.transaction() as tx:
            rows = await tx.all(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE repo = ? AND number = ? ORDER BY id DESC LIMIT 50",
                (repo, number),
            )
        return [_run(r) for r in rows]

    async def set_comment(self, run_id: int, comment_id: int) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE runs SET comment_id = ? WHERE id = ?", (comment_id, run_id))

    async def set_session(self, run: Run, session_id: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE runs SET session_id = ? WHERE id = ?", (session_id, run.id))
            await tx.execute(
                "UPDATE threads SET session_id = ? WHERE repo = ? AND number = ?", (session_id, run.repo, run.number)
            )

    async def finish_run(self, run_id: int, state: str, *, result: str | None = None, error: str | None = None) -> bool:
        """End a run that is not finished yet; False if it already was (e.g. cancelled meanwhile)."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE runs SET state = ?, result = ?, error = ?, finished_at = ? WHERE id = ? AND state IN"
                " ('queued', 'running', 'waiting_approval')",
                (state, result, error, time.time(), run_id),
            )
        return changed == 1

    async def requeue_waiting(self, run_id: int) -> bool:
        """Queue a run that was waiting for approval again (its process is stopping); False if it was not waiting."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE runs SET state = 'queued', worker = NULL WHERE id = ? AND state = 'waiting_approval'", (run_id,)
            )
        return changed == 1

    async def cancel_thread(self, repo: str, number: int) -> tuple[list[Run], list[Run]]:
        """Cancel the thread's queued runs and ask its active ones to stop: (cancelled, asked to stop)."""
        return await self._cancel("repo = ? AND number = ?", (repo, number))

    async def cancel_repos(self, repos: list[str]) -> tuple[list[Run], list[Run]]:
        """Cancel every queued run of these repositories and ask their active runs to stop."""
        if not repos:
            return [], []
        marks = ", ".join("?" for _ in repos)
        return await self._cancel(f"repo IN ({marks})", tuple(repos))

    async def _cancel(self, where: str, args: tuple[Any, ...]) -> tuple[list[Run], list[Run]]:
        now = time.time()
        async with self.db.transaction() as tx:
            queued = await tx.all(
                f"UPDATE runs SET state = 'cancelled', finished_at = ? WHERE state = 'queued' AND {where}"
                f" RETURNING {_RUN_COLUMNS}",
                (now, *args),
            )
            active = await tx.all(
                f"UPDATE runs SET cancel_requested = 1 WHERE state IN {_ACTIVE_SQL} AND {where}"
                f" RETURNING {_RUN_COLUMNS}",
                args,
            )
        return [_run(r) for r in queued], [_run(r) for r in active]

    async def cancel_requested(self, run_ids: list[int]) -> list[int]:
        """Which of these runs someone asked to stop."""
        if not run_ids:
            return []
        marks = ", ".join("?" for _ in run_ids)
        async with self.db.transaction() as tx:
            rows = await tx.all(f"SELECT id FROM runs WHERE cancel_requested = 1 AND id IN ({marks})", tuple(run_ids))
        return [int(r["id"]) for r in rows]

    async def recover(self) -> list[Run]:
        """Resolve what dead workers left: their running runs become `interrupted`, their claimed requests new again,
        and their runs waiting for approval are queued again (the session resumes with the card live)."""
        async with self.db.transaction() as tx:
            rows = await tx.all(
                "SELECT DISTINCT worker FROM runs WHERE state IN ('running', 'waiting_approval') AND worker IS NOT NULL"
                " UNION SELECT DISTINCT worker FROM inbox WHERE state = 'claimed' AND worker IS NOT NULL"
            )
        dead = await self.db.dead_workers([str(r["worker"]) for r in rows], self.worker)
        if not dead:
            return []
        marks = ", ".join("?" for _ in dead)
        async with self.db.transaction() as tx:
            runs = await tx.all(
                "UPDATE runs SET state = 'interrupted', finished_at = ?, error = 'the server stopped during the run'"
                f" WHERE state = 'running' AND worker IN ({marks}) RETURNING {_RUN_COLUMNS}",
                (time.time(), *dead),
            )
            await tx.execute(
                f"UPDATE inbox SET state = 'new', worker = NULL WHERE state = 'claimed' AND worker IN ({marks})", dead
            )
            await tx.execute(
                "UPDATE runs SET state = 'queued', worker = NULL"
                f" WHERE state = 'waiting_approval' AND worker IN ({marks})",
                dead,
            )
        for r in runs:
            logger.warning(
                "run %s was left running by a stopped worker: marked interrupted", r["id"], extra={"run_id": r["id"]}
            )
        return [_run(r) for r in runs]

    async def runs_of_installation(self, installation_id: int) -> list[str]:
        async with self.db.transaction() as tx:
            rows = await tx.all(
                "SELECT DISTINCT repo FROM runs WHERE installation_id = ? AND (state = 'queued' OR state IN "
                + _ACTIVE_SQL
                + ")",
                (installation_id,),
            )
        return [r["repo"] for r in rows]

    # ---- status ---------------------------------------------------------------------------------

    async def stats(self) -> dict[str, Any]:
        """Counts for /metrics: runs by state, deliveries by outcome, the inbox backlog."""
        async with self.db.transaction() as tx:
            runs = await tx.all("SELECT state, COUNT(*) AS n FROM runs GROUP BY state")
            deliveries = await tx.all("SELECT outcome, COUNT(*) AS n FROM deliveries GROUP BY outcome")
            inbox = await tx.one("SELECT COUNT(*) AS n FROM inbox WHERE state IN ('new', 'claimed')")
        return {
            "runs": {r["state"]: int(r["n"]) for r in runs},
            "deliveries": {r["outcome"]: int(r["n"]) for r in deliveries},
            "inbox_pending": int(inbox["n"]) if inbox else 0,
        }


__all__ = ["ACTIVE", "Placement", "Store"]
