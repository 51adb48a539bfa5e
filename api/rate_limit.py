"""The per-key rate limit: a fixed one-minute window, shared by every API replica through the database.

A request never writes the database for this. Each process counts its own requests exactly and adds what the
database held for the window at the last sync; `sync()` (every quarter second, from AppState) adds the
process's new requests to the shared row and reads back the total. A key spread over several replicas can so
exceed its limit by at most what the other replicas served since their last sync.

Why not a row update per request: every request of one key would take the same row lock (or, on SQLite, the
database's one write lock), and under concurrency they queue behind each other.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select, text

from store.db import Database
from store.models import RateLimitWindow

log = logging.getLogger("herald.api")

Slot = tuple[str, int]  # (api key id, window start minute)


@dataclass(frozen=True)
class Verdict:
    count: int
    limit: int
    window: int

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def reset(self) -> int:
        return (self.window + 1) * 60

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(max(0, self.limit - self.count)),
                "X-RateLimit-Reset": str(self.reset)}


class RateLimiter:
    def __init__(self, db: Database, limit: int):
        self.db = db
        self.limit = limit
        self._unsynced: Counter[Slot] = Counter()
        # Counts on their way to the database during a sync: still counted until the total read back has them.
        self._in_flight: Counter[Slot] = Counter()
        self._shared: dict[Slot, int] = {}

    async def hit(self, api_key_id: str, now: float) -> Verdict:
        slot = (api_key_id, int(now // 60))
        if slot not in self._shared:
            # First request of this key in this window here: another replica (or this process before a
            # restart) may already have counted some.
            self._shared[slot] = await self._stored(slot)
        self._unsynced[slot] += 1
        return Verdict(self._shared[slot] + self._in_flight[slot] + self._unsynced[slot], self.limit, slot[1])

    async def _stored(self, slot: Slot) -> int:
        async with self.db.session() as s:
            count = (await s.execute(select(RateLimitWindow.count).where(
                RateLimitWindow.api_key_id == slot[0], RateLimitWindow.window_start == slot[1]))).scalar()
        return count or 0

    async def sync(self, now: float) -> None:
        """Add this process's new counts to the shared rows, and learn the other replicas' counts."""
        pending, self._unsynced = self._unsynced, Counter()
        self._in_flight.update(pending)
        current = int(now // 60)
        try:
            async with self.db.session() as s:
                for (key_id, window), delta in sorted(pending.items()):
                    total = (await s.execute(text(
                        "INSERT INTO rate_limit_windows (api_key_id, window_start, count) VALUES (:k, :w, :d) "
                        "ON CONFLICT (api_key_id, window_start) "
                        "DO UPDATE SET count = rate_limit_windows.count + :d RETURNING count"),
                        {"k": key_id, "w": window, "d": delta})).scalar_one()
                    # Requests counted while this ran are in the new _unsynced and add to this total.
                    self._shared[(key_id, window)] = total
                    self._in_flight.pop((key_id, window), None)
                await s.commit()
                idle = [slot for slot in self._shared if slot[1] == current and slot not in pending]
                if idle:  # keys this process has seen but not served since: learn the other replicas' counts
                    rows = await s.execute(select(RateLimitWindow.api_key_id, RateLimitWindow.count).where(
                        RateLimitWindow.window_start == current,
                        RateLimitWindow.api_key_id.in_([key_id for key_id, _ in idle])))
                    self._shared.update({(key_id, current): count for key_id, count in rows})
        except Exception:
            for slot, delta in pending.items():  # counted again at the next sync
                self._in_flight.pop(slot, None)
                self._unsynced[slot] += delta
            log.warning("rate limit sync failed; will retry", exc_info=True)
            return
        for slot in [slot for slot in self._shared if slot[1] < current]:
            if not self._unsynced.get(slot):
                del self._shared[slot]
