"""The two database backends behind the store (SQLite with WAL, PostgreSQL) and their versioned migrations."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from agent.errors import ConfigError

logger = logging.getLogger(__name__)

Row = dict[str, Any]

MIGRATIONS: list[list[str]] = [
    [  # 1: the initial schema
        "CREATE TABLE deliveries (id TEXT PRIMARY KEY, event TEXT NOT NULL, action TEXT NOT NULL,"
        " outcome TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE installations (id BIGINT PRIMARY KEY, account TEXT NOT NULL, state TEXT NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE installation_repos (installation_id BIGINT NOT NULL, repo TEXT NOT NULL,"
        " PRIMARY KEY (installation_id, repo))",
        "CREATE TABLE threads (repo TEXT NOT NULL, number INTEGER NOT NULL, is_pr INTEGER NOT NULL,"
        " session_id TEXT, outsider_replied INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (repo, number))",
        "CREATE TABLE inbox (id {serial}, delivery_id TEXT NOT NULL, kind TEXT NOT NULL, command TEXT NOT NULL,"
        " installation_id BIGINT NOT NULL, repo TEXT NOT NULL, number INTEGER NOT NULL, is_pr INTEGER NOT NULL,"
        " requester TEXT NOT NULL, target_kind TEXT NOT NULL, target_id BIGINT NOT NULL, text TEXT NOT NULL,"
        " state TEXT NOT NULL DEFAULT 'new', worker TEXT, created_at DOUBLE PRECISION NOT NULL)",
        "CREATE INDEX inbox_state ON inbox (state, id)",
        "CREATE TABLE runs (id {serial}, installation_id BIGINT NOT NULL, repo TEXT NOT NULL,"
        " number INTEGER NOT NULL, is_pr INTEGER NOT NULL, requester TEXT NOT NULL, trigger_kind TEXT NOT NULL,"
        " trigger_id BIGINT NOT NULL, request TEXT NOT NULL, state TEXT NOT NULL, comment_id BIGINT,"
        " session_id TEXT, worker TEXT, attempts INTEGER NOT NULL DEFAULT 0,"
        " cancel_requested INTEGER NOT NULL DEFAULT 0, result TEXT, error TEXT,"
        " created_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, finished_at DOUBLE PRECISION)",
        "CREATE INDEX runs_state ON runs (state, id)",
        "CREATE INDEX runs_thread ON runs (repo, number, id)",
        "CREATE UNIQUE INDEX runs_one_active ON runs (repo, number) WHERE state IN ('running', 'waiting_approval')",
        "CREATE TABLE commands (id {serial}, repo TEXT NOT NULL, number INTEGER NOT NULL, name TEXT NOT NULL,"
        " args TEXT NOT NULL, requester TEXT NOT NULL, comment_id BIGINT NOT NULL, run_id BIGINT,"
        " outcome TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
        "CREATE TABLE approvals (id {serial}, run_id BIGINT NOT NULL, call_id TEXT NOT NULL,"
        " summary TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', decided_by TEXT, reason TEXT,"
        " created_at DOUBLE PRECISION NOT NULL, decided_at DOUBLE PRECISION, UNIQUE (run_id, call_id))",
    ],
    [  # 2: run pages: the hash of each run's page token
        "CREATE TABLE run_pages (run_id BIGINT PRIMARY KEY, token_hash TEXT NOT NULL,"
        " created_at DOUBLE PRECISION NOT NULL)",
    ],
]
"""Schema versions, in order; a new version is a new list appended here, never an edit of an old one."""


class Tx(Protocol):
    """One transaction: statements use `?` placeholders on both backends."""

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int: ...
    async def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None: ...
    async def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]: ...


class Database(Protocol):
    """A backend: transactions, liveness of other workers, and a serialising lock for claims."""

    dialect: str

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Tx]: ...
    async def claim_lock(self, tx: Tx) -> None: ...
    async def dead_workers(self, workers: list[str], me: str) -> list[str]: ...
    async def close(self) -> None: ...


# ---- SQLite -----------------------------------------------------------------------------------


class _SqliteTx:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, tuple(args)).rowcount

    async def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        row = self.conn.execute(sql, tuple(args)).fetchone()
        return dict(row) if row is not None else None

    async def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self.conn.execute(sql, tuple(args)).fetchall()]


class SqliteDatabase:
    """The embedded default: one file in WAL mode, held by one server process at a time."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lockfile: IO[str] | None = open(f"{path}.lock", "w")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self._lockfile.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            self._lockfile = None
            raise ConfigError(
                f"another ml-intern server is using {path}; run one server per SQLite file, "
                "or set DATABASE_URL=postgresql://… to share runs between several"
            ) from None
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    async def claim_lock(self, tx: Tx) -> None:
        """BEGIN IMMEDIATE already serialises writers."""

    async def dead_workers(self, workers: list[str], me: str) -> list[str]:
        """This process holds the file lock, so every other worker that left rows behind is dead."""
        return [w for w in workers if w != me]

    async def close(self) -> None:
        self.conn.close()
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None


