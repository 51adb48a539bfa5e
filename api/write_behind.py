"""Bookkeeping a response need not wait for, written in one transaction per flush instead of one per request.

- Operator log entries of API requests.
- The `dispatched_at` mark of posts whose workflow started. If the process dies before a flush, the mark is
  missing and the maintenance sweeper starts the workflow again, which Temporal refuses as already started
  (the workflow id is the post's), and marks it then: nothing is lost or run twice.
"""

from __future__ import annotations

import logging
from sqlalchemy import update

from store.db import Database
from store.models import OperatorLog, Post, utcnow

log = logging.getLogger("herald.api")

# Beyond this many waiting log entries (the database is down), new ones are dropped rather than held.
MAX_PENDING_LOGS = 10_000


class WriteBehind:
    def __init__(self, db: Database):
        self.db = db
        self._logs: list[OperatorLog] = []
        self._dispatched: set[str] = set()

    def log(self, entry: OperatorLog) -> None:
        if len(self._logs) < MAX_PENDING_LOGS:
            self._logs.append(entry)

    def dispatched(self, post_id: str) -> None:
        self._dispatched.add(post_id)

    async def flush(self) -> None:
        logs, self._logs = self._logs, []
        dispatched, self._dispatched = self._dispatched, set()
        if not logs and not dispatched:
            return
        try:
            async with self.db.session() as s:
                s.add_all(logs)
                ids, now = sorted(dispatched), utcnow()
                for i in range(0, len(ids), 500):
                    await s.execute(update(Post).where(Post.id.in_(ids[i:i + 500]), Post.dispatched_at.is_(None))
                                    .values(dispatched_at=now))
                await s.commit()
        except Exception:
            log.warning("write-behind flush failed (%d log entries, %d dispatch marks); retrying",
                        len(logs), len(dispatched), exc_info=True)
            self._logs[:0] = [OperatorLog(**entry.model_dump()) for entry in logs][:MAX_PENDING_LOGS]
            self._dispatched |= dispatched
