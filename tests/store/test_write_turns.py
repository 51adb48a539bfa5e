"""SQLite's writers of one process take turns: a unit that writes waits for an async session's write to commit,
and keeps the turn until its work has finished on the database thread, even when its caller gave up."""

from __future__ import annotations

import asyncio
import threading
import time

from sqlalchemy import text

from store.db import Database
from store.models import OperatorLog
from tests.conftest import make_settings, migrated_database


def _log(message: str) -> OperatorLog:
    return OperatorLog(workspace_id="ws_turns", livemode=False, kind="request", level="info", message=message)


def _insert(message: str, started: threading.Event | None = None, hold: float = 0.0):
    def work(conn) -> None:
        if started is not None:
            started.set()
        time.sleep(hold)
        conn.execute(OperatorLog.__table__.insert().values(**_log(message).model_dump(by_alias=False)))
    return work


async def _messages(db: Database) -> list[str]:
    async with db.session() as s:
        return [m for (m,) in (await s.execute(text("SELECT message FROM operator_logs ORDER BY message"))).all()]


async def test_a_writing_unit_waits_for_the_turn_an_async_session_holds(tmp_path):
    with migrated_database("sqlite", tmp_path) as database:
        db = Database(make_settings(database).sqlalchemy_url)
        try:
            started = threading.Event()
            async with db.session() as s:
                s.add(_log("session"))
                await s.flush()  # the session's first write takes the turn
                unit = asyncio.create_task(db.unit(_insert("unit", started)))
                await asyncio.sleep(0.3)
                # Queued in asyncio, not spinning in SQLite's busy handler: its work has not begun.
                assert not started.is_set() and not unit.done()
                await s.commit()
            await asyncio.wait_for(unit, 5)
            assert started.is_set()
            assert await _messages(db) == ["session", "unit"]
            # A unit that only reads does not queue for the turn.
            async with db.session() as s:
                s.add(_log("held"))
                await s.flush()
                count = await asyncio.wait_for(db.unit(
                    lambda conn: conn.execute(text("SELECT count(*) FROM operator_logs")).scalar(), writes=False), 5)
                assert count == 2
                await s.rollback()
        finally:
            await db.close()


async def test_a_unit_keeps_the_turn_until_its_work_ends_when_its_caller_is_cancelled(tmp_path):
    with migrated_database("sqlite", tmp_path) as database:
        db = Database(make_settings(database).sqlalchemy_url)
        try:
            started = threading.Event()
            unit = asyncio.create_task(db.unit(_insert("slow", started, hold=0.5)))
            while not started.is_set():
                await asyncio.sleep(0.01)
            unit.cancel()
            t0 = time.monotonic()
            release = await db.turns.take()
            waited = time.monotonic() - t0
            release()
            # The next writer got the turn only once the cancelled caller's work had committed.
            assert waited > 0.3, waited
            assert await _messages(db) == ["slow"]
        finally:
            await db.close()