# ---- PostgreSQL -------------------------------------------------------------------------------


def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def worker_key(worker: str) -> int:
    """A worker id as a signed 64-bit advisory-lock key."""
    return int.from_bytes(hashlib.sha256(f"ml-intern:{worker}".encode()).digest()[:8], "big", signed=True)


CLAIM_KEY = worker_key("claims")


class _PgTx:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        cur = await self.conn.execute(_pg_sql(sql), tuple(args))
        return int(cur.rowcount)

    async def one(self, sql: str, args: Sequence[Any] = ()) -> Row | None:
        cur = await self.conn.execute(_pg_sql(sql), tuple(args))
        row: Row | None = await cur.fetchone()
        return row

    async def all(self, sql: str, args: Sequence[Any] = ()) -> list[Row]:
        cur = await self.conn.execute(_pg_sql(sql), tuple(args))
        rows: list[Row] = await cur.fetchall()
        return rows


class PostgresDatabase:
    """Shared by several server processes; each holds an advisory lock on its worker id while it lives."""

    dialect = "postgresql"

    def __init__(self, url: str, size: int = 4) -> None:
        self.url = url
        self.size = size
        self._pool: asyncio.Queue[Any] = asyncio.Queue()
        self._conns: list[Any] = []
        self._life: Any = None

    async def connect(self, worker: str) -> None:
        import psycopg
        from psycopg.rows import dict_row

        try:
            for _ in range(self.size):
                conn = await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row)
                self._conns.append(conn)
                self._pool.put_nowait(conn)
            self._life = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
        except psycopg.Error as e:
            await self.close()
            raise ConfigError(f"cannot connect to DATABASE_URL: {str(e).strip().splitlines()[0][:200]}") from None
        await self._life.execute("SELECT pg_advisory_lock(%s)", (worker_key(worker),))

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        conn = await self._pool.get()
        if conn.broken or conn.closed:  # the server restarted or the network dropped: a fresh connection
            import psycopg
            from psycopg.rows import dict_row

            self._conns.remove(conn)
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row)
            except BaseException:
                self._pool.put_nowait(conn)  # keep the pool's size; the next caller tries again
                self._conns.append(conn)
                raise
            self._conns.append(conn)
        try:
            async with conn.transaction():
                yield _PgTx(conn)
        finally:
            self._pool.put_nowait(conn)

    async def claim_lock(self, tx: Tx) -> None:
        """Serialise claims across processes for the rest of this transaction."""
        await tx.execute("SELECT pg_advisory_xact_lock(?)", (CLAIM_KEY,))

    async def dead_workers(self, workers: list[str], me: str) -> list[str]:
        """Workers whose advisory lock is free: their process (and its connection) is gone."""
        dead = []
        for w in workers:
            if w == me:
                continue
            cur = await self._life.execute("SELECT pg_try_advisory_lock(%s)", (worker_key(w),))
            row = await cur.fetchone()
            if row and row[0]:
                dead.append(w)
                await self._life.execute("SELECT pg_advisory_unlock(%s)", (worker_key(w),))
        return dead

    async def close(self) -> None:
        for conn in [*self._conns, self._life]:
            if conn is not None:
                await conn.close()
        self._conns, self._life = [], None


# ---- opening and migrating --------------------------------------------------------------------


def _ddl(sql: str, dialect: str) -> str:
    serial = (
        "INTEGER PRIMARY KEY AUTOINCREMENT"
        if dialect == "sqlite"
        else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    return sql.replace("{serial}", serial)


async def migrate(db: Database) -> int:
    """Bring the schema to the latest version; returns it. Safe when several processes start at once."""
    async with db.transaction() as tx:
        await db.claim_lock(tx)
        await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = await tx.one("SELECT MAX(version) AS v FROM schema_version")
        current = int(row["v"]) if row and row["v"] is not None else 0
        if current > len(MIGRATIONS):
            raise ConfigError(
                f"the database schema is version {current}, newer than this ml-intern ({len(MIGRATIONS)}); upgrade"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            for statement in MIGRATIONS[version - 1]:
                await tx.execute(_ddl(statement, db.dialect))
            await tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            logger.info("database migrated to version %d", version)
    return len(MIGRATIONS)


async def open_database(url: str, worker: str) -> Database:
    """Open (and migrate) the database named by `url`: `sqlite:///path` or `postgresql://…`."""
    db: Database
    if url.startswith("sqlite:///"):
        db = SqliteDatabase(Path(url.removeprefix("sqlite:///")))
    else:
        pg = PostgresDatabase(url)
        await pg.connect(worker)
        db = pg
    try:
        await migrate(db)
    except BaseException:
        await db.close()
        raise
    return db


__all__ = ["MIGRATIONS", "Database", "PostgresDatabase", "SqliteDatabase", "Tx", "migrate", "open_database"]
