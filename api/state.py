"""Process-wide objects of the API: settings, database and the one Temporal client."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import httpx
from temporalio.client import Client

from store.db import Database
from store.settings import Settings

log = logging.getLogger("herald.api")


@dataclass
class AppState:
    settings: Settings
    db: Database
    temporal: Client | None = None
    temporal_error: str | None = None
    http: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0)))
    _connector: asyncio.Task | None = field(default=None, repr=False)

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
        if self._connector:
            self._connector.cancel()
        await self.http.aclose()
        await self.db.close()
