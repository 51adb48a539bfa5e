"""Engines and sessions. The API and the activities share this; nothing here knows HTTP or Temporal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger("herald.db")

# Longer than this waiting for the process's write turn, a writer goes ahead and leaves it to SQLite's own
# busy timeout: a task that writes on one session while holding the turn on another cannot deadlock itself.
WRITE_TURN_TIMEOUT = 5.0
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers run beside the writer; busy_timeout makes writers queue instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class WriteTurns:
    """One SQLite writer at a time per process, queued in asyncio instead of in SQLite.

    SQLite has one write lock. A transaction holds it from its first write to its commit, across awaits, so
    with many concurrent sessions the others spin in SQLite's busy handler, which sleeps in growing steps (up
    to 100 ms) and serves them in no order: under load that made a 20 ms request take seconds. Here a
    connection takes the process's turn before its first write and gives it back when its transaction ends;
    waiters are served first come, first served, and a turn passes the moment it is free.
    """

    def __init__(self) -> None:
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    def before_execute(self, conn, _cursor, statement: str, *_args) -> None:
        info = conn.info
        if info.get("write_turn") is not None or not statement.lstrip()[:7].upper().startswith(_WRITES):
            return
        lock = self._lock()
        try:
            await_(asyncio.wait_for(lock.acquire(), WRITE_TURN_TIMEOUT))
        except TimeoutError:
            log.warning("no write turn within %.0f s; writing without one", WRITE_TURN_TIMEOUT)
            info["write_turn"] = False
            return
        info["write_turn"] = lock

    @staticmethod
    def end(conn) -> None:
        WriteTurns.release(conn.info)

    @staticmethod
    def checkin(_dbapi_conn, record) -> None:
        WriteTurns.release(record.info)

    @staticmethod
    def release(info: dict) -> None:
        lock = info.pop("write_turn", None)
        if lock:
            lock.release()


def make_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        turns = WriteTurns()
        event.listen(engine.sync_engine, "before_cursor_execute", turns.before_execute)
        event.listen(engine.sync_engine, "commit", WriteTurns.end)
        event.listen(engine.sync_engine, "rollback", WriteTurns.end)
        event.listen(engine.sync_engine.pool, "checkin", WriteTurns.checkin)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    async def ping(self) -> None:
        from sqlalchemy import text

        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
