"""The store on both backends: de-duplication, claims, one active run per thread, the global limit, recovery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from agent.errors import ConfigError
from bot.db import MIGRATIONS
from bot.github import Target
from bot.models import Request
from bot.store import Store

Open = Callable[..., Awaitable[Store]]


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Open]:
    url = (
        f"sqlite:///{tmp_path / 'store.sqlite3'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    stores: list[Store] = []

    async def open_(worker: str = "w1", max_runs: int = 4, path: str | None = None) -> Store:
        s = await Store.open(path or url, worker, max_runs)
        stores.append(s)
        return s

    yield open_
    for s in stores:
        await s.close()


def req(number: int = 1, comment: int = 10, kind: str = "trigger", repo: str = "o/r", command: str = "") -> Request:
    return Request(kind, 1, repo, number, False, "alice", Target("issue_comment", comment), "do it", command)


async def queued(store: Store, number: int = 1, repo: str = "o/r", comment: int = 10) -> int:
    placement = await store.create_run(req(number, comment, repo=repo))
    await store.set_comment(placement.run.id, 1000 + placement.run.id)
    return placement.run.id


async def test_a_delivery_is_recorded_once(open_store: Open) -> None:
    store = await open_store()
    assert await store.record_delivery("d1", "issue_comment", "created", req())
    assert not await store.record_delivery("d1", "issue_comment", "created", req())
    results = await asyncio.gather(*(store.record_delivery("d2", "issues", "opened", req()) for _ in range(10)))
    assert sorted(results) == [False] * 9 + [True]
    stats = await store.stats()
    assert stats["deliveries"] == {"queued": 2} and stats["inbox_pending"] == 2


async def test_inbox_items_are_claimed_once(open_store: Open) -> None:
    a = await open_store("a")
    for i in range(5):
        await a.record_delivery(f"d{i}", "issue_comment", "created", req(comment=i))
    claimed = [await a.claim_inbox() for _ in range(6)]
    ids = [c.id for c in claimed if c is not None]
    assert len(ids) == 5 == len(set(ids)) and claimed[-1] is None
    assert claimed[0] is not None and claimed[0].request == req(comment=0)


async def test_one_active_run_per_thread_in_order(open_store: Open) -> None:
    store = await open_store()
    first, second = await queued(store, 1), await queued(store, 1)
    other = await queued(store, 2)
    placement = await store.create_run(req(1, 99))
    assert placement.behind_run == first and not placement.waiting_for_slot
    a, b = await store.claim_run(), await store.claim_run()
    assert (a and a.id, b and b.id) == (first, other)
    assert await store.claim_run() is None  # thread 1 is busy, thread 2 too
    assert await store.finish_run(first, "done", result="ok")
    assert not await store.finish_run(first, "failed")  # already finished
    c = await store.claim_run()
    assert c is not None and c.id == second and c.attempts == 1 and c.state == "running"


async def test_a_run_waits_for_its_acknowledgement(open_store: Open) -> None:
    store = await open_store()
    await store.create_run(req())
    assert await store.claim_run() is None  # no progress comment yet
    import bot.store

    bot.store.ACK_GRACE, saved = -1.0, bot.store.ACK_GRACE
    try:
        assert await store.claim_run() is not None  # the acknowledgement never came: run anyway
    finally:
        bot.store.ACK_GRACE = saved


async def test_the_global_limit_holds(open_store: Open) -> None:
    store = await open_store(max_runs=2)
    assert not (await store.create_run(req(1))).waiting_for_slot
    assert not (await store.create_run(req(2))).waiting_for_slot
    assert (await store.create_run(req(3))).waiting_for_slot  # two runs start first
    for run_id in (1, 2, 3):
        await store.set_comment(run_id, 100 + run_id)
    assert [r is not None for r in [await store.claim_run() for _ in range(3)]] == [True, True, False]
    assert (await store.create_run(req(10))).waiting_for_slot
    await store.finish_run(1, "done")
    claimed = await store.claim_run()
    assert claimed is not None and claimed.id == 3


async def test_concurrent_claims_take_distinct_runs(open_store: Open) -> None:
    store = await open_store(max_runs=100)
    ids = {await queued(store, n) for n in range(12)}
    claimed = await asyncio.gather(*(store.claim_run() for _ in range(16)))
    got = [r.id for r in claimed if r is not None]
    assert sorted(got) == sorted(ids)


async def test_stop_cancels_queued_runs_and_flags_active_ones(open_store: Open) -> None:
    store = await open_store()
    running = await queued(store, 1)
    waiting = await queued(store, 1)
    assert (await store.claim_run()) is not None
    cancelled, stopping = await store.cancel_thread("o/r", 1)
    assert [r.id for r in cancelled] == [waiting] and [r.id for r in stopping] == [running]
    assert await store.cancel_requested([running, waiting]) == [running]
    await queued(store, 5, repo="x/y")
    cancelled, _ = await store.cancel_repos(["x/y"])
    assert len(cancelled) == 1


async def test_recovery_interrupts_runs_of_dead_workers_only(open_store: Open, tmp_path: Path) -> None:
    dead = await open_store("dead")
    run_id = await queued(dead, 1)
    await dead.record_delivery("d", "issue_comment", "created", req(2))
    assert await dead.claim_run() is not None and await dead.claim_inbox() is not None
    assert await dead.recover() == []  # its own rows: it is alive
    url = None
    if dead.db.dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
        with pytest.raises(ConfigError, match="another ml-intern server"):
            await Store.open(url, "peer", 4)
    await dead.close()
    alive = await open_store("alive", path=url)
    recovered = await alive.recover()
    assert [r.id for r in recovered] == [run_id] and recovered[0].state == "interrupted"
    item = await alive.claim_inbox()
    assert item is not None and item.request.number == 2
    assert await alive.recover() == []


async def test_migrations_are_versioned(open_store: Open) -> None:
    store = await open_store()
    async with store.db.transaction() as tx:
        rows = await tx.all("SELECT version FROM schema_version ORDER BY version")
    assert [r["version"] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    async with store.db.transaction() as tx:
        await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (len(MIGRATIONS) + 1,))
    from bot.db import migrate

    with pytest.raises(ConfigError, match="newer than this ml-intern"):
        await migrate(store.db)


async def test_threads_commands_installations_and_approvals(open_store: Open) -> None:
    store = await open_store()
    assert await store.first_outsider_reply("o/r", 1, False)
    assert not await store.first_outsider_reply("o/r", 1, False)
    await store.record_command(req(kind="command", command="stop"), None, "nothing to stop")
    assert [c["name"] for c in await store.commands("o/r", 1)] == ["stop"]
    await store.save_installation(5, "octocat", "active", ["o/r", "o/s"])
    await store.remove_repos(5, ["o/s"])
    assert await store.installation_repos(5) == ["o/r"]
    run_id = await queued(store)
    await store.add_approval(run_id, "call_1", "push to the Hub")
    pending = await store.pending_approval(run_id)
    assert pending is not None and pending["call_id"] == "call_1"
    assert await store.decide_approval(int(pending["id"]), False, "alice", "too soon")
    assert await store.pending_approval(run_id) is None
    assert await store.ping()


async def test_dropped_postgres_connections_are_replaced(postgres_url: str) -> None:
    import psycopg

    from bot.db import PostgresDatabase

    store = await Store.open(postgres_url, "w", 4)
    try:
        assert isinstance(store.db, PostgresDatabase)
        pids = [conn.info.backend_pid for conn in store.db._conns]
        with psycopg.connect(postgres_url, autocommit=True) as admin:  # as if the database restarted
            for pid in pids:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        failures = 0
        for _ in range(len(pids) + 2):  # each dead connection fails once, then is replaced on its next turn
            try:
                await store.ping()
            except psycopg.OperationalError:
                failures += 1
        assert failures <= len(pids)
        assert [await store.ping() for _ in range(len(pids))] == [True] * len(pids)
    finally:
        await store.close()
