"""Process-wide objects of the API: settings, database and the one Temporal client."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import httpx
from temporalio.client import Client

from api.rate_limit import RateLimiter
from api.write_behind import WriteBehind
from store.db import Database
from store.settings import Settings

log = logging.getLogger("herald.api")

# How often the rate limit counts and the write-behind bookkeeping reach the database.
SYNC_INTERVAL = 0.25


@dataclass
class AppState:
    settings: Settings
    db: Database
    temporal: Client | None = None
    temporal_error: str | None = None
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0)))
    rate_limiter: RateLimiter = field(init=False)
    write_behind: WriteBehind = field(init=False)
    _connector: asyncio.Task | None = field(default=None, repr=False)
    _syncer: asyncio.Task | None = field(default=None, repr=False)
    # Work a response does not wait for (starting a scheduled post's workflow); finished before shutdown.
    _background: set[asyncio.Task] = field(default_factory=set, repr=False)

    def __post_init__(self) -> None:
        self.rate_limiter = RateLimiter(self.db, self.settings.rate_limit_per_minute)
        self.write_behind = WriteBehind(self.db)

    def start(self) -> None:
        self.start_temporal()
        self._syncer = asyncio.create_task(self._sync_forever())

    async def sync(self) -> None:
        await self.rate_limiter.sync(time.time())
        await self.write_behind.flush()

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_INTERVAL)
            try:
                await self.sync()
            except Exception:  # both log their own failures; the loop must outlive any of them
                log.warning("background sync failed", exc_info=True)

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background work failed (the maintenance sweeper covers a post left unstarted)",
                      exc_info=task.exception())

    def start_temporal(self) -> None:
        """Connect in the background: the API answers (and /readyz says why not ready) meanwhile."""
        self._connector = asyncio.create_task(self._connect_temporal())

    async def _connect_temporal(self) -> None:
        from temporal_client import connect

        delay = 0.5
        while self.temporal is None:
            try:
                self.temporal = await connect(self.settings)
                self.temporal_error = None
            except Exception as exc:  # connection refused, DNS, TLS: keep trying
                self.temporal_error = f"{type(exc).__name__}: {exc}"
                log.warning("temporal not reachable yet: %s", self.temporal_error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def close(self) -> None:
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._connector:
            self._connector.cancel()
        if self._syncer:
            self._syncer.cancel()
            await self.sync()
        await self.http.aclose()
        await self.db.close()
