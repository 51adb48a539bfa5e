"""Engines and sessions. The API and the activities share this; nothing here knows HTTP or Temporal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger("herald.db")
T = TypeVar("T")

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

    async def take(self) -> Callable[[], None]:
        """The turn for a writer outside the async engine (`Database.unit`); returns its release."""
        lock = self._lock()
        try:
            await asyncio.wait_for(lock.acquire(), WRITE_TURN_TIMEOUT)
        except TimeoutError:
            log.warning("no write turn within %.0f s; writing without one", WRITE_TURN_TIMEOUT)
            return lambda: None
        return lock.release

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


def make_engine(url: str, turns: WriteTurns | None) -> AsyncEngine:
    """`turns` (SQLite only) queues this engine's writers with the process's other writers."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "before_cursor_execute", turns.before_execute)
        event.listen(engine.sync_engine, "commit", WriteTurns.end)
        event.listen(engine.sync_engine, "rollback", WriteTurns.end)
        event.listen(engine.sync_engine.pool, "checkin", WriteTurns.checkin)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def make_sync_engine(url: str) -> tuple[Engine, ThreadPoolExecutor]:
    """The same database through its synchronous driver, and the threads that use it (see `Database.unit`).
    SQLite gets one thread: its writers take turns anyway, and one thread serves them in order."""
    url = url.replace("+aiosqlite", "")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine, ThreadPoolExecutor(1, thread_name_prefix="herald-db")
    engine = create_engine(url, pool_size=10, max_overflow=0, pool_pre_ping=True)
    return engine, ThreadPoolExecutor(10, thread_name_prefix="herald-db")


class Database:
    """One engine and its session factory; `unit()` for the hot path."""

    def __init__(self, url: str):
        self.url = url
        # SQLite's writers of this process take turns, whether they write through the async engine or a unit.
        self.turns = WriteTurns() if url.startswith("sqlite") else None
        self.engine = make_engine(url, self.turns)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._sync: tuple[Engine, ThreadPoolExecutor] | None = None

    async def unit(self, work: Callable[[Connection], T], *, writes: bool = True) -> T:
        """Run `work` (synchronous SQLAlchemy on one connection, one transaction, committed when it returns) on
        a database thread, in one hop. The async driver for SQLite, aiosqlite, hops to its thread for every
        cursor call (several per statement): a transaction of two statements cost 1.43 ms of CPU that way and
        0.35 ms synchronously. `work` must not wait on anything else; it may run after its caller was cancelled.
        A unit that `writes` on SQLite takes the process's write turn first and keeps it until `work` has
        finished on its thread, even when its caller is cancelled meanwhile.
        """
        if self._sync is None:
            self._sync = make_sync_engine(self.url)
        engine, threads = self._sync
        loop = asyncio.get_running_loop()
        if not writes or self.turns is None:
            return await loop.run_in_executor(threads, _in_transaction, engine, work)
        release = await self.turns.take()
        try:
            done = loop.run_in_executor(threads, _in_transaction, engine, work)
        except BaseException:
            release()
            raise
        done.add_done_callback(lambda _: release())
        return await asyncio.shield(done)

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
        if self._sync is not None:
            engine, threads = self._sync
            self._sync = None
            await asyncio.get_running_loop().run_in_executor(None, threads.shutdown)
            engine.dispose()


def _in_transaction(engine: Engine, work: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return work(conn)
